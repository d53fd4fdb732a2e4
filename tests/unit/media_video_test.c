/*
 * media_video_test.c: frames decoded by media_video equal the ffmpeg
 * command-line tool's own decode (rgb48le / rgb24 raw) pixel for pixel, for
 * ProRes 422 HQ and 4444 and DNxHR made by `ffmpeg`, and the bundled H.264
 * samples; frame-accurate seeks in any order; reading past the end; our
 * ProRes writer's output decodes back close to its input and says ProRes.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "video.h"

static char dir[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_media_video.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(media_video, .init = setup, .fini = teardown, .timeout = 120);

static void sh(const char *fmt, ...)
{
    char cmd[PATH_MAX * 3];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "%s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

/* Decodes frames[] of clip (in the given order) and compares each with the
 * matching frame of ffmpeg's raw decode of the whole clip. */
static void compare_with_ffmpeg(const char *clip, media_sample s, const int64_t *frames,
                                size_t nframes, int64_t total)
{
    media_video *v = NULL;
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(media_video_open(clip, &v, &e), RS_OK, "%s", e.msg);
    const media_video_info *in = media_video_get_info(v);
    cr_assert_eq(in->frames, total, "%s: %lld frames", clip, (long long)in->frames);
    const char *pix = s == MEDIA_SAMPLE_U16 ? (in->alpha ? "rgba64le" : "rgb48le")
                                            : (in->alpha ? "rgba" : "rgb24");
    char raw[PATH_MAX];
    snprintf(raw, sizeof raw, "%s/ref.raw", dir);
    sh("ffmpeg -nostdin -loglevel error -y -i '%s' -f rawvideo -pix_fmt %s '%s'", clip, pix, raw);
    size_t n = 0;
    uint8_t *ref = slurp(raw, &n);
    size_t fb =
        (size_t)in->width * in->height * (in->alpha ? 4 : 3) * (s == MEDIA_SAMPLE_U16 ? 2 : 1);
    cr_assert_eq(n, fb * (size_t)total, "ffmpeg gave %zu bytes", n);
    for (size_t i = 0; i < nframes; i++) {
        media_frame *f = NULL;
        rs_err rc = media_video_read(v, frames[i], s, &f, &e);
        cr_assert_eq(rc, RS_OK, "frame %lld: %s", (long long)frames[i], e.msg);
        cr_assert_eq(media_frame_bytes(f), fb);
        const uint8_t *want = ref + fb * (size_t)frames[i];
        size_t bad = 0;
        for (size_t k = 0; k < fb; k++) {
            bad += f->data[k] != want[k];
        }
        cr_assert_eq(bad, 0, "%s frame %lld: %zu bytes differ from ffmpeg", clip,
                     (long long)frames[i], bad);
        media_frame_destroy(f);
    }
    media_frame *f = NULL;
    cr_assert_eq(media_video_read(v, total, s, &f, &e), RS_ENOENT, "past the end");
    cr_assert_not_null(strstr(e.msg, "past the end"), "%s", e.msg);
    free(ref);
    media_video_close(v);
}

Test(media_video, prores_422hq_from_ffmpeg_equals_ffmpeg_decode)
{
    sh("cd '%s' && ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=320x180:rate=24 "
       "-frames:v 24 -c:v prores_ks -profile:v 3 -pix_fmt yuv422p10le hq.mov",
       dir);
    char clip[PATH_MAX];
    snprintf(clip, sizeof clip, "%s/hq.mov", dir);
    const int64_t order[] = {0, 1, 2, 17, 5, 23, 6, 7, 0, 12};
    compare_with_ffmpeg(clip, MEDIA_SAMPLE_U16, order, sizeof order / sizeof order[0], 24);
}

Test(media_video, prores_4444_alpha_from_ffmpeg_equals_ffmpeg_decode)
{
    sh("cd '%s' && ffmpeg -nostdin -loglevel error -y -f lavfi -i "
       "testsrc2=size=160x90:rate=25,format=yuva444p10le -frames:v 10 -c:v prores_ks "
       "-profile:v 4 -pix_fmt yuva444p10le p4.mov",
       dir);
    char clip[PATH_MAX];
    snprintf(clip, sizeof clip, "%s/p4.mov", dir);
    const int64_t order[] = {9, 0, 4, 5};
    compare_with_ffmpeg(clip, MEDIA_SAMPLE_U16, order, 4, 10);
}

Test(media_video, dnxhr_from_ffmpeg_equals_ffmpeg_decode)
{
    sh("cd '%s' && ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=256x144:rate=24 "
       "-frames:v 8 -c:v dnxhd -profile:v dnxhr_hq -pix_fmt yuv422p dn.mov",
       dir);
    char clip[PATH_MAX];
    snprintf(clip, sizeof clip, "%s/dn.mov", dir);
    const int64_t order[] = {3, 0, 7, 1};
    compare_with_ffmpeg(clip, MEDIA_SAMPLE_U8, order, 4, 8);
}

Test(media_video, h264_samples_seek_frame_accurately)
{
    char clip[PATH_MAX];
    snprintf(clip, sizeof clip, "%s/samples/clip_02_caminandes.mp4", RS_SOURCE_DIR);
    const int64_t order[] = {0, 1, 2, 150, 100, 239, 48, 49, 120, 3};
    compare_with_ffmpeg(clip, MEDIA_SAMPLE_U8, order, sizeof order / sizeof order[0], 240);
}

Test(media_video, prores_writer_round_trip)
{
    char clip[PATH_MAX];
    snprintf(clip, sizeof clip, "%s/out.mov", dir);
    for (int p = 0; p < 2; p++) {
        media_prores_profile prof = p == 0 ? MEDIA_PRORES_422_HQ : MEDIA_PRORES_4444;
        uint32_t ch = p == 0 ? 3 : 4;
        media_video_writer *w = NULL;
        rs_error e;
        unlink(clip);
        cr_assert_eq(media_video_writer_open(clip, 128, 72, 24, 1, prof, &w, &e), RS_OK, "%s",
                     e.msg);
        media_frame *src[6];
        for (int i = 0; i < 6; i++) {
            cr_assert_eq(media_frame_create(128, 72, ch, MEDIA_SAMPLE_U16, &src[i], &e), RS_OK);
            uint16_t *d = (uint16_t *)(void *)src[i]->data;
            for (uint32_t y = 0; y < 72; y++) {
                for (uint32_t x = 0; x < 128; x++) {
                    uint16_t *px = d + ((size_t)y * 128 + x) * ch;
                    px[0] = (uint16_t)(x * 400 + i * 1000);
                    px[1] = (uint16_t)(y * 700);
                    px[2] = (uint16_t)(30000 + i * 3000);
                    if (ch == 4) {
                        px[3] = (uint16_t)(x * 500);
                    }
                }
            }
            cr_assert_eq(media_video_writer_add(w, src[i], &e), RS_OK, "%s", e.msg);
            struct stat st;
            cr_assert_neq(stat(clip, &st), 0, "nothing under the final name while writing");
        }
        cr_assert_eq(media_video_writer_finish(w, &e), RS_OK, "%s", e.msg);
        media_video *v = NULL;
        cr_assert_eq(media_video_open(clip, &v, &e), RS_OK, "%s", e.msg);
        cr_assert_str_eq(media_video_get_info(v)->codec, "prores");
        cr_assert_eq(media_video_get_info(v)->frames, 6);
        cr_assert_eq(media_video_get_info(v)->alpha, p == 1);
        for (int i = 5; i >= 0; i--) {
            media_frame *f = NULL;
            cr_assert_eq(media_video_read(v, i, MEDIA_SAMPLE_U16, &f, &e), RS_OK, "%s", e.msg);
            const uint16_t *a = (const uint16_t *)(const void *)src[i]->data;
            const uint16_t *b = (const uint16_t *)(const void *)f->data;
            double err = 0;
            size_t ns = (size_t)128 * 72 * ch;
            for (size_t k = 0; k < ns; k++) {
                err += abs((int)a[k] - (int)b[k]);
            }
            err /= (double)ns;
            cr_assert_lt(err, 400.0, "profile %d frame %d: mean error %.1f of 65535", p, i, err);
            media_frame_destroy(f);
        }
        media_video_close(v);
        for (int i = 0; i < 6; i++) {
            media_frame_destroy(src[i]);
        }
    }
    sh("ffprobe -v error -select_streams v -show_entries stream=profile -of csv=p=0 '%s' | "
       "grep -q 4444",
       clip);
}

/* Container metadata written by our ProRes writer comes back through our
 * reader and through ffprobe's format tags, custom "rushes:" keys included;
 * setting it after the first frame is refused. */
Test(media_video, prores_writer_metadata_round_trip)
{
    char clip[PATH_MAX];
    snprintf(clip, sizeof clip, "%s/meta.mov", dir);
    media_video_writer *w = NULL;
    rs_error e;
    cr_assert_eq(media_video_writer_open(clip, 64, 36, 24, 1, MEDIA_PRORES_422_HQ, &w, &e), RS_OK,
                 "%s", e.msg);
    cr_assert_eq(media_video_writer_set_metadata(w, "rushes:altered", "first", &e), RS_OK, "%s",
                 e.msg);
    cr_assert_eq(media_video_writer_set_metadata(w, "rushes:altered", "true", &e), RS_OK, "%s",
                 e.msg);
    cr_assert_eq(media_video_writer_set_metadata(w, "rushes:model", "removal v3 sha=ab12", &e),
                 RS_OK, "%s", e.msg);
    cr_assert_eq(media_video_writer_set_metadata(w, "title", "shot 010", &e), RS_OK, "%s", e.msg);
    cr_assert_eq(media_video_writer_set_metadata(w, "", "x", &e), RS_EINVAL);
    cr_assert_eq(media_video_writer_set_metadata(w, "bad key", "x", &e), RS_EINVAL);
    media_frame *f = NULL;
    cr_assert_eq(media_frame_create(64, 36, 3, MEDIA_SAMPLE_U8, &f, &e), RS_OK);
    memset(f->data, 90, media_frame_bytes(f));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(media_video_writer_add(w, f, &e), RS_OK, "%s", e.msg);
    }
    cr_assert_eq(media_video_writer_set_metadata(w, "late", "x", &e), RS_EINVAL);
    cr_assert_not_null(strstr(e.msg, "first frame"), "%s", e.msg);
    cr_assert_eq(media_video_writer_finish(w, &e), RS_OK, "%s", e.msg);
    media_frame_destroy(f);

    media_video *v = NULL;
    cr_assert_eq(media_video_open(clip, &v, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(media_video_get_info(v)->frames, 3);
    cr_assert_str_eq(media_video_metadata(v, "rushes:altered"), "true");
    cr_assert_str_eq(media_video_metadata(v, "rushes:model"), "removal v3 sha=ab12");
    cr_assert_str_eq(media_video_metadata(v, "title"), "shot 010");
    cr_assert_null(media_video_metadata(v, "late"));
    cr_assert_null(media_video_metadata(v, "RUSHES:ALTERED"), "keys match by exact case");
    media_video_close(v);

    char json[PATH_MAX];
    snprintf(json, sizeof json, "%s/tags.json", dir);
    sh("ffprobe -v error -show_entries format_tags -of json '%s' > '%s'", clip, json);
    size_t n = 0;
    char *t = (char *)slurp(json, &n);
    t[n] = '\0';
    cr_assert_not_null(strstr(t, "\"rushes:altered\": \"true\""), "%s", t);
    cr_assert_not_null(strstr(t, "\"rushes:model\": \"removal v3 sha=ab12\""), "%s", t);
    cr_assert_not_null(strstr(t, "\"title\": \"shot 010\""), "%s", t);
    free(t);
}

Test(media_video, missing_and_wrong_files)
{
    media_video *v = NULL;
    rs_error e;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/none.mov", dir);
    cr_assert_eq(media_video_open(p, &v, &e), RS_ENOENT, "%s", e.msg);
    snprintf(p, sizeof p, "%s/text.mov", dir);
    FILE *fp = fopen(p, "wb");
    fputs("definitely not a quicktime file\n", fp);
    fclose(fp);
    cr_assert_eq(media_video_open(p, &v, &e), RS_EFORMAT, "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, p));
}

Test(media_video, bundled_samples_and_truncated_clip)
{
    static const char *const clips[] = {"clip_01_tears_of_steel.mp4", "clip_02_caminandes.mp4",
                                        "clip_03_sintel.mp4"};
    rs_error e;
    for (int i = 0; i < 3; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/samples/%s", RS_SOURCE_DIR, clips[i]);
        media_video *v = NULL;
        cr_assert_eq(media_video_open(p, &v, &e), RS_OK, "%s", e.msg);
        const media_video_info *in = media_video_get_info(v);
        cr_assert_eq(in->width, 640);
        cr_assert_eq(in->height, 360);
        cr_assert_eq(in->fps_num, 24);
        cr_assert_eq(in->fps_den, 1);
        cr_assert_eq(in->frames, 240);
        cr_assert_str_eq(in->codec, "h264");
        media_frame *f = NULL;
        cr_assert_eq(media_video_read(v, 239, MEDIA_SAMPLE_U8, &f, &e), RS_OK, "%s", e.msg);
        cr_assert_eq(f->colour, MEDIA_COLOUR_REC709);
        media_frame_destroy(f);
        media_video_close(v);
    }
    /* a ProRes .mov cut in half loses its index (moov at the end) */
    sh("cd '%s' && ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=320x180 "
       "-frames:v 12 -c:v prores_ks -profile:v 3 full.mov && head -c $(( $(stat -c %%s full.mov) "
       "/ 2 )) full.mov > cut.mov",
       dir);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/cut.mov", dir);
    media_video *v = NULL;
    rs_error_clear(&e);
    cr_assert_eq(media_video_open(p, &v, &e), RS_EFORMAT, "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, p), "%s", e.msg);
    cr_assert_null(strchr(e.msg, '\n'));
}
