/*
 * cron.h: 5-field cron expressions (minute hour day-of-month month
 * day-of-week) evaluated in a time zone, for schedules and training
 * windows (a firing opens a window for a duration).
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

struct cJSON;

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
 * Reads the zone's TZif file (tzfile.h); never touches the process's TZ,
 * so any thread may call it.
 */
rs_err cron_next(const cron_expr *expr, const char *tz, int64_t after_ms, int64_t *next_ms,
                 rs_error *e);

/*
 * A training window (docs/API.md "window"): opens at each firing of cron in
 * tz and stays open duration_ms.
 */
typedef struct cron_window {
    cron_expr expr;
    char cron[128];
    char tz[65];
    int64_t duration_ms;
} cron_window;

#define CRON_WINDOW_MAX_MIN 10080 /* a week */

/* Validates {"cron": "...", "duration_min": 1..10080, "tz": "Zone"} (tz
 * optional, default "UTC"; no other fields). RS_EINVAL naming the field. */
rs_err cron_window_from_json(const struct cJSON *obj, cron_window *out, rs_error *e);

/* Canonical JSON text of w (malloc'd) with "open": open. NULL on ENOMEM. */
char *cron_window_to_json(const cron_window *w, bool open);

/*
 * Whether w is open at now_ms: some firing s has s <= now_ms < s + duration.
 * *edge_ms (may be NULL): when open, the end of the window; when closed,
 * the next opening (INT64_MAX if it never fires again). Same thread rule as
 * cron_next.
 */
rs_err cron_window_open(const cron_window *w, int64_t now_ms, bool *open, int64_t *edge_ms,
                        rs_error *e);

#endif
