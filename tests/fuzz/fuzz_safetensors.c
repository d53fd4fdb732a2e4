/*
 * fuzz_safetensors.c: st_model_parse over arbitrary bytes. Any input must be
 * refused with a message naming the file, or accepted as a model whose
 * serialisation parses back to the same tensors and metadata. Runs under
 * libFuzzer (scripts/fuzz safetensors) and, through replay_main.c, in ctest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "safetensors.h"

static void check_same(const st_model *a, const st_model *b)
{
    if (a->ntensors != b->ntensors || a->nmeta != b->nmeta) {
        abort();
    }
    for (size_t i = 0; i < a->ntensors; i++) {
        const st_tensor *x = &a->tensors[i];
        const st_tensor *y = &b->tensors[i];
        if (strcmp(x->name, y->name) != 0 || x->dtype != y->dtype || x->ndim != y->ndim ||
            x->nbytes != y->nbytes || memcmp(x->shape, y->shape, sizeof x->shape) != 0) {
            abort();
        }
        if (x->nbytes > 0 && memcmp(x->data, y->data, x->nbytes) != 0) {
            abort();
        }
    }
    for (size_t i = 0; i < a->nmeta; i++) {
        if (strcmp(a->meta[i].key, b->meta[i].key) != 0 ||
            strcmp(a->meta[i].value, b->meta[i].value) != 0) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_model *m = NULL;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = st_model_parse(data, size, "fuzz.safetensors", &m, &e);
    if (rc != RS_OK) {
        if (m != NULL || e.code != rc || strncmp(e.msg, "fuzz.safetensors: ", 18) != 0) {
            abort();
        }
        return 0;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = st_model_serialize(m, &buf, &len, &e);
    if (rc == RS_OK) {
        st_model *back = NULL;
        if (st_model_parse(buf, len, "again", &back, &e) != RS_OK) {
            fprintf(stderr, "fuzz_safetensors: accepted input does not re-parse: %s\n", e.msg);
            abort();
        }
        check_same(m, back);
        st_model_destroy(back);
        free(buf);
    } else if (rc != RS_ENOMEM && rc != RS_ETOOBIG) {
        abort();
    }
    st_model_destroy(m);
    return 0;
}
