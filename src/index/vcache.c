/*
 * vcache.c: quantised vectors in memory; see vcache.h.
 */
#include "index/vcache.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct vcache {
    size_t max_bytes;
    char model[128];
    int dim;
    bool filling, ready;
    size_t n, cap;
    size_t removed;     /* rows marked gone (scale 0) */
    int64_t *ids;       /* ascending */
    int8_t *q;          /* n rows of dim */
    float *scale;       /* a row's value of one unit, over its norm; 0: gone */
};

/* bytes one vector takes */
static size_t per_vector(int dim)
{
    return (size_t)dim + sizeof(int64_t) + sizeof(float);
}

vcache *vcache_new(size_t max_bytes)
{
    vcache *c = calloc(1, sizeof *c);
    if (c)
        c->max_bytes = max_bytes;
    return c;
}

void vcache_clear(vcache *c)
{
    free(c->ids);
    free(c->q);
    free(c->scale);
    c->ids = NULL;
    c->q = NULL;
    c->scale = NULL;
    c->n = c->cap = c->removed = 0;
    c->filling = c->ready = false;
    c->model[0] = '\0';
    c->dim = 0;
}

void vcache_free(vcache *c)
{
    if (!c)
        return;
    vcache_clear(c);
    free(c);
}

static bool grow(vcache *c, size_t cap)
{
    if (cap * per_vector(c->dim) > c->max_bytes)
        return false;
    int64_t *ids = realloc(c->ids, cap * sizeof *ids);
    if (ids)
        c->ids = ids;
    int8_t *q = ids ? realloc(c->q, cap * (size_t)c->dim) : NULL;
    if (q)
        c->q = q;
    float *s = q ? realloc(c->scale, cap * sizeof *s) : NULL;
    if (s)
        c->scale = s;
    if (!s)
        return false;
    c->cap = cap;
    return true;
}

bool vcache_begin(vcache *c, const char *model, int dim, size_t expect)
{
    vcache_clear(c);
    if (dim < 1 || dim > 65536 || strlen(model) >= sizeof c->model)
        return false;
    c->dim = dim;
    /* room for some vectors stored after the fill, within the limit */
    size_t most = c->max_bytes / per_vector(dim), want = expect + expect / 8;
    if (want > most)
        want = most > expect ? most : expect;
    if (!grow(c, want < 64 ? 64 : want)) {
        vcache_clear(c);
        return false;
    }
    strcpy(c->model, model);
    c->filling = true;
    return true;
}

/* v quantised into q: its largest magnitude becomes 127. The value of one
 * unit, or 0 for a zero or non-finite vector; *norm its length. */
static float quantise(const float *v, int dim, int8_t *q, float *norm)
{
    double n2 = 0;
    float m = 0;
    for (int k = 0; k < dim; k++) {
        if (!isfinite(v[k]))
            return 0;
        n2 += (double)v[k] * v[k];
        m = fabsf(v[k]) > m ? fabsf(v[k]) : m;
    }
    if (m == 0)
        return 0;
    float unit = m / 127.0f;
    for (int k = 0; k < dim; k++)
        q[k] = (int8_t)lrintf(v[k] / unit);
    *norm = (float)sqrt(n2);
    return unit;
}

/* One more row, unless it is not after the last one. */
static bool push(vcache *c, int64_t id, const float *v)
{
    if (id <= 0 || (c->n && id <= c->ids[c->n - 1]))
        return false;
    if (c->n == c->cap) {
        /* double, but never past the limit: full is full only there */
        size_t most = c->max_bytes / per_vector(c->dim);
        size_t want = c->cap * 2 < most ? c->cap * 2 : most;
        if (want <= c->cap || !grow(c, want)) {
            vcache_clear(c);
            return false;
        }
    }
    float norm = 0;
    float unit = quantise(v, c->dim, c->q + c->n * (size_t)c->dim, &norm);
    if (unit == 0)
        return true;            /* nothing to find it by */
    c->ids[c->n] = id;
    c->scale[c->n] = unit / norm;
    c->n++;
    return true;
}

bool vcache_add(vcache *c, int64_t id, const float *v)
{
    return c->filling && push(c, id, v);
}

bool vcache_append(vcache *c, int64_t id, const float *v)
{
    return c->ready && push(c, id, v);
}

/* Drop the rows marked gone. */
static void compact(vcache *c)
{
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->scale[i] == 0)
            continue;
        if (w != i) {
            c->ids[w] = c->ids[i];
            c->scale[w] = c->scale[i];
            memcpy(c->q + w * (size_t)c->dim, c->q + i * (size_t)c->dim, (size_t)c->dim);
        }
        w++;
    }
    c->n = w;
    c->removed = 0;
}

void vcache_remove(vcache *c, int64_t id)
{
    if (!c->ready)
        return;
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == c->n || c->ids[lo] != id || c->scale[lo] == 0)
        return;
    c->scale[lo] = 0;
    if (++c->removed * 2 > c->n)
        compact(c);
}

void vcache_end(vcache *c)
{
    c->ready = c->filling;
    c->filling = false;
}

bool vcache_ready(const vcache *c, const char *model, int dim)
{
    return c->ready && c->dim == dim && strcmp(c->model, model) == 0;
}

size_t vcache_count(const vcache *c)
{
    return c->n - c->removed;
}

size_t vcache_bytes(const vcache *c)
{
    return c->cap * per_vector(c->dim);
}

/* ---- scoring ---------------------------------------------------------- */

static int32_t dot_plain(const int8_t *a, const int8_t *b, int dim)
{
    int32_t s = 0;
    for (int k = 0; k < dim; k++)
        s += (int32_t)a[k] * b[k];
    return s;
}

/* 32 bytes at a time, widened to 16 bits and multiplied in pairs */
__attribute__((target("avx512f,avx512bw"))) static int32_t dot_avx512(const int8_t *a,
                                                                     const int8_t *b, int dim)
{
    __m512i acc = _mm512_setzero_si512();
    int k = 0;
    for (; k + 32 <= dim; k += 32) {
        __m512i x = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(a + k)));
        __m512i y = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(b + k)));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
    }
    return _mm512_reduce_add_epi32(acc) + dot_plain(a + k, b + k, dim - k);
}

typedef struct {
    float score;
    int64_t id;
} cand;

/* a min-heap of the best k so far: h[0] is the weakest */
static void sift_down(cand *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].score < h[m].score)
            m = l;
        if (r < n && h[r].score < h[m].score)
            m = r;
        if (m == i)
            return;
        cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_offer(cand *h, int *n, int k, cand c)
{
    if (*n < k) {
        int i = (*n)++;
        h[i] = c;
        while (i > 0 && h[(i - 1) / 2].score > h[i].score) {
            cand t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (c.score > h[0].score) {
        h[0] = c;
        sift_down(h, *n, 0);
    }
}

static int by_score_desc(const void *a, const void *b)
{
    float x = ((const cand *)a)->score, y = ((const cand *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

int vcache_search(const vcache *c, const float *q, int64_t *ids, int k)
{
    if (!c->ready || k < 1 || c->n == 0)
        return 0;
    int8_t *qq = malloc((size_t)c->dim);
    cand *h = malloc((size_t)k * sizeof *h);
    float norm = 0;
    if (!qq || !h || quantise(q, c->dim, qq, &norm) == 0) {
        free(qq);
        free(h);
        return 0;
    }
    bool wide = __builtin_cpu_supports("avx512bw");
    int n = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->scale[i] == 0)
            continue;           /* removed */
        const int8_t *row = c->q + i * (size_t)c->dim;
        int32_t d = wide ? dot_avx512(row, qq, c->dim) : dot_plain(row, qq, c->dim);
        heap_offer(h, &n, k, (cand){ (float)d * c->scale[i], c->ids[i] });
    }
    qsort(h, (size_t)n, sizeof *h, by_score_desc);
    for (int i = 0; i < n; i++)
        ids[i] = h[i].id;
    free(qq);
    free(h);
    return n;
}
