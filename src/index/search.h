/*
 * search.h: hybrid search over the index: BM25 (FTS5) and cosine over the
 * chunks' vectors, fused by reciprocal rank (RRF, k = 60: a chunk's score
 * is the sum over the lists of 1 / (60 + its rank)), which needs no
 * calibration between the two scores' scales.
 *
 * The query's embedding is the caller's (http/index.c runs it on the
 * index's embedding model like any request); here is only the ranking.
 */
#ifndef HEARTH_INDEX_SEARCH_H
#define HEARTH_INDEX_SEARCH_H

#include <stddef.h>

#include "core/buf.h"
#include "index/db.h"

#define SEARCH_MAX_K      100
#define SEARCH_MAX_TERMS  64
#define SEARCH_MAX_QUERY  4096  /* bytes */
#define SEARCH_RRF_K      60

typedef enum { SEARCH_HYBRID, SEARCH_BM25, SEARCH_VECTOR } search_mode;
const char *search_mode_name(search_mode m);
int search_mode_parse(const char *s);       /* -1 when unknown */

/* The FTS5 query for free text: its words (letters and digits; any byte
 * past ASCII counts as a letter), each quoted, joined by OR, duplicates
 * and words past SEARCH_MAX_TERMS left out. Returns the number of words
 * (0: nothing to search for), or -1 when out of memory. */
int search_fts_query(const char *q, size_t n, buf *out);

typedef struct search_hit {
    int64_t chunk;
    double score;               /* RRF in hybrid mode, else the list's own */
    int bm25_rank, vector_rank; /* 1-based; 0 when not in that list */
} search_hit;

/* The best k chunks (k <= SEARCH_MAX_K) into out, within a scope of
 * folders (db.h; NULL: all). qvec/dim/model: the query's embedding (NULL
 * for BM25 alone; a hybrid search without one is BM25). Number of hits, or
 * -1 on a database error. */
int search_run(idb *d, search_mode mode, const char *text, size_t n, const char *model,
               const float *qvec, int dim, int k, const char *scope, search_hit *out);

#endif
