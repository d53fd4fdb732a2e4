/*
 * engine_unet_test.c: the U-Net end to end on this device: its analytic
 * gradients (forward, loss, backward through skips, pools, upsampling,
 * group norm) against central finite differences of its own loss, for
 * every variant; bit-identical weights after N steps from the same seed;
 * a small configuration overfitting a fixed batch; tiled inference with
 * feathered overlaps against whole-image inference; checkpoint save ->
 * load -> continue against uninterrupted training; a checkpoint read by an
 * outside json + numpy reader to the same values; the fp16-storage
 * variant training like the fp32 one; bad shapes refused.
 */
#include <string.h>
#include <unistd.h>

#include "engine_testutil.h"
#include "unet.h"
#include "unet_ckpt.h"

TestSuite(engine_unet, .init = t_setup, .fini = t_teardown, .timeout = 120);

static void fill_batch(unet *u, uint64_t seed)
{
    eng_tensor *in = unet_input(u);
    eng_tensor *tg = unet_target(u);
    size_t ni = eng_tensor_count(in);
    size_t nt = eng_tensor_count(tg);
    float *a = malloc(ni * sizeof *a);
    float *b = malloc(nt * sizeof *b);
    cr_assert(a != NULL && b != NULL);
    t_rng = seed;
    for (size_t i = 0; i < ni; i++) {
        a[i] = (float)t_rand();
    }
    /* target: a smooth function of the input a small net can learn */
    int hw = in->h * in->w;
    for (int n = 0; n < tg->n; n++) {
        for (int c = 0; c < tg->c; c++) {
            for (int i = 0; i < hw; i++) {
                const float *x = a + (size_t)n * in->c * hw;
                float v = 0.5f * x[(c % in->c) * hw + i] - 0.25f * x[((c + 1) % in->c) * hw + i];
                b[((size_t)n * tg->c + c) * hw + i] = v > 0 ? v : 0.2f * v;
            }
        }
    }
    T_OK(eng_tensor_write(in, a, &TE));
    T_OK(eng_tensor_write(tg, b, &TE));
    free(a);
    free(b);
}

static float step_loss(unet *u)
{
    eng_adam frozen = {.lr = 0.0, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0};
    float loss = 0.0f;
    T_OK(unet_train_step(u, &frozen, &loss, &TE));
    return loss;
}

static void fd_case(vk_variant v, eng_loss loss_kind, eng_up up)
{
    unet_cfg cfg = {.depth = 3,
                    .base = 4,
                    .in_c = 3,
                    .out_c = 2,
                    .norm_groups = 2,
                    .act = ENG_ACT_SILU,
                    .up = up,
                    .loss = loss_kind,
                    .seed = 7};
    unet *u = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, &cfg, 2, 8, 8, v, &u, &e), RS_OK, "%s", rs_error_text(&e));
    fill_batch(u, 11);
    float l0 = step_loss(u);
    cr_assert(isfinite(l0) && l0 > 0.0f);
    double worst = 0.0;
    int checked = 0;
    for (int p = 0; p < unet_param_count(u); p++) {
        eng_tensor *w = unet_param(u, p);
        size_t n = eng_tensor_count(w);
        float *wv = malloc(n * sizeof *wv);
        float *gv = malloc(n * sizeof *gv);
        cr_assert(wv != NULL && gv != NULL);
        /* fresh gradients at the unperturbed weights */
        step_loss(u);
        T_OK(eng_tensor_read(w, wv, &TE));
        T_OK(eng_tensor_read(unet_param_grad(u, p), gv, &TE));
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            if (fabsf(gv[i]) > fabsf(gv[best])) {
                best = i;
            }
        }
        if (fabsf(gv[best]) < 1e-3f) {
            free(wv);
            free(gv);
            continue; /* too flat to measure in fp32 */
        }
        const float h = 1e-2f;
        float keep = wv[best];
        wv[best] = keep + h;
        T_OK(eng_tensor_write(w, wv, &TE));
        float lp = step_loss(u);
        wv[best] = keep - h;
        T_OK(eng_tensor_write(w, wv, &TE));
        float lm = step_loss(u);
        wv[best] = keep;
        T_OK(eng_tensor_write(w, wv, &TE));
        double fd = ((double)lp - (double)lm) / (2.0 * h);
        double err = fabs(fd - gv[best]) / fabs(gv[best]);
        if (err > worst) {
            worst = err;
        }
        cr_expect_leq(err, 0.03, "%s[%zu]: analytic %.6g, finite difference %.6g",
                      unet_param_name(u, p), best, gv[best], fd);
        checked++;
        free(wv);
        free(gv);
    }
    fprintf(stderr, "tol unet_fd_%d_%d %s %.3g (%d parameters)\n", (int)loss_kind, (int)up,
            t_vname(v), worst, checked);
    cr_assert_geq(checked, unet_param_count(u) / 2, "only %d of %d parameters checked", checked,
                  unet_param_count(u));
    unet_destroy(u);
}

Test(engine_unet, gradients_match_finite_differences)
{
    vk_variant vs[2];
    int nv = t_variants(vs);
    for (int i = 0; i < nv; i++) {
        fd_case(vs[i], ENG_LOSS_MSE, ENG_UP_BILINEAR);
    }
    /* L1-type losses have kinks a finite difference straddles: smooth MSE only */
    fd_case(VK_VARIANT_REG, ENG_LOSS_MSE, ENG_UP_NEAREST);
}

static float *train_and_read(uint64_t seed, int steps, size_t *count)
{
    unet_cfg cfg = {.depth = 3,
                    .base = 8,
                    .in_c = 3,
                    .out_c = 3,
                    .norm_groups = 4,
                    .act = ENG_ACT_LEAKY,
                    .slope = 0.1f,
                    .up = ENG_UP_NEAREST,
                    .loss = ENG_LOSS_L1,
                    .seed = seed};
    eng_adam opt = {.lr = 1e-2,
                    .beta1 = 0.9,
                    .beta2 = 0.999,
                    .eps = 1e-8,
                    .weight_decay = 1e-4,
                    .decoupled = 1};
    unet *u = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, &cfg, 2, 16, 12, VK_VARIANT_AUTO, &u, &e), RS_OK, "%s",
                 rs_error_text(&e));
    for (int s = 0; s < steps; s++) {
        fill_batch(u, 100 + (uint64_t)s);
        T_OK(unet_train_step(u, &opt, NULL, &TE));
    }
    cr_assert_eq(unet_steps(u), steps);
    *count = unet_param_floats(u);
    float *all = malloc(*count * sizeof *all);
    cr_assert_not_null(all);
    size_t off = 0;
    for (int p = 0; p < unet_param_count(u); p++) {
        T_OK(eng_tensor_read(unet_param(u, p), all + off, &TE));
        off += eng_tensor_count(unet_param(u, p));
    }
    unet_destroy(u);
    return all;
}

Test(engine_unet, same_seed_gives_bit_identical_weights)
{
    size_t na;
    size_t nb;
    size_t nc;
    float *a = train_and_read(42, 6, &na);
    float *b = train_and_read(42, 6, &nb);
    float *c = train_and_read(43, 6, &nc);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(a, b, na * sizeof *a), 0, "same seed, same steps: weights differ");
    cr_assert_neq(memcmp(a, c, na * sizeof *a), 0, "different seeds gave the same weights");
    free(a);
    free(b);
    free(c);
}

Test(engine_unet, small_net_overfits_a_batch)
{
    unet_cfg cfg = {.depth = 2,
                    .base = 8,
                    .in_c = 3,
                    .out_c = 3,
                    .norm_groups = 4,
                    .act = ENG_ACT_LEAKY,
                    .slope = 0.1f,
                    .up = ENG_UP_BILINEAR,
                    .loss = ENG_LOSS_MSE,
                    .seed = 1};
    eng_adam opt = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0};
    unet *u = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, &cfg, 2, 16, 16, VK_VARIANT_AUTO, &u, &e), RS_OK, "%s",
                 rs_error_text(&e));
    fill_batch(u, 5);
    float first = 0.0f;
    float last = 0.0f;
    for (int s = 0; s < 80; s++) {
        T_OK(unet_train_step(u, &opt, &last, &TE));
        if (s == 0) {
            first = last;
        }
    }
    fprintf(stderr, "unet overfit: mse %.5f -> %.5f in 80 steps (%u dispatches a step)\n", first,
            last, unet_train_dispatches(u));
    cr_assert_lt(last, 0.05f * first, "loss %.5f -> %.5f", first, last);
    T_OK(unet_forward(u, &TE));
    unet_destroy(u);
}

/* The fp16-storage variant (where the device has it) trains the same net
 * from the same weights: its first loss equals REG's to fp16 accuracy, and
 * it overfits the batch as REG does. */
Test(engine_unet, f16_variant_trains_like_reg)
{
    if (!vk_ctx_caps(T_ctx)->fp16_storage) {
        cr_skip_test("%s: no 16-bit storage buffers or f16 shaders", vk_ctx_caps(T_ctx)->name);
    }
    unet_cfg cfg = {.depth = 2,
                    .base = 8,
                    .in_c = 3,
                    .out_c = 3,
                    .norm_groups = 4,
                    .act = ENG_ACT_LEAKY,
                    .slope = 0.1f,
                    .up = ENG_UP_BILINEAR,
                    .loss = ENG_LOSS_MSE,
                    .seed = 1};
    eng_adam opt = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0};
    float first[2] = {0};
    float last[2] = {0};
    const vk_variant vs[2] = {VK_VARIANT_REG, VK_VARIANT_F16};
    for (int vi = 0; vi < 2; vi++) {
        unet *u = NULL;
        rs_error e = {0};
        cr_assert_eq(unet_create(T_ctx, &cfg, 2, 16, 16, vs[vi], &u, &e), RS_OK, "%s",
                     rs_error_text(&e));
        fill_batch(u, 5);
        for (int s = 0; s < 80; s++) {
            T_OK(unet_train_step(u, &opt, &last[vi], &TE));
            if (s == 0) {
                first[vi] = last[vi];
            }
        }
        unet_destroy(u);
    }
    fprintf(stderr, "unet reg mse %.5f -> %.5f, f16 %.5f -> %.5f in 80 steps\n", first[0], last[0],
            first[1], last[1]);
    cr_assert_lt(fabsf(first[1] - first[0]), 5e-3f * first[0], "first loss reg %.6f f16 %.6f",
                 first[0], first[1]);
    cr_assert_lt(last[1], 0.05f * first[1], "f16: loss %.5f -> %.5f", first[1], last[1]);
}

Test(engine_unet, bad_configurations_are_refused)
{
    unet_cfg cfg = {.depth = 3,
                    .base = 4,
                    .in_c = 3,
                    .out_c = 3,
                    .norm_groups = 0,
                    .act = ENG_ACT_RELU,
                    .up = ENG_UP_NEAREST,
                    .loss = ENG_LOSS_L1,
                    .seed = 1};
    unet *u = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, &cfg, 1, 10, 8, VK_VARIANT_AUTO, &u, &e), RS_EINVAL);
    cr_assert(strstr(e.msg, "multiple of 4") != NULL, "%s", e.msg);
    cfg.depth = 0;
    cr_assert_eq(unet_create(T_ctx, &cfg, 1, 8, 8, VK_VARIANT_AUTO, &u, &e), RS_EINVAL);
    cr_assert_null(u);
    unet_destroy(NULL);
}

static float *run_full(unet *u, const float *img, size_t nout)
{
    T_OK(eng_tensor_write(unet_input(u), img, &TE));
    T_OK(unet_forward(u, &TE));
    float *o = malloc(nout * sizeof *o);
    cr_assert_not_null(o);
    T_OK(eng_tensor_read(unet_output(u), o, &TE));
    return o;
}

/* A depth-1 net without norm sees 2 pixels around each output (two 3x3
 * convs), less than overlap/4 = 2 of the dead margin: tiled inference must
 * then equal whole-image inference, seams included. */
Test(engine_unet, tiled_inference_matches_whole_image)
{
    unet_cfg cfg = {.depth = 1,
                    .base = 4,
                    .in_c = 3,
                    .out_c = 2,
                    .norm_groups = 0,
                    .act = ENG_ACT_RELU,
                    .up = ENG_UP_NEAREST,
                    .loss = ENG_LOSS_L1,
                    .seed = 9};
    const int h = 40;
    const int w = 57;
    unet *full = NULL;
    unet *tile = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, &cfg, 1, h, w, VK_VARIANT_AUTO, &full, &e), RS_OK, "%s",
                 rs_error_text(&e));
    cr_assert_eq(unet_create(T_ctx, &cfg, 1, 16, 16, VK_VARIANT_AUTO, &tile, &e), RS_OK, "%s",
                 rs_error_text(&e));
    T_OK(unet_params_copy(tile, full, &TE));
    size_t nin = (size_t)3 * h * w;
    size_t nout = (size_t)2 * h * w;
    float *img = malloc(nin * sizeof *img);
    float *tiled = malloc(nout * sizeof *tiled);
    cr_assert(img != NULL && tiled != NULL);
    for (size_t i = 0; i < nin; i++) {
        img[i] = (float)t_rand();
    }
    float *want = run_full(full, img, nout);
    T_OK(unet_infer_tiled(tile, img, h, w, 8, tiled, &TE));
    double mx = 0.0;
    double er = 0.0;
    for (size_t i = 0; i < nout; i++) {
        mx = fmax(mx, fabs(want[i]));
        er = fmax(er, fabs((double)tiled[i] - want[i]));
    }
    fprintf(stderr, "tol unet_tiled_vs_whole reg %.3g\n", er / mx);
    cr_assert_leq(er / mx, 1e-6, "tiled vs whole: %.3g", er / mx);
    /* the image must be at least a tile; the overlap less than one */
    cr_assert_eq(unet_infer_tiled(tile, img, 8, 8, 4, tiled, &e), RS_EINVAL);
    cr_assert_eq(unet_infer_tiled(tile, img, h, w, 16, tiled, &e), RS_EINVAL);
    cr_assert_eq(unet_infer_tiled(full, img, h, w, 4, tiled, &e), RS_EINVAL);
    free(img);
    free(tiled);
    free(want);
    unet_destroy(full);
    unet_destroy(tile);
}

/* With group norm, tiles see their own statistics, so only the one-tile
 * case can be exact: it must be, bit for bit. */
Test(engine_unet, single_tile_equals_forward)
{
    unet_cfg cfg = {.depth = 3,
                    .base = 4,
                    .in_c = 3,
                    .out_c = 3,
                    .norm_groups = 2,
                    .act = ENG_ACT_SILU,
                    .up = ENG_UP_BILINEAR,
                    .loss = ENG_LOSS_L1,
                    .seed = 10};
    unet *u = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, &cfg, 1, 16, 16, VK_VARIANT_AUTO, &u, &e), RS_OK, "%s",
                 rs_error_text(&e));
    size_t nin = 3 * 16 * 16;
    float img[3 * 16 * 16];
    float tiled[3 * 16 * 16];
    for (size_t i = 0; i < nin; i++) {
        img[i] = (float)t_rand();
    }
    float *want = run_full(u, img, nin);
    T_OK(unet_infer_tiled(u, img, 16, 16, 4, tiled, &TE));
    cr_assert_arr_eq(tiled, want, sizeof tiled);
    free(want);
    unet_destroy(u);
}

static float *read_params(unet *u, size_t *count)
{
    *count = unet_param_floats(u);
    float *all = malloc(*count * sizeof *all);
    cr_assert_not_null(all);
    size_t off = 0;
    for (int p = 0; p < unet_param_count(u); p++) {
        T_OK(eng_tensor_read(unet_param(u, p), all + off, &TE));
        off += eng_tensor_count(unet_param(u, p));
    }
    return all;
}

/* Train 3 steps, checkpoint (with Adam state), train 3 more; a fresh net
 * of another seed loading the checkpoint and training the same 3 steps
 * must end bit-identical. A checkpoint of another shape is refused. */
Test(engine_unet, save_load_continue_equals_uninterrupted)
{
    unet_cfg cfg = {.depth = 2,
                    .base = 8,
                    .in_c = 3,
                    .out_c = 3,
                    .norm_groups = 4,
                    .act = ENG_ACT_SILU,
                    .up = ENG_UP_BILINEAR,
                    .loss = ENG_LOSS_L1,
                    .seed = 21};
    eng_adam opt = {.lr = 1e-2,
                    .beta1 = 0.9,
                    .beta2 = 0.999,
                    .eps = 1e-8,
                    .weight_decay = 1e-3,
                    .decoupled = 1};
    char path[64];
    snprintf(path, sizeof path, "/tmp/rs_engine_ckpt.%d.safetensors", (int)getpid());
    unet *a = NULL;
    unet *b = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, &cfg, 2, 8, 8, VK_VARIANT_AUTO, &a, &e), RS_OK, "%s",
                 rs_error_text(&e));
    for (int s = 0; s < 3; s++) {
        fill_batch(a, 300 + (uint64_t)s);
        T_OK(unet_train_step(a, &opt, NULL, &TE));
    }
    const char *clips[1] = {"xxh3:0123456789abcdef"};
    st_lineage lin = {.task_kind = "removal", .clip_hashes = clips, .nclips = 1, .loss = 0.5};
    T_OK(unet_save(a, path, &lin, true, &TE));
    for (int s = 3; s < 6; s++) {
        fill_batch(a, 300 + (uint64_t)s);
        T_OK(unet_train_step(a, &opt, NULL, &TE));
    }
    cfg.seed = 99;
    cr_assert_eq(unet_create(T_ctx, &cfg, 2, 8, 8, VK_VARIANT_AUTO, &b, &e), RS_OK, "%s",
                 rs_error_text(&e));
    T_OK(unet_load(b, path, &TE));
    cr_assert_eq(unet_steps(b), 3);
    for (int s = 3; s < 6; s++) {
        fill_batch(b, 300 + (uint64_t)s);
        T_OK(unet_train_step(b, &opt, NULL, &TE));
    }
    size_t na;
    size_t nb;
    float *wa = read_params(a, &na);
    float *wb = read_params(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(wa, wb, na * sizeof *wa), 0, "resumed training differs from uninterrupted");
    free(wa);
    free(wb);
    /* another width: the first mismatching tensor is named */
    unet *c = NULL;
    cfg.base = 4;
    cr_assert_eq(unet_create(T_ctx, &cfg, 1, 8, 8, VK_VARIANT_AUTO, &c, &e), RS_OK, "%s",
                 rs_error_text(&e));
    cr_assert_eq(unet_load(c, path, &e), RS_EFORMAT);
    cr_assert(strstr(e.msg, "enc0.0.conv.w") != NULL, "%s", e.msg);
    unet_destroy(c);
    unlink(path);
    unet_destroy(a);
    unet_destroy(b);
}

/* The tensor of u a checkpoint entry names: a parameter, or one of its Adam
 * moments ("<name>.adam_m" / "<name>.adam_v"); NULL if none. */
static eng_tensor *ckpt_tensor(unet *u, const char *name)
{
    for (int p = 0; p < unet_param_count(u); p++) {
        const char *pn = unet_param_name(u, p);
        size_t l = strlen(pn);
        if (strcmp(name, pn) == 0) {
            return unet_param(u, p);
        }
        if (strncmp(name, pn, l) == 0 && strcmp(name + l, ".adam_m") == 0) {
            return unet_param_moment(u, p, 0);
        }
        if (strncmp(name, pn, l) == 0 && strcmp(name + l, ".adam_v") == 0) {
            return unet_param_moment(u, p, 1);
        }
    }
    return NULL;
}

/* A checkpoint written by unet_save read by scripts/safetensors_read.py
 * (json + numpy only): every parameter and moment present once, with
 * PyTorch's shape, F32, and every value equal to the device's bit for bit
 * (the reader prints the float64 widening exactly); the step count in the
 * metadata. */
Test(engine_unet, checkpoint_reads_in_python_to_the_same_values, .timeout = 120)
{
    if (system("/usr/bin/python3 -c 'import json, numpy' >/dev/null 2>&1") != 0) {
        cr_skip_test("/usr/bin/python3 has no numpy (scripts/setup installs python3-numpy)");
    }
    unet_cfg cfg = {.depth = 2,
                    .base = 4,
                    .in_c = 3,
                    .out_c = 2,
                    .norm_groups = 2,
                    .act = ENG_ACT_LEAKY,
                    .slope = 0.1f,
                    .up = ENG_UP_NEAREST,
                    .loss = ENG_LOSS_MSE,
                    .seed = 5};
    eng_adam opt = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    unet *u = NULL;
    rs_error e = {0};
    cr_assert_eq(unet_create(T_ctx, &cfg, 1, 8, 8, VK_VARIANT_AUTO, &u, &e), RS_OK, "%s",
                 rs_error_text(&e));
    for (int s = 0; s < 2; s++) {
        fill_batch(u, 500 + (uint64_t)s);
        T_OK(unet_train_step(u, &opt, NULL, &TE));
    }
    char path[64];
    char outp[64];
    snprintf(path, sizeof path, "/tmp/rs_engine_py.%d.safetensors", (int)getpid());
    snprintf(outp, sizeof outp, "/tmp/rs_engine_py.%d.txt", (int)getpid());
    T_OK(unet_save(u, path, NULL, true, &TE));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/scripts/safetensors_read.py --values %s > %s",
             RS_SOURCE_DIR, path, outp);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    FILE *f = fopen(outp, "r");
    cr_assert_not_null(f);
    int np = unet_param_count(u);
    int *seen = calloc((size_t)np * 3, sizeof *seen);
    cr_assert_not_null(seen);
    char *line = NULL;
    size_t cap = 0;
    eng_tensor *cur = NULL;
    char curname[128] = "";
    int steps_seen = 0;
    size_t values_checked = 0;
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "meta\t" ST_META_STEPS "\t", strlen("meta\t" ST_META_STEPS "\t")) == 0) {
            cr_assert(strcmp(strrchr(line, '\t') + 1, "2") == 0, "%s", line);
            steps_seen = 1;
        } else if (strncmp(line, "tensor\t", 7) == 0) {
            char *name = line + 7;
            char *tab = strchr(name, '\t');
            cr_assert_not_null(tab);
            *tab = '\0';
            snprintf(curname, sizeof curname, "%s", name);
            cur = ckpt_tensor(u, name);
            cr_assert_not_null(cur, "python saw unknown tensor %s", name);
            for (int p = 0; p < np; p++) {
                for (int k = 0; k < 3; k++) {
                    eng_tensor *t = k == 0 ? unet_param(u, p) : unet_param_moment(u, p, k - 1);
                    if (t == cur) {
                        cr_assert_eq(seen[p * 3 + k], 0, "%s twice", name);
                        seen[p * 3 + k] = 1;
                    }
                }
            }
            char *dtype = tab + 1;
            tab = strchr(dtype, '\t');
            *tab = '\0';
            cr_assert_str_eq(dtype, "F32", "%s", name);
            char *shape = tab + 1;
            tab = strchr(shape, '\t');
            *tab = '\0';
            char want[64];
            if (cur->h > 1 || cur->n > 1) {
                snprintf(want, sizeof want, "%d,%d,%d,%d", cur->n, cur->c, cur->h, cur->w);
            } else {
                snprintf(want, sizeof want, "%d", cur->c);
            }
            cr_assert_str_eq(shape, want, "%s shape", name);
        } else if (strncmp(line, "values\t", 7) == 0) {
            cr_assert_not_null(cur);
            size_t n = eng_tensor_count(cur);
            float *dev = malloc(n * sizeof *dev);
            cr_assert_not_null(dev);
            T_OK(eng_tensor_read(cur, dev, &TE));
            char *p = line + 7;
            for (size_t i = 0; i < n; i++) {
                char *end = NULL;
                double v = strtod(p, &end);
                cr_assert(end != p, "%s: %zu values of %zu", curname, i, n);
                cr_assert(memcmp(&(float){(float)v}, &dev[i], sizeof(float)) == 0,
                          "%s[%zu]: python %.9g, device %.9g", curname, i, v, (double)dev[i]);
                p = end;
            }
            values_checked += n;
            free(dev);
            cur = NULL;
        }
    }
    free(line);
    fclose(f);
    for (int p = 0; p < np; p++) {
        for (int k = 0; k < 3; k++) {
            cr_assert(seen[p * 3 + k], "%s (%d) missing from what python read",
                      unet_param_name(u, p), k);
        }
    }
    cr_assert(steps_seen, "no step count in the metadata");
    cr_assert_eq(values_checked, 3 * unet_param_floats(u));
    free(seen);
    unlink(path);
    unlink(outp);
    unet_destroy(u);
}
