/*
 * safetensors.c: .safetensors save and load for engine checkpoints.
 *
 * Saving builds the JSON header with cJSON (tensors in insertion order,
 * contiguous offsets, padded to 8 bytes so the data section is aligned) and
 * writes header + data in one atomic write. Loading never trusts the file:
 * the header length is capped and checked against the file size before the
 * header is read, the JSON is parsed from a bounded copy, every entry is
 * checked for shape, dtype and offsets, and only then is the data section
 * allocated and read. One validator (parse_header) serves both the file and
 * the in-memory paths, so the fuzzer exercises exactly what load runs.
 */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c stores tensors as host bytes: it needs a little-endian host"
#endif

#define ST_JSON_INT_MAX 9007199254740992.0 /* 2^53: larger integers are not exact in JSON */

static const struct {
    const char *name;
    size_t size;
} dtypes[ST_DTYPE_COUNT] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},     [ST_U16] = {"U16", 2},
    [ST_I16] = {"I16", 2},   [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_U32] = {"U32", 4},
    [ST_I32] = {"I32", 4},   [ST_F32] = {"F32", 4}, [ST_U64] = {"U64", 8},   [ST_I64] = {"I64", 8},
    [ST_F64] = {"F64", 8},
};

size_t st_dtype_size(st_dtype t)
{
    if ((int)t < 0 || t >= ST_DTYPE_COUNT) {
        return 0;
    }
    return dtypes[t].size;
}

const char *st_dtype_name(st_dtype t)
{
    if ((int)t < 0 || t >= ST_DTYPE_COUNT) {
        return "?";
    }
    return dtypes[t].name;
}

rs_err st_dtype_parse(const char *s, st_dtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (st_dtype)i;
            return RS_OK;
        }
    }
    return RS_EINVAL;
}

rs_err st_model_create(st_model **out, rs_error *e)
{
    st_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return rs_error_set(e, RS_ENOMEM, "safetensors: out of memory");
    }
    *out = m;
    return RS_OK;
}

void st_model_destroy(st_model *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->ntensors; i++) {
        free(m->tensors[i].name);
        if (m->blob == NULL && !m->tensors[i].borrowed) {
            free(m->tensors[i].data);
        }
    }
    for (size_t i = 0; i < m->nmeta; i++) {
        free(m->meta[i].key);
        free(m->meta[i].value);
    }
    free(m->tensors);
    free(m->meta);
    free(m->blob);
    free(m);
}

const st_tensor *st_model_find(const st_model *m, const char *name)
{
    for (size_t i = 0; i < m->ntensors; i++) {
        if (strcmp(m->tensors[i].name, name) == 0) {
            return &m->tensors[i];
        }
    }
    return NULL;
}

/* Element count times element size, or RS_ETOOBIG on overflow. */
static rs_err shape_bytes(st_dtype dtype, int ndim, const int64_t *shape, uint64_t *out)
{
    uint64_t n = st_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (__builtin_mul_overflow(n, (uint64_t)shape[i], &n)) {
            return RS_ETOOBIG;
        }
    }
    *out = n;
    return RS_OK;
}

/* Appends a tensor with no data yet; name is copied. */
static rs_err tensor_push(st_model *m, const char *name, st_dtype dtype, int ndim,
                          const int64_t *shape, uint64_t nbytes, st_tensor **out)
{
    if (m->ntensors == m->cap_tensors) {
        size_t cap = m->cap_tensors == 0 ? 16 : m->cap_tensors * 2;
        st_tensor *t = realloc(m->tensors, cap * sizeof *t);
        if (t == NULL) {
            return RS_ENOMEM;
        }
        m->tensors = t;
        m->cap_tensors = cap;
    }
    st_tensor *t = &m->tensors[m->ntensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (t->name == NULL) {
        return RS_ENOMEM;
    }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
    }
    t->nbytes = (size_t)nbytes;
    m->ntensors++;
    *out = t;
    return RS_OK;
}

static rs_err add_common(st_model *m, const char *name, st_dtype dtype, int ndim,
                         const int64_t *shape, st_tensor **out, rs_error *e)
{
    if (name == NULL || name[0] == '\0' || strcmp(name, "__metadata__") == 0 ||
        strlen(name) > ST_NAME_MAX) {
        return rs_error_set(e, RS_EINVAL, "safetensors: tensor name \"%s\" not allowed",
                            name == NULL ? "(null)" : name);
    }
    if (st_model_find(m, name) != NULL) {
        return rs_error_set(e, RS_EEXIST, "safetensors: tensor \"%s\" added twice", name);
    }
    if ((int)dtype < 0 || dtype >= ST_DTYPE_COUNT) {
        return rs_error_set(e, RS_EINVAL, "safetensors: tensor \"%s\": bad dtype %d", name,
                            (int)dtype);
    }
    if (ndim < 0 || ndim > ST_MAX_DIMS) {
        return rs_error_set(e, RS_EINVAL, "safetensors: tensor \"%s\": %d dimensions (max %d)",
                            name, ndim, ST_MAX_DIMS);
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (double)shape[i] > ST_JSON_INT_MAX) {
            return rs_error_set(e, RS_EINVAL,
                                "safetensors: tensor \"%s\": dimension %d is %" PRId64, name, i,
                                shape[i]);
        }
    }
    if (m->ntensors >= ST_TENSORS_MAX) {
        return rs_error_set(e, RS_ETOOBIG, "safetensors: more than %d tensors", ST_TENSORS_MAX);
    }
    uint64_t nbytes;
    if (shape_bytes(dtype, ndim, shape, &nbytes) != RS_OK || nbytes > SIZE_MAX / 2) {
        return rs_error_set(e, RS_ETOOBIG, "safetensors: tensor \"%s\" too large", name);
    }
    if (tensor_push(m, name, dtype, ndim, shape, nbytes, out) != RS_OK) {
        return rs_error_set(e, RS_ENOMEM, "safetensors: out of memory");
    }
    return RS_OK;
}

rs_err st_model_add(st_model *m, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                    const void *data, rs_error *e)
{
    if (m->blob != NULL) {
        return rs_error_set(e, RS_ESTATE, "safetensors: cannot add \"%s\" to a loaded model",
                            name == NULL ? "(null)" : name);
    }
    st_tensor *t;
    rs_err rc = add_common(m, name, dtype, ndim, shape, &t, e);
    if (rc != RS_OK) {
        return rc;
    }
    t->data = malloc(t->nbytes > 0 ? t->nbytes : 1);
    if (t->data == NULL) {
        free(t->name);
        m->ntensors--;
        return rs_error_set(e, RS_ENOMEM, "safetensors: out of memory for \"%s\"", name);
    }
    if (t->nbytes > 0) {
        memcpy(t->data, data, t->nbytes);
    }
    return RS_OK;
}

rs_err st_model_add_borrowed(st_model *m, const char *name, st_dtype dtype, int ndim,
                             const int64_t *shape, void *data, rs_error *e)
{
    if (m->blob != NULL) {
        return rs_error_set(e, RS_ESTATE, "safetensors: cannot add \"%s\" to a loaded model",
                            name == NULL ? "(null)" : name);
    }
    st_tensor *t;
    rs_err rc = add_common(m, name, dtype, ndim, shape, &t, e);
    if (rc != RS_OK) {
        return rc;
    }
    t->data = data;
    t->borrowed = 1;
    return RS_OK;
}

/* Appends a pair without checking for an existing key. */
static rs_err meta_push(st_model *m, const char *key, const char *value)
{
    if (m->nmeta == m->cap_meta) {
        size_t cap = m->cap_meta == 0 ? 8 : m->cap_meta * 2;
        st_meta *p = realloc(m->meta, cap * sizeof *p);
        if (p == NULL) {
            return RS_ENOMEM;
        }
        m->meta = p;
        m->cap_meta = cap;
    }
    char *k = strdup(key);
    char *v = strdup(value);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return RS_ENOMEM;
    }
    m->meta[m->nmeta].key = k;
    m->meta[m->nmeta].value = v;
    m->nmeta++;
    return RS_OK;
}

rs_err st_model_meta_set(st_model *m, const char *key, const char *value, rs_error *e)
{
    if (key == NULL || value == NULL || key[0] == '\0' || strlen(key) > ST_NAME_MAX) {
        return rs_error_set(e, RS_EINVAL, "safetensors: metadata key \"%s\" not allowed",
                            key == NULL ? "(null)" : key);
    }
    for (size_t i = 0; i < m->nmeta; i++) {
        if (strcmp(m->meta[i].key, key) == 0) {
            char *v = strdup(value);
            if (v == NULL) {
                return rs_error_set(e, RS_ENOMEM, "safetensors: out of memory");
            }
            free(m->meta[i].value);
            m->meta[i].value = v;
            return RS_OK;
        }
    }
    if (m->nmeta >= ST_META_MAX) {
        return rs_error_set(e, RS_ETOOBIG, "safetensors: more than %d metadata pairs", ST_META_MAX);
    }
    if (meta_push(m, key, value) != RS_OK) {
        return rs_error_set(e, RS_ENOMEM, "safetensors: out of memory");
    }
    return RS_OK;
}

const char *st_model_meta_get(const st_model *m, const char *key)
{
    for (size_t i = 0; i < m->nmeta; i++) {
        if (strcmp(m->meta[i].key, key) == 0) {
            return m->meta[i].value;
        }
    }
    return NULL;
}

rs_err st_model_lineage_set(st_model *m, const st_lineage *l, rs_error *e)
{
    rs_err rc = RS_OK;
    char *clips = NULL;
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL) {
        return rs_error_set(e, RS_ENOMEM, "safetensors: out of memory");
    }
    for (size_t i = 0; i < l->nclips; i++) {
        cJSON *s = cJSON_CreateString(l->clip_hashes[i]);
        if (s == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "safetensors: out of memory");
            goto out;
        }
        cJSON_AddItemToArray(arr, s);
    }
    clips = cJSON_PrintUnformatted(arr);
    if (clips == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "safetensors: out of memory");
        goto out;
    }
    char steps[32];
    char loss[40];
    snprintf(steps, sizeof steps, "%" PRId64, l->steps);
    snprintf(loss, sizeof loss, "%.17g", l->loss);
    const char *keys[] = {ST_META_FORMAT, ST_META_TASK_KIND, ST_META_CLIPS, ST_META_PARENT,
                          ST_META_STEPS,  ST_META_LOSS,      ST_META_CONFIG};
    const char *vals[] = {"1",
                          l->task_kind != NULL ? l->task_kind : "",
                          clips,
                          l->parent != NULL ? l->parent : "",
                          steps,
                          loss,
                          l->config_json != NULL ? l->config_json : "{}"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        rc = st_model_meta_set(m, keys[i], vals[i], e);
        if (rc != RS_OK) {
            goto out;
        }
    }
out:
    free(clips);
    cJSON_Delete(arr);
    return rc;
}

rs_err st_model_lineage_numbers(const st_model *m, int64_t *steps, double *loss, rs_error *e)
{
    const char *s = st_model_meta_get(m, ST_META_STEPS);
    const char *l = st_model_meta_get(m, ST_META_LOSS);
    if (s == NULL || l == NULL) {
        return rs_error_set(e, RS_ENOENT, "safetensors: metadata has no %s",
                            s == NULL ? ST_META_STEPS : ST_META_LOSS);
    }
    char *end;
    errno = 0;
    long long sv = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return rs_error_set(e, RS_EINVAL, "safetensors: %s \"%s\" is not an integer", ST_META_STEPS,
                            s);
    }
    errno = 0;
    double lv = strtod(l, &end);
    if (errno != 0 || end == l || *end != '\0') {
        return rs_error_set(e, RS_EINVAL, "safetensors: %s \"%s\" is not a number", ST_META_LOSS,
                            l);
    }
    if (steps != NULL) {
        *steps = sv;
    }
    if (loss != NULL) {
        *loss = lv;
    }
    return RS_OK;
}

/* ---- save ----------------------------------------------------------------- */

static cJSON *header_json(const st_model *m)
{
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) {
        return NULL;
    }
    if (m->nmeta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        if (meta == NULL) {
            goto fail;
        }
        for (size_t i = 0; i < m->nmeta; i++) {
            if (cJSON_AddStringToObject(meta, m->meta[i].key, m->meta[i].value) == NULL) {
                goto fail;
            }
        }
    }
    uint64_t at = 0;
    for (size_t i = 0; i < m->ntensors; i++) {
        const st_tensor *t = &m->tensors[i];
        cJSON *o = cJSON_AddObjectToObject(root, t->name);
        if (o == NULL || cJSON_AddStringToObject(o, "dtype", st_dtype_name(t->dtype)) == NULL) {
            goto fail;
        }
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        if (shape == NULL || offs == NULL) {
            goto fail;
        }
        for (int d = 0; d < t->ndim; d++) {
            cJSON *n = cJSON_CreateNumber((double)t->shape[d]);
            if (n == NULL) {
                goto fail;
            }
            cJSON_AddItemToArray(shape, n);
        }
        cJSON *b = cJSON_CreateNumber((double)at);
        cJSON *en = cJSON_CreateNumber((double)(at + t->nbytes));
        if (b == NULL || en == NULL) {
            cJSON_Delete(b);
            cJSON_Delete(en);
            goto fail;
        }
        cJSON_AddItemToArray(offs, b);
        cJSON_AddItemToArray(offs, en);
        at += t->nbytes;
    }
    return root;
fail:
    cJSON_Delete(root);
    return NULL;
}

rs_err st_model_serialize(const st_model *m, uint8_t **out, size_t *outlen, rs_error *e)
{
    rs_err rc = RS_OK;
    char *json = NULL;
    uint8_t *buf = NULL;
    uint64_t data_len = 0;
    for (size_t i = 0; i < m->ntensors; i++) {
        data_len += m->tensors[i].nbytes;
    }
    if (data_len > ST_JSON_INT_MAX) {
        return rs_error_set(e, RS_ETOOBIG, "safetensors: %" PRIu64 " bytes of tensors", data_len);
    }
    cJSON *root = header_json(m);
    if (root == NULL) {
        return rs_error_set(e, RS_ENOMEM, "safetensors: out of memory building the header");
    }
    json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (json == NULL) {
        return rs_error_set(e, RS_ENOMEM, "safetensors: out of memory printing the header");
    }
    size_t jlen = strlen(json);
    size_t hlen = (jlen + 7) & ~(size_t)7; /* data section starts 8-aligned */
    if (hlen > ST_HEADER_MAX) {
        rc = rs_error_set(e, RS_ETOOBIG,
                          "safetensors: header of %zu bytes over the %" PRIu64 " byte cap", hlen,
                          ST_HEADER_MAX);
        goto out;
    }
    size_t total = 8 + hlen + (size_t)data_len;
    buf = malloc(total);
    if (buf == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "safetensors: out of memory for %zu bytes", total);
        goto out;
    }
    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    }
    memcpy(buf + 8, json, jlen);
    memset(buf + 8 + jlen, ' ', hlen - jlen);
    size_t at = 8 + hlen;
    for (size_t i = 0; i < m->ntensors; i++) {
        if (m->tensors[i].nbytes > 0) {
            memcpy(buf + at, m->tensors[i].data, m->tensors[i].nbytes);
        }
        at += m->tensors[i].nbytes;
    }
    *out = buf;
    *outlen = total;
    buf = NULL;
out:
    free(buf);
    free(json);
    return rc;
}

rs_err st_model_save(const st_model *m, const char *path, rs_error *e)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    rs_err rc = st_model_serialize(m, &buf, &len, e);
    if (rc != RS_OK) {
        /* name the file as well as the problem */
        if (e != NULL) {
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            rs_error_set(e, rc, "%s: %s", path, msg);
        }
        return rc;
    }
    rc = rs_fs_write_atomic(path, buf, len, e);
    free(buf);
    return rc;
}

/* ---- load ----------------------------------------------------------------- */

/* A JSON number that is a non-negative integer exactly representable. */
static int json_uint(const cJSON *n, uint64_t *out)
{
    if (!cJSON_IsNumber(n)) {
        return 0;
    }
    double d = n->valuedouble;
    if (!isfinite(d) || d < 0.0 || d > ST_JSON_INT_MAX || floor(d) != d) {
        return 0;
    }
    *out = (uint64_t)d;
    return 1;
}

typedef struct span {
    size_t tensor;
    uint64_t begin;
    uint64_t end;
} span;

static int span_by_offset(const void *a, const void *b)
{
    const span *x = a;
    const span *y = b;
    if (x->begin != y->begin) {
        return x->begin < y->begin ? -1 : 1;
    }
    if (x->end != y->end) {
        return x->end < y->end ? -1 : 1;
    }
    return 0;
}

static int str_by_value(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuses duplicate strings among n names (sorted copy of the pointers). */
static rs_err check_unique(const char *label, const char *what, const char **names, size_t n,
                           rs_error *e)
{
    if (n < 2) {
        return RS_OK;
    }
    qsort(names, n, sizeof *names, str_by_value);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            return rs_error_set(e, RS_EINVAL, "%s: duplicate %s \"%s\"", label, what, names[i]);
        }
    }
    return RS_OK;
}

static rs_err parse_meta(const char *label, const cJSON *obj, st_model *m, rs_error *e)
{
    if (!cJSON_IsObject(obj)) {
        return rs_error_set(e, RS_EINVAL, "%s: __metadata__ is not an object", label);
    }
    for (const cJSON *it = obj->child; it != NULL; it = it->next) {
        if (m->nmeta >= ST_META_MAX) {
            return rs_error_set(e, RS_ETOOBIG, "%s: more than %d metadata pairs", label,
                                ST_META_MAX);
        }
        if (it->string == NULL || it->string[0] == '\0' || strlen(it->string) > ST_NAME_MAX) {
            return rs_error_set(e, RS_EINVAL, "%s: metadata key empty or over %d bytes", label,
                                ST_NAME_MAX);
        }
        if (!cJSON_IsString(it) || it->valuestring == NULL) {
            return rs_error_set(e, RS_EINVAL, "%s: metadata \"%.64s\" is not a string", label,
                                it->string);
        }
        if (meta_push(m, it->string, it->valuestring) != RS_OK) {
            return rs_error_set(e, RS_ENOMEM, "%s: out of memory", label);
        }
    }
    const char **keys = malloc((m->nmeta > 0 ? m->nmeta : 1) * sizeof *keys);
    if (keys == NULL) {
        return rs_error_set(e, RS_ENOMEM, "%s: out of memory", label);
    }
    for (size_t i = 0; i < m->nmeta; i++) {
        keys[i] = m->meta[i].key;
    }
    rs_err rc = check_unique(label, "metadata key", keys, m->nmeta, e);
    free(keys);
    return rc;
}

/* One header entry -> a tensor (no data yet) and its span. */
static rs_err parse_entry(const char *label, const cJSON *it, st_model *m, span *sp, rs_error *e)
{
    const char *name = it->string;
    if (name == NULL || name[0] == '\0' || strlen(name) > ST_NAME_MAX) {
        return rs_error_set(e, RS_EINVAL, "%s: tensor name empty or over %d bytes", label,
                            ST_NAME_MAX);
    }
    if (!cJSON_IsObject(it)) {
        return rs_error_set(e, RS_EINVAL, "%s: tensor \"%.64s\" is not an object", label, name);
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt) || dt->valuestring == NULL) {
        return rs_error_set(e, RS_EINVAL, "%s: tensor \"%.64s\": dtype missing or not a string",
                            label, name);
    }
    st_dtype dtype;
    if (st_dtype_parse(dt->valuestring, &dtype) != RS_OK) {
        return rs_error_set(e, RS_EINVAL, "%s: tensor \"%.64s\": unknown dtype \"%.16s\"", label,
                            name, dt->valuestring);
    }
    if (!cJSON_IsArray(shape)) {
        return rs_error_set(e, RS_EINVAL, "%s: tensor \"%.64s\": shape missing or not an array",
                            label, name);
    }
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS) {
        return rs_error_set(e, RS_EINVAL, "%s: tensor \"%.64s\": %d dimensions (max %d)", label,
                            name, ndim, ST_MAX_DIMS);
    }
    int64_t dims[ST_MAX_DIMS];
    int d = 0;
    for (const cJSON *n = shape->child; n != NULL; n = n->next) {
        uint64_t v;
        if (!json_uint(n, &v)) {
            return rs_error_set(e, RS_EINVAL,
                                "%s: tensor \"%.64s\": shape[%d] is not a non-negative integer",
                                label, name, d);
        }
        dims[d++] = (int64_t)v;
    }
    uint64_t b;
    uint64_t en;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &b) ||
        !json_uint(offs->child->next, &en)) {
        return rs_error_set(e, RS_EINVAL,
                            "%s: tensor \"%.64s\": data_offsets is not [begin, end] integers",
                            label, name);
    }
    if (b > en) {
        return rs_error_set(e, RS_EINVAL,
                            "%s: tensor \"%.64s\": data_offsets out of order [%" PRIu64 ", %" PRIu64
                            "]",
                            label, name, b, en);
    }
    uint64_t nbytes;
    if (shape_bytes(dtype, ndim, dims, &nbytes) != RS_OK) {
        return rs_error_set(e, RS_EINVAL, "%s: tensor \"%.64s\": shape overflows 64 bits", label,
                            name);
    }
    if (nbytes != en - b) {
        return rs_error_set(e, RS_EINVAL,
                            "%s: tensor \"%.64s\": shape/offset mismatch: %d-d %s shape needs "
                            "%" PRIu64 " bytes, data_offsets [%" PRIu64 ", %" PRIu64
                            "] span %" PRIu64,
                            label, name, ndim, st_dtype_name(dtype), nbytes, b, en, en - b);
    }
    st_tensor *t;
    if (tensor_push(m, name, dtype, ndim, dims, nbytes, &t) != RS_OK) {
        return rs_error_set(e, RS_ENOMEM, "%s: out of memory", label);
    }
    sp->tensor = m->ntensors - 1;
    sp->begin = b;
    sp->end = en;
    return RS_OK;
}

/* Offsets must tile [0, data_len) exactly: no overlap, no gap, nothing past. */
static rs_err check_spans(const char *label, const st_model *m, span *spans, size_t n,
                          uint64_t data_len, rs_error *e)
{
    for (size_t i = 0; i < n; i++) {
        if (spans[i].end > data_len) {
            return rs_error_set(e, RS_EFORMAT,
                                "%s: truncated: tensor \"%.64s\" ends at data byte %" PRIu64
                                " but the file holds %" PRIu64 " data bytes",
                                label, m->tensors[spans[i].tensor].name, spans[i].end, data_len);
        }
    }
    qsort(spans, n, sizeof *spans, span_by_offset);
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = m->tensors[spans[i].tensor].name;
        if (spans[i].begin < at) {
            return rs_error_set(e, RS_EINVAL,
                                "%s: tensor \"%.64s\" at [%" PRIu64 ", %" PRIu64
                                ") overlaps the previous tensor (ends at %" PRIu64 ")",
                                label, name, spans[i].begin, spans[i].end, at);
        }
        if (spans[i].begin > at) {
            return rs_error_set(e, RS_EINVAL,
                                "%s: gap of %" PRIu64 " bytes before tensor \"%.64s\" at %" PRIu64,
                                label, spans[i].begin - at, name, spans[i].begin);
        }
        at = spans[i].end;
    }
    if (at != data_len) {
        return rs_error_set(e, RS_EINVAL,
                            "%s: %" PRIu64 " bytes after the last tensor (data ends at %" PRIu64
                            ", file holds %" PRIu64 ")",
                            label, data_len - at, at, data_len);
    }
    return RS_OK;
}

/*
 * Parses and checks the header (hdr, hlen bytes) against a data section of
 * data_len bytes. Fills m's tensors (data still NULL) and metadata, and
 * offsets[i] with tensor i's begin. offsets is malloc'd; the caller frees.
 */
static rs_err parse_header(const char *label, const char *hdr, size_t hlen, uint64_t data_len,
                           st_model *m, uint64_t **offsets, rs_error *e)
{
    rs_err rc = RS_OK;
    span *spans = NULL;
    const char **names = NULL;
    uint64_t *offs = NULL;
    const char *end = NULL;
    cJSON *root = NULL;
    if (hlen == 0 || hdr[0] != '{') {
        return rs_error_set(e, RS_EINVAL, "%s: header does not start with '{'", label);
    }
    root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
    if (root == NULL) {
        size_t at = end != NULL && end >= hdr && end <= hdr + hlen ? (size_t)(end - hdr) : 0;
        return rs_error_set(e, RS_EINVAL, "%s: header is not valid JSON (near byte %zu of %zu)",
                            label, at, hlen);
    }
    for (const char *p = end; p < hdr + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = rs_error_set(e, RS_EINVAL, "%s: header has bytes after its JSON object (byte %zu)",
                              label, (size_t)(p - hdr));
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = rs_error_set(e, RS_EINVAL, "%s: header is not a JSON object", label);
        goto out;
    }
    size_t count = 0;
    int seen_meta = 0;
    for (const cJSON *it = root->child; it != NULL; it = it->next) {
        if (it->string != NULL && strcmp(it->string, "__metadata__") == 0) {
            if (seen_meta) {
                rc = rs_error_set(e, RS_EINVAL, "%s: duplicate \"__metadata__\"", label);
                goto out;
            }
            seen_meta = 1;
            continue;
        }
        count++;
        if (count > ST_TENSORS_MAX) {
            rc = rs_error_set(e, RS_ETOOBIG, "%s: more than %d tensors", label, ST_TENSORS_MAX);
            goto out;
        }
    }
    spans = calloc(count > 0 ? count : 1, sizeof *spans);
    names = calloc(count > 0 ? count : 1, sizeof *names);
    offs = calloc(count > 0 ? count : 1, sizeof *offs);
    if (spans == NULL || names == NULL || offs == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", label);
        goto out;
    }
    size_t n = 0;
    for (const cJSON *it = root->child; it != NULL; it = it->next) {
        if (it->string != NULL && strcmp(it->string, "__metadata__") == 0) {
            rc = parse_meta(label, it, m, e);
        } else {
            rc = parse_entry(label, it, m, &spans[n], e);
            n++;
        }
        if (rc != RS_OK) {
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = m->tensors[i].name;
        offs[spans[i].tensor] = spans[i].begin;
    }
    rc = check_unique(label, "tensor name", names, n, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = check_spans(label, m, spans, n, data_len, e);
    if (rc != RS_OK) {
        goto out;
    }
    *offsets = offs;
    offs = NULL;
out:
    cJSON_Delete(root);
    free(spans);
    free(names);
    free(offs);
    return rc;
}

static uint64_t read_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Checks the 8-byte prefix of a file of size bytes; returns the header length. */
static rs_err check_prefix(const char *label, const uint8_t *prefix, uint64_t size,
                           uint64_t *hlen_out, rs_error *e)
{
    if (size < 8) {
        return rs_error_set(
            e, RS_EFORMAT,
            "%s: truncated: %" PRIu64 " bytes, shorter than the 8-byte header length", label, size);
    }
    uint64_t hlen = read_le64(prefix);
    if (hlen > ST_HEADER_MAX) {
        return rs_error_set(e, RS_ETOOBIG,
                            "%s: header length %" PRIu64 " over the %" PRIu64 "-byte cap", label,
                            hlen, ST_HEADER_MAX);
    }
    if (hlen > size - 8) {
        return rs_error_set(
            e, RS_EFORMAT, "%s: truncated: header length %" PRIu64 " beyond the file size %" PRIu64,
            label, hlen, size);
    }
    *hlen_out = hlen;
    return RS_OK;
}

/* Points every tensor into blob at its offset; the model takes the blob. */
static void attach_blob(st_model *m, uint8_t *blob, const uint64_t *offsets)
{
    m->blob = blob;
    for (size_t i = 0; i < m->ntensors; i++) {
        m->tensors[i].data = blob + offsets[i];
    }
}

rs_err st_model_parse(const uint8_t *buf, size_t len, const char *label, st_model **out,
                      rs_error *e)
{
    rs_err rc = RS_OK;
    st_model *m = NULL;
    char *hdr = NULL;
    uint64_t *offsets = NULL;
    uint8_t *blob = NULL;
    uint64_t hlen = 0;
    rc = check_prefix(label, buf, len, &hlen, e);
    if (rc != RS_OK) {
        goto out;
    }
    /* a private NUL-terminated copy: the JSON parser never reads past it */
    hdr = malloc((size_t)hlen + 1);
    if (hdr == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", label);
        goto out;
    }
    memcpy(hdr, buf + 8, (size_t)hlen);
    hdr[hlen] = '\0';
    uint64_t data_len = len - 8 - hlen;
    rc = st_model_create(&m, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = parse_header(label, hdr, (size_t)hlen, data_len, m, &offsets, e);
    if (rc != RS_OK) {
        goto out;
    }
    blob = malloc(data_len > 0 ? (size_t)data_len : 1);
    if (blob == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory for %" PRIu64 " bytes", label, data_len);
        goto out;
    }
    if (data_len > 0) {
        memcpy(blob, buf + 8 + hlen, (size_t)data_len);
    }
    attach_blob(m, blob, offsets);
    blob = NULL;
    *out = m;
    m = NULL;
out:
    free(hdr);
    free(offsets);
    free(blob);
    st_model_destroy(m);
    return rc;
}

rs_err st_model_load(const char *path, st_model **out, rs_error *e)
{
    rs_err rc = RS_OK;
    st_model *m = NULL;
    char *hdr = NULL;
    uint64_t *offsets = NULL;
    uint8_t *blob = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return rs_error_set(e, errno == ENOENT ? RS_ENOENT : RS_EIO, "%s: %s", path,
                            strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = rs_error_set(e, RS_EIO, "%s: not a regular file", path);
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t prefix[8] = {0};
    size_t got = fread(prefix, 1, sizeof prefix, f);
    uint64_t hlen = 0;
    rc = check_prefix(path, prefix, got < 8 ? got : size, &hlen, e);
    if (rc != RS_OK) {
        goto out;
    }
    hdr = malloc((size_t)hlen + 1);
    if (hdr == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (fread(hdr, 1, (size_t)hlen, f) != hlen) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: truncated while reading the %" PRIu64 "-byte header",
                          path, hlen);
        goto out;
    }
    hdr[hlen] = '\0';
    uint64_t data_len = size - 8 - hlen;
    if (data_len > SIZE_MAX / 2) {
        rc = rs_error_set(e, RS_ETOOBIG, "%s: %" PRIu64 " data bytes", path, data_len);
        goto out;
    }
    rc = st_model_create(&m, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = parse_header(path, hdr, (size_t)hlen, data_len, m, &offsets, e);
    if (rc != RS_OK) {
        goto out;
    }
    blob = malloc(data_len > 0 ? (size_t)data_len : 1);
    if (blob == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory for %" PRIu64 " bytes", path, data_len);
        goto out;
    }
    if (data_len > 0 && fread(blob, 1, (size_t)data_len, f) != data_len) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: truncated while reading %" PRIu64 " data bytes", path,
                          data_len);
        goto out;
    }
    attach_blob(m, blob, offsets);
    blob = NULL;
    *out = m;
    m = NULL;
out:
    fclose(f);
    free(hdr);
    free(offsets);
    free(blob);
    st_model_destroy(m);
    return rc;
}
