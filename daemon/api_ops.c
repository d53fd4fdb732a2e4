/*
 * api_ops.c: the operations routes of docs/API.md (tokens, projects and
 * their limits, worker drain, schedules, backup, whoami), as api_ext.h
 * routes. Each handler runs on the loop inside the batch; each checks the
 * caller's capability and tenant itself. Another tenant's object answers
 * 404 exactly like a missing one.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api.h"
#include "api_body.h"
#include "api_ext.h"
#include "cron.h"
#include "fs.h"
#include "store.h"

static bool method_is(const api_call *c, const char *m)
{
    return strcmp(c->method, m) == 0;
}

/* "/12" or "/12/suffix": the id and the suffix ("" if none). */
static bool rest_id(const char *rest, int64_t *id, const char **suffix)
{
    if (rest[0] != '/') {
        return false;
    }
    char *end = NULL;
    long long v = strtoll(rest + 1, &end, 10);
    if (end == rest + 1 || v <= 0 || (*end != '\0' && *end != '/')) {
        return false;
    }
    *id = v;
    *suffix = end;
    return true;
}

static bool need(const api_call *c, api_result *res, auth_cap cap, const char *what)
{
    if (auth_can(c->who, cap)) {
        return true;
    }
    api_result_error(res, 403, "role %s may not %s", auth_role_name(c->who->role), what);
    return false;
}

static bool farm_wide(const api_call *c, api_result *res, const char *what)
{
    if (strcmp(c->who->tenant, "*") == 0) {
        return true;
    }
    api_result_error(res, 403, "%s is farm-wide: needs a token of tenant *", what);
    return false;
}

static const char *tenant_or_null(const api_call *c)
{
    return auth_tenant_filter(c->who);
}

static void store_failed(api_result *res, rs_err rc, const rs_error *e)
{
    api_result_error(res, api_status_for(rc), "%s", rs_error_text(e));
}

static cJSON *wrap(const char *key, cJSON *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, key, v);
    return o;
}

/* {"<key>": {"id": id, "<flag>": value}}: the reply of a state change. */
static cJSON *wrap_id_flag(const char *key, int64_t id, const char *flag, bool value)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddBoolToObject(o, flag, value);
    return wrap(key, o);
}

/* Only the listed keys; a missing required one or an unknown one is a 400. */
static bool body_keys(const api_call *c, api_result *res, const char *const *allowed)
{
    if (c->body == NULL || !cJSON_IsObject(c->body)) {
        api_result_error(res, 400, "body: must be a JSON object");
        return false;
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, c->body)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL; i++) {
            ok = ok || strcmp(it->string, allowed[i]) == 0;
        }
        if (!ok) {
            api_result_error(res, 400, "body: unknown field \"%.64s\"", it->string);
            return false;
        }
    }
    return true;
}

static const char *body_str(const api_call *c, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->body, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- tokens ---------------------------------------------------------------- */

static void tokens(server *sv, const api_call *c, api_result *res)
{
    store *st = server_store(sv);
    rs_error e;
    rs_error_clear(&e);
    if (!need(c, res, AUTH_CAN_ADMIN, "manage tokens")) {
        return;
    }
    const char *suffix = NULL;
    int64_t id = 0;
    if (c->rest[0] == '\0' && method_is(c, "GET")) {
        cJSON *arr = NULL;
        rs_err rc = store_token_list(st, tenant_or_null(c), &arr, &e);
        if (rc != RS_OK) {
            store_failed(res, rc, &e);
            return;
        }
        res->json = wrap("tokens", arr);
        return;
    }
    if (c->rest[0] == '\0' && method_is(c, "POST")) {
        static const char *const keys[] = {"tenant", "role", "name", NULL};
        if (!body_keys(c, res, keys)) {
            return;
        }
        const char *tenant = body_str(c, "tenant");
        const char *role = body_str(c, "role");
        const char *name = body_str(c, "name");
        if (tenant == NULL || (strcmp(tenant, "*") != 0 && !api_body_name_ok(tenant, 64))) {
            api_result_error(res, 400,
                             "tenant: required, \"*\" or 1-64 characters of "
                             "[A-Za-z0-9._-]");
            return;
        }
        if (role == NULL || auth_role_parse(role) == 0) {
            api_result_error(res, 400, "role: must be one of submit, operate, audit, admin");
            return;
        }
        if (name != NULL && strlen(name) > 128) {
            api_result_error(res, 400, "name: at most 128 characters");
            return;
        }
        if (!auth_sees(c->who, tenant) ||
            (strcmp(tenant, "*") == 0 && strcmp(c->who->tenant, "*") != 0)) {
            api_result_error(res, 403, "tenant %s: an admin of %s cannot make its tokens", tenant,
                             c->who->tenant);
            return;
        }
        char token[AUTH_TOKEN_LEN + 1];
        char hash[AUTH_HASH_HEX + 1];
        rs_err rc = auth_token_new(token, hash, &e);
        if (rc == RS_OK) {
            rc = store_token_create(st, tenant, role, name != NULL ? name : "", hash, c->now_ms,
                                    &id, &e);
        }
        if (rc != RS_OK) {
            store_failed(res, rc, &e);
            return;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)id);
        cJSON_AddStringToObject(o, "tenant", tenant);
        cJSON_AddStringToObject(o, "role", role);
        cJSON_AddStringToObject(o, "name", name != NULL ? name : "");
        /* The only time the secret leaves the daemon. */
        cJSON_AddStringToObject(o, "token", token);
        res->json = wrap("token", o);
        res->status = 201;
        return;
    }
    if (rest_id(c->rest, &id, &suffix) &&
        ((method_is(c, "DELETE") && suffix[0] == '\0') ||
         (method_is(c, "POST") && strcmp(suffix, "/revoke") == 0))) {
        rs_err rc = store_token_revoke(st, id, tenant_or_null(c), c->now_ms, &e);
        if (rc != RS_OK) {
            store_failed(res, rc, &e);
            return;
        }
        res->json = wrap_id_flag("token", id, "revoked", true);
        return;
    }
    api_result_error(res, 404, "no route for %s %.200s", c->method, c->path);
}

const api_ext_route api_ops_tokens = {.prefix = "/api/v1/tokens", .handle = tokens};

/* ---- whoami ---------------------------------------------------------------- */

static void whoami(server *sv, const api_call *c, api_result *res)
{
    (void)sv;
    if (!method_is(c, "GET") || c->rest[0] != '\0') {
        api_result_error(res, 404, "no route for %s %.200s", c->method, c->path);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "token_id", (double)c->who->token_id);
    cJSON_AddStringToObject(o, "tenant", c->who->tenant);
    cJSON_AddStringToObject(o, "role", auth_role_name(c->who->role));
    cJSON_AddBoolToObject(o, "auth", server_config(sv)->auth);
    res->json = o;
}

const api_ext_route api_ops_whoami = {.prefix = "/api/v1/whoami", .handle = whoami};

/* ---- projects -------------------------------------------------------------- */

static void projects(server *sv, const api_call *c, api_result *res)
{
    store *st = server_store(sv);
    rs_error e;
    rs_error_clear(&e);
    if (c->rest[0] == '\0' && method_is(c, "GET")) {
        if (!need(c, res, AUTH_CAN_READ, "read")) {
            return;
        }
        cJSON *arr = NULL;
        rs_err rc = store_project_list(st, tenant_or_null(c), &arr, &e);
        if (rc != RS_OK) {
            store_failed(res, rc, &e);
            return;
        }
        res->json = wrap("projects", arr);
        return;
    }
    /* /NAME/limits */
    const char *name = c->rest + 1;
    const char *slash = c->rest[0] == '/' ? strchr(name, '/') : NULL;
    if (slash == NULL || strcmp(slash, "/limits") != 0 ||
        !(method_is(c, "PUT") || method_is(c, "POST") || method_is(c, "PATCH"))) {
        api_result_error(res, 404, "no route for %s %.200s", c->method, c->path);
        return;
    }
    char project[65];
    size_t n = (size_t)(slash - name);
    if (n == 0 || n >= sizeof project) {
        api_result_error(res, 400, "project: 1-64 characters of [A-Za-z0-9._-]");
        return;
    }
    memcpy(project, name, n);
    project[n] = '\0';
    if (!api_body_name_ok(project, 64)) {
        api_result_error(res, 400, "project: 1-64 characters of [A-Za-z0-9._-]");
        return;
    }
    bool exists = false;
    char tenant[65];
    rs_err rc = store_project_tenant(st, project, &exists, tenant, &e);
    if (rc != RS_OK) {
        store_failed(res, rc, &e);
        return;
    }
    if (exists && !auth_sees(c->who, tenant)) {
        api_result_error(res, 404, "project %s: not found", project);
        return;
    }
    if (!need(c, res, AUTH_CAN_OPERATE, "set project limits")) {
        return;
    }
    static const char *const keys[] = {"max_running", NULL};
    if (!body_keys(c, res, keys)) {
        return;
    }
    const cJSON *mr = cJSON_GetObjectItemCaseSensitive(c->body, "max_running");
    if (!cJSON_IsNumber(mr) || mr->valuedouble < 0 || mr->valuedouble > 100000 ||
        mr->valuedouble != (double)(int)mr->valuedouble) {
        api_result_error(res, 400, "max_running: must be an integer in 0..100000 (0 = none)");
        return;
    }
    rc = store_project_set_limit(st, project, tenant_or_null(c), (int)mr->valuedouble, c->now_ms,
                                 &e);
    if (rc != RS_OK) {
        store_failed(res, rc, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", project);
    cJSON_AddNumberToObject(o, "max_running", mr->valuedouble);
    res->json = wrap("project", o);
}

const api_ext_route api_ops_projects = {.prefix = "/api/v1/projects", .handle = projects};

/* ---- workers: drain -------------------------------------------------------- */

static void workers(server *sv, const api_call *c, api_result *res)
{
    int64_t id = 0;
    const char *suffix = NULL;
    bool drain = false;
    if (!rest_id(c->rest, &id, &suffix) || !method_is(c, "POST") ||
        !(strcmp(suffix, "/drain") == 0 || strcmp(suffix, "/undrain") == 0)) {
        api_result_error(res, 404, "no route for %s %.200s", c->method, c->path);
        return;
    }
    drain = strcmp(suffix, "/drain") == 0;
    if (!need(c, res, AUTH_CAN_OPERATE, "drain workers") || !farm_wide(c, res, "draining")) {
        return;
    }
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = store_worker_drain(server_store(sv), id, drain, &e);
    if (rc != RS_OK) {
        store_failed(res, rc, &e);
        return;
    }
    res->json = wrap_id_flag("worker", id, "drained", drain);
}

const api_ext_route api_ops_workers = {.prefix = "/api/v1/workers", .handle = workers};

/* ---- schedules ------------------------------------------------------------- */

static void schedules(server *sv, const api_call *c, api_result *res)
{
    store *st = server_store(sv);
    rs_error e;
    rs_error_clear(&e);
    int64_t id = 0;
    const char *suffix = NULL;
    if (c->rest[0] == '\0' && method_is(c, "GET")) {
        if (!need(c, res, AUTH_CAN_READ, "read")) {
            return;
        }
        cJSON *arr = NULL;
        rs_err rc = store_schedule_list(st, tenant_or_null(c), &arr, &e);
        if (rc != RS_OK) {
            store_failed(res, rc, &e);
            return;
        }
        res->json = wrap("schedules", arr);
        return;
    }
    if (c->rest[0] == '\0' && method_is(c, "POST")) {
        if (!need(c, res, AUTH_CAN_SUBMIT, "add schedules")) {
            return;
        }
        static const char *const keys[] = {"project", "name", "cron", "tz", "job", NULL};
        if (!body_keys(c, res, keys)) {
            return;
        }
        const char *project = body_str(c, "project");
        const char *name = body_str(c, "name");
        const char *cron = body_str(c, "cron");
        const char *tz = body_str(c, "tz");
        const cJSON *job = cJSON_GetObjectItemCaseSensitive(c->body, "job");
        if (project == NULL || !api_body_name_ok(project, 64)) {
            api_result_error(res, 400, "project: required, 1-64 characters of [A-Za-z0-9._-]");
            return;
        }
        if (name == NULL || !api_body_name_ok(name, 64)) {
            api_result_error(res, 400, "name: required, 1-64 characters of [A-Za-z0-9._-]");
            return;
        }
        if (tz == NULL) {
            tz = "UTC";
        }
        cron_expr ce;
        if (cron == NULL || strlen(cron) > 128) {
            api_result_error(res, 400, "cron: required, a 5-field cron expression");
            return;
        }
        if (cron_parse(cron, &ce, &e) != RS_OK) {
            api_result_error(res, 400, "%s", rs_error_text(&e));
            return;
        }
        if (!cron_tz_ok(tz)) {
            api_result_error(res, 400, "tz: unknown time zone \"%.64s\"", tz);
            return;
        }
        if (!cJSON_IsObject(job) || !cJSON_IsString(cJSON_GetObjectItem(job, "kind")) ||
            cJSON_GetObjectItem(job, "project") != NULL) {
            api_result_error(res, 400,
                             "job: must be a submit body with \"kind\" and without "
                             "\"project\" (the schedule's project is used)");
            return;
        }
        bool exists = false;
        char tenant[65];
        rs_err rc = store_project_tenant(st, project, &exists, tenant, &e);
        if (rc != RS_OK) {
            store_failed(res, rc, &e);
            return;
        }
        if (exists && !auth_sees(c->who, tenant)) {
            api_result_error(res, 404, "project %s: not found", project);
            return;
        }
        int64_t next = 0;
        rc = cron_next(&ce, tz, server_now_ms(sv), &next, &e);
        if (rc != RS_OK) {
            api_result_error(res, 400, "%s", rs_error_text(&e));
            return;
        }
        char *job_json = cJSON_PrintUnformatted(job);
        store_schedule_spec spec = {
            .project = project,
            .tenant = tenant_or_null(c),
            .name = name,
            .cron = cron,
            .tz = tz,
            .job_json = job_json != NULL ? job_json : "{}",
            .next_at = next,
        };
        rc = store_schedule_add(st, &spec, c->now_ms, &id, &e);
        free(job_json);
        if (rc != RS_OK) {
            store_failed(res, rc, &e);
            return;
        }
        cJSON *arr = NULL;
        rc = store_schedule_list(st, tenant_or_null(c), &arr, &e);
        if (rc != RS_OK) {
            store_failed(res, rc, &e);
            return;
        }
        cJSON *found = NULL;
        cJSON *it = NULL;
        cJSON_ArrayForEach(it, arr)
        {
            if ((int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "id")) == id) {
                found = it;
            }
        }
        res->json = wrap("schedule", found != NULL ? cJSON_DetachItemViaPointer(arr, found)
                                                   : cJSON_CreateObject());
        cJSON_Delete(arr);
        res->status = 201;
        return;
    }
    if (rest_id(c->rest, &id, &suffix) && suffix[0] == '\0' && method_is(c, "DELETE")) {
        if (!need(c, res, AUTH_CAN_SUBMIT, "remove schedules")) {
            return;
        }
        rs_err rc = store_schedule_remove(st, id, tenant_or_null(c), &e);
        if (rc != RS_OK) {
            store_failed(res, rc, &e);
            return;
        }
        res->json = wrap_id_flag("schedule", id, "removed", true);
        return;
    }
    api_result_error(res, 404, "no route for %s %.200s", c->method, c->path);
}

const api_ext_route api_ops_schedules = {.prefix = "/api/v1/schedules", .handle = schedules};

/* ---- admin: backup --------------------------------------------------------- */

static void admin(server *sv, const api_call *c, api_result *res)
{
    if (strcmp(c->rest, "/backup") != 0 || !method_is(c, "POST")) {
        api_result_error(res, 404, "no route for %s %.200s", c->method, c->path);
        return;
    }
    if (!need(c, res, AUTH_CAN_ADMIN, "take backups") || !farm_wide(c, res, "backup")) {
        return;
    }
    const rsd_config *cfg = server_config(sv);
    const char *name = NULL;
    if (c->body != NULL) {
        static const char *const keys[] = {"name", NULL};
        if (!body_keys(c, res, keys)) {
            return;
        }
        name = body_str(c, "name");
        if (name == NULL || !api_body_name_ok(name, 128) || name[0] == '.') {
            api_result_error(res, 400, "name: 1-128 characters of [A-Za-z0-9._-]");
            return;
        }
    }
    char dir[PATH_MAX];
    char dest[PATH_MAX + 160];
    char stamp[64];
    snprintf(dir, sizeof dir, "%s/backups", cfg->data_dir);
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = rs_fs_mkdirs(dir, &e);
    if (rc != RS_OK) {
        store_failed(res, rc, &e);
        return;
    }
    if (name == NULL) {
        time_t secs = (time_t)(c->now_ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(stamp, sizeof stamp, "rushes-%04d%02d%02dT%02d%02d%02d.%03dZ.db",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(c->now_ms % 1000));
        name = stamp;
    }
    snprintf(dest, sizeof dest, "%s/%s", dir, name);
    /* A separate read connection: one consistent snapshot of what is
     * committed; this batch's own uncommitted changes are not in it. */
    rc = store_backup_file(cfg->db, dest, &e);
    if (rc != RS_OK) {
        api_result_error(res, rc == RS_EIO ? 409 : 500, "%s", rs_error_text(&e));
        return;
    }
    struct stat sb;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", dest);
    cJSON_AddNumberToObject(o, "bytes", stat(dest, &sb) == 0 ? (double)sb.st_size : 0);
    cJSON_AddNumberToObject(o, "schema", store_schema_version());
    res->json = wrap("backup", o);
    res->status = 201;
}

const api_ext_route api_ops_admin = {.prefix = "/api/v1/admin", .handle = admin};
