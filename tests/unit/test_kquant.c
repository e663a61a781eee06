/*
 * test_kquant.c: unit tests for src/engine/kquant.{h,c}: hearth's Q4_K
 * decode kernel gives what ggml's own kernel (from the real CPU backend)
 * gives on ggml's repacked layout, and its Q6_K and Q5_K rows kernels what
 * ggml's dot products give, and its 4-row Q4_K kernel what ggml's plain-C reference
 * gives on ggml's interleaved activations, for superblock counts up to past
 * their limit, with extreme scales, quants and activations; the decisions
 * follow the mode.
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

enum { WBLOCK = 1152, ABLOCK = 292, Q2BLOCK = 672 };

typedef void (*gemv_fn)(int, float *, size_t, const void *, const void *, int, int);
typedef void (*dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);
static gemv_fn g_ggml;
static dot_fn g_dot6;           /* ggml's Q6_K dot product */
static dot_fn g_dot5;           /* ggml's Q5_K dot product */
static gemv_fn g_gemm_ref;      /* ggml's plain-C 4-row Q4_K kernel */
static gemv_fn g_q2_ref, g_q2_gemm_ref;   /* ggml's plain-C Q2_K kernels: one row, 4 rows */
static bool g_vnni;

static uint32_t g_seed = 99;
static uint32_t rnd(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return g_seed >> 8;
}

/* count blocks of bsize random bytes, each starting with nscales fp16
 * scales near 2^-6 (or the largest normal ones); extreme: every byte set */
static uint8_t *blocks(size_t count, size_t bsize, int nscales, bool extreme)
{
    size_t n = count * bsize;
    uint8_t *w = malloc(n);
    for (size_t i = 0; i < n; i++)
        w[i] = extreme ? 0xFF : (uint8_t)rnd();
    for (size_t b = 0; b < n; b += bsize)
        for (int j = 0; j < nscales; j++) {
            uint16_t h = extreme ? (uint16_t)0x7BFF : (uint16_t)(((8u + rnd() % 3) << 10) | (rnd() & 0x3FF));
            memcpy(w + b + 2 * j, &h, 2);
        }
    return w;
}

/* groups of 8 rows: 8 d and 8 dmin per block; extreme: every quant 15 and
 * every 6-bit scale 63 */
static uint8_t *weights(int nb, int groups, bool extreme)
{
    return blocks((size_t)nb * groups, WBLOCK, 16, extreme);
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
    CHECK(g_dot6 != NULL);
    CHECK(g_gemm_ref != NULL);
    CHECK(g_q2_ref != NULL);
    CHECK(g_q2_gemm_ref != NULL);
}

TEST(init_follows_mode_and_cpu)
{
    CHECK(!kquant_init("off"));
    CHECK(!kquant_active());
    CHECK(kquant_init("auto") == g_vnni);
    CHECK(kquant_active() == g_vnni);
    CHECK(kquant_init(NULL) == g_vnni);
    CHECK(kquant_q6_K_active() == g_vnni);
    CHECK(kquant_q5_K_active() == g_vnni);
    CHECK(kquant_gemm_active() == (g_vnni && __builtin_cpu_supports("avx512vbmi")));
    kquant_init("off");
    CHECK(!kquant_q6_K_active());
    CHECK(!kquant_q5_K_active());
    CHECK(!kquant_gemm_active());
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

/* Q6_K rows: random bytes with fp16 scales near 2^-6 (or the largest
 * normal one); extreme: every 6-bit quant 63 or 0 (x-32 at both ends) and
 * every 16-element scale -128 */
static uint8_t *rows6(int nb, int rows, bool extreme)
{
    enum { B6 = 210 };
    size_t n = (size_t)nb * rows * B6;
    uint8_t *w = malloc(n);
    for (size_t i = 0; i < n; i++)
        w[i] = extreme ? ((rnd() >> 11 & 1) ? 0xFF : 0x00) : (uint8_t)rnd();
    for (size_t b = 0; b < n; b += B6) {
        if (extreme)
            memset(w + b + 192, 0x80, 16);
        uint16_t h = extreme ? (uint16_t)0x7BFF : (uint16_t)(((8u + rnd() % 3) << 10) | (rnd() & 0x3FF));
        memcpy(w + b + 208, &h, 2);
    }
    return w;
}

/* A plain K-quant type's rows kernel against ggml's dot product. */
struct rows_case {
    const char *name;
    size_t bsize;                 /* bytes per superblock */
    size_t scale_off[2];          /* its fp16 scales (d, and dmin where there is one) */
    int nscales;
    double term;                  /* largest |quant x scale| of one element, for the bound */
    uint8_t *(*gen)(int nb, int rows, bool extreme);
    dot_fn dot;
    void (*kernel)(int, float *, const void *, size_t, int, const void *);
};

/* Superblock counts up to past the kernel's limit, random and extreme: the
 * error relative to the largest term (scale * term * 32 * 127 * 256 * |a.d|)
 * under 1e-6. */
static void rows_match(const struct rows_case *c)
{
    const int nbs[] = { 1, 2, 3, 7, 8, 19, 22, 32, 64, 65 };
    for (size_t i = 0; i < sizeof nbs / sizeof nbs[0]; i++)
        for (int extreme = 0; extreme < 2; extreme++) {
            const int nb = nbs[i], rows = 9;
            const size_t rb = (size_t)nb * c->bsize;
            uint8_t *w = c->gen(nb, rows, extreme), *a = activation(nb, extreme);
            float want[9], got[9];
            for (int r = 0; r < rows; r++)
                c->dot(nb * 256, &want[r], 0, w + r * rb, 0, a, 0, 1);
            c->kernel(nb * 256, got, w, rb, rows, a);
            double bound = 0, e = 0;
            for (int r = 0; r < rows; r++)
                for (int l = 0; l < nb; l++) {
                    float ad;
                    memcpy(&ad, a + (size_t)l * ABLOCK, 4);
                    for (int j = 0; j < c->nscales; j++) {
                        uint16_t h;
                        memcpy(&h, w + r * rb + (size_t)l * c->bsize + c->scale_off[j], 2);
                        bound = fmax(bound, fabs(ggml_fp16_to_fp32(h)) * c->term * 32 * 127 *
                                                256 * fabs(ad));
                    }
                }
            for (int r = 0; r < rows; r++)
                e = fmax(e, fabs((double)got[r] - want[r]));
            e /= bound * nb;
            if (!(e < 1e-6))
                fprintf(stderr, "  %s nb=%d extreme=%d: %.2e\n", c->name, nb, extreme, e);
            CHECK(e < 1e-6);
            free(w), free(a);
        }
}

TEST(q6_K_rows_match_ggml)
{
    if (!g_vnni || !g_dot6 || !kquant_init("auto") || !kquant_q6_K_active())
        return;
    const struct rows_case c = { "q6_K", 210, { 208 }, 1, 128, rows6, g_dot6, kquant_q6_K_rows };
    rows_match(&c);
}

/* Q5_K rows: d and dmin per block; extreme: every quant 31 and every 6-bit
 * scale and min 63 */
static uint8_t *rows5(int nb, int rows, bool extreme)
{
    return blocks((size_t)nb * rows, 176, 2, extreme);
}

TEST(q5_K_rows_match_ggml)
{
    if (!g_vnni || !g_dot5 || !kquant_init("auto") || !kquant_q5_K_active())
        return;
    const struct rows_case c = { "q5_K", 176, { 0, 2 }, 2, 63, rows5, g_dot5, kquant_q5_K_rows };
    rows_match(&c);
}

/* 4-row groups of activations in ggml's interleaved layout (block_q8_Kx4:
 * 4 float scales, byte (e/8)*32 + m*8 + e%8 for element e of row m, the
 * sums of 16 at 16*(g/4) + 4*m + g%4) */
static uint8_t *activation4(int nb, int groups, bool extreme)
{
    enum { A4 = 1168 };
    uint8_t *a = calloc((size_t)nb * groups, A4);
    for (int i = 0; i < nb * groups; i++) {
        uint8_t *b = a + (size_t)i * A4;
        for (int m = 0; m < 4; m++) {
            float d = extreme ? 1.0f : 0.001f + (float)(rnd() % 1000) / 1e5f;
            memcpy(b + 4 * m, &d, 4);
        }
        int8_t *q = (int8_t *)(b + 16);
        int16_t sums[64] = { 0 };
        for (int e = 0; e < 256; e++)
            for (int m = 0; m < 4; m++) {
                int8_t v = (int8_t)(extreme ? ((rnd() >> 11 & 1) ? 127 : -127) : (int)(rnd() % 255) - 127);
                q[(e / 8) * 32 + m * 8 + e % 8] = v;
                sums[16 * (e / 64) + 4 * m + (e / 16) % 4] = (int16_t)(sums[16 * (e / 64) + 4 * m + (e / 16) % 4] + v);
            }
        memcpy(b + 16 + 1024, sums, sizeof sums);
    }
    return a;
}

/* The largest error of got against want (n values, NaN counting as
 * infinite), relative to the largest partial sum a superblock adds: the
 * largest of the first 16 fp16 values (d and dmin) of `count` weight blocks
 * of bsize bytes, times per_unit (largest scale x quant x activation x 256),
 * times the activation's scale (1 when extreme, else at most 0.011), times
 * the nb superblocks. */
static double rel_error(const float *got, const float *want, int n, const uint8_t *w,
                        size_t count, size_t bsize, double per_unit, bool extreme, int nb)
{
    double bound = 0, e = 0;
    for (size_t b = 0; b < count; b++)
        for (int j = 0; j < 16; j++) {
            uint16_t h;
            memcpy(&h, w + b * bsize + 2 * j, 2);
            bound = fmax(bound, fabs(ggml_fp16_to_fp32(h)) * per_unit * (extreme ? 1.0 : 0.011));
        }
    for (int k = 0; k < n; k++) {
        double d = fabs((double)got[k] - want[k]);
        e = d <= e ? e : isnan(d) ? INFINITY : d;
    }
    return e / (bound * nb);
}

TEST(gemm_matches_ggml)
{
    if (!g_vnni || !g_gemm_ref || !kquant_init("auto") || !kquant_gemm_active())
        return;
    /* superblock counts as above; 4, 8 and 12 activation rows (the kernel's
     * paths of 8 and 4 rows); 3 groups of weight rows */
    const int nbs[] = { 1, 2, 3, 8, 19, 22, 64, 65 };
    for (size_t i = 0; i < sizeof nbs / sizeof nbs[0]; i++)
        for (int nr = 4; nr <= 12; nr += 4)
            for (int extreme = 0; extreme < 2; extreme++) {
                const int nb = nbs[i], groups = 3, nc = 8 * groups;
                uint8_t *w = weights(nb, groups, extreme), *a = activation4(nb, nr / 4, extreme);
                float want[12 * 24], got[12 * 24];
                g_gemm_ref(nb * 256, want, nc, w, a, nr, nc);
                kquant_gemm_q4_K(nb * 256, got, nc, w, a, nr, nc);
                /* the same bound as for one row, from each group's scales */
                double e = rel_error(got, want, nr * nc, w, (size_t)nb * groups, WBLOCK,
                                     63 * 16 * 127 * 256, extreme, nb);
                if (!(e < 1e-6))
                    fprintf(stderr, "  q4_K gemm nb=%d nr=%d extreme=%d: %.2e\n", nb, nr, extreme, e);
                CHECK(e < 1e-6);
                free(w), free(a);
            }
}

/* Q2_K in ggml's 8-row layout (block_q2_Kx8: 8 d, 8 dmin, 128 scale
 * bytes, 512 quant bytes) against one row and against 4, 8 and 12 rows,
 * held against ggml's plain-C kernels: the error relative to the largest
 * partial sum a superblock adds (d or dmin times 15 * 3 * 127 * 256 times
 * the activation's scale), below 1e-6; superblock counts past the kernel's
 * limit (64) go to ggml's own. */
TEST(q2_K_matches_ggml)
{
    if (!g_vnni || !g_q2_ref || !g_q2_gemm_ref || !kquant_init("auto"))
        return;
    CHECK(kquant_q2_K_active() == (bool)__builtin_cpu_supports("avx512vbmi"));
    CHECK(kquant_gemm_q2_K_active() == kquant_q2_K_active());
    if (!kquant_q2_K_active())
        return;
    const int nbs[] = { 1, 2, 3, 8, 22, 64, 65 };
    for (size_t i = 0; i < sizeof nbs / sizeof nbs[0]; i++)
        for (int nr = 1; nr <= 12; nr += nr == 1 ? 3 : 4)
            for (int extreme = 0; extreme < 2; extreme++) {
                const int nb = nbs[i], groups = 3, nc = 8 * groups;
                if (nr > 1 && !kquant_gemm_q2_K_active())
                    continue;
                uint8_t *w = blocks((size_t)nb * groups, Q2BLOCK, 16, extreme);
                uint8_t *a = nr == 1 ? activation(nb, extreme) : activation4(nb, nr / 4, extreme);
                float want[12 * 24], got[12 * 24];
                if (nr == 1) {
                    g_q2_ref(nb * 256, want, 0, w, a, 1, nc);
                    kquant_gemv_q2_K(nb * 256, got, 0, w, a, 1, nc);
                } else {
                    g_q2_gemm_ref(nb * 256, want, nc, w, a, nr, nc);
                    kquant_gemm_q2_K(nb * 256, got, nc, w, a, nr, nc);
                }
                double e = rel_error(got, want, nr * nc, w, (size_t)nb * groups, Q2BLOCK,
                                     15 * 3 * 127 * 256, extreme, nb);
                if (!(e < 1e-6))
                    fprintf(stderr, "  q2_K nb=%d nr=%d extreme=%d: %.2e\n", nb, nr, extreme, e);
                CHECK(e < 1e-6);
                free(w), free(a);
            }
}

int main(void)
{
    backends_load();
    g_ggml = (gemv_fn)kernels_backend_symbol("ggml_gemv_q4_K_8x8_q8_K");
    g_dot6 = (dot_fn)kernels_backend_symbol("ggml_vec_dot_q6_K_q8_K");
    g_dot5 = (dot_fn)kernels_backend_symbol("ggml_vec_dot_q5_K_q8_K");
    g_gemm_ref = (gemv_fn)kernels_backend_symbol("ggml_gemm_q4_K_8x8_q8_K_generic");
    g_q2_ref = (gemv_fn)kernels_backend_symbol("ggml_gemv_q2_K_8x8_q8_K_generic");
    g_q2_gemm_ref = (gemv_fn)kernels_backend_symbol("ggml_gemm_q2_K_8x8_q8_K_generic");
    g_vnni = kernels_cpu_ok();
    RUN(backend_exports_the_kernel);
    RUN(init_follows_mode_and_cpu);
    RUN(matches_ggml);
    RUN(a_window_of_groups);
    RUN(q6_K_rows_match_ggml);
    RUN(q5_K_rows_match_ggml);
    RUN(gemm_matches_ggml);
    RUN(q2_K_matches_ggml);
    return check_summary();
}
