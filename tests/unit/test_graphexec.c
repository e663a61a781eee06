/*
 * test_graphexec.c: unit tests for src/engine/graphexec.{h,c}: llama-like
 * graphs whose activations share one buffer that ggml's allocator reuses
 * (as llama's does, so a later node may write where an earlier one was
 * read) give ggml's executor's bits on 2 to 4 threads, through the same
 * entry points ggml's backend calls (the test exports them, as the worker
 * does); with fewer barriers; a repeated graph keeps its plan; graphs with
 * an abort callback or one thread stay with ggml's executor.
 */
#include "check.h"
#include "engine/attn.h"
#include "engine/backends.h"
#include "engine/cpuexec.h"
#include "engine/graphexec.h"
#include "engine/kernels.h"
#include "engine/mulmat.h"
#include "engine/pace.h"

#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef enum ggml_status (*compute_fn)(struct ggml_context *, struct ggml_cgraph *, int);
static compute_fn g_compute;

static uint32_t g_seed = 5;
static float rndf(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)(g_seed >> 8) / 8388608.0f - 1.0f;
}

static void fill(struct ggml_tensor *t, float scale)
{
    const int64_t n = ggml_nelements(t);
    float *f = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        f[i] = scale * rndf();
    if (t->type == GGML_TYPE_F32) {
        ggml_backend_tensor_set(t, f, 0, sizeof(float) * (size_t)n);
    } else {
        void *q = malloc(ggml_nbytes(t));
        if (t->type == GGML_TYPE_F16)
            for (int64_t i = 0; i < n; i++)
                ((ggml_fp16_t *)q)[i] = ggml_fp32_to_fp16(f[i]);
        else
            ggml_quantize_chunk(t->type, f, q, 0, t->ne[1], t->ne[0], NULL);
        ggml_backend_tensor_set(t, q, 0, ggml_nbytes(t));
        free(q);
    }
    free(f);
}

enum { E = 256, HD = 64, H = 4, HKV = 2, F = 512, NKV = 128, V = 40, LAYERS = 2 };

/* Weights and inputs in one buffer, activations in another that ggml's
 * allocator lays out with reuse. */
struct net {
    struct ggml_context *wctx, *ctx;
    ggml_backend_buffer_t wbuf;
    ggml_gallocr_t galloc;
    struct ggml_cgraph *gf;
    struct ggml_tensor *out;
    int rows;
};

static struct ggml_tensor *W(struct net *n, enum ggml_type t, int k, int m)
{
    return ggml_new_tensor_2d(n->wctx, t, k, m);
}

static bool net_make(struct net *n, int rows)
{
    memset(n, 0, sizeof *n);
    n->rows = rows;
    struct ggml_init_params wp = { 64 * ggml_tensor_overhead(), NULL, true };
    n->wctx = ggml_init(wp);
    struct ggml_tensor *tab = W(n, GGML_TYPE_F32, E, V);
    struct ggml_tensor *ids = ggml_new_tensor_1d(n->wctx, GGML_TYPE_I32, rows);
    struct ggml_tensor *pos = ggml_new_tensor_1d(n->wctx, GGML_TYPE_I32, rows);
    struct ggml_tensor *slots = ggml_new_tensor_1d(n->wctx, GGML_TYPE_I64, rows);
    const int mrows = rows == 1 ? 1 : (rows + 63) / 64 * 64;
    struct ggml_tensor *mask = W(n, GGML_TYPE_F16, NKV, mrows);
    struct ggml_tensor *nw[LAYERS][2], *wq[LAYERS], *wk[LAYERS], *wv[LAYERS], *wo[LAYERS],
        *wg[LAYERS], *wu[LAYERS], *wd[LAYERS], *kc[LAYERS], *vc[LAYERS];
    for (int l = 0; l < LAYERS; l++) {
        nw[l][0] = ggml_new_tensor_1d(n->wctx, GGML_TYPE_F32, E);
        nw[l][1] = ggml_new_tensor_1d(n->wctx, GGML_TYPE_F32, E);
        wq[l] = W(n, GGML_TYPE_Q8_0, E, HD * H);
        wk[l] = W(n, GGML_TYPE_F32, E, HD * HKV);
        wv[l] = W(n, GGML_TYPE_Q8_0, E, HD * HKV);
        wo[l] = W(n, GGML_TYPE_Q8_0, HD * H, E);
        wg[l] = W(n, GGML_TYPE_F32, E, F);
        wu[l] = W(n, GGML_TYPE_Q8_0, E, F);
        wd[l] = W(n, GGML_TYPE_Q8_0, F, E);
        kc[l] = W(n, GGML_TYPE_F16, HD * HKV, NKV);
        vc[l] = W(n, GGML_TYPE_F16, HD * HKV, NKV);
    }
    n->wbuf = ggml_backend_alloc_ctx_tensors_from_buft(n->wctx, ggml_backend_cpu_buffer_type());
    if (!n->wbuf)
        return false;
    g_seed = 5;
    fill(tab, 1.0f);
    for (int l = 0; l < LAYERS; l++) {
        struct ggml_tensor *ws[] = { nw[l][0], nw[l][1], wq[l], wk[l], wv[l], wo[l],
                                     wg[l], wu[l], wd[l], kc[l], vc[l] };
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            fill(ws[i], 0.2f);
    }
    for (int r = 0; r < rows; r++) {
        int32_t id = (r * 11 + 2) % V, p = 50 + r;
        int64_t sl = 50 + r;
        ggml_backend_tensor_set(ids, &id, sizeof id * (size_t)r, sizeof id);
        ggml_backend_tensor_set(pos, &p, sizeof p * (size_t)r, sizeof p);
        ggml_backend_tensor_set(slots, &sl, sizeof sl * (size_t)r, sizeof sl);
    }
    ggml_fp16_t *m = malloc(sizeof *m * (size_t)NKV * mrows);
    for (int r = 0; r < mrows; r++)
        for (int i = 0; i < NKV; i++)
            m[(size_t)r * NKV + i] = ggml_fp32_to_fp16(i <= 50 + r && i % 9 != 4 ? 0.0f : -INFINITY);
    ggml_backend_tensor_set(mask, m, 0, ggml_nbytes(mask));
    free(m);

    struct ggml_init_params cp = { 512 * ggml_tensor_overhead() + ggml_graph_overhead(), NULL, true };
    struct ggml_context *c = n->ctx = ggml_init(cp);
    struct ggml_tensor *x = ggml_get_rows(c, tab, ids);
    for (int l = 0; l < LAYERS; l++) {
        struct ggml_tensor *h = ggml_mul(c, ggml_rms_norm(c, x, 1e-6f), nw[l][0]);
        struct ggml_tensor *q = ggml_mul_mat(c, wq[l], h);
        struct ggml_tensor *k = ggml_mul_mat(c, wk[l], h);
        struct ggml_tensor *v = ggml_mul_mat(c, wv[l], h);
        q = ggml_rope(c, ggml_reshape_3d(c, q, HD, H, rows), pos, HD, 0);
        k = ggml_rope(c, ggml_reshape_3d(c, k, HD, HKV, rows), pos, HD, 0);
        struct ggml_tensor *kw = ggml_set_rows(c, kc[l], ggml_reshape_2d(c, k, HD * HKV, rows), slots);
        struct ggml_tensor *vw = ggml_set_rows(c, vc[l], v, slots);
        struct ggml_tensor *kv = ggml_permute(c, ggml_reshape_3d(c, kw, HD, HKV, NKV), 0, 2, 1, 3);
        struct ggml_tensor *vv = ggml_permute(c, ggml_reshape_3d(c, vw, HD, HKV, NKV), 0, 2, 1, 3);
        struct ggml_tensor *a = ggml_flash_attn_ext(c, ggml_permute(c, q, 0, 2, 1, 3), kv, vv, mask,
                                                    0.125f, 0.0f, 0.0f);
        a = ggml_mul_mat(c, wo[l], ggml_reshape_2d(c, a, HD * H, rows));
        struct ggml_tensor *r1 = ggml_add(c, a, x);
        struct ggml_tensor *f = ggml_mul(c, ggml_rms_norm(c, r1, 1e-6f), nw[l][1]);
        f = ggml_swiglu_split(c, ggml_mul_mat(c, wg[l], f), ggml_mul_mat(c, wu[l], f));
        x = ggml_add(c, ggml_mul_mat(c, wd[l], f), r1);
    }
    n->out = ggml_gelu(c, ggml_scale(c, x, 0.5f));
    ggml_set_output(n->out);
    n->gf = ggml_new_graph(c);
    ggml_build_forward_expand(n->gf, n->out);
    n->galloc = ggml_gallocr_new(ggml_backend_cpu_buffer_type());
    return n->galloc && ggml_gallocr_alloc_graph(n->galloc, n->gf);
}

static void net_free(struct net *n)
{
    ggml_gallocr_free(n->galloc);
    ggml_free(n->ctx);
    ggml_backend_buffer_free(n->wbuf);
    ggml_free(n->wctx);
}

/* The graph through ggml_graph_compute_with_ctx, which calls the plan and
 * the executor through the PLT as ggml's backend does. */
static bool run_hooked(struct net *n, int threads)
{
    struct ggml_init_params p = { 64u << 20, NULL, false };
    struct ggml_context *wctx = ggml_init(p);
    bool ok = wctx && g_compute(wctx, n->gf, threads) == GGML_STATUS_SUCCESS;
    ggml_free(wctx);
    return ok;
}

static void setup(void)
{
    kernels_init(NULL);
    attn_init(NULL);
    mulmat_init(NULL);
    pace_init(NULL);
}

TEST(init_follows_mode)
{
    setup();
    CHECK(!graphexec_init("off"));
    CHECK(!graphexec_active());
    CHECK(graphexec_init(NULL));
    CHECK(graphexec_active());
    CHECK(graphexec_init("auto"));
    pace_init("off");               /* needs hearth's barrier */
    CHECK(!graphexec_init("auto"));
}

/* Decode rows (thread 0 alone for the element-wise nodes) and prompt rows,
 * 2 to 4 threads: ggml's bits, with fewer barriers. */
TEST(same_bits_as_ggml)
{
    setup();
    CHECK(graphexec_init(NULL));
    const int rows[] = { 1, 2, 5, 17 };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        struct net n;
        CHECK(net_make(&n, rows[r]));
        const size_t bytes = ggml_nbytes(n.out);
        float *want = malloc(bytes);
        CHECK(cpuexec_run(n.gf, 2));           /* ggml's executor */
        memcpy(want, n.out->data, bytes);
        int computing = 0;
        for (int i = 0; i < ggml_graph_n_nodes(n.gf); i++) {
            const struct ggml_tensor *t = ggml_graph_node(n.gf, i);
            computing += t->op != GGML_OP_VIEW && t->op != GGML_OP_RESHAPE &&
                         t->op != GGML_OP_PERMUTE && t->op != GGML_OP_TRANSPOSE;
        }
        for (int threads = 2; threads <= 4; threads++) {
            memset(n.out->data, 0, bytes);
            long g0 = graphexec_graphs(), b0 = graphexec_barriers();
            CHECK(run_hooked(&n, threads));
            CHECK_EQ_INT(graphexec_graphs(), g0 + 1);
            const long barriers = graphexec_barriers() - b0;
            CHECK(barriers > 0 && barriers < computing - 1);   /* ggml: one after each node */
            if (rows[r] == 1 && threads == 2)
                fprintf(stderr, "  one row: %ld barriers for %d nodes\n", barriers, computing);
            CHECK(memcmp(want, n.out->data, bytes) == 0);
        }
        free(want);
        net_free(&n);
    }
}

/* The same graph again keeps its plan; a different one gets its own. */
TEST(plans_are_kept)
{
    setup();
    CHECK(graphexec_init(NULL));
    struct net a, b;
    CHECK(net_make(&a, 1));
    CHECK(net_make(&b, 3));
    long p0 = graphexec_plans_built();
    CHECK(run_hooked(&a, 2));
    CHECK_EQ_INT(graphexec_plans_built(), p0 + 1);
    CHECK(run_hooked(&a, 2));
    CHECK(run_hooked(&a, 2));
    CHECK_EQ_INT(graphexec_plans_built(), p0 + 1);
    CHECK(run_hooked(&b, 2));
    CHECK_EQ_INT(graphexec_plans_built(), p0 + 2);
    CHECK(run_hooked(&a, 2));
    CHECK_EQ_INT(graphexec_plans_built(), p0 + 2);
    CHECK(run_hooked(&a, 3));                  /* another thread count: another plan */
    CHECK_EQ_INT(graphexec_plans_built(), p0 + 3);
    net_free(&a);
    net_free(&b);
}

static bool never(void *ud)
{
    (void)ud;
    return false;
}

/* An abort callback (transcription's) or one thread: ggml's executor. */
TEST(other_graphs_stay_with_ggml)
{
    setup();
    CHECK(graphexec_init(NULL));
    struct net n;
    CHECK(net_make(&n, 1));
    const size_t bytes = ggml_nbytes(n.out);
    float *want = malloc(bytes);
    CHECK(cpuexec_run(n.gf, 2));
    memcpy(want, n.out->data, bytes);
    long g0 = graphexec_graphs();
    struct ggml_cplan cp = ggml_graph_plan(n.gf, 2, NULL);
    void *work = calloc(1, cp.work_size + 1);
    cp.work_data = work;
    cp.abort_callback = never;
    memset(n.out->data, 0, bytes);
    CHECK(ggml_graph_compute(n.gf, &cp) == GGML_STATUS_SUCCESS);
    CHECK(memcmp(want, n.out->data, bytes) == 0);
    memset(n.out->data, 0, bytes);
    CHECK(run_hooked(&n, 1));
    CHECK(memcmp(want, n.out->data, bytes) == 0);
    CHECK_EQ_INT(graphexec_graphs(), g0);
    free(work);
    free(want);
    net_free(&n);
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
    if (!g_compute) {
        fprintf(stderr, "ggml's CPU backend lacks what hearth needs\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    /* each test forks; ggml's thread pool starts in the child */
    RUN(init_follows_mode);
    RUN(same_bits_as_ggml);
    RUN(plans_are_kept);
    RUN(other_graphs_stay_with_ggml);
    return check_summary();
}
