/*
 * engine_bench.c: one run printing the engine's figures with their ratios:
 *  (a) the device's practical fp32 peak, measured here by a register-tiled
 *      SGEMM of the bench's own, and each convolution kernel (forward,
 *      backward-data, backward-weights; 3x3 and 1x1) as a fraction of it;
 *  (b) U-Net training steps/s and inference megapixels/s (depth 4, base 32,
 *      7 -> 3 channels, 256x256, batch 4 with --full; smaller by default);
 *  (c) a small demo configuration's steps/s;
 *  (d) peak resident memory (getrusage ru_maxrss) of tiled inference
 *      (unet_infer_tiled, 256x256 tiles, overlap 32) on one 3840x2160 frame,
 *      against the 2 GiB target. It runs in a child process (this binary
 *      re-executed with --rss) so the figure is that of the inference alone,
 *      not of the kernels measured before it; wait4 returns the child's peak.
 * PyTorch-CPU figures for the same networks come from bench/engine_torch.py.
 * Usage: engine_bench [--variant reg|smem|f16] [--full] [--kernels] [--rss big|demo]
 *   --full     (b) at 256x256 (about a minute a step on lavapipe), else 128x128,
 *              and (d) with the (b) network instead of the (c) one
 *   --kernels  (a) only
 *   --rss NET  (d) only, in this process, with the (b) ("big") or (c) ("demo")
 *              network; prints the peak RSS of the whole process
 * With RUSHES_VK_PROFILE=1 it also prints each U-Net step's time per kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"
#include "unet.h"
#include "vk.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what, const rs_error *e)
{
    fprintf(stderr, "engine_bench: %s: %s\n", what, rs_error_text(e));
    return 1;
}

static void fill(eng_tensor *t, float scale)
{
    size_t n = eng_tensor_count(t);
    float *v = malloc(n * sizeof *v);
    if (v == NULL) {
        return;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = scale * ((float)(s >> 40) / (float)(1 << 24) - 0.5f);
    }
    rs_error e;
    eng_tensor_write(t, v, &e);
    free(v);
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Best seconds of reps submits of a recorded command. lavapipe runs in this
 * process, so with other work sharing the cores the least CPU time spent
 * (divided over the cores it used) is the steadier figure; it is what the
 * ratios use. Wall time is kept for the throughput lines.
 */
static double best_of(eng_cmd *cmd, int reps, double *wall, rs_error *e)
{
    double best = 1e30;
    double bestw = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        double c0 = cpu_s();
        if (eng_cmd_submit(cmd, e) != RS_OK) {
            return -1.0;
        }
        double dc = cpu_s() - c0;
        double dt = now_s() - t0;
        if (dc < best) {
            best = dc;
        }
        if (dt < bestw) {
            bestw = dt;
        }
    }
    if (wall != NULL) {
        *wall = bestw;
    }
    return best;
}

static double sgemm_peak(vk_ctx *ctx, rs_error *e)
{
    const int m = 1024;
    const int n = 1024;
    const int k = 1024;
    eng_tensor a;
    eng_tensor b;
    eng_tensor c;
    double gf = -1.0;
    if (eng_tensor_alloc(ctx, 1, 1, m, k, &a, e) != RS_OK ||
        eng_tensor_alloc(ctx, 1, 1, k, n, &b, e) != RS_OK ||
        eng_tensor_alloc(ctx, 1, 1, m, n, &c, e) != RS_OK) {
        return -1.0;
    }
    fill(&a, 1.0f);
    fill(&b, 1.0f);
    eng_cmd *cmd = NULL;
    vk_pipe *p = NULL;
    int32_t pc[3] = {m, n, k};
    vk_buf *bufs[3] = {a.buf, b.buf, c.buf};
    if (eng_cmd_create(ctx, VK_VARIANT_REG, &cmd, e) == RS_OK && eng_cmd_begin(cmd, e) == RS_OK &&
        vk_pipe_get(ctx, "bench_sgemm", NULL, 0, 3, sizeof pc, &p, e) == RS_OK &&
        vk_seq_dispatch(eng_cmd_seq(cmd), p, bufs, 3, 1u << 2, pc, (uint32_t)(n / 128),
                        (uint32_t)(m / 128), 1, e) == RS_OK &&
        eng_cmd_end(cmd, e) == RS_OK) {
        double t = best_of(cmd, 3, NULL, e);
        if (t > 0) {
            gf = 2.0 * m * n * k / t * 1e-9;
        }
    }
    eng_cmd_destroy(cmd);
    eng_tensor_free(&a);
    eng_tensor_free(&b);
    eng_tensor_free(&c);
    return gf;
}

/* GFLOP/s of one conv kernel (mode 0 fwd, 1 bwd-data, 2 bwd-weights). */
static double conv_rate(vk_ctx *ctx, vk_variant v, int mode, int n, int ci, int hw, int co, int k,
                        rs_error *e)
{
    eng_conv cv = {.k = k, .stride = 1, .pad = k / 2};
    eng_tensor x = {0};
    eng_tensor w = {0};
    eng_tensor y = {0};
    eng_cmd *cmd = NULL;
    double gf = -1.0;
    if (eng_tensor_alloc(ctx, n, ci, hw, hw, &x, e) != RS_OK ||
        eng_tensor_alloc(ctx, co, ci, k, k, &w, e) != RS_OK ||
        eng_tensor_alloc(ctx, n, co, hw, hw, &y, e) != RS_OK ||
        eng_cmd_create(ctx, v, &cmd, e) != RS_OK || eng_cmd_begin(cmd, e) != RS_OK) {
        goto out;
    }
    fill(&x, 1.0f);
    fill(&w, 0.1f);
    fill(&y, 1.0f);
    rs_err rc;
    if (mode == 0) {
        rc = eng_conv2d_fwd(cmd, &cv, &x, &w, NULL, &y, e);
    } else if (mode == 1) {
        rc = eng_conv2d_bwd_data(cmd, &cv, &y, &w, &x, false, e);
    } else {
        rc = eng_conv2d_bwd_weight(cmd, &cv, &x, &y, &w, false, e);
    }
    if (rc != RS_OK || eng_cmd_end(cmd, e) != RS_OK) {
        goto out;
    }
    double t = best_of(cmd, 3, NULL, e);
    if (t > 0) {
        gf = 2.0 * n * co * hw * hw * (double)ci * k * k / t * 1e-9;
    }
out:
    eng_cmd_destroy(cmd);
    eng_tensor_free(&x);
    eng_tensor_free(&w);
    eng_tensor_free(&y);
    return gf;
}

/* Training steps/s and inference MP/s of one U-Net configuration. */
static int unet_rate(vk_ctx *ctx, vk_variant v, const unet_cfg *cfg, int n, int hw, int steps,
                     double *sps, double *mps, rs_error *e)
{
    unet *u = NULL;
    if (unet_create(ctx, cfg, n, hw, hw, v, &u, e) != RS_OK) {
        return -1;
    }
    fill(unet_input(u), 2.0f);
    fill(unet_target(u), 2.0f);
    eng_adam opt = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0};
    int rc = -1;
    if (unet_train_step(u, &opt, NULL, e) != RS_OK) { /* warm-up: pipelines, first touch */
        goto out;
    }
    double t0 = now_s();
    for (int s = 0; s < steps; s++) {
        if (unet_train_step(u, &opt, NULL, e) != RS_OK) {
            goto out;
        }
    }
    *sps = steps / (now_s() - t0);
    vk_seq_profile_print(unet_train_seq(u), stdout);
    if (unet_forward(u, e) != RS_OK) {
        goto out;
    }
    t0 = now_s();
    for (int s = 0; s < steps; s++) {
        if (unet_forward(u, e) != RS_OK) {
            goto out;
        }
    }
    *mps = (double)steps * n * hw * hw / (now_s() - t0) * 1e-6;
    rc = 0;
out:
    unet_destroy(u);
    return rc;
}

#define RSS_W 3840
#define RSS_H 2160
#define RSS_TILE 256
#define RSS_OVERLAP 32
#define RSS_TARGET_KIB (2.0 * 1024.0 * 1024.0)

/* (d) in this process: one 3840x2160 frame through unet_infer_tiled. */
static int rss_run(vk_variant v, const unet_cfg *cfg, const char *label)
{
    rs_error e = {0};
    vk_ctx *ctx = NULL;
    vk_ctx_opts o = {.device_index = -1, .validation = 0, .variant = v};
    if (vk_ctx_create(&o, &ctx, &e) != RS_OK) {
        return fail("vulkan", &e);
    }
    size_t plane = (size_t)RSS_W * RSS_H;
    float *img = malloc(plane * (size_t)cfg->in_c * sizeof *img);
    float *out = malloc(plane * (size_t)cfg->out_c * sizeof *out);
    unet *u = NULL;
    int rc = 1;
    if (img == NULL || out == NULL) {
        fprintf(stderr, "engine_bench: no memory for a %dx%d frame\n", RSS_W, RSS_H);
        goto out;
    }
    uint64_t s = 777;
    for (size_t i = 0; i < plane * (size_t)cfg->in_c; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        img[i] = (float)(s >> 40) / (float)(1 << 24);
    }
    if (unet_create(ctx, cfg, 1, RSS_TILE, RSS_TILE, v, &u, &e) != RS_OK) {
        rc = fail("unet", &e);
        goto out;
    }
    double t0 = now_s();
    if (unet_infer_tiled(u, img, RSS_H, RSS_W, RSS_OVERLAP, out, &e) != RS_OK) {
        rc = fail("tiled inference", &e);
        goto out;
    }
    double dt = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double gib = (double)ru.ru_maxrss / (1024.0 * 1024.0);
    printf("(d) tiled inference, %s net, %dx%d frame, %d^2 tiles overlap %d: %.1f s, "
           "peak RSS %.3f GiB = %.2fx the 2 GiB target (%s)\n",
           label, RSS_W, RSS_H, RSS_TILE, RSS_OVERLAP, dt, gib,
           (double)ru.ru_maxrss / RSS_TARGET_KIB,
           (double)ru.ru_maxrss <= RSS_TARGET_KIB ? "holds" : "MISSED");
    rc = 0;
out:
    unet_destroy(u);
    free(img);
    free(out);
    vk_ctx_destroy(ctx);
    return rc;
}

/* (d) in a child: this binary re-executed with --rss, so the peak is the
 * inference's own; the child prints its line. */
static int rss_child(vk_variant v, const char *net)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("engine_bench: fork");
        return 1;
    }
    if (pid == 0) {
        const char *var = v == VK_VARIANT_SMEM ? "smem" : v == VK_VARIANT_F16 ? "f16" : "reg";
        execl("/proc/self/exe", "engine_bench", "--variant", var, "--rss", net, (char *)NULL);
        perror("engine_bench: exec /proc/self/exe");
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "engine_bench: the (d) child failed\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    vk_variant v = VK_VARIANT_AUTO;
    int full = 0;
    int kernels_only = 0;
    const char *rss_net = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc) {
            i++;
            v = strcmp(argv[i], "smem") == 0  ? VK_VARIANT_SMEM
                : strcmp(argv[i], "f16") == 0 ? VK_VARIANT_F16
                                              : VK_VARIANT_REG;
        } else if (strcmp(argv[i], "--full") == 0) {
            full = 1;
        } else if (strcmp(argv[i], "--kernels") == 0) {
            kernels_only = 1;
        } else if (strcmp(argv[i], "--rss") == 0 && i + 1 < argc &&
                   (strcmp(argv[i + 1], "big") == 0 || strcmp(argv[i + 1], "demo") == 0)) {
            rss_net = argv[++i];
        } else {
            fprintf(stderr, "usage: engine_bench [--variant reg|smem|f16] [--full] [--kernels] "
                            "[--rss big|demo]\n");
            return 2;
        }
    }
    unet_cfg big = {.depth = 4,
                    .base = 32,
                    .in_c = 7,
                    .out_c = 3,
                    .norm_groups = 8,
                    .act = ENG_ACT_RELU,
                    .up = ENG_UP_NEAREST,
                    .loss = ENG_LOSS_L1,
                    .seed = 1};
    unet_cfg demo = {.depth = 3,
                     .base = 16,
                     .in_c = 7,
                     .out_c = 3,
                     .norm_groups = 8,
                     .act = ENG_ACT_RELU,
                     .up = ENG_UP_NEAREST,
                     .loss = ENG_LOSS_L1,
                     .seed = 1};
    if (rss_net != NULL) {
        int big_net = strcmp(rss_net, "big") == 0;
        return rss_run(v, big_net ? &big : &demo,
                       big_net ? "depth 4 base 32 7->3" : "demo depth 3 base 16 7->3");
    }
    rs_error e = {0};
    vk_ctx *ctx = NULL;
    vk_ctx_opts o = {.device_index = -1, .validation = 0, .variant = v};
    if (vk_ctx_create(&o, &ctx, &e) != RS_OK) {
        return fail("vulkan", &e);
    }
    const vk_caps *caps = vk_ctx_caps(ctx);
    v = caps->variant;
    printf("device: %s, variant %s\n", caps->name,
           v == VK_VARIANT_SMEM  ? "smem"
           : v == VK_VARIANT_F16 ? "f16"
                                 : "reg");
    double peak = sgemm_peak(ctx, &e);
    if (peak <= 0) {
        return fail("sgemm", &e);
    }
    printf("(a) practical fp32 peak (register-tiled SGEMM 1024^3): %.2f GFLOP per CPU-second\n",
           peak);
    static const char *modes[3] = {"fwd", "bwd-data", "bwd-weights"};
    const int shapes[3][5] = {{4, 32, 128, 32, 3}, {4, 128, 32, 128, 3}, {4, 64, 64, 64, 1}};
    for (int s = 0; s < 3; s++) {
        for (int m = 0; m < 3; m++) {
            const int *sh = shapes[s];
            double gf = conv_rate(ctx, v, m, sh[0], sh[1], sh[2], sh[3], sh[4], &e);
            if (gf <= 0) {
                return fail("conv", &e);
            }
            printf("    conv %dx%d %-11s n%d %d->%d %dx%d: %6.2f GFLOP per CPU-s = %.2fx peak\n",
                   sh[4], sh[4], modes[m], sh[0], sh[1], sh[3], sh[2], sh[2], gf, gf / peak);
        }
    }
    if (kernels_only) {
        vk_ctx_destroy(ctx);
        return 0;
    }
    int bhw = full ? 256 : 128;
    double sps = 0;
    double mps = 0;
    if (unet_rate(ctx, v, &big, 4, bhw, 1, &sps, &mps, &e) != 0) {
        return fail("unet", &e);
    }
    printf(
        "(b) U-Net depth 4 base 32 7->3, %dx%d batch 4: %.4f train steps/s, %.3f MP/s inference\n",
        bhw, bhw, sps, mps);
    if (unet_rate(ctx, v, &demo, 4, 64, 5, &sps, &mps, &e) != 0) {
        return fail("demo unet", &e);
    }
    printf("(c) demo U-Net depth 3 base 16 7->3, 64x64 batch 4: %.3f train steps/s, %.3f MP/s "
           "inference\n",
           sps, mps);
    vk_ctx_destroy(ctx);
    return rss_child(v, full ? "big" : "demo");
}
