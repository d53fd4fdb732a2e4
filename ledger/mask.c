/*
 * mask.c: alteration masks (what a task actually changed in a frame), their
 * lossless run-length encoding stored by content hash, audio sample
 * ranges, the recording call altering kinds make, and output labels.
 *
 * The mask is derived from the pixels, not declared by the task: a model
 * that leaks a change outside the matte it was given still gets a mask that
 * covers the leak, and the audit then proves the mask and the files agree.
 */
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "fs.h"
#include "sha256.h"
#include "video.h"

#define MASK_MAGIC "RSMASK1\n"
#define MASK_MAGIC_LEN 8

rs_err ledger_mask_create(uint32_t width, uint32_t height, ledger_mask **out, rs_error *e)
{
    if (width == 0 || height == 0 || width > MEDIA_MAX_DIM || height > MEDIA_MAX_DIM) {
        return rs_error_set(e, RS_EINVAL, "mask: bad size %ux%u", width, height);
    }
    ledger_mask *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    m->bits = calloc((size_t)width * height, 1);
    if (m->bits == NULL) {
        free(m);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    m->width = width;
    m->height = height;
    *out = m;
    return RS_OK;
}

void ledger_mask_destroy(ledger_mask *m)
{
    if (m == NULL) {
        return;
    }
    free(m->bits);
    free(m);
}

static rs_err frames_agree(const media_frame *a, const media_frame *b, rs_error *e)
{
    if (a->width != b->width || a->height != b->height) {
        return rs_error_set(e, RS_EINVAL, "frames differ in size: %ux%u vs %ux%u", a->width,
                            a->height, b->width, b->height);
    }
    if (a->channels != b->channels || a->sample != b->sample) {
        return rs_error_set(e, RS_EINVAL, "frames differ in layout: %u %s vs %u %s channels",
                            a->channels, media_sample_name(a->sample), b->channels,
                            media_sample_name(b->sample));
    }
    return RS_OK;
}

rs_err ledger_mask_diff(const media_frame *src, const media_frame *out, ledger_mask **mask,
                        uint64_t *changed, ledger_bbox *bbox, rs_error *e)
{
    rs_err rc = frames_agree(src, out, e);
    if (rc != RS_OK) {
        return rc;
    }
    ledger_mask *m = NULL;
    rc = ledger_mask_create(src->width, src->height, &m, e);
    if (rc != RS_OK) {
        return rc;
    }
    size_t ps = (size_t)src->channels * media_sample_size(src->sample);
    size_t rb = ps * src->width;
    uint64_t n = 0;
    uint32_t x0 = UINT32_MAX, y0 = UINT32_MAX, x1 = 0, y1 = 0;
    for (uint32_t y = 0; y < src->height; y++) {
        const uint8_t *a = src->data + rb * y;
        const uint8_t *b = out->data + rb * y;
        /* Most rows of a removal are untouched: one memcmp skips them. */
        if (memcmp(a, b, rb) == 0) {
            continue;
        }
        uint8_t *mrow = m->bits + (size_t)m->width * y;
        for (uint32_t x = 0; x < src->width; x++) {
            if (memcmp(a + ps * x, b + ps * x, ps) != 0) {
                mrow[x] = 1;
                n++;
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
        }
    }
    if (bbox != NULL) {
        memset(bbox, 0, sizeof *bbox);
        if (n > 0) {
            *bbox = (ledger_bbox){x0, y0, x1 - x0 + 1, y1 - y0 + 1};
        }
    }
    *changed = n;
    *mask = m;
    return RS_OK;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

rs_err ledger_mask_encode(const ledger_mask *m, uint8_t **buf, size_t *len, rs_error *e)
{
    size_t npix = (size_t)m->width * m->height;
    /* Worst case: a run per pixel, 1 byte each (runs < 128), plus header. */
    size_t cap = MASK_MAGIC_LEN + 8 + npix * 5 / 4 + 16;
    uint8_t *p = malloc(cap);
    if (p == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    memcpy(p, MASK_MAGIC, MASK_MAGIC_LEN);
    put_u32(p + MASK_MAGIC_LEN, m->width);
    put_u32(p + MASK_MAGIC_LEN + 4, m->height);
    size_t n = MASK_MAGIC_LEN + 8;
    size_t i = 0;
    uint8_t want = 0;
    while (i < npix) {
        size_t j = i;
        while (j < npix && (m->bits[j] != 0) == (want != 0)) {
            j++;
        }
        uint64_t run = j - i;
        if (n + 10 > cap) {
            cap *= 2;
            uint8_t *np = realloc(p, cap);
            if (np == NULL) {
                free(p);
                return rs_error_set(e, RS_ENOMEM, "out of memory");
            }
            p = np;
        }
        do {
            uint8_t byte = run & 0x7f;
            run >>= 7;
            p[n++] = (uint8_t)(byte | (run != 0 ? 0x80 : 0));
        } while (run != 0);
        i = j;
        want = !want;
    }
    *buf = p;
    *len = n;
    return RS_OK;
}

rs_err ledger_mask_decode(const uint8_t *buf, size_t len, ledger_mask **out, rs_error *e)
{
    if (len < MASK_MAGIC_LEN + 8 || memcmp(buf, MASK_MAGIC, MASK_MAGIC_LEN) != 0) {
        return rs_error_set(e, RS_EFORMAT, "mask: not a Rushes mask (RSMASK1)");
    }
    uint32_t w = get_u32(buf + MASK_MAGIC_LEN);
    uint32_t h = get_u32(buf + MASK_MAGIC_LEN + 4);
    ledger_mask *m = NULL;
    rs_err rc = ledger_mask_create(w, h, &m, e);
    if (rc != RS_OK) {
        return rc;
    }
    size_t npix = (size_t)w * h;
    size_t pos = MASK_MAGIC_LEN + 8;
    size_t i = 0;
    uint8_t val = 0;
    while (pos < len) {
        uint64_t run = 0;
        int shift = 0;
        for (;;) {
            if (pos >= len || shift > 56) {
                ledger_mask_destroy(m);
                return rs_error_set(e, RS_EFORMAT, "mask: truncated run at byte %zu", pos);
            }
            uint8_t b = buf[pos++];
            run |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
            if ((b & 0x80) == 0) {
                break;
            }
        }
        if (run > npix - i) {
            ledger_mask_destroy(m);
            return rs_error_set(e, RS_EFORMAT, "mask: runs cover more than %ux%u pixels", w, h);
        }
        if (val != 0) {
            memset(m->bits + i, 1, run);
        }
        i += run;
        val = !val;
    }
    if (i != npix) {
        ledger_mask_destroy(m);
        return rs_error_set(e, RS_EFORMAT, "mask: runs cover %zu of %zu pixels", i, npix);
    }
    *out = m;
    return RS_OK;
}

void ledger_masks_dir(const char *data_dir, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/ledger/masks", data_dir);
}

rs_err ledger_mask_store(const char *dir, const ledger_mask *m, char hash[LEDGER_HEX], rs_error *e)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    rs_err rc = ledger_mask_encode(m, &buf, &len, e);
    if (rc != RS_OK) {
        return rc;
    }
    ledger_hash_bytes(buf, len, hash);
    rc = rs_fs_mkdirs(dir, e);
    if (rc == RS_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.rsmask", dir, hash);
        rc = rs_fs_write_atomic(path, buf, len, e);
    }
    free(buf);
    return rc;
}

static bool hash_ok(const char *h)
{
    if (h == NULL || strlen(h) != 64) {
        return false;
    }
    for (int i = 0; i < 64; i++) {
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static rs_err mask_from_bytes(const char *hash, const uint8_t *buf, size_t len, ledger_mask **out,
                              rs_error *e)
{
    char got[LEDGER_HEX];
    ledger_hash_bytes(buf, len, got);
    if (strcmp(got, hash) != 0) {
        return rs_error_set(e, RS_EFORMAT,
                            "mask %.16s...: content does not match its hash "
                            "(mask file swapped or edited)",
                            hash);
    }
    rs_err rc = ledger_mask_decode(buf, len, out, e);
    if (rc != RS_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", e != NULL ? e->msg : "corrupt");
        return rs_error_set(e, rc, "mask %.16s...: %s", hash, why);
    }
    return RS_OK;
}

rs_err ledger_mask_load(const char *dir, const char *hash, ledger_mask **out, rs_error *e)
{
    if (!hash_ok(hash)) {
        return rs_error_set(e, RS_EINVAL, "mask hash: expected 64 lower-case hex digits");
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.rsmask", dir, hash);
    char *buf = NULL;
    size_t len = 0;
    rs_err rc = rs_fs_read_all(path, (size_t)MEDIA_MAX_DIM * 64, &buf, &len, e);
    if (rc != RS_OK) {
        return rc;
    }
    rc = mask_from_bytes(hash, (const uint8_t *)buf, len, out, e);
    free(buf);
    return rc;
}

/* Counts differing pixels in and outside the mask; the first outside one
 * is reported. Spans of equal mask value are compared with one memcmp. */
static rs_err mask_count(const ledger_mask *m, const media_frame *src, const media_frame *out,
                         uint64_t *inside, uint64_t *outside, uint32_t *fx, uint32_t *fy,
                         rs_error *e)
{
    rs_err rc = frames_agree(src, out, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (m->width != src->width || m->height != src->height) {
        return rs_error_set(e, RS_EINVAL, "mask is %ux%u but the frames are %ux%u", m->width,
                            m->height, src->width, src->height);
    }
    size_t ps = (size_t)src->channels * media_sample_size(src->sample);
    size_t rb = ps * src->width;
    uint64_t in = 0, outn = 0;
    bool first = true;
    for (uint32_t y = 0; y < src->height; y++) {
        const uint8_t *a = src->data + rb * y;
        const uint8_t *b = out->data + rb * y;
        const uint8_t *mr = m->bits + (size_t)m->width * y;
        uint32_t x = 0;
        while (x < src->width) {
            uint8_t v = mr[x];
            uint32_t x2 = x + 1;
            while (x2 < src->width && mr[x2] == v) {
                x2++;
            }
            if (memcmp(a + ps * x, b + ps * x, ps * (x2 - x)) != 0) {
                for (uint32_t k = x; k < x2; k++) {
                    if (memcmp(a + ps * k, b + ps * k, ps) != 0) {
                        if (v != 0) {
                            in++;
                        } else {
                            if (first && fx != NULL && fy != NULL) {
                                *fx = k;
                                *fy = y;
                            }
                            first = false;
                            outn++;
                        }
                    }
                }
            }
            x = x2;
        }
    }
    if (inside != NULL) {
        *inside = in;
    }
    *outside = outn;
    return RS_OK;
}

rs_err ledger_mask_outside(const ledger_mask *m, const media_frame *src, const media_frame *out,
                           uint64_t *count, uint32_t *first_x, uint32_t *first_y, rs_error *e)
{
    return mask_count(m, src, out, NULL, count, first_x, first_y, e);
}

rs_err ledger_audio_ranges(const float *src, const float *out, size_t nframes, uint32_t channels,
                           cJSON **ranges, rs_error *e)
{
    if (channels == 0) {
        return rs_error_set(e, RS_EINVAL, "audio: 0 channels");
    }
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    size_t i = 0;
    while (i < nframes) {
        /* Bitwise compare: a NaN or -0 rewrite is a change too. */
        if (memcmp(src + i * channels, out + i * channels, sizeof(float) * channels) == 0) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < nframes &&
               memcmp(src + j * channels, out + j * channels, sizeof(float) * channels) != 0) {
            j++;
        }
        cJSON *r = cJSON_CreateArray();
        cJSON_AddItemToArray(r, cJSON_CreateNumber((double)i));
        cJSON_AddItemToArray(r, cJSON_CreateNumber((double)j));
        cJSON_AddItemToArray(arr, r);
        i = j;
    }
    *ranges = arr;
    return RS_OK;
}

/* ---- recording ---------------------------------------------------------- */

/*
 * Recording is split in two so rushesd can do the slow half off its loop
 * thread: prepare reads, hashes, decodes and diffs the files and stores the
 * mask (no database, idempotent: the mask is stored by its hash), append
 * writes the event (database only, cheap).
 */

void ledger_alteration_prep_clear(ledger_alteration_prep *p)
{
    if (p == NULL) {
        return;
    }
    cJSON_Delete(p->ranges);
    memset(p, 0, sizeof *p);
}

rs_err ledger_alteration_prepare(const char *data_dir, const ledger_alteration *a,
                                 ledger_alteration_prep *p, rs_error *e)
{
    char *sbuf = NULL, *obuf = NULL;
    size_t slen = 0, olen = 0;
    media_frame *src = NULL, *out = NULL;
    ledger_mask *m = NULL;
    memset(p, 0, sizeof *p);
    rs_err rc =
        ledger_read_hashed(a->source_path, (size_t)4 << 30, &sbuf, &slen, p->source_hash, e);
    if (rc == RS_OK) {
        rc = ledger_read_hashed(a->output_path, (size_t)4 << 30, &obuf, &olen, p->output_hash, e);
    }
    if (rc != RS_OK) {
        goto out;
    }
    rc = media_image_decode(a->source_path, sbuf, slen, NULL, &src, e);
    if (rc == RS_OK) {
        rc = media_image_decode(a->output_path, obuf, olen, NULL, &out, e);
    }
    if (rc != RS_OK) {
        goto out;
    }
    if (a->authorised_by != NULL) {
        rc = ledger_label_check(out, a->authorised_by, e);
        if (rc != RS_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", e != NULL ? e->msg : "");
            rs_error_set(e, rc, "frame %" PRId64 " (%s): %s", a->frame, a->output_path, why);
            goto out;
        }
    }
    rc = ledger_mask_diff(src, out, &m, &p->changed, &p->bbox, e);
    if (rc != RS_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", e != NULL ? e->msg : "");
        rs_error_set(e, rc, "frame %" PRId64 " (%s): %s", a->frame, a->output_path, why);
        goto out;
    }
    char dir[4096];
    ledger_masks_dir(data_dir, dir, sizeof dir);
    rc = ledger_mask_store(dir, m, p->mask_hash, e);
    p->width = src->width;
    p->height = src->height;
out:
    if (rc != RS_OK) {
        ledger_alteration_prep_clear(p);
    }
    ledger_mask_destroy(m);
    media_frame_destroy(src);
    media_frame_destroy(out);
    free(sbuf);
    free(obuf);
    return rc;
}

/* The fields a frame's "alteration" event carries beyond type and time. */
static cJSON *frame_fields(const ledger_alteration *a, const ledger_alteration_prep *p)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "job", (double)a->job_id);
    cJSON_AddStringToObject(f, "kind", a->kind != NULL ? a->kind : "");
    cJSON_AddStringToObject(f, "model", a->model != NULL ? a->model : "");
    cJSON_AddNumberToObject(f, "frame", (double)a->frame);
    cJSON_AddStringToObject(f, "source", a->source_path);
    cJSON_AddStringToObject(f, "source_hash", p->source_hash);
    cJSON_AddStringToObject(f, "output", a->output_path);
    cJSON_AddStringToObject(f, "output_hash", p->output_hash);
    cJSON_AddStringToObject(f, "mask_hash", p->mask_hash);
    cJSON_AddNumberToObject(f, "changed", (double)p->changed);
    cJSON *bb = cJSON_AddArrayToObject(f, "bbox");
    cJSON_AddItemToArray(bb, cJSON_CreateNumber(p->bbox.x));
    cJSON_AddItemToArray(bb, cJSON_CreateNumber(p->bbox.y));
    cJSON_AddItemToArray(bb, cJSON_CreateNumber(p->bbox.w));
    cJSON_AddItemToArray(bb, cJSON_CreateNumber(p->bbox.h));
    cJSON_AddItemToObject(f, "consent",
                          cJSON_IsArray(a->consents) ? cJSON_Duplicate(a->consents, true)
                                                     : cJSON_CreateNull());
    cJSON_AddNumberToObject(f, "width", p->width);
    cJSON_AddNumberToObject(f, "height", p->height);
    if (a->authorised_by != NULL) {
        cJSON_AddStringToObject(f, "authorised_by", a->authorised_by);
    }
    return f;
}

/* The fields of an "audio_alteration" event. */
static cJSON *audio_fields(const ledger_alteration *a, const ledger_alteration_prep *p)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddItemToObject(
        f, "ranges", p->ranges != NULL ? cJSON_Duplicate(p->ranges, true) : cJSON_CreateArray());
    cJSON_AddNumberToObject(f, "job", (double)a->job_id);
    cJSON_AddStringToObject(f, "kind", a->kind != NULL ? a->kind : "");
    cJSON_AddStringToObject(f, "model", a->model != NULL ? a->model : "");
    cJSON_AddStringToObject(f, "source", a->source_path);
    cJSON_AddStringToObject(f, "source_hash", p->source_hash);
    cJSON_AddStringToObject(f, "output", a->output_path);
    cJSON_AddStringToObject(f, "output_hash", p->output_hash);
    cJSON_AddNumberToObject(f, "changed", (double)p->changed);
    cJSON_AddNumberToObject(f, "rate", p->rate);
    cJSON_AddNumberToObject(f, "channels", p->channels);
    cJSON_AddNumberToObject(f, "frames", (double)p->frames);
    cJSON_AddItemToObject(f, "consent",
                          cJSON_IsArray(a->consents) ? cJSON_Duplicate(a->consents, true)
                                                     : cJSON_CreateNull());
    return f;
}

rs_err ledger_alteration_append(ledger *l, const ledger_alteration *a,
                                const ledger_alteration_prep *p, int64_t now_ms, int64_t *seq,
                                char hash[LEDGER_HEX], rs_error *e)
{
    cJSON *f = p->audio ? audio_fields(a, p) : frame_fields(a, p);
    if (f == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    rs_err rc = ledger_append(l, a->project, p->audio ? "audio_alteration" : "alteration", f,
                              now_ms, seq, hash, e);
    cJSON_Delete(f);
    return rc;
}

rs_err ledger_record_alteration(ledger *l, const ledger_alteration *a, int64_t now_ms,
                                ledger_alteration_result *r, rs_error *e)
{
    ledger_alteration_result local;
    if (r == NULL) {
        r = &local;
    }
    memset(r, 0, sizeof *r);
    ledger_alteration_prep p;
    rs_err rc = ledger_alteration_prepare(ledger_data_dir(l), a, &p, e);
    if (rc != RS_OK) {
        return rc;
    }
    r->changed = p.changed;
    r->bbox = p.bbox;
    memcpy(r->mask_hash, p.mask_hash, LEDGER_HEX);
    rc = ledger_alteration_append(l, a, &p, now_ms, &r->seq, r->event_hash, e);
    ledger_alteration_prep_clear(&p);
    return rc;
}

/* Interleaved sample bytes of a (float or int32 PCM) and the bytes per
 * sample frame. */
static const uint8_t *audio_bytes(const media_audio *a, size_t *stride)
{
    *stride = (size_t)a->channels * 4;
    return a->is_float ? (const uint8_t *)a->fpcm : (const uint8_t *)a->pcm;
}

/* Internal to the module (audit.c): checks that two decoded audio files
 * agree in layout. */
rs_err ledger_audio_agree(const media_audio *s, const media_audio *o, rs_error *e);

rs_err ledger_audio_agree(const media_audio *s, const media_audio *o, rs_error *e)
{
    if (s->rate != o->rate || s->channels != o->channels || s->frames != o->frames ||
        s->is_float != o->is_float) {
        return rs_error_set(e, RS_EINVAL,
                            "audio files differ in layout: %u Hz %u ch %llu frames vs %u Hz %u "
                            "ch %llu frames",
                            s->rate, s->channels, (unsigned long long)s->frames, o->rate,
                            o->channels, (unsigned long long)o->frames);
    }
    return RS_OK;
}

rs_err ledger_audio_alteration_prepare(const ledger_alteration *a, ledger_alteration_prep *p,
                                       rs_error *e)
{
    media_audio *src = NULL, *out = NULL;
    memset(p, 0, sizeof *p);
    p->audio = true;
    rs_err rc = ledger_hash_file(a->source_path, p->source_hash, e);
    if (rc == RS_OK) {
        rc = ledger_hash_file(a->output_path, p->output_hash, e);
    }
    if (rc == RS_OK) {
        rc = media_audio_read(a->source_path, &src, e);
    }
    if (rc == RS_OK) {
        rc = media_audio_read(a->output_path, &out, e);
    }
    if (rc == RS_OK) {
        rc = ledger_audio_agree(src, out, e);
    }
    if (rc != RS_OK) {
        goto out;
    }
    p->ranges = cJSON_CreateArray();
    if (p->ranges == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    size_t stride = 0;
    const uint8_t *sb = audio_bytes(src, &stride);
    const uint8_t *ob = audio_bytes(out, &stride);
    size_t i = 0;
    size_t n = (size_t)src->frames;
    while (i < n) {
        if (memcmp(sb + i * stride, ob + i * stride, stride) == 0) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && memcmp(sb + j * stride, ob + j * stride, stride) != 0) {
            j++;
        }
        cJSON *rg = cJSON_CreateArray();
        cJSON_AddItemToArray(rg, cJSON_CreateNumber((double)i));
        cJSON_AddItemToArray(rg, cJSON_CreateNumber((double)j));
        cJSON_AddItemToArray(p->ranges, rg);
        p->changed += j - i;
        p->nranges++;
        i = j;
    }
    p->rate = src->rate;
    p->channels = src->channels;
    p->frames = src->frames;
out:
    if (rc != RS_OK) {
        ledger_alteration_prep_clear(p);
    }
    media_audio_destroy(src);
    media_audio_destroy(out);
    return rc;
}

rs_err ledger_record_audio_alteration(ledger *l, const ledger_alteration *a, int64_t now_ms,
                                      ledger_audio_result *r, rs_error *e)
{
    ledger_audio_result local;
    if (r == NULL) {
        r = &local;
    }
    memset(r, 0, sizeof *r);
    ledger_alteration_prep p;
    rs_err rc = ledger_audio_alteration_prepare(a, &p, e);
    if (rc != RS_OK) {
        return rc;
    }
    r->changed = p.changed;
    r->nranges = p.nranges;
    rc = ledger_alteration_append(l, a, &p, now_ms, &r->seq, r->event_hash, e);
    ledger_alteration_prep_clear(&p);
    return rc;
}

static rs_err label_set(media_frame *f, const char *altered, const char *project,
                        const char *event_hash, const char *model, rs_error *e)
{
    rs_err rc = media_frame_meta_set(f, LEDGER_LABEL_ALTERED, altered, e);
    if (rc == RS_OK) {
        rc = media_frame_meta_set(f, LEDGER_LABEL_EVENT, event_hash, e);
    }
    if (rc == RS_OK) {
        rc = media_frame_meta_set(f, LEDGER_LABEL_MODEL, model != NULL ? model : "", e);
    }
    if (rc == RS_OK) {
        rc = media_frame_meta_set(f, LEDGER_LABEL_PROJECT, project, e);
    }
    return rc;
}

rs_err ledger_label_frame(media_frame *f, const char *project, const char *event_hash,
                          const char *model, rs_error *e)
{
    return label_set(f, "yes", project, event_hash, model, e);
}

rs_err ledger_label_frame_unaltered(media_frame *f, const char *project, const char *event_hash,
                                    const char *model, rs_error *e)
{
    return label_set(f, "no", project, event_hash, model, e);
}

rs_err ledger_label_video(struct media_video_writer *w, bool altered, const char *project,
                          const char *event_hash, const char *model, rs_error *e)
{
    rs_err rc = media_video_writer_set_metadata(w, LEDGER_LABEL_ALTERED, altered ? "yes" : "no", e);
    if (rc == RS_OK) {
        rc = media_video_writer_set_metadata(w, LEDGER_LABEL_EVENT, event_hash, e);
    }
    /* A key with an empty value would not survive the container: say "none". */
    if (rc == RS_OK) {
        rc = media_video_writer_set_metadata(w, LEDGER_LABEL_MODEL,
                                             model != NULL && model[0] != '\0' ? model : "none", e);
    }
    if (rc == RS_OK) {
        rc = media_video_writer_set_metadata(w, LEDGER_LABEL_PROJECT, project, e);
    }
    return rc;
}

rs_err ledger_label_check(const media_frame *f, const char *authorised_by, rs_error *e)
{
    const char *ev = media_frame_meta_get(f, LEDGER_LABEL_EVENT);
    const char *alt = media_frame_meta_get(f, LEDGER_LABEL_ALTERED);
    if (ev == NULL) {
        return rs_error_set(e, RS_EFORMAT, "no %s label (the job's authorising event is %.16s...)",
                            LEDGER_LABEL_EVENT, authorised_by);
    }
    if (strcmp(ev, authorised_by) != 0) {
        return rs_error_set(e, RS_EFORMAT,
                            "label %s names event %.64s, not the job's authorising event %s",
                            LEDGER_LABEL_EVENT, ev, authorised_by);
    }
    if (alt == NULL || strcmp(alt, "yes") != 0) {
        return rs_error_set(e, RS_EFORMAT, "label %s is %s on an altered output",
                            LEDGER_LABEL_ALTERED, alt != NULL ? alt : "missing");
    }
    return RS_OK;
}

/* Appends s to out (cap bytes) with XML's five special characters escaped. */
static void xml_escape(const char *s, char *out, size_t cap)
{
    size_t n = strlen(out);
    for (; *s != '\0' && n + 7 < cap; s++) {
        const char *r = *s == '&'    ? "&amp;"
                        : *s == '<'  ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '"'  ? "&quot;"
                        : *s == '\'' ? "&apos;"
                                     : NULL;
        if (r != NULL) {
            memcpy(out + n, r, strlen(r));
            n += strlen(r);
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
}

rs_err ledger_label_audio(struct media_audio *a, const char *project, const char *event_hash,
                          const char *model, rs_error *e)
{
    const char *m = model != NULL ? model : "";
    a->bext.present = true;
    snprintf(a->bext.description, sizeof a->bext.description,
             "rushes: altered; ledger event %s; model %.60s; project %.64s", event_hash, m,
             project);
    snprintf(a->bext.originator, sizeof a->bext.originator, "Rushes");
    char xml[2048] = "<BWFXML><RUSHES><ALTERED>yes</ALTERED><LEDGER_EVENT>";
    xml_escape(event_hash, xml, sizeof xml);
    strncat(xml, "</LEDGER_EVENT><MODEL>", sizeof xml - strlen(xml) - 1);
    xml_escape(m, xml, sizeof xml);
    strncat(xml, "</MODEL><PROJECT>", sizeof xml - strlen(xml) - 1);
    xml_escape(project, xml, sizeof xml);
    strncat(xml, "</PROJECT></RUSHES></BWFXML>", sizeof xml - strlen(xml) - 1);
    return media_audio_set_ixml(a, xml, e);
}

/* ---- audit -------------------------------------------------------------- */

/* Internal to the module (audit.c). */
rs_err ledger_mask_from_bytes(const char *hash, const uint8_t *buf, size_t len, ledger_mask **out,
                              rs_error *e);
rs_err ledger_mask_count(const ledger_mask *m, const media_frame *src, const media_frame *out,
                         uint64_t *inside, uint64_t *outside, uint32_t *fx, uint32_t *fy,
                         rs_error *e);

rs_err ledger_mask_from_bytes(const char *hash, const uint8_t *buf, size_t len, ledger_mask **out,
                              rs_error *e)
{
    if (!hash_ok(hash)) {
        return rs_error_set(e, RS_EINVAL, "mask hash: expected 64 lower-case hex digits");
    }
    return mask_from_bytes(hash, buf, len, out, e);
}

rs_err ledger_mask_count(const ledger_mask *m, const media_frame *src, const media_frame *out,
                         uint64_t *inside, uint64_t *outside, uint32_t *fx, uint32_t *fy,
                         rs_error *e)
{
    return mask_count(m, src, out, inside, outside, fx, fy, e);
}
