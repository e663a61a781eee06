/*
 * kspeed.c: how fast each of hearth's single-row (decode) kernels and ggml's
 * own for the same layout stream their weights on one core, from cache and
 * from memory. A decode step is bound by memory only when a core's kernel
 * outruns its share of the memory bus; this tells, on the machine at hand,
 * which kernels are not (make bench-kernels; build/bench/kspeed NAME runs
 * only the kinds whose name contains NAME, e.g. Q6_K).
 *
 * Weights and activations are random bytes whose fp16/fp32 scales are
 * normal numbers: the rate of these kernels does not depend on the values.
 */
#include "engine/backends.h"
#include "engine/kernels.h"
#include "engine/kfloat.h"
#include "engine/kquant.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*gemv_fn)(int, float *, size_t, const void *, const void *, int, int);
typedef void (*rows_fn)(int, float *, const void *, size_t, int, const void *);
typedef void (*dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* bytes 0x20..0x3b: every fp16 or fp32 read from them is a normal number */
static uint8_t *random_bytes(size_t n)
{
    uint8_t *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "kspeed: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (uint8_t)(0x20 + (s >> 24) % 28);
    }
    return p;
}

struct kind {
    const char *name;
    int n;              /* row width in elements */
    size_t row_bytes;   /* bytes of one weight row */
    size_t act_bytes;   /* bytes of the activation row */
    gemv_fn gemv;       /* 8-row repacked layouts (nc rows a call) */
    rows_fn rows;       /* plain layouts, hearth */
    dot_fn dot;         /* plain layouts, ggml: one row a call */
};

static float g_out[1 << 16];

/* rows [0, nrows) of w once */
static void pass(const struct kind *k, bool hearth, const uint8_t *w, size_t nrows,
                 const uint8_t *a, gemv_fn ggml_gemv)
{
    const size_t chunk = 4096;     /* rows a call, as a share of a product */
    for (size_t r = 0; r < nrows; r += chunk) {
        size_t m = nrows - r < chunk ? nrows - r : chunk;
        const uint8_t *wr = w + r * k->row_bytes;
        if (k->gemv)
            (hearth ? k->gemv : ggml_gemv)(k->n, g_out, m, wr, a, 1, (int)m);
        else if (hearth)
            k->rows(k->n, g_out, wr, k->row_bytes, (int)m, a);
        else
            for (size_t i = 0; i < m; i++)
                k->dot(k->n, g_out + i, 0, wr + i * k->row_bytes, 0, a, 0, 1);
    }
}

/* GB/s streaming `bytes` of weights `reps` times (best of 5) */
static double rate(const struct kind *k, bool hearth, size_t bytes, int reps, gemv_fn ggml_gemv)
{
    size_t nrows = bytes / k->row_bytes / 8 * 8;
    uint8_t *w = random_bytes(nrows * k->row_bytes), *a = random_bytes(k->act_bytes);
    pass(k, hearth, w, nrows, a, ggml_gemv);
    double best = 0;
    for (int t = 0; t < 5; t++) {
        double t0 = now_s();
        for (int i = 0; i < reps; i++)
            pass(k, hearth, w, nrows, a, ggml_gemv);
        double gbs = (double)nrows * k->row_bytes * reps / (now_s() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    free(w);
    free(a);
    return best;
}

/* a plain read of the same bytes, one core */
static double read_rate(size_t bytes, int reps)
{
    uint8_t *w = random_bytes(bytes);
    double best = 0;
    volatile uint64_t sink = 0;
    for (int t = 0; t < 5; t++) {
        double t0 = now_s();
        for (int i = 0; i < reps; i++) {
            uint64_t x = 0;
            for (size_t j = 0; j < bytes; j += 64) {
                uint64_t v;
                memcpy(&v, w + j, sizeof v);
                x ^= v;
            }
            sink += x;
        }
        double gbs = (double)bytes * reps / (now_s() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    free(w);
    return best;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: kspeed [NAME]\n"
               "Each decode kernel's rate on one core, hearth's and ggml's, from cache and from\n"
               "memory, in GB/s of weights, beside a plain read (make bench-kernels).\n"
               "NAME runs only the kernels whose name contains it (e.g. Q6_K).\n");
        return 0;
    }
    backends_load();
    if (!kernels_cpu_ok()) {
        fprintf(stderr, "kspeed: hearth's kernels need AVX-512 VNNI\n");
        return 1;
    }
    kernels_init("auto");
    kquant_init("auto");
    const char *only = argc > 1 ? argv[1] : NULL;
    const int n = 2048;
    struct kind kinds[] = {
        { "Q4_0 (8-row)", n, n / 32 * 18, n / 32 * 34, kernels_gemv_q4_0, NULL, NULL },
        { "Q8_0", n, n / 32 * 34, n / 32 * 34, NULL, kernels_q8_0_gemv,
          (dot_fn)kernels_backend_symbol("ggml_vec_dot_q8_0_q8_0") },
        { "Q5_0", n, n / 32 * 22, n / 32 * 34, NULL, kernels_q5_0_gemv,
          (dot_fn)kernels_backend_symbol("ggml_vec_dot_q5_0_q8_0") },
        { "Q4_K (8-row)", n, n / 256 * 144, n / 256 * 292, kquant_gemv_q4_K, NULL, NULL },
        { "Q5_K", n, n / 256 * 176, n / 256 * 292, NULL, kquant_q5_K_rows,
          (dot_fn)kernels_backend_symbol("ggml_vec_dot_q5_K_q8_K") },
        { "Q6_K", n, n / 256 * 210, n / 256 * 292, NULL, kquant_q6_K_rows,
          (dot_fn)kernels_backend_symbol("ggml_vec_dot_q6_K_q8_K") },
        { "Q3_K", n, n / 256 * 110, n / 256 * 292, NULL, kquant_q3_K_rows,
          (dot_fn)kernels_backend_symbol("ggml_vec_dot_q3_K_q8_K") },
        { "IQ4_XS", n, n / 256 * 136, n / 256 * 292, NULL, kquant_iq4_xs_rows,
          (dot_fn)kernels_backend_symbol("ggml_vec_dot_iq4_xs_q8_K") },
        { "Q2_K (8-row)", n, n / 256 * 84, n / 256 * 292, kquant_gemv_q2_K, NULL, NULL },
        { "F16", n, n * 2, n * 2, NULL, kfloat_f16_rows,
          (dot_fn)kernels_backend_symbol("ggml_vec_dot_f16") },
    };
    gemv_fn ggml_gemv[] = {
        (gemv_fn)kernels_backend_symbol("ggml_gemv_q4_0_8x8_q8_0"), NULL, NULL,
        (gemv_fn)kernels_backend_symbol("ggml_gemv_q4_K_8x8_q8_K"), NULL, NULL, NULL, NULL,
        (gemv_fn)kernels_backend_symbol("ggml_gemv_q2_K_8x8_q8_K"), NULL,
    };
    const size_t in_cache = 384u << 10, in_memory = 512u << 20;
    printf("one core, %d-wide rows; GB/s of weights (plain read from memory: %.1f)\n", n,
           read_rate(in_memory, 2));
    printf("%-14s %10s %10s %10s %10s\n", "", "hearth $", "ggml $", "hearth mem", "ggml mem");
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        const struct kind *k = &kinds[i];
        if (only && !strstr(k->name, only))
            continue;
        bool have_ggml = k->gemv ? ggml_gemv[i] != NULL : k->dot != NULL;
        bool have_hearth = k->gemv || k->rows;
        printf("%-14s %10.1f", k->name, have_hearth ? rate(k, true, in_cache, 400, ggml_gemv[i]) : 0.0);
        printf(" %10.1f", have_ggml ? rate(k, false, in_cache, 400, ggml_gemv[i]) : 0.0);
        printf(" %10.1f", have_hearth ? rate(k, true, in_memory, 2, ggml_gemv[i]) : 0.0);
        printf(" %10.1f\n", have_ggml ? rate(k, false, in_memory, 2, ggml_gemv[i]) : 0.0);
        fflush(stdout);
    }
    return 0;
}
