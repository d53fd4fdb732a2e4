/*
 * dpx.c: SMPTE 268M DPX, hand-parsed from memory and written whole.
 *
 * Read: either byte order ("SDPX" big, "XPDS" little), one image element,
 * descriptors Y (6), RGB (50), RGBA (51), ABGR (52); 8-bit, 10-bit filled
 * to 32-bit words (packing 1 = method A, padding in the low bits, or 2 =
 * method B, padding in the high bits), 12-bit method A in 16-bit cells and
 * 16-bit. Every offset and size is checked against the buffer before use,
 * so a lying header ends in RS_EFORMAT. 10/12/16-bit samples come out as
 * u16 code values (not rescaled; bit_depth says how many bits count).
 *
 * Write: u16 frames as 10-bit method A or 16-bit, Y/RGB/RGBA, either byte
 * order, header text from "dpx:*" metadata, transfer from frame colour.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "media_int.h"

#define DPX_HEADER 2048u

typedef struct dpx_rd {
    const uint8_t *b;
    bool big;
} dpx_rd;

static uint32_t rd32(const dpx_rd *r, size_t off)
{
    const uint8_t *p = r->b + off;
    if (r->big) {
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    }
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static uint16_t rd16(const dpx_rd *r, size_t off)
{
    const uint8_t *p = r->b + off;
    return r->big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static void wr32(uint8_t *p, bool big, uint32_t v)
{
    if (big) {
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
    } else {
        p[3] = (uint8_t)(v >> 24);
        p[2] = (uint8_t)(v >> 16);
        p[1] = (uint8_t)(v >> 8);
        p[0] = (uint8_t)v;
    }
}

static void wr16(uint8_t *p, bool big, uint16_t v)
{
    if (big) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    } else {
        p[1] = (uint8_t)(v >> 8);
        p[0] = (uint8_t)v;
    }
}

/* Header text fields: offset, length, metadata key. */
static const struct {
    size_t off;
    size_t len;
    const char *key;
} dpx_text[] = {
    {36, 100, "dpx:filename"}, {136, 24, "dpx:timestamp"},  {160, 100, "dpx:creator"},
    {260, 200, "dpx:project"}, {460, 200, "dpx:copyright"}, {820, 32, "dpx:description"},
};

static media_colour colour_from_transfer(unsigned t)
{
    switch (t) {
    case 1:
    case 3:
        return MEDIA_COLOUR_CINEON;
    case 2:
        return MEDIA_COLOUR_LINEAR;
    case 6:
        return MEDIA_COLOUR_REC709;
    default:
        return MEDIA_COLOUR_UNKNOWN;
    }
}

static unsigned transfer_from_colour(media_colour c)
{
    switch (c) {
    case MEDIA_COLOUR_CINEON:
        return 1;
    case MEDIA_COLOUR_LINEAR:
        return 2;
    case MEDIA_COLOUR_REC709:
        return 6;
    default:
        return 0;
    }
}

rs_err media_dpx_decode(const char *name, const uint8_t *buf, size_t len, uint64_t max_bytes,
                        media_frame **out, rs_error *e)
{
    if (len < DPX_HEADER - 128 || len < 1664) {
        return rs_error_set(e, RS_EFORMAT, "%s: dpx: truncated header (%zu bytes, need 1664)", name,
                            len);
    }
    dpx_rd r = {.b = buf, .big = buf[0] == 'S'};
    uint32_t file_off = rd32(&r, 4);
    uint32_t file_size = rd32(&r, 16);
    unsigned elements = rd16(&r, 770);
    uint32_t w = rd32(&r, 772);
    uint32_t h = rd32(&r, 776);
    unsigned descriptor = buf[800];
    unsigned transfer = buf[801];
    unsigned bits = buf[803];
    unsigned packing = rd16(&r, 804);
    unsigned encoding = rd16(&r, 806);
    uint32_t data_off = rd32(&r, 808);
    uint32_t eol_pad = rd32(&r, 812);
    if (file_size != 0 && file_size != 0xffffffffu && file_size > len) {
        return rs_error_set(e, RS_EFORMAT,
                            "%s: dpx: truncated: header says %" PRIu32 " bytes, file has %zu", name,
                            file_size, len);
    }
    if (elements < 1 || elements > 8) {
        return rs_error_set(e, RS_EFORMAT, "%s: dpx: bad image element count %u", name, elements);
    }
    if (data_off == 0 || data_off == 0xffffffffu) {
        data_off = file_off;
    }
    if (data_off < 768 || data_off > len) {
        return rs_error_set(e, RS_EFORMAT,
                            "%s: dpx: image data offset %" PRIu32 " outside the file (%zu bytes)",
                            name, data_off, len);
    }
    if (eol_pad == 0xffffffffu) {
        eol_pad = 0;
    }
    if (encoding != 0) {
        return rs_error_set(e, RS_EFORMAT, "%s: dpx: run-length encoded data is not supported",
                            name);
    }
    unsigned ch;
    switch (descriptor) {
    case 6:
        ch = 1;
        break;
    case 50:
        ch = 3;
        break;
    case 51:
    case 52:
        ch = 4;
        break;
    default:
        return rs_error_set(e, RS_EFORMAT,
                            "%s: dpx: image descriptor %u is not supported "
                            "(Y, RGB, RGBA, ABGR only)",
                            name, descriptor);
    }
    media_sample s = bits == 8 ? MEDIA_SAMPLE_U8 : MEDIA_SAMPLE_U16;
    rs_err rc = media_check_size(name, "dpx", w, h, ch, s, max_bytes, e);
    if (rc != RS_OK) {
        return rc;
    }
    uint64_t nsamp = (uint64_t)w * ch;
    uint64_t row;
    if (bits == 8) {
        row = (nsamp + 3) / 4 * 4;
    } else if (bits == 10 && (packing == 1 || packing == 2)) {
        row = (nsamp + 2) / 3 * 4;
    } else if (bits == 12 && packing == 1) {
        row = nsamp * 2;
    } else if (bits == 16) {
        row = nsamp * 2;
    } else {
        return rs_error_set(e, RS_EFORMAT, "%s: dpx: %u-bit data with packing %u is not supported",
                            name, bits, packing);
    }
    if (eol_pad > 1u << 20) {
        return rs_error_set(e, RS_EFORMAT, "%s: dpx: end-of-line padding %" PRIu32 " too large",
                            name, eol_pad);
    }
    row += eol_pad;
    uint64_t need = row * h;
    if (len - data_off < need) {
        return rs_error_set(e, RS_EFORMAT,
                            "%s: dpx: truncated: %zu bytes of image data, need %" PRIu64, name,
                            len - data_off, need);
    }
    media_frame *f = NULL;
    rc = media_frame_create(w, h, ch, s, &f, e);
    if (rc != RS_OK) {
        return rc;
    }
    f->bit_depth = bits;
    f->colour = colour_from_transfer(transfer);
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *src = buf + data_off + row * y;
        if (bits == 8) {
            memcpy(f->data + (size_t)y * nsamp, src, nsamp);
            continue;
        }
        uint16_t *dst = (uint16_t *)(void *)f->data + (size_t)y * nsamp;
        if (bits == 10) {
            unsigned sh = packing == 1 ? 2 : 0;
            for (uint64_t i = 0; i < nsamp; i++) {
                uint32_t word = rd32(&r, (size_t)(src - buf) + (i / 3) * 4);
                dst[i] = (uint16_t)((word >> (sh + 10 * (2 - i % 3))) & 0x3ffu);
            }
        } else {
            unsigned sh = bits == 12 ? 4 : 0;
            for (uint64_t i = 0; i < nsamp; i++) {
                dst[i] = (uint16_t)(rd16(&r, (size_t)(src - buf) + i * 2) >> sh);
            }
        }
    }
    if (descriptor == 52) {
        size_t ss = media_sample_size(s);
        for (size_t p = 0; p < (size_t)w * h; p++) {
            uint8_t *px = f->data + p * 4 * ss;
            uint8_t tmp[8];
            memcpy(tmp, px, 4 * ss);
            for (unsigned c = 0; c < 4; c++) {
                memcpy(px + c * ss, tmp + (3 - c) * ss, ss);
            }
        }
    }
    for (size_t i = 0; i < sizeof dpx_text / sizeof dpx_text[0]; i++) {
        char text[201];
        size_t n = 0;
        while (n < dpx_text[i].len && buf[dpx_text[i].off + n] != '\0' &&
               buf[dpx_text[i].off + n] != 0xff) {
            text[n] = (char)buf[dpx_text[i].off + n];
            n++;
        }
        text[n] = '\0';
        if (n > 0) {
            rc = media_frame_meta_set(f, dpx_text[i].key, text, e);
            if (rc != RS_OK) {
                media_frame_destroy(f);
                return rc;
            }
        }
    }
    *out = f;
    return RS_OK;
}

rs_err media_dpx_write(const char *path, const media_frame *f, const media_write_opts *o,
                       rs_error *e)
{
    if (f->sample != MEDIA_SAMPLE_U16) {
        return rs_error_set(e, RS_EINVAL, "%s: dpx: only u16 frames can be written, not %s", path,
                            media_sample_name(f->sample));
    }
    unsigned descriptor;
    switch (f->channels) {
    case 1:
        descriptor = 6;
        break;
    case 3:
        descriptor = 50;
        break;
    case 4:
        descriptor = 51;
        break;
    default:
        return rs_error_set(e, RS_EINVAL, "%s: dpx: %u channels cannot be written (1, 3, 4)", path,
                            f->channels);
    }
    unsigned bits = o->dpx_bits != 0 ? o->dpx_bits : (f->bit_depth == 10 ? 10 : 16);
    if (bits != 10 && bits != 16) {
        return rs_error_set(e, RS_EINVAL, "%s: dpx: %u-bit output not supported (10 or 16)", path,
                            bits);
    }
    bool big = !o->dpx_little_endian;
    uint64_t nsamp = (uint64_t)f->width * f->channels;
    uint64_t row = bits == 10 ? (nsamp + 2) / 3 * 4 : nsamp * 2;
    uint64_t total = DPX_HEADER + row * f->height;
    if (total > 0xffffffffu) {
        return rs_error_set(e, RS_ETOOBIG, "%s: dpx: image over 4 GiB", path);
    }
    uint8_t *buf = calloc(1, (size_t)total);
    if (buf == NULL) {
        return rs_error_set(e, RS_ENOMEM, "%s: dpx: out of memory", path);
    }
    memcpy(buf, big ? "SDPX" : "XPDS", 4);
    wr32(buf + 4, big, DPX_HEADER);
    memcpy(buf + 8, "V2.0", 4);
    wr32(buf + 16, big, (uint32_t)total);
    wr32(buf + 20, big, 1);
    wr32(buf + 24, big, 1664);
    wr32(buf + 28, big, 384);
    wr32(buf + 32, big, 0);
    wr32(buf + 660, big, 0xffffffffu);
    for (size_t i = 0; i < sizeof dpx_text / sizeof dpx_text[0]; i++) {
        const char *v = media_frame_meta_get(f, dpx_text[i].key);
        if (v != NULL) {
            size_t n = strlen(v);
            memcpy(buf + dpx_text[i].off, v, n < dpx_text[i].len ? n : dpx_text[i].len - 1);
        }
    }
    wr16(buf + 768, big, 0);
    wr16(buf + 770, big, 1);
    wr32(buf + 772, big, f->width);
    wr32(buf + 776, big, f->height);
    wr32(buf + 780, big, 0);
    wr32(buf + 784, big, 0);
    wr32(buf + 792, big, (1u << bits) - 1);
    buf[800] = (uint8_t)descriptor;
    buf[801] = (uint8_t)transfer_from_colour(f->colour);
    buf[802] = buf[801] == 1 ? 1 : buf[801];
    buf[803] = (uint8_t)bits;
    wr16(buf + 804, big, bits == 10 ? 1 : 0);
    wr16(buf + 806, big, 0);
    wr32(buf + 808, big, DPX_HEADER);
    wr32(buf + 812, big, 0);
    wr32(buf + 816, big, 0);
    rs_err rc = RS_OK;
    const uint16_t *src = (const uint16_t *)(const void *)f->data;
    for (uint32_t y = 0; y < f->height; y++) {
        uint8_t *dst = buf + DPX_HEADER + row * y;
        const uint16_t *s = src + (size_t)y * nsamp;
        if (bits == 16) {
            for (uint64_t i = 0; i < nsamp; i++) {
                wr16(dst + i * 2, big, s[i]);
            }
            continue;
        }
        for (uint64_t i = 0; i < nsamp; i += 3) {
            uint32_t word = 0;
            for (uint64_t k = 0; k < 3 && i + k < nsamp; k++) {
                if (s[i + k] > 1023) {
                    rc = rs_error_set(e, RS_EINVAL,
                                      "%s: dpx: sample %u at row %" PRIu32
                                      " does not fit in 10 bits",
                                      path, s[i + k], y);
                    goto out;
                }
                word |= (uint32_t)s[i + k] << (2 + 10 * (2 - k));
            }
            wr32(dst + (i / 3) * 4, big, word);
        }
    }
    rc = rs_fs_write_atomic(path, buf, (size_t)total, e);
out:
    free(buf);
    return rc;
}
