/*
 * tokvec.h: a growable array of token ids (int32), owned by its holder.
 */
#ifndef HEARTH_TOKVEC_H
#define HEARTH_TOKVEC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct tokvec {
    int32_t *v;
    int n, cap;
} tokvec;

static inline int tokvec_reserve(tokvec *t, int extra)
{
    if (t->n + extra <= t->cap)
        return 0;
    int c = t->cap ? t->cap : 64;
    while (c < t->n + extra)
        c *= 2;
    int32_t *p = realloc(t->v, (size_t)c * sizeof *p);
    if (!p)
        return -1;
    t->v = p;
    t->cap = c;
    return 0;
}

static inline int tokvec_push(tokvec *t, int32_t tok)
{
    if (tokvec_reserve(t, 1) < 0)
        return -1;
    t->v[t->n++] = tok;
    return 0;
}

static inline int tokvec_append(tokvec *t, const int32_t *p, int n)
{
    if (tokvec_reserve(t, n) < 0)
        return -1;
    memcpy(t->v + t->n, p, (size_t)n * sizeof *p);
    t->n += n;
    return 0;
}

static inline void tokvec_free(tokvec *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

#endif
