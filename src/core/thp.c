/*
 * thp.c: load in small pages, fold into huge pages afterwards (see thp.h).
 */
#include "core/thp.h"

#include "core/smaps.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define HUGE (2ull << 20)
#define MIN_BYTES (4ull << 20)

bool thp_pause(void)
{
    return prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0;
}

void thp_resume(bool paused)
{
    if (paused)
        prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
}

/* The anonymous writable mappings worth folding, from /proc/self/smaps. */
struct span {
    uintptr_t lo, hi;
};

struct spans {
    struct span *s;
    int n, cap;
};

static bool span_one(const struct smaps_entry *e, void *ud)
{
    struct spans *sp = ud;
    /* anonymous: no inode and no name, or the heap */
    bool anon = e->inode == 0 && (e->path[0] == '\0' || strcmp(e->path, "[heap]") == 0);
    /* 2 MiB or more resident in small pages */
    if (anon && e->perms[0] == 'r' && e->perms[1] == 'w' && e->hi - e->lo >= MIN_BYTES &&
        e->anon_huge + HUGE <= e->rss && sp->n < sp->cap)
        sp->s[sp->n++] = (struct span){ e->lo, e->hi };
    return true;
}

static int resident_spans(struct span *out, int cap)
{
    struct spans sp = { out, 0, cap };
    return smaps_each(span_one, &sp) < 0 ? -1 : sp.n;
}

/* Every small page of the 2 MiB at `a` is in memory: folding it adds no
 * memory (a huge page over untouched pages would be all zeros, resident). */
static bool fully_resident(uintptr_t a)
{
    unsigned char vec[HUGE / 4096];
    if (mincore((void *)a, HUGE, vec) != 0)
        return false;
    for (size_t i = 0; i < sizeof vec; i++)
        if (!(vec[i] & 1))
            return false;
    return true;
}

struct thp_fold {
    struct span *s;
    int n, i;          /* spans, and the one the cursor is in */
    uintptr_t at;      /* the next piece to look at */
    long long done;
};

thp_fold *thp_fold_plan(void)
{
    enum { CAP = 256 };
    thp_fold *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->s = malloc(CAP * sizeof *f->s);
    f->n = f->s ? resident_spans(f->s, CAP) : -1;
    if (f->n <= 0) {
        thp_fold_free(f);
        return NULL;
    }
    for (int i = 0; i < f->n; i++) {
        /* the 2 MiB-aligned inside of each span */
        f->s[i].lo = (f->s[i].lo + HUGE - 1) & ~(uintptr_t)(HUGE - 1);
        f->s[i].hi &= ~(uintptr_t)(HUGE - 1);
        /* refused under THP "never" or on old kernels; nothing changes then */
        if (f->s[i].hi > f->s[i].lo)
            madvise((void *)f->s[i].lo, f->s[i].hi - f->s[i].lo, MADV_HUGEPAGE);
    }
    f->at = f->s[0].lo;
    return f;
}

bool thp_fold_step(thp_fold *f, int max)
{
    if (!f)
        return false;
    int folded = 0, looked = 0;
    while (f->i < f->n && folded < max && looked < 64 * max) {
        struct span *sp = &f->s[f->i];
        if (f->at < sp->lo)
            f->at = sp->lo;
        if (f->at >= sp->hi) {
            f->i++;
            continue;
        }
        uintptr_t a = f->at;
        f->at += HUGE;
        looked++;
        if (fully_resident(a) && madvise((void *)a, HUGE, MADV_COLLAPSE) == 0) {
            f->done += (long long)HUGE;
            folded++;
        }
    }
    return f->i < f->n;
}

long long thp_fold_done(const thp_fold *f)
{
    return f ? f->done : 0;
}

void thp_fold_free(thp_fold *f)
{
    if (!f)
        return;
    free(f->s);
    free(f);
}

long long thp_collapse_resident(void)
{
    thp_fold *f = thp_fold_plan();
    if (!f)
        return 0;
    while (thp_fold_step(f, 64))
        ;
    long long done = thp_fold_done(f);
    thp_fold_free(f);
    return done;
}
