/*
 * pace.c: shares that follow each thread's rate, ggml's barrier replaced,
 * and the next weights fetched while a thread waits (see pace.h).
 */
#include "engine/pace.h"

#include "core/log.h"
#include "engine/cpuexec.h"
#include "engine/kernels.h"

#include <dlfcn.h>
#include <ggml-cpu.h>
#include <ggml.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <x86intrin.h>
#endif

/* products of one graph that are learned (a 0.5B llama has 169) */
#define MAX_PRODUCTS 2048
/* cache lines fetched between two looks at the barrier (~50 ns of bus) */
#define CHUNK_BYTES 1024
/* pauses before a waiting thread starts yielding its core (~0.5 ms): two
 * workers computing at once may have more threads than cores */
#define SPINS_BEFORE_YIELD (1u << 14)
/* threads whose shares follow their rates; more take equal shares */
#define MAX_THREADS 16
/* weight of the last graph in the running average of rates */
#define RATE_STEP 0.25
/* no thread's share below this fraction of an equal one */
#define MIN_SHARE 0.25

typedef void (*barrier_fn)(struct ggml_threadpool *);
typedef enum ggml_status (*compute_fn)(struct ggml_cgraph *, struct ggml_cplan *);
typedef int (*team_fn)(void);

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static barrier_fn g_ggml_barrier;  /* the backend's own */
static compute_fn g_ggml_compute;
static team_fn g_team;             /* libgomp's omp_get_num_threads */
static bool g_on;
static size_t g_ahead_max = 768u << 10;

/* ---- shares ---------------------------------------------------------- */

/* set by thread 0 between graphs, read by every thread during one */
static int g_split_n;                          /* threads the split is for; 0 = equal */
static double g_weight[MAX_THREADS], g_cum[MAX_THREADS + 1];
/* this graph's streaming, each thread its own line */
static struct {
    _Alignas(64) uint64_t ticks, bytes;
} g_spent[MAX_THREADS];
static int g_graph_nth;                        /* threads of the last graph's products */

void pace_share(int64_t units, int ith, int nth, int64_t *u0, int64_t *u1)
{
    if (!g_on || nth != g_split_n) {
        *u0 = units * ith / nth;
        *u1 = units * (ith + 1) / nth;
        return;
    }
    *u0 = ith ? (int64_t)((double)units * g_cum[ith] + 0.5) : 0;
    *u1 = ith + 1 < nth ? (int64_t)((double)units * g_cum[ith + 1] + 0.5) : units;
    if (*u0 > units)
        *u0 = units;
    if (*u1 < *u0)
        *u1 = *u0;
}

void pace_product_done(int ith, size_t bytes, uint64_t ticks)
{
    if (g_on && ith >= 0 && ith < MAX_THREADS) {
        g_spent[ith].ticks += ticks;
        g_spent[ith].bytes += bytes;
    }
}

uint64_t pace_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

/* Thread 0, between graphs: move the shares towards the threads' rates. */
static void rebalance(void)
{
    int n = g_graph_nth;
    if (n < 2 || n > MAX_THREADS) {
        g_split_n = 0;
        return;
    }
    if (g_split_n != n)
        for (int i = 0; i < n; i++)
            g_weight[i] = 1.0 / n;
    double rate[MAX_THREADS], sum = 0;
    bool all = true;
    for (int i = 0; i < n; i++) {
        all = all && g_spent[i].ticks > 0 && g_spent[i].bytes > 0;
        rate[i] = all ? (double)g_spent[i].bytes / (double)g_spent[i].ticks : 0;
        sum += rate[i];
    }
    memset(g_spent, 0, sizeof g_spent);
    if (all && sum > 0) {
        double total = 0;
        for (int i = 0; i < n; i++) {
            double w = (1 - RATE_STEP) * g_weight[i] + RATE_STEP * rate[i] / sum;
            g_weight[i] = w < MIN_SHARE / n ? MIN_SHARE / n : w;
            total += g_weight[i];
        }
        for (int i = 0; i < n; i++)
            g_weight[i] /= total;
    }
    g_cum[0] = 0;
    for (int i = 0; i < n; i++)
        g_cum[i + 1] = g_cum[i] + g_weight[i];
    g_split_n = n;
}

double pace_first_share(void)
{
    return g_split_n ? g_weight[0] : g_graph_nth > 0 ? 1.0 / g_graph_nth : 1.0;
}

/* ---- the schedule ---------------------------------------------------- */

struct product {
    _Atomic(const char *) base;
    atomic_size_t unit;
    _Atomic int64_t units;
};

/* written by thread 0 as it goes, read by the others */
static struct product g_sched[MAX_PRODUCTS];
static atomic_int g_len;           /* products in the schedule; 0 = none */
static atomic_uint g_graph;        /* graphs started */
static _Atomic uint64_t g_fetched;
static atomic_long g_scheduled;
/* thread 0's record of the graph in progress (only thread 0 touches it) */
static int g_rec_n, g_rec_prev;
static bool g_rec_same;

/* each thread's place in the schedule */
static _Thread_local struct {
    unsigned graph;                /* the graph the fields below belong to */
    int len;                       /* the schedule's length they were counted in */
    int k;                         /* products this thread started in the graph */
    int ith, nth;
    int pk;                        /* product being fetched (len.. are the next graph's) */
    size_t poff;                   /* bytes of its share fetched */
    size_t ahead;                  /* bytes fetched for products not yet started */
} t;

/* This thread's share of product j of the schedule: bytes [*lo, return). */
static size_t share_of(int j, size_t *lo, const char **base)
{
    const struct product *p = &g_sched[j];
    size_t unit = atomic_load_explicit(&p->unit, memory_order_relaxed);
    int64_t units = atomic_load_explicit(&p->units, memory_order_relaxed), u0, u1;
    *base = atomic_load_explicit(&p->base, memory_order_relaxed);
    pace_share(units, t.ith, t.nth, &u0, &u1);
    *lo = (size_t)u0 * unit;
    return (size_t)u1 * unit;
}

static void forget(void)
{
    t.pk = t.k;
    t.poff = 0;
    t.ahead = 0;
}

/* A new graph (or schedule) since this thread last looked: what it fetched
 * past the end of the last graph's products is the start of this one's. */
static void sync_graph(void)
{
    unsigned g = atomic_load_explicit(&g_graph, memory_order_relaxed);
    int len = atomic_load_explicit(&g_len, memory_order_relaxed);
    if (t.graph == g && t.len == len)
        return;
    if (t.graph == g) {            /* the schedule was dropped mid-graph */
        t.len = len;
        forget();
        return;
    }
    bool carry = t.graph + 1 == g && t.len == len && len > 0 && t.pk >= len;
    t.graph = g;
    t.len = len;
    t.k = 0;
    if (carry)
        t.pk -= len;
    else
        forget();
}

/* Fetch the next piece of this thread's shares; false when there is none
 * to fetch (no schedule, or far enough ahead). */
static bool fetch_some(void)
{
    if (!t.nth)
        return false;
    sync_graph();
    if (t.len <= 0 || t.ahead >= g_ahead_max || t.pk >= 2 * t.len)
        return false;
    size_t lo;
    const char *base;
    size_t hi = share_of(t.pk % t.len, &lo, &base);
    size_t left = hi > lo + t.poff ? hi - lo - t.poff : 0;
    size_t n = left < CHUNK_BYTES ? left : CHUNK_BYTES;
#if defined(__x86_64__) || defined(__i386__)
    const char *p = base + lo + t.poff;
    for (size_t i = 0; i < n; i += 64)
        _mm_prefetch(p + i, _MM_HINT_T1);
#endif
    t.poff += n;
    t.ahead += n;
    if (t.poff >= hi - lo) {
        t.pk++;
        t.poff = 0;
    }
    atomic_fetch_add_explicit(&g_fetched, n, memory_order_relaxed);
    return true;
}

static void record(int k, const void *base, size_t unit, int64_t units)
{
    g_rec_n = k + 1;
    if (k >= MAX_PRODUCTS) {
        g_rec_same = false;
        return;
    }
    struct product *p = &g_sched[k];
    if (atomic_load_explicit(&p->base, memory_order_relaxed) == base &&
        atomic_load_explicit(&p->unit, memory_order_relaxed) == unit &&
        atomic_load_explicit(&p->units, memory_order_relaxed) == units)
        return;
    if (g_rec_same) {
        g_rec_same = false;
        atomic_store_explicit(&g_len, 0, memory_order_relaxed);   /* stop fetching */
    }
    atomic_store_explicit(&p->base, (const char *)base, memory_order_relaxed);
    atomic_store_explicit(&p->unit, unit, memory_order_relaxed);
    atomic_store_explicit(&p->units, units, memory_order_relaxed);
}

void pace_product_start(const void *base, size_t unit_bytes, int64_t units, int ith, int nth)
{
    if (!g_on)
        return;
    sync_graph();
    int k = t.k++;
    if (t.ith != ith || t.nth != nth) {
        t.ith = ith;
        t.nth = nth;
        forget();
    }
    if (ith == 0) {
        record(k, base, unit_bytes, units);
        g_graph_nth = nth;
    }
    if (t.len <= 0 || k >= t.len) {
        forget();
        return;
    }
    /* product k starts: what was fetched for it is in use now */
    if (t.pk > k) {
        size_t lo;
        const char *b;
        size_t used = share_of(k, &lo, &b) - lo;
        t.ahead = t.ahead > used ? t.ahead - used : 0;
    } else {
        t.pk = k + 1;
        t.poff = 0;
        t.ahead = 0;
    }
}

/* Thread 0, before a graph: the last graph's products become the schedule
 * if they repeat the one before; the shares follow the rates. */
static void graph_starts(void)
{
    int n = g_rec_n;
    bool keep = n > 0 && n <= MAX_PRODUCTS && g_rec_same && n == g_rec_prev;
    atomic_store_explicit(&g_len, keep ? n : 0, memory_order_relaxed);
    if (keep)
        atomic_fetch_add_explicit(&g_scheduled, 1, memory_order_relaxed);
    g_rec_prev = n;
    g_rec_n = 0;
    g_rec_same = true;
    if (!n)
        g_graph_nth = 0;              /* no single-row products: nothing to balance */
    rebalance();
    atomic_fetch_add_explicit(&g_graph, 1, memory_order_relaxed);
}

/* ---- ggml's entry points ------------------------------------------- */

static void resolve(void)
{
    g_ggml_barrier = (barrier_fn)kernels_backend_symbol("ggml_barrier");
    g_ggml_compute = (compute_fn)kernels_backend_symbol("ggml_graph_compute");
    void *gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (gomp)
        g_team = (team_fn)dlsym(gomp, "omp_get_num_threads");
}

enum ggml_status ggml_graph_compute(struct ggml_cgraph *cgraph, struct ggml_cplan *cplan)
{
    pthread_once(&g_once, resolve);
    if (!g_ggml_compute)
        abort();                     /* called from a ggml we never found */
    if (g_on)
        graph_starts();
    return g_ggml_compute(cgraph, cplan);
}

/* the barrier: arrivals, and the generation whose change releases them */
static _Alignas(64) atomic_int g_arrived;
static _Alignas(64) atomic_uint g_generation;
static atomic_long g_barriers;

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

void ggml_barrier(struct ggml_threadpool *tp)
{
    if (!g_on) {
        pthread_once(&g_once, resolve);
        if (!g_ggml_barrier)
            abort();
        g_ggml_barrier(tp);
        return;
    }
    int n = g_team();
    if (n <= 1)
        return;
    unsigned gen = atomic_load_explicit(&g_generation, memory_order_acquire);
    if (atomic_fetch_add_explicit(&g_arrived, 1, memory_order_acq_rel) == n - 1) {
        /* the last to arrive: reset for the next barrier, then release */
        atomic_store_explicit(&g_arrived, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&g_barriers, 1, memory_order_relaxed);
        atomic_store_explicit(&g_generation, gen + 1, memory_order_release);
        return;
    }
    bool work = true;
    unsigned spins = 0;
    while (atomic_load_explicit(&g_generation, memory_order_acquire) == gen) {
        if (work)
            work = fetch_some();
        else if (++spins < SPINS_BEFORE_YIELD)
            relax();
        else {
            sched_yield();           /* another process has the core */
            spins = 0;
        }
    }
}

/* ---- decision -------------------------------------------------------- */

/* A chain of operators with barriers inside and between them (ggml's
 * matrix products hand out chunks from a shared counter behind one),
 * computed with ggml's barrier and three times with hearth's: the results
 * must be the same bits each time. */
static bool check(void)
{
    enum { K = 256, M = 96, N = 64, R = 16, NOUT = N * R };
    size_t size = ggml_graph_overhead() + 12 * ggml_tensor_overhead() +
                  sizeof(float) * ((size_t)K * M + (size_t)M * N + (size_t)K * R +
                                   6 * (size_t)M * R) + (64u << 10);
    struct ggml_context *ctx = cpuexec_context(size);
    if (!ctx)
        return false;
    struct ggml_tensor *w1 = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, M);
    struct ggml_tensor *w2 = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, M, N);
    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, R);
    uint32_t seed = 4242;
    struct ggml_tensor *in[] = { w1, w2, x };
    for (int j = 0; j < 3; j++) {
        float *d = in[j]->data;
        for (int64_t i = 0; i < ggml_nelements(in[j]); i++) {
            seed = seed * 1664525u + 1013904223u;
            d[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
        }
    }
    struct ggml_tensor *y = ggml_soft_max(ctx, ggml_mul_mat(ctx, w1, x));
    struct ggml_tensor *z = ggml_mul_mat(ctx, w2, y);
    struct ggml_tensor *out = ggml_add(ctx, ggml_rms_norm(ctx, z, 1e-6f), z);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, out);
    float want[NOUT];
    bool ok = false;
    g_on = false;
    if (!cpuexec_run(gf, 2))
        goto out;
    memcpy(want, out->data, sizeof want);
    for (int round = 0; round < 3; round++) {
        memset(out->data, 0, sizeof want);
        long before = atomic_load(&g_barriers);
        g_on = true;
        bool ran = cpuexec_run(gf, 2);
        g_on = false;
        if (!ran || atomic_load(&g_barriers) == before)
            goto out;                /* the backend did not reach hearth's barrier */
        if (memcmp(want, out->data, sizeof want) != 0)
            goto out;
    }
    ok = true;
out:
    cpuexec_context_free(ctx);
    return ok;
}

bool pace_init(const char *mode)
{
    pthread_once(&g_once, resolve);
    g_on = false;
    g_split_n = 0;
    memset(g_spent, 0, sizeof g_spent);
    if (mode && strcmp(mode, "off") == 0)
        return false;
    if (!g_ggml_barrier || !g_ggml_compute || !g_team) {
        log_info("pace: ggml's CPU backend is not the OpenMP build hearth knows; "
                 "ggml's barrier and equal shares stay");
        return false;
    }
    const char *kb = getenv("HEARTH_PREFETCH_KB");
    if (kb && *kb) {
        long v = strtol(kb, NULL, 10);
        g_ahead_max = v <= 0 ? 0 : v > (16 << 10) ? (16u << 20) : (size_t)v << 10;
    }
    if (!check()) {
        log_warn("pace: a graph computed with hearth's barrier differs from ggml's; "
                 "ggml's barrier and equal shares stay");
        return false;
    }
    g_on = true;
    log_info("pace: shares follow each thread's rate; threads waiting at a barrier fetch up "
             "to %zu KiB of their next weights", g_ahead_max >> 10);
    return true;
}

bool pace_active(void)
{
    return g_on;
}

uint64_t pace_fetched_bytes(void)
{
    return atomic_load(&g_fetched);
}

long pace_scheduled_graphs(void)
{
    return atomic_load(&g_scheduled);
}
