/*
 * media_seq_test.c: sequence patterns (%04d, ####, %d), frame lists, gaps,
 * files that look alike but do not match, and clear errors for bad
 * patterns or empty folders.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seq.h"

static char dir[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_media_seq.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(media_seq, .init = setup, .fini = teardown);

static void touch(const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    fclose(f);
}

Test(media_seq, padded_with_gaps)
{
    for (int i = 1001; i <= 1010; i++) {
        if (i == 1004 || i == 1005 || i == 1008) {
            continue;
        }
        char n[64];
        snprintf(n, sizeof n, "shot.%04d.exr", i);
        touch(n);
    }
    touch("shot.1003.exr.tmp");
    touch("shot.12.exr");    /* too few digits for %04d */
    touch("shot.01003.exr"); /* extra leading zero */
    touch("shot.abcd.exr");
    touch("other.1002.exr");
    char pat[PATH_MAX];
    snprintf(pat, sizeof pat, "%s/shot.%%04d.exr", dir);
    media_seq *s = NULL;
    rs_error e;
    cr_assert_eq(media_seq_scan(pat, &s, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(s->count, 7);
    cr_assert_eq(s->first, 1001);
    cr_assert_eq(s->last, 1010);
    cr_assert_eq(s->ngaps, 2);
    cr_assert_eq(s->gaps[0].first, 1004);
    cr_assert_eq(s->gaps[0].last, 1005);
    cr_assert_eq(s->gaps[1].first, 1008);
    cr_assert_eq(s->gaps[1].last, 1008);
    cr_assert_eq(s->missing, 3);
    char p[PATH_MAX];
    cr_assert_eq(media_seq_path(s, 7, p, sizeof p, &e), RS_OK);
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s/shot.0007.exr", dir);
    cr_assert_str_eq(p, want);
    media_seq_destroy(s);

    /* the same files through '####' */
    snprintf(pat, sizeof pat, "%s/shot.####.exr", dir);
    cr_assert_eq(media_seq_scan(pat, &s, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(s->count, 7);
    cr_assert_eq(s->width, 4);
    media_seq_destroy(s);
}

Test(media_seq, hashes_and_unpadded)
{
    touch("plate_98.dpx");
    touch("plate_99.dpx");
    touch("plate_100.dpx");
    touch("plate_0101.dpx"); /* not unpadded */
    char pat[PATH_MAX];
    snprintf(pat, sizeof pat, "%s/plate_%%d.dpx", dir);
    media_seq *s = NULL;
    rs_error e;
    cr_assert_eq(media_seq_scan(pat, &s, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(s->count, 3);
    cr_assert_eq(s->first, 98);
    cr_assert_eq(s->last, 100);
    cr_assert_eq(s->ngaps, 0);
    media_seq_destroy(s);
    touch("f.9999.png");
    touch("f.10000.png"); /* past four digits keeps counting */
    snprintf(pat, sizeof pat, "%s/f.####.png", dir);
    cr_assert_eq(media_seq_scan(pat, &s, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(s->count, 2);
    cr_assert_eq(s->last, 10000);
    media_seq_destroy(s);
}

Test(media_seq, errors)
{
    media_seq *s = NULL;
    rs_error e;
    char pat[PATH_MAX];
    snprintf(pat, sizeof pat, "%s/none.%%04d.exr", dir);
    cr_assert_eq(media_seq_scan(pat, &s, &e), RS_ENOENT);
    cr_assert_not_null(strstr(e.msg, "no frames match"), "%s", e.msg);
    snprintf(pat, sizeof pat, "%s/plain.exr", dir);
    cr_assert_eq(media_seq_scan(pat, &s, &e), RS_EINVAL);
    cr_assert_not_null(strstr(e.msg, "no frame number"), "%s", e.msg);
    snprintf(pat, sizeof pat, "%s/a.%%04d.%%04d.exr", dir);
    cr_assert_eq(media_seq_scan(pat, &s, &e), RS_EINVAL);
    cr_assert(media_seq_is_pattern("x/shot.####.dpx"));
    cr_assert(media_seq_is_pattern("shot.%06d.exr"));
    cr_assert_not(media_seq_is_pattern("shot.0001.exr"));
    cr_assert_not(media_seq_is_pattern("50%.png"));
}
