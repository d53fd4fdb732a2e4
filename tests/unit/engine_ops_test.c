/*
 * engine_ops_test.c: every non-convolution op, forward and backward, every
 * variant, against engine/ref.h in double precision on odd shapes (7x5,
 * 3 and 13 channels, batch 1 and 3): bias, ReLU/LeakyReLU/SiLU, 2x average
 * pool, nearest and bilinear 2x upsampling, channel concat, group norm,
 * the four losses, and Adam/AdamW over several steps.
 */
#include <string.h>

#include "engine_testutil.h"
#include "ref.h"

TestSuite(engine_ops, .init = t_setup, .fini = t_teardown, .timeout = 120);

#define ELEM_TOL 1e-6
#define RED_TOL 2e-6

/* random double/float pair of n values */
typedef struct rnd {
    double *d;
    float *f;
    size_t n;
} rnd;

static rnd rnd_make(size_t n)
{
    rnd r = {malloc(n * sizeof(double)), malloc(n * sizeof(float)), n};
    cr_assert(r.d != NULL && r.f != NULL);
    t_fill(r.d, r.f, n);
    return r;
}

static void rnd_free(rnd *r)
{
    free(r->d);
    free(r->f);
}

static double *dalloc(size_t n)
{
    double *d = calloc(n, sizeof *d);
    cr_assert_not_null(d);
    return d;
}

static const int SHAPES[][4] = {{1, 3, 7, 5}, {3, 13, 5, 7}, {3, 3, 7, 5}};
#define NSHAPES 3

Test(engine_ops, bias)
{
    vk_variant vs[2];
    int nv = t_variants(vs);
    for (int si = 0; si < NSHAPES; si++) {
        int n = SHAPES[si][0], c = SHAPES[si][1], h = SHAPES[si][2], w = SHAPES[si][3];
        size_t cnt = (size_t)n * c * h * w;
        rnd x = rnd_make(cnt);
        rnd b = rnd_make(c);
        rnd dy = rnd_make(cnt);
        double *y = dalloc(cnt);
        double *db = dalloc(c);
        ref_bias_fwd(n, c, h * w, x.d, b.d, y);
        ref_bias_bwd(n, c, h * w, dy.d, db);
        for (int vi = 0; vi < nv; vi++) {
            eng_tensor tx = t_tensor(n, c, h, w, x.f);
            eng_tensor tb = t_tensor(1, c, 1, 1, b.f);
            eng_tensor tdy = t_tensor(n, c, h, w, dy.f);
            eng_tensor tdb = t_tensor(1, c, 1, 1, NULL);
            eng_cmd *cmd = t_cmd(vs[vi]);
            T_OK(eng_bias_fwd(cmd, &tx, &tb, &TE));
            T_OK(eng_bias_bwd(cmd, &tdy, &tdb, false, &TE));
            t_run(cmd);
            t_check("bias_fwd", vs[vi], &tx, y, ELEM_TOL);
            t_check("bias_bwd", vs[vi], &tdb, db, RED_TOL);
            eng_cmd_destroy(cmd);
            eng_tensor_free(&tx);
            eng_tensor_free(&tb);
            eng_tensor_free(&tdy);
            eng_tensor_free(&tdb);
        }
        rnd_free(&x);
        rnd_free(&b);
        rnd_free(&dy);
        free(y);
        free(db);
    }
}

Test(engine_ops, activations)
{
    static const char *names[3] = {"relu", "leaky", "silu"};
    int n = 3, c = 13, h = 7, w = 5;
    size_t cnt = (size_t)n * c * h * w;
    rnd x = rnd_make(cnt);
    x.f[0] = 0.0f; /* the kink: PyTorch's derivative choice */
    x.d[0] = 0.0;
    rnd dy = rnd_make(cnt);
    double *y = dalloc(cnt);
    double *dx = dalloc(cnt);
    for (int a = 0; a < 3; a++) {
        ref_act_fwd((ref_act)a, 0.1, cnt, x.d, y);
        ref_act_bwd((ref_act)a, 0.1, cnt, x.d, dy.d, dx);
        eng_tensor tx = t_tensor(n, c, h, w, x.f);
        eng_tensor ty = t_tensor(n, c, h, w, NULL);
        eng_tensor tdy = t_tensor(n, c, h, w, dy.f);
        eng_tensor tdx = t_tensor(n, c, h, w, NULL);
        eng_cmd *cmd = t_cmd(VK_VARIANT_REG);
        T_OK(eng_act_fwd(cmd, (eng_act)a, 0.1f, &tx, &ty, &TE));
        T_OK(eng_act_bwd(cmd, (eng_act)a, 0.1f, &tx, &tdy, &tdx, false, &TE));
        t_run(cmd);
        char what[32];
        snprintf(what, sizeof what, "%s_fwd", names[a]);
        t_check(what, VK_VARIANT_REG, &ty, y, ELEM_TOL);
        snprintf(what, sizeof what, "%s_bwd", names[a]);
        t_check(what, VK_VARIANT_REG, &tdx, dx, ELEM_TOL);
        eng_cmd_destroy(cmd);
        eng_tensor_free(&tx);
        eng_tensor_free(&ty);
        eng_tensor_free(&tdy);
        eng_tensor_free(&tdx);
    }
    rnd_free(&x);
    rnd_free(&dy);
    free(y);
    free(dx);
}

Test(engine_ops, avgpool_and_upsample)
{
    for (int si = 0; si < NSHAPES; si++) {
        int n = SHAPES[si][0], c = SHAPES[si][1], h = SHAPES[si][2], w = SHAPES[si][3];
        size_t cnt = (size_t)n * c * h * w;
        size_t half = (size_t)n * c * (h / 2) * (w / 2);
        size_t dbl = cnt * 4;
        rnd x = rnd_make(cnt);
        rnd dyh = rnd_make(half);
        rnd dyd = rnd_make(dbl);
        double *p = dalloc(half);
        double *dp = dalloc(cnt);
        double *un = dalloc(dbl);
        double *dun = dalloc(cnt);
        double *ub = dalloc(dbl);
        double *dub = dalloc(cnt);
        ref_avgpool2_fwd(n, c, h, w, x.d, p);
        ref_avgpool2_bwd(n, c, h, w, dyh.d, dp);
        ref_upsample2_nearest_fwd(n, c, h, w, x.d, un);
        ref_upsample2_nearest_bwd(n, c, h, w, dyd.d, dun);
        ref_upsample2_bilinear_fwd(n, c, h, w, x.d, ub);
        ref_upsample2_bilinear_bwd(n, c, h, w, dyd.d, dub);
        eng_tensor tx = t_tensor(n, c, h, w, x.f);
        eng_tensor tp = t_tensor(n, c, h / 2, w / 2, NULL);
        eng_tensor tdyh = t_tensor(n, c, h / 2, w / 2, dyh.f);
        eng_tensor tdp = t_tensor(n, c, h, w, NULL);
        eng_tensor tun = t_tensor(n, c, 2 * h, 2 * w, NULL);
        eng_tensor tub = t_tensor(n, c, 2 * h, 2 * w, NULL);
        eng_tensor tdyd = t_tensor(n, c, 2 * h, 2 * w, dyd.f);
        eng_tensor tdun = t_tensor(n, c, h, w, NULL);
        eng_tensor tdub = t_tensor(n, c, h, w, NULL);
        eng_cmd *cmd = t_cmd(VK_VARIANT_REG);
        T_OK(eng_avgpool2_fwd(cmd, &tx, &tp, &TE));
        T_OK(eng_avgpool2_bwd(cmd, &tdyh, &tdp, false, &TE));
        T_OK(eng_upsample2_fwd(cmd, ENG_UP_NEAREST, &tx, &tun, &TE));
        T_OK(eng_upsample2_bwd(cmd, ENG_UP_NEAREST, &tdyd, &tdun, false, &TE));
        T_OK(eng_upsample2_fwd(cmd, ENG_UP_BILINEAR, &tx, &tub, &TE));
        T_OK(eng_upsample2_bwd(cmd, ENG_UP_BILINEAR, &tdyd, &tdub, false, &TE));
        t_run(cmd);
        t_check("avgpool2_fwd", VK_VARIANT_REG, &tp, p, ELEM_TOL);
        t_check("avgpool2_bwd", VK_VARIANT_REG, &tdp, dp, ELEM_TOL);
        t_check("upsample_nearest_fwd", VK_VARIANT_REG, &tun, un, ELEM_TOL);
        t_check("upsample_nearest_bwd", VK_VARIANT_REG, &tdun, dun, ELEM_TOL);
        t_check("upsample_bilinear_fwd", VK_VARIANT_REG, &tub, ub, ELEM_TOL);
        t_check("upsample_bilinear_bwd", VK_VARIANT_REG, &tdub, dub, ELEM_TOL);
        eng_cmd_destroy(cmd);
        eng_tensor *all[] = {&tx, &tp, &tdyh, &tdp, &tun, &tub, &tdyd, &tdun, &tdub};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            eng_tensor_free(all[i]);
        }
        rnd_free(&x);
        rnd_free(&dyh);
        rnd_free(&dyd);
        free(p);
        free(dp);
        free(un);
        free(dun);
        free(ub);
        free(dub);
    }
}

Test(engine_ops, concat)
{
    int n = 3, ca = 3, cb = 13, hw = 35;
    rnd a = rnd_make((size_t)n * ca * hw);
    rnd b = rnd_make((size_t)n * cb * hw);
    rnd dy = rnd_make((size_t)n * (ca + cb) * hw);
    rnd prior = rnd_make((size_t)n * ca * hw);
    double *y = dalloc((size_t)n * (ca + cb) * hw);
    double *da = dalloc((size_t)n * ca * hw);
    double *db = dalloc((size_t)n * cb * hw);
    ref_concat_fwd(n, ca, cb, hw, a.d, b.d, y);
    ref_concat_bwd(n, ca, cb, hw, dy.d, da, db);
    eng_tensor ta = t_tensor(n, ca, 7, 5, a.f);
    eng_tensor tb = t_tensor(n, cb, 7, 5, b.f);
    eng_tensor ty = t_tensor(n, ca + cb, 7, 5, NULL);
    eng_tensor tdy = t_tensor(n, ca + cb, 7, 5, dy.f);
    eng_tensor tda = t_tensor(n, ca, 7, 5, NULL);
    eng_tensor tdb = t_tensor(n, cb, 7, 5, NULL);
    eng_tensor tdacc = t_tensor(n, ca, 7, 5, prior.f);
    eng_cmd *cmd = t_cmd(VK_VARIANT_REG);
    T_OK(eng_concat_fwd(cmd, &ta, &tb, &ty, &TE));
    T_OK(eng_concat_bwd(cmd, &tdy, &tda, &tdb, false, &TE));
    T_OK(eng_concat_bwd(cmd, &tdy, &tdacc, NULL, true, &TE));
    t_run(cmd);
    t_check("concat_fwd", VK_VARIANT_REG, &ty, y, 0.0);
    t_check("concat_bwd_a", VK_VARIANT_REG, &tda, da, 0.0);
    t_check("concat_bwd_b", VK_VARIANT_REG, &tdb, db, 0.0);
    for (size_t i = 0; i < prior.n; i++) {
        prior.d[i] += da[i];
    }
    t_check("concat_bwd_accum", VK_VARIANT_REG, &tdacc, prior.d, ELEM_TOL);
    eng_cmd_destroy(cmd);
    eng_tensor *all[] = {&ta, &tb, &ty, &tdy, &tda, &tdb, &tdacc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        eng_tensor_free(all[i]);
    }
    rnd_free(&a);
    rnd_free(&b);
    rnd_free(&dy);
    rnd_free(&prior);
    free(y);
    free(da);
    free(db);
}

static void gn_case(int n, int c, int h, int w, int groups)
{
    const double eps = 1e-5;
    size_t cnt = (size_t)n * c * h * w;
    rnd x = rnd_make(cnt);
    for (size_t i = 0; i < cnt; i++) { /* an offset mean and a non-unit scale */
        x.f[i] = 3.0f + 2.0f * x.f[i];
        x.d[i] = x.f[i];
    }
    rnd g = rnd_make(c);
    rnd b = rnd_make(c);
    rnd dy = rnd_make(cnt);
    double *y = dalloc(cnt);
    double *dx = dalloc(cnt);
    double *dg = dalloc(c);
    double *dbeta = dalloc(c);
    ref_groupnorm_fwd(n, c, h * w, groups, eps, x.d, g.d, b.d, y, NULL, NULL);
    ref_groupnorm_bwd(n, c, h * w, groups, eps, x.d, g.d, dy.d, dx, dg, dbeta);
    vk_variant vs[2];
    int nv = t_variants(vs);
    for (int vi = 0; vi < nv; vi++) {
        eng_tensor tx = t_tensor(n, c, h, w, x.f);
        eng_tensor tg = t_tensor(1, c, 1, 1, g.f);
        eng_tensor tb = t_tensor(1, c, 1, 1, b.f);
        eng_tensor ty = t_tensor(n, c, h, w, NULL);
        eng_tensor ts = t_tensor(n, groups, 2, 1, NULL);
        eng_tensor tdy = t_tensor(n, c, h, w, dy.f);
        eng_tensor tdx = t_tensor(n, c, h, w, NULL);
        eng_tensor tdg = t_tensor(1, c, 1, 1, NULL);
        eng_tensor tdb = t_tensor(1, c, 1, 1, NULL);
        eng_cmd *cmd = t_cmd(vs[vi]);
        T_OK(eng_groupnorm_fwd(cmd, groups, (float)eps, &tx, &tg, &tb, &ty, &ts, &TE));
        T_OK(eng_groupnorm_bwd(cmd, groups, &tx, &tdy, &ts, &tg, &tdx, &tdg, &tdb, false, &TE));
        t_run(cmd);
        char what[64];
        snprintf(what, sizeof what, "groupnorm_fwd[c%d g%d]", c, groups);
        t_check(what, vs[vi], &ty, y, 1e-5);
        snprintf(what, sizeof what, "groupnorm_bwd_dx[c%d g%d]", c, groups);
        t_check(what, vs[vi], &tdx, dx, 1e-4);
        t_check("groupnorm_bwd_dgamma", vs[vi], &tdg, dg, 1e-5);
        t_check("groupnorm_bwd_dbeta", vs[vi], &tdb, dbeta, RED_TOL);
        eng_cmd_destroy(cmd);
        eng_tensor *all[] = {&tx, &tg, &tb, &ty, &ts, &tdy, &tdx, &tdg, &tdb};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            eng_tensor_free(all[i]);
        }
    }
    rnd_free(&x);
    rnd_free(&g);
    rnd_free(&b);
    rnd_free(&dy);
    free(y);
    free(dx);
    free(dg);
    free(dbeta);
}

Test(engine_ops, groupnorm)
{
    gn_case(1, 13, 7, 5, 1);
    gn_case(3, 13, 7, 5, 13);
    gn_case(3, 12, 5, 7, 4);
    gn_case(1, 3, 33, 31, 3); /* groups larger than one workgroup's share */
}

static double ref_loss(eng_loss k, int n, int c, int h, int w, int mc, const double *p,
                       const double *t, const double *m, double *g)
{
    size_t cnt = (size_t)n * c * h * w;
    switch (k) {
    case ENG_LOSS_L1:
        return ref_loss_l1(cnt, p, t, g);
    case ENG_LOSS_MSE:
        return ref_loss_mse(cnt, p, t, g);
    case ENG_LOSS_MASKED_L1:
        return ref_loss_masked_l1(n, c, h * w, mc, p, t, m, g);
    default:
        return ref_loss_grad(n, c, h, w, p, t, g);
    }
}

static void loss_case(eng_loss k, int n, int c, int h, int w, int mc)
{
    static const char *names[4] = {"l1", "mse", "masked_l1", "grad"};
    size_t cnt = (size_t)n * c * h * w;
    rnd p = rnd_make(cnt);
    rnd t = rnd_make(cnt);
    rnd m = rnd_make((size_t)n * mc * h * w); /* negatives count as 0 */
    p.f[1] = t.f[1];                          /* an exact tie: sign(0) = 0 */
    p.d[1] = t.d[1];
    double *g = dalloc(cnt);
    double loss = ref_loss(k, n, c, h, w, mc, p.d, t.d, m.d, g);
    vk_variant vs[2];
    int nv = t_variants(vs);
    for (int vi = 0; vi < nv; vi++) {
        eng_tensor tp = t_tensor(n, c, h, w, p.f);
        eng_tensor tt = t_tensor(n, c, h, w, t.f);
        eng_tensor tm = t_tensor(n, mc, h, w, m.f);
        eng_tensor tl = t_tensor(1, 2, 1, 1, NULL);
        eng_tensor tg = t_tensor(n, c, h, w, NULL);
        eng_cmd *cmd = t_cmd(vs[vi]);
        const eng_tensor *mask = k == ENG_LOSS_MASKED_L1 ? &tm : NULL;
        T_OK(eng_loss_fwd(cmd, k, &tp, &tt, mask, &tl, &TE));
        T_OK(eng_loss_bwd(cmd, k, &tp, &tt, mask, &tl, 1.0f, &tg, false, &TE));
        t_run(cmd);
        float lv[2];
        T_OK(eng_tensor_read(&tl, lv, &TE));
        double err = fabs(lv[0] - loss) / fmax(fabs(loss), 1e-12);
        char what[64];
        snprintf(what, sizeof what, "loss_%s[c%d mc%d]", names[k], c, mc);
        fprintf(stderr, "tol %s %s %.3g\n", what, t_vname(vs[vi]), err);
        cr_expect_leq(err, 2e-6, "%s value %.9g vs %.9g", what, lv[0], loss);
        snprintf(what, sizeof what, "loss_%s_grad", names[k]);
        t_check(what, vs[vi], &tg, g, 2e-6);
        eng_cmd_destroy(cmd);
        eng_tensor *all[] = {&tp, &tt, &tm, &tl, &tg};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            eng_tensor_free(all[i]);
        }
    }
    rnd_free(&p);
    rnd_free(&t);
    rnd_free(&m);
    free(g);
}

Test(engine_ops, losses)
{
    for (int k = 0; k < 4; k++) {
        loss_case((eng_loss)k, 3, 13, 7, 5, 13);
        loss_case((eng_loss)k, 1, 3, 5, 7, 3);
    }
    loss_case(ENG_LOSS_MASKED_L1, 3, 3, 7, 5, 1); /* per-pixel mask broadcast over channels */
    loss_case(ENG_LOSS_L1, 2, 3, 64, 70, 3);      /* more than one partial workgroup */
    loss_case(ENG_LOSS_GRAD, 2, 3, 64, 70, 3);
}

static void adam_case(int decoupled)
{
    const size_t cnt = 3 * 13 * 7 * 5;
    ref_adam_params hp = {.lr = 1e-2,
                          .beta1 = 0.9,
                          .beta2 = 0.999,
                          .eps = 1e-8,
                          .weight_decay = 0.1,
                          .decoupled = decoupled};
    eng_adam ea = {.lr = 1e-2,
                   .beta1 = 0.9,
                   .beta2 = 0.999,
                   .eps = 1e-8,
                   .weight_decay = 0.1,
                   .decoupled = decoupled};
    rnd w = rnd_make(cnt);
    double *m = dalloc(cnt);
    double *v = dalloc(cnt);
    float *zero = calloc(cnt, sizeof *zero);
    cr_assert_not_null(zero);
    eng_tensor tw = t_tensor(1, 1, 1, (int)cnt, w.f);
    eng_tensor tg = t_tensor(1, 1, 1, (int)cnt, NULL);
    eng_tensor tm = t_tensor(1, 1, 1, (int)cnt, zero);
    eng_tensor tv = t_tensor(1, 1, 1, (int)cnt, zero);
    eng_tensor th = t_tensor(1, 1, 1, ENG_ADAM_HP_FLOATS, NULL);
    eng_cmd *cmd = t_cmd(VK_VARIANT_REG);
    T_OK(eng_adam_step(cmd, &tw, &tg, &tm, &tv, &th, &TE));
    rs_error e = {0};
    cr_assert_eq(eng_cmd_end(cmd, &e), RS_OK);
    for (long step = 1; step <= 5; step++) {
        rnd g = rnd_make(cnt);
        T_OK(eng_tensor_write(&tg, g.f, &TE));
        T_OK(eng_adam_set(&th, &ea, step, &TE));
        T_OK(eng_cmd_submit(cmd, &TE)); /* one recording replayed each step */
        ref_adam_step(&hp, step, cnt, w.d, g.d, m, v);
        rnd_free(&g);
    }
    t_check(decoupled ? "adamw_w" : "adam_w", VK_VARIANT_REG, &tw, w.d, 1e-6);
    t_check(decoupled ? "adamw_m" : "adam_m", VK_VARIANT_REG, &tm, m, 1e-6);
    t_check(decoupled ? "adamw_v" : "adam_v", VK_VARIANT_REG, &tv, v, 1e-6);
    cr_assert_eq(eng_adam_set(&th, &ea, 0, &e), RS_EINVAL);
    eng_cmd_destroy(cmd);
    eng_tensor *all[] = {&tw, &tg, &tm, &tv, &th};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        eng_tensor_free(all[i]);
    }
    rnd_free(&w);
    free(m);
    free(v);
    free(zero);
}

Test(engine_ops, adam_and_adamw)
{
    adam_case(0);
    adam_case(1);
}
