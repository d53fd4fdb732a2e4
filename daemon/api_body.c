/*
 * api_body.c: field-by-field validation of the REST API's request bytes
 * (api_body.h). Everything here is pure: bytes in, a validated record or a
 * message naming the field out; the store, nng and the kinds' plan() stay
 * in api.c. The messages are part of the API (tests/integration/api_test.c
 * checks them), so they change only with docs/API.md.
 */
#include "api_body.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cron.h"

bool api_body_name_ok(const char *s, size_t maxlen)
{
    size_t n = strlen(s);
    if (n == 0 || n > maxlen) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

void api_submit_free(api_submit *s)
{
    if (s == NULL) {
        return;
    }
    cJSON_Delete(s->params);
    free(s->params_json);
    free(s->window_json);
    for (size_t i = 0; i < s->ntasks; i++) {
        free(s->task_params[i]);
    }
    free(s->task_params);
    free(s);
}

/* ---- query string --------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decodes [s, s+len) into out (cap bytes incl. NUL). */
static bool url_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len) {
                return false;
            }
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return false;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap) {
            return false;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

static bool int_in(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    if (v[0] == '\0' || !(isdigit((unsigned char)v[0]) || v[0] == '-')) {
        return false;
    }
    long long x = strtoll(v, &end, 10);
    if (*end != '\0' || x < lo || x > hi) {
        return false;
    }
    *out = x;
    return true;
}

rs_err api_body_parse_query(api_query_kind kind, const char *q, api_query *out, rs_error *e)
{
    memset(out, 0, sizeof *out);
    out->limit = kind == API_QUERY_JOB_LOG ? 1000 : 100;
    while (q != NULL && *q != '\0') {
        const char *amp = strchr(q, '&');
        size_t plen = amp != NULL ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', plen);
        size_t klen = eq != NULL ? (size_t)(eq - q) : plen;
        char key[32];
        char val[256];
        if (plen == 0) {
            q = amp != NULL ? amp + 1 : NULL;
            continue;
        }
        if (!url_decode(q, klen, key, sizeof key)) {
            return rs_error_set(e, RS_EINVAL, "query: malformed parameter name");
        }
        if (!url_decode(eq != NULL ? eq + 1 : q + plen, eq != NULL ? plen - klen - 1 : 0, val,
                        sizeof val)) {
            return rs_error_set(e, RS_EINVAL, "query.%s: malformed or too long value", key);
        }
        int64_t n = 0;
        bool known = false;
        bool list = kind == API_QUERY_JOBS_LIST;
        if (strcmp(key, "limit") == 0 && (list || kind == API_QUERY_JOB_LOG)) {
            known = true;
            int64_t hi = kind == API_QUERY_JOB_LOG ? 10000 : 1000;
            if (!int_in(val, 1, hi, &n)) {
                return rs_error_set(e, RS_EINVAL, "query.limit: must be an integer in 1..%lld",
                                    (long long)hi);
            }
            out->limit = (int)n;
        } else if (strcmp(key, "before") == 0 && list) {
            known = true;
            if (!int_in(val, 1, INT64_MAX / 2, &n)) {
                return rs_error_set(e, RS_EINVAL, "query.before: must be a positive job id");
            }
            out->before = n;
        } else if (strcmp(key, "state") == 0 && list) {
            known = true;
            static const char *const states[] = {"queued", "running", "succeeded", "failed",
                                                 "cancelled"};
            bool ok = false;
            for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
                if (strcmp(val, states[i]) == 0) {
                    ok = true;
                }
            }
            if (!ok) {
                return rs_error_set(e, RS_EINVAL,
                                    "query.state: must be one of queued, running, succeeded, "
                                    "failed, cancelled");
            }
            snprintf(out->state, sizeof out->state, "%s", val);
        } else if (strcmp(key, "project") == 0 && (list || kind == API_QUERY_CLIPS)) {
            known = true;
            if (!api_body_name_ok(val, 64)) {
                return rs_error_set(e, RS_EINVAL,
                                    "query.project: must be 1-64 characters of [A-Za-z0-9._-]");
            }
            snprintf(out->project, sizeof out->project, "%s", val);
        } else if (strcmp(key, "job") == 0 && kind == API_QUERY_CLIPS) {
            known = true;
            if (!int_in(val, 1, INT64_MAX / 2, &n)) {
                return rs_error_set(e, RS_EINVAL, "query.job: must be a positive job id");
            }
            out->job = n;
        }
        if (!known) {
            return rs_error_set(e, RS_EINVAL, "query: unknown parameter \"%s\"", key);
        }
        q = amp != NULL ? amp + 1 : NULL;
    }
    return RS_OK;
}

/* ---- JSON bodies ------------------------------------------------------------ */

/* 1-based line and column of byte offset pos in text. */
static void line_col(const char *text, size_t pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/*
 * An integral JSON number in lo..hi. The range is checked before the cast:
 * converting NaN, infinity or 1e300 to int64_t is undefined behaviour.
 */
static bool json_int(const cJSON *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!cJSON_IsNumber(v)) {
        return false;
    }
    double d = v->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi)) {
        return false;
    }
    if (d != (double)(int64_t)d) {
        return false;
    }
    *out = (int64_t)d;
    return true;
}

rs_err api_body_parse_json(const char *body, size_t len, cJSON **out, rs_error *e)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body != NULL ? body : "", len, &end, false);
    if (root == NULL) {
        return rs_error_set(e, RS_EINVAL, "body: malformed JSON");
    }
    *out = root;
    return RS_OK;
}

rs_err api_body_parse_priority(const cJSON *json, int *priority, rs_error *e)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(json, "priority");
    int64_t n = 0;
    if (!cJSON_IsObject(json) || cJSON_GetArraySize(json) != 1 || !json_int(p, -100, 100, &n)) {
        return rs_error_set(e, RS_EINVAL,
                            "body: must be {\"priority\": N} with N an integer in -100..100");
    }
    *priority = (int)n;
    return RS_OK;
}

static bool kind_known(const char *const *kinds, const char *name)
{
    for (size_t i = 0; kinds != NULL && kinds[i] != NULL; i++) {
        if (strcmp(kinds[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* One member of the submit object into s. */
static rs_err submit_field(cJSON *it, const char *const *kinds, api_submit *s, cJSON **params,
                           bool *have_project, bool *have_kind, rs_error *e)
{
    int64_t n = 0;
    const char *k = it->string;
    if (strcmp(k, "project") == 0) {
        if (!cJSON_IsString(it) || !api_body_name_ok(it->valuestring, 64)) {
            return rs_error_set(e, RS_EINVAL, "project: must be 1-64 characters of [A-Za-z0-9._-]");
        }
        snprintf(s->project, sizeof s->project, "%s", it->valuestring);
        *have_project = true;
    } else if (strcmp(k, "kind") == 0) {
        if (!cJSON_IsString(it)) {
            return rs_error_set(e, RS_EINVAL, "kind: must be a string");
        }
        if (!kind_known(kinds, it->valuestring)) {
            char known[256] = "";
            for (size_t i = 0; kinds != NULL && kinds[i] != NULL; i++) {
                size_t l = strlen(known);
                snprintf(known + l, sizeof known - l, "%s%s", i > 0 ? ", " : "", kinds[i]);
            }
            return rs_error_set(e, RS_EINVAL, "kind: unknown job kind \"%.64s\" (known: %s)",
                                it->valuestring, known);
        }
        snprintf(s->kind, sizeof s->kind, "%s", it->valuestring);
        *have_kind = true;
    } else if (strcmp(k, "params") == 0) {
        if (!cJSON_IsObject(it)) {
            return rs_error_set(e, RS_EINVAL, "params: must be an object");
        }
        /* A repeated "params": the last one wins. */
        *params = it;
    } else if (strcmp(k, "priority") == 0) {
        if (!json_int(it, -100, 100, &n)) {
            return rs_error_set(e, RS_EINVAL, "priority: must be an integer in -100..100");
        }
        s->priority = (int)n;
    } else if (strcmp(k, "max_attempts") == 0) {
        if (!json_int(it, 1, 20, &n)) {
            return rs_error_set(e, RS_EINVAL, "max_attempts: must be an integer in 1..20");
        }
        s->max_attempts = (int)n;
    } else if (strcmp(k, "min_memory_mb") == 0) {
        if (!json_int(it, 0, INT64_C(1) << 40, &n)) {
            return rs_error_set(e, RS_EINVAL, "min_memory_mb: must be a non-negative integer");
        }
        s->min_memory_mb = (uint64_t)n;
    } else if (strcmp(k, "pool") == 0) {
        if (!cJSON_IsString(it) ||
            (it->valuestring[0] != '\0' && !api_body_name_ok(it->valuestring, 128))) {
            return rs_error_set(e, RS_EINVAL,
                                "pool: must be \"\" or 1-128 characters of [A-Za-z0-9._-]");
        }
        snprintf(s->pool, sizeof s->pool, "%s", it->valuestring);
    } else if (strcmp(k, "window") == 0) {
        cron_window w;
        rs_error we;
        rs_error_clear(&we);
        if (cron_window_from_json(it, &w, &we) != RS_OK) {
            return rs_error_set(e, RS_EINVAL, "%s", rs_error_text(&we));
        }
        free(s->window_json);
        /* Closed until the loop's next tick evaluates it. */
        s->window_json = cron_window_to_json(&w, false);
        if (s->window_json == NULL) {
            return rs_error_set(e, RS_ENOMEM, "window: out of memory");
        }
    } else if (strcmp(k, "depends_on") == 0) {
        if (!cJSON_IsArray(it)) {
            return rs_error_set(e, RS_EINVAL, "depends_on: must be an array of job ids");
        }
        const cJSON *d = NULL;
        size_t i = 0;
        cJSON_ArrayForEach(d, it)
        {
            if (i >= API_MAX_DEPENDS) {
                return rs_error_set(e, RS_EINVAL, "depends_on: at most %d job ids",
                                    API_MAX_DEPENDS);
            }
            if (!json_int(d, 1, INT64_C(1) << 53, &n)) {
                return rs_error_set(e, RS_EINVAL, "depends_on[%zu]: must be a positive job id", i);
            }
            s->depends[i++] = n;
        }
        s->ndepends = i;
    } else {
        return rs_error_set(e, RS_EINVAL, "body: unknown field \"%.64s\"", k);
    }
    return RS_OK;
}

rs_err api_body_parse_submit(const char *body, size_t len, const char *const *kinds,
                             api_submit **out, rs_error *e)
{
    rs_err rc = RS_EINVAL;
    cJSON *root = NULL;
    const char *end = NULL;
    api_submit *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    s->max_attempts = 3;
    if (body == NULL) {
        body = "";
        len = 0;
    }
    root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (root == NULL) {
        size_t pos = end != NULL && end >= body ? (size_t)(end - body) : 0;
        int line = 0;
        int col = 0;
        if (pos > len) {
            pos = len;
        }
        line_col(body, pos, &line, &col);
        if (len == 0) {
            rs_error_set(e, RS_EINVAL, "body: empty; expected a JSON object");
        } else {
            rs_error_set(e, RS_EINVAL, "body: malformed JSON at byte %zu (line %d, column %d)", pos,
                         line, col);
        }
        goto out;
    }
    size_t used = (size_t)(end - body);
    while (used < len && isspace((unsigned char)body[used])) {
        used++;
    }
    if (used < len) {
        int line = 0;
        int col = 0;
        line_col(body, used, &line, &col);
        rs_error_set(e, RS_EINVAL,
                     "body: unexpected data after the JSON value at byte %zu (line %d, "
                     "column %d)",
                     used, line, col);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rs_error_set(e, RS_EINVAL, "body: must be a JSON object");
        goto out;
    }
    cJSON *it = NULL;
    cJSON *params = NULL;
    bool have_project = false;
    bool have_kind = false;
    cJSON_ArrayForEach(it, root)
    {
        rc = submit_field(it, kinds, s, &params, &have_project, &have_kind, e);
        if (rc != RS_OK) {
            goto out;
        }
    }
    rc = RS_EINVAL;
    if (!have_project) {
        rs_error_set(e, RS_EINVAL, "project: required");
        goto out;
    }
    if (!have_kind) {
        rs_error_set(e, RS_EINVAL, "kind: required");
        goto out;
    }
    /* Taken out of root, which is deleted below. */
    s->params = params != NULL ? cJSON_DetachItemViaPointer(root, params) : cJSON_CreateObject();
    s->params_json = s->params != NULL ? cJSON_PrintUnformatted(s->params) : NULL;
    if (s->params_json == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    rc = RS_OK;
out:
    cJSON_Delete(root);
    if (rc != RS_OK) {
        api_submit_free(s);
        return rc;
    }
    *out = s;
    return RS_OK;
}
