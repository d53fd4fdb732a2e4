/*
 * sha256.h: SHA-256 for the ledger's file and mask hashes (internal).
 *
 * Why not libsodium's: the audit hashes every source and output frame
 * (12 MB per 1080p RGB pair), and libsodium's portable SHA-256 runs at
 * ~260 MB/s, its BLAKE2b at ~930 MB/s; the x86 SHA extensions (SHA-NI) do
 * ~1.9 GB/s. SHA-256 also lets anyone check a recorded file hash offline
 * with `sha256sum`. Without SHA-NI (or off x86-64) libsodium's is used.
 */
#ifndef RS_LEDGER_SHA256_H
#define RS_LEDGER_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "err.h"

typedef struct ledger_sha256 {
    uint32_t h[8];
    uint8_t buf[64];
    size_t nbuf;
    uint64_t total;
    int ni; /* SHA-NI in use */
    crypto_hash_sha256_state fallback;
} ledger_sha256;

void ledger_sha256_init(ledger_sha256 *s);
void ledger_sha256_update(ledger_sha256 *s, const void *data, size_t len);
void ledger_sha256_final(ledger_sha256 *s, unsigned char out[32]);
/* Whether this CPU runs the SHA-NI path (for the bench's report). */
int ledger_sha256_has_ni(void);

/* Module-internal (ledger.c): reads a whole file into *out (malloc'd,
 * NUL-terminated, at most cap bytes) and its SHA-256 hex into hash, hashing
 * each piece as it arrives. Errors as rs_fs_read_all's. */
rs_err ledger_read_hashed(const char *path, size_t cap, char **out, size_t *outlen, char hash[65],
                          rs_error *e);

#endif
