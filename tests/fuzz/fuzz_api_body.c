/*
 * fuzz_api_body.c: the REST API's request parsers (daemon/api_body.c) must
 * never crash, leak or read past the body, whatever the bytes; every refusal
 * must carry a message; and whatever they accept must be within the ranges
 * docs/API.md promises. An accepted submit, written back as a plain body,
 * must be accepted again with the same fields (the schedules re-submit
 * stored bodies this way).
 *
 * Each input goes to every parser: the submit body, the JSON body plus the
 * priority check, and (up to its first NUL) the query string of each route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_body.h"
#include "fuzz.h"

static const char *const kinds[] = {"ingest", "noop", "removal_train", "removal_infer", NULL};

static void check(bool ok, const char *what, const rs_error *e)
{
    if (!ok) {
        fprintf(stderr, "fuzz_api_body: %s (%s)\n", what, e != NULL ? e->msg : "");
        abort();
    }
}

static bool kind_known(const char *k)
{
    for (size_t i = 0; kinds[i] != NULL; i++) {
        if (strcmp(kinds[i], k) == 0) {
            return true;
        }
    }
    return false;
}

static void submit_check(const api_submit *s, const rs_error *e)
{
    check(api_body_name_ok(s->project, 64), "accepted project out of range", e);
    check(kind_known(s->kind), "accepted unknown kind", e);
    check(s->pool[0] == '\0' || api_body_name_ok(s->pool, 128), "accepted bad pool", e);
    check(s->priority >= -100 && s->priority <= 100, "priority out of range", e);
    check(s->max_attempts >= 1 && s->max_attempts <= 20, "max_attempts out of range", e);
    check(s->min_memory_mb <= (UINT64_C(1) << 40), "min_memory_mb out of range", e);
    check(s->ndepends <= API_MAX_DEPENDS, "too many depends", e);
    for (size_t i = 0; i < s->ndepends; i++) {
        check(s->depends[i] >= 1 && s->depends[i] <= (INT64_C(1) << 53), "bad depends id", e);
    }
    check(cJSON_IsObject(s->params) && s->params_json != NULL, "params not an object", e);
    check(s->ntasks == 0 && s->task_params == NULL, "parser planned tasks", e);
    cJSON *back = cJSON_Parse(s->params_json);
    check(back != NULL && cJSON_Compare(back, s->params, true), "params_json is not params", e);
    cJSON_Delete(back);
    if (s->window_json != NULL) {
        cJSON *w = cJSON_Parse(s->window_json);
        check(cJSON_IsObject(w), "window_json is not an object", e);
        cJSON_Delete(w);
    }
}

/* The accepted submit as a body of its own: must parse to the same fields. */
static void submit_roundtrip(const api_submit *s)
{
    rs_error e;
    rs_error_clear(&e);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "project", s->project);
    cJSON_AddStringToObject(o, "kind", s->kind);
    cJSON_AddItemToObject(o, "params", cJSON_Duplicate(s->params, true));
    cJSON_AddNumberToObject(o, "priority", s->priority);
    cJSON_AddNumberToObject(o, "max_attempts", s->max_attempts);
    cJSON_AddNumberToObject(o, "min_memory_mb", (double)s->min_memory_mb);
    cJSON_AddStringToObject(o, "pool", s->pool);
    cJSON *deps = cJSON_AddArrayToObject(o, "depends_on");
    for (size_t i = 0; deps != NULL && i < s->ndepends; i++) {
        cJSON_AddItemToArray(deps, cJSON_CreateNumber((double)s->depends[i]));
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) {
        return; /* out of memory in the harness, not a finding */
    }
    api_submit *t = NULL;
    rs_err rc = api_body_parse_submit(text, strlen(text), kinds, &t, &e);
    if (rc == RS_ENOMEM) {
        free(text);
        return;
    }
    check(rc == RS_OK, "re-written submit refused", &e);
    check(strcmp(t->project, s->project) == 0 && strcmp(t->kind, s->kind) == 0 &&
              strcmp(t->pool, s->pool) == 0 && t->priority == s->priority &&
              t->max_attempts == s->max_attempts && t->min_memory_mb == s->min_memory_mb &&
              t->ndepends == s->ndepends &&
              memcmp(t->depends, s->depends, s->ndepends * sizeof s->depends[0]) == 0 &&
              strcmp(t->params_json, s->params_json) == 0,
          "re-written submit differs", &e);
    api_submit_free(t);
    free(text);
}

static void fuzz_submit(const char *body, size_t len)
{
    rs_error e;
    rs_error_clear(&e);
    api_submit *s = NULL;
    rs_err rc = api_body_parse_submit(body, len, kinds, &s, &e);
    if (rc != RS_OK) {
        check(s == NULL, "refusal set *out", &e);
        check(rc == RS_EINVAL || rc == RS_ENOMEM, "refusal with an unexpected code", &e);
        check(e.msg[0] != '\0', "refusal without a message", &e);
        return;
    }
    submit_check(s, &e);
    submit_roundtrip(s);
    api_submit_free(s);
}

static void fuzz_json(const char *body, size_t len)
{
    rs_error e;
    rs_error_clear(&e);
    cJSON *json = NULL;
    if (api_body_parse_json(body, len, &json, &e) != RS_OK) {
        check(json == NULL && e.msg[0] != '\0', "JSON refusal without a message", &e);
        return;
    }
    int priority = 1000;
    rs_error_clear(&e);
    if (api_body_parse_priority(json, &priority, &e) == RS_OK) {
        check(priority >= -100 && priority <= 100, "priority out of range", &e);
    } else {
        check(e.msg[0] != '\0', "priority refusal without a message", &e);
    }
    cJSON_Delete(json);
}

static void fuzz_query(const char *q)
{
    static const api_query_kind qkinds[] = {API_QUERY_NONE, API_QUERY_JOBS_LIST, API_QUERY_JOB_LOG,
                                            API_QUERY_CLIPS};
    for (size_t i = 0; i < sizeof qkinds / sizeof qkinds[0]; i++) {
        rs_error e;
        rs_error_clear(&e);
        api_query out;
        if (api_body_parse_query(qkinds[i], q, &out, &e) != RS_OK) {
            check(e.msg[0] != '\0', "query refusal without a message", &e);
            continue;
        }
        int hi = qkinds[i] == API_QUERY_JOB_LOG ? 10000 : 1000;
        check(out.limit >= 1 && out.limit <= hi, "query limit out of range", &e);
        check(out.before >= 0 && out.job >= 0, "query id negative", &e);
        check(out.project[0] == '\0' || api_body_name_ok(out.project, 64), "query project bad", &e);
        check(out.state[0] == '\0' ||
                  strstr("queued running succeeded failed cancelled", out.state) != NULL,
              "query state bad", &e);
        if (qkinds[i] == API_QUERY_NONE) {
            check(out.project[0] == '\0' && out.state[0] == '\0' && out.before == 0 &&
                      out.job == 0 && out.limit == 100,
                  "parameters accepted on a route that takes none", &e);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The body as it arrives: exactly size bytes, no NUL after it. */
    fuzz_submit((const char *)data, size);
    fuzz_json((const char *)data, size);
    /* A query string comes out of the URI: NUL-terminated. */
    size_t qlen = strnlen((const char *)data, size);
    char *q = malloc(qlen + 1);
    if (q != NULL) {
        memcpy(q, data, qlen);
        q[qlen] = '\0';
        fuzz_query(q);
        free(q);
    }
    return 0;
}
