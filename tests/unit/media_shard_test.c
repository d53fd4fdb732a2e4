/*
 * media_shard_test.c: plans stay inside the memory budget, cover every
 * pixel of every frame exactly once by their cores, are deterministic and
 * survive their text form; tiles cut from a frame and reassembled with
 * feathered seams give the frame back; different tiles blend smoothly
 * across a seam.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shard.h"

static void check_plan(const media_shard_geom *g)
{
    media_shard *s = NULL;
    size_t n = 0;
    rs_error e;
    cr_assert_eq(media_shard_plan(0x9f86d081884c7d65ull, g, &s, &n, &e), RS_OK, "%s", e.msg);
    cr_assert_gt(n, 0);
    size_t bpp = g->channels * media_sample_size(g->sample);
    uint8_t *cover = calloc((size_t)g->width * g->height * (size_t)g->frames, 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)s[i].tile.w * s[i].tile.h * bpp * (uint64_t)s[i].count;
        cr_assert_leq(bytes, g->mem_budget, "shard %zu: %llu bytes", i, (unsigned long long)bytes);
        for (int64_t f = s[i].first; f < s[i].first + s[i].count; f++) {
            for (uint32_t y = s[i].core.y; y < s[i].core.y + s[i].core.h; y++) {
                for (uint32_t x = s[i].core.x; x < s[i].core.x + s[i].core.w; x++) {
                    cover[((size_t)(f - g->first_frame) * g->height + y) * g->width + x]++;
                }
            }
        }
        char text[160];
        media_shard_format(&s[i], text, sizeof text);
        media_shard back;
        cr_assert_eq(media_shard_parse(text, &back, &e), RS_OK, "%s: %s", text, e.msg);
        cr_assert_eq(memcmp(&back, &s[i], sizeof back), 0, "%s", text);
    }
    for (size_t k = 0; k < (size_t)g->width * g->height * (size_t)g->frames; k++) {
        cr_assert_eq(cover[k], 1, "pixel %zu covered %u times", k, cover[k]);
    }
    media_shard *s2 = NULL;
    size_t n2 = 0;
    cr_assert_eq(media_shard_plan(0x9f86d081884c7d65ull, g, &s2, &n2, &e), RS_OK);
    cr_assert_eq(n2, n);
    cr_assert_eq(memcmp(s, s2, n * sizeof *s), 0, "plans are deterministic");
    free(s2);
    free(cover);
    free(s);
}

Test(media_shard, plans_fit_budget_and_cover_once)
{
    media_shard_geom whole = {.width = 64,
                              .height = 36,
                              .channels = 3,
                              .sample = MEDIA_SAMPLE_F32,
                              .first_frame = 1001,
                              .frames = 10,
                              .mem_budget = 64 * 36 * 12 * 4,
                              .overlap = 4};
    check_plan(&whole);
    media_shard_geom tiled = whole;
    tiled.mem_budget = 20 * 20 * 12 * 2; /* forces tiles, two frames each */
    check_plan(&tiled);
    media_shard_geom one = whole;
    one.max_frames = 3;
    check_plan(&one);
    media_shard *s = NULL;
    size_t n = 0;
    rs_error e;
    cr_assert_eq(media_shard_plan(1, &whole, &s, &n, &e), RS_OK);
    cr_assert_eq(n, 3, "whole frames, four per shard: 10 frames -> 3 shards");
    cr_assert_eq(s[0].tile.w, 64);
    cr_assert_eq(s[0].count, 4);
    free(s);
    media_shard_geom tiny = whole;
    tiny.mem_budget = 100;
    cr_assert_eq(media_shard_plan(1, &tiny, &s, &n, &e), RS_EINVAL);
    cr_assert_not_null(strstr(e.msg, "budget"), "%s", e.msg);
    cr_assert_eq(media_shard_parse("nonsense", &s[0], &e), RS_EINVAL);
}

Test(media_shard, reassembly_gives_the_frame_back)
{
    rs_error e;
    media_frame *f = NULL;
    cr_assert_eq(media_frame_create(97, 53, 4, MEDIA_SAMPLE_F32, &f, &e), RS_OK);
    float *d = (float *)(void *)f->data;
    for (size_t i = 0; i < (size_t)97 * 53 * 4; i++) {
        d[i] = (float)sin((double)i * 0.37) * 3.0f;
    }
    media_shard_geom g = {.width = 97,
                          .height = 53,
                          .channels = 4,
                          .sample = MEDIA_SAMPLE_F32,
                          .frames = 1,
                          .mem_budget = 30 * 30 * 16,
                          .overlap = 5};
    media_shard *s = NULL;
    size_t n = 0;
    cr_assert_eq(media_shard_plan(7, &g, &s, &n, &e), RS_OK, "%s", e.msg);
    cr_assert_gt(n, 4);
    media_assembler *a = NULL;
    cr_assert_eq(media_assembler_create(97, 53, 4, &a, &e), RS_OK);
    media_frame *out = NULL;
    cr_assert_eq(media_assembler_finish(a, &out, &e), RS_ESTATE, "nothing added yet");
    for (size_t i = 0; i < n; i++) {
        media_frame *t = NULL;
        cr_assert_eq(media_shard_crop(f, &s[i].tile, &t, &e), RS_OK, "%s", e.msg);
        cr_assert_eq(media_assembler_add(a, &s[i], t, &e), RS_OK, "%s", e.msg);
        media_frame_destroy(t);
    }
    cr_assert_eq(media_assembler_finish(a, &out, &e), RS_OK, "%s", e.msg);
    const float *o = (const float *)(const void *)out->data;
    for (size_t i = 0; i < (size_t)97 * 53 * 4; i++) {
        cr_assert(fabsf(o[i] - d[i]) <= 1e-6f * fmaxf(1.0f, fabsf(d[i])), "sample %zu: %g vs %g", i,
                  o[i], d[i]);
    }
    media_frame_destroy(out);
    media_assembler_destroy(a);
    free(s);
    media_frame_destroy(f);
}

Test(media_shard, seams_are_feathered)
{
    rs_error e;
    media_shard_geom g = {.width = 40,
                          .height = 1,
                          .channels = 1,
                          .sample = MEDIA_SAMPLE_F32,
                          .frames = 1,
                          .mem_budget = 30 * 4,
                          .overlap = 4};
    media_shard *s = NULL;
    size_t n = 0;
    cr_assert_eq(media_shard_plan(7, &g, &s, &n, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(n, 2);
    media_assembler *a = NULL;
    cr_assert_eq(media_assembler_create(40, 1, 1, &a, &e), RS_OK);
    for (size_t i = 0; i < n; i++) {
        media_frame *t = NULL;
        cr_assert_eq(media_frame_create(s[i].tile.w, 1, 1, MEDIA_SAMPLE_F32, &t, &e), RS_OK);
        for (uint32_t x = 0; x < s[i].tile.w; x++) {
            ((float *)(void *)t->data)[x] = (float)i; /* tile 0 all 0, tile 1 all 1 */
        }
        cr_assert_eq(media_assembler_add(a, &s[i], t, &e), RS_OK);
        media_frame_destroy(t);
    }
    media_frame *out = NULL;
    cr_assert_eq(media_assembler_finish(a, &out, &e), RS_OK);
    const float *o = (const float *)(const void *)out->data;
    cr_assert_eq(o[0], 0.0f);
    cr_assert_eq(o[39], 1.0f);
    int blended = 0;
    for (int x = 1; x < 40; x++) {
        cr_assert_geq(o[x], o[x - 1], "monotone across the seam");
        blended += o[x] > 0.0f && o[x] < 1.0f;
    }
    cr_assert_eq(blended, 8, "the blend spans the 2 x 4-pixel overlap");
    cr_assert_float_eq(o[16] + o[23], 1.0f, 1e-6, "symmetric ramp");
    media_frame_destroy(out);
    media_assembler_destroy(a);
    free(s);
}

Test(media_shard, large_clip_plans_quickly_within_budget)
{
    media_shard_geom g = {.width = 4096,
                          .height = 2160,
                          .channels = 4,
                          .sample = MEDIA_SAMPLE_F32,
                          .first_frame = 0,
                          .frames = 1000,
                          .mem_budget = 64ull << 20,
                          .overlap = 32};
    media_shard *s = NULL;
    size_t n = 0;
    rs_error e;
    cr_assert_eq(media_shard_plan(42, &g, &s, &n, &e), RS_OK, "%s", e.msg);
    uint64_t px = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_leq((uint64_t)s[i].tile.w * s[i].tile.h * 16 * (uint64_t)s[i].count,
                      g.mem_budget);
        px += (uint64_t)s[i].core.w * s[i].core.h * (uint64_t)s[i].count;
    }
    cr_assert_eq(px, 4096ull * 2160 * 1000, "cores cover the clip once");
    cr_assert_gt(s[0].tile.w, 1000, "tiles are not needlessly small: %ux%u", s[0].tile.w,
                 s[0].tile.h);
    free(s);
    /* one pixel row with overlap never fits: a clear refusal, not a hang */
    g.mem_budget = 64;
    g.overlap = 100;
    cr_assert_eq(media_shard_plan(42, &g, &s, &n, &e), RS_EINVAL);
}
