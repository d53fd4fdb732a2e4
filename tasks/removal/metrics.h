/*
 * metrics.h: scores for removal, inside the mask only. Layout as
 * propagate.h (interleaved RGB float 0..1, mask >= 128 = scored pixel).
 *
 * - PSNR: 10 log10(1 / MSE) over every channel of every masked pixel
 *   (peak 1.0). Across a clip the squared errors are pooled, not the
 *   per-frame PSNRs averaged.
 * - SSIM: Wang et al. 2004 on each channel with an 11x11 Gaussian window
 *   (sigma 1.5, C1 = 0.01^2, C2 = 0.03^2, window clipped at the frame
 *   edge), the SSIM map averaged over masked pixels and channels.
 * - Flicker: for consecutive frames t-1, t, the mean over pixels masked in
 *   either frame and over channels of |(out_t - out_t-1) - (truth_t -
 *   truth_t-1)|: how much more (or less) the output changes from frame to
 *   frame than the truth does. 0 is perfect.
 */
#ifndef RS_REMOVAL_METRICS_H
#define RS_REMOVAL_METRICS_H

#include <stdint.h>

typedef struct removal_metrics {
    double sse;         /* pooled squared error */
    uint64_t sse_n;     /* samples in sse */
    double ssim_sum;
    uint64_t ssim_n;
    double flicker_sum;
    uint64_t flicker_n;
} removal_metrics;

/* In-mask MSE of one frame, and the number of samples (pixels * 3). */
double removal_mse_masked(const float *out, const float *truth, const uint8_t *mask,
                          uint32_t width, uint32_t height, uint64_t *samples);
/* PSNR from an MSE (peak 1.0); 99 dB caps a zero error. */
double removal_psnr_from_mse(double mse);
/* In-mask PSNR of one frame; 99 when identical; NAN when mask is empty. */
double removal_psnr_masked(const float *out, const float *truth, const uint8_t *mask,
                           uint32_t width, uint32_t height);
/* In-mask mean SSIM of one frame; *n receives the samples averaged
   (may be NULL). NAN when the mask is empty. */
double removal_ssim_masked(const float *out, const float *truth, const uint8_t *mask,
                           uint32_t width, uint32_t height, uint64_t *n);
/* In-mask flicker of one pair of frames (see above); NAN when no pixel. */
double removal_flicker_masked(const float *out_prev, const float *out, const float *truth_prev,
                              const float *truth, const uint8_t *mask_prev, const uint8_t *mask,
                              uint32_t width, uint32_t height, uint64_t *n);

/* Accumulates frame t of a clip; prev_* NULL for the first frame. */
void removal_metrics_add(removal_metrics *m, const float *out, const float *truth,
                         const uint8_t *mask, const float *out_prev, const float *truth_prev,
                         const uint8_t *mask_prev, uint32_t width, uint32_t height);
double removal_metrics_psnr(const removal_metrics *m);
double removal_metrics_ssim(const removal_metrics *m);
double removal_metrics_flicker(const removal_metrics *m);

#endif
