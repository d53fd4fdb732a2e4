/*
 * cron.c: parsing and evaluating 5-field cron expressions in a time zone.
 *
 * Evaluation walks forward from the given instant in UTC, converting each
 * candidate to local time and skipping a whole month, day or hour as soon
 * as that field fails, so a year is at most a few thousand steps. Walking
 * in UTC and re-checking in local time handles DST: a local minute that
 * does not exist is never produced, one that occurs twice fires once.
 */
#include "cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "tzfile.h"

static bool field_parse(const char *s, size_t len, int lo, int hi, uint64_t *bits)
{
    *bits = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',') {
            j++;
        }
        /* one item: s[i..j) */
        char item[32];
        if (j - i == 0 || j - i >= sizeof item) {
            return false;
        }
        memcpy(item, s + i, j - i);
        item[j - i] = '\0';
        int step = 1;
        char *slash = strchr(item, '/');
        if (slash != NULL) {
            char *end = NULL;
            long v = strtol(slash + 1, &end, 10);
            if (slash[1] == '\0' || *end != '\0' || v < 1 || v > hi) {
                return false;
            }
            step = (int)v;
            *slash = '\0';
        }
        int a = lo;
        int b = hi;
        if (strcmp(item, "*") != 0) {
            char *end = NULL;
            long v = strtol(item, &end, 10);
            if (end == item || v < lo || v > hi) {
                return false;
            }
            a = (int)v;
            b = a;
            if (*end == '-') {
                char *end2 = NULL;
                long w = strtol(end + 1, &end2, 10);
                if (end2 == end + 1 || *end2 != '\0' || w < a || w > hi) {
                    return false;
                }
                b = (int)w;
            } else if (*end != '\0') {
                return false;
            } else if (slash != NULL) {
                b = hi; /* "5/15" = from 5 to the end, every 15 */
            }
        }
        for (int v = a; v <= b; v += step) {
            *bits |= UINT64_C(1) << v;
        }
        i = j + 1;
    }
    return *bits != 0;
}

rs_err cron_parse(const char *text, cron_expr *out, rs_error *e)
{
    static const char *const names[] = {"minute", "hour", "day of month", "month", "day of week"};
    static const int lo[] = {0, 0, 1, 1, 0};
    static const int hi[] = {59, 23, 31, 12, 7};
    uint64_t bits[5];
    const char *p = text;
    memset(out, 0, sizeof *out);
    for (int f = 0; f < 5; f++) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        const char *start = p;
        while (*p != '\0' && *p != ' ' && *p != '\t') {
            p++;
        }
        if (p == start) {
            return rs_error_set(e, RS_EINVAL, "cron: \"%s\": needs 5 fields, missing the %s", text,
                                names[f]);
        }
        if (!field_parse(start, (size_t)(p - start), lo[f], hi[f], &bits[f])) {
            return rs_error_set(e, RS_EINVAL, "cron: \"%s\": bad %s field \"%.*s\" (%d-%d)", text,
                                names[f], (int)(p - start), start, lo[f], hi[f]);
        }
        if (f == 2) {
            out->dom_any = (size_t)(p - start) == 1 && *start == '*';
        }
        if (f == 4) {
            out->dow_any = (size_t)(p - start) == 1 && *start == '*';
        }
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p != '\0') {
        return rs_error_set(e, RS_EINVAL, "cron: \"%s\": more than 5 fields", text);
    }
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    uint64_t dow = bits[4];
    if (dow & (UINT64_C(1) << 7)) {
        dow |= 1; /* 7 is Sunday too */
    }
    out->dow = (uint8_t)(dow & 0x7f);
    return RS_OK;
}

bool cron_tz_ok(const char *tz)
{
    if (strcmp(tz, "UTC") == 0) {
        return true;
    }
    if (tz[0] == '\0' || tz[0] == '/' || strstr(tz, "..") != NULL || strlen(tz) > 64) {
        return false;
    }
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool day_ok(const cron_expr *c, const struct tm *tm)
{
    bool dom = (c->dom >> tm->tm_mday) & 1;
    bool dow = (c->dow >> tm->tm_wday) & 1;
    if (c->dom_any || c->dow_any) {
        return dom && dow;
    }
    return dom || dow;
}

rs_err cron_next(const cron_expr *expr, const char *tz, int64_t after_ms, int64_t *next_ms,
                 rs_error *e)
{
    if (!cron_tz_ok(tz)) {
        return rs_error_set(e, RS_EINVAL, "tz: unknown time zone \"%s\"", tz);
    }
    /* The zone's offsets from its TZif file: no setenv("TZ"), which other
     * threads' getenv/localtime could trip over (tzfile.h). */
    tz_zone *zone = NULL;
    rs_err zrc = tz_zone_load(tz, &zone, e);
    if (zrc != RS_OK) {
        return zrc;
    }
    /* Next whole minute strictly after after_ms. */
    int64_t t = (after_ms / 60000 + 1) * 60;
    int64_t limit = t + (int64_t)5 * 366 * 86400;
    rs_err rc = RS_ENOENT;
    while (t < limit) {
        time_t tt = (time_t)(t + tz_zone_offset(zone, t));
        struct tm tm;
        gmtime_r(&tt, &tm); /* the local wall clock at UTC instant t */
        int into_day = (tm.tm_hour * 60 + tm.tm_min) * 60;
        if (!((expr->month >> (tm.tm_mon + 1)) & 1) || !day_ok(expr, &tm)) {
            t += 86400 - into_day; /* start of the next local day (DST: re-checked) */
            continue;
        }
        if (!((expr->hour >> tm.tm_hour) & 1)) {
            t += (60 - tm.tm_min) * 60;
            continue;
        }
        if (!((expr->minute >> tm.tm_min) & 1)) {
            t += 60;
            continue;
        }
        *next_ms = t * 1000;
        rc = RS_OK;
        break;
    }
    tz_zone_free(zone);
    if (rc != RS_OK) {
        return rs_error_set(e, RS_ENOENT, "cron: no matching time within 5 years");
    }
    return RS_OK;
}

rs_err cron_window_from_json(const struct cJSON *obj, cron_window *out, rs_error *e)
{
    if (!cJSON_IsObject(obj)) {
        return rs_error_set(e, RS_EINVAL, "window: must be an object");
    }
    memset(out, 0, sizeof *out);
    snprintf(out->tz, sizeof out->tz, "UTC");
    bool have_cron = false;
    bool have_dur = false;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, obj)
    {
        const char *k = it->string != NULL ? it->string : "";
        if (strcmp(k, "cron") == 0) {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof out->cron) {
                return rs_error_set(e, RS_EINVAL, "window.cron: must be a cron expression string");
            }
            rs_err rc = cron_parse(it->valuestring, &out->expr, e);
            if (rc != RS_OK) {
                char msg[sizeof e->msg];
                snprintf(msg, sizeof msg, "%s", e->msg);
                return rs_error_set(e, rc, "window.%s", msg);
            }
            snprintf(out->cron, sizeof out->cron, "%s", it->valuestring);
            have_cron = true;
        } else if (strcmp(k, "duration_min") == 0) {
            double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
            if (d < 1 || d > CRON_WINDOW_MAX_MIN || d != (double)(int64_t)d) {
                return rs_error_set(e, RS_EINVAL,
                                    "window.duration_min: must be an integer in 1..%d",
                                    CRON_WINDOW_MAX_MIN);
            }
            out->duration_ms = (int64_t)d * 60000;
            have_dur = true;
        } else if (strcmp(k, "tz") == 0) {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof out->tz ||
                !cron_tz_ok(it->valuestring)) {
                return rs_error_set(e, RS_EINVAL, "window.tz: unknown time zone");
            }
            snprintf(out->tz, sizeof out->tz, "%s", it->valuestring);
        } else if (strcmp(k, "open") != 0) {
            /* "open" is what the daemon adds to the stored copy; ignored on input. */
            return rs_error_set(e, RS_EINVAL, "window: unknown field \"%.64s\"", k);
        }
    }
    if (!have_cron) {
        return rs_error_set(e, RS_EINVAL, "window.cron: required");
    }
    if (!have_dur) {
        return rs_error_set(e, RS_EINVAL, "window.duration_min: required");
    }
    return RS_OK;
}

char *cron_window_to_json(const cron_window *w, bool open)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o != NULL && cJSON_AddStringToObject(o, "cron", w->cron) != NULL &&
        cJSON_AddNumberToObject(o, "duration_min", (double)(w->duration_ms / 60000)) != NULL &&
        cJSON_AddStringToObject(o, "tz", w->tz) != NULL &&
        cJSON_AddBoolToObject(o, "open", open) != NULL) {
        text = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    return text;
}

rs_err cron_window_open(const cron_window *w, int64_t now_ms, bool *open, int64_t *edge_ms,
                        rs_error *e)
{
    /* Firings fall on whole minutes, so the first one strictly after
     * now - duration is the latest start that can still cover now. */
    int64_t start = 0;
    rs_err rc = cron_next(&w->expr, w->tz, now_ms - w->duration_ms, &start, e);
    if (rc == RS_ENOENT) {
        *open = false;
        if (edge_ms != NULL) {
            *edge_ms = INT64_MAX;
        }
        rs_error_clear(e);
        return RS_OK;
    }
    if (rc != RS_OK) {
        return rc;
    }
    *open = start <= now_ms;
    if (edge_ms != NULL) {
        *edge_ms = *open ? start + w->duration_ms : start;
    }
    return RS_OK;
}
