/*
 * attnp.c: attention for a prompt's query rows, rows across lanes (see
 * attnp.h).
 *
 * The operator's tensors (ggml.h, ggml_flash_attn_ext):
 *   q    [D, n_q, n_head, n_seq] fp32, scaled here by the operator's scale;
 *   k, v [D, n_kv, n_head_kv, n_seq] fp16;
 *   mask [n_kv, >= n_q, 1, n_seq or 1] fp16, row i for query position i;
 *   dst  [D, n_head, n_q, n_seq] fp32.
 * Within a unit, row r is query position q0 + r / G with head h0 + r % G of
 * the KV head's group; RZ vectors of 16 lanes hold the rows (up to 64; the
 * lanes past the last row are never written out). Per unit: qt[d][lane]
 * (the scaled queries, transposed), ot[d][lane] (the output, transposed),
 * mx and sum per lane. Per tile: kf and vf (key and value rows in fp32),
 * st[j][lane] (scores, then probabilities), and mt[j][lane] (the mask, on
 * tiles where it is not all 0).
 */
#include "engine/attnp.h"

#include "engine/vexp.h"

#include <ggml.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { TILE = 64, MAX_ROWS = 64, MAX_RZ = MAX_ROWS / 16, MAX_D = 256, MAX_GROUP = 16 };

/* fp16 -inf */
#define H_NEG_INF 0xFC00u

bool attnp_supported(const struct ggml_tensor *dst)
{
    const struct ggml_tensor *q = dst->src[0], *k = dst->src[1], *v = dst->src[2];
    const struct ggml_tensor *m = dst->src[3];
    if (!q || !k || !v || !m || dst->src[4])
        return false;
    if (q->type != GGML_TYPE_F32 || k->type != GGML_TYPE_F16 || v->type != GGML_TYPE_F16 ||
        m->type != GGML_TYPE_F16 || dst->type != GGML_TYPE_F32)
        return false;
    const int64_t D = k->ne[0];
    if (D <= 0 || D % 16 || D > MAX_D || q->ne[0] != D || v->ne[0] != D || q->ne[1] < 2)
        return false;
    if (q->nb[0] != sizeof(float) || k->nb[0] != 2 || v->nb[0] != 2 || m->nb[0] != 2 ||
        dst->nb[0] != sizeof(float))
        return false;
    if (k->ne[1] != v->ne[1] || k->ne[1] < 1 || k->ne[2] != v->ne[2] || k->ne[3] != v->ne[3] ||
        k->ne[2] <= 0 || k->ne[3] <= 0 || q->ne[2] % k->ne[2] ||
        q->ne[2] / k->ne[2] > MAX_GROUP || q->ne[3] % k->ne[3])
        return false;
    if (dst->ne[0] != D || dst->ne[1] != q->ne[2] || dst->ne[2] != q->ne[1] ||
        dst->ne[3] != q->ne[3])
        return false;
    if (m->ne[0] < k->ne[1] || m->ne[1] < q->ne[1] || m->ne[2] != 1 || m->ne[3] <= 0 ||
        q->ne[3] % m->ne[3])
        return false;
    return true;
}

/* one thread's buffers, kept between calls */
struct scratch {
    float *qt, *ot, *kf, *vf, *st, *mt, *mx, *sum;
};

/* qt, ot: MAX_D x MAX_ROWS; kf, vf: TILE x MAX_D; st, mt: TILE x MAX_ROWS;
 * mx, sum: MAX_ROWS. In thread-local storage (~290 KiB per thread), so a
 * thread never lacks it: every thread must compute its units. */
enum { SCRATCH_FLOATS = 2 * MAX_D * MAX_ROWS + 2 * TILE * MAX_D + 2 * TILE * MAX_ROWS +
                        2 * MAX_ROWS };
static _Thread_local _Alignas(64) float t_mem[SCRATCH_FLOATS];

static void scratch_for(int D, struct scratch *s)
{
    const size_t per = (size_t)D * MAX_ROWS;           /* floats in qt, ot */
    const size_t tile = (size_t)TILE * (size_t)D;      /* in kf, vf */
    const size_t lanes = (size_t)TILE * MAX_ROWS;      /* in st, mt */
    float *f = t_mem;
    s->qt = f, f += per;
    s->ot = f, f += per;
    s->kf = f, f += tile;
    s->vf = f, f += tile;
    s->st = f, f += lanes;
    s->mt = f, f += lanes;
    s->mx = f, f += MAX_ROWS;
    s->sum = f;
}

/* Scores of positions [0, n) of the tile for every lane:
 * st[j][lane] = sum_d qt[d][lane] * kf[j][d]. Four positions at a time:
 * the key rows past n up to a multiple of 4 are zeros (their scores are
 * never read). */
VEXP_TARGET static inline __attribute__((always_inline)) void
scores(const struct scratch *s, int D, int n, const int RZ)
{
    for (int j = 0; j < n; j += 4) {
        __m512 a[4][MAX_RZ];
#pragma GCC unroll 4
        for (int jj = 0; jj < 4; jj++)
#pragma GCC unroll 4
            for (int z = 0; z < RZ; z++)
                a[jj][z] = _mm512_setzero_ps();
        const float *k0 = s->kf + (size_t)j * D;
        for (int d = 0; d < D; d++) {
            __m512 qz[MAX_RZ];
#pragma GCC unroll 4
            for (int z = 0; z < RZ; z++)
                qz[z] = _mm512_load_ps(s->qt + (size_t)d * MAX_ROWS + 16 * z);
#pragma GCC unroll 4
            for (int jj = 0; jj < 4; jj++) {
                const __m512 b = _mm512_set1_ps(k0[(size_t)jj * D + d]);
#pragma GCC unroll 4
                for (int z = 0; z < RZ; z++)
                    a[jj][z] = _mm512_fmadd_ps(qz[z], b, a[jj][z]);
            }
        }
#pragma GCC unroll 4
        for (int jj = 0; jj < 4; jj++)
#pragma GCC unroll 4
            for (int z = 0; z < RZ; z++)
                _mm512_store_ps(s->st + (size_t)(j + jj) * MAX_ROWS + 16 * z, a[jj][z]);
    }
}

/* ot[d][lane] += sum_j st[j][lane] * vf[j][d], four d at a time. */
VEXP_TARGET static inline __attribute__((always_inline)) void
values(const struct scratch *s, int D, int n, const int RZ)
{
    for (int d = 0; d < D; d += 4) {
        __m512 a[4][MAX_RZ];
#pragma GCC unroll 4
        for (int dd = 0; dd < 4; dd++)
#pragma GCC unroll 4
            for (int z = 0; z < RZ; z++)
                a[dd][z] = _mm512_load_ps(s->ot + (size_t)(d + dd) * MAX_ROWS + 16 * z);
        for (int j = 0; j < n; j++) {
            __m512 p[MAX_RZ];
#pragma GCC unroll 4
            for (int z = 0; z < RZ; z++)
                p[z] = _mm512_load_ps(s->st + (size_t)j * MAX_ROWS + 16 * z);
            const float *vr = s->vf + (size_t)j * D + d;
#pragma GCC unroll 4
            for (int dd = 0; dd < 4; dd++) {
                const __m512 b = _mm512_set1_ps(vr[dd]);
#pragma GCC unroll 4
                for (int z = 0; z < RZ; z++)
                    a[dd][z] = _mm512_fmadd_ps(p[z], b, a[dd][z]);
            }
        }
#pragma GCC unroll 4
        for (int dd = 0; dd < 4; dd++)
#pragma GCC unroll 4
            for (int z = 0; z < RZ; z++)
                _mm512_store_ps(s->ot + (size_t)(d + dd) * MAX_ROWS + 16 * z, a[dd][z]);
    }
}

/* The running softmax over the tile's n scores, lane by lane: the scores
 * (with the mask added when `masked`) become probabilities, and what came
 * before is rescaled to the new maximum. */
VEXP_TARGET static void softmax(const struct scratch *s, int D, int n, bool masked, int RZ)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int z = 0; z < RZ; z++) {
        __m512 tmax = ninf;
        for (int j = 0; j < n; j++) {
            float *sp = s->st + (size_t)j * MAX_ROWS + 16 * z;
            __m512 x = _mm512_load_ps(sp);
            if (masked) {
                x = _mm512_add_ps(x, _mm512_load_ps(s->mt + (size_t)j * MAX_ROWS + 16 * z));
                _mm512_store_ps(sp, x);
            }
            tmax = _mm512_max_ps(tmax, x);
        }
        const __m512 mold = _mm512_load_ps(s->mx + 16 * z);
        const __m512 mnew = _mm512_max_ps(mold, tmax);
        /* lanes that have seen a position: rescale by e^(old - new) (0
         * when nothing was seen before); lanes that have not stay as they are */
        const __mmask16 live = _mm512_cmp_ps_mask(mnew, ninf, _CMP_NEQ_OQ);
        const __mmask16 seen = _mm512_cmp_ps_mask(mold, ninf, _CMP_NEQ_OQ);
        __m512 c = _mm512_maskz_mov_ps(seen, exp16(_mm512_maskz_sub_ps(live, mold, mnew)));
        c = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), live, c);
        if (_mm512_cmp_ps_mask(c, _mm512_set1_ps(1.0f), _CMP_NEQ_OQ)) {
            for (int d = 0; d < D; d++) {
                float *op = s->ot + (size_t)d * MAX_ROWS + 16 * z;
                _mm512_store_ps(op, _mm512_mul_ps(_mm512_load_ps(op), c));
            }
        }
        __m512 sum = _mm512_mul_ps(_mm512_load_ps(s->sum + 16 * z), c);
        for (int j = 0; j < n; j++) {
            float *sp = s->st + (size_t)j * MAX_ROWS + 16 * z;
            const __m512 x = _mm512_load_ps(sp);
            /* masked positions (-inf) give exactly 0 */
            const __mmask16 vis = _mm512_cmp_ps_mask(x, ninf, _CMP_NEQ_OQ) & live;
            const __m512 e = _mm512_maskz_mov_ps(vis, exp16(_mm512_maskz_sub_ps(vis, x, mnew)));
            _mm512_store_ps(sp, e);
            sum = _mm512_add_ps(sum, e);
        }
        _mm512_store_ps(s->sum + 16 * z, sum);
        _mm512_store_ps(s->mx + 16 * z, mnew);
    }
}

VEXP_TARGET static void tile_rz(const struct scratch *s, int D, int n, bool masked, const int RZ)
{
    switch (RZ) {
    case 1: scores(s, D, n, 1); break;
    case 2: scores(s, D, n, 2); break;
    case 3: scores(s, D, n, 3); break;
    default: scores(s, D, n, 4); break;
    }
    softmax(s, D, n, masked, RZ);
    switch (RZ) {
    case 1: values(s, D, n, 1); break;
    case 2: values(s, D, n, 2); break;
    case 3: values(s, D, n, 3); break;
    default: values(s, D, n, 4); break;
    }
}

/* The mask's word for query position i (of the unit's nq) and tile
 * position j: classify the tile for the unit. 0: no row sees anything,
 * 1: every row sees every position with 0 added, 2: anything else. */
static int classify(const uint16_t *const *mrow, int nq, int64_t t0, int n)
{
    bool any_visible = false, all_zero = true;
    for (int i = 0; i < nq; i++) {
        const uint16_t *m = mrow[i] + t0;
        for (int j = 0; j < n; j++) {
            const uint16_t h = m[j];
            any_visible = any_visible || h != H_NEG_INF;
            all_zero = all_zero && (h & 0x7FFFu) == 0;       /* +0 or -0 */
        }
        if (any_visible && !all_zero)
            return 2;                                      /* mixed: no need to look further */
    }
    return !any_visible ? 0 : all_zero ? 1 : 2;
}

VEXP_TARGET static void unit(const struct ggml_tensor *dst, const struct scratch *s, int64_t iq3,
                             int64_t ik2, int64_t q0, int nq)
{
    const struct ggml_tensor *q = dst->src[0], *k = dst->src[1], *v = dst->src[2];
    const struct ggml_tensor *m = dst->src[3];
    const int D = (int)k->ne[0];
    const int G = (int)(q->ne[2] / k->ne[2]);
    const int rows = nq * G, RZ = (rows + 15) / 16;
    const int64_t head0 = ik2 * G, n_kv = k->ne[1];
    const int64_t ik3 = iq3 / (q->ne[3] / k->ne[3]);
    float scale;
    memcpy(&scale, dst->op_params, sizeof scale);
    const char *kb = (const char *)k->data + ik2 * k->nb[2] + ik3 * k->nb[3];
    const char *vb = (const char *)v->data + ik2 * v->nb[2] + ik3 * v->nb[3];
    const uint16_t *mrow[MAX_ROWS];
    for (int i = 0; i < nq; i++)
        mrow[i] = (const uint16_t *)((const char *)m->data + (q0 + i) * m->nb[1] +
                                     (iq3 % m->ne[3]) * m->nb[3]);

    /* the queries, scaled and transposed; unused lanes 0 */
    memset(s->qt, 0, sizeof(float) * (size_t)D * MAX_ROWS);
    memset(s->ot, 0, sizeof(float) * (size_t)D * MAX_ROWS);
    for (int r = 0; r < rows; r++) {
        const float *qr = (const float *)((const char *)q->data + (q0 + r / G) * q->nb[1] +
                                          (head0 + r % G) * q->nb[2] + iq3 * q->nb[3]);
        for (int d = 0; d < D; d++)
            s->qt[(size_t)d * MAX_ROWS + r] = qr[d] * scale;
    }
    for (int r = 0; r < MAX_ROWS; r++) {
        s->mx[r] = -INFINITY;
        s->sum[r] = 0.0f;
    }

    for (int64_t t0 = 0; t0 < n_kv; t0 += TILE) {
        const int n = (int)(n_kv - t0 < TILE ? n_kv - t0 : TILE);
        const int kind = classify(mrow, nq, t0, n);
        if (kind == 0)
            continue;
        for (int j = 0; j < n; j++) {
            const char *kr = kb + (t0 + j) * k->nb[1], *vr = vb + (t0 + j) * v->nb[1];
            for (int d = 0; d < D; d += 16) {
                _mm512_store_ps(s->kf + (size_t)j * D + d, load_h16(kr + 2 * d));
                _mm512_store_ps(s->vf + (size_t)j * D + d, load_h16(vr + 2 * d));
            }
        }
        /* key rows up to a multiple of 4 (TILE is one): zeros, for scores() */
        memset(s->kf + (size_t)n * D, 0, sizeof(float) * (size_t)D * (size_t)(((n + 3) & ~3) - n));
        if (kind == 2)
            for (int j = 0; j < n; j++) {
                float *mt = s->mt + (size_t)j * MAX_ROWS;
                for (int i = 0; i < nq; i++) {             /* one value for a position's G rows */
                    const float x = _cvtsh_ss(mrow[i][t0 + j]);
                    for (int g = 0; g < G; g++)
                        mt[i * G + g] = x;
                }
                for (int r = rows; r < RZ * 16; r++)
                    mt[r] = -INFINITY;
            }
        tile_rz(s, D, n, kind == 2, RZ);
    }

    for (int r = 0; r < rows; r++) {
        float *out = (float *)((char *)dst->data + (head0 + r % G) * dst->nb[1] +
                               (q0 + r / G) * dst->nb[2] + iq3 * dst->nb[3]);
        const float inv = s->sum[r] > 0.0f ? 1.0f / s->sum[r] : 0.0f;
        for (int d = 0; d < D; d++)
            out[d] = s->ot[(size_t)d * MAX_ROWS + r] * inv;
    }
}

void attnp_compute(int ith, int nth, struct ggml_tensor *dst)
{
    const struct ggml_tensor *q = dst->src[0], *k = dst->src[1];
    const int D = (int)k->ne[0];
    const int G = (int)(q->ne[2] / k->ne[2]);
    struct scratch s;
    scratch_for(D, &s);
    const int per = MAX_ROWS / G;                     /* query positions per unit */
    const int64_t nq = q->ne[1], blocks = (nq + per - 1) / per;
    const int64_t units = q->ne[3] * k->ne[2] * blocks;
    for (int64_t u = ith; u < units; u += nth) {
        const int64_t b = u % blocks, ik2 = (u / blocks) % k->ne[2], iq3 = u / blocks / k->ne[2];
        const int64_t q0 = b * per;
        unit(dst, &s, iq3, ik2, q0, (int)(nq - q0 < per ? nq - q0 : per));
    }
}
