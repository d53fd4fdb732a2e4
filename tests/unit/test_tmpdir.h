/*
 * test_tmpdir.h: a fresh per-process scratch folder for Criterion suites
 * (their .init / .fini), removed with everything in it afterwards.
 */
#ifndef RS_TEST_TMPDIR_H
#define RS_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "fs.h"

/* Fills root with /tmp/<stem>_<pid>, emptied and created again. */
static inline void test_tmpdir_make(char *root, size_t len, const char *stem)
{
    snprintf(root, len, "/tmp/%s_%d", stem, (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    cr_assert_eq(system(cmd), 0);
    rs_error e;
    cr_assert_eq(rs_fs_mkdirs(root, &e), RS_OK);
}

static inline void test_tmpdir_remove(const char *root)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    (void)system(cmd);
}

#endif
