/*
 * fuzz_audio.c: the WAV/BWF/AIFF reader (media/audio.c: chunk walk, then
 * libsndfile through virtual I/O, bext and iXML) on arbitrary bytes.
 * Samples are capped at 16 Mi. Seeds: tests/fuzz/corpus/audio/.
 */
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    media_audio *a = NULL;
    rs_error e;
    rs_error_clear(&e);
    rs_err rc = media_audio_decode("fuzz.wav", data, size, 16u << 20, &a, &e);
    if (rc == RS_OK) {
        size_t n = (size_t)(a->frames * a->channels);
        if (n > 0) {
            if (a->is_float) {
                volatile float last = a->fpcm[n - 1];
                (void)last;
            } else {
                volatile int32_t last = a->pcm[n - 1];
                (void)last;
            }
        }
        if (a->ixml != NULL && strlen(a->ixml) > (4u << 20)) {
            abort();
        }
        media_audio_destroy(a);
    } else if (a != NULL || e.msg[0] == '\0') {
        abort();
    }
    return 0;
}
