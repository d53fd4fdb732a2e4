/*
 * net.h: the worker's side of the nng REQ/REP link to rushesd.
 *
 * Each request gets its own nng context and aio, so several can be out at
 * once (a lease, a heartbeat, reports). nng completes them on its own
 * threads; the completion is handed to the libuv loop with a uv_async_t and
 * the callback runs on the loop's thread, never blocking it. A request that
 * gets no answer within its timeout fails with RS_ETIMEDOUT; the socket
 * keeps redialling on its own while the daemon is down.
 */
#ifndef RS_WORKER_NET_H
#define RS_WORKER_NET_H

#include <stdint.h>

#include <uv.h>

#include "err.h"
#include "proto.h"

typedef struct net net;

/*
 * Called on the loop thread. rc == RS_OK: reply is the decoded answer (its
 * type may be PROTO_ERROR); the callee may keep what reply owns by
 * zeroing those fields, the rest is freed after it returns. rc != RS_OK: no
 * answer (timeout, closed, undecodable), e says why, reply is NULL.
 */
typedef void (*net_done_fn)(void *ud, rs_err rc, proto_msg *reply, const rs_error *e);

/* Opens a REQ socket dialling url (non-blocking: a down daemon is fine). */
rs_err net_create(uv_loop_t *loop, const char *url, net **out, rs_error *e);

/*
 * Sends req (its id is set here) and calls done once with the reply or the
 * failure. On an immediate failure (encode, allocation) returns it and done
 * is not called.
 */
rs_err net_request(net *n, proto_msg *req, uint32_t timeout_ms, net_done_fn done, void *ud,
                   rs_error *e);

/* Requests not yet answered. */
size_t net_pending(const net *n);

/* Closes the socket and frees every request still out without calling its
 * callback. Accepts NULL. Loop thread only, and never from inside a
 * net_done_fn (it would free the request being completed). */
void net_destroy(net *n);

#endif
