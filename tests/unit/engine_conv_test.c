/*
 * engine_conv_test.c: convolution forward (with bias), backward-data and
 * backward-weights, every variant, against ref_conv2d_* in double
 * precision: 3x3 and 1x1, stride 1 and 2, with and without padding, odd
 * sizes (7x5, 5x7) and rows a multiple of 4 wide (the REG variant's vec4
 * loads), 3 and 13 channels, batch 1 and 3, plus one shape large
 * enough for several tiles in every direction and a split-K weight
 * gradient. Also the accumulate path (dx += ...).
 * The fp16-storage variant (F16, where the device has 16-bit storage) is
 * checked twice: against the reference fed the same operands rounded to
 * fp16, within the fp32 tolerance (so its accumulation is fp32 and its
 * indexing exact), and against the exact reference within CONV_TOL_F16.
 */
#include "engine_testutil.h"
#include "ref.h"

TestSuite(engine_conv, .init = t_setup, .fini = t_teardown, .timeout = 120);

#define CONV_TOL 2e-5
/* fp16 operands: each rounded by up to 2^-11 relative; the normalised
 * errors measured on lavapipe on these shapes are 1.9e-4..4.0e-4 (the
 * "tol ... f16" lines), against the fp16-rounded operands <= 1.2e-6 */
#define CONV_TOL_F16 2e-3

/* v rounded to fp16 and back (round to nearest even, as the kernel's
 * float16_t conversion). */
static void round_f16(const double *src, double *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = (double)(float)(_Float16)(float)src[i];
    }
}

/* The references of one conv case: y (with bias), dx, dx + prior, dw. */
static void conv_refs(const ref_conv2d_shape *s, const double *x, const double *w, const double *b,
                      const double *dy, const double *prior, double *y, double *dx, double *dxa,
                      double *dw)
{
    size_t nx = (size_t)s->n * s->c_in * s->h * s->w;
    int oh = ref_conv2d_out_h(s);
    int ow = ref_conv2d_out_w(s);
    ref_conv2d_fwd(s, x, w, y);
    ref_bias_fwd(s->n, s->c_out, oh * ow, y, b, y);
    ref_conv2d_bwd_data(s, dy, w, dx);
    ref_conv2d_bwd_weight(s, x, dy, dw);
    for (size_t i = 0; i < nx; i++) {
        dxa[i] = prior[i] + dx[i];
    }
}

static void conv_case(int n, int ci, int h, int w, int co, int k, int stride, int pad)
{
    ref_conv2d_shape s = {
        .n = n, .c_in = ci, .h = h, .w = w, .c_out = co, .k = k, .stride = stride, .pad = pad};
    int oh = ref_conv2d_out_h(&s);
    int ow = ref_conv2d_out_w(&s);
    size_t nx = (size_t)n * ci * h * w;
    size_t nw = (size_t)co * ci * k * k;
    size_t ny = (size_t)n * co * oh * ow;
    double *xd = malloc(nx * sizeof *xd);
    double *wd = malloc(nw * sizeof *wd);
    double *bd = malloc(co * sizeof *bd);
    double *yd = malloc(ny * sizeof *yd);
    double *dyd = malloc(ny * sizeof *dyd);
    double *dxd = malloc(nx * sizeof *dxd);
    double *dxa = malloc(nx * sizeof *dxa);
    double *dwd = malloc(nw * sizeof *dwd);
    float *xf = malloc(nx * sizeof *xf);
    float *wf = malloc(nw * sizeof *wf);
    float *bf = malloc(co * sizeof *bf);
    float *dyf = malloc(ny * sizeof *dyf);
    float *dx0 = malloc(nx * sizeof *dx0);
    t_fill(xd, xf, nx);
    t_fill(wd, wf, nw);
    t_fill(bd, bf, co);
    t_fill(dyd, dyf, ny);
    double *prior = malloc(nx * sizeof *prior);
    t_fill(prior, dx0, nx); /* prior gradient for the accumulate check */
    conv_refs(&s, xd, wd, bd, dyd, prior, yd, dxd, dxa, dwd);
    /* the F16 variant's operands, rounded as it stores them */
    double *xh = malloc(nx * sizeof *xh);
    double *wh = malloc(nw * sizeof *wh);
    double *dyh = malloc(ny * sizeof *dyh);
    double *yh = malloc(ny * sizeof *yh);
    double *dxh = malloc(nx * sizeof *dxh);
    double *dxah = malloc(nx * sizeof *dxah);
    double *dwh = malloc(nw * sizeof *dwh);
    round_f16(xd, xh, nx);
    round_f16(wd, wh, nw);
    round_f16(dyd, dyh, ny);
    conv_refs(&s, xh, wh, bd, dyh, prior, yh, dxh, dxah, dwh);

    char what[96];
    vk_variant vs[3];
    int nv = t_variants_f16(vs);
    for (int vi = 0; vi < nv; vi++) {
        eng_tensor x = t_tensor(n, ci, h, w, xf);
        eng_tensor wt = t_tensor(co, ci, k, k, wf);
        eng_tensor b = t_tensor(1, co, 1, 1, bf);
        eng_tensor y = t_tensor(n, co, oh, ow, NULL);
        eng_tensor dy = t_tensor(n, co, oh, ow, dyf);
        eng_tensor dx = t_tensor(n, ci, h, w, NULL);
        eng_tensor dxacc = t_tensor(n, ci, h, w, dx0);
        eng_tensor dw = t_tensor(co, ci, k, k, NULL);
        eng_conv cv = {.k = k, .stride = stride, .pad = pad};
        eng_cmd *cmd = t_cmd(vs[vi]);
        T_OK(eng_conv2d_fwd(cmd, &cv, &x, &wt, &b, &y, &TE));
        T_OK(eng_conv2d_bwd_data(cmd, &cv, &dy, &wt, &dx, false, &TE));
        T_OK(eng_conv2d_bwd_data(cmd, &cv, &dy, &wt, &dxacc, true, &TE));
        T_OK(eng_conv2d_bwd_weight(cmd, &cv, &x, &dy, &dw, false, &TE));
        t_run(cmd);
        snprintf(what, sizeof what, "conv_fwd[n%d c%d %dx%d o%d k%d s%d p%d]", n, ci, h, w, co, k,
                 stride, pad);
        double tol = vs[vi] == VK_VARIANT_F16 ? CONV_TOL_F16 : CONV_TOL;
        t_check(what, vs[vi], &y, yd, tol);
        snprintf(what, sizeof what, "conv_bwd_data[n%d c%d %dx%d o%d k%d s%d p%d]", n, ci, h, w, co,
                 k, stride, pad);
        t_check(what, vs[vi], &dx, dxd, tol);
        t_check("conv_bwd_data_accum", vs[vi], &dxacc, dxa, tol);
        snprintf(what, sizeof what, "conv_bwd_weight[n%d c%d %dx%d o%d k%d s%d p%d]", n, ci, h, w,
                 co, k, stride, pad);
        t_check(what, vs[vi], &dw, dwd, vs[vi] == VK_VARIANT_F16 ? CONV_TOL_F16 : CONV_TOL);
        if (vs[vi] == VK_VARIANT_F16) {
            t_check("conv_fwd[fp16 operands]", vs[vi], &y, yh, CONV_TOL);
            t_check("conv_bwd_data[fp16 operands]", vs[vi], &dx, dxh, CONV_TOL);
            t_check("conv_bwd_data_accum[fp16 operands]", vs[vi], &dxacc, dxah, CONV_TOL);
            t_check("conv_bwd_weight[fp16 operands]", vs[vi], &dw, dwh, CONV_TOL);
        }
        eng_cmd_destroy(cmd);
        eng_tensor_free(&x);
        eng_tensor_free(&wt);
        eng_tensor_free(&b);
        eng_tensor_free(&y);
        eng_tensor_free(&dy);
        eng_tensor_free(&dx);
        eng_tensor_free(&dxacc);
        eng_tensor_free(&dw);
    }
    free(xd);
    free(wd);
    free(bd);
    free(yd);
    free(dyd);
    free(dxd);
    free(dxa);
    free(dwd);
    free(xf);
    free(wf);
    free(bf);
    free(dyf);
    free(dx0);
    free(prior);
    free(xh);
    free(wh);
    free(dyh);
    free(yh);
    free(dxh);
    free(dxah);
    free(dwh);
}

Test(engine_conv, k3_stride1_pad1)
{
    conv_case(1, 3, 7, 5, 13, 3, 1, 1);
    conv_case(3, 13, 5, 7, 3, 3, 1, 1);
    conv_case(3, 13, 6, 8, 5, 3, 1, 1); /* rows a multiple of 4: the vec4-load build */
}

Test(engine_conv, k3_stride2)
{
    conv_case(3, 13, 7, 5, 3, 3, 2, 1);
    conv_case(1, 3, 5, 7, 13, 3, 2, 0);
}

Test(engine_conv, k3_no_pad)
{
    conv_case(3, 3, 7, 5, 3, 3, 1, 0);
    conv_case(1, 3, 4, 8, 3, 3, 1, 0); /* vec4-load build, output rows of 6 */
}

Test(engine_conv, k1)
{
    conv_case(3, 3, 7, 5, 13, 1, 1, 0);
    conv_case(1, 13, 7, 5, 3, 1, 2, 0);
    conv_case(1, 3, 5, 12, 13, 1, 1, 0); /* vec4-load build; 8-channel weight-gradient tile */
    conv_case(2, 13, 4, 6, 3, 1, 1, 0);  /* 4-channel weight-gradient tile (fewer than 8 out) */
}

/* several tiles along every GEMM axis for both variants, and a batch x
 * pixel count over 1024 so the weight gradient is split along K */
Test(engine_conv, many_tiles_and_split_k)
{
    conv_case(2, 9, 33, 31, 70, 3, 1, 1);
    conv_case(3, 70, 17, 19, 5, 3, 2, 1);
    conv_case(2, 9, 32, 20, 70, 1, 1, 0); /* 1x1 vec4 weight gradient, split along K */
}
