/*
 * media_audio_test.c: WAV/AIFF round trips bit for bit at 16/24/32-bit PCM
 * and float; BWF bext fields and iXML kept; a file made by ffmpeg read;
 * truncated and wrong-magic files refused with a message naming the file.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"

static char dir[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_media_audio.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(media_audio, .init = setup, .fini = teardown);

static media_audio *tone(media_format c, uint32_t bits, bool fl, uint32_t ch, uint64_t frames)
{
    media_audio *a = NULL;
    rs_error e;
    cr_assert_eq(media_audio_create(c, 48000, ch, frames, bits, fl, &a, &e), RS_OK, "%s", e.msg);
    uint32_t x = 7;
    for (uint64_t i = 0; i < frames * ch; i++) {
        x = x * 1664525u + 1013904223u;
        if (fl) {
            a->fpcm[i] = (float)((int32_t)x) / 2147483648.0f;
        } else {
            /* libsndfile holds PCM left-justified in 32 bits */
            a->pcm[i] = (int32_t)(x & ~((1u << (32 - bits)) - 1u));
            if (bits == 32) {
                a->pcm[i] = (int32_t)x;
            }
        }
    }
    return a;
}

static void same_samples(const media_audio *a, const media_audio *b)
{
    cr_assert_eq(a->frames, b->frames);
    cr_assert_eq(a->channels, b->channels);
    cr_assert_eq(a->rate, b->rate);
    cr_assert_eq(a->bits, b->bits);
    cr_assert_eq(a->is_float, b->is_float);
    size_t n = (size_t)(a->frames * a->channels);
    if (a->is_float) {
        cr_assert_eq(memcmp(a->fpcm, b->fpcm, n * sizeof(float)), 0);
    } else {
        cr_assert_eq(memcmp(a->pcm, b->pcm, n * sizeof(int32_t)), 0);
    }
}

Test(media_audio, round_trips_bit_exact)
{
    const struct {
        media_format c;
        uint32_t bits;
        bool fl;
    } cases[] = {
        {MEDIA_FORMAT_WAV, 16, false},  {MEDIA_FORMAT_WAV, 24, false},
        {MEDIA_FORMAT_WAV, 32, false},  {MEDIA_FORMAT_WAV, 32, true},
        {MEDIA_FORMAT_AIFF, 16, false}, {MEDIA_FORMAT_AIFF, 24, false},
        {MEDIA_FORMAT_AIFF, 32, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        media_audio *a = tone(cases[i].c, cases[i].bits, cases[i].fl, 2, 4801);
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/a%zu.%s", dir, i, cases[i].c == MEDIA_FORMAT_WAV ? "wav" : "aif");
        rs_error e;
        cr_assert_eq(media_audio_write(p, a, &e), RS_OK, "%s", e.msg);
        media_audio *b = NULL;
        cr_assert_eq(media_audio_read(p, &b, &e), RS_OK, "%s", e.msg);
        cr_assert_eq(b->container, cases[i].c);
        same_samples(a, b);
        media_audio_destroy(a);
        media_audio_destroy(b);
    }
}

Test(media_audio, bwf_bext_and_ixml_kept)
{
    media_audio *a = tone(MEDIA_FORMAT_WAV, 24, false, 1, 1000);
    a->bext.present = true;
    snprintf(a->bext.description, sizeof a->bext.description, "ADR take 3, altered by rushes");
    snprintf(a->bext.originator, sizeof a->bext.originator, "Rushes");
    snprintf(a->bext.originator_reference, sizeof a->bext.originator_reference, "job-42");
    snprintf(a->bext.origination_date, sizeof a->bext.origination_date, "2026-11-25");
    snprintf(a->bext.origination_time, sizeof a->bext.origination_time, "06:30:00");
    a->bext.time_reference = 48000ull * 3600 * 10 + 17; /* 10:00:00 + 17 samples */
    const char *xml = "<?xml version=\"1.0\"?><BWFXML><PROJECT>Night</PROJECT>"
                      "<SCENE>12A</SCENE><TAKE>3</TAKE></BWFXML>";
    rs_error e;
    cr_assert_eq(media_audio_set_ixml(a, xml, &e), RS_OK);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/bwf.wav", dir);
    cr_assert_eq(media_audio_write(p, a, &e), RS_OK, "%s", e.msg);
    media_audio *b = NULL;
    cr_assert_eq(media_audio_read(p, &b, &e), RS_OK, "%s", e.msg);
    same_samples(a, b);
    cr_assert(b->bext.present);
    cr_assert_str_eq(b->bext.description, a->bext.description);
    cr_assert_str_eq(b->bext.originator, "Rushes");
    cr_assert_str_eq(b->bext.originator_reference, "job-42");
    cr_assert_str_eq(b->bext.origination_date, "2026-11-25");
    cr_assert_str_eq(b->bext.origination_time, "06:30:00");
    cr_assert_eq(b->bext.time_reference, a->bext.time_reference);
    cr_assert_not_null(b->ixml);
    cr_assert_str_eq(b->ixml, xml);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "grep -c bext '%s' >/dev/null && grep -c iXML '%s' >/dev/null", p, p);
    cr_assert_eq(system(cmd), 0, "chunks present in the file");
    media_audio_destroy(a);
    media_audio_destroy(b);
}

Test(media_audio, ffmpeg_wav_and_errors)
{
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ffmpeg -nostdin -loglevel error -y -f lavfi -i sine=f=440:d=0.5 -ac 2 "
             "-c:a pcm_s24le f.wav && head -c 2000 f.wav > cut.wav && echo 'RIFF....not' > "
             "bad.wav",
             dir);
    cr_assert_eq(system(cmd), 0);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/f.wav", dir);
    media_audio *a = NULL;
    rs_error e;
    cr_assert_eq(media_audio_read(p, &a, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(a->rate, 44100);
    cr_assert_eq(a->bits, 24);
    cr_assert_eq(a->frames, 22050);
    media_audio_destroy(a);
    a = NULL;
    snprintf(p, sizeof p, "%s/cut.wav", dir);
    rs_err rc = media_audio_read(p, &a, &e);
    cr_assert_eq(rc, RS_EFORMAT, "truncated: %d %s", rc, e.msg);
    cr_assert_not_null(strstr(e.msg, p));
    cr_assert_not_null(strstr(e.msg, "truncated"), "%s", e.msg);
    snprintf(p, sizeof p, "%s/bad.wav", dir);
    cr_assert_eq(media_audio_read(p, &a, &e), RS_EFORMAT);
    cr_assert_not_null(strstr(e.msg, "wrong magic"), "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, p));
}
