/*
 * server.c: the loop that owns the store: group commit of requests, the
 * timers (lease expiry, job finalisation) and a clean stop on SIGTERM.
 *
 * Requests arrive from nng's threads through a mutex-protected FIFO and one
 * uv_async_t. libuv coalesces wake-ups, so while one batch commits (an fsync
 * of a few ms) the next requests pile up and go into the next batch: the
 * commit rate stays at what the disk does while the request rate scales
 * with the batch size. Replies leave only after their batch committed.
 *
 * Finalising a job can take seconds (a 1080p removal job's ledger work
 * decodes and diffs every frame), so it never runs on the loop: phase A on
 * the loop reads the job from the store, phase B on libuv's threadpool runs
 * the kind's finalize and the ledger's file work, phase C back on the loop
 * appends the events, registers clips and completes the job in one
 * transaction (docs/ARCHITECTURE.md "Finalisation").
 */
#include "server.h"

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
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
/* Jobs being finalised at once (phase B queued or running); libuv's pool
 * runs four at a time. */
#define SERVER_FINALIZE_INFLIGHT 16
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
    uv_timer_t fin_timer; /* runs phase C of finished finalisations */
    int nhandles;         /* handles initialised, in the order above */
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
    /* Finalisations (loop only): in flight (phase A done, C not yet) and
     * the ones whose phase B ended, waiting for fin_timer. */
    struct fin_work *fin_busy;
    int nfin_busy;
    struct fin_work *fin_done;
    /* Set at stop: phase B gives up between frames. Read by pool threads. */
    atomic_bool fin_abandon;
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

/*
 * One job being finalised. Phase A (loop) fills job/results/lf; phase B
 * (pool thread) owns it until its after-work callback and fills
 * rc/fe/job_result/clips; phase C (loop) completes the job.
 */
typedef struct fin_work {
    uv_work_t req;
    server *sv;
    int64_t job_id;
    struct fin_work *next; /* sv->fin_busy, then sv->fin_done */
    cJSON *job;
    cJSON *results;
    const task_kind *kind;
    const char *project; /* in job */
    const char *kind_name;
    const cJSON *params;
    api_ledger_fin *lf;
    rs_err rc; /* phase B */
    rs_error fe;
    cJSON *job_result;
    cJSON *clips;
} fin_work;

static void fin_work_destroy(fin_work *w)
{
    if (w == NULL) {
        return;
    }
    api_ledger_fin_destroy(w->lf);
    cJSON_Delete(w->job);
    cJSON_Delete(w->results);
    cJSON_Delete(w->job_result);
    cJSON_Delete(w->clips);
    free(w);
}

static bool fin_stop(void *ud)
{
    server *sv = ud;
    return atomic_load(&sv->fin_abandon);
}

/* Phase B, on a pool thread: no store, no loop state. */
static void fin_work_run(uv_work_t *req)
{
    fin_work *w = req->data;
    server *sv = w->sv;
    rs_error_clear(&w->fe);
    if (w->kind == NULL) {
        w->rc = rs_error_set(&w->fe, RS_EINVAL, "finalize: job has an unknown kind");
        return;
    }
    task_env env = {
        .media_roots = (const char *const *)sv->cfg->media_roots,
        .nmedia_roots = sv->cfg->nmedia_roots,
        .data_dir = sv->cfg->data_dir,
        .project = w->project,
        .job_id = w->job_id,
    };
    w->rc = w->kind->finalize(w->params, w->results, &env, &w->job_result, &w->clips, &w->fe);
    if (w->rc == RS_OK) {
        /* Compliance ledger (ledger/): the file work of ingest and
         * alteration events; they are appended in phase C. */
        w->rc = api_ledger_fin_prepare(w->lf, w->job_result, w->clips, fin_stop, sv, &w->fe);
    }
    if (w->rc == RS_OK) {
        /* A trained model's checkpoint copy, renamed into place in phase C. */
        w->rc = api_model_fin_stage(sv->cfg->data_dir, w->project, w->job_result, &w->fe);
    }
}

static void fin_list_remove(fin_work **head, fin_work *w)
{
    for (fin_work **p = head; *p != NULL; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            w->next = NULL;
            return;
        }
    }
}

static void on_fin_timer(uv_timer_t *h);

/* Loop thread, when phase B ended (or was cancelled before it started). */
static void fin_work_after(uv_work_t *req, int status)
{
    fin_work *w = req->data;
    server *sv = w->sv;
    if (status != 0 || sv->stop_started || w->rc == RS_ECANCELED) {
        /* Stopping: nothing was appended, the job stays finalisable and is
         * finalised again after the restart (the work is idempotent). */
        fin_list_remove(&sv->fin_busy, w);
        sv->nfin_busy--;
        fin_work_destroy(w);
        return;
    }
    /* Phase C for every finalisation that ends in this loop iteration runs
     * in one transaction, as the old in-loop finalisation batched them. */
    bool first = sv->fin_done == NULL;
    fin_list_remove(&sv->fin_busy, w);
    w->next = sv->fin_done;
    sv->fin_done = w;
    if (first) {
        uv_timer_start(&sv->fin_timer, on_fin_timer, 0, 0);
    }
}

/* Phase C of one job, inside the open batch: clips, model, ledger events,
 * complete. A job whose recording fails leaves none of its rows (store_mark_*)
 * and fails with the reason. */
static void fin_work_commit(server *sv, fin_work *w, int64_t now_ms)
{
    char *result_json = NULL;
    rs_error e;
    rs_error_clear(&e);
    /* Still what phase A found? A cancel while phase B ran ends it. */
    bool still = false;
    if (store_job_finalisable(sv->st, w->job_id, &still, &e) != RS_OK) {
        RS_ERROR("finalize", "job %" PRId64 ": %s", w->job_id, rs_error_text(&e));
        return; /* left finalisable: a later tick tries again */
    }
    if (!still) {
        RS_INFO("finalize", "job %" PRId64 ": changed while finalising, left as it is", w->job_id);
        return;
    }
    rs_err rc = w->rc;
    if (rc == RS_OK && store_mark_set(sv->st, &e) != RS_OK) {
        RS_ERROR("finalize", "job %" PRId64 ": %s", w->job_id, rs_error_text(&e));
        return; /* the batch is in trouble; the job stays finalisable */
    }
    if (rc == RS_OK && w->clips != NULL) {
        rc = register_clips(sv, w->clips, w->project, w->job_id, now_ms, &w->fe);
    }
    if (rc == RS_OK) {
        /* Model registry: a training job's model gets its row (api_model.c). */
        rc = api_model_job_finalized(sv, w->project, w->job_id, w->job_result, now_ms, &w->fe);
    }
    if (rc == RS_OK) {
        /* Compliance ledger (ledger/): ingest and alteration events. */
        rc = api_ledger_fin_append(sv, w->lf, now_ms, &w->fe);
    }
    if (rc == RS_OK) {
        result_json = w->job_result != NULL ? cJSON_PrintUnformatted(w->job_result) : NULL;
        if (result_json == NULL) {
            result_json = strdup("{}");
        }
        if (result_json == NULL) {
            rc = rs_error_set(&w->fe, RS_ENOMEM, "out of memory");
        }
    }
    if (rc == RS_OK) {
        rc = store_mark_keep(sv->st, &w->fe);
    }
    if (rc == RS_OK) {
        server_crash_point(sv, "finalize");
        rc = store_job_complete(sv->st, w->job_id, result_json, NULL, now_ms, &e);
    } else {
        if (w->rc == RS_OK) {
            rs_error ue;
            rs_error_clear(&ue);
            if (store_mark_undo(sv->st, &ue) != RS_OK) {
                RS_ERROR("finalize", "job %" PRId64 ": %s", w->job_id, rs_error_text(&ue));
            }
        }
        RS_WARN("finalize", "job %" PRId64 " failed to finalise: %s", w->job_id,
                rs_error_text(&w->fe));
        rc = store_job_complete(sv->st, w->job_id, NULL, rs_error_text(&w->fe), now_ms, &e);
    }
    if (rc != RS_OK) {
        RS_ERROR("finalize", "job %" PRId64 ": %s", w->job_id, rs_error_text(&e));
    }
    free(result_json);
}

static void finalize_jobs(server *sv);

static void on_fin_timer(uv_timer_t *h)
{
    server *sv = h->data;
    fin_work *done = sv->fin_done;
    sv->fin_done = NULL;
    if (done == NULL) {
        return;
    }
    rs_error e;
    rs_error_clear(&e);
    int64_t now = rs_clock_wall_ms();
    bool open = store_batch_begin(sv->st, &e) == RS_OK;
    if (!open) {
        RS_ERROR("finalize", "%s", rs_error_text(&e));
    }
    /* Oldest first: the list was built by prepending. */
    fin_work *rev = NULL;
    while (done != NULL) {
        fin_work *next = done->next;
        done->next = rev;
        rev = done;
        done = next;
    }
    for (fin_work *w = rev; open && w != NULL; w = w->next) {
        fin_work_commit(sv, w, now);
    }
    if (open && store_batch_commit(sv->st, &e) != RS_OK) {
        /* Nothing is lost: the jobs stay finalisable and the tick retries. */
        RS_ERROR("finalize", "commit: %s", rs_error_text(&e));
        store_batch_rollback(sv->st);
    }
    while (rev != NULL) {
        fin_work *next = rev->next;
        sv->nfin_busy--;
        fin_work_destroy(rev);
        rev = next;
    }
    finalize_jobs(sv);
}

static bool fin_in_flight(const server *sv, int64_t job_id)
{
    for (const fin_work *w = sv->fin_busy; w != NULL; w = w->next) {
        if (w->job_id == job_id) {
            return true;
        }
    }
    for (const fin_work *w = sv->fin_done; w != NULL; w = w->next) {
        if (w->job_id == job_id) {
            return true;
        }
    }
    return false;
}

/* Phase A, on the loop: what phase B needs from the store, then queued. */
static void fin_start(server *sv, int64_t job_id)
{
    rs_error e;
    rs_error_clear(&e);
    fin_work *w = calloc(1, sizeof *w);
    if (w == NULL) {
        RS_ERROR("finalize", "job %" PRId64 ": out of memory", job_id);
        return;
    }
    w->sv = sv;
    w->job_id = job_id;
    w->req.data = w;
    rs_err rc = store_job_get(sv->st, job_id, &w->job, &e);
    if (rc == RS_OK) {
        rc = store_job_task_results(sv->st, job_id, &w->results, &e);
    }
    if (rc == RS_OK) {
        const cJSON *kind_name = cJSON_GetObjectItemCaseSensitive(w->job, "kind");
        const cJSON *project = cJSON_GetObjectItemCaseSensitive(w->job, "project");
        w->params = cJSON_GetObjectItemCaseSensitive(w->job, "params");
        w->kind_name = cJSON_IsString(kind_name) ? kind_name->valuestring : "";
        w->project = cJSON_IsString(project) ? project->valuestring : NULL;
        w->kind = task_kind_find(w->kind_name);
        if (w->project == NULL) {
            w->kind = NULL; /* phase B fails the job, as an unknown kind */
        }
        if (w->kind != NULL) {
            rc = api_ledger_fin_create(sv, w->project, job_id, w->kind_name, w->params, &w->lf, &e);
        }
    }
    if (rc == RS_OK) {
        int rv = uv_queue_work(&sv->loop, &w->req, fin_work_run, fin_work_after);
        if (rv != 0) {
            rc = rs_error_set(&e, RS_EIO, "cannot queue: %s", uv_strerror(rv));
        }
    }
    if (rc != RS_OK) {
        /* Left finalisable; the next tick tries again. */
        RS_ERROR("finalize", "job %" PRId64 ": %s", job_id, rs_error_text(&e));
        fin_work_destroy(w);
        return;
    }
    w->next = sv->fin_busy;
    sv->fin_busy = w;
    sv->nfin_busy++;
}

/* Starts the finalisation of jobs whose tasks all succeeded, skipping the
 * ones already in flight. */
static void finalize_jobs(server *sv)
{
    if (sv->stop_started || sv->nfin_busy >= SERVER_FINALIZE_INFLIGHT) {
        return;
    }
    cJSON *ids = NULL;
    rs_error e;
    rs_error_clear(&e);
    /* In-flight jobs are still listed: ask for enough to see past them. */
    if (store_jobs_to_finalize(sv->st, SERVER_FINALIZE_BATCH + sv->nfin_busy, &ids, &e) != RS_OK) {
        RS_ERROR("finalize", "%s", rs_error_text(&e));
        return;
    }
    const cJSON *id = NULL;
    cJSON_ArrayForEach(id, ids)
    {
        int64_t job_id = (int64_t)id->valuedouble;
        if (sv->nfin_busy >= SERVER_FINALIZE_INFLIGHT) {
            break;
        }
        if (!fin_in_flight(sv, job_id)) {
            fin_start(sv, job_id);
        }
    }
    cJSON_Delete(ids);
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
    uv_handle_t *hs[] = {(uv_handle_t *)&sv->wake,   (uv_handle_t *)&sv->tick,
                         (uv_handle_t *)&sv->grace,  (uv_handle_t *)&sv->sigterm,
                         (uv_handle_t *)&sv->sigint, (uv_handle_t *)&sv->fin_timer};
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
    /* Finalisations: the ones whose file work is done complete now; the
     * ones still queued are cancelled and the running ones give up between
     * frames (a kind's own finalize runs to its end: uv_run waits for it,
     * the grace timer closes no handle it uses). The abandoned jobs stay
     * finalisable and are finalised after the restart. */
    uv_timer_stop(&sv->fin_timer);
    on_fin_timer(&sv->fin_timer);
    atomic_store(&sv->fin_abandon, true);
    for (fin_work *w = sv->fin_busy; w != NULL; w = w->next) {
        uv_cancel((uv_req_t *)&w->req);
    }
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
    atomic_init(&sv->fin_abandon, false);
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
    if (rv == 0) {
        sv->nhandles++;
        rv = uv_timer_init(&sv->loop, &sv->fin_timer);
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
    sv->fin_timer.data = sv;
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
        atomic_store(&sv->fin_abandon, true);
        close_handles(sv);
        uv_run(&sv->loop, UV_RUN_DEFAULT);
        uv_loop_close(&sv->loop);
    }
    /* Finalisations that ended after the stop flushed (none in practice). */
    while (sv->fin_done != NULL) {
        fin_work *next = sv->fin_done->next;
        fin_work_destroy(sv->fin_done);
        sv->fin_done = next;
    }
    store_close(sv->st);
    if (sv->mu_init) {
        uv_mutex_destroy(&sv->mu);
    }
    free(sv);
}
