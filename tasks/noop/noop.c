/*
 * noop.c: the "noop" job kind. Does no media work; it exists so operators
 * can smoke-test a farm (dispatch, progress, failure and crash handling) and
 * so benchmarks measure the queue rather than a task.
 *
 * params: {"tasks":N (1..10000, default 1), "sleep_ms":0..3600000,
 *          "exit_code":0..255, "signal":0..64,
 *          "likeness":["face"|"eyes"|"voice"|"body",...], "performers":[names]}
 * likeness makes a noop job count as one that alters those likenesses, so
 * the consent gate (ledger/) can be exercised end to end before a real
 * likeness kind exists; performers is checked by the gate, not here.
 * A task sleeps sleep_ms in 10 steps with progress, then exits with
 * exit_code, or kills itself with signal (to show that a crashing task is
 * reported and does not take its worker down).
 * Test knob: "finalize_ms":0..60000 makes the job's finalize (run by
 * rushesd) sleep that long, so tests can show the daemon answers while a
 * job finalises (tests/integration/ledger_finalize_test.sh).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "task.h"

typedef struct noop_params {
    int tasks;
    int sleep_ms;
    int exit_code;
    int sig;
    int finalize_ms;
} noop_params;

static rs_err get_int(const cJSON *params, const char *field, int lo, int hi, int *out,
                      rs_error *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, field);
    if (v == NULL) {
        return RS_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble ||
        v->valuedouble < lo || v->valuedouble > hi) {
        return rs_error_set(e, RS_EINVAL, "params.%s: must be an integer in %d..%d", field, lo,
                            hi);
    }
    *out = (int)v->valuedouble;
    return RS_OK;
}

static rs_err parse(const cJSON *params, bool planning, noop_params *p, rs_error *e)
{
    static const char *const allowed[] = {"tasks",    "sleep_ms",   "exit_code", "signal",
                                          "likeness", "performers", "index", "finalize_ms"};
    memset(p, 0, sizeof *p);
    p->tasks = 1;
    if (!cJSON_IsObject(params)) {
        return rs_error_set(e, RS_EINVAL, "params: must be an object");
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, params)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
            if (strcmp(it->string, allowed[i]) == 0 &&
                (strcmp(allowed[i], "index") != 0 || !planning)) {
                ok = true;
            }
        }
        if (!ok) {
            return rs_error_set(e, RS_EINVAL, "params.%s: unknown field for kind noop",
                                it->string);
        }
    }
    const cJSON *lk = cJSON_GetObjectItemCaseSensitive(params, "likeness");
    if (lk != NULL && !cJSON_IsArray(lk)) {
        return rs_error_set(e, RS_EINVAL, "params.likeness: must be an array of face, eyes, "
                                          "voice, body");
    }
    const cJSON *k = NULL;
    cJSON_ArrayForEach(k, lk)
    {
        if (!cJSON_IsString(k) || (strcmp(k->valuestring, "face") != 0 &&
                                   strcmp(k->valuestring, "eyes") != 0 &&
                                   strcmp(k->valuestring, "voice") != 0 &&
                                   strcmp(k->valuestring, "body") != 0)) {
            return rs_error_set(e, RS_EINVAL, "params.likeness: must be an array of face, eyes, "
                                              "voice, body");
        }
    }
    rs_err rc = get_int(params, "tasks", 1, 10000, &p->tasks, e);
    if (rc == RS_OK) {
        rc = get_int(params, "sleep_ms", 0, 3600000, &p->sleep_ms, e);
    }
    if (rc == RS_OK) {
        rc = get_int(params, "exit_code", 0, 255, &p->exit_code, e);
    }
    if (rc == RS_OK) {
        rc = get_int(params, "signal", 0, 64, &p->sig, e);
    }
    if (rc == RS_OK) {
        rc = get_int(params, "finalize_ms", 0, 60000, &p->finalize_ms, e);
    }
    return rc;
}

static rs_err noop_plan(const cJSON *params, const task_env *env, cJSON **out, rs_error *e)
{
    noop_params p;
    rs_err rc = parse(params, true, &p, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    for (int i = 0; i < p.tasks; i++) {
        cJSON *t = cJSON_CreateObject();
        if (t == NULL) {
            cJSON_Delete(arr);
            return rs_error_set(e, RS_ENOMEM, "out of memory");
        }
        cJSON_AddItemToArray(arr, t);
        cJSON_AddNumberToObject(t, "index", i);
        cJSON_AddNumberToObject(t, "sleep_ms", p.sleep_ms);
        if (p.exit_code != 0) {
            cJSON_AddNumberToObject(t, "exit_code", p.exit_code);
        }
        if (p.sig != 0) {
            cJSON_AddNumberToObject(t, "signal", p.sig);
        }
    }
    *out = arr;
    return RS_OK;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static rs_err noop_run(const cJSON *params, const task_io *io, cJSON **result, rs_error *e)
{
    noop_params p;
    rs_err rc = parse(params, false, &p, e);
    if (rc != RS_OK) {
        return rc;
    }
    for (int step = 1; step <= 10 && p.sleep_ms > 0; step++) {
        sleep_ms(p.sleep_ms / 10);
        if (io->progress != NULL) {
            io->progress(io->ud, step / 10.0, NULL);
        }
    }
    if (p.sig != 0) {
        task_logf(io, "noop: raising signal %d as asked", p.sig);
        raise(p.sig);
    }
    if (p.exit_code != 0) {
        task_logf(io, "noop: exiting with code %d as asked", p.exit_code);
        return rs_error_set(e, RS_EINVAL, "noop task asked to fail with exit code %d",
                            p.exit_code);
    }
    cJSON *r = cJSON_CreateObject();
    if (r == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(params, "index");
    cJSON_AddNumberToObject(r, "index", cJSON_IsNumber(idx) ? idx->valuedouble : 0);
    *result = r;
    return RS_OK;
}

static rs_err noop_finalize(const cJSON *params, const cJSON *results, const task_env *env,
                            cJSON **job_result, cJSON **clips, rs_error *e)
{
    noop_params p;
    rs_error pe; /* the params were checked at submit */
    if (parse(params, true, &p, &pe) == RS_OK && p.finalize_ms > 0) {
        sleep_ms(p.finalize_ms);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *c = cJSON_CreateArray();
    if (r == NULL || c == NULL) {
        cJSON_Delete(r);
        cJSON_Delete(c);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    cJSON_AddNumberToObject(r, "tasks", cJSON_GetArraySize(results));
    *job_result = r;
    *clips = c;
    return RS_OK;
}

static unsigned noop_likeness(const cJSON *params)
{
    static const char *const names[] = {"face", "eyes", "voice", "body"};
    unsigned bits = 0;
    const cJSON *k = NULL;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(params, "likeness"))
    {
        for (unsigned i = 0; i < 4; i++) {
            if (cJSON_IsString(k) && strcmp(k->valuestring, names[i]) == 0) {
                bits |= 1u << i;
            }
        }
    }
    return bits;
}

const task_kind task_kind_noop = {
    .name = "noop",
    .plan = noop_plan,
    .run = noop_run,
    .finalize = noop_finalize,
    .likeness = noop_likeness,
};
