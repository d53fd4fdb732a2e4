/*
 * common_test.c: atomic writes, containment in media roots (.. and symlink
 * escapes), bounded whole-file reads, error text.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"

static char dir[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_common_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(common, .init = setup, .fini = teardown);

Test(common, atomic_write_replaces_whole_file)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/out.txt", dir);
    rs_error e;
    cr_assert_eq(rs_fs_write_atomic(p, "first", 5, &e), RS_OK);
    cr_assert_eq(rs_fs_write_atomic(p, "second!", 7, &e), RS_OK);
    char *buf = NULL;
    size_t n = 0;
    cr_assert_eq(rs_fs_read_all(p, 1024, &buf, &n, &e), RS_OK);
    cr_assert_eq(n, 7);
    cr_assert_str_eq(buf, "second!");
    free(buf);
    /* no temporary file is left beside it */
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    cr_assert_neq(access(tmp, F_OK), 0);
}

Test(common, atomic_write_into_missing_folder_fails_cleanly)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/nope/out.txt", dir);
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(rs_fs_write_atomic(p, "x", 1, &e), RS_EIO);
    cr_assert(strstr(e.msg, "nope/out.txt") != NULL, "message names the file: %s", e.msg);
}

Test(common, read_all_enforces_cap)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/big", dir);
    char data[10000];
    memset(data, 'a', sizeof data);
    rs_error e;
    cr_assert_eq(rs_fs_write_atomic(p, data, sizeof data, &e), RS_OK);
    char *buf = NULL;
    cr_assert_eq(rs_fs_read_all(p, 9999, &buf, NULL, &e), RS_ETOOBIG);
    cr_assert_null(buf);
    cr_assert_eq(rs_fs_read_all(p, 10000, &buf, NULL, &e), RS_OK);
    free(buf);
}

Test(common, containment_refuses_dotdot_and_symlink_escapes)
{
    char root[PATH_MAX], inside[PATH_MAX], outside[PATH_MAX], link[PATH_MAX], dotdot[PATH_MAX];
    snprintf(root, sizeof root, "%s/media", dir);
    snprintf(inside, sizeof inside, "%s/media/a.mov", dir);
    snprintf(outside, sizeof outside, "%s/secret", dir);
    snprintf(link, sizeof link, "%s/media/escape", dir);
    snprintf(dotdot, sizeof dotdot, "%s/media/../secret", dir);
    rs_error e;
    cr_assert_eq(rs_fs_mkdirs(root, &e), RS_OK);
    cr_assert_eq(rs_fs_write_atomic(inside, "x", 1, &e), RS_OK);
    cr_assert_eq(rs_fs_write_atomic(outside, "x", 1, &e), RS_OK);
    cr_assert_eq(symlink(outside, link), 0);
    const char *roots[] = {root};
    char out[PATH_MAX];
    cr_assert_eq(rs_fs_resolve_in_roots(inside, roots, 1, out, sizeof out, &e), RS_OK);
    cr_assert_eq(rs_fs_resolve_in_roots(dotdot, roots, 1, out, sizeof out, &e), RS_EPERM);
    cr_assert_eq(rs_fs_resolve_in_roots(link, roots, 1, out, sizeof out, &e), RS_EPERM);
    cr_assert(strstr(e.msg, "outside") != NULL, "%s", e.msg);
    /* a sibling folder whose name starts like the root is not inside it */
    char sib[PATH_MAX];
    snprintf(sib, sizeof sib, "%s/media2", dir);
    cr_assert_eq(rs_fs_mkdirs(sib, &e), RS_OK);
    cr_assert_eq(rs_fs_resolve_in_roots(sib, roots, 1, out, sizeof out, &e), RS_EPERM);
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/media/missing.mov", dir);
    cr_assert_eq(rs_fs_resolve_in_roots(missing, roots, 1, out, sizeof out, &e), RS_ENOENT);
}

Test(common, strerror_covers_codes)
{
    cr_assert_str_eq(rs_strerror(RS_OK), "ok");
    cr_assert_str_eq(rs_strerror(RS_EPERM), "forbidden");
    rs_error e;
    cr_assert_eq(rs_error_set(&e, RS_EIO, "f.exr: frame %d", 7), RS_EIO);
    cr_assert_str_eq(rs_error_text(&e), "f.exr: frame 7");
}
