/*
 * probe_test.c: media_probe on the bundled H.264 samples, PNG frames, and
 * EXR / DPX (both byte orders) / TIFF files written by ffmpeg; the format is
 * decided by content (a PNG named .mov is still a PNG); truncated and
 * wrong-magic files give one clear RS_EFORMAT line naming the file.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

static char dir[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_probe_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(probe, .init = setup, .fini = teardown);

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert(cJSON_IsNumber(v), "field %s missing", k);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert(cJSON_IsString(v), "field %s missing", k);
    return v->valuestring;
}

static cJSON *probe_ok(const char *path)
{
    cJSON *o = NULL;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = media_probe(path, &o, &e);
    cr_assert_eq(rc, RS_OK, "%s: %s", path, e.msg);
    cr_assert_not_null(o);
    return o;
}

/* Writes one ffmpeg test frame as dir/name with extra encoder args. */
static void ffmpeg_frame(const char *name, const char *args)
{
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=size=320x240 -frames:v 1 "
             "%s '%s/%s'",
             args, dir, name);
    cr_assert_eq(system(cmd), 0, "ffmpeg failed: %s", cmd);
}

static void truncate_copy(const char *src, const char *dst, long keep)
{
    char cmd[PATH_MAX * 2 + 64];
    snprintf(cmd, sizeof cmd, "head -c %ld '%s' > '%s'", keep, src, dst);
    cr_assert_eq(system(cmd), 0);
}

static void expect_format_error(const char *path, const char *words)
{
    cJSON *o = NULL;
    rs_error e;
    rs_error_clear(&e);
    cr_assert_eq(media_probe(path, &o, &e), RS_EFORMAT, "%s: expected RS_EFORMAT", path);
    cr_assert_null(o);
    cr_assert_not_null(strstr(e.msg, path), "error does not name the file: %s", e.msg);
    cr_assert_null(strchr(e.msg, '\n'), "error is not one line: %s", e.msg);
    if (words != NULL) {
        cr_assert_not_null(strstr(e.msg, words), "error '%s' lacks '%s'", e.msg, words);
    }
}

Test(probe, samples_are_h264_640x360_240_frames)
{
    static const char *const clips[] = {"clip_01_tears_of_steel.mp4", "clip_02_caminandes.mp4",
                                        "clip_03_sintel.mp4"};
    for (size_t i = 0; i < 3; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/samples/%s", RS_SOURCE_DIR, clips[i]);
        cJSON *o = probe_ok(p);
        cr_assert_str_eq(str(o, "type"), "video");
        cr_assert_str_eq(str(o, "codec"), "h264");
        cr_assert_eq(num(o, "width"), 640);
        cr_assert_eq(num(o, "height"), 360);
        cr_assert_eq(num(o, "frames"), 240);
        cr_assert_str_eq(str(o, "frames_source"), "nb_frames");
        cr_assert_str_eq(str(o, "fps"), "24/1");
        cr_assert_float_eq(num(o, "fps_float"), 24.0, 1e-9);
        cr_assert_float_eq(num(o, "duration"), 10.0, 0.05);
        cr_assert_str_eq(str(o, "pix_fmt"), "yuv420p");
        cr_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "audio")));
        cJSON_Delete(o);
    }
}

Test(probe, png_frames)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/../shared/data/removal/bmx-trees/frames/00000.png", RS_SOURCE_DIR);
    cJSON *o = probe_ok(p);
    cr_assert_str_eq(str(o, "format"), "png");
    cr_assert_eq(num(o, "width"), 432);
    cr_assert_eq(num(o, "height"), 240);
    cr_assert_eq(num(o, "bit_depth"), 8);
    cJSON_Delete(o);
}

Test(probe, content_not_extension_decides)
{
    char src[PATH_MAX];
    char dst[PATH_MAX];
    snprintf(src, sizeof src, "%s/../shared/data/removal/bmx-trees/frames/00001.png",
             RS_SOURCE_DIR);
    snprintf(dst, sizeof dst, "%s/looks_like.mov", dir);
    truncate_copy(src, dst, 100000000L);
    cJSON *o = probe_ok(dst);
    cr_assert_str_eq(str(o, "format"), "png");
    cJSON_Delete(o);
    /* and a text file named .exr is not media */
    snprintf(dst, sizeof dst, "%s/notes.exr", dir);
    FILE *f = fopen(dst, "w");
    cr_assert_not_null(f);
    fputs("camera report: A001 C003, 24 fps\n", f);
    fclose(f);
    expect_format_error(dst, "not a recognised media file");
}

Test(probe, exr_written_by_ffmpeg)
{
    ffmpeg_frame("t.exr", "-c:v exr -pix_fmt gbrpf32le");
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/t.exr", dir);
    cJSON *o = probe_ok(p);
    cr_assert_str_eq(str(o, "format"), "exr");
    cr_assert_eq(num(o, "width"), 320);
    cr_assert_eq(num(o, "height"), 240);
    cr_assert_str_eq(str(o, "storage"), "scanline");
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "channels");
    cr_assert_eq(cJSON_GetArraySize(ch), 3);
    cr_assert_str_eq(str(cJSON_GetArrayItem(ch, 2), "name"), "R");
    cr_assert_str_eq(str(cJSON_GetArrayItem(ch, 2), "type"), "float");
    cr_assert_str_eq(str(o, "compression"), "none");
    cJSON_Delete(o);
}

Test(probe, dpx_both_byte_orders)
{
    ffmpeg_frame("le.dpx", "-pix_fmt rgb24");
    ffmpeg_frame("be.dpx", "-pix_fmt rgb48be");
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/le.dpx", dir);
    cJSON *o = probe_ok(p);
    cr_assert_str_eq(str(o, "format"), "dpx");
    cr_assert_str_eq(str(o, "byte_order"), "little");
    cr_assert_eq(num(o, "width"), 320);
    cr_assert_eq(num(o, "height"), 240);
    cr_assert_eq(num(o, "bit_depth"), 8);
    cJSON_Delete(o);
    snprintf(p, sizeof p, "%s/be.dpx", dir);
    o = probe_ok(p);
    cr_assert_str_eq(str(o, "byte_order"), "big");
    cr_assert_eq(num(o, "width"), 320);
    cr_assert_eq(num(o, "height"), 240);
    cr_assert_eq(num(o, "bit_depth"), 16);
    cJSON_Delete(o);
}

Test(probe, tiff_written_by_ffmpeg)
{
    ffmpeg_frame("t.tif", "-pix_fmt rgb24");
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/t.tif", dir);
    cJSON *o = probe_ok(p);
    cr_assert_str_eq(str(o, "format"), "tiff");
    cr_assert_eq(num(o, "width"), 320);
    cr_assert_eq(num(o, "height"), 240);
    cr_assert_eq(num(o, "bits_per_sample"), 8);
    cr_assert_eq(num(o, "samples_per_pixel"), 3);
    cJSON_Delete(o);
}

Test(probe, truncated_files_give_one_clear_error)
{
    ffmpeg_frame("t.exr", "-c:v exr -pix_fmt gbrpf32le");
    ffmpeg_frame("t.dpx", "-pix_fmt rgb24");
    ffmpeg_frame("t.tif", "-pix_fmt rgb24");
    struct {
        const char *src;
        long keep;
        const char *words;
    } cases[] = {
        {"t.exr", 60, "exr"},   {"t.dpx", 500, "dpx"},  {"t.dpx", 4000, "truncated"},
        {"t.tif", 40, "tiff"},  {"png", 20, "png"},     {"png", 5000, "truncated"},
        {"mp4", 4096, NULL},    {"t.exr", 4, "exr"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[PATH_MAX];
        char dst[PATH_MAX];
        if (strcmp(cases[i].src, "png") == 0) {
            snprintf(src, sizeof src, "%s/../shared/data/removal/bmx-trees/frames/00002.png",
                     RS_SOURCE_DIR);
        } else if (strcmp(cases[i].src, "mp4") == 0) {
            snprintf(src, sizeof src, "%s/samples/clip_02_caminandes.mp4", RS_SOURCE_DIR);
        } else {
            snprintf(src, sizeof src, "%s/%s", dir, cases[i].src);
        }
        snprintf(dst, sizeof dst, "%s/cut%zu_%s", dir, i, strrchr(src, '/') + 1);
        truncate_copy(src, dst, cases[i].keep);
        expect_format_error(dst, cases[i].words);
    }
}

Test(probe, wrong_magic_and_empty)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/fake.dpx", dir);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 4096; i++) {
        fputc((i * 7) & 0xff, f);
    }
    fclose(f);
    expect_format_error(p, "not a recognised media file");
    snprintf(p, sizeof p, "%s/empty.exr", dir);
    f = fopen(p, "wb");
    cr_assert_not_null(f);
    fclose(f);
    expect_format_error(p, "not a recognised media file");
    /* DPX magic with a header claiming an absurd size */
    snprintf(p, sizeof p, "%s/liar.dpx", dir);
    f = fopen(p, "wb");
    cr_assert_not_null(f);
    unsigned char hdr[2048] = {'S', 'D', 'P', 'X', 0, 0, 8, 0};
    hdr[16] = 0x7f; /* file size field: ~2 GB */
    fwrite(hdr, 1, sizeof hdr, f);
    fclose(f);
    expect_format_error(p, "dpx");
}

Test(probe, missing_file)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/missing.exr", dir);
    cJSON *o = NULL;
    rs_error e;
    cr_assert_eq(media_probe(p, &o, &e), RS_ENOENT);
    cr_assert_not_null(strstr(e.msg, "missing.exr"));
}
