/*
 * kgemm.c: prompts against plain Q5_K and Q6_K matrices in register tiles
 * (see kgemm.h).
 *
 * A tile is 32 weight rows of one superblock, unpacked into u[s][h]: 64
 * bytes holding, for the 16 rows of half h, the 4 quants 4s..4s+3 (row by
 * row, 4 bytes each; Q5_K's 0..31, Q6_K's 0..63, unsigned). One broadcast
 * dword of an activation row (its 4 quants at the same place) meets both
 * halves in two vpdpbusd. After the steps of one scale (8 for Q5_K's
 * 32-element sub-blocks, 4 for Q6_K's 16) each int32 lane is multiplied
 * by that scale (vpmulld) and added to the superblock's integer sum S.
 * The activation's 16-element sums, as pairs of int16, meet pairs of
 * per-row factors in vpdpwssd, giving M: Q5_K's mins (each twice, for the
 * two halves of its sub-block), Q6_K's scales (its quants are stored
 * +32, so the superblock is d * (S - 32 M), exact in integers:
 * |S| < 2^29, |32 M| < 2^28). Q3_K goes as Q6_K: its quants stored +4
 * (0..7: two low bits and the third from hmask), its scales less 32, the
 * superblock d * (S - 4 M). IQ4_XS goes as Q5_K's 32-element sub-blocks,
 * its looked-up values stored +128 and d * (S - 128 M) (S - 128 M is
 * exact in integers and rounded once, converted to float).
 */
#include "engine/kgemm.h"

#include "engine/kblocks.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#define KTARGET \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))

/* activation rows per register tile */
#define COLS 6

/* 32 rows of one superblock, unpacked */
struct tile {
    _Alignas(64) uint8_t u[64][2][64];
    int32_t sc[16][32];  /* scale j of each row (Q5_K: 8 of 32 elements) */
    int32_t pr[8][32];   /* int16 pairs meeting the activation's sum pair p */
    _Alignas(64) float d[32], dmin[32];
};

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* the prepared activation: quants [sb][row][256], then scales [sb][row],
 * then its 16 sums of 16 quants [sb][row][16] (int16, read as 8 pairs) */
struct act {
    int8_t *qs;
    float *da;
    int32_t *bp;
};

/* (nothing in it is loaded with alignment: quants by memcpy, scales and
 * sums broadcast one at a time) */
static struct act act_at(const void *p, int k, int m)
{
    const size_t n = (size_t)(k / 256) * (size_t)m;
    char *base = (char *)p;
    struct act a = { (int8_t *)base, (float *)(base + n * 256),
                     (int32_t *)(base + n * 256 + n * sizeof(float)) };
    return a;
}

size_t kgemm_act_bytes(int k, int m)
{
    /* 292 bytes per row and superblock: a block_q8_K's size, so ggml's
     * plan for converting the rows to Q8_K always leaves room */
    return (size_t)(k / 256) * (size_t)m * (256 + sizeof(float) + 8 * sizeof(int32_t));
}

void kgemm_act_put(void *p, int k, int m, int j, const void *q8k_row)
{
    const struct act a = act_at(p, k, m);
    const struct q8k *x = q8k_row;
    for (int sb = 0; sb < k / 256; sb++) {
        const size_t at = (size_t)sb * (size_t)m + (size_t)j;
        memcpy(a.qs + at * 256, x[sb].qs, 256);
        a.da[at] = x[sb].d;
        memcpy(a.bp + at * 8, x[sb].bsums, 32);
    }
}

_Static_assert(((sizeof(struct tile) + 63) & ~(size_t)63) + KGEMM_BLOCK_ROWS * 32 * sizeof(float) <=
                   KGEMM_SCRATCH_BYTES,
               "kgemm.h's scratch size");

static int32_t pair16(int lo, int hi)
{
    return (int32_t)((uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16);
}

/* Rows [0, nr) of the tile from superblock sb of the Q5_K rows at w. */
KTARGET static void unpack_q5_K(struct tile *t, const char *w, size_t row_bytes, int sb, int nr)
{
    if (nr < 32)
        memset(t, 0, sizeof *t);
    const __m256i m0f = _mm256_set1_epi8(0x0F), m01 = _mm256_set1_epi8(0x01);
    const __m256i step = _mm256_setr_epi32(0, 128, 256, 384, 512, 640, 768, 896);
    for (int r = 0; r < nr; r++) {
        const struct q5k *b = (const struct q5k *)(w + (size_t)r * row_bytes) + sb;
        t->d[r] = _cvtsh_ss(b->d);
        t->dmin[r] = _cvtsh_ss(b->dmin);
        const uint8_t *s = b->scales;
        int sc[8], mn[8];
        for (int j = 0; j < 4; j++) {
            sc[j] = s[j] & 63;
            mn[j] = s[j + 4] & 63;
            sc[j + 4] = (s[j + 8] & 0xF) | ((s[j] >> 6) << 4);
            mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
        }
        for (int j = 0; j < 8; j++) {
            t->sc[j][r] = sc[j];
            t->pr[j][r] = pair16(mn[j], mn[j]);   /* both 16-element halves */
        }
        const int h = r / 16, rr = r % 16;
        const __m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
        for (int p = 0; p < 4; p++) {
            const __m256i ql = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * p));
            /* bit 2p (2p+1) of each qh byte is the fifth bit of the low
             * (high) nibble's quant; 16-bit shifts, then one bit per byte */
            const __m256i ba = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * p)), m01);
            const __m256i bb =
                _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * p + 1)), m01);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(ql, m0f), _mm256_slli_epi16(ba, 4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql, 4), m0f),
                                               _mm256_slli_epi16(bb, 4));
            _mm256_i32scatter_epi32(&t->u[8 * (2 * p)][h][rr * 4], step, lo, 1);
            _mm256_i32scatter_epi32(&t->u[8 * (2 * p + 1)][h][rr * 4], step, hi, 1);
        }
    }
}

/* The same for Q6_K rows: 128 elements from 64 bytes of low bits and 32
 * of high bits, in four runs of 32 (ggml's order). */
KTARGET static void unpack_q6_K(struct tile *t, const char *w, size_t row_bytes, int sb, int nr)
{
    if (nr < 32)
        memset(t, 0, sizeof *t);
    const __m256i m0f = _mm256_set1_epi8(0x0F), m03 = _mm256_set1_epi8(0x03);
    const __m256i step = _mm256_setr_epi32(0, 128, 256, 384, 512, 640, 768, 896);
    for (int r = 0; r < nr; r++) {
        const struct q6k *b = (const struct q6k *)(w + (size_t)r * row_bytes) + sb;
        t->d[r] = _cvtsh_ss(b->d);
        for (int j = 0; j < 16; j++)
            t->sc[j][r] = b->scales[j];
        for (int p = 0; p < 8; p++)
            t->pr[p][r] = pair16(b->scales[2 * p], b->scales[2 * p + 1]);
        const int h = r / 16, rr = r % 16;
        for (int n = 0; n < 2; n++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * n));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * n + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * n));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m0f),
                                   _mm256_slli_epi16(_mm256_and_si256(qh, m03), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m0f),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m03), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m0f),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m03), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m0f),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m03), 4));
            for (int i = 0; i < 4; i++)
                _mm256_i32scatter_epi32(&t->u[32 * n + 8 * i][h][rr * 4], step, q[i], 1);
        }
    }
}

/* The same for Q3_K rows: in each half of 128 elements, run j of 32 takes
 * bits 2j..2j+1 of the half's 32 low-bit bytes and bit 4h + j of the 32
 * hmask bytes (ggml's order); the 16 scales are 6 bits, packed in 12
 * bytes (low 4 bits in bytes 0-7, high 2 bits in bytes 8-11), less 32. */
KTARGET static void unpack_q3_K(struct tile *t, const char *w, size_t row_bytes, int sb, int nr)
{
    if (nr < 32)
        memset(t, 0, sizeof *t);
    const __m256i m03 = _mm256_set1_epi8(0x03), m01 = _mm256_set1_epi8(0x01);
    const __m256i step = _mm256_setr_epi32(0, 128, 256, 384, 512, 640, 768, 896);
    for (int r = 0; r < nr; r++) {
        const struct q3k *b = (const struct q3k *)(w + (size_t)r * row_bytes) + sb;
        t->d[r] = _cvtsh_ss(b->d);
        int sc[16];
        for (int j = 0; j < 16; j++) {
            const int lo = j < 8 ? b->scales[j] & 0xF : b->scales[j - 8] >> 4;
            const int hi = (b->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            sc[j] = (lo | hi << 4) - 32;
        }
        for (int j = 0; j < 16; j++)
            t->sc[j][r] = sc[j];
        for (int p = 0; p < 8; p++)
            t->pr[p][r] = pair16(sc[2 * p], sc[2 * p + 1]);
        const int h = r / 16, rr = r % 16;
        const __m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
        for (int n = 0; n < 2; n++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * n));
            for (int j = 0; j < 4; j++) {
                const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), m03);
                const __m256i hb =
                    _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * n + j)), m01);
                const __m256i u = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
                _mm256_i32scatter_epi32(&t->u[32 * n + 8 * j][h][rr * 4], step, u, 1);
            }
        }
    }
}

/* The same for IQ4_XS rows: each 4-bit index stands for one of the 16
 * IQ4_NL values (the format's table), stored +128 (0..255, vpdpbusd's
 * unsigned side); sub-block i's 16 bytes hold its first 16 elements in
 * their low nibbles and the rest in the high ones; the 8 sub-block scales
 * are 6 bits (4 in scales_l, 2 in scales_h) less 32. */
KTARGET static void unpack_iq4_xs(struct tile *t, const char *w, size_t row_bytes, int sb, int nr)
{
    if (nr < 32)
        memset(t, 0, sizeof *t);
    uint8_t t16[16];
    for (int i = 0; i < 16; i++)
        t16[i] = (uint8_t)(kblocks_iq4_values[i] + 128);
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t16));
    const __m128i m0f = _mm_set1_epi8(0x0F);
    const __m256i step = _mm256_setr_epi32(0, 128, 256, 384, 512, 640, 768, 896);
    for (int r = 0; r < nr; r++) {
        const struct iq4xs *b = (const struct iq4xs *)(w + (size_t)r * row_bytes) + sb;
        t->d[r] = _cvtsh_ss(b->d);
        for (int j = 0; j < 8; j++) {
            const int sc = (((b->scales_l[j / 2] >> (4 * (j % 2))) & 0xF) |
                            (((b->scales_h >> (2 * j)) & 3) << 4)) - 32;
            t->sc[j][r] = sc;
            t->pr[j][r] = pair16(sc, sc);   /* both 16-element halves */
        }
        const int h = r / 16, rr = r % 16;
        for (int j = 0; j < 8; j++) {
            const __m128i q = _mm_loadu_si128((const __m128i *)(b->qs + 16 * j));
            const __m256i idx = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m0f),
                                                 _mm_and_si128(q, m0f));
            _mm256_i32scatter_epi32(&t->u[8 * j][h][rr * 4], step, _mm256_shuffle_epi8(tab, idx), 1);
        }
    }
}

/* d*S - dmin*M for the 16 rows from r0. With unsigned quants against an
 * activation with a mean both terms run to ~10^3 times the difference,
 * which a plain float subtraction would lose ~1e-4 of. So the min term is
 * split into its rounded product p and the exact remainder e (one fma;
 * |M| < 2^21 converts exactly), and d*S - p is rounded once, near the
 * result's own size: the difference is good to a few units of the
 * result's last place whenever |S| < 2^24, as it is but for extreme
 * blocks (|S| < 2^26 always). */
KTARGET static inline __m512 combine(const struct tile *t, int r0, __m512i s, __m512i m)
{
    const __m512 d = _mm512_load_ps(t->d + r0), dm = _mm512_load_ps(t->dmin + r0);
    const __m512 mf = _mm512_cvtepi32_ps(m);
    const __m512 p = _mm512_mul_ps(dm, mf);
    const __m512 e = _mm512_fmsub_ps(dm, mf, p);
    return _mm512_sub_ps(_mm512_fmsub_ps(d, _mm512_cvtepi32_ps(s), p), e);
}

/* d*(S - 2^SHIFT M) for Q6_K's (SHIFT 5) or Q3_K's (SHIFT 2) 16 rows
 * from r0: the difference exact in integers, then converted (exact below
 * 2^24) and multiplied. */
KTARGET static inline __m512 combine_off(const struct tile *t, int r0, __m512i s, __m512i m,
                                         const int SHIFT)
{
    return _mm512_mul_ps(_mm512_load_ps(t->d + r0),
                         _mm512_cvtepi32_ps(_mm512_sub_epi32(s, _mm512_slli_epi32(m, SHIFT))));
}

/* C activation rows (quants at aq, 256 bytes apart; scales da; sum pairs
 * bp, 8 apart) against the tile, added to acc (32 floats per row). STEPS
 * of 4 quants share a scale: 8 (Q5_K) or 4 (Q6_K, Q3_K). OFF: the offset
 * the quants are stored with, as a shift (5: Q6_K's 32, 2: Q3_K's 4), or
 * 0 for Q5_K's mins. */
KTARGET static inline __attribute__((always_inline)) void
cols(const struct tile *t, const int8_t *aq, const float *da, const int32_t *bp, float *acc,
     const int C, const int STEPS, const int OFF)
{
    __m512i i0[COLS], i1[COLS];
#pragma GCC unroll 6
    for (int c = 0; c < C; c++)
        i0[c] = i1[c] = _mm512_setzero_si512();
    for (int j = 0; j < 64 / STEPS; j++) {
        __m512i s0[COLS], s1[COLS];
#pragma GCC unroll 6
        for (int c = 0; c < C; c++)
            s0[c] = s1[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int g = 0; g < STEPS; g++) {
            const int st = j * STEPS + g;
            const __m512i w0 = _mm512_load_si512(t->u[st][0]);
            const __m512i w1 = _mm512_load_si512(t->u[st][1]);
#pragma GCC unroll 6
            for (int c = 0; c < C; c++) {
                int32_t v;
                memcpy(&v, aq + (size_t)c * 256 + 4 * st, 4);
                const __m512i a = _mm512_set1_epi32(v);
                s0[c] = _mm512_dpbusd_epi32(s0[c], w0, a);
                s1[c] = _mm512_dpbusd_epi32(s1[c], w1, a);
            }
        }
        const __m512i sc0 = _mm512_loadu_si512(t->sc[j]), sc1 = _mm512_loadu_si512(t->sc[j] + 16);
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) {
            i0[c] = _mm512_add_epi32(i0[c], _mm512_mullo_epi32(s0[c], sc0));
            i1[c] = _mm512_add_epi32(i1[c], _mm512_mullo_epi32(s1[c], sc1));
        }
    }
    __m512i n0[COLS], n1[COLS];
#pragma GCC unroll 6
    for (int c = 0; c < C; c++)
        n0[c] = n1[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {
        const __m512i m0 = _mm512_loadu_si512(t->pr[p]), m1 = _mm512_loadu_si512(t->pr[p] + 16);
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) {
            const __m512i b = _mm512_set1_epi32(bp[8 * c + p]);
            n0[c] = _mm512_dpwssd_epi32(n0[c], m0, b);
            n1[c] = _mm512_dpwssd_epi32(n1[c], m1, b);
        }
    }
#pragma GCC unroll 6
    for (int c = 0; c < C; c++) {
        const __m512 a = _mm512_set1_ps(da[c]);
        const __m512 r0 = OFF ? combine_off(t, 0, i0[c], n0[c], OFF) : combine(t, 0, i0[c], n0[c]);
        const __m512 r1 = OFF ? combine_off(t, 16, i1[c], n1[c], OFF) : combine(t, 16, i1[c], n1[c]);
        float *o = acc + 32 * c;
        _mm512_store_ps(o, _mm512_fmadd_ps(r0, a, _mm512_load_ps(o)));
        _mm512_store_ps(o + 16, _mm512_fmadd_ps(r1, a, _mm512_load_ps(o + 16)));
    }
}

/* Runs CALL(c, C) over activation rows [0, mb): register tiles of COLS,
 * then the rest as one tile of 1 to 5 (C a constant in each call, so the
 * accumulators stay in registers). */
#define BY_COLS(mb, CALL)                                                      \
    do {                                                                       \
        int c_ = 0;                                                            \
        for (; c_ + COLS <= (mb); c_ += COLS)                                  \
            CALL(c_, COLS);                                                    \
        switch ((mb) - c_) {                                                   \
        case 5: CALL(c_, 5); break;                                            \
        case 4: CALL(c_, 4); break;                                            \
        case 3: CALL(c_, 3); break;                                            \
        case 2: CALL(c_, 2); break;                                            \
        case 1: CALL(c_, 1); break;                                            \
        default: break;                                                        \
        }                                                                      \
    } while (0)

/* Activation rows [0, mb) of a (laid out for m rows) against one tile of
 * one superblock. */
KTARGET static inline __attribute__((always_inline)) void
tile_rows(const struct tile *t, const struct act *a, int sb, int m, int mb, float *acc,
          const int STEPS, const int OFF)
{
    const size_t at = (size_t)sb * (size_t)m;
    const int8_t *aq = a->qs + at * 256;
    const float *da = a->da + at;
    const int32_t *bp = a->bp + at * 8;
#define KCOLS(c, C) \
    cols(t, aq + (size_t)(c) * 256, da + (c), bp + 8 * (c), acc + 32 * (c), C, STEPS, OFF)
    BY_COLS(mb, KCOLS);
#undef KCOLS
}

/* One per tile kind, with its constants: 4-quant steps per scale, and the
 * offset's shift (0: Q5_K's mins). */
#define TILE_ROWS(name, STEPS, OFF)                                                          \
    KTARGET static void name(const struct tile *t, const struct act *a, int sb, int m, int mb, \
                             float *acc)                                                     \
    {                                                                                        \
        tile_rows(t, a, sb, m, mb, acc, STEPS, OFF);                                         \
    }
TILE_ROWS(q5_rows, 8, 0)
TILE_ROWS(q6_rows, 4, 5)
TILE_ROWS(q3_rows, 4, 2)
TILE_ROWS(iq4_rows, 8, 7)
#undef TILE_ROWS

/* ---- Q8_0 ------------------------------------------------------------ */

struct q80 {        /* ggml's block_q8_0 */
    uint16_t d;
    int8_t qs[32];
};
_Static_assert(sizeof(struct q80) == 34, "ggml's block_q8_0");

/* 32 rows of one 32-element block: the weights as stored (signed; the
 * activation's quants meet them 128 higher, as vpdpbusd's unsigned side),
 * 128 times each row's sum of quants to take that back, and the scales. */
struct tile8 {
    _Alignas(64) int8_t u[8][2][64];
    _Alignas(64) int32_t w128[32];
    _Alignas(64) float d[32];
};

/* blocks unpacked per pass over the activation rows (kgemm.h's scratch:
 * Q8_CHUNK tiles of 1280 bytes, then the accumulators) */
#define Q8_CHUNK 128

_Static_assert(Q8_CHUNK * sizeof(struct tile8) + KGEMM_BLOCK_ROWS * 32 * sizeof(float) <=
                   KGEMM_SCRATCH_BYTES,
               "kgemm.h's scratch size");

/* the prepared activation: quants + 128 [block][row][32], then the
 * scales as fp16 [block][row]: 34 bytes per row and block, a block_q8_0's */
size_t kgemm_q8_0_act_bytes(int k, int m)
{
    return (size_t)(k / 32) * (size_t)m * sizeof(struct q80);
}

void kgemm_q8_0_act_put(void *p, int k, int m, int j, const void *q8_0_row)
{
    const int nb = k / 32;
    uint8_t *qs = p;
    uint16_t *dh = (uint16_t *)(qs + (size_t)nb * (size_t)m * 32);
    const struct q80 *x = q8_0_row;
    for (int b = 0; b < nb; b++) {
        const size_t at = (size_t)b * (size_t)m + (size_t)j;
        for (int i = 0; i < 32; i++)
            qs[at * 32 + i] = (uint8_t)(x[b].qs[i] ^ 0x80);    /* + 128 */
        dh[at] = x[b].d;
    }
}

struct q50 {        /* ggml's block_q5_0 */
    uint16_t d;
    uint8_t qh[4];      /* bit i: the fifth bit of element i */
    uint8_t qs[16];     /* elements i and i+16 in the low and high nibble */
};
_Static_assert(sizeof(struct q50) == 22, "ggml's block_q5_0");

/* Blocks [b0, b0 + n) of the Q8_0 (or, with q5, Q5_0) rows [0, nr) at w
 * (row_bytes apart) into tiles, per half of 16 rows (rows past nr masked
 * off, a half with none zeroed without a gather). Q8_0: one gather of a
 * dword of every row per 4 quants. Q5_0: one gather of the fifth bits and
 * four of the nibbles, each quant becoming the signed byte q - 16 (the
 * format's value; the four bits of a step go to their bytes' bit 4 by one
 * multiply), so the tiles are those of Q8_0. Both formats start with the
 * fp16 scale. */
KTARGET static void unpack8(bool q5, struct tile8 *t, const char *w, size_t row_bytes, int b0,
                            int n, int nr)
{
    const size_t block = q5 ? sizeof(struct q50) : sizeof(struct q80);
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                               12, 13, 14, 15),
                                            _mm512_set1_epi32((int)row_bytes));
    const __m512i z = _mm512_setzero_si512(), ones = _mm512_set1_epi8(1);
    const __m512i m0f = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(16);
    for (int i = 0; i < n; i++) {
        struct tile8 *ti = t + i;
        for (int h = 0; h < 2; h++) {
            const int left = nr - 16 * h;
            if (left <= 0) {
                for (int g = 0; g < 8; g++)
                    memset(ti->u[g][h], 0, 64);
                memset(ti->w128 + 16 * h, 0, 16 * sizeof(int32_t));
                memset(ti->d + 16 * h, 0, 16 * sizeof(float));
                continue;
            }
            const __mmask16 live = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
            const char *base = w + (size_t)(16 * h) * row_bytes + (size_t)(b0 + i) * block;
            __m512i qh = z, qs[4] = { z, z, z, z };
            if (q5) {
                qh = _mm512_mask_i32gather_epi32(z, live, rows, base + 2, 1);
                for (int k = 0; k < 4; k++)
                    qs[k] = _mm512_mask_i32gather_epi32(z, live, rows, base + 6 + 4 * k, 1);
            }
            __m512i sum = z;
            for (int g = 0; g < 8; g++) {
                __m512i q;
                if (q5) {
                    const __m512i nib = g < 4 ? _mm512_and_si512(qs[g], m0f)
                                              : _mm512_and_si512(_mm512_srli_epi32(qs[g - 4], 4), m0f);
                    const __m512i b =
                        _mm512_and_si512(_mm512_srli_epi32(qh, 4 * g), _mm512_set1_epi32(0xF));
                    const __m512i spread = _mm512_slli_epi32(
                        _mm512_and_si512(_mm512_mullo_epi32(b, _mm512_set1_epi32(0x00204081)),
                                         _mm512_set1_epi32(0x01010101)),
                        4);
                    q = _mm512_sub_epi8(_mm512_or_si512(nib, spread), sixteen);
                } else {
                    q = _mm512_mask_i32gather_epi32(z, live, rows, base + 2 + 4 * g, 1);
                }
                _mm512_store_si512(ti->u[g][h], q);
                sum = _mm512_dpbusd_epi32(sum, ones, q);     /* each row's quants added */
            }
            _mm512_store_si512(ti->w128 + 16 * h, _mm512_slli_epi32(sum, 7));
            const __m512i dw = _mm512_mask_i32gather_epi32(z, live, rows, base, 1);
            _mm512_store_ps(ti->d + 16 * h, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dw)));
        }
    }
}

/* C activation rows (from column c0 of the layout for m rows) against n
 * unpacked blocks from block b0, added to acc (32 floats per row). */
KTARGET static inline __attribute__((always_inline)) void
cols8(const struct tile8 *t, const uint8_t *qs, const uint16_t *dh, int m, int c0, int b0, int n,
      float *acc, const int C)
{
    __m512 f0[COLS], f1[COLS];
#pragma GCC unroll 6
    for (int c = 0; c < C; c++) {
        f0[c] = _mm512_load_ps(acc + 32 * c);
        f1[c] = _mm512_load_ps(acc + 32 * c + 16);
    }
    for (int i = 0; i < n; i++) {
        const struct tile8 *ti = t + i;
        const size_t at = (size_t)(b0 + i) * (size_t)m + (size_t)c0;
        const uint8_t *aq = qs + at * 32;
        __m512i s0[COLS], s1[COLS];
#pragma GCC unroll 6
        for (int c = 0; c < C; c++)
            s0[c] = s1[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m512i w0 = _mm512_load_si512(ti->u[g][0]);
            const __m512i w1 = _mm512_load_si512(ti->u[g][1]);
#pragma GCC unroll 6
            for (int c = 0; c < C; c++) {
                int32_t v;
                memcpy(&v, aq + (size_t)c * 32 + 4 * g, 4);
                const __m512i a = _mm512_set1_epi32(v);
                s0[c] = _mm512_dpbusd_epi32(s0[c], a, w0);
                s1[c] = _mm512_dpbusd_epi32(s1[c], a, w1);
            }
        }
        const __m512i k0 = _mm512_load_si512(ti->w128), k1 = _mm512_load_si512(ti->w128 + 16);
        const __m512 d0 = _mm512_load_ps(ti->d), d1 = _mm512_load_ps(ti->d + 16);
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) {
            const __m512 da = _mm512_set1_ps(_cvtsh_ss(dh[at + (size_t)c]));
            /* the exact integer sum, then both scales */
            f0[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s0[c], k0)),
                                    _mm512_mul_ps(d0, da), f0[c]);
            f1[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s1[c], k1)),
                                    _mm512_mul_ps(d1, da), f1[c]);
        }
    }
#pragma GCC unroll 6
    for (int c = 0; c < C; c++) {
        _mm512_store_ps(acc + 32 * c, f0[c]);
        _mm512_store_ps(acc + 32 * c + 16, f1[c]);
    }
}

typedef void (*unpack_fn)(struct tile *, const char *, size_t, int, int);
typedef void (*rows_fn)(const struct tile *, const struct act *, int, int, int, float *);

/* the superblock kinds' unpacking and tile rows (enum kgemm_type order) */
static const struct {
    unpack_fn unpack;
    rows_fn rows;
} k_super[] = {
    [KGEMM_Q5_K] = { unpack_q5_K, q5_rows },
    [KGEMM_Q6_K] = { unpack_q6_K, q6_rows },
    [KGEMM_Q3_K] = { unpack_q3_K, q3_rows },
    [KGEMM_IQ4_XS] = { unpack_iq4_xs, iq4_rows },
};

/* One pass over a tile of nr weight rows at `rows`: units [u0, u0 + n) of
 * their width unpacked (superblocks, one at a time; or blocks, Q8_CHUNK at
 * a time), then activation rows [j0, j0 + mb) added into acc. */
KTARGET static void pass(enum kgemm_type type, int k, size_t row_bytes, const void *actp, int m,
                         void *scratch, const char *rows, int nr, int u0, int n, int j0, int mb,
                         float *acc)
{
    if (!kgemm_q8_0_rows(type)) {
        struct tile *t = scratch;
        const struct act a = act_at(actp, k, m);
        /* activation rows [j0, j0 + mb): the same layout, offset */
        const struct act b = { a.qs + (size_t)j0 * 256, a.da + j0, a.bp + (size_t)j0 * 8 };
        k_super[type].unpack(t, rows, row_bytes, u0, nr);
        k_super[type].rows(t, &b, u0, m, mb, acc);
        return;
    }
    struct tile8 *t = scratch;
    const uint8_t *qs = actp;
    const uint16_t *dh = (const uint16_t *)(qs + (size_t)(k / 32) * (size_t)m * 32);
    unpack8(type == KGEMM_Q5_0, t, rows, row_bytes, u0, n, nr);
#define QCOLS(c, C) cols8(t, qs, dh, m, j0 + (c), u0, n, acc + 32 * (c), C)
    BY_COLS(mb, QCOLS);
#undef QCOLS
}

/* Weight rows [r0, r1) against all m activation rows: per KGEMM_BLOCK_ROWS
 * activation rows, per tile of 32 weight rows, the passes over the width
 * add into the accumulators, which then go out. */
void kgemm(enum kgemm_type type, int k, const void *w, size_t row_bytes, int64_t r0, int64_t r1,
           const void *act, int m, float *out, size_t ostride, void *scratch)
{
    const bool kq = !kgemm_q8_0_rows(type);
    const int units = kq ? k / 256 : k / 32, per = kq ? 1 : Q8_CHUNK;
    float *acc = (float *)((char *)scratch + (kq ? align64(sizeof(struct tile))
                                                 : Q8_CHUNK * sizeof(struct tile8)));
    for (int j0 = 0; j0 < m; j0 += KGEMM_BLOCK_ROWS) {
        const int mb = m - j0 < KGEMM_BLOCK_ROWS ? m - j0 : KGEMM_BLOCK_ROWS;
        for (int64_t base = r0; base < r1; base += 32) {
            const int nr = r1 - base < 32 ? (int)(r1 - base) : 32;
            const char *rows = (const char *)w + (size_t)base * row_bytes;
            memset(acc, 0, sizeof(float) * 32 * (size_t)mb);
            for (int u0 = 0; u0 < units; u0 += per)
                pass(type, k, row_bytes, act, m, scratch, rows, nr, u0,
                     units - u0 < per ? units - u0 : per, j0, mb, acc);
            for (int j = 0; j < mb; j++)
                memcpy(out + (size_t)(j0 + j) * ostride + base, acc + 32 * (size_t)j,
                       sizeof(float) * (size_t)nr);
        }
    }
}
