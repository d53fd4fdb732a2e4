/*
 * hash_bench.c: MB/s of rs_hash_file (dispatched XXH3, 2 MiB blocks) against
 * `xxhsum -H3` on the same files, both reading from page cache.
 *
 * usage: hash_bench [FILE...]   (default: one 256 MiB file of pseudo-random
 * bytes in $TMPDIR, removed afterwards). Each side runs 5 times; the best
 * run counts, so page-cache warm-up and scheduler noise do not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"

#define RUNS 5

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int make_file(char *path, size_t len, size_t bytes)
{
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    snprintf(path, len, "%s/rs_hash_bench.XXXXXX", tmp);
    int fd = mkstemp(path);
    if (fd < 0) {
        return -1;
    }
    size_t block = 1 << 20;
    unsigned char *buf = malloc(block);
    if (buf == NULL) {
        close(fd);
        return -1;
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < block; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (size_t done = 0; done < bytes; done += block) {
        if (write(fd, buf, block) != (ssize_t)block) {
            free(buf);
            close(fd);
            return -1;
        }
    }
    free(buf);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    char tmpfile[4096] = {0};
    const char *const *files = (const char *const *)(argv + 1);
    int nfiles = argc - 1;
    const char *one[1];
    if (nfiles == 0) {
        if (make_file(tmpfile, sizeof tmpfile, 256u << 20) != 0) {
            fprintf(stderr, "hash_bench: cannot create a temporary file\n");
            return 1;
        }
        one[0] = tmpfile;
        files = one;
        nfiles = 1;
    }
    double bytes = 0;
    for (int i = 0; i < nfiles; i++) {
        struct stat st;
        if (stat(files[i], &st) != 0) {
            fprintf(stderr, "hash_bench: %s: cannot stat\n", files[i]);
            return 1;
        }
        bytes += (double)st.st_size;
    }
    /* xxhsum takes every file in one process, as a user would run it. */
    size_t cmdlen = 64;
    for (int i = 0; i < nfiles; i++) {
        cmdlen += strlen(files[i]) + 3;
    }
    char *cmd = malloc(cmdlen);
    if (cmd == NULL) {
        return 1;
    }
    strcpy(cmd, "xxhsum -H3");
    for (int i = 0; i < nfiles; i++) {
        strcat(cmd, " '");
        strcat(cmd, files[i]);
        strcat(cmd, "'");
    }
    strcat(cmd, " >/dev/null 2>&1");

    double best_ours = 1e30;
    double best_ref = 1e30;
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_s();
        for (int i = 0; i < nfiles; i++) {
            rs_file_hash h;
            rs_error e;
            if (rs_hash_file(files[i], false, &h, &e) != RS_OK) {
                fprintf(stderr, "hash_bench: %s\n", e.msg);
                return 1;
            }
        }
        double t1 = now_s();
        if (system(cmd) != 0) {
            fprintf(stderr, "hash_bench: xxhsum failed\n");
            return 1;
        }
        double t2 = now_s();
        best_ours = t1 - t0 < best_ours ? t1 - t0 : best_ours;
        best_ref = t2 - t1 < best_ref ? t2 - t1 : best_ref;
    }
    double ours = bytes / best_ours / 1e6;
    double ref = bytes / best_ref / 1e6;
    printf("files %d, %.1f MB, best of %d\n", nfiles, bytes / 1e6, RUNS);
    printf("rs_hash_file (XXH3 dispatch, %u KiB blocks): %8.0f MB/s\n", RS_HASH_BLOCK / 1024,
           ours);
    printf("xxhsum -H3 (incl. process start):          %8.0f MB/s\n", ref);
    printf("ratio rushes / xxhsum: %.2fx (target >= 0.80x)\n", ours / ref);
    free(cmd);
    if (tmpfile[0] != '\0') {
        unlink(tmpfile);
    }
    return 0;
}
