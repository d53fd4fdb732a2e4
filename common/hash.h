/*
 * hash.h: content hashes of files and buffers (xxHash 0.8.1).
 *
 * Every footage file is identified by its XXH3-64 hash, taken at ingest and
 * re-checked before a worker trusts a shard. The file path streams the file
 * in large blocks through the CPU-dispatched XXH3 (AVX2/AVX-512 chosen at
 * run time), which is markedly faster than the plain XXH3 symbol of the
 * shared library. XXH64 can be taken in the same pass for tools that want it.
 * Hex strings are 16 lowercase digits in the order `xxhsum -H3` prints
 * (the canonical big-endian form of the 64-bit value).
 */
#ifndef RS_HASH_H
#define RS_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Size of the hex buffer a 64-bit hash needs (16 digits + NUL). */
#define RS_HASH_HEX_LEN 17

/* Block size the file hasher reads with. */
#define RS_HASH_BLOCK (1u * 1024u * 1024u)

typedef struct rs_file_hash {
    uint64_t xxh3;   /* XXH3-64, seed 0 */
    uint64_t xxh64;  /* XXH64, seed 0; only set when asked for */
    uint64_t size;   /* bytes hashed */
} rs_file_hash;

/*
 * Hashes the whole file at path. want_xxh64 adds XXH64 in the same pass.
 * RS_ENOENT if it does not exist, RS_EIO on read errors, RS_EINVAL if it is
 * not a regular file; the message names the file.
 */
rs_err rs_hash_file(const char *path, bool want_xxh64, rs_file_hash *out, rs_error *e);

/* XXH3-64 (dispatched) of a buffer. */
uint64_t rs_hash_xxh3(const void *data, size_t len);

/* Writes h as 16 lowercase hex digits + NUL into out. */
void rs_hash_hex(uint64_t h, char out[RS_HASH_HEX_LEN]);

/* Parses 16 hex digits (either case); false if s is not exactly that. */
bool rs_hash_parse_hex(const char *s, uint64_t *out);

#endif
