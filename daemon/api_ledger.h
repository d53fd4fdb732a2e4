/*
 * api_ledger.h: the compliance ledger inside rushesd (docs/COMPLIANCE.md).
 *
 * REST routes under /api/v1/ledger (an api_ext_route, api_ext.h): events,
 * the signed JSON lines export, the project's public key, masks by hash,
 * the consent registry (list, add, revoke) and the record of an audit.
 * And the consent gate the daemon runs twice per likeness job: at submit
 * (api.c refuses the job, naming the performer) and at dispatch
 * (dispatch.c: a revocation in between blocks the job before it runs).
 * All run on the loop thread, inside the batch.
 */
#ifndef RSD_API_LEDGER_H
#define RSD_API_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "api_ext.h"
#include "err.h"
#include "server.h"

extern const api_ext_route api_ledger_route;

/* RS_OK, or RS_EPERM / RS_EINVAL naming the performer or field, for a job
 * of kind with params_json in project. */
rs_err api_ledger_submit_gate(server *sv, const char *project, const char *kind,
                              const char *params_json, int64_t now_ms, rs_error *e);

/* Re-checks the job of a task just leased. If its consent no longer holds,
 * cancels the job (its attempts included), records why in the job's error,
 * and returns true: the caller hands the worker no task. */
bool api_ledger_lease_blocked(server *sv, int64_t job_id, int64_t now_ms);

/*
 * Called after a task of job_id was leased and its task_params parsed (the
 * lease reply's params, which this may extend). For a kind that alters
 * footage (task_kind.alters), appends the job's "alteration_authorised"
 * ledger event once per job (ledger_job_authorise: kind, model, params hash,
 * performers and the consents the gate uses now) and adds
 * "ledger": {"event": HASH, "project": P} to task_params, which the kind
 * writes into its outputs' labels. Other kinds: nothing, true. false (logged)
 * when the event cannot be appended: the caller hands out no task and the
 * lease runs out, rather than let unlabelled alterations be made.
 */
bool api_ledger_lease_authorise(server *sv, int64_t job_id, cJSON *task_params, int64_t now_ms);

/*
 * Finalise hook (server.c, once per job, in the batch that completes it):
 * records what the job did. An ingest job appends an "ingest" event (root,
 * counts, the MHL's path and SHA-256, every clip's hash). A job whose
 * result lists "alterations": [{"frame","source","output"[,"model"]}]
 * (how an altering kind hands its frames to the ledger) gets each recorded
 * through ledger_record_alteration, with the consents its likeness gate
 * used; a failure (an output that cannot be read, consent revoked while the
 * job ran) is returned, and the job fails rather than deliver unrecorded
 * alterations.
 */
rs_err api_ledger_job_finalized(server *sv, const char *project, int64_t job_id, const char *kind,
                                const cJSON *params, const cJSON *job_result, const cJSON *clips,
                                int64_t now_ms, rs_error *e);

/*
 * The same hook in three phases, so the slow part runs off the loop
 * (server.c, docs/ARCHITECTURE.md "Finalisation"):
 *  create   loop thread: what the store knows (the job's submit time and
 *           its "alteration_authorised" event). project, kind and params
 *           are borrowed and must outlive the handle.
 *  prepare  any thread, no store: for an ingest job the MHL's hash; for a
 *           result with "alterations" every frame read, hashed, decoded,
 *           diffed, its mask stored by hash and its labels checked
 *           (ledger_job_prepare). job_result and clips are borrowed until
 *           destroy. stop (may be NULL) is polled between frames; true
 *           abandons the work (RS_ECANCELED). Nothing is appended, so a
 *           prepare that is abandoned or repeated changes no record.
 *  append   loop thread, in the batch that completes the job: the consent
 *           gate as of now_ms, then the events. Nothing to record: RS_OK.
 */
typedef struct api_ledger_fin api_ledger_fin;

rs_err api_ledger_fin_create(server *sv, const char *project, int64_t job_id, const char *kind,
                             const cJSON *params, api_ledger_fin **out, rs_error *e);
rs_err api_ledger_fin_prepare(api_ledger_fin *f, const cJSON *job_result, const cJSON *clips,
                              bool (*stop)(void *ud), void *stop_ud, rs_error *e);
rs_err api_ledger_fin_append(server *sv, api_ledger_fin *f, int64_t now_ms, rs_error *e);
void api_ledger_fin_destroy(api_ledger_fin *f);

#endif
