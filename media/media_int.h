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

/* media_frame_create without zeroing the pixels, for a decoder that writes
 * every sample (a 1080p RGB u16 frame is 12 MB to clear per video frame). */
rs_err media_frame_create_uninit(uint32_t width, uint32_t height, uint32_t channels, media_sample s,
                                 media_frame **out, rs_error *e);

/* libswscale's fixed-point YUV -> RGB coefficients (yuv2rgb_*_coeff) for a
 * matrix from sws_getCoefficients and a range, at default brightness,
 * contrast and saturation. */
typedef struct media_yuv_coefs {
    int32_t yoff;
    int32_t ycoef;
    int32_t v2r;
    int32_t v2g;
    int32_t u2g;
    int32_t u2b;
} media_yuv_coefs;

typedef enum media_yuv_kind {
    MEDIA_YUV_422,  /* yuv422p10, even width -> RGB */
    MEDIA_YUV_444,  /* yuv444p10 -> RGB */
    MEDIA_YUV_444A, /* yuva444p10 -> RGBA */
} media_yuv_kind;

media_yuv_coefs media_yuv_coefs_make(const int *inv, bool full_range);
/* Rows [y0, y1) of a native-endian 10-bit planar frame to packed u16
 * RGB(A) rows of stride bytes at dst, as swscale computes them at equal
 * size (yuvrgb.c). */
void media_yuv10_to_rgb16(const media_yuv_coefs *k, const uint8_t *const planes[4],
                          const int linesize[4], int w, int y0, int y1, media_yuv_kind kind,
                          uint8_t *dst, size_t stride);

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
/* threads: chunks decode on up to this many threads (0 or 1: the caller's). */
rs_err media_exr_decode(const char *name, const uint8_t *buf, size_t len, uint64_t max_bytes,
                        unsigned threads, media_frame **out, rs_error *e);
rs_err media_exr_write(const char *path, const media_frame *f, const media_write_opts *o,
                       rs_error *e);

#endif
