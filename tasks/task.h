/*
 * task.h: the interface every job kind implements (ingest, noop; later
 * removal, matte, fix, dialogue).
 *
 * A kind has three entry points, run in three places:
 *   plan      rushesd, at submit: validate the job params (unknown fields
 *             and bad values -> RS_EINVAL, paths outside the media roots ->
 *             RS_EPERM) and split the job into task params, one per task.
 *             Must be quick and must not read file contents.
 *   run       a child process of rushes-worker, one task: does the work,
 *             reports progress and log lines through io, returns a result.
 *   finalize  rushesd, once every task succeeded: combines the task results
 *             into the job result, writes job-level outputs atomically
 *             (e.g. the ingest MHL) and lists clips to register.
 * Each must be idempotent: a task may run twice (lease lost, worker killed)
 * and finalize may run again after a daemon crash.
 *
 * Ownership: *out trees are created by the callee and owned by the caller
 * (cJSON_Delete). Inputs are borrowed.
 */
#ifndef RS_TASK_H
#define RS_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"

/* What the daemon side knows when planning or finalising. */
typedef struct task_env {
    const char *const *media_roots; /* resolved folders jobs may read */
    size_t nmedia_roots;
    const char *data_dir;           /* daemon's data folder (outputs, MHLs) */
    const char *project;
    int64_t job_id;                 /* 0 while planning */
} task_env;

/* How a running task talks to its worker (stdout lines in the child). */
typedef struct task_io {
    void *ud;
    /* frac in 0..1; msg may be NULL */
    void (*progress)(void *ud, double frac, const char *msg);
    void (*log)(void *ud, const char *line);
    /* NULL, or true once the worker asked the run to yield (its training
     * window closed): a kind with .yields checkpoints, then returns
     * RS_ECANCELED; the child exits TASK_EXIT_YIELDED (docs/PROTOCOL.md). */
    bool (*should_yield)(void *ud);
} task_io;

/* Exit status of a task child that yielded at a checkpoint (EX_TEMPFAIL). */
#define TASK_EXIT_YIELDED 75

typedef struct task_kind {
    const char *name;
    rs_err (*plan)(const cJSON *params, const task_env *env, cJSON **task_params_array,
                   rs_error *e);
    rs_err (*run)(const cJSON *task_params, const task_io *io, cJSON **result, rs_error *e);
    /* results: array of task result objects in task order. *clips: array of
     * {"name","path","hash","info"} objects (may be empty). */
    rs_err (*finalize)(const cJSON *params, const cJSON *results, const task_env *env,
                       cJSON **job_result, cJSON **clips, rs_error *e);
    /* Compliance (ledger/, docs/COMPLIANCE.md): which likeness a job with
     * these params alters, as TASK_LIKENESS_* bits; NULL or 0 = none (wire
     * removal, ingest). A likeness job names the people it touches in
     * params.performers (array of names) and needs a valid consent for each,
     * checked at submit and again at dispatch. */
    unsigned (*likeness)(const cJSON *params);
    /* Polls io->should_yield and checkpoints: the child then catches SIGTERM
     * as a request to yield instead of dying at once. */
    bool yields;
    /* Alters footage (ledger/, docs/COMPLIANCE.md): at lease rushesd appends
     * the job's "alteration_authorised" event and adds "ledger": {"event",
     * "project"} to the task params; the kind labels its outputs with them
     * (ledger_label_frame). false (the default) = params untouched. */
    bool alters;
} task_kind;

/* Likeness bits (same values as ledger.h's LEDGER_LIKENESS_*). */
#define TASK_LIKENESS_FACE 1u
#define TASK_LIKENESS_EYES 2u
#define TASK_LIKENESS_VOICE 4u
#define TASK_LIKENESS_BODY 8u

/* NULL if no kind has that name. */
const task_kind *task_kind_find(const char *name);

/* NULL-terminated list of every kind's name. */
const char *const *task_kind_names(void);

/* Helpers for kinds: formatted log line / progress through io. */
void task_logf(const task_io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
