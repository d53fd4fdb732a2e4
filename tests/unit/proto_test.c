/*
 * proto_test.c: every request and reply survives encode -> decode with its
 * fields intact; every refusal carries its code and a message naming the
 * field; error replies are always sendable; result hashes are stable.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "proto.h"

/* Decodes NUL-terminated text (the NUL not included). */
static rs_err dec(const char *json, bool reply, proto_msg *m, rs_error *e)
{
    rs_error_clear(e);
    return proto_decode(json, strlen(json), reply, m, NULL, e);
}

/* Encodes m, decodes the text into back; both must succeed. */
static void round_trip(const proto_msg *m, proto_msg *back)
{
    rs_error e;
    char *text = NULL;
    size_t n = 0;
    rs_error_clear(&e);
    rs_err rc = proto_encode(m, &text, &n, &e);
    cr_assert_eq(rc, RS_OK, "encode: %s", e.msg);
    cr_assert_eq(n, strlen(text));
    rc = proto_decode(text, n, m->is_reply, back, NULL, &e);
    cr_assert_eq(rc, RS_OK, "decode %s: %s", text, e.msg);
    cr_assert_eq(back->type, m->type);
    cr_assert_eq(back->is_reply, m->is_reply);
    cr_assert_eq(back->id, m->id);
    free(text);
}

static void refused(const char *json, bool reply, rs_err code, const char *msg)
{
    proto_msg m;
    rs_error e;
    rs_err rc = dec(json, reply, &m, &e);
    cr_assert_eq(rc, code, "%s: got %d (%s)", json, rc, e.msg);
    cr_assert_str_eq(e.msg, msg, "%s: got \"%s\"", json, e.msg);
    cr_assert_eq(m.type, 0, "message not zeroed after a refusal");
}

/* ---- round trips: requests -------------------------------------------------- */

Test(proto, hello_round_trip)
{
    proto_msg m, b;
    proto_msg_init(&m);
    m.type = PROTO_HELLO;
    m.id = 1;
    proto_hello *h = &m.u.hello;
    strcpy(h->worker_name, "gpu-host-01 \xc3\xa9"); /* UTF-8 kept as is */
    strcpy(h->pool, "night");
    h->slots = 64;
    h->ndevices = 2;
    strcpy(h->devices[0].name, "NVIDIA H100");
    strcpy(h->devices[0].type, "discrete");
    h->devices[0].vendor_id = 0x10de;
    h->devices[0].device_id = 0x2330;
    h->devices[0].api_version = 0x403000;
    h->devices[0].memory_mb = 81920;
    h->devices[0].fp16 = true;
    h->devices[0].subgroup_size = 32;
    strcpy(h->devices[1].name, "llvmpipe");
    strcpy(h->devices[1].type, "cpu");
    h->devices[1].memory_mb = (uint64_t)PROTO_MAX_INT;
    h->devices[1].vendor_id = UINT32_MAX;
    h->nkinds = 3;
    strcpy(h->kinds[0], "noop");
    strcpy(h->kinds[1], "ingest");
    strcpy(h->kinds[2], "removal.train");
    round_trip(&m, &b);
    const proto_hello *g = &b.u.hello;
    cr_assert_str_eq(g->worker_name, h->worker_name);
    cr_assert_str_eq(g->pool, "night");
    cr_assert_eq(g->slots, 64);
    cr_assert_eq(g->ndevices, 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_str_eq(g->devices[i].name, h->devices[i].name);
        cr_assert_str_eq(g->devices[i].type, h->devices[i].type);
        cr_assert_eq(g->devices[i].vendor_id, h->devices[i].vendor_id);
        cr_assert_eq(g->devices[i].device_id, h->devices[i].device_id);
        cr_assert_eq(g->devices[i].api_version, h->devices[i].api_version);
        cr_assert_eq(g->devices[i].memory_mb, h->devices[i].memory_mb);
        cr_assert_eq(g->devices[i].fp16, h->devices[i].fp16);
        cr_assert_eq(g->devices[i].subgroup_size, h->devices[i].subgroup_size);
    }
    cr_assert_eq(g->nkinds, 3);
    cr_assert_str_eq(g->kinds[2], "removal.train");
    proto_msg_free(&b);
}

Test(proto, lease_bye_heartbeat_round_trip)
{
    proto_msg m, b;
    proto_msg_init(&m);
    m.type = PROTO_LEASE;
    m.id = (uint64_t)PROTO_MAX_INT; /* the largest id survives cJSON's number printing */
    m.u.lease.worker_id = PROTO_MAX_INT;
    round_trip(&m, &b);
    cr_assert_eq(b.u.lease.worker_id, PROTO_MAX_INT);
    cr_assert_eq(b.id, (uint64_t)PROTO_MAX_INT);

    proto_msg_init(&m);
    m.type = PROTO_BYE;
    m.id = 0;
    m.u.bye.worker_id = 7;
    round_trip(&m, &b);
    cr_assert_eq(b.u.bye.worker_id, 7);

    proto_msg_init(&m);
    m.type = PROTO_HEARTBEAT;
    m.id = 9;
    m.u.heartbeat.worker_id = 3;
    m.u.heartbeat.nattempts = PROTO_MAX_IDS;
    for (size_t i = 0; i < PROTO_MAX_IDS; i++) {
        m.u.heartbeat.attempt_ids[i] = (int64_t)(i * 1000 + 1);
    }
    round_trip(&m, &b);
    cr_assert_eq(b.u.heartbeat.worker_id, 3);
    cr_assert_eq(b.u.heartbeat.nattempts, PROTO_MAX_IDS);
    cr_assert_arr_eq(b.u.heartbeat.attempt_ids, m.u.heartbeat.attempt_ids,
                     sizeof(int64_t) * PROTO_MAX_IDS);
    m.u.heartbeat.nattempts = 0;
    round_trip(&m, &b);
    cr_assert_eq(b.u.heartbeat.nattempts, 0);
}

Test(proto, progress_round_trip)
{
    proto_msg m, b;
    char long_line[PROTO_MAX_LOG_LINE + 1];
    memset(long_line, 'x', PROTO_MAX_LOG_LINE);
    long_line[PROTO_MAX_LOG_LINE] = '\0'; /* exactly at the limit: accepted */
    proto_msg_init(&m);
    m.type = PROTO_PROGRESS;
    m.id = 4;
    m.u.progress.worker_id = 2;
    m.u.progress.attempt_id = 11;
    m.u.progress.progress = 0.375;
    m.u.progress.nlines = 3;
    m.u.progress.lines[0] = "frame 10/40";
    m.u.progress.lines[1] = "tab\tand \"quotes\" and \\ and newline\n";
    m.u.progress.lines[2] = long_line;
    round_trip(&m, &b);
    cr_assert_eq(b.u.progress.worker_id, 2);
    cr_assert_eq(b.u.progress.attempt_id, 11);
    cr_assert_float_eq(b.u.progress.progress, 0.375, 1e-12);
    cr_assert_eq(b.u.progress.nlines, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(b.u.progress.lines[i], m.u.progress.lines[i]);
    }
    proto_msg_free(&b);

    m.u.progress.progress = -1;
    m.u.progress.nlines = 0;
    round_trip(&m, &b);
    cr_assert_eq(b.u.progress.progress, -1.0);
    cr_assert_eq(b.u.progress.nlines, 0);
    proto_msg_free(&b);
}

Test(proto, report_round_trip)
{
    proto_msg m, b;
    proto_msg_init(&m);
    m.type = PROTO_REPORT;
    m.id = 12;
    proto_report *r = &m.u.report;
    r->worker_id = 2;
    r->attempt_id = 99;
    r->outcome = PROTO_OUTCOME_SUCCEEDED;
    r->result = cJSON_Parse("{\"frames\":40,\"out\":\"/mnt/a.exr\",\"ok\":true,\"m\":[1.5,null]}");
    cr_assert_not_null(r->result);
    r->nlines = 1;
    r->lines[0] = "done";
    round_trip(&m, &b);
    const proto_report *g = &b.u.report;
    cr_assert_eq(g->worker_id, 2);
    cr_assert_eq(g->attempt_id, 99);
    cr_assert_eq(g->outcome, PROTO_OUTCOME_SUCCEEDED);
    cr_assert_eq(g->exit_code, 0);
    cr_assert_eq(g->signal, 0);
    cr_assert_str_eq(g->error, "");
    cr_assert(cJSON_Compare(g->result, r->result, true));
    char want[17];
    cr_assert_eq(proto_result_hash(r->result, want), RS_OK);
    cr_assert_str_eq(g->result_hash, want,
                     "encode fills result_hash when the caller left it empty");
    cr_assert_eq(g->nlines, 1);
    cr_assert_str_eq(g->lines[0], "done");
    proto_msg_free(&b);
    cJSON_Delete(r->result);

    /* killed by a signal */
    proto_msg_init(&m);
    m.type = PROTO_REPORT;
    m.id = 13;
    r->worker_id = 2;
    r->attempt_id = 100;
    r->outcome = PROTO_OUTCOME_FAILED;
    r->exit_code = -1;
    r->signal = 11;
    strcpy(r->error, "killed by signal 11 (SIGSEGV)");
    round_trip(&m, &b);
    cr_assert_eq(b.u.report.outcome, PROTO_OUTCOME_FAILED);
    cr_assert_eq(b.u.report.exit_code, -1);
    cr_assert_eq(b.u.report.signal, 11);
    cr_assert_str_eq(b.u.report.error, "killed by signal 11 (SIGSEGV)");
    cr_assert_null(b.u.report.result);
    cr_assert_str_eq(b.u.report.result_hash, "");
    proto_msg_free(&b);
}

/* ---- round trips: replies ----------------------------------------------------- */

Test(proto, replies_round_trip)
{
    proto_msg m, b;
    proto_msg_init(&m);
    m.is_reply = true;
    m.type = PROTO_HELLO;
    m.id = 1;
    m.u.hello_reply.worker_id = 5;
    m.u.hello_reply.heartbeat_ms = 2000;
    m.u.hello_reply.lease_ttl_ms = 10000;
    round_trip(&m, &b);
    cr_assert_eq(b.u.hello_reply.worker_id, 5);
    cr_assert_eq(b.u.hello_reply.heartbeat_ms, 2000);
    cr_assert_eq(b.u.hello_reply.lease_ttl_ms, 10000);

    proto_msg_init(&m);
    m.is_reply = true;
    m.type = PROTO_LEASE;
    m.id = 2;
    m.u.lease_reply.has_task = true;
    m.u.lease_reply.task_id = 31;
    m.u.lease_reply.attempt_id = 32;
    m.u.lease_reply.job_id = 30;
    strcpy(m.u.lease_reply.kind, "ingest");
    m.u.lease_reply.params = cJSON_Parse("{\"clip\":\"a.mov\",\"frames\":[0,99],\"x\":{}}");
    m.u.lease_reply.lease_ttl_ms = 15000;
    round_trip(&m, &b);
    cr_assert(b.u.lease_reply.has_task);
    cr_assert_eq(b.u.lease_reply.task_id, 31);
    cr_assert_eq(b.u.lease_reply.attempt_id, 32);
    cr_assert_eq(b.u.lease_reply.job_id, 30);
    cr_assert_str_eq(b.u.lease_reply.kind, "ingest");
    cr_assert(cJSON_Compare(b.u.lease_reply.params, m.u.lease_reply.params, true));
    cr_assert_eq(b.u.lease_reply.lease_ttl_ms, 15000);
    proto_msg_free(&b); /* frees the decoded params only */
    cJSON_Delete(m.u.lease_reply.params);

    proto_msg_init(&m);
    m.is_reply = true;
    m.type = PROTO_LEASE;
    m.id = 3;
    m.u.lease_reply.retry_ms = 500;
    m.u.lease_reply.lease_ttl_ms = 777; /* not sent when there is no task */
    round_trip(&m, &b);
    cr_assert(!b.u.lease_reply.has_task);
    cr_assert_eq(b.u.lease_reply.retry_ms, 500);
    cr_assert_eq(b.u.lease_reply.lease_ttl_ms, 0);
    cr_assert_null(b.u.lease_reply.params);

    proto_msg_init(&m);
    m.is_reply = true;
    m.type = PROTO_HEARTBEAT;
    m.id = 4;
    m.u.heartbeat_reply.ncancel = 2;
    m.u.heartbeat_reply.cancel[0] = 8;
    m.u.heartbeat_reply.cancel[1] = 9;
    m.u.heartbeat_reply.nunknown = 1;
    m.u.heartbeat_reply.unknown[0] = 77;
    round_trip(&m, &b);
    cr_assert_eq(b.u.heartbeat_reply.ncancel, 2);
    cr_assert_eq(b.u.heartbeat_reply.cancel[1], 9);
    cr_assert_eq(b.u.heartbeat_reply.nunknown, 1);
    cr_assert_eq(b.u.heartbeat_reply.unknown[0], 77);

    proto_msg_init(&m);
    m.is_reply = true;
    m.type = PROTO_PROGRESS;
    m.id = 5;
    m.u.progress_reply.cancel = true;
    round_trip(&m, &b);
    cr_assert(b.u.progress_reply.cancel);

    proto_msg_init(&m);
    m.is_reply = true;
    m.type = PROTO_REPORT;
    m.id = 6;
    m.u.report_reply.accepted = false;
    round_trip(&m, &b);
    cr_assert(!b.u.report_reply.accepted);
    m.u.report_reply.accepted = true;
    round_trip(&m, &b);
    cr_assert(b.u.report_reply.accepted);

    proto_msg_init(&m);
    m.is_reply = true;
    m.type = PROTO_BYE;
    m.id = 7;
    round_trip(&m, &b);

    proto_msg_init(&m);
    m.is_reply = true;
    m.type = PROTO_ERROR;
    m.id = 8;
    strcpy(m.u.error.code, "unknown_worker");
    strcpy(m.u.error.message, "worker 5 is not registered");
    round_trip(&m, &b);
    cr_assert_str_eq(b.u.error.code, "unknown_worker");
    cr_assert_str_eq(b.u.error.message, "worker 5 is not registered");
}

Test(proto, optional_fields_default)
{
    proto_msg m;
    rs_error e;
    cr_assert_eq(dec("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"w\",\"slots\":1,"
                     "\"devices\":[{\"name\":\"d\",\"type\":\"cpu\",\"memory_mb\":0}],"
                     "\"kinds\":[]}",
                     false, &m, &e),
                 RS_OK, "%s", e.msg);
    cr_assert_str_eq(m.u.hello.pool, "");
    cr_assert_eq(m.u.hello.devices[0].vendor_id, 0);
    cr_assert(!m.u.hello.devices[0].fp16);
    /* heartbeat reply lists may be left out; 1.0 is an integer */
    cr_assert_eq(dec("{\"v\":1.0,\"type\":\"heartbeat\",\"id\":2}", true, &m, &e), RS_OK, "%s",
                 e.msg);
    cr_assert_eq(m.u.heartbeat_reply.ncancel, 0);
    /* whitespace around the value is fine */
    cr_assert_eq(dec(" \n{\"v\":1,\"type\":\"bye\",\"id\":3,\"worker_id\":4}\r\n ", false, &m, &e),
                 RS_OK, "%s", e.msg);
}

/* ---- refusals ------------------------------------------------------------------ */

Test(proto, refuses_version)
{
    refused("{\"v\":7,\"type\":\"hello\",\"id\":1}", false, RS_EPROTO,
            "unsupported protocol version 7 (this daemon speaks 1)");
    refused("{\"v\":0,\"type\":\"lease\",\"id\":1}", true, RS_EPROTO,
            "unsupported protocol version 0 (this worker speaks 1)");
    refused("{\"type\":\"bye\",\"id\":1,\"worker_id\":1}", false, RS_EINVAL, "v: required");
    refused("{\"v\":\"1\",\"type\":\"bye\",\"id\":1,\"worker_id\":1}", false, RS_EINVAL,
            "v: must be an integer");
    refused("{\"v\":1.5,\"type\":\"bye\",\"id\":1,\"worker_id\":1}", false, RS_EINVAL,
            "v: must be an integer");
}

Test(proto, refuses_type_and_id)
{
    refused("{\"v\":1,\"type\":\"launch\",\"id\":1}", false, RS_EINVAL,
            "type: unknown request type \"launch\"");
    refused("{\"v\":1,\"type\":\"error\",\"id\":1}", false, RS_EINVAL,
            "type: unknown request type \"error\"");
    refused("{\"v\":1,\"type\":3,\"id\":1}", false, RS_EINVAL, "type: must be a string");
    refused("{\"v\":1,\"type\":\"bye\",\"worker_id\":1}", false, RS_EINVAL, "id: required");
    refused("{\"v\":1,\"type\":\"bye\",\"id\":-1,\"worker_id\":1}", false, RS_EINVAL,
            "id: must be an integer in 0..9007199254740991");
    refused("{\"v\":1,\"type\":\"bye\",\"id\":9007199254740992,\"worker_id\":1}", false, RS_EINVAL,
            "id: must be an integer in 0..9007199254740991");
    refused("{\"v\":1,\"type\":\"bye\",\"id\":1.25,\"worker_id\":1}", false, RS_EINVAL,
            "id: must be an integer in 0..9007199254740991");
}

Test(proto, refuses_unknown_and_duplicate_fields)
{
    refused("{\"v\":1,\"type\":\"bye\",\"id\":1,\"worker_id\":1,\"force\":true}", false, RS_EINVAL,
            "bye.force: unknown field");
    refused("{\"v\":1,\"type\":\"bye\",\"id\":1,\"worker_id\":1,\"worker_id\":2}", false, RS_EINVAL,
            "bye.worker_id: duplicate field");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"w\",\"slots\":1,"
            "\"devices\":[{\"name\":\"d\",\"type\":\"cpu\",\"memory_mb\":1,\"vram\":2}],"
            "\"kinds\":[]}",
            false, RS_EINVAL, "hello.devices[0].vram: unknown field");
    /* a hostile field name is cut and its control characters hidden */
    refused("{\"v\":1,\"type\":\"bye\",\"id\":1,\"worker_id\":1,"
            "\"a\\nbcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz\":1}",
            false, RS_EINVAL, "bye.a?bcdefghijklmnopqrstuvwxyzabcdefghijklm...: unknown field");
    /* reply-only fields are not request fields */
    refused("{\"v\":1,\"type\":\"progress\",\"id\":1,\"cancel\":true}", false, RS_EINVAL,
            "progress.cancel: unknown field");
}

Test(proto, refuses_wrong_types_and_ranges)
{
    const char *dev3 = "{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"w\",\"slots\":2,"
                       "\"devices\":[{\"name\":\"a\",\"type\":\"cpu\",\"memory_mb\":1},"
                       "{\"name\":\"b\",\"type\":\"cpu\",\"memory_mb\":1},"
                       "{\"name\":\"c\",\"type\":\"cpu\",\"memory_mb\":-5}],\"kinds\":[]}";
    refused(dev3, false, RS_EINVAL, "hello.devices[2].memory_mb: must be a non-negative integer");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"w\",\"slots\":0,"
            "\"devices\":[],\"kinds\":[]}",
            false, RS_EINVAL, "hello.slots: must be an integer in 1..64");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"w\",\"slots\":65,"
            "\"devices\":[],\"kinds\":[]}",
            false, RS_EINVAL, "hello.slots: must be an integer in 1..64");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"\",\"slots\":1,"
            "\"devices\":[],\"kinds\":[]}",
            false, RS_EINVAL, "hello.worker_name: must not be empty");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":7,\"slots\":1,"
            "\"devices\":[],\"kinds\":[]}",
            false, RS_EINVAL, "hello.worker_name: must be a string");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"a\\tb\",\"slots\":1,"
            "\"devices\":[],\"kinds\":[]}",
            false, RS_EINVAL, "hello.worker_name: must not contain control characters");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"w\",\"slots\":1,"
            "\"devices\":{},\"kinds\":[]}",
            false, RS_EINVAL, "hello.devices: must be an array");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"w\",\"slots\":1,"
            "\"devices\":[{\"name\":\"d\",\"type\":\"gpu\",\"memory_mb\":1}],\"kinds\":[]}",
            false, RS_EINVAL,
            "hello.devices[0].type: must be discrete, integrated, virtual, cpu or other");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"w\",\"slots\":1,"
            "\"devices\":[],\"kinds\":[\"a\",2]}",
            false, RS_EINVAL, "hello.kinds[1]: must be a string");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"slots\":1,\"devices\":[],\"kinds\":[]}", false,
            RS_EINVAL, "hello.worker_name: required");
    refused("{\"v\":1,\"type\":\"lease\",\"id\":1,\"worker_id\":0}", false, RS_EINVAL,
            "lease.worker_id: must be a positive integer");
    refused("{\"v\":1,\"type\":\"heartbeat\",\"id\":1,\"worker_id\":1,\"attempts\":[1,0]}", false,
            RS_EINVAL, "heartbeat.attempts[1]: must be a positive integer");
    refused("{\"v\":1,\"type\":\"progress\",\"id\":1,\"worker_id\":1,\"attempt_id\":1,"
            "\"progress\":1.01}",
            false, RS_EINVAL, "progress.progress: must be -1 or a number in 0..1");
    refused("{\"v\":1,\"type\":\"progress\",\"id\":1,\"worker_id\":1,\"attempt_id\":1,"
            "\"progress\":-0.5}",
            false, RS_EINVAL, "progress.progress: must be -1 or a number in 0..1");
    refused("{\"v\":1,\"type\":\"progress\",\"id\":1,\"worker_id\":1,\"attempt_id\":1,"
            "\"progress\":\"half\"}",
            false, RS_EINVAL, "progress.progress: must be -1 or a number in 0..1");
}

Test(proto, refuses_bad_reports)
{
    const char *head = "{\"v\":1,\"type\":\"report\",\"id\":1,\"worker_id\":1,\"attempt_id\":2,";
    char buf[512];
    snprintf(buf, sizeof buf, "%s\"outcome\":\"done\",\"exit_code\":0,\"signal\":0}", head);
    refused(buf, false, RS_EINVAL, "report.outcome: must be \"succeeded\" or \"failed\"");
    snprintf(buf, sizeof buf, "%s\"outcome\":\"failed\",\"exit_code\":256,\"signal\":0}", head);
    refused(buf, false, RS_EINVAL, "report.exit_code: must be an integer in -1..255");
    snprintf(buf, sizeof buf, "%s\"outcome\":\"failed\",\"exit_code\":-1,\"signal\":65}", head);
    refused(buf, false, RS_EINVAL, "report.signal: must be an integer in 0..64");
    snprintf(buf, sizeof buf, "%s\"outcome\":\"failed\",\"exit_code\":1,\"signal\":9}", head);
    refused(buf, false, RS_EINVAL, "report.exit_code: must be -1 when signal is set");
    snprintf(buf, sizeof buf, "%s\"outcome\":\"failed\",\"exit_code\":-1,\"signal\":0}", head);
    refused(buf, false, RS_EINVAL, "report.exit_code: -1 only when killed by a signal");
    snprintf(buf, sizeof buf,
             "%s\"outcome\":\"succeeded\",\"exit_code\":1,\"signal\":0,\"result\":{}}", head);
    refused(buf, false, RS_EINVAL, "report.outcome: succeeded needs exit_code 0 and signal 0");
    snprintf(buf, sizeof buf, "%s\"outcome\":\"succeeded\",\"exit_code\":0,\"signal\":0}", head);
    refused(buf, false, RS_EINVAL, "report.result: required when succeeded");
    snprintf(buf, sizeof buf,
             "%s\"outcome\":\"succeeded\",\"exit_code\":0,\"signal\":0,\"result\":[1]}", head);
    refused(buf, false, RS_EINVAL, "report.result: must be a JSON object");
    snprintf(buf, sizeof buf,
             "%s\"outcome\":\"failed\",\"exit_code\":1,\"signal\":0,"
             "\"result_hash\":\"0123456789abcdef\"}",
             head);
    refused(buf, false, RS_EINVAL, "report.result_hash: given without result");
    snprintf(buf, sizeof buf,
             "%s\"outcome\":\"succeeded\",\"exit_code\":0,\"signal\":0,\"result\":{},"
             "\"result_hash\":\"0123456789ABCDEF\"}",
             head);
    refused(buf, false, RS_EINVAL, "report.result_hash: must be 16 lowercase hex digits");
    snprintf(buf, sizeof buf,
             "%s\"outcome\":\"succeeded\",\"exit_code\":0,\"signal\":0,\"result\":{},"
             "\"result_hash\":\"0123456789abcdef0\"}",
             head);
    refused(buf, false, RS_EINVAL, "report.result_hash: must be 16 lowercase hex digits");
    char want[17];
    cJSON *empty = cJSON_CreateObject();
    cr_assert_eq(proto_result_hash(empty, want), RS_OK);
    cJSON_Delete(empty);
    snprintf(buf, sizeof buf,
             "%s\"outcome\":\"succeeded\",\"exit_code\":0,\"signal\":0,\"result\":{},"
             "\"result_hash\":\"0123456789abcdef\"}",
             head);
    char msg[128];
    snprintf(msg, sizeof msg, "report.result_hash: 0123456789abcdef does not match the result (%s)",
             want);
    refused(buf, false, RS_EINVAL, msg);
}

Test(proto, refuses_bad_replies)
{
    refused("{\"v\":1,\"type\":\"lease\",\"id\":1,\"has_task\":false,\"retry_ms\":5,\"task_id\":3}",
            true, RS_EINVAL, "lease.task_id: only allowed when has_task is true");
    refused("{\"v\":1,\"type\":\"lease\",\"id\":1,\"has_task\":true,\"retry_ms\":5}", true,
            RS_EINVAL, "lease.retry_ms: only allowed when has_task is false");
    refused("{\"v\":1,\"type\":\"lease\",\"id\":1,\"has_task\":true,\"task_id\":1,"
            "\"attempt_id\":1,\"job_id\":1,\"kind\":\"k\",\"params\":\"x\",\"lease_ttl_ms\":1}",
            true, RS_EINVAL, "lease.params: must be a JSON object");
    refused("{\"v\":1,\"type\":\"lease\",\"id\":1,\"has_task\":1}", true, RS_EINVAL,
            "lease.has_task: must be true or false");
    refused("{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_id\":1,\"heartbeat_ms\":0,"
            "\"lease_ttl_ms\":1}",
            true, RS_EINVAL, "hello.heartbeat_ms: must be an integer in 1..86400000");
    refused("{\"v\":1,\"type\":\"error\",\"id\":1,\"code\":\"Bad\",\"message\":\"\"}", true,
            RS_EINVAL, "error.code: must be lowercase letters and '_'");
    refused("{\"v\":1,\"type\":\"bye\",\"id\":1,\"worker_id\":1}", true, RS_EINVAL,
            "bye.worker_id: unknown field");
}

Test(proto, refuses_over_long_strings_and_arrays)
{
    char name[PROTO_MAX_NAME + 1];
    memset(name, 'n', PROTO_MAX_NAME);
    name[PROTO_MAX_NAME] = '\0';
    char buf[16384];
    snprintf(buf, sizeof buf,
             "{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"%s\",\"slots\":1,"
             "\"devices\":[],\"kinds\":[]}",
             name);
    refused(buf, false, RS_EINVAL, "hello.worker_name: is 128 bytes, over the limit of 127");
    name[PROTO_MAX_NAME - 1] = '\0'; /* 127 bytes: fits */
    snprintf(buf, sizeof buf,
             "{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"%s\",\"slots\":1,"
             "\"devices\":[],\"kinds\":[]}",
             name);
    proto_msg m;
    rs_error e;
    cr_assert_eq(dec(buf, false, &m, &e), RS_OK, "%s", e.msg);

    char line[PROTO_MAX_LOG_LINE + 2];
    memset(line, 'l', PROTO_MAX_LOG_LINE + 1);
    line[PROTO_MAX_LOG_LINE + 1] = '\0';
    snprintf(buf, sizeof buf,
             "{\"v\":1,\"type\":\"progress\",\"id\":1,\"worker_id\":1,\"attempt_id\":1,"
             "\"progress\":0,\"lines\":[\"ok\",\"%s\"]}",
             line);
    refused(buf, false, RS_EINVAL, "progress.lines[1]: is 1025 bytes, over the limit of 1024");

    /* 65 attempt ids */
    int o = snprintf(buf, sizeof buf,
                     "{\"v\":1,\"type\":\"heartbeat\",\"id\":1,\"worker_id\":1,\"attempts\":[");
    for (int i = 0; i <= PROTO_MAX_IDS; i++) {
        o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%d", i ? "," : "", i + 1);
    }
    snprintf(buf + o, sizeof buf - (size_t)o, "]}");
    refused(buf, false, RS_EINVAL, "heartbeat.attempts: has 65 items, over the limit of 64");

    /* 65 log lines in a report */
    o = snprintf(buf, sizeof buf,
                 "{\"v\":1,\"type\":\"report\",\"id\":1,\"worker_id\":1,\"attempt_id\":1,"
                 "\"outcome\":\"failed\",\"exit_code\":3,\"signal\":0,\"lines\":[");
    for (int i = 0; i <= PROTO_MAX_LOG_LINES; i++) {
        o += snprintf(buf + o, sizeof buf - (size_t)o, "%s\"x\"", i ? "," : "");
    }
    snprintf(buf + o, sizeof buf - (size_t)o, "]}");
    refused(buf, false, RS_EINVAL, "report.lines: has 65 items, over the limit of 64");

    /* 17 devices */
    o = snprintf(buf, sizeof buf,
                 "{\"v\":1,\"type\":\"hello\",\"id\":1,\"worker_name\":\"w\",\"slots\":1,"
                 "\"kinds\":[],\"devices\":[");
    for (int i = 0; i <= PROTO_MAX_DEVICES; i++) {
        o += snprintf(buf + o, sizeof buf - (size_t)o,
                      "%s{\"name\":\"d\",\"type\":\"cpu\",\"memory_mb\":1}", i ? "," : "");
    }
    snprintf(buf + o, sizeof buf - (size_t)o, "]}");
    refused(buf, false, RS_EINVAL, "hello.devices: has 17 items, over the limit of 16");

    char err[PROTO_MAX_ERROR + 1];
    memset(err, 'e', PROTO_MAX_ERROR);
    err[PROTO_MAX_ERROR] = '\0';
    snprintf(buf, sizeof buf,
             "{\"v\":1,\"type\":\"report\",\"id\":1,\"worker_id\":1,\"attempt_id\":1,"
             "\"outcome\":\"failed\",\"exit_code\":3,\"signal\":0,\"error\":\"%s\"}",
             err);
    refused(buf, false, RS_EINVAL, "report.error: is 1024 bytes, over the limit of 1023");
}

Test(proto, refuses_bad_bytes)
{
    refused("", false, RS_EINVAL, "message: empty");
    refused("{\"v\":1,\"type\":\"bye\",\"id\":1,\"worker_id\":1", false, RS_EINVAL,
            "message: not valid JSON near byte 39");
    refused("{\"v\":1,\"type\":\"bye\",\"id\":1,\"worker_id\":1} x", false, RS_EINVAL,
            "message: trailing bytes after the JSON value at byte 42");
    refused("[1,2]", false, RS_EINVAL, "message: top level must be a JSON object");
    refused("\"hello\"", false, RS_EINVAL, "message: top level must be a JSON object");
    refused("{\"v\":1,\"type\":\"hello\xff\",\"id\":1}", false, RS_EINVAL,
            "message: not valid UTF-8 at byte 20");
    refused("{\"v\":1,\"type\":\"\xed\xa0\x80\",\"id\":1}", false, RS_EINVAL, /* surrogate */
            "message: not valid UTF-8 at byte 15");
    refused("{\"v\":1,\"type\":\"\xc0\xaf\",\"id\":1}", false, RS_EINVAL, /* overlong */
            "message: not valid UTF-8 at byte 15");
    refused("{\"v\":1,\"type\":\"bye\",\"id\":1,\"worker_id\":1,\"x\":\"a\\u0000b\"}", false,
            RS_EINVAL, "message: \\u0000 escape at offset 47");
    /* an escaped backslash before u0000 is not an escape of u */
    proto_msg m;
    rs_error e;
    cr_assert_eq(
        dec("{\"v\":1,\"type\":\"error\",\"id\":1,\"code\":\"c\",\"message\":\"a\\\\u0000\"}", true,
            &m, &e),
        RS_OK, "%s", e.msg);
    cr_assert_str_eq(m.u.error.message, "a\\u0000");

    /* a raw NUL inside the given length */
    const char nul[] = "{\"v\":1,\"type\":\"bye\",\"id\":1,\"worker_id\":1}\0{}";
    uint64_t id = 99;
    cr_assert_eq(proto_decode(nul, sizeof nul - 1, false, &m, &id, &e), RS_EINVAL);
    cr_assert_str_eq(e.msg, "message: NUL byte at offset 41");
    cr_assert_eq(id, 0);
}

Test(proto, decodes_unterminated_input)
{
    const char *text = "{\"v\":1,\"type\":\"bye\",\"id\":5,\"worker_id\":2}";
    size_t n = strlen(text);
    /* the message sits in a bigger buffer with no NUL after it */
    char *buf = malloc(n + 8);
    memcpy(buf, text, n);
    memcpy(buf + n, "9999999]", 8);
    proto_msg m;
    rs_error e;
    cr_assert_eq(proto_decode(buf, n, false, &m, NULL, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(m.u.bye.worker_id, 2);
    /* cut one byte short: truncated, not read past */
    cr_assert_eq(proto_decode(buf, n - 1, false, &m, NULL, &e), RS_EINVAL);
    free(buf);
}

Test(proto, refuses_over_size)
{
    size_t n = PROTO_MAX_MSG + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    proto_msg m;
    rs_error e;
    cr_assert_eq(proto_decode(big, n, false, &m, NULL, &e), RS_ETOOBIG);
    cr_assert_str_eq(e.msg, "message: 1048577 bytes, over the 1048576-byte limit");
    cr_assert_str_eq(proto_error_code_for(RS_ETOOBIG), "too_big");
    free(big);

    /* encoding refuses what would go over the cap too */
    proto_msg r;
    proto_msg_init(&r);
    r.is_reply = true;
    r.type = PROTO_LEASE;
    r.id = 1;
    r.u.lease_reply.has_task = true;
    r.u.lease_reply.task_id = 1;
    r.u.lease_reply.attempt_id = 1;
    r.u.lease_reply.job_id = 1;
    strcpy(r.u.lease_reply.kind, "k");
    r.u.lease_reply.lease_ttl_ms = 1;
    char *s = malloc(PROTO_MAX_MSG);
    memset(s, 'a', PROTO_MAX_MSG - 1);
    s[PROTO_MAX_MSG - 1] = '\0';
    r.u.lease_reply.params = cJSON_CreateObject();
    cJSON_AddStringToObject(r.u.lease_reply.params, "blob", s);
    free(s);
    char *out = NULL;
    cr_assert_eq(proto_encode(&r, &out, NULL, &e), RS_ETOOBIG);
    cr_assert_null(out);
    cJSON_Delete(r.u.lease_reply.params);
}

Test(proto, id_echoed_on_failure)
{
    proto_msg m;
    rs_error e;
    uint64_t id = 0;
    const char *t = "{\"v\":2,\"type\":\"hello\",\"id\":42}";
    cr_assert_eq(proto_decode(t, strlen(t), false, &m, &id, &e), RS_EPROTO);
    cr_assert_eq(id, 42);
    cr_assert_str_eq(proto_error_code_for(RS_EPROTO), "unsupported_version");
    t = "{\"v\":1,\"type\":\"bye\",\"id\":43,\"worker_id\":\"x\"}";
    cr_assert_eq(proto_decode(t, strlen(t), false, &m, &id, &e), RS_EINVAL);
    cr_assert_eq(id, 43);
    cr_assert_str_eq(proto_error_code_for(RS_EINVAL), "bad_request");
    cr_assert_str_eq(proto_error_code_for(RS_EDB), "internal");
}

Test(proto, encode_refuses_bad_structs)
{
    proto_msg m;
    rs_error e;
    char *out = NULL;
    proto_msg_init(&m);
    m.type = PROTO_HELLO;
    strcpy(m.u.hello.worker_name, "w");
    m.u.hello.slots = 0;
    cr_assert_eq(proto_encode(&m, &out, NULL, &e), RS_EINVAL);
    cr_assert_str_eq(e.msg, "encode: hello.slots: must be an integer in 1..64");
    m.u.hello.slots = 1;
    m.u.hello.nkinds = PROTO_MAX_KINDS + 1;
    cr_assert_eq(proto_encode(&m, &out, NULL, &e), RS_EINVAL);
    m.u.hello.nkinds = 0;
    memset(m.u.hello.pool, 'p', sizeof m.u.hello.pool); /* not terminated */
    cr_assert_eq(proto_encode(&m, &out, NULL, &e), RS_EINVAL);
    cr_assert_null(out);

    proto_msg_init(&m);
    m.type = PROTO_ERROR; /* reply only */
    cr_assert_eq(proto_encode(&m, &out, NULL, &e), RS_EINVAL);
    proto_msg_init(&m);
    m.type = PROTO_PROGRESS;
    m.u.progress.worker_id = 1;
    m.u.progress.attempt_id = 1;
    m.u.progress.progress = 0.0 / 0.0; /* NaN prints as null: refused */
    cr_assert_eq(proto_encode(&m, &out, NULL, &e), RS_EINVAL);
    m.u.progress.progress = 0.5;
    m.u.progress.nlines = 1; /* lines[0] NULL */
    cr_assert_eq(proto_encode(&m, &out, NULL, &e), RS_EINVAL);
    m.u.progress.nlines = 0;
    m.id = (uint64_t)PROTO_MAX_INT + 1;
    cr_assert_eq(proto_encode(&m, &out, NULL, &e), RS_EINVAL);
    cr_assert_null(out);
}

/* ---- error replies ---------------------------------------------------------------- */

Test(proto, error_reply_format)
{
    char *out = NULL;
    size_t n = 0;
    cr_assert_eq(proto_encode_error(42, "unsupported_version",
                                    "unsupported protocol version 7 (this daemon speaks 1)", &out,
                                    &n),
                 RS_OK);
    cr_assert_str_eq(out, "{\"v\":1,\"type\":\"error\",\"id\":42,\"code\":\"unsupported_version\","
                          "\"message\":\"unsupported protocol version 7 (this daemon speaks 1)\"}");
    cr_assert_eq(n, strlen(out));
    proto_msg m;
    rs_error e;
    cr_assert_eq(dec(out, true, &m, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(m.type, PROTO_ERROR);
    cr_assert_eq(m.id, 42);
    free(out);

    /* invalid UTF-8, control bytes and an over-long message still give a sendable reply */
    char msg[3000];
    memset(msg, 'm', sizeof msg);
    memcpy(msg, "bad\xff\x01", 5);
    memcpy(msg + PROTO_MAX_ERROR - 3, "\xe2\x82\xac", 3); /* a 3-byte char across the cut */
    msg[sizeof msg - 1] = '\0';
    cr_assert_eq(proto_encode_error(7, "bad_request", msg, &out, &n), RS_OK);
    cr_assert_eq(dec(out, true, &m, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(strncmp(m.u.error.message, "bad??mm", 7), 0, "%s", m.u.error.message);
    cr_assert_lt(strlen(m.u.error.message), (size_t)PROTO_MAX_ERROR);
    cr_assert_eq(strlen(m.u.error.message), PROTO_MAX_ERROR - 3, "cut before the euro sign");
    free(out);

    cr_assert_eq(proto_encode_error(1, "Not A Code", "x", &out, &n), RS_EINVAL);
    cr_assert_eq(proto_encode_error(1, NULL, "x", &out, &n), RS_EINVAL);
    /* an id we could not read goes out as 0 */
    cr_assert_eq(proto_encode_error(UINT64_MAX, "internal", NULL, &out, &n), RS_OK);
    cr_assert_str_eq(
        out, "{\"v\":1,\"type\":\"error\",\"id\":0,\"code\":\"internal\",\"message\":\"\"}");
    free(out);
}

/* ---- result hash ------------------------------------------------------------------- */

Test(proto, result_hash_stable)
{
    const char *text = "{\"frames\":40,\"path\":\"out/\\u00e9.exr\",\"stats\":{\"psnr\":38.25,"
                       "\"list\":[1,2,3]},\"ok\":true}";
    cJSON *a = cJSON_Parse(text);
    cJSON *b = cJSON_Parse("{ \"frames\" : 40.0, \"path\":\"out/\xc3\xa9.exr\", \"stats\" : "
                           "{\"psnr\":38.250, \"list\":[1, 2, 3]}, \"ok\":true }");
    char ha[17], hb[17];
    cr_assert_eq(proto_result_hash(a, ha), RS_OK);
    cr_assert_eq(proto_result_hash(b, hb), RS_OK);
    cr_assert_str_eq(ha, hb, "same value, different spacing and number spelling");
    cr_assert_eq(strlen(ha), 16);
    for (int i = 0; i < 16; i++) {
        cr_assert(strchr("0123456789abcdef", ha[i]) != NULL);
    }
    /* it is xxh64 (seed 0) of the unformatted print */
    const char *canon = "{\"frames\":40,\"path\":\"out/\xc3\xa9.exr\",\"stats\":{\"psnr\":38.25,"
                        "\"list\":[1,2,3]},\"ok\":true}";
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)XXH64(canon, strlen(canon), 0));
    cr_assert_str_eq(ha, want);
    /* a pinned value: changing the hash breaks idempotency of stored reports */
    cJSON *pinned = cJSON_Parse("{\"a\":1}");
    cr_assert_eq(proto_result_hash(pinned, want), RS_OK);
    char pin[17];
    snprintf(pin, sizeof pin, "%016llx", (unsigned long long)XXH64("{\"a\":1}", 7, 0));
    cr_assert_str_eq(want, pin);
    cJSON_Delete(pinned);

    /* key order is part of the value */
    cJSON *c = cJSON_Parse("{\"ok\":true,\"frames\":40}");
    cJSON *d = cJSON_Parse("{\"frames\":40,\"ok\":true}");
    char hc[17], hd[17];
    proto_result_hash(c, hc);
    proto_result_hash(d, hd);
    cr_assert_str_neq(hc, hd);

    /* survives a report's encode -> decode -> encode */
    proto_msg m, back;
    proto_msg_init(&m);
    m.type = PROTO_REPORT;
    m.id = 1;
    m.u.report.worker_id = 1;
    m.u.report.attempt_id = 1;
    m.u.report.outcome = PROTO_OUTCOME_SUCCEEDED;
    m.u.report.result = a;
    memcpy(m.u.report.result_hash, ha, 17);
    round_trip(&m, &back);
    cr_assert_str_eq(back.u.report.result_hash, ha);
    char again[17];
    cr_assert_eq(proto_result_hash(back.u.report.result, again), RS_OK);
    cr_assert_str_eq(again, ha);
    proto_msg_free(&back);

    /* a caller-supplied wrong hash is refused at encode time */
    m.u.report.result_hash[0] = ha[0] == '0' ? '1' : '0';
    char *out = NULL;
    rs_error e;
    cr_assert_eq(proto_encode(&m, &out, NULL, &e), RS_EINVAL);
    cr_assert_null(out);

    cr_assert_eq(proto_result_hash(NULL, hc), RS_EINVAL);
    cJSON *arr = cJSON_CreateArray();
    cr_assert_eq(proto_result_hash(arr, hc), RS_EINVAL);
    cJSON_Delete(arr);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    cJSON_Delete(d);
}

Test(proto, type_names)
{
    cr_assert_str_eq(proto_type_name(PROTO_HELLO), "hello");
    cr_assert_str_eq(proto_type_name(PROTO_ERROR), "error");
    cr_assert_null(proto_type_name((proto_type)0));
    proto_msg_free(NULL);
}

/* The fuzz seeds must be what they claim: req_* / rep_* decode, bad_* do not. */
Test(proto, seed_corpus_is_valid)
{
    static const char *const names[] = {
        "req_hello.json",       "req_lease.json",      "req_heartbeat.json",
        "req_progress.json",    "req_report_ok.json",  "req_report_failed.json",
        "req_bye.json",         "rep_hello.json",      "rep_lease_task.json",
        "rep_lease_none.json",  "rep_heartbeat.json",  "rep_progress.json",
        "rep_report.json",      "rep_bye.json",        "rep_error.json",
        "bad_version.json",     "bad_truncated.json",  "bad_nul.bin",
        "bad_escaped_nul.json", "bad_not_object.json", "bad_utf8.bin",
        "bad_field.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/proto/%s", RS_SOURCE_DIR, names[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        proto_msg m;
        rs_error e;
        bool reply = strncmp(names[i], "rep_", 4) == 0;
        rs_err rc = proto_decode(buf, n, reply, &m, NULL, &e);
        if (strncmp(names[i], "bad_", 4) == 0) {
            cr_assert_neq(rc, RS_OK, "%s decoded", names[i]);
            cr_assert_neq(proto_decode(buf, n, !reply, &m, NULL, &e), RS_OK, "%s", names[i]);
        } else {
            cr_assert_eq(rc, RS_OK, "%s: %s", names[i], e.msg);
            proto_msg_free(&m);
        }
    }
}

/* Child output is any bytes: free text is patched so a report always goes out. */
Test(proto, encode_patches_invalid_utf8_in_free_text)
{
    proto_msg m, b;
    proto_msg_init(&m);
    m.type = PROTO_REPORT;
    m.id = 1;
    m.u.report.worker_id = 1;
    m.u.report.attempt_id = 2;
    m.u.report.outcome = PROTO_OUTCOME_FAILED;
    m.u.report.exit_code = 3;
    strcpy(m.u.report.error, "exit code 3: bad \xff byte, cut \xe2\x82");
    m.u.report.nlines = 1;
    m.u.report.lines[0] = "junk \xc0\xaf\x80 end";
    round_trip(&m, &b);
    cr_assert_str_eq(b.u.report.error, "exit code 3: bad ? byte, cut ??");
    cr_assert_str_eq(b.u.report.lines[0], "junk ??? end");
    proto_msg_free(&b);

    /* identifiers are not patched: refused */
    proto_msg_init(&m);
    m.is_reply = true;
    m.type = PROTO_LEASE;
    m.u.lease_reply.has_task = true;
    m.u.lease_reply.task_id = 1;
    m.u.lease_reply.attempt_id = 1;
    m.u.lease_reply.job_id = 1;
    m.u.lease_reply.lease_ttl_ms = 1;
    strcpy(m.u.lease_reply.kind, "no\xff");
    m.u.lease_reply.params = cJSON_CreateObject();
    char *out = NULL;
    rs_error e;
    cr_assert_eq(proto_encode(&m, &out, NULL, &e), RS_EINVAL);
    cr_assert_null(out);
    cJSON_Delete(m.u.lease_reply.params);
}
