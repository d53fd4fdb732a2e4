/*
 * ckpt_test.c: .safetensors checkpoints. A model survives save -> load with
 * every byte intact and re-serialises bit-identically; every malformed file
 * (truncated at every length, bad header length, bad JSON, unknown dtype,
 * shape/offset mismatch, overlapping, gapped, out-of-order or trailing
 * offsets, duplicate names, caps) is refused with a message that names the
 * file; a file written here reads in Python with only json + numpy
 * (scripts/safetensors_read.py) to the same values.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

/* ---- helpers ---------------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rs_ckpt_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (d == NULL) {
        return;
    }
    struct dirent *ent;
    char path[512];
    while ((ent = readdir(d)) != NULL) {
        if (ent->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", tmpdir, ent->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(ckpt, .init = make_tmpdir, .fini = remove_tmpdir);

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    if (len > 0) {
        cr_assert_eq(fwrite(data, 1, len, f), len);
    }
    fclose(f);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A raw file image: 8-byte length (hlen, or strlen(json) when hlen is
 * UINT64_MAX), the JSON, then data_len bytes of data. */
static uint8_t *image(const char *json, uint64_t hlen, size_t data_len, size_t *len)
{
    size_t jl = strlen(json);
    if (hlen == UINT64_MAX) {
        hlen = jl;
    }
    *len = 8 + jl + data_len;
    uint8_t *buf = calloc(1, *len);
    cr_assert_not_null(buf);
    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)(hlen >> (8 * i));
    }
    memcpy(buf + 8, json, jl);
    for (size_t i = 0; i < data_len; i++) {
        buf[8 + jl + i] = (uint8_t)(i * 37 + 1);
    }
    return buf;
}

/* Writes the image to <tmp>/<name>, loads it, expects a refusal whose
 * message names the file and contains want. */
static void refused_file(const char *name, const uint8_t *buf, size_t len, const char *want)
{
    char path[512];
    tmp_path(path, sizeof path, name);
    write_file(path, buf, len);
    st_model *m = NULL;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = st_model_load(path, &m, &e);
    cr_assert_neq(rc, RS_OK, "%s: loaded but should be refused", name);
    cr_assert_null(m, "%s: *out set on failure", name);
    cr_assert_eq(e.code, rc);
    cr_assert(strstr(e.msg, path) == e.msg, "%s: message does not start with the file: %s", name,
              e.msg);
    cr_assert(strstr(e.msg, want) != NULL, "%s: message \"%s\" lacks \"%s\"", name, e.msg, want);
    /* the in-memory path applies the same checks */
    rs_error_clear(&e);
    rc = st_model_parse(buf, len, name, &m, &e);
    cr_assert_neq(rc, RS_OK, "%s: parse accepted it", name);
    cr_assert(strstr(e.msg, want) != NULL, "%s (parse): \"%s\" lacks \"%s\"", name, e.msg, want);
    unlink(path);
}

static void refused_json(const char *name, const char *json, size_t data_len, const char *want)
{
    size_t len;
    uint8_t *buf = image(json, UINT64_MAX, data_len, &len);
    refused_file(name, buf, len, want);
    free(buf);
}

/* The model every test saves: odd values, several dtypes, a scalar and an
 * empty tensor, lineage metadata. */
static st_model *sample_model(void)
{
    st_model *m = NULL;
    rs_error e;
    cr_assert_eq(st_model_create(&m, &e), RS_OK);
    float w[15];
    for (int i = 0; i < 15; i++) {
        w[i] = (float)(i - 7) / 3.0f;
    }
    w[0] = -0.0f;
    w[1] = 1e-40f; /* subnormal */
    w[2] = 3.4028235e38f;
    w[3] = -1.17549435e-38f;
    int64_t s35[2] = {3, 5};
    cr_assert_eq(st_model_add(m, "enc0.conv.weight", ST_F32, 2, s35, w, &e), RS_OK, "%s", e.msg);
    int32_t ints[7] = {0, 1, -1, 2147483647, -2147483647 - 1, 42, -7};
    int64_t s7[1] = {7};
    cr_assert_eq(st_model_add(m, "step_counts", ST_I32, 1, s7, ints, &e), RS_OK);
    uint16_t halves[6] = {0x3c00, 0xbc00, 0x0000,
                          0x7bff, 0x0001, 0x3555}; /* 1, -1, 0, max, tiny, 1/3 */
    int64_t s23[2] = {2, 3};
    cr_assert_eq(st_model_add(m, "half", ST_F16, 2, s23, halves, &e), RS_OK);
    int64_t s0[1] = {0};
    cr_assert_eq(st_model_add(m, "empty", ST_U8, 1, s0, NULL, &e), RS_OK);
    double scalar = 0.1;
    cr_assert_eq(st_model_add(m, "lr", ST_F64, 0, NULL, &scalar, &e), RS_OK);
    const char *clips[] = {"xxh3:00ff00ff00ff00ff", "xxh3:1234567890abcdef"};
    st_lineage l = {.task_kind = "denoise",
                    .clip_hashes = clips,
                    .nclips = 2,
                    .parent = "xxh3:feedfacecafebeef",
                    .steps = 1500,
                    .loss = 0.012345678901234567,
                    .config_json = "{\"depth\":4,\"base\":32,\"name\":\"caf\xc3\xa9 \\\"q\\\"\"}"};
    cr_assert_eq(st_model_lineage_set(m, &l, &e), RS_OK, "%s", e.msg);
    return m;
}

static void assert_same_model(const st_model *a, const st_model *b)
{
    cr_assert_eq(a->ntensors, b->ntensors);
    for (size_t i = 0; i < a->ntensors; i++) {
        const st_tensor *x = &a->tensors[i];
        const st_tensor *y = &b->tensors[i];
        cr_assert_str_eq(x->name, y->name);
        cr_assert_eq(x->dtype, y->dtype, "%s", x->name);
        cr_assert_eq(x->ndim, y->ndim, "%s", x->name);
        for (int d = 0; d < x->ndim; d++) {
            cr_assert_eq(x->shape[d], y->shape[d]);
        }
        cr_assert_eq(x->nbytes, y->nbytes);
        cr_assert(x->nbytes == 0 || memcmp(x->data, y->data, x->nbytes) == 0, "%s: bytes differ",
                  x->name);
    }
    cr_assert_eq(a->nmeta, b->nmeta);
    for (size_t i = 0; i < a->nmeta; i++) {
        cr_assert_str_eq(a->meta[i].key, b->meta[i].key);
        cr_assert_str_eq(a->meta[i].value, b->meta[i].value);
    }
}

/* ---- round trip ------------------------------------------------------------- */

Test(ckpt, round_trip_bit_identical)
{
    st_model *m = sample_model();
    char path[512];
    tmp_path(path, sizeof path, "model.safetensors");
    rs_error e;
    cr_assert_eq(st_model_save(m, path, &e), RS_OK, "%s", e.msg);
    st_model *back = NULL;
    cr_assert_eq(st_model_load(path, &back, &e), RS_OK, "%s", e.msg);
    assert_same_model(m, back);
    /* header padded: the data section starts 8-aligned */
    size_t flen;
    uint8_t *file = read_file(path, &flen);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) {
        hlen = (hlen << 8) | file[i];
    }
    cr_assert_eq(hlen % 8, 0);
    cr_assert_eq(file[8], '{');
    /* load -> serialise gives the same file, byte for byte */
    uint8_t *again = NULL;
    size_t alen = 0;
    cr_assert_eq(st_model_serialize(back, &again, &alen, &e), RS_OK);
    cr_assert_eq(alen, flen);
    cr_assert(memcmp(again, file, flen) == 0, "re-serialised file differs");
    const st_tensor *t = st_model_find(back, "enc0.conv.weight");
    cr_assert_not_null(t);
    cr_assert_eq(((uintptr_t)t->data) % 4, 0, "F32 data not 4-aligned after load");
    float f1;
    memcpy(&f1, (const uint8_t *)t->data + 4, 4);
    cr_assert_eq(f1, 1e-40f);
    cr_assert(signbit(((const float *)t->data)[0]), "-0 lost its sign");
    cr_assert_null(st_model_find(back, "nope"));
    free(again);
    free(file);
    st_model_destroy(back);
    st_model_destroy(m);
}

Test(ckpt, lineage_round_trip)
{
    st_model *m = sample_model();
    char path[512];
    tmp_path(path, sizeof path, "lineage.safetensors");
    rs_error e;
    cr_assert_eq(st_model_save(m, path, &e), RS_OK, "%s", e.msg);
    st_model *back = NULL;
    cr_assert_eq(st_model_load(path, &back, &e), RS_OK, "%s", e.msg);
    int64_t steps = 0;
    double loss = 0;
    cr_assert_eq(st_model_lineage_numbers(back, &steps, &loss, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(steps, 1500);
    cr_assert_eq(loss, 0.012345678901234567, "loss not exact: %.17g", loss);
    cr_assert_str_eq(st_model_meta_get(back, ST_META_TASK_KIND), "denoise");
    cr_assert_str_eq(st_model_meta_get(back, ST_META_PARENT), "xxh3:feedfacecafebeef");
    cr_assert_str_eq(st_model_meta_get(back, ST_META_CLIPS),
                     "[\"xxh3:00ff00ff00ff00ff\",\"xxh3:1234567890abcdef\"]");
    cr_assert_str_eq(st_model_meta_get(back, ST_META_CONFIG),
                     "{\"depth\":4,\"base\":32,\"name\":\"caf\xc3\xa9 \\\"q\\\"\"}");
    cr_assert_str_eq(st_model_meta_get(back, ST_META_FORMAT), "1");
    /* replacing a key keeps one pair */
    cr_assert_eq(st_model_meta_set(back, ST_META_STEPS, "1501", &e), RS_OK);
    cr_assert_str_eq(st_model_meta_get(back, ST_META_STEPS), "1501");
    cr_assert_eq(back->nmeta, m->nmeta);
    cr_assert_eq(st_model_meta_set(back, ST_META_LOSS, "nan-ish", &e), RS_OK);
    cr_assert_eq(st_model_lineage_numbers(back, NULL, NULL, &e), RS_EINVAL);
    st_model_destroy(back);
    st_model_destroy(m);
}

Test(ckpt, borrowed_and_empty_model)
{
    st_model *m = NULL;
    rs_error e;
    cr_assert_eq(st_model_create(&m, &e), RS_OK);
    float data[4] = {1, 2, 3, 4};
    int64_t s[1] = {4};
    cr_assert_eq(st_model_add_borrowed(m, "b", ST_F32, 1, s, data, &e), RS_OK);
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(st_model_serialize(m, &buf, &len, &e), RS_OK);
    st_model *back = NULL;
    cr_assert_eq(st_model_parse(buf, len, "mem", &back, &e), RS_OK, "%s", e.msg);
    assert_same_model(m, back);
    cr_assert_eq(st_model_add(back, "x", ST_F32, 1, s, data, &e), RS_ESTATE);
    free(buf);
    st_model_destroy(back);
    st_model_destroy(m);
    /* a model with nothing in it is a valid file too */
    cr_assert_eq(st_model_create(&m, &e), RS_OK);
    cr_assert_eq(st_model_serialize(m, &buf, &len, &e), RS_OK);
    cr_assert_eq(st_model_parse(buf, len, "empty", &back, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(back->ntensors, 0);
    free(buf);
    st_model_destroy(back);
    st_model_destroy(m);
    st_model_destroy(NULL);
}

Test(ckpt, add_refusals)
{
    st_model *m = NULL;
    rs_error e;
    cr_assert_eq(st_model_create(&m, &e), RS_OK);
    float v = 1;
    int64_t one[1] = {1};
    int64_t neg[1] = {-1};
    cr_assert_eq(st_model_add(m, "a", ST_F32, 1, one, &v, &e), RS_OK);
    cr_assert_eq(st_model_add(m, "a", ST_F32, 1, one, &v, &e), RS_EEXIST);
    cr_assert(strstr(e.msg, "\"a\"") != NULL, "%s", e.msg);
    cr_assert_eq(st_model_add(m, "__metadata__", ST_F32, 1, one, &v, &e), RS_EINVAL);
    cr_assert_eq(st_model_add(m, "", ST_F32, 1, one, &v, &e), RS_EINVAL);
    cr_assert_eq(st_model_add(m, "n", ST_F32, 1, neg, &v, &e), RS_EINVAL);
    cr_assert_eq(st_model_add(m, "d", ST_F32, ST_MAX_DIMS + 1, one, &v, &e), RS_EINVAL);
    cr_assert_eq(st_model_add(m, "t", ST_DTYPE_COUNT, 1, one, &v, &e), RS_EINVAL);
    cr_assert_eq(m->ntensors, 1);
    st_dtype dt;
    cr_assert_eq(st_dtype_parse("BF16", &dt), RS_OK);
    cr_assert_eq(dt, ST_BF16);
    cr_assert_eq(st_dtype_parse("F12", &dt), RS_EINVAL);
    cr_assert_eq(st_dtype_size(ST_I64), 8);
    st_model_destroy(m);
}

Test(ckpt, save_is_atomic_and_names_the_file)
{
    st_model *m = sample_model();
    char path[512];
    tmp_path(path, sizeof path, "atomic.safetensors");
    rs_error e;
    write_file(path, "old contents", 12);
    cr_assert_eq(st_model_save(m, path, &e), RS_OK, "%s", e.msg);
    st_model *back = NULL;
    cr_assert_eq(st_model_load(path, &back, &e), RS_OK, "%s", e.msg);
    st_model_destroy(back);
    /* nothing but the final file is left in the folder */
    DIR *d = opendir(tmpdir);
    int files = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (ent->d_name[0] != '.') {
            files++;
            cr_assert_str_eq(ent->d_name, "atomic.safetensors");
        }
    }
    closedir(d);
    cr_assert_eq(files, 1);
    rs_error_clear(&e);
    cr_assert_neq(st_model_save(m, "/nonexistent-dir-rs/x.safetensors", &e), RS_OK);
    cr_assert(strstr(e.msg, "/nonexistent-dir-rs/x.safetensors") != NULL, "%s", e.msg);
    rs_error_clear(&e);
    cr_assert_eq(st_model_load("/nonexistent-dir-rs/x.safetensors", &back, &e), RS_ENOENT);
    cr_assert(strstr(e.msg, "/nonexistent-dir-rs/x.safetensors") != NULL, "%s", e.msg);
    st_model_destroy(m);
}

/* ---- refusals ----------------------------------------------------------------- */

Test(ckpt, truncated_at_every_length)
{
    st_model *m = sample_model();
    uint8_t *buf = NULL;
    size_t len = 0;
    rs_error e;
    cr_assert_eq(st_model_serialize(m, &buf, &len, &e), RS_OK);
    char path[512];
    tmp_path(path, sizeof path, "cut.safetensors");
    for (size_t cut = 0; cut < len; cut++) {
        write_file(path, buf, cut);
        st_model *back = NULL;
        rs_error_clear(&e);
        rs_err rc = st_model_load(path, &back, &e);
        cr_assert_neq(rc, RS_OK, "cut at %zu of %zu loaded", cut, len);
        cr_assert(strstr(e.msg, path) == e.msg, "cut %zu: %s", cut, e.msg);
        if (cut < 8 || cut >= len - 8) {
            cr_assert(strstr(e.msg, "truncated") != NULL, "cut %zu: %s", cut, e.msg);
        }
    }
    write_file(path, buf, len);
    st_model *back = NULL;
    cr_assert_eq(st_model_load(path, &back, &e), RS_OK, "%s", e.msg);
    st_model_destroy(back);
    free(buf);
    st_model_destroy(m);
}

Test(ckpt, garbled_bytes_never_crash)
{
    st_model *m = sample_model();
    uint8_t *buf = NULL;
    size_t len = 0;
    rs_error e;
    cr_assert_eq(st_model_serialize(m, &buf, &len, &e), RS_OK);
    uint64_t s = 12345;
    int refused = 0;
    for (int round = 0; round < 3000; round++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        for (int k = 0; k < 1 + round % 4; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(s >> 33) % len;
            copy[at] ^= (uint8_t)(1u << ((s >> 20) % 8));
        }
        st_model *back = NULL;
        rs_error_clear(&e);
        rs_err rc = st_model_parse(copy, len, "garbled", &back, &e);
        if (rc != RS_OK) {
            refused++;
            cr_assert(strncmp(e.msg, "garbled: ", 9) == 0, "%s", e.msg);
            cr_assert_null(back);
        }
        st_model_destroy(back);
        free(copy);
    }
    cr_assert(refused > 100, "only %d of 3000 garbled files refused", refused);
    free(buf);
    st_model_destroy(m);
}

Test(ckpt, header_length_refusals)
{
    uint8_t five[5] = {1, 2, 3, 4, 5};
    refused_file("empty.safetensors", five, 0, "truncated");
    refused_file("five.safetensors", five, 5, "truncated");
    size_t len;
    uint8_t *buf = image("{}", 1000, 0, &len);
    refused_file("beyond.safetensors", buf, len, "beyond the file size");
    free(buf);
    buf = image("{}", (uint64_t)1 << 40, 0, &len);
    refused_file("huge.safetensors", buf, len, "cap");
    free(buf);
    buf = image("{}", UINT64_MAX - 1, 0, &len);
    refused_file("max.safetensors", buf, len, "cap");
    free(buf);
}

Test(ckpt, json_refusals)
{
    refused_json("badjson.safetensors", "{\"a\": {\"dtype\": \"F32\",", 0, "not valid JSON");
    refused_json("array.safetensors", "[1, 2]", 0, "does not start with '{'");
    refused_json("trailing.safetensors", "{} x", 0, "bytes after its JSON object");
    refused_json("notobj.safetensors", "{\"a\": 3}", 0, "not an object");
    refused_json("nodtype.safetensors", "{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                 "dtype missing");
    refused_json("noshape.safetensors", "{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}",
                 4, "shape missing");
    refused_json("nooffs.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4,
                 "data_offsets is not");
    refused_json("offs3.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 4,
                 "data_offsets is not");
    refused_json("metanum.safetensors", "{\"__metadata__\": {\"steps\": 5}}", 0, "not a string");
    refused_json("metaarr.safetensors", "{\"__metadata__\": [\"x\"]}", 0,
                 "__metadata__ is not an object");
    refused_json("metadup.safetensors", "{\"__metadata__\": {\"k\": \"a\", \"k\": \"b\"}}", 0,
                 "duplicate metadata key");
    refused_json("metatwice.safetensors", "{\"__metadata__\": {}, \"__metadata__\": {}}", 0,
                 "duplicate \"__metadata__\"");
}

Test(ckpt, tensor_refusals)
{
    refused_json("dtype.safetensors",
                 "{\"a\": {\"dtype\": \"F12\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                 "unknown dtype \"F12\"");
    refused_json("mismatch.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 20,
                 "shape/offset mismatch");
    refused_json("negshape.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
                 "shape[0] is not a non-negative integer");
    refused_json("fracshape.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4,
                 "shape[0] is not a non-negative integer");
    refused_json("dims.safetensors",
                 "{\"a\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], "
                 "\"data_offsets\": [0, 1]}}",
                 1, "9 dimensions");
    refused_json("overflow.safetensors",
                 "{\"a\": {\"dtype\": \"F64\", \"shape\": [4294967296, 4294967296, 4], "
                 "\"data_offsets\": [0, 8]}}",
                 8, "overflows");
    refused_json("order.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4,
                 "out of order");
    refused_json("overlap.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                 " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                 12, "overlaps");
    refused_json("gap.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                 " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
                 12, "gap of 4 bytes");
    refused_json("startgap.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
                 "gap of 4 bytes");
    refused_json("tail.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 9,
                 "5 bytes after the last tensor");
    refused_json("short.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 10,
                 "truncated");
    refused_json("dup.safetensors",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                 " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                 8, "duplicate tensor name \"a\"");
    refused_json("emptyname.safetensors",
                 "{\"\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                 "tensor name empty");
}

Test(ckpt, out_of_file_order_is_accepted)
{
    /* header order need not follow data order (other writers sort by name) */
    const char *json = "{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
                       " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                       " \"z\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [8, 8]}}";
    size_t len;
    uint8_t *buf = image(json, UINT64_MAX, 8, &len);
    st_model *m = NULL;
    rs_error e;
    cr_assert_eq(st_model_parse(buf, len, "mem", &m, &e), RS_OK, "%s", e.msg);
    const st_tensor *a = st_model_find(m, "a");
    const st_tensor *b = st_model_find(m, "b");
    cr_assert_eq(memcmp(a->data, buf + len - 8, 4), 0);
    cr_assert_eq(memcmp(b->data, buf + len - 4, 4), 0);
    st_model_destroy(m);
    free(buf);
}

Test(ckpt, tensor_count_cap)
{
    size_t cap = (size_t)(ST_TENSORS_MAX + 1) * 64 + 16;
    char *json = malloc(cap);
    cr_assert_not_null(json);
    size_t at = 0;
    at += (size_t)snprintf(json + at, cap - at, "{");
    for (int i = 0; i <= ST_TENSORS_MAX; i++) {
        at += (size_t)snprintf(json + at, cap - at,
                               "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}",
                               i > 0 ? "," : "", i);
    }
    snprintf(json + at, cap - at, "}");
    refused_json("count.safetensors", json, 0, "more than 65536 tensors");
    free(json);
}

/* ---- an outside reader ------------------------------------------------------------- */

/* Parses one "values" line into doubles. */
static size_t parse_values(const char *line, double *out, size_t max)
{
    size_t n = 0;
    const char *p = line;
    while (*p != '\0' && *p != '\n' && n < max) {
        char *end;
        out[n++] = strtod(p, &end);
        cr_assert(end != p, "bad value in: %s", line);
        p = end;
        while (*p == ' ') {
            p++;
        }
    }
    return n;
}

Test(ckpt, python_reader_sees_the_same_values, .timeout = 60)
{
    if (system("/usr/bin/python3 -c 'import json, numpy' >/dev/null 2>&1") != 0) {
        cr_skip_test("/usr/bin/python3 has no numpy (scripts/setup installs python3-numpy)");
    }
    st_model *m = sample_model();
    char path[512];
    char outp[512];
    tmp_path(path, sizeof path, "py.safetensors");
    tmp_path(outp, sizeof outp, "py.txt");
    rs_error e;
    cr_assert_eq(st_model_save(m, path, &e), RS_OK, "%s", e.msg);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/scripts/safetensors_read.py --values %s > %s",
             RS_SOURCE_DIR, path, outp);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    FILE *f = fopen(outp, "r");
    cr_assert_not_null(f);
    char *line = NULL;
    size_t cap = 0;
    const st_tensor *cur = NULL;
    size_t tensors_seen = 0;
    size_t meta_seen = 0;
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "meta\t", 5) == 0) {
            char *key = line + 5;
            char *tab = strchr(key, '\t');
            cr_assert_not_null(tab);
            *tab = '\0';
            const char *want = st_model_meta_get(m, key);
            cr_assert_not_null(want, "python saw unknown key %s", key);
            cr_assert_str_eq(tab + 1, want, "meta %s", key);
            meta_seen++;
        } else if (strncmp(line, "tensor\t", 7) == 0) {
            char *name = line + 7;
            char *tab = strchr(name, '\t');
            *tab = '\0';
            cur = st_model_find(m, name);
            cr_assert_not_null(cur, "python saw unknown tensor %s", name);
            char *dtype = tab + 1;
            tab = strchr(dtype, '\t');
            *tab = '\0';
            cr_assert_str_eq(dtype, st_dtype_name(cur->dtype));
            char *shape = tab + 1;
            tab = strchr(shape, '\t');
            *tab = '\0';
            char want[128] = "";
            for (int d = 0; d < cur->ndim; d++) {
                size_t l = strlen(want);
                snprintf(want + l, sizeof want - l, "%s%" PRId64, d > 0 ? "," : "", cur->shape[d]);
            }
            cr_assert_str_eq(shape, want, "%s shape", cur->name);
            tensors_seen++;
        } else if (strncmp(line, "values\t", 7) == 0) {
            cr_assert_not_null(cur);
            double vals[64];
            size_t n = parse_values(line + 7, vals, 64);
            size_t count = cur->nbytes / st_dtype_size(cur->dtype);
            cr_assert_eq(n, count, "%s: python read %zu values, want %zu", cur->name, n, count);
            for (size_t i = 0; i < n; i++) {
                double want = 0;
                if (cur->dtype == ST_F32) {
                    want = ((const float *)cur->data)[i];
                    float got = (float)vals[i];
                    cr_assert(memcmp(&got, (const float *)cur->data + i, 4) == 0,
                              "%s[%zu]: %.9g vs %.9g", cur->name, i, (double)got, want);
                    continue;
                } else if (cur->dtype == ST_I32) {
                    want = ((const int32_t *)cur->data)[i];
                } else if (cur->dtype == ST_F64) {
                    want = ((const double *)cur->data)[i];
                } else if (cur->dtype == ST_F16) {
                    uint16_t h = ((const uint16_t *)cur->data)[i];
                    int ex = (h >> 10) & 31;
                    int mant = h & 1023;
                    want = ex == 0 ? ldexp(mant, -24) : ldexp(1024 + mant, ex - 25);
                    want = (h & 0x8000) ? -want : want;
                } else {
                    want = ((const uint8_t *)cur->data)[i];
                }
                cr_assert_eq(vals[i], want, "%s[%zu]: python %.17g, want %.17g", cur->name, i,
                             vals[i], want);
            }
        }
    }
    free(line);
    fclose(f);
    cr_assert_eq(tensors_seen, m->ntensors);
    cr_assert_eq(meta_seen, m->nmeta);
    st_model_destroy(m);
}
