/*
 * removal_kind_test.c: the removal_train / removal_infer kinds end to end
 * in-process (plan -> run -> finalize) on a tiny synthetic 64x48 clip:
 * bad inputs refused with the frame named, training resumes from its
 * checkpoint after a stop, inference leaves every pixel outside the applied
 * mask bit-identical, empty masks alter nothing, all-white masks are refused.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "fs.h"
#include "removal.h"
#include "task.h"
#include "test_tmpdir.h"

#define W 64
#define H 48
#define N 6

static char T_root[256];

static void write_png(const char *path, uint32_t w, uint32_t h, uint32_t ch, const uint8_t *px)
{
    media_frame *f = NULL;
    rs_error e;
    cr_assert_eq(media_frame_create(w, h, ch, MEDIA_SAMPLE_U8, &f, &e), RS_OK);
    memcpy(f->data, px, (size_t)w * h * ch);
    media_write_opts o = {.format = MEDIA_FORMAT_PNG};
    cr_assert_eq(media_image_write(path, f, &o, &e), RS_OK, "%s", rs_error_text(&e));
    media_frame_destroy(f);
}

/* A textured clip panning 1 px a frame; masks: a vertical bar (kind 0),
 * empty (1), all white (2); sized mw x mh. */
static void make_clip(const char *name, int nmasks, int mkind, uint32_t mw, uint32_t mh)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s/frames", T_root, name);
    rs_error e;
    cr_assert_eq(rs_fs_mkdirs(dir, &e), RS_OK);
    snprintf(dir, sizeof dir, "%s/%s/masks", T_root, name);
    cr_assert_eq(rs_fs_mkdirs(dir, &e), RS_OK);
    uint8_t *px = malloc(W * H * 3);
    uint8_t *mk = malloc((size_t)mw * mh);
    for (int t = 0; t < N; t++) {
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                int u = x + t;
                uint32_t hsh = (uint32_t)(u / 4) * 73856093u ^ (uint32_t)(y / 4) * 19349663u;
                px[(y * W + x) * 3 + 0] = (uint8_t)(40 + (hsh % 160));
                px[(y * W + x) * 3 + 1] = (uint8_t)(u * 3 + y);
                px[(y * W + x) * 3 + 2] = (uint8_t)(200 - y * 2);
            }
        }
        char p[512];
        snprintf(p, sizeof p, "%s/%s/frames/f.%04d.png", T_root, name, t + 1);
        write_png(p, W, H, 3, px);
        if (t < nmasks) {
            for (uint32_t y = 0; y < mh; y++) {
                for (uint32_t x = 0; x < mw; x++) {
                    uint8_t v = 0;
                    if (mkind == 0) {
                        v = x >= 30u + (uint32_t)t / 2 && x < 33u + (uint32_t)t / 2 ? 255 : 0;
                    } else if (mkind == 2) {
                        v = 255;
                    }
                    mk[y * mw + x] = v;
                }
            }
            snprintf(p, sizeof p, "%s/%s/masks/m.%04d.png", T_root, name, t + 1);
            write_png(p, mw, mh, 1, mk);
        }
    }
    free(px);
    free(mk);
}

static task_env env_for(int64_t job)
{
    static const char *roots[1];
    roots[0] = T_root;
    task_env env = {
        .media_roots = roots, .nmedia_roots = 1, .data_dir = T_root, .project = "p", .job_id = job};
    return env;
}

static cJSON *params_for(const char *name, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"frames\":\"%s/%s/frames/f.%%04d.png\",\"masks\":\"%s/%s/masks\"%s}", T_root, name,
             T_root, name, extra);
    cJSON *p = cJSON_Parse(text);
    cr_assert_not_null(p, "%s", text);
    return p;
}

static const char *CFG = "\"config\":{\"depth\":2,\"base\":8,\"patch\":32,\"batch\":2,"
                         "\"ckpt_every\":5,\"feather\":1,\"chunk\":4}";

static void setup(void)
{
    test_tmpdir_make(T_root, sizeof T_root, "rs_removal_test");
}

static void teardown(void)
{
    test_tmpdir_remove(T_root);
}

TestSuite(removal_kind, .init = setup, .fini = teardown, .timeout = 120);

static rs_err plan(const char *kind, const char *name, const char *extra, cJSON **tasks,
                   rs_error *e)
{
    const task_kind *k = task_kind_find(kind);
    cr_assert_not_null(k);
    cJSON *p = params_for(name, extra);
    task_env env = env_for(0);
    rs_err rc = k->plan(p, &env, tasks, e);
    cJSON_Delete(p);
    return rc;
}

Test(removal_kind, registered)
{
    cr_assert_not_null(task_kind_find("removal_train"));
    cr_assert_not_null(task_kind_find("removal_infer"));
}

Test(removal_kind, mask_size_differs_names_frame)
{
    make_clip("a", N, 0, 32, 24);
    cJSON *t = NULL;
    rs_error e;
    char extra[512];
    snprintf(extra, sizeof extra, ",%s", CFG);
    cr_assert_eq(plan("removal_train", "a", extra, &t, &e), RS_EINVAL);
    cr_assert(strstr(rs_error_text(&e), "m.0001.png is 32x24") != NULL, "%s", rs_error_text(&e));
    cr_assert(strstr(rs_error_text(&e), "f.0001.png") != NULL, "%s", rs_error_text(&e));
}

Test(removal_kind, fewer_masks_than_frames)
{
    make_clip("b", N - 2, 0, W, H);
    cJSON *t = NULL;
    rs_error e;
    cr_assert_eq(plan("removal_train", "b", "", &t, &e), RS_EINVAL);
    cr_assert(strstr(rs_error_text(&e), "4 masks for 6 frames") != NULL, "%s", rs_error_text(&e));
    cr_assert(strstr(rs_error_text(&e), "f.0005.png") != NULL, "%s", rs_error_text(&e));
}

Test(removal_kind, unknown_from_model)
{
    make_clip("c", N, 0, W, H);
    cJSON *t = NULL;
    rs_error e;
    cr_assert_eq(plan("removal_train", "c", ",\"from\":77", &t, &e), RS_ENOENT);
    cr_assert(strstr(rs_error_text(&e), "unknown model 77") != NULL, "%s", rs_error_text(&e));
    char extra[600];
    snprintf(extra, sizeof extra, ",\"model\":78,\"output\":\"out\"");
    cr_assert_eq(plan("removal_infer", "c", extra, &t, &e), RS_ENOENT);
    cr_assert(strstr(rs_error_text(&e), "unknown model 78") != NULL, "%s", rs_error_text(&e));
    cr_assert_eq(plan("removal_train", "c", ",\"bogus\":1", &t, &e), RS_EINVAL);
    cr_assert_eq(plan("removal_infer", "c", ",\"output\":\"out\"", &t, &e), RS_EINVAL);
}

Test(removal_kind, all_white_mask_refused)
{
    make_clip("d", N, 2, W, H);
    cJSON *t = NULL;
    rs_error e;
    char extra[512];
    snprintf(extra, sizeof extra, ",\"steps\":5,%s", CFG);
    cr_assert_eq(plan("removal_train", "d", extra, &t, &e), RS_OK, "%s", rs_error_text(&e));
    cJSON *res = NULL;
    task_io io = {0};
    cr_assert_eq(task_kind_find("removal_train")->run(cJSON_GetArrayItem(t, 0), &io, &res, &e),
                 RS_EINVAL);
    cr_assert(strstr(rs_error_text(&e), "covers the whole frame") != NULL, "%s", rs_error_text(&e));
    cJSON_Delete(t);
}

static void compare_outside(const char *src, const char *out, const char *mask, bool expect_same)
{
    media_frame *a = NULL, *b = NULL, *m = NULL;
    rs_error e;
    cr_assert_eq(media_image_read(src, NULL, &a, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(media_image_read(out, NULL, &b, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(media_image_read(mask, NULL, &m, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(a->width, b->width);
    cr_assert_eq(a->channels, b->channels);
    size_t np = (size_t)a->width * a->height;
    size_t inside_changed = 0;
    for (size_t p = 0; p < np; p++) {
        bool same = memcmp(a->data + p * a->channels, b->data + p * b->channels, a->channels) == 0;
        if (m->data[p] == 0) {
            cr_assert(same, "%s: pixel %zu outside the mask changed", out, p);
        } else if (!same) {
            inside_changed++;
        }
    }
    if (expect_same) {
        cr_assert_eq(inside_changed, 0);
        cr_assert(media_frame_equal(a, b), "%s differs from its source", out);
    } else {
        cr_assert_gt(inside_changed, 0, "%s: nothing changed inside the mask", out);
    }
    media_frame_destroy(a);
    media_frame_destroy(b);
    media_frame_destroy(m);
}

static cJSON *run_all(const char *kind, cJSON *tasks)
{
    cJSON *results = cJSON_CreateArray();
    const cJSON *tp = NULL;
    cJSON_ArrayForEach(tp, tasks)
    {
        cJSON *r = NULL;
        rs_error e;
        task_io io = {0};
        cr_assert_eq(task_kind_find(kind)->run(tp, &io, &r, &e), RS_OK, "%s", rs_error_text(&e));
        cJSON_AddItemToArray(results, r);
    }
    return results;
}

Test(removal_kind, train_resume_then_infer_outside_bit_identical, .timeout = 240)
{
    make_clip("e", N, 0, W, H);
    cJSON *t = NULL;
    rs_error e;
    char extra[512];
    snprintf(extra, sizeof extra, ",\"steps\":10,\"range\":3,%s", CFG);
    cr_assert_eq(plan("removal_train", "e", extra, &t, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(cJSON_GetArraySize(t), 1);
    const task_kind *tk = task_kind_find("removal_train");
    task_io io = {0};
    cJSON *r = NULL;
    /* Attempt 1 dies after its step-5 checkpoint. */
    setenv(REMOVAL_STOP_AT_ENV, "5", 1);
    cr_assert_eq(tk->run(cJSON_GetArrayItem(t, 0), &io, &r, &e), RS_ECANCELED, "%s",
                 rs_error_text(&e));
    unsetenv(REMOVAL_STOP_AT_ENV);
    /* Attempt 2 resumes from step 5, not 0. */
    cr_assert_eq(tk->run(cJSON_GetArrayItem(t, 0), &io, &r, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(cJSON_GetObjectItem(r, "resumed_from")->valuedouble, 5);
    cr_assert_eq(cJSON_GetObjectItem(r, "steps")->valuedouble, 10);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "trained_on")), N);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "masks")), N);
    cr_assert_not_null(cJSON_GetObjectItem(r, "checkpoint_hash"));
    /* New models are residual on stage 1's blend, and their lineage says so. */
    const cJSON *rcfg = cJSON_GetObjectItem(r, "config");
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(rcfg, "residual")));
    cr_assert_eq(cJSON_GetObjectItem(rcfg, "residual")->valuedouble, 1);
    cJSON *results = cJSON_CreateArray();
    cJSON_AddItemToArray(results, r);
    cJSON *jr = NULL, *clips = NULL;
    task_env env = env_for(5);
    cJSON *params = params_for("e", extra);
    cr_assert_eq(tk->finalize(params, results, &env, &jr, &clips, &e), RS_OK, "%s",
                 rs_error_text(&e));
    const cJSON *model = cJSON_GetObjectItem(jr, "model");
    cr_assert_not_null(model);
    char mp[512];
    removal_train_model_path(T_root, "p", 5, mp, sizeof mp);
    cr_assert_str_eq(cJSON_GetObjectItem(model, "checkpoint")->valuestring, mp);
    struct stat st;
    cr_assert_eq(stat(mp, &st), 0);
    cJSON_Delete(params);
    cJSON_Delete(results);
    cJSON_Delete(jr);
    cJSON_Delete(t);

    /* Infer from that train job: 2 tasks (chunk 4 of 6 frames). */
    snprintf(extra, sizeof extra, ",\"train_job\":5,\"range\":3,\"output\":\"out\",%s", CFG);
    cr_assert_eq(plan("removal_infer", "e", extra, &t, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(cJSON_GetArraySize(t), 2);
    results = run_all("removal_infer", t);
    const task_kind *ik = task_kind_find("removal_infer");
    params = params_for("e", extra);
    cr_assert_eq(ik->finalize(params, results, &env, &jr, &clips, &e), RS_OK, "%s",
                 rs_error_text(&e));
    const cJSON *alts = cJSON_GetObjectItem(jr, "alterations");
    cr_assert_eq(cJSON_GetArraySize(alts), N);
    const cJSON *a = NULL;
    cJSON_ArrayForEach(a, alts)
    {
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(a, "frame")));
        compare_outside(cJSON_GetObjectItem(a, "source")->valuestring,
                        cJSON_GetObjectItem(a, "output")->valuestring,
                        cJSON_GetObjectItem(a, "mask")->valuestring, false);
    }
    const cJSON *sheet = cJSON_GetObjectItem(jr, "contact_sheet");
    cr_assert_not_null(sheet);
    media_frame *sf = NULL;
    cr_assert_eq(media_image_read(sheet->valuestring, NULL, &sf, &e), RS_OK, "%s",
                 rs_error_text(&e));
    cr_assert_gt(sf->width, 3 * W);
    media_frame_destroy(sf);
    cJSON_Delete(params);
    cJSON_Delete(results);
    cJSON_Delete(jr);
    cJSON_Delete(t);
}

Test(removal_kind, empty_masks_alter_nothing, .timeout = 120)
{
    make_clip("f", N, 1, W, H);
    /* A model to infer with: any checkpoint at the train job's path. */
    cJSON *t = NULL;
    rs_error e;
    char extra[512];
    snprintf(extra, sizeof extra, ",\"train_job\":9,\"output\":\"out-f\",%s", CFG);
    cr_assert_eq(plan("removal_infer", "f", extra, &t, &e), RS_OK, "%s", rs_error_text(&e));
    cJSON *results = run_all("removal_infer", t);
    cJSON *jr = NULL, *clips = NULL;
    task_env env = env_for(10);
    cJSON *params = params_for("f", extra);
    cr_assert_eq(task_kind_find("removal_infer")->finalize(params, results, &env, &jr, &clips, &e),
                 RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(jr, "alterations")), 0);
    cr_assert_eq(cJSON_GetObjectItem(jr, "frames")->valuedouble, N);
    const cJSON *r = NULL;
    cJSON_ArrayForEach(r, results)
    {
        const cJSON *fr = NULL;
        cJSON_ArrayForEach(fr, cJSON_GetObjectItem(r, "frames"))
        {
            compare_outside(cJSON_GetObjectItem(fr, "source")->valuestring,
                            cJSON_GetObjectItem(fr, "output")->valuestring,
                            cJSON_GetObjectItem(fr, "mask")->valuestring, true);
        }
    }
    cJSON_Delete(params);
    cJSON_Delete(results);
    cJSON_Delete(jr);
    cJSON_Delete(t);
}
