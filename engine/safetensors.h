/*
 * safetensors.h: checkpoints as .safetensors files, with Rushes lineage.
 *
 * Layout (the public safetensors format): 8-byte little-endian header length
 * N, then N bytes of UTF-8 JSON {"<name>": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "value"}},
 * padded with spaces, then the raw little-endian tensor bytes; offsets are
 * relative to the end of the header. Metadata values are strings, so the
 * lineage (task kind, clip hashes, parent, steps, loss, config) is stored as
 * text under the ST_META_* keys below.
 *
 * In memory a checkpoint is an st_model: a list of named tensors and a list
 * of metadata pairs, both in insertion order, owned by the model and freed
 * by st_model_destroy. Save writes tensors in that order, contiguously, and
 * atomically (rs_fs_write_atomic): a reader never sees half a checkpoint.
 * Load treats the file as untrusted: sizes are capped before anything is
 * allocated, and every refusal returns one rs_error whose message starts
 * with the file name and says what is wrong. The same checks run on an
 * in-memory buffer through st_model_parse (the fuzz entry point).
 *
 * Not thread-safe per model; different models are independent.
 */
#ifndef RS_ENGINE_SAFETENSORS_H
#define RS_ENGINE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define ST_MAX_DIMS 8
#define ST_HEADER_MAX ((uint64_t)100 << 20) /* JSON header cap: 100 MiB */
#define ST_TENSORS_MAX 65536                /* tensor count cap */
#define ST_META_MAX 4096                    /* metadata pair count cap */
#define ST_NAME_MAX 1024                    /* tensor name / metadata key length cap */

/* Lineage keys in __metadata__ (all values are strings). */
#define ST_META_FORMAT "rushes.format"       /* "1" */
#define ST_META_TASK_KIND "rushes.task_kind" /* e.g. "denoise" */
#define ST_META_CLIPS "rushes.clips"         /* JSON array of clip hash strings */
#define ST_META_PARENT "rushes.parent"       /* parent model id/hash, "" if none */
#define ST_META_STEPS "rushes.steps"         /* decimal integer */
#define ST_META_LOSS "rushes.loss"           /* "%.17g" of the last loss (exact) */
#define ST_META_CONFIG "rushes.config"       /* config JSON, as text */

typedef enum st_dtype {
    ST_BOOL = 0,
    ST_U8,
    ST_I8,
    ST_U16,
    ST_I16,
    ST_F16,
    ST_BF16,
    ST_U32,
    ST_I32,
    ST_F32,
    ST_U64,
    ST_I64,
    ST_F64,
    ST_DTYPE_COUNT
} st_dtype;

/* Bytes per element (1 for BOOL). */
size_t st_dtype_size(st_dtype t);
/* The format's spelling: "F32", "BF16", ... ("?" for an invalid value). */
const char *st_dtype_name(st_dtype t);
/* Parses a spelling; RS_EINVAL if unknown (no message: the caller names the file). */
rs_err st_dtype_parse(const char *s, st_dtype *out);

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim; /* 0 = scalar (one element) */
    int64_t shape[ST_MAX_DIMS];
    size_t nbytes; /* elements * st_dtype_size(dtype) */
    /*
     * The raw little-endian bytes, owned by the model (or, for
     * st_model_add_borrowed, by the caller until the model is destroyed).
     * After a load, data points into one block at the tensor's file offset,
     * so it is aligned to its element size when the writer's offsets were
     * (Rushes's always are for F32/I32 models); otherwise read via memcpy.
     */
    void *data;
    int borrowed;
} st_tensor;

typedef struct st_meta {
    char *key;
    char *value;
} st_meta;

typedef struct st_model {
    st_tensor *tensors; /* ntensors, in insertion / file order */
    size_t ntensors;
    st_meta *meta; /* nmeta, in insertion / file order */
    size_t nmeta;
    /* private */
    size_t cap_tensors;
    size_t cap_meta;
    void *blob; /* loaded tensor bytes */
} st_model;

/* An empty model. */
rs_err st_model_create(st_model **out, rs_error *e);
/* Frees the model, its tensors' owned data and its metadata. Accepts NULL. */
void st_model_destroy(st_model *m);

/*
 * Adds a tensor, copying nbytes = prod(shape) * st_dtype_size(dtype) bytes
 * from data. RS_EEXIST if the name is taken, RS_EINVAL for an empty name,
 * "__metadata__", ndim outside [0, ST_MAX_DIMS] or a negative dimension.
 * ndim == 0 stores a scalar.
 */
rs_err st_model_add(st_model *m, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                    const void *data, rs_error *e);
/* Like st_model_add without the copy: data must outlive the model. */
rs_err st_model_add_borrowed(st_model *m, const char *name, st_dtype dtype, int ndim,
                             const int64_t *shape, void *data, rs_error *e);
/* The tensor called name, or NULL. */
const st_tensor *st_model_find(const st_model *m, const char *name);

/* Sets (or replaces) a metadata pair; both strings are copied. */
rs_err st_model_meta_set(st_model *m, const char *key, const char *value, rs_error *e);
/* The value for key, or NULL. Owned by the model. */
const char *st_model_meta_get(const st_model *m, const char *key);

/* Lineage of a trained model; written as the ST_META_* pairs. */
typedef struct st_lineage {
    const char *task_kind;
    const char *const *clip_hashes; /* nclips strings */
    size_t nclips;
    const char *parent; /* NULL or "" for a model trained from scratch */
    int64_t steps;
    double loss;
    const char *config_json; /* NULL: "{}" */
} st_lineage;

/* Writes l into m's metadata (ST_META_FORMAT included). */
rs_err st_model_lineage_set(st_model *m, const st_lineage *l, rs_error *e);

/*
 * Reads back steps and loss from the lineage keys. RS_ENOENT if a key is
 * missing, RS_EINVAL if a value is not a number; either may be NULL.
 */
rs_err st_model_lineage_numbers(const st_model *m, int64_t *steps, double *loss, rs_error *e);

/*
 * Serialises m into one malloc'd buffer the caller frees (header padded with
 * spaces to a multiple of 8 bytes; tensors contiguous in insertion order).
 */
rs_err st_model_serialize(const st_model *m, uint8_t **out, size_t *outlen, rs_error *e);
/* Serialises and writes atomically to path. */
rs_err st_model_save(const st_model *m, const char *path, rs_error *e);

/*
 * Loads path. On success *out is a new model the caller destroys. Refused,
 * with a message naming path and the problem: a file shorter than 8 bytes,
 * a header length over ST_HEADER_MAX or past the end of the file, a header
 * that is not one JSON object (or has trailing non-space bytes), an entry
 * that is not {dtype, shape, data_offsets}, an unknown dtype, a shape whose
 * byte size differs from end - begin, begin > end, offsets that overlap,
 * leave a gap, do not start at 0 or do not end exactly at the end of the
 * file (truncated or trailing bytes), duplicate tensor names, more than
 * ST_TENSORS_MAX tensors or ST_META_MAX metadata pairs, a metadata value
 * that is not a string.
 */
rs_err st_model_load(const char *path, st_model **out, rs_error *e);

/* The same checks on an in-memory file image; label names it in errors.
 * Tensor bytes are copied out of buf. */
rs_err st_model_parse(const uint8_t *buf, size_t len, const char *label, st_model **out,
                      rs_error *e);

#endif
