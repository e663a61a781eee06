/*
 * kfloat.c: F16 rows against one activation row (see kfloat.h).
 */
#include "engine/kfloat.h"

#include "engine/kernels.h"

#include <immintrin.h>
#include <stdint.h>

/* how far ahead the matrix is fetched: as engine/kernels.c's plain rows
 * (2-18 KiB measured the same on one Zen 4 core) */
#define FETCH_AHEAD 9216

#define FTARGET __attribute__((target("avx512f,f16c,fma")))

bool kfloat_cpu_ok(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("f16c") &&
           __builtin_cpu_supports("fma");
}

FTARGET static inline __m512 halves(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

FTARGET void kfloat_f16_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                             const void *va)
{
    const uint16_t *a = va;
    const int n64 = n & ~63;
    const bool l2 = kernels_rows_fetch_l2();
    for (int r = 0; r < rows; r++) {
        const uint16_t *w = (const uint16_t *)((const char *)vw + (size_t)r * row_bytes);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
        int i = 0;
        for (; i < n64; i += 64) {                  /* 128 bytes of weights: two lines */
            const char *ahead = (const char *)(w + i) + FETCH_AHEAD;
            KERNELS_ROWS_FETCH(ahead, l2);
            KERNELS_ROWS_FETCH(ahead + 64, l2);
            acc0 = _mm512_fmadd_ps(halves(w + i), halves(a + i), acc0);
            acc1 = _mm512_fmadd_ps(halves(w + i + 16), halves(a + i + 16), acc1);
            acc2 = _mm512_fmadd_ps(halves(w + i + 32), halves(a + i + 32), acc2);
            acc3 = _mm512_fmadd_ps(halves(w + i + 48), halves(a + i + 48), acc3);
        }
        for (; i + 16 <= n; i += 16)
            acc0 = _mm512_fmadd_ps(halves(w + i), halves(a + i), acc0);
        float sum = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
        for (; i < n; i++)
            sum += _cvtsh_ss(w[i]) * _cvtsh_ss(a[i]);
        out[r] = sum;
    }
}
