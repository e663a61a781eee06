/*
 * kernels.c: Q4_0 x Q8_0 matrix kernels with AVX-512 VNNI, in place of
 * ggml's (see kernels.h for how they get there and when they are used).
 *
 * The data layouts are ggml's repacked ones:
 *   weights, per 8 output columns and per 32-wide block: 8 fp16 scales, then
 *   128 bytes; byte k*64 + j*8 + i of column j holds element k*8+i in its
 *   low nibble and element 16+k*8+i in its high nibble, each a signed 4-bit
 *   value stored with its sign bit flipped (x ^ 8);
 *   activations for gemm, per 4 rows and per block: 4 fp16 scales, then 128
 *   int8 where byte g*32 + m*8 + i is element g*8+i of row m;
 *   activations for gemv: ggml's block_q8_0 (fp16 scale, 32 int8).
 *
 * vpdpbusd multiplies unsigned by signed bytes, so the weights are taken as
 * w+8 (0..15) and the excess, 8 times the sum of a block's activations, is
 * subtracted up front. Each 512-bit accumulator holds two int32 lanes per
 * column (the two 4-byte halves of its 8 bytes); they are scaled and summed
 * in float, and the pairs are folded once at the end of a row.
 */
#include "engine/kernels.h"

#include "core/log.h"

#include <dlfcn.h>
#include <immintrin.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef kernels_fn mm_fn;

struct wblock {     /* 8 columns x 32 elements of Q4_0 weights, repacked */
    uint16_t d[8];
    uint8_t qs[128];
};
struct ablock4 {    /* 4 rows x 32 elements of Q8_0 activations, interleaved */
    uint16_t d[4];
    int8_t qs[128];
};
struct ablock1 {    /* ggml's block_q8_0 */
    uint16_t d;
    int8_t qs[32];
};

struct q5block {    /* ggml's block_q5_0 */
    uint16_t d;
    uint8_t qh[4];      /* bit i: the fifth bit of element i */
    uint8_t qs[16];     /* elements i and i+16 in the low and high nibble */
};

_Static_assert(sizeof(struct wblock) == 144, "ggml's block_q4_0x8");
_Static_assert(sizeof(struct q5block) == 22, "ggml's block_q5_0");
_Static_assert(sizeof(struct ablock4) == 136, "ggml's block_q8_0x4");
_Static_assert(sizeof(struct ablock1) == 34, "ggml's block_q8_0");

/* the per-row tables live on the stack: rows this long at most (ggml's
 * widest layer matrices are far below) */
#define MAX_BLOCKS 2048

/* the weights stream from memory: fetch this many blocks (4.5 KiB) ahead;
 * measured here, 20% more bandwidth for gemv than the hardware prefetcher
 * alone */
#ifndef PREFETCH_BLOCKS
#define PREFETCH_BLOCKS 32
#endif
/* the distance in bytes for rows of plain blocks (34 bytes for Q8_0, 22
 * for Q5_0): kernels.h */
#ifndef PLAIN_PREFETCH_BYTES
#define PLAIN_PREFETCH_BYTES KERNELS_ROWS_AHEAD
#endif

/* rows kernels fetch into L2 only (kernels_rows_fetch_l2) */
static bool g_rows_l2;

#define KTARGET \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma,bmi2")))

KTARGET static inline float h2f(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* Fold a row's 16 lanes (two per column) into 8 column sums and store. */
KTARGET static inline void store8(float *dst, __m512 v)
{
    const __m512i even = _mm512_set_epi32(14, 12, 10, 8, 6, 4, 2, 0, 14, 12, 10, 8, 6, 4, 2, 0);
    __m512 sum = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));
    _mm256_storeu_ps(dst, _mm512_castps512_ps256(_mm512_permutexvar_ps(even, sum)));
}

/* The 8 weight scales of a block, each twice (one per lane of its column). */
KTARGET static inline __m512 wscales(const struct wblock *b)
{
    const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->d));
    return _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(d));
}

static inline int64_t load8(const int8_t *p)
{
    int64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The weights of one block as unsigned nibbles (w+8): low and high halves
 * of each 64-byte chunk. */
#define PREFETCH(b)                                                                 \
    do {                                                                            \
        const char *p_ = (const char *)((b) + PREFETCH_BLOCKS);                     \
        _mm_prefetch(p_, _MM_HINT_T0);                                              \
        _mm_prefetch(p_ + 64, _MM_HINT_T0);                                         \
        _mm_prefetch(p_ + 128, _MM_HINT_T0);                                        \
    } while (0)

#define UNPACK(b)                                                                   \
    const __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512((b)->qs), m88);          \
    const __m512i x1 = _mm512_xor_si512(_mm512_loadu_si512((b)->qs + 64), m88);     \
    const __m512i lo0 = _mm512_and_si512(x0, m0f);                                  \
    const __m512i lo1 = _mm512_and_si512(x1, m0f);                                  \
    const __m512i hi0 = _mm512_and_si512(_mm512_srli_epi16(x0, 4), m0f);            \
    const __m512i hi1 = _mm512_and_si512(_mm512_srli_epi16(x1, 4), m0f)

/* One row's dot products for a block: q points at its 8-byte groups g0..g3
 * (elements 0-7, 8-15, 16-23, 24-31), `stride` bytes apart. */
#define ROWDOT(acc, q, stride, corr, scale)                                                     \
    do {                                                                                        \
        __m512i t_ = _mm512_set1_epi32(corr);                                                   \
        t_ = _mm512_dpbusd_epi32(t_, lo0, _mm512_set1_epi64(load8((q))));                       \
        t_ = _mm512_dpbusd_epi32(t_, lo1, _mm512_set1_epi64(load8((q) + (stride))));            \
        t_ = _mm512_dpbusd_epi32(t_, hi0, _mm512_set1_epi64(load8((q) + 2 * (stride))));        \
        t_ = _mm512_dpbusd_epi32(t_, hi1, _mm512_set1_epi64(load8((q) + 3 * (stride))));        \
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t_), (scale), acc);                            \
    } while (0)

KTARGET void kernels_gemv_q4_0(int n, float *s, size_t bs, const void *vx, const void *vy,
                               int nr, int nc)
{
    (void)bs;
    (void)nr;
    const int nb = n / 32;
    const struct ablock1 *a = vy;
    float da[MAX_BLOCKS];
    int32_t corr[MAX_BLOCKS];
    for (int l = 0; l < nb; l++) {
        int sum = 0;
        for (int i = 0; i < 32; i++)
            sum += a[l].qs[i];
        corr[l] = -4 * sum;          /* -8 * sum, split over a column's two lanes */
        da[l] = h2f(a[l].d);
    }
    const __m512i m88 = _mm512_set1_epi8((char)0x88), m0f = _mm512_set1_epi8(0x0F);
    for (int x = 0; x < nc / 8; x++) {
        const struct wblock *w = (const struct wblock *)vx + (size_t)x * nb;
        __m512 acc = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps();
        int l = 0;
        for (; l + 1 < nb; l += 2) {
            _mm_prefetch((const char *)(w + l + PREFETCH_BLOCKS), _MM_HINT_T0);
            _mm_prefetch((const char *)(w + l + PREFETCH_BLOCKS) + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)(w + l + PREFETCH_BLOCKS) + 128, _MM_HINT_T0);
            _mm_prefetch((const char *)(w + l + PREFETCH_BLOCKS) + 192, _MM_HINT_T0);
            _mm_prefetch((const char *)(w + l + PREFETCH_BLOCKS) + 256, _MM_HINT_T0);
            {
                UNPACK(&w[l]);
                __m512 sc = _mm512_mul_ps(wscales(&w[l]), _mm512_set1_ps(da[l]));
                ROWDOT(acc, a[l].qs, 8, corr[l], sc);
            }
            {
                UNPACK(&w[l + 1]);
                __m512 sc = _mm512_mul_ps(wscales(&w[l + 1]), _mm512_set1_ps(da[l + 1]));
                ROWDOT(acc2, a[l + 1].qs, 8, corr[l + 1], sc);
            }
        }
        for (; l < nb; l++) {
            UNPACK(&w[l]);
            __m512 sc = _mm512_mul_ps(wscales(&w[l]), _mm512_set1_ps(da[l]));
            ROWDOT(acc, a[l].qs, 8, corr[l], sc);
        }
        store8(s + (size_t)x * 8, _mm512_add_ps(acc, acc2));
    }
}

/* Scales and corrections of 4 interleaved rows, for every block. Row m's
 * bytes are the 8-byte lanes m and m+4 of a block's two 64-byte halves:
 * vpsadbw sums each lane (taken unsigned, x ^ 0x80, so 128 too many per
 * byte: 4096 per row). */
KTARGET static void prep4(const struct ablock4 *a, int nb, float *da, int32_t *corr)
{
    const __m512i k80 = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    for (int l = 0; l < nb; l++) {
        const __m512i lo = _mm512_xor_si512(_mm512_loadu_si512(a[l].qs), k80);
        const __m512i hi = _mm512_xor_si512(_mm512_loadu_si512(a[l].qs + 64), k80);
        const __m512i s8 = _mm512_add_epi64(_mm512_sad_epu8(lo, zero), _mm512_sad_epu8(hi, zero));
        const __m256i s4 = _mm256_add_epi64(_mm512_castsi512_si256(s8),
                                            _mm512_extracti64x4_epi64(s8, 1));
        /* -4 * (sum - 4096), as int32 */
        const __m256i c = _mm256_mullo_epi64(_mm256_sub_epi64(s4, _mm256_set1_epi64x(4096)),
                                             _mm256_set1_epi64x(-4));
        _mm_storeu_si128((__m128i *)(corr + l * 4), _mm256_cvtepi64_epi32(c));
        _mm_storeu_ps(da + l * 4, _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)a[l].d)));
    }
}

/* ng groups of 4 rows (1 or 2, a constant once inlined) against every
 * column group: the weights of a block are unpacked once for all rows. */
KTARGET __attribute__((always_inline)) static inline void
gemm_groups(int ng, int nb, int nc, float *s, size_t bs, const void *vx,
            const struct ablock4 *a, const float *da, const int32_t *corr)
{
    const __m512i m88 = _mm512_set1_epi8((char)0x88), m0f = _mm512_set1_epi8(0x0F);
    for (int x = 0; x < nc / 8; x++) {
        const struct wblock *w = (const struct wblock *)vx + (size_t)x * nb;
        __m512 c[8];
#pragma GCC unroll 8
        for (int r = 0; r < ng * 4; r++)
            c[r] = _mm512_setzero_ps();
        for (int l = 0; l < nb; l++) {
            PREFETCH(&w[l]);
            UNPACK(&w[l]);
            const __m512 ws = wscales(&w[l]);
#pragma GCC unroll 8
            for (int r = 0; r < ng * 4; r++) {
                /* row r: group r/4 (its tables 4*MAX_BLOCKS apart), row r%4 in it */
                const int g = r / 4, m = r % 4;
                const int8_t *q = a[(size_t)g * nb + l].qs + m * 8;
                const size_t t = (size_t)g * 4 * MAX_BLOCKS + (size_t)l * 4 + m;
                ROWDOT(c[r], q, 32, corr[t], _mm512_mul_ps(ws, _mm512_set1_ps(da[t])));
            }
        }
        float *o = s + (size_t)x * 8;
#pragma GCC unroll 8
        for (int r = 0; r < ng * 4; r++)
            store8(o + (size_t)r * bs, c[r]);
    }
}

KTARGET void kernels_gemm_q4_0(int n, float *s, size_t bs, const void *vx, const void *vy,
                               int nr, int nc)
{
    const int nb = n / 32;
    const struct ablock4 *a = vy;
    float da[2 * 4 * MAX_BLOCKS];
    int32_t corr[2 * 4 * MAX_BLOCKS];
    int y = 0;
    /* eight rows at a time, then the last four */
    for (; y + 1 < nr / 4; y += 2) {
        prep4(a + (size_t)y * nb, nb, da, corr);
        prep4(a + (size_t)(y + 1) * nb, nb, da + 4 * MAX_BLOCKS, corr + 4 * MAX_BLOCKS);
        gemm_groups(2, nb, nc, s + (size_t)y * 4 * bs, bs, vx, a + (size_t)y * nb, da, corr);
    }
    if (y < nr / 4) {
        prep4(a + (size_t)y * nb, nb, da, corr);
        gemm_groups(1, nb, nc, s + (size_t)y * 4 * bs, bs, vx, a + (size_t)y * nb, da, corr);
    }
}

/* ---- Q8_0 x Q8_0: one weight row against one activation row -------------- */

/* Two blocks' quants side by side in one register. */
KTARGET static inline __m512i pair_quants(const struct ablock1 *b, int l)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[l].qs)),
                              _mm256_loadu_si256((const __m256i *)b[l + 1].qs), 1);
}

/* The scales of two Q8_0 blocks over their 8 lanes each. */
KTARGET static inline __m512 pair_dscales(const struct ablock1 *b)
{
    __m256i h = _mm256_set1_epi16((short)b[0].d);
    return _mm512_cvtph_ps(_mm256_mask_set1_epi16(h, 0xFF00, (short)b[1].d));
}

/* vpdpbusd multiplies unsigned by signed bytes: the weights are taken as
 * x+128 (x ^ 0x80), and 128 times the activations' sum, itself a vpdpbusd
 * against a vector of 128s, is taken off. Exact for every byte value. */
KTARGET void kernels_vec_dot_q8_0(int n, float *s, const void *vx, const void *vy)
{
    const int nb = n / 32;
    const struct ablock1 *x = vx, *y = vy;
    const __m512i k80 = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int l = 0;
    for (; l + 3 < nb; l += 4) {
        _mm_prefetch((const char *)(x + l + PREFETCH_BLOCKS), _MM_HINT_T0);
        _mm_prefetch((const char *)(x + l + PREFETCH_BLOCKS) + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)(x + l + PREFETCH_BLOCKS) + 128, _MM_HINT_T0);
        __m512i q0 = pair_quants(y, l), q1 = pair_quants(y, l + 2);
        __m512i t0 = _mm512_dpbusd_epi32(zero, _mm512_xor_si512(pair_quants(x, l), k80), q0);
        __m512i t1 = _mm512_dpbusd_epi32(zero, _mm512_xor_si512(pair_quants(x, l + 2), k80), q1);
        t0 = _mm512_sub_epi32(t0, _mm512_dpbusd_epi32(zero, k80, q0));
        t1 = _mm512_sub_epi32(t1, _mm512_dpbusd_epi32(zero, k80, q1));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t0), _mm512_mul_ps(pair_dscales(x + l), pair_dscales(y + l)), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t1), _mm512_mul_ps(pair_dscales(x + l + 2), pair_dscales(y + l + 2)), acc1);
    }
    for (; l + 1 < nb; l += 2) {
        __m512i q = pair_quants(y, l);
        __m512i t = _mm512_dpbusd_epi32(zero, _mm512_xor_si512(pair_quants(x, l), k80), q);
        t = _mm512_sub_epi32(t, _mm512_dpbusd_epi32(zero, k80, q));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(pair_dscales(x + l), pair_dscales(y + l)), acc0);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    if (l < nb) {
        int dot = 0;
        for (int i = 0; i < 32; i++)
            dot += x[l].qs[i] * y[l].qs[i];
        sum += (float)dot * (h2f(x[l].d) * h2f(y[l].d));
    }
    *s = sum;
}

/* An activation row prepared once for the gemv kernels, per pair of
 * blocks: its quants, `bias` times their sums per lane taken off (the
 * weights are stored as x+bias for vpdpbusd), its scales over the lanes of
 * their blocks. */
KTARGET static inline void prepare_pairs(const struct ablock1 *y, int np, char bias, __m512i *qa,
                                         __m512i *negc, __m512 *ya)
{
    const __m512i b = _mm512_set1_epi8(bias), zero = _mm512_setzero_si512();
    for (int p = 0; p < np; p++) {
        qa[p] = pair_quants(y, 2 * p);
        negc[p] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, b, qa[p]));
        ya[p] = pair_dscales(y + 2 * p);
    }
}

/* ---- Q5_0 x Q8_0: one weight row against one activation row -------------- */

/* A block's 32 elements as unsigned bytes 0..31 (x+16): the nibbles, and
 * 16 where its bit in qh is set (an AVX-512 mask move). */
KTARGET static inline __m256i q5_bytes(const struct q5block *b)
{
    const __m128i m0f = _mm_set1_epi8(0x0F);
    const __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
    const __m256i nib = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m0f)),
                                                _mm_and_si128(_mm_srli_epi16(q, 4), m0f), 1);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    return _mm256_or_si256(nib, _mm256_maskz_mov_epi8((__mmask32)qh, _mm256_set1_epi8(16)));
}

/* Two Q5_0 blocks' elements as x+16, in element order (block l's 32, then
 * block l+1's, as kernels_vec_dot_q5_0 has them): one 256-bit load of both
 * blocks' nibbles spread to the four quarters, one shift of the upper
 * nibbles, and the fifth bits, which are already in element order, as one
 * 64-bit mask. */
KTARGET static inline __m512i q5_pair(const struct q5block *x)
{
    const __m256i q = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)x[0].qs)),
        _mm_loadu_si128((const __m128i *)x[1].qs), 1);
    const __m512i idx = _mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0);
    __m512i v = _mm512_permutexvar_epi64(idx, _mm512_castsi256_si512(q));
    v = _mm512_mask_srli_epi16(v, 0xFF00FF00u, v, 4);     /* words of the upper nibbles */
    v = _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
    uint32_t h0, h1;
    memcpy(&h0, x[0].qh, 4);
    memcpy(&h1, x[1].qh, 4);
    return _mm512_mask_add_epi8(v, (uint64_t)h1 << 32 | h0, v, _mm512_set1_epi8(16));
}

/* The weight scales of blocks l and l+1 over their 8 lanes each. */
KTARGET static inline __m512 q5_pair_wscales(const struct q5block *x)
{
    __m256i h = _mm256_set1_epi16((short)x[0].d);
    h = _mm256_mask_set1_epi16(h, 0xFF00, (short)x[1].d);
    return _mm512_cvtph_ps(h);
}

/* vpdpbusd on the elements as x+16 (unsigned), with 16 times the
 * activations' sum taken off: exact. Two blocks per 512-bit register. Also
 * the last blocks of a row that are not a quad; the dot product itself
 * stays by pairs, since laying a row out for quads costs as much as the
 * products it would serve once per weight row (20.8 against 25.9 GB/s in
 * cache when it was tried). */
KTARGET void kernels_vec_dot_q5_0(int n, float *s, const void *vx, const void *vy)
{
    const int nb = n / 32;
    const struct q5block *x = vx;
    const struct ablock1 *y = vy;
    const __m512i k16 = _mm512_set1_epi8(16), zero = _mm512_setzero_si512();
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int l = 0;
    for (; l + 3 < nb; l += 4) {
        _mm_prefetch((const char *)(x + l + PREFETCH_BLOCKS), _MM_HINT_T0);
        _mm_prefetch((const char *)(x + l + PREFETCH_BLOCKS) + 64, _MM_HINT_T0);
        __m512i q0 = pair_quants(y, l), q1 = pair_quants(y, l + 2);
        __m512i w0 = q5_pair(x + l), w1 = q5_pair(x + l + 2);
        __m512i t0 = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, w0, q0),
                                      _mm512_dpbusd_epi32(zero, k16, q0));
        __m512i t1 = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, w1, q1),
                                      _mm512_dpbusd_epi32(zero, k16, q1));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t0), _mm512_mul_ps(q5_pair_wscales(x + l), pair_dscales(y + l)), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t1), _mm512_mul_ps(q5_pair_wscales(x + l + 2), pair_dscales(y + l + 2)), acc1);
    }
    for (; l + 1 < nb; l += 2) {
        __m512i q = pair_quants(y, l);
        __m512i w = q5_pair(x + l);
        __m512i t = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, w, q), _mm512_dpbusd_epi32(zero, k16, q));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(q5_pair_wscales(x + l), pair_dscales(y + l)), acc0);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    if (l < nb) {
        uint32_t qh;
        memcpy(&qh, x[l].qh, 4);
        int dot = 0;
        for (int i = 0; i < 16; i++) {
            int lo = (x[l].qs[i] & 0x0F) | (int)((qh >> i) & 1) << 4;
            int hi = (x[l].qs[i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4;
            dot += (lo - 16) * y[l].qs[i] + (hi - 16) * y[l].qs[i + 16];
        }
        sum += (float)dot * (h2f(x[l].d) * h2f(y[l].d));
    }
    *s = sum;
}

/* ---- plain Q8_0 and Q5_0 rows against one activation row ---------------- */

/* A pair of weight blocks as unsigned bytes (x+128 for Q8_0, x+16 for
 * Q5_0) and their scales over the lanes of their blocks. */
KTARGET static inline __m512i pair_weights(bool q5, const char *x, int l)
{
    return q5 ? q5_pair((const struct q5block *)x + l)
              : _mm512_xor_si512(pair_quants((const struct ablock1 *)x, l),
                                 _mm512_set1_epi8((char)0x80));
}

KTARGET static inline __m512 pair_wscales(bool q5, const char *x, int l)
{
    return q5 ? q5_pair_wscales((const struct q5block *)x + l)
              : pair_dscales((const struct ablock1 *)x + l);
}

/* Rows of a plain matrix against one activation row, the activation
 * prepared once (prepare_pairs); each pair of weight blocks then costs its
 * loads and unpacking, one vpdpbusd and the scales. The same sums in the
 * same lanes and order as the type's dot product (kernels_vec_dot_q8_0 or
 * _q5_0), so the same bits. q5 is a constant in each caller. */
KTARGET static inline __attribute__((always_inline)) void
gemv_plain(bool q5, int n, float *out, const void *vw, size_t row_bytes, int rows, const void *va)
{
    const int nb = n / 32, np = nb / 2;
    const size_t bsize = q5 ? sizeof(struct q5block) : sizeof(struct ablock1);
    void (*dot)(int, float *, const void *, const void *) =
        q5 ? kernels_vec_dot_q5_0 : kernels_vec_dot_q8_0;
    const struct ablock1 *y = va;
    if (np > KERNELS_GEMV_MAX_N / 64) {
        for (int r = 0; r < rows; r++)
            dot(n, out + r, (const char *)vw + (size_t)r * row_bytes, va);
        return;
    }
    __m512i qa[KERNELS_GEMV_MAX_N / 64], negc[KERNELS_GEMV_MAX_N / 64];
    __m512 ya[KERNELS_GEMV_MAX_N / 64];
    prepare_pairs(y, np, q5 ? 16 : (char)0x80, qa, negc, ya);
    const bool l2 = g_rows_l2;
    for (int r = 0; r < rows; r++) {
        const char *x = (const char *)vw + (size_t)r * row_bytes;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        const __m512i *q = qa, *c = negc;
        const __m512 *d = ya;
        int l = 0;
        for (; l + 3 < nb; l += 4, q += 2, c += 2, d += 2) {
            const char *ahead = x + (size_t)l * bsize + PLAIN_PREFETCH_BYTES;
            for (size_t o = 0; o < 4 * bsize; o += 64)
                KERNELS_ROWS_FETCH(ahead + o, l2);
            __m512i t0 = _mm512_dpbusd_epi32(c[0], pair_weights(q5, x, l), q[0]);
            __m512i t1 = _mm512_dpbusd_epi32(c[1], pair_weights(q5, x, l + 2), q[1]);
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t0),
                                   _mm512_mul_ps(pair_wscales(q5, x, l), d[0]), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t1),
                                   _mm512_mul_ps(pair_wscales(q5, x, l + 2), d[1]), acc1);
        }
        for (; l + 1 < nb; l += 2, q++, c++, d++) {
            __m512i t = _mm512_dpbusd_epi32(c[0], pair_weights(q5, x, l), q[0]);
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t),
                                   _mm512_mul_ps(pair_wscales(q5, x, l), d[0]), acc0);
        }
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
        if (l < nb) {                   /* an odd last block, as the dot product adds it */
            float tail;
            dot(32, &tail, x + (size_t)l * bsize, y + l);
            sum += tail;
        }
        out[r] = sum;
    }
}

KTARGET void kernels_q8_0_gemv(int n, float *out, const void *vw, size_t row_bytes, int rows,
                               const void *va)
{
    gemv_plain(false, n, out, vw, row_bytes, rows, va);
}

/* ---- Q5_0 rows in quads of blocks (AVX-512 VBMI and BITALG) -------------- */

/* Four Q5_0 blocks are 88 bytes: two overlapping 64-byte loads hold them,
 * and vpermt2b gathers from those what a quad needs in two registers:
 * the 64 bytes of nibbles (block b's at bytes 16b..16b+15), and per 64-bit
 * lane k the fifth bits of block k/2 (low 32 bits) and its scale (bits
 * 32-47). The low nibbles are the quad's elements 0-15 of each block, the
 * high ones 16-31; vpshufbitqmb turns the fifth bits into a byte mask for
 * each in one step. The activation is laid out to match once per call:
 * per quad, elements 0-15 of each block in one register and 16-31 in
 * another, 16 times their sum, and the scales over each block's 4 lanes.
 * Against the pairs' code: a third fewer operations, no scalar loads, no
 * round trip through general registers. Measured here: 50-55 against
 * 35-39 GB/s in cache, 36.5 against 33 from memory on one core (40 with
 * lines fetched 9 KiB ahead); the 0.5B Q4_K_M (half its bytes Q5_0)
 * decodes 4% faster side by side at ~80 GB/s.
 * The tables must stay in registers for a whole call: reloaded per row,
 * the quads streamed at 31 GB/s from memory. */
#define XTARGET                                                                             \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,"      \
                          "avx512bitalg,f16c,fma,bmi2")))
#define QUAD_MAX (KERNELS_GEMV_MAX_N / 128)

struct quad_act {           /* an activation row, laid out for the quads */
    __m512i lo[QUAD_MAX], hi[QUAD_MAX], negc[QUAD_MAX];
    __m512 d[QUAD_MAX];
};

/* index of byte o (0..87) of a quad in the pair of loads at 0 and 24 */
static uint8_t quad_at(int o)
{
    return (uint8_t)(o < 64 ? o : 64 + o - 24);
}

struct quad_idx {
    _Alignas(64) uint8_t nib[64], head[64], bit_lo[64], bit_hi[64];
    _Alignas(64) uint16_t scale[32];
};

static struct quad_idx g_quad;
static pthread_once_t g_quad_once = PTHREAD_ONCE_INIT;

static void quad_tables(void)
{
    struct quad_idx *q = &g_quad;
    for (int p = 0; p < 64; p++) {
        q->nib[p] = quad_at(22 * (p / 16) + 6 + p % 16);
        q->bit_lo[p] = (uint8_t)(p % 16);           /* byte p lies in lane p/8: block p/16 */
        q->bit_hi[p] = (uint8_t)(16 + p % 16);
    }
    for (int k = 0; k < 8; k++) {
        const int b = k / 2;
        for (int j = 0; j < 4; j++)
            q->head[8 * k + j] = quad_at(22 * b + 2 + j);       /* qh */
        q->head[8 * k + 4] = quad_at(22 * b);                   /* d */
        q->head[8 * k + 5] = quad_at(22 * b + 1);
        q->head[8 * k + 6] = q->head[8 * k + 7] = 0;
    }
    for (int i = 0; i < 32; i++)    /* dword lane i: block i/4's scale, word 8(i/4)+2 */
        q->scale[i] = (uint16_t)(8 * ((i % 16) / 4) + 2);
}

static bool g_quads_off;            /* tests: the pairs' code on any CPU */

static bool quads_ok(void)
{
    return !g_quads_off && __builtin_cpu_supports("avx512vbmi") &&
           __builtin_cpu_supports("avx512bitalg");
}

bool kernels_q5_0_quads(bool on)
{
    g_quads_off = !on;
    return quads_ok();
}

XTARGET static void quad_prepare(const struct ablock1 *y, int nq, struct quad_act *a)
{
    const __m512i b16 = _mm512_set1_epi8(16), zero = _mm512_setzero_si512();
    for (int g = 0; g < nq; g++) {
        const struct ablock1 *b = y + 4 * g;
        __m512i lo = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)b[0].qs));
        __m512i hi = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(b[0].qs + 16)));
        for (int k = 1; k < 4; k++) {
            lo = _mm512_mask_broadcast_i32x4(lo, (__mmask16)(0xF << 4 * k),
                                             _mm_loadu_si128((const __m128i *)b[k].qs));
            hi = _mm512_mask_broadcast_i32x4(hi, (__mmask16)(0xF << 4 * k),
                                             _mm_loadu_si128((const __m128i *)(b[k].qs + 16)));
        }
        a->lo[g] = lo;
        a->hi[g] = hi;
        a->negc[g] = _mm512_sub_epi32(
            zero, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, b16, lo), b16, hi));
        __m512 d = _mm512_set1_ps(h2f(b[0].d));
        for (int k = 1; k < 4; k++)
            d = _mm512_mask_mov_ps(d, (__mmask16)(0xF << 4 * k), _mm512_set1_ps(h2f(b[k].d)));
        a->d[g] = d;
    }
}

struct quad_regs {          /* the tables, in registers for a whole call */
    __m512i nib, head, bit_lo, bit_hi, scale;
};

XTARGET static inline __attribute__((always_inline)) struct quad_regs quad_regs(void)
{
    return (struct quad_regs){ _mm512_load_si512(g_quad.nib), _mm512_load_si512(g_quad.head),
                               _mm512_load_si512(g_quad.bit_lo), _mm512_load_si512(g_quad.bit_hi),
                               _mm512_load_si512(g_quad.scale) };
}

/* Quad g of a row at x, into acc. */
XTARGET static inline __attribute__((always_inline)) __m512
quad_one(const struct quad_regs *k, const char *x, int g, const struct quad_act *a, __m512 acc)
{
    const __m512i m0f = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(16);
    const char *b = x + (size_t)g * 88;
    const __m512i l0 = _mm512_loadu_si512(b), l1 = _mm512_loadu_si512(b + 24);
    const __m512i q = _mm512_permutex2var_epi8(l0, k->nib, l1);
    const __m512i h = _mm512_permutex2var_epi8(l0, k->head, l1);
    __m512i lo = _mm512_and_si512(q, m0f), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m0f);
    lo = _mm512_mask_add_epi8(lo, _mm512_bitshuffle_epi64_mask(h, k->bit_lo), lo, b16);
    hi = _mm512_mask_add_epi8(hi, _mm512_bitshuffle_epi64_mask(h, k->bit_hi), hi, b16);
    const __m512 ws =
        _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(k->scale, h)));
    const __m512i t =
        _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(a->negc[g], lo, a->lo[g]), hi, a->hi[g]);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(ws, a->d[g]), acc);
}

/* Fetch every line from *pf up to `until` (addresses as integers: they
 * run past the matrix, and prefetches do not fault). */
static inline __attribute__((always_inline)) void fetch_to(uintptr_t *pf, uintptr_t until,
                                                           bool l2)
{
    for (; *pf < until; *pf += 64)
        KERNELS_ROWS_FETCH(*pf, l2);
}

/* One row's quads, even ones into one accumulator and odd ones into
 * another, then its last blocks (fewer than four) by pairs; each line of
 * the matrix PLAIN_PREFETCH_BYTES ahead is fetched once, *pf being the
 * next one not asked for. The pairs' way, two fetches per step and some
 * lines twice, left these quads at 24 GB/s from memory on one core (the
 * pairs 31); once per line, 36. */
XTARGET static inline __attribute__((always_inline)) float
quad_row(const struct quad_regs *k, int nb, const char *x, size_t row_bytes,
         const struct ablock1 *y, const struct quad_act *a, uintptr_t *pfp, bool l2)
{
    const int nq = nb / 4;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    /* in a register for the loop: a store through pfp could alias the tables */
    const uintptr_t ahead = (uintptr_t)x + PLAIN_PREFETCH_BYTES;
    uintptr_t pf = *pfp;
    if (pf < (ahead & ~(uintptr_t)63) || pf > ahead + 64)       /* not where the last row ended */
        pf = ahead & ~(uintptr_t)63;
    int g = 0;
    for (; g + 1 < nq; g += 2) {
        fetch_to(&pf, ahead + (uintptr_t)(g + 2) * 88, l2);
        acc0 = quad_one(k, x, g, a, acc0);
        acc1 = quad_one(k, x, g + 1, a, acc1);
    }
    if (g < nq)
        acc0 = quad_one(k, x, g, a, acc0);
    fetch_to(&pf, ahead + row_bytes, l2);                       /* the rest of the row */
    *pfp = pf;
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    if (nb > 4 * nq) {
        float tail;
        kernels_vec_dot_q5_0(32 * (nb - 4 * nq), &tail, x + (size_t)nq * 88, y + 4 * nq);
        sum += tail;
    }
    return sum;
}

/* Rows of n elements go by quads (at most QUAD_MAX of them) */
static bool quads_for(int n)
{
    return quads_ok() && n / 128 <= QUAD_MAX;
}

XTARGET static void quad_gemv(int n, float *out, const void *vw, size_t row_bytes, int rows,
                              const void *va)
{
    const int nb = n / 32;
    pthread_once(&g_quad_once, quad_tables);
    struct quad_act a;
    quad_prepare(va, nb / 4, &a);
    const struct quad_regs k = quad_regs();
    uintptr_t pf = 0;
    const bool l2 = g_rows_l2;
    for (int r = 0; r < rows; r++)
        out[r] = quad_row(&k, nb, (const char *)vw + (size_t)r * row_bytes, row_bytes, va, &a,
                          &pf, l2);
}

/* The pairs' rows, apart so that their arrays are not in the quads' frame. */
KTARGET static __attribute__((noinline)) void pairs_gemv(int n, float *out, const void *vw,
                                                         size_t row_bytes, int rows,
                                                         const void *va)
{
    gemv_plain(true, n, out, vw, row_bytes, rows, va);
}

void kernels_q5_0_gemv(int n, float *out, const void *vw, size_t row_bytes, int rows,
                       const void *va)
{
    if (quads_for(n))
        quad_gemv(n, out, vw, row_bytes, rows, va);
    else
        pairs_gemv(n, out, vw, row_bytes, rows, va);
}

bool kernels_q5_0_gemv_exact(void)
{
    return !quads_ok();
}

/* One Q5_0 weight row against m activation rows (Q8_0 rows of nb blocks,
 * `da` their scales as floats): each weight block is unpacked once for up
 * to 8 rows. out[j * stride] = the dot product with row j. */
/* R (1 to 8) activation rows from row j0 against one Q5_0 weight row; R is
 * a constant in each inlined copy, so the accumulators stay in registers. */
KTARGET static inline __attribute__((always_inline)) void
q5_rows(int R, int nb, const struct q5block *w, const struct ablock1 *a, const float *da, int j0,
        float *out, size_t stride)
{
    const __m256i k16 = _mm256_set1_epi8(16), zero = _mm256_setzero_si256();
    __m256 acc[8];
#pragma GCC unroll 8
    for (int j = 0; j < R; j++)
        acc[j] = _mm256_setzero_ps();
    for (int l = 0; l < nb; l++) {
        const __m256i x = q5_bytes(w + l);
        const float dx = h2f(w[l].d);
#pragma GCC unroll 8
        for (int j = 0; j < R; j++) {
            const size_t at = (size_t)(j0 + j) * nb + l;
            const __m256i q = _mm256_loadu_si256((const __m256i *)a[at].qs);
            const __m256i t = _mm256_sub_epi32(_mm256_dpbusd_epi32(zero, x, q),
                                               _mm256_dpbusd_epi32(zero, k16, q));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_set1_ps(dx * da[at]), acc[j]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < R; j++) {
        __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[j]), _mm256_extractf128_ps(acc[j], 1));
        v = _mm_add_ps(v, _mm_movehl_ps(v, v));
        v = _mm_add_ss(v, _mm_movehdup_ps(v));
        out[(size_t)(j0 + j) * stride] = _mm_cvtss_f32(v);
    }
}

KTARGET void kernels_q5_0_rows(int n, const void *vw, const void *va, const float *da, int m,
                               float *out, size_t stride)
{
    const int nb = n / 32;
    const struct q5block *w = vw;
    const struct ablock1 *a = va;
    for (int j0 = 0; j0 < m; j0 += 8) {
        switch (m - j0 < 8 ? m - j0 : 8) {
        case 8: q5_rows(8, nb, w, a, da, j0, out, stride); break;
        case 7: q5_rows(7, nb, w, a, da, j0, out, stride); break;
        case 6: q5_rows(6, nb, w, a, da, j0, out, stride); break;
        case 5: q5_rows(5, nb, w, a, da, j0, out, stride); break;
        case 4: q5_rows(4, nb, w, a, da, j0, out, stride); break;
        case 3: q5_rows(3, nb, w, a, da, j0, out, stride); break;
        case 2: q5_rows(2, nb, w, a, da, j0, out, stride); break;
        default: q5_rows(1, nb, w, a, da, j0, out, stride); break;
        }
    }
}

/* ---- the switch between hearth's kernels and ggml's ----------------------- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static mm_fn g_ggml_gemv, g_ggml_gemm;          /* the backend's own kernels */
static mm_fn g_ref_gemv, g_ref_gemm;            /* its plain-C references */
static kernels_dot_fn g_ggml_dot8, g_ref_dot8;  /* the same for Q8_0 x Q8_0 */
static kernels_dot_fn g_ggml_dot5, g_ref_dot5;  /* and for Q5_0 x Q8_0 */
static bool g_active;                           /* hearth's Q4_0 kernels in use */
static bool g_active8;                          /* hearth's Q8_0 kernel in use */
static bool g_active5;                          /* hearth's Q5_0 kernel in use */
static bool g_rows5;                            /* and its rows kernel */
static bool g_rows8;                            /* hearth's Q8_0 rows kernel in use */

bool kernels_cpu_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("f16c") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
}

struct find_lib {
    const char *part;                /* of the loaded library's path */
    void *handle;
};

static int find_lib(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    struct find_lib *f = ud;
    if (!f->handle && info->dlpi_name && strstr(info->dlpi_name, f->part))
        f->handle = dlopen(info->dlpi_name, RTLD_NOW | RTLD_NOLOAD);
    return 0;
}

/* A handle on the loaded library whose path holds `part` (dlclose it), or NULL. */
static void *loaded_lib(const char *part)
{
    struct find_lib f = { part, NULL };
    dl_iterate_phdr(find_lib, &f);
    return f.handle;
}

void *kernels_library_symbol(const char *lib, const char *name)
{
    void *h = loaded_lib(lib);
    if (!h)
        return NULL;
    void *sym = dlsym(h, name);
    dlclose(h);                      /* drops only the reference NOLOAD took */
    return sym;
}

void *kernels_backend_symbol(const char *name)
{
    return kernels_library_symbol("libggml-cpu", name);
}

/* The loaded ggml CPU backend's own definitions of the kernels. */
static void resolve(void)
{
    void *h = loaded_lib("libggml-cpu");
    if (!h)
        return;
    /* the reference code reads ggml's fp16 table, which this fills */
    void (*cpu_init)(void) = (void (*)(void))dlsym(h, "ggml_cpu_init");
    if (cpu_init)
        cpu_init();
    g_ggml_gemv = (mm_fn)dlsym(h, "ggml_gemv_q4_0_8x8_q8_0");
    g_ggml_gemm = (mm_fn)dlsym(h, "ggml_gemm_q4_0_8x8_q8_0");
    g_ref_gemv = (mm_fn)dlsym(h, "ggml_gemv_q4_0_8x8_q8_0_generic");
    g_ref_gemm = (mm_fn)dlsym(h, "ggml_gemm_q4_0_8x8_q8_0_generic");
    g_ggml_dot8 = (kernels_dot_fn)dlsym(h, "ggml_vec_dot_q8_0_q8_0");
    g_ref_dot8 = (kernels_dot_fn)dlsym(h, "ggml_vec_dot_q8_0_q8_0_generic");
    g_ggml_dot5 = (kernels_dot_fn)dlsym(h, "ggml_vec_dot_q5_0_q8_0");
    g_ref_dot5 = (kernels_dot_fn)dlsym(h, "ggml_vec_dot_q5_0_q8_0_generic");
    dlclose(h);                      /* drops only the reference NOLOAD took */
}

/* Random data of the repacked layouts: any bytes are valid quants; scales
 * are small positive fp16 values. */
static void fill(uint8_t *p, size_t n, uint32_t *seed, size_t scale_every, size_t nscales)
{
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(*seed >> 24);
    }
    for (size_t off = 0; off + nscales * 2 <= n; off += scale_every)
        for (size_t k = 0; k < nscales; k++) {
            *seed = *seed * 1664525u + 1013904223u;
            /* fp16 in [2^-7, 2^-6): exponent 8, random mantissa */
            uint16_t h = (uint16_t)((8u << 10) | ((*seed >> 16) & 0x3FF));
            memcpy(p + off + k * 2, &h, 2);
        }
}

static bool close_enough(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float tol = 1e-4f * (fabsf(want[i]) + 1.0f);
        if (!(fabsf(got[i] - want[i]) <= tol))
            return false;
    }
    return true;
}

/* hearth's kernels against ggml's reference code on random data. */
static bool self_check(void)
{
    enum { N = 256, NB = N / 32, NC = 24, NR = 12 };
    static uint8_t w[NC / 8 * NB * sizeof(struct wblock)];
    static uint8_t a4[NR / 4 * NB * sizeof(struct ablock4)];
    static uint8_t a1[NB * sizeof(struct ablock1)];
    static float want[NR * NC], got[NR * NC];
    uint32_t seed = 12345;
    fill(w, sizeof w, &seed, sizeof(struct wblock), 8);
    fill(a4, sizeof a4, &seed, sizeof(struct ablock4), 4);
    fill(a1, sizeof a1, &seed, sizeof(struct ablock1), 1);
    /* activations are quantized to -127..127; keep -128 out as ggml does */
    for (size_t i = 0; i < sizeof a4; i++)
        if (a4[i] == 0x80)
            a4[i] = 0x81;
    for (size_t i = 0; i < sizeof a1; i++)
        if (a1[i] == 0x80)
            a1[i] = 0x81;
    g_ref_gemm(N, want, NC, w, a4, NR, NC);
    kernels_gemm_q4_0(N, got, NC, w, a4, NR, NC);
    if (!close_enough(got, want, NR * NC))
        return false;
    g_ref_gemv(N, want, NC, w, a1, 1, NC);
    kernels_gemv_q4_0(N, got, NC, w, a1, 1, NC);
    return close_enough(got, want, NC);
}

typedef void (*dot_kernel)(int n, float *s, const void *vx, const void *vy);

/* A row dot product against ggml's reference: every length from 1 to 9
 * blocks (the paths for 4, 2 and 1 block at a time), any byte values in
 * weight blocks of `wsize` bytes (fp16 scale first) and Q8_0 activations. */
static bool self_check_dot(kernels_dot_fn ref, dot_kernel ours, size_t wsize, uint32_t seed)
{
    enum { NB = 9 };
    _Static_assert(sizeof(struct q5block) <= sizeof(struct ablock1), "x holds either");
    static uint8_t x[NB * sizeof(struct ablock1)], y[NB * sizeof(struct ablock1)];
    fill(x, NB * wsize, &seed, wsize, 1);
    fill(y, sizeof y, &seed, sizeof(struct ablock1), 1);
    for (int nb = 1; nb <= NB; nb++) {
        float want, got;
        ref(nb * 32, &want, 0, x, 0, y, 0, 1);
        ours(nb * 32, &got, x, y);
        if (!close_enough(&got, &want, 1))
            return false;
    }
    return true;
}

/* Whether hearth's dot product for `type` replaces ggml's: ggml exports
 * its own and its reference, and hearth's agrees with the reference. */
static bool decide_dot(const char *type, kernels_dot_fn ggml, kernels_dot_fn ref, dot_kernel ours,
                       size_t wsize, uint32_t seed)
{
    if (!ggml || !ref) {
        log_warn("kernels: ggml's CPU backend does not export the %s dot product hearth "
                 "replaces; ggml's own stays", type);
        return false;
    }
    if (!self_check_dot(ref, ours, wsize, seed)) {
        log_warn("kernels: hearth's %s dot product disagrees with this ggml's reference "
                 "code; ggml's own stays", type);
        return false;
    }
    return true;
}

/* A plain rows kernel against its dot product row by row: the same bits,
 * for widths with and without an odd last block, rows of their own width
 * or padded apart. */
typedef void (*gemv_kernel)(int n, float *out, const void *vw, size_t row_bytes, int rows,
                            const void *va);

/* The rows kernel against the dot product row by row: the same bits when
 * `exact`, else equal to rounding. */
static bool self_check_rows(gemv_kernel gemv, dot_kernel dot, size_t wsize, uint32_t seed,
                            bool exact)
{
    enum { NB = 29, ROWS = 5, PAD = 6 };
    _Static_assert(sizeof(struct q5block) <= sizeof(struct ablock1), "w holds either");
    static uint8_t w[ROWS * (NB * sizeof(struct ablock1) + PAD)], a[NB * sizeof(struct ablock1)];
    fill(w, sizeof w, &seed, 1, 0);
    fill(a, sizeof a, &seed, sizeof(struct ablock1), 1);
    const int widths[] = { 1, 2, 3, 4, 5, 7, 8, 28, 29 };
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        for (int pad = 0; pad <= PAD; pad += PAD) {
            const int nb = widths[i];
            const size_t rb = (size_t)nb * wsize + (size_t)pad;
            for (int r = 0; r < ROWS; r++)      /* sane scales in every block */
                for (int l = 0; l < nb; l++) {
                    uint16_t h = (uint16_t)((8u << 10) | ((r * 31 + l * 7) & 0x3FF));
                    memcpy(w + (size_t)r * rb + (size_t)l * wsize, &h, 2);
                }
            float want[ROWS], got[ROWS];
            for (int r = 0; r < ROWS; r++)
                dot(nb * 32, &want[r], w + (size_t)r * rb, a);
            gemv(nb * 32, got, w, rb, ROWS, a);
            if (exact ? memcmp(want, got, sizeof want) != 0 : !close_enough(got, want, ROWS))
                return false;
        }
    return true;
}

/* L2 only on AMD family 19h (Zen 4 with AVX-512), unless the environment
 * says (kernels.h) */
static bool decide_rows_fetch(void)
{
    const char *e = getenv("HEARTH_ROWS_FETCH");
    if (e && (!strcmp(e, "l1") || !strcmp(e, "l2")))
        return e[1] == '2';
    if (e && *e)
        log_warn("kernels: HEARTH_ROWS_FETCH must be l1 or l2, not '%s'; deciding by the CPU", e);
    __builtin_cpu_init();           /* the compiler's CPU table, as worker/accel.c asks it */
    return __builtin_cpu_is("amdfam19h");
}

bool kernels_rows_fetch_l2(void)
{
    return g_rows_l2;
}

bool kernels_init(const char *mode)
{
    pthread_once(&g_once, resolve);
    g_active = g_active8 = g_active5 = g_rows5 = g_rows8 = false;
    g_rows_l2 = decide_rows_fetch();
    if (mode && strcmp(mode, "off") == 0)
        return false;
    if (!kernels_cpu_ok()) {
        log_info("kernels: this CPU lacks AVX-512 VNNI; ggml's own Q4_0, Q8_0 and Q5_0 kernels "
                 "stay");
        return false;
    }
    if (!g_ggml_gemv || !g_ggml_gemm || !g_ref_gemv || !g_ref_gemm)
        log_warn("kernels: ggml's CPU backend does not export the Q4_0 kernels hearth "
                 "replaces; ggml's own stay");
    else if (!self_check())
        log_warn("kernels: hearth's Q4_0 kernels disagree with this ggml's reference code "
                 "(its weight layout changed?); ggml's own stay");
    else
        g_active = true;
    g_active8 = decide_dot("Q8_0", g_ggml_dot8, g_ref_dot8, kernels_vec_dot_q8_0,
                           sizeof(struct ablock1), 54321);
    g_active5 = decide_dot("Q5_0", g_ggml_dot5, g_ref_dot5, kernels_vec_dot_q5_0,
                           sizeof(struct q5block), 9876);
    /* Q5_0 rows by quads (to rounding) where the CPU has them, else, or if
     * they fail, by pairs (the dot product's bits) */
    kernels_q5_0_quads(true);
    g_rows5 = g_active5 && self_check_rows(kernels_q5_0_gemv, kernels_vec_dot_q5_0,
                                           sizeof(struct q5block), 2468,
                                           kernels_q5_0_gemv_exact());
    if (g_active5 && !g_rows5 && !kernels_q5_0_gemv_exact()) {
        log_warn("kernels: hearth's Q5_0 rows by quads of blocks disagree with its dot "
                 "product; pairs of blocks instead");
        kernels_q5_0_quads(false);
        g_rows5 = self_check_rows(kernels_q5_0_gemv, kernels_vec_dot_q5_0,
                                  sizeof(struct q5block), 2468, true);
    }
    log_info("kernels: rows kernels fetch ahead into %s", g_rows_l2 ? "L2" : "L1");
    g_rows8 = g_active8 && self_check_rows(kernels_q8_0_gemv, kernels_vec_dot_q8_0,
                                           sizeof(struct ablock1), 1357, true);
    if (g_active8 && !g_rows8)
        log_warn("kernels: hearth's Q8_0 rows kernel disagrees with its dot product; rows go "
                 "one by one");
    if (g_active5 && !g_rows5)
        log_warn("kernels: hearth's Q5_0 rows kernel disagrees with its dot product; rows go "
                 "one by one");
    return g_active || g_active8 || g_active5;
}

bool kernels_q8_0_gemv_active(void)
{
    return g_rows8;
}

bool kernels_q5_0_gemv_active(void)
{
    return g_rows5;
}

bool kernels_q5_0_active(void)
{
    return g_active5;
}

bool kernels_active_for(const char *desc)
{
    return (g_active && strstr(desc, "Q4_0")) || (g_active8 && strstr(desc, "Q8_0")) ||
           (g_active5 && strstr(desc, "Q5_0"));
}

void kernels_ggml_dot8(kernels_dot_fn out[2])
{
    pthread_once(&g_once, resolve);
    out[0] = g_ggml_dot8;
    out[1] = g_ref_dot8;
}

void kernels_ggml(kernels_fn out[4])
{
    pthread_once(&g_once, resolve);
    out[0] = g_ggml_gemv;
    out[1] = g_ggml_gemm;
    out[2] = g_ref_gemv;
    out[3] = g_ref_gemm;
}

bool kernels_active(void)
{
    return g_active || g_active8 || g_active5;
}

void kernels_ggml_dot5(kernels_dot_fn out[2])
{
    pthread_once(&g_once, resolve);
    out[0] = g_ggml_dot5;
    out[1] = g_ref_dot5;
}

void ggml_vec_dot_q5_0_q8_0(int n, float *s, size_t bs, const void *vx, size_t bx,
                            const void *vy, size_t by, int nrc)
{
    if (g_active5 && nrc == 1) {
        kernels_vec_dot_q5_0(n, s, vx, vy);
        return;
    }
    pthread_once(&g_once, resolve);
    if (!g_ggml_dot5)
        abort();
    g_ggml_dot5(n, s, bs, vx, bx, vy, by, nrc);
}

void ggml_gemv_q4_0_8x8_q8_0(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                             int nc)
{
    if (g_active && n / 32 <= MAX_BLOCKS) {
        kernels_gemv_q4_0(n, s, bs, vx, vy, nr, nc);
        return;
    }
    pthread_once(&g_once, resolve);
    if (!g_ggml_gemv)
        abort();                     /* called from a ggml we never found */
    g_ggml_gemv(n, s, bs, vx, vy, nr, nc);
}

void ggml_gemm_q4_0_8x8_q8_0(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                             int nc)
{
    if (g_active && n / 32 <= MAX_BLOCKS) {
        kernels_gemm_q4_0(n, s, bs, vx, vy, nr, nc);
        return;
    }
    pthread_once(&g_once, resolve);
    if (!g_ggml_gemm)
        abort();
    g_ggml_gemm(n, s, bs, vx, vy, nr, nc);
}

/* ggml calls this per weight row and activation row (nrc 1 on x86; more
 * only on CPUs with int8 matrix instructions, which go to ggml's). */
void ggml_vec_dot_q8_0_q8_0(int n, float *s, size_t bs, const void *vx, size_t bx,
                            const void *vy, size_t by, int nrc)
{
    if (g_active8 && nrc == 1) {
        kernels_vec_dot_q8_0(n, s, vx, vy);
        return;
    }
    pthread_once(&g_once, resolve);
    if (!g_ggml_dot8)
        abort();
    g_ggml_dot8(n, s, bs, vx, bx, vy, by, nrc);
}
