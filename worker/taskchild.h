/*
 * taskchild.h: the child side of a task attempt, `rushes-worker task KIND`.
 *
 * Reads the task params (JSON, at most TASKCHILD_MAX_PARAMS bytes) from
 * stdin, runs the kind, and speaks the child protocol on stdout (see
 * runner.h): progress/log lines while it runs, then `result <json>` and exit
 * 0, or `log <error>` and exit 1. Every line is flushed as it is written so
 * the worker sees progress live.
 */
#ifndef RS_WORKER_TASKCHILD_H
#define RS_WORKER_TASKCHILD_H

#include <stdio.h>

#define TASKCHILD_MAX_PARAMS (16u * 1024u * 1024u)

/* Runs kind with params read from in, writing protocol lines to out.
 * Returns the process exit code: 0, or on failure 1 (noop: its exit_code). */
int taskchild_run(const char *kind, FILE *in, FILE *out);

#endif
