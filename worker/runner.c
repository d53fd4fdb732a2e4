/*
 * runner.c: one task attempt = one child process (see runner.h).
 *
 * The child runs in its own process group (UV_PROCESS_DETACHED calls
 * setsid) so that cancel reaches whatever it started too (ffmpeg, say).
 * The attempt ends when the child has exited and both of its output pipes
 * reached EOF, so no line is lost; if something it left behind keeps a pipe
 * open, the runner stops waiting RUNNER_EOF_WAIT_MS after the exit.
 */
#include "runner.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "task.h"

#define RUNNER_EOF_WAIT_MS 2000
#define RUNNER_READ_CHUNK 65536

extern char **environ;

typedef struct line_reader {
    struct runner *r;
    bool is_stdout;
    bool eof;
    bool truncated; /* the current line went over the cap; the rest is dropped */
    size_t cap;
    size_t len;
    size_t alloc;
    char *buf;
    char chunk[RUNNER_READ_CHUNK];
} line_reader;

struct runner {
    uv_loop_t *loop;
    runner_callbacks cb;
    int64_t attempt_id;
    int kill_grace_ms;
    bool inline_mode;

    uv_process_t proc;
    uv_pipe_t in;
    uv_pipe_t out;
    uv_pipe_t err;
    uv_timer_t kill_timer;
    uv_timer_t aux_timer; /* inline completion, or the EOF wait after exit */
    uv_write_t wreq;
    char *params_text;
    char **env;
    int pending_closes;
    bool in_closed;

    bool spawned;
    bool exited;
    bool finished;
    bool cancelled;
    bool sent_kill;
    int64_t exit_status;
    int term_signal;

    bool have_result;
    char result_error[256]; /* set when a result line was unusable */
    size_t ring_head;       /* index of the oldest kept line */

    line_reader rd_out;
    line_reader rd_err;
    runner_result res;
};

/* pending_closes counts handle closes still to come, plus one for the
 * attempt itself until it has ended, so an early close (stdin) frees nothing. */
static void release(runner *r)
{
    r->pending_closes--;
    if (r->pending_closes == 0) {
        free(r->rd_out.buf);
        free(r->rd_err.buf);
        free(r->params_text);
        if (r->env != NULL) {
            free(r->env[0]); /* the RUSHES_DEVICE entry, the rest are borrowed */
            free(r->env);
        }
        cJSON_Delete(r->res.result);
        free(r);
    }
}

static void on_closed(uv_handle_t *h)
{
    release(h->data);
}

static void close_handle(runner *r, uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h)) {
        r->pending_closes++;
        uv_close(h, on_closed);
    }
}

/* Keeps the last RUNNER_KEEP_LINES lines in a ring; finish() puts them in order. */
static void keep_line(runner *r, const char *line)
{
    size_t slot;
    if (r->res.nlines < RUNNER_KEEP_LINES) {
        slot = (r->ring_head + r->res.nlines) % RUNNER_KEEP_LINES;
        r->res.nlines++;
    } else {
        slot = r->ring_head;
        r->ring_head = (r->ring_head + 1) % RUNNER_KEEP_LINES;
    }
    snprintf(r->res.lines[slot], sizeof r->res.lines[slot], "%s", line);
}

static void emit_log(runner *r, const char *line)
{
    char cut[RUNNER_MAX_LINE + 1];
    snprintf(cut, sizeof cut, "%s", line);
    keep_line(r, cut);
    if (r->cb.log != NULL) {
        r->cb.log(r->cb.ud, r, cut);
    }
}

static void handle_result_line(runner *r, const char *json, size_t len, bool truncated)
{
    if (truncated) {
        snprintf(r->result_error, sizeof r->result_error, "result line over %u bytes",
                 (unsigned)RUNNER_MAX_RESULT);
        return;
    }
    cJSON *v = cJSON_ParseWithLength(json, len);
    if (v == NULL) {
        snprintf(r->result_error, sizeof r->result_error, "result line is not valid JSON");
        return;
    }
    if (r->have_result) {
        snprintf(r->result_error, sizeof r->result_error, "more than one result line");
        cJSON_Delete(v);
        return;
    }
    r->res.result = v;
    r->have_result = true;
}

static void handle_line(line_reader *rd, char *line, size_t len)
{
    runner *r = rd->r;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n')) {
        len--;
    }
    line[len] = '\0';
    if (len == 0) {
        return;
    }
    if (!rd->is_stdout) {
        emit_log(r, line);
        return;
    }
    if (strncmp(line, "result ", 7) == 0) {
        handle_result_line(r, line + 7, len - 7, rd->truncated);
        return;
    }
    if (rd->truncated || len > RUNNER_MAX_LINE) {
        line[len < RUNNER_MAX_LINE ? len : RUNNER_MAX_LINE] = '\0';
    }
    if (strncmp(line, "log ", 4) == 0) {
        emit_log(r, line + 4);
        return;
    }
    if (strncmp(line, "progress ", 9) == 0) {
        char *end = NULL;
        double frac = strtod(line + 9, &end);
        if (end != line + 9 && frac == frac) { /* frac == frac: not NaN */
            if (frac < 0) {
                frac = 0;
            }
            if (frac > 1) {
                frac = 1;
            }
            while (*end == ' ') {
                end++;
            }
            if (r->cb.progress != NULL) {
                r->cb.progress(r->cb.ud, r, frac, *end != '\0' ? end : NULL);
            }
            return;
        }
    }
    /* Not the protocol: keep it as a log line so nothing is hidden. */
    emit_log(r, line);
}

static void feed(line_reader *rd, const char *data, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl != NULL ? (size_t)(nl - data) : n;
        size_t room = rd->len < rd->cap ? rd->cap - rd->len : 0;
        size_t copy = take < room ? take : room;
        if (copy < take) {
            rd->truncated = true;
        }
        if (copy > 0) {
            if (rd->len + copy + 1 > rd->alloc) {
                size_t want = rd->alloc == 0 ? 4096 : rd->alloc;
                while (want < rd->len + copy + 1) {
                    want *= 2;
                }
                char *nb = realloc(rd->buf, want);
                if (nb == NULL) {
                    /* Out of memory: drop the rest of this line, keep going. */
                    rd->truncated = true;
                    copy = 0;
                } else {
                    rd->buf = nb;
                    rd->alloc = want;
                }
            }
            if (copy > 0) {
                memcpy(rd->buf + rd->len, data, copy);
                rd->len += copy;
            }
        }
        if (nl == NULL) {
            return;
        }
        if (rd->buf != NULL) {
            handle_line(rd, rd->buf, rd->len);
        }
        rd->len = 0;
        rd->truncated = false;
        data = nl + 1;
        n -= take + 1;
    }
}

static const char *signal_name(int sig)
{
    const char *abbr = sigabbrev_np(sig);
    return abbr != NULL ? abbr : "unknown";
}

static void finish(runner *r)
{
    if (r->finished) {
        return;
    }
    r->finished = true;
    runner_result *res = &r->res;

    /* Put the ring in oldest-first order. */
    if (r->ring_head != 0) {
        runner_result *tmp = malloc(sizeof *tmp);
        if (tmp != NULL) {
            for (size_t i = 0; i < res->nlines; i++) {
                memcpy(tmp->lines[i], res->lines[(r->ring_head + i) % RUNNER_KEEP_LINES],
                       sizeof tmp->lines[i]);
            }
            memcpy(res->lines, tmp->lines, sizeof tmp->lines[0] * res->nlines);
            free(tmp);
        }
        r->ring_head = 0;
    }
    const char *last = res->nlines > 0 ? res->lines[res->nlines - 1] : NULL;

    res->outcome = PROTO_OUTCOME_FAILED;
    res->cancelled = r->cancelled;
    if (r->term_signal != 0) {
        res->exit_code = -1;
        res->signal = r->term_signal;
        snprintf(res->error, sizeof res->error, "%skilled by signal %d (SIG%s)%s%s",
                 r->cancelled ? "cancelled: " : "", r->term_signal, signal_name(r->term_signal),
                 last != NULL ? "; last line: " : "", last != NULL ? last : "");
    } else if (r->exit_status != 0) {
        res->exit_code = (int)r->exit_status;
        snprintf(res->error, sizeof res->error, "%sexit code %d%s%s",
                 r->cancelled ? "cancelled: " : "", res->exit_code, last != NULL ? ": " : "",
                 last != NULL ? last : "");
    } else if (r->result_error[0] != '\0') {
        snprintf(res->error, sizeof res->error, "%s", r->result_error);
    } else if (!r->have_result) {
        snprintf(res->error, sizeof res->error, "exited 0 without a result line");
    } else {
        res->outcome = PROTO_OUTCOME_SUCCEEDED;
        res->error[0] = '\0';
    }
    if (res->outcome != PROTO_OUTCOME_SUCCEEDED) {
        cJSON_Delete(res->result);
        res->result = NULL;
    }
    if (r->cb.done != NULL) {
        r->cb.done(r->cb.ud, r, res);
    }
    close_handle(r, (uv_handle_t *)&r->kill_timer);
    close_handle(r, (uv_handle_t *)&r->aux_timer);
    if (!r->inline_mode) {
        close_handle(r, (uv_handle_t *)&r->proc);
        close_handle(r, (uv_handle_t *)&r->in);
        close_handle(r, (uv_handle_t *)&r->out);
        close_handle(r, (uv_handle_t *)&r->err);
    }
    release(r);
}

static void maybe_finish(runner *r)
{
    if (r->exited && r->rd_out.eof && r->rd_err.eof) {
        finish(r);
    }
}

static void on_aux_timer(uv_timer_t *t)
{
    runner *r = t->data;
    if (!r->inline_mode) {
        RS_WARN("runner", "attempt %lld: child exited but its output stays open; not waiting",
                (long long)r->attempt_id);
    }
    finish(r);
}

/* Every handle's data is the runner (on_closed needs it); pick the reader by handle. */
static line_reader *reader_of(uv_handle_t *h)
{
    runner *r = h->data;
    return h == (uv_handle_t *)&r->out ? &r->rd_out : &r->rd_err;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    line_reader *rd = reader_of(h);
    buf->base = rd->chunk;
    buf->len = sizeof rd->chunk;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    line_reader *rd = reader_of((uv_handle_t *)s);
    if (nread > 0) {
        feed(rd, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0) {
        return;
    }
    /* EOF or a read error: either way this stream is done. */
    uv_read_stop(s);
    if (rd->len > 0 && rd->buf != NULL) {
        handle_line(rd, rd->buf, rd->len);
        rd->len = 0;
    }
    rd->eof = true;
    maybe_finish(rd->r);
}

static void on_child_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    runner *r = p->data;
    r->exited = true;
    r->exit_status = exit_status;
    r->term_signal = term_signal;
    uv_timer_stop(&r->kill_timer);
    if (r->rd_out.eof && r->rd_err.eof) {
        finish(r);
        return;
    }
    uv_timer_start(&r->aux_timer, on_aux_timer, RUNNER_EOF_WAIT_MS, 0);
}

static void on_written(uv_write_t *w, int status)
{
    runner *r = w->data;
    if (status != 0 && status != UV_ECANCELED) {
        RS_DEBUG("runner", "attempt %lld: writing params to the child: %s",
                 (long long)r->attempt_id, uv_strerror(status));
    }
    /* Closing our end is the child's EOF on stdin. */
    if (!r->in_closed) {
        r->in_closed = true;
        close_handle(r, (uv_handle_t *)&r->in);
    }
}

static void signal_group(runner *r, int sig)
{
    if (!r->spawned || r->exited) {
        return;
    }
    if (kill(-r->proc.pid, sig) != 0) {
        uv_process_kill(&r->proc, sig);
    }
}

static void on_kill_timer(uv_timer_t *t)
{
    runner *r = t->data;
    RS_WARN("runner", "attempt %lld: still running %d ms after SIGTERM, sending SIGKILL",
            (long long)r->attempt_id, r->kill_grace_ms);
    signal_group(r, SIGKILL);
}

void runner_cancel(runner *r)
{
    if (r == NULL || r->finished || r->inline_mode || r->cancelled) {
        return;
    }
    r->cancelled = true;
    signal_group(r, SIGTERM);
    if (!r->exited) {
        uv_timer_start(&r->kill_timer, on_kill_timer, (uint64_t)r->kill_grace_ms, 0);
    }
}

int64_t runner_attempt_id(const runner *r)
{
    return r->attempt_id;
}

bool runner_is_inline(const runner *r)
{
    return r->inline_mode;
}

static int param_int(const cJSON *params, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, field);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : 0;
}

/*
 * The dispatch benchmark's trivial task (noop, no sleep, no failure) runs
 * in the worker itself: forking a process per task would measure fork/exec
 * and not the queue. Nothing in it can crash or block, so isolation buys
 * nothing there. Every other task gets a child.
 */
static bool wants_inline(const runner_opts *o)
{
    if (o->no_inline || strcmp(o->kind, "noop") != 0 || !cJSON_IsObject(o->params)) {
        return false;
    }
    return param_int(o->params, "sleep_ms") == 0 && param_int(o->params, "exit_code") == 0 &&
           param_int(o->params, "signal") == 0;
}

static void inline_log(void *ud, const char *line)
{
    keep_line(ud, line);
}

static rs_err start_inline(runner *r, const runner_opts *o, rs_error *e)
{
    const task_kind *k = task_kind_find(o->kind);
    if (k == NULL) {
        return rs_error_set(e, RS_EINVAL, "kind %s: not known to this worker", o->kind);
    }
    task_io io = {.ud = r, .progress = NULL, .log = inline_log};
    rs_error terr;
    rs_error_clear(&terr);
    cJSON *result = NULL;
    rs_err rc = k->run(o->params, &io, &result, &terr);
    if (rc == RS_OK && result != NULL) {
        r->res.result = result;
        r->have_result = true;
    } else {
        cJSON_Delete(result);
        keep_line(r, rs_error_text(&terr));
        r->exit_status = 1;
    }
    r->exited = true;
    r->rd_out.eof = true;
    r->rd_err.eof = true;
    /* done must not run inside runner_start, so finish on the next loop turn. */
    return uv_timer_start(&r->aux_timer, on_aux_timer, 0, 0) == 0
               ? RS_OK
               : rs_error_set(e, RS_EIO, "attempt %lld: uv_timer_start failed",
                              (long long)r->attempt_id);
}

static char **child_env(const char *device)
{
    size_t n = 0;
    while (environ[n] != NULL) {
        n++;
    }
    char **env = calloc(n + 2, sizeof *env);
    if (env == NULL) {
        return NULL;
    }
    size_t len = strlen(device) + sizeof "RUSHES_DEVICE=";
    env[0] = malloc(len);
    if (env[0] == NULL) {
        free(env);
        return NULL;
    }
    snprintf(env[0], len, "RUSHES_DEVICE=%s", device);
    size_t j = 1;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "RUSHES_DEVICE=", 14) != 0) {
            env[j++] = environ[i];
        }
    }
    env[j] = NULL;
    return env;
}

rs_err runner_start(uv_loop_t *loop, const runner_opts *o, runner **out, rs_error *e)
{
    if (o->exe == NULL || o->kind == NULL || o->params == NULL) {
        return rs_error_set(e, RS_EINVAL, "runner: exe, kind and params are required");
    }
    runner *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return rs_error_set(e, RS_ENOMEM, "runner: out of memory");
    }
    rs_err rc = RS_OK;
    r->loop = loop;
    r->pending_closes = 1;
    r->cb = o->cb;
    r->attempt_id = o->attempt_id;
    r->kill_grace_ms = o->kill_grace_ms > 0 ? o->kill_grace_ms : RUNNER_KILL_GRACE_MS;
    r->rd_out = (line_reader){.r = r, .is_stdout = true, .cap = RUNNER_MAX_RESULT + 16};
    r->rd_err = (line_reader){.r = r, .is_stdout = false, .cap = RUNNER_MAX_LINE};
    uv_timer_init(loop, &r->kill_timer);
    uv_timer_init(loop, &r->aux_timer);
    r->kill_timer.data = r;
    r->aux_timer.data = r;

    if (wants_inline(o)) {
        r->inline_mode = true;
        rc = start_inline(r, o, e);
        goto out;
    }

    r->params_text = cJSON_PrintUnformatted(o->params);
    if (r->params_text == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "attempt %lld: cannot serialise params",
                          (long long)o->attempt_id);
        goto out;
    }
    if (o->device != NULL) {
        r->env = child_env(o->device);
        if (r->env == NULL) {
            rc =
                rs_error_set(e, RS_ENOMEM, "attempt %lld: out of memory", (long long)o->attempt_id);
            goto out;
        }
    }
    uv_pipe_init(loop, &r->in, 0);
    uv_pipe_init(loop, &r->out, 0);
    uv_pipe_init(loop, &r->err, 0);
    r->in.data = r;
    r->out.data = r;
    r->err.data = r;
    r->proc.data = r;

    char *args[] = {(char *)o->exe, "task", (char *)o->kind, NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&r->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->err},
    };
    uv_process_options_t po = {
        .exit_cb = on_child_exit,
        .file = o->exe,
        .args = args,
        .env = r->env,
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = stdio,
    };
    int uvrc = uv_spawn(loop, &r->proc, &po);
    if (uvrc != 0) {
        rc = rs_error_set(e, RS_EIO, "attempt %lld: cannot start %s task %s: %s",
                          (long long)o->attempt_id, o->exe, o->kind, uv_strerror(uvrc));
        goto out;
    }
    r->spawned = true;
    uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&r->err, on_alloc, on_read);
    uv_buf_t b = uv_buf_init(r->params_text, (unsigned)strlen(r->params_text));
    r->wreq.data = r;
    uvrc = uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1, on_written);
    if (uvrc != 0) {
        /* The child will see EOF on stdin and fail on empty params. */
        RS_WARN("runner", "attempt %lld: writing params: %s", (long long)o->attempt_id,
                uv_strerror(uvrc));
        r->in_closed = true;
        close_handle(r, (uv_handle_t *)&r->in);
    }
out:
    if (rc != RS_OK) {
        /* Nothing started: close what was initialised; on_closed frees r. */
        r->finished = true;
        close_handle(r, (uv_handle_t *)&r->kill_timer);
        close_handle(r, (uv_handle_t *)&r->aux_timer);
        if (!r->inline_mode && r->in.loop != NULL) {
            close_handle(r, (uv_handle_t *)&r->proc);
            close_handle(r, (uv_handle_t *)&r->in);
            close_handle(r, (uv_handle_t *)&r->out);
            close_handle(r, (uv_handle_t *)&r->err);
        }
        release(r);
        return rc;
    }
    *out = r;
    return RS_OK;
}
