/*
 * fuzz_exr.c: the EXR reader (media/exr.c) on arbitrary bytes from memory.
 * The decoded frame is capped at 16 MiB so a header that claims a huge
 * image is refused, not allocated. Any result is fine; a crash, leak or
 * sanitizer report is the bug. Seeds: tests/fuzz/corpus/exr/.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "media_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    media_frame *f = NULL;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = media_exr_decode("fuzz.exr", data, size, 16u << 20, 2, &f, &e);
    if (rc == RS_OK) {
        /* the frame must be as big as it says: touch its last byte */
        volatile uint8_t last = f->data[media_frame_bytes(f) - 1];
        (void)last;
        if (f->nmeta > 0 && media_frame_meta_get(f, f->meta[0].key) == NULL) {
            abort();
        }
        media_frame_destroy(f);
    } else if (f != NULL || e.msg[0] == '\0' || strchr(e.msg, '\n') != NULL) {
        abort(); /* failures leave *out alone and say one line */
    }
    return 0;
}
