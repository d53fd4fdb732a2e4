/*
 * http.h: the CLI's one HTTP call, on nng's HTTP client.
 *
 * One request per connection, synchronous, with a deadline for the whole
 * exchange (connect, write, read). Response bodies are capped (64 MiB by
 * default): the Content-Length is checked before anything is allocated, so a
 * hostile or broken server cannot make the client swallow gigabytes.
 * https:// URLs use nng's TLS with the CA bundle named by RUSHES_CA_FILE
 * (default /etc/ssl/certs/ca-certificates.crt); RUSHES_TOKEN, when set, is
 * sent as "Authorization: Bearer ...".
 */
#ifndef RS_CLI_HTTP_H
#define RS_CLI_HTTP_H

#include <stddef.h>

#include "err.h"

#define CLI_HTTP_BODY_CAP ((size_t)64 * 1024 * 1024)

/* Where to send requests. Borrowed strings; url is "http://host:port" (a
 * missing scheme means http://, a trailing slash is ignored). */
typedef struct cli_server {
    const char *url;
    int timeout_ms;    /* whole exchange; <= 0 means 30000 */
    size_t body_cap;   /* 0 means CLI_HTTP_BODY_CAP */
    const char *token; /* bearer token or NULL */
} cli_server;

typedef struct cli_http_header {
    const char *name;
    const char *value;
} cli_http_header;

/*
 * Sends METHOD path (path starts with '/', may carry a query) with the
 * headers (nheaders entries, may be NULL) and body (NUL-terminated JSON or
 * NULL; sent as application/json). On RS_OK *status is the HTTP status (any
 * status, 4xx/5xx included) and *body_out a malloc'd NUL-terminated body the
 * caller frees (never NULL, may be ""), its length in *body_len if non-NULL.
 * Failures: RS_ENET "cannot reach URL: connection refused" (or the nng
 * reason), RS_ETIMEDOUT, RS_ETOOBIG for a body over the cap, RS_EINVAL for a
 * bad URL, RS_EPROTO for a malformed response.
 */
rs_err cli_http_request(const cli_server *server, const char *method, const char *path,
                        const cli_http_header *headers, size_t nheaders, const char *body,
                        int *status, char **body_out, size_t *body_len, rs_error *e);

/* "http://127.0.0.1:8640" from "127.0.0.1:8640/" etc. into buf. */
void cli_http_url_normalise(const char *url, char *buf, size_t buflen);

#endif
