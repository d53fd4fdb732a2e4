/*
 * ops.h: the engine's training ops, each a forward and a backward kernel
 * recorded into a command (eng_cmd), on NCHW fp32 tensors in device buffers.
 * There is no autograd: callers (engine/unet.c, tests) call the backward of
 * each op in reverse order themselves, llm.c-style.
 *
 * Gradients: backward functions write their gradient outputs, or add into
 * them when accum is true (a tensor consumed twice, as a skip connection's
 * source, receives both gradients). Semantics match engine/ref.h exactly
 * (PyTorch's), which the gradient tests check.
 *
 * Variants: an eng_cmd records the kernels of one variant (vk.h): REG
 * (register tiling, for CPU devices), SMEM (shared memory + subgroups,
 * for GPUs) or F16 (convolutions read fp16 copies of their two operands,
 * made by the recording, and accumulate in fp32; every other op as REG);
 * elementwise ops have one kernel for all.
 *
 * Ownership: tensors own their buffer (eng_tensor_free); an eng_cmd owns its
 * sequence and any scratch buffers its ops needed, kept until the next
 * eng_cmd_begin or eng_cmd_destroy, so a recording can be submitted again.
 * Tensors passed to ops must outlive every submit of the recording.
 */
#ifndef RS_ENGINE_OPS_H
#define RS_ENGINE_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "vk.h"

typedef struct eng_tensor {
    vk_buf *buf;
    int n;
    int c;
    int h;
    int w;
} eng_tensor;

/* Allocates an n x c x h x w fp32 tensor (contents undefined). */
rs_err eng_tensor_alloc(vk_ctx *ctx, int n, int c, int h, int w, eng_tensor *t, rs_error *e);
/* Frees the buffer and clears t. Accepts a cleared tensor. */
void eng_tensor_free(eng_tensor *t);
size_t eng_tensor_count(const eng_tensor *t);
rs_err eng_tensor_write(eng_tensor *t, const float *src, rs_error *e);
rs_err eng_tensor_read(const eng_tensor *t, float *dst, rs_error *e);

typedef struct eng_cmd eng_cmd;

/* variant AUTO takes the context's choice; SMEM on a device without it is
 * refused with RS_EINVAL. */
rs_err eng_cmd_create(vk_ctx *ctx, vk_variant variant, eng_cmd **out, rs_error *e);
void eng_cmd_destroy(eng_cmd *cmd);
rs_err eng_cmd_begin(eng_cmd *cmd, rs_error *e);
rs_err eng_cmd_end(eng_cmd *cmd, rs_error *e);
/* Submits and waits. */
rs_err eng_cmd_submit(eng_cmd *cmd, rs_error *e);
vk_seq *eng_cmd_seq(eng_cmd *cmd);
vk_variant eng_cmd_variant(const eng_cmd *cmd);
/* Records a zero fill of t. */
rs_err eng_zero(eng_cmd *cmd, eng_tensor *t, rs_error *e);

/* ---- convolution: weight tensor is [c_out][c_in][k][k], bias [1][c_out][1][1] */
typedef struct eng_conv {
    int k;      /* 1 or 3 */
    int stride; /* 1 or 2 */
    int pad;    /* >= 0, < k */
} eng_conv;

/* Output size along one axis: (in + 2 pad - k) / stride + 1 (PyTorch). */
int eng_conv_out(int in, const eng_conv *cv);
/* y = conv(x, w) (+ bias when bias is not NULL). */
rs_err eng_conv2d_fwd(eng_cmd *cmd, const eng_conv *cv, const eng_tensor *x, const eng_tensor *w,
                      const eng_tensor *bias, eng_tensor *y, rs_error *e);
rs_err eng_conv2d_bwd_data(eng_cmd *cmd, const eng_conv *cv, const eng_tensor *dy,
                           const eng_tensor *w, eng_tensor *dx, bool accum, rs_error *e);
rs_err eng_conv2d_bwd_weight(eng_cmd *cmd, const eng_conv *cv, const eng_tensor *x,
                             const eng_tensor *dy, eng_tensor *dw, bool accum, rs_error *e);

/* ---- bias: y += b[c] in place; db = sum over n and pixels of dy */
rs_err eng_bias_fwd(eng_cmd *cmd, eng_tensor *y, const eng_tensor *b, rs_error *e);
rs_err eng_bias_bwd(eng_cmd *cmd, const eng_tensor *dy, eng_tensor *db, bool accum, rs_error *e);

/* ---- activations; slope is LeakyReLU's; x and y may be the same tensor */
typedef enum eng_act {
    ENG_ACT_RELU = 0,
    ENG_ACT_LEAKY = 1,
    ENG_ACT_SILU = 2,
} eng_act;
rs_err eng_act_fwd(eng_cmd *cmd, eng_act act, float slope, const eng_tensor *x, eng_tensor *y,
                   rs_error *e);
/* dx (+)= dy * act'(x), x the forward input. */
rs_err eng_act_bwd(eng_cmd *cmd, eng_act act, float slope, const eng_tensor *x,
                   const eng_tensor *dy, eng_tensor *dx, bool accum, rs_error *e);

/* ---- 2x resampling: avg pool (floor on odd sizes) and 2x upsampling */
rs_err eng_avgpool2_fwd(eng_cmd *cmd, const eng_tensor *x, eng_tensor *y, rs_error *e);
rs_err eng_avgpool2_bwd(eng_cmd *cmd, const eng_tensor *dy, eng_tensor *dx, bool accum,
                        rs_error *e);
typedef enum eng_up {
    ENG_UP_NEAREST = 0,
    ENG_UP_BILINEAR = 1, /* align_corners=False */
} eng_up;
rs_err eng_upsample2_fwd(eng_cmd *cmd, eng_up mode, const eng_tensor *x, eng_tensor *y,
                         rs_error *e);
rs_err eng_upsample2_bwd(eng_cmd *cmd, eng_up mode, const eng_tensor *dy, eng_tensor *dx,
                         bool accum, rs_error *e);

/* ---- channel concat: y = [a, b] along channels; backward splits (da or db may be NULL) */
rs_err eng_concat_fwd(eng_cmd *cmd, const eng_tensor *a, const eng_tensor *b, eng_tensor *y,
                      rs_error *e);
rs_err eng_concat_bwd(eng_cmd *cmd, const eng_tensor *dy, eng_tensor *da, eng_tensor *db,
                      bool accum, rs_error *e);

/* ---- group norm with affine; stats holds n*groups*2 floats (mean, rstd)
 * written by the forward and read by the backward; gamma, beta [1][c][1][1] */
rs_err eng_groupnorm_fwd(eng_cmd *cmd, int groups, float eps, const eng_tensor *x,
                         const eng_tensor *gamma, const eng_tensor *beta, eng_tensor *y,
                         eng_tensor *stats, rs_error *e);
/* dgamma and dbeta are written (never accumulated); dx honours accum. */
rs_err eng_groupnorm_bwd(eng_cmd *cmd, int groups, const eng_tensor *x, const eng_tensor *dy,
                         const eng_tensor *stats, const eng_tensor *gamma, eng_tensor *dx,
                         eng_tensor *dgamma, eng_tensor *dbeta, bool accum, rs_error *e);

/* ---- losses (ref.h definitions). lossv holds >= 2 floats: [0] the loss,
 * [1] its normaliser; mask only for MASKED_L1 ([n][1 or c][h][w]). */
typedef enum eng_loss {
    ENG_LOSS_L1 = 0,
    ENG_LOSS_MSE = 1,
    ENG_LOSS_MASKED_L1 = 2,
    ENG_LOSS_GRAD = 3, /* L1 of horizontal + vertical differences; h, w >= 2 */
} eng_loss;
rs_err eng_loss_fwd(eng_cmd *cmd, eng_loss kind, const eng_tensor *pred, const eng_tensor *target,
                    const eng_tensor *mask, eng_tensor *lossv, rs_error *e);
/* grad (+)= scale * dL/dpred; record after eng_loss_fwd (masked L1 reads Z from lossv). */
rs_err eng_loss_bwd(eng_cmd *cmd, eng_loss kind, const eng_tensor *pred, const eng_tensor *target,
                    const eng_tensor *mask, const eng_tensor *lossv, float scale, eng_tensor *grad,
                    bool accum, rs_error *e);

/* ---- Adam / AdamW (torch.optim semantics), fp32 master weights */
/* Doubles on the host: 1 - beta2 is formed in double before rounding, as
 * fp32 0.999f alone would be off by 1.3e-5 relative in (1 - beta2). */
typedef struct eng_adam {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
    int decoupled; /* 1 AdamW, 0 Adam (L2 added to the gradient) */
} eng_adam;
#define ENG_ADAM_HP_FLOATS 10
/* Writes the step's hyper-parameters (bias corrections for 1-based step)
 * into hp (>= ENG_ADAM_HP_FLOATS floats), host-side, before a submit. */
rs_err eng_adam_set(eng_tensor *hp, const eng_adam *a, long step, rs_error *e);
/* w, m, v updated in place from g; m and v start zeroed. */
rs_err eng_adam_step(eng_cmd *cmd, eng_tensor *w, const eng_tensor *g, eng_tensor *m, eng_tensor *v,
                     const eng_tensor *hp, rs_error *e);

#endif
