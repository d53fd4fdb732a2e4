/*
 * colour.c: transfer functions and frame conversion. See colour.h.
 */
#include "colour.h"

#include <math.h>
#include <string.h>

double colour_srgb_to_linear(double v)
{
    if (v <= 0.04045) {
        return v / 12.92;
    }
    return pow((v + 0.055) / 1.055, 2.4);
}

double colour_linear_to_srgb(double l)
{
    if (l <= 0.0031308) {
        return l * 12.92;
    }
    return 1.055 * pow(l, 1.0 / 2.4) - 0.055;
}

double colour_rec709_to_linear(double v)
{
    if (v < 0.081) {
        return v / 4.5;
    }
    return pow((v + 0.099) / 1.099, 1.0 / 0.45);
}

double colour_linear_to_rec709(double l)
{
    if (l < 0.018) {
        return l * 4.5;
    }
    return 1.099 * pow(l, 0.45) - 0.099;
}

#define PQ_M1 (2610.0 / 16384.0)
#define PQ_M2 (2523.0 / 4096.0 * 128.0)
#define PQ_C1 (3424.0 / 4096.0)
#define PQ_C2 (2413.0 / 4096.0 * 32.0)
#define PQ_C3 (2392.0 / 4096.0 * 32.0)

double colour_pq_to_linear(double v)
{
    if (v <= 0) {
        return 0;
    }
    double p = pow(v, 1.0 / PQ_M2);
    double num = p - PQ_C1;
    if (num < 0) {
        num = 0;
    }
    return pow(num / (PQ_C2 - PQ_C3 * p), 1.0 / PQ_M1);
}

double colour_linear_to_pq(double l)
{
    if (l <= 0) {
        return pow(PQ_C1, PQ_M2); /* the curve's value at zero light */
    }
    double p = pow(l, PQ_M1);
    return pow((PQ_C1 + PQ_C2 * p) / (1.0 + PQ_C3 * p), PQ_M2);
}

#define CIN_WHITE 685.0
#define CIN_BLACK 95.0
#define CIN_STEP (0.002 / 0.6) /* log10 exposure per code value */

static double cineon_black(void)
{
    return pow(10.0, (CIN_BLACK - CIN_WHITE) * CIN_STEP);
}

double colour_cineon_to_linear(double v)
{
    double b = cineon_black();
    return (pow(10.0, (v * 1023.0 - CIN_WHITE) * CIN_STEP) - b) / (1.0 - b);
}

double colour_linear_to_cineon(double l)
{
    double b = cineon_black();
    double x = l * (1.0 - b) + b;
    if (x <= 0) {
        return 0; /* below the film's range: code value 0 */
    }
    return (CIN_WHITE + log10(x) / CIN_STEP) / 1023.0;
}

double colour_to_linear(media_colour c, double v)
{
    switch (c) {
    case MEDIA_COLOUR_SRGB:
        return colour_srgb_to_linear(v);
    case MEDIA_COLOUR_REC709:
        return colour_rec709_to_linear(v);
    case MEDIA_COLOUR_PQ:
        return colour_pq_to_linear(v);
    case MEDIA_COLOUR_CINEON:
        return colour_cineon_to_linear(v);
    default:
        return v;
    }
}

double colour_from_linear(media_colour c, double l)
{
    switch (c) {
    case MEDIA_COLOUR_SRGB:
        return colour_linear_to_srgb(l);
    case MEDIA_COLOUR_REC709:
        return colour_linear_to_rec709(l);
    case MEDIA_COLOUR_PQ:
        return colour_linear_to_pq(l);
    case MEDIA_COLOUR_CINEON:
        return colour_linear_to_cineon(l);
    default:
        return l;
    }
}

/* Alpha and non-colour channels are not transfer-encoded. */
static bool is_colour_channel(const char *name)
{
    return strcmp(name, "R") == 0 || strcmp(name, "G") == 0 || strcmp(name, "B") == 0 ||
           strcmp(name, "Y") == 0;
}

static double sample_get(const media_frame *f, size_t i)
{
    switch (f->sample) {
    case MEDIA_SAMPLE_U8:
        return f->data[i];
    case MEDIA_SAMPLE_U16:
        return ((const uint16_t *)(const void *)f->data)[i];
    case MEDIA_SAMPLE_F16:
        return media_half_to_float(((const uint16_t *)(const void *)f->data)[i]);
    case MEDIA_SAMPLE_F32:
        return ((const float *)(const void *)f->data)[i];
    }
    return 0;
}

rs_err colour_frame_to_linear(const media_frame *f, media_frame **out, rs_error *e)
{
    media_frame *g = NULL;
    rs_err rc = media_frame_create(f->width, f->height, f->channels, MEDIA_SAMPLE_F32, &g, e);
    if (rc != RS_OK) {
        return rc;
    }
    memcpy(g->names, f->names, sizeof g->names);
    g->colour = MEDIA_COLOUR_LINEAR;
    rc = media_frame_meta_copy(g, f, e);
    if (rc != RS_OK) {
        media_frame_destroy(g);
        return rc;
    }
    bool integer = f->sample == MEDIA_SAMPLE_U8 || f->sample == MEDIA_SAMPLE_U16;
    uint32_t bits = f->bit_depth != 0 ? f->bit_depth : (uint32_t)media_sample_size(f->sample) * 8;
    double scale = integer ? 1.0 / (double)((1u << bits) - 1) : 1.0;
    float *dst = (float *)(void *)g->data;
    size_t npx = (size_t)f->width * f->height;
    for (uint32_t c = 0; c < f->channels; c++) {
        bool enc = is_colour_channel(f->names[c]);
        for (size_t p = 0; p < npx; p++) {
            size_t i = p * f->channels + c;
            double v = sample_get(f, i) * scale;
            dst[i] = (float)(enc ? colour_to_linear(f->colour, v) : v);
        }
    }
    *out = g;
    return RS_OK;
}

rs_err colour_frame_from_linear(const media_frame *lin, media_colour c, media_sample s,
                                uint32_t bits, media_frame **out, rs_error *e)
{
    if (lin->sample != MEDIA_SAMPLE_F32) {
        return rs_error_set(e, RS_EINVAL, "colour: linear frame must be f32, not %s",
                            media_sample_name(lin->sample));
    }
    media_frame *g = NULL;
    rs_err rc = media_frame_create(lin->width, lin->height, lin->channels, s, &g, e);
    if (rc != RS_OK) {
        return rc;
    }
    memcpy(g->names, lin->names, sizeof g->names);
    g->colour = c;
    rc = media_frame_meta_copy(g, lin, e);
    if (rc != RS_OK) {
        media_frame_destroy(g);
        return rc;
    }
    if (bits == 0 || bits > media_sample_size(s) * 8) {
        bits = (uint32_t)media_sample_size(s) * 8;
    }
    g->bit_depth = bits;
    double maxv = (double)((1u << (bits < 32 ? bits : 31)) - 1);
    const float *src = (const float *)(const void *)lin->data;
    size_t npx = (size_t)lin->width * lin->height;
    for (uint32_t ch = 0; ch < lin->channels; ch++) {
        bool enc = is_colour_channel(lin->names[ch]);
        for (size_t p = 0; p < npx; p++) {
            size_t i = p * lin->channels + ch;
            double v = enc ? colour_from_linear(c, src[i]) : src[i];
            switch (s) {
            case MEDIA_SAMPLE_U8:
            case MEDIA_SAMPLE_U16: {
                double q = floor(v * maxv + 0.5);
                q = q < 0 ? 0 : q > maxv ? maxv : q;
                if (s == MEDIA_SAMPLE_U8) {
                    g->data[i] = (uint8_t)q;
                } else {
                    ((uint16_t *)(void *)g->data)[i] = (uint16_t)q;
                }
                break;
            }
            case MEDIA_SAMPLE_F16:
                ((uint16_t *)(void *)g->data)[i] = media_float_to_half((float)v);
                break;
            case MEDIA_SAMPLE_F32:
                ((float *)(void *)g->data)[i] = (float)v;
                break;
            }
        }
    }
    *out = g;
    return RS_OK;
}
