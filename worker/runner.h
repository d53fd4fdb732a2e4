/*
 * runner.h: runs one task attempt in a child process on a libuv loop.
 *
 * The child is the worker's own executable run as `<exe> task <kind>`; it
 * gets the params JSON on stdin (then EOF) and speaks the child protocol on
 * stdout, one line each (docs/PROTOCOL.md):
 *     progress <frac> [message]
 *     log <text>
 *     result <json>          (once, last)
 * Anything else on stdout, and every stderr line, counts as a log line.
 * Exit 0 with a result line = succeeded; anything else = failed, with an
 * error that says how (exit code, or "killed by signal 11 (SIGSEGV)") and
 * the last lines kept. A crashing child never harms the worker.
 *
 * Threading: everything (start, cancel, callbacks) happens on the loop's
 * thread. The runner owns its handles and frees itself after `done` has
 * returned and its handles are closed; the caller must not touch it after
 * `done`. The caller must ignore SIGPIPE (a child that exits before reading
 * its stdin makes the write fail with EPIPE, which the runner ignores).
 * No network is involved: tests drive a runner on their own loop.
 */
#ifndef RS_WORKER_RUNNER_H
#define RS_WORKER_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "err.h"
#include "proto.h"

#define RUNNER_KEEP_LINES 20             /* last lines kept for the report */
#define RUNNER_MAX_LINE 1024             /* longer log lines are cut */
#define RUNNER_MAX_RESULT (768u * 1024u) /* a result line over this fails the task */
#define RUNNER_KILL_GRACE_MS 5000        /* SIGTERM, then SIGKILL after this */

typedef struct runner runner;

typedef struct runner_result {
    proto_outcome outcome;
    int exit_code;               /* -1 if killed by a signal */
    int signal;                  /* 0 if it exited */
    bool cancelled;              /* runner_cancel() was called */
    char error[PROTO_MAX_ERROR]; /* "" when succeeded */
    cJSON *result;               /* owned by the runner; the callee may take it and set NULL */
    size_t nlines;               /* kept lines, oldest first */
    char lines[RUNNER_KEEP_LINES][RUNNER_MAX_LINE + 1];
} runner_result;

typedef struct runner_callbacks {
    void *ud;
    /* frac in 0..1; msg is NULL when the line had none. */
    void (*progress)(void *ud, runner *r, double frac, const char *msg);
    /* One log line (stdout "log ..." or stderr), already cut to RUNNER_MAX_LINE. */
    void (*log)(void *ud, runner *r, const char *line);
    /* Exactly once per started runner; r is freed after this returns. */
    void (*done)(void *ud, runner *r, runner_result *res);
} runner_callbacks;

typedef struct runner_opts {
    const char *exe;     /* path of rushes-worker (uv_exepath) */
    const char *kind;    /* task kind name */
    const cJSON *params; /* borrowed; serialised at start */
    int64_t attempt_id;  /* for log messages and the caller's lookup */
    const char *device;  /* exported to the child as RUSHES_DEVICE; NULL = none */
    int kill_grace_ms;   /* 0 = RUNNER_KILL_GRACE_MS */
    bool no_inline;      /* force a child even for the trivial noop */
    runner_callbacks cb;
} runner_opts;

/*
 * Starts the attempt. On success *out is the runner and `done` will be
 * called later (never from inside runner_start). On failure nothing was
 * started and no callback is called.
 */
rs_err runner_start(uv_loop_t *loop, const runner_opts *opts, runner **out, rs_error *e);

/* Asks the child to stop: SIGTERM to its process group, SIGKILL after the
 * grace period. The attempt still ends through `done` (failed, cancelled).
 * Repeated calls are harmless. */
void runner_cancel(runner *r);

int64_t runner_attempt_id(const runner *r);

/* True when the attempt runs inside the worker (see runner.c). */
bool runner_is_inline(const runner *r);

#endif
