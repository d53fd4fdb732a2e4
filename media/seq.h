/*
 * seq.h: image sequences named by a pattern: "shot.%04d.exr" (printf
 * style, "%d" for unpadded) or "shot.####.dpx" (one '#' per digit). A scan
 * lists the frame numbers present in the folder, in order, and the gaps
 * between first and last, so ingest can report "frames 1001-1100, missing
 * 1042-1043" before anything trains on a hole.
 */
#ifndef RS_MEDIA_SEQ_H
#define RS_MEDIA_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct media_seq_gap {
    int64_t first; /* first missing frame */
    int64_t last;  /* last missing frame (inclusive) */
} media_seq_gap;

typedef struct media_seq {
    char dir[4096];
    char prefix[256];
    char suffix[256];
    int width;       /* digits (zero padded); 0 = unpadded "%d" */
    size_t count;    /* frames present */
    int64_t *frames; /* sorted ascending */
    int64_t first;
    int64_t last;
    size_t ngaps;
    media_seq_gap *gaps;
    int64_t missing; /* frames missing between first and last */
} media_seq;

/* True if s holds a frame-number token ("%d", "%0Nd" or a run of '#'). */
bool media_seq_is_pattern(const char *s);

/* Scans the pattern's folder. RS_EINVAL for a malformed pattern,
 * RS_ENOENT "pattern: no frames match" when none exist. */
rs_err media_seq_scan(const char *pattern, media_seq **out, rs_error *e);

/* The file name of frame n under the pattern. */
rs_err media_seq_path(const media_seq *s, int64_t n, char *out, size_t len, rs_error *e);

void media_seq_destroy(media_seq *s);

#endif
