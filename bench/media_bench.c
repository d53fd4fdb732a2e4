/*
 * media_bench.c: timings of the media readers and writers for bench/media,
 * which runs the reference tools on the same files and prints ratios.
 *   media_bench exr-read [-t N] FILE... decode every file on N threads each
 *                                       (default MEDIA_DEFAULT_THREADS), print MB/s
 *   media_bench exr-write [-t N] FILE COUNT OUT
 *                                       read FILE, write it COUNT times to OUT
 *                                       (ZIP) compressing on N threads; also
 *                                       prints CPU seconds and the share the
 *                                       atomic commit (fsync, rename, folder
 *                                       fsync) takes of a file that size
 *   media_bench video CLIP [u8|u16]     decode every frame in order, print fps
 * Output is one JSON line.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "fs.h"
#include "video.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Seconds per file that the atomic commit adds: writing len bytes through
 * rs_fs_write_atomic (temporary, fsync, rename, folder fsync) less a plain
 * open/write/close of the same bytes, over n rounds. */
static double commit_seconds(const char *out, const void *buf, size_t len, int n, rs_error *e)
{
    char plain[4096];
    snprintf(plain, sizeof plain, "%s.plain", out);
    double atomic_s = 0;
    double plain_s = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now();
        if (rs_fs_write_atomic(out, buf, len, e) != RS_OK) {
            return -1;
        }
        double t1 = now();
        int fd = open(plain, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
            if (fd >= 0) {
                close(fd);
            }
            rs_error_set(e, RS_EIO, "%s: cannot write", plain);
            return -1;
        }
        close(fd);
        double t2 = now();
        atomic_s += t1 - t0;
        plain_s += t2 - t1;
    }
    unlink(plain);
    return (atomic_s - plain_s) / n;
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
    if (argc >= 5 && strcmp(argv[1], "exr-write") == 0) {
        media_write_opts o = {.format = MEDIA_FORMAT_EXR, .exr_compression = MEDIA_EXR_ZIP};
        int first = 2;
        if (argc == 7 && strcmp(argv[2], "-t") == 0) {
            o.exr_threads = (uint32_t)atoi(argv[3]);
            first = 4;
        } else if (argc != 5) {
            goto usage;
        }
        media_frame *f = NULL;
        if (media_image_read(argv[first], NULL, &f, &e) != RS_OK) {
            return fail(&e);
        }
        int n = atoi(argv[first + 1]);
        const char *out = argv[first + 2];
        double c0 = cpu_now();
        double t0 = now();
        for (int i = 0; i < n; i++) {
            if (media_image_write(out, f, &o, &e) != RS_OK) {
                return fail(&e);
            }
        }
        double dt = now() - t0;
        double cpu = cpu_now() - c0;
        char *bytes = NULL;
        size_t len = 0;
        if (rs_fs_read_all(out, (size_t)1 << 31, &bytes, &len, &e) != RS_OK) {
            return fail(&e);
        }
        double commit = commit_seconds(out, bytes, len, n < 4 ? n : 4, &e);
        free(bytes);
        if (commit < 0) {
            return fail(&e);
        }
        printf("{\"files\":%d,\"threads\":%u,\"seconds\":%.4f,\"cpu_seconds\":%.4f,"
               "\"pixel_mb_s\":%.1f,\"file_bytes\":%zu,\"commit_s_per_file\":%.4f,"
               "\"commit_share\":%.3f}\n",
               n, o.exr_threads, dt, cpu, (double)media_frame_bytes(f) * n / dt / 1e6, len, commit,
               commit * n / dt);
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
usage:
    fprintf(stderr, "usage: media_bench exr-read [-t N] FILE... | exr-write [-t N] FILE COUNT OUT "
                    "| video CLIP [u8|u16]\n");
    return 2;
}
