/*
 * cli.h: the `rushes` command-line client as a library, so tests can run
 * whole commands against a server with captured output.
 *
 * cli_run is main() without the process: it parses argv, runs one command,
 * writes results to out and diagnostics to err, and returns the exit code
 * (0 success; 1 a server, network or job failure; 2 a usage error).
 */
#ifndef RS_CLI_H
#define RS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "http.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#ifndef RUSHES_VERSION
#define RUSHES_VERSION "0.0.0"
#endif

/* One invocation's settings; lives on cli_run's stack. */
typedef struct cli_ctx {
    cli_server server;
    char url[1024];
    bool json;
    FILE *out;
    FILE *err;
    bool tty;  /* out is a terminal: live redraw in watch */
    int width; /* terminal columns (80 when unknown) */
} cli_ctx;

int cli_run(int argc, char **argv, FILE *out, FILE *err);

/*
 * One API call. On RS_OK *doc is the parsed 2xx JSON body (caller deletes)
 * and, if raw is non-NULL, *raw the body text (caller frees). Otherwise e
 * holds the one-line message ("404 not_found: no job 99" or "cannot reach
 * URL: connection refused") and, if raw is non-NULL and the server answered,
 * *raw its body (or NULL). Prints nothing.
 */
rs_err cli_api_call(const cli_ctx *c, const char *method, const char *path,
                    const cli_http_header *headers, size_t nheaders, const char *body, cJSON **doc,
                    char **raw, rs_error *e);

/* Prints a failed call: "rushes: MSG" on err; with --json also a JSON
 * document on out (the API's error body, or {"error":{"code":"unreachable"...}}).
 * Returns CLI_EXIT_FAIL. raw may be NULL. */
int cli_fail(const cli_ctx *c, const rs_error *e, const char *raw);

/* `rushes mhl verify MHL --root DIR` (cli/mhl.c; only linked when the
 * ingest module provides mhl_verify). */
int cli_mhl_verify(const cli_ctx *c, const char *mhl, const char *root);

/* Percent-encodes s for a query value into out; "" if it does not fit. */
void cli_url_escape(const char *s, char *out, size_t outlen);

#endif
