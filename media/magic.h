/*
 * magic.h: which format a file is, from its first bytes. The one place the
 * magic numbers live; media_probe, media_image_read and the CLI all ask here
 * so a file's name never decides how it is parsed.
 */
#ifndef RS_MEDIA_MAGIC_H
#define RS_MEDIA_MAGIC_H

#include <stddef.h>

typedef enum media_format {
    MEDIA_FORMAT_UNKNOWN = 0, /* offer it to libavformat's content probe */
    MEDIA_FORMAT_PNG,
    MEDIA_FORMAT_EXR,
    MEDIA_FORMAT_DPX,
    MEDIA_FORMAT_TIFF,
    MEDIA_FORMAT_WAV,  /* RIFF/WAVE, RF64, BW64 (BWF is WAV with a bext chunk) */
    MEDIA_FORMAT_AIFF, /* FORM/AIFF and AIFC */
} media_format;

/* Looks at up to len bytes of a file's start (16 are enough). */
media_format media_format_sniff(const void *head, size_t len);

/* "png", "exr", "dpx", "tiff", "wav", "aiff" or "unknown". */
const char *media_format_name(media_format f);

/* True for the still-image formats media_image_read decodes. */
int media_format_is_image(media_format f);

#endif
