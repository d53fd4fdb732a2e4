/*
 * cron.h: 5-field cron expressions (minute hour day-of-month month
 * day-of-week) evaluated in a time zone, for schedules (and, later,
 * training windows).
 *
 * Fields take *, N, A-B, lists "A,B", steps "*\/N" and "A-B/N"; day of week
 * 0-7 (0 and 7 are Sunday). As in Vixie cron, when both day fields are
 * restricted a day matching either one fires.
 */
#ifndef RSD_CRON_H
#define RSD_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

typedef struct cron_expr {
    uint64_t minute; /* bit i set = value i allowed */
    uint32_t hour;
    uint32_t dom;   /* 1..31 */
    uint16_t month; /* 1..12 */
    uint8_t dow;    /* 0..6 */
    bool dom_any;
    bool dow_any;
} cron_expr;

/* RS_EINVAL naming the field at fault. */
rs_err cron_parse(const char *text, cron_expr *out, rs_error *e);

/* Whether tz names a zone this host knows ("UTC" or /usr/share/zoneinfo/<tz>). */
bool cron_tz_ok(const char *tz);

/*
 * The first minute strictly after after_ms (UTC ms) that matches expr in
 * zone tz, as UTC ms. RS_ENOENT if none within ~5 years (e.g. "0 0 31 2 *").
 * Uses TZ and localtime_r: call from one thread only (rushesd's loop).
 */
rs_err cron_next(const cron_expr *expr, const char *tz, int64_t after_ms, int64_t *next_ms,
                 rs_error *e);

#endif
