/*
 * thp.c: load in small pages, fold into huge pages afterwards (see thp.h).
 */
#include "core/thp.h"

#include <inttypes.h>
#include <stdio.h>
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

static int resident_spans(struct span *out, int cap)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    int n = 0;
    char line[4096];
    uintptr_t lo = 0, hi = 0;
    bool cand = false;
    unsigned long long rss_kb = 0, huge_kb = 0;
    bool have_rss = false;
    for (;;) {
        bool eof = !fgets(line, sizeof line, f);
        uintptr_t a, b;
        char perms[8];
        unsigned long long ino;
        int path_at = 0;
        bool header = !eof && sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*x %*x:%*x %llu %n",
                                     &a, &b, perms, &ino, &path_at) >= 4;
        if (eof || header) {
            /* close the mapping before: 2 MiB or more resident in small pages */
            if (cand && have_rss && n < cap && huge_kb * 1024 + HUGE <= rss_kb * 1024)
                out[n++] = (struct span){ lo, hi };
            if (eof)
                break;
            lo = a;
            hi = b;
            rss_kb = huge_kb = 0;
            have_rss = false;
            /* anonymous: no inode and no name, or the heap */
            const char *path = path_at > 0 ? line + path_at : "";
            bool anon = ino == 0 && (*path == '\n' || *path == '\0' ||
                                     strncmp(path, "[heap]", 6) == 0);
            cand = anon && perms[0] == 'r' && perms[1] == 'w' && b - a >= MIN_BYTES;
            continue;
        }
        unsigned long long kb;
        if (sscanf(line, "Rss: %llu kB", &kb) == 1) {
            rss_kb = kb;
            have_rss = true;
        } else if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1) {
            huge_kb = kb;
        }
    }
    fclose(f);
    return n;
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
