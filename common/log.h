/*
 * log.h: timestamped one-line logging to stderr.
 *
 * The threshold comes from RUSHES_LOG (debug|info|warn|error, default info),
 * read on each call so there is no mutable global; logging is not on any
 * hot path. Safe to call from any thread (one fprintf per line).
 */
#ifndef RS_LOG_H
#define RS_LOG_H

typedef enum rs_log_level {
    RS_LOG_DEBUG = 0,
    RS_LOG_INFO = 1,
    RS_LOG_WARN = 2,
    RS_LOG_ERROR = 3,
} rs_log_level;

void rs_log(rs_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RS_DEBUG(comp, ...) rs_log(RS_LOG_DEBUG, comp, __VA_ARGS__)
#define RS_INFO(comp, ...) rs_log(RS_LOG_INFO, comp, __VA_ARGS__)
#define RS_WARN(comp, ...) rs_log(RS_LOG_WARN, comp, __VA_ARGS__)
#define RS_ERROR(comp, ...) rs_log(RS_LOG_ERROR, comp, __VA_ARGS__)

#endif
