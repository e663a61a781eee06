/*
 * mulmat.c: single-row matrix products without ggml's inner barrier and
 * chunk counter (see mulmat.h).
 */
#include "engine/mulmat.h"

#include "core/log.h"
#include "engine/cpuexec.h"
#include "engine/kernels.h"
#include "engine/kfloat.h"
#include "engine/kgemm.h"
#include "engine/kquant.h"
#include "engine/pace.h"

#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* the activation row, converted to the type the weights' kernel takes,
 * lives on the stack: this many bytes at most (a 16384-wide row in fp16;
 * layer matrices are far below, longer rows go to ggml) */
#define ROW_BYTES (32u << 10)

typedef bool (*extra_fn)(struct ggml_compute_params *, struct ggml_tensor *);
typedef const struct ggml_type_traits_cpu *(*traits_fn)(enum ggml_type);
typedef ggml_backend_buffer_type_t (*buft_fn)(void);
typedef void (*gemv_fn)(int, float *, size_t, const void *, const void *, int, int);
typedef void (*rows_fn)(int, float *, const void *, size_t, int, const void *);

/* How one type is multiplied: for plain matrices ggml's dot product per row
 * (hearth's for Q8_0 and Q5_0, bound by name), or hearth's kernel for a
 * whole share of rows (Q8_0, Q5_0, Q3_K, Q5_K, Q6_K, IQ4_XS, F16); for repacked ones the gemv over
 * groups of 8 rows that ggml would call (hearth's kernels for Q4_0 and
 * Q4_K). All take the row converted by `from_float` to `row_type`. */
struct way {
    bool on;                      /* checked against ggml and in use */
    enum ggml_type row_type;
    ggml_from_float_t from_float;
    ggml_vec_dot_t dot;           /* plain */
    rows_fn rows;                 /* plain, many rows at once (or NULL) */
    gemv_fn gemv;                 /* repacked */
    bool exact;                   /* its sums are ggml's, to the bit */
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static extra_fn g_ggml_extra;                  /* the backend's own */
static traits_fn g_traits;                     /* its ggml_get_type_traits_cpu */
static ggml_backend_buffer_type_t g_repack;    /* its repacked-weights buffer type */
static struct way g_plain[GGML_TYPE_COUNT], g_packed[GGML_TYPE_COUNT];
static bool g_on;
static atomic_long g_calls;

static void resolve(void)
{
    g_ggml_extra = (extra_fn)kernels_backend_symbol("ggml_cpu_extra_compute_forward");
    g_traits = (traits_fn)kernels_backend_symbol("ggml_get_type_traits_cpu");
    buft_fn repack = (buft_fn)kernels_backend_symbol("_Z35ggml_backend_cpu_repack_buffer_typev");
    g_repack = repack ? repack() : NULL;
}

static void q4_0_gemv(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc)
{
    kernels_gemv_q4_0(n, s, bs, vx, vy, nr, nc);
}

/* The types whose single-row products hearth schedules, and how (before the
 * check). ggml's repacked layouts on x86 are groups of 8 rows: Q4_0 and
 * IQ4_NL against Q8_0 rows, Q4_K and Q2_K against Q8_K rows. */
static void plan_ways(void)
{
    static const enum ggml_type plain[] = { GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
                                            GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q2_K,
                                            GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
                                            GGML_TYPE_Q6_K, GGML_TYPE_IQ4_NL, GGML_TYPE_IQ4_XS,
                                            GGML_TYPE_F16, GGML_TYPE_BF16 };
    static const struct {
        enum ggml_type type, row;
        const char *gemv;
    } packed[] = { { GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, NULL },
                   { GGML_TYPE_IQ4_NL, GGML_TYPE_Q8_0, "ggml_gemv_iq4_nl_8x8_q8_0" },
                   { GGML_TYPE_Q4_K, GGML_TYPE_Q8_K, "ggml_gemv_q4_K_8x8_q8_K" },
                   { GGML_TYPE_Q2_K, GGML_TYPE_Q8_K, "ggml_gemv_q2_K_8x8_q8_K" } };
    memset(g_plain, 0, sizeof g_plain);
    memset(g_packed, 0, sizeof g_packed);
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        const struct ggml_type_traits_cpu *t = g_traits(plain[i]);
        if (!t || !t->vec_dot || t->nrows != 1 || t->vec_dot_type == GGML_TYPE_F32)
            continue;
        const struct ggml_type_traits_cpu *r = g_traits(t->vec_dot_type);
        if (!r || !r->from_float)
            continue;
        g_plain[plain[i]] = (struct way){ false, t->vec_dot_type, r->from_float, t->vec_dot, NULL,
                                          NULL, true };
    }
    /* plain Q5_0 and Q8_0 rows through hearth's kernels, which prepare the row once */
    if (g_plain[GGML_TYPE_Q5_0].dot && kernels_q5_0_gemv_active()) {
        g_plain[GGML_TYPE_Q5_0].rows = kernels_q5_0_gemv;
        g_plain[GGML_TYPE_Q5_0].exact = kernels_q5_0_gemv_exact();   /* quads: to rounding */
    }
    if (g_plain[GGML_TYPE_Q8_0].dot && kernels_q8_0_gemv_active())
        g_plain[GGML_TYPE_Q8_0].rows = kernels_q8_0_gemv;
    /* plain F16 rows through hearth's kernel (engine/kfloat.h): to rounding */
    if (g_plain[GGML_TYPE_F16].dot && kfloat_active()) {
        g_plain[GGML_TYPE_F16].rows = kfloat_f16_rows;
        g_plain[GGML_TYPE_F16].exact = false;
    }
    /* plain K-quant and IQ4_XS rows through hearth's kernels (engine/kquant.h): to rounding */
    static const struct {
        enum ggml_type type;
        rows_fn rows;
        bool (*active)(void);
    } krows[] = { { GGML_TYPE_Q3_K, kquant_q3_K_rows, kquant_q3_K_active },
                  { GGML_TYPE_Q5_K, kquant_q5_K_rows, kquant_q5_K_active },
                  { GGML_TYPE_Q6_K, kquant_q6_K_rows, kquant_q6_K_active },
                  { GGML_TYPE_IQ4_XS, kquant_iq4_xs_rows, kquant_iq4_xs_active } };
    for (size_t i = 0; i < sizeof krows / sizeof krows[0]; i++)
        if (g_plain[krows[i].type].dot && krows[i].active()) {
            g_plain[krows[i].type].rows = krows[i].rows;
            g_plain[krows[i].type].exact = false;
        }
    for (size_t i = 0; i < sizeof packed / sizeof packed[0]; i++) {
        const struct ggml_type_traits_cpu *r = g_traits(packed[i].row);
        gemv_fn g = packed[i].gemv ? (gemv_fn)kernels_backend_symbol(packed[i].gemv)
                                   : kernels_active_for("Q4_0") ? q4_0_gemv : NULL;
        bool exact = true;
        /* Q4_K through hearth's kernel (engine/kquant.h): equal to rounding */
        if (packed[i].type == GGML_TYPE_Q4_K && kquant_active()) {
            g = kquant_gemv_q4_K;
            exact = false;
        }
        if (packed[i].type == GGML_TYPE_Q2_K && kquant_q2_K_active()) {
            g = kquant_gemv_q2_K;
            exact = false;
        }
        if (r && r->from_float && g)
            g_packed[packed[i].type] = (struct way){ false, packed[i].row, r->from_float, NULL, NULL,
                                                     g, exact };
    }
}

/* The way for one activation row against this operator's matrix, or NULL
 * for ggml's operator. */
static const struct way *ours(const struct ggml_tensor *op)
{
    if (op->op != GGML_OP_MUL_MAT)
        return NULL;
    const struct ggml_tensor *w = op->src[0], *x = op->src[1];
    if (!w || !x || !w->buffer || w->type >= GGML_TYPE_COUNT || w->ne[2] != 1 || w->ne[3] != 1)
        return NULL;
    if (x->type != GGML_TYPE_F32 || x->ne[0] != w->ne[0] || x->ne[1] != 1 || x->ne[2] != 1 ||
        x->ne[3] != 1 || x->nb[0] != sizeof(float))
        return NULL;
    if (op->type != GGML_TYPE_F32 || op->nb[0] != sizeof(float) || op->ne[0] != w->ne[1] ||
        w->ne[0] % ggml_blck_size(w->type))
        return NULL;
    const bool packed = ggml_backend_buffer_get_type(w->buffer) == g_repack;
    const struct way *y = packed ? &g_packed[w->type] : &g_plain[w->type];
    if (!y->on || (packed ? !w->extra || w->ne[1] % 8 : !ggml_backend_buffer_is_host(w->buffer)))
        return NULL;
    if (ggml_row_size(y->row_type, w->ne[0]) > ROW_BYTES)
        return NULL;
    return y;
}

static bool g_rows5;            /* several rows against plain Q5_0: checked, in use */

/* Several activation rows (a prompt) against a plain Q5_0 matrix: ggml
 * calls a dot product per weight row and activation row, which unpacks
 * every weight block once per activation row. */
static bool rows_q5_0(const struct ggml_tensor *op)
{
    if (!g_rows5 || op->op != GGML_OP_MUL_MAT)
        return false;
    const struct ggml_tensor *w = op->src[0], *x = op->src[1];
    return w && x && w->type == GGML_TYPE_Q5_0 && w->buffer &&
           ggml_backend_buffer_get_type(w->buffer) != g_repack &&
           ggml_backend_buffer_is_host(w->buffer) && w->ne[0] % 32 == 0 && w->ne[2] == 1 &&
           w->ne[3] == 1 && x->type == GGML_TYPE_F32 && x->ne[0] == w->ne[0] && x->ne[1] >= 2 &&
           x->ne[2] == 1 && x->ne[3] == 1 && x->nb[0] == sizeof(float) &&
           op->type == GGML_TYPE_F32 && op->nb[0] == sizeof(float) && op->ne[0] == w->ne[1] &&
           op->ne[1] == x->ne[1] && ggml_row_size(GGML_TYPE_Q8_0, w->ne[0]) <= ROW_BYTES;
}

/* This thread's equal share of the weight rows against all activation
 * rows, which it converts to Q8_0 itself (no barrier). Without memory for
 * the converted rows it goes one activation row at a time; every thread
 * computes its share either way, so they never disagree on who does what. */
static void compute_rows_q5_0(const struct cpuexec_thread *t, struct ggml_tensor *op)
{
    const struct ggml_tensor *w = op->src[0], *x = op->src[1];
    const int K = (int)w->ne[0], nb = K / 32, M = (int)x->ne[1];
    const int64_t N = w->ne[1], r0 = N * t->ith / t->nth, r1 = N * (t->ith + 1) / t->nth;
    if (r1 <= r0)
        return;
    const size_t rowb = ggml_row_size(GGML_TYPE_Q8_0, K);
    const size_t stride = op->nb[1] / sizeof(float);
    float *out = (float *)op->data;
    const struct way *q8 = &g_plain[GGML_TYPE_Q8_0];
    /* the scales after the rows, aligned (a Q8_0 row is 34 bytes a block) */
    const size_t qbytes = (rowb * (size_t)M + 63) & ~(size_t)63;
    uint8_t *buf = malloc(qbytes + sizeof(float) * (size_t)M * nb);
    if (buf) {
        float *da = (float *)(buf + qbytes);
        for (int j = 0; j < M; j++) {
            uint8_t *qr = buf + rowb * (size_t)j;
            q8->from_float((const float *)((const char *)x->data + j * x->nb[1]), qr, K);
            for (int l = 0; l < nb; l++) {
                uint16_t h;
                memcpy(&h, qr + (size_t)l * 34, 2);
                da[(size_t)j * nb + l] = ggml_fp16_to_fp32(h);
            }
        }
        for (int64_t r = r0; r < r1; r++)
            kernels_q5_0_rows(K, (const char *)w->data + r * w->nb[1], buf, da, M, out + r,
                              stride);
        free(buf);
        return;
    }
    _Alignas(64) uint8_t row[ROW_BYTES];
    for (int j = 0; j < M; j++) {
        q8->from_float((const float *)((const char *)x->data + j * x->nb[1]), row, K);
        for (int64_t r = r0; r < r1; r++)
            kernels_vec_dot_q5_0(K, out + j * stride + r, (const char *)w->data + r * w->nb[1],
                                 row);
    }
}

/* activation rows from which a prompt against plain Q5_K, Q6_K or Q8_0
 * goes through engine/kgemm.h: below, unpacking its tiles costs more than
 * ggml's path saves (one 2048x2048 Q5_K matrix: 0.49 ms for 2 rows, 0.64
 * ms for 16; Q6_K unpacks at about the same cost, Q8_0 less) */
#ifndef KGEMM_MIN_ROWS
#define KGEMM_MIN_ROWS 16
#endif

/* the matrix types engine/kgemm.h takes, by ggml type */
static const struct {
    enum ggml_type type;
    enum kgemm_type kind;
} k_tiled[] = { { GGML_TYPE_Q5_K, KGEMM_Q5_K },     { GGML_TYPE_Q6_K, KGEMM_Q6_K },
                { GGML_TYPE_Q3_K, KGEMM_Q3_K },     { GGML_TYPE_IQ4_XS, KGEMM_IQ4_XS },
                { GGML_TYPE_Q8_0, KGEMM_Q8_0 },     { GGML_TYPE_Q5_0, KGEMM_Q5_0 } };

/* several rows against a plain matrix of that type: checked, in use */
static bool g_tiled[GGML_TYPE_COUNT];
static bool g_tiled_any;

static enum kgemm_type tiled_kind(enum ggml_type type)
{
    for (size_t i = 0; i < sizeof k_tiled / sizeof k_tiled[0]; i++)
        if (k_tiled[i].type == type)
            return k_tiled[i].kind;
    abort();                         /* only asked for types in g_tiled */
}

static bool rows_kgemm(const struct ggml_tensor *op)
{
    if (!g_tiled_any || op->op != GGML_OP_MUL_MAT)
        return false;
    const struct ggml_tensor *w = op->src[0], *x = op->src[1];
    if (!w || !x)
        return false;
    if ((unsigned)w->type >= GGML_TYPE_COUNT || !g_tiled[w->type])
        return false;
    /* Q8_0 and Q5_0 take Q8_0 activation rows, the others Q8_K */
    const bool q8 = kgemm_q8_0_rows(tiled_kind(w->type));
    return w->buffer &&
           ggml_backend_buffer_get_type(w->buffer) != g_repack &&
           ggml_backend_buffer_is_host(w->buffer) && w->ne[0] % (q8 ? 32 : 256) == 0 &&
           w->nb[1] == ggml_row_size(w->type, w->ne[0]) && w->nb[1] <= ROW_BYTES &&
           w->ne[2] == 1 &&
           w->ne[3] == 1 && x->type == GGML_TYPE_F32 && x->ne[0] == w->ne[0] &&
           x->ne[1] >= KGEMM_MIN_ROWS && x->ne[1] <= (1 << 20) && x->ne[2] == 1 &&
           x->ne[3] == 1 && x->nb[0] == sizeof(float) && op->type == GGML_TYPE_F32 &&
           op->nb[0] == sizeof(float) && op->ne[0] == w->ne[1] && op->ne[1] == x->ne[1] &&
           ggml_row_size(q8 ? GGML_TYPE_Q8_0 : GGML_TYPE_Q8_K, w->ne[0]) <= ROW_BYTES;
}

/* each thread's scratch for engine/kgemm.h, in thread-local storage (224
 * KiB, committed as a thread first uses it) so that no thread lacks it */
static _Thread_local _Alignas(64) unsigned char t_kgemm[KGEMM_SCRATCH_BYTES];

/* ggml's own protocol for a product: each thread converts its share of the
 * activation rows into the work buffer (laid out for the kernel), one
 * barrier, then each thread multiplies its 32-row tiles by all of them.
 * False (before touching anything) when the plan's work buffer is too
 * small: every thread sees the same size, so all leave it to ggml. */
static bool compute_rows_kgemm(struct ggml_compute_params *params, struct ggml_tensor *op)
{
    const struct cpuexec_params pr = cpuexec_params_of(params);
    const struct ggml_tensor *w = op->src[0], *x = op->src[1];
    const int K = (int)w->ne[0], M = (int)x->ne[1];
    const enum kgemm_type kind = tiled_kind(w->type);
    const bool q80 = kgemm_q8_0_rows(kind);
    if (!pr.wdata || pr.wsize < (q80 ? kgemm_q8_0_act_bytes(K, M) : kgemm_act_bytes(K, M)))
        return false;
    void *act = pr.wdata;
    /* its row type is Q8_K, or Q8_0 for Q8_0 and Q5_0 (checked in mulmat_init) */
    const struct way *q8 = &g_plain[w->type];
    _Alignas(64) uint8_t row[ROW_BYTES];
    for (int j = M * pr.ith / pr.nth; j < M * (pr.ith + 1) / pr.nth; j++) {
        q8->from_float((const float *)((const char *)x->data + j * x->nb[1]), row, K);
        if (q80)
            kgemm_q8_0_act_put(act, K, M, j, row);
        else
            kgemm_act_put(act, K, M, j, row);
    }
    ggml_barrier(pr.threadpool);
    const int64_t N = w->ne[1], tiles = (N + 31) / 32;
    const int64_t r0 = 32 * (tiles * pr.ith / pr.nth);
    int64_t r1 = 32 * (tiles * (pr.ith + 1) / pr.nth);
    r1 = r1 < N ? r1 : N;
    if (r1 <= r0)
        return true;
    const size_t ostride = op->nb[1] / sizeof(float);
    kgemm(kind, K, w->data, w->nb[1], r0, r1, act, M, (float *)op->data, ostride, t_kgemm);
    return true;
}

bool ggml_cpu_extra_compute_forward(struct ggml_compute_params *params, struct ggml_tensor *op)
{
    /* (16 rows or more against Q5_0 go here, fewer to rows_q5_0 below) */
    if (g_on && rows_kgemm(op) && compute_rows_kgemm(params, op)) {
        if (cpuexec_thread_of(params).ith == 0)
            atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed);
        return true;
    }
    if (g_on && rows_q5_0(op)) {
        const struct cpuexec_thread th = cpuexec_thread_of(params), *t = &th;
        compute_rows_q5_0(t, op);
        if (t->ith == 0)
            atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed);
        return true;
    }
    const struct way *y = g_on ? ours(op) : NULL;
    if (y) {
        const struct cpuexec_thread th = cpuexec_thread_of(params), *t = &th;
        const struct ggml_tensor *w = op->src[0], *x = op->src[1];
        const int K = (int)w->ne[0];
        /* shares of 8-row groups of a repacked matrix, or of rows, in
         * proportion to each thread's rate (engine/pace.h) */
        const int64_t units = y->gemv ? w->ne[1] / 8 : w->ne[1];
        const size_t unit_bytes = y->gemv ? 8 * w->nb[1] : w->nb[1];
        int64_t u0, u1;
        pace_share(units, t->ith, t->nth, &u0, &u1);
        pace_product_start(w->data, unit_bytes, units, t->ith, t->nth);
        _Alignas(64) uint8_t row[ROW_BYTES];
        if (u1 > u0) {
            y->from_float((const float *)x->data, row, K);   /* every thread its own copy */
            float *out = (float *)op->data;
            uint64_t t0 = pace_ticks();
            if (y->gemv)
                y->gemv(K, out + u0 * 8, (size_t)w->ne[1],
                        (const char *)w->data + (size_t)u0 * unit_bytes, row, 1,
                        (int)((u1 - u0) * 8));
            else if (y->rows)
                y->rows(K, out + u0, (const char *)w->data + u0 * w->nb[1], w->nb[1],
                        (int)(u1 - u0), row);
            else
                for (int64_t r = u0; r < u1; r++)
                    y->dot(K, out + r, 0, (const char *)w->data + r * w->nb[1], 0, row, 0, 1);
            pace_product_done(t->ith, (size_t)(u1 - u0) * unit_bytes, pace_ticks() - t0);
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

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level;
    (void)text;
    (void)ud;
}

/* A real matrix of `type` (in ggml's repacked buffer when `packed`, else in
 * its plain host buffer; its values quantized by ggml from random floats)
 * times `rows` activation rows, through ggml's executor on two threads:
 * ggml's operator and hearth's must agree, to the bit for one row when the
 * way is `exact` (the same sums), else to float rounding (another
 * summation order, and several rows). */
static bool check(enum ggml_type type, bool packed, int rows, bool exact)
{
    if (ggml_quantize_requires_imatrix(type))
        return false;
    enum { K = 256, N = 40, MAXR = 20 };
    if (rows < 1 || rows > MAXR)
        return false;
    bool ok = false;
    struct ggml_init_params wp = { 4 * ggml_tensor_overhead(), NULL, true };
    struct ggml_context *wctx = ggml_init(wp);
    size_t size = ggml_graph_overhead() + 8 * ggml_tensor_overhead() + K * 4 * MAXR +
                  N * 4 * 2 * MAXR + (16u << 10);
    struct ggml_context *ctx = cpuexec_context(size);
    ggml_backend_buffer_t buf = NULL;
    float *src = malloc(sizeof(float) * K * N);
    void *q = malloc(ggml_row_size(type, K) * N);
    if (!wctx || !ctx || !src || !q)
        goto out;
    struct ggml_tensor *w = ggml_new_tensor_2d(wctx, type, K, N);
    ggml_backend_buffer_type_t bt = packed ? g_repack : ggml_backend_cpu_buffer_type();
    buf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, bt);
    /* a repacked tensor ggml has no layout for would crash its upload */
    if (!buf || ggml_backend_buffer_get_type(w->buffer) != bt || (packed && !w->extra))
        goto out;
    uint32_t seed = 4242u + (uint32_t)type;
    for (int i = 0; i < K * N; i++) {
        seed = seed * 1664525u + 1013904223u;
        src[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
    size_t qbytes = ggml_quantize_chunk(type, src, q, 0, N, K, NULL);
    /* ggml repacks the matrix here, and logs a line about it */
    ggml_log_callback log_cb;
    void *log_ud;
    ggml_log_get(&log_cb, &log_ud);
    ggml_log_set(quiet, NULL);
    ggml_backend_tensor_set(w, q, 0, qbytes);
    ggml_log_set(log_cb, log_ud);
    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, rows);
    memcpy(x->data, src, sizeof(float) * K * rows);       /* rows <= N */
    struct ggml_tensor *y = ggml_mul_mat(ctx, w, x);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, y);
    float want[N * MAXR];
    const size_t outb = sizeof(float) * N * (size_t)rows;
    g_on = false;
    if (!cpuexec_run(gf, 2))
        goto out;
    memcpy(want, y->data, outb);
    memset(y->data, 0, outb);
    long before = mulmat_calls();
    g_on = true;
    bool ran = cpuexec_run(gf, 2);
    g_on = false;
    ok = ran && mulmat_calls() > before;
    if (rows == 1 && exact) {
        ok = ok && memcmp(want, y->data, outb) == 0;     /* the same functions: to the bit */
    } else {                                              /* another summation order */
        const float *got = y->data;
        for (int i = 0; ok && i < N * rows; i++)
            ok = fabsf(got[i] - want[i]) <= 1e-4f * (fabsf(want[i]) + 1.0f);
    }
out:
    ggml_backend_buffer_free(buf);
    cpuexec_context_free(ctx);
    if (wctx)
        ggml_free(wctx);
    free(src);
    free(q);
    return ok;
}

bool mulmat_init(const char *mode)
{
    pthread_once(&g_once, resolve);
    g_on = false;
    memset(g_plain, 0, sizeof g_plain);
    memset(g_packed, 0, sizeof g_packed);
    g_rows5 = false;
    memset(g_tiled, 0, sizeof g_tiled);
    g_tiled_any = false;
    if (mode && strcmp(mode, "off") == 0)
        return false;
    if (!kernels_cpu_ok())
        return false;
    if (!g_ggml_extra || !g_traits || !g_repack) {
        log_warn("mulmat: ggml's CPU backend does not export what hearth's single-row "
                 "products need; ggml's own stay");
        return false;
    }
    plan_ways();
    /* each way through its own check, alone */
    bool plain_ok[GGML_TYPE_COUNT] = { false }, packed_ok[GGML_TYPE_COUNT] = { false };
    char names[512] = "";
    int n = 0, failed = 0;
    for (int pk = 0; pk < 2; pk++)
        for (int t = 0; t < GGML_TYPE_COUNT; t++) {
            struct way *y = pk ? &g_packed[t] : &g_plain[t];
            if (!y->from_float)
                continue;
            y->on = true;
            bool ok = check((enum ggml_type)t, pk, 1, y->exact);
            y->on = false;
            (pk ? packed_ok : plain_ok)[t] = ok;
            failed += !ok;
            if (ok && strlen(names) + 24 < sizeof names) {
                strcat(names, n++ ? ", " : "");
                strcat(names, ggml_type_name((enum ggml_type)t));
                strcat(names, pk ? " (repacked)" : "");
            }
        }
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        g_plain[t].on = plain_ok[t];
        g_packed[t].on = packed_ok[t];
    }
    /* prompts against Q5_0: hearth's kernel, unpacking once per 8 rows */
    g_rows5 = false;
    if (kernels_q5_0_active() && plain_ok[GGML_TYPE_Q8_0]) {
        g_rows5 = true;
        g_rows5 = check(GGML_TYPE_Q5_0, false, 13, false);
        if (!g_rows5)
            log_warn("mulmat: hearth's Q5_0 products of several rows disagree with ggml's; "
                     "ggml's own stay");
        else if (strlen(names) + 24 < sizeof names) {
            strcat(names, n++ ? ", " : "");
            strcat(names, "q5_0 (several rows)");
        }
    }
    /* prompts against Q5_K, Q6_K, Q3_K, IQ4_XS, Q8_0 and Q5_0: engine/kgemm.h's
     * register tiles (20 rows: three tiles of 6 and one of 2; 40 weight
     * rows: one full tile and a part), each checked alone */
    for (size_t i = 0; i < sizeof k_tiled / sizeof k_tiled[0]; i++) {
        const enum ggml_type t = k_tiled[i].type;
        const enum ggml_type rt = kgemm_q8_0_rows(k_tiled[i].kind) ? GGML_TYPE_Q8_0 : GGML_TYPE_Q8_K;
        if (!g_plain[t].from_float || g_plain[t].row_type != rt)
            continue;
        g_tiled[t] = g_tiled_any = true;
        g_tiled[t] = check(t, false, 20, false);
        if (!g_tiled[t])
            log_warn("mulmat: hearth's %s products of several rows disagree with ggml's (or "
                     "were not reached); ggml's own stay", ggml_type_name(t));
        else if (strlen(names) + 24 < sizeof names) {
            strcat(names, n++ ? ", " : "");
            strcat(names, ggml_type_name(t));
            strcat(names, " (16+ rows, tiled)");
        }
    }
    g_tiled_any = false;
    for (size_t i = 0; i < sizeof k_tiled / sizeof k_tiled[0]; i++)
        g_tiled_any = g_tiled_any || g_tiled[k_tiled[i].type];
    if (failed)
        log_warn("mulmat: %d of hearth's single-row products disagree with ggml's (or were "
                 "not reached); ggml's own stay for those", failed);
    if (!n)
        return false;
    g_on = true;
    log_info("mulmat: single-row products scheduled by hearth (no inner barrier): %s", names);
    return true;
}

bool mulmat_active(void)
{
    return g_on;
}

bool mulmat_set(bool on)
{
    bool any = g_rows5 || g_tiled_any;
    for (int t = 0; t < GGML_TYPE_COUNT; t++)
        any = any || g_plain[t].on || g_packed[t].on;
    g_on = on && any;
    return g_on;
}

bool mulmat_active_for(int type, bool packed)
{
    return g_on && type >= 0 && type < GGML_TYPE_COUNT && (packed ? g_packed : g_plain)[type].on;
}
