/*
 * api_ext.h: how modules add REST routes to rushesd without editing the
 * router: a table of prefixes in api.c (one line per module) pointing at an
 * api_ext_route each module defines in its own file (ops routes in
 * api_ops.c; the ledger's in api_ledger.c).
 *
 * api.c does the common work first, on nng's thread: reads the body under
 * the cap, splits path and query. Then on the loop thread, inside the
 * batch (so the store is usable and every change commits before the reply),
 * it authenticates the bearer token and calls handle() with the principal.
 * The handler checks capabilities (auth_can) and tenancy (auth_sees on the
 * project's tenant; answer 404, not 403, for another tenant's object, so ids
 * cannot be probed) and fills the result. The reply is sent after commit.
 */
#ifndef RSD_API_EXT_H
#define RSD_API_EXT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "auth.h"
#include "err.h"
#include "server.h"

typedef struct api_call {
    const char *method;        /* "GET" (also for HEAD), "POST", "PUT", "PATCH", "DELETE" */
    const char *path;          /* e.g. "/api/v1/tokens/3" (no query) */
    const char *rest;          /* path after the route's prefix: "", "/3", "/3/revoke" */
    const char *query;         /* raw query after '?', "" if none */
    const cJSON *body;         /* parsed JSON body, NULL if none */
    const auth_principal *who; /* authenticated (auth off: admin of "*") */
    int64_t now_ms;
} api_call;

typedef struct api_result {
    int status;               /* HTTP status; >= 400 sends {"error":{code,message}} */
    cJSON *json;              /* body for < 400 (api.c frees it) */
    char *text;               /* or a non-JSON body (malloc'd; api.c frees it) */
    const char *content_type; /* for text; default text/plain */
    char message[512];        /* for >= 400: one line naming the field/id at fault */
} api_result;

/* Loop thread, inside the batch. */
typedef void (*api_ext_handler)(server *sv, const api_call *call, api_result *res);

typedef struct api_ext_route {
    const char *prefix; /* matches the path itself and prefix + "/..." */
    api_ext_handler handle;
} api_ext_route;

/* Sets an error result (status >= 400) with a formatted message. */
void api_result_error(api_result *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* HTTP status for a store/plan error code (RS_ENOENT -> 404, ...). */
int api_status_for(rs_err code);

/* Ops routes (api_ops.c). */
extern const api_ext_route api_ops_tokens;
extern const api_ext_route api_ops_projects;
extern const api_ext_route api_ops_workers;
extern const api_ext_route api_ops_schedules;
extern const api_ext_route api_ops_admin;
extern const api_ext_route api_ops_whoami;

#endif
