/*
 * pngfast.c: the audit's fast path for PNG frames (audit.c).
 *
 * An audit decodes two 1080p PNGs per frame and ~60 % of its CPU went to
 * zlib's inflate inside libpng. Here the IDAT stream is inflated with
 * libdeflate (2-3x faster; neither adler32 nor chunk CRCs are checked, see
 * inflate_idat), and only what the audit needs is computed: the source rows are unfiltered; an
 * output row whose filtered bytes equal the source's, above a row that was equal, is equal without
 * unfiltering or comparing it (the PNG filters are functions of the row and the row above). Chunk
 * CRCs are not checked: the audit has already compared each file's SHA-256 with the signed record,
 * which any flipped byte fails. Anything unusual (palette, interlace, sub-8-bit, tRNS, compressed
 * text, frames that differ in header) returns RS_EFORMAT (never shown) and the caller decodes with
 * the media readers as before, so messages and semantics for odd files stay theirs.
 */
#include "ledger.h"

#include <stdlib.h>
#include <string.h>

#ifdef RUSHES_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif

rs_err ledger_png_fast_count(const uint8_t *sbuf, size_t slen, const uint8_t *obuf, size_t olen,
                             const ledger_mask *m, uint64_t *inside, uint64_t *outside,
                             uint32_t *fx, uint32_t *fy, media_frame **labels, rs_error *e);

#ifdef RUSHES_HAVE_LIBDEFLATE

#define PNG_MAX_TEXT 4096

typedef struct png_view {
    uint32_t w, h;
    uint8_t depth, ctype;
    size_t bpp;          /* bytes per pixel */
    size_t rowbytes;     /* without the filter byte */
    const uint8_t *idat; /* the IDAT payloads, contiguous: in the file when there is one */
    uint8_t *idat_owned; /* else joined here (malloc'd) */
    size_t idat_len;
    size_t nidat;
} png_view;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walks the chunks: header, IDAT payloads, "rushes:" tEXt labels into lab
 * (may be NULL). false = not for this path. */
static bool png_parse(const uint8_t *b, size_t len, png_view *v, media_frame *lab)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(v, 0, sizeof *v);
    if (len < 8 + 25 || memcmp(b, sig, 8) != 0) {
        return false;
    }
    size_t pos = 8;
    bool have_ihdr = false, have_iend = false;
    while (pos + 12 <= len && !have_iend) {
        uint32_t n = be32(b + pos);
        const uint8_t *type = b + pos + 4;
        const uint8_t *d = b + pos + 8;
        if (n > len - pos - 12) {
            return false;
        }
        if (memcmp(type, "IHDR", 4) == 0) {
            if (n != 13 || have_ihdr) {
                return false;
            }
            v->w = be32(d);
            v->h = be32(d + 4);
            v->depth = d[8];
            v->ctype = d[9];
            if (d[10] != 0 || d[11] != 0 || d[12] != 0 || v->w == 0 || v->h == 0 ||
                v->w > MEDIA_MAX_DIM || v->h > MEDIA_MAX_DIM || (v->depth != 8 && v->depth != 16)) {
                return false; /* interlaced, odd methods, sub-byte samples */
            }
            size_t ch = v->ctype == 0   ? 1
                        : v->ctype == 2 ? 3
                        : v->ctype == 4 ? 2
                        : v->ctype == 6 ? 4
                                        : 0;
            if (ch == 0) {
                return false; /* palette */
            }
            v->bpp = ch * (v->depth / 8u);
            v->rowbytes = v->bpp * v->w;
            have_ihdr = true;
        } else if (!have_ihdr) {
            return false;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            /* Counted here, joined below in one allocation (or not at all). */
            if (v->nidat == 0) {
                v->idat = d;
            }
            v->nidat++;
            v->idat_len += n;
        } else if (memcmp(type, "IEND", 4) == 0) {
            have_iend = true;
        } else if (memcmp(type, "tRNS", 4) == 0 || memcmp(type, "zTXt", 4) == 0 ||
                   memcmp(type, "iTXt", 4) == 0) {
            return false;
        } else if (memcmp(type, "tEXt", 4) == 0 && lab != NULL && n < PNG_MAX_TEXT) {
            const uint8_t *z = memchr(d, 0, n);
            if (z != NULL && (size_t)(z - d) > 7 && memcmp(d, "rushes:", 7) == 0) {
                char key[80], val[PNG_MAX_TEXT];
                size_t kl = (size_t)(z - d), vl = n - kl - 1;
                if (kl < sizeof key) {
                    memcpy(key, d, kl);
                    key[kl] = '\0';
                    memcpy(val, z + 1, vl);
                    val[vl] = '\0';
                    rs_error ig;
                    if (media_frame_meta_set(lab, key, val, &ig) != RS_OK) {
                        return false;
                    }
                }
            }
        }
        pos += 12 + (size_t)n;
    }
    if (!have_ihdr || !have_iend || v->idat_len == 0) {
        return false;
    }
    if (v->nidat > 1) {
        v->idat_owned = malloc(v->idat_len);
        if (v->idat_owned == NULL) {
            return false;
        }
        size_t at = 0;
        for (pos = 8; pos + 12 <= len;) {
            uint32_t n = be32(b + pos);
            if (memcmp(b + pos + 4, "IDAT", 4) == 0) {
                memcpy(v->idat_owned + at, b + pos + 8, n);
                at += n;
            }
            if (memcmp(b + pos + 4, "IEND", 4) == 0) {
                break;
            }
            pos += 12 + (size_t)n;
        }
        v->idat = v->idat_owned;
    }
    return true;
}

/*
 * Inflates a zlib stream's deflate data: the 2-byte header is checked (no
 * preset dictionary), the adler32 trailer is not (6 % of the audit's CPU):
 * like the chunk CRCs it adds nothing to the file's SHA-256, which the
 * audit has compared with the signed record.
 */
static bool inflate_idat(struct libdeflate_decompressor *dd, const png_view *v, uint8_t *out,
                         size_t total)
{
    const uint8_t *z = v->idat;
    if (v->idat_len < 6 || (z[0] & 0x0f) != 8 || (z[0] >> 4) > 7 || (z[1] & 0x20) != 0 ||
        ((unsigned)z[0] << 8 | z[1]) % 31 != 0) {
        return false;
    }
    size_t got = 0;
    return libdeflate_deflate_decompress(dd, z + 2, v->idat_len - 6, out, total, &got) ==
               LIBDEFLATE_SUCCESS &&
           got == total;
}

static inline uint8_t paeth(uint8_t a, uint8_t b, uint8_t c)
{
    int p = (int)a + b - c;
    int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

#ifdef __SSE2__
/* Stores one 3- or 4-byte pixel from the low bytes of v. Fixed-size copies
 * (inlined stores): a memcpy of a variable bpp was a libc call per pixel. */
static inline void store_px(uint8_t *p, uint32_t v, size_t bpp)
{
    if (bpp == 4) {
        memcpy(p, &v, 4);
    } else {
        uint16_t lo = (uint16_t)v;
        memcpy(p, &lo, 2);
        p[2] = (uint8_t)(v >> 16);
    }
}

/* Paeth for 3- and 4-byte pixels, one pixel per step in 16-bit lanes (the
 * way libpng's SSE2 filters do it): noisy footage makes the scalar branches
 * unpredictable, and Paeth is what encoders pick for it. */
static void paeth_sse2(uint8_t *row, const uint8_t *up, size_t n, size_t bpp)
{
    const __m128i zero = _mm_setzero_si128();
    __m128i a = zero, c = zero;
    size_t i = 0;
    for (; i + 4 <= n; i += bpp) {
        uint32_t bu, du;
        memcpy(&bu, up + i, 4);
        memcpy(&du, row + i, 4);
        __m128i b = _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)bu), zero);
        __m128i d = _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)du), zero);
        __m128i pa = _mm_sub_epi16(b, c); /* p - a = b - c */
        __m128i pb = _mm_sub_epi16(a, c); /* p - b = a - c */
        __m128i pc = _mm_add_epi16(pa, pb);
        pa = _mm_max_epi16(pa, _mm_sub_epi16(zero, pa));
        pb = _mm_max_epi16(pb, _mm_sub_epi16(zero, pb));
        pc = _mm_max_epi16(pc, _mm_sub_epi16(zero, pc));
        /* a if pa <= pb and pa <= pc; else b if pb <= pc; else c */
        __m128i use_c = _mm_cmplt_epi16(pc, pb);
        __m128i bc = _mm_or_si128(_mm_and_si128(use_c, c), _mm_andnot_si128(use_c, b));
        __m128i pbc = _mm_min_epi16(pb, pc);
        __m128i use_bc = _mm_cmplt_epi16(pbc, pa);
        __m128i pred = _mm_or_si128(_mm_and_si128(use_bc, bc), _mm_andnot_si128(use_bc, a));
        __m128i r = _mm_and_si128(_mm_add_epi16(d, pred), _mm_set1_epi16(0xff));
        uint32_t ru = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(r, r));
        store_px(row + i, ru, bpp); /* the 4th byte of a 3-byte pixel is the next pixel's */
        a = r;
        c = b;
    }
    /* The last pixel of a 3-byte row would read past it: finish scalar. */
    for (; i < n; i++) {
        uint8_t l = i >= bpp ? row[i - bpp] : 0;
        uint8_t ul = i >= bpp ? up[i - bpp] : 0;
        int p = (int)l + up[i] - ul;
        int qa = abs(p - l), qb = abs(p - up[i]), qc = abs(p - ul);
        row[i] = (uint8_t)(row[i] + (qa <= qb && qa <= qc ? l : qb <= qc ? up[i] : ul));
    }
}
#endif

#ifdef __SSE2__
/* Average for 3- and 4-byte pixels, one pixel per step (see paeth_sse2). */
static void average_sse2(uint8_t *row, const uint8_t *up, size_t n, size_t bpp)
{
    const __m128i zero = _mm_setzero_si128();
    const __m128i lo = _mm_set1_epi16(0xff);
    __m128i a = zero;
    size_t i = 0;
    for (; i + 4 <= n; i += bpp) {
        uint32_t bu, du;
        memcpy(&bu, up + i, 4);
        memcpy(&du, row + i, 4);
        __m128i b = _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)bu), zero);
        __m128i d = _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)du), zero);
        __m128i avg = _mm_srli_epi16(_mm_add_epi16(a, b), 1);
        __m128i r = _mm_and_si128(_mm_add_epi16(d, avg), lo);
        uint32_t ru = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(r, r));
        store_px(row + i, ru, bpp);
        a = r;
    }
    for (; i < n; i++) {
        unsigned l = i >= bpp ? row[i - bpp] : 0;
        row[i] = (uint8_t)(row[i] + ((l + up[i]) >> 1));
    }
}
#endif

/* Unfilters row (filter byte f) in place given the unfiltered row above
 * (NULL for the first). false for an unknown filter type. */
static bool unfilter(uint8_t f, uint8_t *row, const uint8_t *up, size_t n, size_t bpp)
{
    switch (f) {
    case 0:
        return true;
    case 1:
        for (size_t i = bpp; i < n; i++) {
            row[i] = (uint8_t)(row[i] + row[i - bpp]);
        }
        return true;
    case 2:
        if (up != NULL) {
            for (size_t i = 0; i < n; i++) {
                row[i] = (uint8_t)(row[i] + up[i]);
            }
        }
        return true;
    case 3:
#ifdef __SSE2__
        if (up != NULL && (bpp == 3 || bpp == 4)) {
            average_sse2(row, up, n, bpp);
            return true;
        }
#endif
        for (size_t i = 0; i < n; i++) {
            unsigned l = i >= bpp ? row[i - bpp] : 0;
            unsigned u = up != NULL ? up[i] : 0;
            row[i] = (uint8_t)(row[i] + ((l + u) >> 1));
        }
        return true;
    case 4:
#ifdef __SSE2__
        if (up != NULL && (bpp == 3 || bpp == 4)) {
            paeth_sse2(row, up, n, bpp);
            return true;
        }
#endif
        for (size_t i = 0; i < n; i++) {
            uint8_t l = i >= bpp ? row[i - bpp] : 0;
            uint8_t u = up != NULL ? up[i] : 0;
            uint8_t ul = i >= bpp && up != NULL ? up[i - bpp] : 0;
            row[i] = (uint8_t)(row[i] + paeth(l, u, ul));
        }
        return true;
    default:
        return false;
    }
}

rs_err ledger_png_fast_count(const uint8_t *sbuf, size_t slen, const uint8_t *obuf, size_t olen,
                             const ledger_mask *m, uint64_t *inside, uint64_t *outside,
                             uint32_t *fx, uint32_t *fy, media_frame **labels, rs_error *e)
{
    png_view s, o;
    media_frame *lab = NULL;
    uint8_t *sraw = NULL, *oraw = NULL;
    struct libdeflate_decompressor *dd = NULL;
    rs_err rc = RS_EFORMAT;
    bool sok = png_parse(sbuf, slen, &s, NULL);
    if (media_frame_create(1, 1, 1, MEDIA_SAMPLE_U8, &lab, e) != RS_OK) {
        free(s.idat_owned);
        return RS_EFORMAT;
    }
    bool ook = png_parse(obuf, olen, &o, lab);
    if (!sok || !ook || s.w != o.w || s.h != o.h || s.depth != o.depth || s.ctype != o.ctype ||
        m->width != s.w || m->height != s.h) {
        goto out;
    }
    size_t stride = s.rowbytes + 1;
    size_t total = stride * s.h;
    sraw = malloc(total);
    oraw = malloc(total);
    dd = libdeflate_alloc_decompressor();
    if (sraw == NULL || oraw == NULL || dd == NULL) {
        goto out;
    }
    if (!inflate_idat(dd, &s, sraw, total) || !inflate_idat(dd, &o, oraw, total)) {
        goto out; /* the media reader gives the proper message */
    }
    /*
     * Only rows near the change need unfiltering. Rows above the first one
     * whose filtered bytes differ are equal (the filters are functions of
     * the row and the row above), and the source is unfiltered from the
     * nearest row above it whose filter (None or Sub) ignores the row
     * above: that is all the context the first changed row needs. Rows
     * below the last differing one are equal as soon as a row is. A
     * removal touches a band of the frame; the rest costs a compare.
     */
    int64_t first_diff = -1, last_diff = -1;
    for (uint32_t y = 0; y < s.h; y++) {
        if (memcmp(sraw + stride * y, oraw + stride * y, stride) != 0) {
            first_diff = y;
            break;
        }
    }
    for (int64_t y = (int64_t)s.h - 1; y >= first_diff && first_diff >= 0; y--) {
        if (memcmp(sraw + stride * (size_t)y, oraw + stride * (size_t)y, stride) != 0) {
            last_diff = y;
            break;
        }
    }
    uint32_t start = 0;
    for (int64_t y = first_diff - 1; y > 0; y--) {
        if (sraw[stride * (size_t)y] <= 1) {
            start = (uint32_t)y;
            break;
        }
    }
    uint64_t in = 0, outn = 0;
    bool first = true, above_equal = true;
    size_t ps = s.bpp;
    /* The output's unfiltered row above: its own, or the source's when the
     * two are equal (shared, not copied). */
    const uint8_t *oup = NULL;
    for (uint32_t y = start; y < s.h && first_diff >= 0; y++) {
        if ((int64_t)y > last_diff && above_equal) {
            break; /* every row from here on is equal */
        }
        uint8_t *sr = sraw + stride * y;
        uint8_t * or = oraw + stride * y;
        const uint8_t *sup = y > start ? sr - stride + 1 : NULL; /* row start: None or Sub */
        bool same_filtered = above_equal && ((int64_t)y < first_diff || (int64_t)y > last_diff ||
                                             memcmp(sr, or, stride) == 0);
        if (!unfilter(sr[0], sr + 1, sup, s.rowbytes, ps)) {
            goto out;
        }
        if (same_filtered) {
            /* Equal filter input over an equal row above: equal pixels. */
            oup = sr + 1;
            continue;
        }
        if (!unfilter(or [0], or +1, oup, s.rowbytes, ps)) {
            goto out;
        }
        oup = or +1;
        const uint8_t *a = sr + 1, *b = or +1;
        above_equal = memcmp(a, b, s.rowbytes) == 0;
        if (above_equal) {
            continue;
        }
        const uint8_t *mr = m->bits + (size_t)m->width * y;
        for (uint32_t x = 0; x < s.w; x++) {
            const uint8_t *pa = a + ps * x, *pb = b + ps * x;
            bool eq = ps == 3 ? pa[0] == pb[0] && pa[1] == pb[1] && pa[2] == pb[2]
                              : memcmp(pa, pb, ps) == 0;
            if (eq) {
                continue;
            }
            if (mr[x] != 0) {
                in++;
            } else {
                if (first && fx != NULL && fy != NULL) {
                    *fx = x;
                    *fy = y;
                }
                first = false;
                outn++;
            }
        }
    }
    *inside = in;
    *outside = outn;
    *labels = lab;
    lab = NULL;
    rc = RS_OK;
out:
    libdeflate_free_decompressor(dd);
    free(sraw);
    free(oraw);
    free(s.idat_owned);
    free(o.idat_owned);
    media_frame_destroy(lab);
    return rc;
}

#else

rs_err ledger_png_fast_count(const uint8_t *sbuf, size_t slen, const uint8_t *obuf, size_t olen,
                             const ledger_mask *m, uint64_t *inside, uint64_t *outside,
                             uint32_t *fx, uint32_t *fy, media_frame **labels, rs_error *e)
{
    (void)sbuf, (void)slen, (void)obuf, (void)olen, (void)m, (void)inside, (void)outside;
    (void)fx, (void)fy, (void)labels, (void)e;
    return RS_EFORMAT;
}

#endif
