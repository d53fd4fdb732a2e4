/*
 * eval.c: `rushes eval removal`, the yardstick for wire/rig removal.
 *
 * Given frames, masks and truth frames (or a clean clip and --synth-wires
 * SEED, which draws moving synthetic wires over it and keeps the clean
 * frames as truth), it runs, on the same frames in the same process:
 *   stage1       Rushes' stage 1 (tasks/removal/propagate.h), its blend
 *   stage1-prop  stage 1's propagated candidates alone
 *   spatial      stage 1's spatial fill alone
 *   median       temporal median of the same pixel in frames +-range where
 *                it is visible (no motion compensation), spatial fill where none
 *   telea, ns    OpenCV cv2.inpaint (TELEA / NS, radius 3), through
 *                /usr/bin/python3 bench/removal_baselines.py (python3-opencv)
 * and prints in-mask PSNR, SSIM, flicker (metrics.h) and seconds for each.
 * Inputs are quantised to 8 bits first (what the baselines read), so every
 * method sees the same pixels. --method rushes adds the full path: the
 * wired frames and masks go into a fresh folder under --media-root (a media
 * root of the running rushesd named by --server), a removal_train job and a
 * removal_infer job depending on it are submitted exactly as `rushes submit
 * removal` does, and the infer outputs are scored like every other row.
 * With RUSHES_EVAL_DUMP=FILE set, every hole pixel's stage 1 confidence,
 * propagated RGB, spatial RGB and truth RGB go to FILE as 10 native floats
 * (for calibrating stage 2).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_eval.h"
#include "clock.h"
#include "output.h"
#include "fill.h"
#include "fs.h"
#include "frame.h"
#include "metrics.h"
#include "propagate.h"
#include "wires.h"

#ifndef RUSHES_BENCH_DIR
#define RUSHES_BENCH_DIR "bench"
#endif

#define EVAL_MAX_FRAMES 100000
#define EVAL_CHUNK 8

const cli_opt_spec cli_eval_opts[] = {
    {"frames", CLI_OPT_VALUE},      {"masks", CLI_OPT_VALUE},  {"truth", CLI_OPT_VALUE},
    {"synth-wires", CLI_OPT_VALUE}, {"range", CLI_OPT_VALUE},  {"max-frames", CLI_OPT_VALUE},
    {"threads", CLI_OPT_VALUE},     {"method", CLI_OPT_VALUE}, {"no-baselines", CLI_OPT_FLAG},
    {"python", CLI_OPT_VALUE},      {"out", CLI_OPT_VALUE},    {"media-root", CLI_OPT_VALUE},
    {"steps", CLI_OPT_VALUE},       {"config", CLI_OPT_VALUE}, {"project", CLI_OPT_VALUE},
    {"keep", CLI_OPT_FLAG},         {NULL, CLI_OPT_FLAG},
};

typedef struct clip {
    uint32_t w;
    uint32_t h;
    uint32_t n;
    char **names; /* frame file names (from --frames) */
    float **rgb;
    float **truth;
    uint8_t **mask;
} clip;

typedef struct score {
    const char *name;
    removal_metrics m;
    double seconds;
    int ran;
    char note[256];
    double train_s; /* rushes only: submit to train job finished */
    double infer_s;
    int64_t steps;
    int64_t model_id;
    int64_t train_job; /* rushes only: the jobs it submitted, for scripts */
    int64_t infer_job;
} score;

enum { M_STAGE1, M_PROP, M_SPATIAL, M_MEDIAN, M_TELEA, M_NS, M_RUSHES, M_COUNT };

/* Print order: the model first, so its row sits above what it must beat. */
static const int print_order[M_COUNT] = {M_RUSHES, M_STAGE1, M_PROP, M_SPATIAL,
                                         M_MEDIAN, M_TELEA,  M_NS};

/* What --method rushes asks of the farm. */
typedef struct rushes_req {
    const char *media_root;
    const char *project;
    const cJSON *config; /* NULL: the task's defaults */
    int64_t steps;
    uint32_t range;
    int keep;           /* keep the folder under the media root */
    uint64_t wire_seed; /* the eval's --synth-wires seed */
} rushes_req;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_image_name(const char *n)
{
    const char *dot = strrchr(n, '.');
    if (!dot || n[0] == '.') {
        return 0;
    }
    const char *ok[] = {".png", ".PNG", ".exr", ".EXR", ".tif", ".tiff", ".TIF", ".dpx", ".DPX"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (strcmp(dot, ok[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static void names_free(char **names, uint32_t n)
{
    if (!names) {
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

/* Image files of dir, sorted by name. */
static rs_err list_dir(const char *dir, char ***out, uint32_t *nout, rs_error *e)
{
    DIR *d = opendir(dir);
    if (!d) {
        return rs_error_set(e, RS_ENOENT, "%s: %s", dir, strerror(errno));
    }
    char **names = NULL;
    uint32_t n = 0;
    uint32_t cap = 0;
    rs_err rc = RS_OK;
    struct dirent *de;
    for (;;) {
        de = readdir(d);
        if (!de) {
            break;
        }
        if (!is_image_name(de->d_name)) {
            continue;
        }
        if (n >= EVAL_MAX_FRAMES) {
            rc = rs_error_set(e, RS_ETOOBIG, "%s: more than %d frames", dir, EVAL_MAX_FRAMES);
            goto out;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (!nn) {
                rc = rs_error_set(e, RS_ENOMEM, "%s: no memory", dir);
                goto out;
            }
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            rc = rs_error_set(e, RS_ENOMEM, "%s: no memory", dir);
            goto out;
        }
        n++;
    }
    if (n == 0) {
        rc = rs_error_set(e, RS_ENOENT, "%s: no image files", dir);
        goto out;
    }
    qsort(names, n, sizeof(*names), name_cmp);
out:
    closedir(d);
    if (rc != RS_OK) {
        names_free(names, n);
        return rc;
    }
    *out = names;
    *nout = n;
    return RS_OK;
}

static float sample_norm(const media_frame *f, size_t i)
{
    switch (f->sample) {
    case MEDIA_SAMPLE_U8:
        return (float)f->data[i] / 255.0f;
    case MEDIA_SAMPLE_U16:
        return (float)((const uint16_t *)(const void *)f->data)[i] / 65535.0f;
    case MEDIA_SAMPLE_F16:
        return media_half_to_float(((const uint16_t *)(const void *)f->data)[i]);
    case MEDIA_SAMPLE_F32:
        return ((const float *)(const void *)f->data)[i];
    }
    return 0.0f;
}

/* Reads dir/name as RGB float (grey replicated, alpha dropped) or, with
   as_mask, as a 0/255 mask from its first channel. A size of 0 x 0 takes the
   frame's size; otherwise the size must match. */
static rs_err load_image(const char *dir, const char *name, int as_mask, uint32_t *w, uint32_t *h,
                         void **out, rs_error *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    media_frame *f = NULL;
    rs_err rc = media_image_read(path, NULL, &f, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (*w == 0) {
        *w = f->width;
        *h = f->height;
    }
    if (f->width != *w || f->height != *h) {
        rc = rs_error_set(e, RS_EINVAL, "%s: %ux%u, expected %ux%u like the first frame", path,
                          f->width, f->height, *w, *h);
        media_frame_destroy(f);
        return rc;
    }
    size_t np = (size_t)f->width * f->height;
    uint32_t ch = f->channels;
    if (as_mask) {
        uint8_t *m = malloc(np);
        if (!m) {
            media_frame_destroy(f);
            return rs_error_set(e, RS_ENOMEM, "%s: no memory", path);
        }
        for (size_t i = 0; i < np; i++) {
            m[i] = sample_norm(f, i * ch) >= 0.5f ? 255 : 0;
        }
        *out = m;
    } else {
        float *p = malloc(np * 3 * sizeof(float));
        if (!p) {
            media_frame_destroy(f);
            return rs_error_set(e, RS_ENOMEM, "%s: no memory", path);
        }
        for (size_t i = 0; i < np; i++) {
            for (uint32_t k = 0; k < 3; k++) {
                p[i * 3 + k] = sample_norm(f, i * ch + (ch >= 3 ? k : 0));
            }
        }
        *out = p;
    }
    media_frame_destroy(f);
    return RS_OK;
}

static void clip_free(clip *c)
{
    for (uint32_t t = 0; t < c->n; t++) {
        if (c->truth && c->truth[t] != (c->rgb ? c->rgb[t] : NULL)) {
            free(c->truth[t]);
        }
        if (c->rgb) {
            free(c->rgb[t]);
        }
        if (c->mask) {
            free(c->mask[t]);
        }
    }
    free(c->rgb);
    free(c->truth);
    free(c->mask);
    names_free(c->names, c->n);
    memset(c, 0, sizeof(*c));
}

static float q8(float v)
{
    v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    return roundf(v * 255.0f) / 255.0f;
}

static rs_err clip_load(const cli_args *a, uint32_t max_frames, int synth, uint64_t seed, clip *c,
                        rs_error *e)
{
    const char *fdir = cli_args_get(a, "frames");
    const char *mdir = cli_args_get(a, "masks");
    const char *tdir = cli_args_get(a, "truth");
    char **mnames = NULL;
    char **tnames = NULL;
    uint32_t mn = 0;
    uint32_t tn = 0;
    uint32_t n = 0;
    rs_err rc = list_dir(fdir, &c->names, &n, e);
    if (rc != RS_OK) {
        return rc;
    }
    c->n = n;
    if (!synth) {
        rc = list_dir(mdir, &mnames, &mn, e);
        if (rc == RS_OK) {
            rc = list_dir(tdir, &tnames, &tn, e);
        }
        if (rc != RS_OK) {
            goto out;
        }
        if (mn < n || tn < n) {
            rc =
                rs_error_set(e, RS_EINVAL, "%u frames but %u masks and %u truth frames", n, mn, tn);
            goto out;
        }
    }
    uint32_t use = max_frames && max_frames < n ? max_frames : n;
    c->rgb = calloc(n, sizeof(float *));
    c->truth = calloc(n, sizeof(float *));
    c->mask = calloc(n, sizeof(uint8_t *));
    if (!c->rgb || !c->truth || !c->mask) {
        rc = rs_error_set(e, RS_ENOMEM, "no memory for %u frames", n);
        goto out;
    }
    for (uint32_t t = 0; t < use; t++) {
        void *p = NULL;
        rc = load_image(fdir, c->names[t], 0, &c->w, &c->h, &p, e);
        if (rc != RS_OK) {
            goto out;
        }
        c->rgb[t] = p;
        if (!synth) {
            rc = load_image(mdir, mnames[t], 1, &c->w, &c->h, &p, e);
            if (rc != RS_OK) {
                goto out;
            }
            c->mask[t] = p;
            rc = load_image(tdir, tnames[t], 0, &c->w, &c->h, &p, e);
            if (rc != RS_OK) {
                goto out;
            }
            c->truth[t] = p;
        }
    }
    /* Frames past --max-frames are dropped (names kept for freeing). */
    for (uint32_t t = use; t < n; t++) {
        free(c->names[t]);
        c->names[t] = NULL;
    }
    c->n = use;
    size_t np = (size_t)c->w * c->h;
    if (synth) {
        /* The clean frames become the truth; wires go over a copy. */
        float **alpha = calloc(use, sizeof(float *));
        float colour[3];
        if (!alpha) {
            rc = rs_error_set(e, RS_ENOMEM, "no memory for wires");
            goto out;
        }
        for (uint32_t t = 0; t < use && rc == RS_OK; t++) {
            c->truth[t] = c->rgb[t];
            c->rgb[t] = malloc(np * 3 * sizeof(float));
            c->mask[t] = malloc(np);
            alpha[t] = malloc(np * sizeof(float));
            if (!c->rgb[t] || !c->mask[t] || !alpha[t]) {
                rc = rs_error_set(e, RS_ENOMEM, "no memory for wires");
            }
        }
        if (rc == RS_OK) {
            rc = removal_wires_draw(c->w, c->h, use, seed, NULL, alpha, c->mask, colour, e);
        }
        for (uint32_t t = 0; t < use && rc == RS_OK; t++) {
            memcpy(c->rgb[t], c->truth[t], np * 3 * sizeof(float));
            removal_wires_composite(c->rgb[t], alpha[t], c->w, c->h, colour);
        }
        for (uint32_t t = 0; t < use; t++) {
            free(alpha[t]);
        }
        free(alpha);
        if (rc != RS_OK) {
            goto out;
        }
    }
    for (uint32_t t = 0; t < use; t++) {
        for (size_t i = 0; i < np * 3; i++) {
            c->rgb[t][i] = q8(c->rgb[t][i]);
        }
    }
out:
    names_free(mnames, mn);
    names_free(tnames, tn);
    return rc;
}

/* Temporal median of pixel i over frames within range where it is visible. */
static void median_frame(const clip *c, uint32_t t, uint32_t range, const float *spatial,
                         float *out)
{
    size_t np = (size_t)c->w * c->h;
    float vals[3][256];
    memcpy(out, c->rgb[t], np * 3 * sizeof(float));
    uint32_t t0 = t > range ? t - range : 0;
    uint32_t t1 = t + range < c->n ? t + range : c->n - 1;
    for (size_t i = 0; i < np; i++) {
        if (c->mask[t][i] < 128) {
            continue;
        }
        int n = 0;
        for (uint32_t s = t0; s <= t1 && n < 256; s++) {
            if (s == t || c->mask[s][i] >= 128) {
                continue;
            }
            for (int k = 0; k < 3; k++) {
                vals[k][n] = c->rgb[s][i * 3 + (size_t)k];
            }
            n++;
        }
        for (int k = 0; k < 3; k++) {
            if (n == 0) {
                out[i * 3 + (size_t)k] = spatial[i * 3 + (size_t)k];
                continue;
            }
            /* Insertion sort: n is small (2 * range at most). */
            for (int x = 1; x < n; x++) {
                float v = vals[k][x];
                int y = x - 1;
                while (y >= 0 && vals[k][y] > v) {
                    vals[k][y + 1] = vals[k][y];
                    y--;
                }
                vals[k][y + 1] = v;
            }
            out[i * 3 + (size_t)k] =
                n % 2 ? vals[k][n / 2] : 0.5f * (vals[k][n / 2 - 1] + vals[k][n / 2]);
        }
    }
}

typedef struct chunk_ctx {
    removal_stage1_state *s;
    uint32_t first;
    uint32_t count;
    uint32_t next;
    removal_fill_out *outs;
    pthread_mutex_t mu;
    rs_err rc;
    rs_error err;
} chunk_ctx;

static void *chunk_run(void *arg)
{
    chunk_ctx *k = arg;
    for (;;) {
        pthread_mutex_lock(&k->mu);
        uint32_t i = k->next++;
        pthread_mutex_unlock(&k->mu);
        if (i >= k->count) {
            return NULL;
        }
        rs_error e;
        rs_err rc = removal_stage1_frame(k->s, k->first + i, &k->outs[i], &e);
        if (rc != RS_OK) {
            pthread_mutex_lock(&k->mu);
            k->rc = rc;
            k->err = e;
            pthread_mutex_unlock(&k->mu);
        }
    }
}

static rs_err write_png(const char *dir, const char *name, const float *rgb, const uint8_t *mask,
                        uint32_t w, uint32_t h, rs_error *e)
{
    media_frame *f = NULL;
    rs_err rc = media_frame_create(w, h, rgb ? 3 : 1, MEDIA_SAMPLE_U8, &f, e);
    if (rc != RS_OK) {
        return rc;
    }
    size_t np = (size_t)w * h;
    for (size_t i = 0; i < np; i++) {
        if (rgb) {
            for (int k = 0; k < 3; k++) {
                f->data[i * 3 + (size_t)k] = (uint8_t)lroundf(q8(rgb[i * 3 + (size_t)k]) * 255.0f);
            }
        } else {
            f->data[i] = mask[i];
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    media_write_opts o = {.format = MEDIA_FORMAT_PNG};
    rc = media_image_write(path, f, &o, e);
    media_frame_destroy(f);
    return rc;
}

/* Stage 1 (blend, propagated, spatial) and the temporal median, scored as
   they come so only EVAL_CHUNK frames of each output live at once. */
static rs_err run_stage1(const clip *c, uint32_t range, uint32_t threads, const char *outdir,
                         score *sc, rs_error *e)
{
    size_t np = (size_t)c->w * c->h;
    size_t fb = np * 3 * sizeof(float);
    removal_stage1_state *s = NULL;
    removal_fill_out outs[EVAL_CHUNK];
    float *prev[4] = {NULL, NULL, NULL, NULL};
    float *med = malloc(fb);
    float *buf = calloc((size_t)EVAL_CHUNK * 3 + 4, fb);
    float *conf_buf = calloc((size_t)EVAL_CHUNK * np, sizeof(float));
    FILE *dump = getenv("RUSHES_EVAL_DUMP") ? fopen(getenv("RUSHES_EVAL_DUMP"), "wb") : NULL;
    rs_err rc = RS_OK;
    double med_s = 0.0;
    if (!med || !buf) {
        rc = rs_error_set(e, RS_ENOMEM, "eval: no memory for outputs");
        goto out;
    }
    for (int k = 0; k < 4; k++) {
        prev[k] = buf + ((size_t)EVAL_CHUNK * 3 + (size_t)k) * np * 3;
    }
    for (uint32_t i = 0; i < EVAL_CHUNK; i++) {
        outs[i].blend = buf + ((size_t)i * 3) * np * 3;
        outs[i].propagated = buf + ((size_t)i * 3 + 1) * np * 3;
        outs[i].spatial = buf + ((size_t)i * 3 + 2) * np * 3;
        outs[i].confidence = conf_buf + (size_t)i * np;
    }
    removal_clip rc_clip = {.width = c->w,
                            .height = c->h,
                            .nframes = c->n,
                            .rgb = (const float *const *)c->rgb,
                            .mask = (const uint8_t *const *)c->mask};
    removal_stage1_opts o = removal_stage1_opts_default();
    o.range = range;
    o.threads = threads;
    int64_t t0 = rs_clock_mono_ms();
    double stage1_ms = 0.0;
    rc = removal_stage1_create(&rc_clip, &o, &s, e);
    if (rc != RS_OK) {
        goto out;
    }
    stage1_ms += (double)(rs_clock_mono_ms() - t0);
    double motion_ms = stage1_ms;
    for (uint32_t first = 0; first < c->n; first += EVAL_CHUNK) {
        uint32_t cnt = c->n - first < EVAL_CHUNK ? c->n - first : EVAL_CHUNK;
        chunk_ctx k = {.s = s, .first = first, .count = cnt, .outs = outs, .rc = RS_OK};
        pthread_mutex_init(&k.mu, NULL);
        pthread_t th[16];
        uint32_t started = 0;
        int64_t c0 = rs_clock_mono_ms();
        for (uint32_t i = 1; i < threads && i < 16; i++) {
            if (pthread_create(&th[started], NULL, chunk_run, &k) == 0) {
                started++;
            }
        }
        chunk_run(&k);
        for (uint32_t i = 0; i < started; i++) {
            pthread_join(th[i], NULL);
        }
        pthread_mutex_destroy(&k.mu);
        stage1_ms += (double)(rs_clock_mono_ms() - c0);
        if (k.rc != RS_OK) {
            if (e) {
                *e = k.err;
            }
            rc = k.rc;
            goto out;
        }
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t t = first + i;
            int64_t m0 = rs_clock_mono_ms();
            median_frame(c, t, range, outs[i].spatial, med);
            med_s += (double)(rs_clock_mono_ms() - m0) / 1000.0;
            const float *res[4] = {outs[i].blend, outs[i].propagated, outs[i].spatial, med};
            if (dump) {
                for (size_t p = 0; p < np; p++) {
                    if (c->mask[t][p] < 128) {
                        continue;
                    }
                    float rec[10];
                    rec[0] = outs[i].confidence[p];
                    for (size_t ch = 0; ch < 3; ch++) {
                        rec[1 + ch] = outs[i].propagated[p * 3 + ch];
                        rec[4 + ch] = outs[i].spatial[p * 3 + ch];
                        rec[7 + ch] = c->truth[t][p * 3 + ch];
                    }
                    fwrite(rec, sizeof rec, 1, dump);
                }
            }
            for (int m = 0; m < 4; m++) {
                removal_metrics_add(&sc[m].m, res[m], c->truth[t], c->mask[t], t ? prev[m] : NULL,
                                    t ? c->truth[t - 1] : NULL, t ? c->mask[t - 1] : NULL, c->w,
                                    c->h);
                memcpy(prev[m], res[m], fb);
            }
            if (outdir) {
                char name[512];
                snprintf(name, sizeof name, "stage1/%s", c->names[t]);
                rc = write_png(outdir, name, outs[i].blend, NULL, c->w, c->h, e);
                if (rc != RS_OK) {
                    goto out;
                }
            }
        }
    }
    for (int m = 0; m < 3; m++) {
        sc[m].seconds = stage1_ms / 1000.0;
        sc[m].ran = 1;
    }
    snprintf(sc[M_STAGE1].note, sizeof sc[M_STAGE1].note,
             "motion (features + homographies) %.2f s of it", motion_ms / 1000.0);
    snprintf(sc[M_PROP].note, sizeof sc[M_PROP].note, "same run as stage1");
    snprintf(sc[M_SPATIAL].note, sizeof sc[M_SPATIAL].note, "same run as stage1");
    /* The median's time adds the spatial fill it falls back on: measured
       inside stage 1, so only its own pass is counted here. */
    sc[M_MEDIAN].seconds = med_s;
    sc[M_MEDIAN].ran = 1;
out:
    removal_stage1_destroy(s);
    free(med);
    free(buf);
    free(conf_buf);
    if (dump) {
        fclose(dump);
    }
    return rc;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *de;
    for (;;) {
        de = readdir(d);
        if (!de) {
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            rm_tree(p);
        } else {
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* Telea and NS through bench/removal_baselines.py on the same 8-bit frames. */
static rs_err run_baselines(const clip *c, const char *python, score *sc, rs_error *e)
{
    char tmpl[] = "/tmp/rushes-eval-XXXXXX";
    char *tmp = mkdtemp(tmpl);
    if (!tmp) {
        return rs_error_set(e, RS_EIO, "eval: mkdtemp: %s", strerror(errno));
    }
    rs_err rc = RS_OK;
    char fdir[4096];
    char mdir[4096];
    char cmd[16384];
    FILE *p = NULL;
    float *prev[2] = {NULL, NULL};
    snprintf(fdir, sizeof fdir, "%s/frames", tmp);
    snprintf(mdir, sizeof mdir, "%s/masks", tmp);
    if (mkdir(fdir, 0700) != 0 || mkdir(mdir, 0700) != 0) {
        rc = rs_error_set(e, RS_EIO, "eval: mkdir %s: %s", fdir, strerror(errno));
        goto out;
    }
    for (uint32_t t = 0; t < c->n; t++) {
        char name[64];
        snprintf(name, sizeof name, "%06u.png", t);
        rc = write_png(fdir, name, c->rgb[t], NULL, c->w, c->h, e);
        if (rc == RS_OK) {
            rc = write_png(mdir, name, NULL, c->mask[t], c->w, c->h, e);
        }
        if (rc != RS_OK) {
            goto out;
        }
    }
    /* Paths are ours (mkdtemp) or the build's; quote them anyway. */
    snprintf(cmd, sizeof cmd,
             "'%s' '%s/removal_baselines.py' --frames '%s' --masks '%s' --out '%s'", python,
             RUSHES_BENCH_DIR, fdir, mdir, tmp);
    p = popen(cmd, "r");
    if (!p) {
        rc = rs_error_set(e, RS_EIO, "eval: cannot run %s", cmd);
        goto out;
    }
    char line[4096] = "";
    size_t got = fread(line, 1, sizeof line - 1, p);
    line[got] = '\0';
    int st = pclose(p);
    p = NULL;
    if (st != 0) {
        rc = rs_error_set(e, RS_EIO, "eval: %s failed (status %d)", cmd, st);
        goto out;
    }
    cJSON *j = cJSON_Parse(line);
    const char *keys[2] = {"telea", "ns"};
    for (int m = 0; m < 2; m++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, keys[m]);
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(o, "seconds");
        sc[M_TELEA + m].seconds = cJSON_IsNumber(secs) ? secs->valuedouble : NAN;
    }
    cJSON_Delete(j);
    for (int m = 0; m < 2; m++) {
        char odir[4096];
        snprintf(odir, sizeof odir, "%s/%s", tmp, keys[m]);
        for (uint32_t t = 0; t < c->n; t++) {
            char name[64];
            snprintf(name, sizeof name, "%06u.png", t);
            uint32_t w = c->w;
            uint32_t h = c->h;
            void *img = NULL;
            rc = load_image(odir, name, 0, &w, &h, &img, e);
            if (rc != RS_OK) {
                free(prev[0]);
                goto out;
            }
            /* The baselines write 8-bit: outside the mask they must equal
               our quantised input, so in-mask scoring is like for like. */
            removal_metrics_add(&sc[M_TELEA + m].m, img, c->truth[t], c->mask[t],
                                t ? prev[0] : NULL, t ? c->truth[t - 1] : NULL,
                                t ? c->mask[t - 1] : NULL, c->w, c->h);
            free(prev[0]);
            prev[0] = img;
        }
        free(prev[0]);
        prev[0] = NULL;
        sc[M_TELEA + m].ran = 1;
        snprintf(sc[M_TELEA + m].note, sizeof sc[M_TELEA + m].note,
                 "cv2.inpaint via bench/removal_baselines.py; time excludes file I/O");
    }
out:
    if (p) {
        pclose(p);
    }
    rm_tree(tmp);
    return rc;
}

/* POSTs one job body; *id is the new job's id. */
static rs_err post_job(const cli_ctx *c, const cJSON *body, int64_t *id, rs_error *e)
{
    char *text = cJSON_PrintUnformatted(body);
    if (!text) {
        return rs_error_set(e, RS_ENOMEM, "eval: no memory for a job body");
    }
    cJSON *doc = NULL;
    rs_err rc = cli_api_call(c, "POST", "/api/v1/jobs", NULL, 0, text, &doc, NULL, e);
    free(text);
    if (rc != RS_OK) {
        return rc;
    }
    *id = (int64_t)cli_json_num(cJSON_GetObjectItemCaseSensitive(doc, "job"), "id", 0);
    cJSON_Delete(doc);
    if (*id <= 0) {
        return rs_error_set(e, RS_EPROTO, "eval: the reply to POST /api/v1/jobs has no job id");
    }
    return RS_OK;
}

static int job_finished(const char *st)
{
    return st && (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 ||
                  strcmp(st, "cancelled") == 0);
}

/* Polls job id until it is finished; *job is its last object (caller
   deletes). A job that did not succeed is an error naming its state. */
static rs_err wait_job(const cli_ctx *c, int64_t id, cJSON **job, rs_error *e)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/jobs/%lld", (long long)id);
    for (;;) {
        cJSON *doc = NULL;
        rs_err rc = cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, NULL, e);
        if (rc != RS_OK) {
            return rc;
        }
        cJSON *j = cJSON_DetachItemFromObjectCaseSensitive(doc, "job");
        cJSON_Delete(doc);
        const char *st = cli_json_str(j, "state");
        if (job_finished(st)) {
            if (strcmp(st, "succeeded") != 0) {
                const char *msg = cli_json_str(j, "error");
                rc = rs_error_set(e, RS_EIO, "eval: job %lld %s%s%s", (long long)id, st,
                                  msg ? ": " : "", msg ? msg : "");
                cJSON_Delete(j);
                return rc;
            }
            *job = j;
            return RS_OK;
        }
        cJSON_Delete(j);
        usleep(500 * 1000);
    }
}

/* The full path through the queue: writes the (wired, 8-bit) frames and
   masks under the media root, submits removal_train + removal_infer like
   `rushes submit removal`, waits, and scores the infer job's outputs. */
static rs_err run_rushes(const cli_ctx *c, const clip *cl, const rushes_req *rq, score *sc,
                         rs_error *e)
{
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/eval-removal-XXXXXX", rq->media_root);
    char *root = mkdtemp(tmpl);
    if (!root) {
        return rs_error_set(e, RS_EIO, "eval: mkdtemp under --media-root %s: %s", rq->media_root,
                            strerror(errno));
    }
    char fdir[4200];
    char mdir[4200];
    char odir[4200];
    snprintf(fdir, sizeof fdir, "%s/frames", root);
    snprintf(mdir, sizeof mdir, "%s/masks", root);
    snprintf(odir, sizeof odir, "%s/out", root);
    rs_err rc = RS_OK;
    cJSON *train = NULL;
    cJSON *tjob = NULL;
    cJSON *ijob = NULL;
    float *prev = NULL;
    if (mkdir(fdir, 0755) != 0 || mkdir(mdir, 0755) != 0) {
        rc = rs_error_set(e, RS_EIO, "eval: mkdir %s: %s", fdir, strerror(errno));
        goto out;
    }
    for (uint32_t t = 0; t < cl->n; t++) {
        char name[64];
        snprintf(name, sizeof name, "f.%06u.png", t);
        rc = write_png(fdir, name, cl->rgb[t], NULL, cl->w, cl->h, e);
        if (rc == RS_OK) {
            snprintf(name, sizeof name, "m.%06u.png", t);
            rc = write_png(mdir, name, NULL, cl->mask[t], cl->w, cl->h, e);
        }
        if (rc != RS_OK) {
            goto out;
        }
    }
    train = cJSON_CreateObject();
    cJSON *tp = cJSON_AddObjectToObject(train, "params");
    if (!train || !tp) {
        rc = rs_error_set(e, RS_ENOMEM, "eval: no memory for the job bodies");
        goto out;
    }
    cJSON_AddStringToObject(train, "project", rq->project);
    cJSON_AddStringToObject(train, "kind", "removal_train");
    cJSON_AddStringToObject(tp, "frames", fdir);
    cJSON_AddStringToObject(tp, "masks", mdir);
    cJSON_AddNumberToObject(tp, "range", rq->range);
    cJSON *cfg = rq->config ? cJSON_Duplicate(rq->config, true) : cJSON_CreateObject();
    if (cfg && !cJSON_GetObjectItemCaseSensitive(cfg, "seed")) {
        /* Training draws its own wires; with the eval's seed they would lie
           exactly under the eval's wires, so no known pixel could be used. */
        cJSON_AddNumberToObject(cfg, "seed", (double)((rq->wire_seed + 7919) % 2147483647u));
    }
    cJSON_AddItemToObject(tp, "config", cfg);
    cJSON *infer = cJSON_Duplicate(train, true);
    if (!infer) {
        rc = rs_error_set(e, RS_ENOMEM, "eval: no memory for the job bodies");
        goto out;
    }
    if (rq->steps > 0) {
        cJSON_AddNumberToObject(tp, "steps", (double)rq->steps);
    }
    int64_t tid = 0;
    int64_t iid = 0;
    int64_t t0 = rs_clock_mono_ms();
    rc = post_job(c, train, &tid, e);
    if (rc == RS_OK) {
        cJSON *ip = cJSON_GetObjectItemCaseSensitive(infer, "params");
        cJSON_ReplaceItemInObjectCaseSensitive(infer, "kind", cJSON_CreateString("removal_infer"));
        cJSON_AddStringToObject(ip, "output", odir);
        cJSON_AddNumberToObject(ip, "train_job", (double)tid);
        cJSON *deps = cJSON_AddArrayToObject(infer, "depends_on");
        cJSON_AddItemToArray(deps, cJSON_CreateNumber((double)tid));
        rc = post_job(c, infer, &iid, e);
    }
    cJSON_Delete(infer);
    if (rc == RS_OK) {
        rc = wait_job(c, tid, &tjob, e);
    }
    int64_t t1 = rs_clock_mono_ms();
    if (rc == RS_OK) {
        rc = wait_job(c, iid, &ijob, e);
    }
    int64_t t2 = rs_clock_mono_ms();
    if (rc != RS_OK) {
        goto out;
    }
    const cJSON *model =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tjob, "result"), "model");
    sc->steps = (int64_t)cli_json_num(model, "steps", 0);
    sc->model_id =
        (int64_t)cli_json_num(cJSON_GetObjectItemCaseSensitive(tjob, "result"), "model_id", 0);
    sc->train_job = tid;
    sc->infer_job = iid;
    sc->train_s = (double)(t1 - t0) / 1000.0;
    sc->infer_s = (double)(t2 - t1) / 1000.0;
    sc->seconds = (double)(t2 - t0) / 1000.0;
    const char *out_dir = cli_json_str(cJSON_GetObjectItemCaseSensitive(ijob, "result"), "output");
    if (!out_dir) {
        out_dir = odir;
    }
    for (uint32_t t = 0; t < cl->n; t++) {
        char name[64];
        snprintf(name, sizeof name, "f.%06u.png", t);
        uint32_t w = cl->w;
        uint32_t h = cl->h;
        void *img = NULL;
        rc = load_image(out_dir, name, 0, &w, &h, &img, e);
        if (rc != RS_OK) {
            goto out;
        }
        removal_metrics_add(&sc->m, img, cl->truth[t], cl->mask[t], t ? prev : NULL,
                            t ? cl->truth[t - 1] : NULL, t ? cl->mask[t - 1] : NULL, cl->w, cl->h);
        free(prev);
        prev = img;
    }
    sc->ran = 1;
    snprintf(sc->note, sizeof sc->note,
             "train job %lld (%lld steps, %.1f s) + infer job %lld (%.1f s), model %lld",
             (long long)tid, (long long)sc->steps, sc->train_s, (long long)iid, sc->infer_s,
             (long long)sc->model_id);
out:
    free(prev);
    cJSON_Delete(train);
    cJSON_Delete(tjob);
    cJSON_Delete(ijob);
    if (!rq->keep) {
        rm_tree(root);
    }
    return rc;
}

static void print_results(const cli_ctx *c, const cli_args *a, const clip *cl, int synth,
                          uint64_t seed, uint32_t range, const score *sc)
{
    size_t holes = 0;
    size_t np = (size_t)cl->w * cl->h;
    for (uint32_t t = 0; t < cl->n; t++) {
        for (size_t i = 0; i < np; i++) {
            holes += cl->mask[t][i] >= 128;
        }
    }
    double frac = (double)holes / ((double)np * cl->n);
    if (c->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "task", "removal");
        cJSON_AddStringToObject(j, "frames_dir", cli_args_get(a, "frames"));
        cJSON_AddNumberToObject(j, "frames", cl->n);
        cJSON_AddNumberToObject(j, "width", cl->w);
        cJSON_AddNumberToObject(j, "height", cl->h);
        cJSON_AddNumberToObject(j, "range", range);
        cJSON_AddNumberToObject(j, "hole_fraction", frac);
        if (synth) {
            cJSON_AddNumberToObject(j, "synth_wires_seed", (double)seed);
        }
        cJSON *ms = cJSON_AddArrayToObject(j, "methods");
        for (int pi = 0; pi < M_COUNT; pi++) {
            int m = print_order[pi];
            if (!sc[m].ran) {
                continue;
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", sc[m].name);
            double v[4] = {removal_metrics_psnr(&sc[m].m), removal_metrics_ssim(&sc[m].m),
                           removal_metrics_flicker(&sc[m].m), sc[m].seconds};
            const char *k[4] = {"psnr", "ssim", "flicker", "seconds"};
            for (int i = 0; i < 4; i++) {
                if (isnan(v[i])) {
                    cJSON_AddNullToObject(o, k[i]);
                } else {
                    cJSON_AddNumberToObject(o, k[i], v[i]);
                }
            }
            if (sc[m].note[0]) {
                cJSON_AddStringToObject(o, "note", sc[m].note);
            }
            if (m == M_RUSHES) {
                cJSON_AddNumberToObject(o, "train_seconds", sc[m].train_s);
                cJSON_AddNumberToObject(o, "infer_seconds", sc[m].infer_s);
                cJSON_AddNumberToObject(o, "steps", (double)sc[m].steps);
                cJSON_AddNumberToObject(o, "model_id", (double)sc[m].model_id);
                cJSON_AddNumberToObject(o, "train_job", (double)sc[m].train_job);
                cJSON_AddNumberToObject(o, "infer_job", (double)sc[m].infer_job);
            }
            cJSON_AddItemToArray(ms, o);
        }
        char *s = cJSON_PrintUnformatted(j);
        if (s) {
            fprintf(c->out, "%s\n", s);
        }
        free(s);
        cJSON_Delete(j);
        return;
    }
    fprintf(c->out, "removal eval: %s, %u frames %ux%u, range %u, hole %.2f%% of pixels%s\n",
            cli_args_get(a, "frames"), cl->n, cl->w, cl->h, range, frac * 100.0,
            synth ? " (synthetic wires)" : "");
    fprintf(c->out, "%-12s %9s %7s %9s %9s\n", "method", "PSNR dB", "SSIM", "flicker", "time s");
    for (int pi = 0; pi < M_COUNT; pi++) {
        int m = print_order[pi];
        if (!sc[m].ran) {
            continue;
        }
        fprintf(c->out, "%-12s %9.2f %7.4f %9.5f %9.2f\n", sc[m].name,
                removal_metrics_psnr(&sc[m].m), removal_metrics_ssim(&sc[m].m),
                removal_metrics_flicker(&sc[m].m), sc[m].seconds);
    }
    if (sc[M_RUSHES].ran) {
        fprintf(c->out, "rushes: %s\n", sc[M_RUSHES].note);
    }
}

int cli_cmd_eval(cli_ctx *c, const cli_args *a)
{
    rs_error e;
    rs_error_clear(&e);
    if (a->npos < 1 || strcmp(a->pos[0], "removal") != 0) {
        fprintf(c->err,
                "rushes: eval: only 'removal' can be evaluated (see: rushes eval --help)\n");
        return CLI_EXIT_USAGE;
    }
    const char *method = cli_args_get(a, "method");
    if (method && strcmp(method, "stage1") != 0 && strcmp(method, "rushes") != 0) {
        fprintf(c->err, "rushes: eval: --method must be stage1 or rushes\n");
        return CLI_EXIT_USAGE;
    }
    int with_rushes = method && strcmp(method, "rushes") == 0;
    rushes_req rq = {.media_root = cli_args_get(a, "media-root"),
                     .project = cli_args_get(a, "project") ? cli_args_get(a, "project") : "eval",
                     .keep = cli_args_has(a, "keep")};
    cJSON *rq_config = NULL;
    if (with_rushes && !rq.media_root) {
        fprintf(c->err, "rushes: eval: --method rushes needs --media-root DIR, a media root of "
                        "the rushesd at --server (the frames and masks are written there)\n");
        return CLI_EXIT_USAGE;
    }
    const char *sw = cli_args_get(a, "synth-wires");
    int synth = sw != NULL;
    int64_t seed = 0;
    int64_t range = 20;
    int64_t maxf = 0;
    int64_t threads = 2;
    if (!cli_args_get(a, "frames")) {
        fprintf(c->err, "rushes: eval: --frames DIR is required\n");
        return CLI_EXIT_USAGE;
    }
    if (!synth && (!cli_args_get(a, "masks") || !cli_args_get(a, "truth"))) {
        fprintf(c->err, "rushes: eval: give --masks DIR and --truth DIR, or --synth-wires SEED\n");
        return CLI_EXIT_USAGE;
    }
    if (synth && (cli_args_get(a, "masks") || cli_args_get(a, "truth"))) {
        fprintf(c->err, "rushes: eval: --synth-wires makes its own masks and truth; drop "
                        "--masks/--truth\n");
        return CLI_EXIT_USAGE;
    }
    if ((synth && cli_parse_int("--synth-wires", sw, 0, INT64_MAX, &seed, &e) != RS_OK) ||
        (cli_args_get(a, "range") &&
         cli_parse_int("--range", cli_args_get(a, "range"), 1, 200, &range, &e) != RS_OK) ||
        (cli_args_get(a, "max-frames") &&
         cli_parse_int("--max-frames", cli_args_get(a, "max-frames"), 1, EVAL_MAX_FRAMES, &maxf,
                       &e) != RS_OK) ||
        (cli_args_get(a, "threads") &&
         cli_parse_int("--threads", cli_args_get(a, "threads"), 1, 16, &threads, &e) != RS_OK)) {
        fprintf(c->err, "rushes: eval: %s\n", rs_error_text(&e));
        return CLI_EXIT_USAGE;
    }
    if (with_rushes) {
        int64_t steps = 0;
        const char *sv = cli_args_get(a, "steps");
        const char *cv = cli_args_get(a, "config");
        if (sv && cli_parse_int("--steps", sv, 1, 10000000, &steps, &e) != RS_OK) {
            fprintf(c->err, "rushes: eval: %s\n", rs_error_text(&e));
            return CLI_EXIT_USAGE;
        }
        if (cv) {
            rq_config = cJSON_Parse(cv);
            if (!cJSON_IsObject(rq_config)) {
                cJSON_Delete(rq_config);
                fprintf(c->err, "rushes: eval: --config must be a JSON object\n");
                return CLI_EXIT_USAGE;
            }
        }
        rq.steps = steps;
        rq.range = (uint32_t)range;
        rq.config = rq_config;
        rq.wire_seed = (uint64_t)seed;
        /* Fail before minutes of stage 1 if the farm is not there. */
        cJSON *h = NULL;
        if (cli_api_call(c, "GET", "/healthz", NULL, 0, NULL, &h, NULL, &e) != RS_OK) {
            cJSON_Delete(rq_config);
            fprintf(c->err, "rushes: eval: --method rushes needs a running rushesd: %s\n",
                    rs_error_text(&e));
            return CLI_EXIT_FAIL;
        }
        cJSON_Delete(h);
    }
    const char *outdir = cli_args_get(a, "out");
    if (outdir) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/stage1", outdir);
        if (rs_fs_mkdirs(sub, &e) != RS_OK) {
            fprintf(c->err, "rushes: eval: %s\n", rs_error_text(&e));
            return CLI_EXIT_FAIL;
        }
    }
    clip cl;
    memset(&cl, 0, sizeof cl);
    score sc[M_COUNT];
    memset(sc, 0, sizeof sc);
    const char *names[M_COUNT] = {"stage1", "stage1-prop", "spatial", "median",
                                  "telea",  "ns",          "rushes"};
    for (int m = 0; m < M_COUNT; m++) {
        sc[m].name = names[m];
    }
    int rcode = CLI_EXIT_OK;
    rs_err rc = clip_load(a, (uint32_t)maxf, synth, (uint64_t)seed, &cl, &e);
    if (rc == RS_OK) {
        rc = run_stage1(&cl, (uint32_t)range, (uint32_t)threads, outdir, sc, &e);
    }
    if (rc == RS_OK && !cli_args_has(a, "no-baselines")) {
        const char *py = cli_args_get(a, "python");
        rc = run_baselines(&cl, py ? py : "/usr/bin/python3", sc, &e);
    }
    if (rc == RS_OK && with_rushes) {
        rc = run_rushes(c, &cl, &rq, &sc[M_RUSHES], &e);
    }
    if (rc != RS_OK) {
        fprintf(c->err, "rushes: eval: %s\n", rs_error_text(&e));
        rcode = CLI_EXIT_FAIL;
    } else {
        print_results(c, a, &cl, synth, (uint64_t)seed, (uint32_t)range, sc);
    }
    clip_free(&cl);
    cJSON_Delete(rq_config);
    return rcode;
}
