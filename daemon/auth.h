/*
 * auth.h: API tokens and roles (docs/OPERATIONS.md "Tokens").
 *
 * A token is "rsh_" + 43 characters of URL-safe base64 over 32 random bytes
 * (libsodium's randombytes). Only its BLAKE2b-256 hash is stored: the
 * secret has 256 bits of entropy, so a fast unkeyed hash cannot be brute
 * forced and a per-request lookup stays cheap (a slow password hash such as
 * Argon2 would cost ~100 ms on every request for no gain).
 *
 * Roles are capabilities, checked with auth_can(): audit reads (and
 * audits); submit reads and submits; operate submits and acts on jobs
 * (cancel, retry, priority, project limits); admin does everything,
 * tokens included. A principal's tenant is the post house it acts for;
 * "*" acts for every tenant (farm staff; also what every request is when
 * auth is off).
 */
#ifndef RSD_AUTH_H
#define RSD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AUTH_TOKEN_LEN 47 /* "rsh_" + 43 */
#define AUTH_HASH_HEX 64

typedef enum auth_role {
    AUTH_AUDIT = 1,
    AUTH_SUBMIT,
    AUTH_OPERATE,
    AUTH_ADMIN,
} auth_role;

typedef enum auth_cap {
    AUTH_CAN_READ = 1, /* jobs, logs, clips, workers, schedules of its tenant */
    AUTH_CAN_SUBMIT,   /* jobs and schedules */
    AUTH_CAN_OPERATE,  /* cancel, retry, priority, limits; drain with tenant "*" */
    AUTH_CAN_AUDIT,    /* ledger and audit views */
    AUTH_CAN_ADMIN,    /* tokens, backup */
} auth_cap;

typedef struct auth_principal {
    int64_t token_id; /* 0 when auth is off */
    char tenant[65];  /* "*" = every tenant */
    auth_role role;
} auth_principal;

/* Calls sodium_init(); RS_EINVAL if libsodium cannot start. */
rs_err auth_init(rs_error *e);

/* "audit" ... "admin"; 0 for an unknown name. */
auth_role auth_role_parse(const char *name);
const char *auth_role_name(auth_role r);

bool auth_can(const auth_principal *p, auth_cap cap);
/* Whether p may see a project owned by tenant ("" = farm-wide). */
bool auth_sees(const auth_principal *p, const char *tenant);
/* The tenant filter for list queries: NULL for "*", else p->tenant. */
const char *auth_tenant_filter(const auth_principal *p);

/* A fresh token (NUL-terminated, AUTH_TOKEN_LEN chars) and its hash. */
rs_err auth_token_new(char token[AUTH_TOKEN_LEN + 1], char hash[AUTH_HASH_HEX + 1], rs_error *e);
/* Hash of a presented token; false if it is not shaped like one. */
bool auth_token_hash(const char *token, char hash[AUTH_HASH_HEX + 1]);

/* Constant-time comparison of two secrets (worker pool secret). */
bool auth_secret_equal(const char *a, const char *b);

#endif
