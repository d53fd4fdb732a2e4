/*
 * api.h: the REST API of docs/API.md on nng's HTTP server.
 *
 * One catch-all handler receives every request on an nng thread, reads the
 * body itself (so an oversized body gets our 413 JSON error rather than
 * nng's HTML 400), routes it, validates the query and body and, for a
 * submit, runs the kind's plan() against the media roots. Anything that
 * needs the store becomes one srv_item for the loop (server.h); the reply
 * is sent only after the batch that applied it committed.
 */
#ifndef RSD_API_H
#define RSD_API_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "server.h"

typedef struct api api;

/* Starts the HTTP server on cfg->api_listen. */
rs_err api_create(server *sv, const rsd_config *cfg, api **out, rs_error *e);
/*
 * Loop thread, inside a batch: validates, plans and inserts a job from a
 * submit body (docs/API.md) for project, owned by tenant ("" / NULL =
 * farm-wide) if the project is new. Used by schedules.
 */
rs_err api_submit_json(api *a, const char *project, const char *tenant, const char *job_json,
                       int64_t now_ms, int64_t *job_id, rs_error *e);

/* Stops accepting and closes connections. Safe to call twice. */
void api_stop(api *a);
/* Stops if needed and frees. Accepts NULL. */
void api_destroy(api *a);

#endif
