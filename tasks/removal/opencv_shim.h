/*
 * opencv_shim.h: the thin C face of the few OpenCV calls stage 1 uses
 * (ORB features, descriptor matching, RANSAC homography). Every C++
 * exception stops here and becomes a return code; nothing else in Rushes
 * includes an OpenCV header. Images are 8-bit grey, width*height bytes.
 */
#ifndef RS_REMOVAL_OPENCV_SHIM_H
#define RS_REMOVAL_OPENCV_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_cv_features rs_cv_features;

/*
 * ORB keypoints and descriptors of grey, limited to pixels where allow is
 * nonzero (allow may be NULL). Returns NULL on failure (no memory, OpenCV
 * error); a frame with no features gives a valid, empty set.
 */
rs_cv_features *rs_cv_features_detect(const uint8_t *grey, const uint8_t *allow,
                                      uint32_t width, uint32_t height, uint32_t max_features);
void rs_cv_features_destroy(rs_cv_features *f);
uint32_t rs_cv_features_count(const rs_cv_features *f);

/*
 * Matches a against b (ratio test) and fits a homography mapping a's
 * points to b's with RANSAC (threshold ransac_px). Returns the number of
 * inliers (0 when no fit) and writes h (row-major) and the inlier share of
 * the ratio-test matches into *share.
 */
uint32_t rs_cv_homography(const rs_cv_features *a, const rs_cv_features *b, double ransac_px,
                          double h[9], float *share);

/*
 * Dense DIS optical flow from grey image a to b, sampled every `step` px
 * where allow_a is nonzero (may be NULL), and a RANSAC homography fitted
 * to those samples: the fallback for frame pairs too smooth for features.
 * Returns the inlier count (0 when no fit), h (row-major) and the inlier
 * share of the samples in *share.
 */
uint32_t rs_cv_flow_homography(const uint8_t *a, const uint8_t *b, const uint8_t *allow_a,
                               uint32_t width, uint32_t height, uint32_t step, double ransac_px,
                               double h[9], float *share);

#ifdef __cplusplus
}
#endif

#endif
