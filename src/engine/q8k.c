/*
 * q8k.c: float rows to Q8_K blocks with AVX-512, to ggml's bits (see q8k.h).
 */
#include "engine/q8k.h"

#include "core/log.h"
#include "engine/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define QTARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

struct q8k {        /* ggml's block_q8_K */
    float d;
    int8_t qs[256];
    int16_t bsums[16];
};
_Static_assert(sizeof(struct q8k) == 292, "ggml's block_q8_K");

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static q8k_fn g_ggml;       /* libggml-base's own */
static bool g_on;

/* libggml-base's own definition (not the executable's, which is this file's) */
static void resolve(void)
{
    g_ggml = (q8k_fn)kernels_library_symbol("libggml-base", "quantize_row_q8_K_ref");
}

q8k_fn q8k_ggml(void)
{
    pthread_once(&g_once, resolve);
    return g_ggml;
}

/* One block of 256 floats; false (nothing written) when one of them is an
 * infinity or a NaN, or the scale overflows (magnitudes below ~2^-120). */
QTARGET static bool block(const float *x, struct q8k *y)
{
    const __m512 sign = _mm512_set1_ps(-0.0f);
    __m512 v[16], amax = _mm512_setzero_ps();
    __mmask16 odd = 0;
    for (int i = 0; i < 16; i++) {
        v[i] = _mm512_loadu_ps(x + 16 * i);
        /* a NaN lane keeps amax (the second operand), as ggml's `>` skips it */
        amax = _mm512_max_ps(_mm512_andnot_ps(sign, v[i]), amax);
        odd |= _mm512_fpclass_ps_mask(v[i], 0x99);      /* QNaN, +inf, -inf, SNaN */
    }
    if (odd)
        return false;
    const float am = _mm512_reduce_max_ps(amax);
    if (am == 0.0f) {                /* as ggml: the sums are left as they were */
        y->d = 0;
        memset(y->qs, 0, sizeof y->qs);
        return true;
    }
    /* the first element of that magnitude gives the sign, as in ggml's scan */
    const __m512 amv = _mm512_set1_ps(am);
    float max = am;
    for (int i = 0; i < 16; i++) {
        __mmask16 hit = _mm512_cmp_ps_mask(_mm512_andnot_ps(sign, v[i]), amv, _CMP_EQ_OQ);
        if (hit) {
            max = x[16 * i + __builtin_ctz(hit)];
            break;
        }
    }
    const float iscale = -127.f / max;
    if (!isfinite(iscale))           /* a block of subnormals: ggml's code */
        return false;
    const __m512 s = _mm512_set1_ps(iscale);
    const __m512i top = _mm512_set1_epi32(127);
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i sums[4];
    for (int c = 0; c < 4; c++) {                   /* 64 quants at a time */
        __m128i q[4];
        for (int k = 0; k < 4; k++) {
            /* the product in float, rounded to nearest even (ggml's
             * nearest_int for |v| < 2^22), then clamped at 127 */
            __m512i r = _mm512_cvtps_epi32(_mm512_mul_ps(v[4 * c + k], s));
            q[k] = _mm512_cvtsepi32_epi8(_mm512_min_epi32(r, top));
        }
        __m512i b = _mm512_castsi128_si512(q[0]);
        b = _mm512_inserti32x4(b, q[1], 1);
        b = _mm512_inserti32x4(b, q[2], 2);
        b = _mm512_inserti32x4(b, q[3], 3);
        _mm512_storeu_si512(y->qs + 64 * c, b);
        /* lane j: the sum of quants 4j..4j+3 of these 64 */
        sums[c] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, b);
    }
    /* each 128-bit lane of sums[c] holds one group of 16 (group 4c + lane):
     * add the four dwords of every lane, for the four vectors at once */
    __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(sums[0], sums[1]),
                                  _mm512_unpackhi_epi32(sums[0], sums[1]));
    __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(sums[2], sums[3]),
                                  _mm512_unpackhi_epi32(sums[2], sums[3]));
    __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
    /* u's dword 4g + c is group 4c + g: into group order */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    u = _mm512_permutexvar_epi32(order, u);
    _mm256_storeu_si256((__m256i *)y->bsums, _mm512_cvtepi32_epi16(u));
    y->d = 1 / iscale;
    return true;
}

/* One block one element at a time, the format's definition as ggml's
 * reference computes it, for the blocks the vector code leaves: the
 * rounding goes through the float adder (1.5 * 2^23 added, the low
 * mantissa bits taken), which is what gives an infinity's or a NaN's lane
 * its byte. Compiled for the baseline (no FMA), so the product and the
 * addition round apart, as in ggml's build. */
static void block_scalar(const float *x, struct q8k *y)
{
    float amax = 0, max = 0;
    for (int j = 0; j < 256; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    if (amax == 0) {
        y->d = 0;
        memset(y->qs, 0, sizeof y->qs);
        return;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < 256; j++) {
        const float p = iscale * x[j];
        const float v = p + 12582912.f;
        int32_t bits;
        memcpy(&bits, &v, sizeof bits);
        const int q = (bits & 0x007fffff) - 0x00400000;
        y->qs[j] = (int8_t)(q < 127 ? q : 127);
    }
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum += y->qs[16 * g + j];
        y->bsums[g] = (int16_t)sum;
    }
    y->d = 1 / iscale;
}

static _Thread_local long g_calls;  /* conversions by hearth's code, this thread */

long q8k_calls(void)
{
    return g_calls;
}

void q8k_quantize(const float *restrict x, void *restrict vy, int64_t k)
{
    struct q8k *y = vy;
    g_calls++;
    for (int64_t i = 0; i < k / 256; i++)
        if (!block(x + 256 * i, y + i))
            block_scalar(x + 256 * i, y + i);
}

void quantize_row_q8_K_ref(const float *restrict x, void *restrict vy, int64_t k)
{
    if (g_on) {
        q8k_quantize(x, vy, k);
        return;
    }
    pthread_once(&g_once, resolve);
    if (g_ggml) {
        g_ggml(x, vy, k);
        return;
    }
    struct q8k *y = vy;              /* no ggml found: the same bytes, slowly */
    for (int64_t i = 0; i < k / 256; i++)
        block_scalar(x + 256 * i, y + i);
}

/* Rows that exercise every branch: random magnitudes from 2^-30 to 2^30,
 * the largest magnitude twice with both signs in one vector and in two
 * (the first one's sign must win), an all-zero block, values on the .5
 * rounding edges, subnormals against a finite scale and alone (whose scale
 * overflows), and a block with an infinity and one with a NaN. Against
 * ggml's code (or, when it was not found, the scalar definition), over
 * outputs that start as the same non-zero bytes, so a byte left as it was
 * counts too. */
static bool self_check(void)
{
    enum { NB = 14, K = NB * 256 };
    float *x = malloc(sizeof(float) * K);
    struct q8k *a = malloc(NB * sizeof *a), *b = malloc(NB * sizeof *b);
    bool ok = x && a && b;
    uint32_t seed = 8642;
    for (int round = 0; ok && round < 40; round++) {
        for (int i = 0; i < K; i++) {
            seed = seed * 1664525u + 1013904223u;
            float u = (float)(seed >> 8) / 8388608.0f - 1.0f;
            int e = (int)(seed % 61) - 30;
            x[i] = ldexpf(u, round % 2 ? e : (int)(seed % 5));
        }
        memset(x + 256, 0, sizeof(float) * 256);            /* block 1: zeros */
        x[2 * 256 + 7] = 3.5f;                              /* block 2: a tie of signs */
        x[2 * 256 + 100] = -3.5f;
        x[3 * 256 + 50] = -2.0f;                            /* block 3: in one vector */
        x[3 * 256 + 53] = 2.0f;
        for (int i = 0; i < 256; i++)                       /* block 4: .5 after scaling */
            x[4 * 256 + i] = ((float)(i % 255) - 127.0f) + 0.5f * (float)(i % 2);
        x[4 * 256 + 3] = -127.0f;
        for (int i = 0; i < 256; i++)                       /* block 5: subnormals alone */
            x[5 * 256 + i] = ldexpf((float)(i % 17) - 8.0f, -140);
        for (int i = 0; i < 256; i++)                       /* block 6: and with a scale */
            x[6 * 256 + i] = ldexpf((float)(i % 17) - 8.0f, -133);
        x[6 * 256 + 40] = ldexpf(1.0f, -118);
        x[7 * 256 + 9] = round % 3 ? INFINITY : -INFINITY;  /* block 7: an infinity */
        x[8 * 256 + 31] = NAN;                              /* block 8: a NaN */
        memset(a, 0x5A, sizeof *a * NB);
        memset(b, 0x5A, sizeof *b * NB);
        if (g_ggml)
            g_ggml(x, a, K);
        else
            for (int l = 0; l < NB; l++)
                block_scalar(x + 256 * l, a + l);
        q8k_quantize(x, b, K);
        ok = memcmp(a, b, sizeof *a * NB) == 0;
    }
    free(x);
    free(a);
    free(b);
    return ok;
}

bool q8k_init(const char *mode)
{
    pthread_once(&g_once, resolve);
    g_on = false;
    if (mode && strcmp(mode, "off") == 0)
        return false;
    if (!kernels_cpu_ok())
        return false;
    if (!self_check()) {
        log_warn("q8k: hearth's Q8_K conversion differs from ggml's; ggml's own stays");
        return false;
    }
    g_on = true;
    return true;
}

bool q8k_active(void)
{
    return g_on;
}
