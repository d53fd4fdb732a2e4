/*
 * ref.c: the double-precision CPU reference ops declared in ref.h.
 *
 * Direct loops that mirror the math in ref.h line by line, so a reader can
 * check them against the formulas (and PyTorch) without trusting any trick.
 * Backward passes are written as the literal transpose of their forward
 * loop (scatter instead of gather) so the two cannot drift apart.
 */
#include "ref.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int ref_conv2d_out_h(const ref_conv2d_shape *s)
{
    return (s->h + 2 * s->pad - s->k) / s->stride + 1;
}

int ref_conv2d_out_w(const ref_conv2d_shape *s)
{
    return (s->w + 2 * s->pad - s->k) / s->stride + 1;
}

static void conv_check(const ref_conv2d_shape *s)
{
    assert(s->n > 0 && s->c_in > 0 && s->c_out > 0 && s->h > 0 && s->w > 0);
    assert(s->k == 1 || s->k == 3);
    assert(s->stride == 1 || s->stride == 2);
    assert(s->pad >= 0);
    assert(ref_conv2d_out_h(s) > 0 && ref_conv2d_out_w(s) > 0);
    (void)s;
}

void ref_conv2d_fwd(const ref_conv2d_shape *s, const double *x, const double *w, double *y)
{
    conv_check(s);
    int oh = ref_conv2d_out_h(s);
    int ow = ref_conv2d_out_w(s);
    int k = s->k;
    for (int n = 0; n < s->n; n++) {
        for (int o = 0; o < s->c_out; o++) {
            for (int i = 0; i < oh; i++) {
                for (int j = 0; j < ow; j++) {
                    double acc = 0.0;
                    for (int c = 0; c < s->c_in; c++) {
                        for (int ky = 0; ky < k; ky++) {
                            int iy = i * s->stride + ky - s->pad;
                            if (iy < 0 || iy >= s->h) {
                                continue;
                            }
                            for (int kx = 0; kx < k; kx++) {
                                int ix = j * s->stride + kx - s->pad;
                                if (ix < 0 || ix >= s->w) {
                                    continue;
                                }
                                acc += w[((size_t)(o * s->c_in + c) * k + ky) * k + kx] *
                                       x[((size_t)(n * s->c_in + c) * s->h + iy) * s->w + ix];
                            }
                        }
                    }
                    y[((size_t)(n * s->c_out + o) * oh + i) * ow + j] = acc;
                }
            }
        }
    }
}

void ref_conv2d_bwd_data(const ref_conv2d_shape *s, const double *dy, const double *w, double *dx)
{
    conv_check(s);
    int oh = ref_conv2d_out_h(s);
    int ow = ref_conv2d_out_w(s);
    int k = s->k;
    memset(dx, 0, sizeof(double) * (size_t)s->n * s->c_in * s->h * s->w);
    for (int n = 0; n < s->n; n++) {
        for (int o = 0; o < s->c_out; o++) {
            for (int i = 0; i < oh; i++) {
                for (int j = 0; j < ow; j++) {
                    double g = dy[((size_t)(n * s->c_out + o) * oh + i) * ow + j];
                    for (int c = 0; c < s->c_in; c++) {
                        for (int ky = 0; ky < k; ky++) {
                            int iy = i * s->stride + ky - s->pad;
                            if (iy < 0 || iy >= s->h) {
                                continue;
                            }
                            for (int kx = 0; kx < k; kx++) {
                                int ix = j * s->stride + kx - s->pad;
                                if (ix < 0 || ix >= s->w) {
                                    continue;
                                }
                                dx[((size_t)(n * s->c_in + c) * s->h + iy) * s->w + ix] +=
                                    g * w[((size_t)(o * s->c_in + c) * k + ky) * k + kx];
                            }
                        }
                    }
                }
            }
        }
    }
}

void ref_conv2d_bwd_weight(const ref_conv2d_shape *s, const double *x, const double *dy, double *dw)
{
    conv_check(s);
    int oh = ref_conv2d_out_h(s);
    int ow = ref_conv2d_out_w(s);
    int k = s->k;
    memset(dw, 0, sizeof(double) * (size_t)s->c_out * s->c_in * k * k);
    for (int n = 0; n < s->n; n++) {
        for (int o = 0; o < s->c_out; o++) {
            for (int i = 0; i < oh; i++) {
                for (int j = 0; j < ow; j++) {
                    double g = dy[((size_t)(n * s->c_out + o) * oh + i) * ow + j];
                    for (int c = 0; c < s->c_in; c++) {
                        for (int ky = 0; ky < k; ky++) {
                            int iy = i * s->stride + ky - s->pad;
                            if (iy < 0 || iy >= s->h) {
                                continue;
                            }
                            for (int kx = 0; kx < k; kx++) {
                                int ix = j * s->stride + kx - s->pad;
                                if (ix < 0 || ix >= s->w) {
                                    continue;
                                }
                                dw[((size_t)(o * s->c_in + c) * k + ky) * k + kx] +=
                                    g * x[((size_t)(n * s->c_in + c) * s->h + iy) * s->w + ix];
                            }
                        }
                    }
                }
            }
        }
    }
}

void ref_bias_fwd(int n, int c, int hw, const double *x, const double *b, double *y)
{
    for (int in = 0; in < n; in++) {
        for (int ic = 0; ic < c; ic++) {
            size_t base = ((size_t)in * c + ic) * hw;
            for (int p = 0; p < hw; p++) {
                y[base + p] = x[base + p] + b[ic];
            }
        }
    }
}

void ref_bias_bwd(int n, int c, int hw, const double *dy, double *db)
{
    for (int ic = 0; ic < c; ic++) {
        double acc = 0.0;
        for (int in = 0; in < n; in++) {
            size_t base = ((size_t)in * c + ic) * hw;
            for (int p = 0; p < hw; p++) {
                acc += dy[base + p];
            }
        }
        db[ic] = acc;
    }
}

static double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

void ref_act_fwd(ref_act act, double slope, size_t count, const double *x, double *y)
{
    for (size_t i = 0; i < count; i++) {
        double v = x[i];
        switch (act) {
        case REF_ACT_RELU:
            y[i] = v > 0.0 ? v : 0.0;
            break;
        case REF_ACT_LEAKY:
            y[i] = v > 0.0 ? v : slope * v;
            break;
        case REF_ACT_SILU:
            y[i] = v * sigmoid(v);
            break;
        }
    }
}

void ref_act_bwd(ref_act act, double slope, size_t count, const double *x, const double *dy,
                 double *dx)
{
    for (size_t i = 0; i < count; i++) {
        double v = x[i];
        double d = 0.0;
        switch (act) {
        case REF_ACT_RELU:
            d = v > 0.0 ? 1.0 : 0.0;
            break;
        case REF_ACT_LEAKY:
            d = v > 0.0 ? 1.0 : slope;
            break;
        case REF_ACT_SILU: {
            double sg = sigmoid(v);
            d = sg * (1.0 + v * (1.0 - sg));
            break;
        }
        }
        dx[i] = dy[i] * d;
    }
}

void ref_avgpool2_fwd(int n, int c, int h, int w, const double *x, double *y)
{
    int oh = h / 2;
    int ow = w / 2;
    for (size_t p = 0; p < (size_t)n * c; p++) {
        const double *xp = x + p * h * w;
        double *yp = y + p * oh * ow;
        for (int i = 0; i < oh; i++) {
            for (int j = 0; j < ow; j++) {
                yp[i * ow + j] =
                    0.25 * (xp[(2 * i) * w + 2 * j] + xp[(2 * i) * w + 2 * j + 1] +
                            xp[(2 * i + 1) * w + 2 * j] + xp[(2 * i + 1) * w + 2 * j + 1]);
            }
        }
    }
}

void ref_avgpool2_bwd(int n, int c, int h, int w, const double *dy, double *dx)
{
    int oh = h / 2;
    int ow = w / 2;
    memset(dx, 0, sizeof(double) * (size_t)n * c * h * w);
    for (size_t p = 0; p < (size_t)n * c; p++) {
        double *dxp = dx + p * h * w;
        const double *dyp = dy + p * oh * ow;
        for (int i = 0; i < oh; i++) {
            for (int j = 0; j < ow; j++) {
                double g = 0.25 * dyp[i * ow + j];
                dxp[(2 * i) * w + 2 * j] += g;
                dxp[(2 * i) * w + 2 * j + 1] += g;
                dxp[(2 * i + 1) * w + 2 * j] += g;
                dxp[(2 * i + 1) * w + 2 * j + 1] += g;
            }
        }
    }
}

void ref_upsample2_nearest_fwd(int n, int c, int h, int w, const double *x, double *y)
{
    int oh = 2 * h;
    int ow = 2 * w;
    for (size_t p = 0; p < (size_t)n * c; p++) {
        const double *xp = x + p * h * w;
        double *yp = y + p * oh * ow;
        for (int i = 0; i < oh; i++) {
            for (int j = 0; j < ow; j++) {
                yp[i * ow + j] = xp[(i / 2) * w + j / 2];
            }
        }
    }
}

void ref_upsample2_nearest_bwd(int n, int c, int h, int w, const double *dy, double *dx)
{
    int oh = 2 * h;
    int ow = 2 * w;
    memset(dx, 0, sizeof(double) * (size_t)n * c * h * w);
    for (size_t p = 0; p < (size_t)n * c; p++) {
        double *dxp = dx + p * h * w;
        const double *dyp = dy + p * oh * ow;
        for (int i = 0; i < oh; i++) {
            for (int j = 0; j < ow; j++) {
                dxp[(i / 2) * w + j / 2] += dyp[i * ow + j];
            }
        }
    }
}

/* PyTorch's area_pixel_compute_source_index for scale 1/2, align_corners=False,
 * then its clamp of the upper neighbour. */
static void bilinear_src(int dst, int in, int *i0, int *i1, double *lambda)
{
    double src = (dst + 0.5) * 0.5 - 0.5;
    if (src < 0.0) {
        src = 0.0;
    }
    int lo = (int)src;
    *i0 = lo;
    *i1 = lo < in - 1 ? lo + 1 : lo;
    *lambda = src - lo;
}

void ref_upsample2_bilinear_fwd(int n, int c, int h, int w, const double *x, double *y)
{
    int oh = 2 * h;
    int ow = 2 * w;
    for (size_t p = 0; p < (size_t)n * c; p++) {
        const double *xp = x + p * h * w;
        double *yp = y + p * oh * ow;
        for (int i = 0; i < oh; i++) {
            int y0;
            int y1;
            double ly;
            bilinear_src(i, h, &y0, &y1, &ly);
            for (int j = 0; j < ow; j++) {
                int x0;
                int x1;
                double lx;
                bilinear_src(j, w, &x0, &x1, &lx);
                yp[i * ow + j] =
                    (1.0 - ly) * ((1.0 - lx) * xp[y0 * w + x0] + lx * xp[y0 * w + x1]) +
                    ly * ((1.0 - lx) * xp[y1 * w + x0] + lx * xp[y1 * w + x1]);
            }
        }
    }
}

void ref_upsample2_bilinear_bwd(int n, int c, int h, int w, const double *dy, double *dx)
{
    int oh = 2 * h;
    int ow = 2 * w;
    memset(dx, 0, sizeof(double) * (size_t)n * c * h * w);
    for (size_t p = 0; p < (size_t)n * c; p++) {
        double *dxp = dx + p * h * w;
        const double *dyp = dy + p * oh * ow;
        for (int i = 0; i < oh; i++) {
            int y0;
            int y1;
            double ly;
            bilinear_src(i, h, &y0, &y1, &ly);
            for (int j = 0; j < ow; j++) {
                int x0;
                int x1;
                double lx;
                bilinear_src(j, w, &x0, &x1, &lx);
                double g = dyp[i * ow + j];
                dxp[y0 * w + x0] += g * (1.0 - ly) * (1.0 - lx);
                dxp[y0 * w + x1] += g * (1.0 - ly) * lx;
                dxp[y1 * w + x0] += g * ly * (1.0 - lx);
                dxp[y1 * w + x1] += g * ly * lx;
            }
        }
    }
}

void ref_concat_fwd(int n, int ca, int cb, int hw, const double *a, const double *b, double *y)
{
    size_t sa = (size_t)ca * hw;
    size_t sb = (size_t)cb * hw;
    for (int in = 0; in < n; in++) {
        memcpy(y + in * (sa + sb), a + in * sa, sizeof(double) * sa);
        memcpy(y + in * (sa + sb) + sa, b + in * sb, sizeof(double) * sb);
    }
}

void ref_concat_bwd(int n, int ca, int cb, int hw, const double *dy, double *da, double *db)
{
    size_t sa = (size_t)ca * hw;
    size_t sb = (size_t)cb * hw;
    for (int in = 0; in < n; in++) {
        memcpy(da + in * sa, dy + in * (sa + sb), sizeof(double) * sa);
        memcpy(db + in * sb, dy + in * (sa + sb) + sa, sizeof(double) * sb);
    }
}

/* Mean and rstd of one (sample, group) block of cg * hw contiguous values. */
static void group_stats(const double *xg, size_t len, double eps, double *mean, double *rstd)
{
    double s = 0.0;
    for (size_t i = 0; i < len; i++) {
        s += xg[i];
    }
    double mu = s / (double)len;
    double v = 0.0;
    for (size_t i = 0; i < len; i++) {
        v += (xg[i] - mu) * (xg[i] - mu);
    }
    v /= (double)len;
    *mean = mu;
    *rstd = 1.0 / sqrt(v + eps);
}

void ref_groupnorm_fwd(int n, int c, int hw, int groups, double eps, const double *x,
                       const double *gamma, const double *beta, double *y, double *mean_out,
                       double *rstd_out)
{
    assert(groups > 0 && c % groups == 0);
    int cg = c / groups;
    size_t len = (size_t)cg * hw;
    for (int in = 0; in < n; in++) {
        for (int g = 0; g < groups; g++) {
            size_t base = ((size_t)in * c + (size_t)g * cg) * hw;
            double mu;
            double rs;
            group_stats(x + base, len, eps, &mu, &rs);
            if (mean_out != NULL) {
                mean_out[in * groups + g] = mu;
            }
            if (rstd_out != NULL) {
                rstd_out[in * groups + g] = rs;
            }
            for (int cc = 0; cc < cg; cc++) {
                int ch = g * cg + cc;
                for (int p = 0; p < hw; p++) {
                    size_t idx = base + (size_t)cc * hw + p;
                    y[idx] = (x[idx] - mu) * rs * gamma[ch] + beta[ch];
                }
            }
        }
    }
}

/*
 * With xhat = (x - mean) * rstd and g = dy * gamma over the M = cg*hw values
 * of a group: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
 */
void ref_groupnorm_bwd(int n, int c, int hw, int groups, double eps, const double *x,
                       const double *gamma, const double *dy, double *dx, double *dgamma,
                       double *dbeta)
{
    assert(groups > 0 && c % groups == 0);
    int cg = c / groups;
    size_t len = (size_t)cg * hw;
    if (dgamma != NULL) {
        memset(dgamma, 0, sizeof(double) * (size_t)c);
    }
    if (dbeta != NULL) {
        memset(dbeta, 0, sizeof(double) * (size_t)c);
    }
    for (int in = 0; in < n; in++) {
        for (int g = 0; g < groups; g++) {
            size_t base = ((size_t)in * c + (size_t)g * cg) * hw;
            double mu;
            double rs;
            group_stats(x + base, len, eps, &mu, &rs);
            double sum_g = 0.0;
            double sum_gx = 0.0;
            for (int cc = 0; cc < cg; cc++) {
                int ch = g * cg + cc;
                for (int p = 0; p < hw; p++) {
                    size_t idx = base + (size_t)cc * hw + p;
                    double xhat = (x[idx] - mu) * rs;
                    double gg = dy[idx] * gamma[ch];
                    sum_g += gg;
                    sum_gx += gg * xhat;
                    if (dgamma != NULL) {
                        dgamma[ch] += dy[idx] * xhat;
                    }
                    if (dbeta != NULL) {
                        dbeta[ch] += dy[idx];
                    }
                }
            }
            double mean_g = sum_g / (double)len;
            double mean_gx = sum_gx / (double)len;
            for (int cc = 0; cc < cg; cc++) {
                int ch = g * cg + cc;
                for (int p = 0; p < hw; p++) {
                    size_t idx = base + (size_t)cc * hw + p;
                    double xhat = (x[idx] - mu) * rs;
                    double gg = dy[idx] * gamma[ch];
                    dx[idx] = rs * (gg - mean_g - xhat * mean_gx);
                }
            }
        }
    }
}

static double sign(double v)
{
    return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0);
}

double ref_loss_l1(size_t count, const double *pred, const double *target, double *grad)
{
    double s = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = pred[i] - target[i];
        s += fabs(d);
        if (grad != NULL) {
            grad[i] = sign(d) / (double)count;
        }
    }
    return s / (double)count;
}

double ref_loss_mse(size_t count, const double *pred, const double *target, double *grad)
{
    double s = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = pred[i] - target[i];
        s += d * d;
        if (grad != NULL) {
            grad[i] = 2.0 * d / (double)count;
        }
    }
    return s / (double)count;
}

double ref_loss_masked_l1(int n, int c, int hw, int mask_c, const double *pred,
                          const double *target, const double *mask, double *grad)
{
    assert(mask_c == 1 || mask_c == c);
    double z = 0.0;
    double s = 0.0;
    for (int in = 0; in < n; in++) {
        for (int ic = 0; ic < c; ic++) {
            int mc = mask_c == 1 ? 0 : ic;
            for (int p = 0; p < hw; p++) {
                size_t idx = ((size_t)in * c + ic) * hw + p;
                double m = mask[((size_t)in * mask_c + mc) * hw + p];
                if (m > 0.0) {
                    z += m;
                    s += m * fabs(pred[idx] - target[idx]);
                }
            }
        }
    }
    if (grad != NULL) {
        for (int in = 0; in < n; in++) {
            for (int ic = 0; ic < c; ic++) {
                int mc = mask_c == 1 ? 0 : ic;
                for (int p = 0; p < hw; p++) {
                    size_t idx = ((size_t)in * c + ic) * hw + p;
                    double m = mask[((size_t)in * mask_c + mc) * hw + p];
                    grad[idx] = (m > 0.0 && z > 0.0) ? m * sign(pred[idx] - target[idx]) / z : 0.0;
                }
            }
        }
    }
    return z > 0.0 ? s / z : 0.0;
}

double ref_loss_grad(int n, int c, int h, int w, const double *pred, const double *target,
                     double *grad)
{
    assert(h >= 2 && w >= 2);
    double cx = (double)n * c * h * (w - 1);
    double cy = (double)n * c * (h - 1) * w;
    double sx = 0.0;
    double sy = 0.0;
    if (grad != NULL) {
        memset(grad, 0, sizeof(double) * (size_t)n * c * h * w);
    }
    for (size_t pl = 0; pl < (size_t)n * c; pl++) {
        const double *p = pred + pl * h * w;
        const double *t = target + pl * h * w;
        double *g = grad != NULL ? grad + pl * h * w : NULL;
        for (int i = 0; i < h; i++) {
            for (int j = 0; j < w; j++) {
                if (j + 1 < w) {
                    double d =
                        (p[i * w + j + 1] - p[i * w + j]) - (t[i * w + j + 1] - t[i * w + j]);
                    sx += fabs(d);
                    if (g != NULL) {
                        g[i * w + j + 1] += sign(d) / cx;
                        g[i * w + j] -= sign(d) / cx;
                    }
                }
                if (i + 1 < h) {
                    double d =
                        (p[(i + 1) * w + j] - p[i * w + j]) - (t[(i + 1) * w + j] - t[i * w + j]);
                    sy += fabs(d);
                    if (g != NULL) {
                        g[(i + 1) * w + j] += sign(d) / cy;
                        g[i * w + j] -= sign(d) / cy;
                    }
                }
            }
        }
    }
    return sx / cx + sy / cy;
}

void ref_adam_step(const ref_adam_params *hp, long step, size_t count, double *param,
                   const double *grad, double *m, double *v)
{
    assert(step >= 1);
    double bc1 = 1.0 - pow(hp->beta1, (double)step);
    double bc2 = 1.0 - pow(hp->beta2, (double)step);
    double step_size = hp->lr / bc1;
    double bc2_sqrt = sqrt(bc2);
    for (size_t i = 0; i < count; i++) {
        double g = grad[i];
        if (hp->decoupled) {
            param[i] *= 1.0 - hp->lr * hp->weight_decay;
        } else if (hp->weight_decay != 0.0) {
            g += hp->weight_decay * param[i];
        }
        m[i] = hp->beta1 * m[i] + (1.0 - hp->beta1) * g;
        v[i] = hp->beta2 * v[i] + (1.0 - hp->beta2) * g * g;
        double denom = sqrt(v[i]) / bc2_sqrt + hp->eps;
        param[i] -= step_size * m[i] / denom;
    }
}
