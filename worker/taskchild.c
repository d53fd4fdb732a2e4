/*
 * taskchild.c: `rushes-worker task KIND` (see taskchild.h). Kept tiny: all
 * the judgement (what counts as success, what the error says) lives in the
 * worker's runner, which also survives whatever happens here.
 */
#include "taskchild.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "task.h"

/*
 * Set by SIGTERM in a child whose kind yields (training windows): the one
 * piece of process state a signal handler may touch, so file scope.
 */
static volatile sig_atomic_t yield_asked;

static void on_sigterm(int sig)
{
    (void)sig;
    yield_asked = 1;
}

static bool io_should_yield(void *ud)
{
    (void)ud;
    return yield_asked != 0;
}

/* Protocol lines are one per line: turn embedded newlines into spaces. */
static void put_line(FILE *out, const char *prefix, const char *text)
{
    fputs(prefix, out);
    for (const char *p = text; *p != '\0'; p++) {
        fputc(*p == '\n' || *p == '\r' ? ' ' : *p, out);
    }
    fputc('\n', out);
    fflush(out);
}

static void io_progress(void *ud, double frac, const char *msg)
{
    FILE *out = ud;
    if (msg != NULL && msg[0] != '\0') {
        char head[64];
        snprintf(head, sizeof head, "progress %.4f ", frac);
        put_line(out, head, msg);
    } else {
        fprintf(out, "progress %.4f\n", frac);
        fflush(out);
    }
}

static void io_log(void *ud, const char *line)
{
    put_line(ud, "log ", line);
}

/* Reads all of in, refusing more than TASKCHILD_MAX_PARAMS bytes. */
static rs_err read_params(FILE *in, char **out, size_t *outlen, rs_error *e)
{
    size_t cap = 65536;
    size_t len = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        return rs_error_set(e, RS_ENOMEM, "params: out of memory");
    }
    for (;;) {
        if (len == cap) {
            if (cap > TASKCHILD_MAX_PARAMS) {
                free(buf);
                return rs_error_set(e, RS_ETOOBIG, "params: over %u bytes",
                                    (unsigned)TASKCHILD_MAX_PARAMS);
            }
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (nb == NULL) {
                free(buf);
                return rs_error_set(e, RS_ENOMEM, "params: out of memory");
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, in);
        len += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(in)) {
        free(buf);
        return rs_error_set(e, RS_EIO, "params: reading stdin failed");
    }
    if (len > TASKCHILD_MAX_PARAMS) {
        free(buf);
        return rs_error_set(e, RS_ETOOBIG, "params: over %u bytes", (unsigned)TASKCHILD_MAX_PARAMS);
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return RS_OK;
}

/*
 * The exit status for a failed run. noop's params contract says its task
 * "exits with exit_code" (the smoke test for failure handling), and task.h
 * has no other way to carry one, so that one field is honoured here. Bad
 * input (RS_EINVAL, RS_EFORMAT) exits RS_EXIT_BAD_INPUT, which rushesd does
 * not retry; every other failure exits 1 and is retried.
 */
static int failure_status(const char *kind_name, const cJSON *params, rs_err code)
{
    if (params == NULL || strcmp(kind_name, "noop") != 0) {
        return code == RS_EINVAL || code == RS_EFORMAT ? RS_EXIT_BAD_INPUT : 1;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, "exit_code");
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= 255) {
        return (int)v->valuedouble;
    }
    return 1;
}

int taskchild_run(const char *kind_name, FILE *in, FILE *out)
{
    rs_error err;
    rs_error_clear(&err);
    char *text = NULL;
    size_t len = 0;
    cJSON *params = NULL;
    cJSON *result = NULL;
    char *result_text = NULL;
    int status = 1;

    const task_kind *kind = task_kind_find(kind_name);
    if (kind == NULL || kind->run == NULL) {
        /* ENOENT, not EINVAL: another worker may know the kind, so it is retried. */
        rs_error_set(&err, RS_ENOENT, "task kind %s: not known to this worker", kind_name);
        goto out;
    }
    if (read_params(in, &text, &len, &err) != RS_OK) {
        goto out;
    }
    params = cJSON_ParseWithLength(text, len);
    if (params == NULL) {
        rs_error_set(&err, RS_EINVAL, "params: not valid JSON");
        goto out;
    }
    task_io io = {.ud = out, .progress = io_progress, .log = io_log};
    if (kind->yields) {
        /* SIGTERM becomes "checkpoint and yield"; the worker still sends
         * SIGKILL if that takes longer than its grace. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigterm;
        sa.sa_flags = SA_RESTART; /* protocol writes must not fail with EINTR */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        io.should_yield = io_should_yield;
    }
    rs_err run_rc = kind->run(params, &io, &result, &err);
    if (run_rc == RS_ECANCELED && yield_asked != 0) {
        put_line(out, "yield ", rs_error_text(&err));
        status = TASK_EXIT_YIELDED;
        goto done;
    }
    if (run_rc != RS_OK) {
        goto out;
    }
    if (result == NULL) {
        rs_error_set(&err, RS_EINVAL, "task kind %s returned no result", kind_name);
        goto out;
    }
    result_text = cJSON_PrintUnformatted(result);
    if (result_text == NULL) {
        rs_error_set(&err, RS_ENOMEM, "result: out of memory");
        goto out;
    }
    /* cJSON escapes control characters in strings, so this is one line. */
    fprintf(out, "result %s\n", result_text);
    fflush(out);
    status = 0;
out:
    if (status != 0) {
        put_line(out, "log ", rs_error_text(&err));
        status = failure_status(kind_name, params, err.code);
    }
done:
    free(result_text);
    cJSON_Delete(result);
    cJSON_Delete(params);
    free(text);
    return status;
}
