/*
 * wires.h: synthetic wire-like strokes over a frame sequence, for
 * self-supervised training holes and for `rushes eval removal
 * --synth-wires`. Deterministic: the same seed, size and options give the
 * same bytes on every machine (own PRNG, no libc rand, float maths in a
 * fixed order).
 *
 * Each wire is a thin curve (a quadratic Bezier spanning the frame, slightly
 * bent) whose width varies along it between width_min and width_max, edges
 * softened by a blur, drifting about `speed` pixels a frame in a random
 * direction with a slow bend change. Layout as in propagate.h.
 */
#ifndef RS_REMOVAL_WIRES_H
#define RS_REMOVAL_WIRES_H

#include <stdint.h>

#include "err.h"

/* Pass NULL for the defaults, or start from removal_wires_opts_default();
   values are used as given. */
typedef struct removal_wires_opts {
    uint32_t count;  /* wires per sequence; default 2 */
    float width_min; /* px; default 2 */
    float width_max; /* px; default 4 */
    float speed;     /* px per frame; default 1 */
    float blur;      /* edge softness, px of linear ramp; default 1 */
    uint32_t dilate; /* mask grows this many px past the drawn coverage; default 2 */
} removal_wires_opts;

removal_wires_opts removal_wires_opts_default(void);

/*
 * Draws the wires of frames 0..nframes-1. alpha[t] (width*height floats,
 * coverage 0..1) and mask[t] (width*height bytes, 255 where coverage > 0
 * or within `dilate` px of it, else 0) are caller-allocated; alpha may be
 * NULL (then only masks), mask may be NULL. colour receives the wires'
 * RGB (0..1), may be NULL. RS_EINVAL for zero sizes or bad widths.
 */
rs_err removal_wires_draw(uint32_t width, uint32_t height, uint32_t nframes, uint64_t seed,
                          const removal_wires_opts *o, float *const *alpha,
                          uint8_t *const *mask, float colour[3], rs_error *e);

/* rgb = rgb * (1 - alpha) + colour * alpha, in place (one frame). */
void removal_wires_composite(float *rgb, const float *alpha, uint32_t width, uint32_t height,
                             const float colour[3]);

#endif
