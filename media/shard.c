/*
 * shard.c: shard planning, text form, cropping and feathered reassembly.
 * See shard.h.
 */
#include "shard.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t ceil_div(uint32_t a, uint32_t b)
{
    return (a + b - 1) / b;
}

/* Largest tile extent for n cores of size ceil(len/n) plus overlap. */
static uint64_t tile_extent(uint32_t len, uint32_t n, uint32_t ov)
{
    uint64_t c = ceil_div(len, n);
    uint64_t t = n == 1 ? c : n == 2 ? c + ov : c + 2ull * ov;
    return t < len ? t : len;
}

rs_err media_shard_plan(uint64_t clip_hash, const media_shard_geom *g, media_shard **out, size_t *n,
                        rs_error *e)
{
    if (g->width == 0 || g->height == 0 || g->channels == 0 || g->frames <= 0 ||
        media_sample_size(g->sample) == 0) {
        return rs_error_set(e, RS_EINVAL, "shard: empty clip geometry");
    }
    uint64_t bpp = (uint64_t)g->channels * media_sample_size(g->sample);
    uint32_t best_nx = 0;
    uint32_t best_ny = 0;
    uint64_t best_total = UINT64_MAX;
    uint64_t best_bytes = 0;
    for (uint32_t nx = 1; nx <= g->width; nx++) {
        uint64_t tw = tile_extent(g->width, nx, g->overlap);
        if (tw * bpp > g->mem_budget) {
            continue;
        }
        uint64_t th_max = g->mem_budget / (tw * bpp);
        uint32_t ny = 0;
        if (tile_extent(g->height, 1, g->overlap) <= th_max) {
            ny = 1;
        } else if (g->height >= 2 && tile_extent(g->height, 2, g->overlap) <= th_max) {
            ny = 2;
        } else if (th_max > 2ull * g->overlap) {
            /* three or more rows: ceil(h / ny) + 2 * overlap <= th_max */
            uint64_t room = th_max - 2ull * g->overlap;
            uint64_t cand = (g->height + room - 1) / room;
            if (cand < 3) {
                cand = 3;
            }
            if (cand <= g->height && tile_extent(g->height, (uint32_t)cand, g->overlap) <= th_max) {
                ny = (uint32_t)cand;
            }
        }
        if (ny == 0) {
            continue;
        }
        uint64_t total = (uint64_t)nx * ny;
        if (total < best_total) {
            best_total = total;
            best_nx = nx;
            best_ny = ny;
            best_bytes = tw * tile_extent(g->height, ny, g->overlap) * bpp;
        }
        if (total == 1 || nx >= best_total) {
            break; /* more columns cannot make fewer tiles */
        }
    }
    if (best_total == UINT64_MAX) {
        return rs_error_set(e, RS_EINVAL,
                            "shard: a %" PRIu64 "-byte budget cannot hold one tile of %" PRIu32
                            "x%" PRIu32 " with %" PRIu32 "-pixel overlap",
                            g->mem_budget, g->width, g->height, g->overlap);
    }
    int64_t per = (int64_t)(g->mem_budget / best_bytes);
    if (per > g->frames) {
        per = g->frames;
    }
    if (g->max_frames > 0 && per > g->max_frames) {
        per = g->max_frames;
    }
    if (per < 1) {
        per = 1;
    }
    int64_t blocks = (g->frames + per - 1) / per;
    uint64_t cap = (uint64_t)blocks * best_total;
    if (cap > 10000000u) {
        return rs_error_set(e, RS_ETOOBIG, "shard: %" PRIu64 " shards is too many", cap);
    }
    media_shard *s = calloc((size_t)cap, sizeof *s);
    if (s == NULL) {
        return rs_error_set(e, RS_ENOMEM, "shard: out of memory");
    }
    uint32_t cw = ceil_div(g->width, best_nx);
    uint32_t chh = ceil_div(g->height, best_ny);
    size_t k = 0;
    for (int64_t b = 0; b < blocks; b++) {
        int64_t f0 = g->first_frame + b * per;
        int64_t cnt = g->frames - b * per < per ? g->frames - b * per : per;
        for (uint32_t ty = 0; ty < best_ny; ty++) {
            for (uint32_t tx = 0; tx < best_nx; tx++) {
                uint32_t x0 = tx * cw;
                uint32_t y0 = ty * chh;
                if (x0 >= g->width || y0 >= g->height) {
                    continue;
                }
                uint32_t x1 = x0 + cw < g->width ? x0 + cw : g->width;
                uint32_t y1 = y0 + chh < g->height ? y0 + chh : g->height;
                uint32_t tx0 = x0 > g->overlap ? x0 - g->overlap : 0;
                uint32_t ty0 = y0 > g->overlap ? y0 - g->overlap : 0;
                uint32_t tx1 = x1 + g->overlap < g->width ? x1 + g->overlap : g->width;
                uint32_t ty1 = y1 + g->overlap < g->height ? y1 + g->overlap : g->height;
                s[k].clip_hash = clip_hash;
                s[k].first = f0;
                s[k].count = cnt;
                s[k].core = (media_rect){x0, y0, x1 - x0, y1 - y0};
                s[k].tile = (media_rect){tx0, ty0, tx1 - tx0, ty1 - ty0};
                k++;
            }
        }
    }
    *out = s;
    *n = k;
    return RS_OK;
}

int media_shard_format(const media_shard *s, char *buf, size_t len)
{
    return snprintf(buf, len,
                    "%016" PRIx64 ":%" PRId64 "-%" PRId64 ":tile=%" PRIu32 ",%" PRIu32 ",%" PRIu32
                    "x%" PRIu32 ":core=%" PRIu32 ",%" PRIu32 ",%" PRIu32 "x%" PRIu32,
                    s->clip_hash, s->first, s->first + s->count - 1, s->tile.x, s->tile.y,
                    s->tile.w, s->tile.h, s->core.x, s->core.y, s->core.w, s->core.h);
}

static bool inside(const media_rect *in, const media_rect *out)
{
    return in->x >= out->x && in->y >= out->y &&
           (uint64_t)in->x + in->w <= (uint64_t)out->x + out->w &&
           (uint64_t)in->y + in->h <= (uint64_t)out->y + out->h;
}

rs_err media_shard_parse(const char *text, media_shard *out, rs_error *e)
{
    media_shard s;
    memset(&s, 0, sizeof s);
    int64_t last = 0;
    int used = 0;
    int got = sscanf(text,
                     "%16" SCNx64 ":%" SCNd64 "-%" SCNd64 ":tile=%" SCNu32 ",%" SCNu32 ",%" SCNu32
                     "x%" SCNu32 ":core=%" SCNu32 ",%" SCNu32 ",%" SCNu32 "x%" SCNu32 "%n",
                     &s.clip_hash, &s.first, &last, &s.tile.x, &s.tile.y, &s.tile.w, &s.tile.h,
                     &s.core.x, &s.core.y, &s.core.w, &s.core.h, &used);
    if (got != 11 || text[used] != '\0' || last < s.first || s.tile.w == 0 || s.tile.h == 0 ||
        s.core.w == 0 || s.core.h == 0 || !inside(&s.core, &s.tile)) {
        return rs_error_set(e, RS_EINVAL,
                            "shard '%.80s': malformed (want "
                            "HASH:FIRST-LAST:tile=X,Y,WxH:core=X,Y,WxH)",
                            text);
    }
    s.count = last - s.first + 1;
    *out = s;
    return RS_OK;
}

rs_err media_shard_crop(const media_frame *f, const media_rect *r, media_frame **out, rs_error *e)
{
    if (r->w == 0 || r->h == 0 || (uint64_t)r->x + r->w > f->width ||
        (uint64_t)r->y + r->h > f->height) {
        return rs_error_set(e, RS_EINVAL,
                            "shard: rect %" PRIu32 ",%" PRIu32 ",%" PRIu32 "x%" PRIu32
                            " outside the %" PRIu32 "x%" PRIu32 " frame",
                            r->x, r->y, r->w, r->h, f->width, f->height);
    }
    media_frame *g = NULL;
    rs_err rc = media_frame_create(r->w, r->h, f->channels, f->sample, &g, e);
    if (rc != RS_OK) {
        return rc;
    }
    memcpy(g->names, f->names, sizeof g->names);
    g->colour = f->colour;
    g->bit_depth = f->bit_depth;
    size_t rb = media_frame_row_bytes(g);
    for (uint32_t y = 0; y < r->h; y++) {
        memcpy(g->data + (size_t)y * rb, media_frame_at(f, r->x, r->y + y, 0), rb);
    }
    *out = g;
    return RS_OK;
}

struct media_assembler {
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    double *acc;  /* weighted sums */
    double *wsum; /* summed weights per pixel */
};

rs_err media_assembler_create(uint32_t width, uint32_t height, uint32_t channels,
                              media_assembler **out, rs_error *e)
{
    if (width == 0 || height == 0 || width > MEDIA_MAX_DIM || height > MEDIA_MAX_DIM ||
        channels == 0 || channels > MEDIA_MAX_CHANNELS) {
        return rs_error_set(e, RS_EINVAL, "assemble: bad size %" PRIu32 "x%" PRIu32 "x%" PRIu32,
                            width, height, channels);
    }
    media_assembler *a = calloc(1, sizeof *a);
    size_t px = (size_t)width * height;
    if (a != NULL) {
        a->acc = calloc(px * channels, sizeof *a->acc);
        a->wsum = calloc(px, sizeof *a->wsum);
    }
    if (a == NULL || a->acc == NULL || a->wsum == NULL) {
        media_assembler_destroy(a);
        return rs_error_set(e, RS_ENOMEM, "assemble: out of memory");
    }
    a->width = width;
    a->height = height;
    a->channels = channels;
    *out = a;
    return RS_OK;
}

void media_assembler_destroy(media_assembler *a)
{
    if (a == NULL) {
        return;
    }
    free(a->acc);
    free(a->wsum);
    free(a);
}

/* Weight along one axis: ramps over the part of the tile outside its core
 * plus as much inside, so two neighbours' weights sum to one across the
 * seam; 1 elsewhere. */
static double axis_weight(uint32_t p, uint32_t t0, uint32_t t1, uint32_t c0, uint32_t c1)
{
    double w = 1.0;
    if (c0 > t0) {
        double span = 2.0 * (c0 - t0);
        double d = (double)(p - t0) + 0.5;
        if (d < span) {
            w = d / span;
        }
    }
    if (t1 > c1) {
        double span = 2.0 * (t1 - c1);
        double d = (double)(t1 - p) - 0.5;
        if (d < span && d / span < w) {
            w = d / span;
        }
    }
    return w;
}

rs_err media_assembler_add(media_assembler *a, const media_shard *s, const media_frame *tile,
                           rs_error *e)
{
    const media_rect *t = &s->tile;
    const media_rect *c = &s->core;
    if (tile->sample != MEDIA_SAMPLE_F32 || tile->channels != a->channels || tile->width != t->w ||
        tile->height != t->h || (uint64_t)t->x + t->w > a->width ||
        (uint64_t)t->y + t->h > a->height || !inside(c, t)) {
        return rs_error_set(e, RS_EINVAL,
                            "assemble: tile %" PRIu32 ",%" PRIu32 ",%" PRIu32 "x%" PRIu32
                            " does not fit (need f32, %" PRIu32 " channels)",
                            t->x, t->y, t->w, t->h, a->channels);
    }
    const float *src = (const float *)(const void *)tile->data;
    for (uint32_t y = 0; y < t->h; y++) {
        uint32_t gy = t->y + y;
        double wy = axis_weight(gy, t->y, t->y + t->h, c->y, c->y + c->h);
        for (uint32_t x = 0; x < t->w; x++) {
            uint32_t gx = t->x + x;
            double w = wy * axis_weight(gx, t->x, t->x + t->w, c->x, c->x + c->w);
            size_t gi = (size_t)gy * a->width + gx;
            const float *px = src + ((size_t)y * t->w + x) * a->channels;
            for (uint32_t k = 0; k < a->channels; k++) {
                a->acc[gi * a->channels + k] += w * px[k];
            }
            a->wsum[gi] += w;
        }
    }
    return RS_OK;
}

rs_err media_assembler_finish(const media_assembler *a, media_frame **out, rs_error *e)
{
    size_t px = (size_t)a->width * a->height;
    for (size_t i = 0; i < px; i++) {
        if (a->wsum[i] <= 0) {
            return rs_error_set(e, RS_ESTATE, "assemble: pixel %zu,%zu got no tile", i % a->width,
                                i / a->width);
        }
    }
    media_frame *f = NULL;
    rs_err rc = media_frame_create(a->width, a->height, a->channels, MEDIA_SAMPLE_F32, &f, e);
    if (rc != RS_OK) {
        return rc;
    }
    float *dst = (float *)(void *)f->data;
    for (size_t i = 0; i < px; i++) {
        for (uint32_t k = 0; k < a->channels; k++) {
            dst[i * a->channels + k] = (float)(a->acc[i * a->channels + k] / a->wsum[i]);
        }
    }
    f->colour = MEDIA_COLOUR_LINEAR;
    *out = f;
    return RS_OK;
}
