/*
 * ref.h: the double-precision CPU reference for every training op.
 *
 * Each GPU kernel in engine/ is checked against these functions, and these
 * functions are checked against central finite differences of their own
 * forward (tests/unit/ref_test.c) and against PyTorch where it is installed.
 * They are plain loops, slow on purpose: correctness is the only goal.
 *
 * Conventions for every function here:
 * - Tensors are dense NCHW arrays of double: element (n, c, y, x) of a tensor
 *   of shape [N][C][H][W] is at ((n * C + c) * H + y) * W + x.
 * - "hw" arguments mean H * W where only the flat spatial size matters.
 * - Backward functions OVERWRITE their gradient outputs (they never
 *   accumulate), so callers need not zero them first.
 * - Inputs and outputs must not alias unless a function says so.
 * - Semantics follow PyTorch 1.13 (torch.nn.functional) wherever PyTorch has
 *   the op, including its choices at kinks (ReLU'(0) = 0, sign(0) = 0).
 * Nothing here allocates and nothing fails: callers pass valid shapes
 * (asserted).
 */
#ifndef RS_ENGINE_REF_H
#define RS_ENGINE_REF_H

#include <stddef.h>

/* ---- 2-D convolution (no bias; see ref_bias_*) ------------------------- */

/*
 * Shape of one convolution. Input x: [n][c_in][h][w]. Weight w:
 * [c_out][c_in][k][k] (PyTorch OIHW). Output y: [n][c_out][oh][ow] with
 * oh = (h + 2*pad - k) / stride + 1, ow likewise (integer division, as
 * PyTorch). k is 1 or 3, stride 1 or 2, pad >= 0; padding reads zeros.
 * Cross-correlation, as every deep-learning framework computes it:
 *   y[n][o][i][j] = sum_{c,ky,kx} w[o][c][ky][kx] *
 *                   x[n][c][i*stride + ky - pad][j*stride + kx - pad]
 */
typedef struct ref_conv2d_shape {
    int n;
    int c_in;
    int h;
    int w;
    int c_out;
    int k;
    int stride;
    int pad;
} ref_conv2d_shape;

int ref_conv2d_out_h(const ref_conv2d_shape *s);
int ref_conv2d_out_w(const ref_conv2d_shape *s);

/* y[n][c_out][oh][ow] = conv(x, w). */
void ref_conv2d_fwd(const ref_conv2d_shape *s, const double *x, const double *w, double *y);

/* dx[n][c_in][h][w] = dL/dx given dy[n][c_out][oh][ow] (transposed conv).
 * Input pixels no output reads (stride 2, odd edges) get 0. */
void ref_conv2d_bwd_data(const ref_conv2d_shape *s, const double *dy, const double *w, double *dx);

/* dw[c_out][c_in][k][k] = dL/dw, summed over the batch. */
void ref_conv2d_bwd_weight(const ref_conv2d_shape *s, const double *x, const double *dy,
                           double *dw);

/* ---- per-channel bias --------------------------------------------------- */

/* y[n][c][hw] = x[n][c][hw] + b[c]. x and y may alias. */
void ref_bias_fwd(int n, int c, int hw, const double *x, const double *b, double *y);

/* db[c] = sum over n and hw of dy[n][c][hw]. (dx = dy: the caller copies.) */
void ref_bias_bwd(int n, int c, int hw, const double *dy, double *db);

/* ---- activations (elementwise over count values) ------------------------ */

typedef enum ref_act {
    REF_ACT_RELU = 0,  /* max(x, 0); derivative 0 at x <= 0 */
    REF_ACT_LEAKY = 1, /* x > 0 ? x : slope * x; derivative slope at x <= 0 */
    REF_ACT_SILU = 2,  /* x * sigmoid(x) */
} ref_act;

/* y = act(x). slope is used by REF_ACT_LEAKY only. x and y may alias. */
void ref_act_fwd(ref_act act, double slope, size_t count, const double *x, double *y);

/* dx = dy * act'(x), where x is the forward INPUT (pre-activation).
 * dy and dx may alias. */
void ref_act_bwd(ref_act act, double slope, size_t count, const double *x, const double *dy,
                 double *dx);

/* ---- 2x resampling ------------------------------------------------------ */

/*
 * 2x2 average pool, stride 2 (F.avg_pool2d(x, 2)): x [n][c][h][w] ->
 * y [n][c][h/2][w/2] (floor). With odd h or w the last row/column is not
 * read, and gets zero gradient.
 */
void ref_avgpool2_fwd(int n, int c, int h, int w, const double *x, double *y);
/* dx [n][c][h][w] from dy [n][c][h/2][w/2]. */
void ref_avgpool2_bwd(int n, int c, int h, int w, const double *dy, double *dx);

/* Nearest 2x upsample (F.interpolate(scale_factor=2, mode="nearest")):
 * x [n][c][h][w] -> y [n][c][2h][2w], y[i][j] = x[i/2][j/2]. */
void ref_upsample2_nearest_fwd(int n, int c, int h, int w, const double *x, double *y);
/* dx [n][c][h][w] (sum of its 4 children) from dy [n][c][2h][2w]. */
void ref_upsample2_nearest_bwd(int n, int c, int h, int w, const double *dy, double *dx);

/*
 * Bilinear 2x upsample, align_corners=False (PyTorch): for output row i,
 * src = max(0, (i + 0.5) / 2 - 0.5), i0 = floor(src), i1 = min(i0 + 1, h - 1),
 * weight of i1 = src - i0; columns likewise. x [n][c][h][w] -> y [n][c][2h][2w].
 */
void ref_upsample2_bilinear_fwd(int n, int c, int h, int w, const double *x, double *y);
/* dx [n][c][h][w] from dy [n][c][2h][2w] (the transpose of the above). */
void ref_upsample2_bilinear_bwd(int n, int c, int h, int w, const double *dy, double *dx);

/* ---- channel concat (skip connections) ---------------------------------- */

/* y [n][ca+cb][hw] = cat(a [n][ca][hw], b [n][cb][hw]) along channels. */
void ref_concat_fwd(int n, int ca, int cb, int hw, const double *a, const double *b, double *y);
/* The split: da [n][ca][hw], db [n][cb][hw] from dy [n][ca+cb][hw]. */
void ref_concat_bwd(int n, int ca, int cb, int hw, const double *dy, double *da, double *db);

/* ---- group norm with affine (F.group_norm) ------------------------------ */

/*
 * x, y [n][c][hw]; groups divides c; gamma, beta [c]. Per (sample, group)
 * over its c/groups channels and hw pixels: mean, biased variance var,
 * rstd = 1 / sqrt(var + eps); y = (x - mean) * rstd * gamma[c] + beta[c].
 * mean_out and rstd_out ([n][groups]) may be NULL; the engine's forward
 * saves them for its backward, so they are offered for comparison.
 */
void ref_groupnorm_fwd(int n, int c, int hw, int groups, double eps, const double *x,
                       const double *gamma, const double *beta, double *y, double *mean_out,
                       double *rstd_out);

/* dx [n][c][hw], dgamma [c], dbeta [c] from the forward input x and dy.
 * Recomputes mean and rstd from x. dgamma or dbeta may be NULL. */
void ref_groupnorm_bwd(int n, int c, int hw, int groups, double eps, const double *x,
                       const double *gamma, const double *dy, double *dx, double *dgamma,
                       double *dbeta);

/* ---- losses: return the scalar loss; write dL/dpred into grad (if not NULL) */

/* mean |pred - target| over count values; grad = sign(pred - target) / count
 * (sign(0) = 0, as torch.sign). */
double ref_loss_l1(size_t count, const double *pred, const double *target, double *grad);

/* mean (pred - target)^2; grad = 2 (pred - target) / count. */
double ref_loss_mse(size_t count, const double *pred, const double *target, double *grad);

/*
 * Masked L1 over pred, target [n][c][hw]. mask is [n][mask_c][hw] with
 * mask_c == c (per element) or mask_c == 1 (one weight per pixel, broadcast
 * over channels). Weights m <= 0 count as 0 (excluded).
 *   loss = sum_e m_e |pred_e - target_e| / Z,   Z = sum_e m_e  (m_e > 0 only)
 * where e runs over every ELEMENT of pred (so a broadcast mask counts c times
 * in Z): a mean over the kept elements weighted by the mask. grad_e =
 * m_e sign(pred_e - target_e) / Z. If Z == 0 the loss and grad are 0.
 */
double ref_loss_masked_l1(int n, int c, int hw, int mask_c, const double *pred,
                          const double *target, const double *mask, double *grad);

/*
 * Gradient (edge) loss over pred, target [n][c][h][w], h >= 2 and w >= 2:
 *   gx(t)[y][x] = t[y][x+1] - t[y][x]   (n*c*h*(w-1) values)
 *   gy(t)[y][x] = t[y+1][x] - t[y][x]   (n*c*(h-1)*w values)
 *   loss = mean |gx(pred) - gx(target)| + mean |gy(pred) - gy(target)|
 * (two separate means, each over its own count, then summed).
 */
double ref_loss_grad(int n, int c, int h, int w, const double *pred, const double *target,
                     double *grad);

/* ---- optimiser ---------------------------------------------------------- */

/*
 * One Adam or AdamW step over count parameters, exactly torch.optim.Adam /
 * AdamW (amsgrad=False, maximize=False, single-tensor path). step is the
 * 1-based step number AFTER increment (1 on the first call). m and v are the
 * first and second moments, zero before step 1, updated in place.
 *   if decoupled (AdamW): p = p * (1 - lr * weight_decay)
 *   else if weight_decay: g = g + weight_decay * p          (Adam L2)
 *   m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
 *   p = p - (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 */
typedef struct ref_adam_params {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
    int decoupled; /* 1: AdamW, 0: Adam */
} ref_adam_params;

void ref_adam_step(const ref_adam_params *hp, long step, size_t count, double *param,
                   const double *grad, double *m, double *v);

#endif
