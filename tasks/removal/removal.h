/*
 * removal.h: the wire/rig removal job kinds, as two jobs in the queue:
 *   removal_train  one task: stage 1 (propagate.h) on frames with synthetic
 *                  wire holes drawn over known pixels, then a U-Net trained
 *                  with masked L1 to turn [holed frame, mask, propagated,
 *                  confidence, spatial fill] into RGB; checkpoints every N
 *                  steps into a work folder under the data dir, so a retried
 *                  task resumes from the last one; finalize puts the model
 *                  (checkpoint, hash, lineage) in the job result, where
 *                  rushesd's model hook (daemon/api_model.c) registers it.
 *   removal_infer  tasks by frame range: stage 1 on the real masks, the
 *                  model inside the mask, feathered composite; every pixel
 *                  outside the applied mask is left bit-identical; writes
 *                  outputs and per-frame alteration masks atomically;
 *                  finalize lists "alterations" for the ledger and writes a
 *                  contact sheet (before / mask / after).
 * `rushes submit removal` submits both, infer depending on train.
 */
#ifndef RS_TASKS_REMOVAL_H
#define RS_TASKS_REMOVAL_H

#include <stddef.h>
#include <stdint.h>

#include "task.h"

extern const task_kind task_kind_removal_train;
extern const task_kind task_kind_removal_infer;

/* Where a registered model's checkpoint lives:
 * <data_dir>/models/<project>/model-<id>.safetensors. */
void removal_model_path(const char *data_dir, const char *project, int64_t id, char *out,
                        size_t outlen);

/* Where a finished train job leaves its model:
 * <data_dir>/removal/<project>/job-<id>/model.safetensors. */
void removal_train_model_path(const char *data_dir, const char *project, int64_t job_id, char *out,
                              size_t outlen);

/* Test hook: when the environment has RUSHES_REMOVAL_STOP_AT=N, a train
 * task returns RS_ECANCELED right after writing its step-N checkpoint (as if
 * its worker died there), so tests can check that a retry resumes. */
#define REMOVAL_STOP_AT_ENV "RUSHES_REMOVAL_STOP_AT"

/* Internal (removal.c <-> run.c). */
rs_err removal_train_run(const cJSON *tp, const task_io *io, cJSON **result, rs_error *e);
rs_err removal_infer_run(const cJSON *tp, const task_io *io, cJSON **result, rs_error *e);
void removal_logf(const task_io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
