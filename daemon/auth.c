/*
 * auth.c: token minting and hashing with libsodium, role capabilities.
 * See auth.h for why the hash is BLAKE2b rather than a password hash.
 */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

rs_err auth_init(rs_error *e)
{
    if (sodium_init() < 0) {
        return rs_error_set(e, RS_EINVAL, "libsodium failed to initialise");
    }
    return RS_OK;
}

static const char *const role_names[] = {NULL, "audit", "submit", "operate", "admin"};

auth_role auth_role_parse(const char *name)
{
    for (int i = AUTH_AUDIT; i <= AUTH_ADMIN; i++) {
        if (name != NULL && strcmp(name, role_names[i]) == 0) {
            return (auth_role)i;
        }
    }
    return 0;
}

const char *auth_role_name(auth_role r)
{
    return r >= AUTH_AUDIT && r <= AUTH_ADMIN ? role_names[r] : "none";
}

bool auth_can(const auth_principal *p, auth_cap cap)
{
    switch (cap) {
    case AUTH_CAN_READ:
        return p->role >= AUTH_AUDIT;
    case AUTH_CAN_SUBMIT:
        return p->role == AUTH_SUBMIT || p->role == AUTH_OPERATE || p->role == AUTH_ADMIN;
    case AUTH_CAN_OPERATE:
        return p->role == AUTH_OPERATE || p->role == AUTH_ADMIN;
    case AUTH_CAN_AUDIT:
        return p->role == AUTH_AUDIT || p->role == AUTH_ADMIN;
    case AUTH_CAN_ADMIN:
        return p->role == AUTH_ADMIN;
    }
    return false;
}

bool auth_sees(const auth_principal *p, const char *tenant)
{
    if (strcmp(p->tenant, "*") == 0) {
        return true;
    }
    return tenant != NULL && tenant[0] != '\0' && strcmp(tenant, p->tenant) == 0;
}

const char *auth_tenant_filter(const auth_principal *p)
{
    return strcmp(p->tenant, "*") == 0 ? NULL : p->tenant;
}

static void hash_hex(const unsigned char *data, size_t len, char hash[AUTH_HASH_HEX + 1])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, data, len, NULL, 0);
    sodium_bin2hex(hash, AUTH_HASH_HEX + 1, h, sizeof h);
}

rs_err auth_token_new(char token[AUTH_TOKEN_LEN + 1], char hash[AUTH_HASH_HEX + 1], rs_error *e)
{
    unsigned char raw[32];
    char b64[64];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (strlen(b64) != 43) {
        return rs_error_set(e, RS_EINVAL, "token: unexpected encoding length");
    }
    snprintf(token, AUTH_TOKEN_LEN + 1, "rsh_%s", b64);
    hash_hex((const unsigned char *)token, strlen(token), hash);
    sodium_memzero(raw, sizeof raw);
    return RS_OK;
}

bool auth_token_hash(const char *token, char hash[AUTH_HASH_HEX + 1])
{
    size_t n = strlen(token);
    if (n != AUTH_TOKEN_LEN || strncmp(token, "rsh_", 4) != 0) {
        return false;
    }
    for (size_t i = 4; i < n; i++) {
        char c = token[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok) {
            return false;
        }
    }
    hash_hex((const unsigned char *)token, n, hash);
    return true;
}

bool auth_secret_equal(const char *a, const char *b)
{
    /* Compare fixed-size hashes so neither length nor content leaks timing. */
    unsigned char ha[32];
    unsigned char hb[32];
    crypto_generichash(ha, sizeof ha, (const unsigned char *)a, strlen(a), NULL, 0);
    crypto_generichash(hb, sizeof hb, (const unsigned char *)b, strlen(b), NULL, 0);
    return sodium_memcmp(ha, hb, sizeof ha) == 0;
}
