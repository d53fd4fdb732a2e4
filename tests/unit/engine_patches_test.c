/*
 * engine_patches_test.c: random crops for patch training (engine/patches.h).
 * Frames hold values that encode (frame, channel, y, x), so every cropped
 * value shows where it came from: each crop must be the exact window at its
 * reported origin, in input, target and mask alike; CHW and HWC frames give
 * the same batch; the same seed gives the same batches and another seed
 * other ones; origins cover every frame and both extremes of the range; bad
 * frame sets are refused naming the pair; and a batch written into a U-Net
 * reads back as sampled.
 */
#include <string.h>

#include "engine_testutil.h"
#include "patches.h"
#include "unet.h"

#define NF 3
#define FH 11
#define FW 17
#define IC 3
#define TC 2
#define PH 4
#define PW 5
#define NB 6

static float code(int f, int c, int y, int x)
{
    return (float)(f * 100000 + c * 10000 + y * 100 + x);
}

/* CHW and HWC copies of NF frames of c channels; base shifts target codes. */
static void make_frames(float *chw, float *hwc, int c, int base)
{
    for (int f = 0; f < NF; f++) {
        for (int k = 0; k < c; k++) {
            for (int y = 0; y < FH; y++) {
                for (int x = 0; x < FW; x++) {
                    float v = code(f, k + base, y, x);
                    chw[(((size_t)f * c + k) * FH + y) * FW + x] = v;
                    hwc[(((size_t)f * FH + y) * FW + x) * c + k] = v;
                }
            }
        }
    }
}

typedef struct frames {
    float in_chw[NF * IC * FH * FW];
    float in_hwc[NF * IC * FH * FW];
    float tg_chw[NF * TC * FH * FW];
    float tg_hwc[NF * TC * FH * FW];
    float mk_chw[NF * FH * FW];
    float mk_hwc[NF * FH * FW];
    eng_patch_pair chw[NF];
    eng_patch_pair hwc[NF];
} frames;

static eng_image img(const float *d, int c, eng_layout l)
{
    eng_image im = {.data = d, .c = c, .h = FH, .w = FW, .layout = l};
    return im;
}

static frames *frames_new(void)
{
    frames *fr = calloc(1, sizeof *fr);
    cr_assert_not_null(fr);
    make_frames(fr->in_chw, fr->in_hwc, IC, 0);
    make_frames(fr->tg_chw, fr->tg_hwc, TC, 5);
    make_frames(fr->mk_chw, fr->mk_hwc, 1, 8);
    size_t fi = (size_t)IC * FH * FW;
    size_t ft = (size_t)TC * FH * FW;
    size_t fm = (size_t)FH * FW;
    for (int f = 0; f < NF; f++) {
        fr->chw[f].input = img(fr->in_chw + f * fi, IC, ENG_LAYOUT_CHW);
        fr->chw[f].target = img(fr->tg_chw + f * ft, TC, ENG_LAYOUT_CHW);
        fr->chw[f].mask = img(fr->mk_chw + f * fm, 1, ENG_LAYOUT_CHW);
        fr->hwc[f].input = img(fr->in_hwc + f * fi, IC, ENG_LAYOUT_HWC);
        fr->hwc[f].target = img(fr->tg_hwc + f * ft, TC, ENG_LAYOUT_HWC);
        fr->hwc[f].mask = img(fr->mk_hwc + f * fm, 1, ENG_LAYOUT_HWC);
    }
    return fr;
}

typedef struct batch {
    float in[NB * IC * PH * PW];
    float tg[NB * TC * PH * PW];
    float mk[NB * PH * PW];
    int org[NB * 3];
} batch;

static void sample(const eng_patch_pair *pairs, eng_patch_rng *rng, batch *b)
{
    eng_patch_batch pb = {
        .input = b->in, .target = b->tg, .mask = b->mk, .n = NB, .ph = PH, .pw = PW};
    rs_error e = {0};
    cr_assert_eq(eng_patches_sample(pairs, NF, rng, &pb, b->org, &e), RS_OK, "%s",
                 rs_error_text(&e));
}

static void check_window(const float *got, int n, int c, int base, const int *org)
{
    for (int b = 0; b < n; b++) {
        for (int k = 0; k < c; k++) {
            for (int y = 0; y < PH; y++) {
                for (int x = 0; x < PW; x++) {
                    float want = code(org[3 * b], k + base, org[3 * b + 1] + y, org[3 * b + 2] + x);
                    float v = got[(((size_t)b * c + k) * PH + y) * PW + x];
                    cr_assert_eq(v, want, "sample %d c%d (%d,%d): %.0f, want %.0f", b, k, y, x, v,
                                 want);
                }
            }
        }
    }
}

Test(engine_patches, crops_are_the_windows_at_their_origins)
{
    frames *fr = frames_new();
    batch *a = calloc(1, sizeof *a);
    batch *h = calloc(1, sizeof *h);
    eng_patch_rng r1;
    eng_patch_rng r2;
    eng_patch_rng_seed(&r1, 7);
    eng_patch_rng_seed(&r2, 7);
    for (int round = 0; round < 20; round++) {
        sample(fr->chw, &r1, a);
        sample(fr->hwc, &r2, h);
        check_window(a->in, NB, IC, 0, a->org);
        check_window(a->tg, NB, TC, 5, a->org);
        check_window(a->mk, NB, 1, 8, a->org);
        cr_assert(memcmp(a->org, h->org, sizeof a->org) == 0, "HWC drew other origins");
        cr_assert(memcmp(a, h, sizeof *a) == 0, "HWC frames gave another batch than CHW");
    }
    free(a);
    free(h);
    free(fr);
}

Test(engine_patches, same_seed_same_batches_other_seed_others)
{
    frames *fr = frames_new();
    batch *a = calloc(1, sizeof *a);
    batch *b = calloc(1, sizeof *b);
    eng_patch_rng r1;
    eng_patch_rng r2;
    eng_patch_rng_seed(&r1, 42);
    eng_patch_rng_seed(&r2, 42);
    for (int round = 0; round < 5; round++) {
        sample(fr->chw, &r1, a);
        sample(fr->chw, &r2, b);
        cr_assert(memcmp(a, b, sizeof *a) == 0, "round %d differs under one seed", round);
    }
    /* the stream continues: the next batch is not the first one again */
    eng_patch_rng_seed(&r2, 42);
    sample(fr->chw, &r2, b);
    cr_assert(memcmp(a->org, b->org, sizeof a->org) != 0, "the stream restarted");
    eng_patch_rng_seed(&r1, 43);
    sample(fr->chw, &r1, a);
    cr_assert(memcmp(a->org, b->org, sizeof a->org) != 0, "seeds 42 and 43 gave one batch");
    /* a known first draw pins the generator across platforms and refactors */
    eng_patch_rng_seed(&r1, 1);
    sample(fr->chw, &r1, a);
    cr_assert(a->org[0] == 1 && a->org[1] == 5 && a->org[2] == 12,
              "seed 1 first origin: pair %d y %d x %d, was pair 1 y 5 x 12", a->org[0], a->org[1],
              a->org[2]);
    free(a);
    free(b);
    free(fr);
}

Test(engine_patches, origins_cover_every_frame_and_position)
{
    frames *fr = frames_new();
    batch *a = calloc(1, sizeof *a);
    eng_patch_rng r;
    eng_patch_rng_seed(&r, 0);
    int seen_f[NF] = {0};
    int seen_y[FH - PH + 1] = {0};
    int seen_x[FW - PW + 1] = {0};
    for (int round = 0; round < 200; round++) {
        sample(fr->chw, &r, a);
        for (int b = 0; b < NB; b++) {
            cr_assert(a->org[3 * b] >= 0 && a->org[3 * b] < NF);
            cr_assert(a->org[3 * b + 1] >= 0 && a->org[3 * b + 1] <= FH - PH);
            cr_assert(a->org[3 * b + 2] >= 0 && a->org[3 * b + 2] <= FW - PW);
            seen_f[a->org[3 * b]]++;
            seen_y[a->org[3 * b + 1]]++;
            seen_x[a->org[3 * b + 2]]++;
        }
    }
    for (int i = 0; i < NF; i++) {
        cr_assert_gt(seen_f[i], 300, "frame %d drawn %d times of 1200", i, seen_f[i]);
    }
    for (int i = 0; i <= FH - PH; i++) {
        cr_assert_gt(seen_y[i], 50, "y0 %d drawn %d times", i, seen_y[i]);
    }
    for (int i = 0; i <= FW - PW; i++) {
        cr_assert_gt(seen_x[i], 30, "x0 %d drawn %d times", i, seen_x[i]);
    }
    free(a);
    free(fr);
}

Test(engine_patches, bad_frame_sets_are_refused)
{
    frames *fr = frames_new();
    batch *a = calloc(1, sizeof *a);
    eng_patch_rng r;
    eng_patch_rng_seed(&r, 0);
    eng_patch_batch pb = {
        .input = a->in, .target = a->tg, .mask = a->mk, .n = NB, .ph = PH, .pw = PW};
    rs_error e = {0};
    eng_patch_pair p[NF];
    memcpy(p, fr->chw, sizeof p);
    p[2].input.h = PH - 1;
    p[2].target.h = PH - 1;
    p[2].mask.h = PH - 1;
    cr_assert_eq(eng_patches_sample(p, NF, &r, &pb, NULL, &e), RS_EINVAL);
    cr_assert(strstr(e.msg, "pair 2") != NULL && strstr(e.msg, "smaller") != NULL, "%s", e.msg);
    memcpy(p, fr->chw, sizeof p);
    p[1].target.c = 3;
    cr_assert_eq(eng_patches_sample(p, NF, &r, &pb, NULL, &e), RS_EINVAL);
    cr_assert(strstr(e.msg, "pair 1: target") != NULL, "%s", e.msg);
    memcpy(p, fr->chw, sizeof p);
    p[0].target.w = FW - 1;
    cr_assert_eq(eng_patches_sample(p, NF, &r, &pb, NULL, &e), RS_EINVAL);
    cr_assert(strstr(e.msg, "pair 0: target") != NULL, "%s", e.msg);
    memcpy(p, fr->chw, sizeof p);
    p[1].mask.data = NULL;
    cr_assert_eq(eng_patches_sample(p, NF, &r, &pb, NULL, &e), RS_EINVAL);
    cr_assert(strstr(e.msg, "pair 1: mask") != NULL, "%s", e.msg);
    pb.mask = NULL; /* no mask wanted: absent masks are fine */
    cr_assert_eq(eng_patches_sample(p, NF, &r, &pb, NULL, &e), RS_OK, "%s", e.msg);
    memcpy(p, fr->chw, sizeof p);
    p[0].input.layout = (eng_layout)7;
    cr_assert_eq(eng_patches_sample(p, NF, &r, &pb, NULL, &e), RS_EINVAL);
    cr_assert_eq(eng_patches_sample(p, 0, &r, &pb, NULL, &e), RS_EINVAL);
    free(a);
    free(fr);
}

Test(engine_patches, batch_lands_in_the_unet_tensors, .init = t_setup, .fini = t_teardown)
{
    frames *fr = frames_new();
    unet_cfg cfg = {.depth = 2,
                    .base = 4,
                    .in_c = IC,
                    .out_c = TC,
                    .norm_groups = 0,
                    .act = ENG_ACT_RELU,
                    .up = ENG_UP_NEAREST,
                    .loss = ENG_LOSS_MASKED_L1,
                    .seed = 1};
    /* the U-Net needs even sizes at depth 2: 4 x 6 crops of the 11 x 17 frames */
    unet *u = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, &cfg, NB, 4, 6, VK_VARIANT_AUTO, &u, &e), RS_OK, "%s",
                 rs_error_text(&e));
    eng_patch_rng r1;
    eng_patch_rng r2;
    eng_patch_rng_seed(&r1, 9);
    eng_patch_rng_seed(&r2, 9);
    cr_assert_eq(eng_patches_fill_unet(u, fr->hwc, NF, &r1, &e), RS_OK, "%s", rs_error_text(&e));
    size_t ni = (size_t)NB * IC * 4 * 6;
    size_t nt = (size_t)NB * TC * 4 * 6;
    size_t nm = (size_t)NB * 4 * 6;
    float *want = malloc((ni + nt + nm) * sizeof *want);
    float *got = malloc((ni + nt + nm) * sizeof *got);
    eng_patch_batch pb = {
        .input = want, .target = want + ni, .mask = want + ni + nt, .n = NB, .ph = 4, .pw = 6};
    cr_assert_eq(eng_patches_sample(fr->chw, NF, &r2, &pb, NULL, &e), RS_OK, "%s",
                 rs_error_text(&e));
    cr_assert_eq(eng_tensor_read(unet_input(u), got, &e), RS_OK);
    cr_assert_eq(eng_tensor_read(unet_target(u), got + ni, &e), RS_OK);
    cr_assert_eq(eng_tensor_read(unet_mask(u), got + ni + nt, &e), RS_OK);
    cr_assert(memcmp(want, got, (ni + nt + nm) * sizeof *got) == 0,
              "the U-Net's tensors differ from the sampled batch");
    float loss = 0.0f;
    eng_adam opt = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    cr_assert_eq(unet_train_step(u, &opt, &loss, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert(isfinite(loss) && loss > 0.0f, "loss %g", loss);
    /* a network of other channel counts is refused */
    frames *bad = frames_new();
    for (int f = 0; f < NF; f++) {
        bad->chw[f].target.c = 1;
    }
    cr_assert_eq(eng_patches_fill_unet(u, bad->chw, NF, &r1, &e), RS_EINVAL);
    unet_destroy(u);
    free(want);
    free(got);
    free(bad);
    free(fr);
}
