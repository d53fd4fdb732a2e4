/*
 * engine_testutil.h: shared helpers of the engine tests: a context per test
 * with validation on (the test's environment sets RUSHES_VK_VALIDATION=1)
 * that must end with zero validation messages, deterministic random data,
 * and the normalised error against the double-precision reference:
 *   err = max_i |got_i - ref_i| / max(max_i |ref_i|, 1e-12)
 * Measured errors are printed as "tol <op> <variant> <err>" lines.
 */
#ifndef RS_ENGINE_TESTUTIL_H
#define RS_ENGINE_TESTUTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops.h"
#include "vk.h"

static vk_ctx *T_ctx;

static inline void t_setup(void)
{
    rs_error e = {0};
    rs_err rc = vk_ctx_create(NULL, &T_ctx, &e);
    cr_assert_eq(rc, RS_OK, "vk_ctx_create: %s", rs_error_text(&e));
    cr_assert(vk_ctx_validation_enabled(T_ctx), "tests must run with RUSHES_VK_VALIDATION=1");
}

static inline void t_teardown(void)
{
    uint32_t n = vk_ctx_validation_errors(T_ctx);
    vk_ctx_destroy(T_ctx);
    T_ctx = NULL;
    cr_assert_eq(n, 0, "%u Vulkan validation messages", n);
}

/* The variants this device can run: REG always, SMEM where supported. */
static inline int t_variants(vk_variant out[2])
{
    int n = 0;
    out[n++] = VK_VARIANT_REG;
    if (vk_ctx_caps(T_ctx)->subgroup_arith) {
        out[n++] = VK_VARIANT_SMEM;
    }
    return n;
}

/* The same plus the fp16-storage variant where the device has it: for the
 * tests whose tolerances allow fp16 operands (or that run no convolution,
 * where F16 runs the REG kernels). */
static inline int t_variants_f16(vk_variant out[3])
{
    int n = t_variants(out);
    if (vk_ctx_caps(T_ctx)->fp16_storage) {
        out[n++] = VK_VARIANT_F16;
    }
    return n;
}

static inline const char *t_vname(vk_variant v)
{
    return v == VK_VARIANT_SMEM ? "smem" : v == VK_VARIANT_F16 ? "f16" : "reg";
}

static uint64_t t_rng = 0x9e3779b97f4a7c15ull;

/* uniform in [-1, 1) */
static inline double t_rand(void)
{
    t_rng = t_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(t_rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

/* Fills d (double) and f (float, same values) with random numbers. */
static inline void t_fill(double *d, float *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        f[i] = (float)t_rand();
        d[i] = f[i];
    }
}

static inline double t_err(const float *got, const double *ref, size_t n)
{
    double mx = 0.0;
    double er = 0.0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs(ref[i]));
        er = fmax(er, fabs((double)got[i] - ref[i]));
    }
    return er / fmax(mx, 1e-12);
}

/* A tensor of the given shape holding f. */
static inline eng_tensor t_tensor(int n, int c, int h, int w, const float *f)
{
    eng_tensor t;
    rs_error e = {0};
    cr_assert_eq(eng_tensor_alloc(T_ctx, n, c, h, w, &t, &e), RS_OK, "%s", rs_error_text(&e));
    if (f != NULL) {
        cr_assert_eq(eng_tensor_write(&t, f, &e), RS_OK, "%s", rs_error_text(&e));
    }
    return t;
}

/* Reads t and checks it against ref within tol; prints the error. */
static inline void t_check(const char *op, vk_variant v, const eng_tensor *t, const double *ref,
                           double tol)
{
    size_t n = eng_tensor_count(t);
    float *got = malloc(n * sizeof *got);
    cr_assert_not_null(got);
    rs_error e = {0};
    cr_assert_eq(eng_tensor_read(t, got, &e), RS_OK, "%s", rs_error_text(&e));
    double err = t_err(got, ref, n);
    fprintf(stderr, "tol %s %s %.3g\n", op, t_vname(v), err);
    cr_expect(err <= tol, "%s (%s): normalised error %.3g over %.1g", op, t_vname(v), err, tol);
    free(got);
}

static inline eng_cmd *t_cmd(vk_variant v)
{
    eng_cmd *cmd = NULL;
    rs_error e = {0};
    cr_assert_eq(eng_cmd_create(T_ctx, v, &cmd, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(eng_cmd_begin(cmd, &e), RS_OK, "%s", rs_error_text(&e));
    return cmd;
}

static inline void t_run(eng_cmd *cmd)
{
    rs_error e = {0};
    cr_assert_eq(eng_cmd_end(cmd, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(eng_cmd_submit(cmd, &e), RS_OK, "%s", rs_error_text(&e));
}

/* T_OK(eng_x(..., &TE)): the call names the block's rs_error TE. */
#define T_OK(call)                                                                                 \
    do {                                                                                           \
        rs_error TE = {0};                                                                         \
        rs_err t_rc_ = (call);                                                                     \
        cr_assert_eq(t_rc_, RS_OK, "%s: %s", #call, rs_error_text(&TE));                           \
    } while (0)

#endif
