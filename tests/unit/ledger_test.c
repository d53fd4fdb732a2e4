/*
 * ledger_test.c: the compliance ledger. Chain, signatures and the export
 * verified offline; every tamper case of issue 7 (row edited, event
 * deleted, events reordered, other key, truncated export, byte flipped in
 * an output, mask swapped, pixel changed outside the mask) fails naming
 * what broke; real frames from ../shared/data/removal altered inside their
 * object masks and recorded through ledger_record_alteration, audited at
 * 100 % coverage; masks and audio ranges; the consent registry and gate.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "audio.h"
#include "fs.h"
#include "ledger.h"
#include "store.h"
#include "video.h"

#define REMOVAL RS_SOURCE_DIR "/../shared/data/removal/bmx-trees"

static char dir[PATH_MAX];
static store *st;
static ledger *lg;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ledger_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char db[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/rushes.db", dir);
    rs_error e;
    cr_assert_eq(store_open(db, true, &st, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(ledger_open(store_sqlite(st), dir, &lg, &e), RS_OK, "%s", e.msg);
}

static void teardown(void)
{
    ledger_close(lg);
    store_close(st);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)system(cmd);
}

TestSuite(ledger, .init = setup, .fini = teardown);

static void append(const char *project, const char *type, const char *json)
{
    cJSON *f = cJSON_Parse(json);
    cr_assert_not_null(f);
    rs_error e;
    cr_assert_eq(ledger_append(lg, project, type, f, 1000, NULL, NULL, &e), RS_OK, "%s", e.msg);
    cJSON_Delete(f);
}

static char *export_text(const char *project, size_t *len)
{
    char *t = NULL;
    rs_error e;
    cr_assert_eq(ledger_export(lg, project, true, 2000, &t, len, &e), RS_OK, "%s", e.msg);
    return t;
}

static void project_pk(const char *project, unsigned char pk[32])
{
    ledger_key k;
    rs_error e;
    cr_assert_eq(ledger_key_load(dir, project, false, &k, &e), RS_OK, "%s", e.msg);
    memcpy(pk, k.pk, 32);
    ledger_key_wipe(&k);
}

/* Lines of text as an array of strings (each without "\n"). */
static int split(char *text, char **lines, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *p = strtok_r(text, "\n", &save); p != NULL && n < max;
         p = strtok_r(NULL, "\n", &save)) {
        lines[n++] = p;
    }
    return n;
}

static char *join(char **lines, int n)
{
    size_t total = 1;
    for (int i = 0; i < n; i++) {
        total += strlen(lines[i]) + 1;
    }
    char *out = malloc(total);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    return out;
}

/* Runs a shell command, its output into out (NUL-terminated). */
static void run_capture(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    pclose(f);
}

static void expect_fail(const char *text, const unsigned char pk[32], const char *needle)
{
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = ledger_verify(text, strlen(text), pk, NULL, NULL, &e);
    cr_assert_neq(rc, RS_OK, "verify passed, expected failure with '%s'", needle);
    cr_assert_not_null(strstr(e.msg, needle), "message '%s' does not name '%s'", e.msg, needle);
}

static void three_events(void)
{
    append("feature", "ingest",
           "{\"root\":\"/media/a\",\"files\":[{\"path\":\"a.mov\","
           "\"hash\":\"00ff\"}]}");
    append("feature", "model_trained",
           "{\"model\":\"m1\",\"trained_on\":[\"00ff\"],"
           "\"steps\":100,\"checkpoint_hash\":\"abcd\"}");
    append("feature", "ingest", "{\"root\":\"/media/b\",\"files\":[]}");
}

Test(ledger, chain_exports_and_verifies_offline)
{
    three_events();
    size_t len = 0;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    ledger_verify_info info;
    cJSON *events = NULL;
    rs_error e;
    cr_assert_eq(ledger_verify(t, len, pk, &info, &events, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(info.events, 4, "3 events + the export event");
    cr_assert_str_eq(info.project, "feature");
    cr_assert_eq(cJSON_GetArraySize(events), 4);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(events, 3), "type")->valuestring,
                     "export");
    cJSON_Delete(events);
    /* The key is 0600 and is not in the export. */
    char kp[PATH_MAX + 64];
    snprintf(kp, sizeof kp, "%s/ledger/keys/feature.key", dir);
    struct stat sb;
    cr_assert_eq(stat(kp, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    ledger_key k;
    cr_assert_eq(ledger_key_load(dir, "feature", false, &k, &e), RS_OK);
    char skhex[129];
    ledger_hex(k.sk, 32, skhex);
    cr_assert_null(strstr(t, skhex), "secret key leaked into the export");
    ledger_key_wipe(&k);
    /* The public key in the header is the project's. */
    char pkhex[LEDGER_HEX];
    ledger_hex(pk, 32, pkhex);
    cr_assert_not_null(strstr(t, pkhex));
    free(t);
}

Test(ledger, key_readable_by_others_is_refused)
{
    append("p1", "ingest", "{}");
    char kp[PATH_MAX + 64];
    snprintf(kp, sizeof kp, "%s/ledger/keys/p1.key", dir);
    cr_assert_eq(chmod(kp, 0644), 0);
    ledger_key k;
    rs_error e;
    cr_assert_eq(ledger_key_load(dir, "p1", false, &k, &e), RS_EPERM);
    cr_assert_not_null(strstr(e.msg, "readable by group or others"));
    cr_assert_eq(ledger_key_load(dir, "../x", true, &k, &e), RS_EINVAL);
}

Test(ledger, rows_are_append_only_in_the_database)
{
    three_events();
    sqlite3 *db = store_sqlite(st);
    cr_assert_neq(
        sqlite3_exec(db, "UPDATE ledger_event SET payload = '{}' WHERE seq = 2", NULL, NULL, NULL),
        SQLITE_OK);
    cr_assert_neq(sqlite3_exec(db, "DELETE FROM ledger_event WHERE seq = 2", NULL, NULL, NULL),
                  SQLITE_OK);
}

Test(ledger, tamper_row_edited)
{
    three_events();
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    char *p = strstr(t, "/media/b");
    cr_assert_not_null(p);
    p[7] = 'c';
    expect_fail(t, pk, "seq 3: hash does not match its content (event edited)");
    free(t);
}

Test(ledger, tamper_event_deleted)
{
    three_events();
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    char *lines[16];
    int n = split(t, lines, 16);
    cr_assert_eq(n, 6);
    lines[2] = lines[3]; /* drop seq 2 */
    lines[3] = lines[4];
    lines[4] = lines[5];
    char *j = join(lines, 5);
    expect_fail(j, pk, "seq 3 follows seq 1: event(s) deleted");
    /* Deleting the last event and re-signing is impossible without the key:
     * the end record's count catches it. */
    char *lines2[16];
    free(t);
    t = export_text("feature", &len);
    n = split(t, lines2, 16);
    lines2[n - 2] = lines2[n - 1];
    char *j2 = join(lines2, n - 1);
    expect_fail(j2, pk, "events deleted or truncated");
    free(j);
    free(j2);
    free(t);
}

Test(ledger, tamper_events_reordered)
{
    three_events();
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    char *lines[16];
    int n = split(t, lines, 16);
    char *tmp = lines[2];
    lines[2] = lines[3];
    lines[3] = tmp;
    char *j = join(lines, n);
    expect_fail(j, pk, "seq 3 follows seq 1: events reordered");
    /* Renumbering the swapped events does not help: their links break. */
    free(j);
    free(t);
}

Test(ledger, tamper_signature_from_another_key)
{
    three_events();
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char other_pk[32], other_sk[64];
    crypto_sign_keypair(other_pk, other_sk);
    expect_fail(t, other_pk, "seq 1: signature does not verify with the given public key");
    /* An event signed by another project's key is refused too. */
    append("other", "ingest", "{}");
    unsigned char pk2[32];
    project_pk("other", pk2);
    expect_fail(t, pk2, "signature does not verify");
    free(t);
}

Test(ledger, tamper_truncated_export)
{
    three_events();
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    char *cut = strdup(t);
    /* Whole lines cut off: no end record. */
    cut[len - 1] = '\0';              /* the final newline */
    *(strrchr(cut, '\n') + 1) = '\0'; /* the end record */
    expect_fail(cut, pk, "export truncated: no signed end record after seq 4");
    /* Cut inside a line. */
    strcpy(cut, t);
    cut[len / 2] = '\0';
    expect_fail(cut, pk, "truncated");
    free(cut);
    free(t);
}

Test(ledger, mutated_exports_never_crash_and_never_pass)
{
    three_events();
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    /* The header's pubkey is informational (the caller's key decides), so
     * mutations confined to it may pass; any other changed byte must fail. */
    size_t pk_at = (size_t)(strstr(t, "\"pubkey\":\"") - t) + 10;
    char *m = malloc(len + 1);
    unsigned seed = 12345;
    for (int i = 0; i < 3000; i++) {
        memcpy(m, t, len + 1);
        int flips = 1 + i % 3;
        bool only_pubkey = true;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            char c = (char)(seed >> 16);
            only_pubkey = only_pubkey && (c == t[at] || (at >= pk_at && at < pk_at + 64));
            m[at] = c;
        }
        rs_error e;
        size_t n = strnlen(m, len);
        bool same = n == len && memcmp(m, t, len) == 0;
        if (ledger_verify(m, n, pk, NULL, NULL, &e) == RS_OK) {
            cr_assert(same || only_pubkey, "mutation %d verified:\n%s", i, m);
        }
    }
    free(m);
    free(t);
}

Test(ledger, masks_roundtrip_and_audio_ranges)
{
    ledger_mask *m = NULL;
    rs_error e;
    cr_assert_eq(ledger_mask_create(37, 11, &m, &e), RS_OK);
    unsigned seed = 7;
    for (size_t i = 0; i < 37 * 11; i++) {
        seed = seed * 1103515245u + 12345u;
        m->bits[i] = (seed >> 16) % 3 == 0;
    }
    m->bits[0] = 1;
    char h[LEDGER_HEX], h2[LEDGER_HEX];
    char md[PATH_MAX + 8];
    snprintf(md, sizeof md, "%s/m", dir);
    cr_assert_eq(ledger_mask_store(md, m, h, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(ledger_mask_store(md, m, h2, &e), RS_OK);
    cr_assert_str_eq(h, h2, "one mask, one encoding, one hash");
    ledger_mask *back = NULL;
    cr_assert_eq(ledger_mask_load(md, h, &back, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(back->width, 37);
    cr_assert_eq(memcmp(back->bits, m->bits, 37 * 11), 0);
    ledger_mask_destroy(back);
    /* Corrupt encodings are refused, not crashed on. */
    uint8_t *buf;
    size_t len;
    cr_assert_eq(ledger_mask_encode(m, &buf, &len, &e), RS_OK);
    cr_assert_neq(ledger_mask_decode(buf, len - 1, &back, &e), RS_OK);
    buf[len - 1] = 0xff;
    cr_assert_neq(ledger_mask_decode(buf, len, &back, &e), RS_OK);
    free(buf);
    ledger_mask_destroy(m);

    float a[40] = {0}, b[40] = {0};
    b[2 * 3] = 1.0f;     /* frame 3 */
    b[2 * 4 + 1] = 1.0f; /* frame 4 */
    b[2 * 10] = -0.0f;   /* frame 10: bitwise change */
    cJSON *r = NULL;
    cr_assert_eq(ledger_audio_ranges(a, b, 20, 2, &r, &e), RS_OK);
    char *s = cJSON_PrintUnformatted(r);
    cr_assert_str_eq(s, "[[3,5],[10,11]]");
    free(s);
    cJSON_Delete(r);
}

/* ---- alterations on real frames -------------------------------------------- */

#define NFRAMES 4

typedef struct altered {
    char src[NFRAMES][PATH_MAX];
    char out[NFRAMES][PATH_MAX];
    uint64_t changed[NFRAMES];
} altered;

/* Copies frames 0..NFRAMES-1 of the bmx-trees clip and writes outputs whose
 * pixels inside the clip's object mask are painted grey (a stand-in for
 * removal); alter_and_record then records each through
 * ledger_record_alteration. */
static void make_frames(altered *a)
{
    rs_error e;
    char srcdir[PATH_MAX + 8], outdir[PATH_MAX + 8];
    snprintf(srcdir, sizeof srcdir, "%s/src", dir);
    snprintf(outdir, sizeof outdir, "%s/out", dir);
    cr_assert_eq(rs_fs_mkdirs(srcdir, &e), RS_OK);
    cr_assert_eq(rs_fs_mkdirs(outdir, &e), RS_OK);
    for (int i = 0; i < NFRAMES; i++) {
        char fp[PATH_MAX], mp[PATH_MAX];
        snprintf(fp, sizeof fp, REMOVAL "/frames/%05d.png", i);
        snprintf(mp, sizeof mp, REMOVAL "/masks/%05d.png", i);
        media_frame *f = NULL, *obj = NULL;
        cr_assert_eq(media_image_read(fp, NULL, &f, &e), RS_OK, "%s", e.msg);
        cr_assert_eq(media_image_read(mp, NULL, &obj, &e), RS_OK, "%s", e.msg);
        snprintf(a->src[i], PATH_MAX, "%s/%05d.png", srcdir, i);
        snprintf(a->out[i], PATH_MAX, "%s/%05d.png", outdir, i);
        media_write_opts wo = {.format = MEDIA_FORMAT_PNG};
        cr_assert_eq(media_image_write(a->src[i], f, &wo, &e), RS_OK, "%s", e.msg);
        uint64_t n = 0;
        for (uint32_t y = 0; y < f->height; y++) {
            for (uint32_t x = 0; x < f->width; x++) {
                if (*(uint8_t *)media_frame_at(obj, x, y, 0) > 127) {
                    uint8_t *px = media_frame_at(f, x, y, 0);
                    bool diff = px[0] != 128 || px[1] != 128 || px[2] != 128;
                    px[0] = px[1] = px[2] = 128;
                    n += diff ? 1 : 0;
                }
            }
        }
        a->changed[i] = n;
        cr_assert_gt(n, 100, "frame %d: the object mask should cover pixels", i);
        cr_assert_eq(media_image_write(a->out[i], f, &wo, &e), RS_OK, "%s", e.msg);
        media_frame_destroy(f);
        media_frame_destroy(obj);
    }
}

static void alter_and_record(altered *a, int64_t job)
{
    make_frames(a);
    rs_error e;
    for (int i = 0; i < NFRAMES; i++) {
        ledger_alteration al = {
            .project = "feature",
            .job_id = job,
            .kind = "removal",
            .model = "model-7f3a",
            .frame = i,
            .source_path = a->src[i],
            .output_path = a->out[i],
        };
        ledger_alteration_result r;
        cr_assert_eq(ledger_record_alteration(lg, &al, 5000 + i, &r, &e), RS_OK, "%s", e.msg);
        cr_assert_eq(r.changed, a->changed[i], "frame %d: mask counts %llu, painted %llu", i,
                     (unsigned long long)r.changed, (unsigned long long)a->changed[i]);
        cr_assert_gt(r.bbox.w, 0);
    }
}

static cJSON *audit(const ledger_audit_sel *sel)
{
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    char md[PATH_MAX];
    ledger_masks_dir(dir, md, sizeof md);
    ledger_audit_opts o = {.masks_dir = md, .threads = 2};
    cJSON *rep = NULL;
    rs_error e;
    cr_assert_eq(ledger_audit(t, len, pk, sel, &o, &rep, &e), RS_OK, "%s", e.msg);
    free(t);
    return rep;
}

static bool rep_ok(const cJSON *r)
{
    return cJSON_IsTrue(cJSON_GetObjectItem(r, "ok"));
}

/* True if some failure names frame and contains needle. */
static bool has_failure(const cJSON *r, int64_t frame, const char *needle)
{
    const cJSON *f = NULL;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(r, "failures"))
    {
        if ((int64_t)cJSON_GetObjectItem(f, "frame")->valuedouble == frame &&
            strstr(cJSON_GetObjectItem(f, "what")->valuestring, needle) != NULL) {
            return true;
        }
    }
    return false;
}

Test(ledger, audit_proves_every_changed_pixel_is_inside_its_mask)
{
    altered a;
    alter_and_record(&a, 42);
    cJSON *r = audit(NULL);
    char *s = cJSON_Print(r);
    cr_assert(rep_ok(r), "%s", s);
    cr_assert_eq(cJSON_GetObjectItem(r, "frames")->valuedouble, NFRAMES);
    uint64_t total = 0;
    for (int i = 0; i < NFRAMES; i++) {
        total += a.changed[i];
    }
    cr_assert_eq((uint64_t)cJSON_GetObjectItem(r, "changed_pixels")->valuedouble, total);
    cr_assert_eq(cJSON_GetObjectItem(r, "coverage")->valuedouble, 1.0);
    cr_assert_eq(cJSON_GetObjectItem(r, "outside_pixels")->valuedouble, 0);
    free(s);
    cJSON_Delete(r);
    /* Selection by job, by output and by source. */
    ledger_audit_sel sel = {.job_id = 42};
    r = audit(&sel);
    cr_assert_eq(cJSON_GetObjectItem(r, "frames")->valuedouble, NFRAMES);
    cJSON_Delete(r);
    sel = (ledger_audit_sel){.output_path = a.out[2]};
    r = audit(&sel);
    cr_assert_eq(cJSON_GetObjectItem(r, "frames")->valuedouble, 1);
    cJSON_Delete(r);
    sel = (ledger_audit_sel){.job_id = 43};
    r = audit(&sel);
    cr_assert_eq(cJSON_GetObjectItem(r, "frames")->valuedouble, 0);
    cJSON_Delete(r);
}

static cJSON *job_result_of(const altered *a)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(r, "alterations");
    for (int i = 0; i < NFRAMES; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "frame", i);
        cJSON_AddStringToObject(o, "source", a->src[i]);
        cJSON_AddStringToObject(o, "output", a->out[i]);
        cJSON_AddStringToObject(o, "model", "eyeline-v2");
        cJSON_AddItemToArray(arr, o);
    }
    return r;
}

static int64_t grant(const char *performer, unsigned kinds, int64_t expires);

Test(ledger, finished_jobs_record_their_alterations_with_consent)
{
    altered a;
    make_frames(&a);
    int64_t cid = grant("Ada Lovelace", LEDGER_LIKENESS_EYES, 0);
    cJSON *params = cJSON_Parse("{\"performers\":[\"Ada Lovelace\"]}");
    cJSON *result = job_result_of(&a);
    ledger_job_spec j = {.project = "feature",
                         .job_id = 77,
                         .kind = "eyeline",
                         .likeness = LEDGER_LIKENESS_EYES,
                         .params = params,
                         .result = result};
    rs_error e;
    cr_assert_eq(ledger_record_job(lg, &j, 6000, &e), RS_OK, "%s", e.msg);
    ledger_audit_sel sel = {.job_id = 77};
    cJSON *r = audit(&sel);
    char *s = cJSON_Print(r);
    cr_assert(rep_ok(r), "%s", s);
    cr_assert_eq(cJSON_GetObjectItem(r, "frames")->valuedouble, NFRAMES);
    free(s);
    cJSON_Delete(r);
    /* Every alteration cites the consent the gate used. */
    cJSON *events = NULL;
    cr_assert_eq(ledger_events(lg, "feature", &events, &e), RS_OK);
    int cited = 0;
    const cJSON *ev = NULL;
    cJSON_ArrayForEach(ev, events)
    {
        const cJSON *p = cJSON_GetObjectItem(ev, "payload");
        if (strcmp(cJSON_GetObjectItem(p, "type")->valuestring, "alteration") == 0) {
            const cJSON *c = cJSON_GetObjectItem(p, "consent");
            cr_assert(cJSON_IsArray(c));
            cr_assert_eq(cJSON_GetArrayItem(c, 0)->valuedouble, (double)cid);
            cr_assert_str_eq(cJSON_GetObjectItem(p, "model")->valuestring, "eyeline-v2");
            cited++;
        }
    }
    cr_assert_eq(cited, NFRAMES);
    cJSON_Delete(events);
    /* Revoked while the job ran: its outputs are not recorded and it fails. */
    cr_assert_eq(ledger_consent_revoke(lg, cid, "withdrawn", 6500, &e), RS_OK);
    j.job_id = 78;
    cr_assert_eq(ledger_record_job(lg, &j, 7000, &e), RS_EPERM);
    cr_assert_not_null(strstr(e.msg, "consent no longer holds"), "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, "'Ada Lovelace'"), "%s", e.msg);
    /* A malformed list is refused, naming the field. */
    j.likeness = 0;
    cJSON_AddItemToArray(cJSON_GetObjectItem(result, "alterations"), cJSON_CreateObject());
    cr_assert_eq(ledger_record_job(lg, &j, 7000, &e), RS_EINVAL);
    cr_assert_not_null(strstr(e.msg, "result.alterations"), "%s", e.msg);
    cJSON_Delete(params);
    cJSON_Delete(result);
}

static bool stop_now(void *ud)
{
    (void)ud;
    return true;
}

/* rushesd prepares a job's ledger work off its loop and appends it later:
 * preparing writes no event (and may be repeated or abandoned), appending
 * writes exactly what ledger_record_job would. */
Test(ledger, job_prepare_writes_nothing_append_records_every_frame)
{
    altered a;
    make_frames(&a);
    cJSON *result = job_result_of(&a);
    ledger_job_spec j = {.project = "feature", .job_id = 90, .kind = "removal", .result = result};
    rs_error e;
    ledger_job_prep *p = NULL;
    cr_assert_eq(ledger_job_prepare(dir, &j, NULL, stop_now, NULL, &p, &e), RS_ECANCELED);
    cr_assert_null(p);
    cr_assert_eq(ledger_job_prepare(dir, &j, NULL, NULL, NULL, &p, &e), RS_OK, "%s", e.msg);
    ledger_job_prep *again = NULL;
    cr_assert_eq(ledger_job_prepare(dir, &j, NULL, NULL, NULL, &again, &e), RS_OK, "%s", e.msg);
    ledger_job_prep_destroy(again);
    cJSON *events = NULL;
    rs_err erc = ledger_events(lg, "feature", &events, &e); /* no project yet: ENOENT */
    cr_assert(erc == RS_ENOENT || (erc == RS_OK && cJSON_GetArraySize(events) == 0),
              "prepare appended events");
    cJSON_Delete(events);
    events = NULL;
    cr_assert_eq(ledger_job_append(lg, &j, p, 8000, &e), RS_OK, "%s", e.msg);
    ledger_job_prep_destroy(p);
    cr_assert_eq(ledger_events(lg, "feature", &events, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(events), NFRAMES);
    for (int i = 0; i < NFRAMES; i++) {
        const cJSON *pl = cJSON_GetObjectItem(cJSON_GetArrayItem(events, i), "payload");
        cr_assert_eq(cJSON_GetObjectItem(pl, "frame")->valuedouble, i);
        cr_assert_eq(cJSON_GetObjectItem(pl, "changed")->valuedouble, (double)a.changed[i]);
    }
    cJSON_Delete(events);
    ledger_audit_sel sel = {.job_id = 90};
    cJSON *r = audit(&sel);
    cr_assert(rep_ok(r));
    cr_assert_eq(cJSON_GetObjectItem(r, "frames")->valuedouble, NFRAMES);
    cJSON_Delete(r);
    /* The one-frame split gives what ledger_record_alteration gives. */
    ledger_alteration al = {.project = "feature",
                            .job_id = 91,
                            .kind = "removal",
                            .model = "",
                            .frame = 0,
                            .source_path = a.src[0],
                            .output_path = a.out[0]};
    ledger_alteration_prep ap;
    cr_assert_eq(ledger_alteration_prepare(dir, &al, &ap, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(ap.changed, a.changed[0]);
    int64_t seq = 0;
    cr_assert_eq(ledger_alteration_append(lg, &al, &ap, 8100, &seq, NULL, &e), RS_OK, "%s", e.msg);
    cr_assert_gt(seq, NFRAMES); /* after the frames and the audit's export event */
    ledger_alteration_prep_clear(&ap);
    cJSON_Delete(result);
}

Test(ledger, finished_ingest_records_its_mhl)
{
    char mhl[PATH_MAX + 16];
    snprintf(mhl, sizeof mhl, "%s/x.mhl", dir);
    rs_error e;
    cr_assert_eq(rs_fs_write_atomic(mhl, "<hashlist/>\n", 12, &e), RS_OK);
    cJSON *result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "root", "/media/day1");
    cJSON_AddNumberToObject(result, "files", 2);
    cJSON_AddStringToObject(result, "mhl", mhl);
    cJSON *clips = cJSON_Parse("[{\"name\":\"a.mov\",\"path\":\"/media/day1/a.mov\","
                               "\"hash\":\"0123456789abcdef\",\"info\":{}}]");
    ledger_job_spec j = {
        .project = "feature", .job_id = 5, .kind = "ingest", .result = result, .clips = clips};
    cr_assert_eq(ledger_record_job(lg, &j, 1000, &e), RS_OK, "%s", e.msg);
    cJSON *events = NULL;
    cr_assert_eq(ledger_events(lg, "feature", &events, &e), RS_OK);
    const cJSON *p = cJSON_GetObjectItem(cJSON_GetArrayItem(events, 0), "payload");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "type")->valuestring, "ingest");
    char h[LEDGER_HEX];
    ledger_hash_bytes("<hashlist/>\n", 12, h);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "mhl_sha256")->valuestring, h);
    cr_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "clips"), 0), "hash")
            ->valuestring,
        "0123456789abcdef");
    cJSON_Delete(events);
    /* A job that altered nothing records nothing. */
    ledger_job_spec n = {.project = "feature", .job_id = 6, .kind = "noop", .result = clips};
    cr_assert_eq(ledger_record_job(lg, &n, 1000, &e), RS_OK);
    cr_assert_eq(ledger_events(lg, "feature", &events, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(events), 1);
    cJSON_Delete(events);
    cJSON_Delete(result);
    cJSON_Delete(clips);
}

Test(ledger, audit_fails_on_a_pixel_changed_outside_the_mask)
{
    altered a;
    alter_and_record(&a, 42);
    rs_error e;
    media_frame *f = NULL;
    cr_assert_eq(media_image_read(a.out[2], NULL, &f, &e), RS_OK);
    uint8_t *px = media_frame_at(f, 0, 0, 0); /* corner: outside the rider's mask */
    px[0] ^= 1;
    media_write_opts wo = {.format = MEDIA_FORMAT_PNG};
    cr_assert_eq(media_image_write(a.out[2], f, &wo, &e), RS_OK);
    media_frame_destroy(f);
    cJSON *r = audit(NULL);
    char *s = cJSON_Print(r);
    cr_assert(!rep_ok(r), "%s", s);
    cr_assert(has_failure(r, 2, "1 changed pixels outside the recorded mask (first at x=0 y=0)"),
              "%s", s);
    cr_assert(has_failure(r, 2, "output file does not match the recorded hash"), "%s", s);
    cr_assert(!has_failure(r, 1, ""), "only frame 2 fails: %s", s);
    cr_assert_eq(cJSON_GetObjectItem(r, "outside_pixels")->valuedouble, 1);
    cr_assert_lt(cJSON_GetObjectItem(r, "coverage")->valuedouble, 1.0);
    free(s);
    cJSON_Delete(r);
}

Test(ledger, audit_fails_on_a_byte_flipped_in_an_output)
{
    altered a;
    alter_and_record(&a, 42);
    char *buf;
    size_t len;
    rs_error e;
    cr_assert_eq(rs_fs_read_all(a.out[1], 1 << 26, &buf, &len, &e), RS_OK);
    buf[len / 2] ^= 0x01;
    cr_assert_eq(rs_fs_write_atomic(a.out[1], buf, len, &e), RS_OK);
    free(buf);
    cJSON *r = audit(NULL);
    char *s = cJSON_Print(r);
    cr_assert(!rep_ok(r));
    cr_assert(has_failure(r, 1, "output file does not match the recorded hash"), "%s", s);
    const cJSON *f0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "failures"), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(f0, "file")->valuestring, a.out[1]);
    free(s);
    cJSON_Delete(r);
}

Test(ledger, audit_fails_on_a_swapped_mask)
{
    altered a;
    alter_and_record(&a, 42);
    /* Put frame 0's mask bytes in place of frame 3's. */
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    cJSON *events = NULL;
    rs_error e;
    cr_assert_eq(ledger_verify(t, len, pk, NULL, &events, &e), RS_OK);
    const char *m0 = NULL, *m3 = NULL;
    const cJSON *ev = NULL;
    cJSON_ArrayForEach(ev, events)
    {
        const cJSON *fr = cJSON_GetObjectItem(ev, "frame");
        if (fr != NULL && fr->valuedouble == 0) {
            m0 = cJSON_GetObjectItem(ev, "mask_hash")->valuestring;
        }
        if (fr != NULL && fr->valuedouble == 3) {
            m3 = cJSON_GetObjectItem(ev, "mask_hash")->valuestring;
        }
    }
    cr_assert(m0 != NULL && m3 != NULL && strcmp(m0, m3) != 0);
    char md[PATH_MAX], p0[PATH_MAX + 80], p3[PATH_MAX + 80];
    ledger_masks_dir(dir, md, sizeof md);
    snprintf(p0, sizeof p0, "%s/%s.rsmask", md, m0);
    snprintf(p3, sizeof p3, "%s/%s.rsmask", md, m3);
    char *buf;
    cr_assert_eq(rs_fs_read_all(p0, 1 << 26, &buf, &len, &e), RS_OK);
    cr_assert_eq(rs_fs_write_atomic(p3, buf, len, &e), RS_OK);
    free(buf);
    cJSON_Delete(events);
    free(t);
    cJSON *r = audit(NULL);
    char *s = cJSON_Print(r);
    cr_assert(!rep_ok(r));
    cr_assert(has_failure(r, 3, "content does not match its hash (mask file swapped or edited)"),
              "%s", s);
    free(s);
    cJSON_Delete(r);
}

Test(ledger, audit_fails_on_a_broken_chain)
{
    altered a;
    alter_and_record(&a, 42);
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    char *p = strstr(t, "model-7f3a");
    p[6] = 'X'; /* claim another model */
    char md[PATH_MAX];
    ledger_masks_dir(dir, md, sizeof md);
    ledger_audit_opts o = {.masks_dir = md};
    cJSON *r = NULL;
    rs_error e;
    cr_assert_eq(ledger_audit(t, len, pk, NULL, &o, &r, &e), RS_OK);
    cr_assert(!rep_ok(r));
    cr_assert(has_failure(r, -1, "hash does not match its content (event edited)"));
    cJSON_Delete(r);
    free(t);
}

static void write_tone(const char *path, size_t changed_from, size_t changed_to, size_t stray)
{
    rs_error e;
    media_audio *a = NULL;
    cr_assert_eq(media_audio_create(MEDIA_FORMAT_WAV, 48000, 2, 48000, 24, false, &a, &e), RS_OK);
    for (size_t i = 0; i < 48000; i++) {
        int32_t v = (int32_t)((i * 7919u) % 65536u - 32768) * 256 * 64;
        a->pcm[2 * i] = v;
        a->pcm[2 * i + 1] = -v;
        if (i >= changed_from && i < changed_to) {
            a->pcm[2 * i] = 0; /* the "dialogue fix" */
        }
        if (i == stray) {
            a->pcm[2 * i + 1] = 256 * 1000;
        }
    }
    cr_assert_eq(media_audio_write(path, a, &e), RS_OK, "%s", e.msg);
    media_audio_destroy(a);
}

Test(ledger, audio_alterations_record_ranges_and_audit_every_sample)
{
    char src[PATH_MAX + 16], out[PATH_MAX + 16];
    snprintf(src, sizeof src, "%s/line.wav", dir);
    snprintf(out, sizeof out, "%s/line.fixed.wav", dir);
    write_tone(src, 0, 0, SIZE_MAX);
    write_tone(out, 1000, 2000, SIZE_MAX);
    ledger_alteration al = {.project = "feature",
                            .job_id = 9,
                            .kind = "dialogue",
                            .model = "voice-1",
                            .source_path = src,
                            .output_path = out};
    ledger_audio_result r;
    rs_error e;
    cr_assert_eq(ledger_record_audio_alteration(lg, &al, 1000, &r, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(r.nranges, 1);
    cr_assert_gt(r.changed, 900, "%llu", (unsigned long long)r.changed);
    cr_assert_leq(r.changed, 1000);
    cJSON *rep = audit(NULL);
    char *s = cJSON_Print(rep);
    cr_assert(rep_ok(rep), "%s", s);
    cr_assert_eq(cJSON_GetObjectItem(rep, "audio_files")->valuedouble, 1, "%s", s);
    cr_assert_eq(cJSON_GetObjectItem(rep, "changed_samples")->valuedouble, (double)r.changed);
    free(s);
    cJSON_Delete(rep);
    /* One sample changed outside the recorded range afterwards: named. */
    write_tone(out, 1000, 2000, 30000);
    rep = audit(NULL);
    s = cJSON_Print(rep);
    cr_assert(!rep_ok(rep));
    cr_assert(has_failure(rep, 30000,
                          "1 changed sample frames outside the recorded ranges (first at 30000)"),
              "%s", s);
    free(s);
    cJSON_Delete(rep);
}

Test(ledger, labels_written_to_png_read_back_by_ffprobe)
{
    rs_error e;
    media_frame *f = NULL;
    cr_assert_eq(media_image_read(REMOVAL "/frames/00000.png", NULL, &f, &e), RS_OK);
    cr_assert_eq(ledger_label_frame(f, "feature", "ab12", "model-7f3a", &e), RS_OK);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/labelled.png", dir);
    media_write_opts wo = {.format = MEDIA_FORMAT_PNG};
    cr_assert_eq(media_image_write(p, f, &wo, &e), RS_OK, "%s", e.msg);
    media_frame_destroy(f);
    cr_assert_eq(media_image_read(p, NULL, &f, &e), RS_OK);
    cr_assert_str_eq(media_frame_meta_get(f, "rushes:altered"), "yes");
    cr_assert_str_eq(media_frame_meta_get(f, "rushes:ledger_event"), "ab12");
    cr_assert_str_eq(media_frame_meta_get(f, "rushes:model"), "model-7f3a");
    cr_assert_str_eq(media_frame_meta_get(f, "rushes:project"), "feature");
    media_frame_destroy(f);
    /* A common external reader sees them too. */
    char cmd[PATH_MAX + 128], out[4096];
    snprintf(cmd, sizeof cmd, "ffprobe -v error -show_frames '%s' 2>&1", p);
    run_capture(cmd, out, sizeof out);
    cr_assert_not_null(strstr(out, "TAG:rushes:ledger_event=ab12"), "ffprobe: %s", out);
    cr_assert_not_null(strstr(out, "TAG:rushes:altered=yes"), "ffprobe: %s", out);
}

Test(ledger, labels_written_to_exr_read_back_by_exrheader)
{
    rs_error e;
    media_frame *f = NULL;
    cr_assert_eq(media_frame_create(16, 8, 3, MEDIA_SAMPLE_F16, &f, &e), RS_OK);
    snprintf(f->names[0], MEDIA_CHANNEL_NAME, "R");
    snprintf(f->names[1], MEDIA_CHANNEL_NAME, "G");
    snprintf(f->names[2], MEDIA_CHANNEL_NAME, "B");
    cr_assert_eq(ledger_label_frame(f, "feature", "cd34", "model-7f3a", &e), RS_OK);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/labelled.exr", dir);
    media_write_opts wo = {.format = MEDIA_FORMAT_EXR};
    cr_assert_eq(media_image_write(p, f, &wo, &e), RS_OK, "%s", e.msg);
    media_frame_destroy(f);
    cr_assert_eq(media_image_read(p, NULL, &f, &e), RS_OK);
    cr_assert_str_eq(media_frame_meta_get(f, "rushes:ledger_event"), "cd34");
    media_frame_destroy(f);
    char cmd[PATH_MAX + 64], out[8192];
    snprintf(cmd, sizeof cmd, "exrheader '%s' 2>&1", p);
    run_capture(cmd, out, sizeof out);
    cr_assert_not_null(strstr(out, "rushes:altered (type string): \"yes\""), "%s", out);
    cr_assert_not_null(strstr(out, "rushes:ledger_event (type string): \"cd34\""), "%s", out);
    cr_assert_not_null(strstr(out, "rushes:model (type string): \"model-7f3a\""), "%s", out);
}

Test(ledger, labels_written_to_bwf_read_back)
{
    rs_error e;
    media_audio *a = NULL;
    cr_assert_eq(media_audio_create(MEDIA_FORMAT_WAV, 48000, 1, 480, 24, false, &a, &e), RS_OK);
    cr_assert_eq(ledger_label_audio(a, "feature", "ef56", "voice<model>&1", &e), RS_OK);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/labelled.wav", dir);
    cr_assert_eq(media_audio_write(p, a, &e), RS_OK, "%s", e.msg);
    media_audio_destroy(a);
    cr_assert_eq(media_audio_read(p, &a, &e), RS_OK, "%s", e.msg);
    cr_assert(a->bext.present);
    cr_assert_not_null(strstr(a->bext.description, "ledger event ef56"));
    cr_assert_not_null(a->ixml);
    cr_assert_not_null(strstr(a->ixml, "<LEDGER_EVENT>ef56</LEDGER_EVENT>"), "%s", a->ixml);
    cr_assert_not_null(strstr(a->ixml, "<MODEL>voice&lt;model&gt;&amp;1</MODEL>"), "%s", a->ixml);
    media_audio_destroy(a);
    char cmd[PATH_MAX + 64], out[4096];
    snprintf(cmd, sizeof cmd, "ffprobe -v error -show_format '%s' 2>&1", p);
    run_capture(cmd, out, sizeof out);
    cr_assert_not_null(strstr(out, "TAG:comment=rushes: altered; ledger event ef56"), "%s", out);
}

/* ---- consent ------------------------------------------------------------------ */

static int64_t grant(const char *performer, unsigned kinds, int64_t expires)
{
    ledger_consent_spec c = {
        .performer = performer,
        .project = "feature",
        .kinds = kinds,
        .use = "feature film, all media",
        .territory = "worldwide",
        .expires_at = expires,
        .document_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    };
    int64_t id = 0;
    rs_error e;
    cr_assert_eq(ledger_consent_add(lg, &c, 1000, &id, &e), RS_OK, "%s", e.msg);
    return id;
}

static rs_err gate(unsigned likeness, const char *params, int64_t now, rs_error *e)
{
    cJSON *p = cJSON_Parse(params);
    rs_err rc = ledger_consent_gate(lg, "feature", likeness, p, now, NULL, e);
    cJSON_Delete(p);
    return rc;
}

Test(ledger, consent_gate)
{
    rs_error e;
    unsigned face = LEDGER_LIKENESS_FACE, eyes = LEDGER_LIKENESS_EYES;
    /* Non-likeness work (wire removal) needs no consent and no performers. */
    cr_assert_eq(gate(0, "{}", 2000, &e), RS_OK);
    /* Likeness work without any consent: refused, naming the performer. */
    cr_assert_eq(gate(face, "{\"performers\":[\"Ada Lovelace\"]}", 2000, &e), RS_EPERM);
    cr_assert_not_null(strstr(e.msg, "performer 'Ada Lovelace' has no valid consent for face"),
                       "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, "no consent on record"), "%s", e.msg);
    /* Likeness work naming nobody is refused. */
    cr_assert_eq(gate(face, "{}", 2000, &e), RS_EPERM);
    cr_assert_eq(gate(face, "{\"performers\":\"Ada\"}", 2000, &e), RS_EINVAL);

    int64_t id = grant("Ada Lovelace", face | LEDGER_LIKENESS_VOICE, 0);
    cr_assert_eq(gate(face, "{\"performers\":[\"Ada Lovelace\"]}", 2000, &e), RS_OK, "%s", e.msg);
    /* Not covered: eyes. */
    cr_assert_eq(gate(face | eyes, "{\"performers\":[\"Ada Lovelace\"]}", 2000, &e), RS_EPERM);
    cr_assert_not_null(strstr(e.msg, "for eyes"), "%s", e.msg);
    /* A second performer without consent is named. */
    cr_assert_eq(gate(face, "{\"performers\":[\"Ada Lovelace\",\"Bob\"]}", 2000, &e), RS_EPERM);
    cr_assert_not_null(strstr(e.msg, "'Bob'"), "%s", e.msg);

    /* Expired consent: refused. */
    grant("Carol", face, 3000);
    cr_assert_eq(gate(face, "{\"performers\":[\"Carol\"]}", 2999, &e), RS_OK);
    cr_assert_eq(gate(face, "{\"performers\":[\"Carol\"]}", 3000, &e), RS_EPERM);
    cr_assert_not_null(strstr(e.msg, "consent expired"), "%s", e.msg);

    /* Revocation blocks later checks. */
    cr_assert_eq(ledger_consent_revoke(lg, id, "withdrawn by agent", 4000, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(ledger_consent_revoke(lg, id, "again", 4001, &e), RS_ESTATE);
    cr_assert_eq(gate(face, "{\"performers\":[\"Ada Lovelace\"]}", 4000, &e), RS_EPERM);
    cr_assert_not_null(strstr(e.msg, "consent revoked"), "%s", e.msg);

    cJSON *list = NULL;
    cr_assert_eq(ledger_consent_list(lg, "feature", NULL, 4000, &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 2);
    const cJSON *c = NULL;
    int revoked = 0, expired = 0;
    cJSON_ArrayForEach(c, list)
    {
        const char *s = cJSON_GetObjectItem(c, "state")->valuestring;
        revoked += strcmp(s, "revoked") == 0;
        expired += strcmp(s, "expired") == 0;
    }
    cr_assert_eq(revoked, 1);
    cr_assert_eq(expired, 1);
    cJSON_Delete(list);
    /* Consents cannot be deleted from the database. */
    cr_assert_neq(sqlite3_exec(store_sqlite(st), "DELETE FROM consent", NULL, NULL, NULL),
                  SQLITE_OK);

    /* Grants and revocations are in the signed chain. */
    size_t len;
    char *t = export_text("feature", &len);
    unsigned char pk[32];
    project_pk("feature", pk);
    cJSON *events = NULL;
    cr_assert_eq(ledger_verify(t, len, pk, NULL, &events, &e), RS_OK, "%s", e.msg);
    int granted = 0, rev = 0;
    cJSON_ArrayForEach(c, events)
    {
        const char *ty = cJSON_GetObjectItem(c, "type")->valuestring;
        granted += strcmp(ty, "consent_granted") == 0;
        rev += strcmp(ty, "consent_revoked") == 0;
    }
    cr_assert_eq(granted, 2);
    cr_assert_eq(rev, 1);
    cJSON_Delete(events);
    free(t);
}

/* ---- hashes -------------------------------------------------------------------- */

Test(ledger, sha256_matches_libsodium_and_sha256sum)
{
    /* Every length around the block and padding boundaries, and a large one. */
    size_t big = (1u << 20) + 13;
    unsigned char *buf = malloc(big);
    for (size_t i = 0; i < big; i++) {
        buf[i] = (unsigned char)(i * 131 + (i >> 7));
    }
    for (size_t n = 0; n < 300; n++) {
        char got[LEDGER_HEX], want[LEDGER_HEX];
        unsigned char h[32];
        ledger_hash_bytes(buf, n, got);
        crypto_hash_sha256(h, buf, n);
        ledger_hex(h, 32, want);
        cr_assert_str_eq(got, want, "length %zu", n);
    }
    char got[LEDGER_HEX], want[LEDGER_HEX], file[LEDGER_HEX];
    unsigned char h[32];
    ledger_hash_bytes(buf, big, got);
    crypto_hash_sha256(h, buf, big);
    ledger_hex(h, 32, want);
    cr_assert_str_eq(got, want);
    /* The streamed file hash equals sha256sum's. */
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/blob", dir);
    rs_error e;
    cr_assert_eq(rs_fs_write_atomic(p, buf, big, &e), RS_OK);
    cr_assert_eq(ledger_hash_file(p, file, &e), RS_OK);
    cr_assert_str_eq(file, want);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", p);
    FILE *f = popen(cmd, "r");
    char line[256] = "";
    cr_assert_not_null(fgets(line, sizeof line, f));
    pclose(f);
    cr_assert_eq(strncmp(line, want, 64), 0, "sha256sum says %.64s", line);
    free(buf);
}

/* Rewrites an output with the labels of event (altered yes). */
static void relabel(const char *path, const char *event)
{
    rs_error e;
    media_frame *f = NULL;
    cr_assert_eq(media_image_read(path, NULL, &f, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(ledger_label_frame(f, "feature", event, "model-7f3a", &e), RS_OK);
    media_write_opts wo = {.format = MEDIA_FORMAT_PNG};
    cr_assert_eq(media_image_write(path, f, &wo, &e), RS_OK, "%s", e.msg);
    media_frame_destroy(f);
}

Test(ledger, outputs_are_labelled_with_their_jobs_authorisation)
{
    altered a;
    make_frames(&a);
    rs_error e;
    cJSON *params = cJSON_Parse("{\"frames\":\"x\",\"config\":{\"b\":1,\"a\":2}}");
    ledger_authorisation au = {.project = "feature",
                               .job_id = 90,
                               .kind = "removal_infer",
                               .model = "m.st",
                               .params = params};
    char h[LEDGER_HEX], h2[LEDGER_HEX];
    bool created = false;
    cr_assert_eq(ledger_job_authorise(lg, &au, 4000, h, &created, &e), RS_OK, "%s", e.msg);
    cr_assert(created);
    /* A second lease of the same job gets the same event. */
    cr_assert_eq(ledger_job_authorise(lg, &au, 4100, h2, &created, &e), RS_OK);
    cr_assert(!created);
    cr_assert_str_eq(h, h2);
    bool found = false;
    cr_assert_eq(ledger_job_authorisation(lg, "feature", 91, 0, h2, &found, &e), RS_OK);
    cr_assert(!found);
    cJSON *result = job_result_of(&a);
    ledger_job_spec j = {.project = "feature",
                         .job_id = 90,
                         .kind = "removal_infer",
                         .params = params,
                         .result = result};
    /* Outputs that do not carry the label are refused, naming the file. */
    cr_assert_eq(ledger_record_job(lg, &j, 5000, &e), RS_EFORMAT);
    cr_assert_not_null(strstr(e.msg, a.out[0]), "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, "no rushes:ledger_event label"), "%s", e.msg);
    for (int i = 0; i < NFRAMES; i++) {
        relabel(a.out[i], h);
    }
    cr_assert_eq(ledger_record_job(lg, &j, 5000, &e), RS_OK, "%s", e.msg);
    ledger_audit_sel sel = {.job_id = 90};
    cJSON *r = audit(&sel);
    char *s = cJSON_Print(r);
    cr_assert(rep_ok(r), "%s", s);
    free(s);
    cJSON_Delete(r);
    cJSON *events = NULL;
    cr_assert_eq(ledger_events(lg, "feature", &events, &e), RS_OK);
    const cJSON *p = cJSON_GetObjectItem(cJSON_GetArrayItem(events, 0), "payload");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "type")->valuestring, "alteration_authorised");
    char *canon = ledger_json_canonical(params);
    char ph[LEDGER_HEX];
    ledger_hash_bytes(canon, strlen(canon), ph);
    free(canon);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "params_sha256")->valuestring, ph);
    p = cJSON_GetObjectItem(cJSON_GetArrayItem(events, 1), "payload");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "authorised_by")->valuestring, h);
    cJSON_Delete(events);
    /* A label swapped after the fact (another event's hash) fails the audit,
     * naming the file and frame. */
    relabel(a.out[1], "00ff");
    r = audit(&sel);
    s = cJSON_Print(r);
    cr_assert(!rep_ok(r), "%s", s);
    cr_assert(has_failure(r, 1, "output label: label rushes:ledger_event names event 00ff"), "%s",
              s);
    cr_assert(!has_failure(r, 2, ""), "only frame 1 fails: %s", s);
    free(s);
    cJSON_Delete(r);
    /* An alteration citing another job's authorisation fails too. */
    au.job_id = 91;
    cr_assert_eq(ledger_job_authorise(lg, &au, 6000, h2, &created, &e), RS_OK);
    relabel(a.out[3], h2);
    ledger_alteration al = {.project = "feature",
                            .job_id = 92,
                            .kind = "removal_infer",
                            .frame = 3,
                            .source_path = a.src[3],
                            .output_path = a.out[3],
                            .authorised_by = h2};
    cr_assert_eq(ledger_record_alteration(lg, &al, 6100, NULL, &e), RS_OK, "%s", e.msg);
    sel.job_id = 92;
    r = audit(&sel);
    s = cJSON_Print(r);
    cr_assert(has_failure(r, 3, "not an authorisation of job 92"), "%s", s);
    free(s);
    cJSON_Delete(r);
    cJSON_Delete(result);
    cJSON_Delete(params);
}

Test(ledger, labels_written_to_mov_read_back_by_ffprobe)
{
    rs_error e;
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/deliverable.mov", dir);
    media_video_writer *w = NULL;
    cr_assert_eq(media_video_writer_open(p, 64, 48, 24, 1, MEDIA_PRORES_422_HQ, &w, &e), RS_OK,
                 "%s", e.msg);
    cr_assert_eq(ledger_label_video(w, true, "feature", "ab12", "", &e), RS_OK, "%s", e.msg);
    media_frame *f = NULL;
    cr_assert_eq(media_frame_create(64, 48, 3, MEDIA_SAMPLE_U8, &f, &e), RS_OK);
    for (int i = 0; i < 2; i++) {
        memset(f->data, 40 * i, media_frame_bytes(f));
        cr_assert_eq(media_video_writer_add(w, f, &e), RS_OK, "%s", e.msg);
    }
    media_frame_destroy(f);
    /* Too late once the header is written. */
    cr_assert_neq(ledger_label_video(w, false, "feature", "cd34", "m", &e), RS_OK);
    cr_assert_eq(media_video_writer_finish(w, &e), RS_OK, "%s", e.msg);
    media_video *v = NULL;
    cr_assert_eq(media_video_open(p, &v, &e), RS_OK, "%s", e.msg);
    cr_assert_str_eq(media_video_metadata(v, "rushes:altered"), "yes");
    cr_assert_str_eq(media_video_metadata(v, "rushes:ledger_event"), "ab12");
    cr_assert_str_eq(media_video_metadata(v, "rushes:model"), "none");
    cr_assert_str_eq(media_video_metadata(v, "rushes:project"), "feature");
    media_video_close(v);
    char cmd[PATH_MAX + 128], out[8192];
    snprintf(cmd, sizeof cmd, "ffprobe -v error -show_format '%s' 2>&1", p);
    run_capture(cmd, out, sizeof out);
    cr_assert_not_null(strstr(out, "TAG:rushes:ledger_event=ab12"), "ffprobe: %s", out);
    cr_assert_not_null(strstr(out, "TAG:rushes:altered=yes"), "ffprobe: %s", out);
    cr_assert_not_null(strstr(out, "TAG:rushes:project=feature"), "ffprobe: %s", out);
}

/* pngfast.c (internal): the audit's PNG path. */
rs_err ledger_png_fast_count(const uint8_t *sbuf, size_t slen, const uint8_t *obuf, size_t olen,
                             const ledger_mask *m, uint64_t *inside, uint64_t *outside,
                             uint32_t *fx, uint32_t *fy, media_frame **labels, rs_error *e);

/* The audit's PNG fast path skips unfiltering rows it can prove equal (the
 * rows under the last changed one, rows whose filtered bytes match over an
 * equal row); it must count exactly what a full decode and diff count,
 * wherever the change is: first row, last row, last pixel, one row above
 * rows that are equal again. */
Test(ledger, png_fast_path_counts_what_a_full_decode_counts)
{
    const uint32_t w = 97, h = 61;
    rs_error e;
    media_frame *f = NULL;
    cr_assert_eq(media_frame_create(w, h, 3, MEDIA_SAMPLE_U8, &f, &e), RS_OK);
    uint32_t seed = 7;
    char sp[PATH_MAX + 16], op[PATH_MAX + 16];
    snprintf(sp, sizeof sp, "%s/fast_s.png", dir);
    snprintf(op, sizeof op, "%s/fast_o.png", dir);
    media_write_opts wo = {.format = MEDIA_FORMAT_PNG};
    for (int round = 0; round < 24; round++) {
        for (uint32_t y = 0; y < h; y++) {
            for (uint32_t x = 0; x < w; x++) {
                uint8_t *p = media_frame_at(f, x, y, 0);
                seed = seed * 1664525u + 1013904223u;
                p[0] = (uint8_t)(x * 2 + (uint32_t)round);
                p[1] = (uint8_t)(y * 3);
                p[2] = (uint8_t)((seed >> 24) & (round % 2 ? 255 : 7));
            }
        }
        cr_assert_eq(media_image_write(sp, f, &wo, &e), RS_OK, "%s", e.msg);
        /* Where the change goes: first row, last row, last pixel, a band. */
        uint32_t y0 = round % 4 == 0 ? 0 : round % 4 == 1 ? h - 1 : (uint32_t)(seed >> 8) % h;
        uint32_t y1 = round % 4 == 3 ? (y0 + 5 < h ? y0 + 5 : h) : y0 + 1;
        uint32_t x0 = round % 4 == 2 ? w - 1 : (uint32_t)(seed >> 16) % w;
        for (uint32_t y = y0; y < y1; y++) {
            uint8_t *p = media_frame_at(f, x0, y, 0);
            p[round % 3] ^= (uint8_t)(1u << (round % 8));
        }
        cr_assert_eq(media_image_write(op, f, &wo, &e), RS_OK, "%s", e.msg);
        char *sb = NULL, *ob = NULL;
        size_t sl = 0, ol = 0;
        cr_assert_eq(rs_fs_read_all(sp, 1 << 24, &sb, &sl, &e), RS_OK);
        cr_assert_eq(rs_fs_read_all(op, 1 << 24, &ob, &ol, &e), RS_OK);
        media_frame *s = NULL, *o = NULL;
        cr_assert_eq(media_image_decode(sp, sb, sl, NULL, &s, &e), RS_OK);
        cr_assert_eq(media_image_decode(op, ob, ol, NULL, &o, &e), RS_OK);
        ledger_mask *diff = NULL, *empty = NULL;
        uint64_t changed = 0;
        ledger_bbox bb;
        cr_assert_eq(ledger_mask_diff(s, o, &diff, &changed, &bb, &e), RS_OK);
        cr_assert_eq(changed, y1 - y0, "round %d", round);
        cr_assert_eq(ledger_mask_create(w, h, &empty, &e), RS_OK);
        uint64_t in = 0, out = 0;
        uint32_t fx = 0, fy = 0;
        media_frame *lab = NULL;
        cr_assert_eq(ledger_png_fast_count((const uint8_t *)sb, sl, (const uint8_t *)ob, ol, empty,
                                           &in, &out, &fx, &fy, &lab, &e),
                     RS_OK, "round %d: fast path declined", round);
        cr_assert_eq(in, 0);
        cr_assert_eq(out, changed, "round %d: rows %u..%u: fast path counts %llu, decode %llu",
                     round, y0, y1, (unsigned long long)out, (unsigned long long)changed);
        cr_assert_eq(fx, x0);
        cr_assert_eq(fy, y0);
        media_frame_destroy(lab);
        lab = NULL;
        cr_assert_eq(ledger_png_fast_count((const uint8_t *)sb, sl, (const uint8_t *)ob, ol, diff,
                                           &in, &out, &fx, &fy, &lab, &e),
                     RS_OK);
        cr_assert_eq(in, changed);
        cr_assert_eq(out, 0);
        media_frame_destroy(lab);
        ledger_mask_destroy(diff);
        ledger_mask_destroy(empty);
        media_frame_destroy(s);
        media_frame_destroy(o);
        free(sb);
        free(ob);
    }
    media_frame_destroy(f);
}
