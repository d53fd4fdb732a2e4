/*
 * sha256.c: SHA-256 with the x86 SHA extensions when the CPU has them
 * (checked once with cpuid), libsodium's portable code otherwise. The
 * SHA-NI block function follows Intel's published sequence (rounds two at
 * a time with sha256rnds2, message schedule with sha256msg1/msg2); the
 * unit test checks it against libsodium on many lengths.
 */
#include "sha256.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define LEDGER_HAVE_NI_CODE 1
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

int ledger_sha256_has_ni(void)
{
#ifdef LEDGER_HAVE_NI_CODE
    /* libgcc caches cpuid in __cpu_model; cpuid itself traps in a VM. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1") &&
           __builtin_cpu_supports("ssse3");
#else
    return 0;
#endif
}

#ifdef LEDGER_HAVE_NI_CODE
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_ni(uint32_t h[8], const uint8_t *p,
                                                                  size_t n)
{
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);       /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);         /* EFGH */
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8); /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);      /* CDGH */
    while (n-- > 0) {
        __m128i abef = s0, cdgh = s1;
        __m128i w[4];
        /* Unrolled so w[] indices are constants and stay in registers. */
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            if (g < 4) {
                w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), mask);
            }
            __m128i cur = w[g & 3];
            __m128i msg = _mm_add_epi32(cur, _mm_loadu_si128((const __m128i *)&K[4 * g]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            if (g >= 3 && g <= 14) {
                __m128i t = _mm_alignr_epi8(cur, w[(g + 3) & 3], 4);
                w[(g + 1) & 3] = _mm_add_epi32(w[(g + 1) & 3], t);
                w[(g + 1) & 3] = _mm_sha256msg2_epu32(w[(g + 1) & 3], cur);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
            if (g >= 1 && g <= 12) {
                w[(g + 3) & 3] = _mm_sha256msg1_epu32(w[(g + 3) & 3], cur);
            }
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
        p += 64;
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);   /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);    /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0); /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);    /* ABEF */
    _mm_storeu_si128((__m128i *)&h[0], s0);
    _mm_storeu_si128((__m128i *)&h[4], s1);
}
#endif

void ledger_sha256_init(ledger_sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memset(s, 0, sizeof *s);
    memcpy(s->h, iv, sizeof iv);
    s->ni = ledger_sha256_has_ni();
    if (!s->ni) {
        crypto_hash_sha256_init(&s->fallback);
    }
}

void ledger_sha256_update(ledger_sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!s->ni) {
        crypto_hash_sha256_update(&s->fallback, p, len);
        return;
    }
#ifdef LEDGER_HAVE_NI_CODE
    s->total += len;
    if (s->nbuf > 0) {
        size_t k = 64 - s->nbuf < len ? 64 - s->nbuf : len;
        memcpy(s->buf + s->nbuf, p, k);
        s->nbuf += k;
        p += k;
        len -= k;
        if (s->nbuf == 64) {
            blocks_ni(s->h, s->buf, 1);
            s->nbuf = 0;
        }
    }
    if (len >= 64) {
        blocks_ni(s->h, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
    }
    if (len > 0) {
        memcpy(s->buf, p, len);
        s->nbuf = len;
    }
#endif
}

void ledger_sha256_final(ledger_sha256 *s, unsigned char out[32])
{
    if (!s->ni) {
        crypto_hash_sha256_final(&s->fallback, out);
        return;
    }
#ifdef LEDGER_HAVE_NI_CODE
    uint64_t bits = s->total * 8;
    uint8_t pad[72];
    size_t padlen = (s->nbuf < 56 ? 56 - s->nbuf : 120 - s->nbuf);
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++) {
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    uint64_t keep = s->total;
    ledger_sha256_update(s, pad, padlen + 8);
    s->total = keep;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
#endif
}
