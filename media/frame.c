/*
 * frame.c: the media_frame type, half floats, and the by-content dispatch
 * of media_image_read / media_image_write. See frame.h.
 */
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media_int.h"

#define MEDIA_FILE_CAP (4ull << 30)

size_t media_sample_size(media_sample s)
{
    switch (s) {
    case MEDIA_SAMPLE_U8:
        return 1;
    case MEDIA_SAMPLE_U16:
    case MEDIA_SAMPLE_F16:
        return 2;
    case MEDIA_SAMPLE_F32:
        return 4;
    }
    return 0;
}

const char *media_sample_name(media_sample s)
{
    static const char *const names[] = {"u8", "u16", "f16", "f32"};
    if ((unsigned)s < 4) {
        return names[s];
    }
    return "unknown";
}

const char *media_colour_name(media_colour c)
{
    static const char *const names[] = {"unknown", "linear", "srgb", "rec709", "pq", "cineon"};
    if ((unsigned)c < sizeof names / sizeof names[0]) {
        return names[c];
    }
    return "unknown";
}

void media_msg_clean(char *s)
{
    size_t i = 0;
    for (; s[i] != '\0' && i < 200; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
            s[i] = '?';
        }
    }
    s[i] = '\0';
}

rs_err media_check_size(const char *name, const char *fmt, uint64_t w, uint64_t h,
                        uint64_t channels, media_sample s, uint64_t max_bytes, rs_error *e)
{
    if (max_bytes == 0) {
        max_bytes = MEDIA_DEFAULT_MAX_BYTES;
    }
    if (w == 0 || h == 0) {
        return rs_error_set(e, RS_EFORMAT, "%s: %s: empty image (%" PRIu64 "x%" PRIu64 ")", name,
                            fmt, w, h);
    }
    if (w > MEDIA_MAX_DIM || h > MEDIA_MAX_DIM) {
        return rs_error_set(e, RS_EFORMAT,
                            "%s: %s: image size %" PRIu64 "x%" PRIu64 " over the %u limit", name,
                            fmt, w, h, MEDIA_MAX_DIM);
    }
    if (channels == 0 || channels > MEDIA_MAX_CHANNELS) {
        return rs_error_set(e, RS_EFORMAT, "%s: %s: %" PRIu64 " channels (1..%d supported)", name,
                            fmt, channels, MEDIA_MAX_CHANNELS);
    }
    uint64_t bytes = w * h * channels * media_sample_size(s);
    if (bytes > max_bytes) {
        return rs_error_set(e, RS_ETOOBIG,
                            "%s: %s: image %" PRIu64 "x%" PRIu64 "x%" PRIu64 " needs %" PRIu64
                            " bytes, over the %" PRIu64 " cap",
                            name, fmt, w, h, channels, bytes, max_bytes);
    }
    return RS_OK;
}

static rs_err frame_alloc(uint32_t width, uint32_t height, uint32_t channels, media_sample s,
                          bool zero, media_frame **out, rs_error *e);

rs_err media_frame_create(uint32_t width, uint32_t height, uint32_t channels, media_sample s,
                          media_frame **out, rs_error *e)
{
    return frame_alloc(width, height, channels, s, true, out, e);
}

rs_err media_frame_create_uninit(uint32_t width, uint32_t height, uint32_t channels, media_sample s,
                                 media_frame **out, rs_error *e)
{
    return frame_alloc(width, height, channels, s, false, out, e);
}

static rs_err frame_alloc(uint32_t width, uint32_t height, uint32_t channels, media_sample s,
                          bool zero, media_frame **out, rs_error *e)
{
    if (width == 0 || height == 0 || width > MEDIA_MAX_DIM || height > MEDIA_MAX_DIM ||
        channels == 0 || channels > MEDIA_MAX_CHANNELS || media_sample_size(s) == 0) {
        return rs_error_set(e, RS_EINVAL, "frame: bad geometry %" PRIu32 "x%" PRIu32 "x%" PRIu32,
                            width, height, channels);
    }
    uint64_t bytes = (uint64_t)width * height * channels * media_sample_size(s);
    if (bytes > MEDIA_DEFAULT_MAX_BYTES) {
        return rs_error_set(e, RS_ETOOBIG, "frame: %" PRIu64 " bytes over the cap", bytes);
    }
    media_frame *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return rs_error_set(e, RS_ENOMEM, "frame: out of memory");
    }
    f->data = zero ? calloc(1, (size_t)bytes) : malloc((size_t)bytes);
    if (f->data == NULL) {
        free(f);
        return rs_error_set(e, RS_ENOMEM, "frame: out of memory (%" PRIu64 " bytes)", bytes);
    }
    f->width = width;
    f->height = height;
    f->channels = channels;
    f->sample = s;
    f->bit_depth = (uint32_t)media_sample_size(s) * 8;
    static const char *const defaults[4][4] = {
        {"Y"}, {"Y", "A"}, {"R", "G", "B"}, {"R", "G", "B", "A"}};
    for (uint32_t c = 0; c < channels; c++) {
        if (channels <= 4) {
            snprintf(f->names[c], MEDIA_CHANNEL_NAME, "%s", defaults[channels - 1][c]);
        } else if (c < 4) {
            snprintf(f->names[c], MEDIA_CHANNEL_NAME, "%s", defaults[3][c]);
        } else {
            snprintf(f->names[c], MEDIA_CHANNEL_NAME, "C%" PRIu32, c);
        }
    }
    *out = f;
    return RS_OK;
}

void media_frame_destroy(media_frame *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->meta);
    free(f->data);
    free(f);
}

size_t media_frame_row_bytes(const media_frame *f)
{
    return (size_t)f->width * f->channels * media_sample_size(f->sample);
}

size_t media_frame_bytes(const media_frame *f)
{
    return media_frame_row_bytes(f) * f->height;
}

void *media_frame_at(const media_frame *f, uint32_t x, uint32_t y, uint32_t c)
{
    size_t ss = media_sample_size(f->sample);
    return f->data + ((size_t)y * f->width + x) * f->channels * ss + (size_t)c * ss;
}

rs_err media_frame_meta_set(media_frame *f, const char *key, const char *value, rs_error *e)
{
    for (size_t i = 0; i < f->nmeta; i++) {
        if (strcmp(f->meta[i].key, key) == 0) {
            char *v = strdup(value);
            if (v == NULL) {
                return rs_error_set(e, RS_ENOMEM, "frame: out of memory");
            }
            free(f->meta[i].value);
            f->meta[i].value = v;
            return RS_OK;
        }
    }
    media_meta *grown = realloc(f->meta, (f->nmeta + 1) * sizeof *grown);
    if (grown == NULL) {
        return rs_error_set(e, RS_ENOMEM, "frame: out of memory");
    }
    f->meta = grown;
    char *k = strdup(key);
    char *v = strdup(value);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return rs_error_set(e, RS_ENOMEM, "frame: out of memory");
    }
    f->meta[f->nmeta].key = k;
    f->meta[f->nmeta].value = v;
    f->nmeta++;
    return RS_OK;
}

const char *media_frame_meta_get(const media_frame *f, const char *key)
{
    for (size_t i = 0; i < f->nmeta; i++) {
        if (strcmp(f->meta[i].key, key) == 0) {
            return f->meta[i].value;
        }
    }
    return NULL;
}

rs_err media_frame_meta_copy(media_frame *dst, const media_frame *src, rs_error *e)
{
    for (size_t i = 0; i < src->nmeta; i++) {
        rs_err rc = media_frame_meta_set(dst, src->meta[i].key, src->meta[i].value, e);
        if (rc != RS_OK) {
            return rc;
        }
    }
    return RS_OK;
}

int media_frame_channel(const media_frame *f, const char *name)
{
    for (uint32_t c = 0; c < f->channels; c++) {
        if (strcmp(f->names[c], name) == 0) {
            return (int)c;
        }
    }
    return -1;
}

bool media_frame_equal(const media_frame *a, const media_frame *b)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels ||
        a->sample != b->sample) {
        return false;
    }
    for (uint32_t c = 0; c < a->channels; c++) {
        if (strcmp(a->names[c], b->names[c]) != 0) {
            return false;
        }
    }
    return memcmp(a->data, b->data, media_frame_bytes(a)) == 0;
}

float media_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while ((mant & 0x400u) == 0) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ffu;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t media_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t mant = x & 0x7fffffu;
    if (exp == 0xff) {
        return (uint16_t)(sign | 0x7c00u | (mant != 0 ? 0x200u | (mant >> 13) : 0));
    }
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) {
        return (uint16_t)(sign | 0x7c00u);
    }
    if (e <= 0) {
        if (e < -10) {
            return (uint16_t)sign;
        }
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) {
            half++;
        }
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) {
        half++; /* may carry into the exponent, which is the right rounding */
    }
    return (uint16_t)half;
}

static rs_err read_file(const char *path, uint8_t **out, size_t *outlen, rs_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return rs_error_set(e, err == ENOENT ? RS_ENOENT : RS_EIO, "%s: cannot open: %s", path,
                            strerror(err));
    }
    rs_err rc = RS_OK;
    uint8_t *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > MEDIA_FILE_CAP) {
        rc = rs_error_set(e, RS_ETOOBIG, "%s: %lld bytes, over the 4 GiB image cap", path,
                          (long long)st.st_size);
        goto out;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = rs_error_set(e, RS_EIO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break; /* shrank while reading: parse what is there */
        }
        got += (size_t)n;
    }
    *out = buf;
    *outlen = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

rs_err media_image_decode(const char *name, const void *buf, size_t len,
                          const media_read_opts *opts, media_frame **out, rs_error *e)
{
    uint64_t cap = opts != NULL && opts->max_bytes != 0 ? opts->max_bytes : MEDIA_DEFAULT_MAX_BYTES;
    switch (media_format_sniff(buf, len)) {
    case MEDIA_FORMAT_PNG:
        return media_png_decode(name, buf, len, cap, out, e);
    case MEDIA_FORMAT_EXR:
        return media_exr_decode(
            name, buf, len, cap,
            opts != NULL && opts->threads != 0 ? opts->threads : MEDIA_DEFAULT_THREADS, out, e);
    case MEDIA_FORMAT_DPX:
        return media_dpx_decode(name, buf, len, cap, out, e);
    case MEDIA_FORMAT_TIFF:
        return media_tiff_decode(name, buf, len, cap, out, e);
    default:
        break;
    }
    if (len == 0) {
        return rs_error_set(e, RS_EFORMAT, "%s: not an image (empty file)", name);
    }
    return rs_error_set(e, RS_EFORMAT,
                        "%s: not an image this reader knows (wrong magic; PNG, EXR, DPX, TIFF "
                        "expected)",
                        name);
}

rs_err media_image_read(const char *path, const media_read_opts *opts, media_frame **out,
                        rs_error *e)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    rs_err rc = read_file(path, &buf, &len, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = media_image_decode(path, buf, len, opts, out, e);
    free(buf);
    return rc;
}

rs_err media_image_write(const char *path, const media_frame *f, const media_write_opts *o,
                         rs_error *e)
{
    if (f == NULL || o == NULL || f->data == NULL) {
        return rs_error_set(e, RS_EINVAL, "%s: nothing to write", path);
    }
    switch (o->format) {
    case MEDIA_FORMAT_PNG:
        return media_png_write(path, f, o, e);
    case MEDIA_FORMAT_EXR:
        return media_exr_write(path, f, o, e);
    case MEDIA_FORMAT_DPX:
        return media_dpx_write(path, f, o, e);
    case MEDIA_FORMAT_TIFF:
        return media_tiff_write(path, f, o, e);
    default:
        break;
    }
    return rs_error_set(e, RS_EINVAL, "%s: cannot write format %s as an image", path,
                        media_format_name(o->format));
}
