/*
 * ingest.c: ingest's run step (one task, in a worker's child process) and
 * the kind table. For each file of the task: stat, XXH3 over the whole file,
 * probe. A file that cannot be read fails the task with an error naming it
 * (a hash that silently skipped a file would make the MHL lie); a file that
 * reads fine but is not media is recorded with "probe": null and the
 * reason, because sidecars (reports, LUTs, audio logs) belong in the MHL too.
 *
 * task params {"root": absolute folder, "files": [relative paths]}
 * result {"root", "files": [{"path","size","mtime","xxh3","probe"[,"probe_error"]}]}
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "hash.h"
#include "ingest.h"
#include "probe.h"

static rs_err run_parse(const cJSON *params, const char **root, const cJSON **files,
                        rs_error *e)
{
    if (!cJSON_IsObject(params)) {
        return rs_error_set(e, RS_EINVAL, "task params: must be an object");
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, params)
    {
        if (strcmp(it->string, "root") != 0 && strcmp(it->string, "files") != 0) {
            return rs_error_set(e, RS_EINVAL, "task params.%s: unknown field for kind ingest",
                                it->string);
        }
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(params, "root");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(params, "files");
    if (!cJSON_IsString(r) || r->valuestring[0] != '/' || strlen(r->valuestring) >= PATH_MAX) {
        return rs_error_set(e, RS_EINVAL, "task params.root: must be an absolute path");
    }
    if (!cJSON_IsArray(f) || cJSON_GetArraySize(f) == 0) {
        return rs_error_set(e, RS_EINVAL, "task params.files: must be a non-empty array");
    }
    cJSON_ArrayForEach(it, f)
    {
        if (!cJSON_IsString(it) || !ingest_relpath_ok(it->valuestring)) {
            return rs_error_set(e, RS_EINVAL,
                                "task params.files: %s: must be a relative path without '..'",
                                cJSON_IsString(it) ? it->valuestring : "(not a string)");
        }
    }
    *root = r->valuestring;
    *files = f;
    return RS_OK;
}

static rs_err ingest_one(const char *root, const char *rel, cJSON *arr, rs_error *e)
{
    char full[PATH_MAX];
    int n = strcmp(root, "/") == 0 ? snprintf(full, sizeof full, "/%s", rel)
                                   : snprintf(full, sizeof full, "%s/%s", root, rel);
    if (n < 0 || (size_t)n >= sizeof full) {
        return rs_error_set(e, RS_EINVAL, "%s/%s: path too long", root, rel);
    }
    struct stat st;
    if (stat(full, &st) != 0) {
        int err = errno;
        return rs_error_set(e, err == ENOENT ? RS_ENOENT : RS_EIO, "%s: %s", full,
                            err == ENOENT ? "no such file" : strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        return rs_error_set(e, RS_EINVAL, "%s: not a regular file", full);
    }
    rs_file_hash h;
    rs_err rc = rs_hash_file(full, false, &h, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *probe = NULL;
    rs_error perr;
    rs_error_clear(&perr);
    rc = media_probe(full, &probe, &perr);
    if (rc != RS_OK && rc != RS_EFORMAT) {
        return rs_error_set(e, rc, "%s", rs_error_text(&perr));
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        cJSON_Delete(probe);
        return rs_error_set(e, RS_ENOMEM, "%s: out of memory", full);
    }
    cJSON_AddItemToArray(arr, o);
    char hex[RS_HASH_HEX_LEN];
    char mtime[40];
    rs_hash_hex(h.xxh3, hex);
    rs_clock_iso8601((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000, mtime,
                     (int)sizeof mtime);
    cJSON_AddStringToObject(o, "path", rel);
    cJSON_AddNumberToObject(o, "size", (double)h.size);
    cJSON_AddStringToObject(o, "mtime", mtime);
    cJSON_AddStringToObject(o, "xxh3", hex);
    if (probe != NULL) {
        cJSON_AddItemToObject(o, "probe", probe);
    } else {
        cJSON_AddNullToObject(o, "probe");
        cJSON_AddStringToObject(o, "probe_error", rs_error_text(&perr));
    }
    return RS_OK;
}

rs_err ingest_run(const cJSON *params, const task_io *io, cJSON **result, rs_error *e)
{
    const char *root = NULL;
    const cJSON *files = NULL;
    rs_err rc = run_parse(params, &root, &files, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    if (r == NULL || arr == NULL) {
        cJSON_Delete(r);
        cJSON_Delete(arr);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(r, "root", root);
    cJSON_AddItemToObject(r, "files", arr);
    int total = cJSON_GetArraySize(files);
    int done = 0;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, files)
    {
        rc = ingest_one(root, it->valuestring, arr, e);
        if (rc != RS_OK) {
            task_logf(io, "ingest: %s", rs_error_text(e));
            cJSON_Delete(r);
            return rc;
        }
        done++;
        if (io != NULL && io->progress != NULL) {
            io->progress(io->ud, (double)done / total, it->valuestring);
        }
    }
    *result = r;
    return RS_OK;
}

const task_kind task_kind_ingest = {
    .name = "ingest",
    .plan = ingest_plan,
    .run = ingest_run,
    .finalize = ingest_finalize,
};
