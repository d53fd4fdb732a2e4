/*
 * audio.h: production sound (WAV, Broadcast WAV, AIFF) through libsndfile.
 *
 * Samples are held interleaved: integer PCM (8-32 bit) as int32 scaled to
 * the full 32-bit range by libsndfile (so every PCM file round-trips bit
 * for bit), float files as float. The BWF `bext` chunk (description,
 * originator, originator reference, date, time, time reference in samples
 * since midnight, coding history) and the iXML chunk are read and written;
 * ledger labels go there. Writing is atomic. The caller owns a media_audio
 * and frees it with media_audio_destroy.
 */
#ifndef RS_MEDIA_AUDIO_H
#define RS_MEDIA_AUDIO_H

#include <stdbool.h>
#include <stdint.h>

#include "frame.h"

typedef struct media_bext {
    bool present;
    char description[257];
    char originator[33];
    char originator_reference[33];
    char origination_date[11]; /* yyyy-mm-dd */
    char origination_time[9];  /* hh:mm:ss */
    uint64_t time_reference;   /* samples since midnight */
    char coding_history[1025];
} media_bext;

typedef struct media_audio {
    media_format container; /* MEDIA_FORMAT_WAV or MEDIA_FORMAT_AIFF */
    uint32_t rate;
    uint32_t channels;
    uint64_t frames;
    uint32_t bits; /* 8, 16, 24, 32 (PCM) or 32 (float) */
    bool is_float;
    int32_t *pcm; /* frames * channels, when !is_float */
    float *fpcm;  /* frames * channels, when is_float */
    media_bext bext;
    char *ixml; /* NUL-terminated iXML document or NULL */
} media_audio;

/* Zeroed samples; bits 16/24/32 (or 32 with is_float). */
rs_err media_audio_create(media_format container, uint32_t rate, uint32_t channels, uint64_t frames,
                          uint32_t bits, bool is_float, media_audio **out, rs_error *e);
void media_audio_destroy(media_audio *a);

/* Reads a WAV/BWF/AIFF file (content decides). */
rs_err media_audio_read(const char *path, media_audio **out, rs_error *e);
/* Decodes one held in memory (for fuzzing); max_samples caps frames x channels. */
rs_err media_audio_decode(const char *name, const void *buf, size_t len, uint64_t max_samples,
                          media_audio **out, rs_error *e);
/* Writes a->container atomically (WAV gets bext when a->bext.present, and
 * iXML when set; AIFF carries neither). */
rs_err media_audio_write(const char *path, const media_audio *a, rs_error *e);
/* Sets the iXML document (copied); NULL removes it. */
rs_err media_audio_set_ixml(media_audio *a, const char *xml, rs_error *e);

#endif
