/*
 * api_model.h: the model registry in rushesd: the /api/v1/models routes and
 * the finalize hook that registers a model a training job produced.
 */
#ifndef RSD_API_MODEL_H
#define RSD_API_MODEL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "api_ext.h"
#include "err.h"
#include "server.h"

/* GET /api/v1/models[?project=P] -> {"models":[...]}; GET /api/v1/models/ID
 * -> {"model":{...}} (read capability; other tenants' models are 404). */
extern const api_ext_route api_model_route;

/*
 * Called by finalize for every finished job: when job_result carries
 * "model": {"task_kind","checkpoint","checkpoint_hash","trained_on",
 * "masks","config","steps","loss"[,"parent"]}, registers it (once per job),
 * copies the checkpoint to <data_dir>/models/<project>/model-<id>.safetensors
 * (where a later job's "from" finds it) and adds "model_id" to job_result.
 * Other results: nothing.
 */
rs_err api_model_job_finalized(server *sv, const char *project, int64_t job_id, cJSON *job_result,
                               int64_t now_ms, rs_error *e);

/*
 * Phase B of finalisation (a pool thread, no store): copies a model result's
 * checkpoint to <data_dir>/models/<project>/.staged-<hash>.safetensors, so
 * api_model_job_finalized on the loop only renames it into place. Does
 * nothing for other results, a bad hash or a checkpoint outside data_dir
 * (api_model_job_finalized then reports the problem); RS_OK or the copy's
 * error.
 */
rs_err api_model_fin_stage(const char *data_dir, const char *project, const cJSON *job_result,
                           rs_error *e);

#endif
