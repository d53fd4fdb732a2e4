/*
 * audio.c: WAV/BWF/AIFF through libsndfile. See audio.h.
 *
 * Reading goes through libsndfile's virtual I/O for memory buffers (the
 * fuzz target) and sf_open for files; both end in one function that checks
 * the sizes libsndfile reports against a cap before allocating. iXML is
 * read through libsndfile's chunk iterator and written with sf_set_chunk.
 */
#include "audio.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "media_int.h"

#define AUDIO_MAX_SAMPLES (1ull << 30)
#define AUDIO_MAX_IXML (4u << 20)

/* libsndfile's last error text, made one clean line. */
static const char *sf_text(SNDFILE *sf, char *buf, size_t len)
{
    snprintf(buf, len, "%s", sf_strerror(sf));
    media_msg_clean(buf);
    return buf;
}

rs_err media_audio_create(media_format container, uint32_t rate, uint32_t channels, uint64_t frames,
                          uint32_t bits, bool is_float, media_audio **out, rs_error *e)
{
    if (rate == 0 || rate > 768000 || channels == 0 || channels > 256 ||
        (is_float ? bits != 32 : (bits != 8 && bits != 16 && bits != 24 && bits != 32)) ||
        (container != MEDIA_FORMAT_WAV && container != MEDIA_FORMAT_AIFF)) {
        return rs_error_set(e, RS_EINVAL,
                            "audio: bad layout %" PRIu32 " Hz x %" PRIu32 " ch, %" PRIu32 "-bit",
                            rate, channels, bits);
    }
    if (frames * channels > AUDIO_MAX_SAMPLES) {
        return rs_error_set(e, RS_ETOOBIG, "audio: %" PRIu64 " frames over the cap", frames);
    }
    media_audio *a = calloc(1, sizeof *a);
    if (a == NULL) {
        return rs_error_set(e, RS_ENOMEM, "audio: out of memory");
    }
    size_t n = (size_t)(frames * channels);
    if (is_float) {
        a->fpcm = calloc(n > 0 ? n : 1, sizeof(float));
    } else {
        a->pcm = calloc(n > 0 ? n : 1, sizeof(int32_t));
    }
    if (a->fpcm == NULL && a->pcm == NULL) {
        free(a);
        return rs_error_set(e, RS_ENOMEM, "audio: out of memory");
    }
    a->container = container;
    a->rate = rate;
    a->channels = channels;
    a->frames = frames;
    a->bits = bits;
    a->is_float = is_float;
    *out = a;
    return RS_OK;
}

void media_audio_destroy(media_audio *a)
{
    if (a == NULL) {
        return;
    }
    free(a->pcm);
    free(a->fpcm);
    free(a->ixml);
    free(a);
}

rs_err media_audio_set_ixml(media_audio *a, const char *xml, rs_error *e)
{
    char *copy = NULL;
    if (xml != NULL) {
        copy = strdup(xml);
        if (copy == NULL) {
            return rs_error_set(e, RS_ENOMEM, "audio: out of memory");
        }
    }
    free(a->ixml);
    a->ixml = copy;
    return RS_OK;
}

/* Copies a fixed-width, maybe unterminated header field. */
static void field(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    size_t n = 0;
    while (n < srclen && n + 1 < dstlen && src[n] != '\0') {
        dst[n] = src[n];
        n++;
    }
    dst[n] = '\0';
}

/* Reads n bytes at off from a file descriptor or a memory buffer. */
typedef struct audio_src {
    int fd;
    const unsigned char *buf;
    uint64_t len;
} audio_src;

static bool src_read(const audio_src *s, uint64_t off, unsigned char *out, size_t n)
{
    if (off > s->len || s->len - off < n) {
        return false;
    }
    if (s->buf != NULL) {
        memcpy(out, s->buf + off, n);
        return true;
    }
    return pread(s->fd, out, n, (off_t)off) == (ssize_t)n;
}

static uint32_t chunk_size(const unsigned char *c, bool big)
{
    return big ? ((uint32_t)c[4] << 24 | (uint32_t)c[5] << 16 | (uint32_t)c[6] << 8 | c[7])
               : ((uint32_t)c[7] << 24 | (uint32_t)c[6] << 16 | (uint32_t)c[5] << 8 | c[4]);
}

/* Sub-chunks of a RIFF LIST must stay inside it (libsndfile 1.2.0 can spin
 * forever on one that claims more). */
static rs_err check_list(const char *name, const audio_src *s, uint64_t off, uint64_t end,
                         rs_error *e)
{
    off += 4; /* list type, e.g. "INFO" */
    for (int i = 0; i < 4096 && off + 8 <= end; i++) {
        unsigned char c[8];
        if (!src_read(s, off, c, sizeof c)) {
            break;
        }
        uint64_t size = chunk_size(c, false);
        if (off + 8 + size > end) {
            return rs_error_set(
                e, RS_EFORMAT,
                "%s: audio: LIST sub-chunk '%.4s' of %" PRIu64 " bytes overruns its list", name,
                isprint(c[0]) && isprint(c[1]) && isprint(c[2]) && isprint(c[3]) ? (const char *)c
                                                                                 : "????",
                size);
        }
        off += 8 + size + (size & 1u);
    }
    return RS_OK;
}

/*
 * libsndfile quietly plays a cut-short file as a shorter one, and some
 * malformed chunk tables make it loop; a production recording that lost
 * its tail must be reported, and untrusted bytes must not hang a worker.
 * Walks the RIFF or FORM chunks (bounded): every chunk must fit in the
 * file, LIST sub-chunks in their list, and the sample chunk must exist.
 */
static rs_err check_chunks(const char *name, const audio_src *s, rs_error *e)
{
    unsigned char h[12];
    if (!src_read(s, 0, h, sizeof h)) {
        return rs_error_set(e, RS_EFORMAT, "%s: audio: truncated header", name);
    }
    bool aiff = memcmp(h, "FORM", 4) == 0;
    const char *want = aiff ? "SSND" : "data";
    bool found = false;
    uint64_t off = 12;
    for (int i = 0; i < 4096; i++) {
        unsigned char c[8];
        if (!src_read(s, off, c, sizeof c)) {
            break; /* end of the chunk list (a few stray bytes are tolerated) */
        }
        uint64_t size = chunk_size(c, aiff);
        bool is_want = memcmp(c, want, 4) == 0;
        if (is_want && size == 0xffffffffu) {
            return RS_OK; /* RF64: the real size lives in ds64 */
        }
        if (off + 8 + size > s->len) {
            if (is_want) {
                return rs_error_set(e, RS_EFORMAT,
                                    "%s: audio: truncated: %s chunk says %" PRIu64
                                    " bytes, %" PRIu64 " left in the file",
                                    name, want, size, s->len - off - 8);
            }
            return rs_error_set(e, RS_EFORMAT,
                                "%s: audio: truncated or corrupt: chunk at byte %" PRIu64
                                " claims %" PRIu64 " bytes past the end",
                                name, off, off + 8 + size - s->len);
        }
        if (!aiff && memcmp(c, "LIST", 4) == 0 && size >= 4) {
            rs_err rc = check_list(name, s, off + 8, off + 8 + size, e);
            if (rc != RS_OK) {
                return rc;
            }
        }
        found = found || is_want;
        off += 8 + size + (size & 1u);
    }
    if (!found) {
        return rs_error_set(e, RS_EFORMAT, "%s: audio: truncated: no %s chunk", name, want);
    }
    return RS_OK;
}

static rs_err from_sndfile(const char *name, SNDFILE *sf, const SF_INFO *info, uint64_t max_samples,
                           media_audio **out, rs_error *e)
{
    int major = info->format & SF_FORMAT_TYPEMASK;
    int sub = info->format & SF_FORMAT_SUBMASK;
    media_format container;
    if (major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX || major == SF_FORMAT_RF64) {
        container = MEDIA_FORMAT_WAV;
    } else if (major == SF_FORMAT_AIFF) {
        container = MEDIA_FORMAT_AIFF;
    } else {
        return rs_error_set(e, RS_EFORMAT, "%s: audio: container 0x%x is not WAV or AIFF", name,
                            (unsigned)major);
    }
    uint32_t bits;
    bool is_float = false;
    switch (sub) {
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_PCM_U8:
        bits = 8;
        break;
    case SF_FORMAT_PCM_16:
        bits = 16;
        break;
    case SF_FORMAT_PCM_24:
        bits = 24;
        break;
    case SF_FORMAT_PCM_32:
        bits = 32;
        break;
    case SF_FORMAT_FLOAT:
    case SF_FORMAT_DOUBLE:
        bits = 32;
        is_float = true;
        break;
    default:
        return rs_error_set(e, RS_EFORMAT,
                            "%s: audio: sample encoding 0x%x not supported "
                            "(PCM or float)",
                            name, (unsigned)sub);
    }
    if (info->channels <= 0 || info->samplerate <= 0 || info->frames < 0) {
        return rs_error_set(e, RS_EFORMAT, "%s: audio: bad header (%d ch, %d Hz)", name,
                            info->channels, info->samplerate);
    }
    uint64_t samples = (uint64_t)info->frames * (uint64_t)info->channels;
    if (samples > max_samples) {
        return rs_error_set(e, RS_ETOOBIG,
                            "%s: audio: %" PRIu64 " samples, over the %" PRIu64 " cap", name,
                            samples, max_samples);
    }
    media_audio *a = NULL;
    rs_err rc = media_audio_create(container, (uint32_t)info->samplerate, (uint32_t)info->channels,
                                   (uint64_t)info->frames, bits, is_float, &a, e);
    if (rc != RS_OK) {
        if (rc == RS_EINVAL) {
            rc = rs_error_set(e, RS_EFORMAT, "%s: audio: unsupported layout %d Hz x %d ch", name,
                              info->samplerate, info->channels);
        }
        return rc;
    }
    sf_count_t got = is_float ? sf_readf_float(sf, a->fpcm, info->frames)
                              : sf_readf_int(sf, a->pcm, info->frames);
    if (got != info->frames) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: audio: truncated: %lld of %lld frames readable", name,
                          (long long)(got < 0 ? 0 : got), (long long)info->frames);
        goto out;
    }
    SF_BROADCAST_INFO bi;
    memset(&bi, 0, sizeof bi);
    if (container == MEDIA_FORMAT_WAV &&
        sf_command(sf, SFC_GET_BROADCAST_INFO, &bi, sizeof bi) == SF_TRUE) {
        a->bext.present = true;
        field(a->bext.description, sizeof a->bext.description, bi.description,
              sizeof bi.description);
        field(a->bext.originator, sizeof a->bext.originator, bi.originator, sizeof bi.originator);
        field(a->bext.originator_reference, sizeof a->bext.originator_reference,
              bi.originator_reference, sizeof bi.originator_reference);
        field(a->bext.origination_date, sizeof a->bext.origination_date, bi.origination_date,
              sizeof bi.origination_date);
        field(a->bext.origination_time, sizeof a->bext.origination_time, bi.origination_time,
              sizeof bi.origination_time);
        a->bext.time_reference = ((uint64_t)bi.time_reference_high << 32) | bi.time_reference_low;
        uint32_t hl = bi.coding_history_size < sizeof bi.coding_history
                          ? bi.coding_history_size
                          : (uint32_t)sizeof bi.coding_history;
        field(a->bext.coding_history, sizeof a->bext.coding_history, bi.coding_history, hl);
    }
    SF_CHUNK_INFO ci;
    memset(&ci, 0, sizeof ci);
    snprintf(ci.id, sizeof ci.id, "iXML");
    ci.id_size = 4;
    SF_CHUNK_ITERATOR *it = sf_get_chunk_iterator(sf, &ci);
    if (it != NULL && sf_get_chunk_size(it, &ci) == SF_ERR_NO_ERROR && ci.datalen > 0) {
        if (ci.datalen > AUDIO_MAX_IXML) {
            rc = rs_error_set(e, RS_ETOOBIG, "%s: audio: iXML chunk of %u bytes over the cap", name,
                              ci.datalen);
            goto out;
        }
        char *xml = calloc(1, (size_t)ci.datalen + 1);
        if (xml == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", name);
            goto out;
        }
        ci.data = xml;
        if (sf_get_chunk_data(it, &ci) != SF_ERR_NO_ERROR) {
            free(xml);
        } else {
            xml[ci.datalen <= AUDIO_MAX_IXML ? ci.datalen : 0] = '\0';
            a->ixml = xml;
        }
    }
out:
    if (rc != RS_OK) {
        media_audio_destroy(a);
        return rc;
    }
    *out = a;
    return RS_OK;
}

rs_err media_audio_read(const char *path, media_audio **out, rs_error *e)
{
    char sfmsg[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return rs_error_set(e, RS_ENOENT, "%s: cannot open", path);
    }
    unsigned char head[16] = {0};
    ssize_t n = pread(fd, head, sizeof head, 0);
    media_format f = media_format_sniff(head, n > 0 ? (size_t)n : 0);
    if (f != MEDIA_FORMAT_WAV && f != MEDIA_FORMAT_AIFF) {
        close(fd);
        return rs_error_set(e, RS_EFORMAT, "%s: not WAV or AIFF audio (wrong magic)", path);
    }
    struct stat st;
    audio_src src = {.fd = fd};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rs_error_set(e, RS_EFORMAT, "%s: not a regular file", path);
    }
    src.len = (uint64_t)st.st_size;
    rs_err crc = check_chunks(path, &src, e);
    if (crc != RS_OK) {
        close(fd);
        return crc;
    }
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_fd(fd, SFM_READ, &info, SF_TRUE);
    if (sf == NULL) {
        return rs_error_set(e, RS_EFORMAT, "%s: audio: %s", path,
                            sf_text(NULL, sfmsg, sizeof sfmsg));
    }
    rs_err rc = from_sndfile(path, sf, &info, AUDIO_MAX_SAMPLES, out, e);
    sf_close(sf);
    return rc;
}

typedef struct audio_mem {
    const unsigned char *buf;
    sf_count_t len;
    sf_count_t pos;
} audio_mem;

static sf_count_t vm_len(void *ud)
{
    return ((audio_mem *)ud)->len;
}

static sf_count_t vm_seek(sf_count_t off, int whence, void *ud)
{
    audio_mem *m = ud;
    sf_count_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->len : 0;
    sf_count_t p = base + off;
    if (p < 0) {
        return -1;
    }
    m->pos = p;
    return p;
}

static sf_count_t vm_read(void *out, sf_count_t n, void *ud)
{
    audio_mem *m = ud;
    if (n <= 0 || m->pos >= m->len) {
        return 0;
    }
    sf_count_t take = m->len - m->pos < n ? m->len - m->pos : n;
    memcpy(out, m->buf + m->pos, (size_t)take);
    m->pos += take;
    return take;
}

static sf_count_t vm_write(const void *in, sf_count_t n, void *ud)
{
    (void)in;
    (void)n;
    (void)ud;
    return 0;
}

static sf_count_t vm_tell(void *ud)
{
    return ((audio_mem *)ud)->pos;
}

rs_err media_audio_decode(const char *name, const void *buf, size_t len, uint64_t max_samples,
                          media_audio **out, rs_error *e)
{
    char sfmsg[256];
    media_format f = media_format_sniff(buf, len);
    if (f != MEDIA_FORMAT_WAV && f != MEDIA_FORMAT_AIFF) {
        return rs_error_set(e, RS_EFORMAT, "%s: not WAV or AIFF audio (wrong magic)", name);
    }
    audio_src src = {.fd = -1, .buf = buf, .len = len};
    rs_err crc = check_chunks(name, &src, e);
    if (crc != RS_OK) {
        return crc;
    }
    audio_mem m = {.buf = buf, .len = (sf_count_t)len};
    SF_VIRTUAL_IO io = {vm_len, vm_seek, vm_read, vm_write, vm_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_virtual(&io, SFM_READ, &info, &m);
    if (sf == NULL) {
        return rs_error_set(e, RS_EFORMAT, "%s: audio: %s", name,
                            sf_text(NULL, sfmsg, sizeof sfmsg));
    }
    rs_err rc =
        from_sndfile(name, sf, &info, max_samples != 0 ? max_samples : AUDIO_MAX_SAMPLES, out, e);
    sf_close(sf);
    return rc;
}

rs_err media_audio_write(const char *path, const media_audio *a, rs_error *e)
{
    char sfmsg[256];
    int major = a->container == MEDIA_FORMAT_AIFF ? SF_FORMAT_AIFF : SF_FORMAT_WAV;
    int sub;
    if (a->is_float) {
        sub = SF_FORMAT_FLOAT;
    } else if (a->bits == 8) {
        sub = major == SF_FORMAT_WAV ? SF_FORMAT_PCM_U8 : SF_FORMAT_PCM_S8;
    } else if (a->bits == 16) {
        sub = SF_FORMAT_PCM_16;
    } else if (a->bits == 24) {
        sub = SF_FORMAT_PCM_24;
    } else if (a->bits == 32) {
        sub = SF_FORMAT_PCM_32;
    } else {
        return rs_error_set(e, RS_EINVAL, "%s: audio: %u-bit PCM cannot be written", path, a->bits);
    }
    SF_INFO info = {
        .samplerate = (int)a->rate, .channels = (int)a->channels, .format = major | sub};
    if (!sf_format_check(&info)) {
        return rs_error_set(e, RS_EINVAL, "%s: audio: libsndfile refuses this layout", path);
    }
    if (a->bext.present && a->container != MEDIA_FORMAT_WAV) {
        return rs_error_set(e, RS_EINVAL, "%s: audio: bext needs WAV, not AIFF", path);
    }
    rs_fs_atomic at;
    rs_err rc = rs_fs_atomic_open(path, &at, e);
    if (rc != RS_OK) {
        return rc;
    }
    SNDFILE *sf = sf_open_fd(at.fd, SFM_WRITE, &info, SF_FALSE);
    if (sf == NULL) {
        rs_fs_atomic_abort(&at);
        return rs_error_set(e, RS_EIO, "%s: audio: %s", path, sf_text(NULL, sfmsg, sizeof sfmsg));
    }
    if (a->bext.present) {
        SF_BROADCAST_INFO bi;
        memset(&bi, 0, sizeof bi);
        memcpy(bi.description, a->bext.description, strnlen(a->bext.description, 256));
        memcpy(bi.originator, a->bext.originator, strnlen(a->bext.originator, 32));
        memcpy(bi.originator_reference, a->bext.originator_reference,
               strnlen(a->bext.originator_reference, 32));
        memcpy(bi.origination_date, a->bext.origination_date,
               strnlen(a->bext.origination_date, 10));
        memcpy(bi.origination_time, a->bext.origination_time, strnlen(a->bext.origination_time, 8));
        bi.time_reference_low = (uint32_t)a->bext.time_reference;
        bi.time_reference_high = (uint32_t)(a->bext.time_reference >> 32);
        bi.version = 1;
        size_t hl = strnlen(a->bext.coding_history, 256);
        memcpy(bi.coding_history, a->bext.coding_history, hl);
        bi.coding_history_size = (uint32_t)hl;
        if (sf_command(sf, SFC_SET_BROADCAST_INFO, &bi, sizeof bi) != SF_TRUE) {
            rc = rs_error_set(e, RS_EIO, "%s: audio: cannot set bext: %s", path,
                              sf_text(sf, sfmsg, sizeof sfmsg));
            goto out;
        }
    }
    SF_CHUNK_INFO ci;
    memset(&ci, 0, sizeof ci);
    if (a->ixml != NULL) {
        if (a->container != MEDIA_FORMAT_WAV) {
            rc = rs_error_set(e, RS_EINVAL, "%s: audio: iXML needs WAV, not AIFF", path);
            goto out;
        }
        snprintf(ci.id, sizeof ci.id, "iXML");
        ci.id_size = 4;
        ci.data = a->ixml;
        ci.datalen = (unsigned)strlen(a->ixml);
        if (sf_set_chunk(sf, &ci) != SF_ERR_NO_ERROR) {
            rc = rs_error_set(e, RS_EIO, "%s: audio: cannot add iXML: %s", path,
                              sf_text(sf, sfmsg, sizeof sfmsg));
            goto out;
        }
    }
    sf_count_t want = (sf_count_t)a->frames;
    sf_count_t put =
        a->is_float ? sf_writef_float(sf, a->fpcm, want) : sf_writef_int(sf, a->pcm, want);
    if (put != want) {
        rc =
            rs_error_set(e, RS_EIO, "%s: audio: write: %s", path, sf_text(sf, sfmsg, sizeof sfmsg));
        goto out;
    }
out:
    if (sf_close(sf) != 0 && rc == RS_OK) {
        rc = rs_error_set(e, RS_EIO, "%s: audio: close failed", path);
    }
    if (rc != RS_OK) {
        rs_fs_atomic_abort(&at);
        return rc;
    }
    return rs_fs_atomic_commit(&at, e);
}
