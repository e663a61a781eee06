/*
 * arena.c: chunked bump allocator. Chunks are linked newest-first; a request
 * larger than the default chunk gets a chunk of its own.
 */
#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_DEFAULT (16 * 1024)

struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char mem[];
};

struct arena {
    struct chunk *head;
    size_t cap, used;
};

arena *arena_new(size_t cap)
{
    arena *a = calloc(1, sizeof *a);
    if (a)
        a->cap = cap;
    return a;
}

void arena_free(arena *a)
{
    if (!a)
        return;
    struct chunk *c = a->head;
    while (c) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

void *arena_alloc(arena *a, size_t n)
{
    if (n > (size_t)-1 - 15)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (a->cap && (n > a->cap || a->used > a->cap - n))
        return NULL;
    struct chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t sz = n > CHUNK_DEFAULT ? n : CHUNK_DEFAULT;
        c = malloc(sizeof *c + sz);
        if (!c)
            return NULL;
        c->size = sz;
        c->used = 0;
        /* keep a partly used big chunk behind the current one */
        if (a->head && n > CHUNK_DEFAULT) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->mem + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

size_t arena_used(const arena *a)
{
    return a->used;
}
