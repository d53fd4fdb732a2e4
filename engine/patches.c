/*
 * patches.c: random crops from footage into training batches (patches.h).
 * Plain host code: a crop is a strided copy, and a batch is a few hundred
 * kilobytes, so there is nothing here worth a kernel. The generator is
 * splitmix64 with a rejection-free bounded draw (multiply-shift), chosen
 * for being exactly reproducible from the seed on any platform.
 */
#include "patches.h"

#include <stdlib.h>

void eng_patch_rng_seed(eng_patch_rng *r, uint64_t seed)
{
    r->state = seed;
}

static uint64_t rng_next(eng_patch_rng *r)
{
    r->state += 0x9e3779b97f4a7c15ull;
    uint64_t z = r->state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) for n >= 1; the 32-bit multiply-shift bias (< n/2^32)
 * is far below anything a crop position could show. */
static int rng_below(eng_patch_rng *r, int n)
{
    uint64_t x = rng_next(r) >> 32;
    return (int)((x * (uint64_t)n) >> 32);
}

static rs_err image_check(const eng_image *im, int i, const char *field, int c, int h, int w,
                          int ph, int pw, rs_error *e)
{
    if (im->data == NULL) {
        return rs_error_set(e, RS_EINVAL, "patches: pair %d: %s has no data", i, field);
    }
    if (im->layout != ENG_LAYOUT_CHW && im->layout != ENG_LAYOUT_HWC) {
        return rs_error_set(e, RS_EINVAL, "patches: pair %d: %s has an unknown layout %d", i, field,
                            (int)im->layout);
    }
    if (im->c != c) {
        return rs_error_set(e, RS_EINVAL, "patches: pair %d: %s has %d channels, want %d", i, field,
                            im->c, c);
    }
    if (im->h != h || im->w != w) {
        return rs_error_set(e, RS_EINVAL, "patches: pair %d: %s is %dx%d, the input %dx%d", i,
                            field, im->w, im->h, w, h);
    }
    if (h < ph || w < pw) {
        return rs_error_set(e, RS_EINVAL,
                            "patches: pair %d: %s is %dx%d, smaller than the %dx%d crop", i, field,
                            w, h, pw, ph);
    }
    return RS_OK;
}

/* Copies the ph x pw crop at (y0, x0) of im into dst (c planes, NCHW). */
static void crop(const eng_image *im, int y0, int x0, int ph, int pw, float *dst)
{
    size_t plane = (size_t)im->h * (size_t)im->w;
    for (int c = 0; c < im->c; c++) {
        for (int y = 0; y < ph; y++) {
            float *row = dst + ((size_t)c * ph + y) * pw;
            size_t sy = (size_t)(y0 + y);
            if (im->layout == ENG_LAYOUT_CHW) {
                const float *src = im->data + c * plane + sy * (size_t)im->w + (size_t)x0;
                for (int x = 0; x < pw; x++) {
                    row[x] = src[x];
                }
            } else {
                const float *src = im->data + (sy * (size_t)im->w + (size_t)x0) * (size_t)im->c + c;
                for (int x = 0; x < pw; x++) {
                    row[x] = src[(size_t)x * (size_t)im->c];
                }
            }
        }
    }
}

rs_err eng_patches_sample(const eng_patch_pair *pairs, int npairs, eng_patch_rng *rng,
                          eng_patch_batch *out, int *origins, rs_error *e)
{
    if (pairs == NULL || npairs < 1 || rng == NULL || out == NULL) {
        return rs_error_set(e, RS_EINVAL, "patches: no frame pairs to sample from");
    }
    if (out->n < 1 || out->ph < 1 || out->pw < 1 || out->input == NULL || out->target == NULL) {
        return rs_error_set(e, RS_EINVAL, "patches: bad batch (n %d, crop %dx%d)", out->n, out->pw,
                            out->ph);
    }
    int ic = pairs[0].input.c;
    int tc = pairs[0].target.c;
    int mc = pairs[0].mask.c;
    if (ic < 1 || tc < 1) {
        return rs_error_set(e, RS_EINVAL, "patches: pair 0: input %d / target %d channels", ic, tc);
    }
    for (int i = 0; i < npairs; i++) {
        const eng_patch_pair *p = &pairs[i];
        int h = p->input.h;
        int w = p->input.w;
        rs_err rc = image_check(&p->input, i, "input", ic, h, w, out->ph, out->pw, e);
        if (rc == RS_OK) {
            rc = image_check(&p->target, i, "target", tc, h, w, out->ph, out->pw, e);
        }
        if (rc == RS_OK && out->mask != NULL) {
            rc = image_check(&p->mask, i, "mask", mc < 1 ? 1 : mc, h, w, out->ph, out->pw, e);
        }
        if (rc != RS_OK) {
            return rc;
        }
    }
    size_t plane = (size_t)out->ph * (size_t)out->pw;
    for (int b = 0; b < out->n; b++) {
        /* three draws per sample, always in this order, so the stream (and
         * so every later batch) depends only on the seed and the batch shape */
        int i = rng_below(rng, npairs);
        const eng_patch_pair *p = &pairs[i];
        int y0 = rng_below(rng, p->input.h - out->ph + 1);
        int x0 = rng_below(rng, p->input.w - out->pw + 1);
        crop(&p->input, y0, x0, out->ph, out->pw, out->input + (size_t)b * ic * plane);
        crop(&p->target, y0, x0, out->ph, out->pw, out->target + (size_t)b * tc * plane);
        if (out->mask != NULL) {
            crop(&p->mask, y0, x0, out->ph, out->pw, out->mask + (size_t)b * p->mask.c * plane);
        }
        if (origins != NULL) {
            origins[3 * b] = i;
            origins[3 * b + 1] = y0;
            origins[3 * b + 2] = x0;
        }
    }
    return RS_OK;
}

rs_err eng_patches_fill_unet(unet *u, const eng_patch_pair *pairs, int npairs, eng_patch_rng *rng,
                             rs_error *e)
{
    eng_tensor *in = unet_input(u);
    eng_tensor *tg = unet_target(u);
    eng_tensor *mk = unet_mask(u);
    int want_mask = mk != NULL && npairs > 0 && pairs != NULL && pairs[0].mask.data != NULL;
    if (npairs > 0 && pairs != NULL && (pairs[0].input.c != in->c || pairs[0].target.c != tg->c)) {
        return rs_error_set(e, RS_EINVAL,
                            "patches: pairs have %d -> %d channels, the network %d -> %d",
                            pairs[0].input.c, pairs[0].target.c, in->c, tg->c);
    }
    if (want_mask && pairs[0].mask.c != mk->c) {
        return rs_error_set(e, RS_EINVAL, "patches: masks have %d channels, the network %d",
                            pairs[0].mask.c, mk->c);
    }
    eng_patch_batch b = {.n = in->n, .ph = in->h, .pw = in->w};
    b.input = malloc(eng_tensor_count(in) * sizeof(float));
    b.target = malloc(eng_tensor_count(tg) * sizeof(float));
    if (want_mask) {
        b.mask = malloc(eng_tensor_count(mk) * sizeof(float));
    }
    rs_err rc;
    if (b.input == NULL || b.target == NULL || (want_mask && b.mask == NULL)) {
        rc = rs_error_set(e, RS_ENOMEM, "patches: no memory for a %dx%d batch of %d", b.pw, b.ph,
                          b.n);
        goto out;
    }
    rc = eng_patches_sample(pairs, npairs, rng, &b, NULL, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = eng_tensor_write(in, b.input, e);
    if (rc == RS_OK) {
        rc = eng_tensor_write(tg, b.target, e);
    }
    if (rc == RS_OK && want_mask) {
        rc = eng_tensor_write(mk, b.mask, e);
    }
out:
    free(b.input);
    free(b.target);
    free(b.mask);
    return rc;
}
