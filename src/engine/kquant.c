/*
 * kquant.c: K-quant kernels with AVX-512 VNNI (see kquant.h): Q4_K and Q2_K
 * against one activation row and against groups of 4 over ggml's 8-row
 * repacked layouts, Q6_K, Q5_K, Q3_K and IQ4_XS rows of a plain matrix, and
 * the start-up checks against ggml's own code.
 *
 * Q4_K, per 8 weight rows and 256 elements:
 *  - each 64-byte load holds 8 bytes of each row; its low nibbles meet 8
 *    activation bytes of sub-block 2p and its high nibbles the 8 bytes 32
 *    further, of sub-block 2p+1 (vpdpbusd, two int32 lanes per row);
 *  - after the four loads of a sub-block pair, each lane holds a sum of 16
 *    products of a 4-bit and an 8-bit value (|x| <= 30720, an int16), so
 *    vpmaddwd multiplies it by the sub-block's 6-bit scale exactly;
 *  - the 8 rows' scales and mins come out of their 6-bit packing for all 8
 *    sub-blocks at once (three dword permutes of the 96 bytes);
 *  - the mins meet the activation's sub-block sums with vpmaddwd, two
 *    sub-blocks a time, from pairs prepared once per call;
 *  - per 256 elements, the two lanes of each row fold in integers and
 *    d_j*S - dmin_j*M is taken in float with one rounding (fmsub) before
 *    the superblocks add up: Q4_K's quants are unsigned, so against a row
 *    with a mean both terms run to ~10^3 times the result, and ggml's
 *    kernel, which sums each term on its own, loses ~1e-3 of the result
 *    there (measured on ggml's own quantization of a 4864-wide row).
 */
#include "engine/kquant.h"

#include "core/log.h"
#include "engine/kblocks.h"
#include "engine/kernels.h"

#include <immintrin.h>
#include <pthread.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KTARGET \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))
#define KTARGET_VBMI \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,f16c,fma")))

struct q4kx8 {      /* ggml's block_q4_Kx8 */
    uint16_t d[8];
    uint16_t dmin[8];
    uint8_t scales[96];
    uint8_t qs[1024];
};
_Static_assert(sizeof(struct q4kx8) == 1152, "ggml's block_q4_Kx8");

/* how far ahead the rows kernels fetch a plain matrix (kernels.h; 1.1B
 * Q5_K_M decode +10% side by side at ~80 GB/s, the same at ~50) */
#ifndef ROWS_PREFETCH_BYTES
#define ROWS_PREFETCH_BYTES KERNELS_ROWS_AHEAD
#endif

/* rows up to this many elements take hearth's kernel; wider ones ggml's */
#define MAX_SUPERBLOCKS 64

typedef void (*gemv_fn)(int, float *, size_t, const void *, const void *, int, int);

typedef void (*dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);

typedef void (*rows_fn)(int, float *, const void *, size_t, int, const void *);

/* ggml's own kernels, for rows too wide for hearth's and when hearth's are off */
static gemv_fn g_ggml;      /* Q4_K, one activation row */
static gemv_fn g_ggml_gemm; /* Q4_K, groups of 4 (the worker's export forwards here) */
static gemv_fn g_ggml2;     /* Q2_K, one activation row */
static gemv_fn g_ggml_gemm2; /* Q2_K, groups of 4 (the worker's export forwards here) */
static dot_fn g_dot6;       /* Q6_K dot product */
static dot_fn g_dot5;       /* Q5_K dot product */
static dot_fn g_dot3;       /* Q3_K dot product */
static dot_fn g_dotx;       /* IQ4_XS dot product */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* hearth's kernels checked and in use: Q4_K one row, Q6_K, Q5_K, Q3_K and
 * IQ4_XS rows, Q4_K 4 rows, Q2_K one row and 4 rows */
static bool g_on, g_on6, g_on5, g_on3, g_onx, g_gemm_on, g_on2, g_gemm2_on;

static void make_scale_idx(void);
static void make_q2_idx(void);

/* ggml's own kernels, and the index tables, once */
static void resolve(void)
{
    g_ggml_gemm = (gemv_fn)kernels_backend_symbol("ggml_gemm_q4_K_8x8_q8_K");
    g_ggml_gemm2 = (gemv_fn)kernels_backend_symbol("ggml_gemm_q2_K_8x8_q8_K");
    make_scale_idx();
    make_q2_idx();
}

/* The 8 rows' 6-bit scales and mins of the 8 sub-blocks: lane s of sc_lo
 * holds sub-block s's scales of rows 0-3 (a byte each), sc_hi rows 4-7;
 * mn_lo and mn_hi the same for the mins. */
KTARGET static inline void unpack_scales(const uint8_t *p, __m256i *sc_lo, __m256i *sc_hi,
                                         __m256i *mn_lo, __m256i *mn_hi)
{
    const __m512i a = _mm512_loadu_si512(p);                                /* dwords 0-15 */
    const __m512i b = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 64)));
    const __m512i i01 = _mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 1, 4, 7, 10, 13, 16, 19, 22);
    const __m512i i2 = _mm512_setr_epi32(2, 5, 8, 11, 14, 17, 20, 23, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i u01 = _mm512_permutex2var_epi32(a, i01, b);
    const __m256i u0 = _mm512_castsi512_si256(u01), u1 = _mm512_extracti64x4_epi64(u01, 1);
    const __m256i u2 = _mm512_castsi512_si256(_mm512_permutex2var_epi32(a, i2, b));
    const __m256i m3f = _mm256_set1_epi32(0x3f3f3f3f), m0f = _mm256_set1_epi32(0x0f0f0f0f);
    const __m256i m03 = _mm256_set1_epi32(0x03030303);
    *sc_lo = _mm256_and_si256(u0, m3f);
    *mn_lo = _mm256_and_si256(u1, m3f);
    *sc_hi = _mm256_or_si256(_mm256_and_si256(u2, m0f),
                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u0, 6), m03), 4));
    *mn_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 4), m0f),
                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u1, 6), m03), 4));
}

/* Sub-block scales of 8 rows as 16 int32 lanes, two per row (the layout
 * of the vpdpbusd sums): from the 8 bytes in lane s of lo|hi. */
KTARGET static inline __m512i lanes_of(const uint32_t *lo, const uint32_t *hi, int s)
{
    const __m128i b = _mm_setr_epi32((int)lo[s], (int)hi[s], 0, 0);
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b, b));
}

/* One superblock's part of 8 rows' sums: the quants' sums (two int32
 * lanes per row, folded exactly) times d, less the mins' sums times dmin,
 * both with the activation's scale ad, rounded once (fmsub): with unsigned
 * quants against a row with a mean both terms run to ~10^3 times the
 * result, so they must not be rounded apart. */
KTARGET static inline __m256 superblock(__m512i sum, __m256i msum, __m256 d8, __m256 dmin8,
                                        __m256 ad)
{
    const __m512i fold = _mm512_add_epi32(sum, _mm512_srli_epi64(sum, 32));
    const __m256 s8 = _mm256_cvtepi32_ps(_mm512_cvtepi64_epi32(fold));
    return _mm256_fmsub_ps(s8, _mm256_mul_ps(d8, ad),
                           _mm256_mul_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmin8, ad)));
}

KTARGET void kquant_gemv_q4_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                              int nc)
{
    (void)bs;
    (void)nr;
    const int nb = n / 256;
    if (nb > MAX_SUPERBLOCKS) {
        g_ggml(n, s, bs, vx, vy, nr, nc);
        return;
    }
    const struct q8k *a = vy;
    /* the activation's sub-block sums in pairs, one int16 pair per dword,
     * for the mins (sub-blocks 2t and 2t+1 in dword t) */
    __m256i bpair[MAX_SUPERBLOCKS][4];
    for (int l = 0; l < nb; l++) {
        const __m256i b16 = _mm256_loadu_si256((const __m256i *)a[l].bsums);
        const __m256i b32 = _mm256_madd_epi16(b16, _mm256_set1_epi16(1)); /* 8 sub-block sums */
        const __m256i p16 = _mm256_packs_epi32(b32, b32);  /* |sum| <= 32*128: exact */
        /* after packs: words 0-3 = sums 0-3, words 8-11 = sums 4-7 */
        const __m128i lo = _mm256_castsi256_si128(p16), hi = _mm256_extracti128_si256(p16, 1);
        uint32_t pairs[4];                                   /* sums 2t, 2t+1 in dword t */
        _mm_storeu_si128((__m128i *)pairs, _mm_unpacklo_epi64(lo, hi));
        for (int t = 0; t < 4; t++)
            bpair[l][t] = _mm256_set1_epi32((int)pairs[t]);
    }
    const __m512i m0f = _mm512_set1_epi8(0x0F);
    const struct q4kx8 *x = vx;
    for (int g = 0; g < nc / 8; g++, x += nb) {
        __m256 acc = _mm256_setzero_ps();
        for (int l = 0; l < nb; l++) {
            const struct q4kx8 *b = x + l;
            const int8_t *aq = a[l].qs;
            _mm_prefetch((const char *)(b + 4), _MM_HINT_T0);
            __m256i sc_lo, sc_hi, mn_lo, mn_hi;
            unpack_scales(b->scales, &sc_lo, &sc_hi, &mn_lo, &mn_hi);
            uint32_t slo[8], shi[8];
            _mm256_storeu_si256((__m256i *)slo, sc_lo);
            _mm256_storeu_si256((__m256i *)shi, sc_hi);
            __m512i sum = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++) {
                const uint8_t *q = b->qs + p * 256;
                _mm_prefetch((const char *)q + 4 * 1152, _MM_HINT_T0);
                _mm_prefetch((const char *)q + 4 * 1152 + 64, _MM_HINT_T0);
                _mm_prefetch((const char *)q + 4 * 1152 + 128, _MM_HINT_T0);
                _mm_prefetch((const char *)q + 4 * 1152 + 192, _MM_HINT_T0);
                __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
                for (int kk = 0; kk < 4; kk++) {
                    const __m512i w = _mm512_loadu_si512(q + kk * 64);
                    int64_t a0, a1;
                    memcpy(&a0, aq + p * 64 + kk * 8, 8);
                    memcpy(&a1, aq + p * 64 + 32 + kk * 8, 8);
                    lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(w, m0f), _mm512_set1_epi64(a0));
                    hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(_mm512_srli_epi16(w, 4), m0f),
                                             _mm512_set1_epi64(a1));
                }
                sum = _mm512_add_epi32(sum, _mm512_madd_epi16(lo, lanes_of(slo, shi, 2 * p)));
                sum = _mm512_add_epi32(sum, _mm512_madd_epi16(hi, lanes_of(slo, shi, 2 * p + 1)));
            }
            /* the mins: rows' m_s (bytes of mn_lo|mn_hi lane s) times the
             * activation's sums, two sub-blocks per vpmaddwd */
            uint32_t mlo[8], mhi[8];
            _mm256_storeu_si256((__m256i *)mlo, mn_lo);
            _mm256_storeu_si256((__m256i *)mhi, mn_hi);
            __m256i msum = _mm256_setzero_si256();
            for (int t = 0; t < 4; t++) {
                const __m128i m0 = _mm_setr_epi32((int)mlo[2 * t], (int)mhi[2 * t], 0, 0);
                const __m128i m1 = _mm_setr_epi32((int)mlo[2 * t + 1], (int)mhi[2 * t + 1], 0, 0);
                const __m256i mm = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m0, m1));
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mm, bpair[l][t]));
            }
            acc = _mm256_add_ps(acc, superblock(sum, msum,
                                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->d)),
                                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->dmin)),
                                                _mm256_set1_ps(a[l].d)));
        }
        _mm256_storeu_ps(s + g * 8, acc);
    }
}

/* ---- Q2_K x Q8_K: one activation row ----------------------------------- */

struct q2kx8 {      /* ggml's block_q2_Kx8 */
    uint16_t d[8];
    uint16_t dmin[8];
    uint8_t scales[128];    /* byte 16k + 2j + s: row j's scale byte 2k + s */
    uint8_t qs[512];        /* byte 64c + 8j + t: row j's quant byte 8c + t */
};
_Static_assert(sizeof(struct q2kx8) == 672, "ggml's block_q2_Kx8");

/* vpermb indices: for scale byte pair g (within a half) and s, dword lane d
 * takes byte 16g + 2(d/2) + s of the half's 64 scale bytes (the others
 * masked to zero) */
static uint8_t g_q2_idx[4][2][64];

static void make_q2_idx(void)
{
    for (int g = 0; g < 4; g++)
        for (int s = 0; s < 2; s++)
            for (int b = 0; b < 64; b++)
                g_q2_idx[g][s][b] = (uint8_t)(16 * g + 2 * (b / 8) + s);
}

KTARGET_VBMI void kquant_gemv_q2_K(int n, float *s, size_t bs, const void *vx, const void *vy,
                                   int nr, int nc)
{
    const int nb = n / 256;
    if (nb > MAX_SUPERBLOCKS) {
        g_ggml2(n, s, bs, vx, vy, nr, nc);
        return;
    }
    const struct q8k *a = vy;
    /* the activation's 16-element sums for the mins: for scale bytes
     * 16k..16k+15 (rows' sub-blocks 2k, 2k+1), words 2j+s hold sum 2k+s;
     * two k in each 512-bit vector */
    __m512i bpair[MAX_SUPERBLOCKS][4];
    for (int l = 0; l < nb; l++)
        for (int v = 0; v < 4; v++) {
            uint32_t p0, p1;
            memcpy(&p0, &a[l].bsums[4 * v], 4);
            memcpy(&p1, &a[l].bsums[4 * v + 2], 4);
            bpair[l][v] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32((int)p0)),
                                             _mm256_set1_epi32((int)p1), 1);
        }
    const __m512i m03 = _mm512_set1_epi8(0x03), m0f = _mm512_set1_epi8(0x0F);
    const __mmask64 low = 0x1111111111111111ull;
    __m512i idx[4][2];
    for (int g = 0; g < 4; g++)
        for (int p = 0; p < 2; p++)
            idx[g][p] = _mm512_loadu_si512(g_q2_idx[g][p]);
    const struct q2kx8 *x = vx;
    for (int grp = 0; grp < nc / 8; grp++, x += nb) {
        __m256 acc = _mm256_setzero_ps();
        for (int l = 0; l < nb; l++) {
            const struct q2kx8 *b = x + l;
            const int8_t *aq = a[l].qs;
            const char *ahead = (const char *)(b + 6);
            for (int k = 0; k < 672; k += 64)
                _mm_prefetch(ahead + k, _MM_HINT_T0);
            __m512i sum = _mm512_setzero_si512(), msum = _mm512_setzero_si512();
            #pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const __m512i sraw = _mm512_loadu_si512(b->scales + 64 * h);
                const __m512i sc = _mm512_and_si512(sraw, m0f);
                const __m512i mn = _mm512_and_si512(_mm512_srli_epi16(sraw, 4), m0f);
                /* the mins of this half: sub-block pairs 4h .. 4h+3 */
                msum = _mm512_add_epi32(msum, _mm512_madd_epi16(
                    _mm512_cvtepu8_epi16(_mm512_castsi512_si256(mn)), bpair[l][2 * h]));
                msum = _mm512_add_epi32(msum, _mm512_madd_epi16(
                    _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(mn, 1)), bpair[l][2 * h + 1]));
                #pragma GCC unroll 2
                for (int p = 0; p < 2; p++) {
                    const int c = 4 * h + 2 * p;
                    const __m512i z0 = _mm512_loadu_si512(b->qs + 64 * c);
                    const __m512i z1 = _mm512_loadu_si512(b->qs + 64 * (c + 1));
                    #pragma GCC unroll 4
                    for (int g = 0; g < 4; g++) {
                        const int8_t *ae = aq + 128 * h + 32 * g + 16 * p;
                        int64_t a0, a1;
                        memcpy(&a0, ae, 8);
                        memcpy(&a1, ae + 8, 8);
                        const __m512i q0 = _mm512_and_si512(_mm512_srli_epi16(z0, 2 * g), m03);
                        const __m512i q1 = _mm512_and_si512(_mm512_srli_epi16(z1, 2 * g), m03);
                        __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0,
                                                        _mm512_set1_epi64(a0));
                        d = _mm512_dpbusd_epi32(d, q1, _mm512_set1_epi64(a1));
                        /* |lane| <= 8 * 3 * 128: an int16, so vpmaddwd applies
                         * the 4-bit scale exactly */
                        sum = _mm512_add_epi32(sum, _mm512_madd_epi16(
                            d, _mm512_maskz_permutexvar_epi8(low, idx[g][p], sc)));
                    }
                }
            }
            /* per row: the mins' sums in lanes j and 8 + j */
            const __m256i m8 = _mm256_add_epi32(_mm512_castsi512_si256(msum),
                                                _mm512_extracti64x4_epi64(msum, 1));
            acc = _mm256_add_ps(acc, superblock(sum, m8,
                                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->d)),
                                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->dmin)),
                                                _mm256_set1_ps(a[l].d)));
        }
        _mm256_storeu_ps(s + grp * 8, acc);
    }
}

/* ---- Q4_K x Q8_K: groups of 4 activation rows (a prompt) --------------- */

struct q8kx4 {      /* ggml's block_q8_Kx4: 4 rows' superblocks interleaved */
    float d[4];
    int8_t qs[1024];    /* byte (e/8)*32 + m*8 + e%8: element e of row m */
    int16_t bsums[64];  /* sums of 16: group g of row m at 16*(g/4) + 4*m + g%4 */
};
_Static_assert(sizeof(struct q8kx4) == 1168, "ggml's block_q8_Kx4");

/* vpermb indices: for sub-block s, dword lane d takes the scale byte of
 * row d/2 from [sc_lo | sc_hi] (bytes 4s+j of sc_lo for rows j < 4, of
 * sc_hi for the rest) */
static uint8_t g_scale_idx[8][64];

static void make_scale_idx(void)
{
    for (int s = 0; s < 8; s++)
        for (int d = 0; d < 16; d++) {
            int j = d / 2;
            for (int b = 0; b < 4; b++)
                g_scale_idx[s][4 * d + b] = (uint8_t)(j < 4 ? 4 * s + j : 32 + 4 * s + j - 4);
        }
}

/* R groups of 4 activation rows (R = 1 or 2) against one group of 8
 * weight rows, all superblocks: each weight load meets 4R rows. */
KTARGET_VBMI static inline __attribute__((always_inline)) void
gemm_group(int R, int nb, const struct q4kx8 *x, const struct q8kx4 *const *a,
           const uint32_t (*pairs)[8][8], float *const *out)
{
    const __m512i m0f = _mm512_set1_epi8(0x0F);
    __m256 acc[8];
    #pragma GCC unroll 8
    for (int m = 0; m < 4 * R; m++)
        acc[m] = _mm256_setzero_ps();
    for (int l = 0; l < nb; l++) {
        const struct q4kx8 *b = x + l;
        _mm_prefetch((const char *)(b + 2), _MM_HINT_T0);
        __m256i sc_lo, sc_hi, mn_lo, mn_hi;
        unpack_scales(b->scales, &sc_lo, &sc_hi, &mn_lo, &mn_hi);
        const __m512i scv = _mm512_inserti64x4(_mm512_castsi256_si512(sc_lo), sc_hi, 1);
        __m512i sum[8];
        #pragma GCC unroll 8
        for (int m = 0; m < 4 * R; m++)
            sum[m] = _mm512_setzero_si512();
        #pragma GCC unroll 8
        for (int p = 0; p < 4; p++) {
            const uint8_t *q = b->qs + p * 256;
            __m512i lo[8], hi[8];
            #pragma GCC unroll 8
            for (int m = 0; m < 4 * R; m++)
                lo[m] = hi[m] = _mm512_setzero_si512();
            #pragma GCC unroll 8
            for (int kk = 0; kk < 4; kk++) {
                const __m512i w = _mm512_loadu_si512(q + kk * 64);
                const __m512i wl = _mm512_and_si512(w, m0f);
                const __m512i wh = _mm512_and_si512(_mm512_srli_epi16(w, 4), m0f);
                #pragma GCC unroll 8
                for (int m = 0; m < 4 * R; m++) {
                    const int8_t *ak = a[m / 4][l].qs + p * 256 + kk * 32 + (m % 4) * 8;
                    int64_t a0, a1;
                    memcpy(&a0, ak, 8);
                    memcpy(&a1, ak + 128, 8);
                    lo[m] = _mm512_dpbusd_epi32(lo[m], wl, _mm512_set1_epi64(a0));
                    hi[m] = _mm512_dpbusd_epi32(hi[m], wh, _mm512_set1_epi64(a1));
                }
            }
            const __mmask64 low = 0x1111111111111111ull;
            const __m512i s0 = _mm512_maskz_permutexvar_epi8(
                low, _mm512_loadu_si512(g_scale_idx[2 * p]), scv);
            const __m512i s1 = _mm512_maskz_permutexvar_epi8(
                low, _mm512_loadu_si512(g_scale_idx[2 * p + 1]), scv);
            #pragma GCC unroll 8
            for (int m = 0; m < 4 * R; m++)
                sum[m] = _mm512_add_epi32(sum[m], _mm512_add_epi32(_mm512_madd_epi16(lo[m], s0),
                                                                   _mm512_madd_epi16(hi[m], s1)));
        }
        /* the rows' mins: sub-blocks 2t and 2t+1 as an int16 pair per row,
         * the same for every activation row; two activation rows per
         * 512-bit vpmaddwd */
        uint32_t mlo[8], mhi[8];
        _mm256_storeu_si256((__m256i *)mlo, mn_lo);
        _mm256_storeu_si256((__m256i *)mhi, mn_hi);
        __m512i mm[4];
        #pragma GCC unroll 8
        for (int t = 0; t < 4; t++) {
            const __m128i m0 = _mm_setr_epi32((int)mlo[2 * t], (int)mhi[2 * t], 0, 0);
            const __m128i m1 = _mm_setr_epi32((int)mlo[2 * t + 1], (int)mhi[2 * t + 1], 0, 0);
            const __m256i v = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m0, m1));
            mm[t] = _mm512_inserti64x4(_mm512_castsi256_si512(v), v, 1);
        }
        const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->d));
        const __m256 dmin8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->dmin));
        #pragma GCC unroll 8
        for (int m = 0; m < 4 * R; m += 2) {
            __m512i msum = _mm512_setzero_si512();
            #pragma GCC unroll 8
            for (int t = 0; t < 4; t++) {
                const __m512i bp = _mm512_inserti64x4(_mm512_set1_epi32((int)pairs[l][m][t]),
                                                      _mm256_set1_epi32((int)pairs[l][m + 1][t]), 1);
                msum = _mm512_add_epi32(msum, _mm512_madd_epi16(mm[t], bp));
            }
            #pragma GCC unroll 8
            for (int h = 0; h < 2; h++) {
                const int r = m + h;
                const __m256i ms = h ? _mm512_extracti64x4_epi64(msum, 1) : _mm512_castsi512_si256(msum);
                acc[r] = _mm256_add_ps(acc[r], superblock(sum[r], ms, d8, dmin8,
                                                          _mm256_set1_ps(a[r / 4][l].d[r % 4])));
            }
        }
    }
    #pragma GCC unroll 8
    for (int m = 0; m < 4 * R; m++)
        _mm256_storeu_ps(out[m], acc[m]);
}

/* ---- Q2_K x Q8_K: groups of 4 activation rows (a prompt) --------------- */

/* R groups of 4 activation rows (R = 1 or 2) against one group of 8 Q2_K
 * weight rows, all superblocks: each 2-bit plane meets 4R rows. pairs[l][m]
 * holds row m's 16-element sums for the mins as kquant_gemv_q2_K's bpair. */
KTARGET_VBMI static inline __attribute__((always_inline)) void
gemm2_group(int R, int nb, const struct q2kx8 *x, const struct q8kx4 *const *a,
            const uint32_t (*pairs)[8][8], const __m512i (*idx)[2], float *const *out)
{
    const __m512i m03 = _mm512_set1_epi8(0x03), m0f = _mm512_set1_epi8(0x0F);
    const __mmask64 low = 0x1111111111111111ull;
    __m256 acc[8];
    #pragma GCC unroll 8
    for (int m = 0; m < 4 * R; m++)
        acc[m] = _mm256_setzero_ps();
    for (int l = 0; l < nb; l++) {
        const struct q2kx8 *b = x + l;
        _mm_prefetch((const char *)(b + 2), _MM_HINT_T0);
        __m512i sum[8], msum[8];
        #pragma GCC unroll 8
        for (int m = 0; m < 4 * R; m++)
            sum[m] = msum[m] = _mm512_setzero_si512();
        #pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m512i sraw = _mm512_loadu_si512(b->scales + 64 * h);
            const __m512i sc = _mm512_and_si512(sraw, m0f);
            const __m512i mn = _mm512_and_si512(_mm512_srli_epi16(sraw, 4), m0f);
            const __m512i mn0 = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(mn));
            const __m512i mn1 = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(mn, 1));
            #pragma GCC unroll 8
            for (int m = 0; m < 4 * R; m++) {
                const uint32_t *pp = pairs[l][m] + 4 * h;
                const __m512i b0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32((int)pp[0])),
                                                      _mm256_set1_epi32((int)pp[1]), 1);
                const __m512i b1 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32((int)pp[2])),
                                                      _mm256_set1_epi32((int)pp[3]), 1);
                msum[m] = _mm512_add_epi32(msum[m], _mm512_add_epi32(_mm512_madd_epi16(mn0, b0),
                                                                     _mm512_madd_epi16(mn1, b1)));
            }
            #pragma GCC unroll 2
            for (int p = 0; p < 2; p++) {
                const int c = 4 * h + 2 * p;
                const __m512i z0 = _mm512_loadu_si512(b->qs + 64 * c);
                const __m512i z1 = _mm512_loadu_si512(b->qs + 64 * (c + 1));
                #pragma GCC unroll 4
                for (int g = 0; g < 4; g++) {
                    const int e = 128 * h + 32 * g + 16 * p;    /* first element */
                    const __m512i q0 = _mm512_and_si512(_mm512_srli_epi16(z0, 2 * g), m03);
                    const __m512i q1 = _mm512_and_si512(_mm512_srli_epi16(z1, 2 * g), m03);
                    const __m512i scl = _mm512_maskz_permutexvar_epi8(low, idx[g][p], sc);
                    #pragma GCC unroll 8
                    for (int m = 0; m < 4 * R; m++) {
                        const int8_t *ak = a[m / 4][l].qs + (e / 8) * 32 + (m % 4) * 8;
                        int64_t a0, a1;
                        memcpy(&a0, ak, 8);
                        memcpy(&a1, ak + 32, 8);
                        __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0,
                                                        _mm512_set1_epi64(a0));
                        d = _mm512_dpbusd_epi32(d, q1, _mm512_set1_epi64(a1));
                        sum[m] = _mm512_add_epi32(sum[m], _mm512_madd_epi16(d, scl));
                    }
                }
            }
        }
        const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->d));
        const __m256 dmin8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->dmin));
        #pragma GCC unroll 8
        for (int m = 0; m < 4 * R; m++) {
            const __m256i m8 = _mm256_add_epi32(_mm512_castsi512_si256(msum[m]),
                                                _mm512_extracti64x4_epi64(msum[m], 1));
            acc[m] = _mm256_add_ps(acc[m], superblock(sum[m], m8, d8, dmin8,
                                                      _mm256_set1_ps(a[m / 4][l].d[m % 4])));
        }
    }
    #pragma GCC unroll 8
    for (int m = 0; m < 4 * R; m++)
        _mm256_storeu_ps(out[m], acc[m]);
}

/* The 4-row kernels' driver, for both layouts: activation rows in groups of
 * 4 (two groups at a time where there are), each group of 8 weight rows
 * against them, all superblocks (at most MAX_SUPERBLOCKS). Each activation
 * row's 16-element sums in int16 pairs for the mins, one pair per dword, as
 * each layout meets them: Q4_K sub-blocks of 32 (2t and 2t+1 in
 * pairs[l][m][t], t < 4), Q2_K sub-blocks of 16 (2k and 2k+1 in
 * pairs[l][m][k]). s[(4y + m)*bs + 8x + j] for activation row 4y+m and
 * weight row 8x+j. */
KTARGET_VBMI static void gemm_rows4(bool q2, int nb, float *s, size_t bs, const void *vx,
                                    const void *vy, int nr, int nc)
{
    __m512i idx[4][2];
    for (int g = 0; g < 4; g++)
        for (int p = 0; p < 2; p++)
            idx[g][p] = _mm512_loadu_si512(g_q2_idx[g][p]);
    const size_t wblock = q2 ? sizeof(struct q2kx8) : sizeof(struct q4kx8);
    for (int y = 0; y < nr / 4;) {
        const int R = nr / 4 - y >= 2 ? 2 : 1;
        const struct q8kx4 *a[2] = { (const struct q8kx4 *)vy + (size_t)y * nb,
                                     (const struct q8kx4 *)vy + (size_t)(y + R - 1) * nb };
        /* group g of row m's sums at bsums[16(g/4) + 4m + g%4] */
        uint32_t pairs[MAX_SUPERBLOCKS][8][8];
        for (int l = 0; l < nb; l++)
            for (int m = 0; m < 4 * R; m++) {
                const int16_t *b = a[m / 4][l].bsums + 4 * (m % 4);
                for (int k = 0; k < (q2 ? 8 : 4); k++) {
                    if (q2)
                        memcpy(&pairs[l][m][k], b + 16 * (k / 2) + 2 * (k % 2), 4);
                    else
                        pairs[l][m][k] = (uint16_t)(b[16 * k] + b[16 * k + 1]) |
                                         (uint32_t)(uint16_t)(b[16 * k + 2] + b[16 * k + 3]) << 16;
                }
            }
        const char *x = vx;
        for (int g = 0; g < nc / 8; g++, x += wblock * (size_t)nb) {
            float *out[8];
            for (int m = 0; m < 4 * R; m++)
                out[m] = s + (size_t)(4 * y + m) * bs + 8 * g;
            const uint32_t(*pp)[8][8] = (const uint32_t(*)[8][8])pairs;
            const __m512i(*ix)[2] = (const __m512i(*)[2])idx;
            if (q2 && R == 2)
                gemm2_group(2, nb, (const struct q2kx8 *)x, a, pp, ix, out);
            else if (q2)
                gemm2_group(1, nb, (const struct q2kx8 *)x, a, pp, ix, out);
            else if (R == 2)
                gemm_group(2, nb, (const struct q4kx8 *)x, a, pp, out);
            else
                gemm_group(1, nb, (const struct q4kx8 *)x, a, pp, out);
        }
        y += R;
    }
}

/* A 4-row entry point: rows too wide for the kernels go to ggml's own */
KTARGET_VBMI static void gemm_entry(bool q2, gemv_fn wide, int n, float *s, size_t bs,
                                    const void *vx, const void *vy, int nr, int nc)
{
    if (n / 256 > MAX_SUPERBLOCKS)
        wide(n, s, bs, vx, vy, nr, nc);
    else
        gemm_rows4(q2, n / 256, s, bs, vx, vy, nr, nc);
}

/* The same sums as kquant_gemv_q4_K for 4 activation rows at a time, as
 * ggml_gemm_q4_K_8x8_q8_K takes them. */
void kquant_gemm_q4_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc)
{
    gemm_entry(false, g_ggml_gemm, n, s, bs, vx, vy, nr, nc);
}

void kquant_gemm_q2_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc)
{
    gemm_entry(true, g_ggml_gemm2, n, s, bs, vx, vy, nr, nc);
}

/* ---- Q6_K x Q8_K: rows of a plain matrix against one activation row ---- */

/* A superblock's sums of 64 elements c (lane i: elements 64c + 4i..4i+3,
 * sub-block 4c + i/4), chunks 2p and 2p+1 packed into int16s together
 * (vpackssdw: per 128-bit lane k, four sums of sub-block 8p + k, then four
 * of 8p + 4 + k), meet their 16 scales (int16, in the low half of a
 * register) in one vpdpwssd, through these vpermw indices. */
static const uint16_t g_pair_idx[2][32] = {
    { 0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5,
      2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7 },
    { 8, 8, 8, 8, 12, 12, 12, 12, 9, 9, 9, 9, 13, 13, 13, 13,
      10, 10, 10, 10, 14, 14, 14, 14, 11, 11, 11, 11, 15, 15, 15, 15 },
};

/* sum + the pair's int32 sums (each within int16) times their scales */
KTARGET static inline __m512i pair_scaled(__m512i sum, __m512i t0, __m512i t1, __m512i sc,
                                          __m512i idx)
{
    return _mm512_dpwssd_epi32(sum, _mm512_packs_epi32(t0, t1), _mm512_permutexvar_epi16(idx, sc));
}

/* The activation row, once per call of a rows kernel whose quants are
 * stored `off` higher: for each superblock and 64 elements c, minus `off`
 * times the sum of each int32 lane's 4 activation values, the start of
 * that lane's vpdpbusd sum. */
KTARGET static void offsets(const struct q8k *a, int nb, int off, __m512i negc[][4])
{
    const __m512i k = _mm512_set1_epi8((char)off), zero = _mm512_setzero_si512();
    for (int l = 0; l < nb; l++)
        for (int c = 0; c < 4; c++)
            negc[l][c] = _mm512_sub_epi32(
                zero, _mm512_dpbusd_epi32(zero, k, _mm512_loadu_si512(a[l].qs + 64 * c)));
}

/* Rows too wide for a rows kernel: ggml's dot product, row by row. */
static void rows_by_dot(dot_fn dot, int n, float *out, const void *vw, size_t row_bytes,
                        int rows, const void *va)
{
    for (int r = 0; r < rows; r++)
        dot(n, out + r, 0, (const char *)vw + (size_t)r * row_bytes, 0, va, 0, 1);
}

KTARGET void kquant_q6_K_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                              const void *va)
{
    const bool l2 = kernels_rows_fetch_l2();
    const int nb = n / 256;
    const struct q8k *a = va;
    if (nb > MAX_SUPERBLOCKS) {
        rows_by_dot(g_dot6, n, out, vw, row_bytes, rows, va);
        return;
    }
    /* 32 times the sum of each lane's 4 values, taken off in advance (the
     * quants are stored as q+32) */
    __m512i negc[MAX_SUPERBLOCKS][4];
    offsets(a, nb, 32, negc);
    const __m512i m0f = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    /* the high bits of elements l and l+32 (A) and l+64 and l+96 (B) of a
     * 128-element half: qh bits 0-1 and 2-3 moved up to bits 4-5, bits 4-5
     * in place and 6-7 moved down */
    const __m512i up = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i down = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i sidx[2] = { _mm512_loadu_si512(g_pair_idx[0]), _mm512_loadu_si512(g_pair_idx[1]) };
    for (int r = 0; r < rows; r++) {
        const struct q6k *x = (const void *)((const char *)vw + (size_t)r * row_bytes);
        __m512 acc = _mm512_setzero_ps();
        for (int l = 0; l < nb; l++) {
            const struct q6k *b = x + l;
            const char *ahead = (const char *)b + ROWS_PREFETCH_BYTES;
            KERNELS_ROWS_FETCH(ahead, l2);
            KERNELS_ROWS_FETCH(ahead + 64, l2);
            KERNELS_ROWS_FETCH(ahead + 128, l2);
            KERNELS_ROWS_FETCH(ahead + 192, l2);
            const __m512i sc = _mm512_castsi256_si512(
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales)));
            __m512i sum = _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                const __m512i ql = _mm512_loadu_si512(b->ql + 64 * h);
                const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)));
                /* 0xEA: (A & B) | C */
                const __m512i qa = _mm512_ternarylogic_epi32(
                    ql, m0f, _mm512_and_si512(_mm512_sllv_epi16(qh, up), m30), 0xEA);
                const __m512i qb = _mm512_ternarylogic_epi32(
                    _mm512_srli_epi16(ql, 4), m0f, _mm512_and_si512(_mm512_srlv_epi16(qh, down), m30),
                    0xEA);
                const __m512i ta = _mm512_dpbusd_epi32(negc[l][2 * h], qa,
                                                       _mm512_loadu_si512(a[l].qs + 128 * h));
                const __m512i tb = _mm512_dpbusd_epi32(negc[l][2 * h + 1], qb,
                                                       _mm512_loadu_si512(a[l].qs + 128 * h + 64));
                /* |lane| <= 4 * 32 * 128: int16s exactly */
                sum = pair_scaled(sum, ta, tb, sc, sidx[h]);
            }
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                  _mm512_set1_ps(_cvtsh_ss(b->d) * a[l].d), acc);
        }
        out[r] = _mm512_reduce_add_ps(acc);
    }
}

/* ---- Q3_K x Q8_K: rows of a plain matrix against one activation row ---- */

/* A Q3_K superblock's 16 scales (6 bits each: the low 4 in bytes 0-7, low
 * nibbles then high nibbles; the high 2 in bytes 8-11, two bits of each
 * byte per group of four scales), less 32, as int16. */
KTARGET static inline __m256i q3_scales(const uint8_t *s)
{
    const __m128i m0f = _mm_set1_epi8(0x0F), m03 = _mm_set1_epi8(0x03);
    const __m128i x = _mm_loadl_epi64((const __m128i *)s);
    const __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(x, m0f),
                                          _mm_and_si128(_mm_srli_epi16(x, 4), m0f));
    int32_t t;
    memcpy(&t, s + 8, 4);
    const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(t), _mm_setr_epi32(0, 2, 4, 6)), m03);
    const __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
    return _mm256_cvtepi8_epi16(sc);
}

KTARGET void kquant_q3_K_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                              const void *va)
{
    const bool l2 = kernels_rows_fetch_l2();
    const int nb = n / 256;
    const struct q8k *a = va;
    if (nb > MAX_SUPERBLOCKS) {
        rows_by_dot(g_dot3, n, out, vw, row_bytes, rows, va);
        return;
    }
    /* 4 times the sum of each lane's 4 values, taken off in advance (the
     * quants are used as q+4, 0..7) */
    __m512i negc[MAX_SUPERBLOCKS][4];
    offsets(a, nb, 4, negc);
    /* 64 elements c of a superblock: half c/2, runs j = 2(c%2) and j + 1 of
     * 32, one per 256-bit half of a register. The low bits: the half's 32
     * qs bytes shifted by 2j; the third bit: hmask bit 4(c/2) + j, moved
     * to bit 2 (left for the first two runs, right for the rest). */
    const __m512i m03 = _mm512_set1_epi8(0x03), m07 = _mm512_set1_epi8(0x07);
    __m512i qsh[4], hsh[4];
    for (int c = 0; c < 4; c++) {
        const int j = 2 * (c % 2), b = 4 * (c / 2) + j;
        qsh[c] = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * j)), _mm256_set1_epi16((short)(2 * j + 2)), 1);
        hsh[c] = c == 0 ? _mm512_inserti64x4(_mm512_set1_epi16(2), _mm256_set1_epi16(1), 1)
                        : _mm512_inserti64x4(_mm512_set1_epi16((short)(b - 2)),
                                             _mm256_set1_epi16((short)(b - 1)), 1);
    }
    const __m512i sidx[2] = { _mm512_loadu_si512(g_pair_idx[0]), _mm512_loadu_si512(g_pair_idx[1]) };
    for (int r = 0; r < rows; r++) {
        const struct q3k *x = (const void *)((const char *)vw + (size_t)r * row_bytes);
        __m512 acc = _mm512_setzero_ps();
        for (int l = 0; l < nb; l++) {
            const struct q3k *b = x + l;
            const char *ahead = (const char *)b + ROWS_PREFETCH_BYTES;
            KERNELS_ROWS_FETCH(ahead, l2);
            KERNELS_ROWS_FETCH(ahead + 64, l2);
            const __m256i sc16 = q3_scales(b->scales);
            const __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->hmask));
            const __m512i q0 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->qs));
            const __m512i q1 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qs + 32)));
            const __m512i sc = _mm512_castsi256_si512(sc16);
            __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 2
            for (int p = 0; p < 2; p++) {
                __m512i t[2];
#pragma GCC unroll 2
                for (int k = 0; k < 2; k++) {
                    const int c = 2 * p + k;
                    const __m512i lo = _mm512_srlv_epi16(c < 2 ? q0 : q1, qsh[c]);
                    const __m512i hb = c == 0 ? _mm512_sllv_epi16(hm, hsh[c]) : _mm512_srlv_epi16(hm, hsh[c]);
                    /* 0xE4: C ? A : B, bit by bit: the low 2 bits from lo, the rest from hb */
                    const __m512i u = _mm512_and_si512(_mm512_ternarylogic_epi32(lo, hb, m03, 0xE4), m07);
                    t[k] = _mm512_dpbusd_epi32(negc[l][c], u, _mm512_loadu_si512(a[l].qs + 64 * c));
                }
                /* |lane| <= 4 * 4 * 128: int16s exactly */
                sum = pair_scaled(sum, t[0], t[1], sc, sidx[p]);
            }
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                  _mm512_set1_ps(_cvtsh_ss(b->d) * a[l].d), acc);
        }
        out[r] = _mm512_reduce_add_ps(acc);
    }
}

/* ---- IQ4_XS x Q8_K: rows of a plain matrix against one activation row ---- */

KTARGET void kquant_iq4_xs_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                                const void *va)
{
    const bool l2 = kernels_rows_fetch_l2();
    const int nb = n / 256;
    const struct q8k *a = va;
    if (nb > MAX_SUPERBLOCKS) {
        rows_by_dot(g_dotx, n, out, vw, row_bytes, rows, va);
        return;
    }
    /* 128 times the sum of each lane's 4 values, taken off in advance */
    __m512i negc[MAX_SUPERBLOCKS][4];
    offsets(a, nb, 128, negc);
    uint8_t t16[16];
    for (int i = 0; i < 16; i++)
        t16[i] = (uint8_t)(kblocks_iq4_values[i] + 128);   /* vpdpbusd's unsigned side */
    const __m512i tab = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)t16));
    const __m512i m0f = _mm512_set1_epi8(0x0F);
    /* 64 elements c: sub-blocks 2c and 2c+1, each 16 bytes of indices; the
     * register's 128-bit lanes hold the low nibbles of the first, its high
     * nibbles, then the same of the second (ggml's order) */
    const __m512i nsh = _mm512_setr_epi64(0, 0, 0x0004000400040004ll, 0x0004000400040004ll, 0, 0,
                                          0x0004000400040004ll, 0x0004000400040004ll);
    __m512i pidx[4];
    for (int c = 0; c < 4; c++)
        pidx[c] = _mm512_inserti64x4(_mm512_set1_epi32(2 * c), _mm256_set1_epi32(2 * c + 1), 1);
    const __m256i lsh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    const __m256i hsh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for (int r = 0; r < rows; r++) {
        const struct iq4xs *x = (const void *)((const char *)vw + (size_t)r * row_bytes);
        __m512 acc = _mm512_setzero_ps();
        for (int l = 0; l < nb; l++) {
            const struct iq4xs *b = x + l;
            const char *ahead = (const char *)b + ROWS_PREFETCH_BYTES;
            KERNELS_ROWS_FETCH(ahead, l2);
            KERNELS_ROWS_FETCH(ahead + 64, l2);
            KERNELS_ROWS_FETCH(ahead + 128, l2);
            /* the 8 scales: 4 low bits from scales_l, 2 high from scales_h, less 32 */
            int32_t sl;
            memcpy(&sl, b->scales_l, 4);
            const __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(sl), lsh),
                                                _mm256_set1_epi32(0xF));
            const __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(b->scales_h), hsh),
                                                _mm256_set1_epi32(3));
            const __m512i sc = _mm512_castsi256_si512(
                _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32)));
            __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const __m512i q = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b->qs + 32 * c)));
                const __m512i idx = _mm512_and_si512(
                    _mm512_srlv_epi16(_mm512_shuffle_i64x2(q, q, 0x50), nsh), m0f);
                const __m512i u = _mm512_shuffle_epi8(tab, idx);
                const __m512i t = _mm512_dpbusd_epi32(negc[l][c], u, _mm512_loadu_si512(a[l].qs + 64 * c));
                /* |lane| <= 4 * 127 * 128: beyond int16, so the scale in int32 */
                sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(t, _mm512_permutexvar_epi32(pidx[c], sc)));
            }
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                  _mm512_set1_ps(_cvtsh_ss(b->d) * a[l].d), acc);
        }
        out[r] = _mm512_reduce_add_ps(acc);
    }
}

/* ---- Q5_K x Q8_K: rows of a plain matrix against one activation row ---- */

/* vpermw indices: for 128 elements h, the scale of each int16 of
 * vpackssdw(ta, tb) (engine comment below): in 128-bit lane k, four of
 * sub-block 4h + 2*(k/2) (from ta), then four of 4h + 1 + 2*(k/2) (tb). */
static const uint16_t g_q5_idx[2][32] = {
    { 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1,
      2, 2, 2, 2, 3, 3, 3, 3, 2, 2, 2, 2, 3, 3, 3, 3 },
    { 4, 4, 4, 4, 5, 5, 5, 5, 4, 4, 4, 4, 5, 5, 5, 5,
      6, 6, 6, 6, 7, 7, 7, 7, 6, 6, 6, 6, 7, 7, 7, 7 },
};

KTARGET void kquant_q5_K_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                              const void *va)
{
    const bool l2 = kernels_rows_fetch_l2();
    const int nb = n / 256;
    const struct q8k *a = va;
    if (nb > MAX_SUPERBLOCKS) {
        rows_by_dot(g_dot5, n, out, vw, row_bytes, rows, va);
        return;
    }
    /* the activation once per call, in the order the unpacked quants come
     * in: per 128 elements, the low nibbles of two 64-element chunks
     * (elements 0-31 and 64-95) and their high nibbles (32-63, 96-127);
     * and each sub-block's sum, for the mins */
    __m512i act[MAX_SUPERBLOCKS][4];
    __m128i bsum[MAX_SUPERBLOCKS];
    __m128d dav[MAX_SUPERBLOCKS];   /* the activation's scales, in double */
    for (int l = 0; l < nb; l++) {
        dav[l] = _mm_set1_pd(a[l].d);
        for (int h = 0; h < 2; h++) {
            const int8_t *y = a[l].qs + 128 * h;
            act[l][2 * h] = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)y)),
                _mm256_loadu_si256((const __m256i *)(y + 64)), 1);
            act[l][2 * h + 1] = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(y + 32))),
                _mm256_loadu_si256((const __m256i *)(y + 96)), 1);
        }
        /* sub-block s is bsums 2s and 2s+1; |sum| <= 32 * 128 */
        const __m256i b16 = _mm256_loadu_si256((const __m256i *)a[l].bsums);
        bsum[l] = _mm256_cvtepi32_epi16(_mm256_madd_epi16(b16, _mm256_set1_epi16(1)));
    }
    const __m512i m0f = _mm512_set1_epi8(0x0F), m10 = _mm512_set1_epi8(0x10);
    const __m512i idx0 = _mm512_loadu_si512(g_q5_idx[0]), idx1 = _mm512_loadu_si512(g_q5_idx[1]);
    /* the fifth bit of the low (A) and high (B) nibbles: per 128 elements
     * h, qh bits 4h and 4h+2 (A) and 4h+1 and 4h+3 (B) of the two chunks,
     * moved to bit 4 (left for h = 0, right for h = 1) */
    const __m512i la0 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i lb0 = _mm512_inserti64x4(_mm512_set1_epi16(3), _mm256_set1_epi16(1), 1);
    const __m512i ra1 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i rb1 = _mm512_inserti64x4(_mm512_set1_epi16(1), _mm256_set1_epi16(3), 1);
    for (int r = 0; r < rows; r++) {
        const struct q5k *x = (const void *)((const char *)vw + (size_t)r * row_bytes);
        /* in double: the scale and min terms add up apart, and with
         * unsigned quants against a row with a mean both run to ~10^3
         * times the result (float sums lose ~1e-3 of it, as ggml's do) */
        __m512d acc = _mm512_setzero_pd();
        __m256d accm = _mm256_setzero_pd();
        for (int l = 0; l < nb; l++) {
            const struct q5k *b = x + l;
            const char *ahead = (const char *)b + ROWS_PREFETCH_BYTES;
            KERNELS_ROWS_FETCH(ahead, l2);
            KERNELS_ROWS_FETCH(ahead + 64, l2);
            KERNELS_ROWS_FETCH(ahead + 128, l2);
            /* ggml's 6-bit unpacking: scales in u[0..1], mins in u[2..3] */
            uint32_t u[4];
            memcpy(u, b->scales, 12);
            u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
            const uint32_t m01 = u[1] & 0x3f3f3f3f;
            u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
            u[2] = m01;
            u[0] &= 0x3f3f3f3f;
            const __m512i sc = _mm512_castsi128_si512(
                _mm_cvtepu8_epi16(_mm_setr_epi32((int)u[0], (int)u[1], 0, 0)));
            const __m128i mn = _mm_cvtepu8_epi16(_mm_setr_epi32((int)u[2], (int)u[3], 0, 0));
            const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->qh));
            __m512i sum = _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                const __m512i ql = _mm512_loadu_si512(b->qs + 64 * h);
                const __m512i ha = h ? _mm512_srlv_epi16(qh, ra1) : _mm512_sllv_epi16(qh, la0);
                const __m512i hb = h ? _mm512_srlv_epi16(qh, rb1) : _mm512_sllv_epi16(qh, lb0);
                /* 0xEA: (A & B) | C */
                const __m512i qa = _mm512_ternarylogic_epi32(ql, m0f, _mm512_and_si512(ha, m10), 0xEA);
                const __m512i qb = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), m0f,
                                                             _mm512_and_si512(hb, m10), 0xEA);
                const __m512i zero = _mm512_setzero_si512();
                const __m512i ta = _mm512_dpbusd_epi32(zero, qa, act[l][2 * h]);
                const __m512i tb = _mm512_dpbusd_epi32(zero, qb, act[l][2 * h + 1]);
                /* |lane| <= 4 * 31 * 128: both into int16s exactly, each
                 * times its sub-block's scale, neighbours added */
                const __m512i p = _mm512_packs_epi32(ta, tb);
                sum = _mm512_dpwssd_epi32(sum, p, _mm512_permutexvar_epi16(h ? idx1 : idx0, sc));
            }
            const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(sum),
                                                _mm512_extracti64x4_epi64(sum, 1));
            /* d and dmin together: to float, to double, times the
             * activation's scale (exact in double) */
            uint32_t dd;
            memcpy(&dd, &b->d, 4);
            const __m128d f = _mm_mul_pd(_mm_cvtps_pd(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dd))), dav[l]);
            acc = _mm512_fmadd_pd(_mm512_cvtepi32_pd(s8), _mm512_broadcastsd_pd(f), acc);
            accm = _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm_madd_epi16(mn, bsum[l])),
                                   _mm256_permute4x64_pd(_mm256_castpd128_pd256(f), 0x55), accm);
        }
        const __m128d m2 = _mm_add_pd(_mm256_castpd256_pd128(accm), _mm256_extractf128_pd(accm, 1));
        out[r] = (float)(_mm512_reduce_add_pd(acc) - _mm_cvtsd_f64(_mm_add_sd(m2, _mm_unpackhi_pd(m2, m2))));
    }
}

/* ---- decision -------------------------------------------------------- */

/* Equal to rounding: within 1e-5 of the largest wanted value. */
static bool close_enough(const float *got, const float *want, int n)
{
    double scale = 0;
    for (int i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (int i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-5 * scale + 1e-6))
            return false;
    return true;
}

static uint32_t rnd(uint32_t *seed)
{
    *seed = *seed * 1664525u + 1013904223u;
    return *seed >> 8;
}

/* Random groups of 8 rows with sane fp16 scales, and an activation row of
 * int8 values with its sums, as quantize_row_q8_K makes them. */
static void fill(struct q4kx8 *w, int groups, int nb, struct q8k *a, uint32_t seed)
{
    for (int i = 0; i < groups * nb; i++) {
        uint8_t *p = (uint8_t *)&w[i];
        for (size_t k = 0; k < sizeof w[i]; k++)
            p[k] = (uint8_t)rnd(&seed);
        for (int j = 0; j < 8; j++) {
            w[i].d[j] = (uint16_t)(0x2000 | (rnd(&seed) & 0x0FFF));      /* ~2^-7 .. 2^-5 */
            w[i].dmin[j] = (uint16_t)(0x2000 | (rnd(&seed) & 0x0FFF));
        }
    }
    for (int l = 0; l < nb; l++) {
        a[l].d = 0.01f + (float)(rnd(&seed) % 100) / 1000.0f;
        for (int k = 0; k < 256; k++)
            a[l].qs[k] = (int8_t)((int)(rnd(&seed) % 255) - 127);
        for (int k = 0; k < 16; k++) {
            int sum = 0;
            for (int i = 0; i < 16; i++)
                sum += a[l].qs[k * 16 + i];
            a[l].bsums[k] = (int16_t)sum;
        }
    }
}

static bool self_check(gemv_fn ref)
{
    enum { GROUPS = 3, NB = 5 };
    static struct q4kx8 w[GROUPS * NB];
    static struct q8k a[NB];
    for (int nb = 1; nb <= NB; nb++) {
        fill(w, GROUPS, nb, a, 777u + (uint32_t)nb);
        float want[GROUPS * 8], got[GROUPS * 8];
        ref(nb * 256, want, 0, w, a, 1, GROUPS * 8);
        kquant_gemv_q4_K(nb * 256, got, 0, w, a, 1, GROUPS * 8);
        if (!close_enough(got, want, GROUPS * 8))
            return false;
    }
    return true;
}

/* Random rows of a plain K-quant type (blocks of bsize bytes, every byte
 * random but the fp16 scales at the nscales offsets in `scales`) against
 * the same kind of activation row, hearth's rows kernel against ggml's dot
 * product row by row. */
static bool self_check_rows(rows_fn kernel, dot_fn dot, size_t bsize, const size_t *scales,
                            int nscales, uint32_t seed0)
{
    enum { ROWS = 5, NB = 5, MAX_BLOCK = 256 };
    static uint8_t w[ROWS * NB * MAX_BLOCK];
    static struct q4kx8 unused[NB];
    static struct q8k a[NB];
    if (bsize > MAX_BLOCK)
        return false;
    for (int nb = 1; nb <= NB; nb++) {
        fill(unused, 1, nb, a, seed0 + (uint32_t)nb);
        uint32_t seed = seed0 * 7u + (uint32_t)nb;
        for (size_t i = 0; i < ROWS * (size_t)nb; i++) {
            uint8_t *p = w + i * bsize;
            for (size_t k = 0; k < bsize; k++)
                p[k] = (uint8_t)rnd(&seed);
            for (int j = 0; j < nscales; j++) {
                uint16_t h = (uint16_t)(0x2000 | (rnd(&seed) & 0x0FFF));
                memcpy(p + scales[j], &h, 2);
            }
        }
        const size_t rb = (size_t)nb * bsize;
        float want[ROWS], got[ROWS];
        for (int r = 0; r < ROWS; r++)
            dot(nb * 256, &want[r], 0, w + r * rb, 0, a, 0, 1);
        kernel(nb * 256, got, w, rb, ROWS, a);
        if (!close_enough(got, want, ROWS))
            return false;
    }
    return true;
}

/* Random Q2_K groups of 8 rows with sane fp16 scales. */
static void fill_q2(struct q2kx8 *w, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        uint8_t *p = (uint8_t *)&w[i];
        for (size_t k = 0; k < sizeof w[i]; k++)
            p[k] = (uint8_t)rnd(&seed);
        for (int j = 0; j < 8; j++) {
            w[i].d[j] = (uint16_t)(0x2000 | (rnd(&seed) & 0x0FFF));
            w[i].dmin[j] = (uint16_t)(0x2000 | (rnd(&seed) & 0x0FFF));
        }
    }
}

/* Random Q2_K groups of 8 rows against ggml's plain-C reference. */
static bool self_check_q2(gemv_fn ref)
{
    enum { GROUPS = 3, NB = 5 };
    static struct q2kx8 w[GROUPS * NB];
    static struct q4kx8 unused[NB];
    static struct q8k a[NB];
    for (int nb = 1; nb <= NB; nb++) {
        fill(unused, 1, nb, a, 999u + (uint32_t)nb);
        fill_q2(w, GROUPS * nb, 31u * (uint32_t)nb);
        float want[GROUPS * 8], got[GROUPS * 8];
        ref(nb * 256, want, 0, w, a, 1, GROUPS * 8);
        kquant_gemv_q2_K(nb * 256, got, 0, w, a, 1, GROUPS * 8);
        if (!close_enough(got, want, GROUPS * 8))
            return false;
    }
    return true;
}

/* GROUPS groups of weights (w: 8-row groups of NB superblocks, ggml's
 * layout for `kernel`) against 4, 8 and 12 random activation rows in
 * ggml's 4-row layout (both of the kernel's paths), against ggml's plain-C
 * reference. */
enum { GEMM_GROUPS = 2, GEMM_NB = 3 };
static bool self_check_gemm(gemv_fn ref, gemv_fn kernel, const void *w)
{
    enum { NR = 12 };
    static struct q8kx4 a[NR / 4 * GEMM_NB];
    uint32_t seed = 77;
    for (int i = 0; i < NR / 4 * GEMM_NB; i++) {
        for (int m = 0; m < 4; m++)
            a[i].d[m] = 0.01f + (float)(rnd(&seed) % 100) / 1000.0f;
        memset(a[i].bsums, 0, sizeof a[i].bsums);
        for (int e = 0; e < 256; e++)
            for (int m = 0; m < 4; m++) {
                int8_t v = (int8_t)((int)(rnd(&seed) % 255) - 127);
                a[i].qs[(e / 8) * 32 + m * 8 + e % 8] = v;
                a[i].bsums[16 * (e / 64) + 4 * m + (e / 16) % 4] += v;
            }
    }
    const int n = GEMM_NB * 256, nc = GEMM_GROUPS * 8;
    for (int nr = 4; nr <= NR; nr += 4) {
        float want[NR * GEMM_GROUPS * 8], got[NR * GEMM_GROUPS * 8];
        ref(n, want, (size_t)nc, w, a, nr, nc);
        kernel(n, got, (size_t)nc, w, a, nr, nc);
        if (!close_enough(got, want, nr * nc))
            return false;
    }
    return true;
}

static bool self_check_gemm_q4(gemv_fn ref)
{
    static struct q4kx8 w[GEMM_GROUPS * GEMM_NB];
    static struct q8k one[GEMM_NB];
    fill(w, GEMM_GROUPS, GEMM_NB, one, 2024u);
    return self_check_gemm(ref, kquant_gemm_q4_K, w);
}

static bool self_check_gemm_q2(gemv_fn ref)
{
    static struct q2kx8 w[GEMM_GROUPS * GEMM_NB];
    fill_q2(w, GEMM_GROUPS * GEMM_NB, 4048u);
    return self_check_gemm(ref, kquant_gemm_q2_K, w);
}

bool kquant_init(const char *mode)
{
    g_on = g_on6 = g_on5 = g_on3 = g_onx = g_gemm_on = g_on2 = g_gemm2_on = false;
    pthread_once(&g_once, resolve);
    if (mode && strcmp(mode, "off") == 0)
        return false;
    if (!kernels_cpu_ok())
        return false;
    /* ggml's plain-C code reads fp16 through a table its init fills */
    typedef void (*init_fn)(void);
    init_fn cpu_init = (init_fn)kernels_backend_symbol("ggml_cpu_init");
    if (cpu_init)
        cpu_init();
    /* each kernel through its own check: one failing leaves the others */
    gemv_fn ref = (gemv_fn)kernels_backend_symbol("ggml_gemv_q4_K_8x8_q8_K_generic");
    g_ggml = (gemv_fn)kernels_backend_symbol("ggml_gemv_q4_K_8x8_q8_K");
    if (!ref || !g_ggml)
        log_warn("kquant: ggml's CPU backend does not export its Q4_K kernels; ggml's stay");
    else if (!self_check(ref))
        log_warn("kquant: hearth's Q4_K kernel disagrees with ggml's reference (its repacked "
                 "layout changed?); ggml's stays");
    else
        g_on = true;
    gemv_fn ref_gemm = (gemv_fn)kernels_backend_symbol("ggml_gemm_q4_K_8x8_q8_K_generic");
    if (!g_on)
        ;                            /* the 4-row kernel shares the one-row one's layout */
    else if (!g_ggml_gemm || !ref_gemm)
        log_warn("kquant: ggml's CPU backend does not export its 4-row Q4_K kernels; ggml's "
                 "stays");
    else if (!__builtin_cpu_supports("avx512vbmi"))
        log_info("kquant: this CPU lacks AVX-512 VBMI; ggml's 4-row Q4_K kernel stays");
    else if (!self_check_gemm_q4(ref_gemm))
        log_warn("kquant: hearth's 4-row Q4_K kernel disagrees with ggml's reference; ggml's "
                 "stays");
    else
        g_gemm_on = true;
    gemv_fn ref2 = (gemv_fn)kernels_backend_symbol("ggml_gemv_q2_K_8x8_q8_K_generic");
    g_ggml2 = (gemv_fn)kernels_backend_symbol("ggml_gemv_q2_K_8x8_q8_K");
    if (!ref2 || !g_ggml2)
        log_warn("kquant: ggml's CPU backend does not export its Q2_K kernels; ggml's stay");
    else if (!__builtin_cpu_supports("avx512vbmi"))
        log_info("kquant: this CPU lacks AVX-512 VBMI; ggml's Q2_K kernel stays");
    else if (!self_check_q2(ref2))
        log_warn("kquant: hearth's Q2_K kernel disagrees with ggml's reference; ggml's stays");
    else
        g_on2 = true;
    gemv_fn ref_gemm2 = (gemv_fn)kernels_backend_symbol("ggml_gemm_q2_K_8x8_q8_K_generic");
    if (g_on2 && g_ggml_gemm2 && ref_gemm2) {
        if (self_check_gemm_q2(ref_gemm2))
            g_gemm2_on = true;
        else
            log_warn("kquant: hearth's 4-row Q2_K kernel disagrees with ggml's reference; "
                     "ggml's stays");
    }
    g_dot6 = (dot_fn)kernels_backend_symbol("ggml_vec_dot_q6_K_q8_K");
    if (!g_dot6)
        log_warn("kquant: ggml's CPU backend does not export its Q6_K dot product; ggml's stays");
    else if (!self_check_rows(kquant_q6_K_rows, g_dot6, sizeof(struct q6k),
                              (const size_t[]){ offsetof(struct q6k, d) }, 1, 4321u))
        log_warn("kquant: hearth's Q6_K kernel disagrees with ggml's dot product; ggml's stays");
    else
        g_on6 = true;
    g_dot5 = (dot_fn)kernels_backend_symbol("ggml_vec_dot_q5_K_q8_K");
    if (!g_dot5)
        log_warn("kquant: ggml's CPU backend does not export its Q5_K dot product; ggml's stays");
    else if (!self_check_rows(kquant_q5_K_rows, g_dot5, sizeof(struct q5k),
                              (const size_t[]){ offsetof(struct q5k, d), offsetof(struct q5k, dmin) },
                              2, 8765u))
        log_warn("kquant: hearth's Q5_K kernel disagrees with ggml's dot product; ggml's stays");
    else
        g_on5 = true;
    g_dot3 = (dot_fn)kernels_backend_symbol("ggml_vec_dot_q3_K_q8_K");
    if (!g_dot3)
        log_warn("kquant: ggml's CPU backend does not export its Q3_K dot product; ggml's stays");
    else if (!self_check_rows(kquant_q3_K_rows, g_dot3, sizeof(struct q3k),
                              (const size_t[]){ offsetof(struct q3k, d) }, 1, 1357u))
        log_warn("kquant: hearth's Q3_K kernel disagrees with ggml's dot product; ggml's stays");
    else
        g_on3 = true;
    g_dotx = (dot_fn)kernels_backend_symbol("ggml_vec_dot_iq4_xs_q8_K");
    if (!g_dotx)
        log_warn("kquant: ggml's CPU backend does not export its IQ4_XS dot product; ggml's stays");
    else if (!self_check_rows(kquant_iq4_xs_rows, g_dotx, sizeof(struct iq4xs),
                              (const size_t[]){ offsetof(struct iq4xs, d) }, 1, 2468u))
        log_warn("kquant: hearth's IQ4_XS kernel disagrees with ggml's dot product; ggml's stays");
    else
        g_onx = true;
    return g_on;
}

bool kquant_active(void)
{
    return g_on;
}

bool kquant_q2_K_active(void)
{
    return g_on2;
}

bool kquant_gemm_q2_K_active(void)
{
    return g_gemm2_on;
}

bool kquant_q6_K_active(void)
{
    return g_on6;
}

bool kquant_q5_K_active(void)
{
    return g_on5;
}

bool kquant_q3_K_active(void)
{
    return g_on3;
}

bool kquant_iq4_xs_active(void)
{
    return g_onx;
}

bool kquant_gemm_active(void)
{
    return g_gemm_on;
}

/* ggml's CPU backend calls its 4-row Q4_K kernel through its PLT: the
 * worker exports this definition (engine/kernels.h explains the binding),
 * which forwards to ggml's own unless hearth's is checked and on. */
void ggml_gemm_q4_K_8x8_q8_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                             int nc);
void ggml_gemm_q4_K_8x8_q8_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                             int nc)
{
    if (g_gemm_on) {
        kquant_gemm_q4_K(n, s, bs, vx, vy, nr, nc);
        return;
    }
    pthread_once(&g_once, resolve);
    if (!g_ggml_gemm)
        abort();                     /* called from a ggml we never found */
    g_ggml_gemm(n, s, bs, vx, vy, nr, nc);
}

/* The same for ggml's 4-row Q2_K kernel. */
void ggml_gemm_q2_K_8x8_q8_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                             int nc);
void ggml_gemm_q2_K_8x8_q8_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                             int nc)
{
    if (g_gemm2_on) {
        kquant_gemm_q2_K(n, s, bs, vx, vy, nr, nc);
        return;
    }
    pthread_once(&g_once, resolve);
    if (!g_ggml_gemm2)
        abort();                     /* called from a ggml we never found */
    g_ggml_gemm2(n, s, bs, vx, vy, nr, nc);
}
