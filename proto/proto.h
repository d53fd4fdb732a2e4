/*
 * proto.h: worker <-> daemon wire messages (nng REQ/REP, worker is REQ).
 *
 * Every message is one JSON object: {"v":1,"type":"...","id":N,...}.
 * This module is the only place that turns bytes into messages and back:
 * it caps sizes, validates every field (type, range, length) and refuses
 * unknown versions, types and fields with a one-line message naming the
 * field. The daemon answers a refused request with an "error" reply built
 * by proto_encode_error(). See docs/PROTOCOL.md.
 *
 * Ownership: proto_decode() fills a caller-provided proto_msg; the strings
 * and cJSON trees inside it are owned by the message and released by
 * proto_msg_free(). proto_encode*() return a malloc'd NUL-terminated buffer
 * the caller frees with free().
 */
#ifndef RS_PROTO_H
#define RS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"

#define PROTO_VERSION 1
#define PROTO_MAX_MSG (1u << 20)     /* 1 MiB cap on one message */
#define PROTO_MAX_NAME 128           /* worker names, kinds, device names */
#define PROTO_MAX_DEVICES 16
#define PROTO_MAX_KINDS 32
#define PROTO_MAX_IDS 64             /* attempt ids in one heartbeat/reply */
#define PROTO_MAX_LOG_LINES 64       /* log lines in one progress/report */
#define PROTO_MAX_LOG_LINE 1024      /* bytes per log line (longer is refused) */
#define PROTO_MAX_ERROR 1024         /* bytes in an error / reason string */
#define PROTO_MAX_INT (((int64_t)1 << 53) - 1) /* largest id / integer on the wire (JSON double) */

typedef enum proto_type {
    PROTO_HELLO = 1,
    PROTO_LEASE,
    PROTO_HEARTBEAT,
    PROTO_PROGRESS,
    PROTO_REPORT,
    PROTO_BYE,
    PROTO_ERROR, /* reply only */
} proto_type;

/* "hello", "lease", ... ; NULL for an unknown value. */
const char *proto_type_name(proto_type t);

typedef struct proto_device {
    char name[PROTO_MAX_NAME];
    char type[16];          /* "discrete" | "integrated" | "virtual" | "cpu" | "other" */
    uint32_t vendor_id;
    uint32_t device_id;
    uint32_t api_version;   /* VK_MAKE_API_VERSION packed */
    uint64_t memory_mb;     /* largest device-local heap */
    bool fp16;              /* shaderFloat16 + storageBuffer16BitAccess */
    uint32_t subgroup_size;
} proto_device;

/* Worker -> daemon requests. */
typedef struct proto_hello {
    char worker_name[PROTO_MAX_NAME];
    char pool[PROTO_MAX_NAME];           /* "" = default pool */
    uint32_t slots;                      /* tasks it runs at once, 1..64 */
    size_t ndevices;
    proto_device devices[PROTO_MAX_DEVICES];
    size_t nkinds;
    char kinds[PROTO_MAX_KINDS][PROTO_MAX_NAME]; /* task kinds it can run */
    char secret[PROTO_MAX_NAME];         /* pool secret; "" = none (optional field) */
} proto_hello;

typedef struct proto_lease_req {
    int64_t worker_id;
} proto_lease_req;

typedef struct proto_heartbeat {
    int64_t worker_id;
    size_t nattempts;
    int64_t attempt_ids[PROTO_MAX_IDS]; /* attempts it is running now */
} proto_heartbeat;

typedef struct proto_progress {
    int64_t worker_id;
    int64_t attempt_id;
    double progress;           /* 0..1, or -1 if unknown */
    size_t nlines;
    char *lines[PROTO_MAX_LOG_LINES]; /* owned */
} proto_progress;

typedef enum proto_outcome {
    PROTO_OUTCOME_SUCCEEDED = 1,
    PROTO_OUTCOME_FAILED,
} proto_outcome;

typedef struct proto_report {
    int64_t worker_id;
    int64_t attempt_id;
    proto_outcome outcome;
    int exit_code;             /* -1 if killed by a signal */
    int signal;                /* 0 if it exited */
    char error[PROTO_MAX_ERROR];         /* "" when succeeded */
    char result_hash[17];      /* xxh64 hex of the canonical result text, "" if none */
    cJSON *result;             /* owned; NULL if none */
    size_t nlines;
    char *lines[PROTO_MAX_LOG_LINES];    /* owned: last log lines */
} proto_report;

typedef struct proto_bye {
    int64_t worker_id;
} proto_bye;

/* Daemon -> worker replies. */
typedef struct proto_hello_reply {
    int64_t worker_id;
    uint32_t heartbeat_ms;
    uint32_t lease_ttl_ms;
} proto_hello_reply;

typedef struct proto_lease_reply {
    bool has_task;
    int64_t task_id;
    int64_t attempt_id;
    int64_t job_id;
    char kind[PROTO_MAX_NAME];
    cJSON *params;             /* owned; the task's parameters */
    uint32_t lease_ttl_ms;
    uint32_t retry_ms;         /* when !has_task: ask again after this long */
} proto_lease_reply;

typedef struct proto_heartbeat_reply {
    size_t ncancel;
    int64_t cancel[PROTO_MAX_IDS];  /* attempts to kill now */
    size_t nunknown;
    int64_t unknown[PROTO_MAX_IDS]; /* attempts the daemon no longer leases to it: stop them */
} proto_heartbeat_reply;

typedef struct proto_progress_reply {
    bool cancel;
} proto_progress_reply;

typedef struct proto_report_reply {
    bool accepted;   /* true if this report changed state; false for duplicate/late */
} proto_report_reply;

typedef struct proto_error_reply {
    char code[32];   /* "bad_request" | "unsupported_version" | "too_big" | "unknown_worker" | "forbidden" | "internal" */
    char message[PROTO_MAX_ERROR];
} proto_error_reply;

typedef struct proto_msg {
    proto_type type;
    bool is_reply;
    uint64_t id;     /* request id chosen by the worker, echoed in the reply */
    union {
        proto_hello hello;
        proto_lease_req lease;
        proto_heartbeat heartbeat;
        proto_progress progress;
        proto_report report;
        proto_bye bye;
        proto_hello_reply hello_reply;
        proto_lease_reply lease_reply;
        proto_heartbeat_reply heartbeat_reply;
        proto_progress_reply progress_reply;
        proto_report_reply report_reply;
        proto_error_reply error;
    } u;
} proto_msg;

/* Zeroes m. */
void proto_msg_init(proto_msg *m);
/* Frees what m owns and zeroes it. Accepts a zeroed message. */
void proto_msg_free(proto_msg *m);

/*
 * Decodes a request (is_reply == false) or a reply (is_reply == true) from
 * len bytes (need not be NUL-terminated). On failure m is left zeroed and
 * e says what is wrong; the code is RS_ETOOBIG (over PROTO_MAX_MSG),
 * RS_EPROTO (unsupported version) or RS_EINVAL (anything else). On failure
 * *id_out (if not NULL) holds the request id when it could be read, else 0,
 * so the error reply can echo it.
 */
rs_err proto_decode(const void *buf, size_t len, bool is_reply, proto_msg *m, uint64_t *id_out,
                    rs_error *e);

/* Encodes m (request or reply according to m->is_reply). */
rs_err proto_encode(const proto_msg *m, char **out, size_t *outlen, rs_error *e);

/* Builds an error reply {"v":1,"type":"error","id":id,"code":..,"message":..}. */
rs_err proto_encode_error(uint64_t id, const char *code, const char *message, char **out,
                          size_t *outlen);

/* Maps a decode failure code to the error reply's code string. */
const char *proto_error_code_for(rs_err code);

/*
 * Fills out with the 16 lowercase hex digits of xxh64 (seed 0) over
 * cJSON_PrintUnformatted(result): the value a report carries in
 * result_hash. Stable across encode/decode, so a report retried with the
 * same result hashes the same. RS_EINVAL if result is not an object.
 */
rs_err proto_result_hash(const cJSON *result, char out[17]);

#endif
