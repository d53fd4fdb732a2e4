/*
 * colour.h: transfer functions between encoded signal and linear light,
 * exact formulas from the standards, in double precision. Models train in
 * linear light on float data; these move footage there and back.
 *
 * Signal values are normalised to 0..1 (Cineon: code value / 1023).
 * sRGB: IEC 61966-2-1 piecewise curve. Rec.709: the BT.709 OETF and its
 * exact inverse (scene light). PQ: SMPTE ST 2084, linear 1.0 = 10000 cd/m2.
 * Cineon: Kodak printing-density log, reference white 685, black 95,
 * 0.002 density per code value, 0.6 negative gamma; linear 1.0 at white,
 * 0.0 at black, so to_linear(from_linear(x)) == x within rounding.
 */
#ifndef RS_MEDIA_COLOUR_H
#define RS_MEDIA_COLOUR_H

#include "frame.h"

double colour_srgb_to_linear(double v);
double colour_linear_to_srgb(double l);
double colour_rec709_to_linear(double v);
double colour_linear_to_rec709(double l);
double colour_pq_to_linear(double v);
double colour_linear_to_pq(double l);
double colour_cineon_to_linear(double v);
double colour_linear_to_cineon(double l);

/* Dispatch on an encoding; UNKNOWN and LINEAR pass values through. */
double colour_to_linear(media_colour c, double v);
double colour_from_linear(media_colour c, double l);

/*
 * A new f32 frame in linear light from f (integer samples are normalised by
 * 2^bit_depth - 1, then decoded by f->colour). Names and metadata copied.
 */
rs_err colour_frame_to_linear(const media_frame *f, media_frame **out, rs_error *e);

/*
 * A new frame of sample type s (u8/u16 scaled to 2^bits - 1, rounded and
 * clamped; f16/f32 as is) encoded as c, from a linear f32 frame. bits = 0
 * means the full width of s.
 */
rs_err colour_frame_from_linear(const media_frame *lin, media_colour c, media_sample s,
                                uint32_t bits, media_frame **out, rs_error *e);

#endif
