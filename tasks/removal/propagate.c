/*
 * propagate.c: stage 1 of removal (propagate.h). create() finds ORB
 * features per frame (outside a grown hole) and fits a homography for every
 * frame pair within range, directly or, where that fails, chained through
 * the neighbour. frame() then walks the source frames nearest in time
 * first; for each it measures, on a band of visible pixels around the
 * target's hole, the colour offset and the warp error (box sums through
 * integral images, so both are local to each hole pixel), and takes a
 * candidate for every hole pixel that lands on a visible pixel of the
 * source with a small local warp error. Candidates agreeing with their
 * median are averaged; the confidence says how many agreed, how near in
 * time and how well warped they were.
 */
#include "propagate.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fill.h"
#include "opencv_shim.h"

#define MAXK 16
#define BAND_PX 12  /* band around the hole where warp error is measured */
#define CELL 8      /* error/offset are summed per CELL x CELL, read over 3x3 cells */
#define MIN_INLIERS 12
#define MIN_SHARE 0.2f

struct removal_stage1_state {
    removal_clip clip;
    const float **rgb;
    const uint8_t **mask;
    removal_stage1_opts o;
    uint32_t span; /* 2 * range + 1 */
    double *h;     /* nframes * span * 9: frame t -> t + k - range */
    float *q;      /* nframes * span, 0 = no fit */
};

removal_stage1_opts removal_stage1_opts_default(void)
{
    removal_stage1_opts o = {.range = 20,
                             .min_agree = 2,
                             .max_candidates = 8,
                             .agree_tol = 0.05f,
                             .max_ring_err = 0.05f,
                             .features = 600,
                             .threads = 2};
    return o;
}

static removal_stage1_opts opts_fill(const removal_stage1_opts *in)
{
    removal_stage1_opts d = removal_stage1_opts_default();
    if (!in) {
        return d;
    }
    removal_stage1_opts o = *in;
    o.range = o.range ? o.range : d.range;
    o.min_agree = o.min_agree ? o.min_agree : d.min_agree;
    o.max_candidates = o.max_candidates ? o.max_candidates : d.max_candidates;
    o.max_candidates = o.max_candidates > MAXK ? MAXK : o.max_candidates;
    o.agree_tol = o.agree_tol > 0.0f ? o.agree_tol : d.agree_tol;
    o.max_ring_err = o.max_ring_err > 0.0f ? o.max_ring_err : d.max_ring_err;
    o.features = o.features ? o.features : d.features;
    o.threads = o.threads ? o.threads : d.threads;
    return o;
}

static void to_grey(const float *rgb, size_t np, uint8_t *g)
{
    for (size_t i = 0; i < np; i++) {
        float v = 0.299f * rgb[i * 3] + 0.587f * rgb[i * 3 + 1] + 0.114f * rgb[i * 3 + 2];
        v = v * 255.0f + 0.5f;
        g[i] = (uint8_t)(v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v));
    }
}

static rs_cv_features *detect(const float *rgb, const uint8_t *mask, uint32_t w, uint32_t h,
                              uint32_t nfeat)
{
    size_t np = (size_t)w * h;
    uint8_t *g = malloc(np);
    uint8_t *allow = malloc(np);
    rs_cv_features *f = NULL;
    if (g && allow) {
        to_grey(rgb, np, g);
        if (mask) {
            /* Keep features off the hole and its edge: a wire's border
               pixels move with the wire, not with the camera. */
            removal_mask_dilate(mask, w, h, 4, allow);
            for (size_t i = 0; i < np; i++) {
                allow[i] = allow[i] ? 0 : 255;
            }
        }
        f = rs_cv_features_detect(g, mask ? allow : NULL, w, h, nfeat);
    }
    free(g);
    free(allow);
    return f;
}

static int h_invert(const double a[9], double out[9])
{
    double det = a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
                 a[2] * (a[3] * a[7] - a[4] * a[6]);
    if (fabs(det) < 1e-12) {
        return -1;
    }
    double id = 1.0 / det;
    out[0] = (a[4] * a[8] - a[5] * a[7]) * id;
    out[1] = (a[2] * a[7] - a[1] * a[8]) * id;
    out[2] = (a[1] * a[5] - a[2] * a[4]) * id;
    out[3] = (a[5] * a[6] - a[3] * a[8]) * id;
    out[4] = (a[0] * a[8] - a[2] * a[6]) * id;
    out[5] = (a[2] * a[3] - a[0] * a[5]) * id;
    out[6] = (a[3] * a[7] - a[4] * a[6]) * id;
    out[7] = (a[1] * a[6] - a[0] * a[7]) * id;
    out[8] = (a[0] * a[4] - a[1] * a[3]) * id;
    return 0;
}

/* out = b * a (apply a first). */
static void h_mul(const double b[9], const double a[9], double out[9])
{
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++) {
            out[r * 3 + c] =
                b[r * 3] * a[c] + b[r * 3 + 1] * a[3 + c] + b[r * 3 + 2] * a[6 + c];
        }
    }
}

/* A fit is kept only if it is sane: no flip, no wild scale or perspective. */
static int h_sane(const double h[9], uint32_t w, uint32_t hh)
{
    if (fabs(h[8]) < 1e-9) {
        return 0;
    }
    double det = (h[0] * h[4] - h[1] * h[3]) / (h[8] * h[8]);
    double persp = fabs(h[6] / h[8]) * w + fabs(h[7] / h[8]) * hh;
    return det > 0.5 && det < 2.0 && persp < 0.6;
}

rs_err removal_homography_estimate(const float *a, const uint8_t *mask_a, const float *b,
                                   const uint8_t *mask_b, uint32_t width, uint32_t height,
                                   uint32_t features, double h[9], float *quality, rs_error *e)
{
    if (!a || !b || width < 16 || height < 16) {
        return rs_error_set(e, RS_EINVAL, "removal homography: bad arguments (%ux%u)", width,
                            height);
    }
    features = features ? features : 600;
    rs_err rc = RS_OK;
    rs_cv_features *fa = detect(a, mask_a, width, height, features);
    rs_cv_features *fb = detect(b, mask_b, width, height, features);
    if (!fa || !fb) {
        rc = rs_error_set(e, RS_ENOMEM, "removal homography: feature detection failed");
        goto out;
    }
    float share = 0.0f;
    uint32_t n = rs_cv_homography(fa, fb, 2.0, h, &share);
    if (n < MIN_INLIERS || share < MIN_SHARE || !h_sane(h, width, height)) {
        rc = rs_error_set(e, RS_ENOENT, "removal homography: no fit (%u inliers, %.0f%%)", n,
                          (double)share * 100.0);
        goto out;
    }
    if (quality) {
        *quality = share;
    }
out:
    rs_cv_features_destroy(fa);
    rs_cv_features_destroy(fb);
    return rc;
}

/* ---- threads: a tiny parallel-for over [0, n) ---- */

typedef struct pfor {
    void (*fn)(void *ctx, uint32_t i);
    void *ctx;
    uint32_t n;
    uint32_t next;
    pthread_mutex_t mu;
} pfor;

static void *pfor_run(void *arg)
{
    pfor *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        uint32_t i = p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n) {
            return NULL;
        }
        p->fn(p->ctx, i);
    }
}

static void parallel_for(uint32_t threads, uint32_t n, void (*fn)(void *, uint32_t), void *ctx)
{
    pfor p = {.fn = fn, .ctx = ctx, .n = n, .next = 0};
    pthread_mutex_init(&p.mu, NULL);
    pthread_t th[16];
    uint32_t started = 0;
    threads = threads > 16 ? 16 : threads;
    for (uint32_t i = 1; i < threads; i++) {
        if (pthread_create(&th[started], NULL, pfor_run, &p) == 0) {
            started++;
        }
    }
    pfor_run(&p);
    for (uint32_t i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_mutex_destroy(&p.mu);
}

typedef struct motion_ctx {
    removal_stage1_state *s;
    rs_cv_features **feat;
    uint8_t **grey;  /* per frame, for the flow fallback */
    uint8_t **allow; /* per frame: 255 away from the hole */
    int failed;
} motion_ctx;

static void detect_one(void *arg, uint32_t t)
{
    motion_ctx *m = arg;
    const removal_clip *c = &m->s->clip;
    size_t np = (size_t)c->width * c->height;
    m->feat[t] = detect(m->s->rgb[t], m->s->mask[t], c->width, c->height, m->s->o.features);
    m->grey[t] = malloc(np);
    m->allow[t] = malloc(np);
    if (!m->feat[t] || !m->grey[t] || !m->allow[t]) {
        m->failed = 1;
        return;
    }
    to_grey(m->s->rgb[t], np, m->grey[t]);
    removal_mask_dilate(m->s->mask[t], c->width, c->height, 4, m->allow[t]);
    for (size_t i = 0; i < np; i++) {
        m->allow[t][i] = m->allow[t][i] ? 0 : 255;
    }
}

/* Neighbouring frames whose features gave no fit (smooth, low-texture
   shots: fog, sky, spray) get one from dense DIS flow instead, so the
   chains through them hold. */
static void flow_one(void *arg, uint32_t t)
{
    motion_ctx *m = arg;
    removal_stage1_state *s = m->s;
    uint32_t R = s->o.range;
    if (t + 1 >= s->clip.nframes) {
        return;
    }
    size_t fwd = (size_t)t * s->span + (R + 1);
    if (s->q[fwd] > 0.0f) {
        return;
    }
    double h[9];
    double hi[9];
    float share = 0.0f;
    uint32_t n = rs_cv_flow_homography(m->grey[t], m->grey[t + 1], m->allow[t], s->clip.width,
                                       s->clip.height, 8, 1.0, h, &share);
    if (n < MIN_INLIERS || share < 0.3f || !h_sane(h, s->clip.width, s->clip.height) ||
        h_invert(h, hi) != 0) {
        return;
    }
    size_t back = (size_t)(t + 1) * s->span + (R - 1);
    memcpy(&s->h[fwd * 9], h, sizeof(h));
    memcpy(&s->h[back * 9], hi, sizeof(hi));
    /* Flow fits count for less than feature fits: no descriptor evidence. */
    s->q[fwd] = 0.5f * share;
    s->q[back] = 0.5f * share;
}

/* Pairs fitted directly: every gap up to 4 and every 4th beyond; the rest
   are composed from two of these (chain_fill), which costs far less
   matching than fitting all 2 * range pairs and drifts little. */
static int direct_pair(uint32_t k)
{
    return k <= 4 || k % 4 == 0;
}

/* Direct fits t -> t+k for k = 1..range, and their inverses. */
static void match_one(void *arg, uint32_t t)
{
    motion_ctx *m = arg;
    removal_stage1_state *s = m->s;
    uint32_t R = s->o.range;
    for (uint32_t k = 1; k <= R && t + k < s->clip.nframes; k++) {
        if (!direct_pair(k)) {
            continue;
        }
        double h[9];
        double hi[9];
        float share = 0.0f;
        uint32_t n = rs_cv_homography(m->feat[t], m->feat[t + k], 2.0, h, &share);
        if (n < MIN_INLIERS || share < MIN_SHARE || !h_sane(h, s->clip.width, s->clip.height) ||
            h_invert(h, hi) != 0) {
            continue;
        }
        size_t fwd = (size_t)t * s->span + (R + k);
        size_t back = (size_t)(t + k) * s->span + (R - k);
        memcpy(&s->h[fwd * 9], h, sizeof(h));
        memcpy(&s->h[back * 9], hi, sizeof(hi));
        s->q[fwd] = share;
        s->q[back] = share;
    }
}

/* Where a direct fit failed, compose through the neighbour one step nearer. */
static void chain_fill(removal_stage1_state *s)
{
    uint32_t R = s->o.range;
    uint32_t N = s->clip.nframes;
    for (uint32_t k = 2; k <= R; k++) {
        for (uint32_t t = 0; t + k < N; t++) {
            size_t fwd = (size_t)t * s->span + (R + k);
            if (s->q[fwd] > 0.0f) {
                continue;
            }
            /* Through the last 4th frame (t -> t+j -> t+k, k - j <= 4), else
               through the neighbour (t -> t+k-1 -> t+k). */
            uint32_t js[2] = {(k - 1) / 4 * 4, k - 1};
            size_t a = 0;
            size_t b = 0;
            int found = 0;
            for (int n = 0; n < 2 && !found; n++) {
                uint32_t j = js[n];
                if (j == 0) {
                    continue;
                }
                a = (size_t)t * s->span + (R + j);               /* t -> t+j */
                b = (size_t)(t + j) * s->span + (R + (k - j));   /* t+j -> t+k */
                found = s->q[a] > 0.0f && s->q[b] > 0.0f;
            }
            if (!found) {
                continue;
            }
            double h[9];
            double hi[9];
            h_mul(&s->h[b * 9], &s->h[a * 9], h);
            if (h_invert(h, hi) != 0) {
                continue;
            }
            size_t back = (size_t)(t + k) * s->span + (R - k);
            float q = 0.9f * (s->q[a] < s->q[b] ? s->q[a] : s->q[b]);
            memcpy(&s->h[fwd * 9], h, sizeof(h));
            memcpy(&s->h[back * 9], hi, sizeof(hi));
            s->q[fwd] = q;
            s->q[back] = q;
        }
    }
}

rs_err removal_stage1_create(const removal_clip *clip, const removal_stage1_opts *o,
                             removal_stage1_state **out, rs_error *e)
{
    if (!clip || !out || clip->width < 16 || clip->height < 16 || clip->nframes == 0 ||
        !clip->rgb || !clip->mask) {
        return rs_error_set(e, RS_EINVAL, "removal stage 1: bad clip (%ux%u x %u frames)",
                            clip ? clip->width : 0, clip ? clip->height : 0,
                            clip ? clip->nframes : 0);
    }
    for (uint32_t t = 0; t < clip->nframes; t++) {
        if (!clip->rgb[t] || !clip->mask[t]) {
            return rs_error_set(e, RS_EINVAL, "removal stage 1: frame %u has no %s", t,
                                clip->rgb[t] ? "mask" : "pixels");
        }
    }
    rs_err rc = RS_OK;
    motion_ctx m = {0};
    removal_stage1_state *s = calloc(1, sizeof(*s));
    if (!s) {
        return rs_error_set(e, RS_ENOMEM, "removal stage 1: no memory");
    }
    s->clip = *clip;
    s->o = opts_fill(o);
    s->span = 2 * s->o.range + 1;
    size_t npair = (size_t)clip->nframes * s->span;
    s->rgb = malloc(clip->nframes * sizeof(*s->rgb));
    s->mask = malloc(clip->nframes * sizeof(*s->mask));
    s->h = calloc(npair * 9, sizeof(double));
    s->q = calloc(npair, sizeof(float));
    m.feat = calloc(clip->nframes, sizeof(*m.feat));
    m.grey = calloc(clip->nframes, sizeof(*m.grey));
    m.allow = calloc(clip->nframes, sizeof(*m.allow));
    if (!s->rgb || !s->mask || !s->h || !s->q || !m.feat || !m.grey || !m.allow) {
        rc = rs_error_set(e, RS_ENOMEM, "removal stage 1: no memory for %u frames",
                          clip->nframes);
        goto out;
    }
    memcpy(s->rgb, clip->rgb, clip->nframes * sizeof(*s->rgb));
    memcpy(s->mask, clip->mask, clip->nframes * sizeof(*s->mask));
    for (uint32_t t = 0; t < clip->nframes; t++) {
        size_t self = (size_t)t * s->span + s->o.range;
        double id[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        memcpy(&s->h[self * 9], id, sizeof(id));
        s->q[self] = 1.0f;
    }
    m.s = s;
    parallel_for(s->o.threads, clip->nframes, detect_one, &m);
    if (m.failed) {
        rc = rs_error_set(e, RS_ENOMEM, "removal stage 1: feature detection failed");
        goto out;
    }
    parallel_for(s->o.threads, clip->nframes, match_one, &m);
    parallel_for(s->o.threads, clip->nframes, flow_one, &m);
    chain_fill(s);
out:
    for (uint32_t t = 0; t < clip->nframes; t++) {
        if (m.feat) {
            rs_cv_features_destroy(m.feat[t]);
        }
        if (m.grey) {
            free(m.grey[t]);
        }
        if (m.allow) {
            free(m.allow[t]);
        }
    }
    free(m.feat);
    free(m.grey);
    free(m.allow);
    if (rc != RS_OK) {
        removal_stage1_destroy(s);
        return rc;
    }
    *out = s;
    return RS_OK;
}

void removal_stage1_destroy(removal_stage1_state *s)
{
    if (!s) {
        return;
    }
    free(s->rgb);
    free(s->mask);
    free(s->h);
    free(s->q);
    free(s);
}

rs_err removal_stage1_homography(const removal_stage1_state *s, uint32_t from, uint32_t to,
                                 double h[9], float *quality, rs_error *e)
{
    uint32_t R = s->o.range;
    if (from >= s->clip.nframes || to >= s->clip.nframes ||
        (from > to ? from - to : to - from) > R) {
        return rs_error_set(e, RS_ENOENT, "removal stage 1: no pair %u -> %u within range %u",
                            from, to, R);
    }
    size_t i = (size_t)from * s->span + (R + to - from);
    if (s->q[i] <= 0.0f) {
        return rs_error_set(e, RS_ENOENT, "removal stage 1: no homography %u -> %u", from, to);
    }
    memcpy(h, &s->h[i * 9], 9 * sizeof(double));
    if (quality) {
        *quality = s->q[i];
    }
    return RS_OK;
}

/* ---- per-frame fill ---- */

typedef struct cand {
    float v[3];
    float err;
    uint16_t dist;
} cand;

/* Bilinear sample of src at (x, y) (pixel centres at integers) where all
   four taps are visible in mask; 0 if any tap is outside or in the hole. */
static int sample_vis(const float *src, const uint8_t *mask, uint32_t w, uint32_t h, double x,
                      double y, float out[3])
{
    if (!(x >= 0.0 && y >= 0.0 && x <= (double)(w - 1) && y <= (double)(h - 1))) {
        return 0;
    }
    uint32_t x0 = (uint32_t)x;
    uint32_t y0 = (uint32_t)y;
    uint32_t x1 = x0 + 1 < w ? x0 + 1 : x0;
    uint32_t y1 = y0 + 1 < h ? y0 + 1 : y0;
    size_t i00 = (size_t)y0 * w + x0;
    size_t i01 = (size_t)y0 * w + x1;
    size_t i10 = (size_t)y1 * w + x0;
    size_t i11 = (size_t)y1 * w + x1;
    if (mask[i00] >= 128 || mask[i01] >= 128 || mask[i10] >= 128 || mask[i11] >= 128) {
        return 0;
    }
    float ax = (float)(x - (double)x0);
    float ay = (float)(y - (double)y0);
    for (int k = 0; k < 3; k++) {
        out[k] = (1 - ay) * ((1 - ax) * src[i00 * 3 + k] + ax * src[i01 * 3 + k]) +
                 ay * ((1 - ax) * src[i10 * 3 + k] + ax * src[i11 * 3 + k]);
    }
    return 1;
}

static void h_apply(const double h[9], double x, double y, double *ox, double *oy)
{
    double z = h[6] * x + h[7] * y + h[8];
    z = fabs(z) < 1e-12 ? 1e-12 : z;
    *ox = (h[0] * x + h[1] * y + h[2]) / z;
    *oy = (h[3] * x + h[4] * y + h[5]) / z;
}

/* Sums of (weight, dr, dg, db, |d|) over the 3x3 cells around cell (cx, cy). */
static void cell_sum(const double *cells, uint32_t gw, uint32_t gh, uint32_t cx, uint32_t cy,
                     double out[5])
{
    for (int k = 0; k < 5; k++) {
        out[k] = 0.0;
    }
    uint32_t x0 = cx ? cx - 1 : 0;
    uint32_t y0 = cy ? cy - 1 : 0;
    uint32_t x1 = cx + 1 < gw ? cx + 1 : cx;
    uint32_t y1 = cy + 1 < gh ? cy + 1 : cy;
    for (uint32_t y = y0; y <= y1; y++) {
        for (uint32_t x = x0; x <= x1; x++) {
            const double *c = &cells[((size_t)y * gw + x) * 5];
            for (int k = 0; k < 5; k++) {
                out[k] += c[k];
            }
        }
    }
}

static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a;
    float y = *(const float *)b;
    return (x > y) - (x < y);
}

rs_err removal_stage1_frame(removal_stage1_state *s, uint32_t t, const removal_fill_out *out,
                            rs_error *e)
{
    if (!s || !out || t >= s->clip.nframes) {
        return rs_error_set(e, RS_EINVAL, "removal stage 1: frame %u out of range", t);
    }
    const uint32_t w = s->clip.width;
    const uint32_t h = s->clip.height;
    const size_t np = (size_t)w * h;
    const float *tgt = s->rgb[t];
    const uint8_t *tm = s->mask[t];
    const uint32_t R = s->o.range;
    const uint32_t K = s->o.max_candidates;
    rs_err rc = RS_OK;
    uint32_t *holes = NULL;
    uint32_t *band = NULL;
    uint8_t *grown = NULL;
    cand *cands = NULL;
    uint8_t *ncand = NULL;
    double *cells = NULL;
    double *tex = NULL; /* per cell: n, sum, sum of squares of the band's luma */
    const uint32_t gw = (w + CELL - 1) / CELL;
    const uint32_t gh = (h + CELL - 1) / CELL;
    float *spatial = NULL;
    size_t nhole = 0;
    size_t nband = 0;

    for (size_t i = 0; i < np; i++) {
        nhole += tm[i] >= 128;
    }
    /* Outside the hole every output is the source; confidence 1. */
    float *outs[3] = {out->propagated, out->spatial, out->blend};
    for (int k = 0; k < 3; k++) {
        if (outs[k] && outs[k] != tgt) {
            memcpy(outs[k], tgt, np * 3 * sizeof(float));
        }
    }
    if (out->confidence) {
        for (size_t i = 0; i < np; i++) {
            out->confidence[i] = 1.0f;
        }
    }
    if (nhole == 0) {
        return RS_OK;
    }
    spatial = malloc(np * 3 * sizeof(float));
    holes = malloc(nhole * sizeof(uint32_t));
    grown = malloc(np);
    cands = malloc(nhole * K * sizeof(cand));
    ncand = calloc(nhole, 1);
    cells = malloc((size_t)gw * gh * 5 * sizeof(double));
    tex = calloc((size_t)gw * gh * 5, sizeof(double));
    if (!spatial || !holes || !grown || !cands || !ncand || !cells || !tex) {
        rc = rs_error_set(e, RS_ENOMEM, "removal stage 1: no memory for frame %u", t);
        goto out;
    }
    rc = removal_fill_spatial(tgt, tm, w, h, 3, spatial, e);
    if (rc != RS_OK) {
        goto out;
    }
    removal_mask_dilate(tm, w, h, BAND_PX, grown);
    for (size_t i = 0; i < np; i++) {
        nband += grown[i] && tm[i] < 128;
    }
    band = malloc((nband ? nband : 1) * sizeof(uint32_t));
    if (!band) {
        rc = rs_error_set(e, RS_ENOMEM, "removal stage 1: no memory for frame %u", t);
        goto out;
    }
    {
        size_t a = 0;
        size_t b = 0;
        for (size_t i = 0; i < np; i++) {
            if (tm[i] >= 128) {
                holes[a++] = (uint32_t)i;
            } else if (grown[i]) {
                band[b++] = (uint32_t)i;
                const float *px = &tgt[i * 3];
                double l = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
                double *tc = &tex[(((i / w) / CELL) * gw + (i % w) / CELL) * 5];
                tc[0] += 1.0;
                tc[1] += l;
                tc[2] += l * l;
            }
        }
    }

    size_t full = 0; /* hole pixels that already hold K candidates */
    for (uint32_t k = 1; k <= R && full < nhole; k++) {
        for (int dir = -1; dir <= 1; dir += 2) {
            int64_t si = (int64_t)t + dir * (int64_t)k;
            if (si < 0 || si >= (int64_t)s->clip.nframes) {
                continue;
            }
            size_t pi = (size_t)t * s->span + (size_t)((int64_t)R + dir * (int64_t)k);
            if (s->q[pi] <= 0.0f) {
                continue;
            }
            const double *H = &s->h[pi * 9];
            const float *src = s->rgb[si];
            const uint8_t *sm = s->mask[si];
            /* Warp error and colour offset on the band, local via cell sums. */
            memset(cells, 0, (size_t)gw * gh * 5 * sizeof(double));
            double gsum[3] = {0, 0, 0};
            double gabs = 0.0;
            double gn = 0.0;
            for (size_t n = 0; n < nband; n++) {
                uint32_t i = band[n];
                uint32_t x = i % w;
                uint32_t y = i / w;
                double qx;
                double qy;
                float v[3];
                h_apply(H, (double)x, (double)y, &qx, &qy);
                if (!sample_vis(src, sm, w, h, qx, qy, v)) {
                    continue;
                }
                double *cl = &cells[((size_t)(y / CELL) * gw + x / CELL) * 5];
                double ad = 0.0;
                cl[0] += 1.0;
                for (int c = 0; c < 3; c++) {
                    double d = (double)tgt[(size_t)i * 3 + c] - (double)v[c];
                    cl[c + 1] += d;
                    gsum[c] += d;
                    ad += fabs(d);
                }
                cl[4] += ad / 3.0;
                gabs += ad / 3.0;
                gn += 1.0;
            }
            if (gn < 16.0) {
                continue; /* the warp misses the hole's surroundings */
            }
            double gerr = gabs / gn;
            for (size_t n = 0; n < nhole; n++) {
                if (ncand[n] >= K) {
                    continue;
                }
                uint32_t i = holes[n];
                uint32_t x = i % w;
                uint32_t y = i / w;
                double qx;
                double qy;
                float v[3];
                h_apply(H, (double)x, (double)y, &qx, &qy);
                if (!sample_vis(src, sm, w, h, qx, qy, v)) {
                    continue;
                }
                double cs5[5];
                cell_sum(cells, gw, gh, x / CELL, y / CELL, cs5);
                double wn = cs5[0];
                double off[3];
                double err;
                if (wn >= 8.0) {
                    for (int c = 0; c < 3; c++) {
                        off[c] = cs5[c + 1] / wn;
                    }
                    err = cs5[4] / wn;
                } else {
                    for (int c = 0; c < 3; c++) {
                        off[c] = gsum[c] / gn;
                    }
                    err = gerr;
                }
                if (err > (double)s->o.max_ring_err) {
                    continue;
                }
                cand *cd = &cands[n * K + ncand[n]];
                for (int c = 0; c < 3; c++) {
                    /* A local offset beyond +-0.1 is more likely a
                       misregistration than light: clamp it. */
                    double o = off[c] > 0.1 ? 0.1 : (off[c] < -0.1 ? -0.1 : off[c]);
                    cd->v[c] = (float)((double)v[c] + o);
                }
                cd->err = (float)err;
                cd->dist = (uint16_t)k;
                ncand[n]++;
                if (ncand[n] == K) {
                    full++;
                }
            }
        }
    }

    /* Combine: median per channel, keep agreeing, weighted mean. */
    for (size_t n = 0; n < nhole; n++) {
        uint32_t i = holes[n];
        uint32_t nc = ncand[n];
        float *sp = &spatial[(size_t)i * 3];
        float prop[3] = {sp[0], sp[1], sp[2]};
        float conf = 0.0f;
        float wp = 0.0f; /* weight of propagation against the spatial fill */
        if (nc > 0) {
            const cand *cs = &cands[n * K];
            float med[3];
            for (int c = 0; c < 3; c++) {
                float vals[MAXK];
                for (uint32_t j = 0; j < nc; j++) {
                    vals[j] = cs[j].v[c];
                }
                qsort(vals, nc, sizeof(float), cmpf);
                med[c] = nc % 2 ? vals[nc / 2] : 0.5f * (vals[nc / 2 - 1] + vals[nc / 2]);
            }
            double acc[3] = {0, 0, 0};
            double ws = 0.0;
            double dsum = 0.0;
            double esum = 0.0;
            uint32_t nin = 0;
            for (uint32_t j = 0; j < nc; j++) {
                float dmax = 0.0f;
                for (int c = 0; c < 3; c++) {
                    float d = fabsf(cs[j].v[c] - med[c]);
                    dmax = d > dmax ? d : dmax;
                }
                if (dmax > s->o.agree_tol) {
                    continue;
                }
                double wt = 1.0 / ((1.0 + (double)cs[j].dist / (double)R) *
                                   ((double)cs[j].err + 0.01));
                for (int c = 0; c < 3; c++) {
                    acc[c] += wt * cs[j].v[c];
                }
                ws += wt;
                dsum += cs[j].dist;
                esum += cs[j].err;
                nin++;
            }
            if (nin == 0) {
                /* No two agree: the median is still the best guess. */
                for (int c = 0; c < 3; c++) {
                    prop[c] = med[c];
                }
                conf = 0.1f;
            } else {
                for (int c = 0; c < 3; c++) {
                    prop[c] = (float)(acc[c] / ws);
                }
                /* Agreement dominates: a lone candidate is worth half, a
                   split vote its share; distance in time and the local
                   warp error each take off at most half. */
                double agree = nin >= s->o.min_agree ? 1.0 : 0.5 * (double)nin / s->o.min_agree + 0.25;
                agree *= (double)nin / nc;
                double dist = 1.0 - 0.5 * (dsum / nin) / R;
                double we = (esum / nin) / (double)s->o.max_ring_err;
                double warp = 1.0 - 0.5 * (we > 1.0 ? 1.0 : we);
                conf = (float)(agree * dist * warp);
                /* Inverse-variance mix: the spatial fill's error grows with
                   the texture around the hole (luma spread on the band),
                   propagation's with the warp error it showed there and with
                   disagreement. Errors of the two are independent. */
                double t5[5];
                cell_sum(tex, gw, gh, (i % w) / CELL, (i / w) / CELL, t5);
                double var = t5[0] > 1.0 ? t5[2] / t5[0] - (t5[1] / t5[0]) * (t5[1] / t5[0]) : 0.0;
                double es2 = (var > 0.0 ? var : 0.0) + 1e-5;
                double ep = (esum / nin) * (2.0 - (double)nin / nc) *
                            (nin >= s->o.min_agree ? 1.0 : 1.5);
                double ep2 = ep * ep + 1e-5;
                wp = (float)(es2 / (es2 + ep2));
            }
        }
        if (out->propagated) {
            memcpy(&out->propagated[(size_t)i * 3], prop, sizeof(prop));
        }
        if (out->spatial) {
            memcpy(&out->spatial[(size_t)i * 3], sp, 3 * sizeof(float));
        }
        if (out->blend) {
            for (int c = 0; c < 3; c++) {
                out->blend[(size_t)i * 3 + c] = wp * prop[c] + (1.0f - wp) * sp[c];
            }
        }
        if (out->confidence) {
            out->confidence[i] = conf;
        }
    }
out:
    free(spatial);
    free(holes);
    free(band);
    free(grown);
    free(cands);
    free(ncand);
    free(cells);
    free(tex);
    return rc;
}

typedef struct all_ctx {
    removal_stage1_state *s;
    const removal_fill_out *outs;
    rs_err rc;
    rs_error err;
    pthread_mutex_t mu;
} all_ctx;

static void frame_one(void *arg, uint32_t t)
{
    all_ctx *a = arg;
    rs_error e;
    rs_err rc = removal_stage1_frame(a->s, t, &a->outs[t], &e);
    if (rc != RS_OK) {
        pthread_mutex_lock(&a->mu);
        if (a->rc == RS_OK) {
            a->rc = rc;
            a->err = e;
        }
        pthread_mutex_unlock(&a->mu);
    }
}

rs_err removal_stage1(const removal_clip *clip, const removal_stage1_opts *o,
                      const removal_fill_out *outs, rs_error *e)
{
    if (!outs) {
        return rs_error_set(e, RS_EINVAL, "removal stage 1: no outputs");
    }
    removal_stage1_state *s = NULL;
    rs_err rc = removal_stage1_create(clip, o, &s, e);
    if (rc != RS_OK) {
        return rc;
    }
    all_ctx a = {.s = s, .outs = outs, .rc = RS_OK};
    pthread_mutex_init(&a.mu, NULL);
    parallel_for(s->o.threads, clip->nframes, frame_one, &a);
    pthread_mutex_destroy(&a.mu);
    removal_stage1_destroy(s);
    if (a.rc != RS_OK) {
        if (e) {
            *e = a.err;
        }
        return a.rc;
    }
    return RS_OK;
}
