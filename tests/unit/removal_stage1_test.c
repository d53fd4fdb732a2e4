/*
 * removal_stage1_test.c: stage 1 of removal (tasks/removal): homography
 * recovery on a real frame warped by a known transform, propagation on a
 * sequence translated by known motion, the spatial fill's promise to leave
 * every non-hole pixel bit-identical, determinism of synthetic wires, and
 * the in-mask metrics against hand-computed values.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fill.h"
#include "frame.h"
#include "metrics.h"
#include "propagate.h"
#include "video.h"
#include "wires.h"

/* A real frame from the bundled Tears of Steel sample, as float RGB. */
static float *real_frame(uint32_t *w, uint32_t *h)
{
    rs_error e;
    media_video *v = NULL;
    media_frame *f = NULL;
    cr_assert_eq(media_video_open(RS_SOURCE_DIR "/samples/clip_01_tears_of_steel.mp4", &v, &e),
                 RS_OK, "%s", e.msg);
    cr_assert_eq(media_video_read(v, 40, MEDIA_SAMPLE_U8, &f, &e), RS_OK, "%s", e.msg);
    media_video_close(v);
    *w = f->width;
    *h = f->height;
    size_t np = (size_t)f->width * f->height;
    float *rgb = malloc(np * 3 * sizeof(float));
    cr_assert_not_null(rgb);
    for (size_t i = 0; i < np; i++) {
        for (uint32_t k = 0; k < 3; k++) {
            rgb[i * 3 + k] = (float)f->data[i * f->channels + k] / 255.0f;
        }
    }
    media_frame_destroy(f);
    return rgb;
}

static void map(const double h[9], double x, double y, double *ox, double *oy)
{
    double z = h[6] * x + h[7] * y + h[8];
    *ox = (h[0] * x + h[1] * y + h[2]) / z;
    *oy = (h[3] * x + h[4] * y + h[5]) / z;
}

/* dst(p) = src(Hinv p), bilinear, edge clamped. */
static void warp(const float *src, uint32_t w, uint32_t h, const double hinv[9], float *dst)
{
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            double sx;
            double sy;
            map(hinv, x, y, &sx, &sy);
            sx = sx < 0 ? 0 : (sx > w - 1 ? w - 1 : sx);
            sy = sy < 0 ? 0 : (sy > h - 1 ? h - 1 : sy);
            uint32_t x0 = (uint32_t)sx;
            uint32_t y0 = (uint32_t)sy;
            uint32_t x1 = x0 + 1 < w ? x0 + 1 : x0;
            uint32_t y1 = y0 + 1 < h ? y0 + 1 : y0;
            float ax = (float)(sx - x0);
            float ay = (float)(sy - y0);
            for (int k = 0; k < 3; k++) {
                dst[((size_t)y * w + x) * 3 + k] =
                    (1 - ay) * ((1 - ax) * src[((size_t)y0 * w + x0) * 3 + k] +
                                ax * src[((size_t)y0 * w + x1) * 3 + k]) +
                    ay * ((1 - ax) * src[((size_t)y1 * w + x0) * 3 + k] +
                          ax * src[((size_t)y1 * w + x1) * 3 + k]);
            }
        }
    }
}

Test(removal_stage1, homography_recovers_known_rotation_and_shift)
{
    uint32_t w;
    uint32_t h;
    float *a = real_frame(&w, &h);
    float *b = malloc((size_t)w * h * 3 * sizeof(float));
    cr_assert_not_null(b);
    /* B = A rotated 2 degrees about the centre, scaled 1.02, shifted (6.5, -3.25). */
    double th = 2.0 * M_PI / 180.0;
    double s = 1.02;
    double cx = w / 2.0;
    double cy = h / 2.0;
    double hf[9] = {s * cos(th), -s * sin(th), 0, s * sin(th), s * cos(th), 0, 0, 0, 1};
    hf[2] = cx - hf[0] * cx - hf[1] * cy + 6.5;
    hf[5] = cy - hf[3] * cx - hf[4] * cy - 3.25;
    /* Inverse of a similarity: rotate back by -th, scale 1/s. */
    double is = 1.0 / s;
    double hi[9] = {is * cos(th), is * sin(th), 0, -is * sin(th), is * cos(th), 0, 0, 0, 1};
    hi[2] = -(hi[0] * hf[2] + hi[1] * hf[5]);
    hi[5] = -(hi[3] * hf[2] + hi[4] * hf[5]);
    warp(a, w, h, hi, b);
    /* A hole in the middle of A must not matter: features stay off it. */
    uint8_t *ma = calloc((size_t)w * h, 1);
    cr_assert_not_null(ma);
    for (uint32_t y = h / 3; y < h / 2; y++) {
        for (uint32_t x = w / 3; x < w / 2; x++) {
            ma[(size_t)y * w + x] = 255;
        }
    }
    double est[9];
    float q = 0.0f;
    rs_error e;
    cr_assert_eq(removal_homography_estimate(a, ma, b, NULL, w, h, 0, est, &q, &e), RS_OK, "%s",
                 e.msg);
    cr_assert_gt(q, 0.3f, "inlier share %f", (double)q);
    double worst = 0.0;
    for (int i = 0; i < 25; i++) {
        double x = w * (0.1 + 0.2 * (i % 5));
        double y = h * (0.1 + 0.2 * (i / 5));
        double ex;
        double ey;
        double tx;
        double ty;
        map(est, x, y, &ex, &ey);
        map(hf, x, y, &tx, &ty);
        double d = hypot(ex - tx, ey - ty);
        worst = d > worst ? d : worst;
    }
    cr_assert_lt(worst, 0.5, "homography off by %.3f px", worst);
    free(a);
    free(b);
    free(ma);
}

/* A sequence of crops of one real frame, each shifted by (3t, 2t) px, with
   a vertical bar hole that moves the other way. */
Test(removal_stage1, propagation_fills_translated_sequence_nearly_exactly)
{
    uint32_t fw;
    uint32_t fh;
    float *src = real_frame(&fw, &fh);
    enum { N = 9 };
    const uint32_t w = 320;
    const uint32_t h = 200;
    cr_assert(fw >= w + 3 * N + 8 && fh >= h + 2 * N + 8);
    float *rgb[N];
    uint8_t *mask[N];
    removal_fill_out outs[N];
    for (uint32_t t = 0; t < N; t++) {
        rgb[t] = malloc((size_t)w * h * 3 * sizeof(float));
        mask[t] = calloc((size_t)w * h, 1);
        outs[t].propagated = malloc((size_t)w * h * 3 * sizeof(float));
        outs[t].spatial = malloc((size_t)w * h * 3 * sizeof(float));
        outs[t].blend = malloc((size_t)w * h * 3 * sizeof(float));
        outs[t].confidence = malloc((size_t)w * h * sizeof(float));
        cr_assert(rgb[t] && mask[t] && outs[t].propagated && outs[t].spatial && outs[t].blend &&
                  outs[t].confidence);
        uint32_t ox = 3 * t + 4;
        uint32_t oy = 2 * t + 4;
        for (uint32_t y = 0; y < h; y++) {
            memcpy(&rgb[t][(size_t)y * w * 3], &src[((size_t)(y + oy) * fw + ox) * 3],
                   (size_t)w * 3 * sizeof(float));
        }
        uint32_t bx = 150 - 6 * t;
        for (uint32_t y = 30; y < 170; y++) {
            for (uint32_t x = bx; x < bx + 10; x++) {
                mask[t][(size_t)y * w + x] = 255;
            }
        }
    }
    /* Truth for the middle frame is its own crop before the hole. */
    removal_clip clip = {.width = w, .height = h, .nframes = N,
                         .rgb = (const float *const *)rgb, .mask = (const uint8_t *const *)mask};
    removal_stage1_opts o = removal_stage1_opts_default();
    o.range = 4;
    rs_error e;
    cr_assert_eq(removal_stage1(&clip, &o, outs, &e), RS_OK, "%s", e.msg);
    uint32_t t = N / 2;
    double sum = 0.0;
    double conf = 0.0;
    size_t n = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        if (mask[t][i] < 128) {
            continue;
        }
        for (int k = 0; k < 3; k++) {
            sum += fabs(outs[t].propagated[i * 3 + k] - rgb[t][i * 3 + k]);
        }
        conf += outs[t].confidence[i];
        n++;
    }
    double mae = sum / (3.0 * n);
    cr_assert_lt(mae, 0.006, "mean abs error in hole %.5f", mae);
    cr_assert_gt(conf / n, 0.5, "mean confidence %.3f", conf / n);
    /* And far better than the spatial fill alone would be. */
    double mse_p = removal_mse_masked(outs[t].propagated, rgb[t], mask[t], w, h, NULL);
    double mse_s = removal_mse_masked(outs[t].spatial, rgb[t], mask[t], w, h, NULL);
    cr_assert_lt(mse_p * 4.0, mse_s, "propagated %.6f vs spatial %.6f", mse_p, mse_s);
    for (uint32_t k = 0; k < N; k++) {
        /* Outside the hole, every output is the input bit for bit. */
        for (size_t i = 0; i < (size_t)w * h; i++) {
            if (mask[k][i] >= 128) {
                continue;
            }
            cr_assert_eq(memcmp(&outs[k].propagated[i * 3], &rgb[k][i * 3], 12), 0);
            cr_assert_eq(memcmp(&outs[k].spatial[i * 3], &rgb[k][i * 3], 12), 0);
            cr_assert_eq(memcmp(&outs[k].blend[i * 3], &rgb[k][i * 3], 12), 0);
        }
        free(rgb[k]);
        free(mask[k]);
        free(outs[k].propagated);
        free(outs[k].spatial);
        free(outs[k].blend);
        free(outs[k].confidence);
    }
    free(src);
}

Test(removal_stage1, spatial_fill_leaves_non_hole_pixels_bit_identical)
{
    uint32_t w;
    uint32_t h;
    float *a = real_frame(&w, &h);
    size_t np = (size_t)w * h;
    uint8_t *m = calloc(np, 1);
    float *dst = malloc(np * 3 * sizeof(float));
    cr_assert(m && dst);
    /* A wire-like diagonal, a block, and a hole on the frame edge. */
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            int diag = abs((int)x - (int)y * 2) < 3;
            int block = x > 50 && x < 120 && y > 60 && y < 110;
            int edge = x < 4;
            m[(size_t)y * w + x] = (diag || block || edge) ? 255 : 0;
        }
    }
    rs_error e;
    cr_assert_eq(removal_fill_spatial(a, m, w, h, 3, dst, &e), RS_OK, "%s", e.msg);
    float lo = 1.0f;
    float hi = 0.0f;
    for (size_t i = 0; i < np * 3; i++) {
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    for (size_t i = 0; i < np; i++) {
        if (m[i] < 128) {
            cr_assert_eq(memcmp(&dst[i * 3], &a[i * 3], 12), 0, "pixel %zu changed", i);
        } else {
            for (int k = 0; k < 3; k++) {
                /* A mean of its surroundings stays within the frame's range. */
                cr_assert(dst[i * 3 + k] >= lo - 1e-5f && dst[i * 3 + k] <= hi + 1e-5f);
            }
        }
    }
    /* A flat frame fills flat, exactly enough. */
    for (size_t i = 0; i < np * 3; i++) {
        a[i] = 0.375f;
    }
    cr_assert_eq(removal_fill_spatial(a, m, w, h, 3, dst, &e), RS_OK, "%s", e.msg);
    for (size_t i = 0; i < np * 3; i++) {
        cr_assert_float_eq(dst[i], 0.375f, 1e-5f);
    }
    /* Empty mask: a plain copy; in place works too. */
    memset(m, 0, np);
    cr_assert_eq(removal_fill_spatial(a, m, w, h, 3, a, &e), RS_OK);
    free(a);
    free(m);
    free(dst);
}

Test(removal_stage1, wires_are_deterministic_per_seed_and_move)
{
    const uint32_t w = 200;
    const uint32_t h = 120;
    enum { N = 6 };
    float *al[2][N];
    uint8_t *mk[3][N];
    float col[2][3];
    for (int r = 0; r < 3; r++) {
        for (int t = 0; t < N; t++) {
            mk[r][t] = malloc((size_t)w * h);
            if (r < 2) {
                al[r][t] = malloc((size_t)w * h * sizeof(float));
            }
        }
    }
    rs_error e;
    cr_assert_eq(removal_wires_draw(w, h, N, 42, NULL, al[0], mk[0], col[0], &e), RS_OK, "%s",
                 e.msg);
    cr_assert_eq(removal_wires_draw(w, h, N, 42, NULL, al[1], mk[1], col[1], &e), RS_OK);
    cr_assert_eq(removal_wires_draw(w, h, N, 43, NULL, NULL, mk[2], NULL, &e), RS_OK);
    cr_assert_eq(memcmp(col[0], col[1], sizeof col[0]), 0);
    int differs = 0;
    for (int t = 0; t < N; t++) {
        cr_assert_eq(memcmp(al[0][t], al[1][t], (size_t)w * h * sizeof(float)), 0);
        cr_assert_eq(memcmp(mk[0][t], mk[1][t], (size_t)w * h), 0);
        differs |= memcmp(mk[0][t], mk[2][t], (size_t)w * h) != 0;
        size_t holes = 0;
        for (size_t i = 0; i < (size_t)w * h; i++) {
            /* The mask covers every pixel the wire touched. */
            if (al[0][t][i] > 0.0f) {
                cr_assert_eq(mk[0][t][i], 255);
            }
            cr_assert(mk[0][t][i] == 0 || mk[0][t][i] == 255);
            holes += mk[0][t][i] == 255;
        }
        /* Thin: present, but well under a fifth of the frame. */
        cr_assert_gt(holes, 100);
        cr_assert_lt(holes, (size_t)w * h / 5);
        if (t > 0) {
            cr_assert_neq(memcmp(mk[0][t], mk[0][t - 1], (size_t)w * h), 0, "wire did not move");
        }
    }
    cr_assert(differs, "seeds 42 and 43 drew the same wires");
    removal_wires_opts bad = removal_wires_opts_default();
    bad.width_min = 0.0f;
    cr_assert_eq(removal_wires_draw(w, h, N, 1, &bad, NULL, mk[2], NULL, &e), RS_EINVAL);
    for (int r = 0; r < 3; r++) {
        for (int t = 0; t < N; t++) {
            free(mk[r][t]);
            if (r < 2) {
                free(al[r][t]);
            }
        }
    }
}

Test(removal_stage1, metrics_match_hand_computed_values)
{
    const uint32_t w = 16;
    const uint32_t h = 12;
    size_t np = (size_t)w * h;
    float *truth = malloc(np * 3 * sizeof(float));
    float *out = malloc(np * 3 * sizeof(float));
    uint8_t *m = calloc(np, 1);
    cr_assert(truth && out && m);
    for (size_t i = 0; i < np * 3; i++) {
        truth[i] = 0.25f;
        out[i] = 0.9f; /* huge error outside the mask: must not count */
    }
    for (size_t i = 0; i < np; i++) {
        if (i % 5 == 0) {
            m[i] = 255;
            for (int k = 0; k < 3; k++) {
                out[i * 3 + k] = 0.35f; /* error 0.1 -> MSE 0.01 -> 20 dB */
            }
        }
    }
    cr_assert_float_eq(removal_psnr_masked(out, truth, m, w, h), 20.0, 1e-4);
    cr_assert_float_eq(removal_psnr_masked(truth, truth, m, w, h), 99.0, 1e-9);
    /* SSIM of flat 0.5 against flat 0.25 (no variance):
       (2 * 0.5 * 0.25 + C1) / (0.5^2 + 0.25^2 + C1), C1 = 1e-4. */
    for (size_t i = 0; i < np * 3; i++) {
        out[i] = 0.5f;
    }
    double want = (0.25 + 1e-4) / (0.3125 + 1e-4);
    cr_assert_float_eq(removal_ssim_masked(out, truth, m, w, h, NULL), want, 1e-6);
    cr_assert_float_eq(removal_ssim_masked(truth, truth, m, w, h, NULL), 1.0, 1e-9);
    /* Flicker: output steady at 0.5 while the truth steps 0.25 -> 0.35:
       |0 - 0.1| = 0.1 per sample. */
    float *truth2 = malloc(np * 3 * sizeof(float));
    cr_assert_not_null(truth2);
    for (size_t i = 0; i < np * 3; i++) {
        truth2[i] = 0.35f;
    }
    cr_assert_float_eq(removal_flicker_masked(out, out, truth, truth2, m, m, w, h, NULL), 0.1,
                       1e-6);
    cr_assert_float_eq(removal_flicker_masked(truth, truth2, truth, truth2, m, m, w, h, NULL),
                       0.0, 1e-9);
    /* Pooled over two frames: errors 0.1 and 0.3 on equal masks ->
       MSE (0.01 + 0.09) / 2 = 0.05 -> 13.0103 dB. */
    removal_metrics acc;
    memset(&acc, 0, sizeof acc);
    float *o1 = malloc(np * 3 * sizeof(float));
    float *o2 = malloc(np * 3 * sizeof(float));
    cr_assert(o1 && o2);
    for (size_t i = 0; i < np * 3; i++) {
        o1[i] = 0.35f;
        o2[i] = 0.65f;
    }
    removal_metrics_add(&acc, o1, truth, m, NULL, NULL, NULL, w, h);
    removal_metrics_add(&acc, o2, truth2, m, o1, truth, m, w, h);
    cr_assert_float_eq(removal_metrics_psnr(&acc), 10.0 * log10(1.0 / 0.05), 1e-4);
    /* Output moved +0.3, truth +0.1: flicker 0.2. */
    cr_assert_float_eq(removal_metrics_flicker(&acc), 0.2, 1e-6);
    memset(m, 0, np);
    cr_assert(isnan(removal_psnr_masked(out, truth, m, w, h)));
    free(truth);
    free(truth2);
    free(out);
    free(o1);
    free(o2);
    free(m);
}

Test(removal_stage1, bad_clip_is_refused)
{
    removal_clip clip = {.width = 0, .height = 10, .nframes = 1};
    removal_stage1_state *s = NULL;
    rs_error e;
    cr_assert_eq(removal_stage1_create(&clip, NULL, &s, &e), RS_EINVAL);
    cr_assert_null(s);
    float px[32 * 32 * 3];
    memset(px, 0, sizeof px);
    const float *rgb[2] = {px, px};
    const uint8_t *mask[2] = {NULL, NULL};
    removal_clip c2 = {.width = 32, .height = 32, .nframes = 2, .rgb = rgb, .mask = mask};
    cr_assert_eq(removal_stage1_create(&c2, NULL, &s, &e), RS_EINVAL);
    cr_assert(strstr(e.msg, "frame 0") != NULL, "%s", e.msg);
    removal_stage1_destroy(NULL);
}
