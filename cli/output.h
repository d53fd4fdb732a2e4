/*
 * output.h: the CLI's rendering, as small pure functions so they can be
 * unit-tested without a server or a terminal: progress bars, percentages,
 * durations and ages, ISO 8601 parsing, aligned tables, the fields of a clip
 * row, and JSON field access that tolerates missing or mistyped fields
 * (the client never trusts the server's shape).
 */
#ifndef RS_CLI_OUTPUT_H
#define RS_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "err.h"

/*
 * "[#######-------------]": width counts every character including the
 * brackets; the filled part is floor(frac * inner) so a bar is full only at
 * 100%. frac is clamped to 0..1 (NaN counts as 0). width < 3 gives "".
 * The result is cut to fit buflen.
 */
void cli_progress_bar(double frac, int width, char *buf, size_t buflen);

/* floor(frac * 100) clamped to 0..100 (NaN -> 0): 99.9% never reads 100%. */
int cli_percent(double frac);

/* Compact duration: "0s", "42s", "5m07s", "3h04m", "2d03h". Negative -> "0s". */
void cli_duration_format(int64_t ms, char *buf, size_t buflen);

/* Parses "2026-11-25T06:15:22.123Z" (fraction optional, 'Z' or +hh:mm
 * offset) into Unix ms. false for anything else. */
bool cli_time_parse(const char *iso, int64_t *ms_out);

/* Age of an ISO time relative to now_ms ("5m07s"), or "-" if iso is NULL
 * or unparsable. */
void cli_age_format(const char *iso, int64_t now_ms, char *buf, size_t buflen);

/* Replaces control characters (newlines, ESC, tabs) with spaces in place, so
 * server-supplied text cannot break a table or drive the terminal. */
void cli_sanitize(char *s);

/* Cuts s to at most max characters, ending in "..." when cut. */
void cli_truncate(char *s, size_t max);

/* Lenient JSON access: NULL / dflt when missing or of another type. */
const char *cli_json_str(const cJSON *o, const char *key);
double cli_json_num(const cJSON *o, const char *key, double dflt);
bool cli_json_is_null_or_missing(const cJSON *o, const char *key);

/* Job states that will not change any more. */
bool cli_state_finished(const char *state);

/* A clip's table fields from its "info" probe object:
 * resolution "1920x1080", frames "240", fps "23.976", codec "h264" (or the
 * image format, "png"); "-" where unknown. Each buffer >= 32 bytes. */
void cli_clip_fields(const cJSON *clip, char *res, char *frames, char *fps, char *codec,
                     size_t buflen);

/* Aligned text table: columns separated by two spaces, the last column not
 * padded, headers in capitals as given. Cells are copied and sanitised;
 * NULL cells print as "-". */
typedef struct cli_table cli_table;

rs_err cli_table_create(int ncols, const char *const *headers, cli_table **out);
rs_err cli_table_add(cli_table *t, const char *const *cells);
void cli_table_print(const cli_table *t, FILE *f);
void cli_table_destroy(cli_table *t);

#endif
