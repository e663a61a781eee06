/*
 * thp.c: load in small pages, fold into huge pages afterwards (see thp.h).
 */
#include "core/thp.h"

#include "core/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

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

long long thp_collapse_resident(void)
{
    enum { CAP = 256 };
    struct span *s = malloc(CAP * sizeof *s);
    if (!s)
        return -1;
    int n = resident_spans(s, CAP);
    if (n < 0) {
        free(s);
        return -1;
    }
    long long done = 0;
    for (int i = 0; i < n; i++) {
        uintptr_t lo = (s[i].lo + HUGE - 1) & ~(uintptr_t)(HUGE - 1);
        uintptr_t hi = s[i].hi & ~(uintptr_t)(HUGE - 1);
        if (hi <= lo)
            continue;
        /* refused under THP "never" or on old kernels; nothing changes then */
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
        for (uintptr_t a = lo; a < hi; a += HUGE)
            if (fully_resident(a) && madvise((void *)a, HUGE, MADV_COLLAPSE) == 0)
                done += (long long)HUGE;
    }
    free(s);
    return done;
}

static void *collapse_main(void *arg)
{
    char *what = arg;
    /* only on a CPU nothing else wants: the model already serves, and a
     * first token should not wait for this copy */
    struct sched_param sp = { 0 };
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long long done = thp_collapse_resident();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    log_debug("%s: %.1f MiB folded into huge pages in %.0f ms", what ? what : "memory",
              done > 0 ? (double)done / (1 << 20) : 0.0, ms);
    free(what);
    return NULL;
}

void thp_collapse_async(const char *what)
{
    char *w = what ? strdup(what) : NULL;
    pthread_attr_t at;
    pthread_t t;
    if (pthread_attr_init(&at) != 0) {
        free(w);
        return;
    }
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, collapse_main, w) != 0)
        free(w);
    pthread_attr_destroy(&at);
}
