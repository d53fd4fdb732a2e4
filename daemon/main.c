/*
 * main.c: rushesd, the coordinator. Parses the settings, reads the test-only
 * crash hook (RUSHES_CRASH_AT, see server.h) once, runs the server loop.
 *
 * Exit codes: 0 after a clean stop (SIGTERM/SIGINT) or --help/--version;
 * 1 when start-up fails (database refused, listener busy); 2 for a bad
 * command line or config file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "auth.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "server.h"
#include "store.h"

#ifndef RUSHES_VERSION
#define RUSHES_VERSION "0.0.0"
#endif

static int create_admin_token(const rsd_config *cfg, rs_error *e)
{
    char token[AUTH_TOKEN_LEN + 1];
    char hash[AUTH_HASH_HEX + 1];
    store *st = NULL;
    int64_t id = 0;
    if (auth_token_new(token, hash, e) != RS_OK || store_open(cfg->db, true, &st, e) != RS_OK) {
        return 1;
    }
    rs_err rc =
        store_token_create(st, "*", "admin", cfg->token_name, hash, rs_clock_wall_ms(), &id, e);
    store_close(st);
    if (rc != RS_OK) {
        return 1;
    }
    printf("%s\n", token);
    fprintf(stderr, "rushesd: created admin token %lld (%s) for every tenant; it is shown once\n",
            (long long)id, cfg->token_name);
    return 0;
}

int main(int argc, char **argv)
{
    rsd_config cfg;
    rsd_config_action action = RSD_RUN;
    rsd_crash crash;
    rs_error e;
    rs_error_clear(&e);

    /* A peer that hangs up mid-write must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);

    if (config_parse(argc, argv, &cfg, &action, &e) != RS_OK) {
        fprintf(stderr, "rushesd: %s\n", rs_error_text(&e));
        return 2;
    }
    if (action == RSD_HELP) {
        fputs(config_usage(), stdout);
        return 0;
    }
    if (action == RSD_VERSION) {
        printf("rushesd %s\n", RUSHES_VERSION);
        return 0;
    }
    if (auth_init(&e) != RS_OK) {
        fprintf(stderr, "rushesd: %s\n", rs_error_text(&e));
        config_free(&cfg);
        return 1;
    }
    if (action == RSD_CREATE_TOKEN) {
        /* Bootstrap: the first admin token, written straight into the
         * database (safe beside a running daemon: SQLite locks). */
        int rc = create_admin_token(&cfg, &e);
        config_free(&cfg);
        if (rc != 0) {
            fprintf(stderr, "rushesd: %s\n", rs_error_text(&e));
        }
        return rc;
    }
    if (server_crash_parse(getenv("RUSHES_CRASH_AT"), &crash, &e) != RS_OK) {
        fprintf(stderr, "rushesd: %s\n", rs_error_text(&e));
        config_free(&cfg);
        return 2;
    }

    server *sv = NULL;
    if (server_create(&cfg, &crash, &sv, &e) != RS_OK) {
        fprintf(stderr, "rushesd: %s\n", rs_error_text(&e));
        config_free(&cfg);
        return 1;
    }
    /* Tests and scripts wait for this line: both listeners are up. */
    fprintf(stderr, "rushesd: listening api=%s workers=%s\n", cfg.api_listen, cfg.worker_listen);
    fflush(stderr);

    rs_err rc = server_run(sv, &e);
    server_destroy(sv);
    config_free(&cfg);
    if (rc != RS_OK) {
        fprintf(stderr, "rushesd: %s\n", rs_error_text(&e));
        return 1;
    }
    fprintf(stderr, "rushesd: stopped cleanly\n");
    return 0;
}
