/*
 * tiff.c: TIFF 8/16-bit integer and 16/32-bit float through libtiff.
 * Reads from memory (TIFFClientOpenExt over a buffer), strips or tiles,
 * contiguous or planar, grey/RGB with extra samples; writes contiguous
 * strips, optionally deflate-compressed, to an atomic file. libtiff's
 * messages are captured into the error, never printed, and its single
 * allocations are capped so a hostile tag cannot ask for gigabytes.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "fs.h"
#include "media_int.h"

typedef struct tiff_mem {
    const uint8_t *buf;
    toff_t len;
    toff_t pos;
    char msg[256];
} tiff_mem;

static int tiff_err(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)module;
    char *msg = ud;
    if (msg != NULL && msg[0] == '\0') {
        vsnprintf(msg, 256, fmt, ap);
        media_msg_clean(msg);
    }
    return 1;
}

static int tiff_warn(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)ud;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

static tmsize_t mem_read(thandle_t h, void *out, tmsize_t n)
{
    tiff_mem *m = h;
    if (n < 0) {
        return -1;
    }
    toff_t left = m->pos < m->len ? m->len - m->pos : 0;
    toff_t take = (toff_t)n < left ? (toff_t)n : left;
    memcpy(out, m->buf + m->pos, (size_t)take);
    m->pos += take;
    return (tmsize_t)take;
}

static tmsize_t mem_write(thandle_t h, void *in, tmsize_t n)
{
    (void)h;
    (void)in;
    (void)n;
    return -1;
}

static toff_t mem_seek(thandle_t h, toff_t off, int whence)
{
    tiff_mem *m = h;
    toff_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->len : 0;
    m->pos = base + off;
    return m->pos;
}

static int mem_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t mem_size(thandle_t h)
{
    return ((tiff_mem *)h)->len;
}

static int mem_map(thandle_t h, void **base, toff_t *size)
{
    (void)h;
    (void)base;
    (void)size;
    return 0;
}

static void mem_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

static const struct {
    ttag_t tag;
    const char *key;
} tiff_text[] = {
    {TIFFTAG_IMAGEDESCRIPTION, "ImageDescription"},
    {TIFFTAG_SOFTWARE, "Software"},
    {TIFFTAG_ARTIST, "Artist"},
    {TIFFTAG_COPYRIGHT, "Copyright"},
    {TIFFTAG_DOCUMENTNAME, "DocumentName"},
    {TIFFTAG_DATETIME, "DateTime"},
};

static rs_err tiff_fail(const char *name, const char *msg, const char *what, rs_error *e)
{
    return rs_error_set(e, RS_EFORMAT, "%s: tiff: %s%s%s", name, what, msg[0] != '\0' ? ": " : "",
                        msg);
}

rs_err media_tiff_decode(const char *name, const uint8_t *buf, size_t len, uint64_t max_bytes,
                         media_frame **out, rs_error *e)
{
    tiff_mem m = {.buf = buf, .len = len};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (opts == NULL) {
        return rs_error_set(e, RS_ENOMEM, "%s: tiff: out of memory", name);
    }
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_err, m.msg);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_warn, NULL);
    TIFFOpenOptionsSetMaxSingleMemAlloc(
        opts, (tmsize_t)(max_bytes < (256u << 20) ? max_bytes : (256u << 20)));
    TIFF *tif = TIFFClientOpenExt(name, "rm", &m, mem_read, mem_write, mem_seek, mem_close,
                                  mem_size, mem_map, mem_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (tif == NULL) {
        return tiff_fail(name, m.msg, "cannot read header", e);
    }
    rs_err rc = RS_OK;
    media_frame *f = NULL;
    uint8_t *tmp = NULL;
    uint32_t w = 0;
    uint32_t h = 0;
    uint16_t bps = 1;
    uint16_t spp = 1;
    uint16_t fmt = SAMPLEFORMAT_UINT;
    uint16_t planar = PLANARCONFIG_CONTIG;
    uint16_t photo = PHOTOMETRIC_MINISBLACK;
    if (TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) != 1 ||
        TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h) != 1) {
        rc = tiff_fail(name, m.msg, "missing image size", e);
        goto out;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo);
    media_sample s;
    if (fmt == SAMPLEFORMAT_UINT && bps == 8) {
        s = MEDIA_SAMPLE_U8;
    } else if (fmt == SAMPLEFORMAT_UINT && bps == 16) {
        s = MEDIA_SAMPLE_U16;
    } else if (fmt == SAMPLEFORMAT_IEEEFP && bps == 16) {
        s = MEDIA_SAMPLE_F16;
    } else if (fmt == SAMPLEFORMAT_IEEEFP && bps == 32) {
        s = MEDIA_SAMPLE_F32;
    } else {
        rc = rs_error_set(e, RS_EFORMAT,
                          "%s: tiff: %u-bit samples of format %u are not supported "
                          "(8/16-bit integer, 16/32-bit float)",
                          name, bps, fmt);
        goto out;
    }
    if (photo != PHOTOMETRIC_MINISBLACK && photo != PHOTOMETRIC_RGB) {
        rc = rs_error_set(e, RS_EFORMAT,
                          "%s: tiff: photometric %u is not supported (grey or RGB only)", name,
                          photo);
        goto out;
    }
    rc = media_check_size(name, "tiff", w, h, spp, s, max_bytes, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = media_frame_create(w, h, spp, s, &f, e);
    if (rc != RS_OK) {
        goto out;
    }
    f->bit_depth = bps;
    f->colour =
        s == MEDIA_SAMPLE_U8 || s == MEDIA_SAMPLE_U16 ? MEDIA_COLOUR_SRGB : MEDIA_COLOUR_LINEAR;
    size_t ss = media_sample_size(s);
    size_t px = (size_t)spp * ss; /* bytes per pixel in the frame */
    bool sep = planar == PLANARCONFIG_SEPARATE && spp > 1;
    unsigned planes = sep ? spp : 1;
    size_t cell = sep ? ss : px; /* bytes per pixel in one decoded plane */
    if (TIFFIsTiled(tif)) {
        uint32_t tw = 0;
        uint32_t th = 0;
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
        if (tw == 0 || th == 0 || tw > MEDIA_MAX_DIM || th > MEDIA_MAX_DIM ||
            (uint64_t)TIFFTileSize(tif) != (uint64_t)tw * th * cell) {
            rc = rs_error_set(e, RS_EFORMAT, "%s: tiff: bad tile size %" PRIu32 "x%" PRIu32, name,
                              tw, th);
            goto out;
        }
        /* a tile may overhang the image, but not by gigabytes */
        if ((uint64_t)tw * th * cell > max_bytes) {
            rc =
                rs_error_set(e, RS_EFORMAT,
                             "%s: tiff: tile %" PRIu32 "x%" PRIu32 " over the %" PRIu64 "-byte cap",
                             name, tw, th, max_bytes);
            goto out;
        }
        tmp = malloc((size_t)tw * th * cell);
        if (tmp == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "%s: tiff: out of memory", name);
            goto out;
        }
        for (unsigned p = 0; p < planes; p++) {
            for (uint32_t ty = 0; ty < h; ty += th) {
                for (uint32_t tx = 0; tx < w; tx += tw) {
                    if (TIFFReadTile(tif, tmp, tx, ty, 0, (uint16_t)p) < 0) {
                        rc =
                            rs_error_set(e, RS_EFORMAT,
                                         "%s: tiff: tile at %" PRIu32 ",%" PRIu32 " unreadable: %s",
                                         name, tx, ty, m.msg[0] != '\0' ? m.msg : "corrupt");
                        goto out;
                    }
                    uint32_t cw = w - tx < tw ? w - tx : tw;
                    uint32_t chh = h - ty < th ? h - ty : th;
                    for (uint32_t y = 0; y < chh; y++) {
                        const uint8_t *src = tmp + (size_t)y * tw * cell;
                        uint8_t *dst = media_frame_at(f, tx, ty + y, sep ? p : 0);
                        if (!sep) {
                            memcpy(dst, src, (size_t)cw * px);
                            continue;
                        }
                        for (uint32_t x = 0; x < cw; x++) {
                            memcpy(dst + (size_t)x * px, src + (size_t)x * ss, ss);
                        }
                    }
                }
            }
        }
    } else {
        if ((uint64_t)TIFFScanlineSize(tif) != (uint64_t)w * cell) {
            rc = rs_error_set(e, RS_EFORMAT, "%s: tiff: unexpected scanline size", name);
            goto out;
        }
        tmp = malloc((size_t)w * cell);
        if (tmp == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "%s: tiff: out of memory", name);
            goto out;
        }
        for (unsigned p = 0; p < planes; p++) {
            for (uint32_t y = 0; y < h; y++) {
                if (TIFFReadScanline(tif, tmp, y, (uint16_t)p) < 0) {
                    rc = rs_error_set(e, RS_EFORMAT, "%s: tiff: row %" PRIu32 " unreadable: %s",
                                      name, y, m.msg[0] != '\0' ? m.msg : "truncated or corrupt");
                    goto out;
                }
                uint8_t *dst = media_frame_at(f, 0, y, sep ? p : 0);
                if (!sep) {
                    memcpy(dst, tmp, (size_t)w * px);
                    continue;
                }
                for (uint32_t x = 0; x < w; x++) {
                    memcpy(dst + (size_t)x * px, tmp + (size_t)x * ss, ss);
                }
            }
        }
    }
    for (size_t i = 0; i < sizeof tiff_text / sizeof tiff_text[0]; i++) {
        const char *v = NULL;
        if (TIFFGetField(tif, tiff_text[i].tag, &v) == 1 && v != NULL) {
            rc = media_frame_meta_set(f, tiff_text[i].key, v, e);
            if (rc != RS_OK) {
                goto out;
            }
        }
    }
out:
    free(tmp);
    TIFFClose(tif);
    if (rc != RS_OK) {
        media_frame_destroy(f);
        return rc;
    }
    *out = f;
    return RS_OK;
}

rs_err media_tiff_write(const char *path, const media_frame *f, const media_write_opts *o,
                        rs_error *e)
{
    rs_fs_atomic a;
    rs_err rc = rs_fs_atomic_open(path, &a, e);
    if (rc != RS_OK) {
        return rc;
    }
    char msg[256] = "";
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (opts == NULL) {
        rs_fs_atomic_abort(&a);
        return rs_error_set(e, RS_ENOMEM, "%s: tiff: out of memory", path);
    }
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_err, msg);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_warn, NULL);
    TIFF *tif = TIFFFdOpenExt(a.fd, path, "w", opts);
    TIFFOpenOptionsFree(opts);
    if (tif == NULL) {
        rs_fs_atomic_abort(&a);
        return rs_error_set(e, RS_EIO, "%s: tiff: cannot start: %s", path, msg);
    }
    a.fd = -1; /* TIFFClose closes it; commit reopens to fsync */
    bool is_float = f->sample == MEDIA_SAMPLE_F16 || f->sample == MEDIA_SAMPLE_F32;
    uint16_t bps = (uint16_t)(media_sample_size(f->sample) * 8);
    uint16_t spp = (uint16_t)f->channels;
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, f->width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, f->height);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, bps);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, spp);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, is_float ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_COMPRESSION,
                 o->tiff_deflate ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(tif, 0));
    unsigned colour = spp >= 3 ? 3 : 1;
    if (spp > colour) {
        uint16_t extra[MEDIA_MAX_CHANNELS];
        for (unsigned i = 0; i < spp - colour; i++) {
            extra[i] = EXTRASAMPLE_UNSPECIFIED;
        }
        if (strcmp(f->names[colour], "A") == 0) {
            extra[0] = EXTRASAMPLE_UNASSALPHA;
        }
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, (uint16_t)(spp - colour), extra);
    }
    for (size_t i = 0; i < sizeof tiff_text / sizeof tiff_text[0]; i++) {
        const char *v = media_frame_meta_get(f, tiff_text[i].key);
        if (v != NULL) {
            TIFFSetField(tif, tiff_text[i].tag, v);
        }
    }
    size_t rb = media_frame_row_bytes(f);
    for (uint32_t y = 0; y < f->height; y++) {
        if (TIFFWriteScanline(tif, f->data + (size_t)y * rb, y, 0) < 0) {
            rc = rs_error_set(e, RS_EIO, "%s: tiff: row %" PRIu32 ": %s", path, y, msg);
            break;
        }
    }
    if (rc == RS_OK && TIFFFlush(tif) != 1) {
        rc = rs_error_set(e, RS_EIO, "%s: tiff: flush: %s", path, msg);
    }
    TIFFClose(tif);
    if (rc != RS_OK) {
        rs_fs_atomic_abort(&a);
        return rc;
    }
    return rs_fs_atomic_commit(&a, e);
}
