/*
 * engine_torch_test.c: the U-Net against its PyTorch twin
 * (tests/unit/engine_torch.py): same initial weights (dumped from the
 * engine), same batch, same Adam settings; the loss curves must agree
 * within CURVE_TOL (relative, per step) for the first STEPS steps.
 * PyTorch (/usr/bin/python3 with torch) is for tests only; without it the
 * test is skipped, never passed silently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_testutil.h"
#include "unet.h"

TestSuite(engine_torch, .init = t_setup, .fini = t_teardown, .timeout = 120);

#define STEPS 8
#define CURVE_TOL 1e-4 /* measured: <= 1.5e-6 on lavapipe */

static void write_tensor(FILE *f, const eng_tensor *t)
{
    size_t n = eng_tensor_count(t);
    float *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    T_OK(eng_tensor_read(t, v, &TE));
    cr_assert_eq(fwrite(v, sizeof *v, n, f), n); /* little-endian hosts only, as the engine */
    free(v);
}

static const char *act_name(eng_act a)
{
    return a == ENG_ACT_SILU ? "silu" : a == ENG_ACT_LEAKY ? "leaky" : "relu";
}

static void dump(unet *u, const unet_cfg *cfg, const eng_adam *opt, const char *path)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"cfg\": {\"depth\": %d, \"norm_groups\": %d, \"act\": \"%s\", \"slope\": %.9g, "
            "\"up\": \"%s\", "
            "\"loss\": \"%s\", \"lr\": %.17g, \"beta1\": %.17g, \"beta2\": %.17g, \"eps\": %.17g, "
            "\"weight_decay\": %.17g, \"decoupled\": %d}, \"params\": [",
            cfg->depth, cfg->norm_groups, act_name(cfg->act), cfg->slope,
            cfg->up == ENG_UP_BILINEAR ? "bilinear" : "nearest",
            cfg->loss == ENG_LOSS_MSE ? "mse" : "l1", opt->lr, opt->beta1, opt->beta2, opt->eps,
            opt->weight_decay, opt->decoupled);
    for (int p = 0; p < unet_param_count(u); p++) {
        eng_tensor *t = unet_param(u, p);
        const char *name = unet_param_name(u, p);
        const char *sep = p > 0 ? ", " : "";
        if (strstr(name, ".conv.w") != NULL) {
            fprintf(f, "%s[\"%s\", [%d, %d, %d, %d]]", sep, name, t->n, t->c, t->h, t->w);
        } else {
            fprintf(f, "%s[\"%s\", [%zu]]", sep, name, eng_tensor_count(t));
        }
    }
    eng_tensor *in = unet_input(u);
    eng_tensor *tg = unet_target(u);
    fprintf(f, "], \"input\": [%d, %d, %d, %d], \"target\": [%d, %d, %d, %d]}\n", in->n, in->c,
            in->h, in->w, tg->n, tg->c, tg->h, tg->w);
    for (int p = 0; p < unet_param_count(u); p++) {
        write_tensor(f, unet_param(u, p));
    }
    write_tensor(f, in);
    write_tensor(f, tg);
    cr_assert_eq(fclose(f), 0);
}

static void fill_batch(unet *u)
{
    eng_tensor *in = unet_input(u);
    eng_tensor *tg = unet_target(u);
    size_t ni = eng_tensor_count(in);
    size_t nt = eng_tensor_count(tg);
    float *a = malloc(ni * sizeof *a);
    float *b = malloc(nt * sizeof *b);
    cr_assert(a != NULL && b != NULL);
    for (size_t i = 0; i < ni; i++) {
        a[i] = (float)t_rand();
    }
    for (size_t i = 0; i < nt; i++) {
        b[i] = 0.5f * a[i % ni] + 0.25f * (float)t_rand();
    }
    T_OK(eng_tensor_write(in, a, &TE));
    T_OK(eng_tensor_write(tg, b, &TE));
    free(a);
    free(b);
}

static bool have_torch(void)
{
    return system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
}

static void twin_case(vk_variant v, const unet_cfg *cfg, const eng_adam *opt)
{
    unet *u = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, cfg, 2, 16, 16, v, &u, &e), RS_OK, "%s", rs_error_text(&e));
    fill_batch(u);
    char path[64];
    snprintf(path, sizeof path, "/tmp/rs_engine_torch.%d.bin", (int)getpid());
    dump(u, cfg, opt, path);
    float ours[STEPS];
    for (int s = 0; s < STEPS; s++) {
        T_OK(unet_train_step(u, opt, &ours[s], &TE));
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/unit/engine_torch.py %s %d", RS_SOURCE_DIR,
             path, STEPS);
    FILE *py = popen(cmd, "r");
    cr_assert_not_null(py);
    double worst = 0.0;
    for (int s = 0; s < STEPS; s++) {
        double theirs = 0.0;
        cr_assert_eq(fscanf(py, "%lf", &theirs), 1, "no loss for step %d from %s", s, cmd);
        double err = fabs(ours[s] - theirs) / fmax(fabs(theirs), 1e-12);
        worst = fmax(worst, err);
        cr_expect_leq(err, CURVE_TOL, "step %d: engine %.7g, PyTorch %.7g", s, ours[s], theirs);
    }
    cr_assert_eq(pclose(py), 0, "%s failed", cmd);
    unlink(path);
    fprintf(stderr, "tol unet_vs_torch_%s_%s %s %.3g over %d steps (%.5f -> %.5f)\n",
            act_name(cfg->act), cfg->loss == ENG_LOSS_MSE ? "mse" : "l1", t_vname(v), worst, STEPS,
            ours[0], ours[STEPS - 1]);
    unet_destroy(u);
}

Test(engine_torch, loss_curve_matches_pytorch)
{
    if (!have_torch()) {
        cr_skip_test("/usr/bin/python3 with torch and numpy is not installed");
    }
    unet_cfg cfg = {.depth = 3,
                    .base = 8,
                    .in_c = 3,
                    .out_c = 3,
                    .norm_groups = 4,
                    .act = ENG_ACT_SILU,
                    .up = ENG_UP_BILINEAR,
                    .loss = ENG_LOSS_MSE,
                    .seed = 3};
    eng_adam adam = {
        .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0, .decoupled = 0};
    vk_variant vs[2];
    int nv = t_variants(vs);
    for (int i = 0; i < nv; i++) {
        twin_case(vs[i], &cfg, &adam);
    }
    unet_cfg cfg2 = {.depth = 2,
                     .base = 8,
                     .in_c = 3,
                     .out_c = 3,
                     .norm_groups = 2,
                     .act = ENG_ACT_LEAKY,
                     .slope = 0.1f,
                     .up = ENG_UP_NEAREST,
                     .loss = ENG_LOSS_L1,
                     .seed = 4};
    eng_adam adamw = {
        .lr = 5e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.05, .decoupled = 1};
    twin_case(VK_VARIANT_AUTO, &cfg2, &adamw);
}
