/*
 * yuvrgb.c: 10-bit planar YUV (4:2:2, 4:4:4, 4:4:4 + alpha) to packed RGB(A)
 * u16 with libswscale's exact fixed-point arithmetic, for video.c.
 *
 * At equal size swscale filters nothing: each output sample is its
 * yuv2rgba64 template applied to 19-bit intermediates. This file computes
 * the same integers in loops the compiler vectorises (built with -O3, and
 * an AVX2 copy chosen at run time), which costs a fraction of the generic
 * scaler. video.c only uses it after a bit-exact check against swscale.
 */
#include <stddef.h>
#include <stdint.h>

#include "media_int.h"

/* Widest row the per-row scratch covers in one pass; wider rows are done
 * in pieces (a piece boundary is even, so 4:2:2 pairs never split). */
#define YUV_PIECE 256

/* swscale's roundToInt16: 16.16 fixed point to a saturated int16. */
static int32_t round_to_int16(int64_t f)
{
    int64_t r = (f + (1 << 15)) >> 16;
    if (r < -0x7fff) {
        return -0x8000;
    }
    if (r > 0x7fff) {
        return 0x7fff;
    }
    return (int32_t)r;
}

media_yuv_coefs media_yuv_coefs_make(const int *inv, bool full_range)
{
    int64_t crv = inv[0];
    int64_t cbu = inv[1];
    int64_t cgu = -(int64_t)inv[2];
    int64_t cgv = -(int64_t)inv[3];
    int64_t cy = 1 << 16;
    int64_t oy = 0;
    if (!full_range) {
        cy = (cy * 255) / 219;
        oy = 16 << 16;
    } else {
        crv = (crv * 224) / 255;
        cbu = (cbu * 224) / 255;
        cgu = (cgu * 224) / 255;
        cgv = (cgv * 224) / 255;
    }
    media_yuv_coefs k = {
        .yoff = round_to_int16(oy * 512),
        .ycoef = round_to_int16(cy * 8192),
        .v2r = round_to_int16(crv * 8192),
        .v2g = round_to_int16(cgv * 8192),
        .u2g = round_to_int16(cgu * 8192),
        .u2b = round_to_int16(cbu * 8192),
    };
    return k;
}

/* A sample as swscale's horizontal pass leaves it (x << 9, capped at 19
 * bits) after the output template's >> 2: min(x << 7, 2^17 - 1). */
static inline int32_t s17(uint16_t x)
{
    int32_t v = (int32_t)x << 7;
    return v < (1 << 17) - 1 ? v : (1 << 17) - 1;
}

static inline uint16_t out16(int32_t c, uint32_t y)
{
    int32_t v = ((int32_t)((uint32_t)c + y) >> 14) + (1 << 15);
    return (uint16_t)(v < 0 ? 0 : (v > 65535 ? 65535 : v));
}

/* n pixels of one row (n even for 4:2:2, whose chroma is at half width).
 * Chroma terms are computed once per chroma sample, the luma term once per
 * pixel, then combined and interleaved; every loop is unit- or
 * pair-stride so it vectorises. */
static inline __attribute__((always_inline)) void
yuv_piece(const media_yuv_coefs *restrict k, const uint16_t *restrict yp,
          const uint16_t *restrict up, const uint16_t *restrict vp, const uint16_t *restrict ap,
          int n, bool sub, uint16_t *restrict out)
{
    int32_t cr[YUV_PIECE];
    int32_t cg[YUV_PIECE];
    int32_t cb[YUV_PIECE];
    uint32_t yt[YUV_PIECE];
    uint16_t r[YUV_PIECE];
    uint16_t g[YUV_PIECE];
    uint16_t b[YUV_PIECE];
    const int32_t yoff = k->yoff;
    const uint32_t ycoef = (uint32_t)k->ycoef;
    const int32_t v2r = k->v2r;
    const int32_t v2g = k->v2g;
    const int32_t u2g = k->u2g;
    const int32_t u2b = k->u2b;
    int nc = sub ? n / 2 : n;
    for (int x = 0; x < nc; x++) {
        int32_t u = s17(up[x]) - (128 << 9);
        int32_t v = s17(vp[x]) - (128 << 9);
        cr[x] = v * v2r;
        cg[x] = v * v2g + u * u2g;
        cb[x] = u * u2b;
    }
    for (int x = 0; x < n; x++) {
        yt[x] = (uint32_t)(s17(yp[x]) - yoff) * ycoef + (1u << 13) - (1u << 29);
    }
    if (sub) {
        for (int x = 0; x < nc; x++) {
            r[2 * x] = out16(cr[x], yt[2 * x]);
            r[2 * x + 1] = out16(cr[x], yt[2 * x + 1]);
            g[2 * x] = out16(cg[x], yt[2 * x]);
            g[2 * x + 1] = out16(cg[x], yt[2 * x + 1]);
            b[2 * x] = out16(cb[x], yt[2 * x]);
            b[2 * x + 1] = out16(cb[x], yt[2 * x + 1]);
        }
    } else {
        for (int x = 0; x < n; x++) {
            r[x] = out16(cr[x], yt[x]);
            g[x] = out16(cg[x], yt[x]);
            b[x] = out16(cb[x], yt[x]);
        }
    }
    if (ap != NULL) {
        for (int x = 0; x < n; x++) {
            /* swscale: (s19 * 2^11 + 2^13) clipped to 30 bits, >> 14 */
            int32_t s = (int32_t)ap[x] << 9;
            s = s < (1 << 19) - 1 ? s : (1 << 19) - 1;
            out[4 * x + 0] = r[x];
            out[4 * x + 1] = g[x];
            out[4 * x + 2] = b[x];
            out[4 * x + 3] = (uint16_t)((s * (1 << 11) + (1 << 13)) >> 14);
        }
    } else {
        for (int x = 0; x < n; x++) {
            out[3 * x + 0] = r[x];
            out[3 * x + 1] = g[x];
            out[3 * x + 2] = b[x];
        }
    }
}

static inline __attribute__((always_inline)) void
yuv_rows(const media_yuv_coefs *k, const uint8_t *const planes[4], const int linesize[4], int w,
         int y0, int y1, media_yuv_kind kind, uint8_t *dst, size_t stride)
{
    int ch = kind == MEDIA_YUV_444A ? 4 : 3;
    bool sub = kind == MEDIA_YUV_422;
    for (int y = y0; y < y1; y++) {
        const uint16_t *yp =
            (const uint16_t *)(const void *)(planes[0] + (ptrdiff_t)y * linesize[0]);
        const uint16_t *up =
            (const uint16_t *)(const void *)(planes[1] + (ptrdiff_t)y * linesize[1]);
        const uint16_t *vp =
            (const uint16_t *)(const void *)(planes[2] + (ptrdiff_t)y * linesize[2]);
        const uint16_t *ap =
            kind == MEDIA_YUV_444A
                ? (const uint16_t *)(const void *)(planes[3] + (ptrdiff_t)y * linesize[3])
                : NULL;
        uint16_t *o = (uint16_t *)(void *)(dst + (size_t)y * stride);
        for (int x0 = 0; x0 < w; x0 += YUV_PIECE) {
            int n = w - x0 < YUV_PIECE ? w - x0 : YUV_PIECE;
            int c0 = sub ? x0 / 2 : x0;
            yuv_piece(k, yp + x0, up + c0, vp + c0, ap != NULL ? ap + x0 : NULL, n, sub,
                      o + (size_t)x0 * (size_t)ch);
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void
yuv_rows_avx2(const media_yuv_coefs *k, const uint8_t *const planes[4], const int linesize[4],
              int w, int y0, int y1, media_yuv_kind kind, uint8_t *dst, size_t stride)
{
    yuv_rows(k, planes, linesize, w, y0, y1, kind, dst, stride);
}
#define YUV_HAVE_AVX2 1
#endif

static void yuv_rows_base(const media_yuv_coefs *k, const uint8_t *const planes[4],
                          const int linesize[4], int w, int y0, int y1, media_yuv_kind kind,
                          uint8_t *dst, size_t stride)
{
    yuv_rows(k, planes, linesize, w, y0, y1, kind, dst, stride);
}

void media_yuv10_to_rgb16(const media_yuv_coefs *k, const uint8_t *const planes[4],
                          const int linesize[4], int w, int y0, int y1, media_yuv_kind kind,
                          uint8_t *dst, size_t stride)
{
#ifdef YUV_HAVE_AVX2
    if (__builtin_cpu_supports("avx2")) {
        yuv_rows_avx2(k, planes, linesize, w, y0, y1, kind, dst, stride);
        return;
    }
#endif
    yuv_rows_base(k, planes, linesize, w, y0, y1, kind, dst, stride);
}
