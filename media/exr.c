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
 * temporary file's descriptor.
 */
#include <inttypes.h>
#include <openexr.h>
#include <pthread.h>
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
    pthread_mutex_t *lock; /* guards msg while chunks decode on threads; may be NULL */
    char msg[256];
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

static int64_t exr_fd_write(exr_const_context_t ctxt, void *ud, const void *buf, uint64_t sz,
                            uint64_t off, exr_stream_error_func_ptr_t error_cb)
{
    (void)ctxt;
    (void)error_cb;
    const exr_mem *m = ud;
    const uint8_t *p = buf;
    uint64_t left = sz;
    while (left > 0) {
        ssize_t w = pwrite(m->fd, p, (size_t)left, (off_t)off);
        if (w <= 0) {
            return -1;
        }
        p += w;
        off += (uint64_t)w;
        left -= (uint64_t)w;
    }
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
        r = exr_encoding_run(ctxt, 0, enc);
    }
    if (r != EXR_ERR_SUCCESS) {
        return exr_fail(path, m, r, "encode chunk", e);
    }
    return RS_OK;
}

rs_err media_exr_write(const char *path, const media_frame *f, const media_write_opts *o,
                       rs_error *e)
{
    if (f->sample != MEDIA_SAMPLE_F16 && f->sample != MEDIA_SAMPLE_F32) {
        return rs_error_set(e, RS_EINVAL, "%s: exr: only f16/f32 frames can be written, not %s",
                            path, media_sample_name(f->sample));
    }
    if ((unsigned)o->exr_compression > MEDIA_EXR_PIZ) {
        return rs_error_set(e, RS_EINVAL, "%s: exr: unknown compression %d", path,
                            (int)o->exr_compression);
    }
    rs_fs_atomic a;
    rs_err rc = rs_fs_atomic_open(path, &a, e);
    if (rc != RS_OK) {
        return rc;
    }
    exr_mem m = {.fd = a.fd};
    exr_context_initializer_t init = EXR_DEFAULT_CONTEXT_INITIALIZER;
    init.error_handler_fn = exr_on_error;
    init.write_fn = exr_fd_write;
    init.user_data = &m;
    exr_context_t ctxt = NULL;
    exr_encode_pipeline_t enc = EXR_ENCODE_PIPELINE_INITIALIZER;
    bool inited = false;
    int part = 0;
    exr_pixel_type_t pt = f->sample == MEDIA_SAMPLE_F16 ? EXR_PIXEL_HALF : EXR_PIXEL_FLOAT;

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
    if (o->exr_tile == 0) {
        int32_t lpc = 0;
        r = exr_get_scanlines_per_chunk(ctxt, part, &lpc);
        if (r != EXR_ERR_SUCCESS || lpc <= 0) {
            rc = exr_fail(path, &m, r, "scanlines per chunk", e);
            goto out;
        }
        for (uint32_t y = 0; y < f->height; y += (uint32_t)lpc) {
            exr_chunk_info_t ci;
            r = exr_write_scanline_chunk_info(ctxt, part, (int)y, &ci);
            if (r != EXR_ERR_SUCCESS) {
                rc = exr_fail(path, &m, r, "scanline chunk", e);
                goto out;
            }
            rc = exr_encode_chunk(ctxt, &ci, &enc, &inited, f, 0, (int)y, path, &m, e);
            if (rc != RS_OK) {
                goto out;
            }
        }
    } else {
        uint32_t t = o->exr_tile;
        for (uint32_t ty = 0; ty * t < f->height; ty++) {
            for (uint32_t tx = 0; tx * t < f->width; tx++) {
                exr_chunk_info_t ci;
                r = exr_write_tile_chunk_info(ctxt, part, (int)tx, (int)ty, 0, 0, &ci);
                if (r != EXR_ERR_SUCCESS) {
                    rc = exr_fail(path, &m, r, "tile chunk", e);
                    goto out;
                }
                rc = exr_encode_chunk(ctxt, &ci, &enc, &inited, f, (int)(tx * t), (int)(ty * t),
                                      path, &m, e);
                if (rc != RS_OK) {
                    goto out;
                }
            }
        }
    }
out:
    if (inited) {
        exr_encoding_destroy(ctxt, &enc);
    }
    if (ctxt != NULL) {
        r = exr_finish(&ctxt);
        if (rc == RS_OK && r != EXR_ERR_SUCCESS) {
            rc = exr_fail(path, &m, r, "finish", e);
        }
    }
    if (rc != RS_OK) {
        rs_fs_atomic_abort(&a);
        return rc;
    }
    return rs_fs_atomic_commit(&a, e);
}
