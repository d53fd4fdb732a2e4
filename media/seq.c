/*
 * seq.c: image-sequence patterns and folder scans. See seq.h.
 */
#include "seq.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_MAX_FRAMES 10000000u

/* Finds the token; sets its span and width. */
static bool find_token(const char *base, size_t *at, size_t *len, int *width)
{
    for (size_t i = 0; base[i] != '\0'; i++) {
        if (base[i] == '#') {
            size_t j = i;
            while (base[j] == '#') {
                j++;
            }
            *at = i;
            *len = j - i;
            *width = (int)(j - i);
            return true;
        }
        if (base[i] == '%') {
            size_t j = i + 1;
            int w = 0;
            if (base[j] == '0') {
                j++;
                while (base[j] >= '0' && base[j] <= '9') {
                    w = w * 10 + (base[j] - '0');
                    j++;
                    if (w > 18) {
                        return false;
                    }
                }
            }
            if (base[j] == 'd') {
                *at = i;
                *len = j + 1 - i;
                *width = w;
                return true;
            }
        }
    }
    return false;
}

bool media_seq_is_pattern(const char *s)
{
    const char *slash = strrchr(s, '/');
    size_t at = 0;
    size_t len = 0;
    int w = 0;
    return find_token(slash != NULL ? slash + 1 : s, &at, &len, &w);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void media_seq_destroy(media_seq *s)
{
    if (s == NULL) {
        return;
    }
    free(s->frames);
    free(s->gaps);
    free(s);
}

/* Parses the frame number in name, or returns false if name does not match. */
static bool match(const media_seq *s, const char *name, int64_t *n)
{
    size_t pl = strlen(s->prefix);
    size_t sl = strlen(s->suffix);
    size_t nl = strlen(name);
    if (nl <= pl + sl || strncmp(name, s->prefix, pl) != 0 ||
        strcmp(name + nl - sl, s->suffix) != 0) {
        return false;
    }
    size_t dl = nl - pl - sl;
    const char *d = name + pl;
    if (dl > 18) {
        return false;
    }
    for (size_t i = 0; i < dl; i++) {
        if (d[i] < '0' || d[i] > '9') {
            return false;
        }
    }
    /* padded: exactly width digits, or more without a leading zero
     * (frame 10000 of "####"); unpadded: no leading zero */
    if (s->width > 0 && dl < (size_t)s->width) {
        return false;
    }
    if ((s->width == 0 || dl > (size_t)s->width) && dl > 1 && d[0] == '0') {
        return false;
    }
    int64_t v = 0;
    for (size_t i = 0; i < dl; i++) {
        v = v * 10 + (d[i] - '0');
    }
    *n = v;
    return true;
}

rs_err media_seq_scan(const char *pattern, media_seq **out, rs_error *e)
{
    media_seq *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return rs_error_set(e, RS_ENOMEM, "%s: out of memory", pattern);
    }
    rs_err rc = RS_OK;
    DIR *d = NULL;
    const char *slash = strrchr(pattern, '/');
    const char *base = slash != NULL ? slash + 1 : pattern;
    if (slash == NULL) {
        snprintf(s->dir, sizeof s->dir, ".");
    } else if (slash == pattern) {
        snprintf(s->dir, sizeof s->dir, "/");
    } else {
        snprintf(s->dir, sizeof s->dir, "%.*s", (int)(slash - pattern), pattern);
    }
    size_t at = 0;
    size_t len = 0;
    if (!find_token(base, &at, &len, &s->width)) {
        rc = rs_error_set(e, RS_EINVAL, "%s: no frame number (%%04d or ####) in the name", pattern);
        goto out;
    }
    if (at >= sizeof s->prefix || strlen(base + at + len) >= sizeof s->suffix) {
        rc = rs_error_set(e, RS_EINVAL, "%s: name too long", pattern);
        goto out;
    }
    snprintf(s->prefix, sizeof s->prefix, "%.*s", (int)at, base);
    snprintf(s->suffix, sizeof s->suffix, "%s", base + at + len);
    if (media_seq_is_pattern(s->suffix)) {
        rc = rs_error_set(e, RS_EINVAL, "%s: more than one frame number in the name", pattern);
        goto out;
    }
    d = opendir(s->dir);
    if (d == NULL) {
        rc = rs_error_set(e, errno == ENOENT ? RS_ENOENT : RS_EIO, "%s: cannot list folder %s: %s",
                          pattern, s->dir, strerror(errno));
        goto out;
    }
    size_t cap = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        int64_t n = 0;
        if (!match(s, ent->d_name, &n)) {
            continue;
        }
        if (s->count == cap) {
            if (cap >= SEQ_MAX_FRAMES) {
                rc = rs_error_set(e, RS_ETOOBIG, "%s: over %u frames", pattern, SEQ_MAX_FRAMES);
                goto out;
            }
            size_t ncap = cap == 0 ? 256 : cap * 2;
            int64_t *grown = realloc(s->frames, ncap * sizeof *grown);
            if (grown == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", pattern);
                goto out;
            }
            s->frames = grown;
            cap = ncap;
        }
        s->frames[s->count++] = n;
    }
    if (s->count == 0) {
        rc = rs_error_set(e, RS_ENOENT, "%s: no frames match", pattern);
        goto out;
    }
    qsort(s->frames, s->count, sizeof *s->frames, cmp64);
    /* "shot.1.exr" and "shot.0001.exr" can both match an unpadded scan:
     * keep one entry per number */
    size_t k = 1;
    for (size_t i = 1; i < s->count; i++) {
        if (s->frames[i] != s->frames[k - 1]) {
            s->frames[k++] = s->frames[i];
        }
    }
    s->count = k;
    s->first = s->frames[0];
    s->last = s->frames[s->count - 1];
    for (size_t i = 1; i < s->count; i++) {
        if (s->frames[i] > s->frames[i - 1] + 1) {
            media_seq_gap *grown = realloc(s->gaps, (s->ngaps + 1) * sizeof *grown);
            if (grown == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", pattern);
                goto out;
            }
            s->gaps = grown;
            s->gaps[s->ngaps].first = s->frames[i - 1] + 1;
            s->gaps[s->ngaps].last = s->frames[i] - 1;
            s->missing += s->frames[i] - s->frames[i - 1] - 1;
            s->ngaps++;
        }
    }
out:
    if (d != NULL) {
        closedir(d);
    }
    if (rc != RS_OK) {
        media_seq_destroy(s);
        return rc;
    }
    *out = s;
    return RS_OK;
}

rs_err media_seq_path(const media_seq *s, int64_t n, char *out, size_t len, rs_error *e)
{
    if (n < 0) {
        return rs_error_set(e, RS_EINVAL, "frame %" PRId64 " is negative", n);
    }
    int r = snprintf(out, len, "%s/%s%0*" PRId64 "%s", s->dir, s->prefix, s->width, n, s->suffix);
    if (r < 0 || (size_t)r >= len) {
        return rs_error_set(e, RS_EINVAL, "%s/%s: path too long", s->dir, s->prefix);
    }
    return RS_OK;
}
