/*
 * vkcaps.c: enumerates Vulkan physical devices and reads what the scheduler
 * matches tasks against: type, ids, API version, the largest device-local
 * heap, fp16 (shaderFloat16 + 16-bit storage buffers) and subgroup size.
 * Every Vulkan call is checked and turned into an rs_err; nothing aborts,
 * because a worker without a usable GPU still runs CPU-side kinds.
 */
#include "vkcaps.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <vulkan/vulkan.h>

#include "log.h"

#define VKCAPS_MAX_PHYS 64

/* Returns from the function with RS_EVK naming the call; never exits. */
#define VK_CHECK(call)                                                                             \
    do {                                                                                           \
        VkResult vk_rc_ = (call);                                                                  \
        if (vk_rc_ != VK_SUCCESS && vk_rc_ != VK_INCOMPLETE) {                                     \
            rc = rs_error_set(e, RS_EVK, "%s failed: VkResult %d", #call, (int)vk_rc_);            \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

const char *vkcaps_type_name(int vk_type)
{
    switch (vk_type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return "cpu";
    default:
        return "other";
    }
}

static bool has_extension(VkPhysicalDevice pd, const char *name)
{
    uint32_t count = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &count, NULL) != VK_SUCCESS || count == 0) {
        return false;
    }
    VkExtensionProperties *props = calloc(count, sizeof *props);
    if (props == NULL) {
        return false;
    }
    bool found = false;
    VkResult vr = vkEnumerateDeviceExtensionProperties(pd, NULL, &count, props);
    if (vr == VK_SUCCESS || vr == VK_INCOMPLETE) {
        for (uint32_t i = 0; i < count; i++) {
            if (strcmp(props[i].extensionName, name) == 0) {
                found = true;
                break;
            }
        }
    }
    free(props);
    return found;
}

static void describe(VkPhysicalDevice pd, proto_device *d)
{
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(pd, &props);
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", props.deviceName);
    snprintf(d->type, sizeof d->type, "%s", vkcaps_type_name((int)props.deviceType));
    d->vendor_id = props.vendorID;
    d->device_id = props.deviceID;
    d->api_version = props.apiVersion;

    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    for (uint32_t i = 0; i < mem.memoryHeapCount; i++) {
        if ((mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0) {
            uint64_t mb = (uint64_t)(mem.memoryHeaps[i].size / (1024u * 1024u));
            if (mb > d->memory_mb) {
                d->memory_mb = mb;
            }
        }
    }

    /* The *2 queries are core only from 1.1; a 1.0 device reports neither. */
    if (VK_API_VERSION_MINOR(props.apiVersion) < 1 && VK_API_VERSION_MAJOR(props.apiVersion) < 2) {
        return;
    }
    VkPhysicalDeviceSubgroupProperties sub = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 props2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                          .pNext = &sub};
    vkGetPhysicalDeviceProperties2(pd, &props2);
    d->subgroup_size = sub.subgroupSize;

    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    /* Chaining a struct the device does not know is undefined, so the
     * float16 struct goes in only when 1.2 or the extension promises it. */
    bool f16_known = VK_API_VERSION_MINOR(props.apiVersion) >= 2 ||
                     VK_API_VERSION_MAJOR(props.apiVersion) > 1 ||
                     has_extension(pd, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    if (f16_known) {
        s16.pNext = &f16;
    }
    VkPhysicalDeviceFeatures2 feats2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                        .pNext = &s16};
    vkGetPhysicalDeviceFeatures2(pd, &feats2);
    d->fp16 = f16_known && f16.shaderFloat16 == VK_TRUE && s16.storageBuffer16BitAccess == VK_TRUE;
}

rs_err vkcaps_list(proto_device *out, size_t cap, size_t *n, rs_error *e)
{
    rs_err rc = RS_OK;
    VkInstance inst = VK_NULL_HANDLE;
    VkPhysicalDevice phys[VKCAPS_MAX_PHYS];
    *n = 0;

    uint32_t loader_version = VK_API_VERSION_1_0;
    VK_CHECK(vkEnumerateInstanceVersion(&loader_version));
    if (VK_API_VERSION_MINOR(loader_version) < 1 && VK_API_VERSION_MAJOR(loader_version) < 2) {
        rc = rs_error_set(e, RS_EVK, "Vulkan loader is version 1.0; rushes needs 1.1 or newer");
        goto out;
    }
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "rushes-worker",
                             .pEngineName = "rushes",
                             .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                .pApplicationInfo = &app};
    VkResult vr = vkCreateInstance(&ici, NULL, &inst);
    if (vr == VK_ERROR_INCOMPATIBLE_DRIVER) {
        /* A loader with no ICD at all: no devices, not an error. */
        inst = VK_NULL_HANDLE;
        goto out;
    }
    if (vr != VK_SUCCESS) {
        inst = VK_NULL_HANDLE;
        rc = rs_error_set(e, RS_EVK, "vkCreateInstance failed: VkResult %d", (int)vr);
        goto out;
    }
    uint32_t count = VKCAPS_MAX_PHYS;
    VK_CHECK(vkEnumeratePhysicalDevices(inst, &count, phys));
    for (uint32_t i = 0; i < count; i++) {
        if (*n >= cap) {
            RS_WARN("vkcaps", "%u devices found, only the first %zu are announced", count, cap);
            break;
        }
        describe(phys[i], &out[*n]);
        (*n)++;
    }
out:
    if (inst != VK_NULL_HANDLE) {
        vkDestroyInstance(inst, NULL);
    }
    return rc;
}

cJSON *vkcaps_to_json(const proto_device *devs, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const proto_device *d = &devs[i];
        char api[32];
        snprintf(api, sizeof api, "%u.%u.%u", VK_API_VERSION_MAJOR(d->api_version),
                 VK_API_VERSION_MINOR(d->api_version), VK_API_VERSION_PATCH(d->api_version));
        cJSON *o = cJSON_CreateObject();
        if (o == NULL) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, o);
        cJSON_AddNumberToObject(o, "index", (double)i);
        cJSON_AddStringToObject(o, "name", d->name);
        cJSON_AddStringToObject(o, "type", d->type);
        cJSON_AddNumberToObject(o, "vendor_id", d->vendor_id);
        cJSON_AddNumberToObject(o, "device_id", d->device_id);
        cJSON_AddStringToObject(o, "api_version", api);
        cJSON_AddNumberToObject(o, "memory_mb", (double)d->memory_mb);
        cJSON_AddBoolToObject(o, "fp16", d->fp16);
        cJSON_AddNumberToObject(o, "subgroup_size", d->subgroup_size);
    }
    return arr;
}

void vkcaps_print(FILE *f, const proto_device *devs, size_t n, bool json)
{
    if (json) {
        cJSON *arr = vkcaps_to_json(devs, n);
        char *text = arr != NULL ? cJSON_Print(arr) : NULL;
        fprintf(f, "%s\n", text != NULL ? text : "[]");
        free(text);
        cJSON_Delete(arr);
        return;
    }
    if (n == 0) {
        fprintf(f, "no Vulkan devices\n");
        return;
    }
    fprintf(f, "%-3s %-40s %-10s %-11s %-8s %10s %-4s %s\n", "#", "name", "type", "vendor:dev",
            "api", "memory_mb", "fp16", "subgroup");
    for (size_t i = 0; i < n; i++) {
        const proto_device *d = &devs[i];
        char ids[24];
        char api[24];
        snprintf(ids, sizeof ids, "%04x:%04x", d->vendor_id, d->device_id);
        snprintf(api, sizeof api, "%u.%u.%u", VK_API_VERSION_MAJOR(d->api_version),
                 VK_API_VERSION_MINOR(d->api_version), VK_API_VERSION_PATCH(d->api_version));
        fprintf(f, "%-3zu %-40s %-10s %-11s %-8s %10llu %-4s %u\n", i, d->name, d->type, ids, api,
                (unsigned long long)d->memory_mb, d->fp16 ? "yes" : "no", d->subgroup_size);
    }
}

static bool is_index(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p)) {
            return false;
        }
    }
    return true;
}

rs_err vkcaps_select(proto_device *devs, size_t *n, const char *selector, size_t *index_out,
                     rs_error *e)
{
    size_t pick = *n;
    if (is_index(selector)) {
        unsigned long idx = strtoul(selector, NULL, 10);
        if (idx < *n) {
            pick = (size_t)idx;
        }
    } else {
        for (size_t i = 0; i < *n; i++) {
            if (strcasestr(devs[i].name, selector) != NULL) {
                pick = i;
                break;
            }
        }
    }
    if (pick == *n) {
        return rs_error_set(e, RS_ENOENT, "--device %s: no such Vulkan device (%zu found)",
                            selector, *n);
    }
    if (pick != 0) {
        devs[0] = devs[pick];
    }
    *n = 1;
    if (index_out != NULL) {
        *index_out = pick;
    }
    return RS_OK;
}
