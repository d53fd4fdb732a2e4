/*
 * proto.c: bytes <-> worker/daemon messages, and nothing else.
 *
 * Decoding runs in three steps so no untrusted byte reaches a parser
 * unchecked: cap the size, scan the raw bytes (valid UTF-8, no NUL byte, no
 * "\u0000" escape, which cJSON would silently turn into a truncated string),
 * then parse a private NUL-terminated copy with cJSON and walk the tree
 * field by field against a fixed table of allowed names. The walk first
 * fills the message with pointers borrowed from the tree; only when every
 * field passed does the message take ownership (lines copied, result/params
 * detached), so a refusal has nothing to undo. Encoding builds a tree,
 * prints it, and then decodes its own output: what we send is exactly what
 * we would accept, with one set of rules to keep true.
 */
#include "proto.h"

#include <inttypes.h>
#include <math.h> /* NAN */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define ID_MAX PROTO_MAX_INT
#define MS_MAX 86400000 /* one day: longest heartbeat / ttl / retry interval */
#define SIGNAL_MAX 64
#define SUBGROUP_MAX 4096
#define PATH_CAP 96

/* ---- message type names ---------------------------------------------- */

const char *proto_type_name(proto_type t)
{
    switch (t) {
    case PROTO_HELLO:
        return "hello";
    case PROTO_LEASE:
        return "lease";
    case PROTO_HEARTBEAT:
        return "heartbeat";
    case PROTO_PROGRESS:
        return "progress";
    case PROTO_REPORT:
        return "report";
    case PROTO_BYE:
        return "bye";
    case PROTO_ERROR:
        return "error";
    }
    return NULL;
}

static bool type_from_name(const char *s, bool is_reply, proto_type *out)
{
    for (int t = PROTO_HELLO; t <= PROTO_ERROR; t++) {
        if (t == PROTO_ERROR && !is_reply) {
            break;
        }
        if (strcmp(s, proto_type_name((proto_type)t)) == 0) {
            *out = (proto_type)t;
            return true;
        }
    }
    return false;
}

const char *proto_error_code_for(rs_err code)
{
    switch (code) {
    case RS_EINVAL:
        return "bad_request";
    case RS_EPROTO:
        return "unsupported_version";
    case RS_ETOOBIG:
        return "too_big";
    case RS_ENOENT:
        return "unknown_worker";
    default:
        return "internal";
    }
}

/* ---- raw byte checks ---------------------------------------------------- */

/*
 * Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points over U+10FFFF included).
 */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F;
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    if (s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return len;
}

/* Offset of the first invalid UTF-8 byte, or n if all valid. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0) {
            return i;
        }
        i += k;
    }
    return n;
}

/*
 * Refuses NUL bytes and the "\u0000" escape. The escape scan only has to be
 * right for well-formed JSON: anything else fails in cJSON right after.
 */
static rs_err scan_raw(const unsigned char *s, size_t n, rs_error *e)
{
    size_t bad = utf8_check(s, n);
    if (bad != n) {
        return rs_error_set(e, RS_EINVAL, "message: not valid UTF-8 at byte %zu", bad);
    }
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0) {
            return rs_error_set(e, RS_EINVAL, "message: NUL byte at offset %zu", i);
        }
        if (s[i] == '"') {
            in_str = !in_str;
        } else if (in_str && s[i] == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) {
                return rs_error_set(e, RS_EINVAL, "message: \\u0000 escape at offset %zu", i);
            }
            i++; /* skip the escaped character, which may be a quote */
        }
    }
    return RS_OK;
}

/*
 * Copies a name taken from the input into buf for an error message: at most
 * 40 bytes cut on a character boundary, control characters shown as '?'.
 */
static const char *snip(const char *s, char *buf, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t o = 0;
    size_t i = 0;
    while (i < n && o + 8 < cap && i < 40) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0) {
            k = 1;
            buf[o++] = '?';
        } else if (k == 1 && (u[i] < 0x20 || u[i] == 0x7f)) {
            buf[o++] = '?';
        } else {
            memcpy(buf + o, s + i, k);
            o += k;
        }
        i += k;
    }
    if (i < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- field walkers: tree -> borrowed values ----------------------------- */

static const char *join(char *buf, const char *path, const char *name)
{
    snprintf(buf, PATH_CAP, "%s.%s", path, name);
    return buf;
}

/* Refuses names outside allowed (n <= 64) and names given twice. */
static rs_err check_fields(const cJSON *obj, const char *path, const char *const *allowed, size_t n,
                           rs_error *e)
{
    uint64_t seen = 0;
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        const char *name = c->string != NULL ? c->string : "";
        size_t i = 0;
        while (i < n && strcmp(name, allowed[i]) != 0) {
            i++;
        }
        char tmp[64];
        if (i == n) {
            return rs_error_set(e, RS_EINVAL, "%s.%s: unknown field", path,
                                snip(name, tmp, sizeof tmp));
        }
        if ((seen >> i) & 1u) {
            return rs_error_set(e, RS_EINVAL, "%s.%s: duplicate field", path, name);
        }
        seen |= (uint64_t)1 << i;
    }
    return RS_OK;
}

static bool as_int(const cJSON *it, int64_t min, int64_t max, int64_t *out)
{
    if (!cJSON_IsNumber(it)) {
        return false;
    }
    double d = it->valuedouble;
    /* Range first (NaN fails it too), so the cast below is defined; no libm needed. */
    if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d) {
        return false;
    }
    *out = (int64_t)d;
    return true;
}

static rs_err int_value(const cJSON *it, const char *where, int64_t min, int64_t max, int64_t *out,
                        rs_error *e)
{
    if (as_int(it, min, max, out)) {
        return RS_OK;
    }
    if (min == 0 && max == ID_MAX) {
        return rs_error_set(e, RS_EINVAL, "%s: must be a non-negative integer", where);
    }
    if (min == 1 && max == ID_MAX) {
        return rs_error_set(e, RS_EINVAL, "%s: must be a positive integer", where);
    }
    return rs_error_set(e, RS_EINVAL, "%s: must be an integer in %" PRId64 "..%" PRId64, where, min,
                        max);
}

/* Looks name up in obj; missing + required is an error, missing + optional leaves *it NULL. */
static rs_err lookup(const cJSON *obj, const char *path, const char *name, bool required,
                     const cJSON **it, rs_error *e)
{
    *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (*it == NULL && required) {
        return rs_error_set(e, RS_EINVAL, "%s.%s: required", path, name);
    }
    return RS_OK;
}

static rs_err get_int(const cJSON *obj, const char *path, const char *name, bool required,
                      int64_t min, int64_t max, int64_t *out, rs_error *e)
{
    const cJSON *it;
    rs_err rc = lookup(obj, path, name, required, &it, e);
    if (rc != RS_OK || it == NULL) {
        return rc;
    }
    char where[PATH_CAP];
    return int_value(it, join(where, path, name), min, max, out, e);
}

static rs_err get_u32(const cJSON *obj, const char *path, const char *name, bool required,
                      int64_t min, int64_t max, uint32_t *out, rs_error *e)
{
    int64_t v = 0;
    rs_err rc = get_int(obj, path, name, required, min, max, &v, e);
    if (rc == RS_OK) {
        *out = (uint32_t)v;
    }
    return rc;
}

static rs_err get_bool(const cJSON *obj, const char *path, const char *name, bool required,
                       bool *out, rs_error *e)
{
    const cJSON *it;
    rs_err rc = lookup(obj, path, name, required, &it, e);
    if (rc != RS_OK || it == NULL) {
        return rc;
    }
    if (!cJSON_IsBool(it)) {
        return rs_error_set(e, RS_EINVAL, "%s.%s: must be true or false", path, name);
    }
    *out = cJSON_IsTrue(it);
    return RS_OK;
}

enum { STR_ANY = 0, STR_NAME = 1 }; /* STR_NAME: non-empty, no control characters */

/* Checks a string value; cap counts the terminating NUL. */
static rs_err str_value(const cJSON *it, const char *where, int kind, size_t cap, const char **out,
                        rs_error *e)
{
    if (!cJSON_IsString(it) || it->valuestring == NULL) {
        return rs_error_set(e, RS_EINVAL, "%s: must be a string", where);
    }
    const char *s = it->valuestring;
    size_t n = strlen(s);
    if (n >= cap) {
        return rs_error_set(e, RS_EINVAL, "%s: is %zu bytes, over the limit of %zu", where, n,
                            cap - 1);
    }
    if (kind == STR_NAME) {
        if (n == 0) {
            return rs_error_set(e, RS_EINVAL, "%s: must not be empty", where);
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c == 0x7f) {
                return rs_error_set(e, RS_EINVAL, "%s: must not contain control characters", where);
            }
        }
    }
    *out = s;
    return RS_OK;
}

/* Copies a checked string into a fixed buffer of size cap. */
static rs_err get_str(const cJSON *obj, const char *path, const char *name, bool required, int kind,
                      char *buf, size_t cap, rs_error *e)
{
    const cJSON *it;
    rs_err rc = lookup(obj, path, name, required, &it, e);
    if (rc != RS_OK || it == NULL) {
        return rc;
    }
    char where[PATH_CAP];
    const char *s = NULL;
    rc = str_value(it, join(where, path, name), kind, cap, &s, e);
    if (rc == RS_OK) {
        memcpy(buf, s, strlen(s) + 1);
    }
    return rc;
}

static rs_err get_array(const cJSON *obj, const char *path, const char *name, bool required,
                        size_t max, const cJSON **arr, size_t *count, rs_error *e)
{
    const cJSON *it;
    *arr = NULL;
    *count = 0;
    rs_err rc = lookup(obj, path, name, required, &it, e);
    if (rc != RS_OK || it == NULL) {
        return rc;
    }
    if (!cJSON_IsArray(it)) {
        return rs_error_set(e, RS_EINVAL, "%s.%s: must be an array", path, name);
    }
    size_t n = 0;
    for (const cJSON *c = it->child; c != NULL; c = c->next) {
        n++;
    }
    if (n > max) {
        return rs_error_set(e, RS_EINVAL, "%s.%s: has %zu items, over the limit of %zu", path, name,
                            n, max);
    }
    *arr = it;
    *count = n;
    return RS_OK;
}

static rs_err get_object(const cJSON *obj, const char *path, const char *name, bool required,
                         cJSON **out, rs_error *e)
{
    const cJSON *it;
    rs_err rc = lookup(obj, path, name, required, &it, e);
    if (rc != RS_OK || it == NULL) {
        return rc;
    }
    if (!cJSON_IsObject(it)) {
        return rs_error_set(e, RS_EINVAL, "%s.%s: must be a JSON object", path, name);
    }
    *out = (cJSON *)it;
    return RS_OK;
}

static rs_err get_ids(const cJSON *obj, const char *path, const char *name, bool required,
                      int64_t *ids, size_t *count, rs_error *e)
{
    const cJSON *arr;
    rs_err rc = get_array(obj, path, name, required, PROTO_MAX_IDS, &arr, count, e);
    if (rc != RS_OK || arr == NULL) {
        return rc;
    }
    size_t i = 0;
    for (const cJSON *c = arr->child; c != NULL; c = c->next, i++) {
        char where[PATH_CAP];
        snprintf(where, sizeof where, "%s.%s[%zu]", path, name, i);
        rc = int_value(c, where, 1, ID_MAX, &ids[i], e);
        if (rc != RS_OK) {
            return rc;
        }
    }
    return RS_OK;
}

/* Borrowed log lines: pointers into the tree until the message takes ownership. */
static rs_err get_lines(const cJSON *obj, const char *path, char **lines, size_t *count,
                        rs_error *e)
{
    const cJSON *arr;
    rs_err rc = get_array(obj, path, "lines", false, PROTO_MAX_LOG_LINES, &arr, count, e);
    if (rc != RS_OK || arr == NULL) {
        return rc;
    }
    size_t i = 0;
    for (const cJSON *c = arr->child; c != NULL; c = c->next, i++) {
        char where[PATH_CAP];
        snprintf(where, sizeof where, "%s.lines[%zu]", path, i);
        const char *s = NULL;
        rc = str_value(c, where, STR_ANY, PROTO_MAX_LOG_LINE + 1, &s, e);
        if (rc != RS_OK) {
            return rc;
        }
        lines[i] = (char *)s;
    }
    return RS_OK;
}

/* ---- per-message walkers -------------------------------------------------- */

#define ENVELOPE "v", "type", "id"
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const device_types[] = {"discrete", "integrated", "virtual", "cpu", "other"};

static rs_err walk_device(const cJSON *it, const char *path, proto_device *d, rs_error *e)
{
    static const char *const fields[] = {"name",        "type",      "vendor_id", "device_id",
                                         "api_version", "memory_mb", "fp16",      "subgroup_size"};
    if (!cJSON_IsObject(it)) {
        return rs_error_set(e, RS_EINVAL, "%s: must be a JSON object", path);
    }
    rs_err rc = check_fields(it, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_str(it, path, "name", true, STR_NAME, d->name, sizeof d->name, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_str(it, path, "type", true, STR_NAME, d->type, sizeof d->type, e);
    if (rc != RS_OK) {
        return rc;
    }
    bool known = false;
    for (size_t i = 0; i < NFIELDS(device_types); i++) {
        known = known || strcmp(d->type, device_types[i]) == 0;
    }
    if (!known) {
        return rs_error_set(e, RS_EINVAL,
                            "%s.type: must be discrete, integrated, virtual, cpu or other", path);
    }
    rc = get_u32(it, path, "vendor_id", false, 0, UINT32_MAX, &d->vendor_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_u32(it, path, "device_id", false, 0, UINT32_MAX, &d->device_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_u32(it, path, "api_version", false, 0, UINT32_MAX, &d->api_version, e);
    if (rc != RS_OK) {
        return rc;
    }
    int64_t mem = 0;
    rc = get_int(it, path, "memory_mb", true, 0, ID_MAX, &mem, e);
    if (rc != RS_OK) {
        return rc;
    }
    d->memory_mb = (uint64_t)mem;
    rc = get_bool(it, path, "fp16", false, &d->fp16, e);
    if (rc != RS_OK) {
        return rc;
    }
    return get_u32(it, path, "subgroup_size", false, 0, SUBGROUP_MAX, &d->subgroup_size, e);
}

static rs_err walk_hello(const cJSON *root, proto_hello *h, rs_error *e)
{
    static const char *const fields[] = {ENVELOPE,  "worker_name", "pool",  "slots",
                                         "devices", "kinds",       "secret"};
    const char *path = "hello";
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_str(root, path, "worker_name", true, STR_NAME, h->worker_name, sizeof h->worker_name,
                 e);
    if (rc != RS_OK) {
        return rc;
    }
    /* "" is the default pool; any other value must be a proper name */
    const cJSON *pool = cJSON_GetObjectItemCaseSensitive(root, "pool");
    if (pool != NULL && !(cJSON_IsString(pool) && pool->valuestring[0] == '\0')) {
        rc = get_str(root, path, "pool", false, STR_NAME, h->pool, sizeof h->pool, e);
        if (rc != RS_OK) {
            return rc;
        }
    }
    /* Optional pool secret (rushesd's worker_secret); absent = "". */
    if (cJSON_GetObjectItemCaseSensitive(root, "secret") != NULL) {
        rc = get_str(root, path, "secret", false, STR_NAME, h->secret, sizeof h->secret, e);
        if (rc != RS_OK) {
            return rc;
        }
    }
    rc = get_u32(root, path, "slots", true, 1, 64, &h->slots, e);
    if (rc != RS_OK) {
        return rc;
    }
    const cJSON *arr;
    rc = get_array(root, path, "devices", true, PROTO_MAX_DEVICES, &arr, &h->ndevices, e);
    if (rc != RS_OK) {
        return rc;
    }
    size_t i = 0;
    for (const cJSON *c = arr->child; c != NULL; c = c->next, i++) {
        char where[PATH_CAP];
        snprintf(where, sizeof where, "hello.devices[%zu]", i);
        rc = walk_device(c, where, &h->devices[i], e);
        if (rc != RS_OK) {
            return rc;
        }
    }
    rc = get_array(root, path, "kinds", true, PROTO_MAX_KINDS, &arr, &h->nkinds, e);
    if (rc != RS_OK) {
        return rc;
    }
    i = 0;
    for (const cJSON *c = arr->child; c != NULL; c = c->next, i++) {
        char where[PATH_CAP];
        snprintf(where, sizeof where, "hello.kinds[%zu]", i);
        const char *s = NULL;
        rc = str_value(c, where, STR_NAME, PROTO_MAX_NAME, &s, e);
        if (rc != RS_OK) {
            return rc;
        }
        memcpy(h->kinds[i], s, strlen(s) + 1);
    }
    return RS_OK;
}

/* Messages whose body is only worker_id: lease request and bye. */
static rs_err walk_worker_only(const cJSON *root, const char *path, int64_t *worker_id, rs_error *e)
{
    static const char *const fields[] = {ENVELOPE, "worker_id"};
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    return get_int(root, path, "worker_id", true, 1, ID_MAX, worker_id, e);
}

static rs_err walk_heartbeat(const cJSON *root, proto_heartbeat *h, rs_error *e)
{
    static const char *const fields[] = {ENVELOPE, "worker_id", "attempts"};
    const char *path = "heartbeat";
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_int(root, path, "worker_id", true, 1, ID_MAX, &h->worker_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    return get_ids(root, path, "attempts", true, h->attempt_ids, &h->nattempts, e);
}

static rs_err walk_progress(const cJSON *root, proto_progress *p, rs_error *e)
{
    static const char *const fields[] = {ENVELOPE, "worker_id", "attempt_id", "progress", "lines"};
    const char *path = "progress";
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_int(root, path, "worker_id", true, 1, ID_MAX, &p->worker_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_int(root, path, "attempt_id", true, 1, ID_MAX, &p->attempt_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    const cJSON *it;
    rc = lookup(root, path, "progress", true, &it, e);
    if (rc != RS_OK) {
        return rc;
    }
    double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!(d == -1.0 || (d >= 0.0 && d <= 1.0))) {
        return rs_error_set(e, RS_EINVAL, "progress.progress: must be -1 or a number in 0..1");
    }
    p->progress = d;
    return get_lines(root, path, p->lines, &p->nlines, e);
}

static bool is_hash_hex(const char *s)
{
    if (strlen(s) != 16) {
        return false;
    }
    for (size_t i = 0; i < 16; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static rs_err walk_report(const cJSON *root, proto_report *r, rs_error *e)
{
    static const char *const fields[] = {ENVELOPE,      "worker_id", "attempt_id", "outcome",
                                         "exit_code",   "signal",    "error",      "result",
                                         "result_hash", "lines"};
    const char *path = "report";
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_int(root, path, "worker_id", true, 1, ID_MAX, &r->worker_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_int(root, path, "attempt_id", true, 1, ID_MAX, &r->attempt_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    const cJSON *it;
    rc = lookup(root, path, "outcome", true, &it, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (cJSON_IsString(it) && strcmp(it->valuestring, "succeeded") == 0) {
        r->outcome = PROTO_OUTCOME_SUCCEEDED;
    } else if (cJSON_IsString(it) && strcmp(it->valuestring, "failed") == 0) {
        r->outcome = PROTO_OUTCOME_FAILED;
    } else {
        return rs_error_set(e, RS_EINVAL, "report.outcome: must be \"succeeded\" or \"failed\"");
    }
    int64_t v = 0;
    rc = get_int(root, path, "exit_code", true, -1, 255, &v, e);
    if (rc != RS_OK) {
        return rc;
    }
    r->exit_code = (int)v;
    rc = get_int(root, path, "signal", true, 0, SIGNAL_MAX, &v, e);
    if (rc != RS_OK) {
        return rc;
    }
    r->signal = (int)v;
    if (r->signal != 0 && r->exit_code != -1) {
        return rs_error_set(e, RS_EINVAL, "report.exit_code: must be -1 when signal is set");
    }
    if (r->signal == 0 && r->exit_code == -1) {
        return rs_error_set(e, RS_EINVAL, "report.exit_code: -1 only when killed by a signal");
    }
    rc = get_str(root, path, "error", false, STR_ANY, r->error, sizeof r->error, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_object(root, path, "result", false, &r->result, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = lookup(root, path, "result_hash", false, &it, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (it != NULL) {
        if (!cJSON_IsString(it) || !is_hash_hex(it->valuestring)) {
            return rs_error_set(e, RS_EINVAL,
                                "report.result_hash: must be 16 lowercase hex digits");
        }
        memcpy(r->result_hash, it->valuestring, sizeof r->result_hash);
    }
    if (r->outcome == PROTO_OUTCOME_SUCCEEDED) {
        if (r->exit_code != 0 || r->signal != 0) {
            return rs_error_set(e, RS_EINVAL,
                                "report.outcome: succeeded needs exit_code 0 and signal 0");
        }
        if (r->result == NULL) {
            return rs_error_set(e, RS_EINVAL, "report.result: required when succeeded");
        }
    }
    if (r->result == NULL) {
        if (r->result_hash[0] != '\0') {
            return rs_error_set(e, RS_EINVAL, "report.result_hash: given without result");
        }
    } else {
        char want[17];
        rc = proto_result_hash(r->result, want);
        if (rc != RS_OK) {
            return rs_error_set(e, rc, "report.result: cannot hash: %s", rs_strerror(rc));
        }
        if (r->result_hash[0] == '\0') {
            memcpy(r->result_hash, want, sizeof want); /* optional on the wire; always known here */
        } else if (strcmp(r->result_hash, want) != 0) {
            return rs_error_set(e, RS_EINVAL,
                                "report.result_hash: %s does not match the result (%s)",
                                r->result_hash, want);
        }
    }
    return get_lines(root, path, r->lines, &r->nlines, e);
}

static rs_err walk_hello_reply(const cJSON *root, proto_hello_reply *h, rs_error *e)
{
    static const char *const fields[] = {ENVELOPE, "worker_id", "heartbeat_ms", "lease_ttl_ms"};
    const char *path = "hello";
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_int(root, path, "worker_id", true, 1, ID_MAX, &h->worker_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_u32(root, path, "heartbeat_ms", true, 1, MS_MAX, &h->heartbeat_ms, e);
    if (rc != RS_OK) {
        return rc;
    }
    return get_u32(root, path, "lease_ttl_ms", true, 1, MS_MAX, &h->lease_ttl_ms, e);
}

static rs_err walk_lease_reply(const cJSON *root, proto_lease_reply *l, rs_error *e)
{
    static const char *const fields[] = {ENVELOPE,     "has_task",     "task_id",
                                         "attempt_id", "job_id",       "kind",
                                         "params",     "lease_ttl_ms", "retry_ms"};
    static const char *const task_only[] = {"task_id", "attempt_id", "job_id",
                                            "kind",    "params",     "lease_ttl_ms"};
    const char *path = "lease";
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_bool(root, path, "has_task", true, &l->has_task, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (!l->has_task) {
        for (size_t i = 0; i < NFIELDS(task_only); i++) {
            if (cJSON_GetObjectItemCaseSensitive(root, task_only[i]) != NULL) {
                return rs_error_set(e, RS_EINVAL, "lease.%s: only allowed when has_task is true",
                                    task_only[i]);
            }
        }
        return get_u32(root, path, "retry_ms", true, 0, MS_MAX, &l->retry_ms, e);
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "retry_ms") != NULL) {
        return rs_error_set(e, RS_EINVAL, "lease.retry_ms: only allowed when has_task is false");
    }
    rc = get_int(root, path, "task_id", true, 1, ID_MAX, &l->task_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_int(root, path, "attempt_id", true, 1, ID_MAX, &l->attempt_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_int(root, path, "job_id", true, 1, ID_MAX, &l->job_id, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_str(root, path, "kind", true, STR_NAME, l->kind, sizeof l->kind, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_object(root, path, "params", true, &l->params, e);
    if (rc != RS_OK) {
        return rc;
    }
    return get_u32(root, path, "lease_ttl_ms", true, 1, MS_MAX, &l->lease_ttl_ms, e);
}

static rs_err walk_heartbeat_reply(const cJSON *root, proto_heartbeat_reply *h, rs_error *e)
{
    static const char *const fields[] = {ENVELOPE, "cancel", "unknown"};
    const char *path = "heartbeat";
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_ids(root, path, "cancel", false, h->cancel, &h->ncancel, e);
    if (rc != RS_OK) {
        return rc;
    }
    return get_ids(root, path, "unknown", false, h->unknown, &h->nunknown, e);
}

static rs_err walk_bool_reply(const cJSON *root, const char *path, const char *name, bool *out,
                              rs_error *e)
{
    const char *fields[] = {ENVELOPE, name};
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    return get_bool(root, path, name, true, out, e);
}

static bool is_code(const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || *p == '_')) {
            return false;
        }
    }
    return s[0] != '\0';
}

static rs_err walk_error_reply(const cJSON *root, proto_error_reply *r, rs_error *e)
{
    static const char *const fields[] = {ENVELOPE, "code", "message"};
    const char *path = "error";
    rs_err rc = check_fields(root, path, fields, NFIELDS(fields), e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = get_str(root, path, "code", true, STR_NAME, r->code, sizeof r->code, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (!is_code(r->code)) {
        return rs_error_set(e, RS_EINVAL, "error.code: must be lowercase letters and '_'");
    }
    return get_str(root, path, "message", true, STR_ANY, r->message, sizeof r->message, e);
}

/* Envelope, then body. m holds borrowed pointers into root on success. */
static rs_err walk_message(const cJSON *root, bool is_reply, proto_msg *m, uint64_t *id_out,
                           rs_error *e)
{
    if (!cJSON_IsObject(root)) {
        return rs_error_set(e, RS_EINVAL, "message: top level must be a JSON object");
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    int64_t idv = 0;
    bool id_ok = id != NULL && as_int(id, 0, ID_MAX, &idv);
    if (id_ok && id_out != NULL) {
        *id_out = (uint64_t)idv;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");
    if (v == NULL) {
        return rs_error_set(e, RS_EINVAL, "v: required");
    }
    int64_t ver = 0;
    if (!as_int(v, -ID_MAX, ID_MAX, &ver)) {
        return rs_error_set(e, RS_EINVAL, "v: must be an integer");
    }
    if (ver != PROTO_VERSION) {
        return rs_error_set(e, RS_EPROTO,
                            "unsupported protocol version %" PRId64 " (this %s speaks %d)", ver,
                            is_reply ? "worker" : "daemon", PROTO_VERSION);
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (type == NULL) {
        return rs_error_set(e, RS_EINVAL, "type: required");
    }
    if (!cJSON_IsString(type)) {
        return rs_error_set(e, RS_EINVAL, "type: must be a string");
    }
    if (!type_from_name(type->valuestring, is_reply, &m->type)) {
        char tmp[64];
        return rs_error_set(e, RS_EINVAL, "type: unknown %s type \"%s\"",
                            is_reply ? "reply" : "request",
                            snip(type->valuestring, tmp, sizeof tmp));
    }
    if (id == NULL) {
        return rs_error_set(e, RS_EINVAL, "id: required");
    }
    if (!id_ok) {
        return rs_error_set(e, RS_EINVAL, "id: must be an integer in 0..%" PRId64, ID_MAX);
    }
    m->id = (uint64_t)idv;
    m->is_reply = is_reply;
    if (!is_reply) {
        switch (m->type) {
        case PROTO_HELLO:
            return walk_hello(root, &m->u.hello, e);
        case PROTO_LEASE:
            return walk_worker_only(root, "lease", &m->u.lease.worker_id, e);
        case PROTO_HEARTBEAT:
            return walk_heartbeat(root, &m->u.heartbeat, e);
        case PROTO_PROGRESS:
            return walk_progress(root, &m->u.progress, e);
        case PROTO_REPORT:
            return walk_report(root, &m->u.report, e);
        case PROTO_BYE:
            return walk_worker_only(root, "bye", &m->u.bye.worker_id, e);
        case PROTO_ERROR:
            break;
        }
        return rs_error_set(e, RS_EINVAL, "type: not a request");
    }
    switch (m->type) {
    case PROTO_HELLO:
        return walk_hello_reply(root, &m->u.hello_reply, e);
    case PROTO_LEASE:
        return walk_lease_reply(root, &m->u.lease_reply, e);
    case PROTO_HEARTBEAT:
        return walk_heartbeat_reply(root, &m->u.heartbeat_reply, e);
    case PROTO_PROGRESS:
        return walk_bool_reply(root, "progress", "cancel", &m->u.progress_reply.cancel, e);
    case PROTO_REPORT:
        return walk_bool_reply(root, "report", "accepted", &m->u.report_reply.accepted, e);
    case PROTO_BYE:
        return check_fields(root, "bye", (const char *const[]){ENVELOPE}, 3, e);
    case PROTO_ERROR:
        return walk_error_reply(root, &m->u.error, e);
    }
    return rs_error_set(e, RS_EINVAL, "type: not a reply");
}

/* ---- ownership ------------------------------------------------------------ */

static rs_err own_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lines[i] = strdup(lines[i]);
        if (lines[i] == NULL) {
            for (size_t j = 0; j < i; j++) {
                free(lines[j]);
                lines[j] = NULL;
            }
            for (size_t j = i; j < n; j++) {
                lines[j] = NULL;
            }
            return RS_ENOMEM;
        }
    }
    return RS_OK;
}

/* Turns the borrowed pointers of a walked message into owned ones. */
static rs_err take_ownership(proto_msg *m, cJSON *root, rs_error *e)
{
    rs_err rc = RS_OK;
    if (!m->is_reply && m->type == PROTO_PROGRESS) {
        rc = own_lines(m->u.progress.lines, m->u.progress.nlines);
        if (rc != RS_OK) {
            m->u.progress.nlines = 0;
        }
    } else if (!m->is_reply && m->type == PROTO_REPORT) {
        rc = own_lines(m->u.report.lines, m->u.report.nlines);
        if (rc != RS_OK) {
            m->u.report.nlines = 0;
            m->u.report.result = NULL;
        } else if (m->u.report.result != NULL) {
            cJSON_DetachItemViaPointer(root, m->u.report.result);
        }
    } else if (m->is_reply && m->type == PROTO_LEASE && m->u.lease_reply.params != NULL) {
        cJSON_DetachItemViaPointer(root, m->u.lease_reply.params);
    }
    if (rc != RS_OK) {
        return rs_error_set(e, rc, "message: out of memory");
    }
    return RS_OK;
}

/* ---- public: decode ------------------------------------------------------- */

void proto_msg_init(proto_msg *m)
{
    memset(m, 0, sizeof *m);
}

void proto_msg_free(proto_msg *m)
{
    if (m == NULL) {
        return;
    }
    if (!m->is_reply && m->type == PROTO_PROGRESS) {
        for (size_t i = 0; i < m->u.progress.nlines && i < PROTO_MAX_LOG_LINES; i++) {
            free(m->u.progress.lines[i]);
        }
    } else if (!m->is_reply && m->type == PROTO_REPORT) {
        for (size_t i = 0; i < m->u.report.nlines && i < PROTO_MAX_LOG_LINES; i++) {
            free(m->u.report.lines[i]);
        }
        cJSON_Delete(m->u.report.result);
    } else if (m->is_reply && m->type == PROTO_LEASE) {
        cJSON_Delete(m->u.lease_reply.params);
    }
    memset(m, 0, sizeof *m);
}

rs_err proto_decode(const void *buf, size_t len, bool is_reply, proto_msg *m, uint64_t *id_out,
                    rs_error *e)
{
    rs_err rc = RS_OK;
    char *copy = NULL;
    cJSON *root = NULL;

    proto_msg_init(m);
    if (id_out != NULL) {
        *id_out = 0;
    }
    if (len > PROTO_MAX_MSG) {
        return rs_error_set(e, RS_ETOOBIG, "message: %zu bytes, over the %u-byte limit", len,
                            PROTO_MAX_MSG);
    }
    if (len == 0 || buf == NULL) {
        return rs_error_set(e, RS_EINVAL, "message: empty");
    }
    rc = scan_raw(buf, len, e);
    if (rc != RS_OK) {
        return rc;
    }
    /* A private NUL-terminated copy: cJSON and strtod never read past it. */
    copy = malloc(len + 1);
    if (copy == NULL) {
        return rs_error_set(e, RS_ENOMEM, "message: out of memory");
    }
    memcpy(copy, buf, len);
    copy[len] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(copy, len, &end, false);
    if (root == NULL) {
        size_t at = end != NULL && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
        rc = rs_error_set(e, RS_EINVAL, "message: not valid JSON near byte %zu", at);
        goto out;
    }
    for (const char *p = end; p != NULL && p < copy + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = rs_error_set(e, RS_EINVAL,
                              "message: trailing bytes after the JSON value at byte %zu",
                              (size_t)(p - copy));
            goto out;
        }
    }
    rc = walk_message(root, is_reply, m, id_out, e);
    if (rc == RS_OK) {
        rc = take_ownership(m, root, e);
    }
    if (rc != RS_OK) {
        memset(m, 0, sizeof *m); /* only borrowed pointers or nothing: drop them */
        goto out;
    }
    if (id_out != NULL) {
        *id_out = m->id;
    }
out:
    cJSON_Delete(root);
    free(copy);
    return rc;
}

/* ---- public: encode ------------------------------------------------------- */

/*
 * Integers go out as raw text: cJSON prints numbers with "%1.15g" and a
 * loose round-trip test, which would turn an id like 2^53-1 into ...990.
 */
static bool add_int(cJSON *obj, const char *name, int64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, v);
    return cJSON_AddRawToObject(obj, name, num) != NULL;
}

static bool add_str(cJSON *obj, const char *name, const char *s)
{
    return cJSON_AddStringToObject(obj, name, s) != NULL;
}

static bool add_bool(cJSON *obj, const char *name, bool b)
{
    return cJSON_AddBoolToObject(obj, name, b) != NULL;
}

static bool add_ids(cJSON *obj, const char *name, const int64_t *ids, size_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(obj, name);
    if (arr == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char num[32];
        snprintf(num, sizeof num, "%" PRId64, ids[i]);
        if (!cJSON_AddItemToArray(arr, cJSON_CreateRaw(num))) {
            return false;
        }
    }
    return true;
}

/*
 * Free text (log lines, error text) comes from child processes and may hold
 * any bytes, or a UTF-8 sequence cut by a length cap. A report must still go
 * out, so invalid bytes become '?' here instead of failing the encode.
 * Identifiers (names, kinds) are not patched: a bad one is a bug, refused.
 */
static cJSON *text_string(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    if (utf8_check(u, n) == n) {
        return cJSON_CreateString(s);
    }
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        return NULL;
    }
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0) {
            copy[i] = '?';
            k = 1;
        } else {
            memcpy(copy + i, s + i, k);
        }
        i += k;
    }
    copy[n] = '\0';
    cJSON *it = cJSON_CreateString(copy);
    free(copy);
    return it;
}

static bool add_text(cJSON *obj, const char *name, const char *s)
{
    cJSON *it = text_string(s);
    if (it == NULL || !cJSON_AddItemToObject(obj, name, it)) {
        cJSON_Delete(it);
        return false;
    }
    return true;
}

static bool add_strs(cJSON *obj, const char *name, char *const *lines, size_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(obj, name);
    if (arr == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!cJSON_AddItemToArray(arr, text_string(lines[i]))) {
            return false;
        }
    }
    return true;
}

/* Fixed-size string fields must be NUL-terminated before they are read. */
#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static rs_err check_struct(const proto_msg *m, rs_error *e)
{
    const char *t = proto_type_name(m->type);
    if (t == NULL || (m->type == PROTO_ERROR && !m->is_reply)) {
        return rs_error_set(e, RS_EINVAL, "type: %d is not a %s", (int)m->type,
                            m->is_reply ? "reply" : "request");
    }
    if (m->is_reply) {
        const proto_heartbeat_reply *h = &m->u.heartbeat_reply;
        if (m->type == PROTO_HEARTBEAT &&
            (h->ncancel > PROTO_MAX_IDS || h->nunknown > PROTO_MAX_IDS)) {
            return rs_error_set(e, RS_EINVAL, "heartbeat: more than %d ids", PROTO_MAX_IDS);
        }
        if (m->type == PROTO_LEASE && !TERMINATED(m->u.lease_reply.kind)) {
            return rs_error_set(e, RS_EINVAL, "lease.kind: not NUL-terminated");
        }
        if (m->type == PROTO_ERROR &&
            (!TERMINATED(m->u.error.code) || !TERMINATED(m->u.error.message))) {
            return rs_error_set(e, RS_EINVAL, "error: code or message not NUL-terminated");
        }
        return RS_OK;
    }
    switch (m->type) {
    case PROTO_HELLO: {
        const proto_hello *h = &m->u.hello;
        if (h->ndevices > PROTO_MAX_DEVICES || h->nkinds > PROTO_MAX_KINDS) {
            return rs_error_set(e, RS_EINVAL, "hello: %zu devices / %zu kinds, over the limit",
                                h->ndevices, h->nkinds);
        }
        bool ok = TERMINATED(h->worker_name) && TERMINATED(h->pool) && TERMINATED(h->secret);
        for (size_t i = 0; i < h->ndevices; i++) {
            ok = ok && TERMINATED(h->devices[i].name) && TERMINATED(h->devices[i].type);
        }
        for (size_t i = 0; i < h->nkinds; i++) {
            ok = ok && TERMINATED(h->kinds[i]);
        }
        if (!ok) {
            return rs_error_set(e, RS_EINVAL, "hello: a string field is not NUL-terminated");
        }
        return RS_OK;
    }
    case PROTO_HEARTBEAT:
        if (m->u.heartbeat.nattempts > PROTO_MAX_IDS) {
            return rs_error_set(e, RS_EINVAL, "heartbeat.attempts: %zu ids, over the limit of %d",
                                m->u.heartbeat.nattempts, PROTO_MAX_IDS);
        }
        return RS_OK;
    case PROTO_PROGRESS:
    case PROTO_REPORT: {
        size_t n = m->type == PROTO_PROGRESS ? m->u.progress.nlines : m->u.report.nlines;
        char *const *lines = m->type == PROTO_PROGRESS ? m->u.progress.lines : m->u.report.lines;
        if (n > PROTO_MAX_LOG_LINES) {
            return rs_error_set(e, RS_EINVAL, "%s.lines: %zu lines, over the limit of %d", t, n,
                                PROTO_MAX_LOG_LINES);
        }
        for (size_t i = 0; i < n; i++) {
            if (lines[i] == NULL) {
                return rs_error_set(e, RS_EINVAL, "%s.lines[%zu]: NULL", t, i);
            }
        }
        if (m->type == PROTO_REPORT) {
            const proto_report *r = &m->u.report;
            if (!TERMINATED(r->error) || !TERMINATED(r->result_hash)) {
                return rs_error_set(e, RS_EINVAL,
                                    "report: error or result_hash not NUL-terminated");
            }
            if (r->result != NULL && !cJSON_IsObject(r->result)) {
                return rs_error_set(e, RS_EINVAL, "report.result: must be a JSON object");
            }
        }
        return RS_OK;
    }
    default:
        return RS_OK;
    }
}

static bool build_request(const proto_msg *m, cJSON *o)
{
    switch (m->type) {
    case PROTO_HELLO: {
        const proto_hello *h = &m->u.hello;
        bool ok = add_str(o, "worker_name", h->worker_name) && add_str(o, "pool", h->pool) &&
                  add_int(o, "slots", h->slots) &&
                  (h->secret[0] == '\0' || add_str(o, "secret", h->secret));
        cJSON *devs = ok ? cJSON_AddArrayToObject(o, "devices") : NULL;
        for (size_t i = 0; devs != NULL && i < h->ndevices; i++) {
            const proto_device *d = &h->devices[i];
            cJSON *dev = cJSON_CreateObject();
            if (!cJSON_AddItemToArray(devs, dev)) {
                cJSON_Delete(dev);
                return false;
            }
            ok = ok && add_str(dev, "name", d->name) && add_str(dev, "type", d->type) &&
                 add_int(dev, "vendor_id", d->vendor_id) &&
                 add_int(dev, "device_id", d->device_id) &&
                 add_int(dev, "api_version", d->api_version) &&
                 add_int(dev, "memory_mb", (int64_t)d->memory_mb) &&
                 add_bool(dev, "fp16", d->fp16) && add_int(dev, "subgroup_size", d->subgroup_size);
        }
        cJSON *kinds = devs != NULL && ok ? cJSON_AddArrayToObject(o, "kinds") : NULL;
        for (size_t i = 0; kinds != NULL && i < h->nkinds; i++) {
            ok = ok && cJSON_AddItemToArray(kinds, cJSON_CreateString(h->kinds[i]));
        }
        /* memory_mb over 2^53 prints out of range (or negative): decode refuses it */
        return ok && kinds != NULL;
    }
    case PROTO_LEASE:
        return add_int(o, "worker_id", m->u.lease.worker_id);
    case PROTO_BYE:
        return add_int(o, "worker_id", m->u.bye.worker_id);
    case PROTO_HEARTBEAT:
        return add_int(o, "worker_id", m->u.heartbeat.worker_id) &&
               add_ids(o, "attempts", m->u.heartbeat.attempt_ids, m->u.heartbeat.nattempts);
    case PROTO_PROGRESS: {
        const proto_progress *p = &m->u.progress;
        return add_int(o, "worker_id", p->worker_id) && add_int(o, "attempt_id", p->attempt_id) &&
               cJSON_AddNumberToObject(o, "progress", p->progress) != NULL &&
               add_strs(o, "lines", p->lines, p->nlines);
    }
    case PROTO_REPORT: {
        const proto_report *r = &m->u.report;
        bool ok = add_int(o, "worker_id", r->worker_id) &&
                  add_int(o, "attempt_id", r->attempt_id) &&
                  add_str(o, "outcome",
                          r->outcome == PROTO_OUTCOME_SUCCEEDED ? "succeeded"
                          : r->outcome == PROTO_OUTCOME_FAILED  ? "failed"
                                                                : "") &&
                  add_int(o, "exit_code", r->exit_code) && add_int(o, "signal", r->signal) &&
                  add_text(o, "error", r->error);
        if (ok && r->result != NULL) {
            /* A reference: printed in place, not copied, not freed with o. */
            char hash[17];
            ok = cJSON_AddItemReferenceToObject(o, "result", r->result) &&
                 proto_result_hash(r->result, hash) == RS_OK &&
                 add_str(o, "result_hash", r->result_hash[0] != '\0' ? r->result_hash : hash);
        } else if (ok && r->result_hash[0] != '\0') {
            ok = add_str(o, "result_hash", r->result_hash);
        }
        return ok && add_strs(o, "lines", r->lines, r->nlines);
    }
    case PROTO_ERROR:
        break;
    }
    return false;
}

static bool build_reply(const proto_msg *m, cJSON *o)
{
    switch (m->type) {
    case PROTO_HELLO: {
        const proto_hello_reply *h = &m->u.hello_reply;
        return add_int(o, "worker_id", h->worker_id) &&
               add_int(o, "heartbeat_ms", h->heartbeat_ms) &&
               add_int(o, "lease_ttl_ms", h->lease_ttl_ms);
    }
    case PROTO_LEASE: {
        const proto_lease_reply *l = &m->u.lease_reply;
        if (!l->has_task) {
            return add_bool(o, "has_task", false) && add_int(o, "retry_ms", l->retry_ms);
        }
        bool ok = add_bool(o, "has_task", true) && add_int(o, "task_id", l->task_id) &&
                  add_int(o, "attempt_id", l->attempt_id) && add_int(o, "job_id", l->job_id) &&
                  add_str(o, "kind", l->kind);
        if (ok && l->params != NULL) {
            ok = cJSON_AddItemReferenceToObject(o, "params", l->params);
        }
        return ok && add_int(o, "lease_ttl_ms", l->lease_ttl_ms);
    }
    case PROTO_HEARTBEAT:
        return add_ids(o, "cancel", m->u.heartbeat_reply.cancel, m->u.heartbeat_reply.ncancel) &&
               add_ids(o, "unknown", m->u.heartbeat_reply.unknown, m->u.heartbeat_reply.nunknown);
    case PROTO_PROGRESS:
        return add_bool(o, "cancel", m->u.progress_reply.cancel);
    case PROTO_REPORT:
        return add_bool(o, "accepted", m->u.report_reply.accepted);
    case PROTO_BYE:
        return true;
    case PROTO_ERROR:
        return add_str(o, "code", m->u.error.code) && add_text(o, "message", m->u.error.message);
    }
    return false;
}

rs_err proto_encode(const proto_msg *m, char **out, size_t *outlen, rs_error *e)
{
    rs_err rc = RS_OK;
    cJSON *o = NULL;
    char *text = NULL;
    proto_msg check;

    proto_msg_init(&check);
    if (m == NULL || out == NULL) {
        return rs_error_set(e, RS_EINVAL, "encode: NULL message or output");
    }
    rc = check_struct(m, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (m->id > (uint64_t)ID_MAX) {
        return rs_error_set(e, RS_EINVAL, "id: must be an integer in 0..%" PRId64, ID_MAX);
    }
    o = cJSON_CreateObject();
    bool ok = o != NULL && add_int(o, "v", PROTO_VERSION) &&
              add_str(o, "type", proto_type_name(m->type)) && add_int(o, "id", (int64_t)m->id);
    ok = ok && (m->is_reply ? build_reply(m, o) : build_request(m, o));
    if (ok) {
        text = cJSON_PrintUnformatted(o);
    }
    if (text == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "encode %s: out of memory", proto_type_name(m->type));
        goto out;
    }
    size_t n = strlen(text);
    /* Our own output must pass our own rules; a refusal here is a caller bug. */
    rc = proto_decode(text, n, m->is_reply, &check, NULL, e);
    proto_msg_free(&check);
    if (rc != RS_OK) {
        if (e != NULL) {
            char msg[sizeof e->msg];
            memcpy(msg, e->msg, sizeof msg);
            rs_error_set(e, rc, "encode: %s", msg);
        }
        goto out;
    }
    *out = text;
    text = NULL;
    if (outlen != NULL) {
        *outlen = n;
    }
out:
    free(text);
    cJSON_Delete(o);
    return rc;
}

/*
 * The message is the daemon's own text, often quoting input: it is cut to
 * the limit on a character boundary and invalid bytes and control characters
 * become '?', because an error reply must always be sendable.
 */
rs_err proto_encode_error(uint64_t id, const char *code, const char *message, char **out,
                          size_t *outlen)
{
    proto_msg m;
    proto_msg_init(&m);
    m.type = PROTO_ERROR;
    m.is_reply = true;
    m.id = id <= (uint64_t)ID_MAX ? id : 0;
    if (code == NULL || strlen(code) >= sizeof m.u.error.code || !is_code(code)) {
        return RS_EINVAL;
    }
    memcpy(m.u.error.code, code, strlen(code) + 1);
    const unsigned char *s = (const unsigned char *)(message != NULL ? message : "");
    size_t n = strlen((const char *)s);
    size_t o = 0;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(s + i, n - i);
        if (o + (k == 0 ? 1 : k) >= sizeof m.u.error.message) {
            break;
        }
        if (k == 0 || (k == 1 && (s[i] < 0x20 || s[i] == 0x7f) && s[i] != '\t')) {
            m.u.error.message[o++] = '?';
            i += k == 0 ? 1 : k;
            continue;
        }
        memcpy(m.u.error.message + o, s + i, k);
        o += k;
        i += k;
    }
    m.u.error.message[o] = '\0';
    return proto_encode(&m, out, outlen, NULL);
}

/* ---- result hash ---------------------------------------------------------- */

rs_err proto_result_hash(const cJSON *result, char out[17])
{
    out[0] = '\0';
    if (result == NULL || !cJSON_IsObject(result)) {
        return RS_EINVAL;
    }
    char *text = cJSON_PrintUnformatted(result);
    if (text == NULL) {
        return RS_ENOMEM;
    }
    XXH64_hash_t h = XXH64(text, strlen(text), 0);
    free(text);
    snprintf(out, 17, "%016" PRIx64, (uint64_t)h);
    return RS_OK;
}
