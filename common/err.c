/*
 * err.c: error codes to text and the caller-owned detail buffer.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *rs_strerror(rs_err code)
{
    switch (code) {
    case RS_OK:
        return "ok";
    case RS_EINVAL:
        return "invalid input";
    case RS_ENOMEM:
        return "out of memory";
    case RS_EIO:
        return "i/o error";
    case RS_ENOENT:
        return "not found";
    case RS_EEXIST:
        return "already exists";
    case RS_EPERM:
        return "forbidden";
    case RS_ETOOBIG:
        return "too large";
    case RS_EPROTO:
        return "protocol error";
    case RS_EDB:
        return "database error";
    case RS_ENET:
        return "network error";
    case RS_EVK:
        return "vulkan error";
    case RS_ESTATE:
        return "wrong state";
    case RS_ETIMEDOUT:
        return "timed out";
    case RS_ECANCELED:
        return "cancelled";
    case RS_EFORMAT:
        return "unsupported or corrupt format";
    case RS_ECRASH:
        return "process crashed";
    }
    return "unknown error";
}

rs_err rs_error_set(rs_error *e, rs_err code, const char *fmt, ...)
{
    if (e == NULL) {
        return code;
    }
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void rs_error_clear(rs_error *e)
{
    if (e == NULL) {
        return;
    }
    e->code = RS_OK;
    e->msg[0] = '\0';
}

const char *rs_error_text(const rs_error *e)
{
    if (e->msg[0] != '\0') {
        return e->msg;
    }
    return rs_strerror(e->code);
}
