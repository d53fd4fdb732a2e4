/*
 * dispatch.c: the worker socket (nng REP) and the loop side of the worker
 * protocol (docs/PROTOCOL.md).
 *
 * DISPATCH_CTXS contexts each run a small state machine on one aio:
 * recv -> decode (nng thread) -> push to the loop -> the loop applies it in
 * its batch and, after the commit, sends the reply -> recv again. A message
 * that does not decode is answered on the nng thread with an error reply and
 * never reaches the loop. The workers' fit (kinds, pool, memory) lives here,
 * touched only by the loop.
 */
#include "dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

#include "api_ledger.h"
#include "auth.h"
#include "fs.h"
#include "log.h"
#include "proto.h"
#include "sock.h"
#include "store.h"

#define DISPATCH_CTXS 64
/* When nothing fits, the worker asks again after this long. */
#define DISPATCH_RETRY_MS 250
#define DISPATCH_CLOSE_MS 3000 /* bounded: see proto/sock.h */

typedef struct dispatch_ctx {
    dispatch *d;
    nng_ctx ctx;
    nng_aio *aio;
    bool sending;
    bool open;
} dispatch_ctx;

typedef struct worker_entry {
    int64_t id;
    char pool[PROTO_MAX_NAME];
    size_t nkinds;
    char kinds[PROTO_MAX_KINDS][PROTO_MAX_NAME];
    uint64_t memory_mb;
} worker_entry;

struct dispatch {
    server *sv;
    const rsd_config *cfg;
    nng_socket sock;
    bool sock_open;
    bool stopped;
    dispatch_ctx ctxs[DISPATCH_CTXS];
    /* Loop thread only. */
    worker_entry *workers;
    size_t nworkers;
    size_t capworkers;
};

typedef struct dispatch_req {
    srv_item item;
    dispatch_ctx *c;
    char *raw;       /* hello only: the message text, stored as caps */
    proto_msg msg;   /* the decoded request */
    proto_msg reply; /* built by apply */
    bool failed;     /* reply is an error */
    char code[32];
    char message[PROTO_MAX_ERROR];
} dispatch_req;

/* ---- nng side ------------------------------------------------------------ */

static void ctx_send(dispatch_ctx *c, const char *buf, size_t len)
{
    nng_msg *m = NULL;
    if (nng_msg_alloc(&m, len) != 0) {
        /* No reply; the worker's REQ resends after its timeout. */
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    memcpy(nng_msg_body(m), buf, len);
    nng_aio_set_msg(c->aio, m);
    c->sending = true;
    nng_ctx_send(c->ctx, c->aio);
}

static void ctx_send_error(dispatch_ctx *c, uint64_t id, const char *code, const char *message)
{
    char *buf = NULL;
    size_t len = 0;
    if (proto_encode_error(id, code, message, &buf, &len) != RS_OK) {
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    ctx_send(c, buf, len);
    free(buf);
}

static void req_free(dispatch_req *r)
{
    if (r == NULL) {
        return;
    }
    proto_msg_free(&r->msg);
    proto_msg_free(&r->reply);
    free(r->raw);
    free(r);
}

static const srv_item_ops dispatch_item_ops;

static void ctx_cb(void *arg)
{
    dispatch_ctx *c = arg;
    int rv = nng_aio_result(c->aio);
    if (c->sending) {
        c->sending = false;
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio));
            nng_aio_set_msg(c->aio, NULL);
        }
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
            return;
        }
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
        return;
    }
    if (rv != 0) {
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    nng_msg *m = nng_aio_get_msg(c->aio);
    nng_aio_set_msg(c->aio, NULL);
    dispatch_req *r = calloc(1, sizeof *r);
    if (r == NULL) {
        nng_msg_free(m);
        ctx_send_error(c, 0, "internal", "out of memory");
        return;
    }
    r->c = c;
    uint64_t id = 0;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = proto_decode(nng_msg_body(m), nng_msg_len(m), false, &r->msg, &id, &e);
    if (rc == RS_OK && r->msg.type == PROTO_HELLO) {
        /* Stored as the worker's caps, so without the secret. */
        cJSON *caps = cJSON_ParseWithLength(nng_msg_body(m), nng_msg_len(m));
        cJSON_DeleteItemFromObjectCaseSensitive(caps, "secret");
        r->raw = caps != NULL ? cJSON_PrintUnformatted(caps) : NULL;
        cJSON_Delete(caps);
        if (r->raw == NULL) {
            rc = rs_error_set(&e, RS_ENOMEM, "out of memory");
        }
    }
    nng_msg_free(m);
    if (rc != RS_OK) {
        RS_DEBUG("dispatch", "refused a message: %s", rs_error_text(&e));
        req_free(r);
        ctx_send_error(c, id, rc == RS_ENOMEM ? "internal" : proto_error_code_for(rc),
                       rs_error_text(&e));
        return;
    }
    r->item.ops = &dispatch_item_ops;
    if (!server_item_push(c->d->sv, &r->item)) {
        req_free(r);
        ctx_send_error(c, id, "internal", "rushesd is shutting down");
    }
}

/* ---- loop side: worker fits ---------------------------------------------- */

static worker_entry *worker_find(dispatch *d, int64_t id)
{
    for (size_t i = 0; i < d->nworkers; i++) {
        if (d->workers[i].id == id) {
            return &d->workers[i];
        }
    }
    return NULL;
}

static void worker_forget(dispatch *d, int64_t id)
{
    for (size_t i = 0; i < d->nworkers; i++) {
        if (d->workers[i].id == id) {
            d->workers[i] = d->workers[d->nworkers - 1];
            d->nworkers--;
            return;
        }
    }
}

static bool worker_remember(dispatch *d, int64_t id, const proto_hello *h)
{
    worker_entry *w = worker_find(d, id);
    if (w == NULL) {
        if (d->nworkers == d->capworkers) {
            size_t cap = d->capworkers == 0 ? 16 : d->capworkers * 2;
            worker_entry *nw = realloc(d->workers, cap * sizeof *nw);
            if (nw == NULL) {
                return false;
            }
            d->workers = nw;
            d->capworkers = cap;
        }
        w = &d->workers[d->nworkers++];
    }
    memset(w, 0, sizeof *w);
    w->id = id;
    snprintf(w->pool, sizeof w->pool, "%s", h->pool);
    w->nkinds = h->nkinds;
    for (size_t i = 0; i < h->nkinds; i++) {
        memcpy(w->kinds[i], h->kinds[i], sizeof w->kinds[i]);
    }
    for (size_t i = 0; i < h->ndevices; i++) {
        if (h->devices[i].memory_mb > w->memory_mb) {
            w->memory_mb = h->devices[i].memory_mb;
        }
    }
    return true;
}

/* ---- loop side: requests ------------------------------------------------- */

static void fail(dispatch_req *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(dispatch_req *r, const char *code, const char *fmt, ...)
{
    r->failed = true;
    snprintf(r->code, sizeof r->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

static void fail_store(dispatch_req *r, rs_err rc, const rs_error *e, int64_t worker_id)
{
    if (rc == RS_ENOENT && worker_id != 0) {
        worker_forget(r->c->d, worker_id);
        fail(r, "unknown_worker", "worker %lld: %s", (long long)worker_id, rs_error_text(e));
        return;
    }
    RS_ERROR("dispatch", "%s: %s", proto_type_name(r->msg.type), rs_error_text(e));
    fail(r, "internal", "%s", rs_error_text(e));
}

static void apply_hello(server *sv, dispatch_req *r, srv_batch *b)
{
    dispatch *d = r->c->d;
    const proto_hello *h = &r->msg.u.hello;
    rs_error e;
    rs_error_clear(&e);
    int64_t id = 0;
    if (d->cfg->worker_secret != NULL && !auth_secret_equal(h->secret, d->cfg->worker_secret)) {
        RS_WARN("dispatch", "worker %s refused: wrong or missing pool secret", h->worker_name);
        fail(r, "forbidden", "worker %s: wrong or missing pool secret (RUSHES_WORKER_SECRET)",
             h->worker_name);
        return;
    }
    rs_err rc =
        store_worker_hello(server_store(sv), h->worker_name, h->pool, r->raw, b->now_ms, &id, &e);
    if (rc != RS_OK) {
        fail_store(r, rc, &e, 0);
        return;
    }
    if (!worker_remember(d, id, h)) {
        fail(r, "internal", "out of memory");
        return;
    }
    r->reply.u.hello_reply.worker_id = id;
    r->reply.u.hello_reply.heartbeat_ms = (uint32_t)d->cfg->heartbeat_ms;
    r->reply.u.hello_reply.lease_ttl_ms = (uint32_t)d->cfg->lease_ttl_ms;
}

static void apply_lease(server *sv, dispatch_req *r, const worker_entry *w, srv_batch *b)
{
    dispatch *d = r->c->d;
    const char *kinds[PROTO_MAX_KINDS];
    for (size_t i = 0; i < w->nkinds; i++) {
        kinds[i] = w->kinds[i];
    }
    store_worker_fit fit = {
        .kinds = kinds,
        .nkinds = w->nkinds,
        .pool = w->pool,
        .memory_mb = w->memory_mb,
    };
    store_lease lease;
    memset(&lease, 0, sizeof lease);
    bool found = false;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = store_task_lease(server_store(sv), w->id, &fit, b->now_ms, d->cfg->lease_ttl_ms,
                                 &lease, &found, &e);
    if (rc != RS_OK) {
        fail_store(r, rc, &e, w->id);
        return;
    }
    proto_lease_reply *lr = &r->reply.u.lease_reply;
    lr->lease_ttl_ms = (uint32_t)d->cfg->lease_ttl_ms;
    if (!found) {
        lr->has_task = false;
        lr->retry_ms = DISPATCH_RETRY_MS;
        return;
    }
    if (api_ledger_lease_blocked(sv, lease.job_id, b->now_ms)) {
        /* Consent revoked or expired since submit (ledger/): job cancelled. */
        free(lease.params_json);
        lr->has_task = false;
        lr->retry_ms = DISPATCH_RETRY_MS;
        return;
    }
    lr->has_task = true;
    lr->task_id = lease.task_id;
    lr->attempt_id = lease.attempt_id;
    lr->job_id = lease.job_id;
    snprintf(lr->kind, sizeof lr->kind, "%s", lease.kind);
    lr->params = lease.params_json != NULL ? cJSON_Parse(lease.params_json) : NULL;
    if (lr->params == NULL) {
        lr->params = cJSON_CreateObject();
    }
    free(lease.params_json);
    if (!api_ledger_lease_authorise(sv, lease.job_id, lr->params, b->now_ms)) {
        /* No authorising ledger event, no alterations (ledger/); the lease runs out. */
        cJSON_Delete(lr->params);
        lr->params = NULL;
        lr->has_task = false;
        lr->retry_ms = DISPATCH_RETRY_MS;
        return;
    }
    b->leased = true;
}

static void dispatch_apply(server *sv, srv_item *it, srv_batch *b)
{
    dispatch_req *r = (dispatch_req *)it;
    dispatch *d = r->c->d;
    store *st = server_store(sv);
    proto_msg *q = &r->msg;
    proto_msg_init(&r->reply);
    r->reply.type = q->type;
    r->reply.is_reply = true;
    r->reply.id = q->id;
    if (q->type == PROTO_HELLO) {
        apply_hello(sv, r, b);
        return;
    }
    int64_t wid = 0;
    switch (q->type) {
    case PROTO_LEASE:
        wid = q->u.lease.worker_id;
        break;
    case PROTO_HEARTBEAT:
        wid = q->u.heartbeat.worker_id;
        break;
    case PROTO_PROGRESS:
        wid = q->u.progress.worker_id;
        break;
    case PROTO_REPORT:
        wid = q->u.report.worker_id;
        break;
    case PROTO_BYE:
        wid = q->u.bye.worker_id;
        break;
    default:
        fail(r, "bad_request", "type: not a request");
        return;
    }
    const worker_entry *w = worker_find(d, wid);
    if (w == NULL && q->type != PROTO_BYE) {
        fail(r, "unknown_worker", "worker %lld: unknown to this daemon; say hello again",
             (long long)wid);
        return;
    }
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = RS_OK;
    switch (q->type) {
    case PROTO_LEASE:
        apply_lease(sv, r, w, b);
        return;
    case PROTO_HEARTBEAT: {
        proto_heartbeat_reply *hr = &r->reply.u.heartbeat_reply;
        rc = store_worker_heartbeat(st, wid, q->u.heartbeat.attempt_ids, q->u.heartbeat.nattempts,
                                    b->now_ms, d->cfg->lease_ttl_ms, hr->cancel, &hr->ncancel,
                                    hr->unknown, &hr->nunknown, &e);
        break;
    }
    case PROTO_PROGRESS: {
        const proto_progress *p = &q->u.progress;
        rc = store_attempt_progress(st, wid, p->attempt_id, p->progress,
                                    (const char *const *)p->lines, p->nlines, b->now_ms,
                                    &r->reply.u.progress_reply.cancel, &e);
        break;
    }
    case PROTO_REPORT: {
        const proto_report *p = &q->u.report;
        server_crash_point(sv, "report_received");
        char *result = p->result != NULL ? cJSON_PrintUnformatted(p->result) : NULL;
        store_report sr = {
            .worker_id = wid,
            .attempt_id = p->attempt_id,
            .succeeded = p->outcome == PROTO_OUTCOME_SUCCEEDED,
            .exit_code = p->exit_code,
            .signal = p->signal,
            .error = p->error,
            .result_json = result,
            .result_hash = p->result_hash,
            .lines = (const char *const *)p->lines,
            .nlines = p->nlines,
        };
        bool accepted = false;
        rc = store_attempt_report(st, &sr, b->now_ms, d->cfg->backoff_ms, &accepted, &e);
        free(result);
        r->reply.u.report_reply.accepted = accepted;
        if (rc == RS_OK) {
            b->reported = true;
            if (accepted && sr.succeeded) {
                b->succeeded = true;
            }
        }
        break;
    }
    case PROTO_BYE:
        rc = store_worker_bye(st, wid, b->now_ms, &e);
        worker_forget(d, wid);
        if (rc == RS_ENOENT) {
            rc = RS_OK; /* goodbye from a stranger: nothing to release */
        }
        break;
    default:
        break;
    }
    if (rc != RS_OK) {
        fail_store(r, rc, &e, wid);
    }
}

static void dispatch_reply(server *sv, srv_item *it, bool committed)
{
    dispatch_req *r = (dispatch_req *)it;
    dispatch_ctx *c = r->c;
    uint64_t id = r->msg.id;
    if (!committed) {
        req_free(r);
        ctx_send_error(c, id, "internal", "the database did not commit; nothing was recorded");
        return;
    }
    if (r->failed) {
        char code[32];
        char message[PROTO_MAX_ERROR];
        memcpy(code, r->code, sizeof code);
        memcpy(message, r->message, sizeof message);
        req_free(r);
        ctx_send_error(c, id, code, message);
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = proto_encode(&r->reply, &buf, &len, &e);
    req_free(r);
    if (rc != RS_OK) {
        RS_ERROR("dispatch", "encoding a reply: %s", rs_error_text(&e));
        ctx_send_error(c, id, "internal", rs_error_text(&e));
        return;
    }
    ctx_send(c, buf, len);
    free(buf);
}

static const srv_item_ops dispatch_item_ops = {
    .apply = dispatch_apply,
    .reply = dispatch_reply,
};

/* ---- lifecycle ----------------------------------------------------------- */

/*
 * Starts the listener. A tls+tcp:// URL gets nng's TLS (mbedTLS) with the
 * certificate and key from the config; workers verify it against the CA
 * they are given (RUSHES_WORKER_CA_FILE). Messaging over tls+tcp does not
 * have the HTTPS stall of DESIGN.md.
 */
static rs_err worker_listen(dispatch *d, const rsd_config *cfg, rs_error *e)
{
    nng_listener l;
    nng_tls_config *tls = NULL;
    char *cert = NULL;
    char *key = NULL;
    size_t n = 0;
    rs_err rc = RS_OK;
    int rv = nng_listener_create(&l, d->sock, cfg->worker_listen);
    if (rv != 0) {
        return rs_error_set(e, RS_ENET, "worker_listen: %s: %s", cfg->worker_listen,
                            nng_strerror(rv));
    }
    if (strncmp(cfg->worker_listen, "tls+", 4) == 0) {
        rc = rs_fs_read_all(cfg->tls_cert, 1u << 20, &cert, &n, e);
        if (rc == RS_OK) {
            rc = rs_fs_read_all(cfg->tls_key, 1u << 20, &key, &n, e);
        }
        if (rc != RS_OK) {
            goto out;
        }
        rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_SERVER);
        if (rv == 0) {
            rv = nng_tls_config_own_cert(tls, cert, key, NULL);
        }
        if (rv == 0) {
            rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls);
        }
        if (rv != 0) {
            rc = rs_error_set(e, RS_ENET, "worker_listen: TLS with %s / %s: %s", cfg->tls_cert,
                              cfg->tls_key, nng_strerror(rv));
            goto out;
        }
    }
    rv = nng_listener_start(l, 0);
    if (rv != 0) {
        rc =
            rs_error_set(e, RS_ENET, "worker_listen: %s: %s", cfg->worker_listen, nng_strerror(rv));
    }
out:
    if (tls != NULL) {
        nng_tls_config_free(tls); /* the listener holds its own reference */
    }
    if (key != NULL) {
        memset(key, 0, strlen(key));
    }
    free(cert);
    free(key);
    if (rc != RS_OK) {
        nng_listener_close(l);
    }
    return rc;
}

rs_err dispatch_create(server *sv, const rsd_config *cfg, dispatch **out, rs_error *e)
{
    rs_err rc = RS_OK;
    dispatch *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    d->sv = sv;
    d->cfg = cfg;
    int rv = nng_rep0_open(&d->sock);
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENET, "worker socket: %s", nng_strerror(rv));
        goto out;
    }
    d->sock_open = true;
    /* A little over the protocol cap, so a slightly oversized message still
     * reaches proto_decode and gets a "too_big" reply; far larger ones are
     * dropped by nng before they are buffered. */
    rv = nng_socket_set_size(d->sock, NNG_OPT_RECVMAXSZ, PROTO_MAX_MSG + 64 * 1024);
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENET, "worker socket: recv-size-max: %s", nng_strerror(rv));
        goto out;
    }
    for (size_t i = 0; i < DISPATCH_CTXS; i++) {
        dispatch_ctx *c = &d->ctxs[i];
        c->d = d;
        rv = nng_aio_alloc(&c->aio, ctx_cb, c);
        if (rv == 0) {
            rv = nng_ctx_open(&c->ctx, d->sock);
        }
        if (rv != 0) {
            rc = rs_error_set(e, RS_ENET, "worker socket: context: %s", nng_strerror(rv));
            goto out;
        }
        c->open = true;
    }
    rc = worker_listen(d, cfg, e);
    if (rc != RS_OK) {
        goto out;
    }
    rv = 0;
    if (rv != 0) {
        rc =
            rs_error_set(e, RS_ENET, "worker_listen: %s: %s", cfg->worker_listen, nng_strerror(rv));
        goto out;
    }
    for (size_t i = 0; i < DISPATCH_CTXS; i++) {
        nng_ctx_recv(d->ctxs[i].ctx, d->ctxs[i].aio);
    }
out:
    if (rc != RS_OK) {
        dispatch_destroy(d);
        return rc;
    }
    *out = d;
    return RS_OK;
}

void dispatch_stop(dispatch *d)
{
    if (d == NULL || d->stopped) {
        return;
    }
    d->stopped = true;
    if (d->sock_open) {
        d->sock_open = false;
        rs_error e;
        rs_error_clear(&e);
        if (proto_sock_close_bounded(d->sock, DISPATCH_CLOSE_MS, &e) != RS_OK) {
            RS_WARN("dispatch", "worker socket: %s", rs_error_text(&e));
        }
    }
}

void dispatch_destroy(dispatch *d)
{
    if (d == NULL) {
        return;
    }
    dispatch_stop(d);
    for (size_t i = 0; i < DISPATCH_CTXS; i++) {
        if (d->ctxs[i].aio != NULL) {
            /* Waits for a callback in progress; after the close none re-arms. */
            nng_aio_stop(d->ctxs[i].aio);
            nng_msg *m = nng_aio_get_msg(d->ctxs[i].aio);
            if (m != NULL && d->ctxs[i].sending) {
                nng_msg_free(m);
            }
            nng_aio_free(d->ctxs[i].aio);
        }
    }
    free(d->workers);
    free(d);
}
