/*
 * clock.h: time in milliseconds. Wall time for records, monotonic time for
 * intervals. Tests that need a controllable clock pass times in explicitly
 * (the store takes "now" as an argument for exactly that reason).
 */
#ifndef RS_CLOCK_H
#define RS_CLOCK_H

#include <stdint.h>

int64_t rs_clock_wall_ms(void);
int64_t rs_clock_mono_ms(void);

/* Formats wall ms as ISO 8601 UTC "2026-11-25T06:15:22.123Z" into buf (>= 32 bytes). */
void rs_clock_iso8601(int64_t wall_ms, char *buf, int buflen);

#endif
