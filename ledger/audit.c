/*
 * audit.c: `rushes audit`'s engine. Trusts nothing but the export text and
 * a public key: verifies the chain, then re-derives every recorded
 * alteration from the files themselves (hashes, decoded pixels, the mask
 * fetched by hash) and fails on any changed pixel outside its mask.
 *
 * Frames are independent, so they are audited on a few threads; the mask
 * fetch callback (the CLI's HTTP client) is serialised by a mutex.
 */
#include "ledger.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "fs.h"
#include "sha256.h"

rs_err ledger_mask_from_bytes(const char *hash, const uint8_t *buf, size_t len, ledger_mask **out,
                              rs_error *e);
rs_err ledger_audio_agree(const media_audio *s, const media_audio *o, rs_error *e);
rs_err ledger_mask_count(const ledger_mask *m, const media_frame *src, const media_frame *out,
                         uint64_t *inside, uint64_t *outside, uint32_t *fx, uint32_t *fy,
                         rs_error *e);

rs_err ledger_png_fast_count(const uint8_t *sbuf, size_t slen, const uint8_t *obuf, size_t olen,
                             const ledger_mask *m, uint64_t *inside, uint64_t *outside,
                             uint32_t *fx, uint32_t *fy, media_frame **labels, rs_error *e);

#define AUDIT_MAX_FILE ((size_t)4 << 30)

typedef struct audit_item {
    const cJSON *ev;
    cJSON *failures; /* array, owned */
    uint64_t inside;
    uint64_t outside;
    bool audio;
    bool done;
} audit_item;

/* An "alteration_authorised" event of the chain: what output labels name. */
typedef struct audit_auth {
    const char *hash;
    int64_t job;
} audit_auth;

typedef struct audit_ctx {
    const ledger_audit_opts *o;
    audit_auth *auths; /* sorted by hash */
    size_t nauths;
    audit_item *items;
    size_t n;
    atomic_size_t next;
    pthread_mutex_t fetch_lock;
} audit_ctx;

static void fail_add(audit_item *it, const char *file, int64_t frame, const char *what,
                     uint64_t count)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "file", file != NULL ? file : "");
    cJSON_AddNumberToObject(f, "frame", (double)frame);
    cJSON_AddStringToObject(f, "what", what);
    cJSON_AddNumberToObject(f, "count", (double)count);
    cJSON_AddItemToArray(it->failures, f);
}

static const char *sfield(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double nfield(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Reads and hashes one file; failures are added to it. NULL if unreadable. */
static char *read_checked(audit_item *it, const char *path, const char *want_hash, int64_t frame,
                          const char *role, size_t *len)
{
    char *buf = NULL;
    rs_error e;
    rs_error_clear(&e);
    char what[700];
    if (path == NULL || want_hash == NULL) {
        snprintf(what, sizeof what, "event has no %s path or hash", role);
        fail_add(it, path, frame, what, 1);
        return NULL;
    }
    char got[LEDGER_HEX];
    if (ledger_read_hashed(path, AUDIT_MAX_FILE, &buf, len, got, &e) != RS_OK) {
        snprintf(what, sizeof what, "%s unreadable: %s", role, rs_error_text(&e));
        fail_add(it, path, frame, what, 1);
        return NULL;
    }
    if (strcmp(got, want_hash) != 0) {
        snprintf(what, sizeof what,
                 "%s file does not match the recorded hash (changed after recording)", role);
        fail_add(it, path, frame, what, 1);
    }
    return buf;
}

/* Decodes a file read by read_checked; failures are added to it. */
static media_frame *decode_checked(audit_item *it, const char *path, const char *buf, size_t len,
                                   int64_t frame, const char *role)
{
    if (buf == NULL) {
        return NULL;
    }
    rs_error e;
    rs_error_clear(&e);
    media_frame *f = NULL;
    if (media_image_decode(path, buf, len, NULL, &f, &e) != RS_OK) {
        char what[700];
        snprintf(what, sizeof what, "%s cannot be decoded: %s", role, rs_error_text(&e));
        fail_add(it, path, frame, what, 1);
        return NULL;
    }
    return f;
}

/* Reads and hashes one audio file; failures are added to it. */
static media_audio *load_audio(audit_item *it, const char *path, const char *want_hash,
                               const char *role)
{
    char *buf = NULL;
    size_t len = 0;
    rs_error e;
    rs_error_clear(&e);
    char what[700];
    if (path == NULL || want_hash == NULL) {
        snprintf(what, sizeof what, "event has no %s path or hash", role);
        fail_add(it, path, -1, what, 1);
        return NULL;
    }
    char got[LEDGER_HEX];
    if (ledger_read_hashed(path, AUDIT_MAX_FILE, &buf, &len, got, &e) != RS_OK) {
        snprintf(what, sizeof what, "%s unreadable: %s", role, rs_error_text(&e));
        fail_add(it, path, -1, what, 1);
        return NULL;
    }
    if (strcmp(got, want_hash) != 0) {
        snprintf(what, sizeof what,
                 "%s file does not match the recorded hash (changed after recording)", role);
        fail_add(it, path, -1, what, 1);
    }
    media_audio *a = NULL;
    if (media_audio_decode(path, buf, len, (uint64_t)1 << 34, &a, &e) != RS_OK) {
        snprintf(what, sizeof what, "%s cannot be decoded: %s", role, rs_error_text(&e));
        fail_add(it, path, -1, what, 1);
        a = NULL;
    }
    free(buf);
    return a;
}

/* Every changed sample frame must lie in a recorded range. */
static void audit_audio(audit_item *it)
{
    const cJSON *ev = it->ev;
    const char *outp = sfield(ev, "output");
    media_audio *src = load_audio(it, sfield(ev, "source"), sfield(ev, "source_hash"), "source");
    media_audio *out = load_audio(it, outp, sfield(ev, "output_hash"), "output");
    rs_error e;
    char what[700];
    const cJSON *ranges = cJSON_GetObjectItemCaseSensitive(ev, "ranges");
    if (src == NULL || out == NULL) {
        goto done;
    }
    if (ledger_audio_agree(src, out, &e) != RS_OK || !cJSON_IsArray(ranges)) {
        snprintf(what, sizeof what, "cannot compare: %s",
                 cJSON_IsArray(ranges) ? rs_error_text(&e) : "event has no ranges");
        fail_add(it, outp, -1, what, 1);
        goto done;
    }
    size_t stride = (size_t)src->channels * 4;
    const uint8_t *sb = src->is_float ? (const uint8_t *)src->fpcm : (const uint8_t *)src->pcm;
    const uint8_t *ob = out->is_float ? (const uint8_t *)out->fpcm : (const uint8_t *)out->pcm;
    const cJSON *rg = ranges->child;
    int64_t first = -1;
    for (uint64_t i = 0; i < src->frames; i++) {
        if (memcmp(sb + i * stride, ob + i * stride, stride) == 0) {
            continue;
        }
        /* Ranges are recorded in order; skip those that end before i. */
        while (rg != NULL && cJSON_GetArrayItem(rg, 1) != NULL &&
               cJSON_GetArrayItem(rg, 1)->valuedouble <= (double)i) {
            rg = rg->next;
        }
        bool in = rg != NULL && cJSON_GetArrayItem(rg, 0) != NULL &&
                  cJSON_GetArrayItem(rg, 0)->valuedouble <= (double)i;
        if (in) {
            it->inside++;
        } else {
            first = first < 0 ? (int64_t)i : first;
            it->outside++;
        }
    }
    if (it->outside > 0) {
        snprintf(what, sizeof what,
                 "%" PRIu64 " changed sample frames outside the recorded ranges (first at %" PRId64
                 ")",
                 it->outside, first);
        fail_add(it, outp, first, what, it->outside);
    }
    double recorded = nfield(ev, "changed");
    if (recorded >= 0 && (uint64_t)recorded != it->inside) {
        snprintf(what, sizeof what,
                 "%" PRIu64 " sample frames differ inside the ranges but the ledger recorded %.0f",
                 it->inside, recorded);
        fail_add(it, outp, -1, what, it->inside);
    }
done:
    media_audio_destroy(src);
    media_audio_destroy(out);
    it->done = true;
}

static int auth_cmp(const void *a, const void *b)
{
    return strcmp(((const audit_auth *)a)->hash, ((const audit_auth *)b)->hash);
}

/* An output written under an authorisation must carry its labels, and the
 * authorisation must be an event of the same job in the verified chain. */
static void audit_labels(audit_ctx *c, audit_item *it, const media_frame *out, int64_t frame)
{
    const char *auth = sfield(it->ev, "authorised_by");
    const char *outp = sfield(it->ev, "output");
    char what[700];
    if (auth == NULL) {
        return; /* recorded before labels existed: nothing to compare */
    }
    audit_auth key = {.hash = auth};
    const audit_auth *a =
        c->nauths > 0 ? bsearch(&key, c->auths, c->nauths, sizeof key, auth_cmp) : NULL;
    int64_t job = (int64_t)nfield(it->ev, "job");
    if (a == NULL || a->job != job) {
        snprintf(what, sizeof what,
                 "alteration cites authorising event %.64s, which is not an authorisation of "
                 "job %" PRId64 " in the chain",
                 auth, job);
        fail_add(it, outp, frame, what, 1);
    }
    if (out == NULL) {
        return;
    }
    rs_error e;
    rs_error_clear(&e);
    if (ledger_label_check(out, auth, &e) != RS_OK) {
        snprintf(what, sizeof what, "output label: %s", rs_error_text(&e));
        fail_add(it, outp, frame, what, 1);
    }
}

static void audit_one(audit_ctx *c, audit_item *it)
{
    if (it->audio) {
        audit_audio(it);
        return;
    }
    const cJSON *ev = it->ev;
    int64_t frame = (int64_t)nfield(ev, "frame");
    const char *outp = sfield(ev, "output");
    const char *mh = sfield(ev, "mask_hash");
    ledger_mask *m = NULL;
    rs_error e;
    rs_error_clear(&e);
    char what[700];
    const char *srcp = sfield(ev, "source");
    size_t slen = 0, olen = 0;
    char *sbuf = read_checked(it, srcp, sfield(ev, "source_hash"), frame, "source", &slen);
    char *obuf = read_checked(it, outp, sfield(ev, "output_hash"), frame, "output", &olen);
    media_frame *src = NULL, *out = NULL, *labels = NULL;
    rs_err rc = RS_OK;
    if (mh == NULL) {
        fail_add(it, outp, frame, "event has no mask hash", 1);
        out = decode_checked(it, outp, obuf, olen, frame, "output");
        audit_labels(c, it, out, frame);
        goto done;
    }
    if (c->o->masks_dir != NULL) {
        rc = ledger_mask_load(c->o->masks_dir, mh, &m, &e);
    } else if (c->o->fetch != NULL) {
        uint8_t *buf = NULL;
        size_t len = 0;
        pthread_mutex_lock(&c->fetch_lock);
        rc = c->o->fetch(c->o->fetch_ud, mh, &buf, &len, &e);
        pthread_mutex_unlock(&c->fetch_lock);
        if (rc == RS_OK) {
            rc = ledger_mask_from_bytes(mh, buf, len, &m, &e);
        }
        free(buf);
    } else {
        rc = rs_error_set(&e, RS_EINVAL, "no mask source given");
    }
    if (rc != RS_OK) {
        snprintf(what, sizeof what, "mask: %s", rs_error_text(&e));
        fail_add(it, outp, frame, what, 1);
        out = decode_checked(it, outp, obuf, olen, frame, "output");
        audit_labels(c, it, out, frame);
        goto done;
    }
    uint32_t fx = 0, fy = 0;
    /* PNG pairs take the fast path (pngfast.c); anything it declines is
     * decoded by the media readers. */
    if (sbuf != NULL && obuf != NULL &&
        ledger_png_fast_count((const uint8_t *)sbuf, slen, (const uint8_t *)obuf, olen, m,
                              &it->inside, &it->outside, &fx, &fy, &labels, &e) == RS_OK) {
        audit_labels(c, it, labels, frame);
    } else {
        it->inside = it->outside = 0;
        src = decode_checked(it, srcp, sbuf, slen, frame, "source");
        out = decode_checked(it, outp, obuf, olen, frame, "output");
        audit_labels(c, it, out, frame);
        if (src == NULL || out == NULL) {
            goto done;
        }
        rc = ledger_mask_count(m, src, out, &it->inside, &it->outside, &fx, &fy, &e);
        if (rc != RS_OK) {
            snprintf(what, sizeof what, "cannot compare: %s", rs_error_text(&e));
            fail_add(it, outp, frame, what, 1);
            goto done;
        }
    }
    if (it->outside > 0) {
        snprintf(what, sizeof what,
                 "%" PRIu64 " changed pixels outside the recorded mask (first at x=%u y=%u)",
                 it->outside, fx, fy);
        fail_add(it, outp, frame, what, it->outside);
    }
    double recorded = nfield(ev, "changed");
    if (recorded >= 0 && (uint64_t)recorded != it->inside) {
        snprintf(what, sizeof what,
                 "%" PRIu64 " pixels differ inside the mask but the ledger recorded %.0f",
                 it->inside, recorded);
        fail_add(it, outp, frame, what, it->inside);
    }
done:
    ledger_mask_destroy(m);
    media_frame_destroy(src);
    media_frame_destroy(out);
    media_frame_destroy(labels);
    free(sbuf);
    free(obuf);
    it->done = true;
}

static void *audit_thread(void *arg)
{
    audit_ctx *c = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&c->next, 1);
        if (i >= c->n) {
            return NULL;
        }
        audit_one(c, &c->items[i]);
    }
}

static bool selected(const cJSON *ev, const ledger_audit_sel *sel)
{
    const char *type = sfield(ev, "type");
    if (type == NULL ||
        (strcmp(type, "alteration") != 0 && strcmp(type, "audio_alteration") != 0)) {
        return false;
    }
    if (sel == NULL) {
        return true;
    }
    if (sel->job_id > 0 && (int64_t)nfield(ev, "job") != sel->job_id) {
        return false;
    }
    const char *s = sfield(ev, "source");
    if (sel->source_path != NULL && (s == NULL || strcmp(s, sel->source_path) != 0)) {
        return false;
    }
    const char *o = sfield(ev, "output");
    if (sel->output_path != NULL && (o == NULL || strcmp(o, sel->output_path) != 0)) {
        return false;
    }
    return true;
}

rs_err ledger_audit(const char *export_text, size_t len, const unsigned char pk[32],
                    const ledger_audit_sel *sel, const ledger_audit_opts *o, cJSON **report,
                    rs_error *e)
{
    cJSON *events = NULL;
    ledger_verify_info info;
    rs_error ve;
    rs_error_clear(&ve);
    rs_err vrc = ledger_verify(export_text, len, pk, &info, &events, &ve);
    cJSON *rep = cJSON_CreateObject();
    if (rep == NULL) {
        cJSON_Delete(events);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    cJSON *chain = cJSON_AddObjectToObject(rep, "chain");
    cJSON_AddBoolToObject(chain, "ok", vrc == RS_OK);
    cJSON_AddNumberToObject(chain, "events", (double)info.events);
    cJSON_AddStringToObject(chain, "head", info.head);
    cJSON_AddStringToObject(chain, "project", info.project);
    cJSON *failures = cJSON_CreateArray();
    if (vrc != RS_OK) {
        cJSON_AddStringToObject(chain, "error", rs_error_text(&ve));
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "file", "ledger export");
        cJSON_AddNumberToObject(f, "frame", -1);
        cJSON_AddStringToObject(f, "what", rs_error_text(&ve));
        cJSON_AddNumberToObject(f, "count", 1);
        cJSON_AddItemToArray(failures, f);
    }
    size_t n = 0;
    const cJSON *ev = NULL;
    cJSON_ArrayForEach(ev, events)
    {
        n += selected(ev, sel) ? 1 : 0;
    }
    audit_ctx c = {.o = o, .n = n};
    atomic_init(&c.next, 0);
    pthread_mutex_init(&c.fetch_lock, NULL);
    c.items = calloc(n > 0 ? n : 1, sizeof *c.items);
    if (c.items == NULL) {
        pthread_mutex_destroy(&c.fetch_lock);
        cJSON_Delete(events);
        cJSON_Delete(failures);
        cJSON_Delete(rep);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    size_t na = 0;
    cJSON_ArrayForEach(ev, events)
    {
        const char *type = sfield(ev, "type");
        na += type != NULL && strcmp(type, "alteration_authorised") == 0 ? 1 : 0;
    }
    c.auths = calloc(na > 0 ? na : 1, sizeof *c.auths);
    if (c.auths == NULL) {
        free(c.items);
        pthread_mutex_destroy(&c.fetch_lock);
        cJSON_Delete(events);
        cJSON_Delete(failures);
        cJSON_Delete(rep);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    cJSON_ArrayForEach(ev, events)
    {
        const char *type = sfield(ev, "type");
        const char *h = sfield(ev, "event_hash");
        if (type != NULL && h != NULL && strcmp(type, "alteration_authorised") == 0) {
            c.auths[c.nauths].hash = h;
            c.auths[c.nauths].job = (int64_t)nfield(ev, "job");
            c.nauths++;
        }
    }
    qsort(c.auths, c.nauths, sizeof *c.auths, auth_cmp);
    size_t k = 0;
    cJSON_ArrayForEach(ev, events)
    {
        if (selected(ev, sel)) {
            c.items[k].ev = ev;
            c.items[k].audio = strcmp(sfield(ev, "type"), "audio_alteration") == 0;
            c.items[k].failures = cJSON_CreateArray();
            k++;
        }
    }
    int nt = o->threads > 0 ? o->threads : 2;
    if ((size_t)nt > n) {
        nt = n > 0 ? (int)n : 1;
    }
    pthread_t th[64];
    int started = 0;
    for (int i = 1; i < nt && i < 64; i++) {
        if (pthread_create(&th[started], NULL, audit_thread, &c) == 0) {
            started++;
        }
    }
    audit_thread(&c);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    uint64_t inside = 0, outside = 0, ain = 0, aout = 0, naudio = 0;
    for (size_t i = 0; i < n; i++) {
        if (c.items[i].audio) {
            ain += c.items[i].inside;
            aout += c.items[i].outside;
            naudio++;
        } else {
            inside += c.items[i].inside;
            outside += c.items[i].outside;
        }
        while (cJSON_GetArraySize(c.items[i].failures) > 0) {
            cJSON_AddItemToArray(failures, cJSON_DetachItemFromArray(c.items[i].failures, 0));
        }
        cJSON_Delete(c.items[i].failures);
    }
    free(c.items);
    free(c.auths);
    pthread_mutex_destroy(&c.fetch_lock);
    cJSON_Delete(events);
    int nfail = cJSON_GetArraySize(failures);
    cJSON_AddBoolToObject(rep, "ok", nfail == 0);
    cJSON_AddNumberToObject(rep, "frames", (double)(n - naudio));
    cJSON_AddNumberToObject(rep, "audio_files", (double)naudio);
    cJSON_AddNumberToObject(rep, "changed_samples", (double)(ain + aout));
    cJSON_AddNumberToObject(rep, "outside_samples", (double)aout);
    cJSON_AddNumberToObject(rep, "changed_pixels", (double)(inside + outside));
    cJSON_AddNumberToObject(rep, "inside_pixels", (double)inside);
    cJSON_AddNumberToObject(rep, "outside_pixels", (double)outside);
    cJSON_AddNumberToObject(
        rep, "coverage", inside + outside > 0 ? (double)inside / (double)(inside + outside) : 1.0);
    cJSON_AddItemToObject(rep, "failures", failures);
    *report = rep;
    return RS_OK;
}
