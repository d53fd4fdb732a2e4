/*
 * ledger_bench.c: speed of the compliance audit (bench/ledger).
 *
 * Generates N 1920x1080 RGB 8-bit source frames (gradient plus noise, so
 * they do not compress to nothing) and outputs with a moving 300x200 patch
 * altered (a removal-sized change), writes both as FORMAT (png or tiff),
 * records every frame through ledger_record_alteration (hash both files,
 * decode, diff, store the mask, append a signed event), exports the chain
 * and times ledger_audit over it with THREADS threads: verify the chain,
 * re-hash and re-decode every file, load every mask by hash, check every
 * pixel. Prints one JSON object.
 *
 * usage: ledger_bench DIR [N=240] [FORMAT=tiff] [THREADS=2]
 *        LEDGER_BENCH_REUSE=1 audits the frames an earlier run left in DIR.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "clock.h"
#include "ledger.h"
#include "store.h"

/* CPU seconds (user + system) this process has used: on a shared machine
 * wall time lies, CPU time per frame does not. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [N] [png|tiff] [THREADS]\n", argv[0]);
        return 2;
    }
    /* As `rushes audit` does: keep frame-sized buffers in the heap so each
     * frame does not pay ~3000 page faults for fresh mmap'd memory. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    const char *dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 240;
    const char *fmt = argc > 3 ? argv[3] : "tiff";
    int threads = argc > 4 ? atoi(argv[4]) : 2;
    media_format mf = strcmp(fmt, "png") == 0 ? MEDIA_FORMAT_PNG : MEDIA_FORMAT_TIFF;
    const char *ext = mf == MEDIA_FORMAT_PNG ? "png" : "tif";
    const uint32_t w = 1920, h = 1080;
    rs_error e;
    rs_error_clear(&e);
    char db[4096];
    snprintf(db, sizeof db, "%s/bench.db", dir);
    store *st = NULL;
    ledger *l = NULL;
    if (store_open(db, true, &st, &e) != RS_OK ||
        ledger_open(store_sqlite(st), dir, &l, &e) != RS_OK) {
        fprintf(stderr, "ledger_bench: %s\n", rs_error_text(&e));
        return 1;
    }
    media_frame *f = NULL;
    if (media_frame_create(w, h, 3, MEDIA_SAMPLE_U8, &f, &e) != RS_OK) {
        fprintf(stderr, "ledger_bench: %s\n", rs_error_text(&e));
        return 1;
    }
    uint32_t seed = 1;
    double t0 = now_s();
    double gen = 0, rec = 0;
    media_write_opts wo = {.format = mf};
    uint64_t changed = 0;
    /* LEDGER_BENCH_REUSE=1: audit what an earlier run left in DIR. */
    const char *reuse = getenv("LEDGER_BENCH_REUSE");
    for (int i = 0; i < n && (reuse == NULL || reuse[0] != '1'); i++) {
        double g0 = now_s();
        for (uint32_t y = 0; y < h; y++) {
            uint8_t *row = f->data + (size_t)y * w * 3;
            for (uint32_t x = 0; x < w; x++) {
                seed = seed * 1664525u + 1013904223u;
                row[3 * x] = (uint8_t)(x / 8 + i);
                row[3 * x + 1] = (uint8_t)(y / 5);
                row[3 * x + 2] = (uint8_t)((seed >> 24) & 15);
            }
        }
        char src[4200], out[4200];
        snprintf(src, sizeof src, "%s/src.%04d.%s", dir, i, ext);
        snprintf(out, sizeof out, "%s/out.%04d.%s", dir, i, ext);
        if (media_image_write(src, f, &wo, &e) != RS_OK) {
            fprintf(stderr, "ledger_bench: %s\n", rs_error_text(&e));
            return 1;
        }
        uint32_t px = 200 + (uint32_t)i * 4 % 1200, py = 300;
        for (uint32_t y = py; y < py + 200; y++) {
            for (uint32_t x = px; x < px + 300; x++) {
                uint8_t *p = f->data + ((size_t)y * w + x) * 3;
                p[0] = 90;
                p[1] = 120;
                p[2] = 200;
            }
        }
        if (media_image_write(out, f, &wo, &e) != RS_OK) {
            fprintf(stderr, "ledger_bench: %s\n", rs_error_text(&e));
            return 1;
        }
        double r0 = now_s();
        gen += r0 - g0;
        ledger_alteration a = {
            .project = "bench",
            .job_id = 1,
            .kind = "removal",
            .model = "bench",
            .frame = i,
            .source_path = src,
            .output_path = out,
        };
        ledger_alteration_result r;
        if (ledger_record_alteration(l, &a, rs_clock_wall_ms(), &r, &e) != RS_OK) {
            fprintf(stderr, "ledger_bench: %s\n", rs_error_text(&e));
            return 1;
        }
        changed += r.changed;
        rec += now_s() - r0;
    }
    (void)t0;
    char *text = NULL;
    size_t len = 0;
    ledger_key k;
    if (ledger_export(l, "bench", false, rs_clock_wall_ms(), &text, &len, &e) != RS_OK ||
        ledger_key_load(dir, "bench", false, &k, &e) != RS_OK) {
        fprintf(stderr, "ledger_bench: %s\n", rs_error_text(&e));
        return 1;
    }
    char masks[4200];
    ledger_masks_dir(dir, masks, sizeof masks);
    ledger_audit_opts o = {.masks_dir = masks, .threads = threads};
    cJSON *rep = NULL;
    double a0 = now_s();
    double c0 = cpu_s();
    if (ledger_audit(text, len, k.pk, NULL, &o, &rep, &e) != RS_OK) {
        fprintf(stderr, "ledger_bench: %s\n", rs_error_text(&e));
        return 1;
    }
    double audit_s = now_s() - a0;
    double audit_cpu = cpu_s() - c0;
    bool ok = cJSON_IsTrue(cJSON_GetObjectItem(rep, "ok"));
    /* What the audit itself saw, so a run that compared nothing cannot pass. */
    double audited = cJSON_GetNumberValue(cJSON_GetObjectItem(rep, "frames"));
    double audited_px = cJSON_GetNumberValue(cJSON_GetObjectItem(rep, "changed_pixels"));
    ok = ok && audited == n && audited_px == 60000.0 * n;
    printf("{\"frames\":%d,\"width\":%u,\"height\":%u,\"format\":\"%s\",\"threads\":%d,"
           "\"audited_frames\":%.0f,\"audited_changed_pixels\":%.0f,"
           "\"changed_pixels\":%llu,\"audit_ok\":%s,\"audit_seconds\":%.3f,"
           "\"audit_fps\":%.1f,\"audit_cpu_ms_per_frame\":%.2f,\"record_fps\":%.1f,\"generate_"
           "seconds\":%.1f}\n",
           n, w, h, fmt, threads, audited, audited_px, (unsigned long long)changed,
           ok ? "true" : "false", audit_s,
           n / audit_s, 1000.0 * audit_cpu / n, rec > 0 ? n / rec : 0.0, gen);
    ledger_key_wipe(&k);
    cJSON_Delete(rep);
    free(text);
    media_frame_destroy(f);
    ledger_close(l);
    store_close(st);
    return ok ? 0 : 1;
}
