/*
 * propagate.h: stage 1 of removal — long-range, motion-compensated
 * propagation of visible pixels into each frame's hole, with a per-pixel
 * confidence and a spatial fill for what no frame reveals.
 *
 * Pixel layout everywhere in tasks/removal: RGB frames are float,
 * INTERLEAVED (r, g, b per pixel), rows top to bottom, no padding, values
 * 0..1 (any transfer, but the same one for every frame of a clip: the
 * callers pass the source's code values scaled to 0..1). Masks are uint8,
 * one byte per pixel, 255 = hole (anything >= 128 counts as hole, below as
 * visible). Nothing here keeps a pointer to caller memory after returning.
 *
 * Method, per target frame t: a global homography from t to every frame s
 * with 0 < |s - t| <= range, fitted with ORB features matched outside both
 * masks and RANSAC: directly for gaps up to 4 and every 4th gap, composed
 * from two fits for the other gaps and wherever a direct fit fails; a
 * neighbour pair too smooth for features is fitted to dense DIS flow. Each hole pixel of t is mapped into s; where it lands
 * on a visible pixel of s it yields a candidate, corrected by the colour
 * offset measured on a ring just outside t's hole. Candidates come nearest
 * in time first; the value is the mean of those agreeing with their median
 * (within agree_tol); the confidence combines how many agree, how far in
 * time they are and how well the warp matched t on the ring. Pixels with no
 * candidate get confidence 0 and the spatial fill (fill.h).
 */
#ifndef RS_REMOVAL_PROPAGATE_H
#define RS_REMOVAL_PROPAGATE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* A clip as stage 1 reads it; the caller owns every buffer. */
typedef struct removal_clip {
    uint32_t width;
    uint32_t height;
    uint32_t nframes;
    const float *const *rgb;    /* nframes pointers to width*height*3 floats */
    const uint8_t *const *mask; /* nframes pointers to width*height bytes */
} removal_clip;

typedef struct removal_stage1_opts {
    uint32_t range;          /* frames up to +-range are searched; 0 = 20 */
    uint32_t min_agree;      /* candidates that must agree for full trust; 0 = 2 */
    uint32_t max_candidates; /* nearest-first candidates kept per pixel; 0 = 8 */
    float agree_tol;         /* max channel distance to the median; 0 = 0.05 */
    float max_ring_err;      /* reject a source frame whose warp misses t's ring by
                                more than this mean abs error; 0 = 0.05 */
    uint32_t features;       /* ORB features per frame; 0 = 600 */
    uint32_t threads;        /* worker threads for per-frame work; 0 = 2 */
} removal_stage1_opts;

/* Default options (the values the 0s above stand for). */
removal_stage1_opts removal_stage1_opts_default(void);

/*
 * Outputs for one target frame; every buffer is allocated by the caller
 * (width*height*3 floats for RGB, width*height floats for confidence) and
 * may be NULL when not wanted. Outside the hole every RGB output equals
 * the source bit for bit and confidence is 1.
 */
typedef struct removal_fill_out {
    float *propagated; /* agreeing candidates' mean; spatial fill where none */
    float *spatial;    /* spatial fill only (fill.h) */
    float *confidence; /* 0..1 per pixel; 0 where no frame reveals it */
    float *blend;      /* inverse-variance mix of propagated and spatial
                          (spatial error from the texture around the hole,
                          propagation's from its warp error and agreement):
                          stage 1's own answer */
} removal_fill_out;

/* Per-clip state: features and homographies, computed once. */
typedef struct removal_stage1_state removal_stage1_state;

/*
 * Estimates motion for the clip (features per frame, homographies for every
 * pair within range). The clip's buffers must stay valid and unchanged
 * until removal_stage1_destroy. RS_EINVAL for a zero size, a missing
 * buffer or nframes == 0.
 */
rs_err removal_stage1_create(const removal_clip *clip, const removal_stage1_opts *o,
                             removal_stage1_state **out, rs_error *e);
void removal_stage1_destroy(removal_stage1_state *s);

/* Fills target frame t into out (see removal_fill_out). Thread-safe for
 * distinct t on one removal_stage1_state. */
rs_err removal_stage1_frame(removal_stage1_state *s, uint32_t t, const removal_fill_out *out,
                            rs_error *e);

/*
 * The 3x3 homography (row-major, maps pixel (x, y) of frame `from` to frame
 * `to`) estimated by create, and its quality 0..1 (RANSAC inlier share; 0
 * when no fit). RS_ENOENT when |from - to| > range or no fit was possible.
 */
rs_err removal_stage1_homography(const removal_stage1_state *s, uint32_t from, uint32_t to,
                                 double h[9], float *quality, rs_error *e);

/* One call for the whole clip: create, every frame into outs[t], destroy. */
rs_err removal_stage1(const removal_clip *clip, const removal_stage1_opts *o,
                      const removal_fill_out *outs, rs_error *e);

/*
 * Homography mapping points of image a to image b (RGB as above, masks may
 * be NULL), fitted on features outside the masks. Exposed for tests and
 * for callers that need one pair. quality as above. RS_ENOENT when fewer
 * than 12 inliers are found.
 */
rs_err removal_homography_estimate(const float *a, const uint8_t *mask_a, const float *b,
                                   const uint8_t *mask_b, uint32_t width, uint32_t height,
                                   uint32_t features, double h[9], float *quality, rs_error *e);

#endif
