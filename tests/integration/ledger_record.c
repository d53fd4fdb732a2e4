/*
 * ledger_record.c: test helper standing in for an altering task kind until
 * removal lands. For each frame it paints the pixels under an object mask
 * grey (a crude "removal"), writes the output, and records the alteration
 * through ledger_record_alteration into a stopped rushesd's database.
 *
 * usage: ledger_record DB DATA_DIR PROJECT JOB FRAME SRC.png OBJMASK.png OUT.png ...
 *        (FRAME SRC MASK OUT repeat)
 *
 * Also tampers with an output after the fact, keeping its other metadata
 * (labels) as they are, so a test sees the one change it made:
 *        ledger_record --poke FILE.png X Y     flips the low bit of pixel (X, Y)
 *        ledger_record --relabel FILE.png EVENT  sets rushes:ledger_event
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "store.h"

static int paint(const char *src, const char *mask, const char *out, rs_error *e)
{
    media_frame *f = NULL, *m = NULL;
    if (media_image_read(src, NULL, &f, e) != RS_OK ||
        media_image_read(mask, NULL, &m, e) != RS_OK) {
        media_frame_destroy(f);
        return 1;
    }
    for (uint32_t y = 0; y < f->height && y < m->height; y++) {
        for (uint32_t x = 0; x < f->width && x < m->width; x++) {
            if (*(uint8_t *)media_frame_at(m, x, y, 0) > 127) {
                uint8_t *px = media_frame_at(f, x, y, 0);
                for (uint32_t c = 0; c < f->channels; c++) {
                    px[c] = 128;
                }
            }
        }
    }
    media_write_opts wo = {.format = MEDIA_FORMAT_PNG};
    rs_err rc = media_image_write(out, f, &wo, e);
    media_frame_destroy(f);
    media_frame_destroy(m);
    return rc == RS_OK ? 0 : 1;
}

static int tamper(int argc, char **argv)
{
    rs_error e;
    rs_error_clear(&e);
    media_frame *f = NULL;
    if (media_image_read(argv[2], NULL, &f, &e) != RS_OK) {
        fprintf(stderr, "ledger_record: %s\n", rs_error_text(&e));
        return 1;
    }
    rs_err rc = RS_OK;
    if (strcmp(argv[1], "--poke") == 0 && argc == 5) {
        uint32_t x = (uint32_t)atol(argv[3]), y = (uint32_t)atol(argv[4]);
        if (x >= f->width || y >= f->height || f->sample != MEDIA_SAMPLE_U8) {
            fprintf(stderr, "ledger_record: --poke: (%u, %u) not in a u8 frame\n", x, y);
            media_frame_destroy(f);
            return 2;
        }
        *(uint8_t *)media_frame_at(f, x, y, 0) ^= 1;
    } else if (strcmp(argv[1], "--relabel") == 0 && argc == 4) {
        rc = media_frame_meta_set(f, LEDGER_LABEL_EVENT, argv[3], &e);
    } else {
        fprintf(stderr, "usage: %s --poke FILE X Y | --relabel FILE EVENT\n", argv[0]);
        media_frame_destroy(f);
        return 2;
    }
    media_write_opts wo = {.format = MEDIA_FORMAT_PNG};
    if (rc == RS_OK) {
        rc = media_image_write(argv[2], f, &wo, &e);
    }
    media_frame_destroy(f);
    if (rc != RS_OK) {
        fprintf(stderr, "ledger_record: %s\n", rs_error_text(&e));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strncmp(argv[1], "--", 2) == 0) {
        return tamper(argc, argv);
    }
    if (argc < 9 || (argc - 5) % 4 != 0) {
        fprintf(stderr, "usage: %s DB DATA_DIR PROJECT JOB (FRAME SRC MASK OUT)...\n", argv[0]);
        return 2;
    }
    rs_error e;
    rs_error_clear(&e);
    store *st = NULL;
    ledger *l = NULL;
    if (store_open(argv[1], false, &st, &e) != RS_OK ||
        ledger_open(store_sqlite(st), argv[2], &l, &e) != RS_OK) {
        fprintf(stderr, "ledger_record: %s\n", rs_error_text(&e));
        store_close(st);
        return 1;
    }
    int rc = 0;
    for (int i = 5; i + 3 < argc && rc == 0; i += 4) {
        if (paint(argv[i + 1], argv[i + 2], argv[i + 3], &e) != 0) {
            fprintf(stderr, "ledger_record: %s\n", rs_error_text(&e));
            rc = 1;
            break;
        }
        ledger_alteration a = {
            .project = argv[3],
            .job_id = atoll(argv[4]),
            .kind = "removal",
            .model = "test-grey-fill",
            .frame = atoll(argv[i]),
            .source_path = argv[i + 1],
            .output_path = argv[i + 3],
        };
        ledger_alteration_result r;
        if (ledger_record_alteration(l, &a, 1700000000000LL + i, &r, &e) != RS_OK) {
            fprintf(stderr, "ledger_record: %s\n", rs_error_text(&e));
            rc = 1;
            break;
        }
        printf("frame %s: %llu pixels changed, event %s\n", argv[i], (unsigned long long)r.changed,
               r.event_hash);
    }
    ledger_close(l);
    store_close(st);
    return rc;
}
