/*
 * run.c: the worker side of the removal kinds (removal.h): training the
 * mini-model on synthetic wire holes over known pixels, and inference that
 * changes only pixels inside the feathered real mask. Frames are loaded as
 * interleaved 0..1 floats (propagate.h's layout); the U-Net sees 14 planes:
 * holed frame (3), mask (1), propagated (3), confidence (1), spatial (3),
 * stage-1 blend (3), and predicts a residual on the blend (final = blend +
 * output inside the hole). Its head starts at zero, so an untrained model is
 * stage 1 exactly and training only has to learn propagation's errors. Models
 * whose lineage config lacks "residual" (older ones) see the first 11 planes
 * and predict RGB directly.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "frame.h"
#include "fs.h"
#include "hash.h"
#include "ledger.h"
#include "propagate.h"
#include "removal.h"
#include "unet.h"
#include "unet_ckpt.h"
#include "vk.h"
#include "wires.h"

#define IN_C 14 /* the most planes a model sees */

typedef struct clip_data {
    uint32_t w, h, n;
    float **rgb;
    uint8_t **mask;
    media_frame **src; /* only for inference */
} clip_data;

static void clip_free(clip_data *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        free(c->rgb != NULL ? c->rgb[i] : NULL);
        free(c->mask != NULL ? c->mask[i] : NULL);
        media_frame_destroy(c->src != NULL ? c->src[i] : NULL);
    }
    free(c->rgb);
    free(c->mask);
    free(c->src);
    memset(c, 0, sizeof *c);
}

static float sample_at(const media_frame *f, size_t i)
{
    switch (f->sample) {
    case MEDIA_SAMPLE_U8:
        return f->data[i] / 255.0f;
    case MEDIA_SAMPLE_U16:
        return ((const uint16_t *)(const void *)f->data)[i] / 65535.0f;
    case MEDIA_SAMPLE_F16:
        return media_half_to_float(((const uint16_t *)(const void *)f->data)[i]);
    case MEDIA_SAMPLE_F32:
        return ((const float *)(const void *)f->data)[i];
    }
    return 0.0f;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s != NULL ? s + 1 : p;
}

/* Loads frames [first, first+count) of the task's lists. keep_src keeps the
 * decoded source frames (inference writes from them). */
static rs_err clip_load(const cJSON *tp, uint32_t first, uint32_t count, bool keep_src,
                        clip_data *c, rs_error *e)
{
    memset(c, 0, sizeof *c);
    const cJSON *frames = cJSON_GetObjectItemCaseSensitive(tp, "frames");
    const cJSON *masks = cJSON_GetObjectItemCaseSensitive(tp, "masks");
    c->rgb = calloc(count, sizeof *c->rgb);
    c->mask = calloc(count, sizeof *c->mask);
    c->src = calloc(count, sizeof *c->src);
    if (c->rgb == NULL || c->mask == NULL || c->src == NULL) {
        free(c->rgb);
        free(c->mask);
        free(c->src);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    c->n = count;
    rs_err rc = RS_OK;
    for (uint32_t i = 0; i < count && rc == RS_OK; i++) {
        const cJSON *fp = cJSON_GetArrayItem(frames, (int)(first + i));
        const cJSON *mp = cJSON_GetArrayItem(masks, (int)(first + i));
        if (!cJSON_IsString(fp) || !cJSON_IsString(mp)) {
            rc = rs_error_set(e, RS_EINVAL, "task params: frame %u has no path or no mask",
                              first + i);
            break;
        }
        media_frame *f = NULL, *m = NULL;
        rc = media_image_read(fp->valuestring, NULL, &f, e);
        if (rc == RS_OK) {
            rc = media_image_read(mp->valuestring, NULL, &m, e);
        }
        if (rc == RS_OK && i == 0) {
            c->w = f->width;
            c->h = f->height;
        }
        if (rc == RS_OK && (f->width != c->w || f->height != c->h)) {
            rc = rs_error_set(e, RS_EINVAL, "%s: frame is %ux%u, the first frame is %ux%u",
                              base_name(fp->valuestring), f->width, f->height, c->w, c->h);
        }
        if (rc == RS_OK && (m->width != f->width || m->height != f->height)) {
            rc = rs_error_set(e, RS_EINVAL, "%s: mask is %ux%u but frame %s is %ux%u",
                              base_name(mp->valuestring), m->width, m->height,
                              base_name(fp->valuestring), f->width, f->height);
        }
        size_t np = (size_t)c->w * c->h;
        if (rc == RS_OK) {
            c->rgb[i] = malloc(np * 3 * sizeof(float));
            c->mask[i] = malloc(np);
            if (c->rgb[i] == NULL || c->mask[i] == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "out of memory");
            }
        }
        if (rc == RS_OK) {
            size_t hole = 0;
            for (size_t p = 0; p < np; p++) {
                for (uint32_t ch = 0; ch < 3; ch++) {
                    uint32_t sc = f->channels >= 3 ? ch : 0;
                    float v = sample_at(f, p * f->channels + sc);
                    c->rgb[i][p * 3 + ch] = v;
                }
                float mv = sample_at(m, p * m->channels);
                c->mask[i][p] = mv >= 0.5f ? 255 : 0;
                hole += mv >= 0.5f ? 1 : 0;
            }
            if (hole == np) {
                rc = rs_error_set(e, RS_EINVAL,
                                  "%s: the mask covers the whole frame %s; nothing is left to "
                                  "propagate from or learn on, refused",
                                  base_name(mp->valuestring), base_name(fp->valuestring));
            }
        }
        if (rc == RS_OK && keep_src) {
            c->src[i] = f;
            f = NULL;
        }
        media_frame_destroy(f);
        media_frame_destroy(m);
    }
    if (rc != RS_OK) {
        clip_free(c);
    }
    return rc;
}

static rs_err unet_cfg_from(const cJSON *cfg, unet_cfg *u)
{
    memset(u, 0, sizeof *u);
    u->depth = (int)jnum(cfg, "depth", 3);
    u->base = (int)jnum(cfg, "base", 16);
    u->in_c = jnum(cfg, "residual", 0) != 0 ? IN_C : 11;
    u->out_c = 3;
    u->norm_groups = 0;
    u->act = ENG_ACT_LEAKY;
    u->slope = 0.1f;
    u->up = ENG_UP_BILINEAR;
    u->loss = ENG_LOSS_MASKED_L1;
    u->seed = (uint64_t)jnum(cfg, "seed", 1);
    return RS_OK;
}

/* The input planes (CHW) of one frame from its stage-1 outputs; the blend
 * planes (11..13) only when blend is not NULL (residual models). */
static void build_input(const float *rgb, const uint8_t *mask, const float *prop, const float *conf,
                        const float *spat, const float *blend, size_t np, float *chw)
{
    for (size_t p = 0; p < np; p++) {
        float m = mask[p] >= 128 ? 1.0f : 0.0f;
        for (int c = 0; c < 3; c++) {
            chw[c * np + p] = rgb[p * 3 + c] * (1.0f - m);
            chw[(4 + c) * np + p] = prop[p * 3 + c];
            chw[(8 + c) * np + p] = spat[p * 3 + c];
            if (blend != NULL) {
                chw[(11 + c) * np + p] = blend[p * 3 + c];
            }
        }
        chw[3 * np + p] = m;
        chw[7 * np + p] = conf[p];
    }
}

static rs_err stage1_all(const clip_data *c, const uint8_t *const *holes, uint32_t range,
                         float **prop, float **conf, float **spat, float **blend, rs_error *e)
{
    removal_clip rc_clip = {
        .width = c->w,
        .height = c->h,
        .nframes = c->n,
        .rgb = (const float *const *)c->rgb,
        .mask = holes,
    };
    removal_stage1_opts o = removal_stage1_opts_default();
    o.range = range;
    removal_fill_out *outs = calloc(c->n, sizeof *outs);
    if (outs == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < c->n; i++) {
        outs[i].propagated = prop[i];
        outs[i].confidence = conf[i];
        outs[i].spatial = spat[i];
        outs[i].blend = blend[i];
    }
    rs_err rc = removal_stage1(&rc_clip, &o, outs, e);
    free(outs);
    return rc;
}

static rs_err model_cfg(const char *path, unet_cfg *u, rs_error *e);

/* Zeroes the head (last conv's weights and bias): a residual model then
 * starts as stage 1's blend exactly. */
static rs_err head_zero(unet *u, rs_error *e)
{
    rs_err rc = RS_OK;
    for (int i = 0; i < unet_param_count(u) && rc == RS_OK; i++) {
        if (strncmp(unet_param_name(u, i), "head.", 5) != 0) {
            continue;
        }
        eng_tensor *t = unet_param(u, i);
        float *z = calloc(eng_tensor_count(t), sizeof *z);
        if (z == NULL) {
            return rs_error_set(e, RS_ENOMEM, "out of memory");
        }
        rc = eng_tensor_write(t, z, e);
        free(z);
    }
    return rc;
}

static float **alloc_planes(uint32_t n, size_t each)
{
    float **p = calloc(n, sizeof *p);
    for (uint32_t i = 0; p != NULL && i < n; i++) {
        p[i] = malloc(each * sizeof(float));
        if (p[i] == NULL) {
            for (uint32_t j = 0; j < i; j++) {
                free(p[j]);
            }
            free(p);
            return NULL;
        }
    }
    return p;
}

static void free_planes(float **p, uint32_t n)
{
    for (uint32_t i = 0; p != NULL && i < n; i++) {
        free(p[i]);
    }
    free(p);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static rs_err hash_hex_file(const char *path, char hex[RS_HASH_HEX_LEN], rs_error *e)
{
    rs_file_hash h;
    rs_err rc = rs_hash_file(path, false, &h, e);
    if (rc == RS_OK) {
        rs_hash_hex(h.xxh3, hex);
    }
    return rc;
}

/* ---- train -------------------------------------------------------------- */

rs_err removal_train_run(const cJSON *tp, const task_io *io, cJSON **result, rs_error *e)
{
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(tp, "config");
    const char *work = jstr(tp, "work");
    const cJSON *frames = cJSON_GetObjectItemCaseSensitive(tp, "frames");
    long steps = (long)jnum(tp, "steps", 200);
    uint32_t range = (uint32_t)jnum(tp, "range", 20);
    int n = cJSON_GetArraySize(frames);
    if (work == NULL || n <= 0 || cfg == NULL) {
        return rs_error_set(e, RS_EINVAL, "task params: need frames, masks, work and config");
    }
    clip_data c;
    rs_err rc = clip_load(tp, 0, (uint32_t)n, false, &c, e);
    if (rc != RS_OK) {
        return rc;
    }
    size_t np = (size_t)c.w * c.h;
    vk_ctx *ctx = NULL;
    unet *u = NULL;
    uint8_t **holes = calloc(c.n, sizeof *holes);
    uint8_t **wire = calloc(c.n, sizeof *wire);
    float **prop = alloc_planes(c.n, np * 3);
    float **spat = alloc_planes(c.n, np * 3);
    float **conf = alloc_planes(c.n, np);
    float **blend = alloc_planes(c.n, np * 3);
    float *inputs = malloc(np * IN_C * sizeof(float) * c.n);
    /* New models are residual on the blend; the lineage's config says so. */
    cJSON *mcfg = cJSON_Duplicate(cfg, true);
    if (mcfg != NULL && cJSON_GetObjectItemCaseSensitive(mcfg, "residual") == NULL) {
        /* Fine-tuning keeps the starting model's kind (older ones are direct). */
        unet_cfg fc = {.in_c = IN_C};
        const char *from0 = jstr(tp, "from_checkpoint");
        if (from0 != NULL && model_cfg(from0, &fc, e) != RS_OK) {
            rs_error_clear(e); /* unet_load below names the problem */
            fc.in_c = IN_C;
        }
        cJSON_AddNumberToObject(mcfg, "residual", fc.in_c == IN_C ? 1 : 0);
    }
    uint32_t *wire_px = NULL;
    size_t nwire = 0;
    float *bin = NULL, *btg = NULL, *bmk = NULL;
    cJSON *res = NULL;
    if (holes == NULL || wire == NULL || prop == NULL || spat == NULL || conf == NULL ||
        blend == NULL || inputs == NULL || mcfg == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < c.n; i++) {
        holes[i] = malloc(np);
        wire[i] = malloc(np);
        if (holes[i] == NULL || wire[i] == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "out of memory");
            goto out;
        }
    }
    /* Synthetic wires over known pixels; holes = wire | real mask, so stage 1
     * never propagates from under the real rig. */
    removal_wires_opts wo = removal_wires_opts_default();
    wo.count = (uint32_t)jnum(cfg, "wires", 2);
    uint64_t seed = (uint64_t)jnum(cfg, "seed", 1);
    rc = removal_wires_draw(c.w, c.h, c.n, seed, &wo, NULL, (uint8_t *const *)wire, NULL, e);
    if (rc != RS_OK) {
        goto out;
    }
    for (uint32_t i = 0; i < c.n; i++) {
        for (size_t p = 0; p < np; p++) {
            bool real = c.mask[i][p] >= 128;
            bool w = wire[i][p] >= 128;
            holes[i][p] = real || w ? 255 : 0;
            wire[i][p] = w && !real ? 255 : 0;
            nwire += w && !real ? 1 : 0;
        }
    }
    if (nwire == 0) {
        rc = rs_error_set(e, RS_EINVAL,
                          "no synthetic wire pixel falls outside the real masks: the masks "
                          "leave too little known footage to train on");
        goto out;
    }
    removal_logf(io, "stage 1 on %u frames %ux%u (range %u)", c.n, c.w, c.h, range);
    rc = stage1_all(&c, (const uint8_t *const *)holes, range, prop, conf, spat, blend, e);
    if (rc != RS_OK) {
        goto out;
    }
    wire_px = malloc(nwire * 2 * sizeof *wire_px);
    if (wire_px == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    unet_cfg ucfg;
    unet_cfg_from(mcfg, &ucfg);
    bool residual = ucfg.in_c == IN_C;
    int in_c = ucfg.in_c;
    size_t k = 0;
    for (uint32_t i = 0; i < c.n; i++) {
        build_input(c.rgb[i], holes[i], prop[i], conf[i], spat[i], residual ? blend[i] : NULL, np,
                    inputs + (size_t)i * np * (size_t)in_c);
        for (size_t p = 0; p < np; p++) {
            if (wire[i][p] != 0) {
                wire_px[k * 2] = i;
                wire_px[k * 2 + 1] = (uint32_t)p;
                k++;
            }
        }
    }
    /* Network. */
    int mult = 1 << (ucfg.depth - 1);
    int patch = (int)jnum(cfg, "patch", 48);
    int maxp = (int)(c.w < c.h ? c.w : c.h);
    patch = patch < maxp ? patch : maxp;
    patch -= patch % mult;
    int batch = (int)jnum(cfg, "batch", 4);
    if (patch < mult) {
        rc = rs_error_set(e, RS_EINVAL, "frames of %ux%u are too small for a depth-%d network", c.w,
                          c.h, ucfg.depth);
        goto out;
    }
    rc = vk_ctx_create(NULL, &ctx, e);
    if (rc == RS_OK) {
        rc = unet_create(ctx, &ucfg, batch, patch, patch, VK_VARIANT_AUTO, &u, e);
    }
    if (rc == RS_OK && residual) {
        rc = head_zero(u, e);
    }
    if (rc != RS_OK) {
        goto out;
    }
    char ckpt[PATH_MAX], final_path[PATH_MAX];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", work);
    snprintf(final_path, sizeof final_path, "%s/model.safetensors", work);
    rc = rs_fs_mkdirs(work, e);
    if (rc != RS_OK) {
        goto out;
    }
    long start = 0;
    struct stat st;
    const char *from = jstr(tp, "from_checkpoint");
    if (stat(ckpt, &st) == 0) {
        rc = unet_load(u, ckpt, e);
        if (rc != RS_OK) {
            goto out;
        }
        start = unet_steps(u);
        removal_logf(io, "resuming from checkpoint %s at step %ld", ckpt, start);
    } else if (from != NULL) {
        rc = unet_load(u, from, e);
        if (rc != RS_OK) {
            goto out;
        }
        unet_steps_set(u, 0);
        removal_logf(io, "starting from model %s", from);
    }
    /* Lineage: frame and mask hashes, config. */
    cJSON *fh = cJSON_CreateArray();
    cJSON *mh = cJSON_CreateArray();
    const cJSON *masks = cJSON_GetObjectItemCaseSensitive(tp, "masks");
    for (int i = 0; i < n && rc == RS_OK; i++) {
        char hx[RS_HASH_HEX_LEN];
        rc = hash_hex_file(cJSON_GetArrayItem(frames, i)->valuestring, hx, e);
        if (rc == RS_OK) {
            cJSON_AddItemToArray(fh, cJSON_CreateString(hx));
            rc = hash_hex_file(cJSON_GetArrayItem(masks, i)->valuestring, hx, e);
        }
        if (rc == RS_OK) {
            cJSON_AddItemToArray(mh, cJSON_CreateString(hx));
        }
    }
    res = cJSON_CreateObject();
    cJSON_AddItemToObject(res, "trained_on", fh);
    cJSON_AddItemToObject(res, "masks", mh);
    cJSON_AddItemToObject(res, "config", cJSON_Duplicate(mcfg, true));
    if (rc != RS_OK) {
        goto out;
    }
    char *cfg_text = cJSON_PrintUnformatted(mcfg);
    const char **clip_hashes = calloc((size_t)n, sizeof *clip_hashes);
    for (int i = 0; clip_hashes != NULL && i < n; i++) {
        clip_hashes[i] = cJSON_GetArrayItem(fh, i)->valuestring;
    }
    char parent[32] = "";
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tp, "from"))) {
        snprintf(parent, sizeof parent, "%lld", (long long)jnum(tp, "from", 0));
        cJSON_AddNumberToObject(res, "parent", jnum(tp, "from", 0));
    }
    st_lineage lin = {.task_kind = "removal",
                      .clip_hashes = clip_hashes,
                      .nclips = clip_hashes != NULL ? (size_t)n : 0,
                      .parent = parent,
                      .config_json = cfg_text};
    eng_adam opt = {.lr = jnum(cfg, "lr", 2e-3),
                    .beta1 = 0.9,
                    .beta2 = 0.999,
                    .eps = 1e-8,
                    .weight_decay = 0.0,
                    .decoupled = 0};
    long ckpt_every = (long)jnum(cfg, "ckpt_every", 25);
    const char *stop_env = getenv(REMOVAL_STOP_AT_ENV);
    long stop_at = stop_env != NULL ? strtol(stop_env, NULL, 10) : -1;
    size_t pn = (size_t)patch * patch;
    bin = malloc((size_t)batch * (size_t)in_c * pn * sizeof(float));
    btg = malloc((size_t)batch * 3 * pn * sizeof(float));
    bmk = malloc((size_t)batch * pn * sizeof(float));
    if (bin == NULL || btg == NULL || bmk == NULL || cfg_text == NULL || clip_hashes == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    float loss = 0.0f;
    double t0 = now_s();
    double last_report = -1.0;
    for (long s = start; s < steps && rc == RS_OK; s++) {
        /* Crops centred near a random wire pixel, so every crop has loss. */
        uint64_t rs = seed * 1000003ull + (uint64_t)s;
        for (int b = 0; b < batch; b++) {
            size_t pick = (size_t)(splitmix(&rs) % nwire);
            uint32_t fi = wire_px[pick * 2];
            uint32_t p = wire_px[pick * 2 + 1];
            int px = (int)(p % c.w), py = (int)(p / c.w);
            int x0 = px - (int)(splitmix(&rs) % (uint64_t)patch);
            int y0 = py - (int)(splitmix(&rs) % (uint64_t)patch);
            x0 = x0 < 0 ? 0 : x0 > (int)c.w - patch ? (int)c.w - patch : x0;
            y0 = y0 < 0 ? 0 : y0 > (int)c.h - patch ? (int)c.h - patch : y0;
            const float *fin = inputs + (size_t)fi * np * (size_t)in_c;
            for (int y = 0; y < patch; y++) {
                for (int x = 0; x < patch; x++) {
                    size_t sp = (size_t)(y0 + y) * c.w + (size_t)(x0 + x);
                    size_t dp = (size_t)y * patch + (size_t)x;
                    for (int ch = 0; ch < in_c; ch++) {
                        bin[((size_t)b * (size_t)in_c + (size_t)ch) * pn + dp] =
                            fin[(size_t)ch * np + sp];
                    }
                    /* Residual: |blend + out - truth| = |out - (truth - blend)|. */
                    for (int ch = 0; ch < 3; ch++) {
                        float base = residual ? blend[fi][sp * 3 + ch] : 0.0f;
                        btg[((size_t)b * 3 + ch) * pn + dp] = c.rgb[fi][sp * 3 + ch] - base;
                    }
                    bmk[(size_t)b * pn + dp] = wire[fi][sp] != 0 ? 1.0f : 0.0f;
                }
            }
        }
        rc = eng_tensor_write(unet_input(u), bin, e);
        if (rc == RS_OK) {
            rc = eng_tensor_write(unet_target(u), btg, e);
        }
        if (rc == RS_OK) {
            rc = eng_tensor_write(unet_mask(u), bmk, e);
        }
        if (rc == RS_OK) {
            rc = unet_train_step(u, &opt, &loss, e);
        }
        if (rc != RS_OK) {
            break;
        }
        long done = s + 1;
        double el = now_s() - t0;
        double eta = el / (double)(done - start) * (double)(steps - done);
        /* At most 4 progress lines a second: each becomes a daemon message. */
        if (io != NULL && io->progress != NULL && (el - last_report >= 0.25 || done == steps)) {
            last_report = el;
            char msg[128];
            snprintf(msg, sizeof msg, "step %ld/%ld loss %.5f eta %.0fs", done, steps, loss, eta);
            io->progress(io->ud, (double)done / (double)steps, msg);
        }
        /* Asked to yield (window end): checkpoint now, the retry resumes here. */
        bool yield =
            io != NULL && io->should_yield != NULL && io->should_yield(io->ud) && done < steps;
        if (done % ckpt_every == 0 || done == steps || yield) {
            lin.steps = done;
            lin.loss = loss;
            rc = unet_save(u, ckpt, &lin, true, e);
            if (rc == RS_OK) {
                removal_logf(io, "checkpoint step %ld loss %.5f -> %s", done, loss, ckpt);
            }
            if (rc == RS_OK && yield) {
                removal_logf(io, "yielded at step %ld", done);
                rc = rs_error_set(e, RS_ECANCELED, "yielded at step %ld", done);
            }
            if (rc == RS_OK && done == stop_at) {
                rc = rs_error_set(e, RS_ECANCELED, "stopped at step %ld (%s)", done,
                                  REMOVAL_STOP_AT_ENV);
            }
        }
    }
    if (rc == RS_OK && start >= steps) {
        /* A retry after the last step: the checkpoint holds the final loss. */
        st_model *m = NULL;
        if (st_model_load(ckpt, &m, e) == RS_OK) {
            double l = 0;
            st_model_lineage_numbers(m, NULL, &l, e);
            loss = (float)l;
        }
        st_model_destroy(m);
        rs_error_clear(e);
    }
    if (rc == RS_OK) {
        lin.steps = steps;
        lin.loss = loss;
        rc = unet_save(u, final_path, &lin, false, e);
    }
    char hx[RS_HASH_HEX_LEN];
    if (rc == RS_OK) {
        rc = hash_hex_file(final_path, hx, e);
    }
    if (rc == RS_OK) {
        cJSON_AddStringToObject(res, "checkpoint", final_path);
        cJSON_AddStringToObject(res, "checkpoint_hash", hx);
        cJSON_AddNumberToObject(res, "loss", loss);
        cJSON_AddNumberToObject(res, "steps", (double)steps);
        cJSON_AddNumberToObject(res, "resumed_from", (double)start);
        removal_logf(io, "trained %ld steps, final loss %.5f, model %s (%s)", steps, loss,
                     final_path, hx);
    }
    free(cfg_text);
    free(clip_hashes);
out:
    if (rc == RS_OK) {
        *result = res;
    } else {
        cJSON_Delete(res);
    }
    free(bin);
    free(btg);
    free(bmk);
    unet_destroy(u);
    vk_ctx_destroy(ctx);
    free(wire_px);
    free(inputs);
    free_planes(prop, c.n);
    free_planes(spat, c.n);
    free_planes(conf, c.n);
    free_planes(blend, c.n);
    cJSON_Delete(mcfg);
    for (uint32_t i = 0; i < c.n; i++) {
        free(holes != NULL ? holes[i] : NULL);
        free(wire != NULL ? wire[i] : NULL);
    }
    free(holes);
    free(wire);
    clip_free(&c);
    return rc;
}

/* ---- infer -------------------------------------------------------------- */

/* Alpha: 1 inside the mask, a linear ramp over `feather` px outside it
 * (Chebyshev distance), 0 beyond. */
static void feather_alpha(const uint8_t *mask, uint32_t w, uint32_t h, int feather, float *a)
{
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            size_t p = (size_t)y * w + x;
            if (mask[p] >= 128) {
                a[p] = 1.0f;
                continue;
            }
            int best = feather + 1;
            for (int dy = -feather; dy <= feather; dy++) {
                for (int dx = -feather; dx <= feather; dx++) {
                    int yy = (int)y + dy, xx = (int)x + dx;
                    if (yy < 0 || xx < 0 || yy >= (int)h || xx >= (int)w) {
                        continue;
                    }
                    if (mask[(size_t)yy * w + (size_t)xx] >= 128) {
                        int d = abs(dx) > abs(dy) ? abs(dx) : abs(dy);
                        best = d < best ? d : best;
                    }
                }
            }
            a[p] = best <= feather ? 1.0f - (float)best / (float)(feather + 1) : 0.0f;
        }
    }
}

static void put_sample(media_frame *f, size_t i, float v)
{
    switch (f->sample) {
    case MEDIA_SAMPLE_U8:
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        f->data[i] = (uint8_t)lrintf(v * 255.0f);
        break;
    case MEDIA_SAMPLE_U16:
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        ((uint16_t *)(void *)f->data)[i] = (uint16_t)lrintf(v * 65535.0f);
        break;
    case MEDIA_SAMPLE_F16:
        ((uint16_t *)(void *)f->data)[i] = media_float_to_half(v);
        break;
    case MEDIA_SAMPLE_F32:
        ((float *)(void *)f->data)[i] = v;
        break;
    }
}

/* Model configuration from the checkpoint's lineage. */
static rs_err model_cfg(const char *path, unet_cfg *u, rs_error *e)
{
    st_model *m = NULL;
    rs_err rc = st_model_load(path, &m, e);
    if (rc != RS_OK) {
        return rc;
    }
    const char *text = st_model_meta_get(m, ST_META_CONFIG);
    cJSON *cfg = text != NULL ? cJSON_Parse(text) : NULL;
    if (cfg == NULL) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: no removal config in the lineage", path);
    } else {
        unet_cfg_from(cfg, u);
    }
    cJSON_Delete(cfg);
    st_model_destroy(m);
    return rc;
}

/*
 * The model only matters where alpha > 0 (the mask and its feather ring), so
 * inference runs on the bounding box of the mask grown by `margin` (the
 * feather plus the network's context) and never narrower than a tile, not on
 * the whole frame: a wire over 5 % of a 1080p frame costs a few tiles, not
 * hundreds. pred gets the model's planes inside the box and 0 elsewhere
 * (where nothing is written).
 */
static rs_err infer_masked_box(unet *u, const float *in, int in_c, const uint8_t *mask,
                               uint32_t w, uint32_t h, int tile, int overlap, int margin,
                               float *pred, rs_error *e)
{
    size_t np = (size_t)w * h;
    long x0 = (long)w, y0 = (long)h, x1 = -1, y1 = -1;
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            if (mask[(size_t)y * w + x] >= 128) {
                x0 = (long)x < x0 ? (long)x : x0;
                x1 = (long)x > x1 ? (long)x : x1;
                y0 = (long)y < y0 ? (long)y : y0;
                y1 = (long)y > y1 ? (long)y : y1;
            }
        }
    }
    memset(pred, 0, np * 3 * sizeof(float));
    if (x1 < 0) {
        return RS_OK;
    }
    /* [a, b) grown by margin, at least a tile, inside [0, n). */
    long box[2][2] = {{x0 - margin, x1 + 1 + margin}, {y0 - margin, y1 + 1 + margin}};
    long lim[2] = {(long)w, (long)h};
    for (int d = 0; d < 2; d++) {
        long a = box[d][0] < 0 ? 0 : box[d][0];
        long b = box[d][1] > lim[d] ? lim[d] : box[d][1];
        if (b - a < tile) {
            long grow = tile - (b - a);
            a -= grow / 2;
            a = a < 0 ? 0 : a;
            b = a + tile;
            if (b > lim[d]) {
                b = lim[d];
                a = b - tile;
            }
        }
        box[d][0] = a;
        box[d][1] = b;
    }
    int cw = (int)(box[0][1] - box[0][0]), ch = (int)(box[1][1] - box[1][0]);
    size_t cn = (size_t)cw * (size_t)ch;
    float *crop = malloc(cn * (size_t)in_c * sizeof(float));
    float *crop_out = malloc(cn * 3 * sizeof(float));
    if (crop == NULL || crop_out == NULL) {
        free(crop);
        free(crop_out);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    for (int c = 0; c < in_c; c++) {
        for (int y = 0; y < ch; y++) {
            memcpy(crop + (size_t)c * cn + (size_t)y * (size_t)cw,
                   in + (size_t)c * np + (size_t)(box[1][0] + y) * w + (size_t)box[0][0],
                   (size_t)cw * sizeof(float));
        }
    }
    rs_err rc = unet_infer_tiled(u, crop, ch, cw, overlap, crop_out, e);
    for (int c = 0; rc == RS_OK && c < 3; c++) {
        for (int y = 0; y < ch; y++) {
            memcpy(pred + (size_t)c * np + (size_t)(box[1][0] + y) * w + (size_t)box[0][0],
                   crop_out + (size_t)c * cn + (size_t)y * (size_t)cw, (size_t)cw * sizeof(float));
        }
    }
    free(crop);
    free(crop_out);
    return rc;
}

rs_err removal_infer_run(const cJSON *tp, const task_io *io, cJSON **result, rs_error *e)
{
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(tp, "config");
    const cJSON *frames = cJSON_GetObjectItemCaseSensitive(tp, "frames");
    const cJSON *numbers = cJSON_GetObjectItemCaseSensitive(tp, "numbers");
    const char *outdir = jstr(tp, "output");
    const char *model = jstr(tp, "model");
    /* "ledger": {"event", "project"}: added by rushesd at lease (task.h's alters). */
    const cJSON *lg = cJSON_GetObjectItemCaseSensitive(tp, "ledger");
    const char *ledger_event = jstr(lg, "event");
    const char *ledger_project = jstr(lg, "project");
    int total = cJSON_GetArraySize(frames);
    long first = (long)jnum(tp, "first", 0), count = (long)jnum(tp, "count", 0);
    long range = (long)jnum(tp, "range", 20);
    int feather = (int)jnum(cfg, "feather", 1);
    if (outdir == NULL || model == NULL || first < 0 || count <= 0 || first + count > total) {
        return rs_error_set(e, RS_EINVAL, "task params: need frames, output, model, first, count");
    }
    if (lg != NULL && (ledger_event == NULL || ledger_project == NULL)) {
        return rs_error_set(e, RS_EINVAL, "task params: ledger needs event and project");
    }
    long lo = first - range < 0 ? 0 : first - range;
    long hi = first + count + range > total ? total : first + count + range;
    clip_data c;
    rs_err rc = clip_load(tp, (uint32_t)lo, (uint32_t)(hi - lo), true, &c, e);
    if (rc != RS_OK) {
        return rc;
    }
    size_t np = (size_t)c.w * c.h;
    vk_ctx *ctx = NULL;
    unet *u = NULL;
    /* Stage 1 for the target frames only, one at a time: the window's other
     * frames are evidence, not outputs, so memory stays at one frame's planes. */
    removal_stage1_state *s1 = NULL;
    float *prop = malloc(np * 3 * sizeof(float));
    float *spat = malloc(np * 3 * sizeof(float));
    float *conf = malloc(np * sizeof(float));
    float *blend = malloc(np * 3 * sizeof(float));
    float *in = malloc(np * IN_C * sizeof(float));
    bool residual = false;
    float *pred = malloc(np * 3 * sizeof(float));
    float *alpha = malloc(np * sizeof(float));
    cJSON *res = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(res, "frames");
    char model_hash[RS_HASH_HEX_LEN] = "";
    bool any = false;
    int tile = 0;
    int tile_overlap = 0;
    if (prop == NULL || spat == NULL || conf == NULL || blend == NULL || in == NULL ||
        pred == NULL || alpha == NULL || list == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    for (long i = first; i < first + count; i++) {
        for (size_t p = 0; p < np && !any; p++) {
            any = c.mask[i - lo][p] >= 128;
        }
    }
    char maskdir[PATH_MAX];
    snprintf(maskdir, sizeof maskdir, "%s/masks", outdir);
    rc = rs_fs_mkdirs(maskdir, e);
    if (rc != RS_OK) {
        goto out;
    }
    if (any) {
        rc = hash_hex_file(model, model_hash, e);
        unet_cfg ucfg;
        unet_cfg_from(NULL, &ucfg);
        if (rc == RS_OK) {
            rc = model_cfg(model, &ucfg, e);
        }
        residual = ucfg.in_c == IN_C;
        int mult = 1 << (ucfg.depth - 1);
        /* Big tiles: each is one submit, and lavapipe and GPUs alike want
         * fewer, larger dispatches; the overlap covers the net's context. */
        tile = 256;
        int maxp = (int)(c.w < c.h ? c.w : c.h);
        tile = tile < maxp ? tile : maxp;
        tile -= tile % mult;
        if (rc == RS_OK && tile < mult) {
            rc =
                rs_error_set(e, RS_EINVAL, "frames of %ux%u are too small for the model", c.w, c.h);
        }
        if (rc == RS_OK) {
            rc = vk_ctx_create(NULL, &ctx, e);
        }
        if (rc == RS_OK) {
            rc = unet_create(ctx, &ucfg, 1, tile, tile, VK_VARIANT_AUTO, &u, e);
        }
        if (rc == RS_OK) {
            rc = unet_load(u, model, e);
        }
        if (rc == RS_OK) {
            removal_logf(io, "stage 1 on frames %ld-%ld (range %ld)", lo, hi - 1, range);
            removal_clip clip = {
                .width = c.w,
                .height = c.h,
                .nframes = c.n,
                .rgb = (const float *const *)c.rgb,
                .mask = (const uint8_t *const *)c.mask,
            };
            removal_stage1_opts so = removal_stage1_opts_default();
            so.range = (uint32_t)range;
            rc = removal_stage1_create(&clip, &so, &s1, e);
        }
        if (rc != RS_OK) {
            goto out;
        }
        tile_overlap = tile / 4;
        tile_overlap -= tile_overlap % 2;
    }
    for (long i = first; i < first + count && rc == RS_OK; i++) {
        uint32_t k = (uint32_t)(i - lo);
        const char *srcp = cJSON_GetArrayItem(frames, (int)i)->valuestring;
        const cJSON *nv = cJSON_GetArrayItem(numbers, (int)i);
        int64_t number = cJSON_IsNumber(nv) ? (int64_t)nv->valuedouble : i;
        media_frame *src = c.src[k];
        bool isfloat_src = src->sample == MEDIA_SAMPLE_F16 || src->sample == MEDIA_SAMPLE_F32;
        media_frame *out = NULL;
        rc = media_frame_create(src->width, src->height, src->channels, src->sample, &out, e);
        if (rc != RS_OK) {
            break;
        }
        memcpy(out->names, src->names, sizeof out->names);
        out->colour = src->colour;
        out->bit_depth = src->bit_depth;
        memcpy(out->data, src->data, media_frame_bytes(src));
        rc = media_frame_meta_copy(out, src, e);
        bool hole = false;
        for (size_t p = 0; p < np && !hole; p++) {
            hole = c.mask[k][p] >= 128;
        }
        if (rc == RS_OK && hole) {
            removal_fill_out fo = {
                .propagated = prop, .spatial = spat, .confidence = conf, .blend = blend};
            rc = removal_stage1_frame(s1, k, &fo, e);
            if (rc == RS_OK) {
                build_input(c.rgb[k], c.mask[k], prop, conf, spat, residual ? blend : NULL, np,
                            in);
            }
            if (rc == RS_OK && residual) {
                rc = infer_masked_box(u, in, IN_C, c.mask[k], c.w, c.h, tile, tile_overlap,
                                      feather + tile_overlap, pred, e);
                /* The residual applies inside the hole only: the feather ring
                 * outside it keeps the blend, which is the source there. */
                for (size_t p = 0; rc == RS_OK && p < np; p++) {
                    float keep = c.mask[k][p] >= 128 ? 1.0f : 0.0f;
                    for (int ch = 0; ch < 3; ch++) {
                        size_t q = (size_t)ch * np + p;
                        pred[q] = blend[p * 3 + (size_t)ch] + keep * pred[q];
                    }
                }
            } else if (rc == RS_OK) {
                rc = infer_masked_box(u, in, 11, c.mask[k], c.w, c.h, tile, tile_overlap,
                                      feather + tile_overlap, pred, e);
            }
            if (rc == RS_OK) {
                feather_alpha(c.mask[k], c.w, c.h, feather, alpha);
                for (size_t p = 0; p < np; p++) {
                    if (alpha[p] <= 0.0f) {
                        continue; /* outside: the source bytes stay as they are */
                    }
                    for (uint32_t ch = 0; ch < 3 && ch < src->channels; ch++) {
                        float sv = c.rgb[k][p * 3 + ch];
                        float pv = pred[ch * np + p];
                        /* Integer samples hold 0..1; float (scene-linear)
                         * ones keep highlights above 1 that the fill found. */
                        if (!isfloat_src) {
                            pv = pv < 0.0f ? 0.0f : pv > 1.0f ? 1.0f : pv;
                        }
                        put_sample(out, p * src->channels + ch,
                                   sv * (1.0f - alpha[p]) + pv * alpha[p]);
                    }
                    if (src->channels < 3) {
                        float g = (pred[p] + pred[np + p] + pred[2 * np + p]) / 3.0f;
                        put_sample(out, p * src->channels,
                                   c.rgb[k][p * 3] * (1.0f - alpha[p]) + g * alpha[p]);
                    }
                }
            }
        } else {
            memset(alpha, 0, np * sizeof(float));
        }
        /* Output file: the source's stem, PNG for integer samples, EXR for float. */
        char stem[PATH_MAX];
        snprintf(stem, sizeof stem, "%s", base_name(srcp));
        char *dot = strrchr(stem, '.');
        if (dot != NULL) {
            *dot = '\0';
        }
        char outp[PATH_MAX], maskp[PATH_MAX];
        snprintf(outp, sizeof outp, "%s/%s.%s", outdir, stem, isfloat_src ? "exr" : "png");
        snprintf(maskp, sizeof maskp, "%s/%s.mask.png", maskdir, stem);
        media_write_opts wo = {.format = isfloat_src ? MEDIA_FORMAT_EXR : MEDIA_FORMAT_PNG,
                               .exr_compression = MEDIA_EXR_ZIP};
        bool changed = memcmp(out->data, src->data, media_frame_bytes(src)) != 0;
        /* Labels (ledger.h): the job's authorising event, when rushesd gave one. */
        if (rc == RS_OK && ledger_event != NULL) {
            rc = changed ? ledger_label_frame(out, ledger_project, ledger_event, model_hash, e)
                         : ledger_label_frame_unaltered(out, ledger_project, ledger_event,
                                                        model_hash, e);
        }
        if (rc == RS_OK) {
            rc = media_image_write(outp, out, &wo, e);
        }
        media_frame *mf = NULL;
        if (rc == RS_OK) {
            rc = media_frame_create(c.w, c.h, 1, MEDIA_SAMPLE_U8, &mf, e);
        }
        if (rc == RS_OK) {
            for (size_t p = 0; p < np; p++) {
                mf->data[p] = (uint8_t)lrintf(alpha[p] * 255.0f);
                if (mf->data[p] == 0 && alpha[p] > 0.0f) {
                    mf->data[p] = 1; /* every touched pixel shows in the mask */
                }
            }
            media_write_opts mo = {.format = MEDIA_FORMAT_PNG};
            rc = media_image_write(maskp, mf, &mo, e);
        }
        media_frame_destroy(mf);
        media_frame_destroy(out);
        if (rc == RS_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(list, o);
            cJSON_AddNumberToObject(o, "frame", (double)number);
            cJSON_AddStringToObject(o, "source", srcp);
            cJSON_AddStringToObject(o, "output", outp);
            cJSON_AddStringToObject(o, "mask", maskp);
            cJSON_AddBoolToObject(o, "changed", changed);
            if (io != NULL && io->progress != NULL) {
                char msg[64];
                snprintf(msg, sizeof msg, "frame %lld", (long long)number);
                io->progress(io->ud, (double)(i - first + 1) / (double)count, msg);
            }
        }
    }
    cJSON_AddStringToObject(res, "output", outdir);
    cJSON_AddStringToObject(res, "model", model_hash);
out:
    if (rc == RS_OK) {
        *result = res;
    } else {
        cJSON_Delete(res);
    }
    unet_destroy(u);
    vk_ctx_destroy(ctx);
    free(in);
    free(pred);
    free(alpha);
    removal_stage1_destroy(s1);
    free(prop);
    free(spat);
    free(conf);
    free(blend);
    clip_free(&c);
    return rc;
}
