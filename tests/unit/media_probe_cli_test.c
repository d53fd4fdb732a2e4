/*
 * media_probe_cli_test.c: `rushes probe` (cli/probe.c) end to end through
 * cli_run: a file's probe plus the reader's view (channels, sample type,
 * colour, EXR attributes), a sequence pattern with its gaps, --json for one
 * and several arguments, and a missing file failing with exit 1 and a
 * message naming it.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "frame.h"

static char dir[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_probe_cli.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(probe_cli, .init = setup, .fini = teardown);

/* Runs rushes with args; returns exit code, fills out/err (malloc'd). */
static int run(char **out, char **err, int argc, char **argv)
{
    char *ob = NULL;
    char *eb = NULL;
    size_t ol = 0;
    size_t el = 0;
    FILE *o = open_memstream(&ob, &ol);
    FILE *e = open_memstream(&eb, &el);
    int rc = cli_run(argc, argv, o, e);
    fclose(o);
    fclose(e);
    *out = ob;
    *err = eb;
    return rc;
}

static void write_exr(int frame)
{
    media_frame *f = NULL;
    rs_error e;
    cr_assert_eq(media_frame_create(16, 8, 4, MEDIA_SAMPLE_F16, &f, &e), RS_OK);
    cr_assert_eq(media_frame_meta_set(f, "rushes:job", "7", &e), RS_OK);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/shot.%04d.exr", dir, frame);
    media_write_opts o = {.format = MEDIA_FORMAT_EXR};
    cr_assert_eq(media_image_write(p, f, &o, &e), RS_OK, "%s", e.msg);
    media_frame_destroy(f);
}

Test(probe_cli, file_pattern_json_and_errors)
{
    write_exr(1001);
    write_exr(1002);
    write_exr(1005);
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/shot.1001.exr", dir);
    char *out = NULL;
    char *err = NULL;
    char *a1[] = {"rushes", "probe", "--json", file};
    cr_assert_eq(run(&out, &err, 4, a1), 0, "%s", err);
    cJSON *o = cJSON_Parse(out);
    cr_assert_not_null(o, "%s", out);
    cr_assert_str_eq(cJSON_GetObjectItem(o, "format")->valuestring, "exr");
    cJSON *r = cJSON_GetObjectItem(o, "reader");
    cr_assert_str_eq(cJSON_GetObjectItem(r, "sample")->valuestring, "f16");
    cr_assert_str_eq(cJSON_GetObjectItem(r, "colour")->valuestring, "linear");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "channels")), 4);
    cr_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(r, "metadata"), "rushes:job")->valuestring, "7");
    cJSON_Delete(o);
    free(out);
    free(err);

    char pat[PATH_MAX];
    snprintf(pat, sizeof pat, "%s/shot.####.exr", dir);
    char *a2[] = {"rushes", "probe", pat};
    cr_assert_eq(run(&out, &err, 3, a2), 0, "%s", err);
    cr_assert_not_null(strstr(out, "\"gaps\":[[1003,1004]]"), "%s", out);
    cr_assert_not_null(strstr(out, "\"count\":3"), "%s", out);
    free(out);
    free(err);

    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/gone.exr", dir);
    char *a3[] = {"rushes", "probe", "--json", file, missing};
    cr_assert_eq(run(&out, &err, 5, a3), 1);
    cr_assert_not_null(strstr(err, missing), "%s", err);
    o = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(o), "%s", out);
    cr_assert_eq(cJSON_GetArraySize(o), 2);
    cr_assert_not_null(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 1), "error"));
    cJSON_Delete(o);
    free(out);
    free(err);
}
