/*
 * vcache.h: the index's vectors in memory, for the first pass of a vector
 * search.
 *
 * Reading every vector from SQLite for each query costs time in proportion
 * to the index (and holds the index's lock while it does). Here each vector
 * is kept normalised and quantised to 8 bits (one scale per vector): 1 byte
 * a dimension instead of 4, so 100,000 passages of a 384-dimension model
 * take ~40 MB. A query is quantised the same way and scored against every
 * vector with integer dot products; the best candidates (more than the
 * caller needs) are then scored exactly by the caller from the stored
 * float vectors, so the ranking returned is exact for every candidate and
 * quantisation can only cost a vector that falls out of the candidates.
 *
 * The cache holds one model's vectors of one width, in the order of their
 * ids. It is filled whole (vcache_begin, vcache_add for each vector in
 * ascending id order, vcache_end), then kept in step: vectors stored later
 * (with larger ids) are appended, removed ones are marked and left out of
 * searches, and the rows are compacted once half of them are gone (its
 * user: index/db.c).
 *
 * Thread-safety: none; the caller's lock covers it.
 * Ownership: vcache_new's cache is the caller's until vcache_free.
 */
#ifndef HEARTH_INDEX_VCACHE_H
#define HEARTH_INDEX_VCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vcache vcache;

/* An empty cache that may hold up to max_bytes of vectors and ids (ids
 * must be positive). */
vcache *vcache_new(size_t max_bytes);
void    vcache_free(vcache *c);

/* Start filling for vectors of model, dim wide (up to `expect`, a hint);
 * false when they would not fit in max_bytes (the cache is then empty and
 * not ready: search from disk). */
bool vcache_begin(vcache *c, const char *model, int dim, size_t expect);
/* Add one vector (dim floats; a zero or non-finite one is skipped). False
 * when the cache is full: it is then empty and not ready. */
bool vcache_add(vcache *c, int64_t id, const float *v);
/* Filling is done: the cache answers vcache_search for (model, dim). */
void vcache_end(vcache *c);
/* Once ready: a vector stored since, with an id larger than every one
 * held. False when the id is not larger (nothing changed) or the cache is
 * full (it is then empty and not ready). */
bool vcache_append(vcache *c, int64_t id, const float *v);
/* Once ready: the vector with this id is gone (nothing when not held). */
void vcache_remove(vcache *c, int64_t id);
/* Forget everything (the vectors on disk changed). */
void vcache_clear(vcache *c);

/* True when filled for model and dim. */
bool vcache_ready(const vcache *c, const char *model, int dim);
size_t vcache_count(const vcache *c);
size_t vcache_bytes(const vcache *c);

/* The ids of up to k vectors with the highest approximate cosine
 * similarity to q (dim floats), best first; how many were written. */
int vcache_search(const vcache *c, const float *q, int64_t *ids, int k);

#endif
