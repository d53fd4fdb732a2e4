/*
 * mhl_test.c: ingest finalize end to end (plan -> run -> finalize) on a
 * folder of the samples, a PNG sequence with a gap, a lone still and a
 * sidecar: clips, job result, an ASC MHL and chain file that xmllint
 * validates against the ASC schemas, C4 IDs, deterministic re-runs, and
 * mhl_verify passing, then failing naming a flipped or missing file.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "hash.h"
#include "ingest.h"

#define SCHEMAS RS_SOURCE_DIR "/../shared/validators/ascmhl"
#define FRAMES RS_SOURCE_DIR "/../shared/data/removal/bmx-trees/frames"

static char dir[PATH_MAX];
static char root[PATH_MAX];

static void run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run_cmd(const char *fmt, ...)
{
    char cmd[PATH_MAX * 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_mhl_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(root, sizeof root, "%s/media/Day01", dir);
    run_cmd("mkdir -p '%s/plates' '%s/data'", root, dir);
    run_cmd("cp '%s'/samples/*.mp4 '%s'/samples/README.md '%s/'", RS_SOURCE_DIR, RS_SOURCE_DIR,
            root);
    /* frames 1,2,3,5,6: one sequence clip with a gap at 4 */
    run_cmd("for i in 1 2 3 5 6; do cp \"%s/0000$i.png\" \"%s/plates/shot_A.000$i.png\"; done", FRAMES,
            root);
    run_cmd("cp '%s/00010.png' '%s/poster.png'", FRAMES, root);
    run_cmd("echo 'lens: 35mm' > '%s/plates/a&b <notes>.txt'", root);
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(mhl, .init = setup, .fini = teardown);

typedef struct job_out {
    cJSON *result;
    cJSON *clips;
} job_out;

static job_out ingest_job(const char *path, int64_t job_id)
{
    char mroot[PATH_MAX];
    char data[PATH_MAX];
    snprintf(mroot, sizeof mroot, "%s/media", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    const char *roots[] = {mroot};
    task_env env = {.media_roots = roots, .nmedia_roots = 1, .data_dir = data,
                    .project = "demo", .job_id = job_id};
    char json[PATH_MAX * 2];
    snprintf(json, sizeof json, "{\"path\":\"%s\",\"files_per_task\":3}", path);
    cJSON *params = cJSON_Parse(json);
    cJSON *tasks = NULL;
    rs_error e;
    cr_assert_eq(ingest_plan(params, &env, &tasks, &e), RS_OK, "%s", e.msg);
    cJSON *results = cJSON_CreateArray();
    const cJSON *t = NULL;
    cJSON_ArrayForEach(t, tasks)
    {
        cJSON *r = NULL;
        cr_assert_eq(ingest_run(t, NULL, &r, &e), RS_OK, "%s", e.msg);
        cJSON_AddItemToArray(results, r);
    }
    job_out o = {0};
    env.job_id = job_id;
    cr_assert_eq(ingest_finalize(params, results, &env, &o.result, &o.clips, &e), RS_OK, "%s",
                 e.msg);
    cJSON_Delete(results);
    cJSON_Delete(tasks);
    cJSON_Delete(params);
    return o;
}

static const cJSON *clip_named(const cJSON *clips, const char *name)
{
    const cJSON *c = NULL;
    cJSON_ArrayForEach(c, clips)
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring, name) == 0) {
            return c;
        }
    }
    cr_assert_fail("no clip named %s", name);
    return NULL;
}

static const char *mhl_of(const job_out *o)
{
    return cJSON_GetObjectItemCaseSensitive(o->result, "mhl")->valuestring;
}

Test(mhl, finalize_result_and_clips)
{
    job_out o = ingest_job(root, 7);
    const cJSON *r = o.result;
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(r, "files")->valuedouble, 11);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(r, "clips")->valuedouble, 5);
    cr_assert_eq(cJSON_GetArraySize(o.clips), 5);
    char real[PATH_MAX];
    cr_assert_not_null(realpath(root, real));
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r, "root")->valuestring, real);
    cr_assert(cJSON_GetObjectItemCaseSensitive(r, "bytes")->valuedouble > 2000000);
    const char *mhl = mhl_of(&o);
    char want_dir[PATH_MAX];
    snprintf(want_dir, sizeof want_dir, "%s/data/mhl/demo/job-7/ascmhl/0001_Day01_", dir);
    cr_assert_eq(strncmp(mhl, want_dir, strlen(want_dir)), 0, "%s", mhl);
    cr_assert_str_eq(mhl + strlen(mhl) - 5, "Z.mhl");

    const cJSON *v = clip_named(o.clips, "clip_03_sintel.mp4");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v, "info"),
                                                      "codec")
                         ->valuestring,
                     "h264");
    rs_file_hash h;
    rs_error e;
    char p[PATH_MAX * 2];
    snprintf(p, sizeof p, "%s/clip_03_sintel.mp4", real);
    cr_assert_eq(rs_hash_file(p, false, &h, &e), RS_OK);
    char hex[RS_HASH_HEX_LEN];
    rs_hash_hex(h.xxh3, hex);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(v, "hash")->valuestring, hex);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(v, "path")->valuestring, p);

    clip_named(o.clips, "poster.png");
    const cJSON *s = clip_named(o.clips, "shot_A.%04d.png");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(s, "info");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(info, "type")->valuestring, "sequence");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(info, "frames")->valuedouble, 5);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(info, "frame_first")->valuedouble, 1);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(info, "frame_last")->valuedouble, 6);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(info, "width")->valuedouble, 432);
    char *gaps = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(info, "gaps"));
    cr_assert_str_eq(gaps, "[[4,4]]");
    free(gaps);
    /* sequence hash: xxh3 over the frames' hex hashes in frame order */
    char cat[5 * 16 + 1] = {0};
    static const int frames[] = {1, 2, 3, 5, 6};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/plates/shot_A.000%d.png", real, frames[i]);
        cr_assert_eq(rs_hash_file(p, false, &h, &e), RS_OK);
        rs_hash_hex(h.xxh3, cat + i * 16);
    }
    rs_hash_hex(rs_hash_xxh3(cat, 80), hex);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "hash")->valuestring, hex);
    cJSON_Delete(o.result);
    cJSON_Delete(o.clips);
}

Test(mhl, manifest_validates_against_asc_schemas)
{
    job_out o = ingest_job(root, 8);
    const char *mhl = mhl_of(&o);
    run_cmd("xmllint --noout --schema '%s/ASCMHL.xsd' '%s' 2>/dev/null", SCHEMAS, mhl);
    char chain[PATH_MAX];
    snprintf(chain, sizeof chain, "%s/data/mhl/demo/job-8/ascmhl/ascmhl_chain.xml", dir);
    run_cmd("xmllint --noout --schema '%s/ASCMHLDirectory.xsd' '%s' 2>/dev/null", SCHEMAS, chain);
    /* the chain names the manifest by its C4 ID */
    char *mbuf = NULL;
    size_t mlen = 0;
    char *cbuf = NULL;
    rs_error e;
    cr_assert_eq(rs_fs_read_all(mhl, 1 << 24, &mbuf, &mlen, &e), RS_OK);
    cr_assert_eq(rs_fs_read_all(chain, 1 << 20, &cbuf, NULL, &e), RS_OK);
    char c4[91];
    mhl_c4_id(mbuf, mlen, c4);
    cr_assert_not_null(strstr(cbuf, c4), "chain lacks %s", c4);
    cr_assert_not_null(strstr(cbuf, strrchr(mhl, '/') + 1));
    /* xxh3 values are the ones xxhsum prints, paths relative and escaped */
    cr_assert_not_null(strstr(mbuf, ">plates/a&amp;b &lt;notes&gt;.txt</path>"));
    cr_assert_not_null(strstr(mbuf, "<xxh3 action=\"original\""));
    cr_assert_not_null(strstr(mbuf, "<tool version=\"0.1.0\">rushes</tool>"));
    cr_assert_null(strstr(mbuf, root), "absolute path leaked into the MHL");
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd, "cd '%s' && xxhsum -H3 clip_01_tears_of_steel.mp4 2>/dev/null",
             root);
    FILE *p = popen(cmd, "r");
    char line[512] = {0};
    cr_assert_not_null(fgets(line, sizeof line, p));
    pclose(p);
    char want[64];
    snprintf(want, sizeof want, ">%.16s</xxh3>", strrchr(line, '=') + 2);
    cr_assert_not_null(strstr(mbuf, want), "MHL lacks xxhsum's %s", want);
    free(mbuf);
    free(cbuf);
    cJSON_Delete(o.result);
    cJSON_Delete(o.clips);
}

Test(mhl, finalize_again_is_byte_identical)
{
    job_out a = ingest_job(root, 9);
    char *b1 = NULL;
    size_t l1 = 0;
    rs_error e;
    cr_assert_eq(rs_fs_read_all(mhl_of(&a), 1 << 24, &b1, &l1, &e), RS_OK);
    sleep(1); /* a new timestamp would show up in the name if not reused */
    job_out b = ingest_job(root, 9);
    cr_assert_str_eq(mhl_of(&a), mhl_of(&b));
    char *b2 = NULL;
    size_t l2 = 0;
    cr_assert_eq(rs_fs_read_all(mhl_of(&b), 1 << 24, &b2, &l2, &e), RS_OK);
    cr_assert_eq(l1, l2);
    cr_assert_eq(memcmp(b1, b2, l1), 0);
    run_cmd("test $(ls '%s/data/mhl/demo/job-9/ascmhl' | wc -l) -eq 2", dir);
    free(b1);
    free(b2);
    cJSON_Delete(a.result);
    cJSON_Delete(a.clips);
    cJSON_Delete(b.result);
    cJSON_Delete(b.clips);
}

Test(mhl, verify_passes_then_names_the_changed_file)
{
    job_out o = ingest_job(root, 10);
    const char *mhl = mhl_of(&o);
    size_t n = 0;
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(mhl_verify(mhl, root, &n, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(n, 11);
    /* flip one byte in a copy */
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s/copy", dir);
    run_cmd("cp -a '%s' '%s'", root, copy);
    cr_assert_eq(mhl_verify(mhl, copy, &n, &e), RS_OK, "%s", e.msg);
    char victim[PATH_MAX];
    snprintf(victim, sizeof victim, "%s/clip_02_caminandes.mp4", copy);
    FILE *f = fopen(victim, "r+b");
    cr_assert_not_null(f);
    fseek(f, 100000, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 100000, SEEK_SET);
    fputc(c ^ 0x01, f);
    fclose(f);
    rs_error_clear(&e);
    cr_assert_eq(mhl_verify(mhl, copy, &n, &e), RS_EIO);
    cr_assert_not_null(strstr(e.msg, "clip_02_caminandes.mp4"), "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, "xxh3"), "%s", e.msg);
    /* a missing file is named too */
    run_cmd("rm '%s/plates/shot_A.0005.png'", copy);
    run_cmd("cp '%s/clip_02_caminandes.mp4' '%s/'", root, copy);
    cr_assert_eq(mhl_verify(mhl, copy, &n, &e), RS_ENOENT);
    cr_assert_not_null(strstr(e.msg, "shot_A.0005.png"), "%s", e.msg);
    /* a shorter file is reported by size */
    run_cmd("cp '%s/plates/shot_A.0005.png' '%s/plates/' && truncate -s 10 '%s/poster.png'", root,
            copy, copy);
    cr_assert_eq(mhl_verify(mhl, copy, &n, &e), RS_EIO);
    cr_assert_not_null(strstr(e.msg, "poster.png"), "%s", e.msg);
    cJSON_Delete(o.result);
    cJSON_Delete(o.clips);
}

Test(mhl, verify_refuses_bad_manifests)
{
    static const char *const bad[] = {
        "<?xml version=\"1.0\"?><hashlist version=\"2.0\"><hashes><hash><path>../../etc/passwd"
        "</path><xxh3>0123456789abcdef</xxh3></hash></hashes></hashlist>",
        "<?xml version=\"1.0\"?><hashlist version=\"2.0\"><hashes><hash><path>a.txt</path>"
        "<md5>00</md5></hash></hashes></hashlist>",
        "<?xml version=\"1.0\"?><hashlist version=\"2.0\"><hashes><hash><path>a.txt",
        "<?xml version=\"1.0\"?><other/>",
        "not xml at all",
    };
    char m[PATH_MAX];
    snprintf(m, sizeof m, "%s/bad.mhl", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rs_error e;
        cr_assert_eq(rs_fs_write_atomic(m, bad[i], strlen(bad[i]), &e), RS_OK);
        size_t n = 0;
        rs_error_clear(&e);
        cr_assert_eq(mhl_verify(m, root, &n, &e), RS_EFORMAT, "case %zu: %s", i, e.msg);
        cr_assert_not_null(strstr(e.msg, "bad.mhl"), "%s", e.msg);
    }
}

Test(mhl, c4_ids_match_reference)
{
    /* values from the ascmhl reference algorithm (Python hashlib + base58) */
    char c4[91];
    mhl_c4_id("abc", 3, c4);
    cr_assert_str_eq(c4, "c45S4rnaTNWonxss1u8LzsaJdEph1AJhWUF4sh2waXKMsutyfAxg4ybUeuXVWS9HdNcEypmeX"
                         "n8FZGonD4w1rj9DZp");
    mhl_c4_id("", 0, c4);
    cr_assert_str_eq(c4, "c459dsjfscH38cYeXXYogktxf4Cd9ibshE3BHUo6a58hBXmRQdZrAkZzsWcbWtDg5oQstpDun"
                         "i4Hirj75GEmTc1sFT");
    char x[200];
    memset(x, 'x', sizeof x);
    mhl_c4_id(x, sizeof x, c4);
    cr_assert_str_eq(c4, "c45nqGnwo3pkdSA7XN5EKQyhnrVS7m3BLp6JZStMtnHN4bh1AaPbH1ynnVmNpbYW9vhCx1sKj"
                         "GdnHstu4qe3L8qeLv");
}
