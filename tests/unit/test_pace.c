/*
 * test_pace.c: unit tests for src/engine/pace.{h,c}: hearth's barrier in
 * ggml's real executor (the test exports it, as the worker does) computes
 * the same bits as ggml's on 1 to 4 threads, shares move towards the faster
 * thread and always partition a matrix, and a decode-like graph run again
 * and again is learned as a schedule, is fetched ahead while threads wait,
 * and still gives ggml's result to the bit.
 */
#include "check.h"
#include "engine/backends.h"
#include "engine/kernels.h"
#include "engine/mulmat.h"
#include "engine/pace.h"

#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>
#include <stdint.h>
#include <string.h>

typedef enum ggml_status (*compute_fn)(struct ggml_context *, struct ggml_cgraph *, int);
typedef ggml_backend_buffer_type_t (*buft_fn)(void);
static compute_fn g_compute;
static ggml_backend_buffer_type_t g_repack;

static uint32_t g_seed = 11;
static float rndf(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)(g_seed >> 8) / 8388608.0f - 1.0f;
}

/* A k x n matrix in `t` (no data until its context is allocated). */
static struct ggml_tensor *matrix(struct ggml_context *wctx, enum ggml_type t, int k, int n)
{
    return ggml_new_tensor_2d(wctx, t, k, n);
}

/* Random weights, quantized by ggml. */
static void fill(struct ggml_tensor *w)
{
    int k = (int)w->ne[0], n = (int)w->ne[1];
    float *src = malloc(sizeof(float) * (size_t)k * n);
    for (size_t i = 0; i < (size_t)k * n; i++)
        src[i] = rndf() * 0.05f;
    void *q = malloc(ggml_row_size(w->type, k) * n);
    size_t bytes = ggml_quantize_chunk(w->type, src, q, 0, n, k, NULL);
    ggml_backend_tensor_set(w, q, 0, bytes);
    free(q);
    free(src);
}

/* A decode-like graph: layers of norm, single-row products against
 * repacked Q4_0 and plain Q8_0 matrices, an activation and residual
 * additions. Repacked weights live in ggml's repacked buffer, the others in
 * a plain one. */
struct decode {
    struct ggml_context *wctx, *pctx, *ctx;
    ggml_backend_buffer_t packed, plain;
    struct ggml_cgraph *gf;
    struct ggml_tensor *out;
};

static bool decode_make(struct decode *d, int layers)
{
    enum { D = 512, F = 1024 };
    struct ggml_init_params wp = { (size_t)(3 * layers + 2) * ggml_tensor_overhead(), NULL, true };
    struct ggml_init_params wq = wp;
    d->wctx = ggml_init(wp);
    d->pctx = ggml_init(wq);
    struct ggml_context *pctx = d->pctx;
    struct ggml_tensor *wq_[8], *wu[8], *wd[8];
    for (int l = 0; l < layers; l++) {
        wq_[l] = matrix(pctx, GGML_TYPE_Q4_0, D, D);
        wu[l] = matrix(d->wctx, GGML_TYPE_Q8_0, D, F);
        wd[l] = matrix(d->wctx, GGML_TYPE_Q8_0, F, D);
    }
    d->packed = ggml_backend_alloc_ctx_tensors_from_buft(pctx, g_repack);
    d->plain = ggml_backend_alloc_ctx_tensors_from_buft(d->wctx, ggml_backend_cpu_buffer_type());
    if (!d->packed || !d->plain)
        return false;
    for (int l = 0; l < layers; l++) {
        fill(wq_[l]);
        fill(wu[l]);
        fill(wd[l]);
    }
    struct ggml_init_params cp = { 16u << 20, NULL, false };
    d->ctx = ggml_init(cp);
    struct ggml_tensor *x = ggml_new_tensor_1d(d->ctx, GGML_TYPE_F32, D);
    float *xd = x->data;
    for (int i = 0; i < D; i++)
        xd[i] = rndf();
    for (int l = 0; l < layers; l++) {
        struct ggml_tensor *h = ggml_rms_norm(d->ctx, x, 1e-6f);
        struct ggml_tensor *q = ggml_mul_mat(d->ctx, wq_[l], h);
        struct ggml_tensor *u = ggml_silu(d->ctx, ggml_mul_mat(d->ctx, wu[l], h));
        struct ggml_tensor *dn = ggml_mul_mat(d->ctx, wd[l], u);
        x = ggml_add(d->ctx, ggml_add(d->ctx, x, q), dn);
    }
    d->out = x;
    d->gf = ggml_new_graph(d->ctx);
    ggml_build_forward_expand(d->gf, x);
    return true;
}

static void decode_free(struct decode *d)
{
    ggml_free(d->ctx);
    ggml_backend_buffer_free(d->packed);
    ggml_backend_buffer_free(d->plain);
    ggml_free(d->wctx);
    ggml_free(d->pctx);
}

TEST(init_follows_mode)
{
    CHECK(!pace_init("off"));
    CHECK(!pace_active());
    CHECK(pace_init("auto"));          /* Debian's ggml is the OpenMP build */
    CHECK(pace_active());
    CHECK(pace_init(NULL));
    CHECK(!pace_init("off"));
}

/* Without a rate measured, shares are equal and partition [0, units). */
TEST(shares_partition_the_matrix)
{
    pace_init("off");
    for (int nth = 1; nth <= 5; nth++)
        for (int64_t units = 0; units < 40; units++) {
            int64_t next = 0;
            for (int i = 0; i < nth; i++) {
                int64_t u0, u1;
                pace_share(units, i, nth, &u0, &u1);
                CHECK_EQ_INT(u0, next);
                CHECK(u1 >= u0);
                next = u1;
            }
            CHECK_EQ_INT(next, units);
        }
}

/* Thread 1 reports a third of thread 0's rate: before the next graph, thread
 * 0's share grows (a quarter of the way towards 3/4), and the shares still
 * partition every matrix. */
TEST(shares_follow_the_rates)
{
    kernels_init("auto");
    mulmat_init("auto");
    CHECK(pace_init("auto"));
    static char base[1 << 12];
    pace_product_start(base, 64, 64, 0, 2);
    pace_product_start(base, 64, 64, 1, 2);
    pace_product_done(0, 2048, 1000);
    pace_product_done(1, 2048, 3000);
    /* any graph marks the start of the next one */
    struct ggml_init_params cp = { 1u << 20, NULL, false };
    struct ggml_context *ctx = ggml_init(cp);
    struct ggml_tensor *a = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 16);
    memset(a->data, 0, 64);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, ggml_scale(ctx, a, 2.0f));
    CHECK(g_compute(ctx, gf, 2) == GGML_STATUS_SUCCESS);
    double s = pace_first_share();
    CHECK(s > 0.55 && s < 0.57);       /* 0.75 * 0.5 + 0.25 * 0.75 */
    for (int64_t units = 1; units < 300; units += 7) {
        int64_t a0, a1, b0, b1;
        pace_share(units, 0, 2, &a0, &a1);
        pace_share(units, 1, 2, &b0, &b1);
        CHECK_EQ_INT(a0, 0);
        CHECK_EQ_INT(a1, b0);
        CHECK_EQ_INT(b1, units);
        CHECK(a1 >= b1 - b0);          /* the faster thread takes more */
    }
    ggml_free(ctx);
}

/* ggml's products of several rows (a shared chunk counter behind a barrier),
 * softmax, norms: the same bits with hearth's barrier, again and again, on
 * 1 to 4 threads (4 on a 2-core machine: threads must yield while waiting). */
TEST(barrier_matches_ggml)
{
    struct ggml_init_params cp = { 32u << 20, NULL, false };
    struct ggml_context *ctx = ggml_init(cp);
    struct ggml_tensor *w1 = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 256, 200);
    struct ggml_tensor *w2 = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 200, 96);
    struct ggml_tensor *w3 = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 96, 256);
    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 256, 9);
    struct ggml_tensor *in[] = { w1, w2, w3, x };
    for (int j = 0; j < 4; j++) {
        float *p = in[j]->data;
        for (int64_t i = 0; i < ggml_nelements(in[j]); i++)
            p[i] = rndf() * 0.1f;
    }
    struct ggml_tensor *y = x;
    for (int r = 0; r < 4; r++) {
        struct ggml_tensor *h = ggml_soft_max(ctx, ggml_mul_mat(ctx, w1, y));
        struct ggml_tensor *z = ggml_rms_norm(ctx, ggml_mul_mat(ctx, w2, h), 1e-6f);
        y = ggml_add(ctx, ggml_mul_mat(ctx, w3, z), y);
    }
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, y);
    size_t n = (size_t)ggml_nbytes(y);
    float *want = malloc(n);
    pace_init("off");
    CHECK(g_compute(ctx, gf, 2) == GGML_STATUS_SUCCESS);
    memcpy(want, y->data, n);
    CHECK(pace_init("auto"));
    for (int threads = 1; threads <= 4; threads++)
        for (int round = 0; round < (threads <= 2 ? 50 : 5); round++) {
            memset(y->data, 0xFF, n);
            CHECK(g_compute(ctx, gf, threads) == GGML_STATUS_SUCCESS);
            CHECK(memcmp(want, y->data, n) == 0);
        }
    free(want);
    ggml_free(ctx);
}

/* The decode-like graph, run as a decode loop runs it: learned as a
 * schedule from the third graph on, fetched ahead while threads wait, and
 * the same bits as ggml's barrier and equal shares every time. */
TEST(decode_graph_is_learned_and_fetched)
{
    kernels_init("auto");
    if (!mulmat_init("auto"))
        return;
    struct decode d = { 0 };
    if (!decode_make(&d, 4)) {
        CHECK(!"the decode-like graph was not built");
        return;
    }
    size_t n = (size_t)ggml_nbytes(d.out);
    float *want = malloc(n);
    pace_init("off");
    CHECK(g_compute(d.ctx, d.gf, 2) == GGML_STATUS_SUCCESS);
    memcpy(want, d.out->data, n);
    CHECK(pace_init("auto"));
    long scheduled = pace_scheduled_graphs();
    uint64_t fetched = pace_fetched_bytes();
    for (int round = 0; round < 40; round++) {
        memset(d.out->data, 0xFF, n);
        CHECK(g_compute(d.ctx, d.gf, 2) == GGML_STATUS_SUCCESS);
        CHECK(memcmp(want, d.out->data, n) == 0);
    }
    CHECK(pace_scheduled_graphs() - scheduled >= 30);
    CHECK(pace_fetched_bytes() > fetched);
    double s = pace_first_share();
    CHECK(s > 0.2 && s < 0.8);
    free(want);
    decode_free(&d);
}

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

int main(void)
{
    ggml_log_set(quiet, NULL);
    backends_load();
    g_compute = (compute_fn)kernels_backend_symbol("ggml_graph_compute_with_ctx");
    buft_fn repack = (buft_fn)kernels_backend_symbol("_Z35ggml_backend_cpu_repack_buffer_typev");
    g_repack = repack ? repack() : NULL;
    if (!g_compute || !g_repack) {
        fprintf(stderr, "ggml's CPU backend lacks what hearth needs\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    /* each test forks; ggml's thread pool starts in the child */
    RUN(init_follows_mode);
    RUN(shares_partition_the_matrix);
    RUN(shares_follow_the_rates);
    RUN(barrier_matches_ggml);
    RUN(decode_graph_is_learned_and_fetched);
    return check_summary();
}
