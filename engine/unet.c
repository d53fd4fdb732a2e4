/*
 * unet.c: the U-Net of unet.h. Building allocates every activation and
 * gradient tensor once, then records two command sequences: the training
 * step (forward, loss, backward in reverse order, Adam on every parameter)
 * and forward-only inference. Gradients of a tensor read twice (an encoder
 * skip, read by the pool and by the decoder's concat) arrive in two parts:
 * the decoder's concat backward writes it, the pool backward adds to it.
 */
#include "unet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 128
#define MAX_TENSORS 512
#define MAX_BLOCKS 64

typedef struct param {
    char name[48];
    eng_tensor w;
    eng_tensor g;
    eng_tensor m;
    eng_tensor v;
} param;

/* conv -> [group norm] -> activation; the head is a block with act off */
typedef struct block {
    eng_conv cv;
    int pw; /* param index of the conv weight; bias is pw + 1 */
    int pg; /* param index of gamma (beta pg + 1), -1 without norm */
    int groups;
    bool act;
    const eng_tensor *x; /* input */
    eng_tensor *dx;      /* its gradient, NULL when not needed */
    bool dx_accum;
    eng_tensor *z; /* conv output */
    eng_tensor *stats;
    eng_tensor *a; /* norm output (z without norm) */
    eng_tensor *y; /* block output (a without act) */
    eng_tensor *dz;
    eng_tensor *da;
    eng_tensor *dy;
} block;

struct unet {
    vk_ctx *ctx;
    unet_cfg cfg;
    param params[MAX_PARAMS];
    int nparams;
    eng_tensor *tensors[MAX_TENSORS];
    int ntensors;
    block blocks[MAX_BLOCKS];
    int nblocks;
    eng_tensor *input;
    eng_tensor *target;
    eng_tensor *mask;
    eng_tensor *lossv;
    eng_tensor *hp;
    eng_tensor *dout;
    block *head;
    eng_cmd *train;
    eng_cmd *infer;
    uint32_t train_dispatches;
    long steps;
    uint64_t rng;
};

/* splitmix64: small, seedable, the same on every platform */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / (double)(1ull << 53);
}

static rs_err tensor(unet *u, int n, int c, int h, int w, eng_tensor **out, rs_error *e)
{
    if (u->ntensors >= MAX_TENSORS) {
        return rs_error_set(e, RS_ETOOBIG, "unet: over %d tensors", MAX_TENSORS);
    }
    eng_tensor *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return rs_error_set(e, RS_ENOMEM, "unet tensor");
    }
    rs_err rc = eng_tensor_alloc(u->ctx, n, c, h, w, t, e);
    if (rc != RS_OK) {
        free(t);
        return rc;
    }
    u->tensors[u->ntensors++] = t;
    *out = t;
    return RS_OK;
}

/* A parameter of the given shape filled with value, or uniform(+-bound)
 * when bound > 0; gradient and moments alongside (moments zero). */
static rs_err add_param(unet *u, const char *name, int n, int c, int h, int w, float value,
                        double bound, int *idx, rs_error *e)
{
    if (u->nparams >= MAX_PARAMS) {
        return rs_error_set(e, RS_ETOOBIG, "unet: over %d parameters", MAX_PARAMS);
    }
    param *p = &u->params[u->nparams];
    snprintf(p->name, sizeof p->name, "%s", name);
    size_t cnt = (size_t)n * c * h * w;
    float *buf = malloc(cnt * sizeof *buf);
    if (buf == NULL) {
        return rs_error_set(e, RS_ENOMEM, "unet parameter %s", name);
    }
    rs_err rc = eng_tensor_alloc(u->ctx, n, c, h, w, &p->w, e);
    if (rc == RS_OK) {
        rc = eng_tensor_alloc(u->ctx, n, c, h, w, &p->g, e);
    }
    if (rc == RS_OK) {
        rc = eng_tensor_alloc(u->ctx, n, c, h, w, &p->m, e);
    }
    if (rc == RS_OK) {
        rc = eng_tensor_alloc(u->ctx, n, c, h, w, &p->v, e);
    }
    if (rc == RS_OK) {
        for (size_t i = 0; i < cnt; i++) {
            buf[i] = 0.0f;
        }
        rc = eng_tensor_write(&p->m, buf, e);
    }
    if (rc == RS_OK) {
        rc = eng_tensor_write(&p->v, buf, e);
    }
    if (rc == RS_OK) {
        rc = eng_tensor_write(&p->g, buf, e);
    }
    if (rc == RS_OK) {
        for (size_t i = 0; i < cnt; i++) {
            buf[i] = bound > 0.0 ? (float)((rng_uniform(&u->rng) * 2.0 - 1.0) * bound) : value;
        }
        rc = eng_tensor_write(&p->w, buf, e);
    }
    free(buf);
    /* counted even on failure so unet_destroy frees what was allocated */
    u->nparams++;
    if (rc == RS_OK) {
        *idx = u->nparams - 1;
    }
    return rc;
}

static int gcd(int a, int b)
{
    while (b != 0) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Adds a block reading x (n x ci x h x w) into co channels. */
static rs_err add_block(unet *u, const char *name, const eng_tensor *x, int co, int k, bool norm,
                        bool act, block **out, rs_error *e)
{
    if (u->nblocks >= MAX_BLOCKS) {
        return rs_error_set(e, RS_ETOOBIG, "unet: over %d blocks", MAX_BLOCKS);
    }
    block *b = &u->blocks[u->nblocks++];
    memset(b, 0, sizeof *b);
    b->cv = (eng_conv){.k = k, .stride = 1, .pad = k / 2};
    b->x = x;
    b->act = act;
    b->pg = -1;
    char pn[48];
    double bound = 1.0 / sqrt((double)x->c * k * k);
    snprintf(pn, sizeof pn, "%s.conv.w", name);
    rs_err rc = add_param(u, pn, co, x->c, k, k, 0.0f, bound, &b->pw, e);
    int pb = 0;
    if (rc == RS_OK) {
        snprintf(pn, sizeof pn, "%s.conv.b", name);
        rc = add_param(u, pn, 1, co, 1, 1, 0.0f, bound, &pb, e);
    }
    int n = x->n;
    int h = x->h;
    int w = x->w;
    if (rc == RS_OK) {
        rc = tensor(u, n, co, h, w, &b->z, e);
    }
    if (rc == RS_OK) {
        rc = tensor(u, n, co, h, w, &b->dz, e);
    }
    b->a = b->z;
    b->da = b->dz;
    if (rc == RS_OK && norm) {
        b->groups = gcd(co, u->cfg.norm_groups);
        snprintf(pn, sizeof pn, "%s.norm.gamma", name);
        rc = add_param(u, pn, 1, co, 1, 1, 1.0f, 0.0, &b->pg, e);
        int pbeta = 0;
        if (rc == RS_OK) {
            snprintf(pn, sizeof pn, "%s.norm.beta", name);
            rc = add_param(u, pn, 1, co, 1, 1, 0.0f, 0.0, &pbeta, e);
        }
        if (rc == RS_OK) {
            rc = tensor(u, n, b->groups, 2, 1, &b->stats, e);
        }
        if (rc == RS_OK) {
            rc = tensor(u, n, co, h, w, &b->a, e);
        }
        if (rc == RS_OK) {
            rc = tensor(u, n, co, h, w, &b->da, e);
        }
    }
    b->y = b->a;
    b->dy = b->da;
    if (rc == RS_OK && act) {
        rc = tensor(u, n, co, h, w, &b->y, e);
        if (rc == RS_OK) {
            rc = tensor(u, n, co, h, w, &b->dy, e);
        }
    }
    if (rc == RS_OK) {
        *out = b;
    }
    return rc;
}

static rs_err block_fwd(unet *u, eng_cmd *cmd, const block *b, rs_error *e)
{
    param *P = u->params;
    rs_err rc = eng_conv2d_fwd(cmd, &b->cv, b->x, &P[b->pw].w, &P[b->pw + 1].w, b->z, e);
    if (rc == RS_OK && b->pg >= 0) {
        rc = eng_groupnorm_fwd(cmd, b->groups, 1e-5f, b->z, &P[b->pg].w, &P[b->pg + 1].w, b->a,
                               b->stats, e);
    }
    if (rc == RS_OK && b->act) {
        rc = eng_act_fwd(cmd, u->cfg.act, u->cfg.slope, b->a, b->y, e);
    }
    return rc;
}

static rs_err block_bwd(unet *u, eng_cmd *cmd, const block *b, rs_error *e)
{
    param *P = u->params;
    rs_err rc = RS_OK;
    if (b->act) {
        rc = eng_act_bwd(cmd, u->cfg.act, u->cfg.slope, b->a, b->dy, b->da, false, e);
    }
    if (rc == RS_OK && b->pg >= 0) {
        rc = eng_groupnorm_bwd(cmd, b->groups, b->z, b->da, b->stats, &P[b->pg].w, b->dz,
                               &P[b->pg].g, &P[b->pg + 1].g, false, e);
    }
    if (rc == RS_OK) {
        rc = eng_conv2d_bwd_weight(cmd, &b->cv, b->x, b->dz, &P[b->pw].g, false, e);
    }
    if (rc == RS_OK) {
        rc = eng_bias_bwd(cmd, b->dz, &P[b->pw + 1].g, false, e);
    }
    if (rc == RS_OK && b->dx != NULL) {
        rc = eng_conv2d_bwd_data(cmd, &b->cv, b->dz, &P[b->pw].w, b->dx, b->dx_accum, e);
    }
    return rc;
}

/* The graph between blocks, kept so forward and backward walk the same. */
typedef struct level {
    block *enc[2];
    block *dec[2];
    eng_tensor *pooled; /* input of level l > 0 */
    eng_tensor *dpooled;
    eng_tensor *up; /* decoder: upsampled level l+1 */
    eng_tensor *dup;
    eng_tensor *cat;
    eng_tensor *dcat;
} level;

typedef struct graph {
    level lv[16];
} graph;

static rs_err build(unet *u, graph *g, int n, int h, int w, rs_error *e)
{
    const unet_cfg *c = &u->cfg;
    bool norm = c->norm_groups > 0;
    rs_err rc = tensor(u, n, c->in_c, h, w, &u->input, e);
    const eng_tensor *cur = u->input;
    char name[32];
    for (int l = 0; l < c->depth && rc == RS_OK; l++) {
        level *L = &g->lv[l];
        int co = c->base << l;
        if (l > 0) {
            const eng_tensor *skip = g->lv[l - 1].enc[1]->y;
            rc = tensor(u, n, skip->c, skip->h / 2, skip->w / 2, &L->pooled, e);
            if (rc == RS_OK) {
                rc = tensor(u, n, skip->c, skip->h / 2, skip->w / 2, &L->dpooled, e);
            }
            cur = L->pooled;
        }
        for (int j = 0; j < 2 && rc == RS_OK; j++) {
            snprintf(name, sizeof name, "enc%d.%d", l, j);
            rc = add_block(u, name, cur, co, 3, norm, true, &L->enc[j], e);
            if (rc == RS_OK) {
                cur = L->enc[j]->y;
            }
        }
    }
    for (int l = c->depth - 2; l >= 0 && rc == RS_OK; l--) {
        level *L = &g->lv[l];
        const eng_tensor *skip = L->enc[1]->y;
        rc = tensor(u, n, cur->c, skip->h, skip->w, &L->up, e);
        if (rc == RS_OK) {
            rc = tensor(u, n, cur->c, skip->h, skip->w, &L->dup, e);
        }
        if (rc == RS_OK) {
            rc = tensor(u, n, cur->c + skip->c, skip->h, skip->w, &L->cat, e);
        }
        if (rc == RS_OK) {
            rc = tensor(u, n, cur->c + skip->c, skip->h, skip->w, &L->dcat, e);
        }
        cur = L->cat;
        for (int j = 0; j < 2 && rc == RS_OK; j++) {
            snprintf(name, sizeof name, "dec%d.%d", l, j);
            rc = add_block(u, name, cur, skip->c, 3, norm, true, &L->dec[j], e);
            if (rc == RS_OK) {
                cur = L->dec[j]->y;
            }
        }
    }
    if (rc == RS_OK) {
        rc = add_block(u, "head", cur, c->out_c, 1, false, false, &u->head, e);
    }
    if (rc == RS_OK) {
        rc = tensor(u, n, c->out_c, h, w, &u->target, e);
    }
    if (rc == RS_OK) {
        rc = tensor(u, n, 1, h, w, &u->mask, e);
    }
    if (rc == RS_OK) {
        rc = tensor(u, 1, 1, 1, 4, &u->lossv, e);
    }
    if (rc == RS_OK) {
        rc = tensor(u, 1, 1, 1, ENG_ADAM_HP_FLOATS, &u->hp, e);
    }
    if (rc != RS_OK) {
        return rc;
    }
    /* gradient wiring (see the file comment for the skip's two parts) */
    for (int l = 0; l < c->depth; l++) {
        level *L = &g->lv[l];
        L->enc[0]->dx = l > 0 ? L->dpooled : NULL;
        L->enc[1]->dx = L->enc[0]->dy;
        if (l < c->depth - 1) {
            L->dec[0]->dx = L->dcat;
            L->dec[1]->dx = L->dec[0]->dy;
        }
    }
    u->head->dx = c->depth > 1 ? g->lv[0].dec[1]->dy : g->lv[0].enc[1]->dy;
    return RS_OK;
}

static rs_err record_forward(unet *u, const graph *g, eng_cmd *cmd, rs_error *e)
{
    const unet_cfg *c = &u->cfg;
    rs_err rc = RS_OK;
    for (int l = 0; l < c->depth && rc == RS_OK; l++) {
        const level *L = &g->lv[l];
        if (l > 0) {
            rc = eng_avgpool2_fwd(cmd, g->lv[l - 1].enc[1]->y, L->pooled, e);
        }
        for (int j = 0; j < 2 && rc == RS_OK; j++) {
            rc = block_fwd(u, cmd, L->enc[j], e);
        }
    }
    for (int l = c->depth - 2; l >= 0 && rc == RS_OK; l--) {
        const level *L = &g->lv[l];
        const eng_tensor *below =
            l == c->depth - 2 ? g->lv[l + 1].enc[1]->y : g->lv[l + 1].dec[1]->y;
        rc = eng_upsample2_fwd(cmd, c->up, below, L->up, e);
        if (rc == RS_OK) {
            rc = eng_concat_fwd(cmd, L->up, L->enc[1]->y, L->cat, e);
        }
        for (int j = 0; j < 2 && rc == RS_OK; j++) {
            rc = block_fwd(u, cmd, L->dec[j], e);
        }
    }
    if (rc == RS_OK) {
        rc = block_fwd(u, cmd, u->head, e);
    }
    return rc;
}

static rs_err record_backward(unet *u, const graph *g, eng_cmd *cmd, rs_error *e)
{
    const unet_cfg *c = &u->cfg;
    const eng_tensor *mask = c->loss == ENG_LOSS_MASKED_L1 ? u->mask : NULL;
    rs_err rc = eng_loss_fwd(cmd, c->loss, u->head->y, u->target, mask, u->lossv, e);
    if (rc == RS_OK) {
        rc = eng_loss_bwd(cmd, c->loss, u->head->y, u->target, mask, u->lossv, 1.0f, u->head->dy,
                          false, e);
    }
    if (rc == RS_OK) {
        rc = block_bwd(u, cmd, u->head, e);
    }
    for (int l = 0; l <= c->depth - 2 && rc == RS_OK; l++) {
        const level *L = &g->lv[l];
        for (int j = 1; j >= 0 && rc == RS_OK; j--) {
            rc = block_bwd(u, cmd, L->dec[j], e);
        }
        /* first part of the skip's gradient: written here, the pool adds later */
        if (rc == RS_OK) {
            rc = eng_concat_bwd(cmd, L->dcat, L->dup, L->enc[1]->dy, false, e);
        }
        eng_tensor *dbelow = l == c->depth - 2 ? g->lv[l + 1].enc[1]->dy : g->lv[l + 1].dec[1]->dy;
        if (rc == RS_OK) {
            rc = eng_upsample2_bwd(cmd, c->up, L->dup, dbelow, false, e);
        }
    }
    for (int l = c->depth - 1; l >= 0 && rc == RS_OK; l--) {
        const level *L = &g->lv[l];
        for (int j = 1; j >= 0 && rc == RS_OK; j--) {
            rc = block_bwd(u, cmd, L->enc[j], e);
        }
        if (rc == RS_OK && l > 0) {
            rc = eng_avgpool2_bwd(cmd, L->dpooled, g->lv[l - 1].enc[1]->dy, true, e);
        }
    }
    for (int i = 0; i < u->nparams && rc == RS_OK; i++) {
        param *p = &u->params[i];
        rc = eng_adam_step(cmd, &p->w, &p->g, &p->m, &p->v, u->hp, e);
    }
    return rc;
}

rs_err unet_create(vk_ctx *ctx, const unet_cfg *cfg, int n, int h, int w, vk_variant variant,
                   unet **out, rs_error *e)
{
    if (cfg->depth < 1 || cfg->depth > 8 || cfg->base < 1 || cfg->in_c < 1 || cfg->out_c < 1 ||
        cfg->norm_groups < 0 || n < 1) {
        return rs_error_set(
            e, RS_EINVAL,
            "unet: depth %d, base %d, in %d, out %d, groups %d, batch %d out of range", cfg->depth,
            cfg->base, cfg->in_c, cfg->out_c, cfg->norm_groups, n);
    }
    int mult = 1 << (cfg->depth - 1);
    if (h < mult || w < mult || h % mult != 0 || w % mult != 0) {
        return rs_error_set(e, RS_EINVAL, "unet: %dx%d is not a multiple of %d (depth %d)", w, h,
                            mult, cfg->depth);
    }
    if (cfg->loss == ENG_LOSS_GRAD && (h < 2 || w < 2)) {
        return rs_error_set(e, RS_EINVAL, "unet: gradient loss needs at least 2x2");
    }
    unet *u = calloc(1, sizeof *u);
    graph *g = calloc(1, sizeof *g);
    if (u == NULL || g == NULL) {
        free(u);
        free(g);
        return rs_error_set(e, RS_ENOMEM, "unet");
    }
    u->ctx = ctx;
    u->cfg = *cfg;
    u->rng = cfg->seed;
    rs_err rc = build(u, g, n, h, w, e);
    if (rc == RS_OK) {
        rc = eng_cmd_create(ctx, variant, &u->train, e);
    }
    if (rc == RS_OK) {
        rc = eng_cmd_create(ctx, variant, &u->infer, e);
    }
    if (rc == RS_OK) {
        float zero[4] = {0};
        rc = eng_tensor_write(u->lossv, zero, e);
    }
    if (rc == RS_OK) {
        rc = eng_cmd_begin(u->train, e);
    }
    if (rc == RS_OK) {
        rc = record_forward(u, g, u->train, e);
    }
    if (rc == RS_OK) {
        rc = record_backward(u, g, u->train, e);
    }
    if (rc == RS_OK) {
        uint32_t nb;
        vk_seq_stats(eng_cmd_seq(u->train), &u->train_dispatches, &nb);
        rc = eng_cmd_end(u->train, e);
    }
    if (rc == RS_OK) {
        rc = eng_cmd_begin(u->infer, e);
    }
    if (rc == RS_OK) {
        rc = record_forward(u, g, u->infer, e);
    }
    if (rc == RS_OK) {
        rc = eng_cmd_end(u->infer, e);
    }
    free(g);
    if (rc != RS_OK) {
        unet_destroy(u);
        return rc;
    }
    *out = u;
    return RS_OK;
}

void unet_destroy(unet *u)
{
    if (u == NULL) {
        return;
    }
    eng_cmd_destroy(u->train);
    eng_cmd_destroy(u->infer);
    for (int i = 0; i < u->nparams; i++) {
        eng_tensor_free(&u->params[i].w);
        eng_tensor_free(&u->params[i].g);
        eng_tensor_free(&u->params[i].m);
        eng_tensor_free(&u->params[i].v);
    }
    for (int i = 0; i < u->ntensors; i++) {
        eng_tensor_free(u->tensors[i]);
        free(u->tensors[i]);
    }
    free(u);
}

eng_tensor *unet_input(unet *u)
{
    return u->input;
}

eng_tensor *unet_target(unet *u)
{
    return u->target;
}

eng_tensor *unet_mask(unet *u)
{
    return u->mask;
}

eng_tensor *unet_output(unet *u)
{
    return u->head->y;
}

rs_err unet_train_step(unet *u, const eng_adam *opt, float *loss, rs_error *e)
{
    rs_err rc = eng_adam_set(u->hp, opt, u->steps + 1, e);
    if (rc == RS_OK) {
        rc = eng_cmd_submit(u->train, e);
    }
    if (rc != RS_OK) {
        return rc;
    }
    u->steps++;
    if (loss != NULL) {
        float lv[4];
        rc = eng_tensor_read(u->lossv, lv, e);
        if (rc == RS_OK) {
            *loss = lv[0];
        }
    }
    return rc;
}

rs_err unet_forward(unet *u, rs_error *e)
{
    return eng_cmd_submit(u->infer, e);
}

long unet_steps(const unet *u)
{
    return u->steps;
}

void unet_steps_set(unet *u, long steps)
{
    u->steps = steps;
}

int unet_param_count(const unet *u)
{
    return u->nparams;
}

const char *unet_param_name(const unet *u, int i)
{
    return i >= 0 && i < u->nparams ? u->params[i].name : NULL;
}

eng_tensor *unet_param(unet *u, int i)
{
    return i >= 0 && i < u->nparams ? &u->params[i].w : NULL;
}

eng_tensor *unet_param_grad(unet *u, int i)
{
    return i >= 0 && i < u->nparams ? &u->params[i].g : NULL;
}

eng_tensor *unet_param_moment(unet *u, int i, int which)
{
    if (i < 0 || i >= u->nparams) {
        return NULL;
    }
    return which == 0 ? &u->params[i].m : &u->params[i].v;
}

size_t unet_param_floats(const unet *u)
{
    size_t n = 0;
    for (int i = 0; i < u->nparams; i++) {
        n += eng_tensor_count(&u->params[i].w);
    }
    return n;
}

vk_seq *unet_train_seq(unet *u)
{
    return eng_cmd_seq(u->train);
}

uint32_t unet_train_dispatches(const unet *u)
{
    return u->train_dispatches;
}

rs_err unet_params_copy(unet *dst, unet *src, rs_error *e)
{
    if (dst->nparams != src->nparams) {
        return rs_error_set(e, RS_EINVAL, "unet_params_copy: %d parameters into %d", src->nparams,
                            dst->nparams);
    }
    rs_err rc = RS_OK;
    float *buf = NULL;
    for (int i = 0; i < src->nparams && rc == RS_OK; i++) {
        size_t n = eng_tensor_count(&src->params[i].w);
        if (n != eng_tensor_count(&dst->params[i].w)) {
            rc = rs_error_set(e, RS_EINVAL, "unet_params_copy: %s has %zu values, %zu expected",
                              src->params[i].name, n, eng_tensor_count(&dst->params[i].w));
            break;
        }
        float *nb = realloc(buf, n * sizeof *buf);
        if (nb == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "unet_params_copy: %s", src->params[i].name);
            break;
        }
        buf = nb;
        rc = eng_tensor_read(&src->params[i].w, buf, e);
        if (rc == RS_OK) {
            rc = eng_tensor_write(&dst->params[i].w, buf, e);
        }
    }
    free(buf);
    return rc;
}

/* Start offsets of tiles along one axis: 0, s, 2s, ... and one flush with the end. */
static int tile_starts(int len, int tile, int step, int *out, int max)
{
    int n = 0;
    for (int p = 0;; p += step) {
        if (p + tile >= len) {
            if (n < max) {
                out[n++] = len - tile;
            }
            break;
        }
        if (n < max) {
            out[n++] = p;
        }
    }
    return n;
}

/* Blend weight of tile-local index i (tile t) whose tile starts at p in an axis of length len. */
static float feather(int i, int t, int p, int len, int overlap)
{
    int margin = overlap / 4;
    int ramp = overlap - margin;
    float wlo = 1.0f;
    float whi = 1.0f;
    if (p > 0 && overlap > 0) { /* inner edge at the tile's start */
        wlo = i < margin ? 0.0f : (float)(i - margin + 1) / (float)(ramp + 1);
    }
    if (p + t < len && overlap > 0) { /* inner edge at the tile's end */
        int j = t - 1 - i;
        whi = j < margin ? 0.0f : (float)(j - margin + 1) / (float)(ramp + 1);
    }
    float w = wlo < whi ? wlo : whi;
    return w > 1.0f ? 1.0f : w;
}

#define MAX_TILES_AXIS 4096

rs_err unet_infer_tiled(unet *u, const float *img, int h, int w, int overlap, float *out,
                        rs_error *e)
{
    eng_tensor *in = u->input;
    eng_tensor *pred = u->head->y;
    int t = in->h;
    if (in->n != 1 || in->w != t) {
        return rs_error_set(
            e, RS_EINVAL, "unet_infer_tiled: network is %dx%dx%d, needs batch 1 and a square tile",
            in->n, in->h, in->w);
    }
    if (h < t || w < t || overlap < 0 || overlap >= t) {
        return rs_error_set(e, RS_EINVAL, "unet_infer_tiled: image %dx%d, tile %d, overlap %d", w,
                            h, t, overlap);
    }
    int ci = in->c;
    int co = pred->c;
    size_t plane = (size_t)h * w;
    int *ys = malloc(MAX_TILES_AXIS * sizeof *ys);
    int *xs = malloc(MAX_TILES_AXIS * sizeof *xs);
    float *wsum = calloc(plane, sizeof *wsum);
    float *tin = malloc((size_t)ci * t * t * sizeof *tin);
    float *tout = malloc((size_t)co * t * t * sizeof *tout);
    rs_err rc = RS_OK;
    if (ys == NULL || xs == NULL || wsum == NULL || tin == NULL || tout == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "unet_infer_tiled: %dx%d image", w, h);
        goto out;
    }
    memset(out, 0, (size_t)co * plane * sizeof *out);
    int ny = tile_starts(h, t, t - overlap, ys, MAX_TILES_AXIS);
    int nx = tile_starts(w, t, t - overlap, xs, MAX_TILES_AXIS);
    if (ny > MAX_TILES_AXIS || nx > MAX_TILES_AXIS) {
        rc = rs_error_set(e, RS_ETOOBIG, "unet_infer_tiled: over %d tiles along an axis",
                          MAX_TILES_AXIS);
        goto out;
    }
    for (int ty = 0; ty < ny && rc == RS_OK; ty++) {
        for (int tx = 0; tx < nx && rc == RS_OK; tx++) {
            int y0 = ys[ty];
            int x0 = xs[tx];
            for (int c = 0; c < ci; c++) {
                for (int y = 0; y < t; y++) {
                    memcpy(tin + ((size_t)c * t + y) * t,
                           img + c * plane + (size_t)(y0 + y) * w + x0, (size_t)t * sizeof *tin);
                }
            }
            rc = eng_tensor_write(in, tin, e);
            if (rc == RS_OK) {
                rc = eng_cmd_submit(u->infer, e);
            }
            if (rc == RS_OK) {
                rc = eng_tensor_read(pred, tout, e);
            }
            if (rc != RS_OK) {
                break;
            }
            for (int y = 0; y < t; y++) {
                float wy = feather(y, t, y0, h, overlap);
                for (int x = 0; x < t; x++) {
                    float wt = wy * feather(x, t, x0, w, overlap);
                    if (wt <= 0.0f) {
                        continue;
                    }
                    size_t pix = (size_t)(y0 + y) * w + x0 + x;
                    wsum[pix] += wt;
                    for (int c = 0; c < co; c++) {
                        out[c * plane + pix] += wt * tout[((size_t)c * t + y) * t + x];
                    }
                }
            }
        }
    }
    for (size_t pix = 0; pix < plane && rc == RS_OK; pix++) {
        /* every pixel has weight: the tile reaching furthest into it ramps up first */
        float inv = wsum[pix] > 0.0f ? 1.0f / wsum[pix] : 0.0f;
        for (int c = 0; c < co; c++) {
            out[c * plane + pix] *= inv;
        }
    }
out:
    free(ys);
    free(xs);
    free(wsum);
    free(tin);
    free(tout);
    return rc;
}
