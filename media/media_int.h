/*
 * media_int.h: what the per-format readers and writers share inside
 * media/. Not installed; other modules include frame.h.
 */
#ifndef RS_MEDIA_INT_H
#define RS_MEDIA_INT_H

#include <stdint.h>

#include "frame.h"

/* Refuses sizes no reader should allocate: zero, over MEDIA_MAX_DIM, or a
 * frame over max_bytes. The message names file and format. */
rs_err media_check_size(const char *name, const char *fmt, uint64_t w, uint64_t h,
                        uint64_t channels, media_sample s, uint64_t max_bytes, rs_error *e);

/* Makes text captured from a library fit a one-line message: bytes outside
 * printable ASCII become '?', and it is cut at 200 characters. */
void media_msg_clean(char *s);

rs_err media_png_decode(const char *name, const uint8_t *buf, size_t len, uint64_t max_bytes,
                        media_frame **out, rs_error *e);
rs_err media_png_write(const char *path, const media_frame *f, const media_write_opts *o,
                       rs_error *e);
rs_err media_tiff_decode(const char *name, const uint8_t *buf, size_t len, uint64_t max_bytes,
                         media_frame **out, rs_error *e);
rs_err media_tiff_write(const char *path, const media_frame *f, const media_write_opts *o,
                        rs_error *e);
rs_err media_dpx_decode(const char *name, const uint8_t *buf, size_t len, uint64_t max_bytes,
                        media_frame **out, rs_error *e);
rs_err media_dpx_write(const char *path, const media_frame *f, const media_write_opts *o,
                       rs_error *e);
rs_err media_exr_decode(const char *name, const uint8_t *buf, size_t len, uint64_t max_bytes,
                        media_frame **out, rs_error *e);
rs_err media_exr_write(const char *path, const media_frame *f, const media_write_opts *o,
                       rs_error *e);

#endif
