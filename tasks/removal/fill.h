/*
 * fill.h: spatial hole filling for stage 1 — what no frame reveals gets a
 * smooth fill from the hole's border: a masked push-pull pyramid (average
 * the visible pixels down, interpolate back up into the hole) followed by
 * a few Laplace relaxation sweeps at full resolution, so the fill meets the
 * border continuously. Fast (a few ms for 432x240) and never touches a
 * pixel outside the hole: those stay bit-identical. Layout as propagate.h.
 */
#ifndef RS_REMOVAL_FILL_H
#define RS_REMOVAL_FILL_H

#include <stdint.h>

#include "err.h"

/*
 * Writes into dst (width*height*channels floats, interleaved) a copy of
 * src with every hole pixel (mask >= 128) replaced by the spatial fill.
 * dst may equal src. A frame that is all hole becomes 0.5 grey.
 */
rs_err removal_fill_spatial(const float *src, const uint8_t *mask, uint32_t width,
                            uint32_t height, uint32_t channels, float *dst, rs_error *e);

/* Grows a mask by r px (square neighbourhood); in and out may not alias. */
void removal_mask_dilate(const uint8_t *in, uint32_t width, uint32_t height, uint32_t r,
                         uint8_t *out);

#endif
