/*
 * spv.h: the SPIR-V shaders embedded in the binary. The table is generated
 * at build time (cmake/shaders.cmake) from the shaders/ .comp files, one entry per
 * variant, named "<shader>" or "<shader>.<variant>" (e.g. "conv_fwd.reg",
 * "conv_fwd.smem"). Feature flags say which variants glslc could build.
 */
#ifndef RS_ENGINE_SPV_H
#define RS_ENGINE_SPV_H

#include <stddef.h>
#include <stdint.h>

typedef struct rs_spv {
    const char *name;
    const uint32_t *code;
    size_t size; /* bytes, a multiple of 4 */
} rs_spv;

extern const rs_spv rs_spv_table[];
extern const size_t rs_spv_count;

/* The entry named name, or NULL. */
const rs_spv *rs_spv_find(const char *name);

#endif
