/*
 * test_attn.c: unit tests for src/engine/attn.{h,c} and attnp.{h,c}:
 * hearth's attention for one query row and for a prompt's rows, run inside
 * ggml's real graph executor (the test exports the operator as the worker
 * does), gives the exact softmax attention -- closer than ggml's own, which
 * rounds the query and accumulates in fp16 -- on the shapes models have,
 * and every case it was not written for still reaches ggml's operator
 * untouched.
 */
#include "check.h"
#include "engine/backends.h"
#include "engine/attn.h"
#include "engine/kernels.h"

#include <ggml-backend.h>
#include <ggml.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


typedef enum ggml_status (*compute_fn)(struct ggml_context *, struct ggml_cgraph *, int);
static compute_fn g_compute;
static bool g_avx512;

static uint32_t g_seed = 1;
static float rnd(float amp)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return amp * ((float)(g_seed >> 8) / 8388608.0f - 1.0f);
}

struct shape {
    int d, h, hkv, ns, nkv, nq;  /* nq: query rows per sequence */
    float qamp;                   /* query size: large values test the running max */
    int hole;                     /* every hole-th position masked (0: none) */
    bool blind_seq;               /* the last sequence sees nothing */
    float softcap;
    bool causal;                  /* query row r sees positions up to nkv - nq + r */
};

/* How a prompt's tensors are laid out, as llama.cpp may pass them (set by
 * the prompt test; zero elsewhere): extra mask rows, one mask for every
 * sequence, a finite value added at every 11th position, and queries as a
 * permuted view of [d, h, nq, ns]. */
static struct {
    int mpad;
    bool mshared;
    float mfinite;
    bool permuted;
} g_var;

struct fa {
    struct ggml_context *ctx;
    struct ggml_cgraph *gf;
    struct ggml_tensor *q, *k, *v, *m, *out;
};

static void fa_build(struct fa *f, const struct shape *s)
{
    struct ggml_init_params ip = { 64u << 20, NULL, false };
    f->ctx = ggml_init(ip);
    f->q = g_var.permuted ? ggml_permute(f->ctx,
                                         ggml_new_tensor_4d(f->ctx, GGML_TYPE_F32, s->d, s->h,
                                                            s->nq, s->ns),
                                         0, 2, 1, 3)
                          : ggml_new_tensor_4d(f->ctx, GGML_TYPE_F32, s->d, s->nq, s->h, s->ns);
    f->k = ggml_new_tensor_4d(f->ctx, GGML_TYPE_F16, s->d, s->nkv, s->hkv, s->ns);
    f->v = ggml_new_tensor_4d(f->ctx, GGML_TYPE_F16, s->d, s->nkv, s->hkv, s->ns);
    const int mrows = s->nq + g_var.mpad, mseqs = g_var.mshared ? 1 : s->ns;
    f->m = ggml_new_tensor_4d(f->ctx, GGML_TYPE_F16, s->nkv, mrows, 1, mseqs);
    float *q = f->q->data;            /* a view's data is its source's: all of it */
    for (int64_t i = 0; i < ggml_nelements(f->q); i++)
        q[i] = rnd(s->qamp);
    uint16_t *k = f->k->data, *v = f->v->data, *m = f->m->data;
    for (int64_t i = 0; i < ggml_nelements(f->k); i++) {
        k[i] = ggml_fp32_to_fp16(rnd(1.0f));
        v[i] = ggml_fp32_to_fp16(rnd(1.0f));
    }
    for (int sq = 0; sq < mseqs; sq++)
        for (int r = 0; r < mrows; r++)
            for (int i = 0; i < s->nkv; i++) {
                bool hidden = (s->hole && i % s->hole == 1) || (s->blind_seq && sq == s->ns - 1) ||
                              i > s->nkv - 1 - 13 * sq ||    /* causal-like tail per sequence */
                              (s->causal && i > s->nkv - s->nq + r);
                float add = g_var.mfinite != 0.0f && i % 11 == 4 ? g_var.mfinite : 0.0f;
                m[((size_t)sq * mrows + r) * s->nkv + i] = ggml_fp32_to_fp16(hidden ? -INFINITY : add);
            }
    f->out = ggml_flash_attn_ext(f->ctx, f->q, f->k, f->v, f->m, 1.0f / sqrtf((float)s->d), 0.0f,
                                 s->softcap);
    f->gf = ggml_new_graph(f->ctx);
    ggml_build_forward_expand(f->gf, f->out);
}

/* The exact result in double: softmax over the visible positions. */
static void reference(const struct fa *f, const struct shape *s, float *want)
{
    const int g = s->h / s->hkv;
    const uint16_t *k = f->k->data, *v = f->v->data;
    double *sc = malloc(sizeof(double) * (size_t)s->nkv);
    for (int sq = 0; sq < s->ns; sq++)
        for (int r = 0; r < s->nq; r++)
            for (int h = 0; h < s->h; h++) {
                const float *qr = (const float *)((const char *)f->q->data + r * f->q->nb[1] +
                                                  h * f->q->nb[2] + sq * f->q->nb[3]);
                const uint16_t *mr = (const uint16_t *)((const char *)f->m->data +
                                                        r * f->m->nb[1] +
                                                        (sq % f->m->ne[3]) * f->m->nb[3]);
                const size_t kvo = ((size_t)sq * s->hkv + h / g) * s->nkv * s->d;
                double mx = -INFINITY;
                for (int i = 0; i < s->nkv; i++) {
                    float mv = ggml_fp16_to_fp32(mr[i]);
                    double a = 0;
                    for (int d = 0; d < s->d; d++)
                        a += (double)qr[d] * ggml_fp16_to_fp32(k[kvo + (size_t)i * s->d + d]);
                    a /= sqrt((double)s->d);
                    if (s->softcap != 0.0f)
                        a = s->softcap * tanh(a / s->softcap);
                    sc[i] = mv == -INFINITY ? -INFINITY : a + mv;
                    if (sc[i] > mx)
                        mx = sc[i];
                }
                /* dst is [d, h, nq, ns] */
                float *out = want + (((size_t)sq * s->nq + r) * s->h + h) * s->d;
                for (int d = 0; d < s->d; d++) {
                    double num = 0, den = 0;
                    for (int i = 0; i < s->nkv; i++) {
                        if (sc[i] == -INFINITY)
                            continue;
                        double p = exp(sc[i] - mx);
                        den += p;
                        num += p * ggml_fp16_to_fp32(v[kvo + (size_t)i * s->d + d]);
                    }
                    out[d] = den > 0 ? (float)(num / den) : 0.0f;
                }
            }
    free(sc);
}

static double max_err(const float *got, const float *want, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= e))
            e = isnan(d) ? INFINITY : d;
    }
    return e;
}

/* Runs one shape with hearth's operator on (and ggml's), threads 1-3:
 * returns hearth's largest error, and ggml's through *ggml_err. */
static double run_shape(const struct shape *s, int threads, double *ggml_err, bool *taken)
{
    struct fa f;
    fa_build(&f, s);
    size_t n = (size_t)ggml_nelements(f.out);
    float *want = malloc(n * sizeof(float)), *ggml_out = malloc(n * sizeof(float));
    reference(&f, s, want);
    attn_set(false);
    CHECK(g_compute(f.ctx, f.gf, threads) == GGML_STATUS_SUCCESS);
    memcpy(ggml_out, f.out->data, n * sizeof(float));
    *ggml_err = max_err(ggml_out, want, n);
    memset(f.out->data, 0xFF, n * sizeof(float));        /* NaN: every row must be written */
    long before = attn_calls();
    attn_set(true);
    CHECK(g_compute(f.ctx, f.gf, threads) == GGML_STATUS_SUCCESS);
    *taken = attn_calls() > before;
    double e = max_err(f.out->data, want, n);
    if (!*taken)    /* not hearth's case: ggml's operator, bit for bit */
        CHECK(memcmp(f.out->data, ggml_out, n * sizeof(float)) == 0);
    free(want);
    free(ggml_out);
    ggml_free(f.ctx);
    return e;
}

/* Each shape on 1, 2, 3 and 8 threads: hearth's operator takes it, within
 * 2e-5 of the exact result (fp32 throughout), and ggml's own within its
 * fp16 error. */
static void near_exact(const char *what, const struct shape *shapes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int threads = 1; threads <= 8; threads += threads < 3 ? 1 : 5) {
            double ge;
            bool taken;
            double e = run_shape(&shapes[i], threads, &ge, &taken);
            CHECK(taken);
            if (e > 2e-5 || ge > 2e-2 || getenv("VERBOSE"))
                fprintf(stderr, "  %s shape %zu threads %d: hearth %.2e ggml %.2e\n", what, i,
                        threads, e, ge);
            CHECK(e <= 2e-5);
            CHECK(ge <= 2e-2);
        }
}

TEST(backend_exports_what_hearth_needs)
{
    CHECK(g_compute != NULL);
    CHECK(kernels_backend_symbol("ggml_compute_forward_flash_attn_ext") != NULL);
}

TEST(init_follows_mode_and_cpu)
{
    CHECK(!attn_init("off"));
    CHECK(!attn_active());
    CHECK(!attn_set(true));                /* the check never ran: stays off */
    CHECK(attn_init("auto") == g_avx512);
    CHECK(attn_active() == g_avx512);
    /* the check ran a graph through ggml and reached hearth's operator */
    CHECK(attn_calls() > 0 || !g_avx512);
}

TEST(decode_matches_exact_attention)
{
    if (!g_avx512 || !attn_init("auto"))
        return;
    const struct shape shapes[] = {
        /* 0.5B llama shape: 14 heads on 2 KV heads, one and four sequences */
        { 64, 14, 2, 1, 37, 1, 1.0f, 0, false, 0, false },
        { 64, 14, 2, 4, 300, 1, 1.0f, 5, false, 0, false },
        /* no grouping; 1.1B-like groups; the largest group; wide heads */
        { 128, 8, 8, 2, 513, 1, 1.0f, 0, false, 0, false },
        { 64, 32, 4, 1, 1000, 1, 1.0f, 3, false, 0, false },
        { 128, 32, 2, 1, 700, 1, 1.0f, 0, false, 0, false },
        { 256, 4, 1, 2, 20, 1, 1.0f, 0, false, 0, false },
        { 80, 4, 2, 1, 90, 1, 1.0f, 0, false, 0, false },
        /* large scores: the running maximum moves between tiles */
        { 64, 4, 2, 2, 800, 1, 12.0f, 0, false, 0, false },
        /* a sequence that sees nothing gives zeros, as ggml's does */
        { 64, 4, 2, 2, 50, 1, 1.0f, 0, true, 0, false },
    };
    near_exact("decode", shapes, sizeof shapes / sizeof shapes[0]);
}

/* A prompt's query rows (engine/attnp.h): rows across lanes in blocks of
 * at most 64 (query positions times the heads of a group), tiles of 64
 * positions that no row sees skipped, the mask applied where it is not
 * all 0. */
TEST(prompts_match_exact_attention)
{
    if (!g_avx512 || !attn_init("auto"))
        return;
    const struct shape shapes[] = {
        /* 0.5B: groups of 7, blocks of 9 positions (63 rows), causal */
        { 64, 14, 2, 1, 200, 37, 1.0f, 0, false, 0, true },
        /* 1.1B-like groups of 4 (blocks of 16), two sequences, holes */
        { 64, 32, 8, 2, 300, 70, 1.0f, 5, false, 0, true },
        /* no grouping (blocks of 64 positions, a second block of 1) */
        { 128, 8, 8, 1, 150, 65, 1.0f, 0, false, 0, true },
        /* the widest heads; the largest group (blocks of 4) */
        { 256, 4, 1, 2, 90, 20, 1.0f, 3, false, 0, true },
        { 64, 16, 1, 1, 130, 9, 1.0f, 0, false, 0, true },
        /* large scores: the running maximum moves between tiles */
        { 64, 4, 2, 2, 300, 33, 12.0f, 0, false, 0, true },
        /* a sequence that sees nothing gives zeros; a mask all 0 but its tail */
        { 64, 4, 2, 2, 50, 17, 1.0f, 0, true, 0, false },
        { 64, 14, 2, 1, 100, 5, 1.0f, 0, false, 0, false },
        /* head widths of 16 but not of 64 (Phi-2's 80, Phi-3's 96, 112) */
        { 80, 32, 32, 1, 120, 21, 1.0f, 0, false, 0, true },
        { 96, 32, 8, 2, 140, 40, 1.0f, 2, false, 0, true },
        { 112, 6, 2, 1, 70, 11, 1.0f, 0, false, 0, true },
        { 16, 4, 4, 1, 66, 64, 1.0f, 0, false, 0, true },
    };
    near_exact("prompt", shapes, sizeof shapes / sizeof shapes[0]);
    /* as llama.cpp lays them out: queries a permuted view, the mask padded
     * with extra rows and shared by the sequences; and finite values added */
    const struct shape two = { 64, 14, 2, 2, 200, 37, 1.0f, 5, false, 0, true };
    for (int variant = 0; variant < 3; variant++) {
        memset(&g_var, 0, sizeof g_var);
        g_var.permuted = variant != 1;
        g_var.mpad = variant == 0 ? 27 : 0;
        g_var.mshared = variant != 1;
        g_var.mfinite = variant >= 1 ? -2.5f : 0.0f;
        double ge;
        bool taken;
        double e = run_shape(&two, 2, &ge, &taken);
        CHECK(taken);
        if (e > 2e-5 || getenv("VERBOSE"))
            fprintf(stderr, "  prompt variant %d: hearth %.2e ggml %.2e\n", variant, e, ge);
        CHECK(e <= 2e-5);
    }
    memset(&g_var, 0, sizeof g_var);
}

TEST(other_cases_reach_ggml)
{
    if (!g_avx512 || !attn_init("auto"))
        return;
    const struct shape shapes[] = {
        { 72, 4, 2, 1, 40, 3, 1.0f, 0, false, 0, false },     /* several rows, width not of 16 */
        { 64, 4, 2, 1, 40, 3, 1.0f, 0, false, 30.0f, false }, /* several rows, soft-capping */
        { 64, 4, 2, 1, 40, 1, 1.0f, 0, false, 30.0f, false }, /* soft-capping */
        { 8, 8, 4, 1, 40, 1, 1.0f, 0, false, 0, false },      /* head width not a multiple of 16 */
        { 64, 34, 2, 1, 40, 1, 1.0f, 0, false, 0, false },    /* group of 17 */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double ge;
        bool taken;
        run_shape(&shapes[i], 2, &ge, &taken);
        CHECK(!taken);
    }
}

int main(void)
{
    backends_load();
    g_compute = (compute_fn)kernels_backend_symbol("ggml_graph_compute_with_ctx");
    g_avx512 = kernels_cpu_ok();
    /* each test forks; ggml's thread pool starts in the child */
    RUN(backend_exports_what_hearth_needs);
    if (!g_compute)
        return check_summary();
    RUN(init_follows_mode_and_cpu);
    RUN(decode_matches_exact_attention);
    RUN(prompts_match_exact_attention);
    RUN(other_cases_reach_ggml);
    return check_summary();
}
