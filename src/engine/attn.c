/*
 * attn.c: attention for one query row per sequence with AVX-512, in place
 * of ggml's flash attention (see attn.h for when and how).
 *
 * The operator's tensors, in ggml's terms (ggml.h, ggml_flash_attn_ext):
 *   q    [D, 1, n_head, n_seq] fp32, scaled here by the operator's scale;
 *   k, v [D, n_kv, n_head_kv, n_seq] fp16 views of the KV cache;
 *   mask [n_kv, >=1, 1, n_seq] fp16: 0 where a position is visible,
 *        -inf where not (any finite value is added to the score);
 *   dst  [D, n_head, 1, n_seq] fp32.
 * Query head h reads KV head h / (n_head / n_head_kv). One unit of work is
 * a sequence and a KV head with its group of G query heads. A unit walks
 * the cache in tiles of 256 positions: the visible positions' scores for
 * all G heads (each key row converted once), then the usual running
 * softmax -- the tile's maximum, a rescale of what came before, exp of the
 * scores 16 at a time -- and the value rows added into G accumulators,
 * each value row converted once per 16 dimensions and used by all heads.
 */
#include "engine/attn.h"

#include "core/log.h"
#include "engine/cpuexec.h"
#include "engine/kernels.h"
#include "engine/attnp.h"
#include "engine/vexp.h"

#include <ggml-cpu.h>
#include <ggml.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ATARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

enum { TILE = 256, MAX_GROUP = 16, MAX_D = 256 };

/* key rows are fetched this many positions ahead */
#define PREFETCH_ROWS 8

typedef void (*fa_fn)(const struct ggml_compute_params *, struct ggml_tensor *);

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static fa_fn g_ggml_fa;        /* the backend's own operator */
static bool g_ok;              /* the check passed */
static bool g_on;              /* hearth's is in use */
static bool g_prompt;          /* and its prompt path (engine/attnp.h): checked */
static atomic_long g_calls;

static void resolve(void)
{
    g_ggml_fa = (fa_fn)kernels_backend_symbol("ggml_compute_forward_flash_attn_ext");
}

/* The operator's options both of hearth's paths handle: no sinks, ALiBi or
 * soft-capping, nothing newer than this code. */
static bool options_ok(const struct ggml_tensor *dst)
{
    if (!dst->src[0] || !dst->src[1] || !dst->src[2] || dst->src[4])      /* sinks */
        return false;
    float p[3];
    memcpy(p, dst->op_params, sizeof p);
    if (p[1] != 0.0f || p[2] != 0.0f)                     /* ALiBi, soft-capping */
        return false;
    if (dst->op_params[3] != GGML_PREC_DEFAULT && dst->op_params[3] != GGML_PREC_F32)
        return false;
    for (size_t i = 4; i < GGML_MAX_OP_PARAMS / sizeof(int32_t); i++)
        if (dst->op_params[i])                            /* options newer than this code */
            return false;
    return true;
}

/* The decode case written for (one query row per sequence). */
static bool supported(const struct ggml_tensor *dst)
{
    const struct ggml_tensor *q = dst->src[0], *k = dst->src[1], *v = dst->src[2];
    const struct ggml_tensor *m = dst->src[3];
    if (q->type != GGML_TYPE_F32 || k->type != GGML_TYPE_F16 || v->type != GGML_TYPE_F16 ||
        dst->type != GGML_TYPE_F32)
        return false;
    const int64_t D = k->ne[0];
    if (D <= 0 || D % 16 || D > MAX_D || q->ne[0] != D || v->ne[0] != D || q->ne[1] != 1)
        return false;
    if (q->nb[0] != sizeof(float) || k->nb[0] != 2 || v->nb[0] != 2 ||
        dst->nb[0] != sizeof(float))
        return false;
    if (k->ne[1] != v->ne[1] || k->ne[2] != v->ne[2] || k->ne[3] != v->ne[3] || k->ne[2] <= 0 ||
        k->ne[3] <= 0 || q->ne[2] % k->ne[2] || q->ne[2] / k->ne[2] > MAX_GROUP ||
        q->ne[3] % k->ne[3])
        return false;
    if (dst->ne[0] != D || dst->ne[1] != q->ne[2] || dst->ne[2] != 1 || dst->ne[3] != q->ne[3])
        return false;
    if (m && (m->type != GGML_TYPE_F16 || m->nb[0] != 2 || m->ne[0] < k->ne[1] || m->ne[2] != 1 ||
              m->ne[3] <= 0 || q->ne[3] % m->ne[3]))
        return false;
    return true;
}

/* Scores of n positions for G heads: sc[g][j] = q_g . k_idx[j] + mask.
 * nd (the width in 16s) is a constant where this is inlined. */
ATARGET static inline __attribute__((always_inline)) void
scores(int nd, int G, int n, const int32_t *idx, const float *mv, const char *kb, size_t kstride,
       __m512 qv[][MAX_D / 16], float sc[][TILE])
{
    for (int j = 0; j < n; j++) {
        const char *kr = kb + (size_t)idx[j] * kstride;
        if (j + PREFETCH_ROWS < n) {     /* the cache is read once per step: from memory */
            const char *pf = kb + (size_t)idx[j + PREFETCH_ROWS] * kstride;
            for (int d = 0; d < nd; d += 2)
                _mm_prefetch(pf + 32 * d, _MM_HINT_T0);
        }
        __m512 kx[MAX_D / 16];
        for (int d = 0; d < nd; d++)
            kx[d] = load_h16(kr + 32 * d);
        for (int g = 0; g < G; g++) {
            __m512 a = _mm512_mul_ps(qv[g][0], kx[0]);
            for (int d = 1; d < nd; d++)
                a = _mm512_fmadd_ps(qv[g][d], kx[d], a);
            sc[g][j] = _mm512_reduce_add_ps(a) + mv[j];
        }
    }
}

/* acc[g] += sum_j sc[g][j] * v_idx[j], four heads at a time (G4 is G
 * rounded up to 4; the extra rows of sc are zero). */
ATARGET static void accumulate(int nd, int G4, int n, const int32_t *idx, const char *vb,
                               size_t vstride, float sc[][TILE], __m512 acc[][MAX_D / 16])
{
    for (int j = 0; j < n; j++)          /* the value rows, into cache for the passes below */
        for (int d = 0; d < nd; d += 2)
            _mm_prefetch(vb + (size_t)idx[j] * vstride + 32 * d, _MM_HINT_T0);
    for (int d = 0; d < nd; d++)
        for (int g = 0; g < G4; g += 4) {
            __m512 a0 = acc[g][d], a1 = acc[g + 1][d], a2 = acc[g + 2][d], a3 = acc[g + 3][d];
            for (int j = 0; j < n; j++) {
                const __m512 x = load_h16(vb + (size_t)idx[j] * vstride + 32 * d);
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(sc[g][j]), x, a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(sc[g + 1][j]), x, a1);
                a2 = _mm512_fmadd_ps(_mm512_set1_ps(sc[g + 2][j]), x, a2);
                a3 = _mm512_fmadd_ps(_mm512_set1_ps(sc[g + 3][j]), x, a3);
            }
            acc[g][d] = a0;
            acc[g + 1][d] = a1;
            acc[g + 2][d] = a2;
            acc[g + 3][d] = a3;
        }
}

/* One sequence (iq3) and one KV head (ik2) with G of its query heads,
 * from the group's head h0 on. */
ATARGET static void unit(const struct ggml_tensor *dst, int64_t iq3, int64_t ik2, int h0, int G)
{
    const struct ggml_tensor *q = dst->src[0], *k = dst->src[1], *v = dst->src[2];
    const struct ggml_tensor *m = dst->src[3];
    const int nd = (int)(k->ne[0] / 16);
    const int64_t head0 = ik2 * (q->ne[2] / k->ne[2]) + h0;   /* first query head */
    const int G4 = (G + 3) & ~3;
    const int64_t n_kv = k->ne[1];
    const int64_t ik3 = iq3 / (q->ne[3] / k->ne[3]);
    float scale;
    memcpy(&scale, dst->op_params, sizeof scale);

    const char *kb = (const char *)k->data + ik2 * k->nb[2] + ik3 * k->nb[3];
    const char *vb = (const char *)v->data + ik2 * v->nb[2] + ik3 * v->nb[3];
    const uint16_t *mrow =
        m ? (const uint16_t *)((const char *)m->data + (iq3 % m->ne[3]) * m->nb[3]) : NULL;

    __m512 qv[MAX_GROUP][MAX_D / 16];
    __m512 acc[MAX_GROUP][MAX_D / 16];
    _Alignas(64) float sc[MAX_GROUP][TILE];
    float mx[MAX_GROUP], sum[MAX_GROUP];
    int32_t idx[TILE];
    float mv[TILE];
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int g = 0; g < G4; g++) {
        const float *qr = g < G ? (const float *)((const char *)q->data +
                                                  (head0 + g) * q->nb[2] + iq3 * q->nb[3])
                                : NULL;
        for (int d = 0; d < nd; d++) {
            qv[g][d] = qr ? _mm512_mul_ps(_mm512_loadu_ps(qr + 16 * d), vscale)
                          : _mm512_setzero_ps();
            acc[g][d] = _mm512_setzero_ps();
        }
        mx[g] = -INFINITY;
        sum[g] = 0.0f;
    }

    for (int64_t t0 = 0; t0 < n_kv; t0 += TILE) {
        const int tn = (int)(n_kv - t0 < TILE ? n_kv - t0 : TILE);
        int n = 0;
        for (int i = 0; i < tn; i++) {
            const float x = mrow ? _cvtsh_ss(mrow[t0 + i]) : 0.0f;
            if (x == -INFINITY)
                continue;
            idx[n] = (int32_t)(t0 + i);
            mv[n++] = x;
        }
        if (n == 0)
            continue;
        if (nd == 4)
            scores(4, G, n, idx, mv, kb, k->nb[1], qv, sc);
        else if (nd == 8)
            scores(8, G, n, idx, mv, kb, k->nb[1], qv, sc);
        else
            scores(nd, G, n, idx, mv, kb, k->nb[1], qv, sc);

        const int n16 = (n + 15) & ~15;
        const __mmask16 tail = (__mmask16)(n % 16 ? (1u << (n % 16)) - 1 : 0xFFFF);
        for (int g = 0; g < G; g++) {
            for (int j = n; j < n16; j++)
                sc[g][j] = -INFINITY;
            __m512 vm = _mm512_set1_ps(-INFINITY);
            for (int j = 0; j < n16; j += 16)
                vm = _mm512_max_ps(vm, _mm512_load_ps(&sc[g][j]));
            const float tmax = _mm512_reduce_max_ps(vm);
            const float mnew = tmax > mx[g] ? tmax : mx[g];
            if (mnew > mx[g]) {
                const float c = mx[g] == -INFINITY ? 0.0f : expf(mx[g] - mnew);
                const __m512 vc = _mm512_set1_ps(c);
                for (int d = 0; d < nd; d++)
                    acc[g][d] = _mm512_mul_ps(acc[g][d], vc);
                sum[g] *= c;
                mx[g] = mnew;
            }
            const __m512 vmax = _mm512_set1_ps(mnew);
            __m512 s = _mm512_setzero_ps();
            for (int j = 0; j < n16; j += 16) {
                __m512 e = exp16(_mm512_sub_ps(_mm512_load_ps(&sc[g][j]), vmax));
                if (j + 16 > n)
                    e = _mm512_maskz_mov_ps(tail, e);
                _mm512_store_ps(&sc[g][j], e);
                s = _mm512_add_ps(s, e);
            }
            sum[g] += _mm512_reduce_add_ps(s);
        }
        for (int g = G; g < G4; g++)
            memset(sc[g], 0, sizeof(float) * (size_t)n);
        accumulate(nd, G4, n, idx, vb, v->nb[1], sc, acc);
    }

    for (int g = 0; g < G; g++) {
        const __m512 inv = _mm512_set1_ps(sum[g] > 0.0f ? 1.0f / sum[g] : 0.0f);
        /* ggml's permuted result: row (sequence, head) */
        float *out = (float *)((char *)dst->data +
                               (size_t)(iq3 * dst->ne[2] * dst->ne[1] + head0 + g) * dst->nb[1]);
        for (int d = 0; d < nd; d++)
            _mm512_storeu_ps(out + 16 * d, _mm512_mul_ps(acc[g][d], inv));
    }
}

void ggml_compute_forward_flash_attn_ext(const struct ggml_compute_params *params,
                                         struct ggml_tensor *dst)
{
    const struct cpuexec_thread th = cpuexec_thread_of(params), *t = &th;
    if (g_on && g_prompt && options_ok(dst) && attnp_supported(dst)) {   /* several rows */
        attnp_compute(t->ith, t->nth, dst);
        if (t->ith == 0)
            atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed);
        return;
    }
    if (g_on && options_ok(dst) && supported(dst)) {
        /* work items: (sequence, KV head) pairs, each cut into as many
         * slices of its query heads as it takes to give every thread one */
        const int64_t nkv = dst->src[1]->ne[2];
        const int64_t units = nkv * dst->src[0]->ne[3];
        const int G = (int)(dst->src[0]->ne[2] / nkv);
        int slices = units >= t->nth ? 1 : (int)((t->nth + units - 1) / units);
        if (slices > G)
            slices = G;
        const int per = (G + slices - 1) / slices;
        for (int64_t w = t->ith; w < units * slices; w += t->nth) {
            const int64_t u = w / slices;
            const int h0 = (int)(w % slices) * per;
            if (h0 < G)
                unit(dst, u / nkv, u % nkv, h0, G - h0 < per ? G - h0 : per);
        }
        if (t->ith == 0)
            atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed);
        return;
    }
    pthread_once(&g_once, resolve);
    if (!g_ggml_fa)
        abort();                     /* called from a ggml we never found */
    g_ggml_fa(params, dst);
}

long attn_calls(void)
{
    return atomic_load(&g_calls);
}

/* fp16 values of modest size, deterministic */
static void fill_f16(struct ggml_tensor *t, uint32_t *seed, float amp)
{
    uint16_t *p = t->data;
    for (int64_t i = 0; i < ggml_nelements(t); i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = ggml_fp32_to_fp16(amp * ((float)(*seed >> 8) / 8388608.0f - 1.0f));
    }
}

/* An attention of nq query rows per sequence (2 sequences, 2 KV heads of 3
 * query heads, 300 positions; for one row a mask with holes, for several a
 * causal mask with holes, over tiles partly and wholly hidden) through
 * ggml's own graph executor on two threads: ggml's operator, then
 * hearth's, must agree. */
static bool check(int nq)
{
    if (!g_ggml_fa)
        return false;
    enum { D = 64, NKV = 300, HKV = 2, H = 6, NS = 2 };
    const int mrows = nq == 1 ? 1 : (nq + 63) / 64 * 64;   /* ggml pads the mask */
    size_t size = ggml_graph_overhead() + 8 * ggml_tensor_overhead() +
                  (size_t)D * NKV * HKV * NS * 2 * 2 + (size_t)NKV * mrows * NS * 2 +
                  (size_t)D * H * NS * nq * 4 * 2 + (16u << 10);
    struct ggml_context *ctx = cpuexec_context(size);
    float *want = malloc(sizeof(float) * (size_t)D * H * NS * nq);
    if (!ctx || !want) {
        cpuexec_context_free(ctx);
        free(want);
        return false;
    }
    bool ok = false;
    struct ggml_tensor *q = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, D, nq, H, NS);
    struct ggml_tensor *k = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, D, NKV, HKV, NS);
    struct ggml_tensor *v = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, D, NKV, HKV, NS);
    struct ggml_tensor *m = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, NKV, mrows, 1, NS);
    uint32_t seed = 777;
    float *qd = q->data;
    for (int64_t i = 0; i < ggml_nelements(q); i++) {
        seed = seed * 1664525u + 1013904223u;
        qd[i] = 2.0f * ((float)(seed >> 8) / 8388608.0f - 1.0f);
    }
    fill_f16(k, &seed, 1.0f);
    fill_f16(v, &seed, 1.0f);
    uint16_t *md = m->data;
    for (int s = 0; s < NS; s++)
        for (int r = 0; r < mrows; r++)
            for (int i = 0; i < NKV; i++) {
                /* several rows: no holes before 128, so whole tiles go
                 * without a mask too */
                const bool hidden = nq == 1 ? i % 7 == 3 || i > 280 - 40 * s
                                            : (i >= 128 && i % 7 == 3) || i > 200 - 30 * s + r;
                md[((size_t)s * mrows + r) * NKV + i] = ggml_fp32_to_fp16(hidden ? -INFINITY : 0.0f);
            }
    struct ggml_tensor *out = ggml_flash_attn_ext(ctx, q, k, v, m, 0.125f, 0.0f, 0.0f);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, out);
    const size_t n = (size_t)D * H * NS * nq;
    g_on = false;
    if (!cpuexec_run(gf, 2))
        goto out;
    memcpy(want, out->data, sizeof(float) * n);
    memset(out->data, 0, sizeof(float) * n);
    long before = attn_calls();
    g_on = true;
    bool ran = cpuexec_run(gf, 2);
    g_on = false;
    if (!ran || attn_calls() == before)
        goto out;                    /* the backend did not reach hearth's function */
    const float *got = out->data;
    ok = true;
    for (size_t i = 0; i < n; i++)   /* ggml accumulates in fp16 */
        if (!(fabsf(got[i] - want[i]) <= 1e-2f * fabsf(want[i]) + 2e-3f))
            ok = false;
out:
    cpuexec_context_free(ctx);
    free(want);
    return ok;
}

bool attn_init(const char *mode)
{
    pthread_once(&g_once, resolve);
    g_on = g_ok = g_prompt = false;
    if (mode && strcmp(mode, "off") == 0)
        return false;
    if (!kernels_cpu_ok()) {
        log_info("attention: this CPU lacks AVX-512; ggml's own flash attention stays");
        return false;
    }
    if (!g_ggml_fa) {
        log_warn("attention: ggml's CPU backend does not export its flash attention; "
                 "ggml's own stays");
        return false;
    }
    g_ok = check(1);
    if (!g_ok) {
        log_warn("attention: hearth's decode attention disagrees with this ggml's (or was "
                 "not reached); ggml's own stays");
        return false;
    }
    g_prompt = true;
    g_prompt = check(37);
    if (!g_prompt)
        log_warn("attention: hearth's prompt attention disagrees with this ggml's (or was not "
                 "reached); ggml's own stays for prompts");
    g_on = true;
    log_info("attention: hearth's attention replaces ggml's flash attention for one query "
             "row per sequence%s", g_prompt ? " and for prompts" : "");
    return true;
}

bool attn_active(void)
{
    return g_on;
}

bool attn_set(bool on)
{
    g_on = on && g_ok;
    return g_on;
}
