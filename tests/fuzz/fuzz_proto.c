/*
 * fuzz_proto.c: proto_decode must never crash, leak or read out of bounds,
 * whatever the bytes; and whatever it accepts must re-encode, decode again,
 * and re-encode to the very same text (encoding is a fixed point), so the
 * daemon never sends what a worker would refuse, or the other way round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto.h"

static void check(bool ok, const char *what, const proto_msg *m, const rs_error *e)
{
    if (!ok) {
        fprintf(stderr, "fuzz_proto: %s (%s %s): %s\n", what, m->is_reply ? "reply" : "request",
                proto_type_name(m->type) ? proto_type_name(m->type) : "?", e->msg);
        abort();
    }
}

static void one(const uint8_t *data, size_t size, bool is_reply)
{
    proto_msg m;
    proto_msg again;
    rs_error e;
    uint64_t id = 0;
    char *text = NULL;
    char *text2 = NULL;
    size_t n = 0;
    size_t n2 = 0;

    rs_error_clear(&e);
    if (proto_decode(data, size, is_reply, &m, &id, &e) != RS_OK) {
        /* a refusal must leave a message and an id the error reply can echo */
        check(e.msg[0] != '\0' && id <= (uint64_t)PROTO_MAX_INT, "refusal without detail", &m, &e);
        char *reply = NULL;
        check(proto_encode_error(id, proto_error_code_for(e.code), e.msg, &reply, &n) == RS_OK,
              "error reply not encodable", &m, &e);
        free(reply);
        return;
    }
    check(proto_encode(&m, &text, &n, &e) == RS_OK, "decoded message does not re-encode", &m, &e);
    check(proto_decode(text, n, is_reply, &again, NULL, &e) == RS_OK,
          "re-encoded message does not decode", &m, &e);
    check(again.type == m.type && again.id == m.id, "type or id changed", &m, &e);
    check(proto_encode(&again, &text2, &n2, &e) == RS_OK, "second encode failed", &m, &e);
    check(n == n2 && memcmp(text, text2, n) == 0, "encoding is not a fixed point", &m, &e);
    free(text);
    free(text2);
    proto_msg_free(&again);
    proto_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, false);
    one(data, size, true);
    return 0;
}
