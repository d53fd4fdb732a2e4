/*
 * ref_test.c: every backward in engine/ref.c against central finite
 * differences of its own forward, in double precision, on odd shapes (7x5
 * spatial, 3 and 13 channels, batch 1 and 3); Adam against its closed form;
 * and forward + backward values against PyTorch (float64) through
 * tests/unit/ref_torch.py when /usr/bin/python3 has torch.
 *
 * Finite differences: the objective is L = sum(r * f(x)) with a fixed random
 * r, so dL/dx is the op's backward applied to dy = r. Step h = 1e-5; inputs
 * are kept at least 0.1 away from every kink (ReLU, |.|), so the central
 * difference error is O(h^2) ~ 1e-10 relative. Tolerance (FD_TOL): the
 * normalised error max_i |analytic_i - numeric_i| / max_i |numeric_i| must be
 * below 1e-6. PyTorch comparison tolerance (TORCH_TOL): max abs difference
 * over max abs value below 1e-10 (both sides compute in float64).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ref.h"

#define FD_H 1e-5
#define FD_TOL 1e-6
#define TORCH_TOL 1e-10
#define FD_MAX_POINTS 600 /* inputs checked per tensor; larger tensors are strided */

/* ---- deterministic inputs ---------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static double rng_uniform(rng *r) /* [-1, 1) */
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(r->s >> 11) / (double)(1ULL << 53) * 2.0 - 1.0;
}

static double *vec_new(size_t n)
{
    double *v = calloc(n > 0 ? n : 1, sizeof *v);
    cr_assert_not_null(v);
    return v;
}

static double *vec_rand(rng *r, size_t n)
{
    double *v = vec_new(n);
    for (size_t i = 0; i < n; i++) {
        v[i] = rng_uniform(r);
    }
    return v;
}

/* Values in +-[0.1, 1): at least 0.1 from the kinks at 0. */
static double *vec_rand_away(rng *r, size_t n)
{
    double *v = vec_new(n);
    for (size_t i = 0; i < n; i++) {
        double u = rng_uniform(r);
        v[i] = (u < 0 ? -1.0 : 1.0) * (0.1 + 0.9 * fabs(u));
    }
    return v;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += a[i] * b[i];
    }
    return s;
}

/* ---- the finite-difference checker -------------------------------------- */

/* One op under test: fwd computes y (ny values) from the inputs in[]; a loss
 * sets ny = 1 and writes the loss into y[0]. */
typedef struct fd_case {
    void (*fwd)(const struct fd_case *c, double *y);
    size_t ny;
    double *in[4];
    size_t nin[4];
    ref_conv2d_shape cs;
    int n;
    int c;
    int h;
    int w;
    int groups;
    int ca;
    int cb;
    int mask_c;
    double slope;
    double eps;
    ref_act act;
} fd_case;

static double objective(const fd_case *c, const double *r, double *y)
{
    c->fwd(c, y);
    return dot(r, y, c->ny);
}

/* Checks analytic (the gradient of sum(r * y) w.r.t. input k) numerically. */
static void fd_check(const char *what, fd_case *c, int k, const double *r, const double *analytic)
{
    double *y = vec_new(c->ny);
    size_t n = c->nin[k];
    size_t step = n > FD_MAX_POINTS ? n / FD_MAX_POINTS + 1 : 1;
    double max_err = 0.0;
    double max_num = 0.0;
    for (size_t i = 0; i < n; i += step) {
        double v = c->in[k][i];
        c->in[k][i] = v + FD_H;
        double lp = objective(c, r, y);
        c->in[k][i] = v - FD_H;
        double lm = objective(c, r, y);
        c->in[k][i] = v;
        double num = (lp - lm) / (2.0 * FD_H);
        max_err = fmax(max_err, fabs(num - analytic[i]));
        max_num = fmax(max_num, fabs(num));
    }
    free(y);
    cr_assert(max_num > 0.0, "%s input %d: numeric gradient is all zero", what, k);
    double rel = max_err / max_num;
    cr_assert(rel < FD_TOL, "%s input %d: normalised error %.3g >= %.1g", what, k, rel, FD_TOL);
}

/* ---- conv2d ------------------------------------------------------------- */

static void conv_fwd(const fd_case *c, double *y)
{
    ref_conv2d_fwd(&c->cs, c->in[0], c->in[1], y);
}

static void conv_case(int n, int cin, int cout, int k, int stride, int pad, uint64_t seed)
{
    rng r = {seed};
    fd_case c = {.fwd = conv_fwd};
    c.cs = (ref_conv2d_shape){n, cin, 7, 5, cout, k, stride, pad};
    int oh = ref_conv2d_out_h(&c.cs);
    int ow = ref_conv2d_out_w(&c.cs);
    c.ny = (size_t)n * cout * oh * ow;
    c.nin[0] = (size_t)n * cin * 7 * 5;
    c.nin[1] = (size_t)cout * cin * k * k;
    c.in[0] = vec_rand(&r, c.nin[0]);
    c.in[1] = vec_rand(&r, c.nin[1]);
    double *dy = vec_rand(&r, c.ny);
    double *dx = vec_new(c.nin[0]);
    double *dw = vec_new(c.nin[1]);
    ref_conv2d_bwd_data(&c.cs, dy, c.in[1], dx);
    ref_conv2d_bwd_weight(&c.cs, c.in[0], dy, dw);
    char what[96];
    snprintf(what, sizeof what, "conv n%d %d->%d k%d s%d p%d", n, cin, cout, k, stride, pad);
    fd_check(what, &c, 0, dy, dx);
    fd_check(what, &c, 1, dy, dw);
    free(c.in[0]);
    free(c.in[1]);
    free(dy);
    free(dx);
    free(dw);
}

Test(ref_fd, conv2d_shapes)
{
    ref_conv2d_shape s = {1, 1, 7, 5, 1, 3, 2, 1};
    cr_assert_eq(ref_conv2d_out_h(&s), 4);
    cr_assert_eq(ref_conv2d_out_w(&s), 3);
    s = (ref_conv2d_shape){1, 1, 7, 5, 1, 1, 2, 0};
    cr_assert_eq(ref_conv2d_out_h(&s), 4);
    cr_assert_eq(ref_conv2d_out_w(&s), 3);
}

Test(ref_fd, conv2d_known_value)
{
    /* 1 channel 3x3 input, all-ones 3x3 kernel, pad 1: centre = sum of all. */
    double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    double w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    double y[9];
    ref_conv2d_shape s = {1, 1, 3, 3, 1, 3, 1, 1};
    ref_conv2d_fwd(&s, x, w, y);
    cr_assert_float_eq(y[4], 45.0, 1e-12);
    cr_assert_float_eq(y[0], 1 + 2 + 4 + 5, 1e-12);
}

Test(ref_fd, conv2d_3x3)
{
    conv_case(1, 3, 13, 3, 1, 1, 1);
    conv_case(3, 13, 3, 3, 1, 1, 2);
    conv_case(3, 3, 13, 3, 2, 1, 3);
    conv_case(1, 13, 3, 3, 2, 0, 4);
    conv_case(1, 3, 3, 3, 1, 0, 5);
}

Test(ref_fd, conv2d_1x1)
{
    conv_case(1, 3, 13, 1, 1, 0, 6);
    conv_case(3, 13, 3, 1, 2, 0, 7);
    conv_case(3, 3, 3, 1, 1, 1, 8);
}

/* ---- bias, activations -------------------------------------------------- */

static void bias_fwd(const fd_case *c, double *y)
{
    ref_bias_fwd(c->n, c->c, c->h * c->w, c->in[0], c->in[1], y);
}

Test(ref_fd, bias)
{
    for (int b = 1; b <= 3; b += 2) {
        rng r = {10 + (uint64_t)b};
        fd_case c = {.fwd = bias_fwd, .n = b, .c = 13, .h = 7, .w = 5};
        c.ny = c.nin[0] = (size_t)b * 13 * 35;
        c.nin[1] = 13;
        c.in[0] = vec_rand(&r, c.nin[0]);
        c.in[1] = vec_rand(&r, c.nin[1]);
        double *dy = vec_rand(&r, c.ny);
        double *db = vec_new(13);
        ref_bias_bwd(b, 13, 35, dy, db);
        fd_check("bias", &c, 1, dy, db);
        fd_check("bias (dx = dy)", &c, 0, dy, dy);
        free(c.in[0]);
        free(c.in[1]);
        free(dy);
        free(db);
    }
}

static void act_fwd(const fd_case *c, double *y)
{
    ref_act_fwd(c->act, c->slope, c->nin[0], c->in[0], y);
}

Test(ref_fd, activations)
{
    const char *names[] = {"relu", "leaky", "silu"};
    for (int a = 0; a < 3; a++) {
        rng r = {20 + (uint64_t)a};
        fd_case c = {.fwd = act_fwd, .act = (ref_act)a, .slope = 0.2};
        c.ny = c.nin[0] = 3 * 13 * 35;
        c.in[0] = vec_rand_away(&r, c.nin[0]);
        for (size_t i = 0; i < c.nin[0]; i++) {
            c.in[0][i] *= 4.0; /* SiLU's curvature lives in [-4, 4] */
        }
        double *dy = vec_rand(&r, c.ny);
        double *dx = vec_new(c.ny);
        ref_act_bwd(c.act, c.slope, c.ny, c.in[0], dy, dx);
        fd_check(names[a], &c, 0, dy, dx);
        free(c.in[0]);
        free(dy);
        free(dx);
    }
    double x[3] = {-2.0, 0.0, 3.0};
    double y[3];
    ref_act_fwd(REF_ACT_LEAKY, 0.1, 3, x, y);
    cr_assert_float_eq(y[0], -0.2, 1e-15);
    cr_assert_float_eq(y[2], 3.0, 1e-15);
    ref_act_fwd(REF_ACT_SILU, 0.0, 3, x, y);
    cr_assert_float_eq(y[2], 3.0 / (1.0 + exp(-3.0)), 1e-15);
}

/* ---- resampling, concat ------------------------------------------------- */

enum { RS_POOL, RS_NEAREST, RS_BILINEAR };

static void pool_fwd(const fd_case *c, double *y)
{
    ref_avgpool2_fwd(c->n, c->c, c->h, c->w, c->in[0], y);
}

static void nearest_fwd(const fd_case *c, double *y)
{
    ref_upsample2_nearest_fwd(c->n, c->c, c->h, c->w, c->in[0], y);
}

static void bilinear_fwd(const fd_case *c, double *y)
{
    ref_upsample2_bilinear_fwd(c->n, c->c, c->h, c->w, c->in[0], y);
}

static void resample_case(int kind, int n, int ch, int h, int w, uint64_t seed)
{
    rng r = {seed};
    fd_case c = {.n = n, .c = ch, .h = h, .w = w};
    c.nin[0] = (size_t)n * ch * h * w;
    c.in[0] = vec_rand(&r, c.nin[0]);
    double *dx = vec_new(c.nin[0]);
    double *dy = NULL;
    const char *what = "";
    if (kind == RS_POOL) {
        c.fwd = pool_fwd;
        c.ny = (size_t)n * ch * (h / 2) * (w / 2);
        dy = vec_rand(&r, c.ny);
        ref_avgpool2_bwd(n, ch, h, w, dy, dx);
        what = "avgpool2";
    } else if (kind == RS_NEAREST) {
        c.fwd = nearest_fwd;
        c.ny = (size_t)n * ch * 4 * h * w;
        dy = vec_rand(&r, c.ny);
        ref_upsample2_nearest_bwd(n, ch, h, w, dy, dx);
        what = "upsample2 nearest";
    } else {
        c.fwd = bilinear_fwd;
        c.ny = (size_t)n * ch * 4 * h * w;
        dy = vec_rand(&r, c.ny);
        ref_upsample2_bilinear_bwd(n, ch, h, w, dy, dx);
        what = "upsample2 bilinear";
    }
    fd_check(what, &c, 0, dy, dx);
    free(c.in[0]);
    free(dy);
    free(dx);
}

Test(ref_fd, resample)
{
    for (int kind = RS_POOL; kind <= RS_BILINEAR; kind++) {
        resample_case(kind, 1, 3, 7, 5, 30 + (uint64_t)kind);
        resample_case(kind, 3, 13, 7, 5, 40 + (uint64_t)kind);
        resample_case(kind, 1, 3, 4, 6, 50 + (uint64_t)kind);
    }
}

Test(ref_fd, bilinear_known_values)
{
    /* PyTorch: interpolate([[0, 1]], scale 2, bilinear) = [0, .25, .75, 1] per row. */
    double x[2] = {0.0, 1.0};
    double y[8];
    ref_upsample2_bilinear_fwd(1, 1, 1, 2, x, y);
    double want[4] = {0.0, 0.25, 0.75, 1.0};
    for (int i = 0; i < 4; i++) {
        cr_assert_float_eq(y[i], want[i], 1e-15, "col %d: %g", i, y[i]);
        cr_assert_float_eq(y[4 + i], want[i], 1e-15);
    }
}

static void concat_fwd(const fd_case *c, double *y)
{
    ref_concat_fwd(c->n, c->ca, c->cb, c->h * c->w, c->in[0], c->in[1], y);
}

Test(ref_fd, concat)
{
    rng r = {60};
    fd_case c = {.fwd = concat_fwd, .n = 3, .ca = 3, .cb = 13, .h = 7, .w = 5};
    c.nin[0] = 3 * 3 * 35;
    c.nin[1] = 3 * 13 * 35;
    c.ny = c.nin[0] + c.nin[1];
    c.in[0] = vec_rand(&r, c.nin[0]);
    c.in[1] = vec_rand(&r, c.nin[1]);
    double *dy = vec_rand(&r, c.ny);
    double *da = vec_new(c.nin[0]);
    double *db = vec_new(c.nin[1]);
    ref_concat_bwd(3, 3, 13, 35, dy, da, db);
    fd_check("concat a", &c, 0, dy, da);
    fd_check("concat b", &c, 1, dy, db);
    free(c.in[0]);
    free(c.in[1]);
    free(dy);
    free(da);
    free(db);
}

/* ---- group norm --------------------------------------------------------- */

static void gn_fwd(const fd_case *c, double *y)
{
    ref_groupnorm_fwd(c->n, c->c, c->h * c->w, c->groups, c->eps, c->in[0], c->in[1], c->in[2], y,
                      NULL, NULL);
}

static void gn_case(int n, int ch, int groups, uint64_t seed)
{
    rng r = {seed};
    fd_case c = {.fwd = gn_fwd, .n = n, .c = ch, .h = 7, .w = 5, .groups = groups, .eps = 1e-5};
    c.ny = c.nin[0] = (size_t)n * ch * 35;
    c.nin[1] = c.nin[2] = (size_t)ch;
    c.in[0] = vec_rand(&r, c.nin[0]);
    c.in[1] = vec_rand(&r, c.nin[1]);
    c.in[2] = vec_rand(&r, c.nin[2]);
    double *dy = vec_rand(&r, c.ny);
    double *dx = vec_new(c.nin[0]);
    double *dg = vec_new(c.nin[1]);
    double *dbt = vec_new(c.nin[2]);
    ref_groupnorm_bwd(n, ch, 35, groups, c.eps, c.in[0], c.in[1], dy, dx, dg, dbt);
    char what[64];
    snprintf(what, sizeof what, "groupnorm n%d c%d g%d", n, ch, groups);
    fd_check(what, &c, 0, dy, dx);
    fd_check(what, &c, 1, dy, dg);
    fd_check(what, &c, 2, dy, dbt);
    /* normalised output: each group has mean beta-ish; check stats directly */
    double *mean = vec_new((size_t)n * groups);
    double *rstd = vec_new((size_t)n * groups);
    double *y = vec_new(c.ny);
    ref_groupnorm_fwd(n, ch, 35, groups, c.eps, c.in[0], c.in[1], c.in[2], y, mean, rstd);
    cr_assert(rstd[0] > 0.0);
    free(mean);
    free(rstd);
    free(y);
    free(c.in[0]);
    free(c.in[1]);
    free(c.in[2]);
    free(dy);
    free(dx);
    free(dg);
    free(dbt);
}

Test(ref_fd, groupnorm)
{
    gn_case(1, 3, 1, 70);
    gn_case(3, 3, 3, 71);
    gn_case(3, 13, 13, 72);
    gn_case(1, 13, 1, 73);
    gn_case(3, 12, 4, 74);
}

/* ---- losses ------------------------------------------------------------- */

enum { L_L1, L_MSE, L_MASKED, L_GRAD };

static void loss_fwd(const fd_case *c, double *y)
{
    size_t count = c->nin[0];
    switch (c->groups) { /* groups holds the loss kind here */
    case L_L1:
        y[0] = ref_loss_l1(count, c->in[0], c->in[1], NULL);
        break;
    case L_MSE:
        y[0] = ref_loss_mse(count, c->in[0], c->in[1], NULL);
        break;
    case L_MASKED:
        y[0] = ref_loss_masked_l1(c->n, c->c, c->h * c->w, c->mask_c, c->in[0], c->in[1], c->in[2],
                                  NULL);
        break;
    default:
        y[0] = ref_loss_grad(c->n, c->c, c->h, c->w, c->in[0], c->in[1], NULL);
        break;
    }
}

static void loss_case(int kind, int n, int ch, int mask_c, uint64_t seed)
{
    static const char *names[] = {"l1", "mse", "masked l1", "gradient loss"};
    rng r = {seed};
    fd_case c = {.fwd = loss_fwd,
                 .ny = 1,
                 .n = n,
                 .c = ch,
                 .h = 7,
                 .w = 5,
                 .groups = kind,
                 .mask_c = mask_c};
    size_t count = (size_t)n * ch * 35;
    c.nin[0] = c.nin[1] = count;
    c.in[0] = vec_rand(&r, count);
    /* target = pred + offset with |offset| >= 0.1: pred - target far from 0 */
    double *off = vec_rand_away(&r, count);
    c.in[1] = vec_new(count);
    for (size_t i = 0; i < count; i++) {
        c.in[1][i] = c.in[0][i] + off[i];
    }
    c.nin[2] = (size_t)n * mask_c * 35;
    c.in[2] = vec_rand(&r, c.nin[2]); /* about half the weights <= 0: excluded */
    double *g = vec_new(count);
    double one = 1.0;
    double loss = 0.0;
    switch (kind) {
    case L_L1:
        loss = ref_loss_l1(count, c.in[0], c.in[1], g);
        break;
    case L_MSE:
        loss = ref_loss_mse(count, c.in[0], c.in[1], g);
        break;
    case L_MASKED:
        loss = ref_loss_masked_l1(n, ch, 35, mask_c, c.in[0], c.in[1], c.in[2], g);
        break;
    default:
        loss = ref_loss_grad(n, ch, 7, 5, c.in[0], c.in[1], g);
        break;
    }
    cr_assert(loss > 0.0, "%s: loss %g", names[kind], loss);
    double y;
    loss_fwd(&c, &y);
    cr_assert_eq(y, loss, "%s: loss with and without grad differ", names[kind]);
    fd_check(names[kind], &c, 0, &one, g);
    free(off);
    free(c.in[0]);
    free(c.in[1]);
    free(c.in[2]);
    free(g);
}

Test(ref_fd, losses)
{
    for (int kind = L_L1; kind <= L_GRAD; kind++) {
        loss_case(kind, 1, 3, 3, 80 + (uint64_t)kind);
        loss_case(kind, 3, 13, 1, 90 + (uint64_t)kind);
    }
}

Test(ref_fd, masked_l1_normaliser)
{
    /* two pixels, weights 2 and 0.5, a third excluded (-1): (2*1 + 0.5*3) / 2.5 */
    double p[3] = {1.0, 3.0, 100.0};
    double t[3] = {0.0, 0.0, 0.0};
    double m[3] = {2.0, 0.5, -1.0};
    double g[3];
    double loss = ref_loss_masked_l1(1, 1, 3, 1, p, t, m, g);
    cr_assert_float_eq(loss, 3.5 / 2.5, 1e-15);
    cr_assert_float_eq(g[0], 2.0 / 2.5, 1e-15);
    cr_assert_eq(g[2], 0.0);
    /* broadcast mask over 2 channels counts each weight twice in Z */
    double p2[2] = {1.0, 3.0};
    double t2[2] = {0.0, 0.0};
    double m2[1] = {1.0};
    cr_assert_float_eq(ref_loss_masked_l1(1, 2, 1, 1, p2, t2, m2, NULL), 2.0, 1e-15);
    double zero[1] = {0.0};
    cr_assert_eq(ref_loss_masked_l1(1, 2, 1, 1, p2, t2, zero, g), 0.0);
    cr_assert_eq(g[0], 0.0);
}

/* ---- Adam --------------------------------------------------------------- */

Test(ref_adam, first_step_closed_form)
{
    /* step 1: m/bc1 = g and sqrt(v/bc2) = |g|, so p -= lr * g / (|g| + eps) */
    ref_adam_params hp = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    double p[3] = {1.0, -2.0, 0.5};
    double g[3] = {0.3, -4.0, 0.0};
    double m[3] = {0};
    double v[3] = {0};
    ref_adam_step(&hp, 1, 3, p, g, m, v);
    cr_assert_float_eq(p[0], 1.0 - 1e-2 * 0.3 / (0.3 + 1e-8), 1e-15);
    cr_assert_float_eq(p[1], -2.0 + 1e-2 * 4.0 / (4.0 + 1e-8), 1e-15);
    cr_assert_eq(p[2], 0.5);
    cr_assert_float_eq(m[0], 0.1 * 0.3, 1e-15);
    cr_assert_float_eq(v[1], 0.001 * 16.0, 1e-15);
}

Test(ref_adam, weight_decay_coupled_vs_decoupled)
{
    ref_adam_params adamw = {
        .lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.5, .decoupled = 1};
    ref_adam_params adam = adamw;
    adam.decoupled = 0;
    double p1[1] = {2.0};
    double p2[1] = {2.0};
    double g[1] = {0.0};
    double m1[1] = {0};
    double v1[1] = {0};
    double m2[1] = {0};
    double v2[1] = {0};
    ref_adam_step(&adamw, 1, 1, p1, g, m1, v1);
    ref_adam_step(&adam, 1, 1, p2, g, m2, v2);
    /* AdamW: decay only, no moment: 2 * (1 - 0.05) */
    cr_assert_float_eq(p1[0], 1.9, 1e-15);
    cr_assert_eq(m1[0], 0.0);
    /* Adam: g' = 0.5 * 2 = 1 enters the moments: p -= 0.1 * 1 / (1 + eps) */
    cr_assert_float_eq(p2[0], 2.0 - 0.1 / (1.0 + 1e-8), 1e-15);
}

/* ---- against PyTorch ------------------------------------------------------ */

/*
 * Protocol with ref_torch.py: for each case the test writes <dir>/<name>.json
 * ({"op": ..., params, "inputs": [[shape]...]}) and <dir>/<name>.in (inputs
 * then dy, float64 little-endian, concatenated); the script writes
 * <dir>/<name>.out: the forward output (or the loss) then the gradient of
 * every input listed, in order, float64.
 */
typedef struct torch_case {
    char name[32];
    char json[512];
    double *in; /* inputs then dy, as written */
    size_t nin;
    double *want; /* this reference's outputs, in the script's order */
    size_t nwant;
} torch_case;

static void write_bin(const char *path, const double *v, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(v, sizeof *v, n, f), n);
    fclose(f);
}

static double *cat(size_t *total, int count, ...)
{
    va_list ap;
    va_start(ap, count);
    size_t n = 0;
    for (int i = 0; i < count; i++) {
        (void)va_arg(ap, const double *);
        n += va_arg(ap, size_t);
    }
    va_end(ap);
    double *out = vec_new(n);
    va_start(ap, count);
    size_t at = 0;
    for (int i = 0; i < count; i++) {
        const double *p = va_arg(ap, const double *);
        size_t k = va_arg(ap, size_t);
        memcpy(out + at, p, k * sizeof *p);
        at += k;
    }
    va_end(ap);
    *total = n;
    return out;
}

static torch_case conv_torch(int n, int cin, int cout, int k, int stride, int pad, uint64_t seed)
{
    torch_case t = {0};
    rng r = {seed};
    ref_conv2d_shape s = {n, cin, 7, 5, cout, k, stride, pad};
    int oh = ref_conv2d_out_h(&s);
    int ow = ref_conv2d_out_w(&s);
    size_t nx = (size_t)n * cin * 35;
    size_t nw = (size_t)cout * cin * k * k;
    size_t ny = (size_t)n * cout * oh * ow;
    double *x = vec_rand(&r, nx);
    double *w = vec_rand(&r, nw);
    double *dy = vec_rand(&r, ny);
    double *y = vec_new(ny);
    double *dx = vec_new(nx);
    double *dw = vec_new(nw);
    ref_conv2d_fwd(&s, x, w, y);
    ref_conv2d_bwd_data(&s, dy, w, dx);
    ref_conv2d_bwd_weight(&s, x, dy, dw);
    snprintf(t.name, sizeof t.name, "conv_k%d_s%d_p%d_%d", k, stride, pad, cin);
    snprintf(t.json, sizeof t.json,
             "{\"op\":\"conv\",\"stride\":%d,\"pad\":%d,\"inputs\":[[%d,%d,7,5],[%d,%d,%d,%d]],"
             "\"dy\":[%d,%d,%d,%d]}",
             stride, pad, n, cin, cout, cin, k, k, n, cout, oh, ow);
    t.in = cat(&t.nin, 3, x, nx, w, nw, dy, ny);
    t.want = cat(&t.nwant, 3, y, ny, dx, nx, dw, nw);
    free(x);
    free(w);
    free(dy);
    free(y);
    free(dx);
    free(dw);
    return t;
}

/* Unary ops with shape [n][c][7][5] -> y, one input gradient. */
static torch_case unary_torch(const char *op, int n, int ch, uint64_t seed)
{
    torch_case t = {0};
    rng r = {seed};
    int h = 7;
    int w = 5;
    size_t nx = (size_t)n * ch * h * w;
    size_t ny = nx;
    int oh = h;
    int ow = w;
    if (strcmp(op, "avgpool2") == 0) {
        oh = h / 2;
        ow = w / 2;
    } else if (strncmp(op, "up_", 3) == 0) {
        oh = 2 * h;
        ow = 2 * w;
    }
    ny = (size_t)n * ch * oh * ow;
    double *x = vec_rand(&r, nx);
    for (size_t i = 0; i < nx; i++) {
        x[i] *= 3.0;
    }
    double *dy = vec_rand(&r, ny);
    double *y = vec_new(ny);
    double *dx = vec_new(nx);
    if (strcmp(op, "relu") == 0) {
        ref_act_fwd(REF_ACT_RELU, 0, nx, x, y);
        ref_act_bwd(REF_ACT_RELU, 0, nx, x, dy, dx);
    } else if (strcmp(op, "leaky") == 0) {
        ref_act_fwd(REF_ACT_LEAKY, 0.2, nx, x, y);
        ref_act_bwd(REF_ACT_LEAKY, 0.2, nx, x, dy, dx);
    } else if (strcmp(op, "silu") == 0) {
        ref_act_fwd(REF_ACT_SILU, 0, nx, x, y);
        ref_act_bwd(REF_ACT_SILU, 0, nx, x, dy, dx);
    } else if (strcmp(op, "avgpool2") == 0) {
        ref_avgpool2_fwd(n, ch, h, w, x, y);
        ref_avgpool2_bwd(n, ch, h, w, dy, dx);
    } else if (strcmp(op, "up_nearest") == 0) {
        ref_upsample2_nearest_fwd(n, ch, h, w, x, y);
        ref_upsample2_nearest_bwd(n, ch, h, w, dy, dx);
    } else {
        ref_upsample2_bilinear_fwd(n, ch, h, w, x, y);
        ref_upsample2_bilinear_bwd(n, ch, h, w, dy, dx);
    }
    snprintf(t.name, sizeof t.name, "%s", op);
    snprintf(t.json, sizeof t.json,
             "{\"op\":\"%s\",\"slope\":0.2,\"inputs\":[[%d,%d,%d,%d]],\"dy\":[%d,%d,%d,%d]}", op, n,
             ch, h, w, n, ch, oh, ow);
    t.in = cat(&t.nin, 2, x, nx, dy, ny);
    t.want = cat(&t.nwant, 2, y, ny, dx, nx);
    free(x);
    free(dy);
    free(y);
    free(dx);
    return t;
}

static torch_case gn_torch(int n, int ch, int groups, uint64_t seed)
{
    torch_case t = {0};
    rng r = {seed};
    size_t nx = (size_t)n * ch * 35;
    double *x = vec_rand(&r, nx);
    double *ga = vec_rand(&r, (size_t)ch);
    double *be = vec_rand(&r, (size_t)ch);
    double *dy = vec_rand(&r, nx);
    double *y = vec_new(nx);
    double *dx = vec_new(nx);
    double *dg = vec_new((size_t)ch);
    double *db = vec_new((size_t)ch);
    ref_groupnorm_fwd(n, ch, 35, groups, 1e-5, x, ga, be, y, NULL, NULL);
    ref_groupnorm_bwd(n, ch, 35, groups, 1e-5, x, ga, dy, dx, dg, db);
    snprintf(t.name, sizeof t.name, "groupnorm_%d_%d", ch, groups);
    snprintf(t.json, sizeof t.json,
             "{\"op\":\"groupnorm\",\"groups\":%d,\"eps\":1e-5,\"inputs\":[[%d,%d,7,5],[%d],[%d]],"
             "\"dy\":[%d,%d,7,5]}",
             groups, n, ch, ch, ch, n, ch);
    t.in = cat(&t.nin, 4, x, nx, ga, (size_t)ch, be, (size_t)ch, dy, nx);
    t.want = cat(&t.nwant, 4, y, nx, dx, nx, dg, (size_t)ch, db, (size_t)ch);
    free(x);
    free(ga);
    free(be);
    free(dy);
    free(y);
    free(dx);
    free(dg);
    free(db);
    return t;
}

static torch_case loss_torch(const char *op, int n, int ch, int mask_c, uint64_t seed)
{
    torch_case t = {0};
    rng r = {seed};
    size_t nx = (size_t)n * ch * 35;
    size_t nm = (size_t)n * mask_c * 35;
    double *p = vec_rand(&r, nx);
    double *tg = vec_rand(&r, nx);
    double *m = vec_rand(&r, nm);
    double *g = vec_new(nx);
    double loss;
    if (strcmp(op, "l1") == 0) {
        loss = ref_loss_l1(nx, p, tg, g);
    } else if (strcmp(op, "mse") == 0) {
        loss = ref_loss_mse(nx, p, tg, g);
    } else if (strcmp(op, "masked_l1") == 0) {
        loss = ref_loss_masked_l1(n, ch, 35, mask_c, p, tg, m, g);
    } else {
        loss = ref_loss_grad(n, ch, 7, 5, p, tg, g);
    }
    snprintf(t.name, sizeof t.name, "%s_%d", op, mask_c);
    snprintf(t.json, sizeof t.json,
             "{\"op\":\"%s\",\"inputs\":[[%d,%d,7,5],[%d,%d,7,5],[%d,%d,7,5]],\"dy\":[]}", op, n,
             ch, n, ch, n, mask_c);
    t.in = cat(&t.nin, 3, p, nx, tg, nx, m, nm);
    t.want = cat(&t.nwant, 2, &loss, (size_t)1, g, nx);
    free(p);
    free(tg);
    free(m);
    free(g);
    return t;
}

/* Five steps of Adam(W) on 13 parameters with given gradients; output the
 * final param, exp_avg and exp_avg_sq. */
static torch_case adam_torch(int decoupled, double wd, uint64_t seed)
{
    torch_case t = {0};
    rng r = {seed};
    enum { P = 13, STEPS = 5 };
    ref_adam_params hp = {.lr = 1e-2,
                          .beta1 = 0.9,
                          .beta2 = 0.99,
                          .eps = 1e-8,
                          .weight_decay = wd,
                          .decoupled = decoupled};
    double *p0 = vec_rand(&r, P);
    double *gs = vec_rand(&r, (size_t)P * STEPS);
    double p[P];
    double m[P] = {0};
    double v[P] = {0};
    memcpy(p, p0, sizeof p);
    for (int s = 0; s < STEPS; s++) {
        ref_adam_step(&hp, s + 1, P, p, gs + (size_t)s * P, m, v);
    }
    snprintf(t.name, sizeof t.name, "adam_%d_%d", decoupled, (int)(wd * 100));
    snprintf(t.json, sizeof t.json,
             "{\"op\":\"%s\",\"lr\":1e-2,\"beta1\":0.9,\"beta2\":0.99,\"eps\":1e-8,\"wd\":%.17g,"
             "\"steps\":%d,\"inputs\":[[%d],[%d,%d]],\"dy\":[]}",
             decoupled ? "adamw" : "adam", wd, STEPS, P, STEPS, P);
    t.in = cat(&t.nin, 2, p0, (size_t)P, gs, (size_t)P * STEPS);
    t.want = cat(&t.nwant, 3, p, (size_t)P, m, (size_t)P, v, (size_t)P);
    free(p0);
    free(gs);
    return t;
}

Test(ref_torch, matches_pytorch, .timeout = 120)
{
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        cr_skip_test("PyTorch absent: /usr/bin/python3 cannot import torch (scripts/setup "
                     "installs python3-torch); the finite-difference tests still ran");
    }
    char dir[] = "/tmp/rs_ref_torch_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    torch_case cases[32];
    int nc = 0;
    cases[nc++] = conv_torch(3, 3, 13, 3, 1, 1, 101);
    cases[nc++] = conv_torch(1, 13, 3, 3, 2, 1, 102);
    cases[nc++] = conv_torch(3, 3, 13, 3, 2, 0, 103);
    cases[nc++] = conv_torch(3, 13, 3, 1, 1, 0, 104);
    cases[nc++] = conv_torch(1, 3, 13, 1, 2, 0, 105);
    cases[nc++] = unary_torch("relu", 3, 13, 110);
    cases[nc++] = unary_torch("leaky", 1, 3, 111);
    cases[nc++] = unary_torch("silu", 3, 3, 112);
    cases[nc++] = unary_torch("avgpool2", 3, 13, 113);
    cases[nc++] = unary_torch("up_nearest", 1, 3, 114);
    cases[nc++] = unary_torch("up_bilinear", 3, 13, 115);
    cases[nc++] = gn_torch(3, 13, 1, 120);
    cases[nc++] = gn_torch(1, 12, 4, 121);
    cases[nc++] = loss_torch("l1", 3, 3, 3, 130);
    cases[nc++] = loss_torch("mse", 1, 13, 13, 131);
    cases[nc++] = loss_torch("masked_l1", 3, 3, 1, 132);
    cases[nc++] = loss_torch("masked_l1", 1, 3, 3, 133);
    cases[nc++] = loss_torch("grad", 3, 3, 3, 134);
    cases[nc++] = adam_torch(0, 0.0, 140);
    cases[nc++] = adam_torch(0, 0.1, 141);
    cases[nc++] = adam_torch(1, 0.1, 142);
    char path[512];
    for (int i = 0; i < nc; i++) {
        snprintf(path, sizeof path, "%s/%s.json", dir, cases[i].name);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(cases[i].json, f);
        fclose(f);
        snprintf(path, sizeof path, "%s/%s.in", dir, cases[i].name);
        write_bin(path, cases[i].in, cases[i].nin);
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/unit/ref_torch.py %s", RS_SOURCE_DIR, dir);
    cr_assert_eq(system(cmd), 0, "ref_torch.py failed: %s", cmd);
    for (int i = 0; i < nc; i++) {
        torch_case *t = &cases[i];
        snprintf(path, sizeof path, "%s/%s.out", dir, t->name);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s missing", path);
        double *got = vec_new(t->nwant + 1);
        size_t n = fread(got, sizeof *got, t->nwant + 1, f);
        fclose(f);
        cr_assert_eq(n, t->nwant, "%s: torch wrote %zu values, want %zu", t->name, n, t->nwant);
        double max_err = 0.0;
        double max_val = 0.0;
        for (size_t k = 0; k < n; k++) {
            max_err = fmax(max_err, fabs(got[k] - t->want[k]));
            max_val = fmax(max_val, fabs(t->want[k]));
        }
        cr_assert(max_err <= TORCH_TOL * fmax(max_val, 1.0),
                  "%s: max diff %.3g vs torch (max %.3g)", t->name, max_err, max_val);
        free(got);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s.in", dir, t->name);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s.json", dir, t->name);
        unlink(path);
        free(t->in);
        free(t->want);
    }
    rmdir(dir);
}
