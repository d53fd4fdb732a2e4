/*
 * media_image_test.c: still-image round trips (write -> read -> bit
 * identical) per format and sample type, metadata kept (PNG text, EXR
 * string attributes, TIFF tags, DPX header text), files written by ffmpeg
 * read back equal to ffmpeg's own decode, the real PNG frames in
 * shared/data, and truncated / oversized / wrong-magic files failing with
 * one message that names the file and the problem.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "frame.h"

static char dir[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_media_image.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(media_image, .init = setup, .fini = teardown, .timeout = 60);

static uint8_t *slurp(const char *path, size_t *len);
static void spit(const char *path, const uint8_t *b, size_t n);

static void path_in(char *out, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

/* A frame whose every sample differs from its neighbours, within max. */
static media_frame *pattern(uint32_t w, uint32_t h, uint32_t ch, media_sample s, uint32_t max)
{
    media_frame *f = NULL;
    rs_error e;
    cr_assert_eq(media_frame_create(w, h, ch, s, &f, &e), RS_OK);
    size_t n = (size_t)w * h * ch;
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        uint32_t v = (x >> 8) % (max + 1);
        switch (s) {
        case MEDIA_SAMPLE_U8:
            f->data[i] = (uint8_t)v;
            break;
        case MEDIA_SAMPLE_U16:
            ((uint16_t *)(void *)f->data)[i] = (uint16_t)v;
            break;
        case MEDIA_SAMPLE_F16:
            ((uint16_t *)(void *)f->data)[i] = media_float_to_half((float)v / 977.0f - 3.0f);
            break;
        case MEDIA_SAMPLE_F32:
            ((float *)(void *)f->data)[i] = (float)v / 9377.0f - 1.5f;
            break;
        }
    }
    return f;
}

static media_frame *read_ok(const char *path)
{
    media_frame *f = NULL;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = media_image_read(path, NULL, &f, &e);
    cr_assert_eq(rc, RS_OK, "%s: %s", path, e.msg);
    return f;
}

static void write_ok(const char *path, const media_frame *f, const media_write_opts *o)
{
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = media_image_write(path, f, o, &e);
    cr_assert_eq(rc, RS_OK, "%s: %s", path, e.msg);
}

static void round_trip(const char *name, media_frame *f, const media_write_opts *o)
{
    char p[PATH_MAX];
    path_in(p, name);
    write_ok(p, f, o);
    media_frame *g = read_ok(p);
    cr_assert_eq(g->width, f->width);
    cr_assert_eq(g->channels, f->channels, "%s: channels %u vs %u", name, g->channels, f->channels);
    cr_assert_eq(g->sample, f->sample, "%s: sample %s", name, media_sample_name(g->sample));
    cr_assert(media_frame_equal(f, g), "%s: pixels or names differ", name);
    media_frame_destroy(g);
}

Test(media_image, png_round_trip_with_text)
{
    media_write_opts o = {.format = MEDIA_FORMAT_PNG};
    for (uint32_t ch = 1; ch <= 4; ch++) {
        media_frame *f8 = pattern(37, 21, ch, MEDIA_SAMPLE_U8, 255);
        media_frame *f16 = pattern(19, 33, ch, MEDIA_SAMPLE_U16, 65535);
        char n[32];
        snprintf(n, sizeof n, "a%u.png", ch);
        round_trip(n, f8, &o);
        snprintf(n, sizeof n, "b%u.png", ch);
        round_trip(n, f16, &o);
        media_frame_destroy(f8);
        media_frame_destroy(f16);
    }
    media_frame *f = pattern(8, 8, 3, MEDIA_SAMPLE_U8, 255);
    rs_error e;
    cr_assert_eq(media_frame_meta_set(f, "rushes:job", "42", &e), RS_OK);
    cr_assert_eq(media_frame_meta_set(f, "Comment", "wire removed — frames 1-8", &e), RS_OK);
    char p[PATH_MAX];
    path_in(p, "text.png");
    write_ok(p, f, &o);
    media_frame *g = read_ok(p);
    cr_assert_str_eq(media_frame_meta_get(g, "rushes:job"), "42");
    cr_assert_str_eq(media_frame_meta_get(g, "Comment"), "wire removed — frames 1-8");
    media_frame_destroy(g);
    media_frame_destroy(f);
}

Test(media_image, tiff_round_trip)
{
    static const media_sample ss[4] = {MEDIA_SAMPLE_U8, MEDIA_SAMPLE_U16, MEDIA_SAMPLE_F16,
                                       MEDIA_SAMPLE_F32};
    for (int k = 0; k < 4; k++) {
        for (uint32_t ch = 1; ch <= 5; ch += 2) {
            for (int z = 0; z < 2; z++) {
                media_write_opts o = {.format = MEDIA_FORMAT_TIFF, .tiff_deflate = z == 1};
                media_frame *f = pattern(29, 17, ch, ss[k], ss[k] == MEDIA_SAMPLE_U8 ? 255 : 65535);
                char n[32];
                snprintf(n, sizeof n, "t%d_%u_%d.tif", k, ch, z);
                round_trip(n, f, &o);
                media_frame_destroy(f);
            }
        }
    }
    media_frame *f = pattern(4, 4, 3, MEDIA_SAMPLE_U16, 65535);
    rs_error e;
    cr_assert_eq(media_frame_meta_set(f, "ImageDescription", "plate v2", &e), RS_OK);
    char p[PATH_MAX];
    path_in(p, "desc.tif");
    media_write_opts o = {.format = MEDIA_FORMAT_TIFF};
    write_ok(p, f, &o);
    media_frame *g = read_ok(p);
    cr_assert_str_eq(media_frame_meta_get(g, "ImageDescription"), "plate v2");
    media_frame_destroy(g);
    media_frame_destroy(f);
}

Test(media_image, dpx_round_trip_both_byte_orders)
{
    for (int le = 0; le < 2; le++) {
        for (uint32_t ch = 1; ch <= 4; ch++) {
            if (ch == 2) {
                continue;
            }
            media_write_opts o = {
                .format = MEDIA_FORMAT_DPX, .dpx_little_endian = le == 1, .dpx_bits = 10};
            media_frame *f = pattern(31, 9, ch, MEDIA_SAMPLE_U16, 1023);
            f->bit_depth = 10;
            char n[32];
            snprintf(n, sizeof n, "d10_%d_%u.dpx", le, ch);
            round_trip(n, f, &o);
            media_frame_destroy(f);
            o.dpx_bits = 16;
            f = pattern(31, 9, ch, MEDIA_SAMPLE_U16, 65535);
            snprintf(n, sizeof n, "d16_%d_%u.dpx", le, ch);
            round_trip(n, f, &o);
            media_frame_destroy(f);
        }
    }
    media_frame *f = pattern(6, 6, 3, MEDIA_SAMPLE_U16, 1023);
    f->bit_depth = 10;
    f->colour = MEDIA_COLOUR_CINEON;
    rs_error e;
    cr_assert_eq(media_frame_meta_set(f, "dpx:creator", "rushes", &e), RS_OK);
    cr_assert_eq(media_frame_meta_set(f, "dpx:project", "Night Shoot", &e), RS_OK);
    char p[PATH_MAX];
    path_in(p, "meta.dpx");
    media_write_opts o = {.format = MEDIA_FORMAT_DPX};
    write_ok(p, f, &o);
    media_frame *g = read_ok(p);
    cr_assert_eq(g->bit_depth, 10);
    cr_assert_eq(g->colour, MEDIA_COLOUR_CINEON);
    cr_assert_str_eq(media_frame_meta_get(g, "dpx:creator"), "rushes");
    cr_assert_str_eq(media_frame_meta_get(g, "dpx:project"), "Night Shoot");
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_size, 2048 + 6 * 6 * 4, "10-bit RGB packs 3 samples per word");
    media_frame_destroy(g);
    media_frame_destroy(f);
}

Test(media_image, exr_scanline_and_tiled_with_attributes)
{
    static const media_exr_compression comps[] = {MEDIA_EXR_NONE, MEDIA_EXR_ZIP, MEDIA_EXR_PIZ,
                                                  MEDIA_EXR_RLE, MEDIA_EXR_ZIPS};
    for (int s = 0; s < 2; s++) {
        media_sample smp = s == 0 ? MEDIA_SAMPLE_F16 : MEDIA_SAMPLE_F32;
        for (size_t c = 0; c < sizeof comps / sizeof comps[0]; c++) {
            for (int tiled = 0; tiled < 2; tiled++) {
                media_frame *f = pattern(45, 37, 6, smp, 65535);
                snprintf(f->names[4], MEDIA_CHANNEL_NAME, "Z");
                snprintf(f->names[5], MEDIA_CHANNEL_NAME, "mask.Y");
                rs_error e;
                cr_assert_eq(media_frame_meta_set(f, "rushes:ledger", "event 17", &e), RS_OK);
                cr_assert_eq(media_frame_meta_set(f, "owner", "Post House", &e), RS_OK);
                media_write_opts o = {.format = MEDIA_FORMAT_EXR,
                                      .exr_compression = comps[c],
                                      .exr_tile = tiled ? 16 : 0};
                char n[48];
                snprintf(n, sizeof n, "e%d_%zu_%d.exr", s, c, tiled);
                char p[PATH_MAX];
                path_in(p, n);
                write_ok(p, f, &o);
                media_frame *g = read_ok(p);
                cr_assert(media_frame_equal(f, g), "%s differs", n);
                cr_assert_eq(g->colour, MEDIA_COLOUR_LINEAR);
                cr_assert_str_eq(media_frame_meta_get(g, "rushes:ledger"), "event 17");
                cr_assert_str_eq(media_frame_meta_get(g, "owner"), "Post House");
                media_frame_destroy(g);
                media_frame_destroy(f);
            }
        }
    }
}

/* Chunks decoded on 1..8 threads give the same frame, and a damaged file
 * gives the same kind of error whatever the thread count. */
Test(media_image, exr_threaded_decode_equals_single)
{
    media_frame *f = pattern(301, 203, 4, MEDIA_SAMPLE_F16, 65535);
    for (int tiled = 0; tiled < 2; tiled++) {
        media_write_opts o = {.format = MEDIA_FORMAT_EXR,
                              .exr_compression = MEDIA_EXR_ZIPS,
                              .exr_tile = tiled ? 32 : 0};
        char p[PATH_MAX];
        path_in(p, tiled ? "thr_tiled.exr" : "thr_scan.exr");
        write_ok(p, f, &o);
        for (uint32_t t = 1; t <= 8; t++) {
            media_read_opts ro = {.threads = t};
            media_frame *g = NULL;
            rs_error e;
            cr_assert_eq(media_image_read(p, &ro, &g, &e), RS_OK, "%s: %s", p, e.msg);
            cr_assert(media_frame_equal(f, g), "%s on %u threads differs", p, t);
            media_frame_destroy(g);
        }
        /* damage: cut the file at two thirds, then scribble over a chunk */
        size_t n = 0;
        uint8_t *b = slurp(p, &n);
        char q[PATH_MAX];
        path_in(q, "thr_cut.exr");
        spit(q, b, n * 2 / 3);
        memset(b + n / 2, 0x5a, 64);
        char r[PATH_MAX];
        path_in(r, "thr_bad.exr");
        spit(r, b, n);
        free(b);
        for (uint32_t t = 1; t <= 4; t += 3) {
            media_read_opts ro = {.threads = t};
            media_frame *g = NULL;
            rs_error e;
            rs_error_clear(&e);
            cr_assert_neq(media_image_read(q, &ro, &g, &e), RS_OK, "%s read on %u threads", q, t);
            cr_assert_not_null(strstr(e.msg, q), "%s", e.msg);
            rs_error_clear(&e);
            rs_err rc = media_image_read(r, &ro, &g, &e);
            if (rc == RS_OK) {
                /* ZIP data can survive a scribble; then it must decode the same on any count */
                media_frame_destroy(g);
            } else {
                cr_assert_not_null(strstr(e.msg, r), "%s", e.msg);
            }
        }
    }
    media_frame_destroy(f);
}

/* Chunks compressed on 2..8 threads are written in chunk order, so the
 * file is byte for byte the single-threaded one (scanline and tiled with
 * partial edge tiles, every compression, half and float), and it reads
 * back equal with its attributes. A 1.5 MiB attribute passes the write
 * buffer's size and goes around it. */
Test(media_image, exr_threaded_write_equals_single)
{
    static const media_exr_compression comps[] = {MEDIA_EXR_ZIP, MEDIA_EXR_ZIPS, MEDIA_EXR_PIZ,
                                                  MEDIA_EXR_RLE, MEDIA_EXR_NONE};
    size_t big_len = (size_t)3 << 19;
    char *big = malloc(big_len + 1);
    cr_assert_not_null(big);
    for (size_t i = 0; i < big_len; i++) {
        big[i] = (char)('a' + i % 23);
    }
    big[big_len] = '\0';
    for (int s = 0; s < 2; s++) {
        media_frame *f = pattern(301, 203, 5, s == 0 ? MEDIA_SAMPLE_F16 : MEDIA_SAMPLE_F32, 65535);
        snprintf(f->names[4], MEDIA_CHANNEL_NAME, "mask.Y");
        rs_error e;
        cr_assert_eq(media_frame_meta_set(f, "owner", "Post House", &e), RS_OK);
        cr_assert_eq(media_frame_meta_set(f, "notes", big, &e), RS_OK);
        for (size_t c = 0; c < sizeof comps / sizeof comps[0]; c++) {
            for (int tiled = 0; tiled < 2; tiled++) {
                media_write_opts o = {.format = MEDIA_FORMAT_EXR,
                                      .exr_compression = comps[c],
                                      .exr_tile = tiled ? 32 : 0,
                                      .exr_threads = 1};
                char one[PATH_MAX];
                path_in(one, "w1.exr");
                write_ok(one, f, &o);
                size_t n1 = 0;
                uint8_t *b1 = slurp(one, &n1);
                static const uint32_t counts[] = {0, 2, 3, 8};
                for (size_t t = 0; t < sizeof counts / sizeof counts[0]; t++) {
                    o.exr_threads = counts[t];
                    char many[PATH_MAX];
                    path_in(many, "wn.exr");
                    write_ok(many, f, &o);
                    size_t nn = 0;
                    uint8_t *bn = slurp(many, &nn);
                    cr_assert(nn == n1 && memcmp(b1, bn, n1) == 0,
                              "%s on %u threads (compression %d, tiled %d, sample %d): %zu bytes "
                              "differ from the single-threaded %zu",
                              many, counts[t], (int)comps[c], tiled, s, nn, n1);
                    free(bn);
                }
                free(b1);
                media_frame *g = read_ok(one);
                cr_assert(media_frame_equal(f, g), "compression %d tiled %d differs", (int)comps[c],
                          tiled);
                cr_assert_str_eq(media_frame_meta_get(g, "owner"), "Post House");
                const char *nv = media_frame_meta_get(g, "notes");
                cr_assert(nv != NULL && strcmp(nv, big) == 0, "1.5 MiB attribute lost");
                media_frame_destroy(g);
            }
        }
        media_frame_destroy(f);
    }
    free(big);
}

Test(media_image, half_float_conversion_is_exact_for_halves)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = media_half_to_float((uint16_t)h);
        if (f != f) {
            continue; /* NaN payloads need not round-trip */
        }
        cr_assert_eq(media_float_to_half(f), h, "half 0x%04x -> %g -> 0x%04x", h, f,
                     media_float_to_half(f));
    }
    cr_assert_eq(media_float_to_half(1.0f), 0x3c00);
    cr_assert_eq(media_float_to_half(65520.0f), 0x7c00, "rounds to inf");
}

/* Runs a shell command; fails the test on error. */
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

Test(media_image, ffmpeg_dpx_10bit_equals_ffmpeg_decode)
{
    sh("cd '%s' && ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=64x48 "
       "-frames:v 1 -pix_fmt gbrp10le -c:v dpx f.dpx && ffmpeg -nostdin -loglevel error -y "
       "-i f.dpx -f rawvideo -pix_fmt gbrp10le f.raw",
       dir);
    char p[PATH_MAX];
    path_in(p, "f.dpx");
    media_frame *f = read_ok(p);
    cr_assert_eq(f->bit_depth, 10);
    cr_assert_eq(f->channels, 3);
    path_in(p, "f.raw");
    size_t n = 0;
    uint16_t *raw = (uint16_t *)(void *)slurp(p, &n);
    size_t plane = 64 * 48;
    cr_assert_eq(n, plane * 3 * 2);
    const uint16_t *px = (const uint16_t *)(const void *)f->data;
    static const int plane_of[3] = {2, 0, 1}; /* gbrp: G B R planes */
    for (size_t i = 0; i < plane; i++) {
        for (int c = 0; c < 3; c++) {
            cr_assert_eq(px[i * 3 + c], raw[plane_of[c] * plane + i], "pixel %zu ch %d", i, c);
        }
    }
    free(raw);
    media_frame_destroy(f);
}

Test(media_image, ffmpeg_exr_equals_ffmpeg_decode)
{
    sh("cd '%s' && ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=64x48 "
       "-frames:v 1 -pix_fmt gbrpf32le -c:v exr -compression zip1 f.exr && ffmpeg -nostdin "
       "-loglevel error -y -i f.exr -f rawvideo -pix_fmt gbrpf32le f.raw",
       dir);
    char p[PATH_MAX];
    path_in(p, "f.exr");
    media_frame *f = read_ok(p);
    cr_assert_eq(f->channels, 3);
    cr_assert_eq(f->sample, MEDIA_SAMPLE_F32);
    path_in(p, "f.raw");
    size_t n = 0;
    float *raw = (float *)(void *)slurp(p, &n);
    size_t plane = 64 * 48;
    cr_assert_eq(n, plane * 3 * 4);
    const float *px = (const float *)(const void *)f->data;
    static const int plane_of[3] = {2, 0, 1};
    for (size_t i = 0; i < plane; i++) {
        for (int c = 0; c < 3; c++) {
            cr_assert_eq(px[i * 3 + c], raw[plane_of[c] * plane + i], "pixel %zu ch %d", i, c);
        }
    }
    free(raw);
    media_frame_destroy(f);
}

Test(media_image, real_png_frames_equal_ffmpeg_decode)
{
    static const char *const frames[] = {"matte/judo/frames/00000.png",
                                         "matte/judo/masks/00005.png",
                                         "removal/bmx-trees/frames/00000.png"};
    for (size_t k = 0; k < sizeof frames / sizeof frames[0]; k++) {
        char src[PATH_MAX];
        snprintf(src, sizeof src, "%s/../shared/data/%s", RS_SOURCE_DIR, frames[k]);
        media_frame *f = read_ok(src);
        const char *fmt = f->channels == 1 ? "gray" : f->channels == 3 ? "rgb24" : "rgba";
        cr_assert_eq(f->sample, MEDIA_SAMPLE_U8);
        sh("ffmpeg -nostdin -loglevel error -y -i '%s' -f rawvideo -pix_fmt %s '%s/r.raw'", src,
           fmt, dir);
        char p[PATH_MAX];
        path_in(p, "r.raw");
        size_t n = 0;
        uint8_t *raw = slurp(p, &n);
        cr_assert_eq(n, media_frame_bytes(f), "%s", frames[k]);
        cr_assert_eq(memcmp(raw, f->data, n), 0, "%s differs from ffmpeg", frames[k]);
        free(raw);
        media_frame_destroy(f);
    }
}

static void expect_error(const char *path, rs_err code, const char *words)
{
    media_frame *f = NULL;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = media_image_read(path, NULL, &f, &e);
    cr_assert_eq(rc, code, "%s: got %d (%s)", path, rc, e.msg);
    cr_assert_null(f);
    cr_assert_not_null(strstr(e.msg, path), "message '%s' does not name the file", e.msg);
    cr_assert_not_null(strstr(e.msg, words), "message '%s' lacks '%s'", e.msg, words);
    cr_assert_null(strchr(e.msg, '\n'), "one line: %s", e.msg);
}

Test(media_image, truncated_oversized_and_wrong_magic)
{
    char p[PATH_MAX];
    char q[PATH_MAX];
    media_frame *f = pattern(64, 64, 3, MEDIA_SAMPLE_U16, 1023);
    f->bit_depth = 10;
    media_frame *h = pattern(64, 64, 3, MEDIA_SAMPLE_F16, 65535);
    media_write_opts png = {.format = MEDIA_FORMAT_PNG};
    media_write_opts dpx = {.format = MEDIA_FORMAT_DPX};
    media_write_opts tif = {.format = MEDIA_FORMAT_TIFF};
    media_write_opts exr = {.format = MEDIA_FORMAT_EXR, .exr_compression = MEDIA_EXR_ZIP};
    const struct {
        const char *name;
        const media_frame *f;
        const media_write_opts *o;
        const char *words;
    } cases[] = {
        {"t.png", f, &png, "png: truncated"},
        {"t.dpx", f, &dpx, "dpx: truncated"},
        {"t.tif", f, &tif, "tiff:"},
        {"t.exr", h, &exr, "exr:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        path_in(p, cases[i].name);
        write_ok(p, cases[i].f, cases[i].o);
        snprintf(q, sizeof q, "%s/cut_%s", dir, cases[i].name);
        struct stat st;
        cr_assert_eq(stat(p, &st), 0);
        sh("head -c %lld '%s' > '%s'", (long long)st.st_size * 2 / 3, p, q);
        expect_error(q, RS_EFORMAT, cases[i].words);
    }
    /* DPX claiming 100000 pixels per line */
    path_in(p, "t.dpx");
    size_t n = 0;
    uint8_t *b = slurp(p, &n);
    b[772] = 0x00;
    b[773] = 0x01;
    b[774] = 0x86;
    b[775] = 0xa0;
    path_in(q, "big.dpx");
    FILE *fp = fopen(q, "wb");
    fwrite(b, 1, n, fp);
    fclose(fp);
    free(b);
    expect_error(q, RS_EFORMAT, "over the 65536 limit");
    /* PNG whose IHDR says 70000x70000 (CRC fixed so libpng gets to the size) */
    path_in(p, "t.png");
    b = slurp(p, &n);
    const uint8_t big[8] = {0, 1, 0x11, 0x70, 0, 1, 0x11, 0x70};
    memcpy(b + 16, big, 8);
    uLong crc = crc32(0, b + 12, 17);
    b[29] = (uint8_t)(crc >> 24);
    b[30] = (uint8_t)(crc >> 16);
    b[31] = (uint8_t)(crc >> 8);
    b[32] = (uint8_t)crc;
    path_in(q, "big.png");
    fp = fopen(q, "wb");
    fwrite(b, 1, n, fp);
    fclose(fp);
    free(b);
    expect_error(q, RS_EFORMAT, "over the 65536 limit");
    /* text under an image name */
    path_in(q, "notes.exr");
    fp = fopen(q, "wb");
    fputs("hello, not an image\n", fp);
    fclose(fp);
    expect_error(q, RS_EFORMAT, "wrong magic");
    path_in(q, "empty.dpx");
    fp = fopen(q, "wb");
    fclose(fp);
    expect_error(q, RS_EFORMAT, "empty");
    media_frame_destroy(f);
    media_frame_destroy(h);
}

Test(media_image, atomic_write_leaves_no_partial_file)
{
    char p[PATH_MAX];
    path_in(p, "u8.exr");
    media_frame *f = pattern(8, 8, 3, MEDIA_SAMPLE_U8, 255);
    media_write_opts o = {.format = MEDIA_FORMAT_EXR};
    rs_error e;
    cr_assert_eq(media_image_write(p, f, &o, &e), RS_EINVAL, "u8 EXR must be refused");
    struct stat st;
    cr_assert_neq(stat(p, &st), 0, "no file under the final name");
    sh("test -z \"$(ls '%s')\"", dir);
    media_frame_destroy(f);
}

/* Seeds written by other tools decode to what ffmpeg decodes them to. */
Test(media_image, foreign_seeds_equal_ffmpeg_decode)
{
    static const struct {
        const char *file;
        const char *pix;
        int planar; /* gbrp order */
    } cases[] = {
        {"dpx/ffmpeg_rgb8.dpx", "rgb24", 0},          {"dpx/ffmpeg_rgb12.dpx", "gbrp12le", 1},
        {"dpx/ffmpeg_rgb16.dpx", "rgb48le", 0},       {"tiff/ffmpeg_lzw.tif", "rgb24", 0},
        {"tiff/ffmpeg_packbits16.tif", "rgb48le", 0}, {"png/tears_pal8.png", "rgb24", 0},
        {"exr/ffmpeg_half.exr", "gbrpf32le", 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char src[PATH_MAX];
        snprintf(src, sizeof src, "%s/tests/fuzz/corpus/%s", RS_SOURCE_DIR, cases[k].file);
        media_frame *f = read_ok(src);
        sh("ffmpeg -nostdin -loglevel error -y -i '%s' -f rawvideo -pix_fmt %s '%s/r.raw'", src,
           cases[k].pix, dir);
        char p[PATH_MAX];
        path_in(p, "r.raw");
        size_t n = 0;
        uint8_t *raw = slurp(p, &n);
        size_t plane = (size_t)f->width * f->height;
        if (f->sample == MEDIA_SAMPLE_F16) {
            /* compare half samples widened to float */
            cr_assert_eq(n, plane * 3 * 4, "%s", cases[k].file);
            const float *r = (const float *)(const void *)raw;
            const uint16_t *h = (const uint16_t *)(const void *)f->data;
            static const int plane_of[3] = {2, 0, 1};
            for (size_t i = 0; i < plane; i++) {
                for (int c = 0; c < 3; c++) {
                    cr_assert_eq(media_half_to_float(h[i * 3 + c]), r[plane_of[c] * plane + i],
                                 "%s px %zu", cases[k].file, i);
                }
            }
        } else if (cases[k].planar) {
            cr_assert_eq(n, media_frame_bytes(f), "%s", cases[k].file);
            const uint16_t *r = (const uint16_t *)(const void *)raw;
            const uint16_t *d = (const uint16_t *)(const void *)f->data;
            static const int plane_of[3] = {2, 0, 1};
            for (size_t i = 0; i < plane; i++) {
                for (int c = 0; c < 3; c++) {
                    cr_assert_eq(d[i * 3 + c], r[plane_of[c] * plane + i], "%s px %zu ch %d",
                                 cases[k].file, i, c);
                }
            }
        } else {
            cr_assert_eq(n, media_frame_bytes(f), "%s: %zu vs %zu", cases[k].file, n,
                         media_frame_bytes(f));
            cr_assert_eq(memcmp(raw, f->data, n), 0, "%s differs from ffmpeg", cases[k].file);
        }
        free(raw);
        media_frame_destroy(f);
    }
    /* exrmaketiled's tiled (and mipmapped) copies hold the scanline file's pixels */
    char a[PATH_MAX];
    char b[PATH_MAX];
    snprintf(a, sizeof a, "%s/tests/fuzz/corpus/exr/half_rle.exr", RS_SOURCE_DIR);
    media_frame *fa = read_ok(a);
    static const char *const tiled[] = {"exrmaketiled_mip.exr", "exrmaketiled_mipmap.exr"};
    for (int i = 0; i < 2; i++) {
        snprintf(b, sizeof b, "%s/tests/fuzz/corpus/exr/%s", RS_SOURCE_DIR, tiled[i]);
        media_frame *fb = read_ok(b);
        cr_assert(media_frame_equal(fa, fb), "%s", tiled[i]);
        media_frame_destroy(fb);
    }
    media_frame_destroy(fa);
}

/* Patches a little-endian u32 at off. */
static void put_le32(uint8_t *b, size_t off, uint32_t v)
{
    b[off] = (uint8_t)v;
    b[off + 1] = (uint8_t)(v >> 8);
    b[off + 2] = (uint8_t)(v >> 16);
    b[off + 3] = (uint8_t)(v >> 24);
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    cr_assert_eq(fwrite(b, 1, n, fp), n);
    fclose(fp);
}

Test(media_image, oversized_tiff_and_exr)
{
    char p[PATH_MAX];
    char q[PATH_MAX];
    size_t n = 0;
    /* TIFF: rewrite the ImageWidth entry as LONG 100000 */
    media_frame *f = pattern(16, 16, 3, MEDIA_SAMPLE_U8, 255);
    media_write_opts tif = {.format = MEDIA_FORMAT_TIFF};
    path_in(p, "w.tif");
    write_ok(p, f, &tif);
    uint8_t *b = slurp(p, &n);
    cr_assert_eq(memcmp(b, "II*\0", 4), 0);
    uint32_t ifd = b[4] | b[5] << 8 | b[6] << 16 | (uint32_t)b[7] << 24;
    unsigned count = b[ifd] | b[ifd + 1] << 8;
    bool patched = false;
    for (unsigned i = 0; i < count; i++) {
        uint8_t *ent = b + ifd + 2 + 12 * i;
        if (ent[0] == 0x00 && ent[1] == 0x01) { /* tag 256 */
            ent[2] = 4;
            ent[3] = 0;
            put_le32(ent, 8, 100000);
            patched = true;
        }
    }
    cr_assert(patched);
    path_in(q, "wide.tif");
    spit(q, b, n);
    free(b);
    expect_error(q, RS_EFORMAT, "tiff: image size 100000x16 over the 65536 limit");
    media_frame *g = NULL;
    rs_error e;
    media_frame_destroy(f);

    /* EXR: a dataWindow 100000 pixels wide */
    f = pattern(16, 16, 3, MEDIA_SAMPLE_F16, 1000);
    media_write_opts exr = {.format = MEDIA_FORMAT_EXR};
    path_in(p, "w.exr");
    write_ok(p, f, &exr);
    b = slurp(p, &n);
    static const char key[] = "dataWindow\0box2i";
    uint8_t *at = memmem(b, n, key, sizeof key);
    cr_assert_not_null(at);
    put_le32(at + sizeof key + 4, 8, 99999); /* xMax */
    path_in(q, "wide.exr");
    spit(q, b, n);
    free(b);
    rs_error_clear(&e);
    cr_assert_eq(media_image_read(q, NULL, &g, &e), RS_EFORMAT, "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, q), "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, "exr: header: Invalid width (100000) too large"), "%s", e.msg);
    media_frame_destroy(f);
}

/* Every PNG frame and mask in shared/data decodes, each folder one size. */
Test(media_image, all_shared_data_png_frames_decode)
{
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "find '%s/../shared/data' -name '*.png' | sort", RS_SOURCE_DIR);
    FILE *ls = popen(cmd, "r");
    cr_assert_not_null(ls);
    char line[PATH_MAX];
    int files = 0;
    char last_dir[PATH_MAX] = "";
    uint32_t w = 0;
    uint32_t h = 0;
    while (fgets(line, sizeof line, ls) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        media_frame *f = read_ok(line);
        char d[PATH_MAX];
        snprintf(d, sizeof d, "%s", line);
        *strrchr(d, '/') = '\0';
        if (strcmp(d, last_dir) != 0) {
            snprintf(last_dir, sizeof last_dir, "%s", d);
            w = f->width;
            h = f->height;
        }
        cr_assert_eq(f->width, w, "%s", line);
        cr_assert_eq(f->height, h, "%s", line);
        cr_assert_eq(f->sample, MEDIA_SAMPLE_U8);
        media_frame_destroy(f);
        files++;
    }
    pclose(ls);
    cr_assert_gt(files, 300, "read %d files", files);
}
