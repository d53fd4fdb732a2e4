/*
 * patches.h: patch-based training from footage: random crops (seeded,
 * deterministic) cut from a set of float frames into a U-Net's batch
 * tensors (input, target and, for masked losses, mask).
 *
 * Frames are host float arrays in one of two layouts, stated per image:
 *   ENG_LAYOUT_CHW: c planes of h x w (one frame of an NCHW tensor; a whole
 *                   NCHW tensor is n such images at stride c*h*w), or
 *   ENG_LAYOUT_HWC: h rows of w pixels of c interleaved channels (what
 *                   decoders and image readers give).
 * Crops always come out NCHW, the engine's tensor layout.
 *
 * A sample is one frame pair drawn uniformly from the set and a crop origin
 * drawn uniformly over every position where the crop fits, the same origin
 * in the input, the target and the mask of that pair. Draws come from a
 * caller-held generator state (eng_patch_rng), so a given seed yields the
 * same batches on any machine and successive calls continue the stream.
 * The pairs' arrays are only read; the caller keeps them alive.
 */
#ifndef RS_ENGINE_PATCHES_H
#define RS_ENGINE_PATCHES_H

#include <stdint.h>

#include "err.h"
#include "unet.h"

typedef enum eng_layout {
    ENG_LAYOUT_CHW = 0,
    ENG_LAYOUT_HWC = 1,
} eng_layout;

typedef struct eng_image {
    const float *data; /* NULL: absent (only allowed for a pair's mask) */
    int c;
    int h;
    int w;
    eng_layout layout;
} eng_image;

/* One training example: input and target (and optional mask) of the same
 * h x w, e.g. a degraded frame and its clean original. */
typedef struct eng_patch_pair {
    eng_image input;
    eng_image target;
    eng_image mask; /* data NULL when the loss takes none */
} eng_patch_pair;

/* splitmix64 state; seed with any value (0 included). */
typedef struct eng_patch_rng {
    uint64_t state;
} eng_patch_rng;

void eng_patch_rng_seed(eng_patch_rng *r, uint64_t seed);

/* A host-side batch: n crops of ph x pw, NCHW, each array n*c*ph*pw floats
 * with c the pairs' channel count; mask may be NULL (then not written). */
typedef struct eng_patch_batch {
    float *input;
    float *target;
    float *mask;
    int n;
    int ph;
    int pw;
} eng_patch_batch;

/*
 * Fills out with n random crops from pairs. Every pair must have the same
 * input, target and mask channel counts and a frame of at least ph x pw;
 * otherwise RS_EINVAL names the pair and the field. When out->mask is not
 * NULL every pair needs a mask. origins (may be NULL) receives 3 ints per
 * sample: pair index, y0, x0.
 */
rs_err eng_patches_sample(const eng_patch_pair *pairs, int npairs, eng_patch_rng *rng,
                          eng_patch_batch *out, int *origins, rs_error *e);

/*
 * Samples one batch sized by u's tensors (batch n, in_c/out_c channels,
 * h x w) and writes it into unet_input, unet_target and, when the pairs
 * carry masks and u has a mask tensor, unet_mask. Allocates host scratch
 * per call (a batch is small next to a training step).
 */
rs_err eng_patches_fill_unet(unet *u, const eng_patch_pair *pairs, int npairs, eng_patch_rng *rng,
                             rs_error *e);

#endif
