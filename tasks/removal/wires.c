/*
 * wires.c: synthetic moving wires (wires.h). Each wire is a quadratic
 * Bezier across the frame, sampled every half pixel; every sample stamps a
 * disc of the local width with a linear edge ramp, and a pixel's coverage
 * is the largest stamp over it. The whole wire translates by a fixed
 * velocity (mostly across itself, so it uncovers what it hid) and its bend
 * breathes slowly. A splitmix64 stream seeded by the caller drives every
 * choice, so a seed names one sequence of masks exactly.
 */
#include "wires.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fill.h"

#define WIRES_MAX 64

typedef struct wire {
    float cx, cy;     /* a point the wire passes through at t = 0 */
    float dx, dy;     /* unit direction along the wire */
    float vx, vy;     /* px per frame */
    float bend0;      /* px, sideways offset of the control point */
    float bend_amp;   /* px */
    float bend_freq;  /* radians per frame */
    float wfreq;      /* width cycles along the wire */
    float wphase;
    float wdrift;     /* width phase change per frame */
} wire;

static uint64_t sm64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static float unif(uint64_t *s, float lo, float hi)
{
    double u = (double)(sm64(s) >> 11) * (1.0 / 9007199254740992.0);
    return lo + (float)(u * (double)(hi - lo));
}

removal_wires_opts removal_wires_opts_default(void)
{
    removal_wires_opts o = {
        .count = 2, .width_min = 2.0f, .width_max = 4.0f, .speed = 1.0f, .blur = 1.0f,
        .dilate = 2};
    return o;
}

static void stamp(float *cov, uint32_t width, uint32_t height, float px, float py, float half,
                  float ramp)
{
    float reach = half + ramp * 0.5f;
    int x0 = (int)floorf(px - reach);
    int x1 = (int)ceilf(px + reach);
    int y0 = (int)floorf(py - reach);
    int y1 = (int)ceilf(py + reach);
    if (x1 < 0 || y1 < 0 || x0 >= (int)width || y0 >= (int)height) {
        return;
    }
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 >= (int)width ? (int)width - 1 : x1;
    y1 = y1 >= (int)height ? (int)height - 1 : y1;
    for (int y = y0; y <= y1; y++) {
        for (int x = x0; x <= x1; x++) {
            float ddx = (float)x + 0.5f - px;
            float ddy = (float)y + 0.5f - py;
            float d = sqrtf(ddx * ddx + ddy * ddy);
            float a = (reach - d) / (ramp > 0.0f ? ramp : 1e-3f);
            a = a > 1.0f ? 1.0f : a;
            if (a <= 0.0f) {
                continue;
            }
            float *p = &cov[(size_t)y * width + (size_t)x];
            if (a > *p) {
                *p = a;
            }
        }
    }
}

static void draw_frame(const wire *ws, uint32_t nw, const removal_wires_opts *o, uint32_t t,
                       uint32_t width, uint32_t height, float *cov)
{
    float len = sqrtf((float)width * width + (float)height * height);
    for (uint32_t i = 0; i < nw; i++) {
        const wire *w = &ws[i];
        float cx = w->cx + w->vx * (float)t;
        float cy = w->cy + w->vy * (float)t;
        float bend = w->bend0 + w->bend_amp * sinf(w->bend_freq * (float)t);
        /* Endpoints a diagonal apart around the centre, control point pushed sideways. */
        float p0x = cx - w->dx * len;
        float p0y = cy - w->dy * len;
        float p2x = cx + w->dx * len;
        float p2y = cy + w->dy * len;
        float p1x = cx - w->dy * bend;
        float p1y = cy + w->dx * bend;
        uint32_t steps = (uint32_t)(len * 4.0f);
        for (uint32_t k = 0; k <= steps; k++) {
            float s = (float)k / (float)steps;
            float a = (1 - s) * (1 - s);
            float b = 2 * (1 - s) * s;
            float c = s * s;
            float px = a * p0x + b * p1x + c * p2x;
            float py = a * p0y + b * p1y + c * p2y;
            float wv = 0.5f + 0.5f * sinf(6.2831853f * w->wfreq * s + w->wphase +
                                         w->wdrift * (float)t);
            float width_px = o->width_min + (o->width_max - o->width_min) * wv;
            stamp(cov, width, height, px, py, width_px * 0.5f, o->blur);
        }
    }
}

rs_err removal_wires_draw(uint32_t width, uint32_t height, uint32_t nframes, uint64_t seed,
                          const removal_wires_opts *opts, float *const *alpha,
                          uint8_t *const *mask, float colour[3], rs_error *e)
{
    removal_wires_opts o = opts ? *opts : removal_wires_opts_default();
    if (width == 0 || height == 0 || nframes == 0) {
        return rs_error_set(e, RS_EINVAL, "removal wires: empty size %ux%u x %u frames", width,
                            height, nframes);
    }
    if (!(o.width_min > 0.0f) || !(o.width_max >= o.width_min) || o.width_max > 256.0f ||
        o.count == 0 || o.count > WIRES_MAX || !(o.blur >= 0.0f) || !(o.speed >= 0.0f) ||
        o.dilate > 64) {
        return rs_error_set(e, RS_EINVAL,
                            "removal wires: bad options (count %u, width %g..%g, blur %g, "
                            "speed %g, dilate %u)",
                            o.count, o.width_min, o.width_max, o.blur, o.speed, o.dilate);
    }
    uint64_t st = seed ^ 0x5eed3a11c0ffee00ull;
    wire ws[WIRES_MAX];
    for (uint32_t i = 0; i < o.count; i++) {
        wire *w = &ws[i];
        float th = unif(&st, 0.0f, 3.14159265f);
        w->dx = cosf(th);
        w->dy = sinf(th);
        w->cx = unif(&st, 0.2f, 0.8f) * (float)width;
        w->cy = unif(&st, 0.2f, 0.8f) * (float)height;
        /* Motion mostly across the wire (within 35 degrees of its normal),
           speed varied +-25 % around the requested one. */
        float ph = th + 1.5707963f + unif(&st, -0.6f, 0.6f);
        float sp = o.speed * unif(&st, 0.75f, 1.25f);
        if (sm64(&st) & 1) {
            sp = -sp;
        }
        w->vx = cosf(ph) * sp;
        w->vy = sinf(ph) * sp;
        /* Start the wire half its travel back so it crosses the centre mid-clip. */
        w->cx -= w->vx * (float)nframes * 0.5f;
        w->cy -= w->vy * (float)nframes * 0.5f;
        float span = (float)(width < height ? width : height);
        w->bend0 = unif(&st, -0.25f, 0.25f) * span;
        w->bend_amp = unif(&st, 0.0f, 0.08f) * span;
        w->bend_freq = unif(&st, 0.02f, 0.08f);
        w->wfreq = unif(&st, 1.0f, 4.0f);
        w->wphase = unif(&st, 0.0f, 6.2831853f);
        w->wdrift = unif(&st, -0.05f, 0.05f);
    }
    float col[3];
    {
        int dark = (sm64(&st) & 3) != 0; /* wires are mostly dark against sky */
        float g = dark ? unif(&st, 0.03f, 0.3f) : unif(&st, 0.7f, 0.95f);
        for (int k = 0; k < 3; k++) {
            col[k] = g + unif(&st, -0.03f, 0.03f);
            col[k] = col[k] < 0.0f ? 0.0f : (col[k] > 1.0f ? 1.0f : col[k]);
        }
    }
    size_t np = (size_t)width * height;
    float *cov = malloc(np * sizeof(float));
    uint8_t *m = malloc(np);
    if (!cov || !m) {
        free(cov);
        free(m);
        return rs_error_set(e, RS_ENOMEM, "removal wires: no memory for %ux%u", width, height);
    }
    for (uint32_t t = 0; t < nframes; t++) {
        memset(cov, 0, np * sizeof(float));
        draw_frame(ws, o.count, &o, t, width, height, cov);
        if (alpha && alpha[t]) {
            memcpy(alpha[t], cov, np * sizeof(float));
        }
        if (mask && mask[t]) {
            for (size_t i = 0; i < np; i++) {
                m[i] = cov[i] > 0.0f ? 255 : 0;
            }
            if (o.dilate > 0) {
                removal_mask_dilate(m, width, height, o.dilate, mask[t]);
            } else {
                memcpy(mask[t], m, np);
            }
        }
    }
    free(cov);
    free(m);
    if (colour) {
        memcpy(colour, col, sizeof(col));
    }
    return RS_OK;
}

void removal_wires_composite(float *rgb, const float *alpha, uint32_t width, uint32_t height,
                             const float colour[3])
{
    size_t np = (size_t)width * height;
    for (size_t i = 0; i < np; i++) {
        float a = alpha[i];
        if (a <= 0.0f) {
            continue;
        }
        for (int k = 0; k < 3; k++) {
            rgb[i * 3 + k] = rgb[i * 3 + k] * (1.0f - a) + colour[k] * a;
        }
    }
}
