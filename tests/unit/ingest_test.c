/*
 * ingest_test.c: the ingest kind's plan (params, containment: ".." and
 * symlink escapes refused, a missing file planned as one task, folder walk
 * skipping hidden/ascmhl entries, frame patterns, task splitting) and run
 * (hashes match xxh3 of the file, probes, non-media recorded with a reason,
 * a missing file fails naming it).
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "ingest.h"

static char dir[PATH_MAX];
static char root[PATH_MAX];

static void sh(const char *fmt, const char *a)
{
    char cmd[PATH_MAX * 4];
    snprintf(cmd, sizeof cmd, fmt, a, a, a, a);
    cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_ingest_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(root, sizeof root, "%s/media", dir);
    sh("mkdir -p %s/media/A001/sub %s/media/A001/ascmhl %s/media/A001/seq %s/outside", dir);
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof cmd, "cp '%s/samples/clip_02_caminandes.mp4' '%s/media/A001/clip.mp4'",
             RS_SOURCE_DIR, dir);
    cr_assert_eq(system(cmd), 0);
    sh("echo report > %s/media/A001/sub/notes.txt && echo x > %s/media/A001/.hidden && "
       "echo old > %s/media/A001/ascmhl/old.mhl && echo secret > %s/outside/secret.txt",
       dir);
    sh("ln -s ../../outside/secret.txt %s/media/A001/escape && ln -s clip.mp4 %s/media/A001/inlink",
       dir);
    sh("ln -s ../../outside %s/media/A001/escdir && for i in 1 2 3 5; do "
       "echo $i > %s/media/A001/seq/shot.000$i.exr; done && echo n > %s/media/A001/seq/other.exr",
       dir);
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(ingest, .init = setup, .fini = teardown);

static rs_err plan(const char *json, cJSON **tasks, rs_error *e)
{
    const char *roots[] = {root};
    task_env env = {.media_roots = roots, .nmedia_roots = 1, .data_dir = dir, .project = "demo"};
    cJSON *p = cJSON_Parse(json);
    cr_assert_not_null(p, "bad test JSON: %s", json);
    *tasks = NULL;
    rs_error_clear(e);
    rs_err rc = task_kind_find("ingest")->plan(p, &env, tasks, e);
    cJSON_Delete(p);
    return rc;
}

static rs_err plan_path(const char *path, cJSON **tasks, rs_error *e)
{
    char json[PATH_MAX * 2];
    snprintf(json, sizeof json, "{\"path\":\"%s\"}", path);
    return plan(json, tasks, e);
}

static const char *file_at(const cJSON *tasks, int t, int i)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tasks, t), "files");
    const cJSON *s = cJSON_GetArrayItem(f, i);
    cr_assert(cJSON_IsString(s));
    return s->valuestring;
}

Test(ingest, params_are_checked)
{
    cJSON *t = NULL;
    rs_error e;
    char json[PATH_MAX * 2];
    snprintf(json, sizeof json, "{\"path\":\"%s/A001\",\"colour\":1}", root);
    cr_assert_eq(plan(json, &t, &e), RS_EINVAL);
    cr_assert_not_null(strstr(e.msg, "colour"), "%s", e.msg);
    cr_assert_eq(plan("{\"path\":\"media/A001\"}", &t, &e), RS_EINVAL);
    cr_assert_not_null(strstr(e.msg, "absolute"), "%s", e.msg);
    cr_assert_eq(plan("{}", &t, &e), RS_EINVAL);
    snprintf(json, sizeof json, "{\"path\":\"%s/A001\",\"files_per_task\":0}", root);
    cr_assert_eq(plan(json, &t, &e), RS_EINVAL);
    cr_assert_not_null(strstr(e.msg, "files_per_task"), "%s", e.msg);
    snprintf(json, sizeof json, "{\"path\":\"%s/A001\",\"files_per_task\":1001}", root);
    cr_assert_eq(plan(json, &t, &e), RS_EINVAL);
    cr_assert_null(t);
}

Test(ingest, dotdot_and_symlink_escapes_are_refused)
{
    cJSON *t = NULL;
    rs_error e;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/../outside/secret.txt", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_EPERM);
    cr_assert_not_null(strstr(e.msg, "outside the configured media roots"), "%s", e.msg);
    snprintf(p, sizeof p, "%s/A001/escape", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_EPERM);
    snprintf(p, sizeof p, "%s/A001/escdir/secret.txt", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_EPERM);
    /* missing file below an escaping folder, and ".." inside a missing part */
    snprintf(p, sizeof p, "%s/../outside/nothere.mov", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_EPERM);
    snprintf(p, sizeof p, "%s/A001/newdir/../../../outside/secret.txt", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_EPERM);
    cr_assert_null(t);
}

Test(ingest, missing_file_inside_roots_is_one_task)
{
    cJSON *t = NULL;
    rs_error e;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/A001/nothere.mov", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(cJSON_GetArraySize(t), 1);
    cr_assert_str_eq(file_at(t, 0, 0), "nothere.mov");
    /* and running it fails naming the file */
    cJSON *r = NULL;
    rs_error_clear(&e);
    rs_err rc = task_kind_find("ingest")->run(cJSON_GetArrayItem(t, 0), NULL, &r, &e);
    cr_assert_eq(rc, RS_ENOENT);
    cr_assert_not_null(strstr(e.msg, "nothere.mov"), "%s", e.msg);
    cr_assert_null(r);
    cJSON_Delete(t);
    snprintf(p, sizeof p, "%s/A001/newdir/deeper/x.mov", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_OK, "%s", e.msg);
    cr_assert_str_eq(file_at(t, 0, 0), "newdir/deeper/x.mov");
    cJSON_Delete(t);
}

Test(ingest, folder_walk_sorted_skips_hidden_ascmhl_and_escapes)
{
    cJSON *t = NULL;
    rs_error e;
    char json[PATH_MAX * 2];
    snprintf(json, sizeof json, "{\"path\":\"%s/A001/\",\"files_per_task\":3}", root);
    cr_assert_eq(plan(json, &t, &e), RS_OK, "%s", e.msg);
    static const char *const want[] = {"clip.mp4",          "inlink",            "seq/other.exr",
                                       "seq/shot.0001.exr", "seq/shot.0002.exr", "seq/shot.0003.exr",
                                       "seq/shot.0005.exr", "sub/notes.txt"};
    cr_assert_eq(cJSON_GetArraySize(t), 3); /* 8 files, 3 per task */
    for (int i = 0; i < 8; i++) {
        cr_assert_str_eq(file_at(t, i / 3, i % 3), want[i]);
    }
    char real[PATH_MAX];
    snprintf(json, sizeof json, "%s/A001", root);
    cr_assert_not_null(realpath(json, real));
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(t, 2), "root");
    cr_assert_str_eq(r->valuestring, real);
    cJSON_Delete(t);
}

Test(ingest, frame_patterns)
{
    cJSON *t = NULL;
    rs_error e;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/A001/seq/shot.%%04d.exr", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_OK, "%s", e.msg);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(t, 0), "files");
    cr_assert_eq(cJSON_GetArraySize(f), 4);
    cr_assert_str_eq(file_at(t, 0, 3), "shot.0005.exr");
    cJSON_Delete(t);
    snprintf(p, sizeof p, "%s/A001/seq/shot.####.exr", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_OK, "%s", e.msg);
    f = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(t, 0), "files");
    cr_assert_eq(cJSON_GetArraySize(f), 4);
    cJSON_Delete(t);
    snprintf(p, sizeof p, "%s/A001/seq/none.####.exr", root);
    cr_assert_eq(plan_path(p, &t, &e), RS_ENOENT);
    cr_assert_not_null(strstr(e.msg, "none.####.exr"), "%s", e.msg);
    size_t pl = 0;
    size_t so = 0;
    int nd = 0;
    cr_assert(ingest_pattern_split("a.%d.dpx", &pl, &so, &nd));
    cr_assert_eq(pl, 2);
    cr_assert_eq(so, 4);
    cr_assert_eq(nd, 1);
    cr_assert_not(ingest_pattern_split("a.%04d.%04d.dpx", &pl, &so, &nd));
    cr_assert_not(ingest_pattern_split("plain.dpx", &pl, &so, &nd));
}

typedef struct progress_log {
    int calls;
    double last;
} progress_log;

static void on_progress(void *ud, double frac, const char *msg)
{
    progress_log *l = ud;
    l->calls++;
    l->last = frac;
    cr_assert_not_null(msg);
}

Test(ingest, run_on_the_samples)
{
    const char *roots[] = {RS_SOURCE_DIR "/samples"};
    task_env env = {.media_roots = roots, .nmedia_roots = 1};
    cJSON *p = cJSON_Parse("{\"path\":\"" RS_SOURCE_DIR "/samples\",\"files_per_task\":10}");
    cJSON *tasks = NULL;
    rs_error e;
    cr_assert_eq(task_kind_ingest.plan(p, &env, &tasks, &e), RS_OK, "%s", e.msg);
    cJSON_Delete(p);
    cr_assert_eq(cJSON_GetArraySize(tasks), 1);
    progress_log pl = {0};
    task_io io = {.ud = &pl, .progress = on_progress};
    cJSON *res = NULL;
    cr_assert_eq(task_kind_ingest.run(cJSON_GetArrayItem(tasks, 0), &io, &res, &e), RS_OK, "%s",
                 e.msg);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(res, "files");
    cr_assert_eq(cJSON_GetArraySize(files), 4); /* 3 clips + README.md */
    cr_assert_eq(pl.calls, 4);
    cr_assert_float_eq(pl.last, 1.0, 1e-9);
    const cJSON *f = NULL;
    int videos = 0;
    cJSON_ArrayForEach(f, files)
    {
        const char *rel = cJSON_GetObjectItemCaseSensitive(f, "path")->valuestring;
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%s/samples/%s", RS_SOURCE_DIR, rel);
        rs_file_hash h;
        cr_assert_eq(rs_hash_file(full, false, &h, &e), RS_OK);
        char hex[RS_HASH_HEX_LEN];
        rs_hash_hex(h.xxh3, hex);
        cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(f, "xxh3")->valuestring, hex);
        cr_assert_eq(cJSON_GetObjectItemCaseSensitive(f, "size")->valuedouble, (double)h.size);
        cr_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f, "mtime")));
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(f, "probe");
        if (strcmp(rel, "README.md") == 0) {
            cr_assert(cJSON_IsNull(pr));
            const cJSON *pe = cJSON_GetObjectItemCaseSensitive(f, "probe_error");
            cr_assert(cJSON_IsString(pe));
            cr_assert_not_null(strstr(pe->valuestring, "not a recognised media file"));
        } else {
            cr_assert_eq(cJSON_GetObjectItemCaseSensitive(pr, "width")->valuedouble, 640);
            cr_assert_eq(cJSON_GetObjectItemCaseSensitive(pr, "frames")->valuedouble, 240);
            videos++;
        }
    }
    cr_assert_eq(videos, 3);
    cJSON_Delete(res);
    cJSON_Delete(tasks);
}

Test(ingest, run_refuses_unsafe_task_params)
{
    static const char *const bad[] = {
        "{\"root\":\"/tmp\",\"files\":[\"../etc/passwd\"]}",
        "{\"root\":\"/tmp\",\"files\":[\"/etc/passwd\"]}",
        "{\"root\":\"tmp\",\"files\":[\"a\"]}",
        "{\"root\":\"/tmp\",\"files\":[]}",
        "{\"root\":\"/tmp\",\"files\":[\"a\"],\"x\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *p = cJSON_Parse(bad[i]);
        cJSON *r = NULL;
        rs_error e;
        cr_assert_eq(task_kind_ingest.run(p, NULL, &r, &e), RS_EINVAL, "%s", bad[i]);
        cr_assert_null(r);
        cJSON_Delete(p);
    }
    cr_assert(ingest_relpath_ok("a/b.c"));
    cr_assert_not(ingest_relpath_ok("a//b"));
    cr_assert_not(ingest_relpath_ok("a/./b"));
    cr_assert_not(ingest_relpath_ok("a/"));
}
