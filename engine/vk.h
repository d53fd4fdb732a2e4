/*
 * vk.h: the engine's thin layer over Vulkan compute: one context (instance,
 * chosen physical device, one compute queue), device buffers with a reuse
 * pool, pipelines built from the embedded SPIR-V and cached by shader name
 * plus specialisation constants, and recorded command sequences that insert
 * buffer memory barriers by themselves, can be submitted many times, and
 * carry timestamp queries for profiling.
 *
 * Every Vulkan call is checked and turned into RS_EVK with the call's name;
 * nothing here aborts. Validation layers are enabled when the environment
 * has RUSHES_VK_VALIDATION=1 (or opts ask for it); every warning or error
 * they report is printed and counted (vk_ctx_validation_errors), so tests
 * can demand a clean run. Not thread-safe: one thread drives one context.
 */
#ifndef RS_ENGINE_VK_H
#define RS_ENGINE_VK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef struct vk_ctx vk_ctx;
typedef struct vk_buf vk_buf;
typedef struct vk_pipe vk_pipe;
typedef struct vk_seq vk_seq;

/* Kernel variant families (ggml-style, chosen by the device). */
typedef enum vk_variant {
    VK_VARIANT_AUTO = -1,
    VK_VARIANT_REG = 0,  /* register tiling, no shared memory: CPU devices (lavapipe) */
    VK_VARIANT_SMEM = 1, /* shared-memory tiling + subgroup reductions: GPUs */
    /* fp16 storage: convolution operands held as fp16 in buffers (half the
     * bytes moved), accumulated in fp32; every other op as REG. Only where
     * the device has storageBuffer16BitAccess and glslc built the kernels;
     * never chosen by default (on lavapipe it is slower: bench/RESULTS.md). */
    VK_VARIANT_F16 = 2,
} vk_variant;

typedef struct vk_ctx_opts {
    /* -1: best (discrete > integrated > virtual > cpu); env RUSHES_VK_DEVICE wins */
    int device_index;
    int validation;     /* -1: from env RUSHES_VK_VALIDATION; 0 off; 1 on */
    vk_variant variant; /* AUTO: env RUSHES_VK_VARIANT (reg|smem|f16), else by device type */
    /* 1: never map device buffers, copy through the staging buffer as on a
     * discrete GPU (lets tests on lavapipe exercise that path) */
    int force_staging;
} vk_ctx_opts;

/* What the chosen device can do, read once at creation. */
typedef struct vk_caps {
    char name[256];
    int type; /* VkPhysicalDeviceType */
    uint32_t api_version;
    uint32_t subgroup_size;
    bool subgroup_arith; /* compute-stage subgroup arithmetic and the smem shaders built */
    bool fp16;           /* shaderFloat16 + storageBuffer16BitAccess */
    bool coopmat;        /* VK_KHR_cooperative_matrix and glslc built such shaders */
    uint32_t max_shared; /* maxComputeSharedMemorySize */
    uint32_t max_wg_invocations;
    bool timestamps;
    double timestamp_ns; /* nanoseconds per timestamp tick */
    vk_variant variant;  /* the variant ops will use by default */
    bool fp16_storage;   /* storageBuffer16BitAccess (enabled) and the f16 shaders built */
} vk_caps;

/* opts may be NULL (all defaults). *out is set only on success. */
rs_err vk_ctx_create(const vk_ctx_opts *opts, vk_ctx **out, rs_error *e);
/* Waits for the device to go idle, then frees everything. Accepts NULL. */
void vk_ctx_destroy(vk_ctx *ctx);
const vk_caps *vk_ctx_caps(const vk_ctx *ctx);
/* Validation messages of severity warning or error seen so far. */
uint32_t vk_ctx_validation_errors(const vk_ctx *ctx);
bool vk_ctx_validation_enabled(const vk_ctx *ctx);

/*
 * Device buffers. Memory is device-local; host access goes through a
 * mapping when the memory is also host-visible (integrated GPUs, lavapipe)
 * and through a staging buffer otherwise. Destroying a buffer returns its
 * block to the context's pool, and a later create of a similar size reuses
 * it. Sizes are in bytes; 0 is refused.
 */
rs_err vk_buf_create(vk_ctx *ctx, size_t bytes, vk_buf **out, rs_error *e);
void vk_buf_destroy(vk_buf *buf);
size_t vk_buf_size(const vk_buf *buf);
/* Host <-> buffer copies; wait for nothing, so call them between submits. */
rs_err vk_buf_write(vk_buf *buf, size_t offset, const void *src, size_t n, rs_error *e);
rs_err vk_buf_read(const vk_buf *buf, size_t offset, void *dst, size_t n, rs_error *e);
/* Pool statistics, for tests: blocks created so far and blocks reused. */
void vk_ctx_pool_stats(const vk_ctx *ctx, uint32_t *created, uint32_t *reused);

/*
 * Pipelines: shader is an embedded name (spv.h); spec holds the values of
 * specialisation constants 0..nspec-1 (all int32); nbind storage buffers at
 * bindings 0..nbind-1; push_bytes of push constants. Cached in the context
 * (same name + spec gives the same pipeline); the context owns it.
 */
#define VK_MAX_BINDINGS 8
#define VK_MAX_SPEC 16
#define VK_MAX_PUSH 128
rs_err vk_pipe_get(vk_ctx *ctx, const char *shader, const int32_t *spec, uint32_t nspec,
                   uint32_t nbind, uint32_t push_bytes, vk_pipe **out, rs_error *e);

/*
 * Command sequences. Record between vk_seq_begin and vk_seq_end, then
 * submit any number of times (each submit waits for completion). Dispatches
 * name the buffers they bind and which of them they write (bit i = binding
 * i); the sequence inserts a buffer memory barrier before a dispatch that
 * reads or writes something an earlier one wrote, or writes something an
 * earlier one read, since the last barrier.
 */
rs_err vk_seq_create(vk_ctx *ctx, vk_seq **out, rs_error *e);
void vk_seq_destroy(vk_seq *seq);
/* Starts (or restarts) recording; drops what was recorded before. */
rs_err vk_seq_begin(vk_seq *seq, rs_error *e);
rs_err vk_seq_dispatch(vk_seq *seq, vk_pipe *pipe, vk_buf *const *bufs, uint32_t nbufs,
                       uint32_t write_mask, const void *push, uint32_t gx, uint32_t gy, uint32_t gz,
                       rs_error *e);
/* Fills a whole buffer with a 32-bit pattern (0 gives 0.0f). */
rs_err vk_seq_fill(vk_seq *seq, vk_buf *buf, uint32_t pattern, rs_error *e);
rs_err vk_seq_copy(vk_seq *seq, vk_buf *src, vk_buf *dst, size_t bytes, rs_error *e);
/* Records a timestamp after all work so far; returns its index (>= 0) or
 * -1 when the device has no timestamps or the pool (1024) is full. */
int vk_seq_timestamp(vk_seq *seq);
rs_err vk_seq_end(vk_seq *seq, rs_error *e);
rs_err vk_seq_submit(vk_seq *seq, rs_error *e);
/* Milliseconds between two timestamps of the last submit; < 0 if unknown. */
double vk_seq_elapsed_ms(vk_seq *seq, int from, int to);
/* Dispatches and barriers recorded, for tests and profiling. */
void vk_seq_stats(const vk_seq *seq, uint32_t *dispatches, uint32_t *barriers);
/* With RUSHES_VK_PROFILE=1 in the environment when a sequence is created,
 * every dispatch is followed by a timestamp (up to 1023 per recording);
 * this prints the last submit's time per pipeline to f. */
void vk_seq_profile_print(vk_seq *seq, FILE *f);

#endif
