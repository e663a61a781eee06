/*
 * db.h: the retrieval index on disk, DATA-DIR/index.db (SQLite, WAL,
 * synchronous=FULL, mode 0600).
 *
 *   folders  the watched folders, with their exclude patterns
 *   docs     one row per file found in them: its size and mtime when last
 *            seen, and where its indexing stands (the indexer's durable
 *            queue): pending -> indexed, or failed (the file itself is the
 *            problem: not text, too large), or dead (attempts used up on
 *            errors that might pass: a worker crash, no model); a changed
 *            file is pending again
 *   chunks   the pieces of text search returns, with their lines
 *   chunks_fts  FTS5 over chunks (porter stemming, BM25 ranking)
 *   vecs     one embedding per chunk, with the model that made it
 *
 * A document's chunks, their FTS rows and vectors are replaced in one
 * transaction, so a search sees a file's old text or its new text, never a
 * mix, and a kill -9 mid-way loses nothing but the attempt.
 *
 * Thread-safety: every function may be called from any thread (one
 * connection under a mutex).
 * Ownership: strings in returned structs are malloc'd; free with the
 * matching *_free.
 */
#ifndef HEARTH_INDEX_DB_H
#define HEARTH_INDEX_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct idb idb;

typedef enum { DOC_PENDING, DOC_INDEXED, DOC_FAILED, DOC_DEAD, DOC_NSTATES } doc_state;
const char *doc_state_name(doc_state s);
int doc_state_parse(const char *s);     /* -1 when unknown */

idb *idb_open(const char *path, char *err, size_t errlen);
void idb_close(idb *d);

/* ---- folders ---- */
typedef struct idb_folder {
    int64_t id;
    char *path;
    char *exclude;              /* its exclude patterns, one a line ("" none; index/ignore.h) */
    double added, last_scan;
    int64_t docs, pending, indexed, failed;     /* failed: failed or dead */
} idb_folder;
/* The folder's id (a folder already there keeps its id and its added
 * time), or -1. exclude: its exclude patterns, one a line, replacing those
 * it had; NULL keeps them ("" for a new folder). */
int64_t idb_folder_add(idb *d, const char *path, const char *exclude, double now);
/* Forget a folder with its documents: 1, 0 when it was not there, -1. */
int     idb_folder_remove(idb *d, const char *path);
/* All folders, oldest first: a malloc'd array (free with idb_folders_free). */
int     idb_folders(idb *d, idb_folder **out, size_t *n);
void    idb_folders_free(idb_folder *f, size_t n);

/* ---- scanning: one transaction per folder ---- */
typedef struct idb_seen {
    const char *path;
    int64_t size, mtime;        /* the later of mtime and ctime, in nanoseconds: a change
                                   within a second, or of permissions alone, shows */
    const char *kind;
} idb_seen;
/* Record what a walk of folder found: new and changed files become
 * pending, and, when the walk was complete (every subfolder opened, no
 * cap reached), files no longer there are forgotten with their chunks.
 * Nothing is recorded for a folder removed meanwhile. *added and *removed
 * count them. 0 or -1. */
int idb_scan(idb *d, int64_t folder, const idb_seen *files, size_t n, bool complete, double now,
             int *added, int *removed);

/* ---- the indexer's queue ---- */
typedef struct idb_doc {
    int64_t id;
    char *path, *kind, *error;
    doc_state state;
    int attempts, chunks, dropped;
    int64_t size, mtime;
    double indexed_at;
} idb_doc;
void idb_doc_free(idb_doc *d);
/* Claim the next pending document that is due: its attempt is counted
 * (and committed) first. 1 claimed, 0 none, -1 error. */
int  idb_claim(idb *d, double now, idb_doc *out);
/* When the next pending document is due (0: now), -1 when none. */
double idb_next_due(idb *d);

typedef struct idb_chunk_in {
    const char *text;
    size_t len;
    int line0, line1;
    const float *vec;           /* NULL without an embedding model */
    double t0, t1;              /* a recording's passage: its seconds; t0 < 0 for none */
} idb_chunk_in;
/* Replace doc's chunks with these (model/dim for the vectors, NULL/0
 * without; note: why there are none, kept as the document's error) and
 * mark it indexed, unless the file changed meanwhile (size/mtime differ
 * from the claim's): then it stays pending. 0 or -1. */
int idb_store(idb *d, const idb_doc *doc, const idb_chunk_in *c, size_t n, int dropped,
              const char *model, int dim, const char *note, double now);
/* An attempt failed: retry (pending again after delay * 2^(attempts-1),
 * dead once max_attempts are used) or not (failed). A failed or dead file
 * loses its passages. 0 or -1. */
int idb_fail(idb *d, const idb_doc *doc, bool retry, int max_attempts, double delay,
             const char *why, double now);
/* Not now (no memory in time, hearthd stopping): pending again at
 * next_run, the attempt not counted. 0 or -1. */
int idb_release(idb *d, const idb_doc *doc, double next_run);
/* At start: documents left pending with max_attempts attempts spent (each
 * cut short by a stop) are dead; documents indexed with another embedding
 * model (or with one when there is none now) are pending again. Returns
 * how many were requeued, or -1. */
int idb_recover(idb *d, const char *model, int max_attempts);
/* Failed and dead documents are pending again (attempts from zero). */
int idb_retry_all(idb *d);

/* ---- reading ---- */
typedef struct idb_counts {
    int64_t docs[DOC_NSTATES];
    int64_t chunks, vectors, folders;
} idb_counts;
int idb_get_counts(idb *d, idb_counts *c);
/* Documents, newest change first; state -1 for all. */
/* (scope: only documents inside those folders, see idb_in_scope; NULL: all) */
int idb_docs(idb *d, int state, int limit, const char *scope, idb_doc **out, size_t *n);
void idb_docs_free(idb_doc *docs, size_t n);

typedef struct idb_hit {
    int64_t chunk;
    double score;
} idb_hit;
/* A scope: folders, one absolute path a line ('\n' between them), or NULL
 * for every folder. A path is in it when it is one of them or inside one.
 * The functions below that take one see only documents in scope (an API
 * key's folders). */
bool idb_in_scope(const char *path, const char *scope);

/* BM25 over the chunks (FTS5 query syntax; the caller quotes words).
 * Best first, score higher is better. Number of hits or -1. */
int idb_bm25(idb *d, const char *fts_query, const char *scope, idb_hit *out, int limit);
/* Nearest chunks to q by cosine (vectors of model only), best first.
 * When the vectors kept in memory (8-bit, index/vcache.h) are filled for
 * model and dim and in step, a first pass over them picks 4x limit
 * candidates (at least IDB_RESCORE_MIN), and their stored vectors give the
 * exact scores; otherwise (and always within a scope) every stored vector
 * of model is read. */
int idb_nearest(idb *d, const char *model, const float *q, int dim, const char *scope,
                idb_hit *out, int limit);
#define IDB_RESCORE_MIN 64
/* Memory for the vectors kept for idb_nearest (0: none, read from disk).
 * Vectors that would not fit are read from disk, with a warning, until
 * this is set again. */
void idb_set_vector_memory(idb *d, size_t bytes);
/* Fill the vectors in memory with model's (of the width it stored) unless
 * they are filled and in step already: a read of every such vector, for the
 * indexer's thread, not a request's. 1 filled, 0 nothing to do (no memory
 * set, no vectors, in step, or they did not fit before), -1 they do not
 * fit (a warning is logged; until idb_set_vector_memory) or cannot be read. */
int idb_vector_memory_fill(idb *d, const char *model);
/* The vectors held in memory now, the bytes they take, and how often they
 * were filled from the file since the memory was set. */
typedef struct idb_vmem {
    size_t vectors, bytes;
    uint64_t fills;
    bool on, too_big;
} idb_vmem;
void idb_vector_memory(idb *d, idb_vmem *out);

/* Checks that catch silent damage: the file (PRAGMA quick_check), the
 * full-text index against the passages (FTS5 integrity-check), and the
 * vectors: each well-formed (its model's dimensions, finite, not zero), and
 * able to tell passages apart (the mean cosine of a sample of pairs from
 * different files; a model whose weights are broken can give nearly the
 * same vector for everything, which ranks at random without an error). */
typedef struct idb_check_result {
    bool storage_ok, fts_ok, vectors_ok;
    char storage[200], fts[200], vectors[240];
    int64_t vectors_checked, vectors_bad;
    int pairs;
    double mean_cosine;
} idb_check_result;
#define IDB_CHECK_SAMPLE 256
#define IDB_CHECK_MAX_COSINE 0.95
int idb_check(idb *d, idb_check_result *r);

typedef struct idb_passage {
    char *path, *text;
    int line0, line1;
    int64_t doc;
    double t0, t1;              /* a recording's passage: its seconds; -1 for none */
} idb_passage;
/* A chunk's text and where it is from: 1, 0 when gone, -1. */
int  idb_passage_get(idb *d, int64_t chunk, idb_passage *out);
void idb_passage_free(idb_passage *p);

#endif
