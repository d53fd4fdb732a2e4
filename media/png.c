/*
 * png.c: PNG 8/16-bit through libpng, from memory and to an atomic file.
 * Palette and low-bit grey are expanded, tRNS becomes alpha, 16-bit samples
 * come out in host order. tEXt/zTXt/iTXt chunks become frame metadata and
 * metadata is written back as tEXt (iTXt when it is not plain ASCII).
 * libpng reports errors by longjmp, so locals that live across setjmp are
 * volatile and all cleanup sits after the one landing point.
 */
#include <ctype.h>
#include <inttypes.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "media_int.h"

/* Largest ancillary chunk (text, ICC profile...) accepted, decompressed. */
#define PNG_CHUNK_CAP (16u << 20)

typedef struct png_io {
    const char *name;
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int fd;
    char msg[256];
} png_io;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_io *io = png_get_error_ptr(png);
    if (io != NULL && io->msg[0] == '\0') {
        snprintf(io->msg, sizeof io->msg, "%s", msg);
        media_msg_clean(io->msg);
    }
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_mem_read(png_structp png, png_bytep out, size_t n)
{
    png_io *io = png_get_io_ptr(png);
    if (io->len - io->pos < n) {
        png_error(png, "truncated (file ends inside a chunk)");
    }
    memcpy(out, io->buf + io->pos, n);
    io->pos += n;
}

static void png_fd_write(png_structp png, png_bytep data, size_t n)
{
    png_io *io = png_get_io_ptr(png);
    while (n > 0) {
        ssize_t w = write(io->fd, data, n);
        if (w <= 0) {
            png_error(png, "write failed");
        }
        data += w;
        n -= (size_t)w;
    }
}

static void png_fd_flush(png_structp png)
{
    (void)png;
}

static bool host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/*
 * Every chunk's declared length must fit in the bytes we hold: libpng reads
 * a chunk's length before its data and, for text chunks, allocates that
 * much first (the packaged build does not apply png_set_chunk_malloc_max
 * to them), so a 60-byte file could ask for 2 GiB.
 */
static rs_err png_check_chunks(const char *name, const uint8_t *buf, size_t len, rs_error *e)
{
    size_t off = 8;
    for (int i = 0; i < 1000000 && off < len; i++) {
        if (len - off < 12) {
            return rs_error_set(e, RS_EFORMAT, "%s: png: truncated (file ends inside a chunk)",
                                name);
        }
        const uint8_t *c = buf + off;
        uint32_t n = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
        if (n > len - off - 12) {
            return rs_error_set(
                e, RS_EFORMAT,
                "%s: png: truncated: chunk %c%c%c%c at byte %zu says %" PRIu32 " bytes, %zu left",
                name, isalpha(c[4]) ? c[4] : '?', isalpha(c[5]) ? c[5] : '?',
                isalpha(c[6]) ? c[6] : '?', isalpha(c[7]) ? c[7] : '?', off, n, len - off - 12);
        }
        if (memcmp(c + 4, "IEND", 4) == 0) {
            return RS_OK;
        }
        off += 12 + (size_t)n;
    }
    return rs_error_set(e, RS_EFORMAT, "%s: png: truncated (no IEND chunk)", name);
}

rs_err media_png_decode(const char *name, const uint8_t *buf, size_t len, uint64_t max_bytes,
                        media_frame **out, rs_error *e)
{
    rs_err cc = png_check_chunks(name, buf, len, e);
    if (cc != RS_OK) {
        return cc;
    }
    png_io io = {.name = name, .buf = buf, .len = len};
    png_structp png = NULL;
    png_infop info = NULL;
    media_frame *volatile f = NULL;
    png_bytep *volatile rows = NULL;
    volatile rs_err rc = RS_OK;

    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
    if (png != NULL) {
        info = png_create_info_struct(png);
    }
    if (png == NULL || info == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: png: out of memory", name);
        goto out;
    }
    if (setjmp(png_jmpbuf(png)) != 0) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: png: %s", name,
                          io.msg[0] != '\0' ? io.msg : "corrupt");
        goto out;
    }
    png_set_read_fn(png, &io, png_mem_read);
    /* an ancillary chunk's length is read before its bytes: without this
     * cap a 60-byte file can make libpng allocate 2 GiB */
    png_set_chunk_malloc_max(png, PNG_CHUNK_CAP);
    png_set_chunk_cache_max(png, 1000);
    png_read_info(png, info);
    png_uint_32 w = 0;
    png_uint_32 h = 0;
    int depth = 0;
    int ctype = 0;
    int interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
    }
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    if (png_get_valid(png, info, PNG_INFO_tRNS)) {
        png_set_tRNS_to_alpha(png);
    }
    if (depth == 16 && host_little_endian()) {
        png_set_swap(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    unsigned channels = png_get_channels(png, info);
    int out_depth = png_get_bit_depth(png, info);
    media_sample s = out_depth == 16 ? MEDIA_SAMPLE_U16 : MEDIA_SAMPLE_U8;
    rs_error tmp;
    rs_err sc = media_check_size(name, "png", w, h, channels, s, max_bytes, &tmp);
    if (sc != RS_OK) {
        rc = sc;
        if (e != NULL) {
            *e = tmp;
        }
        goto out;
    }
    media_frame *nf = NULL;
    sc = media_frame_create(w, h, channels, s, &nf, e);
    if (sc != RS_OK) {
        rc = sc;
        goto out;
    }
    f = nf;
    f->bit_depth = (uint32_t)depth < 8 ? 8 : (uint32_t)depth;
    f->colour = MEDIA_COLOUR_SRGB;
    rows = malloc(sizeof(png_bytep) * h);
    if (rows == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: png: out of memory", name);
        goto out;
    }
    size_t rb = media_frame_row_bytes(f);
    if (png_get_rowbytes(png, info) != rb) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: png: unexpected row size", name);
        goto out;
    }
    for (png_uint_32 y = 0; y < h; y++) {
        rows[y] = f->data + (size_t)y * rb;
    }
    png_read_image(png, rows);
    png_read_end(png, info);
    png_textp text = NULL;
    int ntext = png_get_text(png, info, &text, NULL);
    for (int i = 0; i < ntext; i++) {
        if (text[i].key == NULL) {
            continue;
        }
        sc = media_frame_meta_set(f, text[i].key, text[i].text != NULL ? text[i].text : "", e);
        if (sc != RS_OK) {
            rc = sc;
            goto out;
        }
    }
out:
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    if (rc != RS_OK) {
        media_frame_destroy(f);
        return rc;
    }
    *out = f;
    return RS_OK;
}

static bool plain_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s >= 0x80) {
            return false;
        }
    }
    return true;
}

rs_err media_png_write(const char *path, const media_frame *f, const media_write_opts *o,
                       rs_error *e)
{
    (void)o;
    static const int ctypes[4] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                  PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    if (f->sample != MEDIA_SAMPLE_U8 && f->sample != MEDIA_SAMPLE_U16) {
        return rs_error_set(e, RS_EINVAL, "%s: png: %s samples cannot be written (u8/u16 only)",
                            path, media_sample_name(f->sample));
    }
    if (f->channels < 1 || f->channels > 4) {
        return rs_error_set(e, RS_EINVAL, "%s: png: %u channels cannot be written (1-4 only)", path,
                            f->channels);
    }
    for (size_t i = 0; i < f->nmeta; i++) {
        size_t kl = strlen(f->meta[i].key);
        if (kl < 1 || kl > 79) {
            return rs_error_set(e, RS_EINVAL, "%s: png: text key '%s' must be 1-79 bytes", path,
                                f->meta[i].key);
        }
    }
    rs_fs_atomic a;
    rs_err orc = rs_fs_atomic_open(path, &a, e);
    if (orc != RS_OK) {
        return orc;
    }
    png_io io = {.name = path, .fd = a.fd};
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep *volatile rows = NULL;
    png_textp volatile text = NULL;
    volatile rs_err rc = RS_OK;
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
    if (png != NULL) {
        info = png_create_info_struct(png);
    }
    rows = malloc(sizeof(png_bytep) * f->height);
    text = calloc(f->nmeta + 1, sizeof *text);
    if (png == NULL || info == NULL || rows == NULL || text == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: png: out of memory", path);
        goto out;
    }
    if (setjmp(png_jmpbuf(png)) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: png: %s", path, io.msg[0] != '\0' ? io.msg : "write");
        goto out;
    }
    png_set_write_fn(png, &io, png_fd_write, png_fd_flush);
    int depth = f->sample == MEDIA_SAMPLE_U16 ? 16 : 8;
    png_set_IHDR(png, info, f->width, f->height, depth, ctypes[f->channels - 1], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (size_t i = 0; i < f->nmeta; i++) {
        text[i].key = f->meta[i].key;
        text[i].text = f->meta[i].value;
        if (plain_ascii(f->meta[i].value)) {
            text[i].compression = PNG_TEXT_COMPRESSION_NONE;
            text[i].text_length = strlen(f->meta[i].value);
        } else {
            text[i].compression = PNG_ITXT_COMPRESSION_NONE;
            text[i].itxt_length = strlen(f->meta[i].value);
        }
    }
    if (f->nmeta > 0) {
        png_set_text(png, info, text, (int)f->nmeta);
    }
    png_write_info(png, info);
    if (depth == 16 && host_little_endian()) {
        png_set_swap(png);
    }
    size_t rb = media_frame_row_bytes(f);
    for (uint32_t y = 0; y < f->height; y++) {
        rows[y] = f->data + (size_t)y * rb;
    }
    png_write_image(png, rows);
    png_write_end(png, info);
out:
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(text);
    if (rc != RS_OK) {
        rs_fs_atomic_abort(&a);
        return rc;
    }
    return rs_fs_atomic_commit(&a, e);
}
