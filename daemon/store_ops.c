/*
 * store_ops.c: the operations side of the store (migration 0002): API
 * tokens, project ownership and limits, priority changes, worker drain,
 * schedules, the figures behind /metrics, and the online backup.
 *
 * These calls are rare next to leases and reports, so they prepare their
 * statements per call instead of caching them; each mutating call is atomic
 * on its own (store_int_begin/end), like the rest of the store.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"

/* Tokens touch last_used_at at most this often. */
#define TOKEN_TOUCH_MS 60000

static rs_err prep(store *s, const char *sql, sqlite3_stmt **st, rs_error *e)
{
    if (sqlite3_prepare_v2(store_int_db(s), sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return store_int_dberr(s, e, "prepare");
    }
    return RS_OK;
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL) {
        sqlite3_bind_null(st, i);
    } else {
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    }
}

/* Runs a statement to the end; RS_OK on SQLITE_DONE. Finalizes it. */
static rs_err run_done(store *s, sqlite3_stmt *st, const char *what, rs_error *e)
{
    int rv;
    do {
        rv = sqlite3_step(st);
    } while (rv == SQLITE_ROW);
    rs_err rc = rv == SQLITE_DONE ? RS_OK : store_int_dberr(s, e, what);
    sqlite3_finalize(st);
    return rc;
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? (const char *)t : "";
}

static void add_time(cJSON *o, const char *name, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    int64_t ms = sqlite3_column_int64(st, i);
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[40];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    cJSON_AddStringToObject(o, name, buf);
}

/* Shared shape of "collect rows into an array" loops. */
typedef void (*row_fn)(sqlite3_stmt *st, cJSON *arr);

static rs_err rows_json(store *s, sqlite3_stmt *st, row_fn fn, const char *what, cJSON **out,
                        rs_error *e)
{
    cJSON *arr = cJSON_CreateArray();
    int rv;
    while ((rv = sqlite3_step(st)) == SQLITE_ROW) {
        fn(st, arr);
    }
    if (rv != SQLITE_DONE) {
        rs_err rc = store_int_dberr(s, e, what);
        sqlite3_finalize(st);
        cJSON_Delete(arr);
        return rc;
    }
    sqlite3_finalize(st);
    *out = arr;
    return RS_OK;
}

/* ---- tokens ---------------------------------------------------------------- */

rs_err store_token_create(store *s, const char *tenant, const char *role, const char *name,
                          const char *hash_hex, int64_t now_ms, int64_t *id, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s,
              "INSERT INTO api_token(tenant, role, name, hash, created_at) "
              "VALUES (?1, ?2, ?3, ?4, ?5)",
              &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_text(st, 1, tenant, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, role, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, name != NULL ? name : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, hash_hex, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, now_ms);
        rc = run_done(s, st, "insert token", e);
    }
    if (rc == RS_OK) {
        *id = sqlite3_last_insert_rowid(store_int_db(s));
    }
    return store_int_end(s, rc, e);
}

rs_err store_token_find(store *s, const char *hash_hex, int64_t now_ms, store_token *out,
                        bool *found, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    *found = false;
    rs_err rc = prep(s,
                     "SELECT id, tenant, role, COALESCE(last_used_at, 0) FROM api_token "
                     "WHERE hash = ?1 AND revoked_at IS NULL",
                     &st, e);
    if (rc != RS_OK) {
        return rc;
    }
    sqlite3_bind_text(st, 1, hash_hex, -1, SQLITE_TRANSIENT);
    int rv = sqlite3_step(st);
    int64_t last = 0;
    if (rv == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->id = sqlite3_column_int64(st, 0);
        snprintf(out->tenant, sizeof out->tenant, "%s", col(st, 1));
        snprintf(out->role, sizeof out->role, "%s", col(st, 2));
        last = sqlite3_column_int64(st, 3);
        *found = true;
    } else if (rv != SQLITE_DONE) {
        rc = store_int_dberr(s, e, "token");
    }
    sqlite3_finalize(st);
    if (rc != RS_OK || !*found || now_ms - last < TOKEN_TOUCH_MS) {
        return rc;
    }
    rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s, "UPDATE api_token SET last_used_at = ?2 WHERE id = ?1", &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, out->id);
        sqlite3_bind_int64(st, 2, now_ms);
        rc = run_done(s, st, "token use", e);
    }
    return store_int_end(s, rc, e);
}

static void token_row(sqlite3_stmt *st, cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(o, "tenant", col(st, 1));
    cJSON_AddStringToObject(o, "role", col(st, 2));
    cJSON_AddStringToObject(o, "name", col(st, 3));
    add_time(o, "created_at", st, 4);
    add_time(o, "revoked_at", st, 5);
    add_time(o, "last_used_at", st, 6);
    cJSON_AddItemToArray(arr, o);
}

rs_err store_token_list(store *s, const char *tenant, cJSON **out_array, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = prep(s,
                     "SELECT id, tenant, role, name, created_at, revoked_at, last_used_at "
                     "FROM api_token WHERE (?1 IS NULL OR tenant = ?1) ORDER BY id",
                     &st, e);
    if (rc != RS_OK) {
        return rc;
    }
    bind_opt(st, 1, tenant);
    return rows_json(s, st, token_row, "tokens", out_array, e);
}

rs_err store_token_revoke(store *s, int64_t id, const char *tenant, int64_t now_ms, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s,
              "UPDATE api_token SET revoked_at = COALESCE(revoked_at, ?2) "
              "WHERE id = ?1 AND (?3 IS NULL OR tenant = ?3)",
              &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, now_ms);
        bind_opt(st, 3, tenant);
        rc = run_done(s, st, "revoke token", e);
    }
    if (rc == RS_OK && sqlite3_changes(store_int_db(s)) == 0) {
        rc = rs_error_set(e, RS_ENOENT, "token %" PRId64 ": not found", id);
    }
    return store_int_end(s, rc, e);
}

/* ---- tenancy --------------------------------------------------------------- */

static rs_err tenant_of(store *s, const char *sql, const char *text, int64_t id, bool *exists,
                        char tenant[65], rs_error *e)
{
    sqlite3_stmt *st = NULL;
    *exists = false;
    tenant[0] = '\0';
    rs_err rc = prep(s, sql, &st, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (text != NULL) {
        sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_int64(st, 1, id);
    }
    int rv = sqlite3_step(st);
    if (rv == SQLITE_ROW) {
        *exists = true;
        snprintf(tenant, 65, "%s", col(st, 0));
    } else if (rv != SQLITE_DONE) {
        rc = store_int_dberr(s, e, "tenant");
    }
    sqlite3_finalize(st);
    return rc;
}

rs_err store_project_tenant(store *s, const char *project, bool *exists, char tenant[65],
                            rs_error *e)
{
    return tenant_of(s, "SELECT COALESCE(tenant, '') FROM project WHERE name = ?1", project, 0,
                     exists, tenant, e);
}

rs_err store_job_tenant(store *s, int64_t job_id, bool *exists, char tenant[65], rs_error *e)
{
    return tenant_of(s,
                     "SELECT COALESCE(p.tenant, '') FROM job j JOIN project p "
                     "ON p.id = j.project_id WHERE j.id = ?1",
                     NULL, job_id, exists, tenant, e);
}

static void project_row(sqlite3_stmt *st, cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", col(st, 0));
    if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, "tenant");
    } else {
        cJSON_AddStringToObject(o, "tenant", col(st, 1));
    }
    cJSON_AddNumberToObject(o, "max_running", (double)sqlite3_column_int64(st, 2));
    cJSON *jobs = cJSON_AddObjectToObject(o, "jobs");
    static const char *const states[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    for (int i = 0; i < 5; i++) {
        cJSON_AddNumberToObject(jobs, states[i], (double)sqlite3_column_int64(st, 3 + i));
    }
    cJSON_AddNumberToObject(o, "running_tasks", (double)sqlite3_column_int64(st, 8));
    add_time(o, "oldest_queued_at", st, 9);
    cJSON_AddItemToArray(arr, o);
}

rs_err store_project_list(store *s, const char *tenant, cJSON **out_array, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = prep(
        s,
        "SELECT p.name, p.tenant, p.max_running, "
        "(SELECT COUNT(*) FROM job WHERE project_id = p.id AND state = 'queued'), "
        "(SELECT COUNT(*) FROM job WHERE project_id = p.id AND state = 'running'), "
        "(SELECT COUNT(*) FROM job WHERE project_id = p.id AND state = 'succeeded'), "
        "(SELECT COUNT(*) FROM job WHERE project_id = p.id AND state = 'failed'), "
        "(SELECT COUNT(*) FROM job WHERE project_id = p.id AND state = 'cancelled'), "
        "(SELECT COUNT(*) FROM task WHERE project_id = p.id AND state IN ('leased', 'running')), "
        "(SELECT MIN(created_at) FROM job WHERE project_id = p.id AND state = 'queued') "
        "FROM project p WHERE (?1 IS NULL OR p.tenant = ?1) ORDER BY p.name",
        &st, e);
    if (rc != RS_OK) {
        return rc;
    }
    bind_opt(st, 1, tenant);
    return rows_json(s, st, project_row, "projects", out_array, e);
}

rs_err store_project_set_limit(store *s, const char *project, const char *tenant, int max_running,
                               int64_t now_ms, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    if (max_running < 0) {
        return rs_error_set(e, RS_EINVAL, "max_running: must be >= 0");
    }
    rs_err rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s,
              "INSERT INTO project(name, created_at, tenant, max_running) VALUES (?1, ?2, ?3, ?4) "
              "ON CONFLICT(name) DO UPDATE SET max_running = excluded.max_running",
              &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_text(st, 1, project, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, now_ms);
        bind_opt(st, 3, tenant);
        sqlite3_bind_int(st, 4, max_running);
        rc = run_done(s, st, "project limit", e);
    }
    return store_int_end(s, rc, e);
}

/* ---- operator actions ------------------------------------------------------ */

rs_err store_job_set_priority(store *s, int64_t job_id, int priority, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    if (priority < -100 || priority > 100) {
        return rs_error_set(e, RS_EINVAL, "priority: must be -100..100, got %d", priority);
    }
    rs_err rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s, "SELECT state FROM job WHERE id = ?1", &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, job_id);
        int rv = sqlite3_step(st);
        if (rv == SQLITE_DONE) {
            rc = rs_error_set(e, RS_ENOENT, "job %" PRId64 ": not found", job_id);
        } else if (rv != SQLITE_ROW) {
            rc = store_int_dberr(s, e, "job state");
        } else if (strcmp(col(st, 0), "queued") != 0 && strcmp(col(st, 0), "running") != 0) {
            rc = rs_error_set(e, RS_ESTATE,
                              "job %" PRId64 ": is %s; only queued or running "
                              "jobs change priority",
                              job_id, col(st, 0));
        }
        sqlite3_finalize(st);
    }
    if (rc == RS_OK) {
        rc = prep(s, "UPDATE job SET priority = ?2 WHERE id = ?1", &st, e);
    }
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_int(st, 2, priority);
        rc = run_done(s, st, "job priority", e);
    }
    /* task.nprio is the copy the ready index orders by. */
    if (rc == RS_OK) {
        rc = prep(s,
                  "UPDATE task SET nprio = ?2 WHERE job_id = ?1 "
                  "AND state NOT IN ('succeeded', 'failed', 'cancelled')",
                  &st, e);
    }
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_int(st, 2, -priority);
        rc = run_done(s, st, "task priority", e);
    }
    return store_int_end(s, rc, e);
}

rs_err store_worker_drain(store *s, int64_t worker_id, bool drained, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s, "UPDATE worker SET drained = ?2 WHERE id = ?1", &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, worker_id);
        sqlite3_bind_int(st, 2, drained ? 1 : 0);
        rc = run_done(s, st, "drain worker", e);
    }
    if (rc == RS_OK && sqlite3_changes(store_int_db(s)) == 0) {
        rc = rs_error_set(e, RS_ENOENT, "worker %" PRId64 ": not found", worker_id);
    }
    return store_int_end(s, rc, e);
}

/* ---- metrics --------------------------------------------------------------- */

static rs_err scalar(store *s, const char *sql, int64_t *v, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = prep(s, sql, &st, e);
    if (rc != RS_OK) {
        return rc;
    }
    int rv = sqlite3_step(st);
    *v = rv == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rv != SQLITE_ROW && rv != SQLITE_DONE) {
        rc = store_int_dberr(s, e, "metrics");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Cumulative histogram of a column of seconds selected by sql. */
static rs_err histogram(store *s, const char *sql, const double *bounds, size_t n, cJSON *out,
                        rs_error *e)
{
    sqlite3_stmt *st = NULL;
    int64_t *counts = calloc(n + 1, sizeof *counts);
    if (counts == NULL) {
        return rs_error_set(e, RS_ENOMEM, "metrics: out of memory");
    }
    double sum = 0;
    int64_t count = 0;
    rs_err rc = prep(s, sql, &st, e);
    if (rc != RS_OK) {
        free(counts);
        return rc;
    }
    int rv;
    while ((rv = sqlite3_step(st)) == SQLITE_ROW) {
        double v = sqlite3_column_double(st, 0);
        if (v < 0) {
            v = 0;
        }
        sum += v;
        count++;
        for (size_t i = 0; i < n; i++) {
            if (v <= bounds[i]) {
                counts[i]++;
            }
        }
    }
    if (rv != SQLITE_DONE) {
        rc = store_int_dberr(s, e, "metrics histogram");
    }
    sqlite3_finalize(st);
    if (rc == RS_OK) {
        cJSON *b = cJSON_AddArrayToObject(out, "buckets");
        cJSON *c = cJSON_AddArrayToObject(out, "counts");
        for (size_t i = 0; i < n; i++) {
            cJSON_AddItemToArray(b, cJSON_CreateNumber(bounds[i]));
            cJSON_AddItemToArray(c, cJSON_CreateNumber((double)counts[i]));
        }
        cJSON_AddNumberToObject(out, "sum", sum);
        cJSON_AddNumberToObject(out, "count", (double)count);
    }
    free(counts);
    return rc;
}

/* One "step N/M loss X ..." progress line (tasks/removal/run.c): the first
 * 256 bytes only, and nothing is trusted beyond the numbers it yields. */
static bool step_line(const char *text, double *step, double *loss)
{
    char head[257];
    snprintf(head, sizeof head, "%s", text != NULL ? text : "");
    long n = 0;
    long m = 0;
    double l = 0;
    if (sscanf(head, "step %ld/%ld loss %lf", &n, &m, &l) != 3 || n < 0 || l != l) {
        return false;
    }
    *step = (double)n;
    *loss = l;
    return true;
}

/*
 * Training figures of each running attempt, from its last two step lines in
 * the log: [{"job", "task", "kind", "steps_per_second", "last_loss"}]. The
 * lines' times are the daemon's receipt times (at most 4 a second).
 */
static rs_err training_metrics(store *s, cJSON *arr, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    sqlite3_stmt *lg = NULL;
    if (arr == NULL) {
        return rs_error_set(e, RS_ENOMEM, "metrics: out of memory");
    }
    rs_err rc = prep(s,
                     "SELECT a.id, t.job_id, t.idx, t.kind FROM attempt a "
                     "JOIN task t ON t.id = a.task_id WHERE a.state = 'running' ORDER BY a.id",
                     &st, e);
    if (rc == RS_OK) {
        rc = prep(s,
                  "SELECT t, text FROM attempt_log WHERE attempt_id = ?1 "
                  "AND text LIKE 'step %/% loss %' ORDER BY id DESC LIMIT 2",
                  &lg, e);
    }
    while (rc == RS_OK) {
        int rv = sqlite3_step(st);
        if (rv == SQLITE_DONE) {
            break;
        }
        if (rv != SQLITE_ROW) {
            rc = store_int_dberr(s, e, "metrics training");
            break;
        }
        sqlite3_reset(lg);
        sqlite3_bind_int64(lg, 1, sqlite3_column_int64(st, 0));
        double step[2] = {0, 0};
        double loss[2] = {0, 0};
        int64_t t[2] = {0, 0};
        int n = 0;
        while (n < 2 && sqlite3_step(lg) == SQLITE_ROW) {
            if (step_line(col(lg, 1), &step[n], &loss[n])) {
                t[n] = sqlite3_column_int64(lg, 0);
                n++;
            }
        }
        if (n == 0) {
            continue; /* not a training task, or no step yet */
        }
        double rate = 0;
        if (n == 2 && t[0] > t[1] && step[0] > step[1]) {
            rate = (step[0] - step[1]) * 1000.0 / (double)(t[0] - t[1]);
        }
        cJSON *o = cJSON_CreateObject();
        if (o == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "metrics: out of memory");
            break;
        }
        cJSON_AddNumberToObject(o, "job", (double)sqlite3_column_int64(st, 1));
        cJSON_AddNumberToObject(o, "task", (double)sqlite3_column_int64(st, 2));
        cJSON_AddStringToObject(o, "kind", col(st, 3) != NULL ? col(st, 3) : "");
        cJSON_AddNumberToObject(o, "steps_per_second", rate);
        cJSON_AddNumberToObject(o, "last_loss", loss[0]);
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(lg);
    return rc;
}

rs_err store_metrics(store *s, int64_t now_ms, const double *bounds_s, size_t nbounds, cJSON **out,
                     rs_error *e)
{
    (void)now_ms;
    sqlite3_stmt *st = NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *jobs = cJSON_AddObjectToObject(o, "jobs");
    rs_err rc = prep(s, "SELECT kind, state, COUNT(*) FROM job GROUP BY kind, state", &st, e);
    if (rc != RS_OK) {
        goto out;
    }
    int rv;
    while ((rv = sqlite3_step(st)) == SQLITE_ROW) {
        char key[200];
        snprintf(key, sizeof key, "%s|%s", col(st, 0), col(st, 1));
        cJSON_AddNumberToObject(jobs, key, (double)sqlite3_column_int64(st, 2));
    }
    sqlite3_finalize(st);
    if (rv != SQLITE_DONE) {
        rc = store_int_dberr(s, e, "metrics jobs");
        goto out;
    }
    /* Counters come from the attempt rows, so they survive restarts and
     * only ever grow (rows are never deleted). */
    static const struct {
        const char *name;
        const char *sql;
    } counters[] = {
        {"tasks_dispatched", "SELECT COUNT(*) FROM attempt"},
        {"attempts_failed", "SELECT COUNT(*) FROM attempt WHERE state IN ('failed', 'lost')"},
        {"tasks_retried", "SELECT COUNT(*) - COUNT(DISTINCT task_id) FROM attempt"},
        {"lease_expiries", "SELECT COUNT(*) FROM attempt WHERE state = 'lost'"},
        {"tasks_failed", "SELECT COUNT(*) FROM task WHERE state = 'failed'"},
        {"workers_up", "SELECT COUNT(*) FROM worker WHERE state = 'up'"},
        {"workers_drained", "SELECT COUNT(*) FROM worker WHERE state = 'up' AND drained = 1"},
        {"tasks_running", "SELECT COUNT(*) FROM task WHERE state IN ('leased', 'running')"},
        {"tasks_ready", "SELECT COUNT(*) FROM task WHERE state IN ('queued', 'retry_wait') "
                        "AND held = 0"},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        int64_t v = 0;
        rc = scalar(s, counters[i].sql, &v, e);
        if (rc != RS_OK) {
            goto out;
        }
        cJSON_AddNumberToObject(o, counters[i].name, (double)v);
    }
    /* Queue wait: from the job's submit to each task's first lease. */
    rc = histogram(s,
                   "SELECT (MIN(a.started_at) - j.created_at) / 1000.0 FROM attempt a "
                   "JOIN task t ON t.id = a.task_id JOIN job j ON j.id = t.job_id "
                   "GROUP BY a.task_id",
                   bounds_s, nbounds, cJSON_AddObjectToObject(o, "queue_wait"), e);
    if (rc == RS_OK) {
        rc = histogram(s,
                       "SELECT (finished_at - started_at) / 1000.0 FROM attempt "
                       "WHERE finished_at IS NOT NULL AND state IN ('succeeded', 'failed')",
                       bounds_s, nbounds, cJSON_AddObjectToObject(o, "run_time"), e);
    }
    if (rc == RS_OK) {
        rc = training_metrics(s, cJSON_AddArrayToObject(o, "training"), e);
    }
out:
    if (rc != RS_OK) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return RS_OK;
}

/* ---- schedules ------------------------------------------------------------- */

rs_err store_schedule_add(store *s, const store_schedule_spec *spec, int64_t now_ms, int64_t *id,
                          rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s,
              "INSERT INTO project(name, created_at, tenant) VALUES (?1, ?2, ?3) "
              "ON CONFLICT(name) DO NOTHING",
              &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_text(st, 1, spec->project, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, now_ms);
        bind_opt(st, 3, spec->tenant);
        rc = run_done(s, st, "schedule project", e);
    }
    if (rc == RS_OK) {
        rc = prep(s,
                  "INSERT INTO schedule(project_id, name, cron, tz, job, next_at, created_at) "
                  "SELECT id, ?2, ?3, ?4, ?5, ?6, ?7 FROM project WHERE name = ?1",
                  &st, e);
    }
    if (rc == RS_OK) {
        sqlite3_bind_text(st, 1, spec->project, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, spec->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, spec->cron, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, spec->tz, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, spec->job_json, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 6, spec->next_at);
        sqlite3_bind_int64(st, 7, now_ms);
        int rv = sqlite3_step(st);
        if (rv == SQLITE_CONSTRAINT) {
            rc = rs_error_set(e, RS_ESTATE, "schedule %s: already exists in project %s", spec->name,
                              spec->project);
        } else if (rv != SQLITE_DONE) {
            rc = store_int_dberr(s, e, "insert schedule");
        }
        sqlite3_finalize(st);
    }
    if (rc == RS_OK) {
        *id = sqlite3_last_insert_rowid(store_int_db(s));
    }
    return store_int_end(s, rc, e);
}

static void schedule_row(sqlite3_stmt *st, cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(o, "project", col(st, 1));
    cJSON_AddStringToObject(o, "name", col(st, 2));
    cJSON_AddStringToObject(o, "cron", col(st, 3));
    cJSON_AddStringToObject(o, "tz", col(st, 4));
    cJSON *job = cJSON_Parse(col(st, 5));
    cJSON_AddItemToObject(o, "job", job != NULL ? job : cJSON_CreateObject());
    cJSON_AddBoolToObject(o, "enabled", sqlite3_column_int(st, 6) != 0);
    add_time(o, "next_at", st, 7);
    add_time(o, "last_at", st, 8);
    if (sqlite3_column_type(st, 9) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, "last_job_id");
    } else {
        cJSON_AddNumberToObject(o, "last_job_id", (double)sqlite3_column_int64(st, 9));
    }
    cJSON_AddNumberToObject(o, "next_at_ms", (double)sqlite3_column_int64(st, 7));
    cJSON_AddItemToArray(arr, o);
}

rs_err store_schedule_list(store *s, const char *tenant, cJSON **out_array, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = prep(s,
                     "SELECT s.id, p.name, s.name, s.cron, s.tz, s.job, s.enabled, s.next_at, "
                     "s.last_at, s.last_job_id FROM schedule s JOIN project p "
                     "ON p.id = s.project_id WHERE (?1 IS NULL OR p.tenant = ?1) ORDER BY s.id",
                     &st, e);
    if (rc != RS_OK) {
        return rc;
    }
    bind_opt(st, 1, tenant);
    return rows_json(s, st, schedule_row, "schedules", out_array, e);
}

rs_err store_schedule_remove(store *s, int64_t id, const char *tenant, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s,
              "DELETE FROM schedule WHERE id = ?1 AND (?2 IS NULL OR project_id IN "
              "(SELECT id FROM project WHERE tenant = ?2))",
              &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, id);
        bind_opt(st, 2, tenant);
        rc = run_done(s, st, "remove schedule", e);
    }
    if (rc == RS_OK && sqlite3_changes(store_int_db(s)) == 0) {
        rc = rs_error_set(e, RS_ENOENT, "schedule %" PRId64 ": not found", id);
    }
    return store_int_end(s, rc, e);
}

static void due_row(sqlite3_stmt *st, cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(o, "project", col(st, 1));
    cJSON_AddStringToObject(o, "tenant", col(st, 2));
    cJSON_AddStringToObject(o, "cron", col(st, 3));
    cJSON_AddStringToObject(o, "tz", col(st, 4));
    cJSON_AddStringToObject(o, "job", col(st, 5));
    cJSON_AddNumberToObject(o, "next_at", (double)sqlite3_column_int64(st, 6));
    cJSON_AddItemToArray(arr, o);
}

rs_err store_schedules_due(store *s, int64_t now_ms, int limit, cJSON **out_array, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = prep(s,
                     "SELECT s.id, p.name, COALESCE(p.tenant, ''), s.cron, s.tz, s.job, s.next_at "
                     "FROM schedule s JOIN project p ON p.id = s.project_id "
                     "WHERE s.enabled = 1 AND s.next_at <= ?1 ORDER BY s.next_at LIMIT ?2",
                     &st, e);
    if (rc != RS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, limit);
    return rows_json(s, st, due_row, "due schedules", out_array, e);
}

rs_err store_schedule_fired(store *s, int64_t id, int64_t fired_at, int64_t next_at, int64_t job_id,
                            rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s,
              "UPDATE schedule SET next_at = ?2, last_at = ?3, "
              "last_job_id = COALESCE(NULLIF(?4, 0), last_job_id) WHERE id = ?1",
              &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, next_at);
        sqlite3_bind_int64(st, 3, fired_at);
        sqlite3_bind_int64(st, 4, job_id);
        rc = run_done(s, st, "schedule fired", e);
    }
    return store_int_end(s, rc, e);
}

/* ---- backup ---------------------------------------------------------------- */

rs_err store_backup_file(const char *path, const char *dest, rs_error *e)
{
    sqlite3 *src = NULL;
    sqlite3 *dst = NULL;
    sqlite3_backup *b = NULL;
    bool created = false;
    rs_err rc = RS_OK;
    if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = rs_error_set(e, RS_EDB, "backup: %s: %s", path, sqlite3_errmsg(src));
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    /* O_EXCL: never overwrite an earlier backup (sqlite3_open_v2 ignores
     * SQLITE_OPEN_EXCLUSIVE). An empty file is an empty database. */
    int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = rs_error_set(e, RS_EIO, "backup: %s: %s", dest, strerror(errno));
        goto out;
    }
    close(fd);
    created = true;
    if (sqlite3_open_v2(dest, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = rs_error_set(e, RS_EIO, "backup: %s: %s", dest, sqlite3_errmsg(dst));
        goto out;
    }
    b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == NULL) {
        rc = rs_error_set(e, RS_EDB, "backup: %s: %s", dest, sqlite3_errmsg(dst));
        goto out;
    }
    /* One step copies every page from one read snapshot: the copy is
     * consistent even while rushesd commits (WAL readers do not block). */
    int rv = sqlite3_backup_step(b, -1);
    int fin = sqlite3_backup_finish(b);
    b = NULL;
    if (rv != SQLITE_DONE || fin != SQLITE_OK) {
        rc = rs_error_set(e, RS_EDB, "backup: %s -> %s: %s", path, dest, sqlite3_errstr(rv));
        goto out;
    }
    /* The copy is a plain rollback-journal file; rushesd turns WAL back on
     * when it opens it. Make it durable before we say it exists. */
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = rs_error_set(e, RS_EDB, "backup: %s: %s", dest, sqlite3_errmsg(dst));
    }
out:
    sqlite3_close(dst);
    sqlite3_close(src);
    if (rc != RS_OK && created) {
        remove(dest);
    }
    return rc;
}

/* ---- training windows ------------------------------------------------------ */

rs_err store_windowed_jobs(store *s, cJSON **out_array, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL) {
        return rs_error_set(e, RS_ENOMEM, "windows: out of memory");
    }
    rs_err rc = prep(s,
                     "SELECT id, run_window FROM job WHERE run_window IS NOT NULL "
                     "AND state IN ('queued', 'running') ORDER BY id",
                     &st, e);
    while (rc == RS_OK) {
        int rv = sqlite3_step(st);
        if (rv == SQLITE_DONE) {
            break;
        }
        if (rv != SQLITE_ROW) {
            rc = store_int_dberr(s, e, "windowed jobs");
            break;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON *w = cJSON_Parse(col(st, 1) != NULL ? col(st, 1) : "");
        if (o == NULL || w == NULL) {
            /* A window the daemon wrote always parses; skip a damaged one. */
            cJSON_Delete(o);
            cJSON_Delete(w);
            continue;
        }
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
        cJSON_AddItemToObject(o, "window", w);
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(st);
    if (rc != RS_OK) {
        cJSON_Delete(arr);
        return rc;
    }
    *out_array = arr;
    return RS_OK;
}

rs_err store_job_window_set(store *s, int64_t job_id, const char *window_json, bool open,
                            int *nyield, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    if (nyield != NULL) {
        *nyield = 0;
    }
    rs_err rc = store_int_begin(s, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = prep(s, "UPDATE job SET run_window = ?2 WHERE id = ?1 AND run_window IS NOT NULL", &st, e);
    if (rc == RS_OK) {
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_text(st, 2, window_json, -1, SQLITE_TRANSIENT);
        rc = run_done(s, st, "set window", e);
    }
    if (rc == RS_OK && !open) {
        rc = prep(s,
                  "UPDATE attempt SET cancel_requested = 2 WHERE state IN ('leased', 'running') "
                  "AND cancel_requested = 0 AND task_id IN (SELECT id FROM task WHERE job_id = ?1)",
                  &st, e);
        if (rc == RS_OK) {
            sqlite3_bind_int64(st, 1, job_id);
            rc = run_done(s, st, "yield attempts", e);
        }
        if (rc == RS_OK && nyield != NULL) {
            *nyield = sqlite3_changes(store_int_db(s));
        }
    }
    return store_int_end(s, rc, e);
}

/* ---- job page: DAG neighbours and loss history ---------------------------- */

rs_err store_job_graph(store *s, int64_t job_id, const char *tenant, cJSON **out, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *nodes = cJSON_AddArrayToObject(o, "nodes");
    cJSON *edges = cJSON_AddArrayToObject(o, "edges");
    if (nodes == NULL || edges == NULL) {
        cJSON_Delete(o);
        return rs_error_set(e, RS_ENOMEM, "job %" PRId64 " graph: out of memory", job_id);
    }
    /* The job itself comes first whatever its tenant (the caller checked
     * it); neighbours only when visible. Progress as GET /jobs reports it. */
    rs_err rc = prep(s,
                     "WITH n(id, role) AS (SELECT ?1, 'self' "
                     "  UNION ALL SELECT depends_on, 'parent' FROM job_dep WHERE job_id = ?1 "
                     "  UNION ALL SELECT job_id, 'child' FROM job_dep WHERE depends_on = ?1) "
                     "SELECT j.id, p.name, j.kind, j.state, n.role, "
                     "  (SELECT AVG(CASE WHEN t.state = 'succeeded' THEN 1.0 WHEN t.progress < 0 "
                     "   THEN 0.0 ELSE t.progress END) FROM task t WHERE t.job_id = j.id) "
                     "FROM n JOIN job j ON j.id = n.id JOIN project p ON p.id = j.project_id "
                     "WHERE n.role = 'self' OR ?2 IS NULL OR p.tenant = ?2 "
                     "ORDER BY n.role = 'child', n.role = 'self', j.id",
                     &st, e);
    if (rc != RS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    bind_opt(st, 2, tenant);
    bool found = false;
    int rv;
    while ((rv = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *role = col(st, 4);
        cJSON *n = cJSON_CreateObject();
        if (n == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "job %" PRId64 " graph: out of memory", job_id);
            goto out;
        }
        cJSON_AddItemToArray(nodes, n);
        cJSON_AddNumberToObject(n, "id", (double)id);
        cJSON_AddStringToObject(n, "project", col(st, 1));
        cJSON_AddStringToObject(n, "kind", col(st, 2));
        cJSON_AddStringToObject(n, "state", col(st, 3));
        cJSON_AddNumberToObject(n, "progress", sqlite3_column_double(st, 5));
        cJSON_AddStringToObject(n, "role", role);
        if (strcmp(role, "self") == 0) {
            found = true;
            continue;
        }
        bool parent = strcmp(role, "parent") == 0;
        cJSON *ed = cJSON_CreateObject();
        cJSON_AddItemToArray(edges, ed);
        cJSON_AddNumberToObject(ed, "from", (double)(parent ? id : job_id));
        cJSON_AddNumberToObject(ed, "to", (double)(parent ? job_id : id));
    }
    if (rv != SQLITE_DONE) {
        rc = store_int_dberr(s, e, "job graph");
        goto out;
    }
    if (!found) {
        rc = rs_error_set(e, RS_ENOENT, "job %" PRId64 ": no such job", job_id);
        goto out;
    }
    *out = o;
    o = NULL;
out:
    sqlite3_finalize(st);
    cJSON_Delete(o);
    return rc;
}

rs_err store_job_loss(store *s, int64_t job_id, cJSON **out_array, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL) {
        return rs_error_set(e, RS_ENOMEM, "job %" PRId64 " loss: out of memory", job_id);
    }
    rs_err rc = prep(s,
                     "SELECT t.idx, l.attempt_id, l.step, l.loss FROM train_loss l "
                     "JOIN task t ON t.id = l.task_id WHERE t.job_id = ?1 ORDER BY t.idx, l.id",
                     &st, e);
    if (rc != RS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    int rv;
    while ((rv = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *p = cJSON_CreateObject();
        if (p == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "job %" PRId64 " loss: out of memory", job_id);
            goto out;
        }
        cJSON_AddItemToArray(arr, p);
        cJSON_AddNumberToObject(p, "task", (double)sqlite3_column_int64(st, 0));
        cJSON_AddNumberToObject(p, "attempt", (double)sqlite3_column_int64(st, 1));
        cJSON_AddNumberToObject(p, "step", (double)sqlite3_column_int64(st, 2));
        cJSON_AddNumberToObject(p, "loss", sqlite3_column_double(st, 3));
    }
    if (rv != SQLITE_DONE) {
        rc = store_int_dberr(s, e, "job loss");
        goto out;
    }
    *out_array = arr;
    arr = NULL;
out:
    sqlite3_finalize(st);
    cJSON_Delete(arr);
    return rc;
}
