/*
 * config.h: rushesd's settings, from a JSON file (--config FILE) and flags
 * that override it.
 *
 * The file is one JSON object; // and block comments are allowed (they are
 * stripped before parsing) so deploy/rushesd.conf.example can document every
 * key. Unknown keys and unknown flags are refused with a one-line message
 * naming them. Media roots are resolved with realpath() at start, so later
 * containment checks compare resolved paths; a missing root is an error.
 */
#ifndef RSD_CONFIG_H
#define RSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RSD_MAX_MEDIA_ROOTS 64

typedef struct rsd_config {
    char *api_listen;                       /* http://host:port */
    char *worker_listen;                    /* tcp://host:port (or tls+tcp, ipc) */
    char *db;                               /* SQLite file; default <data_dir>/rushes.db */
    char *data_dir;                         /* created if missing */
    char *media_roots[RSD_MAX_MEDIA_ROOTS]; /* resolved */
    size_t nmedia_roots;
    int64_t lease_ttl_ms;
    int64_t heartbeat_ms;
    int64_t backoff_ms;
    size_t max_body;
    bool auth;                /* bearer tokens required (default true; --no-auth) */
    char *worker_secret;      /* pool secret workers send in hello; NULL = none */
    char *web_dir;            /* dashboard files; NULL = not served */
    char *tls_cert;           /* worker socket tls+tcp: certificate (PEM file) */
    char *tls_key;            /* ... and its private key */
    char *token_name;         /* --create-admin-token NAME */
} rsd_config;

/* What the command line asked for besides running. */
typedef enum rsd_config_action {
    RSD_RUN = 0,
    RSD_HELP,
    RSD_VERSION,
    RSD_CREATE_TOKEN, /* --create-admin-token NAME: print a new admin token and exit */
} rsd_config_action;

/*
 * Parses argv (and the --config file it names) into *cfg. On failure cfg is
 * freed and e names the flag, key or file at fault. *action says whether to
 * run or only print help/version (then cfg is left empty).
 */
rs_err config_parse(int argc, char **argv, rsd_config *cfg, rsd_config_action *action, rs_error *e);

/* Frees what cfg owns and zeroes it. Accepts a zeroed config. */
void config_free(rsd_config *cfg);

/* The --help text. */
const char *config_usage(void);

#endif
