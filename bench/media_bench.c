/*
 * media_bench.c: timings of the media readers and writers for bench/media,
 * which runs the reference tools on the same files and prints ratios.
 *   media_bench exr-read [-t N] FILE... decode every file on N threads each
 *                                       (default MEDIA_DEFAULT_THREADS), print MB/s
 *   media_bench exr-write FILE N OUT    read FILE, write it N times to OUT
 *   media_bench video CLIP [u8|u16]     decode every frame in order, print fps
 * Output is one JSON line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "video.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const rs_error *e)
{
    fprintf(stderr, "media_bench: %s\n", rs_error_text(e));
    return 1;
}

int main(int argc, char **argv)
{
    rs_error e;
    rs_error_clear(&e);
    if (argc >= 3 && strcmp(argv[1], "exr-read") == 0) {
        media_read_opts ro = {0};
        int first = 2;
        if (argc >= 5 && strcmp(argv[2], "-t") == 0) {
            ro.threads = (uint32_t)atoi(argv[3]);
            first = 4;
        }
        double bytes = 0;
        double t0 = now();
        for (int i = first; i < argc; i++) {
            media_frame *f = NULL;
            if (media_image_read(argv[i], &ro, &f, &e) != RS_OK) {
                return fail(&e);
            }
            bytes += (double)media_frame_bytes(f);
            media_frame_destroy(f);
        }
        double dt = now() - t0;
        printf("{\"files\":%d,\"seconds\":%.4f,\"pixel_mb_s\":%.1f}\n", argc - first, dt,
               bytes / dt / 1e6);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "exr-write") == 0) {
        media_frame *f = NULL;
        if (media_image_read(argv[2], NULL, &f, &e) != RS_OK) {
            return fail(&e);
        }
        int n = atoi(argv[3]);
        media_write_opts o = {.format = MEDIA_FORMAT_EXR, .exr_compression = MEDIA_EXR_ZIP};
        double t0 = now();
        for (int i = 0; i < n; i++) {
            if (media_image_write(argv[4], f, &o, &e) != RS_OK) {
                return fail(&e);
            }
        }
        double dt = now() - t0;
        printf("{\"files\":%d,\"seconds\":%.4f,\"pixel_mb_s\":%.1f}\n", n, dt,
               (double)media_frame_bytes(f) * n / dt / 1e6);
        media_frame_destroy(f);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "video") == 0) {
        media_sample s =
            argc > 3 && strcmp(argv[3], "u8") == 0 ? MEDIA_SAMPLE_U8 : MEDIA_SAMPLE_U16;
        media_video *v = NULL;
        if (media_video_open(argv[2], &v, &e) != RS_OK) {
            return fail(&e);
        }
        int64_t n = media_video_get_info(v)->frames;
        double t0 = now();
        for (int64_t i = 0; i < n; i++) {
            media_frame *f = NULL;
            if (media_video_read(v, i, s, &f, &e) != RS_OK) {
                return fail(&e);
            }
            media_frame_destroy(f);
        }
        double dt = now() - t0;
        printf("{\"frames\":%lld,\"seconds\":%.4f,\"fps\":%.1f}\n", (long long)n, dt,
               (double)n / dt);
        media_video_close(v);
        return 0;
    }
    fprintf(stderr,
            "usage: media_bench exr-read [-t N] FILE... | exr-write FILE N OUT | video CLIP "
            "[u8|u16]\n");
    return 2;
}
