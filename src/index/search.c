/*
 * search.c: BM25, vectors and their fusion (search.h).
 */
#include "index/search.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* how deep each list goes before fusion */
#define FUSE_DEPTH 100

const char *search_mode_name(search_mode m)
{
    return m == SEARCH_BM25 ? "bm25" : m == SEARCH_VECTOR ? "vector" : "hybrid";
}

int search_mode_parse(const char *s)
{
    return !strcmp(s, "hybrid") ? SEARCH_HYBRID : !strcmp(s, "bm25") ? SEARCH_BM25
           : !strcmp(s, "vector") ? SEARCH_VECTOR : -1;
}

static bool word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

int search_fts_query(const char *q, size_t n, buf *out)
{
    const char *starts[SEARCH_MAX_TERMS];
    size_t lens[SEARCH_MAX_TERMS];
    int terms = 0;
    for (size_t i = 0; i < n && terms < SEARCH_MAX_TERMS;) {
        if (!word_byte((unsigned char)q[i])) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < n && word_byte((unsigned char)q[i]))
            i++;
        bool dup = false;
        for (int t = 0; t < terms && !dup; t++)
            dup = lens[t] == i - s && !strncasecmp(starts[t], q + s, i - s);
        if (dup)
            continue;
        starts[terms] = q + s;
        lens[terms++] = i - s;
    }
    for (int t = 0; t < terms; t++)
        if ((t && buf_puts(out, " OR ") < 0) || buf_putc(out, '"') < 0 ||
            buf_append(out, starts[t], lens[t]) < 0 || buf_putc(out, '"') < 0)
            return -1;
    return terms;
}

/* hits of a and b by chunk id, for the fusion */
static int by_chunk(const void *x, const void *y)
{
    int64_t a = ((const search_hit *)x)->chunk, b = ((const search_hit *)y)->chunk;
    return a < b ? -1 : a > b;
}

static int by_score(const void *x, const void *y)
{
    const search_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return a->chunk < b->chunk ? -1 : a->chunk > b->chunk;    /* stable order for ties */
}

int search_run(idb *d, search_mode mode, const char *text, size_t n, const char *model,
               const float *qvec, int dim, int k, const char *scope, search_hit *out)
{
    if (k > SEARCH_MAX_K)
        k = SEARCH_MAX_K;
    if (k < 1)
        return 0;
    if (mode == SEARCH_HYBRID && !qvec)
        mode = SEARCH_BM25;
    int depth = mode == SEARCH_HYBRID ? FUSE_DEPTH : k;
    idb_hit bm[FUSE_DEPTH], vec[FUSE_DEPTH];
    int nb = 0, nv = 0;
    if (mode != SEARCH_VECTOR) {
        buf fq = buf_make(SEARCH_MAX_QUERY * 2 + 1024);
        int terms = search_fts_query(text, n, &fq);
        if (terms < 0) {
            buf_free(&fq);
            return -1;
        }
        nb = terms ? idb_bm25(d, fq.data, scope, bm, depth) : 0;
        buf_free(&fq);
        if (nb < 0)
            return -1;
    }
    if (mode != SEARCH_BM25 && qvec) {
        nv = idb_nearest(d, model, qvec, dim, scope, vec, depth);
        if (nv < 0)
            return -1;
    }
    if (mode != SEARCH_HYBRID) {
        const idb_hit *h = mode == SEARCH_BM25 ? bm : vec;
        int m = mode == SEARCH_BM25 ? nb : nv;
        for (int i = 0; i < m && i < k; i++)
            out[i] = (search_hit){ h[i].chunk, h[i].score, mode == SEARCH_BM25 ? i + 1 : 0,
                                   mode == SEARCH_VECTOR ? i + 1 : 0 };
        return m < k ? m : k;
    }
    search_hit all[2 * FUSE_DEPTH];
    int na = 0;
    for (int i = 0; i < nb; i++)
        all[na++] = (search_hit){ bm[i].chunk, 1.0 / (SEARCH_RRF_K + i + 1), i + 1, 0 };
    for (int i = 0; i < nv; i++)
        all[na++] = (search_hit){ vec[i].chunk, 1.0 / (SEARCH_RRF_K + i + 1), 0, i + 1 };
    qsort(all, (size_t)na, sizeof *all, by_chunk);
    int m = 0;
    for (int i = 0; i < na; i++) {
        if (m && all[m - 1].chunk == all[i].chunk) {
            all[m - 1].score += all[i].score;
            if (all[i].bm25_rank)
                all[m - 1].bm25_rank = all[i].bm25_rank;
            if (all[i].vector_rank)
                all[m - 1].vector_rank = all[i].vector_rank;
        } else
            all[m++] = all[i];
    }
    qsort(all, (size_t)m, sizeof *all, by_score);
    if (m > k)
        m = k;
    memcpy(out, all, (size_t)m * sizeof *out);
    return m;
}
