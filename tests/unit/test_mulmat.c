/*
 * test_mulmat.c: unit tests for src/engine/mulmat.{h,c}: single-row
 * products with matrices in ggml's real repacked buffer, run through ggml's
 * real graph executor (the test exports the hook and the kernels, as the
 * worker does), equal ggml's own operator to the bit on layer shapes and
 * thread counts from 1 to 8, and so do single rows against the plain and
 * repacked matrices of every type hearth schedules (quantized by ggml);
 * prompts against Q5_0, Q5_K, Q6_K and Q8_0 matrices agree to rounding
 * (the K-quants' held against the exact product); every other product still reaches ggml's.
 */
#include "check.h"
#include "engine/backends.h"
#include "engine/kernels.h"
#include "engine/kfloat.h"
#include "engine/kquant.h"
#include "engine/mulmat.h"

#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>
#include <math.h>
#include <stdint.h>
#include <string.h>


typedef enum ggml_status (*compute_fn)(struct ggml_context *, struct ggml_cgraph *, int);
typedef ggml_backend_buffer_type_t (*buft_fn)(void);
static compute_fn g_compute;
static ggml_backend_buffer_type_t g_repack;
static bool g_vnni;

static uint32_t g_seed = 7;
static uint32_t rnd(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return g_seed >> 8;
}

/* n rows of k random values in [-1, 1], in `t` as ggml quantizes them */
static void *quant_rows(enum ggml_type t, int k, int n, size_t *bytes)
{
    float *src = malloc(sizeof(float) * (size_t)k * n);
    for (size_t i = 0; i < (size_t)k * n; i++)
        src[i] = (float)rnd() / 8388608.0f - 1.0f;
    void *q = malloc(ggml_row_size(t, k) * n);
    *bytes = ggml_quantize_chunk(t, src, q, 0, n, k, NULL);
    free(src);
    return q;
}

struct case_ {
    int k, n, rows;          /* inner size, output rows, activation rows */
    enum ggml_type type;
    bool repacked;           /* weights in ggml's repacked buffer */
};

/* ggml's result, then the result with hearth's operator on; returns
 * whether hearth's computed it, and checks the two are identical. */
static bool run_case_tol(const struct case_ *c, int threads, float tol)
{
    struct ggml_init_params wp = { 4 * ggml_tensor_overhead(), NULL, true };
    struct ggml_context *wctx = ggml_init(wp);
    struct ggml_tensor *w = ggml_new_tensor_2d(wctx, c->type, c->k, c->n);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(
        wctx, c->repacked ? g_repack : ggml_backend_cpu_buffer_type());
    CHECK(buf != NULL);
    size_t bytes;
    void *q = quant_rows(c->type, c->k, c->n, &bytes);
    ggml_backend_tensor_set(w, q, 0, bytes);
    free(q);

    struct ggml_init_params cp = { 64u << 20, NULL, false };
    struct ggml_context *ctx = ggml_init(cp);
    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, c->k, c->rows);
    float *xd = x->data;
    for (int64_t i = 0; i < ggml_nelements(x); i++)
        xd[i] = (float)rnd() / 8388608.0f * 4.0f - 2.0f;
    struct ggml_tensor *y = ggml_mul_mat(ctx, w, x);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, y);

    size_t n = (size_t)ggml_nelements(y);
    float *want = malloc(n * sizeof(float));
    mulmat_set(false);
    CHECK(g_compute(ctx, gf, threads) == GGML_STATUS_SUCCESS);
    memcpy(want, y->data, n * sizeof(float));
    memset(y->data, 0xFF, n * sizeof(float));
    long before = mulmat_calls();
    mulmat_set(true);
    CHECK(g_compute(ctx, gf, threads) == GGML_STATUS_SUCCESS);
    bool taken = mulmat_calls() > before;
    if (tol == 0) {
        CHECK(memcmp(want, y->data, n * sizeof(float)) == 0);
    } else {
        const float *got = y->data;
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double e = fabs((double)got[i] - want[i]) / (fabs((double)want[i]) + 1.0);
            worst = e > worst || isnan(e) ? e : worst;
        }
        if (worst > tol)
            fprintf(stderr, "  k %d n %d rows %d: worst %.2e\n", c->k, c->n, c->rows, worst);
        CHECK(worst <= tol);
    }
    free(want);
    ggml_free(ctx);
    ggml_backend_buffer_free(buf);
    ggml_free(wctx);
    return taken;
}

static bool run_case(const struct case_ *c, int threads)
{
    return run_case_tol(c, threads, 0);
}

TEST(backend_exports_what_hearth_needs)
{
    CHECK(g_compute != NULL);
    CHECK(g_repack != NULL);
    CHECK(kernels_backend_symbol("ggml_cpu_extra_compute_forward") != NULL);
    CHECK(kernels_backend_symbol("quantize_row_q8_0") != NULL);
}

TEST(init_follows_mode_and_kernels)
{
    CHECK(!mulmat_init("off"));
    CHECK(!mulmat_active());
    CHECK(!mulmat_set(true));              /* the checks never ran: stays off */
    kernels_init("off");
    CHECK(mulmat_init("auto") == g_vnni);  /* ggml's kernels, hearth's schedule */
    CHECK(!mulmat_active_for(GGML_TYPE_Q4_0, true));   /* repacked Q4_0 is hearth's kernel */
    CHECK(mulmat_active_for(GGML_TYPE_Q6_K, false) == g_vnni);
    kernels_init("auto");
    CHECK(mulmat_init("auto") == g_vnni);
    CHECK(mulmat_active() == g_vnni);
    CHECK(mulmat_active_for(GGML_TYPE_Q4_0, true) == g_vnni);
    CHECK(mulmat_active_for(GGML_TYPE_Q8_0, false) == g_vnni);
    CHECK(!mulmat_active_for(GGML_TYPE_F32, false));
}

TEST(single_rows_match_ggml_bit_for_bit)
{
    kernels_init("auto");
    kernels_q5_0_quads(false);      /* Q5_0 by pairs: the dot product's bits */
    if (!g_vnni || !mulmat_init("auto"))
        return;
    const struct case_ cases[] = {
        { 896, 896, 1, GGML_TYPE_Q4_0, true },     /* 0.5B attention */
        { 896, 128, 1, GGML_TYPE_Q4_0, true },     /* its K and V */
        { 896, 4864, 1, GGML_TYPE_Q4_0, true },    /* gate and up */
        { 4864, 896, 1, GGML_TYPE_Q4_0, true },    /* down */
        { 2048, 5632, 1, GGML_TYPE_Q4_0, true },   /* 1.1B */
        { 32, 8, 1, GGML_TYPE_Q4_0, true },        /* one group of one block */
        { 256, 24, 1, GGML_TYPE_Q4_0, true },      /* groups not divisible by threads */
        { 896, 896, 1, GGML_TYPE_Q8_0, false },    /* Q8_0: rows of a plain matrix */
        { 4864, 896, 1, GGML_TYPE_Q8_0, false },
        { 896, 4864, 1, GGML_TYPE_Q8_0, false },
        { 32, 3, 1, GGML_TYPE_Q8_0, false },       /* fewer rows than threads */
        { 2048, 5632, 1, GGML_TYPE_Q4_K, true },   /* K-quants, repacked and plain */
        { 2048, 256, 1, GGML_TYPE_Q2_K, true },
        { 896, 256, 1, GGML_TYPE_IQ4_NL, true },
        { 5632, 2048, 1, GGML_TYPE_Q6_K, false },
        { 2048, 512, 1, GGML_TYPE_Q5_K, false },
        { 2048, 512, 1, GGML_TYPE_Q4_K, false },
        { 2048, 512, 1, GGML_TYPE_Q3_K, false },
        { 2048, 512, 1, GGML_TYPE_IQ4_XS, false },
        { 896, 512, 1, GGML_TYPE_Q5_0, false },
        { 896, 512, 1, GGML_TYPE_Q4_1, false },
        { 896, 128, 1, GGML_TYPE_Q4_0, false },    /* Q4_0 in a plain buffer */
        { 896, 96, 1, GGML_TYPE_BF16, false },     /* BF16 (F16: below) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int threads = 1; threads <= 8; threads += threads < 3 ? 1 : 5)
            CHECK(run_case(&cases[i], threads));
}

/* F16 rows through hearth's kernel (engine/kfloat.h): ggml's products in
 * another order, so equal to float rounding; the model shapes, and widths
 * that end inside a step of 64 and of 16 elements. */
TEST(single_rows_f16_match_ggml)
{
    kernels_init("auto");
    if (!g_vnni || !kfloat_init("auto") || !mulmat_init("auto"))
        return;
    CHECK(mulmat_active_for(GGML_TYPE_F16, false));
    const struct case_ cases[] = {
        { 896, 896, 1, GGML_TYPE_F16, false },  { 4864, 896, 1, GGML_TYPE_F16, false },
        { 2048, 700, 1, GGML_TYPE_F16, false }, { 1000, 33, 1, GGML_TYPE_F16, false },
        { 100, 40, 1, GGML_TYPE_F16, false },   { 7, 5, 1, GGML_TYPE_F16, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int threads = 1; threads <= 8; threads += threads < 3 ? 1 : 5)
            CHECK(run_case_tol(&cases[i], threads, 1e-4f));
    /* with hearth's kernels off, ggml's dot product row by row: its bits */
    kernels_init("off");
    kfloat_init("off");
    CHECK(mulmat_init("auto"));
    for (size_t i = 0; i < 2; i++)
        CHECK(run_case(&cases[i], 2));
}

/* Q5_0 rows by quads of blocks (where the CPU has AVX-512 VBMI and
 * BITALG): another summation order than the dot product ggml's operator
 * calls, so equal to float rounding, on the 0.5B shapes, a width with a
 * block after the last quad, and rows past the quads' limit. */
TEST(single_rows_q5_0_quads_match_ggml)
{
    kernels_init("auto");
    if (!g_vnni || !kernels_q5_0_quads(true) || !mulmat_init("auto"))
        return;
    CHECK(mulmat_active_for(GGML_TYPE_Q5_0, false));
    const struct case_ cases[] = {
        { 896, 512, 1, GGML_TYPE_Q5_0, false },
        { 4864, 896, 1, GGML_TYPE_Q5_0, false },
        { 896, 4864, 1, GGML_TYPE_Q5_0, false },
        { 928, 300, 1, GGML_TYPE_Q5_0, false },
        { 96, 40, 1, GGML_TYPE_Q5_0, false },       /* no whole quad */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int threads = 1; threads <= 8; threads += threads < 3 ? 1 : 5)
            CHECK(run_case_tol(&cases[i], threads, 1e-4f));
}

/* A prompt's rows against plain Q5_0 matrices (llama-quantize's fallback in
 * "Q4_K_M" files for rows not a multiple of 256 wide): hearth's kernels sum
 * in another order, so equal to float rounding; a last tile of 22 rows
 * (its second half partly filled). */
TEST(prompt_rows_q5_0_match_ggml)
{
    kernels_init("auto");
    if (!g_vnni || !mulmat_init("auto"))
        return;
    /* 2 to 13 rows: hearth's Q5_0 rows kernel; 16 and more: kgemm's tiles */
    const int ms[] = { 2, 7, 8, 13, 17, 21, 64, 530 };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        const struct case_ a = { 896, 896, ms[i], GGML_TYPE_Q5_0, false };
        const struct case_ b = { 4864, 136, ms[i], GGML_TYPE_Q5_0, false };
        const struct case_ c = { 96, 150, ms[i], GGML_TYPE_Q5_0, false };   /* tile of 22 */
        for (int threads = 1; threads <= 8; threads += threads < 3 ? 1 : 5) {
            CHECK(run_case_tol(&a, threads, 2e-4f));
            CHECK(run_case_tol(&b, threads, 2e-4f));
            CHECK(run_case_tol(&c, threads, 2e-4f));
        }
    }
}

/* One activation row against a repacked Q4_K or a plain Q6_K or Q5_K matrix
 * through hearth's kernels (engine/kquant.h), with both results held
 * against the exact
 * product of the dequantized weights and the dequantized Q8_K activation:
 * hearth's may differ from ggml's (another summation order), but must be
 * at least as close to the exact value. The activation has a mean (values
 * in -2..6), so Q4_K's unsigned quants make terms ~10^3 times the result:
 * the case where float summation order shows. */
static void k_against_exact_rows(enum ggml_type type, bool repacked, int k, int n, int rows,
                                 int threads, double *e_ggml, double *e_ours)
{
    struct ggml_init_params wp = { 4 * ggml_tensor_overhead(), NULL, true };
    struct ggml_context *wctx = ggml_init(wp);
    struct ggml_tensor *w = ggml_new_tensor_2d(wctx, type, k, n);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(
        wctx, repacked ? g_repack : ggml_backend_cpu_buffer_type());
    CHECK(buf != NULL);
    size_t bytes;
    void *q = quant_rows(type, k, n, &bytes);
    ggml_backend_tensor_set(w, q, 0, bytes);
    float *wf = malloc(sizeof(float) * (size_t)k * n);
    ggml_get_type_traits(type)->to_float(q, wf, (int64_t)k * n);
    free(q);
    struct ggml_init_params cp = { 64u << 20, NULL, false };
    struct ggml_context *ctx = ggml_init(cp);
    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, rows);
    float *xd = x->data;
    for (int64_t i = 0; i < (int64_t)k * rows; i++)
        xd[i] = (float)rnd() / 8388608.0f * 4.0f - 2.0f;
    /* the activation as the kernels see it: quantized to Q8_K */
    void *xq = malloc(ggml_row_size(GGML_TYPE_Q8_K, k));
    float *xf = malloc(sizeof(float) * (size_t)k * rows);
    typedef const struct ggml_type_traits_cpu *(*traits_fn)(enum ggml_type);
    traits_fn traits = (traits_fn)kernels_backend_symbol("ggml_get_type_traits_cpu");
    for (int j = 0; j < rows; j++) {
        traits(GGML_TYPE_Q8_K)->from_float(xd + (size_t)j * k, xq, k);
        for (int i = 0; i < k; i++) {             /* block_q8_K: float d, int8 qs[256], ... */
            const uint8_t *blk = (const uint8_t *)xq + (size_t)(i / 256) * 292;
            float d;
            memcpy(&d, blk, 4);
            xf[(size_t)j * k + i] = d * (float)(int8_t)blk[4 + i % 256];
        }
    }
    struct ggml_tensor *y = ggml_mul_mat(ctx, w, x);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, y);
    const size_t outn = (size_t)n * rows;
    float *want = malloc(sizeof(float) * outn);
    mulmat_set(false);
    CHECK(g_compute(ctx, gf, threads) == GGML_STATUS_SUCCESS);
    memcpy(want, y->data, sizeof(float) * outn);
    memset(y->data, 0xFF, sizeof(float) * outn);
    long before = mulmat_calls();
    mulmat_set(true);
    CHECK(g_compute(ctx, gf, threads) == GGML_STATUS_SUCCESS);
    CHECK(mulmat_calls() > before);
    const float *got = y->data;
    *e_ggml = *e_ours = 0;
    for (int j = 0; j < rows; j++)
        for (int r = 0; r < n; r++) {
            double exact = 0;
            for (int i = 0; i < k; i++)
                exact += (double)wf[(size_t)r * k + i] * xf[(size_t)j * k + i];
            const size_t at = (size_t)j * n + r;
            *e_ggml = fmax(*e_ggml, fabs(want[at] - exact) / (fabs(exact) + 1.0));
            double e = fabs(got[at] - exact) / (fabs(exact) + 1.0);
            *e_ours = isnan(e) ? INFINITY : fmax(*e_ours, e);   /* every output written */
        }
    free(want), free(wf), free(xq), free(xf);
    ggml_free(ctx);
    ggml_backend_buffer_free(buf);
    ggml_free(wctx);
}

static void k_against_exact(enum ggml_type type, bool repacked, int k, int n, int threads,
                            double *e_ggml, double *e_ours)
{
    k_against_exact_rows(type, repacked, k, n, 1, threads, e_ggml, e_ours);
}

TEST(single_rows_k_quants_as_close_as_ggml)
{
    kernels_init("auto");
    if (!g_vnni || !kquant_init("auto") || !kquant_q6_K_active() || !mulmat_init("auto"))
        return;
    const struct {
        enum ggml_type type;
        bool repacked;
        int k, n;
    } shapes[] = {
        { GGML_TYPE_Q4_K, true, 2048, 5632 }, { GGML_TYPE_Q4_K, true, 5632, 2048 },
        { GGML_TYPE_Q4_K, true, 4864, 896 },  { GGML_TYPE_Q4_K, true, 256, 24 },
        { GGML_TYPE_Q6_K, false, 8192, 512 }, { GGML_TYPE_Q6_K, false, 2048, 3200 },
        { GGML_TYPE_Q6_K, false, 256, 7 },
        { GGML_TYPE_Q5_K, false, 2048, 5632 }, { GGML_TYPE_Q5_K, false, 8192, 512 },
        { GGML_TYPE_Q5_K, false, 256, 7 },
        { GGML_TYPE_Q3_K, false, 2048, 5632 }, { GGML_TYPE_Q3_K, false, 8192, 512 },
        { GGML_TYPE_Q3_K, false, 256, 7 },
        { GGML_TYPE_IQ4_XS, false, 2048, 5632 }, { GGML_TYPE_IQ4_XS, false, 8192, 512 },
        { GGML_TYPE_IQ4_XS, false, 256, 7 },
        { GGML_TYPE_Q2_K, true, 2048, 5632 }, { GGML_TYPE_Q2_K, true, 8192, 512 },
        { GGML_TYPE_Q2_K, true, 256, 24 },
    };
    /* on a VNNI CPU the Q5_K, Q3_K and IQ4_XS kernels' start-up checks must pass;
     * should one fail, that is reported here and its shapes are left out */
    CHECK(kquant_q5_K_active());
    CHECK(kquant_q3_K_active());
    CHECK(kquant_iq4_xs_active());
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int threads = 1; threads <= 8; threads += threads < 3 ? 1 : 5) {
            if ((shapes[i].type == GGML_TYPE_Q5_K && !kquant_q5_K_active()) ||
                (shapes[i].type == GGML_TYPE_Q3_K && !kquant_q3_K_active()) ||
                (shapes[i].type == GGML_TYPE_IQ4_XS && !kquant_iq4_xs_active()) ||
                (shapes[i].type == GGML_TYPE_Q2_K && !kquant_q2_K_active()))
                continue;
            double eg, eo;
            k_against_exact(shapes[i].type, shapes[i].repacked, shapes[i].k, shapes[i].n, threads,
                            &eg, &eo);
            if (getenv("VERBOSE") || !(eo <= eg * 1.25 + 2e-5 && eo < 1e-3))
                fprintf(stderr, "  %s %dx%d, %d threads: ggml %.2e, hearth %.2e from exact\n",
                        ggml_type_name(shapes[i].type), shapes[i].k, shapes[i].n, threads, eg, eo);
            CHECK(eo <= eg * 1.25 + 2e-5);
            CHECK(eo < 1e-3);
            /* hearth's Q5_K kernel, not ggml's dot product, computed it:
             * it keeps the scale and min terms in double, so on wide rows
             * it is far closer to the exact value (measured: ~100x) */
            if (shapes[i].type == GGML_TYPE_Q5_K && shapes[i].k >= 2048)
                CHECK(eo * 10 < eg);
        }
}

/* A prompt's rows (16 or more) against plain Q5_K, Q6_K, Q3_K and IQ4_XS matrices go
 * through engine/kgemm.h: register tiles of 32 weight rows by 6 activation
 * rows. Shapes with partial tiles on both sides (n not a multiple of 32,
 * rows not of 6: every tail from 1 to 5), the layer shapes of a 1.1B
 * model, more rows than one block, thread counts 1 to 8; held against the
 * exact product, as the single rows above. */
TEST(prompt_rows_k_quants_as_close_as_ggml)
{
    kernels_init("auto");
    if (!g_vnni || !mulmat_init("auto"))
        return;
    const struct {
        int k, n, rows;
    } shapes[] = {
        { 256, 40, 16 }, { 256, 7, 17 }, { 2048, 300, 19 }, { 2048, 512, 64 },
        { 8192, 64, 23 }, { 512, 96, 100 },
        /* tails of 2 and 3 activation rows; weight tiles of 25, 18 and 13 rows */
        { 256, 57, 20 }, { 512, 50, 18 }, { 768, 45, 21 },
        /* more rows than the kernel takes at a time (512): a second block of 18 */
        { 256, 40, 530 },
    };
    const enum ggml_type types[] = { GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_Q3_K,
                                     GGML_TYPE_IQ4_XS };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int threads = 1; threads <= 8; threads += threads < 3 ? 1 : 5) {
                double eg, eo;
                k_against_exact_rows(types[t], false, shapes[i].k, shapes[i].n, shapes[i].rows,
                                     threads, &eg, &eo);
                if (getenv("VERBOSE") || !(eo <= eg * 1.25 + 2e-5 && eo < 1e-3))
                    fprintf(stderr, "  %s %dx%d by %d rows, %d threads: ggml %.2e, hearth %.2e\n",
                            ggml_type_name(types[t]), shapes[i].k, shapes[i].n, shapes[i].rows,
                            threads, eg, eo);
                CHECK(eo <= eg * 1.25 + 2e-5);
                CHECK(eo < 1e-3);
                /* Q5_K's scale and min terms meet with the min's rounding
                 * kept: on wide rows ~5x closer to the exact value than
                 * ggml's float sums (measured) */
                if (types[t] == GGML_TYPE_Q5_K && shapes[i].k >= 2048)
                    CHECK(eo * 3 < eg);
            }
    /* fewer than 16 rows stay with ggml's operator, to the bit */
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const struct case_ few = { 2048, 64, 15, types[t], false };
        CHECK(!run_case(&few, 2));
    }
}

/* A prompt's rows against plain Q8_0 matrices (engine/kgemm.h's Q8_0
 * tiles): each block's sum exact in integers, so equal to ggml's to float
 * rounding; blocks in passes of 128 (a 4864-wide row takes two), partial
 * tiles, more rows than one block; fewer than 16 rows left to ggml. */
TEST(prompt_rows_q8_0_match_ggml)
{
    kernels_init("auto");
    if (!g_vnni || !mulmat_init("auto"))
        return;
    const struct case_ cases[] = {
        { 896, 300, 20, GGML_TYPE_Q8_0, false }, { 4864, 72, 37, GGML_TYPE_Q8_0, false },
        { 96, 40, 16, GGML_TYPE_Q8_0, false },   { 896, 45, 530, GGML_TYPE_Q8_0, false },
        { 2048, 64, 64, GGML_TYPE_Q8_0, false },
        /* last tiles of 27 and 17 rows (the second half partly filled); tails of
         * 5 and 3 activation rows */
        { 896, 59, 17, GGML_TYPE_Q8_0, false },  { 4864, 81, 21, GGML_TYPE_Q8_0, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int threads = 1; threads <= 8; threads += threads < 3 ? 1 : 5)
            CHECK(run_case_tol(&cases[i], threads, 1e-4f));
    const struct case_ few = { 896, 64, 15, GGML_TYPE_Q8_0, false };
    CHECK(!run_case(&few, 2));
}

TEST(other_products_reach_ggml)
{
    kernels_init("auto");
    if (!g_vnni || !mulmat_init("auto"))
        return;
    const struct case_ cases[] = {
        { 896, 128, 4, GGML_TYPE_Q4_0, true },     /* four rows: ggml's gemm path */
        { 896, 128, 3, GGML_TYPE_Q4_0, true },
        { 896, 128, 2, GGML_TYPE_Q8_0, false },    /* Q8_0, two rows */
        { 896, 128, 2, GGML_TYPE_F16, false },
        { 2048, 64, 5, GGML_TYPE_Q4_K, true },
        { 896, 128, 1, GGML_TYPE_F32, false },     /* F32 weights */
        { 32 * 1040, 8, 1, GGML_TYPE_F16, false }, /* a row longer than hearth's stack copy */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(!run_case(&cases[i], 2));
}

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

int main(void)
{
    ggml_log_set(quiet, NULL);          /* not ggml's line per repacked matrix */
    backends_load();
    g_compute = (compute_fn)kernels_backend_symbol("ggml_graph_compute_with_ctx");
    buft_fn repack = (buft_fn)kernels_backend_symbol("_Z35ggml_backend_cpu_repack_buffer_typev");
    g_repack = repack ? repack() : NULL;
    g_vnni = kernels_cpu_ok();
    /* each test forks; ggml's thread pool starts in the child */
    RUN(backend_exports_what_hearth_needs);
    if (!g_compute || !g_repack)
        return check_summary();
    RUN(init_follows_mode_and_kernels);
    RUN(single_rows_match_ggml_bit_for_bit);
    RUN(single_rows_f16_match_ggml);
    RUN(single_rows_q5_0_quads_match_ggml);
    RUN(prompt_rows_q5_0_match_ggml);
    RUN(single_rows_k_quants_as_close_as_ggml);
    RUN(prompt_rows_k_quants_as_close_as_ggml);
    RUN(prompt_rows_q8_0_match_ggml);
    RUN(other_products_reach_ggml);
    return check_summary();
}
