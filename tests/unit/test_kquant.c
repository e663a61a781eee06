/*
 * test_kquant.c: unit tests for src/engine/kquant.{h,c}: hearth's Q4_K
 * decode kernel gives what ggml's own kernel (from the real CPU backend)
 * gives on ggml's repacked layout, for every superblock count up to past
 * its limit, with extreme scales, quants and activations; its decision
 * follows the mode.
 */
#include "check.h"
#include "engine/backends.h"
#include "engine/kernels.h"
#include "engine/kquant.h"

#include <ggml.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { WBLOCK = 1152, ABLOCK = 292 };

typedef void (*gemv_fn)(int, float *, size_t, const void *, const void *, int, int);
static gemv_fn g_ggml;
static bool g_vnni;

static uint32_t g_seed = 99;
static uint32_t rnd(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return g_seed >> 8;
}

/* groups of 8 rows: random bytes, fp16 d and dmin near 2^-6 (or the
 * largest normal ones); extreme: every quant 15 and every 6-bit scale 63 */
static uint8_t *weights(int nb, int groups, bool extreme)
{
    size_t n = (size_t)nb * groups * WBLOCK;
    uint8_t *w = malloc(n);
    for (size_t i = 0; i < n; i++)
        w[i] = extreme ? 0xFF : (uint8_t)rnd();
    for (size_t b = 0; b < n; b += WBLOCK)
        for (int j = 0; j < 16; j++) {
            uint16_t h = extreme ? (uint16_t)0x7BFF : (uint16_t)(((8u + rnd() % 3) << 10) | (rnd() & 0x3FF));
            memcpy(w + b + 2 * j, &h, 2);
        }
    return w;
}

/* one block_q8_K row: int8 quants in -127..127 with their sums of 16 */
static uint8_t *activation(int nb, bool extreme)
{
    uint8_t *a = calloc((size_t)nb, ABLOCK);
    for (int l = 0; l < nb; l++) {
        uint8_t *b = a + (size_t)l * ABLOCK;
        float d = extreme ? 1.0f : 0.001f + (float)(rnd() % 1000) / 1e5f;
        memcpy(b, &d, 4);
        int8_t *q = (int8_t *)(b + 4);
        for (int i = 0; i < 256; i++)
            q[i] = (int8_t)(extreme ? ((rnd() >> 11 & 1) ? 127 : -127) : (int)(rnd() % 255) - 127);
        for (int k = 0; k < 16; k++) {
            int16_t s = 0;
            for (int i = 0; i < 16; i++)
                s = (int16_t)(s + q[k * 16 + i]);
            memcpy(b + 260 + 2 * k, &s, 2);
        }
    }
    return a;
}

/* The largest error over the rows, relative to the largest partial sum a
 * row adds up (the scale of float rounding, whatever cancels out): every
 * superblock's d and dmin times 63 * 16 * 127 * 256 times the activation's
 * scale. */
static double worst(const float *got, const float *want, int nc, const uint8_t *w,
                    const uint8_t *a, int nb)
{
    double bound = 0, e = 0;
    for (int g = 0; g < nc / 8; g++)
        for (int l = 0; l < nb; l++) {
            float ad;
            memcpy(&ad, a + (size_t)l * ABLOCK, 4);
            for (int j = 0; j < 16; j++) {
                uint16_t h;
                memcpy(&h, w + ((size_t)g * nb + l) * WBLOCK + 2 * j, 2);
                bound = fmax(bound, fabs(ggml_fp16_to_fp32(h)) * 63 * 16 * 127 * 256 * fabs(ad));
            }
        }
    for (int i = 0; i < nc; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= e))
            e = isnan(d) ? INFINITY : d;
    }
    return e / (bound * nb + 1e-30);
}

TEST(backend_exports_the_kernel)
{
    CHECK(g_ggml != NULL);
}

TEST(init_follows_mode_and_cpu)
{
    CHECK(!kquant_init("off"));
    CHECK(!kquant_active());
    CHECK(kquant_init("auto") == g_vnni);
    CHECK(kquant_active() == g_vnni);
    CHECK(kquant_init(NULL) == g_vnni);
}

TEST(matches_ggml)
{
    if (!g_vnni || !g_ggml || !kquant_init("auto"))
        return;
    /* 1..9 superblocks, the 0.5B and 1.1B widths (4864 = 19, 5632 = 22),
     * past the kernel's limit (ggml's own takes those) */
    const int nbs[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 19, 22, 64, 65 };
    for (size_t i = 0; i < sizeof nbs / sizeof nbs[0]; i++)
        for (int extreme = 0; extreme < 2; extreme++) {
            const int nb = nbs[i], groups = 3, nc = 8 * groups;
            uint8_t *w = weights(nb, groups, extreme), *a = activation(nb, extreme);
            float want[24], got[24];
            g_ggml(nb * 256, want, nc, w, a, 1, nc);
            kquant_gemv_q4_K(nb * 256, got, nc, w, a, 1, nc);
            double e = worst(got, want, nc, w, a, nb);
            if (!(e < 1e-6))
                fprintf(stderr, "  q4_K nb=%d extreme=%d: %.2e\n", nb, extreme, e);
            CHECK(e < 1e-6);
            free(w), free(a);
        }
}

TEST(a_window_of_groups)
{
    if (!g_vnni)
        return;
    /* shares of a product start at any group: the same values as a whole */
    const int nb = 8, groups = 6;
    uint8_t *w = weights(nb, groups, false), *a = activation(nb, false);
    float all[48], part[16];
    kquant_gemv_q4_K(nb * 256, all, 48, w, a, 1, 48);
    kquant_gemv_q4_K(nb * 256, part, 16, w + (size_t)3 * nb * WBLOCK, a, 1, 16);
    CHECK(memcmp(part, all + 24, sizeof part) == 0);
    free(w), free(a);
}

int main(void)
{
    backends_load();
    g_ggml = (gemv_fn)kernels_backend_symbol("ggml_gemv_q4_K_8x8_q8_K");
    g_vnni = kernels_cpu_ok();
    RUN(backend_exports_the_kernel);
    RUN(init_follows_mode_and_cpu);
    RUN(matches_ggml);
    RUN(a_window_of_groups);
    return check_summary();
}
