/*
 * dispatch.h: the worker socket (nng REP, workers are REQ), PROTOCOL.md.
 *
 * Several nng contexts each loop recv -> hand to the loop -> reply -> recv,
 * so many workers are served at once and their requests share a group
 * commit. Messages are decoded on nng's thread (proto_decode); a bad one is
 * answered there with an error reply and the daemon keeps serving. The loop
 * keeps each worker's fit (kinds, pool, device memory) in memory, keyed by
 * worker id; a request naming an id it does not know (e.g. after a daemon
 * restart) gets "unknown_worker" so the worker says hello again.
 */
#ifndef RSD_DISPATCH_H
#define RSD_DISPATCH_H

#include "config.h"
#include "err.h"
#include "server.h"

typedef struct dispatch dispatch;

/* Listens on cfg->worker_listen. */
rs_err dispatch_create(server *sv, const rsd_config *cfg, dispatch **out, rs_error *e);
/* Closes the socket; in-flight receives end. Safe to call twice. */
void dispatch_stop(dispatch *d);
/* Stops if needed and frees (waits for nng callbacks). Accepts NULL. */
void dispatch_destroy(dispatch *d);

#endif
