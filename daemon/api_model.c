/*
 * api_model.c: the model registry's REST routes and finalize hook
 * (api_model.h). A training kind's finalize only describes the model in its
 * job result; this hook, on the loop inside the finalize batch, gives it a
 * registry row and a stable checkpoint path, so the row and the job's
 * success commit together.
 */
#include "api_model.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"
#include "store.h"
#include "store_model.h"

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static rs_err copy_file(const char *src, const char *dst, rs_error *e)
{
    char *buf = NULL;
    size_t len = 0;
    rs_err rc = rs_fs_read_all(src, (size_t)1 << 31, &buf, &len, e);
    if (rc != RS_OK) {
        return rc;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", dst);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        rc = rs_fs_mkdirs(dir, e);
    }
    if (rc == RS_OK) {
        rc = rs_fs_write_atomic(dst, buf, len, e);
    }
    free(buf);
    return rc;
}

/* <data_dir>/models/<project>/.staged-<hash>.safetensors, or false when
 * the hash is not plain hex (it comes from a worker's result). */
static bool staged_path(const char *data_dir, const char *project, const char *hash, char *out,
                        size_t outlen)
{
    size_t n = strlen(hash);
    if (n == 0 || n > 128 || strspn(hash, "0123456789abcdef") != n) {
        return false;
    }
    int w = snprintf(out, outlen, "%s/models/%s/.staged-%s.safetensors", data_dir, project, hash);
    return w > 0 && (size_t)w < outlen;
}

/* The checkpoint a model result names, resolved inside the data folder. */
static rs_err model_checkpoint(const char *data_dir, const cJSON *m, char *resolved, size_t len,
                               rs_error *e)
{
    const char *ckpt = jstr(m, "checkpoint");
    const char *roots[1] = {data_dir};
    if (ckpt == NULL || rs_fs_resolve_in_roots(ckpt, roots, 1, resolved, len, e) != RS_OK) {
        return rs_error_set(e, RS_EPERM, "result.model.checkpoint: %s is missing or outside %s",
                            ckpt != NULL ? ckpt : "(none)", data_dir);
    }
    return RS_OK;
}

rs_err api_model_fin_stage(const char *data_dir, const char *project, const cJSON *job_result,
                           rs_error *e)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(job_result, "model");
    const char *hash = jstr(m, "checkpoint_hash");
    char staged[PATH_MAX], resolved[PATH_MAX];
    struct stat st;
    if (!cJSON_IsObject(m) || hash == NULL ||
        !staged_path(data_dir, project, hash, staged, sizeof staged) || stat(staged, &st) == 0) {
        return RS_OK; /* nothing to stage, or staged already; phase C says what is wrong */
    }
    if (model_checkpoint(data_dir, m, resolved, sizeof resolved, e) != RS_OK) {
        rs_error_clear(e);
        return RS_OK;
    }
    return copy_file(resolved, staged, e);
}

rs_err api_model_job_finalized(server *sv, const char *project, int64_t job_id, cJSON *job_result,
                               int64_t now_ms, rs_error *e)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(job_result, "model");
    if (!cJSON_IsObject(m)) {
        return RS_OK;
    }
    const char *ckpt = jstr(m, "checkpoint");
    const char *hash = jstr(m, "checkpoint_hash");
    const char *kind = jstr(m, "task_kind");
    if (ckpt == NULL || hash == NULL || kind == NULL) {
        return rs_error_set(e, RS_EINVAL,
                            "result.model: needs task_kind, checkpoint and checkpoint_hash");
    }
    cJSON *metrics = cJSON_CreateObject();
    if (metrics == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    static const char *const keep[] = {"steps", "loss", "masks", "config", "resumed_from"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keep[i]);
        if (v != NULL) {
            cJSON_AddItemToObject(metrics, keep[i], cJSON_Duplicate(v, true));
        }
    }
    const cJSON *parent = cJSON_GetObjectItemCaseSensitive(m, "parent");
    store_model_spec spec = {
        .project = project,
        .task_kind = kind,
        .job_id = job_id,
        .trained_on = cJSON_GetObjectItemCaseSensitive(m, "trained_on"),
        .parent_id = cJSON_IsNumber(parent) ? (int64_t)parent->valuedouble : 0,
        .metrics = metrics,
        .checkpoint_hash = hash,
    };
    const rsd_config *cfg = server_config(sv);
    /* Only a checkpoint inside the data folder is copied into the registry. */
    char resolved[PATH_MAX];
    if (model_checkpoint(cfg->data_dir, m, resolved, sizeof resolved, e) != RS_OK) {
        cJSON_Delete(metrics);
        return RS_EPERM;
    }
    ckpt = resolved;
    char dst[PATH_MAX];
    int64_t id = 0;
    bool existed = false;
    rs_err rc = store_model_register(server_store(sv), &spec, now_ms, &id, &existed, e);
    if (rc == RS_OK) {
        snprintf(dst, sizeof dst, "%s/models/%s/model-%lld.safetensors", cfg->data_dir, project,
                 (long long)id);
        /* The path is recorded in the row's metrics after the fact only in the
         * result: the registry's path is derived from the id. The copy was
         * staged off the loop (api_model_fin_stage); here it only gets its
         * name, or, when nothing was staged, is made now. */
        char staged[PATH_MAX];
        struct stat st;
        if (staged_path(cfg->data_dir, project, hash, staged, sizeof staged) &&
            stat(staged, &st) == 0) {
            rc = rs_fs_rename_durable(staged, dst, e);
        } else {
            rc = copy_file(ckpt, dst, e);
        }
    }
    cJSON_Delete(metrics);
    if (rc == RS_OK) {
        cJSON_DeleteItemFromObjectCaseSensitive(job_result, "model_id");
        cJSON_AddNumberToObject(job_result, "model_id", (double)id);
        cJSON_AddStringToObject(job_result, "model_path", dst);
    }
    return rc;
}

/* ---- routes ------------------------------------------------------------- */

/* Decoded value of key in a query string (no percent-decoding needed for
 * project names, which are [A-Za-z0-9._-]). */
static bool query_get(const char *q, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    const char *p = q;
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = len - kl - 1;
            if (vl >= outlen) {
                return false;
            }
            memcpy(out, p + kl + 1, vl);
            out[vl] = '\0';
            return true;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return false;
}

static void models(server *sv, const api_call *c, api_result *res)
{
    if (strcmp(c->method, "GET") != 0) {
        api_result_error(res, 405, "%s %.200s: only GET", c->method, c->path);
        return;
    }
    if (!auth_can(c->who, AUTH_CAN_READ)) {
        api_result_error(res, 403, "this token cannot read models");
        return;
    }
    const char *tenant = auth_tenant_filter(c->who);
    rs_error e;
    rs_error_clear(&e);
    store *st = server_store(sv);
    if (c->rest[0] == '\0') {
        char project[129];
        bool has = query_get(c->query, "project", project, sizeof project);
        cJSON *arr = NULL;
        rs_err rc = store_model_list(st, has ? project : NULL, tenant, &arr, &e);
        if (rc != RS_OK) {
            api_result_error(res, api_status_for(rc), "%s", rs_error_text(&e));
            return;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "models", arr);
        res->json = o;
        return;
    }
    char *end = NULL;
    long long id = strtoll(c->rest + 1, &end, 10);
    if (c->rest[0] != '/' || end == c->rest + 1 || *end != '\0' || id <= 0) {
        api_result_error(res, 404, "no route for %s %.200s", c->method, c->path);
        return;
    }
    cJSON *m = NULL;
    rs_err rc = store_model_get(st, (int64_t)id, tenant, &m, &e);
    if (rc != RS_OK) {
        api_result_error(res, api_status_for(rc), "%s", rs_error_text(&e));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "model", m);
    res->json = o;
}

const api_ext_route api_model_route = {.prefix = "/api/v1/models", .handle = models};
