/*
 * worker_test.c: rushes-worker's device probe and task runner.
 *
 * vkcaps must see at least one Vulkan device here (Mesa lavapipe, a CPU
 * device); a missing ICD fails loudly rather than skipping. The runner tests
 * drive runner.c on their own libuv loop, spawning the real binary
 * (`rushes-worker task noop`) for success, exit codes, crashes and cancel.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <uv.h>

#include "clock.h"
#include "runner.h"
#include "vkcaps.h"

#define WORKER_EXE RS_BINARY_DIR "/worker/rushes-worker"

typedef struct run_state {
    uv_loop_t loop;
    uv_timer_t guard;
    uv_timer_t cancel_timer;
    runner *r;
    bool done;
    bool done_inside_start;
    bool starting;
    int nprogress;
    double last_frac;
    int nlog;
    runner_result res; /* copy of what done saw */
    cJSON *result;     /* taken from done */
    int64_t cancel_at_ms;
    int64_t done_at_ms;
} run_state;

static void on_progress(void *ud, runner *r, double frac, const char *msg)
{
    run_state *s = ud;
    s->nprogress++;
    s->last_frac = frac;
}

static void on_log(void *ud, runner *r, const char *line)
{
    run_state *s = ud;
    s->nlog++;
}

static void on_done(void *ud, runner *r, runner_result *res)
{
    run_state *s = ud;
    if (s->starting) {
        s->done_inside_start = true;
    }
    s->done = true;
    s->done_at_ms = rs_clock_mono_ms();
    s->result = res->result;
    res->result = NULL;
    s->res = *res;
    s->res.result = NULL;
    uv_timer_stop(&s->guard);
    uv_timer_stop(&s->cancel_timer);
}

static void on_guard(uv_timer_t *t)
{
    run_state *s = t->data;
    if (s->r != NULL && !s->done) {
        runner_cancel(s->r);
    }
}

static void on_cancel_timer(uv_timer_t *t)
{
    run_state *s = t->data;
    s->cancel_at_ms = rs_clock_mono_ms();
    runner_cancel(s->r);
}

static void closer(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

/* Runs kind with params_json to the end; cancel_after_ms > 0 cancels then. */
static void run_exe(run_state *s, const char *exe, const char *kind, const char *params_json,
                    bool no_inline, int cancel_after_ms)
{
    memset(s, 0, sizeof *s);
    s->last_frac = -1;
    cr_assert_eq(uv_loop_init(&s->loop), 0);
    uv_timer_init(&s->loop, &s->guard);
    uv_timer_init(&s->loop, &s->cancel_timer);
    s->guard.data = s;
    s->cancel_timer.data = s;
    cJSON *params = cJSON_Parse(params_json);
    cr_assert_not_null(params, "bad test params %s", params_json);
    runner_opts o = {
        .exe = exe,
        .kind = kind,
        .params = params,
        .attempt_id = 42,
        .device = "0",
        .no_inline = no_inline,
        .kill_grace_ms = 2000,
        .cb = {.ud = s, .progress = on_progress, .log = on_log, .done = on_done},
    };
    rs_error err;
    rs_error_clear(&err);
    s->starting = true;
    rs_err rc = runner_start(&s->loop, &o, &s->r, &err);
    s->starting = false;
    cJSON_Delete(params);
    cr_assert_eq(rc, RS_OK, "runner_start: %s", rs_error_text(&err));
    /* A task that hangs must not hang the test: cancel it after 15 s. */
    uv_timer_start(&s->guard, on_guard, 15000, 0);
    if (cancel_after_ms > 0) {
        uv_timer_start(&s->cancel_timer, on_cancel_timer, (uint64_t)cancel_after_ms, 0);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    cr_assert(s->done, "done callback never came");
    uv_walk(&s->loop, closer, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&s->loop), 0, "runner left handles open on the loop");
}

static void run_task(run_state *s, const char *kind, const char *params_json, bool no_inline,
                     int cancel_after_ms)
{
    run_exe(s, WORKER_EXE, kind, params_json, no_inline, cancel_after_ms);
}

/* A stand-in child (a shell script run as `script task KIND`) for the line
 * protocol's edges that noop cannot produce. */
static void write_script(const char *path, const char *body)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fprintf(f, "#!/bin/sh\ncat >/dev/null\n%s\n", body);
    fclose(f);
    cr_assert_eq(chmod(path, 0755), 0);
}

static bool lines_contain(const runner_result *res, const char *needle)
{
    for (size_t i = 0; i < res->nlines; i++) {
        if (strstr(res->lines[i], needle) != NULL) {
            return true;
        }
    }
    return false;
}

static void setup(void)
{
    /* As runner.h asks: a child that exits before reading stdin gives EPIPE. */
    signal(SIGPIPE, SIG_IGN);
}

TestSuite(worker, .init = setup, .timeout = 30);

Test(worker, vkcaps_finds_lavapipe)
{
    proto_device devs[PROTO_MAX_DEVICES];
    size_t n = 0;
    rs_error err;
    rs_error_clear(&err);
    rs_err rc = vkcaps_list(devs, PROTO_MAX_DEVICES, &n, &err);
    cr_assert_eq(rc, RS_OK, "vkcaps_list: %s", rs_error_text(&err));
    cr_assert_gt(n, 0,
                 "no Vulkan device found: the Mesa lavapipe ICD (mesa-vulkan-drivers, "
                 "/usr/share/vulkan/icd.d/lvp_icd.*.json) must be installed for the tests");
    bool cpu = false;
    for (size_t i = 0; i < n; i++) {
        cr_assert_gt(strlen(devs[i].name), 0, "device %zu has no name", i);
        cr_assert_gt(devs[i].api_version, 0, "device %zu has no API version", i);
        if (strcmp(devs[i].type, "cpu") == 0) {
            cpu = true;
            cr_assert_gt(devs[i].memory_mb, 0, "lavapipe reports no device-local memory");
            cr_assert_gt(devs[i].subgroup_size, 0, "lavapipe reports no subgroup size");
        }
    }
    cr_assert(cpu, "no CPU-type Vulkan device (lavapipe) among %zu device(s)", n);

    cJSON *arr = vkcaps_to_json(devs, n);
    cr_assert_not_null(arr);
    cr_assert_eq(cJSON_GetArraySize(arr), (int)n);
    cJSON_Delete(arr);

    size_t idx = 99;
    size_t n1 = n;
    cr_assert_eq(vkcaps_select(devs, &n1, "0", &idx, &err), RS_OK);
    cr_assert_eq(n1, 1);
    cr_assert_eq(idx, 0);
    n1 = n;
    cr_assert_eq(vkcaps_select(devs, &n1, "no-such-gpu-anywhere", NULL, &err), RS_ENOENT);
    cr_assert(strstr(err.msg, "no-such-gpu-anywhere") != NULL, "message: %s", err.msg);
}

Test(worker, runner_success_with_progress)
{
    run_state s;
    run_task(&s, "noop", "{\"sleep_ms\":200,\"index\":7}", false, 0);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_SUCCEEDED, "error: %s", s.res.error);
    cr_assert_eq(s.res.exit_code, 0);
    cr_assert_eq(s.res.signal, 0);
    cr_assert_str_empty(s.res.error);
    cr_assert_not_null(s.result, "no result parsed");
    cJSON *idx = cJSON_GetObjectItemCaseSensitive(s.result, "index");
    cr_assert(cJSON_IsNumber(idx) && idx->valuedouble == 7, "result index wrong");
    cr_assert_eq(s.nprogress, 10, "expected 10 progress lines, saw %d", s.nprogress);
    cr_assert_float_eq(s.last_frac, 1.0, 1e-9);
    cr_assert(!s.done_inside_start);
    cJSON_Delete(s.result);
}

Test(worker, runner_exit_code_fails_and_keeps_lines)
{
    run_state s;
    run_task(&s, "noop", "{\"exit_code\":3}", false, 0);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_FAILED);
    cr_assert_eq(s.res.exit_code, 3, "exit code %d", s.res.exit_code);
    cr_assert_eq(s.res.signal, 0);
    cr_assert_null(s.result);
    cr_assert(s.res.nlines >= 2, "only %zu lines kept", s.res.nlines);
    cr_assert(lines_contain(&s.res, "exiting with code 3"), "first log line not kept");
    cr_assert(strstr(s.res.error, "exit code 3") != NULL, "error: %s", s.res.error);
    /* the error carries the task's own last line (what went wrong) */
    cr_assert(strstr(s.res.error, "asked to fail") != NULL, "error: %s", s.res.error);
    cr_assert_geq(s.nlog, 2);
}

Test(worker, runner_signal_is_a_failure_naming_it)
{
    run_state s;
    run_task(&s, "noop", "{\"signal\":11}", false, 0);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_FAILED);
    cr_assert_eq(s.res.signal, 11);
    cr_assert_eq(s.res.exit_code, -1);
    cr_assert(strstr(s.res.error, "killed by signal 11 (SIGSEGV)") != NULL, "error: %s",
              s.res.error);
    cr_assert(lines_contain(&s.res, "raising signal 11"), "last lines not kept");
    cr_assert(!s.res.cancelled);
}

Test(worker, runner_cancel_kills_quickly)
{
    run_state s;
    run_task(&s, "noop", "{\"sleep_ms\":60000}", false, 300);
    cr_assert_gt(s.cancel_at_ms, 0, "cancel never fired");
    int64_t took = s.done_at_ms - s.cancel_at_ms;
    cr_assert_lt(took, 3000, "child took %lld ms to die after cancel", (long long)took);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_FAILED);
    cr_assert(s.res.cancelled);
    cr_assert_eq(s.res.signal, SIGTERM);
    cr_assert(strstr(s.res.error, "cancelled") != NULL, "error: %s", s.res.error);
}

Test(worker, runner_unknown_kind_fails_in_child)
{
    run_state s;
    run_task(&s, "no-such-kind", "{}", true, 0);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_FAILED);
    cr_assert_eq(s.res.exit_code, 1);
    cr_assert(strstr(s.res.error, "no-such-kind") != NULL, "error: %s", s.res.error);
}

/* Params the kind refuses: exit RS_EXIT_BAD_INPUT, which rushesd does not
 * retry (an unknown kind above exits 1: another worker may know it). */
Test(worker, runner_bad_params_exit_bad_input)
{
    run_state s;
    run_task(&s, "ingest", "{\"files\":\"not an array\"}", true, 0);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_FAILED);
    cr_assert_eq(s.res.exit_code, RS_EXIT_BAD_INPUT, "exit %d: %s", s.res.exit_code, s.res.error);
}

Test(worker, runner_trivial_noop_runs_inline)
{
    run_state s;
    run_task(&s, "noop", "{\"sleep_ms\":0,\"index\":3}", false, 0);
    cr_assert(!s.done_inside_start, "done called from inside runner_start");
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_SUCCEEDED, "error: %s", s.res.error);
    cr_assert_not_null(s.result);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(s.result, "index")->valuedouble, 3);
    cJSON_Delete(s.result);

    /* The same params forced into a child give the same answer. */
    run_task(&s, "noop", "{\"sleep_ms\":0,\"index\":3}", true, 0);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_SUCCEEDED, "error: %s", s.res.error);
    cr_assert_not_null(s.result);
    cJSON_Delete(s.result);
}

Test(worker, runner_line_protocol_edges)
{
    char path[] = "/tmp/rushes-worker-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    /* 5000-byte log line, a stderr line, a stray stdout line, progress
     * with a message, and a 3000-byte result (longer than a log line). */
    write_script(path, "long=$(printf '%05000d' 0 | tr 0 x)\n"
                       "echo \"log $long\"\n"
                       "echo 'from stderr' >&2\n"
                       "echo 'not the protocol'\n"
                       "echo 'progress 0.5 halfway there'\n"
                       "big=$(printf '%03000d' 0 | tr 0 y)\n"
                       "printf 'result {\"big\":\"%s\"}\\n' \"$big\"\n"
                       "exit 0");
    run_state s;
    run_exe(&s, path, "edges", "{}", true, 0);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_SUCCEEDED, "error: %s", s.res.error);
    cr_assert_not_null(s.result, "3000-byte result line was not taken whole");
    cJSON *big = cJSON_GetObjectItemCaseSensitive(s.result, "big");
    cr_assert(cJSON_IsString(big) && strlen(big->valuestring) == 3000);
    cJSON_Delete(s.result);
    cr_assert_eq(s.nprogress, 1);
    cr_assert_float_eq(s.last_frac, 0.5, 1e-9);
    bool cut = false;
    for (size_t i = 0; i < s.res.nlines; i++) {
        cr_assert_leq(strlen(s.res.lines[i]), RUNNER_MAX_LINE, "line %zu not cut", i);
        if (s.res.lines[i][0] == 'x' && strlen(s.res.lines[i]) >= RUNNER_MAX_LINE - 4) {
            cut = true;
        }
    }
    cr_assert(cut, "the 5000-byte log line is missing");
    cr_assert(lines_contain(&s.res, "from stderr"));
    cr_assert(lines_contain(&s.res, "not the protocol"));
    cr_assert(lines_contain(&s.res, "halfway there") == false,
              "progress messages are not log lines");

    /* exit 0 without a result line is a failure */
    write_script(path, "echo 'log nothing to say'\nexit 0");
    run_exe(&s, path, "edges", "{}", true, 0);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_FAILED);
    cr_assert(strstr(s.res.error, "without a result") != NULL, "error: %s", s.res.error);

    /* a result that is not JSON is a failure */
    write_script(path, "echo 'result {nope'\nexit 0");
    run_exe(&s, path, "edges", "{}", true, 0);
    cr_assert_eq(s.res.outcome, PROTO_OUTCOME_FAILED);
    cr_assert(strstr(s.res.error, "not valid JSON") != NULL, "error: %s", s.res.error);
    unlink(path);
}

Test(worker, runner_missing_executable_fails_to_start)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cJSON *params = cJSON_CreateObject();
    runner_opts o = {
        .exe = "/nonexistent/rushes-worker", .kind = "noop", .params = params, .no_inline = true};
    runner *r = NULL;
    rs_error err;
    rs_error_clear(&err);
    cr_assert_neq(runner_start(&loop, &o, &r, &err), RS_OK);
    cr_assert_null(r);
    cr_assert(strstr(err.msg, "/nonexistent/rushes-worker") != NULL, "message: %s", err.msg);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles left open after a failed start");
    cJSON_Delete(params);
}
