/*
 * hash_test.c: file hashes agree with `xxhsum -H3` (value and the byte order
 * it prints) on real footage and on edge sizes around the read block, and
 * errors name the file.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hash.h"

static char dir[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_hash_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(hash, .init = setup, .fini = teardown);

/* Runs `xxhsum -H3 path` and returns the 16 hex digits it prints. */
static void xxhsum_h3(const char *path, char out[RS_HASH_HEX_LEN])
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "xxhsum -H3 '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[PATH_MAX + 64] = {0};
    cr_assert_not_null(fgets(line, sizeof line, p));
    cr_assert_eq(pclose(p), 0, "xxhsum failed on %s", path);
    /* 0.8.1 prints "XXH3 (path) = <hex>" */
    char *eq = strrchr(line, '=');
    cr_assert_not_null(eq, "unexpected xxhsum output: %s", line);
    snprintf(out, RS_HASH_HEX_LEN, "%.16s", eq + 2);
}

static void check_against_xxhsum(const char *path)
{
    rs_file_hash h;
    rs_error e;
    cr_assert_eq(rs_hash_file(path, true, &h, &e), RS_OK, "%s", e.msg);
    char mine[RS_HASH_HEX_LEN];
    char theirs[RS_HASH_HEX_LEN];
    rs_hash_hex(h.xxh3, mine);
    xxhsum_h3(path, theirs);
    cr_assert_str_eq(mine, theirs, "%s: %s vs xxhsum %s", path, mine, theirs);
}

Test(hash, matches_xxhsum_on_samples)
{
    static const char *const clips[] = {"clip_01_tears_of_steel.mp4", "clip_02_caminandes.mp4",
                                        "clip_03_sintel.mp4"};
    for (size_t i = 0; i < 3; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/samples/%s", RS_SOURCE_DIR, clips[i]);
        check_against_xxhsum(p);
    }
}

Test(hash, matches_xxhsum_around_block_edges)
{
    /* Sizes that straddle the read block and XXH3's internal stripes. */
    static const size_t sizes[] = {0, 1, 3, 16, 17, 128, 129, 240, 241, 1024, 4097,
                                   RS_HASH_BLOCK - 1, RS_HASH_BLOCK, RS_HASH_BLOCK + 1,
                                   2 * RS_HASH_BLOCK + 12345};
    unsigned char *buf = malloc(2 * RS_HASH_BLOCK + 12345);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < 2 * RS_HASH_BLOCK + 12345; i++) {
        buf[i] = (unsigned char)((i * 2654435761u) >> 13);
    }
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/f%zu.bin", dir, sizes[k]);
        FILE *f = fopen(p, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(buf, 1, sizes[k], f), sizes[k]);
        fclose(f);
        check_against_xxhsum(p);
        rs_file_hash h;
        rs_error e;
        cr_assert_eq(rs_hash_file(p, true, &h, &e), RS_OK);
        cr_assert_eq(h.size, sizes[k]);
        cr_assert_eq(h.xxh3, rs_hash_xxh3(buf, sizes[k]));
        cr_assert_eq(h.xxh64, XXH64(buf, sizes[k], 0), "xxh64 at size %zu", sizes[k]);
    }
    free(buf);
}

Test(hash, hex_round_trip_and_order)
{
    char hex[RS_HASH_HEX_LEN];
    rs_hash_hex(0x0123456789abcdefULL, hex);
    cr_assert_str_eq(hex, "0123456789abcdef");
    uint64_t v = 0;
    cr_assert(rs_hash_parse_hex("0123456789ABCDEF", &v));
    cr_assert_eq(v, 0x0123456789abcdefULL);
    cr_assert_not(rs_hash_parse_hex("0123456789abcde", &v));
    cr_assert_not(rs_hash_parse_hex("0123456789abcdef0", &v));
    cr_assert_not(rs_hash_parse_hex("0123456789abcdeg", &v));
}

Test(hash, missing_file_error_names_it)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/nope.mov", dir);
    rs_file_hash h;
    rs_error e;
    cr_assert_eq(rs_hash_file(p, false, &h, &e), RS_ENOENT);
    cr_assert_not_null(strstr(e.msg, "nope.mov"), "%s", e.msg);
    cr_assert_eq(rs_hash_file(dir, false, &h, &e), RS_EINVAL);
    cr_assert_not_null(strstr(e.msg, dir), "%s", e.msg);
}
