/*
 * store_model.c: the model registry's rows (store_model.h), through the
 * store's connection (store_sqlite) with statements prepared per call: the
 * registry is written once per training job and read by people, so the
 * store's prepared-statement table is left to the hot paths.
 */
#include "store_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

static rs_err db_err(sqlite3 *db, const char *what, rs_error *e)
{
    return rs_error_set(e, RS_EDB, "model registry: %s: %s", what, sqlite3_errmsg(db));
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL) {
        sqlite3_bind_null(st, i);
    } else {
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    }
}

rs_err store_model_register(store *s, const store_model_spec *spec, int64_t now_ms, int64_t *id,
                            bool *existed, rs_error *e)
{
    sqlite3 *db = store_sqlite(s);
    sqlite3_stmt *st = NULL;
    rs_err rc = RS_OK;
    char *trained = NULL, *metrics = NULL;
    *existed = false;
    if (spec->project == NULL || spec->task_kind == NULL || spec->checkpoint_hash == NULL) {
        return rs_error_set(e, RS_EINVAL, "model: project, task_kind and checkpoint_hash needed");
    }
    if (sqlite3_prepare_v2(db, "SELECT id FROM model WHERE job_id = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        return db_err(db, "prepare", e);
    }
    sqlite3_bind_int64(st, 1, spec->job_id);
    if (spec->job_id > 0 && sqlite3_step(st) == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        *existed = true;
        sqlite3_finalize(st);
        return RS_OK;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (spec->parent_id > 0) {
        if (sqlite3_prepare_v2(db, "SELECT 1 FROM model WHERE id = ?1", -1, &st, NULL) !=
            SQLITE_OK) {
            return db_err(db, "prepare", e);
        }
        sqlite3_bind_int64(st, 1, spec->parent_id);
        bool found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        st = NULL;
        if (!found) {
            return rs_error_set(e, RS_ENOENT, "model: no parent model %lld",
                                (long long)spec->parent_id);
        }
    }
    trained = spec->trained_on != NULL ? cJSON_PrintUnformatted(spec->trained_on) : strdup("[]");
    metrics = spec->metrics != NULL ? cJSON_PrintUnformatted(spec->metrics) : strdup("{}");
    if (trained == NULL || metrics == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO model(project_id, task_kind, job_id, trained_on, "
                           "parent_id, metrics, checkpoint_hash, created_at) "
                           "SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM project WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(db, "prepare", e);
        goto out;
    }
    sqlite3_bind_text(st, 1, spec->project, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, spec->task_kind, -1, SQLITE_TRANSIENT);
    if (spec->job_id > 0) {
        sqlite3_bind_int64(st, 3, spec->job_id);
    } else {
        sqlite3_bind_null(st, 3);
    }
    sqlite3_bind_text(st, 4, trained, -1, SQLITE_TRANSIENT);
    if (spec->parent_id > 0) {
        sqlite3_bind_int64(st, 5, spec->parent_id);
    } else {
        sqlite3_bind_null(st, 5);
    }
    sqlite3_bind_text(st, 6, metrics, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, spec->checkpoint_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 8, now_ms);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_err(db, "insert", e);
        goto out;
    }
    if (sqlite3_changes(db) != 1) {
        rc = rs_error_set(e, RS_ENOENT, "model: no project %s", spec->project);
        goto out;
    }
    *id = sqlite3_last_insert_rowid(db);
out:
    sqlite3_finalize(st);
    free(trained);
    free(metrics);
    return rc;
}

static cJSON *row_json(sqlite3_stmt *st)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }
    cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(o, "project", (const char *)sqlite3_column_text(st, 1));
    cJSON_AddStringToObject(o, "task_kind", (const char *)sqlite3_column_text(st, 2));
    if (sqlite3_column_type(st, 3) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, "job_id");
    } else {
        cJSON_AddNumberToObject(o, "job_id", (double)sqlite3_column_int64(st, 3));
    }
    cJSON *tr = cJSON_Parse((const char *)sqlite3_column_text(st, 4));
    cJSON_AddItemToObject(o, "trained_on", tr != NULL ? tr : cJSON_CreateArray());
    if (sqlite3_column_type(st, 5) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, "parent_id");
    } else {
        cJSON_AddNumberToObject(o, "parent_id", (double)sqlite3_column_int64(st, 5));
    }
    cJSON *m = cJSON_Parse((const char *)sqlite3_column_text(st, 6));
    cJSON_AddItemToObject(o, "metrics", m != NULL ? m : cJSON_CreateObject());
    cJSON_AddStringToObject(o, "checkpoint_hash", (const char *)sqlite3_column_text(st, 7));
    cJSON_AddNumberToObject(o, "created_at", (double)sqlite3_column_int64(st, 8));
    return o;
}

#define MODEL_COLS                                                                                 \
    "SELECT m.id, p.name, m.task_kind, m.job_id, m.trained_on, m.parent_id, m.metrics, "           \
    "m.checkpoint_hash, m.created_at FROM model m JOIN project p ON p.id = m.project_id "

rs_err store_model_list(store *s, const char *project, const char *tenant, cJSON **out_array,
                        rs_error *e)
{
    sqlite3 *db = store_sqlite(s);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           MODEL_COLS "WHERE (?1 IS NULL OR p.name = ?1) "
                                      "AND (?2 IS NULL OR p.tenant = ?2) ORDER BY m.id DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        return db_err(db, "prepare", e);
    }
    bind_opt_text(st, 1, project);
    bind_opt_text(st, 2, tenant);
    cJSON *arr = cJSON_CreateArray();
    rs_err rc = arr != NULL ? RS_OK : rs_error_set(e, RS_ENOMEM, "out of memory");
    int step = SQLITE_ROW;
    while (rc == RS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON_AddItemToArray(arr, row_json(st));
    }
    if (rc == RS_OK && step != SQLITE_DONE) {
        rc = db_err(db, "select", e);
    }
    sqlite3_finalize(st);
    if (rc != RS_OK) {
        cJSON_Delete(arr);
        return rc;
    }
    *out_array = arr;
    return RS_OK;
}

rs_err store_model_get(store *s, int64_t id, const char *tenant, cJSON **out, rs_error *e)
{
    sqlite3 *db = store_sqlite(s);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, MODEL_COLS "WHERE m.id = ?1 AND (?2 IS NULL OR p.tenant = ?2)", -1,
                           &st, NULL) != SQLITE_OK) {
        return db_err(db, "prepare", e);
    }
    sqlite3_bind_int64(st, 1, id);
    bind_opt_text(st, 2, tenant);
    rs_err rc = RS_OK;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *out = row_json(st);
        if (*out == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        }
    } else if (step == SQLITE_DONE) {
        rc = rs_error_set(e, RS_ENOENT, "no model %lld", (long long)id);
    } else {
        rc = db_err(db, "select", e);
    }
    sqlite3_finalize(st);
    return rc;
}
