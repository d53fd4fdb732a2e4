/*
 * main.c: rushes-worker. Three modes:
 *   rushes-worker [flags]               the lease loop (below)
 *   rushes-worker --list-devices [--json]
 *   rushes-worker task KIND             one task attempt (taskchild.c)
 *
 * The lease loop lives on one libuv loop: it says hello with its devices
 * and kinds, asks for a task whenever a slot is free, heartbeats the
 * attempts it runs, streams their progress and log lines, and reports each
 * outcome until the daemon answers. Network replies arrive through net.c
 * (nng aio -> uv_async), tasks run in children through runner.c. It never
 * exits because the daemon is away; SIGTERM stops leasing, kills the
 * children, says bye and exits 0.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "clock.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "runner.h"
#include "task.h"
#include "taskchild.h"
#include "vkcaps.h"

#define LOG_COMP "worker"
#define CONFIG_MAX_BYTES 65536
#define DEFAULT_SERVER "tcp://127.0.0.1:8641"
#define REQ_TIMEOUT_MS 6000
#define BYE_TIMEOUT_MS 2000
#define TICK_MS 50
#define PROGRESS_MIN_GAP_MS 250 /* ~4 progress messages a second per task */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define STOP_REPORT_WAIT_MS 3000 /* on SIGTERM, how long finished reports may still take */

typedef struct wk_config {
    char server[512];
    char name[PROTO_MAX_NAME];
    char pool[PROTO_MAX_NAME];
    uint32_t slots;
    char device[PROTO_MAX_NAME];
    char config_path[PATH_MAX];
    bool list_devices;
    bool json;
    bool help;
} wk_config;

struct worker;

typedef struct wk_task {
    struct worker *w;
    struct wk_task *next;
    int64_t attempt_id;
    int64_t task_id;
    int64_t job_id;
    char kind[PROTO_MAX_NAME];
    runner *run; /* NULL once the attempt has ended */
    bool quiet;  /* killed because the worker stops or the daemon forgot it: no report */

    /* progress stream */
    double frac; /* -1 until the first progress line */
    bool frac_dirty;
    char *pending[PROTO_MAX_LOG_LINES];
    size_t npending;
    size_t dropped;
    bool progress_inflight;
    int64_t progress_last_ms;

    /* report, once ended */
    bool ended;
    proto_report report; /* owns lines and result */
    bool report_inflight;
    int64_t report_due_ms;
    uint32_t report_backoff_ms;
} wk_task;

typedef struct worker {
    uv_loop_t *loop;
    wk_config cfg;
    net *net;
    char exe[PATH_MAX];
    char device_env[32]; /* RUSHES_DEVICE for children; "" = not set */
    proto_device devices[PROTO_MAX_DEVICES];
    size_t ndevices;

    int64_t worker_id; /* 0 = not registered */
    uint32_t heartbeat_ms;
    bool hello_inflight;
    int64_t hello_due_ms;
    uint32_t hello_backoff_ms;
    bool lease_inflight;
    int64_t lease_due_ms;
    uint32_t lease_backoff_ms;
    bool hb_inflight;
    int64_t hb_due_ms;

    wk_task *tasks;
    size_t nrunning;

    bool stopping;
    int64_t stop_since_ms;
    bool bye_sent;
    bool closing;

    uv_timer_t tick;
    uv_signal_t sigterm;
    uv_signal_t sigint;
} worker;

static void pump(worker *w);

/* ---------- small helpers ---------- */

static uint32_t backoff_next(uint32_t cur)
{
    if (cur < BACKOFF_MIN_MS) {
        return BACKOFF_MIN_MS;
    }
    return cur * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : cur * 2;
}

static char *dup_line(const char *s)
{
    /* proto refuses lines over PROTO_MAX_LOG_LINE bytes. */
    size_t n = strnlen(s, PROTO_MAX_LOG_LINE - 1);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void lines_free(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(lines[i]);
        lines[i] = NULL;
    }
}

static wk_task *task_find(worker *w, int64_t attempt_id)
{
    for (wk_task *t = w->tasks; t != NULL; t = t->next) {
        if (t->attempt_id == attempt_id) {
            return t;
        }
    }
    return NULL;
}

static void task_free(worker *w, wk_task *t)
{
    wk_task **pp = &w->tasks;
    while (*pp != NULL && *pp != t) {
        pp = &(*pp)->next;
    }
    if (*pp == t) {
        *pp = t->next;
    }
    lines_free(t->pending, t->npending);
    lines_free(t->report.lines, t->report.nlines);
    cJSON_Delete(t->report.result);
    free(t);
}

/* A reply that says the daemon does not know us: register again, keep tasks. */
static bool is_unknown_worker(const proto_msg *reply)
{
    return reply->type == PROTO_ERROR && strcmp(reply->u.error.code, "unknown_worker") == 0;
}

static void forget_registration(worker *w)
{
    if (w->worker_id != 0) {
        RS_WARN(LOG_COMP, "daemon no longer knows worker %lld; saying hello again",
                (long long)w->worker_id);
    }
    w->worker_id = 0;
    w->hello_due_ms = 0;
}

/* ---------- hello ---------- */

static void on_hello(void *ud, rs_err rc, proto_msg *reply, const rs_error *e)
{
    worker *w = ud;
    w->hello_inflight = false;
    if (rc != RS_OK || reply->type != PROTO_HELLO) {
        w->hello_backoff_ms = backoff_next(w->hello_backoff_ms);
        w->hello_due_ms = rs_clock_mono_ms() + w->hello_backoff_ms;
        if (rc != RS_OK) {
            RS_WARN(LOG_COMP, "hello: %s; retrying in %u ms", rs_error_text(e),
                    w->hello_backoff_ms);
        } else if (reply->type == PROTO_ERROR) {
            RS_ERROR(LOG_COMP, "hello refused: %s: %s; retrying in %u ms", reply->u.error.code,
                     reply->u.error.message, w->hello_backoff_ms);
        } else {
            RS_ERROR(LOG_COMP, "hello: unexpected %s reply", proto_type_name(reply->type));
        }
        pump(w);
        return;
    }
    w->hello_backoff_ms = 0;
    w->worker_id = reply->u.hello_reply.worker_id;
    w->heartbeat_ms =
        reply->u.hello_reply.heartbeat_ms > 0 ? reply->u.hello_reply.heartbeat_ms : 2000;
    w->hb_due_ms = rs_clock_mono_ms();
    w->lease_due_ms = 0;
    RS_INFO(LOG_COMP, "registered with %s as worker %lld (heartbeat %u ms)", w->cfg.server,
            (long long)w->worker_id, w->heartbeat_ms);
    pump(w);
}

static void send_hello(worker *w)
{
    proto_msg m;
    proto_msg_init(&m);
    m.type = PROTO_HELLO;
    proto_hello *h = &m.u.hello;
    snprintf(h->worker_name, sizeof h->worker_name, "%s", w->cfg.name);
    snprintf(h->pool, sizeof h->pool, "%s", w->cfg.pool);
    /* The farm's pool secret (rushesd worker_secret), from the environment
     * so it stays out of argv and process listings. */
    const char *secret = getenv("RUSHES_WORKER_SECRET");
    snprintf(h->secret, sizeof h->secret, "%s", secret != NULL ? secret : "");
    h->slots = w->cfg.slots;
    h->ndevices = w->ndevices;
    memcpy(h->devices, w->devices, sizeof h->devices[0] * w->ndevices);
    /* Every kind this binary has. All of today's kinds run on the CPU
     * (ingest, noop); GPU kinds will be left out here when ndevices is 0. */
    const char *const *names = task_kind_names();
    for (size_t i = 0; names[i] != NULL && h->nkinds < PROTO_MAX_KINDS; i++) {
        snprintf(h->kinds[h->nkinds], sizeof h->kinds[0], "%s", names[i]);
        h->nkinds++;
    }
    rs_error err;
    rs_error_clear(&err);
    if (net_request(w->net, &m, REQ_TIMEOUT_MS, on_hello, w, &err) != RS_OK) {
        RS_ERROR(LOG_COMP, "hello: %s", rs_error_text(&err));
        w->hello_backoff_ms = backoff_next(w->hello_backoff_ms);
        w->hello_due_ms = rs_clock_mono_ms() + w->hello_backoff_ms;
        return;
    }
    w->hello_inflight = true;
}

/* ---------- tasks: runner callbacks ---------- */

static void task_push_line(wk_task *t, const char *line)
{
    if (t->npending == PROTO_MAX_LOG_LINES) {
        /* The daemon is slow or away: drop the oldest, say how many. */
        free(t->pending[0]);
        memmove(t->pending, t->pending + 1, sizeof t->pending[0] * (PROTO_MAX_LOG_LINES - 1));
        t->npending--;
        t->dropped++;
    }
    char *d = dup_line(line);
    if (d != NULL) {
        t->pending[t->npending++] = d;
    }
}

static void on_task_progress(void *ud, runner *r, double frac, const char *msg)
{
    wk_task *t = ud;
    t->frac = frac;
    t->frac_dirty = true;
    if (msg != NULL) {
        task_push_line(t, msg);
    }
    pump(t->w);
}

static void on_task_log(void *ud, runner *r, const char *line)
{
    wk_task *t = ud;
    task_push_line(t, line);
    pump(t->w);
}

static void on_task_done(void *ud, runner *r, runner_result *res)
{
    wk_task *t = ud;
    worker *w = t->w;
    t->run = NULL;
    t->ended = true;
    w->nrunning--;
    if (res->outcome == PROTO_OUTCOME_SUCCEEDED) {
        rs_log(runner_is_inline(r) ? RS_LOG_DEBUG : RS_LOG_INFO, LOG_COMP,
               "attempt %lld (%s) succeeded", (long long)t->attempt_id, t->kind);
    } else {
        RS_INFO(LOG_COMP, "attempt %lld (%s) failed: %s", (long long)t->attempt_id, t->kind,
                res->error);
    }
    /* Lines still waiting to stream are in the report's last lines. */
    lines_free(t->pending, t->npending);
    t->npending = 0;
    t->frac_dirty = false;

    proto_report *rep = &t->report;
    rep->attempt_id = t->attempt_id;
    rep->outcome = res->outcome;
    rep->exit_code = res->exit_code;
    rep->signal = res->signal;
    snprintf(rep->error, sizeof rep->error, "%s", res->error);
    rep->result = res->result;
    res->result = NULL;
    for (size_t i = 0; i < res->nlines && rep->nlines < PROTO_MAX_LOG_LINES; i++) {
        char *d = dup_line(res->lines[i]);
        if (d != NULL) {
            rep->lines[rep->nlines++] = d;
        }
    }
    if (rep->result != NULL && proto_result_hash(rep->result, rep->result_hash) != RS_OK) {
        rep->result_hash[0] = '\0';
    }
    t->report_due_ms = 0;
    pump(w);
}

/* ---------- lease ---------- */

static void start_task(worker *w, proto_lease_reply *lr)
{
    wk_task *t = calloc(1, sizeof *t);
    if (t == NULL) {
        RS_ERROR(LOG_COMP, "attempt %lld: out of memory", (long long)lr->attempt_id);
        return;
    }
    t->w = w;
    t->attempt_id = lr->attempt_id;
    t->task_id = lr->task_id;
    t->job_id = lr->job_id;
    t->frac = -1;
    snprintf(t->kind, sizeof t->kind, "%s", lr->kind);
    t->next = w->tasks;
    w->tasks = t;

    runner_opts o = {
        .exe = w->exe,
        .kind = lr->kind,
        .params = lr->params,
        .attempt_id = lr->attempt_id,
        .device = w->device_env[0] != '\0' ? w->device_env : NULL,
        .cb = {.ud = t, .progress = on_task_progress, .log = on_task_log, .done = on_task_done},
    };
    rs_error err;
    rs_error_clear(&err);
    if (runner_start(w->loop, &o, &t->run, &err) != RS_OK) {
        /* Could not even start it: report the failure like any other. */
        RS_ERROR(LOG_COMP, "attempt %lld: %s", (long long)t->attempt_id, rs_error_text(&err));
        t->ended = true;
        t->report.attempt_id = t->attempt_id;
        t->report.outcome = PROTO_OUTCOME_FAILED;
        t->report.exit_code = -1;
        snprintf(t->report.error, sizeof t->report.error, "%s", rs_error_text(&err));
        return;
    }
    w->nrunning++;
    /* Inline attempts are the benchmark's thousands a second: keep them quiet. */
    rs_log(runner_is_inline(t->run) ? RS_LOG_DEBUG : RS_LOG_INFO, LOG_COMP,
           "attempt %lld started: job %lld task %lld kind %s%s", (long long)t->attempt_id,
           (long long)t->job_id, (long long)t->task_id, t->kind,
           runner_is_inline(t->run) ? " (inline)" : "");
}

static void on_lease(void *ud, rs_err rc, proto_msg *reply, const rs_error *e)
{
    worker *w = ud;
    w->lease_inflight = false;
    int64_t now = rs_clock_mono_ms();
    if (rc != RS_OK) {
        w->lease_backoff_ms = backoff_next(w->lease_backoff_ms);
        w->lease_due_ms = now + w->lease_backoff_ms;
        RS_WARN(LOG_COMP, "lease: %s; retrying in %u ms", rs_error_text(e), w->lease_backoff_ms);
    } else if (is_unknown_worker(reply)) {
        forget_registration(w);
    } else if (reply->type != PROTO_LEASE) {
        w->lease_backoff_ms = backoff_next(w->lease_backoff_ms);
        w->lease_due_ms = now + w->lease_backoff_ms;
        RS_ERROR(LOG_COMP, "lease refused: %s",
                 reply->type == PROTO_ERROR ? reply->u.error.message
                                            : proto_type_name(reply->type));
    } else if (!reply->u.lease_reply.has_task) {
        w->lease_backoff_ms = 0;
        uint32_t retry = reply->u.lease_reply.retry_ms;
        if (retry < 10) {
            retry = 10;
        }
        if (retry > 30000) {
            retry = 30000;
        }
        w->lease_due_ms = now + retry;
    } else {
        w->lease_backoff_ms = 0;
        w->lease_due_ms = 0;
        if (w->stopping) {
            /* Leased while SIGTERM arrived: the lease expires on the daemon. */
            RS_WARN(LOG_COMP, "attempt %lld leased while stopping; not started",
                    (long long)reply->u.lease_reply.attempt_id);
        } else {
            start_task(w, &reply->u.lease_reply);
        }
    }
    pump(w);
}

static void send_lease(worker *w)
{
    proto_msg m;
    proto_msg_init(&m);
    m.type = PROTO_LEASE;
    m.u.lease.worker_id = w->worker_id;
    rs_error err;
    rs_error_clear(&err);
    if (net_request(w->net, &m, REQ_TIMEOUT_MS, on_lease, w, &err) != RS_OK) {
        RS_ERROR(LOG_COMP, "lease: %s", rs_error_text(&err));
        w->lease_backoff_ms = backoff_next(w->lease_backoff_ms);
        w->lease_due_ms = rs_clock_mono_ms() + w->lease_backoff_ms;
        return;
    }
    w->lease_inflight = true;
}

/* ---------- heartbeat ---------- */

static void cancel_attempt(worker *w, int64_t id, bool unknown)
{
    wk_task *t = task_find(w, id);
    if (t == NULL || t->run == NULL) {
        return;
    }
    RS_INFO(LOG_COMP, "attempt %lld: %s by the daemon; killing it", (long long)id,
            unknown ? "no longer leased" : "cancelled");
    if (unknown) {
        t->quiet = true;
    }
    runner_cancel(t->run);
}

static void on_heartbeat(void *ud, rs_err rc, proto_msg *reply, const rs_error *e)
{
    worker *w = ud;
    w->hb_inflight = false;
    if (rc != RS_OK) {
        RS_WARN(LOG_COMP, "heartbeat: %s", rs_error_text(e));
    } else if (is_unknown_worker(reply)) {
        forget_registration(w);
    } else if (reply->type == PROTO_HEARTBEAT) {
        const proto_heartbeat_reply *hr = &reply->u.heartbeat_reply;
        for (size_t i = 0; i < hr->ncancel; i++) {
            cancel_attempt(w, hr->cancel[i], false);
        }
        for (size_t i = 0; i < hr->nunknown; i++) {
            cancel_attempt(w, hr->unknown[i], true);
        }
    } else if (reply->type == PROTO_ERROR) {
        RS_WARN(LOG_COMP, "heartbeat refused: %s: %s", reply->u.error.code, reply->u.error.message);
    }
    pump(w);
}

static void send_heartbeat(worker *w)
{
    proto_msg m;
    proto_msg_init(&m);
    m.type = PROTO_HEARTBEAT;
    m.u.heartbeat.worker_id = w->worker_id;
    for (wk_task *t = w->tasks; t != NULL && m.u.heartbeat.nattempts < PROTO_MAX_IDS; t = t->next) {
        if (t->run != NULL) {
            m.u.heartbeat.attempt_ids[m.u.heartbeat.nattempts++] = t->attempt_id;
        }
    }
    rs_error err;
    rs_error_clear(&err);
    w->hb_due_ms = rs_clock_mono_ms() + w->heartbeat_ms;
    if (net_request(w->net, &m, w->heartbeat_ms > 1000 ? w->heartbeat_ms : 1000, on_heartbeat, w,
                    &err) != RS_OK) {
        RS_ERROR(LOG_COMP, "heartbeat: %s", rs_error_text(&err));
        return;
    }
    w->hb_inflight = true;
}

/* ---------- progress ---------- */

/* Requests carry the task's id, not its pointer: a task may be gone (freed)
 * by the time a reply arrives. */
typedef struct task_req {
    worker *w;
    int64_t attempt_id;
    char *lines[PROTO_MAX_LOG_LINES];
    size_t nlines;
} task_req;

static void on_progress(void *ud, rs_err rc, proto_msg *reply, const rs_error *e)
{
    task_req *tr = ud;
    worker *w = tr->w;
    wk_task *t = task_find(w, tr->attempt_id);
    lines_free(tr->lines, tr->nlines);
    int64_t attempt_id = tr->attempt_id;
    free(tr);
    if (t != NULL) {
        t->progress_inflight = false;
    }
    if (rc != RS_OK) {
        RS_DEBUG(LOG_COMP, "progress of attempt %lld: %s (lines dropped)", (long long)attempt_id,
                 rs_error_text(e));
    } else if (is_unknown_worker(reply)) {
        forget_registration(w);
    } else if (reply->type == PROTO_PROGRESS && reply->u.progress_reply.cancel) {
        cancel_attempt(w, attempt_id, false);
    }
    pump(w);
}

static void send_progress(worker *w, wk_task *t, int64_t now)
{
    task_req *tr = calloc(1, sizeof *tr);
    if (tr == NULL) {
        return;
    }
    tr->w = w;
    tr->attempt_id = t->attempt_id;
    if (t->dropped > 0) {
        char note[64];
        snprintf(note, sizeof note, "(%zu log lines dropped)", t->dropped);
        tr->lines[tr->nlines++] = dup_line(note);
        t->dropped = 0;
    }
    size_t take = t->npending;
    if (take > PROTO_MAX_LOG_LINES - tr->nlines) {
        take = PROTO_MAX_LOG_LINES - tr->nlines;
    }
    memcpy(tr->lines + tr->nlines, t->pending, sizeof t->pending[0] * take);
    tr->nlines += take;
    memmove(t->pending, t->pending + take, sizeof t->pending[0] * (t->npending - take));
    t->npending -= take;

    proto_msg m;
    proto_msg_init(&m);
    m.type = PROTO_PROGRESS;
    m.u.progress.worker_id = w->worker_id;
    m.u.progress.attempt_id = t->attempt_id;
    m.u.progress.progress = t->frac;
    for (size_t i = 0; i < tr->nlines; i++) {
        if (tr->lines[i] != NULL) {
            m.u.progress.lines[m.u.progress.nlines++] = tr->lines[i];
        }
    }
    t->frac_dirty = false;
    t->progress_last_ms = now;
    rs_error err;
    rs_error_clear(&err);
    /* The message borrows tr's lines; tr frees them when answered. */
    if (net_request(w->net, &m, REQ_TIMEOUT_MS, on_progress, tr, &err) != RS_OK) {
        RS_WARN(LOG_COMP, "progress: %s", rs_error_text(&err));
        lines_free(tr->lines, tr->nlines);
        free(tr);
        return;
    }
    t->progress_inflight = true;
}

/* ---------- report ---------- */

static void on_report(void *ud, rs_err rc, proto_msg *reply, const rs_error *e)
{
    task_req *tr = ud;
    worker *w = tr->w;
    wk_task *t = task_find(w, tr->attempt_id);
    free(tr);
    if (t == NULL) {
        pump(w);
        return;
    }
    t->report_inflight = false;
    int64_t now = rs_clock_mono_ms();
    if (rc != RS_OK) {
        t->report_backoff_ms = backoff_next(t->report_backoff_ms);
        t->report_due_ms = now + t->report_backoff_ms;
        RS_WARN(LOG_COMP, "report of attempt %lld: %s; resending in %u ms",
                (long long)t->attempt_id, rs_error_text(e), t->report_backoff_ms);
    } else if (is_unknown_worker(reply)) {
        forget_registration(w);
        t->report_due_ms = 0;
    } else if (reply->type == PROTO_REPORT) {
        RS_DEBUG(LOG_COMP, "report of attempt %lld %s", (long long)t->attempt_id,
                 reply->u.report_reply.accepted ? "accepted" : "was a duplicate or late");
        task_free(w, t);
    } else if (reply->type == PROTO_ERROR && strcmp(reply->u.error.code, "internal") == 0) {
        t->report_backoff_ms = backoff_next(t->report_backoff_ms);
        t->report_due_ms = now + t->report_backoff_ms;
        RS_WARN(LOG_COMP, "report of attempt %lld: daemon error %s; resending in %u ms",
                (long long)t->attempt_id, reply->u.error.message, t->report_backoff_ms);
    } else {
        /* Refused as malformed: sending it again cannot help. */
        RS_ERROR(LOG_COMP, "report of attempt %lld refused: %s", (long long)t->attempt_id,
                 reply->type == PROTO_ERROR ? reply->u.error.message
                                            : proto_type_name(reply->type));
        task_free(w, t);
    }
    pump(w);
}

static void send_report(worker *w, wk_task *t)
{
    task_req *tr = calloc(1, sizeof *tr);
    if (tr == NULL) {
        return;
    }
    tr->w = w;
    tr->attempt_id = t->attempt_id;
    proto_msg m;
    proto_msg_init(&m);
    m.type = PROTO_REPORT;
    m.u.report = t->report; /* borrows lines and result; t keeps ownership */
    m.u.report.worker_id = w->worker_id;
    rs_error err;
    rs_error_clear(&err);
    if (net_request(w->net, &m, REQ_TIMEOUT_MS, on_report, tr, &err) != RS_OK) {
        free(tr);
        RS_ERROR(LOG_COMP, "report of attempt %lld: %s", (long long)t->attempt_id,
                 rs_error_text(&err));
        if (err.code == RS_ENOMEM) {
            t->report_backoff_ms = backoff_next(t->report_backoff_ms);
            t->report_due_ms = rs_clock_mono_ms() + t->report_backoff_ms;
            return;
        }
        /* It does not encode (a result over the size cap, say): report the
         * failure without the result instead. */
        cJSON_Delete(t->report.result);
        t->report.result = NULL;
        t->report.result_hash[0] = '\0';
        t->report.outcome = PROTO_OUTCOME_FAILED;
        snprintf(t->report.error, sizeof t->report.error, "report could not be sent: %s",
                 rs_error_text(&err));
        t->report_due_ms = rs_clock_mono_ms() + BACKOFF_MIN_MS;
        return;
    }
    t->report_inflight = true;
}

/* ---------- the pump: everything due, from one place ---------- */

static void shutdown_now(worker *w);

static void on_bye(void *ud, rs_err rc, proto_msg *reply, const rs_error *e)
{
    worker *w = ud;
    if (rc != RS_OK) {
        RS_WARN(LOG_COMP, "bye: %s", rs_error_text(e));
    } else {
        RS_INFO(LOG_COMP, "said bye to the daemon");
    }
    shutdown_now(w);
}

static void stop_step(worker *w, int64_t now)
{
    if (w->bye_sent || w->nrunning > 0) {
        return;
    }
    bool reports_left = false;
    for (wk_task *t = w->tasks; t != NULL; t = t->next) {
        if (t->ended && !t->quiet) {
            reports_left = true;
        }
    }
    if (reports_left && w->worker_id != 0 && now - w->stop_since_ms < STOP_REPORT_WAIT_MS) {
        return;
    }
    w->bye_sent = true;
    if (w->worker_id == 0) {
        shutdown_now(w);
        return;
    }
    proto_msg m;
    proto_msg_init(&m);
    m.type = PROTO_BYE;
    m.u.bye.worker_id = w->worker_id;
    rs_error err;
    rs_error_clear(&err);
    if (net_request(w->net, &m, BYE_TIMEOUT_MS, on_bye, w, &err) != RS_OK) {
        RS_WARN(LOG_COMP, "bye: %s", rs_error_text(&err));
        shutdown_now(w);
    }
}

static void pump(worker *w)
{
    if (w->closing) {
        return;
    }
    int64_t now = rs_clock_mono_ms();
    /* Ended tasks nobody wants a report for go away now. */
    wk_task *t = w->tasks;
    while (t != NULL) {
        wk_task *next = t->next;
        if (t->ended && t->quiet && !t->report_inflight && !t->progress_inflight) {
            task_free(w, t);
        }
        t = next;
    }
    if (w->worker_id == 0) {
        if (!w->hello_inflight && now >= w->hello_due_ms && !w->stopping) {
            send_hello(w);
        }
        if (w->stopping) {
            stop_step(w, now);
        }
        return;
    }
    for (t = w->tasks; t != NULL; t = t->next) {
        if (t->ended && !t->quiet && !t->report_inflight && now >= t->report_due_ms) {
            send_report(w, t);
        } else if (t->run != NULL && !t->progress_inflight &&
                   (t->npending > 0 || t->frac_dirty || t->dropped > 0) &&
                   now - t->progress_last_ms >= PROGRESS_MIN_GAP_MS) {
            send_progress(w, t, now);
        }
    }
    if (!w->stopping && !w->lease_inflight && w->nrunning < w->cfg.slots &&
        now >= w->lease_due_ms) {
        send_lease(w);
    }
    if (!w->hb_inflight && now >= w->hb_due_ms) {
        send_heartbeat(w);
    }
    if (w->stopping) {
        stop_step(w, now);
    }
}

static void on_tick(uv_timer_t *tm)
{
    pump(tm->data);
}

static void on_closed_quietly(uv_handle_t *h)
{
}

/* Ends the loop. The socket is closed after uv_run returns, never from
 * here: this runs inside a net callback, and net_destroy frees requests. */
static void shutdown_now(worker *w)
{
    if (w->closing) {
        return;
    }
    w->closing = true;
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, on_closed_quietly);
    uv_close((uv_handle_t *)&w->sigterm, on_closed_quietly);
    uv_close((uv_handle_t *)&w->sigint, on_closed_quietly);
    uv_stop(w->loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    worker *w = s->data;
    if (w->stopping) {
        RS_WARN(LOG_COMP, "second %s: exiting now", strsignal(signum));
        /* Children die with us (PR_SET_PDEATHSIG in taskchild). */
        exit(0);
    }
    RS_INFO(LOG_COMP, "%s: stopping (no new leases, killing %zu running task(s))",
            strsignal(signum), w->nrunning);
    w->stopping = true;
    w->stop_since_ms = rs_clock_mono_ms();
    for (wk_task *t = w->tasks; t != NULL; t = t->next) {
        if (t->run != NULL) {
            /* The daemon requeues these when we say bye or our lease lapses. */
            t->quiet = true;
            runner_cancel(t->run);
        }
    }
    pump(w);
}

/* ---------- configuration ---------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: rushes-worker [--server URL] [--name NAME] [--pool POOL] [--slots N]\n"
               "                     [--device INDEX|NAME] [--config FILE]\n"
               "       rushes-worker --list-devices [--json]\n"
               "       rushes-worker task KIND   (internal: runs one task, params on stdin)\n"
               "\n"
               "  --server URL     daemon's worker endpoint (default " DEFAULT_SERVER ")\n"
               "  --name NAME      worker name (default HOSTNAME-PID)\n"
               "  --pool POOL      worker pool (default: the default pool)\n"
               "  --slots N        tasks run at once, 1..64 (default 1)\n"
               "  --device D       announce only Vulkan device D (index or name part);\n"
               "                   tasks see it as RUSHES_DEVICE\n"
               "  --config FILE    JSON with the same keys: server, name, pool, slots, device;\n"
               "                   flags given on the command line win\n"
               "  --list-devices   print the Vulkan devices and exit (--json for JSON)\n");
}

static rs_err set_slots(wk_config *c, const char *s, rs_error *e)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 64) {
        return rs_error_set(e, RS_EINVAL, "--slots %s: must be an integer in 1..64", s);
    }
    c->slots = (uint32_t)v;
    return RS_OK;
}

static rs_err set_str(char *dst, size_t cap, const char *flag, const char *v, rs_error *e)
{
    if (strlen(v) >= cap || v[0] == '\0') {
        return rs_error_set(e, RS_EINVAL, "%s: must be 1..%zu bytes", flag, cap - 1);
    }
    snprintf(dst, cap, "%s", v);
    return RS_OK;
}

static rs_err load_config(wk_config *c, const char *path, rs_error *e)
{
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    rs_err rc = rs_fs_read_all(path, CONFIG_MAX_BYTES, &text, &len, e);
    if (rc != RS_OK) {
        goto out;
    }
    root = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(root)) {
        rc = rs_error_set(e, RS_EINVAL, "%s: not a JSON object", path);
        goto out;
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, root)
    {
        char flag[64];
        snprintf(flag, sizeof flag, "%s: %s", path, it->string);
        if (strcmp(it->string, "slots") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 64 ||
                it->valuedouble != (double)(int)it->valuedouble) {
                rc = rs_error_set(e, RS_EINVAL, "%s: must be an integer in 1..64", flag);
                goto out;
            }
            c->slots = (uint32_t)it->valuedouble;
            continue;
        }
        char *dst = NULL;
        size_t cap = 0;
        if (strcmp(it->string, "server") == 0) {
            dst = c->server;
            cap = sizeof c->server;
        } else if (strcmp(it->string, "name") == 0) {
            dst = c->name;
            cap = sizeof c->name;
        } else if (strcmp(it->string, "pool") == 0) {
            dst = c->pool;
            cap = sizeof c->pool;
        } else if (strcmp(it->string, "device") == 0) {
            dst = c->device;
            cap = sizeof c->device;
        } else {
            rc = rs_error_set(e, RS_EINVAL,
                              "%s: unknown key (known: server, name, pool, slots, device)", flag);
            goto out;
        }
        if (cJSON_IsNumber(it) && strcmp(it->string, "device") == 0) {
            snprintf(c->device, sizeof c->device, "%d", (int)it->valuedouble);
            continue;
        }
        if (!cJSON_IsString(it)) {
            rc = rs_error_set(e, RS_EINVAL, "%s: must be a string", flag);
            goto out;
        }
        rc = set_str(dst, cap, flag, it->valuestring, e);
        if (rc != RS_OK) {
            goto out;
        }
    }
out:
    cJSON_Delete(root);
    free(text);
    return rc;
}

static rs_err parse_args(int argc, char **argv, wk_config *c, rs_error *e)
{
    memset(c, 0, sizeof *c);
    snprintf(c->server, sizeof c->server, "%s", DEFAULT_SERVER);
    c->slots = 1;
    /* The config file first, so that flags override it whatever their order. */
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            v = argv[i + 1];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            v = argv[i] + 9;
        }
        if (v != NULL) {
            snprintf(c->config_path, sizeof c->config_path, "%s", v);
            rs_err rc = load_config(c, v, e);
            if (rc != RS_OK) {
                return rc;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        char flag[64];
        const char *val = NULL;
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 && eq != NULL && (size_t)(eq - a) < sizeof flag) {
            snprintf(flag, sizeof flag, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
        }
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            c->help = true;
            continue;
        }
        if (strcmp(flag, "--list-devices") == 0) {
            c->list_devices = true;
            continue;
        }
        if (strcmp(flag, "--json") == 0) {
            c->json = true;
            continue;
        }
        bool takes = strcmp(flag, "--server") == 0 || strcmp(flag, "--name") == 0 ||
                     strcmp(flag, "--pool") == 0 || strcmp(flag, "--slots") == 0 ||
                     strcmp(flag, "--device") == 0 || strcmp(flag, "--config") == 0;
        if (!takes) {
            return rs_error_set(e, RS_EINVAL, "%s: unknown argument (see --help)", a);
        }
        if (val == NULL) {
            if (i + 1 >= argc) {
                return rs_error_set(e, RS_EINVAL, "%s: needs a value", flag);
            }
            val = argv[++i];
        }
        rs_err rc = RS_OK;
        if (strcmp(flag, "--server") == 0) {
            rc = set_str(c->server, sizeof c->server, flag, val, e);
        } else if (strcmp(flag, "--name") == 0) {
            rc = set_str(c->name, sizeof c->name, flag, val, e);
        } else if (strcmp(flag, "--pool") == 0) {
            rc = set_str(c->pool, sizeof c->pool, flag, val, e);
        } else if (strcmp(flag, "--slots") == 0) {
            rc = set_slots(c, val, e);
        } else if (strcmp(flag, "--device") == 0) {
            rc = set_str(c->device, sizeof c->device, flag, val, e);
        }
        if (rc != RS_OK) {
            return rc;
        }
    }
    if (c->name[0] == '\0') {
        char host[64] = "worker";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(c->name, sizeof c->name, "%s-%ld", host, (long)getpid());
    }
    return RS_OK;
}

/* ---------- modes ---------- */

static int run_task_child(const char *kind)
{
    /* Die with the worker, whatever kills it; a task must never outlive
     * the process that would report it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) {
        return 1;
    }
    /* A crashing task is reported by signal; a core file of every crash
     * would fill the disk of a busy farm. RUSHES_CORE=1 keeps them. */
    if (getenv("RUSHES_CORE") == NULL) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
    }
    return taskchild_run(kind, stdin, stdout);
}

static int list_devices(const wk_config *c)
{
    proto_device devs[PROTO_MAX_DEVICES];
    size_t n = 0;
    rs_error err;
    rs_error_clear(&err);
    if (vkcaps_list(devs, PROTO_MAX_DEVICES, &n, &err) != RS_OK) {
        fprintf(stderr, "rushes-worker: %s\n", rs_error_text(&err));
        return 1;
    }
    if (c->device[0] != '\0' && vkcaps_select(devs, &n, c->device, NULL, &err) != RS_OK) {
        fprintf(stderr, "rushes-worker: %s\n", rs_error_text(&err));
        return 1;
    }
    vkcaps_print(stdout, devs, n, c->json);
    return 0;
}

static int run_worker(const wk_config *cfg)
{
    int status = 1;
    rs_error err;
    rs_error_clear(&err);
    uv_loop_t loop;
    bool loop_open = false;
    worker *w = calloc(1, sizeof *w);
    if (w == NULL) {
        RS_ERROR(LOG_COMP, "out of memory");
        return 1;
    }
    w->cfg = *cfg;
    size_t exelen = sizeof w->exe;
    if (uv_exepath(w->exe, &exelen) != 0) {
        RS_ERROR(LOG_COMP, "cannot find my own executable (uv_exepath)");
        goto out;
    }
    if (vkcaps_list(w->devices, PROTO_MAX_DEVICES, &w->ndevices, &err) != RS_OK) {
        RS_WARN(LOG_COMP, "Vulkan: %s", rs_error_text(&err));
        w->ndevices = 0;
    }
    if (cfg->device[0] != '\0') {
        size_t idx = 0;
        if (vkcaps_select(w->devices, &w->ndevices, cfg->device, &idx, &err) != RS_OK) {
            RS_ERROR(LOG_COMP, "%s", rs_error_text(&err));
            goto out;
        }
        snprintf(w->device_env, sizeof w->device_env, "%zu", idx);
    }
    if (w->ndevices == 0) {
        RS_WARN(LOG_COMP, "no Vulkan devices: running CPU-side kinds only (ingest, noop)");
    }
    for (size_t i = 0; i < w->ndevices; i++) {
        RS_INFO(LOG_COMP, "device %zu: %s (%s, %llu MiB, fp16 %s, subgroup %u)", i,
                w->devices[i].name, w->devices[i].type, (unsigned long long)w->devices[i].memory_mb,
                w->devices[i].fp16 ? "yes" : "no", w->devices[i].subgroup_size);
    }
    if (uv_loop_init(&loop) != 0) {
        RS_ERROR(LOG_COMP, "uv_loop_init failed");
        goto out;
    }
    loop_open = true;
    w->loop = &loop;
    if (net_create(&loop, cfg->server, &w->net, &err) != RS_OK) {
        RS_ERROR(LOG_COMP, "%s", rs_error_text(&err));
        goto out;
    }
    uv_timer_init(&loop, &w->tick);
    w->tick.data = w;
    uv_signal_init(&loop, &w->sigterm);
    uv_signal_init(&loop, &w->sigint);
    w->sigterm.data = w;
    w->sigint.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_timer_start(&w->tick, on_tick, TICK_MS, TICK_MS);
    RS_INFO(LOG_COMP, "%s: server %s, pool %s, %u slot(s), %zu device(s)", cfg->name, cfg->server,
            cfg->pool[0] != '\0' ? cfg->pool : "(default)", cfg->slots, w->ndevices);
    pump(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    RS_INFO(LOG_COMP, "stopped");
    status = 0;
out:
    if (w->net != NULL) {
        net_destroy(w->net);
        w->net = NULL;
    }
    if (loop_open) {
        /* Lets the closes (net's async, runner handles) finish. */
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) != 0) {
            RS_DEBUG(LOG_COMP, "loop closed with handles still open");
        }
    }
    while (w->tasks != NULL) {
        task_free(w, w->tasks);
    }
    free(w);
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "task") == 0) {
        if (argc != 3) {
            fprintf(stderr, "usage: rushes-worker task KIND  (params JSON on stdin)\n");
            return 2;
        }
        return run_task_child(argv[2]);
    }
    wk_config cfg;
    rs_error err;
    rs_error_clear(&err);
    if (parse_args(argc, argv, &cfg, &err) != RS_OK) {
        fprintf(stderr, "rushes-worker: %s\n", rs_error_text(&err));
        return 2;
    }
    if (cfg.help) {
        usage(stdout);
        return 0;
    }
    if (cfg.list_devices) {
        return list_devices(&cfg);
    }
    /* A child that exits before reading its params must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    return run_worker(&cfg);
}
