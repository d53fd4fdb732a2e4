/*
 * probe.c: identify a footage file from its first bytes and read its
 * geometry. Image formats with a fixed magic (PNG, OpenEXR, DPX, TIFF) are
 * recognised here; anything else is offered to libavformat's content probe
 * with no file name, so an extension never decides the format. Header bytes
 * are read into a capped buffer and every field is range-checked against the
 * file size before it is used, so truncated or hostile files end in one
 * RS_EFORMAT line naming the file.
 *
 * Result fields (all types): "type" ("video"|"audio"|"image"), "format".
 *   video: "container", "codec", "width", "height", "pix_fmt", "fps" ("24/1"),
 *          "fps_num", "fps_den", "fps_float", "duration" (s), "frames",
 *          "frames_source" ("nb_frames" | "duration*fps"), "audio": [{"codec",
 *          "channels", "sample_rate"}]
 *   png:   "width", "height", "bit_depth", "colour_type"
 *   exr:   "width", "height", "data_window" [xmin,ymin,xmax,ymax],
 *          "channels": [{"name","type"}], "compression", "storage"
 *          ("scanline"|"tiled"|"deep_scanline"|"deep_tiled")
 *   dpx:   "width", "height", "bit_depth", "elements", "byte_order"
 *   tiff:  "width", "height", "bits_per_sample", "samples_per_pixel", "tiled"
 */
#include "probe.h"

#include "magic.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <openexr.h>
#include <tiffio.h>

/* Enough for every fixed header here and for libavformat's content probe. */
#define PROBE_HEAD_CAP (64 * 1024)
#define PROBE_MAX_DIM 1000000u

typedef struct probe_head {
    unsigned char buf[PROBE_HEAD_CAP + AVPROBE_PADDING_SIZE];
    size_t len;    /* bytes read into buf */
    uint64_t size; /* file size */
} probe_head;

static rs_err read_head(const char *path, probe_head *h, rs_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return rs_error_set(e, err == ENOENT ? RS_ENOENT : RS_EIO, "%s: cannot open: %s", path,
                            strerror(err));
    }
    rs_err rc = RS_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: not a regular file", path);
        goto out;
    }
    h->size = (uint64_t)st.st_size;
    h->len = 0;
    while (h->len < PROBE_HEAD_CAP) {
        ssize_t n = read(fd, h->buf + h->len, PROBE_HEAD_CAP - h->len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = rs_error_set(e, RS_EIO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        h->len += (size_t)n;
    }
    memset(h->buf + h->len, 0, AVPROBE_PADDING_SIZE);
out:
    close(fd);
    return rc;
}

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint32_t le32(const unsigned char *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static rs_err oom(const char *path, rs_error *e)
{
    return rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
}

/* ---- PNG: signature, then IHDR must be the first chunk. ---- */

static rs_err probe_png(const char *path, const probe_head *h, cJSON *o, rs_error *e)
{
    if (h->len < 33) {
        return rs_error_set(e, RS_EFORMAT, "%s: png: truncated header (%zu bytes)", path, h->len);
    }
    const unsigned char *c = h->buf + 8;
    if (be32(c) != 13 || memcmp(c + 4, "IHDR", 4) != 0) {
        return rs_error_set(e, RS_EFORMAT, "%s: png: first chunk is not a 13-byte IHDR", path);
    }
    uint32_t w = be32(c + 8);
    uint32_t ht = be32(c + 12);
    unsigned depth = c[16];
    unsigned ctype = c[17];
    if (w == 0 || ht == 0 || w > PROBE_MAX_DIM || ht > PROBE_MAX_DIM) {
        return rs_error_set(e, RS_EFORMAT, "%s: png: bad size %" PRIu32 "x%" PRIu32, path, w, ht);
    }
    bool depth_ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    bool ctype_ok = ctype == 0 || ctype == 2 || ctype == 3 || ctype == 4 || ctype == 6;
    if (!depth_ok || !ctype_ok) {
        return rs_error_set(e, RS_EFORMAT, "%s: png: bad bit depth %u / colour type %u", path,
                            depth, ctype);
    }
    cJSON_AddStringToObject(o, "type", "image");
    cJSON_AddStringToObject(o, "format", "png");
    cJSON_AddNumberToObject(o, "width", w);
    cJSON_AddNumberToObject(o, "height", ht);
    cJSON_AddNumberToObject(o, "bit_depth", depth);
    cJSON_AddNumberToObject(o, "colour_type", ctype);
    return RS_OK;
}

/* A PNG cut short loses its IEND chunk; checking the last 12 bytes is cheap. */
static rs_err png_check_tail(const char *path, uint64_t size, rs_error *e)
{
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    unsigned char tail[12];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return rs_error_set(e, RS_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    ssize_t n = size >= 12 ? pread(fd, tail, sizeof tail, (off_t)(size - 12)) : -1;
    close(fd);
    if (n != (ssize_t)sizeof tail || memcmp(tail, iend, sizeof iend) != 0) {
        return rs_error_set(e, RS_EFORMAT, "%s: png: truncated (no IEND chunk at the end)", path);
    }
    return RS_OK;
}

/* ---- OpenEXR through the C core API. ---- */

static void exr_quiet(exr_const_context_t ctxt, exr_result_t code, const char *msg)
{
    (void)ctxt;
    (void)code;
    (void)msg;
}

static const char *exr_compression_name(exr_compression_t c)
{
    static const char *const names[] = {"none",  "rle", "zips", "zip",  "piz",
                                        "pxr24", "b44", "b44a", "dwaa", "dwab"};
    if ((int)c >= 0 && (size_t)c < sizeof names / sizeof names[0]) {
        return names[c];
    }
    return "unknown";
}

static rs_err probe_exr(const char *path, cJSON *o, rs_error *e)
{
    static const char *const storage_names[] = {"scanline", "tiled", "deep_scanline", "deep_tiled"};
    static const char *const pixel_names[] = {"uint", "half", "float"};
    rs_err rc = RS_OK;
    exr_context_t ctxt = NULL;
    exr_context_initializer_t init = EXR_DEFAULT_CONTEXT_INITIALIZER;
    init.error_handler_fn = exr_quiet;

    exr_result_t r = exr_start_read(&ctxt, path, &init);
    if (r != EXR_ERR_SUCCESS) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: exr: %s", path, exr_get_default_error_message(r));
        goto out;
    }
    exr_attr_box2i_t dw;
    exr_storage_t storage;
    exr_compression_t comp;
    const exr_attr_chlist_t *chl = NULL;
    r = exr_get_data_window(ctxt, 0, &dw);
    if (r == EXR_ERR_SUCCESS) {
        r = exr_get_storage(ctxt, 0, &storage);
    }
    if (r == EXR_ERR_SUCCESS) {
        r = exr_get_compression(ctxt, 0, &comp);
    }
    if (r == EXR_ERR_SUCCESS) {
        r = exr_get_channels(ctxt, 0, &chl);
    }
    if (r != EXR_ERR_SUCCESS || chl == NULL) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: exr: header: %s", path,
                          exr_get_default_error_message(r));
        goto out;
    }
    int64_t w = (int64_t)dw.max.x - dw.min.x + 1;
    int64_t ht = (int64_t)dw.max.y - dw.min.y + 1;
    if (w <= 0 || ht <= 0 || w > PROBE_MAX_DIM || ht > PROBE_MAX_DIM) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: exr: bad data window", path);
        goto out;
    }
    cJSON_AddStringToObject(o, "type", "image");
    cJSON_AddStringToObject(o, "format", "exr");
    cJSON_AddNumberToObject(o, "width", (double)w);
    cJSON_AddNumberToObject(o, "height", (double)ht);
    const int win[4] = {dw.min.x, dw.min.y, dw.max.x, dw.max.y};
    cJSON *dwj = cJSON_CreateIntArray(win, 4);
    cJSON *chans = cJSON_CreateArray();
    if (dwj == NULL || chans == NULL) {
        cJSON_Delete(dwj);
        cJSON_Delete(chans);
        rc = oom(path, e);
        goto out;
    }
    cJSON_AddItemToObject(o, "data_window", dwj);
    cJSON_AddItemToObject(o, "channels", chans);
    for (int i = 0; i < chl->num_channels; i++) {
        const exr_attr_chlist_entry_t *ce = &chl->entries[i];
        cJSON *c = cJSON_CreateObject();
        if (c == NULL) {
            rc = oom(path, e);
            goto out;
        }
        cJSON_AddItemToArray(chans, c);
        char name[256];
        int nl = ce->name.length < 0 ? 0 : ce->name.length;
        snprintf(name, sizeof name, "%.*s", nl, ce->name.str != NULL ? ce->name.str : "");
        cJSON_AddStringToObject(c, "name", name);
        cJSON_AddStringToObject(c, "type",
                                (int)ce->pixel_type >= 0 && ce->pixel_type < 3
                                    ? pixel_names[ce->pixel_type]
                                    : "unknown");
    }
    cJSON_AddStringToObject(o, "compression", exr_compression_name(comp));
    cJSON_AddStringToObject(
        o, "storage",
        (int)storage >= 0 && storage < EXR_STORAGE_LAST_TYPE ? storage_names[storage] : "unknown");
out:
    if (ctxt != NULL) {
        exr_finish(&ctxt);
    }
    return rc;
}

/* ---- DPX (SMPTE 268M): hand-parsed, both byte orders. ---- */

static rs_err probe_dpx(const char *path, const probe_head *h, bool big, cJSON *o, rs_error *e)
{
    /* Generic file header is 768 bytes, image header follows; the first image
     * element descriptor ends at byte 852. */
    if (h->len < 852 || h->size < 852) {
        return rs_error_set(e, RS_EFORMAT, "%s: dpx: truncated header (%" PRIu64 " bytes)", path,
                            h->size);
    }
    uint32_t (*rd32)(const unsigned char *) = big ? be32 : le32;
    const unsigned char *b = h->buf;
    uint32_t data_off = rd32(b + 4);
    uint32_t file_size = rd32(b + 16);
    unsigned elements = big ? ((unsigned)b[770] << 8 | b[771]) : ((unsigned)b[771] << 8 | b[770]);
    uint32_t w = rd32(b + 772);
    uint32_t ht = rd32(b + 776);
    unsigned depth = b[803];
    if (data_off < 768 || data_off > h->size) {
        return rs_error_set(e, RS_EFORMAT,
                            "%s: dpx: image data offset %" PRIu32 " outside the file (%" PRIu64
                            " bytes)",
                            path, data_off, h->size);
    }
    if (file_size != 0 && file_size > h->size) {
        return rs_error_set(e, RS_EFORMAT,
                            "%s: dpx: truncated: header says %" PRIu32 " bytes, file has %" PRIu64,
                            path, file_size, h->size);
    }
    if (w == 0 || ht == 0 || w > PROBE_MAX_DIM || ht > PROBE_MAX_DIM) {
        return rs_error_set(e, RS_EFORMAT, "%s: dpx: bad size %" PRIu32 "x%" PRIu32, path, w, ht);
    }
    if (elements < 1 || elements > 8) {
        return rs_error_set(e, RS_EFORMAT, "%s: dpx: bad image element count %u", path, elements);
    }
    if (depth != 1 && depth != 8 && depth != 10 && depth != 12 && depth != 16 && depth != 32 &&
        depth != 64) {
        return rs_error_set(e, RS_EFORMAT, "%s: dpx: bad bit depth %u", path, depth);
    }
    /* Lower bound on the pixel data (one component per pixel): catches files
     * cut short after a valid header. */
    uint64_t need = (uint64_t)w * ht * depth / 8;
    if (h->size - data_off < need) {
        return rs_error_set(e, RS_EFORMAT,
                            "%s: dpx: truncated: %" PRIu64
                            " bytes of image data, need at least %" PRIu64,
                            path, h->size - data_off, need);
    }
    cJSON_AddStringToObject(o, "type", "image");
    cJSON_AddStringToObject(o, "format", "dpx");
    cJSON_AddNumberToObject(o, "width", w);
    cJSON_AddNumberToObject(o, "height", ht);
    cJSON_AddNumberToObject(o, "bit_depth", depth);
    cJSON_AddNumberToObject(o, "elements", elements);
    cJSON_AddStringToObject(o, "byte_order", big ? "big" : "little");
    return RS_OK;
}

/* ---- TIFF through libtiff, with its messages captured, not printed. ---- */

typedef struct tiff_msgs {
    char first[200];
} tiff_msgs;

static int tiff_on_error(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)module;
    tiff_msgs *m = ud;
    if (m != NULL && m->first[0] == '\0') {
        vsnprintf(m->first, sizeof m->first, fmt, ap);
    }
    return 1;
}

static int tiff_on_warning(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)ud;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

static rs_err probe_tiff(const char *path, cJSON *o, rs_error *e)
{
    tiff_msgs msgs = {{0}};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (opts == NULL) {
        return oom(path, e);
    }
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_on_error, &msgs);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_on_warning, NULL);
    /* Reading the first directory must not allocate huge tag arrays. */
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, 64 * 1024 * 1024);
    TIFF *tif = TIFFOpenExt(path, "r", opts);
    TIFFOpenOptionsFree(opts);
    if (tif == NULL) {
        return rs_error_set(e, RS_EFORMAT, "%s: tiff: %s", path,
                            msgs.first[0] != '\0' ? msgs.first : "cannot read header");
    }
    uint32_t w = 0;
    uint32_t ht = 0;
    uint16_t bits = 1;
    uint16_t spp = 1;
    rs_err rc = RS_OK;
    if (TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) != 1 ||
        TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &ht) != 1 || w == 0 || ht == 0) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: tiff: missing or zero image size", path);
        goto out;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    cJSON_AddStringToObject(o, "type", "image");
    cJSON_AddStringToObject(o, "format", "tiff");
    cJSON_AddNumberToObject(o, "width", w);
    cJSON_AddNumberToObject(o, "height", ht);
    cJSON_AddNumberToObject(o, "bits_per_sample", bits);
    cJSON_AddNumberToObject(o, "samples_per_pixel", spp);
    cJSON_AddBoolToObject(o, "tiled", TIFFIsTiled(tif) != 0);
out:
    TIFFClose(tif);
    return rc;
}

/* ---- Video / audio containers through libavformat. ---- */

static rs_err probe_av(const char *path, probe_head *h, cJSON *o, rs_error *e)
{
    rs_err rc = RS_OK;
    AVFormatContext *fc = NULL;
    char url[4096 + 8];

    av_log_set_level(AV_LOG_QUIET);
    /* No file name: the format is decided by content alone. */
    AVProbeData pd = {.filename = "", .buf = h->buf, .buf_size = (int)h->len};
    int score = 0;
    const AVInputFormat *fmt = av_probe_input_format3(&pd, 1, &score);
    if (fmt == NULL || score < AVPROBE_SCORE_MAX / 4) {
        return rs_error_set(e, RS_EFORMAT, "%s: not a recognised media file", path);
    }
    /* "file:" keeps a ':' in the path from being read as a protocol. */
    snprintf(url, sizeof url, "file:%s", path);
    int r = avformat_open_input(&fc, url, fmt, NULL);
    if (r < 0) {
        fc = NULL;
        rc = rs_error_set(e, RS_EFORMAT, "%s: %s: cannot open: %s", path, fmt->name, av_err2str(r));
        goto out;
    }
    r = avformat_find_stream_info(fc, NULL);
    if (r < 0) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: %s: corrupt or truncated: %s", path, fmt->name,
                          av_err2str(r));
        goto out;
    }
    const AVStream *vs = NULL;
    cJSON *audio = cJSON_CreateArray();
    if (audio == NULL) {
        rc = oom(path, e);
        goto out;
    }
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        const AVStream *st = fc->streams[i];
        const AVCodecParameters *par = st->codecpar;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && vs == NULL &&
            (st->disposition & AV_DISPOSITION_ATTACHED_PIC) == 0) {
            vs = st;
        } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
            cJSON *a = cJSON_CreateObject();
            if (a == NULL) {
                cJSON_Delete(audio);
                rc = oom(path, e);
                goto out;
            }
            cJSON_AddItemToArray(audio, a);
            cJSON_AddStringToObject(a, "codec", avcodec_get_name(par->codec_id));
            cJSON_AddNumberToObject(a, "channels", par->ch_layout.nb_channels);
            cJSON_AddNumberToObject(a, "sample_rate", par->sample_rate);
        }
    }
    if (vs == NULL && cJSON_GetArraySize(audio) == 0) {
        cJSON_Delete(audio);
        rc = rs_error_set(e, RS_EFORMAT, "%s: not a recognised media file", path);
        goto out;
    }
    double duration = 0;
    if (vs != NULL && vs->duration != AV_NOPTS_VALUE && vs->duration > 0) {
        duration = (double)vs->duration * av_q2d(vs->time_base);
    } else if (fc->duration != AV_NOPTS_VALUE && fc->duration > 0) {
        duration = (double)fc->duration / AV_TIME_BASE;
    }
    cJSON_AddStringToObject(o, "type", vs != NULL ? "video" : "audio");
    cJSON_AddStringToObject(o, "format", fc->iformat->name);
    cJSON_AddStringToObject(o, "container",
                            fc->iformat->long_name != NULL ? fc->iformat->long_name
                                                           : fc->iformat->name);
    cJSON_AddNumberToObject(o, "duration", duration);
    if (vs != NULL) {
        const AVCodecParameters *par = vs->codecpar;
        AVRational fps = vs->avg_frame_rate;
        if (fps.num <= 0 || fps.den <= 0) {
            fps = vs->r_frame_rate;
        }
        if (fps.num <= 0 || fps.den <= 0) {
            fps = (AVRational){0, 1};
        }
        char fps_s[48];
        snprintf(fps_s, sizeof fps_s, "%d/%d", fps.num, fps.den);
        int64_t frames = vs->nb_frames;
        const char *src = "nb_frames";
        if (frames <= 0) {
            frames = (int64_t)(duration * av_q2d(fps) + 0.5);
            src = "duration*fps";
        }
        const char *pix = av_get_pix_fmt_name((enum AVPixelFormat)par->format);
        cJSON_AddStringToObject(o, "codec", avcodec_get_name(par->codec_id));
        cJSON_AddNumberToObject(o, "width", par->width);
        cJSON_AddNumberToObject(o, "height", par->height);
        cJSON_AddStringToObject(o, "pix_fmt", pix != NULL ? pix : "unknown");
        cJSON_AddStringToObject(o, "fps", fps_s);
        cJSON_AddNumberToObject(o, "fps_num", fps.num);
        cJSON_AddNumberToObject(o, "fps_den", fps.den);
        cJSON_AddNumberToObject(o, "fps_float", av_q2d(fps));
        cJSON_AddNumberToObject(o, "frames", (double)frames);
        cJSON_AddStringToObject(o, "frames_source", src);
    }
    cJSON_AddItemToObject(o, "audio", audio);
out:
    avformat_close_input(&fc);
    return rc;
}

rs_err media_probe(const char *path, cJSON **out, rs_error *e)
{
    rs_err rc = RS_OK;
    cJSON *o = NULL;
    probe_head *h = malloc(sizeof *h);
    if (h == NULL) {
        return oom(path, e);
    }
    rc = read_head(path, h, e);
    if (rc != RS_OK) {
        goto out;
    }
    o = cJSON_CreateObject();
    if (o == NULL) {
        rc = oom(path, e);
        goto out;
    }
    const unsigned char *b = h->buf;
    media_format fmt = media_format_sniff(b, h->len);
    if (fmt == MEDIA_FORMAT_PNG) {
        rc = probe_png(path, h, o, e);
        if (rc == RS_OK) {
            rc = png_check_tail(path, h->size, e);
        }
    } else if (fmt == MEDIA_FORMAT_EXR) {
        rc = probe_exr(path, o, e);
    } else if (fmt == MEDIA_FORMAT_DPX) {
        rc = probe_dpx(path, h, b[0] == 'S', o, e);
    } else if (fmt == MEDIA_FORMAT_TIFF) {
        rc = probe_tiff(path, o, e);
    } else if (h->len == 0) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: not a recognised media file (empty)", path);
    } else {
        rc = probe_av(path, h, o, e);
    }
out:
    free(h);
    if (rc != RS_OK) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return RS_OK;
}
