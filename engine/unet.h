/*
 * unet.h: a configurable U-Net built from the engine's ops, trained with
 * one recorded command sequence per step (forward, loss, backward, Adam),
 * replayed for every batch: the host only writes the batch and the step's
 * optimiser constants between submits.
 *
 * Architecture (a PyTorch twin can mirror it layer for layer):
 *   level l = 0..depth-1 has width base << l; a block is
 *   conv3x3(pad 1) + bias -> GroupNorm(norm_groups, if > 0) -> activation.
 *   encoder: two blocks per level, 2x2 average pool between levels;
 *   decoder (l = depth-2..0): 2x upsample, concat [up, skip_l] along
 *   channels, two blocks; head: conv1x1 + bias to out_c, no activation.
 * Initialisation follows PyTorch's defaults (uniform +-1/sqrt(fan_in) for
 * conv weights and biases; GroupNorm gamma 1, beta 0) from a seeded
 * generator, so the same seed gives the same weights, and on the same
 * device and variant the same weights after any number of steps.
 *
 * Ownership: unet_create allocates every tensor; unet_destroy frees them.
 * Accessors return tensors the unet owns. One thread at a time.
 */
#ifndef RS_ENGINE_UNET_H
#define RS_ENGINE_UNET_H

#include <stdint.h>

#include "err.h"
#include "ops.h"
#include "vk.h"

typedef struct unet_cfg {
    int depth; /* levels, >= 1 */
    int base;  /* width of level 0 */
    int in_c;
    int out_c;
    int norm_groups; /* GroupNorm groups (clamped to divide each width); 0: no norm */
    eng_act act;
    float slope; /* LeakyReLU's */
    eng_up up;
    eng_loss loss; /* MASKED_L1 trains through unet_mask() */
    uint64_t seed;
} unet_cfg;

typedef struct unet unet;

/* A network for batches of n x in_c x h x w; h and w must be multiples of
 * 2^(depth-1). variant AUTO takes the context's. */
rs_err unet_create(vk_ctx *ctx, const unet_cfg *cfg, int n, int h, int w, vk_variant variant,
                   unet **out, rs_error *e);
void unet_destroy(unet *u);

/* Tensors the caller fills before a step (input, target, mask) or reads
 * after one (output). */
eng_tensor *unet_input(unet *u);
eng_tensor *unet_target(unet *u);
eng_tensor *unet_mask(unet *u); /* [n][1][h][w]; only for ENG_LOSS_MASKED_L1 */
eng_tensor *unet_output(unet *u);

/* One training step on what the input/target tensors hold: forward, loss,
 * backward, Adam. *loss (may be NULL) is the loss before the update. */
rs_err unet_train_step(unet *u, const eng_adam *opt, float *loss, rs_error *e);
/* Forward only (inference) into unet_output. */
rs_err unet_forward(unet *u, rs_error *e);
/* Steps taken so far. */
long unet_steps(const unet *u);

/* The trainable parameters, in a fixed order with stable names
 * ("enc0.0.conv.w", "dec1.1.norm.gamma", "head.conv.b", ...). */
int unet_param_count(const unet *u);
const char *unet_param_name(const unet *u, int i);
eng_tensor *unet_param(unet *u, int i);
/* dL/dw of parameter i from the last training step (before its update). */
eng_tensor *unet_param_grad(unet *u, int i);
/* Adam's moments of parameter i: which 0 = first (m), 1 = second (v);
 * with unet_steps_set they let a checkpoint resume training exactly. */
eng_tensor *unet_param_moment(unet *u, int i, int which);
void unet_steps_set(unet *u, long steps);
/* Total float count of all parameters. */
size_t unet_param_floats(const unet *u);

/* Copies every parameter of src into dst (same cfg, any batch or size),
 * e.g. from a training network into a tile-sized inference one. */
rs_err unet_params_copy(unet *dst, unet *src, rs_error *e);

/*
 * Tiled inference over one image of any size: img is in_c planes of h x w
 * floats (CHW), out receives out_c planes. u must have been created with
 * batch 1 and a square tile (its h == w == tile), and h, w >= tile. Tiles
 * step by tile - overlap; where tiles overlap, outputs blend with weights
 * that are 0 over the outer overlap/4 pixels of an inner tile edge (where
 * zero padding replaced real context) and ramp linearly to 1 across the
 * rest; image borders keep full weight. Memory: one tile's activations on
 * the device and one h x w weight plane on the host, whatever the image size.
 */
rs_err unet_infer_tiled(unet *u, const float *img, int h, int w, int overlap, float *out,
                        rs_error *e);

/* The recorded training step, for vk_seq_profile_print. */
vk_seq *unet_train_seq(unet *u);
/* Dispatches recorded in the training step (for profiling). */
uint32_t unet_train_dispatches(const unet *u);

#endif
