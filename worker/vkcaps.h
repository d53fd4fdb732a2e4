/*
 * vkcaps.h: what Vulkan devices this host offers, as the worker announces
 * them in its hello (proto_device). Enumerates through the loader with no
 * layers; Mesa lavapipe counts (type "cpu"). Nothing here keeps Vulkan
 * objects alive: the instance is created, queried and destroyed per call.
 */
#ifndef RS_WORKER_VKCAPS_H
#define RS_WORKER_VKCAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "proto.h"

/*
 * Fills out[0..cap) with the physical devices and sets *n. A host with a
 * loader but no driver (VK_ERROR_INCOMPATIBLE_DRIVER) or no devices gives
 * RS_OK with *n == 0; any other Vulkan failure gives RS_EVK naming the call.
 * Devices beyond cap are left out (and logged).
 */
rs_err vkcaps_list(proto_device *out, size_t cap, size_t *n, rs_error *e);

/* "discrete", "integrated", "virtual", "cpu" or "other" for a VkPhysicalDeviceType value. */
const char *vkcaps_type_name(int vk_type);

/* A JSON array of device objects; NULL on allocation failure. Caller deletes. */
cJSON *vkcaps_to_json(const proto_device *devs, size_t n);

/* Prints the devices as a table (json false) or a JSON array (json true). */
void vkcaps_print(FILE *f, const proto_device *devs, size_t n, bool json);

/*
 * Picks devices by --device selector: a decimal index into devs, or else a
 * case-insensitive substring of the name. Keeps only the match in devs[0]
 * and sets *n to 1. RS_ENOENT naming the selector if nothing matches.
 */
rs_err vkcaps_select(proto_device *devs, size_t *n, const char *selector, size_t *index_out,
                     rs_error *e);

#endif
