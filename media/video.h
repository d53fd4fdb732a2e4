/*
 * video.h: decode frames from camera/proxy files (ProRes, DNxHR, H.264 and
 * anything else FFmpeg decodes) by frame number, and encode ProRes
 * deliverables.
 *
 * Frame numbers count from 0 in presentation order. media_video_read seeks
 * by timestamp to the key frame before the wanted one and decodes forward,
 * so any frame number gives the same pixels whatever was read before
 * (sequential reads skip the seek). Frames come out as RGB(A) u8 or u16,
 * converted with the same swscale settings as the ffmpeg command-line tool
 * (bicubic, the stream's own YUV matrix and range), so they equal
 * `ffmpeg -pix_fmt rgb48le` of the same frames.
 *
 * The writer makes a QuickTime .mov with ProRes 422 HQ or 4444 (prores_ks)
 * from RGB(A) u8/u16 frames, Rec.709 tagged, written atomically: nothing
 * appears under the final name until media_video_writer_finish succeeds.
 * The writer also carries container metadata (QuickTime mdta items), read
 * back with media_video_metadata. Handles are single-threaded; the caller
 * owns and closes them.
 */
#ifndef RS_MEDIA_VIDEO_H
#define RS_MEDIA_VIDEO_H

#include <stdint.h>

#include "frame.h"

typedef struct media_video media_video;

typedef struct media_video_info {
    uint32_t width;
    uint32_t height;
    int fps_num;
    int fps_den;
    int64_t frames; /* from the container's count, else duration x rate */
    char codec[32];
    char pix_fmt[32];
    bool alpha;
} media_video_info;

rs_err media_video_open(const char *path, media_video **out, rs_error *e);
const media_video_info *media_video_get_info(const media_video *v);
/* The container's metadata value for key (exact case; QuickTime mdta items
 * and the fixed names such as "title" or "encoder"), or NULL. The string
 * lives as long as v. */
const char *media_video_metadata(const media_video *v, const char *key);
/* Frame n (0-based) as RGB or RGBA of sample type u8 or u16. RS_ENOENT
 * "path: frame n past the end (m frames)" beyond the last frame. */
rs_err media_video_read(media_video *v, int64_t n, media_sample s, media_frame **out, rs_error *e);
void media_video_close(media_video *v);

typedef enum media_prores_profile {
    MEDIA_PRORES_422_HQ = 3,
    MEDIA_PRORES_4444 = 4,
} media_prores_profile;

typedef struct media_video_writer media_video_writer;

rs_err media_video_writer_open(const char *path, uint32_t width, uint32_t height, int fps_num,
                               int fps_den, media_prores_profile profile, media_video_writer **out,
                               rs_error *e);
/* Sets container metadata key = value (both copied; a repeated key replaces
 * the earlier value). Only before the first media_video_writer_add: the mov
 * header is written then, and later calls give RS_EINVAL. Every key is kept
 * as a QuickTime mdta item (movflags use_metadata_tags), so custom keys such
 * as "rushes:altered" survive and show in `ffprobe -show_format`. Keys are
 * 1-255 bytes without spaces or control bytes; values up to 65535 bytes. */
rs_err media_video_writer_set_metadata(media_video_writer *w, const char *key, const char *value,
                                       rs_error *e);
/* Appends one RGB/RGBA u8/u16 frame of the writer's size. */
rs_err media_video_writer_add(media_video_writer *w, const media_frame *f, rs_error *e);
/* Flushes, writes the index, fsyncs and renames into place; frees w. */
rs_err media_video_writer_finish(media_video_writer *w, rs_error *e);
/* Drops everything written so far; frees w. Accepts NULL. */
void media_video_writer_abort(media_video_writer *w);

#endif
