/*
 * ops_test.c: the daemon's ops helpers on their own: cron parsing and
 * next-firing in time zones (DST included), token minting/hashing and role
 * capabilities, and the Prometheus rendering of metrics.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include "auth.h"
#include "cron.h"
#include "metrics.h"
#include "tzfile.h"

/* UTC ms of a UTC calendar time. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm) * 1000;
}

static int64_t next(const char *expr, const char *tz, int64_t after)
{
    cron_expr c;
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(cron_parse(expr, &c, &e), RS_OK, "%s: %s", expr, rs_error_text(&e));
    int64_t n = 0;
    cr_assert_eq(cron_next(&c, tz, after, &n, &e), RS_OK, "%s: %s", expr, rs_error_text(&e));
    return n;
}

Test(ops_cron, parse_refuses_bad_fields)
{
    static const char *const bad[] = {
        "",           "* * * *",   "* * * * * *", "60 * * * *",  "* 24 * * *", "* * 0 * *",
        "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *",  "1,,2 * * * *"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cron_expr c;
        rs_error e;
        rs_error_clear(&e);
        cr_assert_eq(cron_parse(bad[i], &c, &e), RS_EINVAL, "accepted \"%s\"", bad[i]);
        cr_assert(strstr(e.msg, "cron") != NULL);
    }
}

Test(ops_cron, next_in_utc)
{
    int64_t t0 = utc(2026, 11, 25, 7, 30); /* a Wednesday */
    cr_assert_eq(next("* * * * *", "UTC", t0), utc(2026, 11, 25, 7, 31));
    cr_assert_eq(next("*/15 * * * *", "UTC", t0), utc(2026, 11, 25, 7, 45));
    cr_assert_eq(next("0 22 * * *", "UTC", t0), utc(2026, 11, 25, 22, 0));
    cr_assert_eq(next("0 2 * * *", "UTC", t0), utc(2026, 11, 26, 2, 0));
    cr_assert_eq(next("30 6 1 * *", "UTC", t0), utc(2026, 12, 1, 6, 30));
    cr_assert_eq(next("0 0 * * 0", "UTC", t0), utc(2026, 11, 29, 0, 0)); /* Sunday */
    cr_assert_eq(next("0 0 * * 7", "UTC", t0), utc(2026, 11, 29, 0, 0)); /* 7 = Sunday */
    cr_assert_eq(next("0 9 * * 1-5", "UTC", t0), utc(2026, 11, 25, 9, 0));
    cr_assert_eq(next("0 0 29 2 *", "UTC", t0), utc(2028, 2, 29, 0, 0)); /* leap day */
    /* Both day fields restricted: either matches (Vixie cron). */
    cr_assert_eq(next("0 0 1 * 5", "UTC", t0), utc(2026, 11, 27, 0, 0)); /* Friday first */
    /* Strictly after: at an exact match, the next one. */
    cr_assert_eq(next("30 7 * * *", "UTC", t0), utc(2026, 11, 26, 7, 30));
}

Test(ops_cron, next_in_a_zone_with_dst)
{
    /* 22:00 in Paris is 21:00 UTC in winter, 20:00 UTC in summer. */
    cr_assert_eq(next("0 22 * * *", "Europe/Paris", utc(2026, 11, 25, 12, 0)),
                 utc(2026, 11, 25, 21, 0));
    cr_assert_eq(next("0 22 * * *", "Europe/Paris", utc(2026, 7, 1, 12, 0)),
                 utc(2026, 7, 1, 20, 0));
    /* 2026-03-29 02:30 does not exist in Paris (clocks go 02:00 -> 03:00):
     * the next 02:30 is the day after. */
    cr_assert_eq(next("30 2 * * *", "Europe/Paris", utc(2026, 3, 28, 12, 0)),
                 utc(2026, 3, 30, 0, 30));
    cr_assert_eq(next("0 9 * * *", "America/New_York", utc(2026, 1, 10, 0, 0)),
                 utc(2026, 1, 10, 14, 0));
    /* TZ of the process is left as it was. */
    cr_assert_null(getenv("TZ"));
}

Test(ops_cron, refuses_unknown_zone_and_impossible_dates)
{
    cron_expr c;
    rs_error e;
    rs_error_clear(&e);
    int64_t n = 0;
    cr_assert(!cron_tz_ok("Mars/Olympus"));
    cr_assert(!cron_tz_ok("../../etc/passwd"));
    cr_assert(cron_tz_ok("UTC"));
    cr_assert(cron_tz_ok("Europe/London"));
    cr_assert_eq(cron_parse("0 0 * * *", &c, &e), RS_OK);
    cr_assert_eq(cron_next(&c, "Mars/Olympus", 0, &n, &e), RS_EINVAL);
    cr_assert_eq(cron_parse("0 0 31 2 *", &c, &e), RS_OK);
    cr_assert_eq(cron_next(&c, "UTC", 0, &n, &e), RS_ENOENT);
}

Test(ops_auth, tokens_hash_and_roles)
{
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(auth_init(&e), RS_OK);
    char t1[AUTH_TOKEN_LEN + 1];
    char t2[AUTH_TOKEN_LEN + 1];
    char h1[AUTH_HASH_HEX + 1];
    char h2[AUTH_HASH_HEX + 1];
    char again[AUTH_HASH_HEX + 1];
    cr_assert_eq(auth_token_new(t1, h1, &e), RS_OK);
    cr_assert_eq(auth_token_new(t2, h2, &e), RS_OK);
    cr_assert_eq(strlen(t1), AUTH_TOKEN_LEN);
    cr_assert_eq(strncmp(t1, "rsh_", 4), 0);
    cr_assert_str_neq(t1, t2);
    cr_assert_str_neq(h1, h2);
    cr_assert(auth_token_hash(t1, again));
    cr_assert_str_eq(again, h1);
    cr_assert_null(strstr(h1, t1 + 4), "the hash must not contain the secret");
    cr_assert(!auth_token_hash("rsh_short", again));
    char bad[AUTH_TOKEN_LEN + 1];
    memcpy(bad, t1, sizeof bad);
    bad[10] = '%';
    cr_assert(!auth_token_hash(bad, again));

    cr_assert_eq(auth_role_parse("operate"), AUTH_OPERATE);
    cr_assert_eq(auth_role_parse("root"), 0);
    auth_principal sub = {.tenant = "acme", .role = AUTH_SUBMIT};
    auth_principal aud = {.tenant = "acme", .role = AUTH_AUDIT};
    auth_principal op = {.tenant = "acme", .role = AUTH_OPERATE};
    auth_principal adm = {.tenant = "*", .role = AUTH_ADMIN};
    cr_assert(auth_can(&sub, AUTH_CAN_SUBMIT) && !auth_can(&sub, AUTH_CAN_OPERATE));
    cr_assert(auth_can(&aud, AUTH_CAN_READ) && auth_can(&aud, AUTH_CAN_AUDIT) &&
              !auth_can(&aud, AUTH_CAN_SUBMIT));
    cr_assert(auth_can(&op, AUTH_CAN_OPERATE) && !auth_can(&op, AUTH_CAN_ADMIN));
    cr_assert(auth_can(&adm, AUTH_CAN_ADMIN) && auth_can(&adm, AUTH_CAN_AUDIT));
    cr_assert(auth_sees(&sub, "acme") && !auth_sees(&sub, "beta") && !auth_sees(&sub, ""));
    cr_assert(auth_sees(&adm, "beta") && auth_sees(&adm, ""));
    cr_assert_null(auth_tenant_filter(&adm));
    cr_assert_str_eq(auth_tenant_filter(&sub), "acme");
    cr_assert(auth_secret_equal("s3cret", "s3cret"));
    cr_assert(!auth_secret_equal("s3cret", "s3cre"));
    cr_assert(!auth_secret_equal("", "x"));
}

Test(ops_metrics, renders_prometheus_text)
{
    cJSON *m = cJSON_Parse(
        "{\"jobs\":{\"noop|succeeded\":3,\"ingest|failed\":1},\"tasks_dispatched\":9,"
        "\"attempts_failed\":2,\"tasks_retried\":1,\"lease_expiries\":1,\"workers_up\":2,"
        "\"queue_wait\":{\"buckets\":[0.1,1],\"counts\":[2,5],\"sum\":1.5,\"count\":6},"
        "\"run_time\":{\"buckets\":[0.1,1],\"counts\":[1,1],\"sum\":3,\"count\":2}}");
    cr_assert_not_null(m);
    uint64_t codes[600] = {0};
    codes[201] = 7;
    codes[404] = 1;
    char *text = metrics_render(m, codes, 600);
    cr_assert_not_null(text);
    cr_assert_not_null(strstr(text, "rushes_jobs{kind=\"noop\",state=\"succeeded\"} 3\n"));
    cr_assert_not_null(strstr(text, "rushes_jobs{kind=\"noop\",state=\"failed\"} 0\n"));
    cr_assert_not_null(strstr(text, "rushes_jobs{kind=\"ingest\",state=\"failed\"} 1\n"));
    cr_assert_not_null(strstr(text, "# TYPE rushes_tasks_dispatched_total counter\n"
                                    "rushes_tasks_dispatched_total 9\n"));
    cr_assert_not_null(strstr(text, "rushes_queue_wait_seconds_bucket{le=\"0.1\"} 2\n"));
    cr_assert_not_null(strstr(text, "rushes_queue_wait_seconds_bucket{le=\"+Inf\"} 6\n"));
    cr_assert_not_null(strstr(text, "rushes_task_run_seconds_count 2\n"));
    cr_assert_not_null(strstr(text, "rushes_http_requests_total{code=\"201\"} 7\n"));
    cr_assert_null(strstr(text, "code=\"200\""), "codes never answered are not listed");
    free(text);
    cJSON_Delete(m);
}

/* The TZif reader agrees with glibc's localtime_r (TZ set here, in a
 * single-threaded test) at every hour from 1970 to 2037 in zones with DST
 * in either hemisphere, half-hour and 45-minute offsets, a 30-minute DST
 * shift and none at all; corrupt or unknown zones are refused. */
Test(ops, tzfile_offsets_equal_glibc)
{
    static const char *const zones[] = {"UTC",          "Europe/London",      "America/New_York",
                                        "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham",
                                        "America/St_Johns", "Asia/Tokyo"};
    rs_error e;
    for (size_t zi = 0; zi < sizeof zones / sizeof zones[0]; zi++) {
        tz_zone *z = NULL;
        rs_error_clear(&e);
        cr_assert_eq(tz_zone_load(zones[zi], &z, &e), RS_OK, "%s: %s", zones[zi],
                     rs_error_text(&e));
        setenv("TZ", zones[zi], 1);
        tzset();
        for (int64_t t = 0; t < (int64_t)2145916800; t += 3600 * 7 + 13) {
            time_t tt = (time_t)t;
            struct tm tm;
            localtime_r(&tt, &tm);
            cr_assert_eq(tz_zone_offset(z, t), (int32_t)tm.tm_gmtoff, "%s at %lld: %d vs glibc %ld",
                         zones[zi], (long long)t, (int)tz_zone_offset(z, t), tm.tm_gmtoff);
        }
        tz_zone_free(z);
    }
    unsetenv("TZ");
    tzset();
    tz_zone *z = NULL;
    cr_assert_eq(tz_zone_load("Mars/Olympus", &z, &e), RS_ENOENT);
    cr_assert_eq(tz_zone_load("../etc/passwd", &z, &e), RS_EINVAL);
    cr_assert_eq(tz_zone_load("posixrules/../../x", &z, &e), RS_EINVAL);
    /* A file that is not TZif (zone.tab is text) is refused, naming it. */
    cr_assert_eq(tz_zone_load("zone.tab", &z, &e), RS_EFORMAT);
    cr_assert_not_null(strstr(rs_error_text(&e), "zone.tab"), "%s", rs_error_text(&e));
    cr_assert_null(z);
}
