/*
 * argmax.h: the index of the first largest value of a float array, as
 * llama.cpp's greedy sampler picks it, at the speed of a memory read.
 *
 * Greedy decoding takes the argmax of the whole vocabulary each token
 * (32k-150k logits). A plain loop over `x > best ? x : best` does not
 * vectorize without -ffast-math (NaN makes the order matter), so it runs
 * one compare per cycle chain: ~35 us a token for 32k logits on this
 * machine. Here the maximum is taken 16 lanes at a time (NaN logits are
 * skipped, as the scalar compare skips them), then the first index equal to
 * it is found 4 at a time. A NaN first logit gives index 0, as llama.cpp's
 * sampler does (nothing compares larger than NaN).
 *
 * Header-only so that the unit tests reach it.
 */
#ifndef HEARTH_ARGMAX_H
#define HEARTH_ARGMAX_H

#include <math.h>
#include <stdbool.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

/* Whether every one of the n values is finite (no NaN, no infinity): their
 * sum is, since logits are far too small for finite ones to overflow it.
 * A few microseconds for 150k values. */
static inline bool all_finite_f32(const float *v, int n)
{
    int i = 0;
    float s = 0;
#if defined(__SSE2__)
    __m128 a = _mm_setzero_ps(), b = a;
    for (; i + 8 <= n; i += 8) {
        a = _mm_add_ps(a, _mm_loadu_ps(v + i));
        b = _mm_add_ps(b, _mm_loadu_ps(v + i + 4));
    }
    float t[4];
    _mm_storeu_ps(t, _mm_add_ps(a, b));
    s = (t[0] + t[1]) + (t[2] + t[3]);
#endif
    for (; i < n; i++)
        s += v[i];
    return isfinite(s);
}

static inline int argmax_f32(const float *v, int n)
{
    if (n <= 0 || isnan(v[0]))
        return 0;
    int i = 0;
    float best = v[0];
#if defined(__SSE2__)
    if (n >= 16) {
        /* _mm_max_ps(x, m) returns m when x is NaN: NaN never wins */
        __m128 m0 = _mm_set1_ps(best), m1 = m0, m2 = m0, m3 = m0;
        for (; i + 16 <= n; i += 16) {
            m0 = _mm_max_ps(_mm_loadu_ps(v + i), m0);
            m1 = _mm_max_ps(_mm_loadu_ps(v + i + 4), m1);
            m2 = _mm_max_ps(_mm_loadu_ps(v + i + 8), m2);
            m3 = _mm_max_ps(_mm_loadu_ps(v + i + 12), m3);
        }
        m0 = _mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3));
        m0 = _mm_max_ps(m0, _mm_shuffle_ps(m0, m0, _MM_SHUFFLE(1, 0, 3, 2)));
        m0 = _mm_max_ps(m0, _mm_shuffle_ps(m0, m0, _MM_SHUFFLE(2, 3, 0, 1)));
        best = _mm_cvtss_f32(m0);
    }
#endif
    for (; i < n; i++)
        best = v[i] > best ? v[i] : best;
    i = 0;
#if defined(__SSE2__)
    const __m128 b = _mm_set1_ps(best);
    for (; i + 4 <= n; i += 4) {
        int mask = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(v + i), b));
        if (mask)
            return i + __builtin_ctz((unsigned)mask);
    }
#endif
    for (; i < n; i++)
        if (v[i] == best)
            return i;
    return 0;
}

#endif
