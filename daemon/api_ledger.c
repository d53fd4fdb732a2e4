/*
 * api_ledger.c: the ledger's REST routes and the consent gate in rushesd.
 *
 * Routes (prefix /api/v1/ledger; docs/API.md "Ledger"):
 *   GET  /events?project=P            the chain, oldest first    (audit)
 *   GET  /export?project=P            JSON lines, signed; records an export event (audit)
 *   GET  /pubkey?project=P            {"project","pubkey"}       (audit)
 *   GET  /masks/HASH                  the mask's bytes as hex    (audit)
 *   POST /audit {"project","subject","ok","frames","failures","head"}
 *                                     appends an audit event     (audit)
 *   GET  /consents?project=&performer=                           (read)
 *   POST /consents {"performer","project","kinds":[..],"use","territory",
 *                   "expires_at":ms,"document_hash"}             (operate)
 *   POST /consents/ID/revoke {"reason"}                          (operate)
 * Everything runs on the loop thread inside the batch, so a consent added
 * and a job submitted in the same batch see each other.
 */
#include "api_ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "fs.h"
#include "ledger.h"
#include "log.h"
#include "store.h"
#include "task.h"

/* How far before a job's submit time the authorisation lookup still looks. */
#define AUTH_CLOCK_SLACK_MS 60000

static rs_err open_ledger(server *sv, ledger **out, rs_error *e)
{
    return ledger_open(store_sqlite(server_store(sv)), server_config(sv)->data_dir, out, e);
}

/* ---- consent gate ------------------------------------------------------- */

static rs_err gate(server *sv, const char *project, const char *kind, const char *params_json,
                   int64_t now_ms, rs_error *e)
{
    const task_kind *k = task_kind_find(kind);
    if (k == NULL || k->likeness == NULL) {
        return RS_OK; /* alters no likeness; unknown kinds are refused elsewhere */
    }
    cJSON *params = cJSON_Parse(params_json != NULL ? params_json : "{}");
    unsigned likeness = k->likeness != NULL && params != NULL ? k->likeness(params) : 0;
    ledger *l = NULL;
    rs_err rc = RS_OK;
    if (params == NULL) {
        rc = rs_error_set(e, RS_EINVAL, "params: not JSON");
        goto out;
    }
    if (likeness == 0) {
        goto out; /* this job alters no likeness (noop without "likeness") */
    }
    rc = open_ledger(sv, &l, e);
    if (rc == RS_OK) {
        rc = ledger_consent_gate(l, project, likeness, params, now_ms, NULL, e);
    }
out:
    ledger_close(l);
    cJSON_Delete(params);
    return rc;
}

rs_err api_ledger_submit_gate(server *sv, const char *project, const char *kind,
                              const char *params_json, int64_t now_ms, rs_error *e)
{
    return gate(sv, project, kind, params_json, now_ms, e);
}

/* The job's project, kind and params text (malloc'd, "{}" when empty);
 * false if the job is not there or the query fails. */
static bool job_row(sqlite3 *db, int64_t job_id, char *project, size_t plen, char *kind,
                    size_t klen, char **params)
{
    sqlite3_stmt *st = NULL;
    *params = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT p.name, j.kind, j.params FROM job j "
                           "JOIN project p ON p.id = j.project_id WHERE j.id = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        return false;
    }
    sqlite3_bind_int64(st, 1, job_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(project, plen, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(kind, klen, "%s", (const char *)sqlite3_column_text(st, 1));
        const char *p = (const char *)sqlite3_column_text(st, 2);
        *params = strdup(p != NULL ? p : "{}");
    }
    sqlite3_finalize(st);
    return *params != NULL;
}

bool api_ledger_lease_blocked(server *sv, int64_t job_id, int64_t now_ms)
{
    sqlite3 *db = store_sqlite(server_store(sv));
    sqlite3_stmt *st = NULL;
    char project[256] = "", kind[128] = "";
    char *params = NULL;
    if (!job_row(db, job_id, project, sizeof project, kind, sizeof kind, &params)) {
        return false;
    }
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = gate(sv, project, kind, params, now_ms, &e);
    free(params);
    if (rc == RS_OK) {
        return false;
    }
    char reason[600];
    snprintf(reason, sizeof reason, "blocked at dispatch: %s", rs_error_text(&e));
    RS_WARN("ledger", "job %" PRId64 ": %s", job_id, reason);
    rs_error ce;
    if (store_job_cancel(server_store(sv), job_id, now_ms, &ce) != RS_OK) {
        RS_ERROR("ledger", "job %" PRId64 ": cannot block: %s", job_id, rs_error_text(&ce));
        return true;
    }
    /* Cancel leaves no reason; say why the job stopped. */
    if (sqlite3_prepare_v2(db, "UPDATE job SET error = ? WHERE id = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, job_id);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    return true;
}

/* ---- authorisation at lease -------------------------------------------- */

static int64_t job_created_at(sqlite3 *db, int64_t job_id)
{
    sqlite3_stmt *st = NULL;
    int64_t t = 0;
    if (sqlite3_prepare_v2(db, "SELECT created_at FROM job WHERE id = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, job_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            t = sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_finalize(st);
    /* Clocks may step back a little between submit and the first lease. */
    return t > AUTH_CLOCK_SLACK_MS ? t - AUTH_CLOCK_SLACK_MS : 0;
}

bool api_ledger_lease_authorise(server *sv, int64_t job_id, cJSON *task_params, int64_t now_ms)
{
    sqlite3 *db = store_sqlite(server_store(sv));
    char project[256] = "", kind[128] = "";
    char *params_text = NULL;
    if (!job_row(db, job_id, project, sizeof project, kind, sizeof kind, &params_text)) {
        RS_ERROR("ledger", "job %" PRId64 ": authorise: %s", job_id, sqlite3_errmsg(db));
        return false;
    }
    cJSON *params = cJSON_Parse(params_text);
    free(params_text);
    const task_kind *k = task_kind_find(kind);
    if (k == NULL || !k->alters) {
        cJSON_Delete(params);
        return true; /* nothing to label: the task runs as before */
    }
    if (params == NULL) {
        params = cJSON_CreateObject();
    }
    unsigned likeness = k->likeness != NULL ? k->likeness(params) : 0;
    ledger *l = NULL;
    cJSON *consents = NULL;
    char hash[LEDGER_HEX] = "";
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = open_ledger(sv, &l, &e);
    if (rc == RS_OK) {
        rc = ledger_consent_gate(l, project, likeness, params, now_ms, &consents, &e);
    }
    if (rc == RS_OK) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(task_params, "model");
        ledger_authorisation a = {
            .project = project,
            .job_id = job_id,
            .kind = kind,
            .model = cJSON_IsString(m) ? m->valuestring : "",
            .params = params,
            .consents = cJSON_GetArraySize(consents) > 0 ? consents : NULL,
            .since_ms = job_created_at(db, job_id),
        };
        bool created = false;
        rc = ledger_job_authorise(l, &a, now_ms, hash, &created, &e);
        if (rc == RS_OK && created) {
            RS_INFO("ledger", "job %" PRId64 ": alteration authorised, event %.16s", job_id, hash);
        }
    }
    if (rc == RS_OK) {
        cJSON_DeleteItemFromObjectCaseSensitive(task_params, "ledger");
        cJSON *lo = cJSON_AddObjectToObject(task_params, "ledger");
        if (lo == NULL || cJSON_AddStringToObject(lo, "event", hash) == NULL ||
            cJSON_AddStringToObject(lo, "project", project) == NULL) {
            rc = rs_error_set(&e, RS_ENOMEM, "out of memory");
        }
    }
    if (rc != RS_OK) {
        RS_ERROR("ledger", "job %" PRId64 ": cannot authorise its alterations: %s", job_id,
                 rs_error_text(&e));
    }
    cJSON_Delete(consents);
    cJSON_Delete(params);
    ledger_close(l);
    return rc == RS_OK;
}

/* ---- finalise hook ------------------------------------------------------ */

static const char *body_str(const cJSON *b, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One job's ledger work across the three phases of server.c's finalise. */
struct api_ledger_fin {
    const char *data_dir;
    ledger_job_spec j; /* result and clips set in phase B */
    bool have_auth;
    char auth[LEDGER_HEX];
    ledger_job_prep *prep; /* NULL: nothing to record */
};

void api_ledger_fin_destroy(api_ledger_fin *f)
{
    if (f == NULL) {
        return;
    }
    ledger_job_prep_destroy(f->prep);
    free(f);
}

rs_err api_ledger_fin_create(server *sv, const char *project, int64_t job_id, const char *kind,
                             const cJSON *params, api_ledger_fin **out, rs_error *e)
{
    api_ledger_fin *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    const task_kind *k = task_kind_find(kind);
    f->data_dir = server_config(sv)->data_dir;
    f->j = (ledger_job_spec){
        .project = project,
        .job_id = job_id,
        .kind = kind,
        .likeness = k != NULL && k->likeness != NULL ? k->likeness(params) : 0,
        .params = params,
        .since_ms = job_created_at(store_sqlite(server_store(sv)), job_id),
    };
    rs_err rc = RS_OK;
    if (strcmp(kind, "ingest") != 0) {
        /* The authorising event the outputs' labels name, if the job has
         * one: read here because phase B may not touch the store. */
        ledger *l = NULL;
        rc = open_ledger(sv, &l, e);
        if (rc == RS_OK) {
            rc = ledger_job_authorisation(l, project, job_id, f->j.since_ms, f->auth, &f->have_auth,
                                          e);
        }
        ledger_close(l);
    }
    if (rc != RS_OK) {
        api_ledger_fin_destroy(f);
        return rc;
    }
    *out = f;
    return RS_OK;
}

rs_err api_ledger_fin_prepare(api_ledger_fin *f, const cJSON *job_result, const cJSON *clips,
                              bool (*stop)(void *ud), void *stop_ud, rs_error *e)
{
    ledger_job_prep_destroy(f->prep);
    f->prep = NULL;
    if (strcmp(f->j.kind, "ingest") != 0 &&
        cJSON_GetObjectItemCaseSensitive(job_result, "alterations") == NULL) {
        return RS_OK;
    }
    f->j.result = job_result;
    f->j.clips = clips;
    return ledger_job_prepare(f->data_dir, &f->j, f->have_auth ? f->auth : NULL, stop, stop_ud,
                              &f->prep, e);
}

rs_err api_ledger_fin_append(server *sv, api_ledger_fin *f, int64_t now_ms, rs_error *e)
{
    if (f->prep == NULL) {
        return RS_OK;
    }
    ledger *l = NULL;
    rs_err rc = open_ledger(sv, &l, e);
    if (rc == RS_OK) {
        rc = ledger_job_append(l, &f->j, f->prep, now_ms, e);
    }
    ledger_close(l);
    return rc;
}

rs_err api_ledger_job_finalized(server *sv, const char *project, int64_t job_id, const char *kind,
                                const cJSON *params, const cJSON *job_result, const cJSON *clips,
                                int64_t now_ms, rs_error *e)
{
    if (strcmp(kind, "ingest") != 0 &&
        cJSON_GetObjectItemCaseSensitive(job_result, "alterations") == NULL) {
        return RS_OK;
    }
    api_ledger_fin *f = NULL;
    rs_err rc = api_ledger_fin_create(sv, project, job_id, kind, params, &f, e);
    if (rc == RS_OK) {
        rc = api_ledger_fin_prepare(f, job_result, clips, NULL, NULL, e);
    }
    if (rc == RS_OK) {
        rc = api_ledger_fin_append(sv, f, now_ms, e);
    }
    api_ledger_fin_destroy(f);
    return rc;
}

/* ---- helpers ------------------------------------------------------------ */

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decoded value of key in a query string into out; false if absent. */
static bool query_get(const char *q, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    const char *p = q;
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t k = 0;
            for (size_t i = kl + 1; i < len && k + 1 < outlen; i++) {
                if (p[i] == '%' && i + 2 < len + 1 && hexv(p[i + 1]) >= 0 && hexv(p[i + 2]) >= 0) {
                    out[k++] = (char)(hexv(p[i + 1]) * 16 + hexv(p[i + 2]));
                    i += 2;
                } else if (p[i] == '+') {
                    out[k++] = ' ';
                } else {
                    out[k++] = p[i];
                }
            }
            out[k] = '\0';
            return true;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return false;
}

/* The project must exist and be visible to the caller (404 otherwise, so
 * another tenant's project names cannot be probed). */
static bool project_visible(server *sv, const api_call *call, const char *project, api_result *res)
{
    sqlite3 *db = store_sqlite(server_store(sv));
    sqlite3_stmt *st = NULL;
    bool found = false;
    char tenant[128] = "";
    if (sqlite3_prepare_v2(db, "SELECT coalesce(tenant, '') FROM project WHERE name = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            found = true;
            snprintf(tenant, sizeof tenant, "%s", (const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
    }
    if (!found || !auth_sees(call->who, tenant)) {
        api_result_error(res, 404, "project %s: not found", project);
        return false;
    }
    return true;
}

/* As project_visible, but a project that does not exist yet is created for
 * the caller's tenant (as a submit would), so consent can be recorded
 * before the first job. */
static bool project_ensure(server *sv, const api_call *call, const char *project, api_result *res)
{
    size_t n = strlen(project);
    bool ok = n > 0 && n <= 64 && project[0] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        char ch = project[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '_' || ch == '-';
    }
    if (!ok) {
        api_result_error(res, 400, "body.project: 1-64 of A-Z a-z 0-9 . _ - (not starting with .)");
        return false;
    }
    sqlite3 *db = store_sqlite(server_store(sv));
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO project(name, tenant, created_at) "
                           "VALUES(?, ?, ?)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
        if (strcmp(call->who->tenant, "*") != 0) {
            sqlite3_bind_text(st, 2, call->who->tenant, -1, SQLITE_STATIC);
        }
        sqlite3_bind_int64(st, 3, call->now_ms);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    return project_visible(sv, call, project, res);
}

static bool need(const api_call *call, auth_cap cap, api_result *res)
{
    if (!auth_can(call->who, cap)) {
        api_result_error(res, 403, "this token's role may not do that");
        return false;
    }
    return true;
}

static bool need_project(server *sv, const api_call *call, char *project, size_t n, api_result *res)
{
    if (!query_get(call->query, "project", project, n) || project[0] == '\0') {
        api_result_error(res, 400, "project: query parameter required");
        return false;
    }
    return project_visible(sv, call, project, res);
}

static void fail_rc(api_result *res, rs_err rc, const rs_error *e)
{
    api_result_error(res, rc == RS_EPERM ? 403 : api_status_for(rc), "%s", rs_error_text(e));
}

/* ---- routes ------------------------------------------------------------- */

static void consents_add(server *sv, ledger *l, const api_call *call, api_result *res)
{
    const cJSON *b = call->body;
    if (!cJSON_IsObject(b)) {
        api_result_error(res, 400, "body: a JSON object required");
        return;
    }
    static const char *const known[] = {"performer", "project",    "kinds",        "use",
                                        "territory", "expires_at", "document_hash"};
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, b)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
            ok = ok || strcmp(it->string, known[i]) == 0;
        }
        if (!ok) {
            api_result_error(res, 400, "body.%s: unknown field", it->string);
            return;
        }
    }
    ledger_consent_spec c = {
        .performer = body_str(b, "performer"),
        .project = body_str(b, "project"),
        .use = body_str(b, "use"),
        .territory = body_str(b, "territory"),
        .document_hash = body_str(b, "document_hash"),
    };
    if (c.project == NULL) {
        api_result_error(res, 400, "body.project: required");
        return;
    }
    if (!project_ensure(sv, call, c.project, res)) {
        return;
    }
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(b, "kinds");
    cJSON_ArrayForEach(it, kinds)
    {
        unsigned k = cJSON_IsString(it) ? ledger_likeness_parse(it->valuestring) : 0;
        if (k == 0) {
            api_result_error(res, 400, "body.kinds: each must be face, eyes, voice or body");
            return;
        }
        c.kinds |= k;
    }
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(b, "expires_at");
    if (exp != NULL && !cJSON_IsNull(exp)) {
        if (!cJSON_IsNumber(exp) || exp->valuedouble < 0 || exp->valuedouble > 9e15) {
            api_result_error(res, 400, "body.expires_at: milliseconds since the epoch");
            return;
        }
        c.expires_at = (int64_t)exp->valuedouble;
    }
    int64_t id = 0;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = ledger_consent_add(l, &c, call->now_ms, &id, &e);
    cJSON *out = NULL;
    if (rc == RS_OK) {
        rc = ledger_consent_get(l, id, call->now_ms, &out, &e);
    }
    if (rc != RS_OK) {
        fail_rc(res, rc, &e);
        return;
    }
    res->status = 201;
    res->json = cJSON_CreateObject();
    cJSON_AddItemToObject(res->json, "consent", out);
}

static void consents_route(server *sv, ledger *l, const api_call *call, const char *rest,
                           api_result *res)
{
    rs_error e;
    rs_error_clear(&e);
    if (rest[0] == '\0') {
        if (strcmp(call->method, "POST") == 0) {
            if (need(call, AUTH_CAN_OPERATE, res)) {
                consents_add(sv, l, call, res);
            }
            return;
        }
        if (strcmp(call->method, "GET") != 0) {
            api_result_error(res, 405, "method %s not allowed (GET, POST)", call->method);
            return;
        }
        if (!need(call, AUTH_CAN_READ, res)) {
            return;
        }
        char project[129] = "", performer[256] = "";
        bool hp = query_get(call->query, "project", project, sizeof project);
        bool hf = query_get(call->query, "performer", performer, sizeof performer);
        if (hp && !project_visible(sv, call, project, res)) {
            return;
        }
        if (!hp && strcmp(call->who->tenant, "*") != 0) {
            api_result_error(res, 400, "project: query parameter required");
            return;
        }
        cJSON *arr = NULL;
        rs_err rc = ledger_consent_list(l, hp ? project : NULL, hf ? performer : NULL, call->now_ms,
                                        &arr, &e);
        if (rc != RS_OK) {
            fail_rc(res, rc, &e);
            return;
        }
        res->json = cJSON_CreateObject();
        cJSON_AddItemToObject(res->json, "consents", arr);
        return;
    }
    char *end = NULL;
    long long id = strtoll(rest + 1, &end, 10);
    if (rest[0] != '/' || id <= 0 || end == NULL || strcmp(end, "/revoke") != 0) {
        api_result_error(res, 404, "no route for %s %s", call->method, call->path);
        return;
    }
    if (strcmp(call->method, "POST") != 0) {
        api_result_error(res, 405, "method %s not allowed (POST)", call->method);
        return;
    }
    if (!need(call, AUTH_CAN_OPERATE, res)) {
        return;
    }
    cJSON *c = NULL;
    rs_err rc = ledger_consent_get(l, id, call->now_ms, &c, &e);
    if (rc != RS_OK) {
        fail_rc(res, rc, &e);
        return;
    }
    bool vis = project_visible(sv, call, cJSON_GetObjectItem(c, "project")->valuestring, res);
    cJSON_Delete(c);
    if (!vis) {
        api_result_error(res, 404, "consent %lld: not found", id);
        return;
    }
    const char *reason = body_str(call->body, "reason");
    rc = ledger_consent_revoke(l, id, reason != NULL ? reason : "", call->now_ms, &e);
    if (rc == RS_OK) {
        rc = ledger_consent_get(l, id, call->now_ms, &c, &e);
    }
    if (rc != RS_OK) {
        fail_rc(res, rc, &e);
        return;
    }
    res->json = cJSON_CreateObject();
    cJSON_AddItemToObject(res->json, "consent", c);
}

static void mask_route(server *sv, const api_call *call, const char *hash, api_result *res)
{
    if (strlen(hash) != 64 || strspn(hash, "0123456789abcdef") != 64) {
        api_result_error(res, 400, "mask hash: expected 64 lower-case hex digits");
        return;
    }
    char dir[4096], path[4200];
    ledger_masks_dir(server_config(sv)->data_dir, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s.rsmask", dir, hash);
    char *buf = NULL;
    size_t len = 0;
    rs_error e;
    if (rs_fs_read_all(path, (size_t)1 << 30, &buf, &len, &e) != RS_OK) {
        api_result_error(res, 404, "mask %s: not found", hash);
        return;
    }
    /* The reply path sends text; hex keeps masks (which hold NULs) intact. */
    res->text = malloc(2 * len + 1);
    if (res->text == NULL) {
        free(buf);
        api_result_error(res, 500, "out of memory");
        return;
    }
    ledger_hex((const unsigned char *)buf, len, res->text);
    free(buf);
    res->content_type = "text/plain";
}

static void audit_record(server *sv, ledger *l, const api_call *call, api_result *res)
{
    const cJSON *b = call->body;
    const char *project = body_str(b, "project");
    if (project == NULL) {
        api_result_error(res, 400, "body.project: required");
        return;
    }
    if (!project_visible(sv, call, project, res)) {
        return;
    }
    cJSON *f = cJSON_CreateObject();
    static const char *const keep[] = {"subject", "ok", "frames", "failures", "head", "coverage"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, keep[i]);
        if (v != NULL && !cJSON_IsObject(v) && !cJSON_IsArray(v)) {
            cJSON_AddItemToObject(f, keep[i], cJSON_Duplicate(v, true));
        }
    }
    cJSON_AddNumberToObject(f, "token", (double)call->who->token_id);
    int64_t seq = 0;
    char hash[LEDGER_HEX];
    rs_error e;
    rs_err rc = ledger_append(l, project, "audit", f, call->now_ms, &seq, hash, &e);
    cJSON_Delete(f);
    if (rc != RS_OK) {
        fail_rc(res, rc, &e);
        return;
    }
    res->status = 201;
    res->json = cJSON_CreateObject();
    cJSON_AddNumberToObject(res->json, "seq", (double)seq);
    cJSON_AddStringToObject(res->json, "hash", hash);
}

static void ledger_handle(server *sv, const api_call *call, api_result *res)
{
    ledger *l = NULL;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = open_ledger(sv, &l, &e);
    if (rc != RS_OK) {
        fail_rc(res, rc, &e);
        return;
    }
    const char *rest = call->rest;
    bool get = strcmp(call->method, "GET") == 0;
    char project[129];
    if (strncmp(rest, "/consents", 9) == 0 && (rest[9] == '\0' || rest[9] == '/')) {
        consents_route(sv, l, call, rest + 9, res);
    } else if (strcmp(rest, "/events") == 0 || rest[0] == '\0') {
        if (!get) {
            api_result_error(res, 405, "method %s not allowed (GET)", call->method);
        } else if (need(call, AUTH_CAN_AUDIT, res) &&
                   need_project(sv, call, project, sizeof project, res)) {
            cJSON *arr = NULL;
            rc = ledger_events(l, project, &arr, &e);
            if (rc == RS_ENOENT) {
                arr = cJSON_CreateArray();
                rc = RS_OK;
            }
            if (rc != RS_OK) {
                fail_rc(res, rc, &e);
            } else {
                res->json = cJSON_CreateObject();
                cJSON_AddItemToObject(res->json, "events", arr);
            }
        }
    } else if (strcmp(rest, "/export") == 0 || strcmp(rest, "/pubkey") == 0) {
        if (!get) {
            api_result_error(res, 405, "method %s not allowed (GET)", call->method);
        } else if (need(call, AUTH_CAN_AUDIT, res) &&
                   need_project(sv, call, project, sizeof project, res)) {
            if (strcmp(rest, "/export") == 0) {
                char *text = NULL;
                size_t len = 0;
                rc = ledger_export(l, project, true, call->now_ms, &text, &len, &e);
                if (rc != RS_OK) {
                    fail_rc(res, rc, &e);
                } else {
                    res->text = text;
                    res->content_type = "application/x-ndjson";
                }
            } else {
                ledger_key k;
                rc = ledger_key_load(server_config(sv)->data_dir, project, true, &k, &e);
                if (rc != RS_OK) {
                    fail_rc(res, rc, &e);
                } else {
                    char hex[LEDGER_HEX];
                    ledger_hex(k.pk, 32, hex);
                    ledger_key_wipe(&k);
                    res->json = cJSON_CreateObject();
                    cJSON_AddStringToObject(res->json, "project", project);
                    cJSON_AddStringToObject(res->json, "pubkey", hex);
                }
            }
        }
    } else if (strncmp(rest, "/masks/", 7) == 0) {
        if (!get) {
            api_result_error(res, 405, "method %s not allowed (GET)", call->method);
        } else if (need(call, AUTH_CAN_AUDIT, res)) {
            mask_route(sv, call, rest + 7, res);
        }
    } else if (strcmp(rest, "/audit") == 0) {
        if (strcmp(call->method, "POST") != 0) {
            api_result_error(res, 405, "method %s not allowed (POST)", call->method);
        } else if (need(call, AUTH_CAN_AUDIT, res)) {
            audit_record(sv, l, call, res);
        }
    } else {
        api_result_error(res, 404, "no route for %s %s", call->method, call->path);
    }
    ledger_close(l);
}

const api_ext_route api_ledger_route = {
    .prefix = "/api/v1/ledger",
    .handle = ledger_handle,
};
