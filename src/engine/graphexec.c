/*
 * graphexec.c: ggml's CPU graphs with barriers only where nodes depend on
 * each other (see graphexec.h).
 */
#include "engine/graphexec.h"

#include "core/log.h"
#include "engine/cpuexec.h"
#include "engine/kernels.h"
#include "engine/mulmat.h"
#include "engine/pace.h"

#include <dlfcn.h>
#include <math.h>
#include <ggml-cpu.h>
#include <ggml.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* element-wise nodes at most this big run on thread 0 alone */
#define FIRST_MAX 8192
/* graphs whose plans a thread keeps (a worker alternates a few: a decode
 * step, prompt chunks, embeddings) */
#define PLANS 4
/* steps since the last barrier that a new one is compared with */
#define PENDING_MAX 32
/* a leaf source at most this big is fetched before a run of thread-0 steps */
#define WARM_MAX (64u << 10)

typedef struct ggml_cplan (*plan_fn)(const struct ggml_cgraph *, int, struct ggml_threadpool *);
typedef enum ggml_status (*compute_fn)(struct ggml_cgraph *, struct ggml_cplan *);
typedef void (*op_fn)(const struct ggml_compute_params *, struct ggml_tensor *);
typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
typedef int (*omp_int_fn)(void);

/* hearth's flash attention under ggml's name (engine/attn.c) */
void ggml_compute_forward_flash_attn_ext(const struct ggml_compute_params *params,
                                         struct ggml_tensor *dst);

/* ggml's struct ggml_compute_params (its ggml-cpu-impl.h): the fields of
 * cpuexec_params, then use_ref; zeroed room after it for fields a newer
 * ggml might add */
struct xparams {
    struct cpuexec_params p;
    bool use_ref;
    char spare[64];
};

/* how an operator runs */
enum {
    SMALL = 1,   /* element-wise: may run on thread 0 alone */
    WDATA = 2,   /* may use the work buffer */
};

static const struct {
    enum ggml_op op;
    const char *name;            /* the backend's function; NULL: hearth's */
    unsigned how;
} k_ops[] = {
    { GGML_OP_DUP, "ggml_compute_forward_dup", SMALL | WDATA },
    { GGML_OP_CPY, "ggml_compute_forward_cpy", SMALL | WDATA },
    { GGML_OP_CONT, "ggml_compute_forward_cont", SMALL | WDATA },
    { GGML_OP_ADD, "ggml_compute_forward_add", SMALL },
    { GGML_OP_MUL, "ggml_compute_forward_mul", SMALL },
    { GGML_OP_SCALE, "ggml_compute_forward_scale", SMALL },
    { GGML_OP_NORM, "ggml_compute_forward_norm", SMALL },
    { GGML_OP_RMS_NORM, "ggml_compute_forward_rms_norm", SMALL },
    { GGML_OP_GET_ROWS, "ggml_compute_forward_get_rows", SMALL },
    { GGML_OP_SET_ROWS, "ggml_compute_forward_set_rows", SMALL },
    { GGML_OP_ROPE, "ggml_compute_forward_rope", SMALL | WDATA },
    { GGML_OP_GLU, "ggml_compute_forward_glu", SMALL },
    { GGML_OP_UNARY, "ggml_compute_forward_unary", SMALL },
    { GGML_OP_SOFT_MAX, "ggml_compute_forward_soft_max", WDATA },
    { GGML_OP_MUL_MAT, "ggml_compute_forward_mul_mat", WDATA },
    { GGML_OP_FLASH_ATTN_EXT, NULL, WDATA },
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static plan_fn g_ggml_plan;
static compute_fn g_ggml_compute;
static gomp_parallel_fn g_parallel;
static omp_int_fn g_thread_num, g_num_threads;
static op_fn g_fn[GGML_OP_COUNT];
static unsigned g_how[GGML_OP_COUNT];
static bool g_on;
static atomic_long g_graphs, g_barriers, g_built;

/* the stand-in for ggml's thread pool: ggml's own products take chunks
 * from a counter in it (reset by thread 0 behind a barrier); hearth's
 * barrier does not look at it */
static _Alignas(64) unsigned char g_pool[4096];

static void resolve(void)
{
    g_ggml_plan = (plan_fn)kernels_backend_symbol("ggml_graph_plan");
    g_ggml_compute = (compute_fn)kernels_backend_symbol("ggml_graph_compute");
    void *gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (gomp) {
        g_parallel = (gomp_parallel_fn)dlsym(gomp, "GOMP_parallel");
        g_thread_num = (omp_int_fn)dlsym(gomp, "omp_get_thread_num");
        g_num_threads = (omp_int_fn)dlsym(gomp, "omp_get_num_threads");
    }
    for (size_t i = 0; i < sizeof k_ops / sizeof k_ops[0]; i++) {
        op_fn f = k_ops[i].name ? (op_fn)kernels_backend_symbol(k_ops[i].name)
                                : ggml_compute_forward_flash_attn_ext;
        if (f) {
            g_fn[k_ops[i].op] = f;
            g_how[k_ops[i].op] = k_ops[i].how;
        }
    }
}

/* ---- plans ----------------------------------------------------------- */

struct step {
    struct ggml_tensor *node;
    op_fn fn;
    bool first;                  /* thread 0 alone, as the only thread */
    bool barrier;                /* every thread waits for the others first */
    bool wdata;
    int warm, nwarm;             /* leaf sources thread 0 fetches before it (plan's spans) */
};

struct span {
    uintptr_t lo, hi;
};

struct plan {
    const struct ggml_cgraph *graph;
    uint64_t sig;
    int n_threads;
    struct ggml_threadpool *pool;
    bool has_cplan;              /* ggml's plan for it is kept */
    struct ggml_cplan cplan;
    bool ours;                   /* every node is one hearth runs */
    int nsteps, cap, barriers;
    struct step *steps;
    int nwarm, warmcap;
    struct span *warm;
    unsigned long used;
};

static _Thread_local struct plan t_plans[PLANS];
static _Thread_local unsigned long t_clock;
static _Thread_local struct plan *t_fresh;   /* planned just now, for the compute that follows */

static inline uint64_t rotl(uint64_t x, int k)
{
    return x << k | x >> (64 - k);
}

/* What the steps and ggml's plan depend on, node by node: its address,
 * memory, operator, flags, type and shape, and its sources' addresses,
 * memory and shape. Independent per node, so the multiplications overlap. */
static uint64_t signature(const struct ggml_cgraph *cg)
{
    struct ggml_cgraph *g = (struct ggml_cgraph *)cg;
    const int n = ggml_graph_n_nodes(g);
    uint64_t h = (uint64_t)n;
    for (int i = 0; i < n; i++) {
        const struct ggml_tensor *t = ggml_graph_node(g, i);
        uint64_t a = (uintptr_t)t ^ rotl((uintptr_t)t->data, 17) ^
                     ((uint64_t)t->op | (uint64_t)t->flags << 12 | (uint64_t)t->type << 40);
        uint64_t b = (uint64_t)t->ne[0] ^ rotl((uint64_t)t->ne[1], 16) ^
                     rotl((uint64_t)t->ne[2], 32) ^ rotl((uint64_t)t->ne[3], 48) ^
                     rotl((uint64_t)t->nb[1], 8) ^ rotl((uint64_t)t->nb[2], 24) ^
                     rotl((uint64_t)t->nb[3], 40);
        for (int j = 0; j < GGML_MAX_SRC && t->src[j]; j++) {
            const struct ggml_tensor *s = t->src[j];
            a ^= rotl((uintptr_t)s, 3 + 7 * j) ^ rotl((uintptr_t)s->data, 5 + 7 * j);
            b ^= rotl((uint64_t)s->ne[0] ^ rotl((uint64_t)s->ne[1], 20) ^
                      rotl((uint64_t)s->type, 52), 11 + 5 * j);
        }
        h += (a * 0x9e3779b97f4a7c15ull ^ b * 0xc2b2ae3d27d4eb4full) * (2 * (uint64_t)i + 1);
    }
    return h ^ h >> 31;
}

static struct span span_of(const struct ggml_tensor *t)
{
    struct span s = { 0, 0 };
    if (t && t->data) {
        s.lo = (uintptr_t)t->data;
        s.hi = s.lo + ggml_nbytes(t);
    }
    return s;
}

static bool overlap(struct span a, struct span b)
{
    return a.lo < b.hi && b.lo < a.hi;
}

/* Must `n` wait until every thread is done with `p` (earlier, since the
 * last barrier)? */
static bool conflict(const struct step *p, const struct step *n)
{
    if (p->first && n->first)
        return false;                /* one thread, in order */
    if (p->wdata && n->wdata)
        return true;
    const struct span pw = span_of(p->node), nw = span_of(n->node);
    if (overlap(pw, nw))
        return true;
    for (int j = 0; j < GGML_MAX_SRC && n->node->src[j]; j++)
        if (overlap(pw, span_of(n->node->src[j])))
            return true;
    for (int j = 0; j < GGML_MAX_SRC && p->node->src[j]; j++)
        if (overlap(span_of(p->node->src[j]), nw))
            return true;
    return false;
}

/* ggml's rule for a node it computes (its ggml_graph_compute_thread): the
 * COMPUTE flag, and not an operator that only describes memory */
static bool computes(const struct ggml_tensor *t)
{
    switch (t->op) {
    case GGML_OP_NONE:
    case GGML_OP_RESHAPE:
    case GGML_OP_VIEW:
    case GGML_OP_PERMUTE:
    case GGML_OP_TRANSPOSE:
        return false;
    default:
        return (t->flags & GGML_TENSOR_FLAG_COMPUTE) && !ggml_is_empty(t);
    }
}

/* The elements a node computes: a cache write, the rows it writes. */
static int64_t work_of(const struct ggml_tensor *t)
{
    return t->op == GGML_OP_SET_ROWS && t->src[0] ? ggml_nelements(t->src[0]) : ggml_nelements(t);
}

/* The leaf sources (weights, inputs: nothing in the graph writes them) of
 * the run of thread-0 steps from `i`: thread 0 fetches them before it waits
 * at the barrier ahead of the run. The products before it have pushed them
 * out of every cache, and one step at a time the misses come one after
 * another (a norm's weight took 1.5 us a layer). */
static bool warm_run(struct plan *pl, int i)
{
    struct step *first = &pl->steps[i];
    first->warm = pl->nwarm;
    for (int k = i; k < pl->nsteps && pl->steps[k].first; k++)
        for (int j = 0; j < GGML_MAX_SRC && pl->steps[k].node->src[j]; j++) {
            const struct ggml_tensor *src = pl->steps[k].node->src[j];
            if (src->op != GGML_OP_NONE || !src->data || ggml_nbytes(src) > WARM_MAX)
                continue;
            if (pl->nwarm == pl->warmcap) {
                int cap = pl->warmcap ? 2 * pl->warmcap : 64;
                struct span *w = realloc(pl->warm, sizeof *w * (size_t)cap);
                if (!w)
                    return false;
                pl->warm = w;
                pl->warmcap = cap;
            }
            pl->warm[pl->nwarm++] = span_of(src);
        }
    first->nwarm = pl->nwarm - first->warm;
    return true;
}

/* The steps of graph `g`: false when a node is one hearth does not run. */
static bool build(struct plan *pl, const struct ggml_cgraph *cg, int n_threads)
{
    struct ggml_cgraph *g = (struct ggml_cgraph *)cg;
    const int n = ggml_graph_n_nodes(g);
    pl->nsteps = pl->barriers = 0;
    if (n > pl->cap) {
        struct step *s = realloc(pl->steps, sizeof *s * (size_t)n);
        if (!s)
            return false;
        pl->steps = s;
        pl->cap = n;
    }
    int pending[PENDING_MAX], np = 0;
    for (int i = 0; i < n; i++) {
        struct ggml_tensor *t = ggml_graph_node(g, i);
        if (!computes(t))
            continue;
        if ((unsigned)t->op >= GGML_OP_COUNT || !g_fn[t->op])
            return false;
        const unsigned how = g_how[t->op];
        struct step *s = &pl->steps[pl->nsteps];
        s->node = t;
        s->fn = g_fn[t->op];
        s->first = n_threads > 1 && (how & SMALL) && work_of(t) <= FIRST_MAX;
        s->warm = s->nwarm = 0;
        s->wdata = (how & WDATA) && !(t->op == GGML_OP_MUL_MAT && mulmat_private(t));
        bool wait = np == PENDING_MAX;
        for (int k = 0; k < np && !wait; k++)
            wait = conflict(&pl->steps[pending[k]], s);
        s->barrier = wait && pl->nsteps > 0;
        if (wait) {
            np = 0;
            pl->barriers++;
        }
        pending[np++] = pl->nsteps++;
    }
    pl->nwarm = 0;
    for (int i = 0; i < pl->nsteps; i++)
        if (pl->steps[i].first && (i == 0 || !pl->steps[i - 1].first) && !warm_run(pl, i))
            return false;
    return true;
}

static struct plan *find(const struct ggml_cgraph *g, uint64_t sig, int n_threads,
                         struct ggml_threadpool *pool)
{
    for (int i = 0; i < PLANS; i++) {
        struct plan *pl = &t_plans[i];
        if (pl->graph == g && pl->sig == sig && pl->n_threads == n_threads && pl->pool == pool) {
            pl->used = ++t_clock;
            return pl;
        }
    }
    return NULL;
}

/* A new plan for `g`, in the place of the least recently used one. */
static struct plan *make(const struct ggml_cgraph *g, uint64_t sig, int n_threads,
                         struct ggml_threadpool *pool)
{
    struct plan *pl = &t_plans[0];
    for (int i = 1; i < PLANS; i++)
        if (t_plans[i].used < pl->used)
            pl = &t_plans[i];
    pl->graph = g;
    pl->sig = sig;
    pl->n_threads = n_threads;
    pl->pool = pool;
    pl->has_cplan = false;
    pl->ours = build(pl, g, n_threads);
    pl->used = ++t_clock;
    atomic_fetch_add_explicit(&g_built, 1, memory_order_relaxed);
    return pl;
}

/* ---- running --------------------------------------------------------- */

struct job {
    const struct plan *pl;
    const struct ggml_cplan *cp;
};

static inline void forward(struct xparams *xp, const struct step *s)
{
    struct ggml_compute_params *params = (struct ggml_compute_params *)(void *)xp;
    if (!ggml_cpu_extra_compute_forward(params, s->node))
        s->fn(params, s->node);
}

static void warm(const struct plan *pl, const struct step *s)
{
#if defined(__x86_64__) || defined(__i386__)
    for (int i = s->warm; i < s->warm + s->nwarm; i++)
        for (uintptr_t a = pl->warm[i].lo & ~(uintptr_t)63; a < pl->warm[i].hi; a += 64)
            _mm_prefetch((const char *)a, _MM_HINT_T0);
#else
    (void)pl;
    (void)s;
#endif
}

static void thread_main(void *arg)
{
    const struct job *j = arg;
    const int ith = g_thread_num(), nth = g_num_threads();
    struct xparams all, one;
    memset(&all, 0, sizeof all);
    all.p = (struct cpuexec_params){ ith, nth, j->cp->work_size, j->cp->work_data,
                                     (struct ggml_threadpool *)(void *)g_pool };
    all.use_ref = false;
    one = all;
    one.p.ith = 0;
    one.p.nth = 1;
    const struct step *s = j->pl->steps, *end = s + j->pl->nsteps;
    for (; s < end; s++) {
        if (ith == 0 && s->nwarm)
            warm(j->pl, s);
        if (s->barrier)
            ggml_barrier(NULL);
        if (!s->first)
            forward(&all, s);
        else if (ith == 0)
            forward(&one, s);
    }
}

static void run(const struct plan *pl, const struct ggml_cplan *cp)
{
    struct job j = { pl, cp };
    g_parallel(thread_main, &j, (unsigned)cp->n_threads, 0);
    atomic_fetch_add_explicit(&g_graphs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_barriers, pl->barriers, memory_order_relaxed);
}

static bool usable(const struct ggml_cplan *cp)
{
    return g_on && cp->n_threads > 1 && !cp->abort_callback && !cp->use_ref &&
           (cp->work_size == 0 || cp->work_data);
}

/* ---- ggml's entry points ------------------------------------------- */

struct ggml_cplan ggml_graph_plan(const struct ggml_cgraph *cgraph, int n_threads,
                                  struct ggml_threadpool *threadpool)
{
    pthread_once(&g_once, resolve);
    if (!g_ggml_plan)
        abort();                     /* called from a ggml we never found */
    t_fresh = NULL;
    if (!g_on || n_threads < 2)
        return g_ggml_plan(cgraph, n_threads, threadpool);
    const uint64_t sig = signature(cgraph);
    struct plan *pl = find(cgraph, sig, n_threads, threadpool);
    if (!pl)
        pl = make(cgraph, sig, n_threads, threadpool);
    if (!pl->has_cplan) {
        pl->cplan = g_ggml_plan(cgraph, n_threads, threadpool);
        pl->has_cplan = true;
    }
    t_fresh = pl;
    return pl->cplan;
}

enum ggml_status ggml_graph_compute(struct ggml_cgraph *cgraph, struct ggml_cplan *cplan)
{
    pthread_once(&g_once, resolve);
    if (!g_ggml_compute)
        abort();
    pace_graph_starts();
    struct plan *pl = t_fresh;
    t_fresh = NULL;
    if (usable(cplan)) {
        if (!pl || pl->graph != cgraph || pl->n_threads != cplan->n_threads) {
            const uint64_t sig = signature(cgraph);
            pl = find(cgraph, sig, cplan->n_threads, cplan->threadpool);
            if (!pl)
                pl = make(cgraph, sig, cplan->n_threads, cplan->threadpool);
        }
        if (pl->ours) {
            run(pl, cplan);
            return GGML_STATUS_SUCCESS;
        }
    }
    return g_ggml_compute(cgraph, cplan);
}

/* ---- decision -------------------------------------------------------- */

static void fill(struct ggml_tensor *t, uint32_t *seed, float scale)
{
    for (int64_t i = 0; i < ggml_nelements(t); i++) {
        *seed = *seed * 1664525u + 1013904223u;
        float v = scale * ((float)(*seed >> 8) / 8388608.0f - 1.0f);
        if (t->type == GGML_TYPE_F16)
            ((ggml_fp16_t *)t->data)[i] = ggml_fp32_to_fp16(v);
        else
            ((float *)t->data)[i] = v;
    }
}

/* A layer of a small llama over `rows` positions: every operator above,
 * products against F32 (ggml's, with its work buffer and chunk counter)
 * and Q8_0 (engine/mulmat.h's for one row) matrices, attention over a
 * cache it wrote. */
static struct ggml_tensor *layer(struct ggml_context *ctx, int rows, uint32_t *seed)
{
    enum { E = 128, HD = 64, H = 4, HKV = 2, F = 256, NKV = 64, V = 50 };
    struct ggml_tensor *tab = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, E, V);
    struct ggml_tensor *ids = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, rows);
    struct ggml_tensor *pos = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, rows);
    struct ggml_tensor *slots = ggml_new_tensor_1d(ctx, GGML_TYPE_I64, rows);
    struct ggml_tensor *nw = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, E);
    struct ggml_tensor *wq = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, E, HD * H);
    struct ggml_tensor *wk = ggml_new_tensor_2d(ctx, GGML_TYPE_Q8_0, E, HD * HKV);
    struct ggml_tensor *wv = ggml_new_tensor_2d(ctx, GGML_TYPE_Q8_0, E, HD * HKV);
    struct ggml_tensor *wo = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, HD * H, E);
    struct ggml_tensor *wg = ggml_new_tensor_2d(ctx, GGML_TYPE_Q8_0, E, F);
    struct ggml_tensor *wu = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, E, F);
    struct ggml_tensor *wd = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, F, E);
    struct ggml_tensor *kc = ggml_new_tensor_2d(ctx, GGML_TYPE_F16, HD * HKV, NKV);
    struct ggml_tensor *vc = ggml_new_tensor_2d(ctx, GGML_TYPE_F16, HD * HKV, NKV);
    const int mrows = rows == 1 ? 1 : (rows + 63) / 64 * 64;
    struct ggml_tensor *mask = ggml_new_tensor_2d(ctx, GGML_TYPE_F16, NKV, mrows);
    struct ggml_tensor *f32s[] = { tab, nw, wq, wo, wu, wd };
    for (size_t i = 0; i < sizeof f32s / sizeof f32s[0]; i++)
        fill(f32s[i], seed, 0.5f);
    fill(kc, seed, 1.0f);
    fill(vc, seed, 1.0f);
    struct ggml_tensor *q8s[] = { wk, wv, wg };
    float tmp[E * F];
    for (size_t i = 0; i < sizeof q8s / sizeof q8s[0]; i++) {
        const int64_t nr = q8s[i]->ne[1];
        for (int64_t k = 0; k < E * nr; k++) {
            *seed = *seed * 1664525u + 1013904223u;
            tmp[k] = 0.5f * ((float)(*seed >> 8) / 8388608.0f - 1.0f);
        }
        ggml_quantize_chunk(GGML_TYPE_Q8_0, tmp, q8s[i]->data, 0, nr, E, NULL);
    }
    for (int r = 0; r < rows; r++) {
        ((int32_t *)ids->data)[r] = (r * 7 + 3) % V;
        ((int32_t *)pos->data)[r] = 20 + r;
        ((int64_t *)slots->data)[r] = 20 + r;
    }
    for (int r = 0; r < mrows; r++)
        for (int i = 0; i < NKV; i++)
            ((ggml_fp16_t *)mask->data)[(size_t)r * NKV + i] =
                ggml_fp32_to_fp16(i <= 20 + r && i % 5 != 4 ? 0.0f : -INFINITY);

    struct ggml_tensor *x = ggml_get_rows(ctx, tab, ids);
    struct ggml_tensor *h = ggml_mul(ctx, ggml_rms_norm(ctx, x, 1e-6f), nw);
    struct ggml_tensor *q = ggml_mul_mat(ctx, wq, h);
    struct ggml_tensor *k = ggml_mul_mat(ctx, wk, h);
    struct ggml_tensor *v = ggml_mul_mat(ctx, wv, h);
    q = ggml_rope(ctx, ggml_reshape_3d(ctx, q, HD, H, rows), pos, HD, 0);
    k = ggml_rope(ctx, ggml_reshape_3d(ctx, k, HD, HKV, rows), pos, HD, 0);
    struct ggml_tensor *kw = ggml_set_rows(ctx, kc, ggml_reshape_2d(ctx, k, HD * HKV, rows), slots);
    struct ggml_tensor *vw = ggml_set_rows(ctx, vc, v, slots);
    struct ggml_tensor *kv = ggml_permute(ctx, ggml_reshape_3d(ctx, kw, HD, HKV, NKV), 0, 2, 1, 3);
    struct ggml_tensor *vv = ggml_permute(ctx, ggml_reshape_3d(ctx, vw, HD, HKV, NKV), 0, 2, 1, 3);
    struct ggml_tensor *qp = ggml_permute(ctx, q, 0, 2, 1, 3);
    struct ggml_tensor *a = ggml_flash_attn_ext(ctx, qp, kv, vv, mask, 0.17f, 0.0f, 0.0f);
    a = ggml_mul_mat(ctx, wo, ggml_reshape_2d(ctx, a, HD * H, rows));
    struct ggml_tensor *r1 = ggml_add(ctx, a, x);
    struct ggml_tensor *f = ggml_mul(ctx, ggml_rms_norm(ctx, r1, 1e-6f), nw);
    f = ggml_swiglu_split(ctx, ggml_mul_mat(ctx, wg, f), ggml_mul_mat(ctx, wu, f));
    struct ggml_tensor *r2 = ggml_add(ctx, ggml_mul_mat(ctx, wd, f), ggml_dup(ctx, r1));
    /* the rest of the operators hearth runs */
    struct ggml_tensor *s = ggml_soft_max(ctx, ggml_scale(ctx, r2, 0.3f));
    struct ggml_tensor *u = ggml_gelu(ctx, ggml_norm(ctx, ggml_add(ctx, s, r2), 1e-5f));
    struct ggml_tensor *c = ggml_cpy(ctx, u, ggml_new_tensor_2d(ctx, GGML_TYPE_F16, E, rows));
    return ggml_cont(ctx, ggml_transpose(ctx, ggml_add(ctx, ggml_cpy(ctx, c, ggml_dup_tensor(ctx, u)), r2)));
}

/* Every node of the layer, with ggml's executor and three times with
 * hearth's: the same bits each time. */
static bool check_rows(int rows)
{
    const size_t size = ggml_graph_overhead() + (8u << 20);
    struct ggml_context *ctx = cpuexec_context(size);
    if (!ctx)
        return false;
    uint32_t seed = 99 + (uint32_t)rows;
    struct ggml_tensor *out = layer(ctx, rows, &seed);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, out);
    const int n = ggml_graph_n_nodes(gf);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += ggml_nbytes(ggml_graph_node(gf, i));
    unsigned char *want = malloc(total);
    bool ok = false, saved = g_on;
    g_on = false;
    if (!want || !cpuexec_run(gf, 2)) {
        if (getenv("GX_DEBUG"))
            log_warn("graphs: ggml's run failed");
        goto out;
    }
    for (size_t i = 0, off = 0; i < (size_t)n; off += ggml_nbytes(ggml_graph_node(gf, (int)i)), i++)
        memcpy(want + off, ggml_graph_node(gf, (int)i)->data, ggml_nbytes(ggml_graph_node(gf, (int)i)));
    g_on = true;
    for (int round = 0; round < 3; round++) {
        struct ggml_cplan cp = ggml_graph_plan(gf, 2, NULL);
        struct plan *pl = t_fresh;
        void *work = cp.work_size ? calloc(1, cp.work_size) : NULL;
        cp.work_data = work;
        bool ran = pl && pl->ours && (!cp.work_size || work);
        if (ran) {
            for (int i = 0; i < n; i++) {
                struct ggml_tensor *t = ggml_graph_node(gf, i);
                if (computes(t) && t->op != GGML_OP_SET_ROWS)
                    memset(t->data, 0, ggml_nbytes(t));
            }
            long before = atomic_load(&g_graphs);
            ran = ggml_graph_compute(gf, &cp) == GGML_STATUS_SUCCESS &&
                  atomic_load(&g_graphs) == before + 1;
        }
        free(work);
        if (!ran) {
            if (getenv("GX_DEBUG"))
                log_warn("graphs: rows %d did not run (pl %p ours %d)", rows, (void *)pl, pl ? pl->ours : -1);
            goto out;
        }
        for (size_t i = 0, off = 0; i < (size_t)n; i++) {
            const struct ggml_tensor *t = ggml_graph_node(gf, (int)i);
            /* (ggml fuses a norm into the product by its weight and leaves
             * the norm's own output unwritten; what reads it is compared) */
            if (t->op != GGML_OP_RMS_NORM && memcmp(want + off, t->data, ggml_nbytes(t)) != 0) {
                if (getenv("GX_DEBUG"))
                    log_warn("graphs: rows %d round %d node %zu %s %s differs", rows, round, i, ggml_op_desc(t), t->name);
                goto out;
            }
            off += ggml_nbytes(t);
        }
    }
    ok = true;
out:
    g_on = saved;
    t_fresh = NULL;
    for (int i = 0; i < PLANS; i++)
        t_plans[i].graph = NULL;     /* the graph's memory goes now */
    free(want);
    cpuexec_context_free(ctx);
    return ok;
}

bool graphexec_init(const char *mode)
{
    pthread_once(&g_once, resolve);
    g_on = false;
    const char *env = getenv("HEARTH_GRAPHEXEC");
    if ((mode && strcmp(mode, "off") == 0) || (env && strcmp(env, "off") == 0))
        return false;
    if (!pace_active() || !g_ggml_plan || !g_ggml_compute || !g_parallel || !g_thread_num ||
        !g_num_threads) {
        log_info("graphs: ggml's executor (hearth's needs its barrier and ggml's OpenMP build)");
        return false;
    }
    if (!check_rows(1) || !check_rows(5)) {
        log_warn("graphs: a graph computed by hearth's executor differs from ggml's; "
                 "ggml's executor stays");
        return false;
    }
    g_on = true;
    log_info("graphs: hearth's executor, barriers only where nodes depend on each other");
    return true;
}

bool graphexec_active(void)
{
    return g_on;
}

long graphexec_graphs(void)
{
    return atomic_load(&g_graphs);
}

long graphexec_barriers(void)
{
    return atomic_load(&g_barriers);
}

long graphexec_plans_built(void)
{
    return atomic_load(&g_built);
}
