/*
 * kgemm.c: prompts against plain Q5_K matrices in register tiles (see
 * kgemm.h).
 *
 * A tile is 32 weight rows of one superblock, unpacked into u[j][g][h]:
 * 64 bytes holding, for the 16 rows of half h, the 4 quants 4g..4g+3 of
 * sub-block j (row by row, 4 bytes each). One broadcast dword of an
 * activation row (its 4 quants at the same place) meets both halves in two
 * vpdpbusd. After the 8 steps of a sub-block each int32 lane holds a sum
 * of 32 products (|x| <= 32 * 31 * 128); times the 6-bit scale it is added
 * to the superblock's integer sum S (|S| < 2^26). The mins meet the
 * activation's sub-block sums (pairs of int16) in vpdpwssd, giving M.
 */
#include "engine/kgemm.h"

#include <immintrin.h>
#include <string.h>

#define KTARGET \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))

/* activation rows per register tile */
#define COLS 6

struct q5k {        /* ggml's block_q5_K */
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
};
struct q8k {        /* ggml's block_q8_K */
    float d;
    int8_t qs[256];
    int16_t bsums[16];
};
_Static_assert(sizeof(struct q5k) == 176, "ggml's block_q5_K");
_Static_assert(sizeof(struct q8k) == 292, "ggml's block_q8_K");

/* 32 rows of one superblock, unpacked */
struct tile {
    _Alignas(64) uint8_t u[8][8][2][64];
    int32_t sc[8][32];   /* sub-block j's scale of each row */
    int32_t mn[4][32];   /* mins of sub-blocks 2p and 2p+1, as two int16s */
    _Alignas(64) float d[32], dmin[32];
};

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* the prepared activation: quants [sb][row][256], then scales [sb][row],
 * then sub-block sum pairs [sb][row][4] */
struct act {
    int8_t *qs;
    float *da;
    int32_t *bp;
};

static struct act act_at(const void *p, int k, int m)
{
    const size_t n = (size_t)(k / 256) * (size_t)m;
    char *base = (char *)p;
    struct act a = { (int8_t *)base, (float *)(base + n * 256),
                     (int32_t *)(base + n * 256 + align64(n * sizeof(float))) };
    return a;
}

size_t kgemm_act_bytes(int k, int m)
{
    const size_t n = (size_t)(k / 256) * (size_t)m;
    return n * 256 + align64(n * sizeof(float)) + align64(n * 4 * sizeof(int32_t));
}

void kgemm_act_put(void *p, int k, int m, int j, const void *q8k_row)
{
    const struct act a = act_at(p, k, m);
    const struct q8k *x = q8k_row;
    for (int sb = 0; sb < k / 256; sb++) {
        const size_t at = (size_t)sb * (size_t)m + (size_t)j;
        memcpy(a.qs + at * 256, x[sb].qs, 256);
        a.da[at] = x[sb].d;
        for (int q = 0; q < 4; q++) {
            const int lo = x[sb].bsums[4 * q] + x[sb].bsums[4 * q + 1];
            const int hi = x[sb].bsums[4 * q + 2] + x[sb].bsums[4 * q + 3];
            a.bp[at * 4 + q] = (int32_t)((uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16);
        }
    }
}

size_t kgemm_scratch_bytes(int m)
{
    return align64(sizeof(struct tile)) + (size_t)m * 32 * sizeof(float);
}

/* Rows [0, nr) of the tile from superblock sb of the rows at w. */
KTARGET static void unpack(struct tile *t, const char *w, size_t row_bytes, int sb, int nr)
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
        for (int j = 0; j < 8; j++)
            t->sc[j][r] = sc[j];
        for (int p = 0; p < 4; p++)
            t->mn[p][r] = (int32_t)((uint32_t)mn[2 * p] | (uint32_t)mn[2 * p + 1] << 16);
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
            _mm256_i32scatter_epi32(&t->u[2 * p][0][h][rr * 4], step, lo, 1);
            _mm256_i32scatter_epi32(&t->u[2 * p + 1][0][h][rr * 4], step, hi, 1);
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

/* C activation rows (quants at aq, 256 bytes apart; scales da; sum pairs
 * bp, 4 apart) against the tile, added to acc (32 floats per row). */
KTARGET static inline __attribute__((always_inline)) void
cols(const struct tile *t, const int8_t *aq, const float *da, const int32_t *bp, float *acc,
     const int C)
{
    __m512i i0[COLS], i1[COLS];
#pragma GCC unroll 6
    for (int c = 0; c < C; c++)
        i0[c] = i1[c] = _mm512_setzero_si512();
#pragma GCC unroll 1
    for (int j = 0; j < 8; j++) {
        __m512i s0[COLS], s1[COLS];
#pragma GCC unroll 6
        for (int c = 0; c < C; c++)
            s0[c] = s1[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m512i w0 = _mm512_load_si512(t->u[j][g][0]);
            const __m512i w1 = _mm512_load_si512(t->u[j][g][1]);
#pragma GCC unroll 6
            for (int c = 0; c < C; c++) {
                int32_t v;
                memcpy(&v, aq + (size_t)c * 256 + 32 * j + 4 * g, 4);
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
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++) {
        const __m512i m0 = _mm512_loadu_si512(t->mn[p]), m1 = _mm512_loadu_si512(t->mn[p] + 16);
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) {
            const __m512i b = _mm512_set1_epi32(bp[4 * c + p]);
            n0[c] = _mm512_dpwssd_epi32(n0[c], m0, b);
            n1[c] = _mm512_dpwssd_epi32(n1[c], m1, b);
        }
    }
#pragma GCC unroll 6
    for (int c = 0; c < C; c++) {
        const __m512 a = _mm512_set1_ps(da[c]);
        float *o = acc + 32 * c;
        _mm512_store_ps(o, _mm512_fmadd_ps(combine(t, 0, i0[c], n0[c]), a, _mm512_load_ps(o)));
        _mm512_store_ps(o + 16,
                        _mm512_fmadd_ps(combine(t, 16, i1[c], n1[c]), a, _mm512_load_ps(o + 16)));
    }
}

KTARGET void kgemm_q5_K(int k, const void *w, size_t row_bytes, int64_t r0, int64_t r1,
                        const void *actp, int m, float *out, size_t ostride, void *scratch)
{
    const int nb = k / 256;
    const struct act a = act_at(actp, k, m);
    struct tile *t = scratch;
    float *acc = (float *)((char *)scratch + align64(sizeof(struct tile)));
    for (int64_t base = r0; base < r1; base += 32) {
        const int nr = r1 - base < 32 ? (int)(r1 - base) : 32;
        memset(acc, 0, sizeof(float) * 32 * (size_t)m);
        for (int sb = 0; sb < nb; sb++) {
            unpack(t, (const char *)w + (size_t)base * row_bytes, row_bytes, sb, nr);
            const size_t at = (size_t)sb * (size_t)m;
            const int8_t *aq = a.qs + at * 256;
            const float *da = a.da + at;
            const int32_t *bp = a.bp + at * 4;
            int c = 0;
            for (; c + COLS <= m; c += COLS)
                cols(t, aq + (size_t)c * 256, da + c, bp + 4 * c, acc + 32 * c, COLS);
            switch (m - c) {
            case 5: cols(t, aq + (size_t)c * 256, da + c, bp + 4 * c, acc + 32 * c, 5); break;
            case 4: cols(t, aq + (size_t)c * 256, da + c, bp + 4 * c, acc + 32 * c, 4); break;
            case 3: cols(t, aq + (size_t)c * 256, da + c, bp + 4 * c, acc + 32 * c, 3); break;
            case 2: cols(t, aq + (size_t)c * 256, da + c, bp + 4 * c, acc + 32 * c, 2); break;
            case 1: cols(t, aq + (size_t)c * 256, da + c, bp + 4 * c, acc + 32 * c, 1); break;
            default: break;
            }
        }
        for (int j = 0; j < m; j++)
            memcpy(out + (size_t)j * ostride + base, acc + 32 * (size_t)j, sizeof(float) * (size_t)nr);
    }
}
