/*
 * video.c: FFmpeg decode by frame number and ProRes encode. See video.h.
 */
#include "video.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "fs.h"
#include "media_int.h"

/* Forward skips shorter than this decode through instead of seeking. */
#define VIDEO_SKIP_MAX 48

struct media_video {
    char path[4096];
    AVFormatContext *fc;
    AVCodecContext *cc;
    AVPacket *pkt;
    AVFrame *frm;
    struct SwsContext *sws;
    int si;
    AVRational tb;
    AVRational fps;
    int64_t start;
    int64_t next; /* frame number the decoder returns next; -1 unknown */
    bool eof_sent;
    media_video_info info;
    /* direct-conversion check, cached for one (format, matrix, range) */
    int fast_fmt;
    int fast_cs;
    int fast_range;
    int fast_state; /* 0 not checked, 1 equal to swscale, -1 use swscale */
};

static rs_err av_fail(const char *path, const char *what, int r, rs_error *e)
{
    return rs_error_set(e, RS_EFORMAT, "%s: %s: %s", path, what, av_err2str(r));
}

rs_err media_video_open(const char *path, media_video **out, rs_error *e)
{
    av_log_set_level(AV_LOG_QUIET);
    media_video *v = calloc(1, sizeof *v);
    if (v == NULL) {
        return rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
    }
    rs_err rc = RS_OK;
    snprintf(v->path, sizeof v->path, "%s", path);
    char url[4096 + 8];
    snprintf(url, sizeof url, "file:%s", path);
    int r = avformat_open_input(&v->fc, url, NULL, NULL);
    if (r < 0) {
        v->fc = NULL;
        rc = r == AVERROR(ENOENT) ? rs_error_set(e, RS_ENOENT, "%s: no such file", path)
                                  : av_fail(path, "not a readable video", r, e);
        goto out;
    }
    r = avformat_find_stream_info(v->fc, NULL);
    if (r < 0) {
        rc = av_fail(path, "corrupt or truncated", r, e);
        goto out;
    }
    const AVCodec *codec = NULL;
    v->si = av_find_best_stream(v->fc, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (v->si < 0 || codec == NULL) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: no decodable video stream", path);
        goto out;
    }
    AVStream *st = v->fc->streams[v->si];
    v->cc = avcodec_alloc_context3(codec);
    v->pkt = av_packet_alloc();
    v->frm = av_frame_alloc();
    if (v->cc == NULL || v->pkt == NULL || v->frm == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    r = avcodec_parameters_to_context(v->cc, st->codecpar);
    /* as many threads as cores, as the ffmpeg tool does; output is the
     * same bit for bit, frame threads only add latency */
    v->cc->thread_count = 0;
    if (r >= 0) {
        r = avcodec_open2(v->cc, codec, NULL);
    }
    if (r < 0) {
        rc = av_fail(path, "cannot open decoder", r, e);
        goto out;
    }
    if (v->cc->width <= 0 || v->cc->height <= 0 || v->cc->width > (int)MEDIA_MAX_DIM ||
        v->cc->height > (int)MEDIA_MAX_DIM) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: bad video size %dx%d", path, v->cc->width,
                          v->cc->height);
        goto out;
    }
    v->tb = st->time_base;
    v->fps = st->avg_frame_rate;
    if (v->fps.num <= 0 || v->fps.den <= 0) {
        v->fps = st->r_frame_rate;
    }
    if (v->fps.num <= 0 || v->fps.den <= 0 || v->tb.num <= 0 || v->tb.den <= 0) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: no frame rate or time base", path);
        goto out;
    }
    v->start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    v->next = 0;
    int64_t frames = st->nb_frames;
    if (frames <= 0 && st->duration != AV_NOPTS_VALUE) {
        frames = av_rescale_q(st->duration, v->tb, av_inv_q(v->fps));
    }
    if (frames <= 0 && v->fc->duration != AV_NOPTS_VALUE) {
        frames = av_rescale_q(v->fc->duration, AV_TIME_BASE_Q, av_inv_q(v->fps));
    }
    v->info.width = (uint32_t)v->cc->width;
    v->info.height = (uint32_t)v->cc->height;
    v->info.fps_num = v->fps.num;
    v->info.fps_den = v->fps.den;
    v->info.frames = frames;
    snprintf(v->info.codec, sizeof v->info.codec, "%s", codec->name);
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(v->cc->pix_fmt);
    snprintf(v->info.pix_fmt, sizeof v->info.pix_fmt, "%s", d != NULL ? d->name : "unknown");
    v->info.alpha = d != NULL && (d->flags & AV_PIX_FMT_FLAG_ALPHA) != 0;
out:
    if (rc != RS_OK) {
        media_video_close(v);
        return rc;
    }
    *out = v;
    return RS_OK;
}

const media_video_info *media_video_get_info(const media_video *v)
{
    return &v->info;
}

const char *media_video_metadata(const media_video *v, const char *key)
{
    if (key == NULL) {
        return NULL;
    }
    const AVDictionaryEntry *t = av_dict_get(v->fc->metadata, key, NULL, AV_DICT_MATCH_CASE);
    return t != NULL ? t->value : NULL;
}

void media_video_close(media_video *v)
{
    if (v == NULL) {
        return;
    }
    sws_freeContext(v->sws);
    av_frame_free(&v->frm);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->cc);
    avformat_close_input(&v->fc);
    free(v);
}

static int64_t frame_of_pts(const media_video *v, int64_t pts)
{
    return av_rescale_q_rnd(pts - v->start, v->tb, av_inv_q(v->fps),
                            AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
}

/* Decodes the next frame into v->frm; RS_ENOENT at the end of the stream. */
static rs_err decode_next(media_video *v, rs_error *e)
{
    for (;;) {
        int r = avcodec_receive_frame(v->cc, v->frm);
        if (r == 0) {
            return RS_OK;
        }
        if (r == AVERROR_EOF) {
            return rs_error_set(e, RS_ENOENT, "%s: end of stream", v->path);
        }
        if (r != AVERROR(EAGAIN)) {
            return av_fail(v->path, "decode", r, e);
        }
        if (v->eof_sent) {
            return rs_error_set(e, RS_ENOENT, "%s: end of stream", v->path);
        }
        r = av_read_frame(v->fc, v->pkt);
        if (r == AVERROR_EOF) {
            v->eof_sent = true;
            avcodec_send_packet(v->cc, NULL);
            continue;
        }
        if (r < 0) {
            return av_fail(v->path, "read", r, e);
        }
        if (v->pkt->stream_index == v->si) {
            r = avcodec_send_packet(v->cc, v->pkt);
            if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_INVALIDDATA) {
                av_packet_unref(v->pkt);
                return av_fail(v->path, "decode", r, e);
            }
        }
        av_packet_unref(v->pkt);
    }
}

static rs_err seek_to(media_video *v, int64_t n, rs_error *e)
{
    int64_t ts = v->start + av_rescale_q(n, av_inv_q(v->fps), v->tb);
    int r = av_seek_frame(v->fc, v->si, ts, AVSEEK_FLAG_BACKWARD);
    if (r < 0) {
        r = av_seek_frame(v->fc, v->si, v->start, AVSEEK_FLAG_BACKWARD | AVSEEK_FLAG_ANY);
    }
    if (r < 0) {
        return av_fail(v->path, "seek", r, e);
    }
    avcodec_flush_buffers(v->cc);
    v->eof_sent = false;
    v->next = -1;
    return RS_OK;
}

/* ---- frame conversion ----------------------------------------------------
 * swscale turns 10-bit 4:2:2 / 4:4:4 into RGB u16 through its generic
 * scaler, which costs as much CPU as the ProRes decode itself. yuvrgb.c
 * computes the same integers far faster; since it re-derives library
 * internals, it is used only after it matched swscale bit for bit on a test
 * pattern, once per open and (pixel format, matrix, range); otherwise
 * swscale does the work. */

static bool fast_kind(const AVFrame *fr, bool alpha, media_yuv_kind *kind)
{
    if (fr->format == AV_PIX_FMT_YUV422P10 && (fr->width & 1) == 0 && !alpha) {
        *kind = MEDIA_YUV_422;
    } else if (fr->format == AV_PIX_FMT_YUV444P10 && !alpha) {
        *kind = MEDIA_YUV_444;
    } else if (fr->format == AV_PIX_FMT_YUVA444P10 && alpha) {
        *kind = MEDIA_YUV_444A;
    } else {
        return false;
    }
    return true;
}

static void fast_convert(const AVFrame *fr, media_yuv_kind kind, uint8_t *dst, size_t stride)
{
    media_yuv_coefs k = media_yuv_coefs_make(sws_getCoefficients(fr->colorspace),
                                             fr->color_range == AVCOL_RANGE_JPEG);
    media_yuv10_to_rgb16(&k, (const uint8_t *const *)fr->data, fr->linesize, fr->width, 0,
                         fr->height, kind, dst, stride);
}

/* swscale conversion of fr into dst (packed, stride bytes) with the
 * frame's own matrix and range, as ffmpeg's scale filter does; *sws is
 * the cached context. false when swscale cannot do it. */
static bool sws_convert(struct SwsContext **sws, const AVFrame *fr, enum AVPixelFormat dst_fmt,
                        uint8_t *dst, int stride)
{
    *sws = sws_getCachedContext(*sws, fr->width, fr->height, (enum AVPixelFormat)fr->format,
                                fr->width, fr->height, dst_fmt, SWS_BICUBIC, NULL, NULL, NULL);
    if (*sws == NULL) {
        return false;
    }
    int *inv = NULL;
    int *tab = NULL;
    int src_range = 0;
    int dst_range = 0;
    int bri = 0;
    int con = 0;
    int sat = 0;
    if (sws_getColorspaceDetails(*sws, &inv, &src_range, &tab, &dst_range, &bri, &con, &sat) >= 0) {
        const int *coef = sws_getCoefficients(fr->colorspace);
        sws_setColorspaceDetails(*sws, coef, fr->color_range == AVCOL_RANGE_JPEG, tab, dst_range,
                                 bri, con, sat);
    }
    uint8_t *planes[4] = {dst, NULL, NULL, NULL};
    int strides[4] = {stride, 0, 0, 0};
    sws_scale(*sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, planes, strides);
    return true;
}

/* Whether fast_convert equals swscale for frames like fr: checked once on a
 * pattern where every row walks all 1024 codes of Y, U, V and A at
 * different strides, so every code meets many partners, clipping included. */
static bool fast_usable(media_video *v, const AVFrame *fr, bool alpha, media_yuv_kind *kind)
{
    if (!fast_kind(fr, alpha, kind)) {
        return false;
    }
    if (v->fast_state != 0 && v->fast_fmt == fr->format && v->fast_cs == (int)fr->colorspace &&
        v->fast_range == (int)fr->color_range) {
        return v->fast_state > 0;
    }
    v->fast_fmt = fr->format;
    v->fast_cs = (int)fr->colorspace;
    v->fast_range = (int)fr->color_range;
    v->fast_state = -1;
    enum { TW = 2048, TH = 24 };
    int ch = alpha ? 4 : 3;
    AVFrame *t = av_frame_alloc();
    uint16_t *a = malloc((size_t)TW * TH * (size_t)ch * 2);
    uint16_t *b = malloc((size_t)TW * TH * (size_t)ch * 2);
    struct SwsContext *sws = NULL;
    if (t == NULL || a == NULL || b == NULL) {
        goto out;
    }
    t->format = fr->format;
    t->width = TW;
    t->height = TH;
    t->colorspace = fr->colorspace;
    t->color_range = fr->color_range;
    if (av_frame_get_buffer(t, 0) < 0) {
        goto out;
    }
    for (int y = 0; y < TH; y++) {
        for (int p = 0; p < (alpha ? 4 : 3); p++) {
            uint16_t *row = (uint16_t *)(void *)(t->data[p] + (ptrdiff_t)y * t->linesize[p]);
            int w = p > 0 && p < 3 && fr->format == AV_PIX_FMT_YUV422P10 ? TW / 2 : TW;
            for (int x = 0; x < w; x++) {
                row[x] = (uint16_t)((x * (2 * p + 1) + y * (97 + 31 * p) + p * 211) & 1023);
            }
        }
    }
    if (!sws_convert(&sws, t, alpha ? AV_PIX_FMT_RGBA64 : AV_PIX_FMT_RGB48, (uint8_t *)a,
                     TW * ch * 2)) {
        goto out;
    }
    fast_convert(t, *kind, (uint8_t *)b, (size_t)TW * (size_t)ch * 2);
    if (memcmp(a, b, (size_t)TW * TH * (size_t)ch * 2) == 0) {
        v->fast_state = 1;
    }
out:
    sws_freeContext(sws);
    free(a);
    free(b);
    av_frame_free(&t);
    return v->fast_state > 0;
}

static rs_err convert(media_video *v, media_sample s, media_frame **out, rs_error *e)
{
    AVFrame *fr = v->frm;
    bool alpha = v->info.alpha;
    enum AVPixelFormat dst = s == MEDIA_SAMPLE_U16 ? (alpha ? AV_PIX_FMT_RGBA64 : AV_PIX_FMT_RGB48)
                                                   : (alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24);
    if (fr->width != (int)v->info.width || fr->height != (int)v->info.height) {
        return rs_error_set(e, RS_EFORMAT, "%s: frame size changed mid-stream (%dx%d)", v->path,
                            fr->width, fr->height);
    }
    media_frame *f = NULL;
    /* every sample is written below (or the frame is dropped) */
    rs_err rc = media_frame_create_uninit(v->info.width, v->info.height, alpha ? 4 : 3, s, &f, e);
    if (rc != RS_OK) {
        return rc;
    }
    size_t stride = media_frame_row_bytes(f);
    media_yuv_kind kind = MEDIA_YUV_422;
    if (s == MEDIA_SAMPLE_U16 && fast_usable(v, fr, alpha, &kind)) {
        fast_convert(fr, kind, f->data, stride);
    } else if (!sws_convert(&v->sws, fr, dst, f->data, (int)stride)) {
        media_frame_destroy(f);
        return rs_error_set(e, RS_EFORMAT, "%s: cannot convert %s to RGB", v->path,
                            av_get_pix_fmt_name((enum AVPixelFormat)fr->format));
    }
    switch (fr->color_trc) {
    case AVCOL_TRC_BT709:
    case AVCOL_TRC_BT2020_10:
    case AVCOL_TRC_BT2020_12:
        f->colour = MEDIA_COLOUR_REC709;
        break;
    case AVCOL_TRC_SMPTE2084:
        f->colour = MEDIA_COLOUR_PQ;
        break;
    case AVCOL_TRC_IEC61966_2_1:
        f->colour = MEDIA_COLOUR_SRGB;
        break;
    case AVCOL_TRC_LINEAR:
        f->colour = MEDIA_COLOUR_LINEAR;
        break;
    default:
        f->colour = MEDIA_COLOUR_REC709; /* video with no tag is Rec.709 in practice */
        break;
    }
    f->bit_depth = s == MEDIA_SAMPLE_U16 ? 16 : 8;
    *out = f;
    return RS_OK;
}

rs_err media_video_read(media_video *v, int64_t n, media_sample s, media_frame **out, rs_error *e)
{
    if (s != MEDIA_SAMPLE_U8 && s != MEDIA_SAMPLE_U16) {
        return rs_error_set(e, RS_EINVAL, "%s: video frames come as u8 or u16, not %s", v->path,
                            media_sample_name(s));
    }
    if (n < 0) {
        return rs_error_set(e, RS_EINVAL, "%s: frame %" PRId64 " is negative", v->path, n);
    }
    rs_err rc;
    if (v->next < 0 || n < v->next || n - v->next > VIDEO_SKIP_MAX) {
        rc = seek_to(v, n, e);
        if (rc != RS_OK) {
            return rc;
        }
    }
    for (;;) {
        rs_error tmp;
        rc = decode_next(v, &tmp);
        if (rc == RS_ENOENT) {
            v->next = -1;
            return rs_error_set(e, RS_ENOENT,
                                "%s: frame %" PRId64 " past the end (%" PRId64 " frames)", v->path,
                                n, v->info.frames);
        }
        if (rc != RS_OK) {
            if (e != NULL) {
                *e = tmp;
            }
            v->next = -1;
            return rc;
        }
        int64_t pts = v->frm->best_effort_timestamp;
        int64_t got = pts != AV_NOPTS_VALUE ? frame_of_pts(v, pts) : (v->next >= 0 ? v->next : -1);
        if (got < 0 && v->next < 0) {
            av_frame_unref(v->frm);
            return rs_error_set(e, RS_EFORMAT, "%s: frame %" PRId64 ": no timestamps to seek by",
                                v->path, n);
        }
        v->next = got + 1;
        if (got < n) {
            av_frame_unref(v->frm);
            continue;
        }
        if (got > n) {
            av_frame_unref(v->frm);
            v->next = -1;
            return rs_error_set(e, RS_EFORMAT,
                                "%s: frame %" PRId64 " missing (stream jumps to %" PRId64 ")",
                                v->path, n, got);
        }
        rc = convert(v, s, out, e);
        av_frame_unref(v->frm);
        return rc;
    }
}

/* ---- ProRes writer ---------------------------------------------------- */

struct media_video_writer {
    rs_fs_atomic a;
    AVFormatContext *oc;
    AVCodecContext *cc;
    AVStream *st;
    AVFrame *frm;
    AVPacket *pkt;
    struct SwsContext *sws;
    int64_t n;
    bool header;
};

static rs_err drain(media_video_writer *w, rs_error *e)
{
    for (;;) {
        int r = avcodec_receive_packet(w->cc, w->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) {
            return RS_OK;
        }
        if (r < 0) {
            return rs_error_set(e, RS_EIO, "%s: encode: %s", w->a.path, av_err2str(r));
        }
        av_packet_rescale_ts(w->pkt, w->cc->time_base, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        r = av_interleaved_write_frame(w->oc, w->pkt);
        if (r < 0) {
            return rs_error_set(e, RS_EIO, "%s: write: %s", w->a.path, av_err2str(r));
        }
    }
}

void media_video_writer_abort(media_video_writer *w)
{
    if (w == NULL) {
        return;
    }
    if (w->oc != NULL) {
        avio_closep(&w->oc->pb);
        avformat_free_context(w->oc);
    }
    sws_freeContext(w->sws);
    av_frame_free(&w->frm);
    av_packet_free(&w->pkt);
    avcodec_free_context(&w->cc);
    rs_fs_atomic_abort(&w->a);
    free(w);
}

rs_err media_video_writer_open(const char *path, uint32_t width, uint32_t height, int fps_num,
                               int fps_den, media_prores_profile profile, media_video_writer **out,
                               rs_error *e)
{
    av_log_set_level(AV_LOG_QUIET);
    if (width == 0 || height == 0 || width > 16384 || height > 16384 || (width & 1) != 0) {
        return rs_error_set(e, RS_EINVAL, "%s: prores: bad size %ux%u (even width up to 16384)",
                            path, width, height);
    }
    if (fps_num <= 0 || fps_den <= 0) {
        return rs_error_set(e, RS_EINVAL, "%s: prores: bad frame rate %d/%d", path, fps_num,
                            fps_den);
    }
    if (profile != MEDIA_PRORES_422_HQ && profile != MEDIA_PRORES_4444) {
        return rs_error_set(e, RS_EINVAL, "%s: prores: unknown profile %d", path, (int)profile);
    }
    media_video_writer *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
    }
    w->a.fd = -1;
    rs_err rc = rs_fs_atomic_open(path, &w->a, e);
    if (rc != RS_OK) {
        free(w);
        return rc;
    }
    const AVCodec *codec = avcodec_find_encoder_by_name("prores_ks");
    if (codec == NULL) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: this FFmpeg has no prores_ks encoder", path);
        goto out;
    }
    int r = avformat_alloc_output_context2(&w->oc, NULL, "mov", w->a.tmp);
    if (r < 0 || w->oc == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: cannot set up the mov muxer", path);
        goto out;
    }
    w->st = avformat_new_stream(w->oc, NULL);
    w->cc = avcodec_alloc_context3(codec);
    w->frm = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (w->st == NULL || w->cc == NULL || w->frm == NULL || w->pkt == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    w->cc->width = (int)width;
    w->cc->height = (int)height;
    w->cc->time_base = (AVRational){fps_den, fps_num};
    w->cc->framerate = (AVRational){fps_num, fps_den};
    w->cc->pix_fmt = profile == MEDIA_PRORES_4444 ? AV_PIX_FMT_YUVA444P10 : AV_PIX_FMT_YUV422P10;
    w->cc->profile = (int)profile;
    w->cc->color_primaries = AVCOL_PRI_BT709;
    w->cc->color_trc = AVCOL_TRC_BT709;
    w->cc->colorspace = AVCOL_SPC_BT709;
    w->cc->color_range = AVCOL_RANGE_MPEG;
    if ((w->oc->oformat->flags & AVFMT_GLOBALHEADER) != 0) {
        w->cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    r = avcodec_open2(w->cc, codec, NULL);
    if (r >= 0) {
        r = avcodec_parameters_from_context(w->st->codecpar, w->cc);
    }
    if (r < 0) {
        rc = rs_error_set(e, RS_EIO, "%s: prores: cannot open encoder: %s", path, av_err2str(r));
        goto out;
    }
    w->st->time_base = w->cc->time_base;
    w->st->avg_frame_rate = w->cc->framerate;
    char url[4096 + 8];
    snprintf(url, sizeof url, "file:%s", w->a.tmp);
    r = avio_open(&w->oc->pb, url, AVIO_FLAG_WRITE);
    if (r < 0) {
        rc = rs_error_set(e, RS_EIO, "%s: cannot open for writing: %s", path, av_err2str(r));
        goto out;
    }
    w->frm->format = w->cc->pix_fmt;
    w->frm->width = w->cc->width;
    w->frm->height = w->cc->height;
    r = av_frame_get_buffer(w->frm, 0);
    if (r < 0) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
        goto out;
    }
out:
    if (rc != RS_OK) {
        media_video_writer_abort(w);
        return rc;
    }
    *out = w;
    return RS_OK;
}

/* Longest metadata key and value the writer takes; QuickTime keeps more,
 * but deliverable labels are short and the cap keeps the moov box small. */
#define VIDEO_META_KEY_MAX 255
#define VIDEO_META_VALUE_MAX 65535

rs_err media_video_writer_set_metadata(media_video_writer *w, const char *key, const char *value,
                                       rs_error *e)
{
    if (w->header) {
        return rs_error_set(e, RS_EINVAL,
                            "%s: metadata '%s' set after the first frame (the header is written)",
                            w->a.path, key != NULL ? key : "");
    }
    if (key == NULL || value == NULL) {
        return rs_error_set(e, RS_EINVAL, "%s: metadata key and value must not be NULL", w->a.path);
    }
    size_t kl = strlen(key);
    if (kl == 0 || kl > VIDEO_META_KEY_MAX) {
        return rs_error_set(e, RS_EINVAL, "%s: metadata key '%.40s' empty or over %d bytes",
                            w->a.path, key, VIDEO_META_KEY_MAX);
    }
    for (size_t i = 0; i < kl; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c <= ' ' || c == 0x7f) {
            return rs_error_set(e, RS_EINVAL,
                                "%s: metadata key '%.40s' has a space or control byte", w->a.path,
                                key);
        }
    }
    if (strlen(value) > VIDEO_META_VALUE_MAX) {
        return rs_error_set(e, RS_EINVAL, "%s: metadata '%s' value over %d bytes", w->a.path, key,
                            VIDEO_META_VALUE_MAX);
    }
    /* replaces an earlier value of the same key (exact case) */
    int r = av_dict_set(&w->oc->metadata, key, value, AV_DICT_MATCH_CASE);
    if (r < 0) {
        return rs_error_set(e, RS_ENOMEM, "%s: metadata '%s': %s", w->a.path, key, av_err2str(r));
    }
    return RS_OK;
}

/* Writes the mov header once, at the first frame (or at finish for an empty
 * clip), so metadata set after open still lands in the file. use_metadata_tags
 * stores every key as an mdta item; without it the muxer keeps only the
 * fixed QuickTime names and drops custom keys such as "rushes:altered". */
static rs_err writer_start(media_video_writer *w, rs_error *e)
{
    if (w->header) {
        return RS_OK;
    }
    AVDictionary *opts = NULL;
    int r = av_dict_set(&opts, "movflags", "use_metadata_tags", 0);
    if (r >= 0) {
        r = avformat_write_header(w->oc, &opts);
    }
    av_dict_free(&opts);
    if (r < 0) {
        return rs_error_set(e, RS_EIO, "%s: mov header: %s", w->a.path, av_err2str(r));
    }
    w->header = true;
    return RS_OK;
}

rs_err media_video_writer_add(media_video_writer *w, const media_frame *f, rs_error *e)
{
    if (f->width != (uint32_t)w->cc->width || f->height != (uint32_t)w->cc->height ||
        (f->channels != 3 && f->channels != 4) ||
        (f->sample != MEDIA_SAMPLE_U8 && f->sample != MEDIA_SAMPLE_U16)) {
        return rs_error_set(e, RS_EINVAL,
                            "%s: frame %" PRId64 ": need %dx%d RGB/RGBA u8/u16, got %ux%ux%u %s",
                            w->a.path, w->n, w->cc->width, w->cc->height, f->width, f->height,
                            f->channels, media_sample_name(f->sample));
    }
    enum AVPixelFormat src = f->sample == MEDIA_SAMPLE_U16
                                 ? (f->channels == 4 ? AV_PIX_FMT_RGBA64 : AV_PIX_FMT_RGB48)
                                 : (f->channels == 4 ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24);
    w->sws = sws_getCachedContext(w->sws, w->cc->width, w->cc->height, src, w->cc->width,
                                  w->cc->height, w->cc->pix_fmt, SWS_BICUBIC, NULL, NULL, NULL);
    if (w->sws == NULL) {
        return rs_error_set(e, RS_EINVAL, "%s: cannot convert to %s", w->a.path,
                            av_get_pix_fmt_name(w->cc->pix_fmt));
    }
    int *inv = NULL;
    int *tab = NULL;
    int sr = 0;
    int dr = 0;
    int bri = 0;
    int con = 0;
    int sat = 0;
    if (sws_getColorspaceDetails(w->sws, &inv, &sr, &tab, &dr, &bri, &con, &sat) >= 0) {
        sws_setColorspaceDetails(w->sws, inv, sr, sws_getCoefficients(SWS_CS_ITU709), 0, bri, con,
                                 sat);
    }
    rs_err rc = writer_start(w, e);
    if (rc != RS_OK) {
        return rc;
    }
    int r = av_frame_make_writable(w->frm);
    if (r < 0) {
        return rs_error_set(e, RS_ENOMEM, "%s: out of memory", w->a.path);
    }
    const uint8_t *planes[4] = {f->data, NULL, NULL, NULL};
    int strides[4] = {(int)media_frame_row_bytes(f), 0, 0, 0};
    sws_scale(w->sws, planes, strides, 0, (int)f->height, w->frm->data, w->frm->linesize);
    w->frm->pts = w->n++;
    w->frm->color_primaries = AVCOL_PRI_BT709;
    w->frm->color_trc = AVCOL_TRC_BT709;
    w->frm->colorspace = AVCOL_SPC_BT709;
    w->frm->color_range = AVCOL_RANGE_MPEG;
    r = avcodec_send_frame(w->cc, w->frm);
    if (r < 0) {
        return rs_error_set(e, RS_EIO, "%s: encode: %s", w->a.path, av_err2str(r));
    }
    return drain(w, e);
}

rs_err media_video_writer_finish(media_video_writer *w, rs_error *e)
{
    int r = 0;
    rs_err rc = writer_start(w, e);
    if (rc != RS_OK) {
        goto out;
    }
    r = avcodec_send_frame(w->cc, NULL);
    if (r < 0 && r != AVERROR_EOF) {
        rc = rs_error_set(e, RS_EIO, "%s: encode flush: %s", w->a.path, av_err2str(r));
        goto out;
    }
    rc = drain(w, e);
    if (rc != RS_OK) {
        goto out;
    }
    r = av_write_trailer(w->oc);
    if (r < 0) {
        rc = rs_error_set(e, RS_EIO, "%s: mov trailer: %s", w->a.path, av_err2str(r));
        goto out;
    }
    r = avio_closep(&w->oc->pb);
    if (r < 0) {
        rc = rs_error_set(e, RS_EIO, "%s: close: %s", w->a.path, av_err2str(r));
        goto out;
    }
    rc = rs_fs_atomic_commit(&w->a, e);
    w->a.fd = -1;
    w->a.tmp[0] = '\0';
out:
    if (rc != RS_OK) {
        media_video_writer_abort(w);
        return rc;
    }
    avformat_free_context(w->oc);
    sws_freeContext(w->sws);
    av_frame_free(&w->frm);
    av_packet_free(&w->pkt);
    avcodec_free_context(&w->cc);
    free(w);
    return RS_OK;
}
