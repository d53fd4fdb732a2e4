/*
 * api.c: the REST API (docs/API.md) on nng's HTTP server.
 *
 * Work is split by thread. On nng's thread (handler callback): read the
 * body ourselves under the cap, route, validate the query and the JSON body
 * field by field, and for a submit run kind->plan(); every refusal is
 * answered right there, because none needs the store. What needs the store
 * becomes an api_req pushed to the loop: apply() runs the store call inside
 * the loop's batch and keeps the result tree; reply() runs after the commit
 * and sends it. So a request costs one thread hop and the loop does only the
 * store work and the JSON printing.
 *
 * nng 1.5.2 answers a Content-Length above a handler's collect cap with its
 * own HTML "400 Bad Request"; to give the client our 413 JSON error the
 * handler collects no body (collect_body false) and reads it with
 * nng_http_conn_read_all() after checking Content-Length itself. An
 * oversized request is answered 413 with "Connection: close" without reading
 * its body.
 */
#include "api.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "api_body.h"
#include "api_ext.h"
#include "api_ledger.h"
#include "api_model.h"
#include "auth.h"
#include "clock.h"
#include "cron.h"
#include "fs.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "task.h"

#ifndef RUSHES_VERSION
#define RUSHES_VERSION "0.0.0"
#endif

#define API_BODY_TIMEOUT_MS 30000
#define API_STATIC_CAP (8u << 20)

/*
 * Modules' routes (api_ext.h), tried in order after the built-in ones.
 * Add one line per module.
 */
static const api_ext_route *const ext_routes[] = {
    &api_ops_tokens, &api_ops_projects, &api_ops_workers,  &api_ops_schedules,
    &api_ops_admin,  &api_ops_whoami,   &api_ledger_route,
    &api_model_route,
};

struct api {
    server *sv;
    const rsd_config *cfg;
    nng_http_server *http;
    nng_http_handler *handler; /* owned by http once added */
    bool stopped;
    /* Responses by status code, for /metrics; any thread. */
    _Atomic uint64_t codes[600];
};

typedef enum api_route {
    ROUTE_HEALTHZ = 1,
    ROUTE_JOBS_LIST,
    ROUTE_JOB_SUBMIT,
    ROUTE_JOB_GET,
    ROUTE_JOB_CANCEL,
    ROUTE_JOB_RETRY,
    ROUTE_JOB_LOG,
    ROUTE_CLIPS,
    ROUTE_WORKERS,
    ROUTE_JOB_PRIORITY,
    ROUTE_METRICS,
    ROUTE_EXT,
    ROUTE_JOB_GRAPH,   /* the dashboard's job page: DAG neighbours */
    ROUTE_JOB_LOSS,    /* ... training loss history */
    ROUTE_JOB_CONTACT, /* ... removal contact sheet (PNG) */
} api_route;

/* A contact sheet is a few thumbnails; anything bigger is not one. */
#define CONTACT_SHEET_CAP ((size_t)32 << 20)

typedef struct api_req {
    srv_item item; /* first: the loop sees an srv_item */
    api *a;
    nng_aio *aio;      /* the handler's aio; finished with the reply */
    nng_aio *read_aio; /* body read, NULL when there is no body */
    bool continuing;   /* read_aio is writing "100 Continue" first */
    nng_http_conn *conn;
    char *body;
    size_t body_len;
    bool head;
    char method[16];
    char *uri; /* copy: path then '?' query */
    api_route route;
    int64_t id;
    /* query */
    char state[16];
    char project[65];
    int limit;
    int64_t before;
    int64_t job;
    api_submit *submit;
    /* auth: hash of the presented bearer token */
    bool has_token;
    char token_hash[AUTH_HASH_HEX + 1];
    auth_principal who;
    /* ROUTE_EXT and routes with a small JSON body */
    const api_ext_route *ext;
    const char *rest;
    char *query;
    cJSON *json;
    char *text;      /* non-JSON reply body */
    size_t text_len; /* when text holds binary bytes (a PNG); 0 = strlen(text) */
    const char *content_type;
    /* outcome from apply() */
    int status;
    cJSON *resp;
    rs_error err;
} api_req;

/* ---- replies (any thread) ------------------------------------------------ */

static const char *code_for_status(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 413:
        return "too_large";
    case 503:
        return "unavailable";
    default:
        return "internal";
    }
}

static void send_typed(nng_aio *aio, int status, const char *ctype, const char *body, size_t len,
                       bool close, const char *allow)
{
    nng_http_res *res = NULL;
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    api *a = h != NULL ? nng_http_handler_get_data(h) : NULL;
    if (a != NULL && status >= 100 && status < 600) {
        atomic_fetch_add_explicit(&a->codes[status], 1, memory_order_relaxed);
    }
    if (nng_http_res_alloc(&res) != 0) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    int rv = nng_http_res_set_status(res, (uint16_t)status);
    if (rv == 0) {
        rv = nng_http_res_set_header(res, "Content-Type", ctype);
    }
    if (rv == 0 && status == 401) {
        rv = nng_http_res_set_header(res, "WWW-Authenticate", "Bearer realm=\"rushes\"");
    }
    if (rv == 0 && close) {
        rv = nng_http_res_set_header(res, "Connection", "close");
    }
    if (rv == 0 && allow != NULL) {
        rv = nng_http_res_set_header(res, "Allow", allow);
    }
    if (rv == 0) {
        rv = nng_http_res_copy_data(res, body, len);
    }
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void send_text(nng_aio *aio, int status, const char *body, size_t len, bool close,
                      const char *allow)
{
    send_typed(aio, status, "application/json", body, len, close, allow);
}

static void send_error(nng_aio *aio, int status, const char *message, bool close, const char *allow)
{
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    if (err != NULL && cJSON_AddStringToObject(err, "code", code_for_status(status)) != NULL &&
        cJSON_AddStringToObject(err, "message", message) != NULL) {
        text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    if (text == NULL) {
        static const char fallback[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        send_text(aio, 500, fallback, sizeof fallback - 1, true, NULL);
        return;
    }
    send_text(aio, status, text, strlen(text), close, allow);
    free(text);
}

static void send_errorf(nng_aio *aio, int status, bool close, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void send_errorf(nng_aio *aio, int status, bool close, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    send_error(aio, status, msg, close, NULL);
}

int api_status_for(rs_err code);

static int status_for(rs_err code)
{
    return api_status_for(code);
}

void api_result_error(api_result *res, int status, const char *fmt, ...)
{
    res->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
}

int api_status_for(rs_err code)
{
    switch (code) {
    case RS_EINVAL:
    case RS_EPROTO:
    case RS_EFORMAT:
        return 400;
    case RS_EPERM:
        return 403;
    case RS_ENOENT:
        return 404;
    case RS_ESTATE:
        return 409;
    case RS_ETOOBIG:
        return 413;
    default:
        return 500;
    }
}

/* ---- request records ----------------------------------------------------- */

static void req_free(api_req *r)
{
    if (r == NULL) {
        return;
    }
    if (r->read_aio != NULL) {
        /* May run inside the read's own callback: reap, do not wait. */
        nng_aio_reap(r->read_aio);
    }
    cJSON_Delete(r->resp);
    cJSON_Delete(r->json);
    free(r->text);
    api_submit_free(r->submit);
    free(r->body);
    free(r->uri);
    free(r->query);
    free(r);
}

/* ---- validation helpers (nng thread) ------------------------------------- */

static bool parse_id(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 18) {
        return false;
    }
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0) {
        return false;
    }
    *out = v;
    return true;
}

/*
 * Applies the query string to r for its route (api_body.c). Unknown
 * parameters and bad values are refused with a message in msg.
 */
static bool parse_query(api_req *r, const char *q, char *msg, size_t msglen)
{
    api_query_kind kind = API_QUERY_NONE;
    if (r->route == ROUTE_JOBS_LIST) {
        kind = API_QUERY_JOBS_LIST;
    } else if (r->route == ROUTE_JOB_LOG) {
        kind = API_QUERY_JOB_LOG;
    } else if (r->route == ROUTE_CLIPS) {
        kind = API_QUERY_CLIPS;
    }
    api_query qv;
    rs_error e;
    rs_error_clear(&e);
    if (api_body_parse_query(kind, q, &qv, &e) != RS_OK) {
        snprintf(msg, msglen, "%s", rs_error_text(&e));
        return false;
    }
    snprintf(r->state, sizeof r->state, "%s", qv.state);
    snprintf(r->project, sizeof r->project, "%s", qv.project);
    r->limit = qv.limit;
    r->before = qv.before;
    r->job = qv.job;
    return true;
}

/*
 * Validates the submit body field by field (api_body.c) and plans the
 * tasks. Returns the HTTP status of a refusal (0 = accepted) with its
 * message.
 */
static int parse_submit(api_req *r, char *msg, size_t msglen)
{
    int status = 400;
    cJSON *tasks = NULL;
    api_submit *s = NULL;
    rs_error pe;
    rs_error_clear(&pe);
    rs_err rc = api_body_parse_submit(r->body, r->body_len, task_kind_names(), &s, &pe);
    if (rc != RS_OK) {
        status = rc == RS_ENOMEM ? 500 : 400;
        snprintf(msg, msglen, "%s", rs_error_text(&pe));
        goto out;
    }
    const rsd_config *cfg = r->a->cfg;
    task_env env = {
        .media_roots = (const char *const *)cfg->media_roots,
        .nmedia_roots = cfg->nmedia_roots,
        .data_dir = cfg->data_dir,
        .project = s->project,
        .job_id = 0,
    };
    rc = task_kind_find(s->kind)->plan(s->params, &env, &tasks, &pe);
    if (rc != RS_OK) {
        status = rc == RS_EPERM ? 403 : (rc == RS_ENOMEM || rc == RS_EIO ? 500 : 400);
        snprintf(msg, msglen, "%s", rs_error_text(&pe));
        goto out;
    }
    int ntasks = cJSON_GetArraySize(tasks);
    if (!cJSON_IsArray(tasks) || ntasks < 1) {
        snprintf(msg, msglen, "params: the job plans no tasks");
        goto out;
    }
    s->task_params = calloc((size_t)ntasks, sizeof *s->task_params);
    if (s->task_params == NULL) {
        status = 500;
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, tasks)
    {
        s->task_params[s->ntasks] = cJSON_PrintUnformatted(it);
        if (s->task_params[s->ntasks] == NULL) {
            status = 500;
            snprintf(msg, msglen, "out of memory");
            goto out;
        }
        s->ntasks++;
    }
    status = 0;
out:
    cJSON_Delete(tasks);
    if (status == 0) {
        r->submit = s;
    } else {
        api_submit_free(s);
    }
    return status;
}

/* ---- routing (nng thread) ------------------------------------------------ */

/*
 * Sets r->route from method and path. Returns 0, or 404/405 with msg (and
 * *allow for 405).
 */
static int route(api_req *r, const char *path, char *msg, size_t msglen, const char **allow)
{
    const char *m = r->head ? "GET" : r->method;
    bool get = strcmp(m, "GET") == 0;
    bool post = strcmp(m, "POST") == 0;
    static const char prefix[] = "/api/v1/jobs";
    if (strcmp(path, "/healthz") == 0) {
        *allow = "GET, HEAD";
        r->route = ROUTE_HEALTHZ;
        return get ? 0 : 405;
    }
    if (strcmp(path, "/api/v1/clips") == 0) {
        *allow = "GET, HEAD";
        r->route = ROUTE_CLIPS;
        return get ? 0 : 405;
    }
    if (strcmp(path, "/api/v1/workers") == 0) {
        *allow = "GET, HEAD";
        r->route = ROUTE_WORKERS;
        return get ? 0 : 405;
    }
    if (strcmp(path, "/metrics") == 0) {
        *allow = "GET, HEAD";
        r->route = ROUTE_METRICS;
        return get ? 0 : 405;
    }
    if (strcmp(path, prefix) == 0) {
        *allow = "GET, HEAD, POST";
        if (get) {
            r->route = ROUTE_JOBS_LIST;
            return 0;
        }
        r->route = ROUTE_JOB_SUBMIT;
        return post ? 0 : 405;
    }
    if (strncmp(path, prefix, sizeof prefix - 1) == 0 && path[sizeof prefix - 1] == '/') {
        const char *idp = path + sizeof prefix;
        const char *slash = strchr(idp, '/');
        size_t idlen = slash != NULL ? (size_t)(slash - idp) : strlen(idp);
        if (parse_id(idp, idlen, &r->id)) {
            if (slash == NULL) {
                *allow = "GET, HEAD";
                r->route = ROUTE_JOB_GET;
                return get ? 0 : 405;
            }
            if (strcmp(slash, "/cancel") == 0) {
                *allow = "POST";
                r->route = ROUTE_JOB_CANCEL;
                return post ? 0 : 405;
            }
            if (strcmp(slash, "/retry") == 0) {
                *allow = "POST";
                r->route = ROUTE_JOB_RETRY;
                return post ? 0 : 405;
            }
            if (strcmp(slash, "/log") == 0) {
                *allow = "GET, HEAD";
                r->route = ROUTE_JOB_LOG;
                return get ? 0 : 405;
            }
            static const struct {
                const char *suffix;
                api_route route;
            } page[] = {{"/graph", ROUTE_JOB_GRAPH},
                        {"/loss", ROUTE_JOB_LOSS},
                        {"/contact-sheet", ROUTE_JOB_CONTACT}};
            for (size_t i = 0; i < sizeof page / sizeof page[0]; i++) {
                if (strcmp(slash, page[i].suffix) == 0) {
                    *allow = "GET, HEAD";
                    r->route = page[i].route;
                    return get ? 0 : 405;
                }
            }
            if (strcmp(slash, "/priority") == 0) {
                *allow = "POST, PATCH";
                r->route = ROUTE_JOB_PRIORITY;
                return post || strcmp(m, "PATCH") == 0 ? 0 : 405;
            }
        }
    }
    for (size_t i = 0; i < sizeof ext_routes / sizeof ext_routes[0]; i++) {
        size_t n = strlen(ext_routes[i]->prefix);
        if (strncmp(path, ext_routes[i]->prefix, n) == 0 && (path[n] == '\0' || path[n] == '/')) {
            r->route = ROUTE_EXT;
            r->ext = ext_routes[i];
            r->rest = path + n;
            return 0;
        }
    }
    snprintf(msg, msglen, "no route for %s %.200s", r->method, path);
    return 404;
}

static const srv_item_ops api_item_ops;

static const char *mime_for(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *const map[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
    };
    for (size_t i = 0; dot != NULL && i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(dot, map[i][0]) == 0) {
            return map[i][1];
        }
    }
    return "application/octet-stream";
}

/*
 * The dashboard (web/): static files, served on nng's thread without a
 * token (they hold no farm data; the page asks for a token and sends it on
 * every API call). Only flat names of [A-Za-z0-9._-] under web_dir, so no
 * path can leave it. Returns true if it answered.
 */
static bool serve_static(api_req *r)
{
    const char *path = r->uri;
    bool get = strcmp(r->method, "GET") == 0 || r->head;
    if (!get || r->a->cfg->web_dir == NULL) {
        return false;
    }
    const char *name = NULL;
    if (strcmp(path, "/") == 0 || strcmp(path, "/ui") == 0 || strcmp(path, "/ui/") == 0) {
        name = "index.html";
    } else if (strncmp(path, "/ui/", 4) == 0) {
        name = path + 4;
    } else {
        return false;
    }
    if (!api_body_name_ok(name, 128) || name[0] == '.') {
        send_error(r->aio, 404, "no such dashboard file", false, NULL);
        req_free(r);
        return true;
    }
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/%s", r->a->cfg->web_dir, name);
    char *data = NULL;
    size_t len = 0;
    rs_error e;
    rs_error_clear(&e);
    if (rs_fs_read_all(file, API_STATIC_CAP, &data, &len, &e) != RS_OK) {
        send_error(r->aio, 404, "no such dashboard file", false, NULL);
        req_free(r);
        return true;
    }
    send_typed(r->aio, 200, mime_for(name), data, len, false, NULL);
    free(data);
    req_free(r);
    return true;
}

/* The body is in (or there is none): route, validate, hand to the loop. */
static void req_dispatch(api_req *r)
{
    char msg[512];
    msg[0] = '\0';
    const char *allow = NULL;
    char *q = strchr(r->uri, '?');
    if (q != NULL) {
        *q = '\0';
        q++;
    }
    if (serve_static(r)) {
        return;
    }
    int status = route(r, r->uri, msg, sizeof msg, &allow);
    if (status == 405) {
        snprintf(msg, sizeof msg, "method %s not allowed on %.200s (allowed: %s)", r->method,
                 r->uri, allow);
        send_error(r->aio, 405, msg, false, allow);
        req_free(r);
        return;
    }
    if (status != 0) {
        send_error(r->aio, status, msg, false, NULL);
        req_free(r);
        return;
    }
    if (r->route == ROUTE_EXT) {
        r->query = strdup(q != NULL ? q : "");
        if (r->query == NULL) {
            send_error(r->aio, 500, "out of memory", false, NULL);
            req_free(r);
            return;
        }
    } else if (!parse_query(r, q, msg, sizeof msg)) {
        send_error(r->aio, 400, msg, false, NULL);
        req_free(r);
        return;
    }
    if ((r->route == ROUTE_EXT || r->route == ROUTE_JOB_PRIORITY) && r->body_len > 0) {
        rs_error je;
        rs_error_clear(&je);
        if (api_body_parse_json(r->body, r->body_len, &r->json, &je) != RS_OK) {
            send_error(r->aio, 400, rs_error_text(&je), false, NULL);
            req_free(r);
            return;
        }
    }
    if (r->route == ROUTE_JOB_SUBMIT) {
        status = parse_submit(r, msg, sizeof msg);
        if (status != 0) {
            send_error(r->aio, status, msg, false, NULL);
            req_free(r);
            return;
        }
        /* Checked in api_handle: 1-128 printable characters. */
        const char *key = nng_http_req_get_header(nng_aio_get_input(r->aio, 0), "Idempotency-Key");
        snprintf(r->submit->idem, sizeof r->submit->idem, "%s", key != NULL ? key : "");
    }
    free(r->body);
    r->body = NULL;
    r->item.ops = &api_item_ops;
    if (!server_item_push(r->a->sv, &r->item)) {
        send_error(r->aio, 503, "rushesd is shutting down", true, NULL);
        req_free(r);
    }
}

static void body_read_done(void *arg)
{
    api_req *r = arg;
    int rv = nng_aio_result(r->read_aio);
    if (rv == 0 && r->continuing) {
        /* "100 Continue" is out; now the body. */
        r->continuing = false;
        nng_iov iov = {.iov_buf = r->body, .iov_len = r->body_len};
        nng_aio_set_iov(r->read_aio, 1, &iov);
        nng_http_conn_read_all(r->conn, r->read_aio);
        return;
    }
    if (rv != 0) {
        /* The client went away or stalled: nng closes the connection. */
        nng_aio_finish(r->aio, rv);
        req_free(r);
        return;
    }
    r->body[r->body_len] = '\0';
    req_dispatch(r);
}

static void api_handle(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    api *a = nng_http_handler_get_data(h);
    const char *method = nng_http_req_get_method(req);
    const char *uri = nng_http_req_get_uri(req);

    if (nng_http_req_get_header(req, "Transfer-Encoding") != NULL) {
        send_error(aio, 400,
                   "body: chunked transfer encoding is not supported; send "
                   "Content-Length",
                   true, NULL);
        return;
    }
    size_t len = 0;
    const char *cl = nng_http_req_get_header(req, "Content-Length");
    if (cl != NULL) {
        char *end = NULL;
        unsigned long long v = strtoull(cl, &end, 10);
        if (cl[0] < '0' || cl[0] > '9' || end == NULL || *end != '\0') {
            send_error(aio, 400, "Content-Length: not a number", true, NULL);
            return;
        }
        if (v > a->cfg->max_body) {
            send_errorf(aio, 413, true, "body: %llu bytes is over the %zu-byte cap", v,
                        a->cfg->max_body);
            return;
        }
        len = (size_t)v;
    }
    const char *key = nng_http_req_get_header(req, "Idempotency-Key");
    size_t keylen = key != NULL ? strlen(key) : 0;
    if (key != NULL) {
        bool ok = keylen >= 1 && keylen <= 128;
        for (size_t i = 0; ok && i < keylen; i++) {
            ok = key[i] >= 0x20 && key[i] <= 0x7e;
        }
        if (!ok) {
            send_error(aio, 400, "Idempotency-Key: must be 1-128 printable characters", true, NULL);
            return;
        }
    }
    api_req *r = calloc(1, sizeof *r);
    if (r != NULL) {
        r->uri = strdup(uri);
    }
    if (r == NULL || r->uri == NULL) {
        free(r);
        send_error(aio, 500, "out of memory", true, NULL);
        return;
    }
    r->a = a;
    r->aio = aio;
    r->conn = nng_aio_get_input(aio, 2);
    const char *authz = nng_http_req_get_header(req, "Authorization");
    if (authz != NULL) {
        /* Hashed here, off the loop; a malformed one is refused at once. */
        if (strncasecmp(authz, "Bearer ", 7) != 0 || !auth_token_hash(authz + 7, r->token_hash)) {
            free(r->uri);
            free(r);
            send_error(aio, 401, "Authorization: not a Rushes bearer token", false, NULL);
            return;
        }
        r->has_token = true;
    }
    r->head = strcmp(method, "HEAD") == 0;
    snprintf(r->method, sizeof r->method, "%s", method);
    if (len == 0) {
        req_dispatch(r);
        return;
    }
    r->body = malloc(len + 1);
    if (r->body == NULL || nng_aio_alloc(&r->read_aio, body_read_done, r) != 0) {
        send_error(aio, 500, "out of memory", true, NULL);
        req_free(r);
        return;
    }
    r->body_len = len;
    nng_aio_set_timeout(r->read_aio, API_BODY_TIMEOUT_MS);
    const char *expect = nng_http_req_get_header(req, "Expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0) {
        /* Clients such as curl wait up to a second for this before they
         * send a body over 1 KiB; nng 1.5.2 does not send it. */
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        r->continuing = true;
        nng_iov iov = {.iov_buf = cont, .iov_len = sizeof cont - 1};
        nng_aio_set_iov(r->read_aio, 1, &iov);
        nng_http_conn_write_all(r->conn, r->read_aio);
        return;
    }
    nng_iov iov = {.iov_buf = r->body, .iov_len = len};
    nng_aio_set_iov(r->read_aio, 1, &iov);
    nng_http_conn_read_all(r->conn, r->read_aio);
}

/* ---- loop side ----------------------------------------------------------- */

/* Drops what a Job summary should not carry (tasks and clips are for GET). */
static cJSON *job_summary(cJSON *job)
{
    cJSON_DeleteItemFromObjectCaseSensitive(job, "tasks");
    cJSON_DeleteItemFromObjectCaseSensitive(job, "clips");
    return job;
}

static cJSON *wrap(const char *key, cJSON *v)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        cJSON_Delete(v);
        return NULL;
    }
    cJSON_AddItemToObject(o, key, v);
    return o;
}

static void apply_submit(server *sv, api_req *r, srv_batch *b)
{
    api_submit *s = r->submit;
    store_job_spec spec = {
        .project = s->project,
        .kind = s->kind,
        .params_json = s->params_json,
        .priority = s->priority,
        .max_attempts = s->max_attempts,
        .depends_on = s->depends,
        .ndepends = s->ndepends,
        .idempotency_key = s->idem,
        .task_params_json = (const char *const *)s->task_params,
        .ntasks = s->ntasks,
        .pool = s->pool,
        .min_memory_mb = s->min_memory_mb,
        .run_window = s->window_json,
        .tenant = strcmp(r->who.tenant, "*") == 0 ? NULL : r->who.tenant,
    };
    int64_t id = 0;
    bool existed = false;
    cJSON *job = NULL;
    /* Consent gate (ledger/): a likeness job needs consent for each performer. */
    rs_err rc = api_ledger_submit_gate(sv, s->project, s->kind, s->params_json, b->now_ms, &r->err);
    if (rc != RS_OK) {
        r->status = rc == RS_EPERM ? 403 : 400;
        return;
    }
    rc = store_job_submit(server_store(sv), &spec, b->now_ms, &id, &existed, &r->err);
    if (rc == RS_ENOENT) {
        /* A missing dependency is a fault in the body, not a missing route. */
        r->status = 400;
        return;
    }
    if (rc != RS_OK) {
        r->status = status_for(rc);
        return;
    }
    if (!existed) {
        b->submitted = true;
    }
    rc = store_job_get(server_store(sv), id, &job, &r->err);
    if (rc != RS_OK) {
        r->status = 500;
        return;
    }
    r->resp = wrap("job", job_summary(job));
    r->status = existed ? 200 : 201;
}

/*
 * Who is asking: with auth off every request is the farm-wide admin; with
 * it on the token must be known and not revoked at this very batch, so a
 * revocation takes effect for the next request. Returns false after
 * setting a 401.
 */
static bool authenticate(server *sv, api_req *r, int64_t now_ms)
{
    memset(&r->who, 0, sizeof r->who);
    if (!server_config(sv)->auth) {
        snprintf(r->who.tenant, sizeof r->who.tenant, "*");
        r->who.role = AUTH_ADMIN;
        return true;
    }
    if (!r->has_token) {
        r->status = 401;
        rs_error_set(&r->err, RS_EPERM,
                     "a bearer token is required (Authorization: Bearer rsh_...)");
        return false;
    }
    store_token t;
    bool found = false;
    if (store_token_find(server_store(sv), r->token_hash, now_ms, &t, &found, &r->err) != RS_OK) {
        r->status = 500;
        return false;
    }
    if (!found) {
        r->status = 401;
        rs_error_set(&r->err, RS_EPERM, "token unknown or revoked");
        return false;
    }
    r->who.token_id = t.id;
    snprintf(r->who.tenant, sizeof r->who.tenant, "%s", t.tenant);
    r->who.role = auth_role_parse(t.role);
    return true;
}

static bool need(api_req *r, auth_cap cap, const char *what)
{
    if (auth_can(&r->who, cap)) {
        return true;
    }
    r->status = 403;
    rs_error_set(&r->err, RS_EPERM, "role %s may not %s", auth_role_name(r->who.role), what);
    return false;
}

/* A job of another tenant is answered exactly like a missing one. */
static bool job_visible(server *sv, api_req *r)
{
    bool exists = false;
    char tenant[65];
    if (store_job_tenant(server_store(sv), r->id, &exists, tenant, &r->err) != RS_OK) {
        r->status = 500;
        return false;
    }
    if (!exists || !auth_sees(&r->who, tenant)) {
        r->status = 404;
        /* Word for word the store's answer for a missing job. */
        rs_error_set(&r->err, RS_ENOENT, "job %lld: no such job", (long long)r->id);
        return false;
    }
    return true;
}

static bool project_visible(server *sv, api_req *r, const char *project, bool create_ok)
{
    bool exists = false;
    char tenant[65];
    if (store_project_tenant(server_store(sv), project, &exists, tenant, &r->err) != RS_OK) {
        r->status = 500;
        return false;
    }
    if (!exists ? create_ok : auth_sees(&r->who, tenant)) {
        return true;
    }
    r->status = 404;
    rs_error_set(&r->err, RS_ENOENT, "project %s: not found", project);
    return false;
}

/* A dependency on another tenant's job reads like one on a missing job, so
 * depends_on cannot probe ids or watch another tenant's jobs. */
static bool deps_visible(server *sv, api_req *r)
{
    for (size_t i = 0; i < r->submit->ndepends; i++) {
        bool exists = false;
        char tenant[65];
        if (store_job_tenant(server_store(sv), r->submit->depends[i], &exists, tenant, &r->err) !=
            RS_OK) {
            r->status = 500;
            return false;
        }
        if (exists && !auth_sees(&r->who, tenant)) {
            r->status = 400;
            rs_error_set(&r->err, RS_ENOENT, "depends_on: no job %lld",
                         (long long)r->submit->depends[i]);
            return false;
        }
    }
    return true;
}

static void apply_ext(server *sv, api_req *r, srv_batch *b)
{
    api_result res;
    memset(&res, 0, sizeof res);
    res.status = 200;
    api_call call = {
        .method = r->head ? "GET" : r->method,
        .path = r->uri,
        .rest = r->rest,
        .query = r->query != NULL ? r->query : "",
        .body = r->json,
        .who = &r->who,
        .now_ms = b->now_ms,
    };
    r->ext->handle(sv, &call, &res);
    r->status = res.status;
    if (res.status >= 400) {
        cJSON_Delete(res.json);
        free(res.text);
        rs_error_set(&r->err, RS_EINVAL, "%s", res.message[0] != '\0' ? res.message : "error");
        return;
    }
    r->resp = res.json;
    r->text = res.text;
    r->content_type = res.content_type;
    if (r->resp == NULL && r->text == NULL) {
        r->resp = cJSON_CreateObject();
    }
}

/* Is path (resolved) inside dir (resolved)? */
static bool path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || n == 1);
}

/*
 * The removal_infer job's contact sheet (result.contact_sheet, written by
 * the job's finalize). The path comes from a job result, so it is only
 * trusted once resolved: it must be named contact_sheet.png, be a regular
 * file under one of the daemon's media roots or its data dir, and hold a
 * PNG under the cap. Read on the loop thread: it is small and this keeps
 * the tenancy check and the read in one place.
 */
static void apply_contact_sheet(server *sv, api_req *r)
{
    cJSON *job = NULL;
    char *buf = NULL;
    char real[PATH_MAX];
    if (store_job_get(server_store(sv), r->id, &job, &r->err) != RS_OK) {
        r->status = status_for(r->err.code);
        goto out;
    }
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(job, "result");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(res, "contact_sheet");
    if (!cJSON_IsString(p) || p->valuestring[0] != '/') {
        r->status = 404;
        rs_error_set(&r->err, RS_ENOENT, "job %lld: no contact sheet", (long long)r->id);
        goto out;
    }
    const char *base = strrchr(p->valuestring, '/') + 1;
    if (strcmp(base, "contact_sheet.png") != 0 || realpath(p->valuestring, real) == NULL) {
        r->status = 404;
        rs_error_set(&r->err, RS_ENOENT, "job %lld: contact sheet %.200s: not found",
                     (long long)r->id, p->valuestring);
        goto out;
    }
    const rsd_config *cfg = server_config(sv);
    bool inside = false;
    char root[PATH_MAX];
    for (size_t i = 0; i < cfg->nmedia_roots && !inside; i++) {
        inside = path_under(real, cfg->media_roots[i]);
    }
    if (!inside && cfg->data_dir != NULL && realpath(cfg->data_dir, root) != NULL) {
        inside = path_under(real, root);
    }
    if (!inside) {
        r->status = 404;
        rs_error_set(&r->err, RS_ENOENT,
                     "job %lld: contact sheet is outside the media roots and data dir",
                     (long long)r->id);
        goto out;
    }
    size_t len = 0;
    if (rs_fs_read_all(real, CONTACT_SHEET_CAP, &buf, &len, &r->err) != RS_OK) {
        r->status = 404;
        goto out;
    }
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < sizeof png_magic || memcmp(buf, png_magic, sizeof png_magic) != 0) {
        r->status = 500;
        rs_error_set(&r->err, RS_EINVAL, "job %lld: contact sheet %.200s is not a PNG",
                     (long long)r->id, real);
        goto out;
    }
    r->text = buf;
    r->text_len = len;
    r->content_type = "image/png";
    buf = NULL;
out:
    free(buf);
    cJSON_Delete(job);
}

static void apply_metrics(server *sv, api_req *r, srv_batch *b)
{
    cJSON *m = NULL;
    if (store_metrics(server_store(sv), b->now_ms, metrics_bounds, METRICS_NBOUNDS, &m, &r->err) !=
        RS_OK) {
        r->status = 500;
        return;
    }
    uint64_t codes[600];
    for (int i = 0; i < 600; i++) {
        codes[i] = atomic_load_explicit(&r->a->codes[i], memory_order_relaxed);
    }
    r->text = metrics_render(m, codes, 600);
    cJSON_Delete(m);
    if (r->text == NULL) {
        r->status = 500;
        rs_error_set(&r->err, RS_ENOMEM, "out of memory");
        return;
    }
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* Capability and tenancy of the built-in routes; false after an error. */
static bool authorize(server *sv, api_req *r)
{
    switch (r->route) {
    case ROUTE_HEALTHZ:
    case ROUTE_EXT: /* the module's handler checks */
        return true;
    case ROUTE_METRICS:
        if (strcmp(r->who.tenant, "*") != 0) {
            r->status = 403;
            rs_error_set(&r->err, RS_EPERM, "metrics are farm-wide: need a token of tenant *");
            return false;
        }
        return need(r, AUTH_CAN_READ, "read metrics");
    case ROUTE_JOB_SUBMIT:
        return need(r, AUTH_CAN_SUBMIT, "submit jobs") &&
               project_visible(sv, r, r->submit->project, true) && deps_visible(sv, r);
    case ROUTE_JOBS_LIST:
    case ROUTE_CLIPS:
        if (!need(r, AUTH_CAN_READ, "read")) {
            return false;
        }
        return r->project[0] == '\0' || project_visible(sv, r, r->project, false);
    case ROUTE_WORKERS:
        return need(r, AUTH_CAN_READ, "read");
    case ROUTE_JOB_GET:
    case ROUTE_JOB_LOG:
    case ROUTE_JOB_GRAPH:
    case ROUTE_JOB_LOSS:
    case ROUTE_JOB_CONTACT:
        return need(r, AUTH_CAN_READ, "read") && job_visible(sv, r);
    case ROUTE_JOB_CANCEL:
    case ROUTE_JOB_RETRY:
    case ROUTE_JOB_PRIORITY:
        /* Visibility first: another tenant's job is a 404 whatever the role. */
        return job_visible(sv, r) && need(r, AUTH_CAN_OPERATE, "act on jobs");
    }
    return true;
}

static void api_apply(server *sv, srv_item *it, srv_batch *b)
{
    api_req *r = (api_req *)it;
    store *st = server_store(sv);
    cJSON *out = NULL;
    rs_err rc = RS_OK;
    r->status = 200;
    if (r->route != ROUTE_HEALTHZ && !authenticate(sv, r, b->now_ms)) {
        return;
    }
    if (!authorize(sv, r)) {
        return;
    }
    switch (r->route) {
    case ROUTE_EXT:
        apply_ext(sv, r, b);
        return;
    case ROUTE_METRICS:
        apply_metrics(sv, r, b);
        return;
    case ROUTE_JOB_PRIORITY: {
        int priority = 0;
        if (api_body_parse_priority(r->json, &priority, &r->err) != RS_OK) {
            r->status = 400;
            return;
        }
        rc = store_job_set_priority(st, r->id, priority, &r->err);
        if (rc == RS_OK) {
            rc = store_job_get(st, r->id, &out, &r->err);
        }
        if (rc == RS_OK) {
            r->resp = wrap("job", job_summary(out));
        }
        break;
    }
    case ROUTE_JOB_SUBMIT:
        apply_submit(sv, r, b);
        return;
    case ROUTE_HEALTHZ: {
        rc = store_counts(st, &out, &r->err);
        if (rc != RS_OK) {
            break;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "ok");
        cJSON_AddStringToObject(o, "version", RUSHES_VERSION);
        cJSON_AddNumberToObject(o, "schema", store_schema_version());
        if (cJSON_GetObjectItemCaseSensitive(out, "jobs") != NULL) {
            while (out->child != NULL) {
                cJSON *c = cJSON_DetachItemViaPointer(out, out->child);
                cJSON_AddItemToObject(o, c->string, c);
            }
            cJSON_Delete(out);
        } else {
            cJSON_AddItemToObject(o, "jobs", out);
        }
        r->resp = o;
        return;
    }
    case ROUTE_JOBS_LIST:
        rc = store_job_list_tenant(st, r->state[0] != '\0' ? r->state : NULL,
                                   r->project[0] != '\0' ? r->project : NULL,
                                   auth_tenant_filter(&r->who), r->limit, r->before, &out, &r->err);
        if (rc == RS_OK) {
            r->resp = wrap("jobs", out);
        }
        break;
    case ROUTE_JOB_GET:
        rc = store_job_get(st, r->id, &out, &r->err);
        if (rc == RS_OK) {
            r->resp = wrap("job", out);
        }
        break;
    case ROUTE_JOB_CANCEL:
    case ROUTE_JOB_RETRY:
        rc = r->route == ROUTE_JOB_CANCEL ? store_job_cancel(st, r->id, b->now_ms, &r->err)
                                          : store_job_retry(st, r->id, b->now_ms, &r->err);
        if (rc == RS_OK) {
            rc = store_job_get(st, r->id, &out, &r->err);
        }
        if (rc == RS_OK) {
            r->resp = wrap("job", job_summary(out));
        }
        break;
    case ROUTE_JOB_GRAPH:
        rc = store_job_graph(st, r->id, auth_tenant_filter(&r->who), &out, &r->err);
        if (rc == RS_OK) {
            r->resp = wrap("graph", out);
        }
        break;
    case ROUTE_JOB_LOSS:
        rc = store_job_loss(st, r->id, &out, &r->err);
        if (rc == RS_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "job", (double)r->id);
            cJSON_AddItemToObject(o, "points", out);
            r->resp = o;
        }
        break;
    case ROUTE_JOB_CONTACT:
        apply_contact_sheet(sv, r);
        return;
    case ROUTE_JOB_LOG:
        rc = store_job_log(st, r->id, r->limit, &out, &r->err);
        if (rc == RS_OK) {
            r->resp = wrap("lines", out);
        }
        break;
    case ROUTE_CLIPS:
        rc = store_clip_list_tenant(st, r->project[0] != '\0' ? r->project : NULL, r->job,
                                    auth_tenant_filter(&r->who), &out, &r->err);
        if (rc == RS_OK) {
            r->resp = wrap("clips", out);
        }
        break;
    case ROUTE_WORKERS:
        rc = store_worker_list(st, b->now_ms, &out, &r->err);
        if (rc == RS_OK) {
            r->resp = wrap("workers", out);
        }
        break;
    }
    if (rc != RS_OK) {
        r->status = status_for(rc);
        cJSON_Delete(r->resp);
        r->resp = NULL;
    }
}

static void api_reply(server *sv, srv_item *it, bool committed)
{
    api_req *r = (api_req *)it;
    if (!committed) {
        send_error(r->aio, 500, "internal: the database did not commit; nothing was recorded",
                   false, NULL);
    } else if (r->status >= 400 || (r->resp == NULL && r->text == NULL)) {
        int status = r->status >= 400 ? r->status : 500;
        if (status == 500) {
            RS_ERROR("api", "%s %s: %s", r->method, r->uri, rs_error_text(&r->err));
        }
        send_error(r->aio, status, r->err.msg[0] != '\0' ? r->err.msg : rs_strerror(r->err.code),
                   false, NULL);
    } else if (r->text != NULL) {
        send_typed(r->aio, r->status, r->content_type != NULL ? r->content_type : "text/plain",
                   r->text, r->text_len > 0 ? r->text_len : strlen(r->text), false, NULL);
    } else {
        char *text = cJSON_PrintUnformatted(r->resp);
        if (text == NULL) {
            send_error(r->aio, 500, "out of memory", false, NULL);
        } else {
            send_text(r->aio, r->status, text, strlen(text), false, NULL);
            free(text);
        }
    }
    req_free(r);
}

static const srv_item_ops api_item_ops = {
    .apply = api_apply,
    .reply = api_reply,
};

/* ---- submits from the loop (schedules) ------------------------------------ */

rs_err api_submit_json(api *a, const char *project, const char *tenant, const char *job_json,
                       int64_t now_ms, int64_t *job_id, rs_error *e)
{
    rs_err rc = RS_OK;
    char msg[512];
    cJSON *job = cJSON_Parse(job_json);
    api_req *r = calloc(1, sizeof *r);
    if (job == NULL || r == NULL) {
        rc = rs_error_set(e, RS_EINVAL, "schedule: job: not a JSON object");
        goto out;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(job, "project");
    cJSON_AddStringToObject(job, "project", project);
    r->a = a;
    r->route = ROUTE_JOB_SUBMIT;
    r->body = cJSON_PrintUnformatted(job);
    if (r->body == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    r->body_len = strlen(r->body);
    /* The same validation and plan() as a POST /api/v1/jobs. */
    if (parse_submit(r, msg, sizeof msg) != 0) {
        rc = rs_error_set(e, RS_EINVAL, "schedule: job: %s", msg);
        goto out;
    }
    api_submit *sub = r->submit;
    store_job_spec spec = {
        .project = sub->project,
        .kind = sub->kind,
        .params_json = sub->params_json,
        .priority = sub->priority,
        .max_attempts = sub->max_attempts,
        .depends_on = sub->depends,
        .ndepends = sub->ndepends,
        .idempotency_key = NULL,
        .task_params_json = (const char *const *)sub->task_params,
        .ntasks = sub->ntasks,
        .pool = sub->pool,
        .min_memory_mb = sub->min_memory_mb,
        .run_window = sub->window_json,
        .tenant = tenant != NULL && tenant[0] != '\0' ? tenant : NULL,
    };
    bool existed = false;
    /* The same consent gate as a POST /api/v1/jobs (ledger/). */
    rc = api_ledger_submit_gate(a->sv, sub->project, sub->kind, sub->params_json, now_ms, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = store_job_submit(server_store(a->sv), &spec, now_ms, job_id, &existed, e);
out:
    cJSON_Delete(job);
    req_free(r);
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------- */

rs_err api_create(server *sv, const rsd_config *cfg, api **out, rs_error *e)
{
    rs_err rc = RS_OK;
    nng_url *url = NULL;
    nng_http_handler *h = NULL;
    api *a = calloc(1, sizeof *a);
    if (a == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    a->sv = sv;
    a->cfg = cfg;
    int rv = nng_url_parse(&url, cfg->api_listen);
    if (rv != 0) {
        rc = rs_error_set(e, RS_EINVAL, "api_listen: %s: %s", cfg->api_listen, nng_strerror(rv));
        goto out;
    }
    rv = nng_http_server_hold(&a->http, url);
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENET, "api_listen: %s: %s", cfg->api_listen, nng_strerror(rv));
        goto out;
    }
    rv = nng_http_handler_alloc(&h, "/", api_handle);
    if (rv == 0) {
        rv = nng_http_handler_set_method(h, NULL);
    }
    if (rv == 0) {
        rv = nng_http_handler_set_tree(h);
    }
    if (rv == 0) {
        rv = nng_http_handler_collect_body(h, false, 0);
    }
    if (rv == 0) {
        rv = nng_http_handler_set_data(h, a, NULL);
    }
    if (rv == 0) {
        rv = nng_http_server_add_handler(a->http, h);
    }
    if (rv != 0) {
        nng_http_handler_free(h);
        rc = rs_error_set(e, RS_ENET, "api: handler: %s", nng_strerror(rv));
        goto out;
    }
    rv = nng_http_server_start(a->http);
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENET, "api_listen: %s: %s", cfg->api_listen, nng_strerror(rv));
        goto out;
    }
out:
    nng_url_free(url);
    if (rc != RS_OK) {
        if (a->http != NULL) {
            nng_http_server_release(a->http);
        }
        free(a);
        return rc;
    }
    *out = a;
    return RS_OK;
}

void api_stop(api *a)
{
    if (a == NULL || a->stopped) {
        return;
    }
    a->stopped = true;
    nng_http_server_stop(a->http);
}

void api_destroy(api *a)
{
    if (a == NULL) {
        return;
    }
    api_stop(a);
    nng_http_server_release(a->http);
    free(a);
}
