/*
 * store_model.h: the model registry in the store (table model, sql/
 * migrations/0001_initial.sql): one row per trained mini-model with its
 * lineage. The row's metrics column holds the lineage that has no column of
 * its own (steps, final loss, mask hashes, config, checkpoint path).
 * Called on the loop thread, inside a batch, like the rest of the store.
 */
#ifndef RSD_STORE_MODEL_H
#define RSD_STORE_MODEL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "store.h"

typedef struct store_model_spec {
    const char *project;         /* must exist (the job's project) */
    const char *task_kind;       /* "removal" */
    int64_t job_id;              /* the train job; one model per job */
    const cJSON *trained_on;     /* array of frame/clip hashes; NULL = [] */
    int64_t parent_id;           /* 0 = trained from scratch */
    const cJSON *metrics;        /* object; NULL = {} */
    const char *checkpoint_hash; /* required */
} store_model_spec;

/* Inserts the model, or when job_id already has one returns that one's id
 * (*existed true), so a finalize that runs twice registers once. A
 * parent_id naming no model -> RS_ENOENT. */
rs_err store_model_register(store *s, const store_model_spec *spec, int64_t now_ms, int64_t *id,
                            bool *existed, rs_error *e);

/* [{"id","project","task_kind","job_id","trained_on","parent_id","metrics",
 *   "checkpoint_hash","created_at"}], newest first; project / tenant NULL = any. */
rs_err store_model_list(store *s, const char *project, const char *tenant, cJSON **out_array,
                        rs_error *e);

/* One model by id (same object shape); RS_ENOENT "no model N". tenant NULL = any. */
rs_err store_model_get(store *s, int64_t id, const char *tenant, cJSON **out, rs_error *e);

#endif
