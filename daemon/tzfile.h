/*
 * tzfile.h: UTC offsets of a time zone read from its TZif file
 * (/usr/share/zoneinfo/<name>, RFC 8536), without touching the process's
 * TZ: cron needs local time in many zones while other threads run, and
 * setenv("TZ") + tzset() is not safe beside them.
 *
 * Beyond a file's last transition the last rule in force is kept (Debian's
 * "fat" files list transitions through 2037; the POSIX footer rule is not
 * evaluated).
 */
#ifndef RSD_TZFILE_H
#define RSD_TZFILE_H

#include <stdint.h>

#include "err.h"

typedef struct tz_zone tz_zone;

/* Loads zone name ("UTC" needs no file). RS_EINVAL for a name with "..",
 * a leading '/' or over 64 bytes; RS_ENOENT / RS_EFORMAT naming the file
 * otherwise. The caller frees *out with tz_zone_free. */
rs_err tz_zone_load(const char *name, tz_zone **out, rs_error *e);

/* Seconds east of UTC in force at utc_s (seconds since the epoch). */
int32_t tz_zone_offset(const tz_zone *z, int64_t utc_s);

void tz_zone_free(tz_zone *z);

#endif
