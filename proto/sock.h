/*
 * sock.h: closing an nng socket without hanging the caller.
 *
 * nng 1.5.2 (Debian 12's) can block forever in nng_close while a pipe that
 * is still negotiating is torn down (nanomsg/nng#1543, fixed after 1.5.2):
 * seen here as rushesd never finishing a SIGTERM under load. A process that
 * is stopping must not wait on that, so the close runs on its own thread
 * and the caller waits a bounded time.
 */
#ifndef RS_PROTO_SOCK_H
#define RS_PROTO_SOCK_H

#include <nng/nng.h>

#include "err.h"

/*
 * Closes s, waiting at most timeout_ms. RS_OK: closed. RS_ETIMEDOUT: the
 * close is still stuck inside nng; it goes on on a detached thread and the
 * socket must not be used again (the caller may go on stopping; memory nng
 * holds for it is not freed). RS_ENOMEM/RS_EIO: no thread could be started,
 * nothing was closed.
 */
rs_err proto_sock_close_bounded(nng_socket s, int timeout_ms, rs_error *e);

#endif
