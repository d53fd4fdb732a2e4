/*
 * hash.c: streaming file hashes through xxHash's CPU-dispatched XXH3.
 *
 * The file is read with plain read() into one 1 MiB buffer: the block is
 * still warm in cache while XXH3 consumes it. Measured with bench/hash_bench
 * on a 256 MiB file in page cache: 1 MiB ~7.4 GB/s (1.05x `xxhsum -H3`),
 * 2 MiB ~6.3 GB/s, 4 MiB ~6.0 GB/s. posix_fadvise(SEQUENTIAL) asks the kernel
 * for aggressive read-ahead on cold files. See hash.h.
 */
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_DISPATCH_DISABLE_REPLACE 1
#include <xxh_x86dispatch.h>
#include <xxhash.h>

uint64_t rs_hash_xxh3(const void *data, size_t len)
{
    return (uint64_t)XXH3_64bits_dispatch(data, len);
}

void rs_hash_hex(uint64_t h, char out[RS_HASH_HEX_LEN])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[h & 0xf];
        h >>= 4;
    }
    out[16] = '\0';
}

bool rs_hash_parse_hex(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL) {
        return false;
    }
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        unsigned d = 0;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            d = (unsigned)(c - 'A' + 10);
        } else {
            return false;
        }
        v = (v << 4) | d;
    }
    if (s[16] != '\0') {
        return false;
    }
    *out = v;
    return true;
}

rs_err rs_hash_file(const char *path, bool want_xxh64, rs_file_hash *out, rs_error *e)
{
    rs_err rc = RS_OK;
    int fd = -1;
    unsigned char *buf = NULL;
    XXH3_state_t *s3 = NULL;
    XXH64_state_t *s64 = NULL;
    uint64_t total = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return rs_error_set(e, err == ENOENT ? RS_ENOENT : RS_EIO, "%s: cannot open: %s", path,
                            strerror(err));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rs_error_set(e, RS_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    /* Advice only: a failure changes speed, never the result. */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    if (posix_memalign((void **)&buf, 4096, RS_HASH_BLOCK) != 0) {
        buf = NULL;
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory for hash buffer", path);
        goto out;
    }
    s3 = XXH3_createState();
    if (s3 == NULL || XXH3_64bits_reset(s3) != XXH_OK) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory for hash state", path);
        goto out;
    }
    if (want_xxh64) {
        s64 = XXH64_createState();
        if (s64 == NULL || XXH64_reset(s64, 0) != XXH_OK) {
            rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory for hash state", path);
            goto out;
        }
    }
    for (;;) {
        ssize_t n = read(fd, buf, RS_HASH_BLOCK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = rs_error_set(e, RS_EIO, "%s: read at byte %llu: %s", path,
                              (unsigned long long)total, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        XXH3_64bits_update_dispatch(s3, buf, (size_t)n);
        if (s64 != NULL) {
            XXH64_update(s64, buf, (size_t)n);
        }
        total += (uint64_t)n;
    }
    out->xxh3 = (uint64_t)XXH3_64bits_digest(s3);
    out->xxh64 = s64 != NULL ? (uint64_t)XXH64_digest(s64) : 0;
    out->size = total;
out:
    XXH3_freeState(s3);
    XXH64_freeState(s64);
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}
