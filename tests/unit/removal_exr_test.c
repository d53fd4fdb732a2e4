/*
 * removal_exr_test.c: removal on float sources, calling the kinds' run
 * entry points directly (removal.h) on a tiny 64x48 clip of EXR frames with
 * EXR masks. The outputs must be EXR with the source's float sample type,
 * every sample outside the applied mask bit-identical to the source (HDR
 * values above 1 included), the inside changed, and the ledger labels
 * (rushes:altered, rushes:ledger_event, rushes:model, rushes:project) stored
 * as EXR attributes that OpenEXR's own exrheader reads back; a frame whose
 * mask is empty is written unchanged and labelled "no". Masks of the wrong
 * size are refused at submit (plan reads each header by content) and again
 * by the run, naming the mask.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "fs.h"
#include "ledger.h"
#include "removal.h"
#include "task.h"
#include "test_tmpdir.h"

#define W 64
#define H 48
#define N 5
#define EMPTY_FRAME 2 /* this frame's mask is empty */

static const char *EVENT = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static char T_root[256];

static void setup(void)
{
    test_tmpdir_make(T_root, sizeof T_root, "rs_removal_exr_test");
}

static void teardown(void)
{
    test_tmpdir_remove(T_root);
}

TestSuite(removal_exr, .init = setup, .fini = teardown, .timeout = 120);

static void put(media_frame *f, size_t i, float v)
{
    if (f->sample == MEDIA_SAMPLE_F16) {
        ((uint16_t *)(void *)f->data)[i] = media_float_to_half(v);
    } else {
        ((float *)(void *)f->data)[i] = v;
    }
}

static void write_exr(const char *path, const media_frame *f)
{
    rs_error e;
    media_write_opts o = {.format = MEDIA_FORMAT_EXR, .exr_compression = MEDIA_EXR_ZIP};
    cr_assert_eq(media_image_write(path, f, &o, &e), RS_OK, "%s", rs_error_text(&e));
}

/* A textured linear clip panning 1 px a frame, with highlights above 1.0;
 * masks are one-channel EXR of the same sample type: a 3-px vertical bar
 * drifting right, empty on EMPTY_FRAME, sized mw x mh. */
static void make_clip(const char *name, media_sample s, uint32_t mw, uint32_t mh)
{
    char dir[512];
    rs_error e;
    snprintf(dir, sizeof dir, "%s/%s/frames", T_root, name);
    cr_assert_eq(rs_fs_mkdirs(dir, &e), RS_OK);
    snprintf(dir, sizeof dir, "%s/%s/masks", T_root, name);
    cr_assert_eq(rs_fs_mkdirs(dir, &e), RS_OK);
    for (int t = 0; t < N; t++) {
        media_frame *f = NULL, *m = NULL;
        cr_assert_eq(media_frame_create(W, H, 3, s, &f, &e), RS_OK);
        cr_assert_eq(media_frame_create(mw, mh, 1, s, &m, &e), RS_OK);
        f->colour = MEDIA_COLOUR_LINEAR;
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                int u = x + t;
                uint32_t hsh = (uint32_t)(u / 4) * 73856093u ^ (uint32_t)(y / 4) * 19349663u;
                size_t p = (size_t)y * W + (size_t)x;
                put(f, p * 3 + 0, 0.05f + (float)(hsh % 160) / 200.0f);
                put(f, p * 3 + 1, (float)((u * 3 + y) % 256) / 255.0f);
                /* HDR: a bright streak at 4.0 that must survive untouched */
                put(f, p * 3 + 2, y % 11 == 0 ? 4.0f : 0.8f - (float)y / 100.0f);
            }
        }
        strcpy(m->names[0], "Y");
        for (uint32_t y = 0; y < mh; y++) {
            for (uint32_t x = 0; x < mw; x++) {
                bool in = t != EMPTY_FRAME && x >= 30u + (uint32_t)t / 2 && x < 33u + (uint32_t)t / 2;
                put(m, (size_t)y * mw + x, in ? 1.0f : 0.0f);
            }
        }
        char p[512];
        snprintf(p, sizeof p, "%s/%s/frames/f.%04d.exr", T_root, name, t + 1);
        write_exr(p, f);
        snprintf(p, sizeof p, "%s/%s/masks/m.%04d.exr", T_root, name, t + 1);
        write_exr(p, m);
        media_frame_destroy(f);
        media_frame_destroy(m);
    }
}

/* Task params as the kinds' plans write them (removal.c). */
static cJSON *task_params(const char *name, const char *extra)
{
    char text[8192];
    size_t off = (size_t)snprintf(text, sizeof text, "{\"frames\":[");
    for (int t = 0; t < N; t++) {
        off += (size_t)snprintf(text + off, sizeof text - off, "%s\"%s/%s/frames/f.%04d.exr\"",
                                t ? "," : "", T_root, name, t + 1);
    }
    off += (size_t)snprintf(text + off, sizeof text - off, "],\"masks\":[");
    for (int t = 0; t < N; t++) {
        off += (size_t)snprintf(text + off, sizeof text - off, "%s\"%s/%s/masks/m.%04d.exr\"",
                                t ? "," : "", T_root, name, t + 1);
    }
    snprintf(text + off, sizeof text - off,
             "],\"numbers\":[1,2,3,4,5],\"range\":3,"
             "\"config\":{\"depth\":2,\"base\":8,\"patch\":32,\"batch\":2,\"ckpt_every\":5,"
             "\"feather\":1,\"seed\":3}%s}",
             extra);
    cJSON *p = cJSON_Parse(text);
    cr_assert_not_null(p, "%s", text);
    return p;
}

/* Trains a few steps on the clip; returns the checkpoint path (static). */
static const char *train(const char *name)
{
    static char ckpt[1024];
    char extra[600];
    snprintf(extra, sizeof extra, ",\"steps\":3,\"work\":\"%s/%s/work\"", T_root, name);
    cJSON *tp = task_params(name, extra);
    cJSON *r = NULL;
    rs_error e;
    task_io io = {0};
    cr_assert_eq(removal_train_run(tp, &io, &r, &e), RS_OK, "%s", rs_error_text(&e));
    snprintf(ckpt, sizeof ckpt, "%s", cJSON_GetObjectItem(r, "checkpoint")->valuestring);
    cJSON_Delete(r);
    cJSON_Delete(tp);
    return ckpt;
}

static cJSON *infer(const char *name, const char *model, rs_err want, rs_error *e)
{
    char extra[2048];
    snprintf(extra, sizeof extra,
             ",\"first\":0,\"count\":%d,\"output\":\"%s/%s/out\",\"model\":\"%s\","
             "\"ledger\":{\"event\":\"%s\",\"project\":\"p\"}",
             N, T_root, name, model, EVENT);
    cJSON *tp = task_params(name, extra);
    cJSON *r = NULL;
    task_io io = {0};
    rs_err rc = removal_infer_run(tp, &io, &r, e);
    cr_assert_eq(rc, want, "%s", rs_error_text(e));
    cJSON_Delete(tp);
    return r;
}

/* exrheader's text for path (OpenEXR's own reader, not ours). */
static char *exrheader(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "exrheader '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, p);
    buf[n] = '\0';
    cr_assert_eq(pclose(p), 0, "exrheader %s failed: %s", path, buf);
    return buf;
}

static void check_outputs(const cJSON *res, media_sample s)
{
    const cJSON *frames = cJSON_GetObjectItem(res, "frames");
    cr_assert_eq(cJSON_GetArraySize(frames), N);
    const char *model_hash = cJSON_GetObjectItem(res, "model")->valuestring;
    cr_assert_gt(strlen(model_hash), 0);
    size_t ss = media_sample_size(s);
    int t = 0;
    const cJSON *fr = NULL;
    cJSON_ArrayForEach(fr, frames)
    {
        const char *srcp = cJSON_GetObjectItem(fr, "source")->valuestring;
        const char *outp = cJSON_GetObjectItem(fr, "output")->valuestring;
        const char *maskp = cJSON_GetObjectItem(fr, "mask")->valuestring;
        bool changed = cJSON_IsTrue(cJSON_GetObjectItem(fr, "changed"));
        size_t ol = strlen(outp);
        cr_assert(ol > 4 && strcmp(outp + ol - 4, ".exr") == 0, "output %s is not .exr", outp);
        media_frame *a = NULL, *b = NULL, *m = NULL;
        rs_error e;
        cr_assert_eq(media_image_read(srcp, NULL, &a, &e), RS_OK, "%s", rs_error_text(&e));
        cr_assert_eq(media_image_read(outp, NULL, &b, &e), RS_OK, "%s", rs_error_text(&e));
        cr_assert_eq(media_image_read(maskp, NULL, &m, &e), RS_OK, "%s", rs_error_text(&e));
        cr_assert_eq(b->sample, s, "%s: sample %s, source %s", outp, media_sample_name(b->sample),
                     media_sample_name(s));
        cr_assert_eq(b->width, W);
        cr_assert_eq(b->height, H);
        cr_assert_eq(b->channels, 3);
        cr_assert_eq(m->width, W);
        size_t inside_changed = 0, outside = 0;
        for (size_t p = 0; p < (size_t)W * H; p++) {
            bool same = memcmp(a->data + p * 3 * ss, b->data + p * 3 * ss, 3 * ss) == 0;
            if (m->data[p] == 0) {
                cr_assert(same, "%s: pixel (%zu,%zu) outside the mask changed", outp, p % W,
                          p / W);
                outside++;
            } else if (!same) {
                inside_changed++;
            }
        }
        cr_assert_gt(outside, (size_t)W * H / 2);
        const char *altered = media_frame_meta_get(b, LEDGER_LABEL_ALTERED);
        cr_assert_not_null(altered, "%s: no %s label", outp, LEDGER_LABEL_ALTERED);
        if (t == EMPTY_FRAME) {
            cr_assert_not(changed, "%s: an empty mask changed the frame", outp);
            cr_assert_eq(inside_changed, 0);
            cr_assert_str_eq(altered, "no");
            /* pixels and sample type equal; labels are the only addition */
            cr_assert_eq(memcmp(a->data, b->data, media_frame_bytes(a)), 0);
        } else {
            cr_assert(changed, "%s: not marked changed", outp);
            cr_assert_gt(inside_changed, 0, "%s: nothing changed inside the mask", outp);
            cr_assert_str_eq(altered, "yes");
        }
        cr_assert_str_eq(media_frame_meta_get(b, LEDGER_LABEL_EVENT), EVENT);
        cr_assert_str_eq(media_frame_meta_get(b, LEDGER_LABEL_PROJECT), "p");
        cr_assert_str_eq(media_frame_meta_get(b, LEDGER_LABEL_MODEL), model_hash);
        if (changed) {
            /* what `rushes audit` asks of an altered output */
            cr_assert_eq(ledger_label_check(b, EVENT, &e), RS_OK, "%s: %s", outp,
                         rs_error_text(&e));
        }
        /* The same labels as EXR header attributes, seen by OpenEXR's tool. */
        char *hdr = exrheader(outp);
        cr_assert(strstr(hdr, LEDGER_LABEL_ALTERED) != NULL, "%s", hdr);
        cr_assert(strstr(hdr, LEDGER_LABEL_EVENT) != NULL, "%s", hdr);
        cr_assert(strstr(hdr, EVENT) != NULL, "%s", hdr);
        cr_assert(strstr(hdr, LEDGER_LABEL_PROJECT) != NULL, "%s", hdr);
        cr_assert(strstr(hdr, s == MEDIA_SAMPLE_F16 ? "16-bit floating-point"
                                                    : "32-bit floating-point") != NULL,
                  "%s", hdr);
        free(hdr);
        media_frame_destroy(a);
        media_frame_destroy(b);
        media_frame_destroy(m);
        t++;
    }
}

Test(removal_exr, half_float_outputs_exr_labelled_outside_identical, .timeout = 180)
{
    make_clip("h", MEDIA_SAMPLE_F16, W, H);
    const char *model = train("h");
    rs_error e;
    cJSON *res = infer("h", model, RS_OK, &e);
    check_outputs(res, MEDIA_SAMPLE_F16);
    cJSON_Delete(res);
}

Test(removal_exr, float32_outputs_stay_float32, .timeout = 180)
{
    make_clip("s", MEDIA_SAMPLE_F32, W, H);
    const char *model = train("s");
    rs_error e;
    cJSON *res = infer("s", model, RS_OK, &e);
    check_outputs(res, MEDIA_SAMPLE_F32);
    cJSON_Delete(res);
}

Test(removal_exr, mask_size_differs_refused_by_run)
{
    make_clip("z", MEDIA_SAMPLE_F16, 32, 24);
    rs_error e;
    /* At submit: plan reads every frame's and mask's header by content. */
    char ptext[1024];
    snprintf(ptext, sizeof ptext, "{\"frames\":\"%s/z/frames\",\"masks\":\"%s/z/masks\"}", T_root,
             T_root);
    cJSON *pp = cJSON_Parse(ptext);
    const char *roots[1] = {T_root};
    task_env env = {
        .media_roots = roots, .nmedia_roots = 1, .data_dir = T_root, .project = "p", .job_id = 0};
    cJSON *planned = NULL;
    cr_assert_eq(task_kind_find("removal_train")->plan(pp, &env, &planned, &e), RS_EINVAL);
    cr_assert(strstr(rs_error_text(&e), "mask m.0001.exr is 32x24 but frame 1") != NULL, "%s",
              rs_error_text(&e));
    cJSON_Delete(pp);
    cJSON *r = infer("z", "/nonexistent.safetensors", RS_EINVAL, &e);
    cr_assert_null(r);
    cr_assert(strstr(rs_error_text(&e), "m.0001.exr: mask is 32x24") != NULL, "%s",
              rs_error_text(&e));
    cr_assert(strstr(rs_error_text(&e), "f.0001.exr") != NULL, "%s", rs_error_text(&e));
    char extra[600];
    snprintf(extra, sizeof extra, ",\"steps\":3,\"work\":\"%s/z/work\"", T_root);
    cJSON *tp = task_params("z", extra);
    task_io io = {0};
    cr_assert_eq(removal_train_run(tp, &io, &r, &e), RS_EINVAL);
    cr_assert(strstr(rs_error_text(&e), "mask is 32x24") != NULL, "%s", rs_error_text(&e));
    cJSON_Delete(tp);
}

/* A float (scene-linear) source keeps its highlights under the mask: the
 * 4.0 streak every neighbour shows is filled as 4.0, not clamped to 1.0
 * (run.c clamps only integer outputs). */
Test(removal_exr, hdr_under_mask_not_clipped, .timeout = 180)
{
    make_clip("r", MEDIA_SAMPLE_F16, W, H);
    const char *model = train("r");
    rs_error e;
    cJSON *res = infer("r", model, RS_OK, &e);
    size_t seen = 0;
    float vmax = 0.0f;
    const cJSON *fr = NULL;
    cJSON_ArrayForEach(fr, cJSON_GetObjectItem(res, "frames"))
    {
        media_frame *a = NULL, *b = NULL, *m = NULL;
        cr_assert_eq(media_image_read(cJSON_GetObjectItem(fr, "source")->valuestring, NULL, &a, &e),
                     RS_OK);
        cr_assert_eq(media_image_read(cJSON_GetObjectItem(fr, "output")->valuestring, NULL, &b, &e),
                     RS_OK);
        cr_assert_eq(media_image_read(cJSON_GetObjectItem(fr, "mask")->valuestring, NULL, &m, &e),
                     RS_OK);
        const uint16_t *sa = (const uint16_t *)(const void *)a->data;
        const uint16_t *sb = (const uint16_t *)(const void *)b->data;
        for (size_t p = 0; p < (size_t)W * H; p++) {
            if (m->data[p] == 255 && media_half_to_float(sa[p * 3 + 2]) > 3.9f) {
                float v = media_half_to_float(sb[p * 3 + 2]);
                /* Clamping would give exactly 1.0; the membrane fill across a
                 * thin streak may land anywhere above it. */
                cr_assert_gt(v, 1.05f, "pixel (%zu,%zu): highlight 4.0 filled as %g", p % W,
                             p / W, (double)v);
                vmax = v > vmax ? v : vmax;
                seen++;
            }
        }
        media_frame_destroy(a);
        media_frame_destroy(b);
        media_frame_destroy(m);
    }
    cr_assert_gt(seen, 0);
    cr_assert_gt(vmax, 2.0f, "brightest fill under the mask %g: highlights lost", (double)vmax);
    cJSON_Delete(res);
}
