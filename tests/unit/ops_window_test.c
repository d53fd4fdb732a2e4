/*
 * ops_window_test.c: training windows below the daemon loop: the window
 * object's validation and open/closed evaluation (cron.c, with time zones
 * and windows that cross midnight), and the store's side (store_ops.c,
 * store.c): a closed window's tasks are never leased, closing asks live
 * attempts to yield, and a yielded report re-queues the task without
 * spending an attempt; and the training gauges in /metrics.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cron.h"
#include "metrics.h"
#include "store.h"

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm) * 1000;
}

static cron_window window(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    cr_assert_not_null(o, "%s", json);
    cron_window w;
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(cron_window_from_json(o, &w, &e), RS_OK, "%s: %s", json, rs_error_text(&e));
    cJSON_Delete(o);
    return w;
}

static bool is_open(const cron_window *w, int64_t now, int64_t *edge)
{
    bool open = true;
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(cron_window_open(w, now, &open, edge, &e), RS_OK, "%s", rs_error_text(&e));
    return open;
}

Test(ops_window, validation_names_the_field)
{
    const char *bad[][2] = {
        {"\"x\"", "window"},
        {"{\"duration_min\":60}", "window.cron"},
        {"{\"cron\":\"0 25 * * *\",\"duration_min\":60}", "window.cron"},
        {"{\"cron\":\"0 22 * * *\"}", "window.duration_min"},
        {"{\"cron\":\"0 22 * * *\",\"duration_min\":0}", "window.duration_min"},
        {"{\"cron\":\"0 22 * * *\",\"duration_min\":1.5}", "window.duration_min"},
        {"{\"cron\":\"0 22 * * *\",\"duration_min\":10081}", "window.duration_min"},
        {"{\"cron\":\"0 22 * * *\",\"duration_min\":60,\"tz\":\"Nowhere/Here\"}", "window.tz"},
        {"{\"cron\":\"0 22 * * *\",\"duration_min\":60,\"tz\":\"../etc/passwd\"}", "window.tz"},
        {"{\"cron\":\"0 22 * * *\",\"duration_min\":60,\"when\":1}", "unknown field"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *o = cJSON_Parse(bad[i][0]);
        cr_assert_not_null(o);
        cron_window w;
        rs_error e;
        rs_error_clear(&e);
        cr_assert_eq(cron_window_from_json(o, &w, &e), RS_EINVAL, "accepted %s", bad[i][0]);
        cr_assert(strstr(e.msg, bad[i][1]) != NULL, "%s: \"%s\" lacks %s", bad[i][0], e.msg,
                  bad[i][1]);
        cJSON_Delete(o);
    }
    cron_window w = window("{\"cron\":\"0 22 * * *\",\"duration_min\":480}");
    cr_assert_str_eq(w.tz, "UTC");
    cr_assert_eq(w.duration_ms, 480 * 60000);
    /* The stored form round-trips, "open" included. */
    char *text = cron_window_to_json(&w, true);
    cr_assert_not_null(text);
    cr_assert_str_eq(text,
                     "{\"cron\":\"0 22 * * *\",\"duration_min\":480,\"tz\":\"UTC\",\"open\":true}");
    cron_window w2 = window(text);
    cr_assert_eq(w2.duration_ms, w.duration_ms);
    free(text);
}

Test(ops_window, open_across_midnight_in_utc)
{
    /* Nightly 22:00-06:00. */
    cron_window w = window("{\"cron\":\"0 22 * * *\",\"duration_min\":480,\"tz\":\"UTC\"}");
    int64_t edge = 0;
    cr_assert_not(is_open(&w, utc(2026, 11, 25, 21, 59), &edge));
    cr_assert_eq(edge, utc(2026, 11, 25, 22, 0), "closed: edge is the next opening");
    cr_assert(is_open(&w, utc(2026, 11, 25, 22, 0), &edge), "open at its first minute");
    cr_assert_eq(edge, utc(2026, 11, 26, 6, 0), "open: edge is the end");
    cr_assert(is_open(&w, utc(2026, 11, 26, 3, 0), &edge), "open after midnight");
    cr_assert_eq(edge, utc(2026, 11, 26, 6, 0));
    cr_assert(is_open(&w, utc(2026, 11, 26, 6, 0) - 1, NULL));
    cr_assert_not(is_open(&w, utc(2026, 11, 26, 6, 0), &edge), "closed at its end");
    cr_assert_eq(edge, utc(2026, 11, 26, 22, 0));
    cr_assert_not(is_open(&w, utc(2026, 11, 26, 12, 0), NULL));
}

Test(ops_window, time_zone_and_weekdays)
{
    /* 22:00 in London is 21:00 UTC in summer (BST), 22:00 UTC in winter. */
    cron_window w =
        window("{\"cron\":\"0 22 * * *\",\"duration_min\":60,\"tz\":\"Europe/London\"}");
    cr_assert(is_open(&w, utc(2026, 7, 1, 21, 30), NULL));
    cr_assert_not(is_open(&w, utc(2026, 7, 1, 22, 30), NULL));
    cr_assert_not(is_open(&w, utc(2026, 12, 1, 21, 30), NULL));
    cr_assert(is_open(&w, utc(2026, 12, 1, 22, 30), NULL));
    /* Weekends only (Sat 2026-11-28, Sun 29), all day. */
    cron_window we = window("{\"cron\":\"0 0 * * 6,0\",\"duration_min\":1440}");
    cr_assert_not(is_open(&we, utc(2026, 11, 27, 23, 59), NULL));
    cr_assert(is_open(&we, utc(2026, 11, 28, 10, 0), NULL));
    cr_assert(is_open(&we, utc(2026, 11, 29, 23, 0), NULL));
    cr_assert_not(is_open(&we, utc(2026, 11, 30, 0, 0), NULL));
    /* A window that never fires is closed for ever. */
    cron_window never = window("{\"cron\":\"0 0 31 2 *\",\"duration_min\":60}");
    int64_t edge = 0;
    cr_assert_not(is_open(&never, utc(2026, 1, 1, 0, 0), &edge));
    cr_assert_eq(edge, INT64_MAX);
}

/* ---- store ---------------------------------------------------------------- */

static char dir[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_ops_window_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static cJSON *job_get(store *s, int64_t id)
{
    cJSON *j = NULL;
    rs_error e = {0};
    cr_assert_eq(store_job_get(s, id, &j, &e), RS_OK, "%s", e.msg);
    return j;
}

static const cJSON *task0(const cJSON *j)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tasks"), 0);
}

Test(ops_window, store_leases_only_inside_and_yield_requeues, .init = setup, .fini = teardown)
{
    char db[PATH_MAX + 8];
    snprintf(db, sizeof db, "%s/db", dir);
    store *s = NULL;
    rs_error e = {0};
    cr_assert_eq(store_open(db, true, &s, &e), RS_OK, "%s", e.msg);
    int64_t w = 0;
    cr_assert_eq(
        store_worker_hello(s, "w1", "", "{\"kinds\":[\"noop\"],\"slots\":1}", 1000, &w, &e), RS_OK,
        "%s", e.msg);
    cron_window win = window("{\"cron\":\"0 22 * * *\",\"duration_min\":60}");
    char *closed = cron_window_to_json(&win, false);
    char *open = cron_window_to_json(&win, true);
    const char *tp[] = {"{}"};
    store_job_spec spec = {.project = "p",
                           .kind = "noop",
                           .params_json = "{}",
                           .max_attempts = 1,
                           .task_params_json = tp,
                           .ntasks = 1,
                           .run_window = closed};
    int64_t id = 0;
    bool existed = false;
    cr_assert_eq(store_job_submit(s, &spec, 1000, &id, &existed, &e), RS_OK, "%s", e.msg);
    /* A job without a window is leased as ever, after the windowed one. */
    spec.run_window = NULL;
    int64_t plain = 0;
    cr_assert_eq(store_job_submit(s, &spec, 1000, &plain, &existed, &e), RS_OK, "%s", e.msg);

    const char *kinds[] = {"noop"};
    store_worker_fit fit = {.kinds = kinds, .nkinds = 1, .pool = "", .memory_mb = 1024};
    store_lease l;
    bool found = false;
    cr_assert_eq(store_task_lease(s, w, &fit, 2000, 60000, &l, &found, &e), RS_OK, "%s", e.msg);
    cr_assert(found);
    cr_assert_eq(l.job_id, plain, "leased the windowed job while its window is closed");
    free(l.params_json);
    cr_assert_eq(store_task_lease(s, w, &fit, 2000, 60000, &l, &found, &e), RS_OK);
    cr_assert_not(found, "leased the windowed job while its window is closed");

    cJSON *list = NULL;
    cr_assert_eq(store_windowed_jobs(s, &list, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(cJSON_GetArraySize(list), 1);
    const cJSON *row = cJSON_GetArrayItem(list, 0);
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(row, "id")), (double)id);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(row, "window"), "open")));
    cJSON_Delete(list);

    /* Opens: leased. */
    cr_assert_eq(store_job_window_set(s, id, open, true, NULL, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(store_task_lease(s, w, &fit, 3000, 60000, &l, &found, &e), RS_OK);
    cr_assert(found);
    cr_assert_eq(l.job_id, id);
    free(l.params_json);
    int64_t att = l.attempt_id;

    /* Closes: the live attempt is asked to stop (heartbeat says cancel). */
    int nyield = 0;
    cr_assert_eq(store_job_window_set(s, id, closed, false, &nyield, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(nyield, 1);
    int64_t cancel[1], unknown[1];
    size_t ncancel = 0, nunknown = 0;
    cr_assert_eq(store_worker_heartbeat(s, w, &att, 1, 4000, 60000, cancel, &ncancel, unknown,
                                        &nunknown, &e),
                 RS_OK, "%s", e.msg);
    cr_assert_eq(ncancel, 1);
    cr_assert_eq(cancel[0], att);

    /* The child yields (exit 75): queued again, attempt not spent (max_attempts 1). */
    store_report r = {.worker_id = w,
                      .attempt_id = att,
                      .exit_code = 75,
                      .error = "cancelled: exit code 75: yield yielded at step 30"};
    bool accepted = false;
    cr_assert_eq(store_attempt_report(s, &r, 5000, 100, &accepted, &e), RS_OK, "%s", e.msg);
    cr_assert(accepted);
    cJSON *j = job_get(s, id);
    cr_assert_str_neq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")), "failed");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(task0(j), "state")), "queued");
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(task0(j), "attempts_used")), 0);
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(task0(j), "attempts"), 0);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a0, "state")), "released");
    cr_assert(strncmp(cJSON_GetStringValue(cJSON_GetObjectItem(a0, "error")), "yielded", 7) == 0);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "window"), "open")));
    cJSON_Delete(j);
    cr_assert_eq(store_task_lease(s, w, &fit, 6000, 60000, &l, &found, &e), RS_OK);
    cr_assert_not(found, "leased again while the window is shut");

    /* Next window: leased again and succeeds. */
    cr_assert_eq(store_job_window_set(s, id, open, true, NULL, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(store_task_lease(s, w, &fit, 7000, 60000, &l, &found, &e), RS_OK);
    cr_assert(found);
    free(l.params_json);
    store_report ok = {.worker_id = w,
                       .attempt_id = l.attempt_id,
                       .succeeded = true,
                       .result_json = "{\"resumed_from\":30}",
                       .result_hash = "ab"};
    cr_assert_eq(store_attempt_report(s, &ok, 8000, 100, &accepted, &e), RS_OK, "%s", e.msg);
    cr_assert(accepted);
    j = job_get(s, id);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(task0(j), "state")), "succeeded");
    cJSON_Delete(j);
    free(closed);
    free(open);
    store_close(s);
}

Test(ops_window, training_gauges_rendered)
{
    cJSON *m = cJSON_Parse("{\"training\":[{\"job\":7,\"task\":0,\"kind\":\"removal_train\","
                           "\"steps_per_second\":12.5,\"last_loss\":0.0312}]}");
    cr_assert_not_null(m);
    uint64_t codes[600] = {0};
    char *text = metrics_render(m, codes, 600);
    cr_assert_not_null(text);
    cr_assert(strstr(text, "# TYPE rushes_training_steps_per_second gauge\n") != NULL, "%s", text);
    cr_assert(strstr(text, "rushes_training_steps_per_second{job=\"7\",task=\"0\","
                           "kind=\"removal_train\"} 12.5\n") != NULL,
              "%s", text);
    cr_assert(strstr(text, "rushes_training_last_loss{job=\"7\",task=\"0\","
                           "kind=\"removal_train\"} 0.0312") != NULL,
              "%s", text);
    free(text);
    cJSON_Delete(m);
}
