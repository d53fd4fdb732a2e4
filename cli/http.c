/*
 * http.c: one synchronous HTTP exchange on nng's HTTP client.
 *
 * nng_http_client_transact would allocate whatever Content-Length the server
 * claims, so the exchange is done by hand: connect, write the request, read
 * the response headers, check the length against the cap, then read the
 * body into a buffer of that size. Each step waits on one aio whose timeout
 * is what is left of the caller's deadline.
 */
#include "http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "clock.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

void cli_http_url_normalise(const char *url, char *buf, size_t buflen)
{
    if (buflen == 0) {
        return;
    }
    if (url == NULL || url[0] == '\0') {
        url = "http://127.0.0.1:8640";
    }
    if (strstr(url, "://") == NULL) {
        snprintf(buf, buflen, "http://%s", url);
    } else {
        snprintf(buf, buflen, "%s", url);
    }
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '/') {
        buf[--n] = '\0';
    }
}

/* Lower-case reason for the one-line "cannot reach" message. */
static const char *net_reason(int rv)
{
    switch (rv) {
    case NNG_ECONNREFUSED:
        return "connection refused";
    case NNG_ETIMEDOUT:
        return "timed out";
    case NNG_EADDRINVAL:
        return "invalid address";
    case NNG_ECONNRESET:
        return "connection reset";
    case NNG_ECONNSHUT:
    case NNG_ECLOSED:
        return "connection closed";
    case NNG_EPEERAUTH:
        return "TLS peer authentication failed";
    case NNG_ECRYPTO:
        return "TLS error";
    default:
        return nng_strerror(rv);
    }
}

static rs_err net_fail(rs_error *e, int rv, const char *url, const char *step)
{
    rs_err code = rv == NNG_ETIMEDOUT ? RS_ETIMEDOUT : RS_ENET;
    if (step == NULL) {
        return rs_error_set(e, code, "cannot reach %s: %s", url, net_reason(rv));
    }
    return rs_error_set(e, code, "%s: %s: %s", url, step, net_reason(rv));
}

static int aio_run(nng_aio *aio)
{
    nng_aio_wait(aio);
    return nng_aio_result(aio);
}

/* Each step gets what is left of the caller's deadline (monotonic ms). */
static void aio_arm(nng_aio *aio, int64_t deadline)
{
    int64_t left = deadline - rs_clock_mono_ms();
    if (left < 1) {
        left = 1;
    }
    nng_aio_set_timeout(aio, (nng_duration)left);
}

static rs_err setup_tls(nng_http_client *client, const nng_url *u, rs_error *e)
{
    nng_tls_config *cfg = NULL;
    rs_err rc = RS_OK;
    int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
    if (rv != 0) {
        return rs_error_set(e, RS_ENET, "TLS: %s", nng_strerror(rv));
    }
    const char *ca = getenv("RUSHES_CA_FILE");
    if (ca == NULL || ca[0] == '\0') {
        ca = DEFAULT_CA_FILE;
    }
    rv = nng_tls_config_server_name(cfg, u->u_hostname);
    if (rv == 0) {
        rv = nng_tls_config_ca_file(cfg, ca);
    }
    if (rv == 0) {
        rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
    }
    if (rv == 0) {
        rv = nng_http_client_set_tls(client, cfg);
    }
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENET, "TLS setup (CA file %s): %s", ca, nng_strerror(rv));
    }
    nng_tls_config_free(cfg);
    return rc;
}

/* Body without Content-Length: read until the server closes, capped. */
static rs_err read_to_close(nng_http_conn *conn, nng_aio *aio, int64_t deadline, size_t cap,
                            const char *url, char **out, size_t *outlen, rs_error *e)
{
    size_t size = 4096;
    size_t len = 0;
    char *buf = malloc(size + 1);
    if (buf == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory reading the response");
    }
    for (;;) {
        if (len == size) {
            if (size >= cap) {
                free(buf);
                return rs_error_set(e, RS_ETOOBIG, "%s: response body over %zu bytes", url, cap);
            }
            size_t nsize = size * 2 > cap ? cap : size * 2;
            char *nbuf = realloc(buf, nsize + 1);
            if (nbuf == NULL) {
                free(buf);
                return rs_error_set(e, RS_ENOMEM, "out of memory reading the response");
            }
            buf = nbuf;
            size = nsize;
        }
        nng_iov iov = {.iov_buf = buf + len, .iov_len = size - len};
        nng_aio_set_iov(aio, 1, &iov);
        aio_arm(aio, deadline);
        nng_http_conn_read(conn, aio);
        int rv = aio_run(aio);
        if (rv == NNG_ECLOSED || rv == NNG_ECONNSHUT) {
            break;
        }
        if (rv != 0) {
            free(buf);
            return net_fail(e, rv, url, "reading response");
        }
        len += nng_aio_count(aio);
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return RS_OK;
}

rs_err cli_http_request(const cli_server *server, const char *method, const char *path,
                        const cli_http_header *headers, size_t nheaders, const char *body,
                        int *status, char **body_out, size_t *body_len, rs_error *e)
{
    char url[1024];
    cli_http_url_normalise(server->url, url, sizeof url);
    int timeout = server->timeout_ms > 0 ? server->timeout_ms : DEFAULT_TIMEOUT_MS;
    size_t cap = server->body_cap > 0 ? server->body_cap : CLI_HTTP_BODY_CAP;
    int64_t deadline = rs_clock_mono_ms() + timeout;

    nng_url *u = NULL;
    nng_http_client *client = NULL;
    nng_http_conn *conn = NULL;
    nng_http_req *req = NULL;
    nng_http_res *res = NULL;
    nng_aio *aio = NULL;
    char *buf = NULL;
    char *uri = NULL;
    size_t len = 0;
    rs_err rc = RS_OK;
    int rv;

    rv = nng_url_parse(&u, url);
    if (rv != 0) {
        rc = rs_error_set(e, RS_EINVAL, "bad server URL '%s': %s", url, nng_strerror(rv));
        goto out;
    }
    if (strcmp(u->u_scheme, "http") != 0 && strcmp(u->u_scheme, "https") != 0) {
        rc = rs_error_set(e, RS_EINVAL, "bad server URL '%s': scheme must be http or https", url);
        goto out;
    }
    rv = nng_http_client_alloc(&client, u);
    if (rv != 0) {
        rc = rs_error_set(e, RS_EINVAL, "bad server URL '%s': %s", url, nng_strerror(rv));
        goto out;
    }
    if (strcmp(u->u_scheme, "https") == 0) {
        rc = setup_tls(client, u, e);
        if (rc != RS_OK) {
            goto out;
        }
    }
    rv = nng_aio_alloc(&aio, NULL, NULL);
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENOMEM, "nng_aio_alloc: %s", nng_strerror(rv));
        goto out;
    }

    aio_arm(aio, deadline);
    nng_http_client_connect(client, aio);
    rv = aio_run(aio);
    if (rv != 0) {
        rc = net_fail(e, rv, url, NULL);
        goto out;
    }
    conn = nng_aio_get_output(aio, 0);

    /* The server URL may carry a path prefix (a proxy); requests go under it. */
    const char *prefix = u->u_path;
    size_t plen = strlen(prefix);
    while (plen > 0 && prefix[plen - 1] == '/') {
        plen--;
    }
    uri = malloc(plen + strlen(path) + 1);
    if (uri == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(uri, prefix, plen);
    strcpy(uri + plen, path);

    rv = nng_http_req_alloc(&req, u);
    if (rv == 0) {
        rv = nng_http_req_set_method(req, method);
    }
    if (rv == 0) {
        rv = nng_http_req_set_uri(req, uri);
    }
    if (rv == 0) {
        rv = nng_http_req_set_header(req, "Accept", "application/json");
    }
    if (rv == 0) {
        rv = nng_http_req_set_header(req, "User-Agent", "rushes-cli");
    }
    if (rv == 0 && server->token != NULL && server->token[0] != '\0') {
        char auth[600];
        snprintf(auth, sizeof auth, "Bearer %s", server->token);
        rv = nng_http_req_set_header(req, "Authorization", auth);
    }
    for (size_t i = 0; rv == 0 && i < nheaders; i++) {
        rv = nng_http_req_set_header(req, headers[i].name, headers[i].value);
    }
    if (rv == 0 && body != NULL) {
        rv = nng_http_req_set_header(req, "Content-Type", "application/json");
        if (rv == 0) {
            rv = nng_http_req_copy_data(req, body, strlen(body));
        }
    } else if (rv == 0 && strcmp(method, "GET") != 0) {
        /* A POST with no body still says so, or the server waits for one. */
        rv = nng_http_req_set_header(req, "Content-Length", "0");
    }
    if (rv != 0) {
        rc =
            rs_error_set(e, RS_ENOMEM, "building request %s %s: %s", method, uri, nng_strerror(rv));
        goto out;
    }

    aio_arm(aio, deadline);
    nng_http_conn_write_req(conn, req, aio);
    rv = aio_run(aio);
    if (rv != 0) {
        rc = net_fail(e, rv, url, "sending request");
        goto out;
    }

    rv = nng_http_res_alloc(&res);
    if (rv != 0) {
        rc = rs_error_set(e, RS_ENOMEM, "nng_http_res_alloc: %s", nng_strerror(rv));
        goto out;
    }
    aio_arm(aio, deadline);
    nng_http_conn_read_res(conn, res, aio);
    rv = aio_run(aio);
    if (rv != 0) {
        rc = net_fail(e, rv, url, "reading response");
        goto out;
    }

    const char *te = nng_http_res_get_header(res, "Transfer-Encoding");
    if (te != NULL && strcasecmp(te, "identity") != 0) {
        rc = rs_error_set(e, RS_EPROTO, "%s: unsupported Transfer-Encoding '%s'", url, te);
        goto out;
    }
    const char *cl = nng_http_res_get_header(res, "Content-Length");
    if (cl != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno != 0 || end == cl || *end != '\0' || cl[0] == '-') {
            rc = rs_error_set(e, RS_EPROTO, "%s: bad Content-Length '%s'", url, cl);
            goto out;
        }
        if (n > cap) {
            rc = rs_error_set(e, RS_ETOOBIG,
                              "%s: response body of %llu bytes is over the %zu-byte cap", url, n,
                              cap);
            goto out;
        }
        len = (size_t)n;
        buf = malloc(len + 1);
        if (buf == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "out of memory for a %zu-byte response", len);
            goto out;
        }
        if (len > 0) {
            nng_iov iov = {.iov_buf = buf, .iov_len = len};
            nng_aio_set_iov(aio, 1, &iov);
            aio_arm(aio, deadline);
            nng_http_conn_read_all(conn, aio);
            rv = aio_run(aio);
            if (rv != 0) {
                rc = net_fail(e, rv, url, "reading response body");
                goto out;
            }
        }
        buf[len] = '\0';
    } else if (strcmp(method, "HEAD") == 0) {
        buf = calloc(1, 1);
        if (buf == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "out of memory");
            goto out;
        }
    } else {
        rc = read_to_close(conn, aio, deadline, cap, url, &buf, &len, e);
        if (rc != RS_OK) {
            goto out;
        }
    }

    *status = (int)nng_http_res_get_status(res);
    *body_out = buf;
    buf = NULL;
    if (body_len != NULL) {
        *body_len = len;
    }

out:
    free(buf);
    free(uri);
    if (conn != NULL) {
        nng_http_conn_close(conn);
    }
    /* nng's free functions are not all documented to accept NULL */
    if (res != NULL) {
        nng_http_res_free(res);
    }
    if (req != NULL) {
        nng_http_req_free(req);
    }
    if (aio != NULL) {
        nng_aio_free(aio);
    }
    if (client != NULL) {
        nng_http_client_free(client);
    }
    if (u != NULL) {
        nng_url_free(u);
    }
    return rc;
}
