/*
 * tzfile.c: the TZif reader (tzfile.h). Only the 64-bit (version 2+) data
 * block is used: transition times, the type in force after each, and each
 * type's UT offset. Every count is checked against the file's length before
 * anything is read, so a corrupt file is refused, never overrun.
 */
#include "tzfile.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define TZ_MAX_FILE (1u << 20)
#define TZ_HEADER 44

struct tz_zone {
    size_t n;         /* transitions */
    int64_t *at;      /* n ascending UTC seconds */
    int32_t *off_at;  /* n: offset in force from at[i] */
    int32_t off_first; /* before the first transition (time type 0) */
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tz_counts {
    size_t isut, isstd, leap, time, type, chars;
} tz_counts;

static bool header(const unsigned char *p, size_t len, tz_counts *c)
{
    if (len < TZ_HEADER || memcmp(p, "TZif", 4) != 0) {
        return false;
    }
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    return c->type >= 1 && c->type <= 256 && c->time <= 100000 && c->leap <= 100000 &&
           c->chars <= 65536 && c->isut <= c->type && c->isstd <= c->type;
}

static size_t block_len(const tz_counts *c, size_t tsize)
{
    return c->time * tsize + c->time + c->type * 6 + c->chars + c->leap * (tsize + 4) + c->isstd +
           c->isut;
}

static rs_err parse(const char *path, const unsigned char *p, size_t len, tz_zone *z, rs_error *e)
{
    tz_counts c;
    if (!header(p, len, &c) || p[4] < '2') {
        return rs_error_set(e, RS_EFORMAT, "%s: not a TZif file of version 2 or later", path);
    }
    size_t v1 = TZ_HEADER + block_len(&c, 4);
    if (v1 > len || !header(p + v1, len - v1, &c) || v1 + TZ_HEADER + block_len(&c, 8) > len) {
        return rs_error_set(e, RS_EFORMAT, "%s: truncated TZif data", path);
    }
    const unsigned char *times = p + v1 + TZ_HEADER;
    const unsigned char *idx = times + c.time * 8;
    const unsigned char *types = idx + c.time;
    z->n = c.time;
    z->at = calloc(c.time + 1, sizeof *z->at);
    z->off_at = calloc(c.time + 1, sizeof *z->off_at);
    if (z->at == NULL || z->off_at == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    z->off_first = (int32_t)be32(types);
    for (size_t i = 0; i < c.time; i++) {
        z->at[i] = be64(times + i * 8);
        if (idx[i] >= c.type || (i > 0 && z->at[i] <= z->at[i - 1])) {
            return rs_error_set(e, RS_EFORMAT, "%s: transition %zu is corrupt", path, i);
        }
        z->off_at[i] = (int32_t)be32(types + (size_t)idx[i] * 6);
        if (z->off_at[i] < -25 * 3600 || z->off_at[i] > 26 * 3600) {
            return rs_error_set(e, RS_EFORMAT, "%s: offset %d s out of range", path,
                                (int)z->off_at[i]);
        }
    }
    return RS_OK;
}

rs_err tz_zone_load(const char *name, tz_zone **out, rs_error *e)
{
    if (name == NULL || name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL ||
        strlen(name) > 64) {
        return rs_error_set(e, RS_EINVAL, "tz: \"%s\" is not a zone name", name != NULL ? name : "");
    }
    tz_zone *z = calloc(1, sizeof *z);
    if (z == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    if (strcmp(name, "UTC") == 0) {
        *out = z; /* no transitions, offset 0 */
        return RS_OK;
    }
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    char *buf = NULL;
    size_t len = 0;
    rs_err rc = rs_fs_read_all(path, TZ_MAX_FILE, &buf, &len, e);
    if (rc == RS_OK) {
        rc = parse(path, (const unsigned char *)buf, len, z, e);
    }
    free(buf);
    if (rc != RS_OK) {
        tz_zone_free(z);
        return rc;
    }
    *out = z;
    return RS_OK;
}

int32_t tz_zone_offset(const tz_zone *z, int64_t utc_s)
{
    if (z->n == 0 || utc_s < z->at[0]) {
        return z->off_first;
    }
    size_t lo = 0, hi = z->n; /* the last transition <= utc_s is in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= utc_s) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return z->off_at[lo];
}

void tz_zone_free(tz_zone *z)
{
    if (z == NULL) {
        return;
    }
    free(z->at);
    free(z->off_at);
    free(z);
}
