/*
 * magic.c: format detection by content. See magic.h.
 */
#include "magic.h"

#include <string.h>

media_format media_format_sniff(const void *head, size_t len)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const unsigned char exr_sig[4] = {0x76, 0x2f, 0x31, 0x01};
    const unsigned char *b = head;
    if (b == NULL) {
        return MEDIA_FORMAT_UNKNOWN;
    }
    if (len >= 8 && memcmp(b, png_sig, 8) == 0) {
        return MEDIA_FORMAT_PNG;
    }
    if (len >= 4 && memcmp(b, exr_sig, 4) == 0) {
        return MEDIA_FORMAT_EXR;
    }
    if (len >= 4 && (memcmp(b, "SDPX", 4) == 0 || memcmp(b, "XPDS", 4) == 0)) {
        return MEDIA_FORMAT_DPX;
    }
    if (len >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0 ||
                     memcmp(b, "II+\0", 4) == 0 || memcmp(b, "MM\0+", 4) == 0)) {
        return MEDIA_FORMAT_TIFF;
    }
    if (len >= 12 &&
        (memcmp(b, "RIFF", 4) == 0 || memcmp(b, "RF64", 4) == 0 || memcmp(b, "BW64", 4) == 0) &&
        memcmp(b + 8, "WAVE", 4) == 0) {
        return MEDIA_FORMAT_WAV;
    }
    if (len >= 12 && memcmp(b, "FORM", 4) == 0 &&
        (memcmp(b + 8, "AIFF", 4) == 0 || memcmp(b + 8, "AIFC", 4) == 0)) {
        return MEDIA_FORMAT_AIFF;
    }
    return MEDIA_FORMAT_UNKNOWN;
}

const char *media_format_name(media_format f)
{
    switch (f) {
    case MEDIA_FORMAT_PNG:
        return "png";
    case MEDIA_FORMAT_EXR:
        return "exr";
    case MEDIA_FORMAT_DPX:
        return "dpx";
    case MEDIA_FORMAT_TIFF:
        return "tiff";
    case MEDIA_FORMAT_WAV:
        return "wav";
    case MEDIA_FORMAT_AIFF:
        return "aiff";
    case MEDIA_FORMAT_UNKNOWN:
        break;
    }
    return "unknown";
}

int media_format_is_image(media_format f)
{
    return f == MEDIA_FORMAT_PNG || f == MEDIA_FORMAT_EXR || f == MEDIA_FORMAT_DPX ||
           f == MEDIA_FORMAT_TIFF;
}
