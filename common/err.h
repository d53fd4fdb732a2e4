/*
 * err.h: the one error type of Rushes.
 *
 * Every function that can fail returns an rs_err (RS_OK == 0, failures are
 * negative, libuv-style) and, when the caller passes an rs_error, fills it
 * with a one-line message that names the file, field or frame at fault.
 * The message buffer belongs to the caller; nothing here allocates.
 */
#ifndef RS_ERR_H
#define RS_ERR_H

#include <stddef.h>

typedef enum rs_err {
    RS_OK = 0,
    RS_EINVAL = -1,    /* bad argument or malformed input (JSON, field, value) */
    RS_ENOMEM = -2,    /* allocation failed */
    RS_EIO = -3,       /* read/write/fsync failed */
    RS_ENOENT = -4,    /* no such file, job, task, worker ... */
    RS_EEXIST = -5,    /* already exists (e.g. idempotency key reused) */
    RS_EPERM = -6,     /* forbidden: outside media roots, wrong role */
    RS_ETOOBIG = -7,   /* input over its size cap */
    RS_EPROTO = -8,    /* protocol violation or unsupported version */
    RS_EDB = -9,       /* SQLite failure */
    RS_ENET = -10,     /* nng / socket failure */
    RS_EVK = -11,      /* Vulkan failure */
    RS_ESTATE = -12,   /* operation not allowed in the current state */
    RS_ETIMEDOUT = -13,
    RS_ECANCELED = -14,
    RS_EFORMAT = -15,  /* unsupported or corrupt media/file format */
    RS_ECRASH = -16,   /* a child process died by a signal */
} rs_err;

/*
 * Exit status of a task child whose input is bad (EX_DATAERR): its params or
 * footage are refused (RS_EINVAL, RS_EFORMAT), so the same attempt would fail
 * the same way on any worker and rushesd fails the task without retrying it
 * (docs/PROTOCOL.md).
 */
#define RS_EXIT_BAD_INPUT 65

/* Static text for a code; never NULL. */
const char *rs_strerror(rs_err code);

/* Caller-owned detail for the last failure. */
typedef struct rs_error {
    rs_err code;
    char msg[512];
} rs_error;

/*
 * Records code and a printf-style message into e (if e is not NULL) and
 * returns code, so a failure reads:  return rs_error_set(e, RS_EIO, "...");
 * The message should name what is wrong: "clip.exr: truncated at byte 4096".
 */
rs_err rs_error_set(rs_error *e, rs_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears e to RS_OK / "". Accepts NULL. */
void rs_error_clear(rs_error *e);

/* e->msg if set, else rs_strerror(e->code). e must not be NULL. */
const char *rs_error_text(const rs_error *e);

#endif
