/*
 * probe.h: what a footage file is, decided from its bytes (never its name).
 *
 * Recognised: video containers (anything libavformat probes with at least
 * one video or audio stream), PNG, OpenEXR, DPX (both byte orders) and TIFF.
 * The result is a JSON object whose "type" is "video", "audio" or "image"
 * and whose "format" names the container or image format; the other fields
 * are listed in media_probe's comment in probe.c.
 */
#ifndef RS_MEDIA_PROBE_H
#define RS_MEDIA_PROBE_H

#include <cjson/cJSON.h>

#include "err.h"

/*
 * Probes path. On success *out is a new JSON object the caller deletes.
 * RS_EFORMAT "path: not a recognised media file" for other content and
 * RS_EFORMAT "path: <format>: ..." for a truncated or corrupt header;
 * RS_ENOENT / RS_EIO if it cannot be read. Never crashes on bad bytes.
 * Thread-safe apart from the one-time silencing of libav/libtiff logging.
 */
rs_err media_probe(const char *path, cJSON **out, rs_error *e);

#endif
