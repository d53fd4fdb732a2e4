/*
 * shard.h: cutting a clip into work units and stitching results back.
 *
 * A shard is (clip hash, frame range, tile rect): the pixels a worker reads
 * (tile = core + overlap on the sides that face other tiles, clipped to the
 * image) and the pixels it owns in the result (core). media_shard_plan is a
 * pure function of its inputs, so any worker given the same clip geometry
 * and budget recomputes the same shards; media_shard_format/parse carry one
 * in text ("9f86d081884c7d65:1001-1024:tile=0,0,544x304:core=0,0,512x288").
 *
 * The plan sizes tiles so that count x tile_w x tile_h x channels x sample
 * bytes stays within the memory budget, with as few tiles as possible (whole
 * frames when they fit), then as many frames per shard as the budget allows.
 * Reassembly blends every tile with weights that ramp linearly across the
 * overlap (feathered seams) and divides by the summed weight, so where tiles
 * agree the result equals them exactly up to float rounding.
 */
#ifndef RS_MEDIA_SHARD_H
#define RS_MEDIA_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct media_rect {
    uint32_t x;
    uint32_t y;
    uint32_t w;
    uint32_t h;
} media_rect;

typedef struct media_shard {
    uint64_t clip_hash;
    int64_t first; /* first frame */
    int64_t count; /* frames */
    media_rect tile;
    media_rect core;
} media_shard;

typedef struct media_shard_geom {
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    media_sample sample;
    int64_t first_frame;
    int64_t frames;
    uint64_t mem_budget; /* bytes of input one shard may hold */
    uint32_t overlap;    /* pixels each tile reaches into its neighbours */
    int64_t max_frames;  /* frames per shard at most; 0 = no limit */
} media_shard_geom;

/* Plans the shards, frame block by frame block, tiles row-major. *out is a
 * malloc'd array the caller frees. RS_EINVAL if even one row of one frame
 * does not fit the budget. */
rs_err media_shard_plan(uint64_t clip_hash, const media_shard_geom *g, media_shard **out, size_t *n,
                        rs_error *e);

/* Text form; returns the length snprintf would write. */
int media_shard_format(const media_shard *s, char *buf, size_t len);
rs_err media_shard_parse(const char *text, media_shard *out, rs_error *e);

/* Copies the tile's pixels of f (whole frame) into a new frame. */
rs_err media_shard_crop(const media_frame *f, const media_rect *r, media_frame **out, rs_error *e);

typedef struct media_assembler media_assembler;

rs_err media_assembler_create(uint32_t width, uint32_t height, uint32_t channels,
                              media_assembler **out, rs_error *e);
/* Adds an f32 tile result (tile->w x tile->h) for the given shard. */
rs_err media_assembler_add(media_assembler *a, const media_shard *s, const media_frame *tile,
                           rs_error *e);
/* The blended f32 frame; RS_ESTATE if some pixel got no tile. */
rs_err media_assembler_finish(const media_assembler *a, media_frame **out, rs_error *e);
void media_assembler_destroy(media_assembler *a);

#endif
