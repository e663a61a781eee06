/*
 * arena.h: a bump allocator for per-request and per-document memory.
 *
 * Everything allocated from an arena is released together by arena_free, so
 * request-scoped code (a parsed JSON body, a rendered prompt) needs no
 * individual frees. An arena has a total cap: allocation past it returns NULL,
 * which callers treat as "input too large".
 */
#ifndef HEARTH_ARENA_H
#define HEARTH_ARENA_H

#include <stddef.h>

typedef struct arena arena;

/* A new arena that will hand out at most cap bytes (0 = unlimited). */
arena *arena_new(size_t cap);
/* Frees every allocation and the arena itself. Accepts NULL. */
void   arena_free(arena *a);

/* Zeroed, 16-byte aligned memory owned by the arena; NULL past the cap. */
void  *arena_alloc(arena *a, size_t n);
/* A NUL-terminated copy of n bytes of s. */
char  *arena_strndup(arena *a, const char *s, size_t n);
char  *arena_strdup(arena *a, const char *s);
size_t arena_used(const arena *a);

#endif
