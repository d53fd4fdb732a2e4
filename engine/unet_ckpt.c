/*
 * unet_ckpt.c: U-Net <-> .safetensors (see unet_ckpt.h). Tensors go
 * through host memory one at a time; the file format and its checks are
 * safetensors.c's.
 */
#include "unet_ckpt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PyTorch's shape of a unet parameter: 4-D conv weights, 1-D otherwise. */
static int torch_shape(const eng_tensor *t, int64_t shape[4])
{
    if (t->h > 1 || t->w > 1 || t->n > 1) {
        shape[0] = t->n;
        shape[1] = t->c;
        shape[2] = t->h;
        shape[3] = t->w;
        return 4;
    }
    shape[0] = (int64_t)eng_tensor_count(t);
    return 1;
}

static rs_err add_tensor(st_model *m, const char *name, const eng_tensor *t, const int64_t *shape,
                         int ndim, rs_error *e)
{
    size_t n = eng_tensor_count(t);
    float *buf = malloc(n * sizeof *buf);
    if (buf == NULL) {
        return rs_error_set(e, RS_ENOMEM, "checkpoint tensor %s", name);
    }
    rs_err rc = eng_tensor_read(t, buf, e);
    if (rc == RS_OK) {
        rc = st_model_add(m, name, ST_F32, ndim, shape, buf, e);
    }
    free(buf);
    return rc;
}

rs_err unet_save(unet *u, const char *path, const st_lineage *lineage, bool with_state, rs_error *e)
{
    st_model *m = NULL;
    rs_err rc = st_model_create(&m, e);
    char name[96];
    for (int i = 0; i < unet_param_count(u) && rc == RS_OK; i++) {
        int64_t shape[4];
        eng_tensor *p = unet_param(u, i);
        int nd = torch_shape(p, shape);
        rc = add_tensor(m, unet_param_name(u, i), p, shape, nd, e);
        if (rc == RS_OK && with_state) {
            snprintf(name, sizeof name, "%s.adam_m", unet_param_name(u, i));
            rc = add_tensor(m, name, unet_param_moment(u, i, 0), shape, nd, e);
        }
        if (rc == RS_OK && with_state) {
            snprintf(name, sizeof name, "%s.adam_v", unet_param_name(u, i));
            rc = add_tensor(m, name, unet_param_moment(u, i, 1), shape, nd, e);
        }
    }
    if (rc == RS_OK && lineage != NULL) {
        st_lineage l = *lineage;
        l.steps = unet_steps(u);
        rc = st_model_lineage_set(m, &l, e);
    } else if (rc == RS_OK) {
        char steps[32];
        snprintf(steps, sizeof steps, "%ld", unet_steps(u));
        rc = st_model_meta_set(m, ST_META_STEPS, steps, e);
    }
    if (rc == RS_OK) {
        rc = st_model_save(m, path, e);
    }
    st_model_destroy(m);
    return rc;
}

/* Writes the file's tensor name into t after checking dtype and size. */
static rs_err load_tensor(const st_model *m, const char *path, const char *name, eng_tensor *t,
                          rs_error *e)
{
    const st_tensor *s = st_model_find(m, name);
    if (s == NULL) {
        return rs_error_set(e, RS_EFORMAT, "%s: no tensor %s", path, name);
    }
    int64_t shape[4];
    int nd = torch_shape(t, shape);
    bool same = s->dtype == ST_F32 && s->ndim == nd;
    for (int d = 0; same && d < nd; d++) {
        same = s->shape[d] == shape[d];
    }
    if (!same || s->nbytes != eng_tensor_count(t) * sizeof(float)) {
        return rs_error_set(
            e, RS_EFORMAT, "%s: tensor %s is %s with %d dims, expected F32 [%" PRId64 "%s]", path,
            name, st_dtype_name(s->dtype), s->ndim, shape[0], nd > 1 ? ", ..." : "");
    }
    return eng_tensor_write(t, s->data, e);
}

rs_err unet_load(unet *u, const char *path, rs_error *e)
{
    st_model *m = NULL;
    rs_err rc = st_model_load(path, &m, e);
    if (rc != RS_OK) {
        return rc;
    }
    char name[96];
    for (int i = 0; i < unet_param_count(u) && rc == RS_OK; i++) {
        rc = load_tensor(m, path, unet_param_name(u, i), unet_param(u, i), e);
        snprintf(name, sizeof name, "%s.adam_m", unet_param_name(u, i));
        if (rc == RS_OK && st_model_find(m, name) != NULL) {
            rc = load_tensor(m, path, name, unet_param_moment(u, i, 0), e);
            snprintf(name, sizeof name, "%s.adam_v", unet_param_name(u, i));
            if (rc == RS_OK) {
                rc = load_tensor(m, path, name, unet_param_moment(u, i, 1), e);
            }
        }
    }
    const char *steps = st_model_meta_get(m, ST_META_STEPS);
    if (rc == RS_OK && steps != NULL) {
        char *end = NULL;
        long v = strtol(steps, &end, 10);
        if (end == steps || *end != '\0' || v < 0) {
            rc = rs_error_set(e, RS_EFORMAT, "%s: %s is not a step count: %s", path, ST_META_STEPS,
                              steps);
        } else {
            unet_steps_set(u, v);
        }
    }
    st_model_destroy(m);
    return rc;
}
