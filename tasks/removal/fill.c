/*
 * fill.c: spatial fill of holes (fill.h). A masked push-pull pyramid gives
 * every hole pixel a value from its surroundings at the scale of the hole;
 * Gauss-Seidel Laplace sweeps over the hole pixels then smooth the seam so
 * the fill is close to the harmonic (membrane) interpolant of the border.
 * Only hole pixels are ever written: the rest of dst is a memcpy of src.
 */
#include "fill.h"

#include <stdlib.h>
#include <string.h>

#define FILL_SWEEPS 40

typedef struct level {
    uint32_t w;
    uint32_t h;
    float *v;  /* premultiplied by weight while pushing, plain after */
    float *wt; /* 0..1 */
} level;

void removal_mask_dilate(const uint8_t *in, uint32_t width, uint32_t height, uint32_t r,
                         uint8_t *out)
{
    /* Separable max: rows into out, then columns via a one-column scratch-free pass
       using a row buffer on the stack-sized heap. */
    uint8_t *tmp = malloc((size_t)width * height);
    if (!tmp) {
        /* Without memory, fall back to the mask itself: callers treat the
           result as "at least the hole", which remains true. */
        memcpy(out, in, (size_t)width * height);
        return;
    }
    for (uint32_t y = 0; y < height; y++) {
        const uint8_t *row = in + (size_t)y * width;
        for (uint32_t x = 0; x < width; x++) {
            uint32_t x0 = x >= r ? x - r : 0;
            uint32_t x1 = x + r < width ? x + r : width - 1;
            uint8_t m = 0;
            for (uint32_t k = x0; k <= x1; k++) {
                if (row[k] >= 128) {
                    m = 255;
                    break;
                }
            }
            tmp[(size_t)y * width + x] = m;
        }
    }
    for (uint32_t y = 0; y < height; y++) {
        uint32_t y0 = y >= r ? y - r : 0;
        uint32_t y1 = y + r < height ? y + r : height - 1;
        for (uint32_t x = 0; x < width; x++) {
            uint8_t m = 0;
            for (uint32_t k = y0; k <= y1; k++) {
                if (tmp[(size_t)k * width + x]) {
                    m = 255;
                    break;
                }
            }
            out[(size_t)y * width + x] = m;
        }
    }
    free(tmp);
}

static void levels_free(level *lv, int n)
{
    for (int i = 0; i < n; i++) {
        free(lv[i].v);
        free(lv[i].wt);
    }
}

rs_err removal_fill_spatial(const float *src, const uint8_t *mask, uint32_t width,
                            uint32_t height, uint32_t channels, float *dst, rs_error *e)
{
    if (!src || !mask || !dst || width == 0 || height == 0 || channels == 0 || channels > 4) {
        return rs_error_set(e, RS_EINVAL, "removal fill: bad arguments (%ux%u, %u channels)",
                            width, height, channels);
    }
    size_t np = (size_t)width * height;
    uint32_t c = channels;
    if (dst != src) {
        memcpy(dst, src, np * c * sizeof(float));
    }
    size_t nhole = 0;
    for (size_t i = 0; i < np; i++) {
        nhole += mask[i] >= 128;
    }
    if (nhole == 0) {
        return RS_OK;
    }
    if (nhole == np) {
        for (size_t i = 0; i < np * c; i++) {
            dst[i] = 0.5f;
        }
        return RS_OK;
    }

    level lv[32];
    int nl = 0;
    rs_err rc = RS_OK;
    uint32_t *holes = NULL;
    memset(lv, 0, sizeof(lv));
    lv[0].w = width;
    lv[0].h = height;
    lv[0].v = malloc(np * c * sizeof(float));
    lv[0].wt = malloc(np * sizeof(float));
    nl = 1;
    if (!lv[0].v || !lv[0].wt) {
        rc = rs_error_set(e, RS_ENOMEM, "removal fill: no memory for %ux%u", width, height);
        goto out;
    }
    for (size_t i = 0; i < np; i++) {
        float w = mask[i] >= 128 ? 0.0f : 1.0f;
        lv[0].wt[i] = w;
        for (uint32_t k = 0; k < c; k++) {
            lv[0].v[i * c + k] = w * src[i * c + k];
        }
    }
    /* Push: 2x2 box sums of premultiplied values until 1x1 or no gap is left. */
    while (nl < 32) {
        level *a = &lv[nl - 1];
        if (a->w == 1 && a->h == 1) {
            break;
        }
        level *b = &lv[nl];
        b->w = (a->w + 1) / 2;
        b->h = (a->h + 1) / 2;
        size_t nb = (size_t)b->w * b->h;
        b->v = calloc(nb * c, sizeof(float));
        b->wt = calloc(nb, sizeof(float));
        nl++;
        if (!b->v || !b->wt) {
            rc = rs_error_set(e, RS_ENOMEM, "removal fill: no memory for pyramid");
            goto out;
        }
        int gaps = 0;
        for (uint32_t y = 0; y < b->h; y++) {
            for (uint32_t x = 0; x < b->w; x++) {
                float ws = 0.0f;
                float vs[4] = {0, 0, 0, 0};
                for (uint32_t dy = 0; dy < 2; dy++) {
                    for (uint32_t dx = 0; dx < 2; dx++) {
                        uint32_t sx = 2 * x + dx;
                        uint32_t sy = 2 * y + dy;
                        if (sx >= a->w || sy >= a->h) {
                            continue;
                        }
                        size_t si = (size_t)sy * a->w + sx;
                        ws += a->wt[si];
                        for (uint32_t k = 0; k < c; k++) {
                            vs[k] += a->v[si * c + k];
                        }
                    }
                }
                size_t bi = (size_t)y * b->w + x;
                /* Normalise to a weighted mean, keep a weight of at most 1 so
                   a half-covered coarse pixel still defers to finer data. */
                float wn = ws > 1.0f ? 1.0f : ws;
                for (uint32_t k = 0; k < c; k++) {
                    b->v[bi * c + k] = ws > 0.0f ? vs[k] / ws * wn : 0.0f;
                }
                b->wt[bi] = wn;
                gaps += ws <= 0.0f;
            }
        }
        if (!gaps) {
            break;
        }
    }
    /* Pull: top level to plain values, then each finer level fills its
       missing weight from a bilinear sample of the coarser one. */
    {
        level *t = &lv[nl - 1];
        size_t nt = (size_t)t->w * t->h;
        for (size_t i = 0; i < nt; i++) {
            for (uint32_t k = 0; k < c; k++) {
                t->v[i * c + k] = t->wt[i] > 0.0f ? t->v[i * c + k] / t->wt[i] : 0.5f;
            }
            t->wt[i] = 1.0f;
        }
    }
    for (int l = nl - 2; l >= 0; l--) {
        level *a = &lv[l];
        const level *b = &lv[l + 1];
        for (uint32_t y = 0; y < a->h; y++) {
            float fy = ((float)y + 0.5f) * 0.5f - 0.5f;
            if (fy < 0) {
                fy = 0;
            }
            uint32_t y0 = (uint32_t)fy;
            uint32_t y1 = y0 + 1 < b->h ? y0 + 1 : y0;
            float ay = fy - (float)y0;
            for (uint32_t x = 0; x < a->w; x++) {
                size_t ai = (size_t)y * a->w + x;
                float w = a->wt[ai];
                if (w >= 1.0f) {
                    continue;
                }
                float fx = ((float)x + 0.5f) * 0.5f - 0.5f;
                if (fx < 0) {
                    fx = 0;
                }
                uint32_t x0 = (uint32_t)fx;
                uint32_t x1 = x0 + 1 < b->w ? x0 + 1 : x0;
                float ax = fx - (float)x0;
                for (uint32_t k = 0; k < c; k++) {
                    float up = (1 - ay) * ((1 - ax) * b->v[((size_t)y0 * b->w + x0) * c + k] +
                                           ax * b->v[((size_t)y0 * b->w + x1) * c + k]) +
                               ay * ((1 - ax) * b->v[((size_t)y1 * b->w + x0) * c + k] +
                                     ax * b->v[((size_t)y1 * b->w + x1) * c + k]);
                    /* a->v is premultiplied by w here. */
                    a->v[ai * c + k] = a->v[ai * c + k] + (1.0f - w) * up;
                }
                a->wt[ai] = 1.0f;
            }
        }
    }
    holes = malloc(nhole * sizeof(uint32_t));
    if (!holes) {
        rc = rs_error_set(e, RS_ENOMEM, "removal fill: no memory for hole list");
        goto out;
    }
    {
        size_t n = 0;
        for (size_t i = 0; i < np; i++) {
            if (mask[i] >= 128) {
                holes[n++] = (uint32_t)i;
                for (uint32_t k = 0; k < c; k++) {
                    dst[i * c + k] = lv[0].v[i * c + k];
                }
            }
        }
    }
    /* Laplace sweeps in place on dst: border pixels are fixed (source),
       hole pixels relax toward the mean of their 4 neighbours. */
    for (int it = 0; it < FILL_SWEEPS; it++) {
        for (size_t n = 0; n < nhole; n++) {
            uint32_t i = holes[n];
            uint32_t x = i % width;
            uint32_t y = i / width;
            float acc[4] = {0, 0, 0, 0};
            int cnt = 0;
            const uint32_t nb[4][2] = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
            for (int d = 0; d < 4; d++) {
                uint32_t nx = nb[d][0];
                uint32_t ny = nb[d][1];
                if (nx >= width || ny >= height) {
                    continue; /* unsigned wrap covers -1 too */
                }
                size_t j = (size_t)ny * width + nx;
                for (uint32_t k = 0; k < c; k++) {
                    acc[k] += dst[j * c + k];
                }
                cnt++;
            }
            for (uint32_t k = 0; k < c; k++) {
                dst[(size_t)i * c + k] = acc[k] / (float)cnt;
            }
        }
    }
out:
    free(holes);
    levels_free(lv, nl);
    return rc;
}
