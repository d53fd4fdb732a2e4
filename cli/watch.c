/*
 * watch.c: poll jobs until they finish and show their progress, either as a
 * live terminal redraw or as change-only plain lines for logs and pipes.
 * Finished jobs are not polled again. A server that cannot be reached is
 * retried for a while (a daemon restart should not kill a long watch).
 */
#include "watch.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "output.h"

#define UNREACHABLE_GIVE_UP_MS 30000

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static const char *job_state(const cJSON *job)
{
    const char *s = cli_json_str(job, "state");
    return s != NULL ? s : "unknown";
}

void cli_watch_plain_line(const cJSON *job, char *buf, size_t buflen)
{
    long long id = (long long)cli_json_num(job, "id", 0);
    int pct = cli_percent(cli_json_num(job, "progress", 0));
    long long done = (long long)cli_json_num(job, "tasks_done", 0);
    long long total = (long long)cli_json_num(job, "tasks_total", 0);
    const char *err = cli_json_str(job, "error");
    snprintf(buf, buflen, "job %lld %s %d%% (%lld/%lld tasks)%s%s", id, job_state(job), pct, done,
             total, err != NULL ? ": " : "", err != NULL ? err : "");
    cli_sanitize(buf);
}

void cli_watch_tty_row(const cJSON *job, int width, char *buf, size_t buflen)
{
    if (buflen == 0) {
        return;
    }
    long long id = (long long)cli_json_num(job, "id", 0);
    const char *kind = cli_json_str(job, "kind");
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%6lld %-8.8s ", id, kind != NULL ? kind : "?");
    char suffix[512];
    const char *err = cli_json_str(job, "error");
    snprintf(suffix, sizeof suffix, " %3d%% %-9s %lld/%lld tasks%s%s",
             cli_percent(cli_json_num(job, "progress", 0)), job_state(job),
             (long long)cli_json_num(job, "tasks_done", 0),
             (long long)cli_json_num(job, "tasks_total", 0), err != NULL ? "  " : "",
             err != NULL ? err : "");
    /* The bar takes what the text leaves, within reason; the error text is
     * what gets cut when the terminal is narrow. */
    int fixed = (int)strlen(prefix) + 36;
    int barw = width - fixed;
    if (barw > 42) {
        barw = 42;
    }
    if (barw < 12) {
        barw = 12;
    }
    char bar[64];
    cli_progress_bar(cli_json_num(job, "progress", 0), barw, bar, sizeof bar);
    snprintf(buf, buflen, "%s%s%s", prefix, bar, suffix);
    cli_sanitize(buf);
    if (width > 1) {
        cli_truncate(buf, (size_t)width - 1);
    }
}

void cli_watch_summary(const cJSON *const *jobs, size_t n, char *buf, size_t buflen)
{
    static const char *const states[] = {"queued", "running",   "succeeded",
                                         "failed", "cancelled", NULL};
    size_t counts[6] = {0};
    for (size_t i = 0; i < n; i++) {
        const char *s = job_state(jobs[i]);
        size_t k = 0;
        while (states[k] != NULL && strcmp(states[k], s) != 0) {
            k++;
        }
        counts[k]++;
    }
    int off = snprintf(buf, buflen, "%zu job%s:", n, n == 1 ? "" : "s");
    const char *sep = " ";
    for (size_t k = 0; k < 6 && off >= 0 && (size_t)off < buflen; k++) {
        if (counts[k] == 0) {
            continue;
        }
        off += snprintf(buf + off, buflen - (size_t)off, "%s%zu %s", sep, counts[k],
                        states[k] != NULL ? states[k] : "other");
        sep = ", ";
    }
}

typedef struct watched {
    int64_t id;
    cJSON *job;      /* last seen, NULL before the first answer */
    char line[1024]; /* last plain line printed */
    bool done;
} watched;

/* A stand-in for a job the server no longer knows, so it renders and fails. */
static cJSON *gone_job(int64_t id, const char *why)
{
    cJSON *j = cJSON_CreateObject();
    if (j == NULL) {
        return NULL;
    }
    cJSON_AddNumberToObject(j, "id", (double)id);
    cJSON_AddStringToObject(j, "state", "failed");
    cJSON_AddStringToObject(j, "error", why);
    return j;
}

int cli_watch(const cli_ctx *c, const int64_t *ids, size_t n, int interval_ms, cJSON **final)
{
    int rc = CLI_EXIT_OK;
    watched *w = calloc(n > 0 ? n : 1, sizeof *w);
    const cJSON **rows = calloc(n > 0 ? n : 1, sizeof *rows);
    if (w == NULL || rows == NULL) {
        free(w);
        free(rows);
        fprintf(c->err, "rushes: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        w[i].id = ids[i];
    }
    bool live = c->tty && !c->json;
    int drawn = 0;
    int64_t unreachable_since = 0;
    char unreachable[600] = "";

    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++) {
            if (w[i].done) {
                continue;
            }
            char path[64];
            snprintf(path, sizeof path, "/api/v1/jobs/%lld", (long long)w[i].id);
            cJSON *doc = NULL;
            rs_error e;
            rs_error_clear(&e);
            rs_err r = cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, NULL, &e);
            cJSON *job = NULL;
            if (r == RS_ENET || r == RS_ETIMEDOUT) {
                int64_t now = rs_clock_mono_ms();
                if (unreachable_since == 0) {
                    unreachable_since = now;
                }
                snprintf(unreachable, sizeof unreachable, "%s", rs_error_text(&e));
                if (now - unreachable_since >= UNREACHABLE_GIVE_UP_MS) {
                    if (drawn > 0) {
                        fputc('\n', c->out);
                    }
                    fprintf(c->err, "rushes: %s\n", unreachable);
                    rc = CLI_EXIT_FAIL;
                    goto out;
                }
                left++;
                continue;
            }
            unreachable_since = 0;
            unreachable[0] = '\0';
            if (r != RS_OK) {
                /* 404 and the like: the job is gone; say why and count it failed. */
                job = gone_job(w[i].id, rs_error_text(&e));
            } else {
                job = cJSON_DetachItemFromObjectCaseSensitive(doc, "job");
                if (!cJSON_IsObject(job)) {
                    cJSON_Delete(job);
                    job = gone_job(w[i].id, "reply has no job object");
                }
            }
            cJSON_Delete(doc);
            if (job == NULL) {
                fprintf(c->err, "rushes: out of memory\n");
                rc = CLI_EXIT_FAIL;
                goto out;
            }
            cJSON_Delete(w[i].job);
            w[i].job = job;
            w[i].done = cli_state_finished(job_state(job));
            if (!w[i].done) {
                left++;
            }
            if (!live && !c->json) {
                char line[1024];
                cli_watch_plain_line(job, line, sizeof line);
                if (strcmp(line, w[i].line) != 0) {
                    fprintf(c->out, "%s\n", line);
                    fflush(c->out);
                    snprintf(w[i].line, sizeof w[i].line, "%s", line);
                }
            }
        }

        if (live) {
            if (drawn > 0) {
                fprintf(c->out, "\033[%dA", drawn);
            }
            drawn = 0;
            size_t nrows = 0;
            for (size_t i = 0; i < n; i++) {
                char row[1024];
                if (w[i].job != NULL) {
                    cli_watch_tty_row(w[i].job, c->width, row, sizeof row);
                    rows[nrows++] = w[i].job;
                } else {
                    snprintf(row, sizeof row, "%6lld (waiting for the server)", (long long)w[i].id);
                }
                fprintf(c->out, "\r\033[2K%s\n", row);
                drawn++;
            }
            char sum[1024];
            cli_watch_summary(rows, nrows, sum, sizeof sum);
            if (unreachable[0] != '\0') {
                size_t sl = strlen(sum);
                snprintf(sum + sl, sizeof sum - sl, "  (%s; retrying)", unreachable);
            }
            cli_sanitize(sum);
            if (c->width > 1) {
                cli_truncate(sum, (size_t)c->width - 1);
            }
            fprintf(c->out, "\r\033[2K%s\n", sum);
            drawn++;
            fflush(c->out);
        }
        if (left == 0) {
            break;
        }
        sleep_ms(interval_ms > 0 ? interval_ms : CLI_WATCH_INTERVAL_MS);
    }

    for (size_t i = 0; i < n; i++) {
        const char *s = job_state(w[i].job);
        if (strcmp(s, "succeeded") != 0) {
            rc = CLI_EXIT_FAIL;
        }
    }

out:
    if (final != NULL) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr != NULL && i < n; i++) {
            if (w[i].job != NULL) {
                cJSON_AddItemToArray(arr, w[i].job);
                w[i].job = NULL;
            }
        }
        *final = arr;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(w[i].job);
    }
    free(w);
    free(rows);
    return rc;
}
