/*
 * watch.h: following jobs until they finish.
 *
 * On a terminal: a live redraw (ANSI cursor-up + clear-line) with one
 * progress bar per job, refreshed every interval. Otherwise: one plain line
 * per job whenever its line changes, e.g. "job 12 running 40% (2/5 tasks)".
 * With --json: nothing while waiting; the caller prints the final jobs.
 */
#ifndef RS_CLI_WATCH_H
#define RS_CLI_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cli.h"

#define CLI_WATCH_INTERVAL_MS 250

/* "job 12 running 40% (2/5 tasks)", plus ": ERROR" when the job has one. */
void cli_watch_plain_line(const cJSON *job, char *buf, size_t buflen);

/* One redraw row at most width-1 columns:
 * "  12 ingest    [#######-------------]  37% running    2/5 tasks". */
void cli_watch_tty_row(const cJSON *job, int width, char *buf, size_t buflen);

/* "3 jobs: 1 queued, 1 running, 1 succeeded" */
void cli_watch_summary(const cJSON *const *jobs, size_t n, char *buf, size_t buflen);

/*
 * Polls GET /api/v1/jobs/{id} for each id until every job is finished.
 * Returns CLI_EXIT_OK only if every job succeeded, CLI_EXIT_FAIL otherwise
 * (a job failed or was cancelled or vanished, or the server stayed
 * unreachable for 30 s). If final is non-NULL, *final is a new array of the
 * last job objects seen (caller deletes).
 */
int cli_watch(const cli_ctx *c, const int64_t *ids, size_t n, int interval_ms, cJSON **final);

#endif
