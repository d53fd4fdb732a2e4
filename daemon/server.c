/*
 * server.c: the loop that owns the store: group commit of requests, the
 * timers (lease expiry, job finalisation) and a clean stop on SIGTERM.
 *
 * Requests arrive from nng's threads through a mutex-protected FIFO and one
 * uv_async_t. libuv coalesces wake-ups, so while one batch commits (an fsync
 * of a few ms) the next requests pile up and go into the next batch: the
 * commit rate stays at what the disk does while the request rate scales
 * with the batch size. Replies leave only after their batch committed.
 */
#include "server.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "api.h"
#include "api_ledger.h"
#include "api_model.h"
#include "clock.h"
#include "cron.h"
#include "fs.h"
#include "dispatch.h"
#include "log.h"
#include "task.h"

#define SERVER_TICK_MS 500
/* After the last batch of a stop, replies still being written get this
 * long before the listeners close under them. */
#define SERVER_GRACE_MS 200
#define SERVER_FINALIZE_BATCH 16
#define SERVER_SCHEDULE_BATCH 32

struct server {
    const rsd_config *cfg;
    rsd_crash crash;
    uv_loop_t loop;
    bool loop_init;
    uv_async_t wake;
    uv_timer_t tick;
    uv_timer_t grace;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    int nhandles; /* handles initialised, in the order above */
    uv_mutex_t mu;
    bool mu_init;
    srv_item *head;    /* guarded by mu */
    srv_item *tail;    /* guarded by mu */
    bool stopping;     /* guarded by mu */
    bool stop_started; /* loop only */
    store *st;
    api *api;
    dispatch *dp;
    char clock_file[512]; /* RUSHES_TEST_CLOCK_FILE, "" = wall clock */
};

int64_t server_now_ms(server *sv)
{
    if (sv->clock_file[0] == '\0') {
        return rs_clock_wall_ms();
    }
    char *text = NULL;
    size_t len = 0;
    rs_error e;
    rs_error_clear(&e);
    int64_t v = rs_clock_wall_ms();
    if (rs_fs_read_all(sv->clock_file, 64, &text, &len, &e) == RS_OK) {
        char *end = NULL;
        long long x = strtoll(text, &end, 10);
        if (end != text && x > 0) {
            v = x;
        }
        free(text);
    }
    return v;
}

/*
 * Due schedules submit their job (same validation and plan as the API)
 * and move to their next firing, in one batch. A firing whose job is
 * refused (e.g. its footage folder is gone) is logged and skipped; missed
 * firings while the daemon was down collapse into one.
 */
static void run_schedules(server *sv)
{
    cJSON *due = NULL;
    rs_error e;
    rs_error_clear(&e);
    int64_t now = server_now_ms(sv);
    if (store_schedules_due(sv->st, now, SERVER_SCHEDULE_BATCH, &due, &e) != RS_OK) {
        RS_ERROR("schedule", "%s", rs_error_text(&e));
        return;
    }
    if (cJSON_GetArraySize(due) == 0) {
        cJSON_Delete(due);
        return;
    }
    if (store_batch_begin(sv->st, &e) != RS_OK) {
        RS_ERROR("schedule", "%s", rs_error_text(&e));
        cJSON_Delete(due);
        return;
    }
    const cJSON *d = NULL;
    cJSON_ArrayForEach(d, due)
    {
        int64_t id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "id"));
        const char *cron = cJSON_GetStringValue(cJSON_GetObjectItem(d, "cron"));
        const char *tz = cJSON_GetStringValue(cJSON_GetObjectItem(d, "tz"));
        int64_t job_id = 0;
        int64_t next = 0;
        cron_expr ce;
        rs_error je;
        rs_error_clear(&je);
        rs_err rc = api_submit_json(
            sv->api, cJSON_GetStringValue(cJSON_GetObjectItem(d, "project")),
            cJSON_GetStringValue(cJSON_GetObjectItem(d, "tenant")),
            cJSON_GetStringValue(cJSON_GetObjectItem(d, "job")), rs_clock_wall_ms(), &job_id, &je);
        if (rc != RS_OK) {
            RS_WARN("schedule", "schedule %lld: job refused: %s", (long long)id,
                    rs_error_text(&je));
            job_id = 0;
        } else {
            RS_INFO("schedule", "schedule %lld submitted job %lld", (long long)id,
                    (long long)job_id);
        }
        if (cron_parse(cron != NULL ? cron : "", &ce, &je) != RS_OK ||
            cron_next(&ce, tz != NULL ? tz : "UTC", now, &next, &je) != RS_OK) {
            next = INT64_MAX; /* never again; shown in `rushes schedule ls` */
        }
        if (store_schedule_fired(sv->st, id, now, next, job_id, &e) != RS_OK) {
            RS_ERROR("schedule", "%s", rs_error_text(&e));
        }
    }
    cJSON_Delete(due);
    if (store_batch_commit(sv->st, &e) != RS_OK) {
        RS_ERROR("schedule", "commit: %s", rs_error_text(&e));
        store_batch_rollback(sv->st);
    }
}

/*
 * Training windows (docs/OPERATIONS.md): each windowed job's "open" flag
 * follows its window on the (injectable) clock; the lease query hands out
 * only tasks of open jobs. Closing asks the job's running attempts to
 * yield; the worker passes that on to the child as SIGTERM.
 */
static void run_windows(server *sv)
{
    cJSON *jobs = NULL;
    rs_error e;
    rs_error_clear(&e);
    if (store_windowed_jobs(sv->st, &jobs, &e) != RS_OK) {
        RS_ERROR("window", "%s", rs_error_text(&e));
        return;
    }
    int64_t now = server_now_ms(sv);
    const cJSON *j = NULL;
    cJSON_ArrayForEach(j, jobs)
    {
        int64_t id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "id"));
        const cJSON *stored = cJSON_GetObjectItem(j, "window");
        bool was_open = cJSON_IsTrue(cJSON_GetObjectItem(stored, "open"));
        cron_window w;
        bool open = false;
        if (cron_window_from_json(stored, &w, &e) != RS_OK ||
            cron_window_open(&w, now, &open, NULL, &e) != RS_OK) {
            RS_ERROR("window", "job %lld: %s", (long long)id, rs_error_text(&e));
            rs_error_clear(&e);
            continue;
        }
        if (open == was_open) {
            continue;
        }
        char *text = cron_window_to_json(&w, open);
        int nyield = 0;
        if (text == NULL) {
            RS_ERROR("window", "job %lld: out of memory", (long long)id);
        } else if (store_job_window_set(sv->st, id, text, open, &nyield, &e) != RS_OK) {
            RS_ERROR("window", "job %lld: %s", (long long)id, rs_error_text(&e));
            rs_error_clear(&e);
        } else if (open) {
            RS_INFO("window", "job %lld: window opened", (long long)id);
        } else {
            RS_INFO("window", "job %lld: window closed, %d attempt(s) asked to yield",
                    (long long)id, nyield);
        }
        free(text);
    }
    cJSON_Delete(jobs);
}

static const char *const crash_points[] = {"submit_committed", "dispatch_leased", "report_received",
                                           "report_committed", "finalize"};

rs_err server_crash_parse(const char *spec, rsd_crash *out, rs_error *e)
{
    memset(out, 0, sizeof *out);
    if (spec == NULL || spec[0] == '\0') {
        return RS_OK;
    }
    size_t n = strcspn(spec, ":");
    bool known = false;
    for (size_t i = 0; i < sizeof crash_points / sizeof crash_points[0]; i++) {
        if (strlen(crash_points[i]) == n && strncmp(spec, crash_points[i], n) == 0) {
            known = true;
        }
    }
    if (!known) {
        return rs_error_set(e, RS_EINVAL, "RUSHES_CRASH_AT: unknown point \"%.*s\"", (int)n, spec);
    }
    memcpy(out->point, spec, n);
    out->point[n] = '\0';
    out->at = 1;
    if (spec[n] == ':') {
        char *end = NULL;
        long long v = strtoll(spec + n + 1, &end, 10);
        if (spec[n + 1] == '\0' || *end != '\0' || v < 1) {
            memset(out, 0, sizeof *out);
            return rs_error_set(e, RS_EINVAL, "RUSHES_CRASH_AT: count must be a positive integer");
        }
        out->at = v;
    }
    return RS_OK;
}

void server_crash_point(server *sv, const char *point)
{
    if (sv->crash.point[0] == '\0' || strcmp(sv->crash.point, point) != 0) {
        return;
    }
    sv->crash.passed++;
    if (sv->crash.passed == sv->crash.at) {
        fprintf(stderr, "rushesd: RUSHES_CRASH_AT %s:%lld reached, raising SIGKILL\n", point,
                (long long)sv->crash.at);
        fflush(stderr);
        raise(SIGKILL);
    }
}

store *server_store(server *sv)
{
    return sv->st;
}

const rsd_config *server_config(const server *sv)
{
    return sv->cfg;
}

bool server_item_push(server *sv, srv_item *it)
{
    it->next = NULL;
    uv_mutex_lock(&sv->mu);
    if (sv->stopping) {
        uv_mutex_unlock(&sv->mu);
        return false;
    }
    if (sv->tail != NULL) {
        sv->tail->next = it;
    } else {
        sv->head = it;
    }
    sv->tail = it;
    /* Under the lock: once stopping is set no send can race the handle's
     * close. libuv makes a repeated send before the wake-up cheap. */
    uv_async_send(&sv->wake);
    uv_mutex_unlock(&sv->mu);
    return true;
}

/* ---- finalisation -------------------------------------------------------- */

static rs_err register_clips(server *sv, const cJSON *clips, const char *project, int64_t job_id,
                             int64_t now_ms, rs_error *e)
{
    const cJSON *c = NULL;
    cJSON_ArrayForEach(c, clips)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(c, "path");
        const cJSON *hash = cJSON_GetObjectItemCaseSensitive(c, "hash");
        const cJSON *info = cJSON_GetObjectItemCaseSensitive(c, "info");
        if (!cJSON_IsString(name) || !cJSON_IsString(path) || !cJSON_IsString(hash)) {
            return rs_error_set(e, RS_EINVAL, "finalize: a clip lacks name, path or hash");
        }
        char *info_json = info != NULL ? cJSON_PrintUnformatted(info) : NULL;
        store_clip_spec spec = {
            .project = project,
            .job_id = job_id,
            .name = name->valuestring,
            .path = path->valuestring,
            .hash = hash->valuestring,
            .info_json = info_json != NULL ? info_json : "{}",
        };
        int64_t clip_id = 0;
        rs_err rc = store_clip_register(sv->st, &spec, now_ms, &clip_id, e);
        free(info_json);
        if (rc != RS_OK) {
            return rc;
        }
    }
    return RS_OK;
}

/* One job whose tasks all succeeded: kind->finalize, clips, complete. */
static void finalize_one(server *sv, int64_t job_id, int64_t now_ms)
{
    cJSON *job = NULL;
    cJSON *results = NULL;
    cJSON *job_result = NULL;
    cJSON *clips = NULL;
    char *result_json = NULL;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = store_job_get(sv->st, job_id, &job, &e);
    if (rc == RS_OK) {
        rc = store_job_task_results(sv->st, job_id, &results, &e);
    }
    if (rc != RS_OK) {
        RS_ERROR("finalize", "job %lld: %s", (long long)job_id, rs_error_text(&e));
        goto out;
    }
    const cJSON *kind_name = cJSON_GetObjectItemCaseSensitive(job, "kind");
    const cJSON *project = cJSON_GetObjectItemCaseSensitive(job, "project");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(job, "params");
    const task_kind *kind =
        cJSON_IsString(kind_name) ? task_kind_find(kind_name->valuestring) : NULL;
    rs_error fe;
    rs_error_clear(&fe);
    if (kind == NULL || !cJSON_IsString(project)) {
        rc = rs_error_set(&fe, RS_EINVAL, "finalize: job has an unknown kind");
    } else {
        task_env env = {
            .media_roots = (const char *const *)sv->cfg->media_roots,
            .nmedia_roots = sv->cfg->nmedia_roots,
            .data_dir = sv->cfg->data_dir,
            .project = project->valuestring,
            .job_id = job_id,
        };
        rc = kind->finalize(params, results, &env, &job_result, &clips, &fe);
        if (rc == RS_OK && clips != NULL) {
            rc = register_clips(sv, clips, project->valuestring, job_id, now_ms, &fe);
        }
        if (rc == RS_OK) {
            /* Model registry: a training job's model gets its row (api_model.c). */
            rc = api_model_job_finalized(sv, project->valuestring, job_id, job_result, now_ms,
                                         &fe);
        }
        if (rc == RS_OK) {
            /* Compliance ledger (ledger/): ingest and alteration events. */
            rc = api_ledger_job_finalized(sv, project->valuestring, job_id, kind_name->valuestring,
                                          params, job_result, clips, now_ms, &fe);
        }
        if (rc == RS_OK) {
            result_json = job_result != NULL ? cJSON_PrintUnformatted(job_result) : NULL;
            if (result_json == NULL) {
                result_json = strdup("{}");
            }
            if (result_json == NULL) {
                rc = rs_error_set(&fe, RS_ENOMEM, "out of memory");
            }
        }
    }
    if (rc == RS_OK) {
        server_crash_point(sv, "finalize");
        rc = store_job_complete(sv->st, job_id, result_json, NULL, now_ms, &e);
    } else {
        RS_WARN("finalize", "job %lld failed to finalise: %s", (long long)job_id,
                rs_error_text(&fe));
        rc = store_job_complete(sv->st, job_id, NULL, rs_error_text(&fe), now_ms, &e);
    }
    if (rc != RS_OK) {
        RS_ERROR("finalize", "job %lld: %s", (long long)job_id, rs_error_text(&e));
    }
out:
    free(result_json);
    cJSON_Delete(job);
    cJSON_Delete(results);
    cJSON_Delete(job_result);
    cJSON_Delete(clips);
}

static void finalize_jobs(server *sv)
{
    for (int round = 0; round < 8; round++) {
        cJSON *ids = NULL;
        rs_error e;
        rs_error_clear(&e);
        if (store_jobs_to_finalize(sv->st, SERVER_FINALIZE_BATCH, &ids, &e) != RS_OK) {
            RS_ERROR("finalize", "%s", rs_error_text(&e));
            return;
        }
        int n = cJSON_GetArraySize(ids);
        if (n == 0) {
            cJSON_Delete(ids);
            return;
        }
        int64_t now = rs_clock_wall_ms();
        if (store_batch_begin(sv->st, &e) != RS_OK) {
            RS_ERROR("finalize", "%s", rs_error_text(&e));
            cJSON_Delete(ids);
            return;
        }
        const cJSON *id = NULL;
        cJSON_ArrayForEach(id, ids)
        {
            finalize_one(sv, (int64_t)id->valuedouble, now);
        }
        cJSON_Delete(ids);
        if (store_batch_commit(sv->st, &e) != RS_OK) {
            RS_ERROR("finalize", "commit: %s", rs_error_text(&e));
            store_batch_rollback(sv->st);
            return;
        }
        if (n < SERVER_FINALIZE_BATCH) {
            return;
        }
    }
}

/* ---- batches ------------------------------------------------------------- */

static void run_batch(server *sv)
{
    uv_mutex_lock(&sv->mu);
    srv_item *items = sv->head;
    sv->head = NULL;
    sv->tail = NULL;
    uv_mutex_unlock(&sv->mu);
    if (items == NULL) {
        return;
    }
    srv_batch b;
    memset(&b, 0, sizeof b);
    b.now_ms = rs_clock_wall_ms();
    rs_error e;
    rs_error_clear(&e);
    bool committed = false;
    if (store_batch_begin(sv->st, &e) == RS_OK) {
        for (srv_item *it = items; it != NULL; it = it->next) {
            it->ops->apply(sv, it, &b);
        }
        if (store_batch_commit(sv->st, &e) == RS_OK) {
            committed = true;
        } else {
            store_batch_rollback(sv->st);
        }
    }
    if (!committed) {
        RS_ERROR("server", "batch not committed, answering every request with an error: %s",
                 rs_error_text(&e));
    } else {
        if (b.submitted) {
            server_crash_point(sv, "submit_committed");
        }
        if (b.leased) {
            server_crash_point(sv, "dispatch_leased");
        }
        if (b.reported) {
            server_crash_point(sv, "report_committed");
        }
    }
    srv_item *it = items;
    while (it != NULL) {
        srv_item *next = it->next;
        it->ops->reply(sv, it, committed);
        it = next;
    }
    if (committed && b.succeeded) {
        finalize_jobs(sv);
    }
}

static void on_wake(uv_async_t *h)
{
    run_batch(h->data);
}

static void on_tick(uv_timer_t *h)
{
    server *sv = h->data;
    rs_error e;
    rs_error_clear(&e);
    int n = 0;
    if (store_batch_begin(sv->st, &e) == RS_OK) {
        rs_err rc = store_leases_expire(sv->st, rs_clock_wall_ms(), sv->cfg->backoff_ms, &n, &e);
        if (rc != RS_OK) {
            RS_ERROR("server", "lease expiry: %s", rs_error_text(&e));
        }
        if (store_batch_commit(sv->st, &e) != RS_OK) {
            RS_ERROR("server", "lease expiry: commit: %s", rs_error_text(&e));
            store_batch_rollback(sv->st);
        } else if (n > 0) {
            RS_INFO("server", "%d lease(s) expired", n);
        }
    } else {
        RS_ERROR("server", "lease expiry: %s", rs_error_text(&e));
    }
    run_schedules(sv);
    run_windows(sv);
    finalize_jobs(sv);
}

/* ---- stop ---------------------------------------------------------------- */

static void close_handles(server *sv)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&sv->wake, (uv_handle_t *)&sv->tick,
                         (uv_handle_t *)&sv->grace, (uv_handle_t *)&sv->sigterm,
                         (uv_handle_t *)&sv->sigint};
    for (int i = 0; i < sv->nhandles; i++) {
        if (!uv_is_closing(hs[i])) {
            uv_close(hs[i], NULL);
        }
    }
}

static void on_grace(uv_timer_t *h)
{
    server *sv = h->data;
    api_stop(sv->api);
    dispatch_stop(sv->dp);
    close_handles(sv);
}

static void on_signal(uv_signal_t *h, int signum)
{
    server *sv = h->data;
    if (sv->stop_started) {
        return;
    }
    sv->stop_started = true;
    RS_INFO("server", "signal %d: stopping", signum);
    uv_mutex_lock(&sv->mu);
    sv->stopping = true;
    uv_mutex_unlock(&sv->mu);
    /* The batch in hand: everything queued before the flag. */
    run_batch(sv);
    uv_timer_stop(&sv->tick);
    uv_timer_start(&sv->grace, on_grace, SERVER_GRACE_MS, 0);
}

/* ---- lifecycle ----------------------------------------------------------- */

rs_err server_create(const rsd_config *cfg, const rsd_crash *crash, server **out, rs_error *e)
{
    rs_err rc = RS_OK;
    server *sv = calloc(1, sizeof *sv);
    if (sv == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    sv->cfg = cfg;
    const char *clock_file = getenv("RUSHES_TEST_CLOCK_FILE");
    if (clock_file != NULL) {
        snprintf(sv->clock_file, sizeof sv->clock_file, "%s", clock_file);
    }
    if (crash != NULL) {
        sv->crash = *crash;
    }
    if (uv_loop_init(&sv->loop) != 0) {
        free(sv);
        return rs_error_set(e, RS_ENOMEM, "cannot create the event loop");
    }
    sv->loop_init = true;
    if (uv_mutex_init(&sv->mu) != 0) {
        rc = rs_error_set(e, RS_ENOMEM, "cannot create a mutex");
        goto out;
    }
    sv->mu_init = true;
    int rv = uv_async_init(&sv->loop, &sv->wake, on_wake);
    if (rv == 0) {
        sv->nhandles++;
        rv = uv_timer_init(&sv->loop, &sv->tick);
    }
    if (rv == 0) {
        sv->nhandles++;
        rv = uv_timer_init(&sv->loop, &sv->grace);
    }
    if (rv == 0) {
        sv->nhandles++;
        rv = uv_signal_init(&sv->loop, &sv->sigterm);
    }
    if (rv == 0) {
        sv->nhandles++;
        rv = uv_signal_init(&sv->loop, &sv->sigint);
    }
    if (rv != 0) {
        rc = rs_error_set(e, RS_EIO, "event loop: %s", uv_strerror(rv));
        goto out;
    }
    sv->nhandles++;
    sv->wake.data = sv;
    sv->tick.data = sv;
    sv->grace.data = sv;
    sv->sigterm.data = sv;
    sv->sigint.data = sv;
    rv = uv_signal_start(&sv->sigterm, on_signal, SIGTERM);
    if (rv == 0) {
        rv = uv_signal_start(&sv->sigint, on_signal, SIGINT);
    }
    if (rv != 0) {
        rc = rs_error_set(e, RS_EIO, "signals: %s", uv_strerror(rv));
        goto out;
    }
    rc = store_open(cfg->db, true, &sv->st, e);
    if (rc != RS_OK) {
        if (e != NULL && strstr(e->msg, cfg->db) == NULL) {
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            rs_error_set(e, rc, "%s: %s", cfg->db, msg);
        }
        goto out;
    }
    rc = api_create(sv, cfg, &sv->api, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = dispatch_create(sv, cfg, &sv->dp, e);
    if (rc != RS_OK) {
        goto out;
    }
    uv_timer_start(&sv->tick, on_tick, SERVER_TICK_MS, SERVER_TICK_MS);
out:
    if (rc != RS_OK) {
        server_destroy(sv);
        return rc;
    }
    *out = sv;
    return RS_OK;
}

rs_err server_run(server *sv, rs_error *e)
{
    /* Jobs left finalisable by a crash, and leases that ran out while the
     * daemon was down, are handled before the first request. */
    on_tick(&sv->tick);
    int rv = uv_run(&sv->loop, UV_RUN_DEFAULT);
    if (rv != 0 && !sv->stop_started) {
        return rs_error_set(e, RS_EIO, "event loop ended unexpectedly");
    }
    return RS_OK;
}

void server_destroy(server *sv)
{
    if (sv == NULL) {
        return;
    }
    api_destroy(sv->api);
    dispatch_destroy(sv->dp);
    if (sv->mu_init) {
        /* Anything still queued (only on a failed start) gets its error. */
        uv_mutex_lock(&sv->mu);
        sv->stopping = true;
        srv_item *it = sv->head;
        sv->head = NULL;
        sv->tail = NULL;
        uv_mutex_unlock(&sv->mu);
        while (it != NULL) {
            srv_item *next = it->next;
            it->ops->reply(sv, it, false);
            it = next;
        }
    }
    if (sv->loop_init) {
        close_handles(sv);
        uv_run(&sv->loop, UV_RUN_DEFAULT);
        uv_loop_close(&sv->loop);
    }
    store_close(sv->st);
    if (sv->mu_init) {
        uv_mutex_destroy(&sv->mu);
    }
    free(sv);
}
