/*
 * net.c: REQ contexts with aio, completions handed to libuv (see net.h).
 *
 * The aio callback runs on an nng thread and only moves the finished
 * request onto a mutex-guarded list and wakes the loop; decoding, the
 * caller's callback and freeing the aio all happen on the loop thread
 * (an aio cannot be freed from inside its own callback).
 */
#include "net.h"

#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "log.h"
#include "sock.h"

#define NET_CLOSE_MS 3000 /* bounded: see proto/sock.h */
#define NET_RESEND_MS 2000 /* REQ resends an unanswered request; reports are idempotent */

typedef enum net_stage {
    NET_SENDING = 1,
    NET_RECEIVING,
} net_stage;

typedef struct net_req {
    struct net *n;
    nng_ctx ctx;
    nng_aio *aio;
    net_stage stage;
    int rv; /* nng result of the failed stage, 0 if answered */
    nng_msg *reply;
    uint64_t id;
    proto_type type;
    net_done_fn done;
    void *ud;
    struct net_req *next_done; /* completion list (mutex) */
    struct net_req *prev;      /* in-flight list (loop thread) */
    struct net_req *next;
} net_req;

struct net {
    uv_loop_t *loop;
    nng_socket sock;
    char url[512];
    uv_async_t async;
    nng_mtx *mtx;
    net_req *done_head; /* guarded by mtx */
    net_req *done_tail;
    net_req *inflight; /* loop thread only */
    size_t ninflight;
    uint64_t next_id;
};

static void on_aio(void *arg)
{
    net_req *r = arg;
    int rv = nng_aio_result(r->aio);
    if (r->stage == NET_SENDING && rv == 0) {
        r->stage = NET_RECEIVING;
        nng_ctx_recv(r->ctx, r->aio);
        return;
    }
    if (r->stage == NET_SENDING) {
        /* A failed send leaves the message with us. */
        nng_msg *unsent = nng_aio_get_msg(r->aio);
        if (unsent != NULL) {
            nng_msg_free(unsent);
        }
        nng_aio_set_msg(r->aio, NULL);
    } else if (rv == 0) {
        r->reply = nng_aio_get_msg(r->aio);
    }
    r->rv = rv;
    net *n = r->n;
    nng_mtx_lock(n->mtx);
    r->next_done = NULL;
    if (n->done_tail != NULL) {
        n->done_tail->next_done = r;
    } else {
        n->done_head = r;
    }
    n->done_tail = r;
    nng_mtx_unlock(n->mtx);
    uv_async_send(&n->async);
}

static void req_free(net *n, net_req *r)
{
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else if (n->inflight == r) {
        n->inflight = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    n->ninflight--;
    if (r->aio != NULL) {
        nng_aio_free(r->aio); /* waits for a callback still running */
    }
    nng_ctx_close(r->ctx);
    if (r->reply != NULL) {
        nng_msg_free(r->reply);
    }
    free(r);
}

static void complete(net *n, net_req *r)
{
    rs_error err;
    rs_error_clear(&err);
    proto_msg reply;
    proto_msg_init(&reply);
    rs_err rc = RS_OK;
    const char *what = proto_type_name(r->type);
    if (r->rv == NNG_ETIMEDOUT) {
        rc = rs_error_set(&err, RS_ETIMEDOUT, "%s to %s: no answer in time", what, n->url);
    } else if (r->rv != 0) {
        rc = rs_error_set(&err, RS_ENET, "%s to %s: %s", what, n->url, nng_strerror(r->rv));
    } else {
        rc = proto_decode(nng_msg_body(r->reply), nng_msg_len(r->reply), true, &reply, NULL, &err);
        if (rc == RS_OK && reply.id != r->id) {
            /* REQ matches replies to contexts, so this means a daemon bug. */
            rc = rs_error_set(&err, RS_EPROTO, "%s reply: id %llu, expected %llu", what,
                              (unsigned long long)reply.id, (unsigned long long)r->id);
            proto_msg_free(&reply);
        }
    }
    r->done(r->ud, rc, rc == RS_OK ? &reply : NULL, &err);
    proto_msg_free(&reply);
    req_free(n, r);
}

static void on_async(uv_async_t *a)
{
    net *n = a->data;
    nng_mtx_lock(n->mtx);
    net_req *list = n->done_head;
    n->done_head = NULL;
    n->done_tail = NULL;
    nng_mtx_unlock(n->mtx);
    while (list != NULL) {
        net_req *next = list->next_done;
        complete(n, list);
        list = next;
    }
}

/*
 * Dials url. For tls+tcp:// the daemon's certificate must verify against
 * the CA file named by RUSHES_WORKER_CA_FILE (required for TLS: a worker
 * never talks TLS without checking whom to).
 */
static rs_err net_dial(nng_socket sock, const char *url, rs_error *e)
{
    nng_dialer d;
    nng_tls_config *tls = NULL;
    int rv = nng_dialer_create(&d, sock, url);
    if (rv != 0) {
        return rs_error_set(e, RS_ENET, "--server %s: %s", url, nng_strerror(rv));
    }
    if (strncmp(url, "tls+", 4) == 0) {
        const char *ca = getenv("RUSHES_WORKER_CA_FILE");
        if (ca == NULL || ca[0] == '\0') {
            nng_dialer_close(d);
            return rs_error_set(e, RS_EINVAL,
                                "--server %s: set RUSHES_WORKER_CA_FILE to the CA "
                                "that signed rushesd's certificate",
                                url);
        }
        rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT);
        if (rv == 0) {
            rv = nng_tls_config_ca_file(tls, ca);
        }
        if (rv == 0) {
            rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED);
        }
        if (rv == 0) {
            rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
        }
        if (tls != NULL) {
            nng_tls_config_free(tls);
        }
        if (rv != 0) {
            nng_dialer_close(d);
            return rs_error_set(e, RS_ENET, "--server %s: TLS with CA %s: %s", url, ca,
                                nng_strerror(rv));
        }
    }
    rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        return rs_error_set(e, RS_ENET, "--server %s: %s", url, nng_strerror(rv));
    }
    return RS_OK;
}

rs_err net_create(uv_loop_t *loop, const char *url, net **out, rs_error *e)
{
    rs_err rc = RS_OK;
    int rv = 0;
    net *n = calloc(1, sizeof *n);
    if (n == NULL) {
        return rs_error_set(e, RS_ENOMEM, "net: out of memory");
    }
    n->loop = loop;
    n->next_id = 1;
    snprintf(n->url, sizeof n->url, "%s", url);
    bool sock_open = false;
    rv = nng_mtx_alloc(&n->mtx);
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENET, "nng_mtx_alloc: %s", nng_strerror(rv));
        goto out;
    }
    rv = nng_req0_open(&n->sock);
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENET, "nng_req0_open: %s", nng_strerror(rv));
        goto out;
    }
    sock_open = true;
    /* Socket options are the defaults each new context copies. */
    nng_socket_set_ms(n->sock, NNG_OPT_REQ_RESENDTIME, NET_RESEND_MS);
    nng_socket_set_ms(n->sock, NNG_OPT_RECVTIMEO, 10000);
    nng_socket_set_ms(n->sock, NNG_OPT_SENDTIMEO, 10000);
    nng_socket_set_ms(n->sock, NNG_OPT_RECONNMINT, 100);
    nng_socket_set_ms(n->sock, NNG_OPT_RECONNMAXT, 2000);
    nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ, PROTO_MAX_MSG + 1024);
    rc = net_dial(n->sock, url, e);
    if (rc != RS_OK) {
        goto out;
    }
    if (uv_async_init(loop, &n->async, on_async) != 0) {
        rc = rs_error_set(e, RS_EIO, "net: uv_async_init failed");
        goto out;
    }
    n->async.data = n;
out:
    if (rc != RS_OK) {
        if (sock_open) {
            nng_close(n->sock);
        }
        if (n->mtx != NULL) {
            nng_mtx_free(n->mtx);
        }
        free(n);
        return rc;
    }
    *out = n;
    return RS_OK;
}

rs_err net_request(net *n, proto_msg *req, uint32_t timeout_ms, net_done_fn done, void *ud,
                   rs_error *e)
{
    rs_err rc = RS_OK;
    char *buf = NULL;
    size_t len = 0;
    nng_msg *msg = NULL;
    int rv = 0;
    net_req *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return rs_error_set(e, RS_ENOMEM, "net: out of memory");
    }
    req->is_reply = false;
    req->id = n->next_id++;
    rc = proto_encode(req, &buf, &len, e);
    if (rc != RS_OK) {
        goto out;
    }
    rv = nng_msg_alloc(&msg, 0);
    if (rv == 0) {
        rv = nng_msg_append(msg, buf, len);
    }
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENOMEM, "net: nng_msg: %s", nng_strerror(rv));
        goto out;
    }
    rv = nng_ctx_open(&r->ctx, n->sock);
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENET, "nng_ctx_open: %s", nng_strerror(rv));
        goto out;
    }
    if (req->type == PROTO_LEASE) {
        /* A lease is not idempotent: a resend to a slow daemon would lease a
         * second task whose reply is dropped. No timer resend, then; nng
         * still resends when the connection drops, and the timeout covers
         * the rest. */
        nng_ctx_set_ms(r->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    }
    rv = nng_aio_alloc(&r->aio, on_aio, r);
    if (rv != 0) {
        nng_ctx_close(r->ctx);
        rc = rs_error_set(e, RS_ENET, "nng_aio_alloc: %s", nng_strerror(rv));
        goto out;
    }
    r->n = n;
    r->id = req->id;
    r->type = req->type;
    r->done = done;
    r->ud = ud;
    r->stage = NET_SENDING;
    r->next = n->inflight;
    if (n->inflight != NULL) {
        n->inflight->prev = r;
    }
    n->inflight = r;
    n->ninflight++;
    nng_aio_set_timeout(r->aio, (nng_duration)timeout_ms);
    nng_aio_set_msg(r->aio, msg);
    msg = NULL; /* the aio has it now */
    nng_ctx_send(r->ctx, r->aio);
    r = NULL;
out:
    free(r);
    if (msg != NULL) {
        nng_msg_free(msg);
    }
    free(buf);
    return rc;
}

size_t net_pending(const net *n)
{
    return n->ninflight;
}

static void on_async_closed(uv_handle_t *h)
{
    net *n = h->data;
    nng_mtx_free(n->mtx);
    free(n);
}

void net_destroy(net *n)
{
    if (n == NULL) {
        return;
    }
    rs_error e;
    rs_error_clear(&e);
    if (proto_sock_close_bounded(n->sock, NET_CLOSE_MS, &e) != RS_OK) {
        RS_WARN("net", "%s", rs_error_text(&e));
    }
    while (n->inflight != NULL) {
        net_req *r = n->inflight;
        nng_aio_stop(r->aio);
        req_free(n, r);
    }
    n->done_head = NULL;
    n->done_tail = NULL;
    uv_close((uv_handle_t *)&n->async, on_async_closed);
}
