/*
 * ledger_record.c: test helper standing in for an altering task kind until
 * removal lands. For each frame it paints the pixels under an object mask
 * grey (a crude "removal"), writes the output, and records the alteration
 * through ledger_record_alteration into a stopped rushesd's database.
 *
 * usage: ledger_record DB DATA_DIR PROJECT JOB FRAME SRC.png OBJMASK.png OUT.png ...
 *        (FRAME SRC MASK OUT repeat)
 */
#include <stdio.h>
#include <stdlib.h>

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

int main(int argc, char **argv)
{
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
