/*
 * log.c: see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static rs_log_level threshold(void)
{
    const char *s = getenv("RUSHES_LOG");
    if (s == NULL) {
        return RS_LOG_INFO;
    }
    if (strcmp(s, "debug") == 0) {
        return RS_LOG_DEBUG;
    }
    if (strcmp(s, "warn") == 0) {
        return RS_LOG_WARN;
    }
    if (strcmp(s, "error") == 0) {
        return RS_LOG_ERROR;
    }
    return RS_LOG_INFO;
}

void rs_log(rs_log_level level, const char *component, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < threshold()) {
        return;
    }
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level], component);
    if (n < 0 || (size_t)n >= sizeof line) {
        n = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
