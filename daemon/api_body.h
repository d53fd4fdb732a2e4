/*
 * api_body.h: validation of the REST API's untrusted request bytes (the
 * submit body, the priority body, the generic JSON body of module routes and
 * the query string), with no nng, store or server dependency so the fuzzer
 * (tests/fuzz/fuzz_api_body.c) can feed it arbitrary bytes. api.c calls it
 * on nng's thread and answers a refusal 400 (RS_ENOMEM: 500) with e->msg.
 *
 * Bodies are (pointer, length); they need not be NUL-terminated.
 */
#ifndef RS_API_BODY_H
#define RS_API_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct cJSON;

#define API_MAX_DEPENDS 256

/*
 * A validated submit: everything store_job_submit needs, owned. The parser
 * fills project .. window_json and params; api.c runs the kind's plan() on
 * params and fills task_params / ntasks, and idem from the header.
 */
typedef struct api_submit {
    char project[65];
    char kind[128];
    char pool[129];
    char idem[129];
    struct cJSON *params; /* the body's "params" object, or an empty one */
    char *params_json;    /* params printed unformatted */
    int64_t depends[API_MAX_DEPENDS];
    size_t ndepends;
    char **task_params;
    size_t ntasks;
    int priority;
    int max_attempts;
    uint64_t min_memory_mb;
    char *window_json; /* NULL = no training window; else stored closed */
} api_submit;

/*
 * Validates a POST /api/v1/jobs body (docs/API.md) field by field. kinds is
 * the NULL-terminated list of known job kinds (task_kind_names()). On
 * success sets *out (free with api_submit_free); else RS_EINVAL, or
 * RS_ENOMEM, with a message naming the field.
 */
rs_err api_body_parse_submit(const char *body, size_t len, const char *const *kinds,
                             api_submit **out, rs_error *e);

/* Frees s and everything it owns; NULL is fine. */
void api_submit_free(api_submit *s);

/*
 * Parses the JSON body of a module route or a priority change. As the API
 * always has, bytes after the first JSON value are ignored. Sets *out on
 * success (cJSON_Delete it); RS_EINVAL "body: malformed JSON" otherwise.
 */
rs_err api_body_parse_json(const char *body, size_t len, struct cJSON **out, rs_error *e);

/* Checks a parsed priority body: exactly {"priority": N}, N in -100..100. */
rs_err api_body_parse_priority(const struct cJSON *json, int *priority, rs_error *e);

/* Which query parameters a route takes. */
typedef enum api_query_kind {
    API_QUERY_NONE = 0,  /* no parameters */
    API_QUERY_JOBS_LIST, /* limit, before, state, project */
    API_QUERY_JOB_LOG,   /* limit */
    API_QUERY_CLIPS,     /* project, job */
} api_query_kind;

typedef struct api_query {
    char state[16]; /* "" = any */
    char project[65];
    int limit; /* 100, or 1000 for a log, unless given */
    int64_t before;
    int64_t job;
} api_query;

/*
 * Parses the query string q (after '?', NUL-terminated; NULL = none) for a
 * route. Fills *out entirely (defaults first); unknown parameters and bad
 * values are RS_EINVAL with a message naming the parameter.
 */
rs_err api_body_parse_query(api_query_kind kind, const char *q, api_query *out, rs_error *e);

/* True if s is 1..maxlen characters of [A-Za-z0-9._-]. */
bool api_body_name_ok(const char *s, size_t maxlen);

#endif
