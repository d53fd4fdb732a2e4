/*
 * metrics.c: renders store_metrics() and the HTTP counters as Prometheus
 * text. Every family gets HELP and TYPE lines, so `promtool check metrics`
 * accepts the output.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_bounds[METRICS_NBOUNDS] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                                2.5,  5,    10,  30,   60,  300};

typedef struct buf {
    char *p;
    size_t n;
    size_t cap;
    int oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(buf *b, const char *fmt, ...)
{
    if (b->oom) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)k;
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static double num(const cJSON *m, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Label values are kinds and states: [A-Za-z0-9._-]; escape anyway. */
static void put_label(buf *b, const char *v)
{
    for (const char *c = v; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\') {
            put(b, "\\%c", *c);
        } else if (*c == '\n') {
            put(b, "\\n");
        } else {
            put(b, "%c", *c);
        }
    }
}

static void family(buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(buf *b, const char *name, const char *help, const cJSON *h)
{
    family(b, name, "histogram", help);
    const cJSON *bounds = cJSON_GetObjectItemCaseSensitive(h, "buckets");
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(h, "counts");
    int n = cJSON_GetArraySize(bounds);
    for (int i = 0; i < n; i++) {
        put(b, "%s_bucket{le=\"%g\"} %.0f\n", name, cJSON_GetArrayItem(bounds, i)->valuedouble,
            cJSON_GetArrayItem(counts, i)->valuedouble);
    }
    put(b, "%s_bucket{le=\"+Inf\"} %.0f\n", name, num(h, "count"));
    put(b, "%s_sum %.6f\n", name, num(h, "sum"));
    put(b, "%s_count %.0f\n", name, num(h, "count"));
}

char *metrics_render(const cJSON *m, const uint64_t *codes, size_t ncodes)
{
    buf b = {.p = malloc(4096), .n = 0, .cap = 4096, .oom = 0};
    if (b.p == NULL) {
        return NULL;
    }
    b.p[0] = '\0';
    family(&b, "rushes_jobs", "gauge", "Jobs by kind and state.");
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(m, "jobs");
    static const char *const states[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    /* Every state of every kind seen, zeros included, so dashboards and
     * rate() see a series from the start. */
    const cJSON *it = NULL;
    char seen[64][128];
    size_t nseen = 0;
    cJSON_ArrayForEach(it, jobs)
    {
        const char *bar = strchr(it->string, '|');
        size_t klen = bar != NULL ? (size_t)(bar - it->string) : strlen(it->string);
        if (klen >= sizeof seen[0]) {
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < nseen; i++) {
            dup = dup || (strlen(seen[i]) == klen && strncmp(seen[i], it->string, klen) == 0);
        }
        if (!dup && nseen < 64) {
            memcpy(seen[nseen], it->string, klen);
            seen[nseen][klen] = '\0';
            nseen++;
        }
    }
    for (size_t i = 0; i < nseen; i++) {
        for (size_t k = 0; k < 5; k++) {
            char key[200];
            snprintf(key, sizeof key, "%s|%s", seen[i], states[k]);
            put(&b, "%s", "rushes_jobs{kind=\"");
            put_label(&b, seen[i]);
            put(&b, "\",state=\"%s\"} %.0f\n", states[k], num(jobs, key));
        }
    }
    static const struct {
        const char *key;
        const char *name;
        const char *type;
        const char *help;
    } simple[] = {
        {"tasks_dispatched", "rushes_tasks_dispatched_total", "counter",
         "Task attempts leased to workers."},
        {"attempts_failed", "rushes_task_attempts_failed_total", "counter",
         "Task attempts that failed or were lost."},
        {"tasks_retried", "rushes_tasks_retried_total", "counter",
         "Task attempts after a task's first (retries)."},
        {"lease_expiries", "rushes_lease_expiries_total", "counter",
         "Leases that expired without a heartbeat."},
        {"tasks_failed", "rushes_tasks_failed", "gauge", "Tasks failed for good."},
        {"tasks_running", "rushes_tasks_running", "gauge", "Tasks leased or running now."},
        {"tasks_ready", "rushes_tasks_ready", "gauge", "Tasks waiting for a worker."},
        {"workers_up", "rushes_workers_up", "gauge", "Workers connected."},
        {"workers_drained", "rushes_workers_drained", "gauge",
         "Connected workers that are drained."},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        family(&b, simple[i].name, simple[i].type, simple[i].help);
        put(&b, "%s %.0f\n", simple[i].name, num(m, simple[i].key));
    }
    histogram(&b, "rushes_queue_wait_seconds",
              "Time from a job's submit to each task's first lease.",
              cJSON_GetObjectItemCaseSensitive(m, "queue_wait"));
    histogram(&b, "rushes_task_run_seconds", "Run time of finished task attempts.",
              cJSON_GetObjectItemCaseSensitive(m, "run_time"));
    static const struct {
        const char *key;
        const char *name;
        const char *help;
    } training[] = {
        {"steps_per_second", "rushes_training_steps_per_second",
         "Training steps a second of each running training task (its last two step lines)."},
        {"last_loss", "rushes_training_last_loss",
         "Last reported loss of each running training task."},
    };
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(m, "training");
    for (size_t i = 0; i < sizeof training / sizeof training[0]; i++) {
        family(&b, training[i].name, "gauge", training[i].help);
        cJSON_ArrayForEach(it, runs)
        {
            const cJSON *kind = cJSON_GetObjectItemCaseSensitive(it, "kind");
            put(&b, "%s{job=\"%.0f\",task=\"%.0f\",kind=\"", training[i].name, num(it, "job"),
                num(it, "task"));
            put_label(&b, cJSON_IsString(kind) ? kind->valuestring : "");
            put(&b, "\"} %.9g\n", num(it, training[i].key));
        }
    }
    family(&b, "rushes_http_requests_total", "counter",
           "HTTP responses by status code since rushesd started.");
    for (size_t i = 100; i < ncodes; i++) {
        if (codes[i] > 0) {
            put(&b, "rushes_http_requests_total{code=\"%zu\"} %llu\n", i,
                (unsigned long long)codes[i]);
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
