/*
 * api_body_test.c: the REST API's request parsers (daemon/api_body.c)
 * accept the documented bodies with every field in place, refuse bad ones
 * with the message that names the field (the API's contract), and survive
 * numbers that do not fit an int64 and bodies with no NUL after them.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_body.h"

static const char *const kinds[] = {"ingest", "noop", NULL};

/* Parses body (no NUL after it: copied to an exact-size buffer). */
static rs_err submit(const char *body, api_submit **out, rs_error *e)
{
    size_t n = strlen(body);
    char *copy = malloc(n > 0 ? n : 1);
    cr_assert_not_null(copy);
    memcpy(copy, body, n);
    rs_error_clear(e);
    *out = NULL;
    rs_err rc = api_body_parse_submit(copy, n, kinds, out, e);
    free(copy);
    return rc;
}

static void refused(const char *body, const char *msg)
{
    api_submit *s = NULL;
    rs_error e;
    cr_expect_eq(submit(body, &s, &e), RS_EINVAL, "%s", body);
    cr_expect_null(s);
    cr_expect_str_eq(e.msg, msg, "%s", body);
    api_submit_free(s);
}

Test(api_body, submit_documented_body)
{
    api_submit *s = NULL;
    rs_error e;
    cr_assert_eq(submit("{\"project\": \"demo\", \"kind\": \"ingest\", \"params\": {\"path\": "
                        "\"/media/A001\"}, \"priority\": -7, \"depends_on\": [3, 4], "
                        "\"max_attempts\": 5, \"pool\": \"gpu\", \"min_memory_mb\": 2048, "
                        "\"window\": {\"cron\": \"0 22 * * *\", \"duration_min\": 480, "
                        "\"tz\": \"UTC\"}}",
                        &s, &e),
                 RS_OK, "%s", e.msg);
    cr_expect_str_eq(s->project, "demo");
    cr_expect_str_eq(s->kind, "ingest");
    cr_expect_str_eq(s->pool, "gpu");
    cr_expect_eq(s->priority, -7);
    cr_expect_eq(s->max_attempts, 5);
    cr_expect_eq(s->min_memory_mb, 2048);
    cr_expect_eq(s->ndepends, 2);
    cr_expect_eq(s->depends[0], 3);
    cr_expect_eq(s->depends[1], 4);
    cr_expect_str_eq(s->params_json, "{\"path\":\"/media/A001\"}");
    cr_expect(cJSON_IsObject(s->params));
    cr_expect_not_null(s->window_json);
    api_submit_free(s);
}

Test(api_body, submit_defaults)
{
    api_submit *s = NULL;
    rs_error e;
    cr_assert_eq(submit("{\"project\":\"demo\",\"kind\":\"noop\"}", &s, &e), RS_OK, "%s", e.msg);
    cr_expect_eq(s->max_attempts, 3);
    cr_expect_eq(s->priority, 0);
    cr_expect_str_eq(s->params_json, "{}");
    cr_expect_null(s->window_json);
    cr_expect_eq(s->ndepends, 0);
    api_submit_free(s);
}

Test(api_body, submit_refusals_name_the_field)
{
    refused("", "body: empty; expected a JSON object");
    refused("{\"project\":\"demo\",\n\"kind\" \"noop\"}",
            "body: malformed JSON at byte 26 (line 2, column 8)");
    refused("{\"project\":\"demo\",\"kind\":\"noop\"} x",
            "body: unexpected data after the JSON value at byte 33 (line 1, column 34)");
    refused("[1]", "body: must be a JSON object");
    refused("{\"project\":\"demo\",\"kind\":\"nosuch\"}",
            "kind: unknown job kind \"nosuch\" (known: ingest, noop)");
    refused("{\"project\":\"demo\",\"kind\":\"noop\",\"colour\":\"red\"}",
            "body: unknown field \"colour\"");
    refused("{\"project\":\"bad project!\",\"kind\":\"noop\"}",
            "project: must be 1-64 characters of [A-Za-z0-9._-]");
    refused("{\"project\":\"demo\",\"kind\":\"noop\",\"priority\":500}",
            "priority: must be an integer in -100..100");
    refused("{\"kind\":\"noop\"}", "project: required");
    refused("{\"project\":\"demo\"}", "kind: required");
    refused("{\"project\":\"demo\",\"kind\":\"noop\",\"params\":[]}", "params: must be an object");
    refused("{\"project\":\"demo\",\"kind\":\"noop\",\"depends_on\":[1,0]}",
            "depends_on[1]: must be a positive job id");
    refused("{\"project\":\"demo\",\"kind\":\"noop\",\"pool\":\"a b\"}",
            "pool: must be \"\" or 1-128 characters of [A-Za-z0-9._-]");
}

/* Converting these to int64_t unchecked is undefined behaviour (UBSan). */
Test(api_body, numbers_out_of_int64_range)
{
    refused("{\"project\":\"demo\",\"kind\":\"noop\",\"priority\":1e300}",
            "priority: must be an integer in -100..100");
    refused("{\"project\":\"demo\",\"kind\":\"noop\",\"max_attempts\":-1e999}",
            "max_attempts: must be an integer in 1..20");
    refused("{\"project\":\"demo\",\"kind\":\"noop\",\"depends_on\":[1e19]}",
            "depends_on[0]: must be a positive job id");
    cJSON *j = NULL;
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(api_body_parse_json("{\"priority\":1e300}", 18, &j, &e), RS_OK);
    int p = 0;
    cr_expect_eq(api_body_parse_priority(j, &p, &e), RS_EINVAL);
    cJSON_Delete(j);
}

Test(api_body, priority_body)
{
    cJSON *j = NULL;
    rs_error e;
    rs_error_clear(&e);
    int p = 0;
    cr_assert_eq(api_body_parse_json("{\"priority\": -42}", 17, &j, &e), RS_OK);
    cr_expect_eq(api_body_parse_priority(j, &p, &e), RS_OK);
    cr_expect_eq(p, -42);
    cJSON_Delete(j);
    cr_assert_eq(api_body_parse_json("{\"priority\": 1, \"x\": 2}", 23, &j, &e), RS_OK);
    cr_expect_eq(api_body_parse_priority(j, &p, &e), RS_EINVAL);
    cr_expect_str_eq(e.msg, "body: must be {\"priority\": N} with N an integer in -100..100");
    cJSON_Delete(j);
    cr_expect_eq(api_body_parse_priority(NULL, &p, &e), RS_EINVAL);
    cr_expect_eq(api_body_parse_json("{\"priority\"", 11, &j, &e), RS_EINVAL);
    cr_expect_str_eq(e.msg, "body: malformed JSON");
}

Test(api_body, query)
{
    api_query q;
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(api_body_parse_query(API_QUERY_JOBS_LIST,
                                      "state=queued&project=a%2Eb&limit=10&before=42&", &q, &e),
                 RS_OK, "%s", e.msg);
    cr_expect_str_eq(q.state, "queued");
    cr_expect_str_eq(q.project, "a.b");
    cr_expect_eq(q.limit, 10);
    cr_expect_eq(q.before, 42);
    cr_assert_eq(api_body_parse_query(API_QUERY_JOB_LOG, NULL, &q, &e), RS_OK);
    cr_expect_eq(q.limit, 1000);
    cr_assert_eq(api_body_parse_query(API_QUERY_CLIPS, "job=7", &q, &e), RS_OK);
    cr_expect_eq(q.job, 7);
    cr_expect_eq(q.limit, 100);
    cr_expect_eq(api_body_parse_query(API_QUERY_JOBS_LIST, "limit=0", &q, &e), RS_EINVAL);
    cr_expect_str_eq(e.msg, "query.limit: must be an integer in 1..1000");
    cr_expect_eq(api_body_parse_query(API_QUERY_JOBS_LIST, "state=sleepy", &q, &e), RS_EINVAL);
    cr_expect_eq(api_body_parse_query(API_QUERY_NONE, "limit=5", &q, &e), RS_EINVAL);
    cr_expect_str_eq(e.msg, "query: unknown parameter \"limit\"");
    cr_expect_eq(api_body_parse_query(API_QUERY_CLIPS, "project=%00", &q, &e), RS_EINVAL);
    cr_expect_str_eq(e.msg, "query.project: malformed or too long value");
}
