/*
 * ops.c: records the engine's ops (ops.h): checks shapes, picks the
 * variant's kernel and its tile sizes, fills push constants and dispatches.
 * Shape errors are returned as RS_EINVAL naming the op and the mismatch;
 * the kernels themselves trust what arrives here.
 */
#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH_MAX 512 /* the F16 variant takes two per convolution */
#define ELEM_WG 256
#define ELEM_MAX_GROUPS 4096
#define RED_WG 64
#define LOSS_MAX_PARTS 256

struct eng_cmd {
    vk_ctx *ctx;
    vk_seq *seq;
    vk_variant variant;
    vk_buf *scratch[SCRATCH_MAX];
    uint32_t nscratch;
};

rs_err eng_tensor_alloc(vk_ctx *ctx, int n, int c, int h, int w, eng_tensor *t, rs_error *e)
{
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || (double)n * c * h * w > 2147483647.0 / 2) {
        return rs_error_set(e, RS_EINVAL, "tensor %dx%dx%dx%d: bad shape", n, c, h, w);
    }
    vk_buf *b = NULL;
    rs_err rc = vk_buf_create(ctx, (size_t)n * c * h * w * sizeof(float), &b, e);
    if (rc != RS_OK) {
        return rc;
    }
    *t = (eng_tensor){.buf = b, .n = n, .c = c, .h = h, .w = w};
    return RS_OK;
}

void eng_tensor_free(eng_tensor *t)
{
    if (t == NULL) {
        return;
    }
    vk_buf_destroy(t->buf);
    memset(t, 0, sizeof *t);
}

size_t eng_tensor_count(const eng_tensor *t)
{
    return (size_t)t->n * t->c * t->h * t->w;
}

rs_err eng_tensor_write(eng_tensor *t, const float *src, rs_error *e)
{
    return vk_buf_write(t->buf, 0, src, eng_tensor_count(t) * sizeof(float), e);
}

rs_err eng_tensor_read(const eng_tensor *t, float *dst, rs_error *e)
{
    return vk_buf_read(t->buf, 0, dst, eng_tensor_count(t) * sizeof(float), e);
}

rs_err eng_cmd_create(vk_ctx *ctx, vk_variant variant, eng_cmd **out, rs_error *e)
{
    const vk_caps *caps = vk_ctx_caps(ctx);
    if (variant == VK_VARIANT_AUTO) {
        variant = caps->variant;
    }
    if (variant == VK_VARIANT_SMEM && !caps->subgroup_arith) {
        return rs_error_set(e, RS_EINVAL,
                            "variant smem: %s lacks subgroup arithmetic or it was not built",
                            caps->name);
    }
    if (variant == VK_VARIANT_F16 && !caps->fp16_storage) {
        return rs_error_set(e, RS_EINVAL,
                            "variant f16: %s lacks 16-bit storage buffers or it was not built",
                            caps->name);
    }
    eng_cmd *cmd = calloc(1, sizeof *cmd);
    if (cmd == NULL) {
        return rs_error_set(e, RS_ENOMEM, "engine command");
    }
    cmd->ctx = ctx;
    cmd->variant = variant;
    rs_err rc = vk_seq_create(ctx, &cmd->seq, e);
    if (rc != RS_OK) {
        free(cmd);
        return rc;
    }
    *out = cmd;
    return RS_OK;
}

static void scratch_release(eng_cmd *cmd)
{
    for (uint32_t i = 0; i < cmd->nscratch; i++) {
        vk_buf_destroy(cmd->scratch[i]);
    }
    cmd->nscratch = 0;
}

void eng_cmd_destroy(eng_cmd *cmd)
{
    if (cmd == NULL) {
        return;
    }
    vk_seq_destroy(cmd->seq); /* waits for its fence first */
    scratch_release(cmd);
    free(cmd);
}

rs_err eng_cmd_begin(eng_cmd *cmd, rs_error *e)
{
    scratch_release(cmd);
    return vk_seq_begin(cmd->seq, e);
}

rs_err eng_cmd_end(eng_cmd *cmd, rs_error *e)
{
    return vk_seq_end(cmd->seq, e);
}

rs_err eng_cmd_submit(eng_cmd *cmd, rs_error *e)
{
    return vk_seq_submit(cmd->seq, e);
}

vk_seq *eng_cmd_seq(eng_cmd *cmd)
{
    return cmd->seq;
}

vk_variant eng_cmd_variant(const eng_cmd *cmd)
{
    return cmd->variant;
}

static rs_err scratch(eng_cmd *cmd, size_t bytes, vk_buf **out, rs_error *e)
{
    if (cmd->nscratch >= SCRATCH_MAX) {
        return rs_error_set(e, RS_ETOOBIG, "engine command: over %d scratch buffers", SCRATCH_MAX);
    }
    rs_err rc = vk_buf_create(cmd->ctx, bytes, out, e);
    if (rc == RS_OK) {
        cmd->scratch[cmd->nscratch++] = *out;
    }
    return rc;
}

rs_err eng_zero(eng_cmd *cmd, eng_tensor *t, rs_error *e)
{
    return vk_seq_fill(cmd->seq, t->buf, 0, e);
}

/* Variant-specific kernel name: "<base>.reg" or "<base>.smem" (F16 runs
 * the REG kernels of everything but convolutions). */
static const char *vname(const eng_cmd *cmd, const char *base, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%s", base, cmd->variant == VK_VARIANT_SMEM ? "smem" : "reg");
    return buf;
}

static rs_err run(eng_cmd *cmd, const char *shader, const int32_t *spec, uint32_t nspec,
                  vk_buf *const *bufs, uint32_t nbufs, uint32_t write_mask, const void *push,
                  uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz, rs_error *e)
{
    vk_pipe *p = NULL;
    rs_err rc = vk_pipe_get(cmd->ctx, shader, spec, nspec, nbufs, push_bytes, &p, e);
    if (rc != RS_OK) {
        return rc;
    }
    return vk_seq_dispatch(cmd->seq, p, bufs, nbufs, write_mask, push, gx, gy, gz, e);
}

static uint32_t elem_groups(size_t count)
{
    size_t g = (count + ELEM_WG - 1) / ELEM_WG;
    if (g > ELEM_MAX_GROUPS) {
        g = ELEM_MAX_GROUPS;
    }
    return g == 0 ? 1 : (uint32_t)g;
}

static bool same_shape(const eng_tensor *a, const eng_tensor *b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

static int ceil_div(int a, int b)
{
    return (a + b - 1) / b;
}

/* ---- convolution -------------------------------------------------------- */

typedef struct conv_push {
    int32_t n, ci, h, w, co, ho, wo, flags, ksplit;
} conv_push;

int eng_conv_out(int in, const eng_conv *cv)
{
    return (in + 2 * cv->pad - cv->k) / cv->stride + 1;
}

static rs_err conv_check(const char *op, const eng_conv *cv, const eng_tensor *x,
                         const eng_tensor *w, const eng_tensor *y, rs_error *e)
{
    if ((cv->k != 1 && cv->k != 3) || (cv->stride != 1 && cv->stride != 2) || cv->pad < 0 ||
        cv->pad >= cv->k) {
        return rs_error_set(e, RS_EINVAL, "%s: k=%d stride=%d pad=%d unsupported", op, cv->k,
                            cv->stride, cv->pad);
    }
    if (w->c != x->c || w->h != cv->k || w->w != cv->k) {
        return rs_error_set(e, RS_EINVAL,
                            "%s: weight %dx%dx%dx%d does not fit input channels %d, k=%d", op, w->n,
                            w->c, w->h, w->w, x->c, cv->k);
    }
    int oh = eng_conv_out(x->h, cv);
    int ow = eng_conv_out(x->w, cv);
    if (oh <= 0 || ow <= 0 || y->n != x->n || y->c != w->n || y->h != oh || y->w != ow) {
        return rs_error_set(e, RS_EINVAL, "%s: output %dx%dx%dx%d, expected %dx%dx%dx%d", op, y->n,
                            y->c, y->h, y->w, x->n, w->n, oh, ow);
    }
    return RS_OK;
}

static conv_push conv_params(const eng_tensor *x, const eng_tensor *y, int flags)
{
    return (conv_push){x->n, x->c, x->h, x->w, y->c, y->h, y->w, flags, 0};
}

/* Register-tile sizes of the general (stride-2) REG kernel for an M x NCOL
 * GEMM: 16 x 4 invocations, each owning up to 8 x 4 outputs (32
 * accumulators: more spill on lavapipe), shrunk for small M. */
typedef struct reg_tile {
    int wgx, wgy, tm, tn;
} reg_tile;

static reg_tile reg_tile_for(int m, int ncol)
{
    reg_tile t = {16, 4, 8, 4};
    while (t.tm > 1 && t.wgy * t.tm / 2 >= m) {
        t.tm /= 2;
    }
    while (t.tn > 2 && t.wgx * t.tn / 2 >= ncol) {
        t.tn /= 2;
    }
    return t;
}

/* F16 variant: records t's conversion to fp16 into a scratch buffer (*out).
 * In a network stored in fp16 throughout, producers would write fp16
 * directly; here the engine's tensors stay fp32 and each convolution
 * converts its two operands, so the GEMM reads half the bytes. */
static rs_err to_f16(eng_cmd *cmd, const eng_tensor *t, vk_buf **out, rs_error *e)
{
    size_t len = eng_tensor_count(t);
    rs_err rc = scratch(cmd, (len * 2 + 3) & ~(size_t)3, out, e);
    if (rc != RS_OK) {
        return rc;
    }
    int32_t pc = (int32_t)len;
    vk_buf *bufs[2] = {t->buf, *out};
    return run(cmd, "to_f16", NULL, 0, bufs, 2, 1u << 1, &pc, sizeof pc, elem_groups(len), 1, 1, e);
}

/* Both GEMM operands of a convolution as the variant reads them: the
 * tensors' own buffers, or fp16 copies for F16. */
static rs_err conv_operands(eng_cmd *cmd, const eng_tensor *a, const eng_tensor *b, vk_buf **oa,
                            vk_buf **ob, rs_error *e)
{
    if (cmd->variant != VK_VARIANT_F16) {
        *oa = a->buf;
        *ob = b->buf;
        return RS_OK;
    }
    rs_err rc = to_f16(cmd, a, oa, e);
    if (rc == RS_OK) {
        rc = to_f16(cmd, b, ob, e);
    }
    return rc;
}

/* Dispatches one conv GEMM (mode 0/1/2) for the command's variant. */
static rs_err conv_gemm(eng_cmd *cmd, int mode, const eng_conv *cv, conv_push *pc, int m, int ncol,
                        int nsplit, vk_buf *const *bufs, uint32_t nbufs, uint32_t wmask,
                        rs_error *e)
{
    static const char *const base[3] = {"conv_fwd", "conv_bwd_data", "conv_bwd_weight"};
    char name[64];
    vname(cmd, base[mode], name, sizeof name);
    if (cmd->variant == VK_VARIANT_F16) {
        snprintf(name, sizeof name, "%s.f16", base[mode]);
    }
    if (cmd->variant == VK_VARIANT_SMEM) {
        int32_t spec[3] = {cv->k, cv->stride, cv->pad};
        return run(cmd, name, spec, 3, bufs, nbufs, wmask, pc, sizeof *pc,
                   (uint32_t)ceil_div(ncol, 64), (uint32_t)ceil_div(m, 64), (uint32_t)nsplit, e);
    }
    reg_tile t = reg_tile_for(m, ncol);
    int32_t spec[7] = {t.wgx, t.wgy, t.tm, t.tn, cv->k, cv->stride, cv->pad};
    return run(cmd, name, spec, 7, bufs, nbufs, wmask, pc, sizeof *pc,
               (uint32_t)ceil_div(ncol, t.wgx * t.tn), (uint32_t)ceil_div(m, t.wgy * t.tm),
               (uint32_t)nsplit, e);
}

/*
 * Row-tiled stride-1 path of the REG variant (conv_rt.comp): measured on
 * lavapipe, load instructions and not arithmetic bound a kernel, so each
 * invocation reuses an input row segment across kx and reads weights as
 * vec4 from a relayout recorded just before (the weights may have changed
 * since the last submit: an optimiser step sits in the same recording).
 * mode 0: forward of x with w; mode 1: data gradient, a stride-1 forward
 * of dy with flipped, transposed weights and pad k-1-pad.
 */
static rs_err conv_rt(eng_cmd *cmd, int mode, const eng_conv *cv, const eng_tensor *src,
                      const eng_tensor *w, const eng_tensor *bias, eng_tensor *dst, int flags,
                      rs_error *e)
{
    int kk = cv->k * cv->k;
    int m = dst->c;
    int mp = (m + 7) / 8 * 8;
    int rows = (mode == 0 ? w->c : w->n) * kk;
    vk_buf *wt = NULL;
    rs_err rc = scratch(cmd, (size_t)rows * mp * sizeof(float), &wt, e);
    if (rc != RS_OK) {
        return rc;
    }
    int32_t wp[4] = {w->n, w->c, kk, mp};
    vk_buf *wb[2] = {w->buf, wt};
    rc = run(cmd, mode == 0 ? "conv_wt.fwd" : "conv_wt.bwd", NULL, 0, wb, 2, 1u << 1, wp, sizeof wp,
             elem_groups((size_t)rows * mp), 1, 1, e);
    if (rc != RS_OK) {
        return rc;
    }
    const int tn = 4;
    int cblocks = mp / 8;
    int wgy = cblocks >= 4 ? 4 : cblocks >= 2 ? 2 : 1;
    int wgx = 64 / wgy;
    int pad = mode == 0 ? cv->pad : cv->k - 1 - cv->pad;
    int32_t spec[3] = {wgx, wgy, pad};
    conv_push pc = {src->n, src->c, src->h, src->w, dst->c, dst->h, dst->w, flags, mp};
    int cols = dst->n * dst->h * ceil_div(dst->w, tn);
    vk_buf *bufs[4] = {src->buf, wt, bias != NULL ? bias->buf : wt, dst->buf};
    /* rows a multiple of 4 wide take the vec4-load build (PAD <= 4 always holds) */
    char name[32];
    snprintf(name, sizeof name, "conv_rt.k%d%s", cv->k, src->w % 4 == 0 ? "v" : "");
    return run(cmd, name, spec, 3, bufs, 4, 1u << 3, &pc, sizeof pc, (uint32_t)ceil_div(cols, wgx),
               (uint32_t)ceil_div(cblocks, wgy), 1, e);
}

/* Row-walking stride-1 weight gradient of the REG variant (conv_bww_rt.comp),
 * split over output rows so enough workgroups run; slices summed in order. */
static rs_err conv_bww_rt(eng_cmd *cmd, const eng_conv *cv, const eng_tensor *x,
                          const eng_tensor *dy, eng_tensor *dw, bool accum, rs_error *e)
{
    /* 1x1 over a pixel count that is a multiple of 4: the vec4 GEMM */
    bool v1 = cv->k == 1 && (x->h * x->w) % 4 == 0;
    /* 8 output channels per invocation where there are 8 (conv_bww_1x1.comp) */
    int v1m = dy->c >= 8 ? 8 : 4;
    const char *v1name = v1m == 8 ? "conv_bww_1x1" : "conv_bww_1x1.m4";
    int tc = cv->k == 1 ? 4 : 1;
    int tm = v1 ? v1m : cv->k == 1 ? 8 : 3;
    int gxn = ceil_div(x->c, tc);
    int gyn = ceil_div(dy->c, tm);
    int wgy = gyn >= 4 ? 4 : gyn >= 2 ? 2 : 1;
    int wgx = 64 / wgy;
    int groups = ceil_div(gxn, wgx) * ceil_div(gyn, wgy);
    int rows = v1 ? dy->n * dy->h * dy->w / 4 : dy->n * dy->h; /* K in the kernel's units */
    int minrows = v1 ? 64 : 4;
    int nsplit = ceil_div(32, groups);
    if (nsplit > ceil_div(rows, minrows)) {
        nsplit = ceil_div(rows, minrows);
    }
    if (nsplit > 64) {
        nsplit = 64;
    }
    if (nsplit < 1) {
        nsplit = 1;
    }
    int chunk = ceil_div(rows, nsplit);
    nsplit = ceil_div(rows, chunk);
    int32_t spec[3] = {wgx, wgy, cv->pad};
    conv_push pc = {x->n, x->c, x->h, x->w, dy->c, dy->h, dy->w, accum ? 2 : 0, chunk};
    size_t len = eng_tensor_count(dw);
    vk_buf *part = dw->buf;
    rs_err rc = RS_OK;
    if (nsplit > 1) {
        rc = scratch(cmd, len * nsplit * sizeof(float), &part, e);
        pc.flags = 0;
    }
    if (rc != RS_OK) {
        return rc;
    }
    vk_buf *bufs[3] = {dy->buf, x->buf, part};
    rc = run(cmd,
             v1           ? v1name
             : cv->k == 1 ? "conv_bww_rt.k1"
                          : "conv_bww_rt.k3",
             spec, v1 ? 2 : 3, bufs, 3, 1u << 2, &pc, sizeof pc, (uint32_t)ceil_div(gxn, wgx),
             (uint32_t)ceil_div(gyn, wgy), (uint32_t)nsplit, e);
    if (rc != RS_OK || nsplit == 1) {
        return rc;
    }
    int32_t sp[3] = {(int32_t)len, nsplit, accum ? 1 : 0};
    vk_buf *sb[2] = {part, dw->buf};
    return run(cmd, "sum_splits", NULL, 0, sb, 2, 1u << 1, sp, sizeof sp, elem_groups(len), 1, 1,
               e);
}

rs_err eng_conv2d_fwd(eng_cmd *cmd, const eng_conv *cv, const eng_tensor *x, const eng_tensor *w,
                      const eng_tensor *bias, eng_tensor *y, rs_error *e)
{
    rs_err rc = conv_check("conv2d_fwd", cv, x, w, y, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (bias != NULL && (int)eng_tensor_count(bias) != w->n) {
        return rs_error_set(e, RS_EINVAL, "conv2d_fwd: bias has %zu values for %d channels",
                            eng_tensor_count(bias), w->n);
    }
    if (cmd->variant == VK_VARIANT_REG && cv->stride == 1) {
        return conv_rt(cmd, 0, cv, x, w, bias, y, bias != NULL ? 1 : 0, e);
    }
    conv_push pc = conv_params(x, y, bias != NULL ? 1 : 0);
    vk_buf *xb = NULL;
    vk_buf *wb = NULL;
    rc = conv_operands(cmd, x, w, &xb, &wb, e);
    if (rc != RS_OK) {
        return rc;
    }
    /* an unused binding still needs a buffer: the (fp32) weights stand in */
    vk_buf *bufs[4] = {xb, wb, bias != NULL ? bias->buf : w->buf, y->buf};
    return conv_gemm(cmd, 0, cv, &pc, y->c, y->n * y->h * y->w, 1, bufs, 4, 1u << 3, e);
}

rs_err eng_conv2d_bwd_data(eng_cmd *cmd, const eng_conv *cv, const eng_tensor *dy,
                           const eng_tensor *w, eng_tensor *dx, bool accum, rs_error *e)
{
    rs_err rc = conv_check("conv2d_bwd_data", cv, dx, w, dy, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (cmd->variant == VK_VARIANT_REG && cv->stride == 1) {
        return conv_rt(cmd, 1, cv, dy, w, NULL, dx, accum ? 2 : 0, e);
    }
    conv_push pc = conv_params(dx, dy, accum ? 2 : 0);
    vk_buf *db = NULL;
    vk_buf *wb = NULL;
    rc = conv_operands(cmd, dy, w, &db, &wb, e);
    if (rc != RS_OK) {
        return rc;
    }
    vk_buf *bufs[3] = {db, wb, dx->buf};
    return conv_gemm(cmd, 1, cv, &pc, dx->c, dx->n * dx->h * dx->w, 1, bufs, 3, 1u << 2, e);
}

rs_err eng_conv2d_bwd_weight(eng_cmd *cmd, const eng_conv *cv, const eng_tensor *x,
                             const eng_tensor *dy, eng_tensor *dw, bool accum, rs_error *e)
{
    rs_err rc = conv_check("conv2d_bwd_weight", cv, x, dw, dy, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (cmd->variant == VK_VARIANT_REG && cv->stride == 1) {
        return conv_bww_rt(cmd, cv, x, dy, dw, accum, e);
    }
    int m = dw->n;
    int ncol = dw->c * cv->k * cv->k;
    int ktot = x->n * dy->h * dy->w;
    /* split the long K (batch x pixels) so enough workgroups run at once;
     * slices sum in a fixed order afterwards, so results stay bit-stable */
    int groups;
    int target;
    if (cmd->variant == VK_VARIANT_SMEM) {
        groups = ceil_div(m, 64) * ceil_div(ncol, 64);
        target = 256;
    } else {
        reg_tile t = reg_tile_for(m, ncol);
        groups = ceil_div(m, t.wgy * t.tm) * ceil_div(ncol, t.wgx * t.tn);
        target = 32;
    }
    int nsplit = ceil_div(target, groups);
    int maxsplit = ceil_div(ktot, 1024);
    if (nsplit > maxsplit) {
        nsplit = maxsplit;
    }
    if (nsplit > 64) {
        nsplit = 64;
    }
    if (nsplit < 1) {
        nsplit = 1;
    }
    int chunk = ceil_div(ktot, nsplit);
    nsplit = ceil_div(ktot, chunk);
    conv_push pc = conv_params(x, dy, accum ? 2 : 0);
    pc.ksplit = chunk;
    vk_buf *db = NULL;
    vk_buf *xb = NULL;
    rc = conv_operands(cmd, dy, x, &db, &xb, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (nsplit == 1) {
        vk_buf *bufs[3] = {db, xb, dw->buf};
        return conv_gemm(cmd, 2, cv, &pc, m, ncol, 1, bufs, 3, 1u << 2, e);
    }
    vk_buf *part = NULL;
    size_t len = (size_t)m * ncol;
    rc = scratch(cmd, len * nsplit * sizeof(float), &part, e);
    if (rc != RS_OK) {
        return rc;
    }
    pc.flags = 0;
    vk_buf *bufs[3] = {db, xb, part};
    rc = conv_gemm(cmd, 2, cv, &pc, m, ncol, nsplit, bufs, 3, 1u << 2, e);
    if (rc != RS_OK) {
        return rc;
    }
    int32_t sp[3] = {(int32_t)len, nsplit, accum ? 1 : 0};
    vk_buf *sb[2] = {part, dw->buf};
    return run(cmd, "sum_splits", NULL, 0, sb, 2, 1u << 1, sp, sizeof sp, elem_groups(len), 1, 1,
               e);
}

/* ---- bias ---------------------------------------------------------------- */

rs_err eng_bias_fwd(eng_cmd *cmd, eng_tensor *y, const eng_tensor *b, rs_error *e)
{
    if ((int)eng_tensor_count(b) != y->c) {
        return rs_error_set(e, RS_EINVAL, "bias_fwd: %zu values for %d channels",
                            eng_tensor_count(b), y->c);
    }
    int32_t pc[3] = {(int32_t)eng_tensor_count(y), y->c, y->h * y->w};
    vk_buf *bufs[2] = {y->buf, b->buf};
    return run(cmd, "bias_fwd", NULL, 0, bufs, 2, 1u, pc, sizeof pc,
               elem_groups(eng_tensor_count(y)), 1, 1, e);
}

rs_err eng_bias_bwd(eng_cmd *cmd, const eng_tensor *dy, eng_tensor *db, bool accum, rs_error *e)
{
    if ((int)eng_tensor_count(db) != dy->c) {
        return rs_error_set(e, RS_EINVAL, "bias_bwd: %zu values for %d channels",
                            eng_tensor_count(db), dy->c);
    }
    char name[64];
    int32_t pc[4] = {dy->n, dy->c, dy->h * dy->w, accum ? 1 : 0};
    vk_buf *bufs[2] = {dy->buf, db->buf};
    return run(cmd, vname(cmd, "bias_bwd", name, sizeof name), NULL, 0, bufs, 2, 1u << 1, pc,
               sizeof pc, (uint32_t)dy->c, 1, 1, e);
}

/* ---- activations --------------------------------------------------------- */

typedef struct act_push {
    int32_t count;
    float slope;
    int32_t accum;
} act_push;

rs_err eng_act_fwd(eng_cmd *cmd, eng_act act, float slope, const eng_tensor *x, eng_tensor *y,
                   rs_error *e)
{
    if (!same_shape(x, y) || act < ENG_ACT_RELU || act > ENG_ACT_SILU) {
        return rs_error_set(e, RS_EINVAL, "act_fwd: shapes differ or unknown activation %d",
                            (int)act);
    }
    int32_t spec[1] = {(int32_t)act};
    act_push pc = {(int32_t)eng_tensor_count(x), slope, 0};
    vk_buf *bufs[2] = {x->buf, y->buf};
    return run(cmd, "act_fwd", spec, 1, bufs, 2, 1u << 1, &pc, sizeof pc,
               elem_groups(eng_tensor_count(x)), 1, 1, e);
}

rs_err eng_act_bwd(eng_cmd *cmd, eng_act act, float slope, const eng_tensor *x,
                   const eng_tensor *dy, eng_tensor *dx, bool accum, rs_error *e)
{
    if (!same_shape(x, dy) || !same_shape(x, dx) || act < ENG_ACT_RELU || act > ENG_ACT_SILU) {
        return rs_error_set(e, RS_EINVAL, "act_bwd: shapes differ or unknown activation %d",
                            (int)act);
    }
    int32_t spec[1] = {(int32_t)act};
    act_push pc = {(int32_t)eng_tensor_count(x), slope, accum ? 1 : 0};
    vk_buf *bufs[3] = {x->buf, dy->buf, dx->buf};
    return run(cmd, "act_bwd", spec, 1, bufs, 3, 1u << 2, &pc, sizeof pc,
               elem_groups(eng_tensor_count(x)), 1, 1, e);
}

/* ---- resampling ----------------------------------------------------------- */

static rs_err resample(eng_cmd *cmd, int op, int nc, int h, int w, const eng_tensor *src,
                       eng_tensor *dst, bool accum, rs_error *e)
{
    int32_t spec[1] = {op};
    int32_t pc[4] = {nc, h, w, accum ? 1 : 0};
    vk_buf *bufs[2] = {src->buf, dst->buf};
    return run(cmd, "resample", spec, 1, bufs, 2, 1u << 1, pc, sizeof pc,
               elem_groups(eng_tensor_count(dst)), 1, 1, e);
}

rs_err eng_avgpool2_fwd(eng_cmd *cmd, const eng_tensor *x, eng_tensor *y, rs_error *e)
{
    if (y->n != x->n || y->c != x->c || y->h != x->h / 2 || y->w != x->w / 2 || y->h == 0 ||
        y->w == 0) {
        return rs_error_set(e, RS_EINVAL, "avgpool2_fwd: %dx%d -> %dx%d", x->h, x->w, y->h, y->w);
    }
    return resample(cmd, 0, x->n * x->c, x->h, x->w, x, y, false, e);
}

rs_err eng_avgpool2_bwd(eng_cmd *cmd, const eng_tensor *dy, eng_tensor *dx, bool accum, rs_error *e)
{
    if (dy->n != dx->n || dy->c != dx->c || dy->h != dx->h / 2 || dy->w != dx->w / 2) {
        return rs_error_set(e, RS_EINVAL, "avgpool2_bwd: %dx%d -> %dx%d", dy->h, dy->w, dx->h,
                            dx->w);
    }
    return resample(cmd, 1, dx->n * dx->c, dx->h, dx->w, dy, dx, accum, e);
}

rs_err eng_upsample2_fwd(eng_cmd *cmd, eng_up mode, const eng_tensor *x, eng_tensor *y, rs_error *e)
{
    if (y->n != x->n || y->c != x->c || y->h != 2 * x->h || y->w != 2 * x->w) {
        return rs_error_set(e, RS_EINVAL, "upsample2_fwd: %dx%d -> %dx%d", x->h, x->w, y->h, y->w);
    }
    return resample(cmd, mode == ENG_UP_BILINEAR ? 4 : 2, x->n * x->c, x->h, x->w, x, y, false, e);
}

rs_err eng_upsample2_bwd(eng_cmd *cmd, eng_up mode, const eng_tensor *dy, eng_tensor *dx,
                         bool accum, rs_error *e)
{
    if (dy->n != dx->n || dy->c != dx->c || dy->h != 2 * dx->h || dy->w != 2 * dx->w) {
        return rs_error_set(e, RS_EINVAL, "upsample2_bwd: %dx%d -> %dx%d", dy->h, dy->w, dx->h,
                            dx->w);
    }
    return resample(cmd, mode == ENG_UP_BILINEAR ? 5 : 3, dx->n * dx->c, dx->h, dx->w, dy, dx,
                    accum, e);
}

/* ---- concat ---------------------------------------------------------------- */

static rs_err chan_copy(eng_cmd *cmd, const eng_tensor *src, int src_off, eng_tensor *dst,
                        int dst_off, int c, bool accum, rs_error *e)
{
    int32_t pc[8] = {src->n, c, src->h * src->w, src->c, src_off, dst->c, dst_off, accum ? 1 : 0};
    vk_buf *bufs[2] = {src->buf, dst->buf};
    return run(cmd, "chan_copy", NULL, 0, bufs, 2, 1u << 1, pc, sizeof pc,
               elem_groups((size_t)src->n * c * src->h * src->w), 1, 1, e);
}

static bool concat_fits(const eng_tensor *a, const eng_tensor *b, const eng_tensor *y)
{
    return a->n == y->n && b->n == y->n && a->h == y->h && b->h == y->h && a->w == y->w &&
           b->w == y->w && a->c + b->c == y->c;
}

rs_err eng_concat_fwd(eng_cmd *cmd, const eng_tensor *a, const eng_tensor *b, eng_tensor *y,
                      rs_error *e)
{
    if (!concat_fits(a, b, y)) {
        return rs_error_set(e, RS_EINVAL, "concat_fwd: %d + %d channels into %d, or sizes differ",
                            a->c, b->c, y->c);
    }
    rs_err rc = chan_copy(cmd, a, 0, y, 0, a->c, false, e);
    if (rc == RS_OK) {
        rc = chan_copy(cmd, b, 0, y, a->c, b->c, false, e);
    }
    return rc;
}

rs_err eng_concat_bwd(eng_cmd *cmd, const eng_tensor *dy, eng_tensor *da, eng_tensor *db,
                      bool accum, rs_error *e)
{
    if (da == NULL || db == NULL) {
        const eng_tensor *one = da != NULL ? da : db;
        if (one == NULL || one->n != dy->n || one->h != dy->h || one->w != dy->w ||
            one->c >= dy->c) {
            return rs_error_set(e, RS_EINVAL, "concat_bwd: no or ill-shaped gradient outputs");
        }
        if (da != NULL) {
            return chan_copy(cmd, dy, 0, da, 0, da->c, accum, e);
        }
        return chan_copy(cmd, dy, dy->c - db->c, db, 0, db->c, accum, e);
    }
    if (!concat_fits(da, db, dy)) {
        return rs_error_set(e, RS_EINVAL, "concat_bwd: %d channels into %d + %d, or sizes differ",
                            dy->c, da->c, db->c);
    }
    rs_err rc = chan_copy(cmd, dy, 0, da, 0, da->c, accum, e);
    if (rc == RS_OK) {
        rc = chan_copy(cmd, dy, da->c, db, 0, db->c, accum, e);
    }
    return rc;
}

/* ---- group norm ------------------------------------------------------------- */

typedef struct gn_push {
    int32_t n, c, hw, g;
    float eps;
} gn_push;

static rs_err gn_check(const char *op, int groups, const eng_tensor *x, const eng_tensor *gamma,
                       const eng_tensor *stats, rs_error *e)
{
    if (groups <= 0 || x->c % groups != 0) {
        return rs_error_set(e, RS_EINVAL, "%s: %d groups do not divide %d channels", op, groups,
                            x->c);
    }
    if ((int)eng_tensor_count(gamma) != x->c ||
        eng_tensor_count(stats) < (size_t)x->n * groups * 2) {
        return rs_error_set(e, RS_EINVAL, "%s: gamma/beta need %d values, stats %d", op, x->c,
                            x->n * groups * 2);
    }
    return RS_OK;
}

rs_err eng_groupnorm_fwd(eng_cmd *cmd, int groups, float eps, const eng_tensor *x,
                         const eng_tensor *gamma, const eng_tensor *beta, eng_tensor *y,
                         eng_tensor *stats, rs_error *e)
{
    rs_err rc = gn_check("groupnorm_fwd", groups, x, gamma, stats, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (!same_shape(x, y) || eng_tensor_count(beta) != eng_tensor_count(gamma)) {
        return rs_error_set(e, RS_EINVAL, "groupnorm_fwd: y or beta shape differs");
    }
    char name[64];
    gn_push pc = {x->n, x->c, x->h * x->w, groups, eps};
    vk_buf *sb[2] = {x->buf, stats->buf};
    rc = run(cmd, vname(cmd, "gn_stats", name, sizeof name), NULL, 0, sb, 2, 1u << 1, &pc,
             sizeof pc, (uint32_t)(x->n * groups), 1, 1, e);
    if (rc != RS_OK) {
        return rc;
    }
    int32_t ap[5] = {x->n, x->c, x->h * x->w, groups, 0};
    vk_buf *ab[5] = {x->buf, stats->buf, gamma->buf, beta->buf, y->buf};
    return run(cmd, "gn_fwd", NULL, 0, ab, 5, 1u << 4, ap, sizeof ap,
               elem_groups(eng_tensor_count(x)), 1, 1, e);
}

rs_err eng_groupnorm_bwd(eng_cmd *cmd, int groups, const eng_tensor *x, const eng_tensor *dy,
                         const eng_tensor *stats, const eng_tensor *gamma, eng_tensor *dx,
                         eng_tensor *dgamma, eng_tensor *dbeta, bool accum, rs_error *e)
{
    rs_err rc = gn_check("groupnorm_bwd", groups, x, gamma, stats, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (!same_shape(x, dy) || !same_shape(x, dx) ||
        eng_tensor_count(dgamma) != eng_tensor_count(gamma) ||
        eng_tensor_count(dbeta) != eng_tensor_count(gamma)) {
        return rs_error_set(e, RS_EINVAL, "groupnorm_bwd: dy, dx, dgamma or dbeta shape differs");
    }
    vk_buf *bst = NULL;
    rc = scratch(cmd, (size_t)x->n * groups * 2 * sizeof(float), &bst, e);
    if (rc != RS_OK) {
        return rc;
    }
    char name[64];
    gn_push pc = {x->n, x->c, x->h * x->w, groups, 0.0f};
    vk_buf *sb[5] = {x->buf, dy->buf, stats->buf, gamma->buf, bst};
    rc = run(cmd, vname(cmd, "gn_bwd_stats", name, sizeof name), NULL, 0, sb, 5, 1u << 4, &pc,
             sizeof pc, (uint32_t)(x->n * groups), 1, 1, e);
    if (rc != RS_OK) {
        return rc;
    }
    vk_buf *pb[5] = {x->buf, dy->buf, stats->buf, dgamma->buf, dbeta->buf};
    rc = run(cmd, vname(cmd, "gn_bwd_params", name, sizeof name), NULL, 0, pb, 5,
             (1u << 3) | (1u << 4), &pc, sizeof pc, (uint32_t)x->c, 1, 1, e);
    if (rc != RS_OK) {
        return rc;
    }
    int32_t ap[5] = {x->n, x->c, x->h * x->w, groups, accum ? 1 : 0};
    vk_buf *ab[6] = {x->buf, stats->buf, gamma->buf, dy->buf, bst, dx->buf};
    return run(cmd, "gn_bwd_dx", NULL, 0, ab, 6, 1u << 5, ap, sizeof ap,
               elem_groups(eng_tensor_count(x)), 1, 1, e);
}

/* ---- losses ------------------------------------------------------------------ */

static rs_err loss_check(const char *op, eng_loss kind, const eng_tensor *pred,
                         const eng_tensor *target, const eng_tensor *mask, const eng_tensor *lossv,
                         rs_error *e)
{
    if (kind < ENG_LOSS_L1 || kind > ENG_LOSS_GRAD || !same_shape(pred, target) ||
        eng_tensor_count(lossv) < 2) {
        return rs_error_set(e, RS_EINVAL,
                            "%s: unknown kind %d, pred/target shapes differ or lossv < 2", op,
                            (int)kind);
    }
    if (kind == ENG_LOSS_MASKED_L1 &&
        (mask == NULL || mask->n != pred->n || (mask->c != 1 && mask->c != pred->c) ||
         mask->h != pred->h || mask->w != pred->w)) {
        return rs_error_set(e, RS_EINVAL, "%s: masked L1 needs a [n][1 or c][h][w] mask", op);
    }
    if (kind == ENG_LOSS_GRAD && (pred->h < 2 || pred->w < 2)) {
        return rs_error_set(e, RS_EINVAL, "%s: gradient loss needs h, w >= 2", op);
    }
    return RS_OK;
}

rs_err eng_loss_fwd(eng_cmd *cmd, eng_loss kind, const eng_tensor *pred, const eng_tensor *target,
                    const eng_tensor *mask, eng_tensor *lossv, rs_error *e)
{
    rs_err rc = loss_check("loss_fwd", kind, pred, target, mask, lossv, e);
    if (rc != RS_OK) {
        return rc;
    }
    size_t count = eng_tensor_count(pred);
    int nparts = (int)((count + RED_WG * 16 - 1) / (RED_WG * 16));
    if (nparts > LOSS_MAX_PARTS) {
        nparts = LOSS_MAX_PARTS;
    }
    vk_buf *part = NULL;
    rc = scratch(cmd, (size_t)nparts * 2 * sizeof(float), &part, e);
    if (rc != RS_OK) {
        return rc;
    }
    char name[64];
    int32_t spec[1] = {(int32_t)kind};
    int32_t pc[6] = {(int32_t)count, pred->n, pred->c,
                     pred->h,        pred->w, mask != NULL ? mask->c : 1};
    vk_buf *mb = mask != NULL ? mask->buf : pred->buf;
    vk_buf *b1[4] = {pred->buf, target->buf, mb, part};
    rc = run(cmd, vname(cmd, "loss_partial", name, sizeof name), spec, 1, b1, 4, 1u << 3, pc,
             sizeof pc, (uint32_t)nparts, 1, 1, e);
    if (rc != RS_OK) {
        return rc;
    }
    int32_t fp[4] = {nparts, (int32_t)count, pred->n * pred->c * pred->h * (pred->w - 1),
                     pred->n * pred->c * (pred->h - 1) * pred->w};
    vk_buf *b2[2] = {part, lossv->buf};
    return run(cmd, vname(cmd, "loss_final", name, sizeof name), spec, 1, b2, 2, 1u << 1, fp,
               sizeof fp, 1, 1, 1, e);
}

typedef struct loss_push {
    int32_t count, n, c, h, w, mask_c, accum;
    float scale;
} loss_push;

rs_err eng_loss_bwd(eng_cmd *cmd, eng_loss kind, const eng_tensor *pred, const eng_tensor *target,
                    const eng_tensor *mask, const eng_tensor *lossv, float scale, eng_tensor *grad,
                    bool accum, rs_error *e)
{
    rs_err rc = loss_check("loss_bwd", kind, pred, target, mask, lossv, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (!same_shape(pred, grad)) {
        return rs_error_set(e, RS_EINVAL, "loss_bwd: grad shape differs from pred");
    }
    int32_t spec[1] = {(int32_t)kind};
    loss_push pc = {(int32_t)eng_tensor_count(pred), pred->n,       pred->c, pred->h, pred->w,
                    mask != NULL ? mask->c : 1,      accum ? 1 : 0, scale};
    vk_buf *mb = mask != NULL ? mask->buf : pred->buf;
    vk_buf *bufs[5] = {pred->buf, target->buf, mb, lossv->buf, grad->buf};
    return run(cmd, "loss_bwd", spec, 1, bufs, 5, 1u << 4, &pc, sizeof pc,
               elem_groups(eng_tensor_count(pred)), 1, 1, e);
}

/* ---- Adam --------------------------------------------------------------------- */

rs_err eng_adam_set(eng_tensor *hp, const eng_adam *a, long step, rs_error *e)
{
    if (step < 1 || eng_tensor_count(hp) < ENG_ADAM_HP_FLOATS) {
        return rs_error_set(e, RS_EINVAL,
                            "adam: step %ld (1-based) or hyper-parameter tensor too small", step);
    }
    float v[ENG_ADAM_HP_FLOATS] = {
        (float)a->lr,
        (float)a->beta1,
        (float)a->beta2,
        (float)a->eps,
        (float)a->weight_decay,
        a->decoupled ? 1.0f : 0.0f,
        (float)(1.0 - pow(a->beta1, (double)step)),
        (float)sqrt(1.0 - pow(a->beta2, (double)step)),
        (float)(1.0 - a->beta1),
        (float)(1.0 - a->beta2),
    };
    return vk_buf_write(hp->buf, 0, v, sizeof v, e);
}

rs_err eng_adam_step(eng_cmd *cmd, eng_tensor *w, const eng_tensor *g, eng_tensor *m, eng_tensor *v,
                     const eng_tensor *hp, rs_error *e)
{
    size_t count = eng_tensor_count(w);
    if (eng_tensor_count(g) != count || eng_tensor_count(m) != count ||
        eng_tensor_count(v) != count || eng_tensor_count(hp) < ENG_ADAM_HP_FLOATS) {
        return rs_error_set(e, RS_EINVAL, "adam_step: w, g, m, v sizes differ or hp too small");
    }
    int32_t pc[1] = {(int32_t)count};
    vk_buf *bufs[5] = {w->buf, g->buf, m->buf, v->buf, hp->buf};
    return run(cmd, "adam", NULL, 0, bufs, 5, (1u << 0) | (1u << 2) | (1u << 3), pc, sizeof pc,
               elem_groups(count), 1, 1, e);
}
