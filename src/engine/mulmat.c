/*
 * mulmat.c: single-row Q4_0 matrix products without ggml's inner barrier
 * and chunk counter (see mulmat.h).
 */
#include "engine/mulmat.h"

#include "core/log.h"
#include "engine/kernels.h"

#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* the activation row converted to Q8_0 lives on the stack: rows this long
 * at most (layer matrices are far below; longer ones go to ggml) */
#define MAX_ROW_BLOCKS 512
#define Q8_BLOCK 34              /* ggml's block_q8_0: fp16 scale, 32 int8 */
#define Q4_GROUP 144             /* ggml's block_q4_0x8: 8 rows x 32 elements */

/* The leading fields of ggml's struct ggml_compute_params, as in attn.c. */
struct thread_ids {
    int ith, nth;
};

typedef bool (*extra_fn)(struct ggml_compute_params *, struct ggml_tensor *);
typedef void (*quant_fn)(const float *, void *, int64_t);
typedef ggml_backend_buffer_type_t (*buft_fn)(void);

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static extra_fn g_ggml_extra;                  /* the backend's own */
static quant_fn g_quant;                       /* its quantize_row_q8_0 */
static ggml_backend_buffer_type_t g_repack;    /* its repacked-weights buffer type */
static bool g_ok, g_on;
static atomic_long g_calls;

static void resolve(void)
{
    g_ggml_extra = (extra_fn)kernels_backend_symbol("ggml_cpu_extra_compute_forward");
    g_quant = (quant_fn)kernels_backend_symbol("quantize_row_q8_0");
    buft_fn repack = (buft_fn)kernels_backend_symbol("_Z35ggml_backend_cpu_repack_buffer_typev");
    g_repack = repack ? repack() : NULL;
}

enum kind { NONE, Q4_0_REPACKED, Q8_0_ROWS };

static bool g_q4, g_q8;        /* which kinds are in use */

/* One activation row against a Q4_0 matrix that ggml repacked in groups of
 * eight rows (its layout for every x86 CPU with AVX2, which hearth's
 * kernels imply), or against a plain Q8_0 matrix in host memory. */
static enum kind ours(const struct ggml_tensor *op)
{
    if (op->op != GGML_OP_MUL_MAT)
        return NONE;
    const struct ggml_tensor *w = op->src[0], *x = op->src[1];
    if (!w || !x || !w->buffer || w->ne[0] % 32 || w->ne[0] / 32 > MAX_ROW_BLOCKS ||
        w->ne[2] != 1 || w->ne[3] != 1)
        return NONE;
    if (x->type != GGML_TYPE_F32 || x->ne[0] != w->ne[0] || x->ne[1] != 1 || x->ne[2] != 1 ||
        x->ne[3] != 1 || x->nb[0] != sizeof(float))
        return NONE;
    if (op->type != GGML_TYPE_F32 || op->nb[0] != sizeof(float) || op->ne[0] != w->ne[1])
        return NONE;
    ggml_backend_buffer_type_t bt = ggml_backend_buffer_get_type(w->buffer);
    if (g_q4 && w->type == GGML_TYPE_Q4_0 && bt == g_repack && w->ne[1] % 8 == 0)
        return Q4_0_REPACKED;
    if (g_q8 && w->type == GGML_TYPE_Q8_0 && bt != g_repack &&
        ggml_backend_buffer_is_host(w->buffer) && w->nb[0] == Q8_BLOCK)
        return Q8_0_ROWS;
    return NONE;
}

bool ggml_cpu_extra_compute_forward(struct ggml_compute_params *params, struct ggml_tensor *op)
{
    enum kind k = g_on ? ours(op) : NONE;
    if (k != NONE) {
        const struct thread_ids *t = (const struct thread_ids *)(const void *)params;
        const struct ggml_tensor *w = op->src[0], *x = op->src[1];
        const int K = (int)w->ne[0], nb = K / 32;
        /* equal shares: 8-row groups of a repacked matrix, or rows */
        const int64_t units = k == Q4_0_REPACKED ? w->ne[1] / 8 : w->ne[1];
        const int64_t u0 = units * t->ith / t->nth, u1 = units * (t->ith + 1) / t->nth;
        _Alignas(64) uint8_t row[MAX_ROW_BLOCKS * Q8_BLOCK];
        if (u1 > u0) {
            g_quant((const float *)x->data, row, K);   /* every thread its own copy */
            float *out = (float *)op->data;
            if (k == Q4_0_REPACKED)
                kernels_gemv_q4_0(K, out + u0 * 8, (size_t)w->ne[1],
                                  (const char *)w->data + (size_t)u0 * (size_t)nb * Q4_GROUP, row,
                                  1, (int)((u1 - u0) * 8));
            else
                for (int64_t r = u0; r < u1; r++)
                    kernels_vec_dot_q8_0(K, out + r, (const char *)w->data + r * w->nb[1], row);
        }
        if (t->ith == 0)
            atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed);
        return true;
    }
    pthread_once(&g_once, resolve);
    if (!g_ggml_extra)
        abort();                     /* called from a ggml we never found */
    return g_ggml_extra(params, op);
}

long mulmat_calls(void)
{
    return atomic_load(&g_calls);
}

static void *scratch(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, size, MADV_NOHUGEPAGE);
    return p;
}

typedef struct ggml_cplan (*plan_fn)(const struct ggml_cgraph *, int, struct ggml_threadpool *);
typedef enum ggml_status (*compute_fn)(struct ggml_cgraph *, struct ggml_cplan *);

static bool run_graph(plan_fn plan, compute_fn compute, struct ggml_cgraph *gf, int threads)
{
    struct ggml_cplan cp = plan(gf, threads, NULL);
    size_t size = cp.work_size ? cp.work_size : 1;
    cp.work_data = scratch(size);
    if (!cp.work_data)
        return false;
    bool ok = compute(gf, &cp) == GGML_STATUS_SUCCESS;
    munmap(cp.work_data, size);
    return ok;
}

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level;
    (void)text;
    (void)ud;
}

/* A real matrix (Q4_0 in ggml's repacked buffer, or Q8_0 in its plain
 * host buffer) times one row, through ggml's executor on two threads:
 * ggml's operator and hearth's must agree to the bit. */
static bool check(enum ggml_type type)
{
    plan_fn plan = (plan_fn)kernels_backend_symbol("ggml_graph_plan");
    compute_fn compute = (compute_fn)kernels_backend_symbol("ggml_graph_compute");
    if (!plan || !compute)
        return false;
    enum { K = 256, N = 40 };
    const size_t bs = type == GGML_TYPE_Q4_0 ? 18 : Q8_BLOCK;
    bool ok = false;
    struct ggml_init_params wp = { 4 * ggml_tensor_overhead(), NULL, true };
    struct ggml_context *wctx = ggml_init(wp);
    size_t size = ggml_graph_overhead() + 8 * ggml_tensor_overhead() + K * 4 + N * 4 * 2 +
                  (16u << 10);
    void *mem = scratch(size);
    struct ggml_init_params cp = { size, mem, false };
    struct ggml_context *ctx = mem ? ggml_init(cp) : NULL;
    ggml_backend_buffer_t buf = NULL;
    if (!wctx || !ctx)
        goto out;
    struct ggml_tensor *w = ggml_new_tensor_2d(wctx, type, K, N);
    ggml_backend_buffer_type_t bt =
        type == GGML_TYPE_Q4_0 ? g_repack : ggml_backend_cpu_buffer_type();
    buf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, bt);
    if (!buf || ggml_backend_buffer_get_type(w->buffer) != bt)
        goto out;
    /* random quants, small positive scales (fp16 exponent 8) */
    uint8_t q[K / 32 * N * Q8_BLOCK];
    const size_t qbytes = (size_t)K / 32 * N * bs;
    uint32_t seed = 4242;
    for (size_t i = 0; i < qbytes; i++) {
        seed = seed * 1664525u + 1013904223u;
        q[i] = (uint8_t)(seed >> 24);
    }
    for (size_t b = 0; b < qbytes; b += bs) {
        uint16_t d = (uint16_t)((8u << 10) | (q[b] & 0x3F) << 4);
        memcpy(q + b, &d, 2);
    }
    /* ggml repacks a Q4_0 matrix here, and logs a line about it */
    ggml_log_callback log_cb;
    void *log_ud;
    ggml_log_get(&log_cb, &log_ud);
    ggml_log_set(quiet, NULL);
    ggml_backend_tensor_set(w, q, 0, qbytes);
    ggml_log_set(log_cb, log_ud);
    struct ggml_tensor *x = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, K);
    float *xd = x->data;
    for (int i = 0; i < K; i++) {
        seed = seed * 1664525u + 1013904223u;
        xd[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
    struct ggml_tensor *y = ggml_mul_mat(ctx, w, x);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, y);
    float want[N];
    g_on = false;
    if (!run_graph(plan, compute, gf, 2))
        goto out;
    memcpy(want, y->data, sizeof want);
    memset(y->data, 0, sizeof want);
    long before = mulmat_calls();
    g_on = true;
    bool ran = run_graph(plan, compute, gf, 2);
    g_on = false;
    ok = ran && mulmat_calls() > before && memcmp(want, y->data, sizeof want) == 0;
out:
    ggml_backend_buffer_free(buf);
    if (ctx)
        ggml_free(ctx);
    if (mem)
        munmap(mem, size);
    if (wctx)
        ggml_free(wctx);
    return ok;
}

bool mulmat_init(const char *mode)
{
    pthread_once(&g_once, resolve);
    g_on = g_ok = g_q4 = g_q8 = false;
    if (mode && strcmp(mode, "off") == 0)
        return false;
    bool want4 = kernels_active_for("Q4_0"), want8 = kernels_active_for("Q8_0");
    if (!want4 && !want8)
        return false;                /* the multiplication is hearth's kernels' */
    if (!g_ggml_extra || !g_quant || !g_repack) {
        log_warn("mulmat: ggml's CPU backend does not export what hearth's single-row "
                 "products need; ggml's own stay");
        return false;
    }
    /* each kind through its own check, the other one off meanwhile */
    g_q4 = want4;
    bool q4 = want4 && check(GGML_TYPE_Q4_0);
    g_q4 = false;
    g_q8 = want8;
    g_q8 = want8 && check(GGML_TYPE_Q8_0);
    g_q4 = q4;
    g_ok = g_q4 || g_q8;
    if ((want4 && !g_q4) || (want8 && !g_q8))
        log_warn("mulmat: hearth's single-row %s products disagree with ggml's (or were not "
                 "reached); ggml's own stay", want4 && !g_q4 ? "Q4_0" : "Q8_0");
    if (!g_ok)
        return false;
    g_on = true;
    log_info("mulmat: single-row products scheduled by hearth (no inner barrier): %s%s%s",
             g_q4 ? "Q4_0" : "", g_q4 && g_q8 ? ", " : "", g_q8 ? "Q8_0" : "");
    return true;
}

bool mulmat_active(void)
{
    return g_on;
}

bool mulmat_set(bool on)
{
    g_on = on && g_ok;
    return g_on;
}
