/*
 * kfloat.c: F16 rows against one activation row (see kfloat.h).
 */
#include "engine/kfloat.h"

#include "core/log.h"
#include "engine/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

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
            const char *ahead = (const char *)(w + i) + KERNELS_ROWS_AHEAD;
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

/* ---- the decision ------------------------------------------------------ */

typedef void (*dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);

static bool g_active;

bool kfloat_active(void)
{
    return g_active;
}

/* hearth's rows against ggml's dot product on random halves in [-2, 2):
 * widths inside and past each step, a window of rows with a padded stride */
FTARGET static bool self_check(dot_fn dot)
{
    enum { ROWS = 5, MAXN = 1100, PAD = 24 };
    static uint16_t w[ROWS * (MAXN + PAD)], a[MAXN];
    uint32_t seed = 4242;
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        seed = seed * 1664525u + 1013904223u;
        w[i] = _cvtss_sh((float)(seed >> 8) / 4194304.0f - 2.0f, 0);
    }
    for (size_t i = 0; i < MAXN; i++) {
        seed = seed * 1664525u + 1013904223u;
        a[i] = _cvtss_sh((float)(seed >> 8) / 4194304.0f - 2.0f, 0);
    }
    const int widths[] = { 1, 7, 16, 33, 64, 100, 896, 1000, MAXN };
    for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
        const int n = widths[k];
        const size_t rb = (size_t)(n + PAD) * 2;
        float want[ROWS], got[ROWS];
        for (int r = 0; r < ROWS; r++)
            dot(n, &want[r], 0, (const char *)w + r * rb, 0, a, 0, 1);
        kfloat_f16_rows(n, got, w, rb, ROWS, a);
        for (int r = 0; r < ROWS; r++)
            if (!(fabsf(got[r] - want[r]) <= 1e-5f * (float)n + 1e-5f * fabsf(want[r])))
                return false;
    }
    return true;
}

bool kfloat_init(const char *mode)
{
    g_active = false;
    if ((mode && strcmp(mode, "off") == 0) || !kfloat_cpu_ok())
        return false;
    dot_fn dot = (dot_fn)kernels_backend_symbol("ggml_vec_dot_f16");
    if (!dot)
        log_warn("kfloat: ggml's CPU backend does not export ggml_vec_dot_f16; its F16 "
                 "products stay");
    else if (!self_check(dot))
        log_warn("kfloat: hearth's F16 rows disagree with ggml's dot product; ggml's stay");
    else
        g_active = true;
    return g_active;
}
