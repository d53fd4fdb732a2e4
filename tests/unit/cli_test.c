/*
 * cli_test.c: the `rushes` client. Pure rendering (progress bars, durations,
 * times, tables, clip fields, watch lines), argument and --param parsing,
 * the submit body and its usage errors; then whole commands through
 * cli_run against a small fake API server (nng's HTTP server answering
 * canned JSON): output formats, error lines and exit codes, the submit
 * request as the server saw it, watch's change-only lines and exit status,
 * the response-size cap and "connection refused".
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "args.h"
#include "cli.h"
#include "http.h"
#include "output.h"
#include "watch.h"

/* ---- pure rendering ---------------------------------------------------- */

Test(cli_render, progress_bar_0_37_100)
{
    char b[64];
    cli_progress_bar(0.0, 22, b, sizeof b);
    cr_assert_str_eq(b, "[--------------------]");
    cli_progress_bar(0.37, 22, b, sizeof b);
    cr_assert_str_eq(b, "[#######-------------]");
    cli_progress_bar(1.0, 22, b, sizeof b);
    cr_assert_str_eq(b, "[####################]");
    /* 99.9% is not a full bar */
    cli_progress_bar(0.999, 12, b, sizeof b);
    cr_assert_str_eq(b, "[#########-]");
}

Test(cli_render, progress_bar_width_and_clamping)
{
    char b[64];
    cli_progress_bar(0.5, 2, b, sizeof b);
    cr_assert_str_eq(b, "");
    cli_progress_bar(0.5, 3, b, sizeof b);
    cr_assert_str_eq(b, "[-]");
    cli_progress_bar(1.5, 5, b, sizeof b);
    cr_assert_str_eq(b, "[###]");
    cli_progress_bar(-1, 5, b, sizeof b);
    cr_assert_str_eq(b, "[---]");
    cli_progress_bar(NAN, 5, b, sizeof b);
    cr_assert_str_eq(b, "[---]");
    /* a width larger than the buffer is cut to fit, still bracketed */
    char small[8];
    cli_progress_bar(1.0, 40, small, sizeof small);
    cr_assert_str_eq(small, "[#####]");
    cr_assert_eq(strlen(small), 7);
}

Test(cli_render, percent_floors)
{
    cr_assert_eq(cli_percent(0), 0);
    cr_assert_eq(cli_percent(0.37), 37);
    cr_assert_eq(cli_percent(0.999), 99);
    cr_assert_eq(cli_percent(1), 100);
    cr_assert_eq(cli_percent(7), 100);
    cr_assert_eq(cli_percent(NAN), 0);
}

Test(cli_render, durations)
{
    char b[32];
    struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {-5000, "0s"},       {0, "0s"},           {999, "0s"},          {42000, "42s"},
        {59999, "59s"},      {60000, "1m00s"},    {312000, "5m12s"},    {3600000, "1h00m"},
        {11040000, "3h04m"}, {86400000, "1d00h"}, {183600000, "2d03h"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_duration_format(cases[i].ms, b, sizeof b);
        cr_assert_str_eq(b, cases[i].want, "%lld ms", (long long)cases[i].ms);
    }
}

Test(cli_render, iso_times_and_ages)
{
    int64_t ms = 0;
    cr_assert(cli_time_parse("1970-01-01T00:00:01.500Z", &ms));
    cr_assert_eq(ms, 1500);
    cr_assert(cli_time_parse("2026-11-25T06:15:22.123Z", &ms));
    cr_assert_eq(ms, INT64_C(1795587322123));
    cr_assert(cli_time_parse("2026-11-25T08:15:22+02:00", &ms));
    cr_assert_eq(ms, INT64_C(1795587322000));
    const char *bad[] = {"",
                         "2026-11-25",
                         "2026-11-25T06:15:22",
                         "2026-13-25T06:15:22Z",
                         "2026-11-25T06:15:22.Z",
                         "2026-11-25T06:15:22Zjunk",
                         "yesterday"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_not(cli_time_parse(bad[i], &ms), "%s", bad[i]);
    }
    cr_assert_not(cli_time_parse(NULL, &ms));
    char b[32];
    cli_age_format("2026-11-25T06:15:22.123Z", INT64_C(1795587322123) + 312000, b, sizeof b);
    cr_assert_str_eq(b, "5m12s");
    cli_age_format(NULL, 0, b, sizeof b);
    cr_assert_str_eq(b, "-");
}

Test(cli_render, table_aligns_and_sanitises)
{
    static const char *const hdr[] = {"ID", "NAME", "NOTE"};
    cli_table *t = NULL;
    cr_assert_eq(cli_table_create(3, hdr, &t), RS_OK);
    const char *r1[] = {"7", "alpha", "ok"};
    const char *r2[] = {"123", NULL, "bad\033[2Jline\nnext"};
    cr_assert_eq(cli_table_add(t, r1), RS_OK);
    cr_assert_eq(cli_table_add(t, r2), RS_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_table_print(t, f);
    fclose(f);
    cr_assert_str_eq(buf, "ID   NAME   NOTE\n"
                          "7    alpha  ok\n"
                          "123  -      bad [2Jline next\n");
    free(buf);
    cli_table_destroy(t);
    cli_table_destroy(NULL);
}

Test(cli_render, truncate)
{
    char s[32] = "abcdefghij";
    cli_truncate(s, 20);
    cr_assert_str_eq(s, "abcdefghij");
    cli_truncate(s, 8);
    cr_assert_str_eq(s, "abcde...");
}

Test(cli_render, clip_fields)
{
    cJSON *v = cJSON_Parse("{\"info\":{\"type\":\"video\",\"codec\":\"h264\",\"width\":1920,"
                           "\"height\":1080,\"fps\":\"24000/1001\",\"fps_num\":24000,"
                           "\"fps_den\":1001,\"frames\":240}}");
    char res[32], frames[32], fps[32], codec[32];
    cli_clip_fields(v, res, frames, fps, codec, 32);
    cr_assert_str_eq(res, "1920x1080");
    cr_assert_str_eq(frames, "240");
    cr_assert_str_eq(fps, "23.976");
    cr_assert_str_eq(codec, "h264");
    cJSON_Delete(v);
    cJSON *p = cJSON_Parse("{\"info\":{\"type\":\"image\",\"format\":\"png\",\"width\":64,"
                           "\"height\":36,\"fps_float\":24}}");
    cli_clip_fields(p, res, frames, fps, codec, 32);
    cr_assert_str_eq(res, "64x36");
    cr_assert_str_eq(frames, "-");
    cr_assert_str_eq(fps, "24");
    cr_assert_str_eq(codec, "png");
    cJSON_Delete(p);
    cJSON *n = cJSON_Parse("{\"info\":\"garbage\"}");
    cli_clip_fields(n, res, frames, fps, codec, 32);
    cr_assert_str_eq(res, "-");
    cr_assert_str_eq(codec, "-");
    cJSON_Delete(n);
}

Test(cli_render, watch_lines)
{
    cJSON *j = cJSON_Parse("{\"id\":12,\"kind\":\"ingest\",\"state\":\"running\",\"progress\":0.4,"
                           "\"tasks_done\":2,\"tasks_total\":5,\"error\":null}");
    char b[256];
    cli_watch_plain_line(j, b, sizeof b);
    cr_assert_str_eq(b, "job 12 running 40% (2/5 tasks)");
    cli_watch_tty_row(j, 80, b, sizeof b);
    cr_assert_lt(strlen(b), 80);
    cr_assert_not_null(strstr(b, "    12 ingest   [########"));
    cr_assert_not_null(strstr(b, "]  40% running   2/5 tasks"));
    cli_watch_tty_row(j, 40, b, sizeof b);
    cr_assert_eq(strlen(b), 39);
    cJSON *f = cJSON_Parse("{\"id\":3,\"state\":\"failed\",\"progress\":1,\"tasks_done\":1,"
                           "\"tasks_total\":1,\"error\":\"x.mov:\\nmissing\"}");
    cli_watch_plain_line(f, b, sizeof b);
    cr_assert_str_eq(b, "job 3 failed 100% (1/1 tasks): x.mov: missing");
    const cJSON *jobs[] = {j, f, j};
    cli_watch_summary(jobs, 3, b, sizeof b);
    cr_assert_str_eq(b, "3 jobs: 2 running, 1 failed");
    cJSON_Delete(j);
    cJSON_Delete(f);
}

Test(cli_render, url_escape)
{
    char b[64];
    cli_url_escape("a b&c=d/é", b, sizeof b);
    cr_assert_str_eq(b, "a%20b%26c%3Dd%2F%C3%A9");
    char tiny[4];
    cli_url_escape("abcdef", tiny, sizeof tiny);
    cr_assert_str_eq(tiny, "");
}

/* ---- arguments --------------------------------------------------------- */

static rs_err parse(cli_args *a, const cli_opt_spec *spec, rs_error *e, int argc, ...)
{
    static char *argv[32];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, char *);
    }
    va_end(ap);
    return cli_args_parse(argc, argv, spec, a, e);
}

Test(cli_args, params_take_json_values_or_strings)
{
    cJSON *p = cJSON_CreateObject();
    rs_error e;
    cr_assert_eq(cli_param_parse(p, "n=5", &e), RS_OK);
    cr_assert_eq(cli_param_parse(p, "b=true", &e), RS_OK);
    cr_assert_eq(cli_param_parse(p, "o={\"a\":[1,2]}", &e), RS_OK);
    cr_assert_eq(cli_param_parse(p, "path=/media/A001 C003.mov", &e), RS_OK);
    cr_assert_eq(cli_param_parse(p, "q=\"12\"", &e), RS_OK);
    cr_assert_eq(cli_param_parse(p, "e=", &e), RS_OK);
    cr_assert_eq(cli_param_parse(p, "half={\"a\":", &e), RS_OK);
    cr_assert_eq(cli_param_parse(p, "eq=a=b", &e), RS_OK);
    cr_assert_eq(cli_param_parse(p, "n=6", &e), RS_OK); /* replaces */
    char *s = cJSON_PrintUnformatted(p);
    cr_assert_str_eq(s, "{\"b\":true,\"o\":{\"a\":[1,2]},\"path\":\"/media/A001 C003.mov\","
                        "\"q\":\"12\",\"e\":\"\",\"half\":\"{\\\"a\\\":\",\"eq\":\"a=b\",\"n\":6}");
    free(s);
    cr_assert_eq(cli_param_parse(p, "novalue", &e), RS_EINVAL);
    cr_assert_str_eq(e.msg, "--param 'novalue': expected key=value");
    cr_assert_eq(cli_param_parse(p, "=1", &e), RS_EINVAL);
    cr_assert_str_eq(e.msg, "--param '=1': empty key");
    cJSON_Delete(p);
}

Test(cli_args, option_forms_and_errors)
{
    cli_args a;
    rs_error e;
    static const cli_opt_spec spec[] = {
        {"project", CLI_OPT_VALUE}, {"param", CLI_OPT_MULTI}, {"wait", CLI_OPT_FLAG}, {NULL, 0}};
    cr_assert_eq(parse(&a, spec, &e, 8, "noop", "--project", "p1", "--param=a=1", "--wait",
                       "--json", "--", "--literal"),
                 RS_OK);
    cr_assert_eq(a.npos, 2);
    cr_assert_str_eq(a.pos[0], "noop");
    cr_assert_str_eq(a.pos[1], "--literal");
    cr_assert_str_eq(cli_args_get(&a, "project"), "p1");
    cr_assert_str_eq(cli_args_get(&a, "param"), "a=1");
    cr_assert_str_eq(cli_args_get(&a, "wait"), "");
    cr_assert(cli_args_has(&a, "json"));
    cr_assert_not(cli_args_has(&a, "server"));

    cr_assert_eq(parse(&a, spec, &e, 1, "--bogus"), RS_EINVAL);
    cr_assert_str_eq(e.msg, "unknown option --bogus");
    cr_assert_eq(parse(&a, spec, &e, 1, "--project"), RS_EINVAL);
    cr_assert_str_eq(e.msg, "--project needs a value");
    cr_assert_eq(parse(&a, spec, &e, 1, "--wait=yes"), RS_EINVAL);
    cr_assert_str_eq(e.msg, "--wait takes no value");
    cr_assert_eq(parse(&a, spec, &e, 1, "-x"), RS_EINVAL);
    cr_assert_eq(parse(&a, spec, &e, 1, "-h"), RS_OK);
    cr_assert(cli_args_has(&a, "help"));
}

Test(cli_args, integers_are_strict)
{
    int64_t v;
    rs_error e;
    cr_assert_eq(cli_parse_int("--priority", "-100", -100, 100, &v, &e), RS_OK);
    cr_assert_eq(v, -100);
    cr_assert_eq(cli_parse_int("--priority", "101", -100, 100, &v, &e), RS_EINVAL);
    cr_assert_str_eq(e.msg, "--priority: '101' is not an integer in -100..100");
    cr_assert_eq(cli_parse_int("--priority", "1x", -100, 100, &v, &e), RS_EINVAL);
    cr_assert_eq(cli_parse_int("--priority", "", -100, 100, &v, &e), RS_EINVAL);
    cr_assert_eq(cli_parse_int("--priority", "99999999999999999999", 0, 100, &v, &e), RS_EINVAL);
}

static char *submit_json(rs_error *e, rs_err *rc, int argc, ...)
{
    static char *argv[32];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, char *);
    }
    va_end(ap);
    cli_args a;
    *rc = cli_args_parse(argc, argv, cli_submit_opts, &a, e);
    if (*rc != RS_OK) {
        return NULL;
    }
    cJSON *body = NULL;
    *rc = cli_submit_body("noop", &a, &body, e);
    if (*rc != RS_OK) {
        return NULL;
    }
    char *s = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    return s;
}

Test(cli_args, submit_body)
{
    rs_error e;
    rs_err rc;
    char *s = submit_json(&e, &rc, 11, "--project", "demo", "--params", "{\"tasks\":2,\"x\":1}",
                          "--param", "tasks=4", "--depends-on", "3,5", "--depends-on=9",
                          "--priority", "-7");
    cr_assert_eq(rc, RS_OK, "%s", e.msg);
    cr_assert_str_eq(s, "{\"project\":\"demo\",\"kind\":\"noop\",\"params\":{\"x\":1,\"tasks\":4},"
                        "\"depends_on\":[3,5,9],\"priority\":-7}");
    free(s);
    s = submit_json(&e, &rc, 6, "--project", "demo", "--max-attempts", "20", "--pool", "gpu");
    cr_assert_str_eq(s, "{\"project\":\"demo\",\"kind\":\"noop\",\"params\":{},"
                        "\"max_attempts\":20,\"pool\":\"gpu\"}");
    free(s);

    struct {
        int argc;
        char *argv[6];
        const char *msg;
    } bad[] = {
        {2, {"--param", "a=1"}, "--project is required"},
        {6,
         {"--project", "d", "--params", "{}", "--params-file", "/x"},
         "--params and --params-file cannot be used together"},
        {4, {"--project", "d", "--params", "[1]"}, "--params: not a JSON object"},
        {4,
         {"--project", "d", "--priority", "200"},
         "--priority: '200' is not an integer in -100..100"},
        {4,
         {"--project", "d", "--max-attempts", "0"},
         "--max-attempts: '0' is not an integer in 1..20"},
        {4, {"--project", "d", "--depends-on", "1,,2"}, "--depends-on '1,,2': expected ID[,ID...]"},
        {4,
         {"--project", "d", "--depends-on", "x"},
         "--depends-on: 'x' is not an integer in 1..9007199254740991"},
        {4,
         {"--project", "d", "--idempotency-key", "a\r\nX-Evil: 1"},
         "--idempotency-key: must be 1..128 printable characters"},
        {4, {"--project", "d", "--params-file", "/nonexistent/p.json"}, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_args a;
        cr_assert_eq(cli_args_parse(bad[i].argc, bad[i].argv, cli_submit_opts, &a, &e), RS_OK);
        cJSON *body = NULL;
        cr_assert_eq(cli_submit_body("noop", &a, &body, &e), RS_EINVAL, "case %zu", i);
        cr_assert_null(body);
        if (bad[i].msg != NULL) {
            cr_assert_str_eq(e.msg, bad[i].msg);
        } else {
            cr_assert_not_null(strstr(e.msg, "--params-file /nonexistent/p.json"), "%s", e.msg);
        }
    }
}

Test(cli_args, submit_window)
{
    rs_error e;
    rs_err rc;
    char *s = submit_json(&e, &rc, 8, "--project", "demo", "--window", "0 22 * * *",
                          "--window-hours", "8", "--tz", "Europe/London");
    cr_assert_eq(rc, RS_OK, "%s", e.msg);
    cr_assert_str_eq(s, "{\"project\":\"demo\",\"kind\":\"noop\",\"params\":{},"
                        "\"window\":{\"cron\":\"0 22 * * *\",\"duration_min\":480,"
                        "\"tz\":\"Europe/London\"}}");
    free(s);
    s = submit_json(&e, &rc, 7, "--project", "demo", "--window=30 1 * * 1-5", "--window-min", "90",
                    "--priority", "3");
    cr_assert_eq(rc, RS_OK, "%s", e.msg);
    cr_assert_str_eq(s, "{\"project\":\"demo\",\"kind\":\"noop\",\"params\":{},"
                        "\"priority\":3,\"window\":{\"cron\":\"30 1 * * 1-5\","
                        "\"duration_min\":90}}");
    free(s);

    struct {
        int argc;
        char *argv[8];
        const char *msg;
    } bad[] = {
        {4,
         {"--project", "p", "--window", "0 22 * * *"},
         "--window needs one of --window-hours N or --window-min N"},
        {8,
         {"--project", "p", "--window", "0 22 * * *", "--window-hours", "1", "--window-min", "5"},
         "--window needs one of --window-hours N or --window-min N"},
        {6,
         {"--project", "p", "--window", "0 22 * * *", "--window-hours", "169"},
         "--window-hours: '169' is not an integer in 1..168"},
        {6,
         {"--project", "p", "--window", "0 22 * * *", "--window-min", "0"},
         "--window-min: '0' is not an integer in 1..10080"},
        {4,
         {"--project", "p", "--window-hours", "8"},
         "--window-hours needs --window 'M H DOM MON DOW'"},
        {4, {"--project", "p", "--tz", "UTC"}, "--tz needs --window 'M H DOM MON DOW'"},
        {6,
         {"--project", "p", "--window", "", "--window-min", "5"},
         "--window: empty cron expression"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_args a;
        cr_assert_eq(cli_args_parse(bad[i].argc, bad[i].argv, cli_submit_opts, &a, &e), RS_OK);
        cJSON *body = NULL;
        cr_assert_eq(cli_submit_body("noop", &a, &body, &e), RS_EINVAL, "case %zu", i);
        cr_assert_null(body);
        cr_assert_str_eq(e.msg, bad[i].msg, "case %zu", i);
    }
}

Test(cli_args, params_file)
{
    char path[] = "/tmp/rs_cli_params.XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *txt = "{\"path\": \"/m/a.mov\", \"files_per_task\": 4}\n";
    cr_assert_eq(write(fd, txt, strlen(txt)), (ssize_t)strlen(txt));
    close(fd);
    rs_error e;
    rs_err rc;
    char *s = submit_json(&e, &rc, 4, "--project", "p", "--params-file", path);
    unlink(path);
    cr_assert_eq(rc, RS_OK, "%s", e.msg);
    cr_assert_str_eq(s, "{\"project\":\"p\",\"kind\":\"noop\",\"params\":{\"path\":\"/m/a.mov\","
                        "\"files_per_task\":4}}");
    free(s);
}

/* ---- a fake API server ------------------------------------------------- */

typedef struct fake {
    nng_http_server *srv;
    nng_http_handler *h;
    int port;
    pthread_mutex_t mu;
    int polls;            /* GET /api/v1/jobs/7 count */
    char last_body[4096]; /* last request body */
    char last_uri[512];
    char last_method[16];
    char last_idem[256];
    char last_ctype[128];
} fake;

static const char *job7(int polls)
{
    if (polls < 3) {
        return "{\"job\":{\"id\":7,\"kind\":\"noop\",\"project\":\"demo\",\"state\":\"queued\","
               "\"progress\":0,\"tasks_done\":0,\"tasks_total\":2,\"error\":null}}";
    }
    if (polls < 6) {
        return "{\"job\":{\"id\":7,\"kind\":\"noop\",\"project\":\"demo\",\"state\":\"running\","
               "\"progress\":0.5,\"tasks_done\":1,\"tasks_total\":2,\"error\":null}}";
    }
    return "{\"job\":{\"id\":7,\"kind\":\"noop\",\"project\":\"demo\",\"state\":\"succeeded\","
           "\"progress\":1,\"tasks_done\":2,\"tasks_total\":2,\"error\":null}}";
}

static const char *SHOW8 =
    "{\"job\":{\"id\":8,\"project\":\"demo\",\"kind\":\"ingest\",\"state\":\"failed\","
    "\"priority\":5,\"params\":{\"path\":\"/m/A001\"},\"depends_on\":[7],"
    "\"idempotency_key\":null,\"max_attempts\":3,\"pool\":\"\","
    "\"created_at\":\"2026-11-25T06:15:22.123Z\",\"started_at\":\"2026-11-25T06:15:23.000Z\","
    "\"finished_at\":\"2026-11-25T06:16:23.000Z\",\"tasks_total\":1,\"tasks_done\":0,"
    "\"progress\":0.25,\"error\":\"A001/x.mov: cannot open\",\"result\":null,"
    "\"tasks\":[{\"id\":31,\"index\":0,\"state\":\"failed\",\"attempts_used\":1,\"progress\":0.25,"
    "\"error\":\"A001/x.mov: cannot open\",\"attempts\":[{\"id\":90,\"worker_id\":2,"
    "\"worker\":\"w1\",\"state\":\"failed\",\"started_at\":\"2026-11-25T06:15:23.000Z\","
    "\"finished_at\":\"2026-11-25T06:15:25.500Z\",\"exit_code\":1,\"signal\":null,"
    "\"error\":\"A001/x.mov: cannot open\"}]}],"
    "\"clips\":[{\"id\":4,\"project\":\"demo\",\"job_id\":8,\"name\":\"A001C003.mov\","
    "\"path\":\"/m/A001/A001C003.mov\",\"hash\":\"xxh3:0123456789abcdef\",\"info\":{\"type\":"
    "\"video\",\"codec\":\"prores\",\"width\":3840,\"height\":2160,\"fps_float\":25,"
    "\"frames\":250},\"created_at\":\"2026-11-25T06:16:23.000Z\"}]}}";

static void reply(nng_aio *aio, int status, const char *body)
{
    nng_http_res *res = NULL;
    nng_http_res_alloc(&res);
    nng_http_res_set_status(res, (uint16_t)status);
    nng_http_res_set_header(res, "Content-Type", "application/json");
    nng_http_res_copy_data(res, body, strlen(body));
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void handle(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    fake *f = nng_http_handler_get_data(h);
    const char *uri = nng_http_req_get_uri(req);
    const char *method = nng_http_req_get_method(req);
    void *data = NULL;
    size_t len = 0;
    nng_http_req_get_data(req, &data, &len);
    pthread_mutex_lock(&f->mu);
    snprintf(f->last_uri, sizeof f->last_uri, "%s", uri);
    snprintf(f->last_method, sizeof f->last_method, "%s", method);
    snprintf(f->last_body, sizeof f->last_body, "%.*s", (int)len, data != NULL ? (char *)data : "");
    const char *idem = nng_http_req_get_header(req, "Idempotency-Key");
    snprintf(f->last_idem, sizeof f->last_idem, "%s", idem != NULL ? idem : "");
    const char *ct = nng_http_req_get_header(req, "Content-Type");
    snprintf(f->last_ctype, sizeof f->last_ctype, "%s", ct != NULL ? ct : "");
    int polls = 0;
    if (strcmp(uri, "/api/v1/jobs/7") == 0) {
        polls = f->polls++;
    }
    pthread_mutex_unlock(&f->mu);

    if (strcmp(method, "POST") == 0 && strcmp(uri, "/api/v1/jobs") == 0) {
        if (strstr(f->last_body, "\"kind\":\"bogus\"") != NULL) {
            reply(aio, 400,
                  "{\"error\":{\"code\":\"bad_request\",\"message\":\"kind: unknown job "
                  "kind 'bogus'\"}}");
        } else {
            reply(aio, 201, "{\"job\":{\"id\":42,\"state\":\"queued\"}}");
        }
    } else if (strncmp(uri, "/api/v1/jobs?", 13) == 0 || strcmp(uri, "/api/v1/jobs") == 0) {
        if (strstr(uri, "state=running&limit=1000") != NULL) {
            reply(aio, 200, "{\"jobs\":[{\"id\":7,\"state\":\"running\"}]}");
        } else if (strstr(uri, "state=queued&limit=1000") != NULL) {
            reply(aio, 200, "{\"jobs\":[]}");
        } else {
            reply(aio, 200,
                  "{\"jobs\":[{\"id\":12,\"project\":\"demo\",\"kind\":\"ingest\",\"state\":"
                  "\"running\",\"progress\":0.4,\"tasks_done\":2,\"tasks_total\":5,"
                  "\"created_at\":\"2000-01-01T00:00:00Z\",\"error\":null},{\"id\":9,\"project\":"
                  "\"p2\",\"kind\":\"noop\",\"state\":\"failed\",\"progress\":1,\"tasks_done\":1,"
                  "\"tasks_total\":1,\"created_at\":null,\"error\":\"exit code 3\"}]}");
        }
    } else if (strcmp(uri, "/api/v1/jobs/7") == 0) {
        reply(aio, 200, job7(polls));
    } else if (strcmp(uri, "/api/v1/jobs/8") == 0) {
        reply(aio, 200, SHOW8);
    } else if (strcmp(uri, "/api/v1/jobs/8/cancel") == 0) {
        reply(aio, 409,
              "{\"error\":{\"code\":\"conflict\",\"message\":\"job 8 is already "
              "finished (failed)\"}}");
    } else if (strcmp(uri, "/api/v1/jobs/7/cancel") == 0) {
        reply(aio, 200, "{\"job\":{\"id\":7,\"state\":\"cancelled\"}}");
    } else if (strncmp(uri, "/api/v1/jobs/8/log", 18) == 0) {
        reply(aio, 200,
              "{\"lines\":[{\"t\":\"2026-11-25T06:15:24.000Z\",\"task\":31,\"attempt\":90,"
              "\"text\":\"hashing x.mov\"},{\"t\":1795587325000,\"task\":31,"
              "\"attempt\":90,\"text\":\"x.mov: cannot open\"}]}");
    } else if (strcmp(uri, "/api/v1/workers") == 0) {
        reply(aio, 200,
              "{\"workers\":[{\"id\":2,\"name\":\"w1\",\"pool\":\"gpu\",\"state\":"
              "\"up\",\"heartbeat_age_ms\":1200,\"devices\":[{\"name\":\"llvmpipe\"},"
              "\"cpu\"],\"running\":[90,91]}]}");
    } else if (strncmp(uri, "/api/v1/clips", 13) == 0) {
        reply(aio, 200, "{\"clips\":[]}");
    } else if (strcmp(uri, "/big") == 0) {
        static char big[8192];
        memset(big, 'x', sizeof big - 1);
        reply(aio, 200, big);
    } else if (strcmp(uri, "/notjson") == 0) {
        reply(aio, 502, "<html>Bad Gateway</html>\n<body>");
    } else {
        reply(aio, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no job 99\"}}");
    }
}

static fake *fake_start(void)
{
    fake *f = calloc(1, sizeof *f);
    cr_assert_not_null(f);
    pthread_mutex_init(&f->mu, NULL);
    nng_url *u = NULL;
    cr_assert_eq(nng_url_parse(&u, "http://127.0.0.1:0"), 0);
    cr_assert_eq(nng_http_server_hold(&f->srv, u), 0);
    nng_url_free(u);
    cr_assert_eq(nng_http_handler_alloc(&f->h, "/", handle), 0);
    cr_assert_eq(nng_http_handler_set_method(f->h, NULL), 0);
    cr_assert_eq(nng_http_handler_collect_body(f->h, true, 1 << 20), 0);
    cr_assert_eq(nng_http_handler_set_tree(f->h), 0);
    cr_assert_eq(nng_http_handler_set_data(f->h, f, NULL), 0);
    cr_assert_eq(nng_http_server_add_handler(f->srv, f->h), 0);
    cr_assert_eq(nng_http_server_start(f->srv), 0);
    nng_sockaddr sa;
    cr_assert_eq(nng_http_server_get_addr(f->srv, &sa), 0);
    f->port = ntohs(sa.s_in.sa_port);
    return f;
}

static void fake_stop(fake *f)
{
    nng_http_server_stop(f->srv);
    nng_http_server_release(f->srv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

typedef struct run_result {
    int rc;
    char *out;
    char *err;
} run_result;

/* Runs `rushes --server http://127.0.0.1:PORT ARGS...` with captured output. */
static run_result run_cli(int port, const char *args)
{
    char server[64];
    snprintf(server, sizeof server, "http://127.0.0.1:%d", port);
    char *copy = strdup(args);
    char *argv[40] = {"rushes", "--server", server};
    int argc = 3;
    for (char *tok = strtok(copy, " "); tok != NULL && argc < 39; tok = strtok(NULL, " ")) {
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    run_result r = {0};
    size_t ol = 0, el = 0;
    FILE *out = open_memstream(&r.out, &ol);
    FILE *err = open_memstream(&r.err, &el);
    r.rc = cli_run(argc, argv, out, err);
    fclose(out);
    fclose(err);
    free(copy);
    return r;
}

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

Test(cli_e2e, ls_table)
{
    fake *f = fake_start();
    run_result r = run_cli(f->port, "ls --state running --project my proj --limit 5");
    /* "my proj" split into two words: "proj" is an extra positional */
    cr_assert_eq(r.rc, 2);
    cr_assert_str_eq(r.err,
                     "rushes: too many arguments: usage: rushes ls [--state S] [--project P] "
                     "[--limit N] (see: rushes ls --help)\n");
    run_free(&r);
    r = run_cli(f->port, "ls --state running --project a&b --limit 5");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_str_eq(f->last_uri, "/api/v1/jobs?state=running&project=a%26b&limit=5");
    cr_assert_not_null(strstr(r.out, "ID  PROJECT  KIND    STATE    PROGRESS  AGE  "), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\n12  demo     ingest  running  40% 2/5   "), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\n9   p2       noop    failed   100% 1/1  -  "), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "  exit code 3\n"), "%s", r.out);
    run_free(&r);
    r = run_cli(f->port, "--json ls");
    cr_assert_eq(r.rc, 0);
    cJSON *doc = cJSON_Parse(r.out);
    cr_assert_not_null(doc);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "jobs")), 2);
    cJSON_Delete(doc);
    run_free(&r);
    r = run_cli(f->port, "ls --limit 0");
    cr_assert_eq(r.rc, 2);
    cr_assert_str_eq(r.err,
                     "rushes: --limit: '0' is not an integer in 1..1000 (see: rushes ls --help)\n");
    run_free(&r);
    fake_stop(f);
}

Test(cli_e2e, submit_sends_body_and_key)
{
    fake *f = fake_start();
    run_result r = run_cli(f->port, "submit noop --project demo --param tasks=3 --param "
                                    "sleep_ms=10 --depends-on 1,2 --idempotency-key k-1");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "42\n");
    cr_assert_str_eq(f->last_method, "POST");
    cr_assert_str_eq(f->last_idem, "k-1");
    cr_assert_str_eq(f->last_ctype, "application/json");
    cr_assert_str_eq(f->last_body,
                     "{\"project\":\"demo\",\"kind\":\"noop\",\"params\":{\"tasks\":3,"
                     "\"sleep_ms\":10},\"depends_on\":[1,2]}");
    run_free(&r);

    r = run_cli(f->port, "submit noop --project demo --json");
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.out, "{\"job\":{\"id\":42,\"state\":\"queued\"}}\n");
    run_free(&r);

    /* ingest resolves a relative path against the working folder */
    r = run_cli(f->port, "ingest some/shot.%04d.png --project demo --param files_per_task=2");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    char cwd[4096];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    char want[8192];
    snprintf(want, sizeof want,
             "{\"project\":\"demo\",\"kind\":\"ingest\",\"params\":"
             "{\"files_per_task\":2,\"path\":\"%s/some/shot.%%04d.png\"}}",
             cwd);
    cr_assert_str_eq(f->last_body, want);
    run_free(&r);
    r = run_cli(f->port, "ingest /tmp/../tmp --project demo");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_not_null(strstr(f->last_body, "\"path\":\"/tmp\""), "%s", f->last_body);
    run_free(&r);
    fake_stop(f);
}

Test(cli_e2e, http_errors_are_one_line)
{
    fake *f = fake_start();
    run_result r = run_cli(f->port, "submit bogus --project demo");
    cr_assert_eq(r.rc, 1);
    cr_assert_str_eq(r.err, "rushes: 400 bad_request: kind: unknown job kind 'bogus'\n");
    cr_assert_str_eq(r.out, "");
    run_free(&r);
    r = run_cli(f->port, "--json show 99");
    cr_assert_eq(r.rc, 1);
    cr_assert_str_eq(r.err, "rushes: 404 not_found: no job 99\n");
    cr_assert_str_eq(r.out, "{\"error\":{\"code\":\"not_found\",\"message\":\"no job 99\"}}\n");
    run_free(&r);
    r = run_cli(f->port, "cancel 8");
    cr_assert_eq(r.rc, 1);
    cr_assert_str_eq(r.err, "rushes: 409 conflict: job 8 is already finished (failed)\n");
    run_free(&r);
    fake_stop(f);
}

Test(cli_e2e, connection_refused)
{
    /* a port that was just in use and is now closed */
    fake *f = fake_start();
    int port = f->port;
    fake_stop(f);
    run_result r = run_cli(port, "workers");
    cr_assert_eq(r.rc, 1);
    char want[128];
    snprintf(want, sizeof want, "rushes: cannot reach http://127.0.0.1:%d: connection refused\n",
             port);
    cr_assert_str_eq(r.err, want);
    run_free(&r);
    r = run_cli(port, "workers --json");
    cr_assert_eq(r.rc, 1);
    cJSON *doc = cJSON_Parse(r.out);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "error"), "code")->valuestring,
                     "unreachable");
    cJSON_Delete(doc);
    run_free(&r);
}

Test(cli_e2e, body_cap_and_non_json_errors)
{
    fake *f = fake_start();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    cli_server s = {.url = url, .timeout_ms = 5000, .body_cap = 4096};
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    rs_error e;
    cr_assert_eq(cli_http_request(&s, "GET", "/big", NULL, 0, NULL, &status, &body, &len, &e),
                 RS_ETOOBIG);
    cr_assert_null(body);
    cr_assert_not_null(strstr(e.msg, "8191 bytes is over the 4096-byte cap"), "%s", e.msg);
    s.body_cap = 0;
    cr_assert_eq(cli_http_request(&s, "GET", "/big", NULL, 0, NULL, &status, &body, &len, &e),
                 RS_OK);
    cr_assert_eq(status, 200);
    cr_assert_eq(len, 8191);
    cr_assert_eq(strlen(body), 8191);
    free(body);

    cli_ctx c = {.server = s};
    cJSON *doc = NULL;
    cr_assert_eq(cli_api_call(&c, "GET", "/notjson", NULL, 0, NULL, &doc, NULL, &e), RS_EPROTO);
    cr_assert_str_eq(e.msg, "502 http_error: <html>Bad Gateway</html>");
    fake_stop(f);
}

Test(cli_e2e, show_details)
{
    fake *f = fake_start();
    run_result r = run_cli(f->port, "show 8");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    const char *want[] = {
        "job 8\n",
        "kind         ingest\n",
        "state        failed 25% (0/1 tasks)\n",
        "priority     5\n",
        "depends on   [7]\n",
        "idempotency  -\n",
        "created      2026-11-25T06:15:22.123Z (",
        "params       {\"path\":\"/m/A001\"}\n",
        "error        A001/x.mov: cannot open\n",
        "TASK  INDEX  STATE   PROGRESS  ATTEMPTS  WORKER  ERROR\n",
        "31    0      failed  25%       1         w1      A001/x.mov: cannot open\n",
        "ATTEMPT  TASK  WORKER  STATE   STARTED                   TOOK  EXIT  ERROR\n",
        "90       31    w1      failed  2026-11-25T06:15:23.000Z  2s    1     A001/x.mov",
        "ID  JOB  NAME          RESOLUTION  FRAMES  FPS  CODEC   HASH\n",
        "4   8    A001C003.mov  3840x2160   250     25   prores  xxh3:0123456789abcdef\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cr_assert_not_null(strstr(r.out, want[i]), "missing [%s] in:\n%s", want[i], r.out);
    }
    run_free(&r);
    fake_stop(f);
}

Test(cli_e2e, logs_workers_clips_cancel)
{
    fake *f = fake_start();
    run_result r = run_cli(f->port, "logs 8");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "2026-11-25T06:15:24.000Z task 31 attempt 90: hashing x.mov\n"
                            "2026-11-25T06:15:25.000Z task 31 attempt 90: x.mov: cannot open\n");
    cr_assert_str_eq(f->last_uri, "/api/v1/jobs/8/log?limit=1000");
    run_free(&r);
    /* follow on a finished job prints once and ends */
    r = run_cli(f->port, "logs 8 --follow --interval-ms 10");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "2026-11-25T06:15:24.000Z task 31 attempt 90: hashing x.mov\n"
                            "2026-11-25T06:15:25.000Z task 31 attempt 90: x.mov: cannot open\n");
    run_free(&r);
    r = run_cli(f->port, "workers");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "ID  NAME  POOL  STATE  HEARTBEAT  DEVICES       RUNNING\n"
                            "2   w1    gpu   up     1s         llvmpipe,cpu  90,91\n");
    run_free(&r);
    r = run_cli(f->port, "clips --project demo --job 8");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_str_eq(f->last_uri, "/api/v1/clips?project=demo&job=8");
    cr_assert_str_eq(r.out, "ID  JOB  NAME  RESOLUTION  FRAMES  FPS  CODEC  HASH\n");
    run_free(&r);
    r = run_cli(f->port, "cancel 7");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_str_eq(f->last_method, "POST");
    cr_assert_str_eq(r.out, "job 7 cancelled\n");
    run_free(&r);
    fake_stop(f);
}

Test(cli_e2e, watch_plain_lines_on_change_only)
{
    fake *f = fake_start();
    run_result r = run_cli(f->port, "watch 7 --interval-ms 10");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "job 7 queued 0% (0/2 tasks)\n"
                            "job 7 running 50% (1/2 tasks)\n"
                            "job 7 succeeded 100% (2/2 tasks)\n");
    cr_assert_eq(f->polls, 7);
    run_free(&r);
    /* no ids: every unfinished job (the fake lists job 7 as running) */
    f->polls = 3;
    r = run_cli(f->port, "watch --interval-ms 10 --json");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cJSON *doc = cJSON_Parse(r.out);
    cr_assert_not_null(doc, "%s", r.out);
    cJSON *j = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "jobs"), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "state")->valuestring, "succeeded");
    cJSON_Delete(doc);
    run_free(&r);
    /* a failed job and a vanished one: exit 1 */
    r = run_cli(f->port, "watch 8 99 --interval-ms 10");
    cr_assert_eq(r.rc, 1);
    cr_assert_str_eq(r.out, "job 8 failed 25% (0/1 tasks): A001/x.mov: cannot open\n"
                            "job 99 failed 0% (0/0 tasks): 404 not_found: no job 99\n");
    run_free(&r);
    fake_stop(f);
}

Test(cli_e2e, submit_wait_follows_the_job)
{
    fake *f = fake_start();
    /* the fake answers id 42 to submits; watch polls 42 -> 404 -> exit 1,
     * which shows --wait really watches what it submitted */
    run_result r = run_cli(f->port, "submit noop --project demo --wait");
    cr_assert_eq(r.rc, 1);
    cr_assert_str_eq(r.out, "42\njob 42 failed 0% (0/0 tasks): 404 not_found: no job 99\n");
    run_free(&r);
    fake_stop(f);
}

Test(cli_e2e, usage_and_version)
{
    run_result r = run_cli(1, "--version");
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.out, "rushes 0.1.0\n");
    run_free(&r);
    r = run_cli(1, "frobnicate");
    cr_assert_eq(r.rc, 2);
    cr_assert_str_eq(r.err, "rushes: unknown command 'frobnicate' (see: rushes --help)\n");
    run_free(&r);
    r = run_cli(1, "show");
    cr_assert_eq(r.rc, 2);
    r.err[strcspn(r.err, "\n")] = '\0';
    cr_assert_str_eq(r.err,
                     "rushes: missing argument: usage: rushes show ID (see: rushes show --help)");
    run_free(&r);
    r = run_cli(1, "--timeout-ms 0 ls");
    cr_assert_eq(r.rc, 2);
    run_free(&r);
    r = run_cli(1, "ls --help");
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.out, "usage: rushes ls [--state S] [--project P] [--limit N]\n");
    run_free(&r);
    r = run_cli(1, "--help");
    cr_assert_eq(r.rc, 0);
    cr_assert_not_null(strstr(r.out, "  mhl verify MHL_FILE --root DIR\n"));
    run_free(&r);
    r = run_cli(1, "mhl verify");
    cr_assert_eq(r.rc, 2);
    run_free(&r);
    r = run_cli(1, "mhl verify /nonexistent/x.mhl");
    cr_assert_eq(r.rc, 2);
    cr_assert_str_eq(r.err, "rushes: --root is required (see: rushes mhl --help)\n");
    run_free(&r);
    r = run_cli(1, "mhl verify /nonexistent/x.mhl --root /nonexistent");
#ifdef RUSHES_CLI_HAVE_MHL_VERIFY
    cr_assert_eq(r.rc, 1);
    cr_assert_eq(strncmp(r.err, "rushes: mhl verify: ", 20), 0, "%s", r.err);
#else
    cr_assert_eq(r.rc, 2);
    cr_assert_str_eq(r.err, "rushes: mhl verify: not built\n");
#endif
    run_free(&r);
}
