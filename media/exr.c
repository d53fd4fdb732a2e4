/*
 * exr.c: OpenEXR through the library's C core API (OpenEXRCore).
 *
 * Read (from memory, part 0): scanline or tiled (level 0), half / float /
 * uint channels, any names, 1x1 sampling. The frame is f16 when every
 * channel is half, else f32. Channels are ordered R, G, B, A first (when
 * present), then the rest in file (alphabetical) order. String attributes
 * become metadata; other attribute types are skipped.
 * Write: f16/f32 frames, scanline or square tiles, chosen compression,
 * metadata as string attributes, through a write callback on the atomic
 * temporary file's descriptor. Chunks compress on up to `exr_threads`
 * threads (zlib is nearly all of a ZIP write's time) and are written in
 * chunk order by the caller's thread, so the file's bytes do not depend on
 * the thread count; small writes are gathered into one buffer.
 */
#include <errno.h>
#include <inttypes.h>
#include <openexr.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "media_int.h"

typedef struct exr_mem {
    const uint8_t *buf;
    size_t len;
    int fd;
    pthread_mutex_t *lock; /* guards msg while chunks code on threads; may be NULL */
    char msg[256];
    /* writing: contiguous writes gather here, as the core writes every
     * header attribute and chunk header with its own few-byte write */
    uint8_t *wbuf;
    size_t wcap;
    size_t wlen;
    uint64_t woff; /* file offset of wbuf[0] */
    int werr;      /* errno of the first failed write, or 0 */
} exr_mem;

static void exr_on_error(exr_const_context_t ctxt, exr_result_t code, const char *msg)
{
    (void)code;
    void *ud = NULL;
    exr_get_user_data(ctxt, &ud);
    exr_mem *m = ud;
    if (m == NULL || msg == NULL) {
        return;
    }
    if (m->lock != NULL) {
        pthread_mutex_lock(m->lock);
    }
    if (m->msg[0] == '\0') {
        snprintf(m->msg, sizeof m->msg, "%s", msg);
        media_msg_clean(m->msg);
    }
    if (m->lock != NULL) {
        pthread_mutex_unlock(m->lock);
    }
}

static int64_t exr_mem_read(exr_const_context_t ctxt, void *ud, void *out, uint64_t sz,
                            uint64_t off, exr_stream_error_func_ptr_t error_cb)
{
    (void)ctxt;
    (void)error_cb;
    const exr_mem *m = ud;
    if (off >= m->len) {
        return 0;
    }
    uint64_t n = m->len - off < sz ? m->len - off : sz;
    memcpy(out, m->buf + off, (size_t)n);
    return (int64_t)n;
}

static int64_t exr_mem_size(exr_const_context_t ctxt, void *ud)
{
    (void)ctxt;
    return (int64_t)((const exr_mem *)ud)->len;
}

static bool exr_pwrite_all(exr_mem *m, const uint8_t *p, uint64_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(m->fd, p, (size_t)n, (off_t)off);
        if (w <= 0) {
            if (m->werr == 0) {
                m->werr = w < 0 ? errno : EIO;
            }
            return false;
        }
        p += w;
        off += (uint64_t)w;
        n -= (uint64_t)w;
    }
    return true;
}

static bool exr_wflush(exr_mem *m)
{
    bool ok = m->wlen == 0 || exr_pwrite_all(m, m->wbuf, m->wlen, m->woff);
    m->wlen = 0;
    return ok;
}

/* Called by the core on the writing thread only (chunks are written by the
 * caller in order), so the buffer needs no lock. A write that does not
 * continue the buffered run (the chunk table, rewritten at the end) flushes
 * first, so later bytes always land over earlier ones. */
static int64_t exr_fd_write(exr_const_context_t ctxt, void *ud, const void *buf, uint64_t sz,
                            uint64_t off, exr_stream_error_func_ptr_t error_cb)
{
    (void)ctxt;
    (void)error_cb;
    exr_mem *m = ud;
    if (m->wlen > 0 && (off != m->woff + m->wlen || sz > m->wcap - m->wlen)) {
        if (!exr_wflush(m)) {
            return -1;
        }
    }
    if (sz >= m->wcap) {
        return exr_pwrite_all(m, buf, sz, off) ? (int64_t)sz : -1;
    }
    if (m->wlen == 0) {
        m->woff = off;
    }
    memcpy(m->wbuf + m->wlen, buf, (size_t)sz);
    m->wlen += (size_t)sz;
    return (int64_t)sz;
}

static rs_err exr_fail(const char *name, exr_mem *m, exr_result_t r, const char *what, rs_error *e)
{
    char msg[sizeof m->msg];
    if (m->lock != NULL) {
        pthread_mutex_lock(m->lock);
    }
    snprintf(msg, sizeof msg, "%s", m->msg[0] != '\0' ? m->msg : exr_get_default_error_message(r));
    if (m->lock != NULL) {
        pthread_mutex_unlock(m->lock);
    }
    return rs_error_set(e, RS_EFORMAT, "%s: exr: %s: %s", name, what, msg);
}

/* Rank for the frame's channel order: R G B A first, then file order. */
static int channel_rank(const char *name)
{
    static const char *const first[4] = {"R", "G", "B", "A"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, first[i]) == 0) {
            return i;
        }
    }
    return 4;
}

/* Points every decoder/encoder channel at its place in the frame. */
static void exr_bind(exr_coding_channel_info_t *chans, int n, const media_frame *f, int x0, int y0,
                     bool encode)
{
    size_t ss = media_sample_size(f->sample);
    for (int c = 0; c < n; c++) {
        int fc = media_frame_channel(f, chans[c].channel_name);
        uint8_t *p = fc < 0 ? NULL : media_frame_at(f, (uint32_t)x0, (uint32_t)y0, (uint32_t)fc);
        if (encode) {
            chans[c].encode_from_ptr = p;
        } else {
            chans[c].decode_to_ptr = p;
        }
        chans[c].user_bytes_per_element = (int16_t)ss;
        chans[c].user_data_type = f->sample == MEDIA_SAMPLE_F16 ? EXR_PIXEL_HALF : EXR_PIXEL_FLOAT;
        chans[c].user_pixel_stride = (int32_t)(ss * f->channels);
        chans[c].user_line_stride = (int32_t)media_frame_row_bytes(f);
    }
}

static rs_err exr_decode_chunk(exr_context_t ctxt, const exr_chunk_info_t *ci,
                               exr_decode_pipeline_t *dec, bool *inited, media_frame *f, int x0,
                               int y0, const char *name, exr_mem *m, rs_error *e)
{
    if (x0 < 0 || y0 < 0 || ci->width < 0 || ci->height < 0 ||
        (int64_t)x0 + ci->width > (int64_t)f->width ||
        (int64_t)y0 + ci->height > (int64_t)f->height) {
        return rs_error_set(e, RS_EFORMAT, "%s: exr: chunk %d outside the data window", name,
                            ci->idx);
    }
    exr_result_t r =
        *inited ? exr_decoding_update(ctxt, 0, ci, dec) : exr_decoding_initialize(ctxt, 0, ci, dec);
    if (r != EXR_ERR_SUCCESS) {
        return exr_fail(name, m, r, "chunk header", e);
    }
    *inited = true;
    exr_bind(dec->channels, dec->channel_count, f, x0, y0, false);
    r = exr_decoding_choose_default_routines(ctxt, 0, dec);
    if (r == EXR_ERR_SUCCESS) {
        r = exr_decoding_run(ctxt, 0, dec);
    }
    if (r != EXR_ERR_SUCCESS) {
        char what[64];
        snprintf(what, sizeof what, "chunk %d (y %d)", ci->idx, y0);
        return exr_fail(name, m, r, what, e);
    }
    return RS_OK;
}

/* Where chunk i of part 0 lies: scanline blocks top to bottom, or level-0
 * tiles row by row. */
typedef struct exr_layout {
    bool tiled;
    int64_t min_y; /* data window top (scanline) */
    int32_t lpc;   /* scanlines per chunk */
    uint32_t tw;   /* tile size */
    uint32_t th;
    int64_t ntx; /* tiles across */
    int64_t nchunks;
} exr_layout;

static rs_err exr_chunk_at(exr_context_t ctxt, const exr_layout *l, int64_t i, exr_chunk_info_t *ci,
                           int *x0, int *y0, const char *name, exr_mem *m, rs_error *e)
{
    exr_result_t r;
    char what[64];
    if (!l->tiled) {
        int64_t y = l->min_y + i * l->lpc;
        r = exr_read_scanline_chunk_info(ctxt, 0, (int)y, ci);
        snprintf(what, sizeof what, "scanline %" PRId64, y);
        *x0 = 0;
        *y0 = (int)(ci->start_y - l->min_y);
    } else {
        int64_t tx = i % l->ntx;
        int64_t ty = i / l->ntx;
        r = exr_read_tile_chunk_info(ctxt, 0, (int)tx, (int)ty, 0, 0, ci);
        snprintf(what, sizeof what, "tile %" PRId64 ",%" PRId64, tx, ty);
        *x0 = (int)(tx * l->tw);
        *y0 = (int)(ty * l->th);
    }
    if (r != EXR_ERR_SUCCESS) {
        return exr_fail(name, m, r, what, e);
    }
    return RS_OK;
}

/* One decoding thread's share: chunks first, first + step, ... each with
 * its own pipeline (OpenEXRCore allows concurrent chunk decodes on one
 * read context; the core API has no thread pool of its own). */
typedef struct exr_job {
    exr_context_t ctxt;
    const exr_layout *l;
    media_frame *f;
    const char *name;
    exr_mem *m;
    int64_t first;
    int64_t step;
    int64_t failed_at; /* chunk of the error, or -1 */
    rs_err rc;
    rs_error err;
} exr_job;

static void *exr_job_run(void *arg)
{
    exr_job *j = arg;
    exr_decode_pipeline_t dec = EXR_DECODE_PIPELINE_INITIALIZER;
    bool inited = false;
    for (int64_t i = j->first; i < j->l->nchunks; i += j->step) {
        exr_chunk_info_t ci;
        int x0 = 0;
        int y0 = 0;
        j->rc = exr_chunk_at(j->ctxt, j->l, i, &ci, &x0, &y0, j->name, j->m, &j->err);
        if (j->rc == RS_OK) {
            j->rc =
                exr_decode_chunk(j->ctxt, &ci, &dec, &inited, j->f, x0, y0, j->name, j->m, &j->err);
        }
        if (j->rc != RS_OK) {
            j->failed_at = i;
            break;
        }
    }
    if (inited) {
        exr_decoding_destroy(j->ctxt, &dec);
    }
    return NULL;
}

/* Decodes every chunk on up to `threads` threads (the caller's included);
 * the error reported is that of the first failing chunk. */
static rs_err exr_decode_all(exr_context_t ctxt, const exr_layout *l, media_frame *f,
                             unsigned threads, const char *name, exr_mem *m, rs_error *e)
{
    enum { MAX_THREADS = 8 };
    exr_job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    pthread_mutex_t lock;
    if (threads > MAX_THREADS) {
        threads = MAX_THREADS;
    }
    /* a thread pays off only with a few chunks to share */
    if ((int64_t)threads > l->nchunks / 2) {
        threads = l->nchunks >= 4 ? (unsigned)(l->nchunks / 2) : 1;
    }
    if (threads <= 1) {
        exr_job one = {.ctxt = ctxt,
                       .l = l,
                       .f = f,
                       .name = name,
                       .m = m,
                       .first = 0,
                       .step = 1,
                       .failed_at = -1,
                       .rc = RS_OK};
        exr_job_run(&one);
        if (one.rc != RS_OK && e != NULL) {
            *e = one.err;
        }
        return one.rc;
    }
    /* reading the first chunk's offset loads the chunk table once, here,
     * before the threads share the context */
    exr_chunk_info_t ci0;
    int x0 = 0;
    int y0 = 0;
    rs_err rc = exr_chunk_at(ctxt, l, 0, &ci0, &x0, &y0, name, m, e);
    if (rc != RS_OK) {
        return rc;
    }
    pthread_mutex_init(&lock, NULL);
    m->lock = &lock;
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (exr_job){.ctxt = ctxt,
                            .l = l,
                            .f = f,
                            .name = name,
                            .m = m,
                            .first = (int64_t)t,
                            .step = (int64_t)threads,
                            .failed_at = -1,
                            .rc = RS_OK};
    }
    for (unsigned t = 1; t < threads; t++) {
        started[t] = pthread_create(&tid[t], NULL, exr_job_run, &jobs[t]) == 0;
        if (!started[t]) {
            /* no thread: this one's share is done below by the caller */
            jobs[t].step = (int64_t)threads;
        }
    }
    exr_job_run(&jobs[0]);
    for (unsigned t = 1; t < threads; t++) {
        if (started[t]) {
            pthread_join(tid[t], NULL);
        } else {
            exr_job_run(&jobs[t]);
        }
    }
    m->lock = NULL;
    pthread_mutex_destroy(&lock);
    int64_t worst = -1;
    for (unsigned t = 0; t < threads; t++) {
        if (jobs[t].rc != RS_OK && (worst < 0 || jobs[t].failed_at < jobs[worst].failed_at)) {
            worst = (int64_t)t;
        }
    }
    if (worst < 0) {
        return RS_OK;
    }
    if (e != NULL) {
        *e = jobs[worst].err;
    }
    return jobs[worst].rc;
}

rs_err media_exr_decode(const char *name, const uint8_t *buf, size_t len, uint64_t max_bytes,
                        unsigned threads, media_frame **out, rs_error *e)
{
    exr_mem m = {.buf = buf, .len = len, .fd = -1};
    exr_context_initializer_t init = EXR_DEFAULT_CONTEXT_INITIALIZER;
    init.error_handler_fn = exr_on_error;
    init.read_fn = exr_mem_read;
    init.size_fn = exr_mem_size;
    init.user_data = &m;
    init.max_image_width = (int)MEDIA_MAX_DIM;
    init.max_image_height = (int)MEDIA_MAX_DIM;
    init.max_tile_width = 8192;
    init.max_tile_height = 8192;
    exr_context_t ctxt = NULL;
    media_frame *f = NULL;
    rs_err rc = RS_OK;

    exr_result_t r = exr_start_read(&ctxt, name, &init);
    if (r != EXR_ERR_SUCCESS) {
        rc = exr_fail(name, &m, r, "header", e);
        goto out;
    }
    exr_storage_t storage = EXR_STORAGE_SCANLINE;
    exr_attr_box2i_t dw;
    const exr_attr_chlist_t *chl = NULL;
    r = exr_get_storage(ctxt, 0, &storage);
    if (r == EXR_ERR_SUCCESS) {
        r = exr_get_data_window(ctxt, 0, &dw);
    }
    if (r == EXR_ERR_SUCCESS) {
        r = exr_get_channels(ctxt, 0, &chl);
    }
    if (r != EXR_ERR_SUCCESS || chl == NULL) {
        rc = exr_fail(name, &m, r, "header", e);
        goto out;
    }
    if (storage != EXR_STORAGE_SCANLINE && storage != EXR_STORAGE_TILED) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: exr: deep images are not supported", name);
        goto out;
    }
    int64_t w = (int64_t)dw.max.x - dw.min.x + 1;
    int64_t h = (int64_t)dw.max.y - dw.min.y + 1;
    if (w <= 0 || h <= 0) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: exr: empty data window", name);
        goto out;
    }
    media_sample s = MEDIA_SAMPLE_F16;
    for (int c = 0; c < chl->num_channels; c++) {
        char shown[MEDIA_CHANNEL_NAME];
        snprintf(shown, sizeof shown, "%s", chl->entries[c].name.str);
        media_msg_clean(shown);
        if (chl->entries[c].x_sampling != 1 || chl->entries[c].y_sampling != 1) {
            rc = rs_error_set(e, RS_EFORMAT, "%s: exr: channel '%s' is subsampled (unsupported)",
                              name, shown);
            goto out;
        }
        if (chl->entries[c].name.length <= 0 || chl->entries[c].name.length >= MEDIA_CHANNEL_NAME) {
            rc = rs_error_set(e, RS_EFORMAT, "%s: exr: channel name '%s' empty or over %d bytes",
                              name, shown, MEDIA_CHANNEL_NAME - 1);
            goto out;
        }
        if (chl->entries[c].pixel_type != EXR_PIXEL_HALF) {
            s = MEDIA_SAMPLE_F32;
        }
    }
    rc = media_check_size(name, "exr", (uint64_t)w, (uint64_t)h, (uint64_t)chl->num_channels, s,
                          max_bytes, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = media_frame_create((uint32_t)w, (uint32_t)h, (uint32_t)chl->num_channels, s, &f, e);
    if (rc != RS_OK) {
        goto out;
    }
    f->colour = MEDIA_COLOUR_LINEAR;
    f->bit_depth = s == MEDIA_SAMPLE_F16 ? 16 : 32;
    /* stable order: R G B A, then the others as listed */
    uint32_t k = 0;
    for (int rank = 0; rank <= 4; rank++) {
        for (int c = 0; c < chl->num_channels; c++) {
            const char *cn = chl->entries[c].name.str;
            if (channel_rank(cn) == rank) {
                snprintf(f->names[k++], MEDIA_CHANNEL_NAME, "%s", cn);
            }
        }
    }
    for (uint32_t a = 0; a < k; a++) {
        for (uint32_t b = a + 1; b < k; b++) {
            if (strcmp(f->names[a], f->names[b]) == 0) {
                char shown[MEDIA_CHANNEL_NAME];
                snprintf(shown, sizeof shown, "%s", f->names[a]);
                media_msg_clean(shown);
                rc =
                    rs_error_set(e, RS_EFORMAT, "%s: exr: channel name '%s' repeated", name, shown);
                goto out;
            }
        }
    }
    exr_layout lay = {.tiled = storage == EXR_STORAGE_TILED, .min_y = dw.min.y};
    if (!lay.tiled) {
        r = exr_get_scanlines_per_chunk(ctxt, 0, &lay.lpc);
        if (r != EXR_ERR_SUCCESS || lay.lpc <= 0) {
            rc = exr_fail(name, &m, r, "scanlines per chunk", e);
            goto out;
        }
        lay.nchunks = (h + lay.lpc - 1) / lay.lpc;
    } else {
        exr_tile_level_mode_t lm;
        exr_tile_round_mode_t rm;
        r = exr_get_tile_descriptor(ctxt, 0, &lay.tw, &lay.th, &lm, &rm);
        if (r != EXR_ERR_SUCCESS || lay.tw == 0 || lay.th == 0) {
            rc = exr_fail(name, &m, r, "tile description", e);
            goto out;
        }
        lay.ntx = (w + lay.tw - 1) / lay.tw;
        lay.nchunks = lay.ntx * ((h + lay.th - 1) / lay.th);
    }
    rc = exr_decode_all(ctxt, &lay, f, threads, name, &m, e);
    if (rc != RS_OK) {
        goto out;
    }
    int32_t nattr = 0;
    exr_get_attribute_count(ctxt, 0, &nattr);
    for (int32_t i = 0; i < nattr; i++) {
        const exr_attribute_t *at = NULL;
        if (exr_get_attribute_by_index(ctxt, 0, EXR_ATTR_LIST_FILE_ORDER, i, &at) !=
                EXR_ERR_SUCCESS ||
            at == NULL || at->type != EXR_ATTR_STRING || at->string == NULL) {
            continue;
        }
        char *v = malloc((size_t)at->string->length + 1);
        if (v == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "%s: exr: out of memory", name);
            goto out;
        }
        if (at->string->length > 0 && at->string->str != NULL) {
            memcpy(v, at->string->str, (size_t)at->string->length);
        }
        v[at->string->length > 0 ? at->string->length : 0] = '\0';
        rc = media_frame_meta_set(f, at->name, v, e);
        free(v);
        if (rc != RS_OK) {
            goto out;
        }
    }
out:
    if (ctxt != NULL) {
        exr_finish(&ctxt);
    }
    if (rc != RS_OK) {
        media_frame_destroy(f);
        return rc;
    }
    *out = f;
    return RS_OK;
}

static bool exr_reserved(const char *key)
{
    static const char *const names[] = {
        "channels",
        "compression",
        "dataWindow",
        "displayWindow",
        "lineOrder",
        "pixelAspectRatio",
        "screenWindowCenter",
        "screenWindowWidth",
        "tiles",
        "type",
        "name",
        "version",
        "chunkCount",
        "maxSamplesPerPixel",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(key, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Packs and compresses one chunk into enc's buffers without writing it: the
 * core's own write step insists on chunk order, which threads cannot keep,
 * so the caller writes the result (exr_chunk_put). */
static rs_err exr_encode_chunk(exr_context_t ctxt, const exr_chunk_info_t *ci,
                               exr_encode_pipeline_t *enc, bool *inited, const media_frame *f,
                               int x0, int y0, const char *path, exr_mem *m, rs_error *e)
{
    exr_result_t r =
        *inited ? exr_encoding_update(ctxt, 0, ci, enc) : exr_encoding_initialize(ctxt, 0, ci, enc);
    if (r != EXR_ERR_SUCCESS) {
        return exr_fail(path, m, r, "encode chunk", e);
    }
    *inited = true;
    exr_bind(enc->channels, enc->channel_count, f, x0, y0, true);
    r = exr_encoding_choose_default_routines(ctxt, 0, enc);
    if (r == EXR_ERR_SUCCESS) {
        enc->yield_until_ready_fn = NULL;
        enc->write_fn = NULL;
        r = exr_encoding_run(ctxt, 0, enc);
    }
    if (r != EXR_ERR_SUCCESS) {
        char what[64];
        snprintf(what, sizeof what, "encode chunk %d", ci->idx);
        return exr_fail(path, m, r, what, e);
    }
    return RS_OK;
}

/* One chunk of the file being written: where it is, and (threaded) its
 * compressed bytes until its turn to be written comes. */
typedef struct exr_out_chunk {
    exr_chunk_info_t ci;
    int x0; /* pixel position in the frame */
    int y0;
    int tx; /* tile index (tiled) */
    int ty;
    uint8_t *bytes;
    uint64_t len;
} exr_out_chunk;

static exr_result_t exr_chunk_put(exr_context_t ctxt, const exr_out_chunk *c, const void *bytes,
                                  uint64_t len)
{
    if (c->ci.type == EXR_STORAGE_TILED) {
        return exr_write_tile_chunk(ctxt, 0, c->tx, c->ty, 0, 0, bytes, len);
    }
    return exr_write_scanline_chunk(ctxt, 0, c->ci.start_y, bytes, len);
}

/* What the encoding threads share: the next chunk to claim, and whether
 * one of them failed (then the others stop claiming). */
typedef struct exr_enc_queue {
    atomic_int_fast64_t next;
    atomic_bool failed;
} exr_enc_queue;

/* One encoding thread: claims chunks one at a time (rather than a fixed
 * stride, so a thread the scheduler holds back on a shared machine does
 * not leave the other idle at the end) and keeps each compressed chunk in
 * memory (at most about the file's size in all) for the in-order write. */
typedef struct exr_enc_job {
    exr_context_t ctxt;
    exr_out_chunk *chunks;
    int64_t nchunks;
    exr_enc_queue *q;
    const media_frame *f;
    const char *path;
    exr_mem *m;
    int64_t failed_at; /* chunk of the error, or -1 */
    rs_err rc;
    rs_error err;
} exr_enc_job;

static void *exr_enc_job_run(void *arg)
{
    exr_enc_job *j = arg;
    exr_encode_pipeline_t enc = EXR_ENCODE_PIPELINE_INITIALIZER;
    bool inited = false;
    for (;;) {
        int64_t i = (int64_t)atomic_fetch_add(&j->q->next, 1);
        if (i >= j->nchunks || atomic_load(&j->q->failed)) {
            break;
        }
        exr_out_chunk *c = &j->chunks[i];
        j->rc = exr_encode_chunk(j->ctxt, &c->ci, &enc, &inited, j->f, c->x0, c->y0, j->path, j->m,
                                 &j->err);
        if (j->rc == RS_OK) {
            c->bytes = malloc(enc.compressed_bytes > 0 ? (size_t)enc.compressed_bytes : 1);
            if (c->bytes == NULL) {
                j->rc = rs_error_set(&j->err, RS_ENOMEM, "%s: exr: out of memory for chunk %d",
                                     j->path, c->ci.idx);
            } else {
                memcpy(c->bytes, enc.compressed_buffer, (size_t)enc.compressed_bytes);
                c->len = enc.compressed_bytes;
            }
        }
        if (j->rc != RS_OK) {
            j->failed_at = i;
            atomic_store(&j->q->failed, true);
            break;
        }
    }
    if (inited) {
        exr_encoding_destroy(j->ctxt, &enc);
    }
    return NULL;
}

/* Encodes and writes every chunk. On one thread each chunk is written
 * straight from the pipeline; on more, the threads (the caller's included)
 * compress the chunks they claim, then the caller writes all in order
 * (writing is ~2 ms of a 1080p frame's ~450 ms, not worth overlapping). */
static rs_err exr_encode_all(exr_context_t ctxt, exr_out_chunk *chunks, int64_t nchunks,
                             const media_frame *f, unsigned threads, const char *path, exr_mem *m,
                             rs_error *e)
{
    enum { MAX_THREADS = 8 };
    exr_enc_job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    pthread_mutex_t lock;
    rs_err rc = RS_OK;
    exr_result_t r;
    if (threads > MAX_THREADS) {
        threads = MAX_THREADS;
    }
    /* a thread pays off only with a few chunks to share */
    if ((int64_t)threads > nchunks / 2) {
        threads = nchunks >= 4 ? (unsigned)(nchunks / 2) : 1;
    }
    if (threads <= 1) {
        exr_encode_pipeline_t enc = EXR_ENCODE_PIPELINE_INITIALIZER;
        bool inited = false;
        for (int64_t i = 0; i < nchunks && rc == RS_OK; i++) {
            exr_out_chunk *c = &chunks[i];
            rc = exr_encode_chunk(ctxt, &c->ci, &enc, &inited, f, c->x0, c->y0, path, m, e);
            if (rc == RS_OK) {
                r = exr_chunk_put(ctxt, c, enc.compressed_buffer, enc.compressed_bytes);
                if (r != EXR_ERR_SUCCESS) {
                    rc = exr_fail(path, m, r, "write chunk", e);
                }
            }
        }
        if (inited) {
            exr_encoding_destroy(ctxt, &enc);
        }
        return rc;
    }
    exr_enc_queue q;
    atomic_init(&q.next, 0);
    atomic_init(&q.failed, false);
    pthread_mutex_init(&lock, NULL);
    m->lock = &lock;
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (exr_enc_job){.ctxt = ctxt,
                                .chunks = chunks,
                                .nchunks = nchunks,
                                .q = &q,
                                .f = f,
                                .path = path,
                                .m = m,
                                .failed_at = -1,
                                .rc = RS_OK};
    }
    for (unsigned t = 1; t < threads; t++) {
        started[t] = pthread_create(&tid[t], NULL, exr_enc_job_run, &jobs[t]) == 0;
    }
    exr_enc_job_run(&jobs[0]);
    for (unsigned t = 1; t < threads; t++) {
        if (started[t]) {
            pthread_join(tid[t], NULL);
        }
    }
    m->lock = NULL;
    pthread_mutex_destroy(&lock);
    int64_t worst = -1;
    for (unsigned t = 0; t < threads; t++) {
        if (jobs[t].rc != RS_OK && (worst < 0 || jobs[t].failed_at < jobs[worst].failed_at)) {
            worst = (int64_t)t;
        }
    }
    if (worst >= 0) {
        if (e != NULL) {
            *e = jobs[worst].err;
        }
        return jobs[worst].rc;
    }
    for (int64_t i = 0; i < nchunks; i++) {
        r = exr_chunk_put(ctxt, &chunks[i], chunks[i].bytes, chunks[i].len);
        free(chunks[i].bytes);
        chunks[i].bytes = NULL;
        if (r != EXR_ERR_SUCCESS) {
            return exr_fail(path, m, r, "write chunk", e);
        }
    }
    return RS_OK;
}

/* Where each chunk lies, asked of the core in chunk order. */
static rs_err exr_chunks_plan(exr_context_t ctxt, const media_frame *f, uint32_t tile,
                              exr_out_chunk **out, int64_t *nout, const char *path, exr_mem *m,
                              rs_error *e)
{
    int64_t n = 0;
    int32_t lpc = 0;
    uint64_t ntx = 0;
    exr_result_t r;
    if (tile == 0) {
        r = exr_get_scanlines_per_chunk(ctxt, 0, &lpc);
        if (r != EXR_ERR_SUCCESS || lpc <= 0) {
            return exr_fail(path, m, r, "scanlines per chunk", e);
        }
        n = ((int64_t)f->height + lpc - 1) / lpc;
    } else {
        ntx = ((uint64_t)f->width + tile - 1) / tile;
        n = (int64_t)(ntx * (((uint64_t)f->height + tile - 1) / tile));
    }
    exr_out_chunk *c = calloc((size_t)n, sizeof *c);
    if (c == NULL) {
        return rs_error_set(e, RS_ENOMEM, "%s: exr: out of memory for %" PRId64 " chunks", path, n);
    }
    for (int64_t i = 0; i < n; i++) {
        if (tile == 0) {
            c[i].y0 = (int)(i * lpc);
            r = exr_write_scanline_chunk_info(ctxt, 0, c[i].y0, &c[i].ci);
        } else {
            c[i].tx = (int)((uint64_t)i % ntx);
            c[i].ty = (int)((uint64_t)i / ntx);
            c[i].x0 = (int)((uint32_t)c[i].tx * tile);
            c[i].y0 = (int)((uint32_t)c[i].ty * tile);
            r = exr_write_tile_chunk_info(ctxt, 0, c[i].tx, c[i].ty, 0, 0, &c[i].ci);
        }
        if (r != EXR_ERR_SUCCESS) {
            free(c);
            return exr_fail(path, m, r, tile == 0 ? "scanline chunk" : "tile chunk", e);
        }
    }
    *out = c;
    *nout = n;
    return RS_OK;
}

rs_err media_exr_write(const char *path, const media_frame *f, const media_write_opts *o,
                       rs_error *e)
{
    /* gathers the header and many chunks into few writes */
    enum { WBUF = 1 << 20 };
    if (f->sample != MEDIA_SAMPLE_F16 && f->sample != MEDIA_SAMPLE_F32) {
        return rs_error_set(e, RS_EINVAL, "%s: exr: only f16/f32 frames can be written, not %s",
                            path, media_sample_name(f->sample));
    }
    if ((unsigned)o->exr_compression > MEDIA_EXR_PIZ) {
        return rs_error_set(e, RS_EINVAL, "%s: exr: unknown compression %d", path,
                            (int)o->exr_compression);
    }
    exr_mem m = {.fd = -1, .wcap = WBUF};
    m.wbuf = malloc(m.wcap);
    if (m.wbuf == NULL) {
        return rs_error_set(e, RS_ENOMEM, "%s: exr: out of memory", path);
    }
    rs_fs_atomic a;
    rs_err rc = rs_fs_atomic_open(path, &a, e);
    if (rc != RS_OK) {
        free(m.wbuf);
        return rc;
    }
    m.fd = a.fd;
    exr_context_initializer_t init = EXR_DEFAULT_CONTEXT_INITIALIZER;
    init.error_handler_fn = exr_on_error;
    init.write_fn = exr_fd_write;
    init.user_data = &m;
    exr_context_t ctxt = NULL;
    exr_out_chunk *chunks = NULL;
    int64_t nchunks = 0;
    int part = 0;
    exr_pixel_type_t pt = f->sample == MEDIA_SAMPLE_F16 ? EXR_PIXEL_HALF : EXR_PIXEL_FLOAT;
    unsigned threads = o->exr_threads != 0 ? o->exr_threads : MEDIA_DEFAULT_THREADS;

    exr_result_t r = exr_start_write(&ctxt, path, EXR_WRITE_FILE_DIRECTLY, &init);
    if (r != EXR_ERR_SUCCESS) {
        ctxt = NULL;
        rc = exr_fail(path, &m, r, "start", e);
        goto out;
    }
    r = exr_add_part(ctxt, NULL, o->exr_tile != 0 ? EXR_STORAGE_TILED : EXR_STORAGE_SCANLINE,
                     &part);
    if (r == EXR_ERR_SUCCESS) {
        r = exr_initialize_required_attr_simple(ctxt, part, (int32_t)f->width, (int32_t)f->height,
                                                (exr_compression_t)o->exr_compression);
    }
    if (r == EXR_ERR_SUCCESS) {
        /* zlib's default level (Z_DEFAULT_COMPRESSION is 6), named rather
         * than left to the core's global default: FFmpeg's EXR encoder and
         * OpenEXR's C++ library use it too, so sizes and speeds compare */
        r = exr_set_zip_compression_level(ctxt, part, 6);
    }
    if (r == EXR_ERR_SUCCESS && o->exr_tile != 0) {
        r = exr_set_tile_descriptor(ctxt, part, o->exr_tile, o->exr_tile, EXR_TILE_ONE_LEVEL,
                                    EXR_TILE_ROUND_DOWN);
    }
    for (uint32_t c = 0; c < f->channels && r == EXR_ERR_SUCCESS; c++) {
        r = exr_add_channel(ctxt, part, f->names[c], pt, EXR_PERCEPTUALLY_LOGARITHMIC, 1, 1);
    }
    for (size_t i = 0; i < f->nmeta && r == EXR_ERR_SUCCESS; i++) {
        if (!exr_reserved(f->meta[i].key)) {
            r = exr_attr_set_string(ctxt, part, f->meta[i].key, f->meta[i].value);
        }
    }
    if (r == EXR_ERR_SUCCESS) {
        r = exr_write_header(ctxt);
    }
    if (r != EXR_ERR_SUCCESS) {
        rc = exr_fail(path, &m, r, "header", e);
        goto out;
    }
    rc = exr_chunks_plan(ctxt, f, o->exr_tile, &chunks, &nchunks, path, &m, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = exr_encode_all(ctxt, chunks, nchunks, f, threads, path, &m, e);
out:
    for (int64_t i = 0; i < nchunks; i++) {
        free(chunks[i].bytes);
    }
    free(chunks);
    if (ctxt != NULL) {
        r = exr_finish(&ctxt);
        if (rc == RS_OK && r != EXR_ERR_SUCCESS) {
            rc = exr_fail(path, &m, r, "finish", e);
        }
    }
    if (!exr_wflush(&m) && rc == RS_OK) {
        rc = rs_error_set(e, RS_EIO, "%s: exr: write: %s", a.tmp, strerror(m.werr));
    }
    free(m.wbuf);
    if (rc != RS_OK) {
        rs_fs_atomic_abort(&a);
        return rc;
    }
    return rs_fs_atomic_commit(&a, e);
}
