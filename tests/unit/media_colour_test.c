/*
 * media_colour_test.c: transfer functions against published reference
 * points and round trips (signal -> linear -> signal and back), plus frame
 * conversion to linear f32 and back to 10-bit Cineon code values exactly.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "colour.h"

typedef double (*fn)(double);

static void round_trip(fn there, fn back, double lo, double hi, double tol, const char *what)
{
    for (int i = 0; i <= 10000; i++) {
        double x = lo + (hi - lo) * i / 10000.0;
        double y = back(there(x));
        cr_assert(fabs(y - x) <= tol * fmax(1.0, fabs(x)), "%s: %.17g -> %.17g", what, x, y);
    }
}

Test(media_colour, srgb)
{
    cr_assert_float_eq(colour_srgb_to_linear(0.5), 0.21404114048223255, 1e-15);
    cr_assert_float_eq(colour_srgb_to_linear(1.0), 1.0, 1e-15);
    cr_assert_float_eq(colour_linear_to_srgb(0.0031308), 0.0031308 * 12.92, 1e-15);
    round_trip(colour_srgb_to_linear, colour_linear_to_srgb, 0, 1, 1e-12, "srgb");
    round_trip(colour_linear_to_srgb, colour_srgb_to_linear, 0, 1, 1e-12, "srgb inv");
}

Test(media_colour, rec709)
{
    cr_assert_float_eq(colour_linear_to_rec709(0.018), 0.081, 1e-3);
    cr_assert_float_eq(colour_linear_to_rec709(1.0), 1.0, 1e-12);
    cr_assert_float_eq(colour_linear_to_rec709(0.18), 0.40900773, 1e-7);
    /* the BT.709 curve is not continuous at 0.018, so round trips go
     * linear -> signal -> linear */
    round_trip(colour_linear_to_rec709, colour_rec709_to_linear, 0, 1, 1e-12, "709");
}

Test(media_colour, pq)
{
    cr_assert_float_eq(colour_linear_to_pq(1.0), 1.0, 1e-12);
    /* 100 cd/m2 is PQ code 0.5081 (ITU-R BT.2100 tables) */
    cr_assert_float_eq(colour_linear_to_pq(0.01), 0.50807, 1e-4);
    cr_assert_float_eq(colour_pq_to_linear(0.0), 0.0, 1e-15);
    round_trip(colour_pq_to_linear, colour_linear_to_pq, 0.0001, 1, 1e-10, "pq");
    round_trip(colour_linear_to_pq, colour_pq_to_linear, 0.0, 1, 1e-10, "pq inv");
}

Test(media_colour, cineon)
{
    cr_assert_float_eq(colour_cineon_to_linear(685.0 / 1023.0), 1.0, 1e-12);
    cr_assert_float_eq(colour_cineon_to_linear(95.0 / 1023.0), 0.0, 1e-12);
    /* code 445 (the grey card of the Kodak convention):
     * (10^((445-685)*0.002/0.6) - black) / (1 - black) */
    double black = pow(10.0, (95.0 - 685.0) * 0.002 / 0.6);
    cr_assert_float_eq(colour_cineon_to_linear(445.0 / 1023.0),
                       (pow(10.0, -0.8) - black) / (1.0 - black), 1e-12);
    cr_assert_float_eq(colour_cineon_to_linear(445.0 / 1023.0), 0.14931, 1e-4);
    round_trip(colour_cineon_to_linear, colour_linear_to_cineon, 95.0 / 1023.0, 1.0, 1e-12,
               "cineon");
    round_trip(colour_linear_to_cineon, colour_cineon_to_linear, 0.0, 13.0, 1e-12, "cineon inv");
}

Test(media_colour, frame_cineon_10bit_round_trip_exact)
{
    media_frame *f = NULL;
    rs_error e;
    cr_assert_eq(media_frame_create(1024, 1, 4, MEDIA_SAMPLE_U16, &f, &e), RS_OK);
    f->bit_depth = 10;
    f->colour = MEDIA_COLOUR_CINEON;
    uint16_t *d = (uint16_t *)(void *)f->data;
    for (uint32_t x = 0; x < 1024; x++) {
        for (int c = 0; c < 4; c++) {
            d[x * 4 + c] = (uint16_t)(c == 3 ? 1023 - x : x);
        }
    }
    media_frame *lin = NULL;
    cr_assert_eq(colour_frame_to_linear(f, &lin, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(lin->sample, MEDIA_SAMPLE_F32);
    const float *l = (const float *)(const void *)lin->data;
    cr_assert_float_eq(l[685 * 4], 1.0f, 1e-6, "white");
    cr_assert_float_eq(l[0 * 4 + 3], 1.0f, 1e-7, "alpha is not log-decoded");
    media_frame *back = NULL;
    cr_assert_eq(
        colour_frame_from_linear(lin, MEDIA_COLOUR_CINEON, MEDIA_SAMPLE_U16, 10, &back, &e), RS_OK);
    /* code values below black (95) all decode to negative light that f32
     * still holds: every one of the 1024 codes comes back */
    cr_assert(media_frame_equal(f, back), "10-bit codes must survive linear f32");
    media_frame_destroy(back);
    media_frame_destroy(lin);
    media_frame_destroy(f);
}

Test(media_colour, frame_srgb_8bit_round_trip_exact)
{
    media_frame *f = NULL;
    rs_error e;
    cr_assert_eq(media_frame_create(256, 1, 3, MEDIA_SAMPLE_U8, &f, &e), RS_OK);
    f->colour = MEDIA_COLOUR_SRGB;
    for (uint32_t x = 0; x < 256 * 3; x++) {
        f->data[x] = (uint8_t)(x / 3);
    }
    media_frame *lin = NULL;
    media_frame *back = NULL;
    cr_assert_eq(colour_frame_to_linear(f, &lin, &e), RS_OK);
    cr_assert_eq(colour_frame_from_linear(lin, MEDIA_COLOUR_SRGB, MEDIA_SAMPLE_U8, 0, &back, &e),
                 RS_OK);
    cr_assert(media_frame_equal(f, back));
    media_frame_destroy(back);
    media_frame_destroy(lin);
    media_frame_destroy(f);
}
