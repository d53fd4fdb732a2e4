/*
 * vk.c: Vulkan context, buffers with a reuse pool, cached compute pipelines
 * and self-synchronising command sequences (see vk.h). Every Vulkan call
 * goes through VK_CHECK, which records the call's name in the rs_error and
 * jumps to the function's single exit; nothing here aborts.
 */
#include "vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <vulkan/vulkan.h>

#include "spv.h"

#define VK_CHECK(call)                                                                             \
    do {                                                                                           \
        VkResult vk_rc_ = (call);                                                                  \
        if (vk_rc_ != VK_SUCCESS) {                                                                \
            rc = rs_error_set(e, RS_EVK, "%s failed: VkResult %d", #call, (int)vk_rc_);            \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define POOL_KEEP_MAX 256 /* freed blocks kept for reuse */
#define DESC_SETS_PER_POOL 256
#define SEQ_MAX_POOLS 256
#define SEQ_MAX_TRACK 64
#define SEQ_MAX_TS 1024

struct vk_buf {
    vk_ctx *ctx;
    VkBuffer buf;
    VkDeviceMemory mem;
    size_t cap;  /* bytes allocated */
    size_t size; /* bytes asked for */
    void *map;   /* persistent mapping, or NULL when memory is not host-visible */
    vk_buf *next;
};

struct vk_pipe {
    char name[64];
    int32_t spec[VK_MAX_SPEC];
    uint32_t nspec;
    uint32_t nbind;
    uint32_t push_bytes;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
    vk_pipe *next;
};

struct vk_ctx {
    VkInstance inst;
    VkDebugUtilsMessengerEXT msgr;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkCommandPool cpool;
    VkCommandBuffer xfer_cb;
    VkFence xfer_fence;
    VkPipelineCache pcache;
    VkPhysicalDeviceMemoryProperties memprops;
    bool prefer_host_visible;
    bool force_staging;
    /* staging for devices whose buffers are not host-visible */
    VkBuffer stg;
    VkDeviceMemory stg_mem;
    void *stg_map;
    size_t stg_size;
    vk_buf *free_blocks;
    uint32_t nfree;
    uint32_t created;
    uint32_t reused;
    vk_pipe *pipes;
    bool validation;
    uint32_t validation_errors;
    vk_caps caps;
};

struct vk_seq {
    vk_ctx *ctx;
    VkCommandBuffer cb;
    VkFence fence;
    VkDescriptorPool pools[SEQ_MAX_POOLS];
    uint32_t npools;
    uint32_t cur_pool;
    VkQueryPool qpool;
    uint32_t nts;
    uint64_t ts[SEQ_MAX_TS];
    bool ts_valid;
    bool recording;
    bool recorded;
    vk_buf *wrote[SEQ_MAX_TRACK];
    uint32_t nwrote;
    vk_buf *read[SEQ_MAX_TRACK];
    uint32_t nread;
    uint32_t dispatches;
    uint32_t barriers;
    bool profile;                    /* RUSHES_VK_PROFILE: a timestamp after every dispatch */
    const char *ts_name[SEQ_MAX_TS]; /* pipeline that ended at each timestamp, NULL for user ones */
};

const rs_spv *rs_spv_find(const char *name)
{
    for (size_t i = 0; i < rs_spv_count; i++) {
        if (strcmp(rs_spv_table[i].name, name) == 0) {
            return &rs_spv_table[i];
        }
    }
    return NULL;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT sev, VkDebugUtilsMessageTypeFlagsEXT type,
              const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    vk_ctx *ctx = user;
    if (sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
               VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        ctx->validation_errors++;
        fprintf(stderr, "vulkan validation: %s\n", data != NULL ? data->pMessage : "?");
    }
    return VK_FALSE;
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static bool has_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) {
        return false;
    }
    VkLayerProperties *props = calloc(n, sizeof *props);
    if (props == NULL) {
        return false;
    }
    bool found = false;
    if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS) {
        for (uint32_t i = 0; i < n; i++) {
            if (strcmp(props[i].layerName, name) == 0) {
                found = true;
            }
        }
    }
    free(props);
    return found;
}

static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return 1;
    default:
        return 0;
    }
}

static int compute_family(VkPhysicalDevice pd)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    if (n == 0 || n > 64) {
        return -1;
    }
    VkQueueFamilyProperties props[64];
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, props);
    int fallback = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (props[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            /* a family with timestamps is worth more than one without */
            if (props[i].timestampValidBits > 0) {
                return (int)i;
            }
            if (fallback < 0) {
                fallback = (int)i;
            }
        }
    }
    return fallback;
}

static rs_err pick_device(vk_ctx *ctx, int want, rs_error *e)
{
    rs_err rc = RS_OK;
    VkPhysicalDevice *pds = NULL;
    uint32_t n = 0;
    VK_CHECK(vkEnumeratePhysicalDevices(ctx->inst, &n, NULL));
    if (n == 0) {
        rc = rs_error_set(e, RS_ENOENT, "no Vulkan devices");
        goto out;
    }
    pds = calloc(n, sizeof *pds);
    if (pds == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "device list");
        goto out;
    }
    VK_CHECK(vkEnumeratePhysicalDevices(ctx->inst, &n, pds));
    if (want >= 0) {
        if ((uint32_t)want >= n) {
            rc = rs_error_set(e, RS_ENOENT, "Vulkan device %d: no such device (%u found)", want, n);
            goto out;
        }
        if (compute_family(pds[want]) < 0) {
            rc = rs_error_set(e, RS_ENOENT, "Vulkan device %d has no compute queue", want);
            goto out;
        }
        ctx->pd = pds[want];
        goto out;
    }
    int best = -1;
    int best_rank = -1;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(pds[i], &p);
        if (p.apiVersion < VK_API_VERSION_1_1 || compute_family(pds[i]) < 0) {
            continue;
        }
        int r = type_rank(p.deviceType);
        if (r > best_rank) {
            best_rank = r;
            best = (int)i;
        }
    }
    if (best < 0) {
        rc = rs_error_set(e, RS_ENOENT, "no Vulkan 1.1 device with a compute queue (%u found)", n);
        goto out;
    }
    ctx->pd = pds[best];
out:
    free(pds);
    return rc;
}

static void read_caps(vk_ctx *ctx, const vk_ctx_opts *opts)
{
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &sg};
    vkGetPhysicalDeviceProperties2(ctx->pd, &p2);
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES, .pNext = &f16};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = &s16};
    vkGetPhysicalDeviceFeatures2(ctx->pd, &f2);

    vk_caps *c = &ctx->caps;
    snprintf(c->name, sizeof c->name, "%s", p2.properties.deviceName);
    c->type = (int)p2.properties.deviceType;
    c->api_version = p2.properties.apiVersion;
    c->subgroup_size = sg.subgroupSize;
    const VkSubgroupFeatureFlags need =
        VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    c->subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        (sg.supportedOperations & need) == need &&
                        rs_spv_find("conv_fwd.smem") != NULL;
    /* Reported for the scheduler; no fp16 or cooperative-matrix kernels yet. */
    c->fp16 = f16.shaderFloat16 && s16.storageBuffer16BitAccess;
    c->coopmat = false;
    c->fp16_storage = s16.storageBuffer16BitAccess && rs_spv_find("conv_fwd.f16") != NULL;
    c->max_shared = p2.properties.limits.maxComputeSharedMemorySize;
    c->max_wg_invocations = p2.properties.limits.maxComputeWorkGroupInvocations;
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->pd, &n, NULL);
    VkQueueFamilyProperties qf[64];
    if (n > 64) {
        n = 64;
    }
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->pd, &n, qf);
    c->timestamps = ctx->qfam < n && qf[ctx->qfam].timestampValidBits > 0 &&
                    p2.properties.limits.timestampPeriod > 0.0f;
    c->timestamp_ns = p2.properties.limits.timestampPeriod;

    vk_variant v = opts != NULL ? opts->variant : VK_VARIANT_AUTO;
    if (v == VK_VARIANT_AUTO) {
        const char *ev = getenv("RUSHES_VK_VARIANT");
        if (ev != NULL && strcasecmp(ev, "smem") == 0) {
            v = VK_VARIANT_SMEM;
        } else if (ev != NULL && strcasecmp(ev, "reg") == 0) {
            v = VK_VARIANT_REG;
        } else if (ev != NULL && strcasecmp(ev, "f16") == 0) {
            v = VK_VARIANT_F16;
        } else {
            /* measured: on CPU devices shared memory halves throughput */
            v = c->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? VK_VARIANT_REG : VK_VARIANT_SMEM;
        }
    }
    if (v == VK_VARIANT_SMEM && !c->subgroup_arith) {
        v = VK_VARIANT_REG;
    }
    if (v == VK_VARIANT_F16 && !c->fp16_storage) {
        v = VK_VARIANT_REG;
    }
    c->variant = v;
}

static rs_err create_instance(vk_ctx *ctx, bool validation, rs_error *e)
{
    rs_err rc = RS_OK;
    const char *layers[1] = {"VK_LAYER_KHRONOS_validation"};
    const char *exts[1] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    if (validation && !has_layer(layers[0])) {
        rc = rs_error_set(
            e, RS_ENOENT,
            "RUSHES_VK_VALIDATION: layer VK_LAYER_KHRONOS_validation is not installed");
        goto out;
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "rushes",
        .pEngineName = "rushes-engine",
        .apiVersion = VK_API_VERSION_1_1,
    };
    VkDebugUtilsMessengerCreateInfoEXT mci = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_validation,
        .pUserData = ctx,
    };
    VkInstanceCreateInfo ici = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = validation ? &mci : NULL, /* also catches create/destroy-time messages */
        .pApplicationInfo = &app,
        .enabledLayerCount = validation ? 1 : 0,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = validation ? 1 : 0,
        .ppEnabledExtensionNames = exts,
    };
    VK_CHECK(vkCreateInstance(&ici, NULL, &ctx->inst));
    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                ctx->inst, "vkCreateDebugUtilsMessengerEXT");
        if (create == NULL) {
            rc = rs_error_set(e, RS_EVK, "vkCreateDebugUtilsMessengerEXT missing");
            goto out;
        }
        VK_CHECK(create(ctx->inst, &mci, NULL, &ctx->msgr));
    }
    ctx->validation = validation;
out:
    return rc;
}

rs_err vk_ctx_create(const vk_ctx_opts *opts, vk_ctx **out, rs_error *e)
{
    rs_err rc = RS_OK;
    vk_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        return rs_error_set(e, RS_ENOMEM, "vk context");
    }
    bool validation = opts != NULL && opts->validation >= 0 ? opts->validation == 1
                                                            : env_flag("RUSHES_VK_VALIDATION");
    rc = create_instance(ctx, validation, e);
    if (rc != RS_OK) {
        goto out;
    }
    int want = opts != NULL ? opts->device_index : -1;
    const char *ed = getenv("RUSHES_VK_DEVICE");
    if (ed != NULL && ed[0] != '\0') {
        char *end = NULL;
        long v = strtol(ed, &end, 10);
        if (end == ed || *end != '\0' || v < 0 || v > 1000) {
            rc = rs_error_set(e, RS_EINVAL, "RUSHES_VK_DEVICE=%s: not a device index", ed);
            goto out;
        }
        want = (int)v;
    }
    rc = pick_device(ctx, want, e);
    if (rc != RS_OK) {
        goto out;
    }
    ctx->qfam = (uint32_t)compute_family(ctx->pd);
    read_caps(ctx, opts);
    vkGetPhysicalDeviceMemoryProperties(ctx->pd, &ctx->memprops);
    ctx->prefer_host_visible = ctx->caps.type != VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
    ctx->force_staging = opts != NULL && opts->force_staging == 1;

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->qfam,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    /* 16-bit storage only where the f16 kernels will use it */
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = ctx->caps.fp16_storage ? VK_TRUE : VK_FALSE};
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = ctx->caps.fp16_storage ? &s16 : NULL,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
    };
    VK_CHECK(vkCreateDevice(ctx->pd, &dci, NULL, &ctx->dev));
    vkGetDeviceQueue(ctx->dev, ctx->qfam, 0, &ctx->queue);
    VkCommandPoolCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->qfam,
    };
    VK_CHECK(vkCreateCommandPool(ctx->dev, &cpi, NULL, &ctx->cpool));
    VkCommandBufferAllocateInfo cai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->cpool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VK_CHECK(vkAllocateCommandBuffers(ctx->dev, &cai, &ctx->xfer_cb));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_CHECK(vkCreateFence(ctx->dev, &fci, NULL, &ctx->xfer_fence));
    VkPipelineCacheCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    VK_CHECK(vkCreatePipelineCache(ctx->dev, &pci, NULL, &ctx->pcache));
out:
    if (rc != RS_OK) {
        vk_ctx_destroy(ctx);
        return rc;
    }
    *out = ctx;
    return RS_OK;
}

static void buf_free(vk_ctx *ctx, vk_buf *b)
{
    if (b->map != NULL) {
        vkUnmapMemory(ctx->dev, b->mem);
    }
    if (b->buf != VK_NULL_HANDLE) {
        vkDestroyBuffer(ctx->dev, b->buf, NULL);
    }
    if (b->mem != VK_NULL_HANDLE) {
        vkFreeMemory(ctx->dev, b->mem, NULL);
    }
    free(b);
}

void vk_ctx_destroy(vk_ctx *ctx)
{
    if (ctx == NULL) {
        return;
    }
    if (ctx->dev != VK_NULL_HANDLE) {
        vkDeviceWaitIdle(ctx->dev);
        while (ctx->free_blocks != NULL) {
            vk_buf *b = ctx->free_blocks;
            ctx->free_blocks = b->next;
            buf_free(ctx, b);
        }
        while (ctx->pipes != NULL) {
            vk_pipe *p = ctx->pipes;
            ctx->pipes = p->next;
            vkDestroyPipeline(ctx->dev, p->pipe, NULL);
            vkDestroyPipelineLayout(ctx->dev, p->layout, NULL);
            vkDestroyDescriptorSetLayout(ctx->dev, p->dsl, NULL);
            free(p);
        }
        if (ctx->stg_map != NULL) {
            vkUnmapMemory(ctx->dev, ctx->stg_mem);
        }
        vkDestroyBuffer(ctx->dev, ctx->stg, NULL);
        vkFreeMemory(ctx->dev, ctx->stg_mem, NULL);
        vkDestroyPipelineCache(ctx->dev, ctx->pcache, NULL);
        vkDestroyFence(ctx->dev, ctx->xfer_fence, NULL);
        vkDestroyCommandPool(ctx->dev, ctx->cpool, NULL);
        vkDestroyDevice(ctx->dev, NULL);
    }
    if (ctx->msgr != VK_NULL_HANDLE) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                ctx->inst, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy != NULL) {
            destroy(ctx->inst, ctx->msgr, NULL);
        }
    }
    if (ctx->inst != VK_NULL_HANDLE) {
        vkDestroyInstance(ctx->inst, NULL);
    }
    free(ctx);
}

const vk_caps *vk_ctx_caps(const vk_ctx *ctx)
{
    return &ctx->caps;
}

uint32_t vk_ctx_validation_errors(const vk_ctx *ctx)
{
    return ctx->validation_errors;
}

bool vk_ctx_validation_enabled(const vk_ctx *ctx)
{
    return ctx->validation;
}

void vk_ctx_pool_stats(const vk_ctx *ctx, uint32_t *created, uint32_t *reused)
{
    *created = ctx->created;
    *reused = ctx->reused;
}

/* First memory type allowed by bits with all of want; -1 if none. */
static int mem_type(const vk_ctx *ctx, uint32_t bits, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < ctx->memprops.memoryTypeCount; i++) {
        if ((bits & (1u << i)) && (ctx->memprops.memoryTypes[i].propertyFlags & want) == want) {
            return (int)i;
        }
    }
    return -1;
}

/* Creates a buffer + memory; host-visible memory is mapped persistently. */
static rs_err raw_buffer(vk_ctx *ctx, size_t bytes, bool staging, vk_buf *b, rs_error *e)
{
    rs_err rc = RS_OK;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = bytes,
        .usage = staging ? (VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT)
                         : (VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                            VK_BUFFER_USAGE_TRANSFER_DST_BIT),
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VK_CHECK(vkCreateBuffer(ctx->dev, &bci, NULL, &b->buf));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->dev, b->buf, &req);
    const VkMemoryPropertyFlags hv =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int t = -1;
    if (staging) {
        t = mem_type(ctx, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        if (t < 0) {
            t = mem_type(ctx, req.memoryTypeBits, hv);
        }
    } else {
        if (ctx->prefer_host_visible) {
            t = mem_type(ctx, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        }
        if (t < 0) {
            t = mem_type(ctx, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        }
        if (t < 0) {
            t = mem_type(ctx, req.memoryTypeBits, 0);
        }
    }
    if (t < 0) {
        rc = rs_error_set(e, RS_EVK, "no memory type for a %zu-byte %s buffer", bytes,
                          staging ? "staging" : "device");
        goto out;
    }
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)t,
    };
    VK_CHECK(vkAllocateMemory(ctx->dev, &mai, NULL, &b->mem));
    VK_CHECK(vkBindBufferMemory(ctx->dev, b->buf, b->mem, 0));
    if ((ctx->memprops.memoryTypes[t].propertyFlags & hv) == hv &&
        (staging || !ctx->force_staging)) {
        VK_CHECK(vkMapMemory(ctx->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map));
    }
    b->cap = bytes;
out:
    return rc;
}

rs_err vk_buf_create(vk_ctx *ctx, size_t bytes, vk_buf **out, rs_error *e)
{
    if (bytes == 0) {
        return rs_error_set(e, RS_EINVAL, "vk_buf_create: size 0");
    }
    size_t cap = (bytes + 255) & ~(size_t)255;
    /* reuse the smallest pooled block that fits without wasting over half */
    vk_buf **best = NULL;
    for (vk_buf **p = &ctx->free_blocks; *p != NULL; p = &(*p)->next) {
        if ((*p)->cap >= cap && (*p)->cap <= 2 * cap &&
            (best == NULL || (*p)->cap < (*best)->cap)) {
            best = p;
        }
    }
    if (best != NULL) {
        vk_buf *b = *best;
        *best = b->next;
        ctx->nfree--;
        ctx->reused++;
        b->next = NULL;
        b->size = bytes;
        *out = b;
        return RS_OK;
    }
    vk_buf *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return rs_error_set(e, RS_ENOMEM, "vk buffer of %zu bytes", bytes);
    }
    b->ctx = ctx;
    rs_err rc = raw_buffer(ctx, cap, false, b, e);
    if (rc != RS_OK) {
        buf_free(ctx, b);
        return rc;
    }
    b->size = bytes;
    ctx->created++;
    *out = b;
    return RS_OK;
}

void vk_buf_destroy(vk_buf *b)
{
    if (b == NULL) {
        return;
    }
    vk_ctx *ctx = b->ctx;
    if (ctx->nfree >= POOL_KEEP_MAX) {
        buf_free(ctx, b);
        return;
    }
    b->next = ctx->free_blocks;
    ctx->free_blocks = b;
    ctx->nfree++;
}

size_t vk_buf_size(const vk_buf *b)
{
    return b->size;
}

static rs_err staging_reserve(vk_ctx *ctx, size_t n, rs_error *e)
{
    if (ctx->stg_size >= n) {
        return RS_OK;
    }
    if (ctx->stg_map != NULL) {
        vkUnmapMemory(ctx->dev, ctx->stg_mem);
    }
    vkDestroyBuffer(ctx->dev, ctx->stg, NULL);
    vkFreeMemory(ctx->dev, ctx->stg_mem, NULL);
    ctx->stg = VK_NULL_HANDLE;
    ctx->stg_mem = VK_NULL_HANDLE;
    ctx->stg_map = NULL;
    ctx->stg_size = 0;
    vk_buf tmp = {0};
    rs_err rc = raw_buffer(ctx, n, true, &tmp, e);
    if (rc == RS_OK && tmp.map == NULL) {
        rc = rs_error_set(e, RS_EVK, "staging buffer is not host-visible");
    }
    if (rc != RS_OK) {
        if (tmp.map != NULL) {
            vkUnmapMemory(ctx->dev, tmp.mem);
        }
        vkDestroyBuffer(ctx->dev, tmp.buf, NULL);
        vkFreeMemory(ctx->dev, tmp.mem, NULL);
        return rc;
    }
    ctx->stg = tmp.buf;
    ctx->stg_mem = tmp.mem;
    ctx->stg_map = tmp.map;
    ctx->stg_size = n;
    return RS_OK;
}

/* One copy between the staging buffer and b, waited for. */
static rs_err staged_copy(vk_ctx *ctx, vk_buf *b, size_t off, size_t n, bool to_device, rs_error *e)
{
    rs_err rc = RS_OK;
    VK_CHECK(vkResetCommandBuffer(ctx->xfer_cb, 0));
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VK_CHECK(vkBeginCommandBuffer(ctx->xfer_cb, &bi));
    VkBufferCopy region = {
        .srcOffset = to_device ? 0 : off,
        .dstOffset = to_device ? off : 0,
        .size = n,
    };
    if (to_device) {
        vkCmdCopyBuffer(ctx->xfer_cb, ctx->stg, b->buf, 1, &region);
    } else {
        vkCmdCopyBuffer(ctx->xfer_cb, b->buf, ctx->stg, 1, &region);
    }
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT,
    };
    vkCmdPipelineBarrier(ctx->xfer_cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                         &mb, 0, NULL, 0, NULL);
    VK_CHECK(vkEndCommandBuffer(ctx->xfer_cb));
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &ctx->xfer_cb,
    };
    VK_CHECK(vkResetFences(ctx->dev, 1, &ctx->xfer_fence));
    VK_CHECK(vkQueueSubmit(ctx->queue, 1, &si, ctx->xfer_fence));
    VK_CHECK(vkWaitForFences(ctx->dev, 1, &ctx->xfer_fence, VK_TRUE, UINT64_MAX));
out:
    return rc;
}

rs_err vk_buf_write(vk_buf *b, size_t off, const void *src, size_t n, rs_error *e)
{
    if (off > b->size || n > b->size - off) {
        return rs_error_set(e, RS_EINVAL, "vk_buf_write: %zu bytes at %zu past a %zu-byte buffer",
                            n, off, b->size);
    }
    if (n == 0) {
        return RS_OK;
    }
    if (b->map != NULL) {
        memcpy((char *)b->map + off, src, n);
        return RS_OK;
    }
    rs_err rc = staging_reserve(b->ctx, n, e);
    if (rc != RS_OK) {
        return rc;
    }
    memcpy(b->ctx->stg_map, src, n);
    return staged_copy(b->ctx, b, off, n, true, e);
}

rs_err vk_buf_read(const vk_buf *cb, size_t off, void *dst, size_t n, rs_error *e)
{
    vk_buf *b = (vk_buf *)cb;
    if (off > b->size || n > b->size - off) {
        return rs_error_set(e, RS_EINVAL, "vk_buf_read: %zu bytes at %zu past a %zu-byte buffer", n,
                            off, b->size);
    }
    if (n == 0) {
        return RS_OK;
    }
    if (b->map != NULL) {
        memcpy(dst, (const char *)b->map + off, n);
        return RS_OK;
    }
    rs_err rc = staging_reserve(b->ctx, n, e);
    if (rc == RS_OK) {
        rc = staged_copy(b->ctx, b, off, n, false, e);
    }
    if (rc == RS_OK) {
        memcpy(dst, b->ctx->stg_map, n);
    }
    return rc;
}

rs_err vk_pipe_get(vk_ctx *ctx, const char *shader, const int32_t *spec, uint32_t nspec,
                   uint32_t nbind, uint32_t push_bytes, vk_pipe **out, rs_error *e)
{
    rs_err rc = RS_OK;
    VkShaderModule mod = VK_NULL_HANDLE;
    vk_pipe *p = NULL;
    if (nspec > VK_MAX_SPEC || nbind > VK_MAX_BINDINGS || push_bytes > VK_MAX_PUSH ||
        strlen(shader) >= sizeof p->name) {
        return rs_error_set(e, RS_EINVAL,
                            "pipeline %s: too many spec constants, bindings or push bytes", shader);
    }
    for (vk_pipe *q = ctx->pipes; q != NULL; q = q->next) {
        if (strcmp(q->name, shader) == 0 && q->nspec == nspec && q->nbind == nbind &&
            q->push_bytes == push_bytes &&
            (nspec == 0 || memcmp(q->spec, spec, nspec * sizeof *spec) == 0)) {
            *out = q;
            return RS_OK;
        }
    }
    const rs_spv *code = rs_spv_find(shader);
    if (code == NULL) {
        return rs_error_set(e, RS_ENOENT, "shader %s is not in this build", shader);
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        return rs_error_set(e, RS_ENOMEM, "pipeline %s", shader);
    }
    snprintf(p->name, sizeof p->name, "%s", shader);
    p->nspec = nspec;
    if (nspec > 0) {
        memcpy(p->spec, spec, nspec * sizeof *spec);
    }
    p->nbind = nbind;
    p->push_bytes = push_bytes;

    VkDescriptorSetLayoutBinding binds[VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < nbind; i++) {
        binds[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    }
    VkDescriptorSetLayoutCreateInfo dli = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = nbind,
        .pBindings = binds,
    };
    VK_CHECK(vkCreateDescriptorSetLayout(ctx->dev, &dli, NULL, &p->dsl));
    VkPushConstantRange pr = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = push_bytes};
    VkPipelineLayoutCreateInfo pli = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &p->dsl,
        .pushConstantRangeCount = push_bytes > 0 ? 1 : 0,
        .pPushConstantRanges = &pr,
    };
    VK_CHECK(vkCreatePipelineLayout(ctx->dev, &pli, NULL, &p->layout));
    VkShaderModuleCreateInfo smi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = code->size,
        .pCode = code->code,
    };
    VK_CHECK(vkCreateShaderModule(ctx->dev, &smi, NULL, &mod));
    VkSpecializationMapEntry entries[VK_MAX_SPEC];
    for (uint32_t i = 0; i < nspec; i++) {
        entries[i] = (VkSpecializationMapEntry){
            .constantID = i,
            .offset = i * (uint32_t)sizeof(int32_t),
            .size = sizeof(int32_t),
        };
    }
    VkSpecializationInfo si = {
        .mapEntryCount = nspec,
        .pMapEntries = entries,
        .dataSize = nspec * sizeof(int32_t),
        .pData = p->spec,
    };
    VkComputePipelineCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage =
            {
                .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = mod,
                .pName = "main",
                .pSpecializationInfo = nspec > 0 ? &si : NULL,
            },
        .layout = p->layout,
    };
    VK_CHECK(vkCreateComputePipelines(ctx->dev, ctx->pcache, 1, &cpi, NULL, &p->pipe));
out:
    if (mod != VK_NULL_HANDLE) {
        vkDestroyShaderModule(ctx->dev, mod, NULL);
    }
    if (rc != RS_OK) {
        if (p->pipe != VK_NULL_HANDLE) {
            vkDestroyPipeline(ctx->dev, p->pipe, NULL);
        }
        vkDestroyPipelineLayout(ctx->dev, p->layout, NULL);
        vkDestroyDescriptorSetLayout(ctx->dev, p->dsl, NULL);
        free(p);
        return rc;
    }
    p->next = ctx->pipes;
    ctx->pipes = p;
    *out = p;
    return RS_OK;
}

rs_err vk_seq_create(vk_ctx *ctx, vk_seq **out, rs_error *e)
{
    rs_err rc = RS_OK;
    vk_seq *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return rs_error_set(e, RS_ENOMEM, "command sequence");
    }
    s->ctx = ctx;
    VkCommandBufferAllocateInfo cai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->cpool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VK_CHECK(vkAllocateCommandBuffers(ctx->dev, &cai, &s->cb));
    /* signalled, so destroying a never-submitted sequence need not wait */
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO,
                             .flags = VK_FENCE_CREATE_SIGNALED_BIT};
    VK_CHECK(vkCreateFence(ctx->dev, &fci, NULL, &s->fence));
    s->profile = env_flag("RUSHES_VK_PROFILE") && ctx->caps.timestamps;
    if (ctx->caps.timestamps) {
        VkQueryPoolCreateInfo qci = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = SEQ_MAX_TS,
        };
        VK_CHECK(vkCreateQueryPool(ctx->dev, &qci, NULL, &s->qpool));
    }
out:
    if (rc != RS_OK) {
        vk_seq_destroy(s);
        return rc;
    }
    *out = s;
    return RS_OK;
}

void vk_seq_destroy(vk_seq *s)
{
    if (s == NULL) {
        return;
    }
    VkDevice dev = s->ctx->dev;
    if (s->fence != VK_NULL_HANDLE) {
        vkWaitForFences(dev, 1, &s->fence, VK_TRUE, UINT64_MAX);
        vkDestroyFence(dev, s->fence, NULL);
    }
    for (uint32_t i = 0; i < s->npools; i++) {
        vkDestroyDescriptorPool(dev, s->pools[i], NULL);
    }
    if (s->qpool != VK_NULL_HANDLE) {
        vkDestroyQueryPool(dev, s->qpool, NULL);
    }
    if (s->cb != VK_NULL_HANDLE) {
        vkFreeCommandBuffers(dev, s->ctx->cpool, 1, &s->cb);
    }
    free(s);
}

rs_err vk_seq_begin(vk_seq *s, rs_error *e)
{
    rs_err rc = RS_OK;
    if (s->recording) {
        return rs_error_set(e, RS_ESTATE, "vk_seq_begin: already recording");
    }
    VK_CHECK(vkResetCommandBuffer(s->cb, 0));
    for (uint32_t i = 0; i < s->npools; i++) {
        VK_CHECK(vkResetDescriptorPool(s->ctx->dev, s->pools[i], 0));
    }
    s->cur_pool = 0;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    VK_CHECK(vkBeginCommandBuffer(s->cb, &bi));
    if (s->qpool != VK_NULL_HANDLE) {
        vkCmdResetQueryPool(s->cb, s->qpool, 0, SEQ_MAX_TS);
    }
    s->nts = 0;
    s->ts_valid = false;
    s->nwrote = 0;
    s->nread = 0;
    s->dispatches = 0;
    s->barriers = 0;
    s->recording = true;
    s->recorded = false;
    if (s->profile) {
        vk_seq_timestamp(s);
    }
out:
    return rc;
}

static bool tracked(vk_buf *const *list, uint32_t n, const vk_buf *b)
{
    for (uint32_t i = 0; i < n; i++) {
        if (list[i] == b) {
            return true;
        }
    }
    return false;
}

/* A barrier making every write since the last one visible to later reads
 * and writes (compute and transfer alike). */
static void seq_barrier(vk_seq *s)
{
    VkBufferMemoryBarrier bmb[SEQ_MAX_TRACK];
    for (uint32_t i = 0; i < s->nwrote; i++) {
        bmb[i] = (VkBufferMemoryBarrier){
            .sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER,
            .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
            .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                             VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
            .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
            .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
            .buffer = s->wrote[i]->buf,
            .offset = 0,
            .size = VK_WHOLE_SIZE,
        };
    }
    const VkPipelineStageFlags st =
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(s->cb, st, st, 0, 0, NULL, s->nwrote, bmb, 0, NULL);
    s->nwrote = 0;
    s->nread = 0;
    s->barriers++;
}

/* Barrier if needed before an access to bufs, then records the access. */
static void seq_track(vk_seq *s, vk_buf *const *bufs, uint32_t n, uint32_t write_mask)
{
    bool hazard = false;
    for (uint32_t i = 0; i < n && !hazard; i++) {
        bool w = (write_mask >> i) & 1u;
        if (tracked(s->wrote, s->nwrote, bufs[i]) || (w && tracked(s->read, s->nread, bufs[i]))) {
            hazard = true;
        }
    }
    if (hazard || s->nwrote + n > SEQ_MAX_TRACK || s->nread + n > SEQ_MAX_TRACK) {
        seq_barrier(s);
    }
    for (uint32_t i = 0; i < n; i++) {
        if ((write_mask >> i) & 1u) {
            if (!tracked(s->wrote, s->nwrote, bufs[i])) {
                s->wrote[s->nwrote++] = bufs[i];
            }
        } else if (!tracked(s->read, s->nread, bufs[i])) {
            s->read[s->nread++] = bufs[i];
        }
    }
}

static rs_err seq_alloc_set(vk_seq *s, vk_pipe *p, VkDescriptorSet *set, rs_error *e)
{
    rs_err rc = RS_OK;
    for (;;) {
        if (s->cur_pool < s->npools) {
            VkDescriptorSetAllocateInfo ai = {
                .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                .descriptorPool = s->pools[s->cur_pool],
                .descriptorSetCount = 1,
                .pSetLayouts = &p->dsl,
            };
            VkResult r = vkAllocateDescriptorSets(s->ctx->dev, &ai, set);
            if (r == VK_SUCCESS) {
                return RS_OK;
            }
            if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) {
                return rs_error_set(e, RS_EVK, "vkAllocateDescriptorSets failed: VkResult %d",
                                    (int)r);
            }
            s->cur_pool++;
            continue;
        }
        if (s->npools >= SEQ_MAX_POOLS) {
            return rs_error_set(e, RS_ETOOBIG, "command sequence: over %d descriptor sets",
                                SEQ_MAX_POOLS * DESC_SETS_PER_POOL);
        }
        VkDescriptorPoolSize ps = {
            .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = DESC_SETS_PER_POOL * VK_MAX_BINDINGS,
        };
        VkDescriptorPoolCreateInfo pci = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
            .maxSets = DESC_SETS_PER_POOL,
            .poolSizeCount = 1,
            .pPoolSizes = &ps,
        };
        VK_CHECK(vkCreateDescriptorPool(s->ctx->dev, &pci, NULL, &s->pools[s->npools]));
        s->npools++;
    }
out:
    return rc;
}

rs_err vk_seq_dispatch(vk_seq *s, vk_pipe *p, vk_buf *const *bufs, uint32_t nbufs,
                       uint32_t write_mask, const void *push, uint32_t gx, uint32_t gy, uint32_t gz,
                       rs_error *e)
{
    if (!s->recording) {
        return rs_error_set(e, RS_ESTATE, "dispatch %s: sequence is not recording", p->name);
    }
    if (nbufs != p->nbind) {
        return rs_error_set(e, RS_EINVAL, "dispatch %s: %u buffers for %u bindings", p->name, nbufs,
                            p->nbind);
    }
    if (gx == 0 || gy == 0 || gz == 0) {
        return RS_OK; /* empty shape: nothing to do */
    }
    VkDescriptorSet set;
    rs_err rc = seq_alloc_set(s, p, &set, e);
    if (rc != RS_OK) {
        return rc;
    }
    VkDescriptorBufferInfo infos[VK_MAX_BINDINGS];
    VkWriteDescriptorSet writes[VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < nbufs; i++) {
        infos[i] =
            (VkDescriptorBufferInfo){.buffer = bufs[i]->buf, .offset = 0, .range = VK_WHOLE_SIZE};
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &infos[i],
        };
    }
    vkUpdateDescriptorSets(s->ctx->dev, nbufs, writes, 0, NULL);
    seq_track(s, bufs, nbufs, write_mask);
    vkCmdBindPipeline(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipe);
    vkCmdBindDescriptorSets(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    if (p->push_bytes > 0) {
        vkCmdPushConstants(s->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_bytes, push);
    }
    vkCmdDispatch(s->cb, gx, gy, gz);
    s->dispatches++;
    if (s->profile) {
        int t = vk_seq_timestamp(s);
        if (t >= 0) {
            s->ts_name[t] = p->name;
        }
    }
    return RS_OK;
}

rs_err vk_seq_fill(vk_seq *s, vk_buf *b, uint32_t pattern, rs_error *e)
{
    if (!s->recording) {
        return rs_error_set(e, RS_ESTATE, "vk_seq_fill: sequence is not recording");
    }
    seq_track(s, &b, 1, 1u);
    vkCmdFillBuffer(s->cb, b->buf, 0, b->cap, pattern);
    return RS_OK;
}

rs_err vk_seq_copy(vk_seq *s, vk_buf *src, vk_buf *dst, size_t bytes, rs_error *e)
{
    if (!s->recording) {
        return rs_error_set(e, RS_ESTATE, "vk_seq_copy: sequence is not recording");
    }
    if (bytes > src->size || bytes > dst->size) {
        return rs_error_set(e, RS_EINVAL, "vk_seq_copy: %zu bytes past a buffer's end", bytes);
    }
    vk_buf *pair[2] = {src, dst};
    seq_track(s, pair, 2, 2u);
    VkBufferCopy region = {.srcOffset = 0, .dstOffset = 0, .size = bytes};
    vkCmdCopyBuffer(s->cb, src->buf, dst->buf, 1, &region);
    return RS_OK;
}

int vk_seq_timestamp(vk_seq *s)
{
    if (!s->recording || s->qpool == VK_NULL_HANDLE || s->nts >= SEQ_MAX_TS) {
        return -1;
    }
    vkCmdWriteTimestamp(s->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->qpool, s->nts);
    s->ts_name[s->nts] = NULL;
    return (int)s->nts++;
}

rs_err vk_seq_end(vk_seq *s, rs_error *e)
{
    rs_err rc = RS_OK;
    if (!s->recording) {
        return rs_error_set(e, RS_ESTATE, "vk_seq_end: sequence is not recording");
    }
    /* results must be visible to the host after the fence */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT,
    };
    vkCmdPipelineBarrier(
        s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
        VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    s->recording = false;
    VK_CHECK(vkEndCommandBuffer(s->cb));
    s->recorded = true;
out:
    return rc;
}

rs_err vk_seq_submit(vk_seq *s, rs_error *e)
{
    rs_err rc = RS_OK;
    if (!s->recorded) {
        return rs_error_set(e, RS_ESTATE, "vk_seq_submit: nothing recorded");
    }
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &s->cb,
    };
    VK_CHECK(vkResetFences(s->ctx->dev, 1, &s->fence));
    VK_CHECK(vkQueueSubmit(s->ctx->queue, 1, &si, s->fence));
    VK_CHECK(vkWaitForFences(s->ctx->dev, 1, &s->fence, VK_TRUE, UINT64_MAX));
    s->ts_valid = false;
    if (s->nts > 0) {
        VK_CHECK(vkGetQueryPoolResults(s->ctx->dev, s->qpool, 0, s->nts, sizeof s->ts, s->ts,
                                       sizeof s->ts[0],
                                       VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
        s->ts_valid = true;
    }
out:
    return rc;
}

double vk_seq_elapsed_ms(vk_seq *s, int from, int to)
{
    if (!s->ts_valid || from < 0 || to < 0 || (uint32_t)from >= s->nts || (uint32_t)to >= s->nts) {
        return -1.0;
    }
    return (double)(s->ts[to] - s->ts[from]) * s->ctx->caps.timestamp_ns * 1e-6;
}

void vk_seq_stats(const vk_seq *s, uint32_t *dispatches, uint32_t *barriers)
{
    *dispatches = s->dispatches;
    *barriers = s->barriers;
}

void vk_seq_profile_print(vk_seq *s, FILE *f)
{
    if (!s->profile || !s->ts_valid) {
        return;
    }
    /* time between consecutive timestamps, charged to the pipeline that ended it */
    const char *names[SEQ_MAX_TS];
    double ms[SEQ_MAX_TS];
    int count[SEQ_MAX_TS];
    int n = 0;
    double total = 0.0;
    for (uint32_t i = 1; i < s->nts; i++) {
        const char *name = s->ts_name[i] != NULL ? s->ts_name[i] : "(other)";
        double d = vk_seq_elapsed_ms(s, (int)i - 1, (int)i);
        total += d;
        int j = 0;
        while (j < n && strcmp(names[j], name) != 0) {
            j++;
        }
        if (j == n) {
            names[n] = name;
            ms[n] = 0.0;
            count[n] = 0;
            n++;
        }
        ms[j] += d;
        count[j]++;
    }
    for (int i = 0; i < n; i++) {
        fprintf(f, "  %-22s %4d dispatches %10.2f ms %5.1f%%\n", names[i], count[i], ms[i],
                total > 0 ? 100.0 * ms[i] / total : 0.0);
    }
    fprintf(f, "  %-22s %4s            %10.2f ms\n", "total", "", total);
}
