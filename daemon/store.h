/*
 * store.h: rushesd's SQLite store, the only writer of the database.
 *
 * Owns the job model of docs/ARCHITECTURE.md: project -> clip, job -> task
 * -> attempt, worker, model, ledger_event. Opens the file in WAL mode with
 * synchronous=FULL, checks PRAGMA application_id / user_version and runs the
 * forward migrations embedded from sql/migrations/. A file that is not a
 * Rushes database (foreign application_id, tables it does not know, newer
 * schema, unreadable) is refused *without being modified*.
 *
 * Threading: one store is used by one thread only (rushesd's libuv loop).
 *
 * Transactions: every mutating call is atomic on its own. To group-commit,
 * the loop brackets many calls with store_batch_begin()/store_batch_commit();
 * inside a batch each call runs under its own SAVEPOINT, so a call that fails
 * leaves the others intact. Nothing is durable, and nothing may be
 * acknowledged to a client or worker, until store_batch_commit() returns
 * RS_OK.
 *
 * Time: every call that depends on time takes now_ms (wall clock, ms) from
 * the caller, so tests drive time explicitly.
 *
 * Results that describe rows are returned as cJSON trees the caller owns and
 * frees with cJSON_Delete(). Field names in them are the REST API's
 * (docs/API.md), so the API layer passes them through.
 */
#ifndef RS_STORE_H
#define RS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"

typedef struct store store;

/* Job and task states; text forms are the lower-case names in docs/API.md. */
typedef enum store_state {
    STORE_QUEUED = 0,
    STORE_LEASED,
    STORE_RUNNING,
    STORE_RETRY_WAIT,
    STORE_SUCCEEDED,
    STORE_FAILED,
    STORE_CANCELLED,
} store_state;

const char *store_state_name(store_state s);
/* Returns -1 for an unknown name. */
int store_state_parse(const char *name);

/* ---- lifecycle ---------------------------------------------------------- */

/* Opens or creates path. create_ok=false refuses a missing file. */
rs_err store_open(const char *path, bool create_ok, store **out, rs_error *e);
/* Accepts NULL. Rolls back an open batch. */
void store_close(store *s);
/* PRAGMA user_version the code expects (number of migrations). */
int store_schema_version(void);

rs_err store_batch_begin(store *s, rs_error *e);
rs_err store_batch_commit(store *s, rs_error *e);
void store_batch_rollback(store *s);

/* The underlying connection, for modules that keep their own tables in the
 * same database and transaction (ledger/). Same thread rule as the store. */
struct sqlite3;
struct sqlite3 *store_sqlite(store *s);

/* ---- jobs --------------------------------------------------------------- */

typedef struct store_job_spec {
    const char *project;          /* created on first use */
    const char *kind;             /* validated by the caller */
    const char *params_json;      /* canonical JSON text of the job params */
    int priority;                 /* higher runs first, -100..100 */
    int max_attempts;             /* per task, 1..20 */
    const int64_t *depends_on;    /* job ids that must succeed first */
    size_t ndepends;
    const char *idempotency_key;  /* NULL or "" for none; unique per project */
    const char *const *task_params_json; /* one JSON text per task, >= 1 */
    size_t ntasks;
    const char *pool;             /* NULL or "" = any worker */
    uint64_t min_memory_mb;       /* worker device memory needed, 0 = any */
    const char *tenant;           /* owner of a project this submit creates; NULL = farm-wide */
    const char *run_window;       /* NULL = none; else cron_window_to_json text (closed) */
} store_job_spec;

/*
 * Inserts a job with its tasks. A missing dependency -> RS_ENOENT naming it.
 * If idempotency_key was already used in that project, nothing is inserted,
 * *job_id is the existing job and *existed = true. A dependency that has
 * already failed or been cancelled makes the new job fail at once with the
 * reason (it is still inserted and acknowledged).
 */
rs_err store_job_submit(store *s, const store_job_spec *spec, int64_t now_ms, int64_t *job_id,
                        bool *existed, rs_error *e);

/* Full job record: fields of docs/API.md plus "tasks" with "attempts". */
rs_err store_job_get(store *s, int64_t job_id, cJSON **out, rs_error *e);

/* Summaries, newest first. state/project NULL = any. limit 1..1000. */
rs_err store_job_list(store *s, const char *state, const char *project, int limit,
                      int64_t before_id, cJSON **out_array, rs_error *e);

/* As store_job_list, only jobs of projects owned by tenant (NULL = any). */
rs_err store_job_list_tenant(store *s, const char *state, const char *project, const char *tenant,
                             int limit, int64_t before_id, cJSON **out_array, rs_error *e);

/*
 * Cancel: a queued/running job becomes cancelled; its queued/retry_wait tasks
 * are cancelled, leased/running attempts are marked cancel_requested (the
 * worker learns on its next heartbeat/progress and kills the task).
 * Dependants that have not finished fail with "dependency job N cancelled".
 * RS_ESTATE if the job is already finished. RS_ENOENT if none.
 */
rs_err store_job_cancel(store *s, int64_t job_id, int64_t now_ms, rs_error *e);

/*
 * Retry a failed or cancelled job: its unfinished/failed tasks go back to
 * queued with fresh attempt counts; dependants that failed only because of
 * it are requeued too. RS_ESTATE otherwise.
 */
rs_err store_job_retry(store *s, int64_t job_id, int64_t now_ms, rs_error *e);

/* Log lines of all attempts of the job, oldest first, at most limit. */
rs_err store_job_log(store *s, int64_t job_id, int limit, cJSON **out_array, rs_error *e);

/*
 * Jobs whose tasks have all succeeded but which are not yet marked done:
 * the daemon finalises them (kind-specific: ingest writes its MHL and
 * registers clips) and then calls store_job_complete(). Returned as an array
 * of job ids (cJSON numbers), oldest first, at most limit.
 */
rs_err store_jobs_to_finalize(store *s, int limit, cJSON **out_array, rs_error *e);

/* Results of the job's tasks in task order: array of parsed result objects. */
rs_err store_job_task_results(store *s, int64_t job_id, cJSON **out_array, rs_error *e);

/* *yes: the job is still running with every task done (finalisation found
 * it so; a cancel since then says no). */
rs_err store_job_finalisable(store *s, int64_t job_id, bool *yes, rs_error *e);

/* A named mark inside the open batch: everything written after
 * store_mark_set is kept by store_mark_keep or undone by store_mark_undo
 * (one job's finalisation, which may fail half way). */
rs_err store_mark_set(store *s, rs_error *e);
rs_err store_mark_keep(store *s, rs_error *e);
rs_err store_mark_undo(store *s, rs_error *e);

/* Marks the job succeeded with result_json, or failed with error if
 * result_json is NULL (and fails its dependants). Idempotent. */
rs_err store_job_complete(store *s, int64_t job_id, const char *result_json, const char *error,
                          int64_t now_ms, rs_error *e);

/* ---- clips -------------------------------------------------------------- */

typedef struct store_clip_spec {
    const char *project;
    int64_t job_id;           /* ingest job that registered it */
    const char *name;         /* e.g. "clip_01.mp4" or "shot.%04d.exr" */
    const char *path;         /* resolved path or pattern */
    const char *hash;         /* xxh3 hex of the file, or of the per-frame hash list */
    const char *info_json;    /* probe result */
} store_clip_spec;

/* Upserts by (project, path, hash); returns the clip id. */
rs_err store_clip_register(store *s, const store_clip_spec *spec, int64_t now_ms,
                           int64_t *clip_id, rs_error *e);
rs_err store_clip_list(store *s, const char *project, int64_t job_id, cJSON **out_array,
                       rs_error *e);

/* As store_clip_list, only clips of projects owned by tenant (NULL = any). */
rs_err store_clip_list_tenant(store *s, const char *project, int64_t job_id, const char *tenant,
                              cJSON **out_array, rs_error *e);

/* ---- workers and leases -------------------------------------------------- */

/* Registers (or re-registers by name) a worker; caps_json is its hello. */
rs_err store_worker_hello(store *s, const char *name, const char *pool, const char *caps_json,
                          int64_t now_ms, int64_t *worker_id, rs_error *e);
rs_err store_worker_list(store *s, int64_t now_ms, cJSON **out_array, rs_error *e);

typedef struct store_worker_fit {
    const char *const *kinds;  /* kinds the worker runs */
    size_t nkinds;
    const char *pool;          /* the worker's pool ("" = default) */
    uint64_t memory_mb;        /* its largest device memory */
} store_worker_fit;

typedef struct store_lease {
    int64_t task_id;
    int64_t attempt_id;
    int64_t job_id;
    char kind[128];
    char *params_json;         /* malloc'd; caller frees */
} store_lease;

/*
 * Picks the next ready task the worker fits: task queued (or retry_wait
 * whose time has come), job not cancelled, every dependency succeeded.
 * Order: job priority (high first), then fair share (the project with the
 * fewest leased/running tasks), then age (job id, task index). Creates an
 * attempt leased until now_ms + ttl_ms. *found = false if nothing fits.
 * RS_ENOENT for an unknown worker id.
 */
rs_err store_task_lease(store *s, int64_t worker_id, const store_worker_fit *fit, int64_t now_ms,
                        int64_t ttl_ms, store_lease *out, bool *found, rs_error *e);

/*
 * Heartbeat for the attempts a worker runs: extends each live lease to
 * now_ms + ttl_ms, marks leased attempts running. For each given attempt
 * writes into *cancel those with cancel_requested, into *unknown those that
 * are not live attempts of this worker any more (expired, finished, moved).
 * Arrays are caller-owned with capacity n (the input count).
 */
rs_err store_worker_heartbeat(store *s, int64_t worker_id, const int64_t *attempt_ids, size_t n,
                              int64_t now_ms, int64_t ttl_ms, int64_t *cancel, size_t *ncancel,
                              int64_t *unknown, size_t *nunknown, rs_error *e);

/* Records progress (0..1, or < 0 unknown) and log lines; *cancel = true if
 * the attempt should stop. Ignored (RS_OK) for an attempt that is no longer
 * live. */
rs_err store_attempt_progress(store *s, int64_t worker_id, int64_t attempt_id, double progress,
                              const char *const *lines, size_t nlines, int64_t now_ms,
                              bool *cancel, rs_error *e);

typedef struct store_report {
    int64_t worker_id;
    int64_t attempt_id;
    bool succeeded;
    int exit_code;
    int signal;
    const char *error;         /* NULL/"" when succeeded */
    const char *result_json;   /* NULL if none */
    const char *result_hash;
    const char *const *lines;  /* last log lines */
    size_t nlines;
} store_report;

/*
 * Applies a worker's final report. Idempotent: if the attempt is not the
 * task's live attempt (already reported, lease expired and moved on, task
 * cancelled) nothing changes and *accepted = false. A failure puts the task
 * in retry_wait with exponential backoff (base_backoff_ms * 2^(attempt-1),
 * capped at 10 min) until max_attempts, then fails the task, its job, and the
 * job's dependants. A success of the last task leaves the job for
 * store_jobs_to_finalize().
 */
rs_err store_attempt_report(store *s, const store_report *r, int64_t now_ms,
                            int64_t base_backoff_ms, bool *accepted, rs_error *e);

/* Worker says goodbye: its live attempts are released back to queued
 * (not counted as a failed attempt). */
rs_err store_worker_bye(store *s, int64_t worker_id, int64_t now_ms, rs_error *e);

/* Leases past their expiry: attempt -> "lost", task -> retry_wait (counts as
 * a failed attempt) or failed when attempts are exhausted. *n = how many. */
rs_err store_leases_expire(store *s, int64_t now_ms, int64_t base_backoff_ms, int *n,
                           rs_error *e);

/* Counts by state (jobs and tasks), for /healthz and metrics. */
rs_err store_counts(store *s, cJSON **out, rs_error *e);

/* ---- operations (0002, store_ops.c): see docs/OPERATIONS.md ------------- */

/* Token roles. "audit" reads (and audits); "submit" reads and submits;
 * "operate" also cancels, retries, re-prioritises, limits; "admin" all. */
typedef struct store_token {
    int64_t id;
    char tenant[65]; /* "*" = every tenant */
    char role[16];
} store_token;

/* hash_hex: 64 hex chars (BLAKE2b-256 of the secret; the secret is never stored). */
rs_err store_token_create(store *s, const char *tenant, const char *role, const char *name,
                          const char *hash_hex, int64_t now_ms, int64_t *id, rs_error *e);
/* A live (not revoked) token by hash; *found false otherwise. Notes its use
 * (at most once a minute, so reads stay cheap). */
rs_err store_token_find(store *s, const char *hash_hex, int64_t now_ms, store_token *out,
                        bool *found, rs_error *e);
/* Tokens (never hashes), of tenant or all (NULL). */
rs_err store_token_list(store *s, const char *tenant, cJSON **out_array, rs_error *e);
/* Revokes at once. RS_ENOENT if none of tenant (NULL = any) has that id. */
rs_err store_token_revoke(store *s, int64_t id, const char *tenant, int64_t now_ms, rs_error *e);

/* Owner of a project / of a job's project. *exists false if there is none;
 * tenant "" for a farm-wide project. */
rs_err store_project_tenant(store *s, const char *project, bool *exists, char tenant[65],
                            rs_error *e);
rs_err store_job_tenant(store *s, int64_t job_id, bool *exists, char tenant[65], rs_error *e);

/* Projects visible to tenant (NULL = all): name, tenant, max_running, job counts. */
rs_err store_project_list(store *s, const char *tenant, cJSON **out_array, rs_error *e);
/* Sets a project's concurrency limit (0 = none); creates it for tenant if missing. */
rs_err store_project_set_limit(store *s, const char *project, const char *tenant, int max_running,
                               int64_t now_ms, rs_error *e);

/* New priority for a queued/running job and its unfinished tasks.
 * RS_ESTATE if finished, RS_ENOENT if none. */
rs_err store_job_set_priority(store *s, int64_t job_id, int priority, rs_error *e);
/* Drains (true) or undrains a worker. RS_ENOENT if none. */
rs_err store_worker_drain(store *s, int64_t worker_id, bool drained, rs_error *e);

/* Farm figures for /metrics (docs/OPERATIONS.md lists them): an object
 * {"jobs": {"kind|state": n}, "tasks_dispatched", "attempts_failed",
 *  "tasks_retried", "lease_expiries", "workers_up", "workers_drained",
 *  "queue_wait": {"buckets": [..], "counts": [..cumulative..], "sum", "count"},
 *  "run_time": {...}}. bounds_s: histogram bucket bounds in seconds. */
rs_err store_metrics(store *s, int64_t now_ms, const double *bounds_s, size_t nbounds,
                     cJSON **out, rs_error *e);

/* ---- training windows (store_ops.c) -------------------------------------- */

/* Queued/running jobs with a window: [{"id": n, "window": {...stored object}}]. */
rs_err store_windowed_jobs(store *s, cJSON **out_array, rs_error *e);

/*
 * Stores a job's window text (with its "open" flag; the lease query skips
 * tasks of a job whose window is not open). Closing also asks the job's
 * live attempts to yield (attempt.cancel_requested = 2): their report puts
 * the task back to queued without counting an attempt. *nyield = attempts
 * asked (may be NULL).
 */
rs_err store_job_window_set(store *s, int64_t job_id, const char *window_json, bool open,
                            int *nyield, rs_error *e);

/* ---- schedules ----------------------------------------------------------- */

typedef struct store_schedule_spec {
    const char *project;
    const char *tenant;   /* owner if the project is created; NULL farm-wide */
    const char *name;
    const char *cron;     /* validated by the caller */
    const char *tz;
    const char *job_json; /* the submit body */
    int64_t next_at;      /* first firing */
} store_schedule_spec;

rs_err store_schedule_add(store *s, const store_schedule_spec *spec, int64_t now_ms, int64_t *id,
                          rs_error *e);
rs_err store_schedule_list(store *s, const char *tenant, cJSON **out_array, rs_error *e);
rs_err store_schedule_remove(store *s, int64_t id, const char *tenant, rs_error *e);
/* Enabled schedules with next_at <= now_ms: [{"id","project","tenant","cron","tz","job",
 * "next_at"}], at most limit. */
rs_err store_schedules_due(store *s, int64_t now_ms, int limit, cJSON **out_array, rs_error *e);
/* Records a firing: next_at moves on; last_job_id = job_id (0 = none). */
rs_err store_schedule_fired(store *s, int64_t id, int64_t fired_at, int64_t next_at,
                            int64_t job_id, rs_error *e);

/* Consistent online copy of the database file at path into dest (SQLite's
 * backup API over a separate read connection, so the loop is not blocked by
 * a long copy and the copy is one snapshot). dest must not exist. */
rs_err store_backup_file(const char *path, const char *dest, rs_error *e);

/* ---- job page: DAG neighbours and loss history (store_ops.c) ------------- */

/*
 * The job and its direct parents (depends_on) and children (jobs that
 * depend on it), as {"nodes": [{"id", "project", "kind", "state",
 * "progress", "role": "self"|"parent"|"child"}], "edges": [{"from": parent,
 * "to": child}]}. tenant non-NULL leaves out jobs of projects of other
 * tenants (and their edges). RS_ENOENT if job_id does not exist.
 */
rs_err store_job_graph(store *s, int64_t job_id, const char *tenant, cJSON **out, rs_error *e);

/*
 * The job's training loss history (table train_loss, filled from its tasks'
 * "step N/M loss X" progress lines by a trigger, at most 1000 points a task,
 * older ones thinned): [{"task": index, "attempt", "step", "loss"}] in
 * report order. [] for a job that reported none.
 */
rs_err store_job_loss(store *s, int64_t job_id, cJSON **out_array, rs_error *e);

#endif
