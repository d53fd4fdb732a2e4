/*
 * metrics.c: in-mask PSNR, SSIM and temporal flicker (metrics.h). SSIM
 * uses separable Gaussian sums over the whole frame (five maps per
 * channel), with the window renormalised where it leaves the frame, and
 * averages the SSIM map only over masked pixels.
 */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

#define SSIM_R 5
#define SSIM_SIGMA 1.5
#define SSIM_C1 (0.01 * 0.01)
#define SSIM_C2 (0.03 * 0.03)

double removal_mse_masked(const float *out, const float *truth, const uint8_t *mask,
                          uint32_t width, uint32_t height, uint64_t *samples)
{
    size_t np = (size_t)width * height;
    double s = 0.0;
    uint64_t n = 0;
    for (size_t i = 0; i < np; i++) {
        if (mask[i] < 128) {
            continue;
        }
        for (int k = 0; k < 3; k++) {
            double d = (double)out[i * 3 + k] - (double)truth[i * 3 + k];
            s += d * d;
        }
        n += 3;
    }
    if (samples) {
        *samples = n;
    }
    return n ? s / (double)n : NAN;
}

double removal_psnr_from_mse(double mse)
{
    if (isnan(mse)) {
        return NAN;
    }
    if (mse <= 1e-10) {
        return 99.0;
    }
    double p = 10.0 * log10(1.0 / mse);
    return p > 99.0 ? 99.0 : p;
}

double removal_psnr_masked(const float *out, const float *truth, const uint8_t *mask,
                           uint32_t width, uint32_t height)
{
    return removal_psnr_from_mse(removal_mse_masked(out, truth, mask, width, height, NULL));
}

/* Separable Gaussian blur of src (one channel) into dst, with the window
   renormalised at the borders, evaluated only where need[] is set (dst
   elsewhere is left alone); rows[] marks pixels whose horizontal pass a
   needed pixel reads. tmp is width*height doubles. */
static void gblur(const double *src, double *dst, double *tmp, uint32_t w, uint32_t h,
                  const double *g, const uint8_t *rows, const uint8_t *need)
{
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            if (!rows[(size_t)y * w + x]) {
                continue;
            }
            double s = 0.0;
            double ws = 0.0;
            for (int k = -SSIM_R; k <= SSIM_R; k++) {
                int xx = (int)x + k;
                if (xx < 0 || xx >= (int)w) {
                    continue;
                }
                s += g[k + SSIM_R] * src[(size_t)y * w + (size_t)xx];
                ws += g[k + SSIM_R];
            }
            tmp[(size_t)y * w + x] = s / ws;
        }
    }
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            if (!need[(size_t)y * w + x]) {
                continue;
            }
            double s = 0.0;
            double ws = 0.0;
            for (int k = -SSIM_R; k <= SSIM_R; k++) {
                int yy = (int)y + k;
                if (yy < 0 || yy >= (int)h) {
                    continue;
                }
                s += g[k + SSIM_R] * tmp[(size_t)yy * w + x];
                ws += g[k + SSIM_R];
            }
            dst[(size_t)y * w + x] = s / ws;
        }
    }
}

double removal_ssim_masked(const float *out, const float *truth, const uint8_t *mask,
                           uint32_t width, uint32_t height, uint64_t *nout)
{
    size_t np = (size_t)width * height;
    uint64_t nm = 0;
    for (size_t i = 0; i < np; i++) {
        nm += mask[i] >= 128;
    }
    if (nout) {
        *nout = 0;
    }
    if (nm == 0) {
        return NAN;
    }
    double g[2 * SSIM_R + 1];
    for (int k = -SSIM_R; k <= SSIM_R; k++) {
        g[k + SSIM_R] = exp(-(double)(k * k) / (2.0 * SSIM_SIGMA * SSIM_SIGMA));
    }
    double *buf = malloc(np * 11 * sizeof(double));
    uint8_t *need = malloc(np);
    uint8_t *rows = calloc(np, 1);
    if (!buf || !need || !rows) {
        free(buf);
        free(need);
        free(rows);
        return NAN;
    }
    /* Only masked pixels are scored: blur there, and pass rows within the
       window's reach above and below them. */
    for (size_t i = 0; i < np; i++) {
        need[i] = mask[i] >= 128;
        if (!need[i]) {
            continue;
        }
        uint32_t x = (uint32_t)(i % width);
        uint32_t y = (uint32_t)(i / width);
        uint32_t y0 = y >= SSIM_R ? y - SSIM_R : 0;
        uint32_t y1 = y + SSIM_R < height ? y + SSIM_R : height - 1;
        for (uint32_t yy = y0; yy <= y1; yy++) {
            rows[(size_t)yy * width + x] = 1;
        }
    }
    double *x = buf;
    double *y = buf + np;
    double *xx = buf + 2 * np;
    double *yy = buf + 3 * np;
    double *xy = buf + 4 * np;
    double *mx = buf + 5 * np;
    double *my = buf + 6 * np;
    double *sxx = buf + 7 * np;
    double *syy = buf + 8 * np;
    double *sxy = buf + 9 * np;
    double *tmp = buf + 10 * np;
    double sum = 0.0;
    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < np; i++) {
            x[i] = out[i * 3 + (size_t)c];
            y[i] = truth[i * 3 + (size_t)c];
            xx[i] = x[i] * x[i];
            yy[i] = y[i] * y[i];
            xy[i] = x[i] * y[i];
        }
        gblur(x, mx, tmp, width, height, g, rows, need);
        gblur(y, my, tmp, width, height, g, rows, need);
        gblur(xx, sxx, tmp, width, height, g, rows, need);
        gblur(yy, syy, tmp, width, height, g, rows, need);
        gblur(xy, sxy, tmp, width, height, g, rows, need);
        for (size_t i = 0; i < np; i++) {
            if (mask[i] < 128) {
                continue;
            }
            double vx = sxx[i] - mx[i] * mx[i];
            double vy = syy[i] - my[i] * my[i];
            double cxy = sxy[i] - mx[i] * my[i];
            double num = (2.0 * mx[i] * my[i] + SSIM_C1) * (2.0 * cxy + SSIM_C2);
            double den = (mx[i] * mx[i] + my[i] * my[i] + SSIM_C1) * (vx + vy + SSIM_C2);
            sum += num / den;
        }
    }
    free(buf);
    free(need);
    free(rows);
    if (nout) {
        *nout = nm * 3;
    }
    return sum / (double)(nm * 3);
}

double removal_flicker_masked(const float *out_prev, const float *out, const float *truth_prev,
                              const float *truth, const uint8_t *mask_prev, const uint8_t *mask,
                              uint32_t width, uint32_t height, uint64_t *nout)
{
    size_t np = (size_t)width * height;
    double s = 0.0;
    uint64_t n = 0;
    for (size_t i = 0; i < np; i++) {
        if (mask[i] < 128 && mask_prev[i] < 128) {
            continue;
        }
        for (size_t k = 0; k < 3; k++) {
            double d = ((double)out[i * 3 + k] - (double)out_prev[i * 3 + k]) -
                       ((double)truth[i * 3 + k] - (double)truth_prev[i * 3 + k]);
            s += fabs(d);
        }
        n += 3;
    }
    if (nout) {
        *nout = n;
    }
    return n ? s / (double)n : NAN;
}

void removal_metrics_add(removal_metrics *m, const float *out, const float *truth,
                         const uint8_t *mask, const float *out_prev, const float *truth_prev,
                         const uint8_t *mask_prev, uint32_t width, uint32_t height)
{
    uint64_t n = 0;
    double mse = removal_mse_masked(out, truth, mask, width, height, &n);
    if (n) {
        m->sse += mse * (double)n;
        m->sse_n += n;
    }
    double ss = removal_ssim_masked(out, truth, mask, width, height, &n);
    if (n) {
        m->ssim_sum += ss * (double)n;
        m->ssim_n += n;
    }
    if (out_prev && truth_prev && mask_prev) {
        double f = removal_flicker_masked(out_prev, out, truth_prev, truth, mask_prev, mask, width,
                                          height, &n);
        if (n) {
            m->flicker_sum += f * (double)n;
            m->flicker_n += n;
        }
    }
}

double removal_metrics_psnr(const removal_metrics *m)
{
    return m->sse_n ? removal_psnr_from_mse(m->sse / (double)m->sse_n) : NAN;
}

double removal_metrics_ssim(const removal_metrics *m)
{
    return m->ssim_n ? m->ssim_sum / (double)m->ssim_n : NAN;
}

double removal_metrics_flicker(const removal_metrics *m)
{
    return m->flicker_n ? m->flicker_sum / (double)m->flicker_n : NAN;
}
