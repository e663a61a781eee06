/*
 * test_kfloat.c: unit tests for src/engine/kfloat.{h,c}: hearth's F16 rows
 * kernel gives the exact product (in double) to float rounding, and ggml's
 * own dot product (from the real CPU backend) as closely, at the model
 * widths and at widths that end inside its steps of 64 and 16, for a
 * window of rows with a padded stride; the decision follows the mode.
 */
#include "check.h"
#include "engine/backends.h"
#include "engine/kernels.h"
#include "engine/kfloat.h"

#include <ggml.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);
static dot_fn g_dot;
static bool g_cpu;

static uint32_t g_seed = 77;
static float rnd(float lo, float hi)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(g_seed >> 8) / 16777216.0f;
}

static uint16_t *halves(size_t n, float lo, float hi)
{
    uint16_t *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = ggml_fp32_to_fp16(rnd(lo, hi));
    return p;
}

TEST(init_follows_mode_and_cpu)
{
    CHECK(!kfloat_init("off"));
    CHECK(!kfloat_active());
    CHECK(kfloat_init("auto") == (g_cpu && g_dot != NULL));
    CHECK(kfloat_active() == (g_cpu && g_dot != NULL));
    CHECK(kfloat_init(NULL) == kfloat_active());
}

/* rows of width n (stride n + pad halves), rows r0.. of them */
static void width(int n, int pad, int rows, int r0, int nrows)
{
    const size_t stride = (size_t)n + (size_t)pad;
    uint16_t *w = halves(stride * (size_t)rows, -1.0f, 1.0f), *a = halves((size_t)n, -3.0f, 3.0f);
    float *got = malloc(sizeof(float) * (size_t)nrows);
    kfloat_f16_rows(n, got, w + stride * (size_t)r0, stride * 2, nrows, a);
    for (int r = 0; r < nrows; r++) {
        const uint16_t *wr = w + stride * (size_t)(r0 + r);
        double exact = 0, mag = 0;
        for (int i = 0; i < n; i++) {
            double t = (double)ggml_fp16_to_fp32(wr[i]) * ggml_fp16_to_fp32(a[i]);
            exact += t;
            mag += fabs(t);
        }
        /* float sums of n terms: within n * 2^-24 of the sum of magnitudes */
        double bound = (double)n * 6e-8 * mag + 1e-30;
        if (!(fabs(got[r] - exact) <= bound))
            fprintf(stderr, "  n=%d row %d: %.9g against %.9g\n", n, r0 + r, got[r], exact);
        CHECK(fabs(got[r] - exact) <= bound);
        if (g_dot) {
            float g;
            g_dot(n, &g, 0, wr, 0, a, 0, 1);
            CHECK(fabs((double)g - exact) <= bound);      /* the same bound holds for ggml's */
        }
    }
    free(w), free(a), free(got);
}

TEST(rows_match_the_exact_product)
{
    if (!g_cpu)
        return;
    const int ns[] = { 1, 7, 15, 16, 17, 63, 64, 65, 100, 896, 1000, 2048, 4864, 8192, 20000 };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        width(ns[i], 0, 6, 0, 6);
        width(ns[i], 40, 9, 3, 5);                  /* a window, rows padded apart */
    }
}

TEST(extreme_values_stay_finite)
{
    if (!g_cpu)
        return;
    enum { N = 2048 };
    uint16_t *w = malloc(N * 2), *a = malloc(N * 2);
    for (int i = 0; i < N; i++) {
        w[i] = 0x7BFF;                              /* 65504, the largest half */
        a[i] = (uint16_t)(i % 2 ? 0xFBFF : 0x7BFF); /* +-65504: the sum cancels */
    }
    float got;
    kfloat_f16_rows(N, &got, w, N * 2, 1, a);
    CHECK(isfinite(got));
    CHECK(fabsf(got) < 1e3f);
    free(w), free(a);
}

int main(void)
{
    backends_load();
    g_dot = (dot_fn)kernels_backend_symbol("ggml_vec_dot_f16");
    g_cpu = kfloat_cpu_ok();
    RUN(init_follows_mode_and_cpu);
    RUN(rows_match_the_exact_product);
    RUN(extreme_values_stay_finite);
    return check_summary();
}
