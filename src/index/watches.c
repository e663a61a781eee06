/*
 * watches.c: inotify watches by folder; see watches.h.
 */
#include "index/watches.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

struct slot {
    int wd;
    int64_t folder;     /* 0: removed (dropped at the next compaction) */
    uint64_t seen;      /* the walk that last added it */
};

/* Slots in ascending wd. The kernel hands out ever larger descriptors
 * (until they wrap), so a new watch is appended; a watch added again keeps
 * its slot. */
struct watches {
    int ino;
    pthread_mutex_t mu;
    struct slot *slots;
    size_t n, cap, count;   /* slots used, allocated, and live */
};

watches *watches_new(int ino)
{
    watches *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->ino = ino;
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

void watches_free(watches *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->mu);
    free(w->slots);
    free(w);
}

/* The first slot with a wd not below wd. Under the mutex. */
static size_t lower_bound(const watches *w, int wd)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->slots[mid].wd < wd)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* wd's live slot, or NULL. Under the mutex. */
static struct slot *find(watches *w, int wd)
{
    size_t i = lower_bound(w, wd);
    return i < w->n && w->slots[i].wd == wd && w->slots[i].folder ? &w->slots[i] : NULL;
}

/* Drop removed slots. Under the mutex. */
static void compact(watches *w)
{
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->slots[i].folder)
            w->slots[k++] = w->slots[i];
    w->n = k;
}

int watches_add(watches *w, const char *dir, uint32_t mask, int64_t folder, uint64_t gen)
{
    int wd = inotify_add_watch(w->ino, dir, mask);
    if (wd < 0)
        return -1;
    pthread_mutex_lock(&w->mu);
    size_t i = lower_bound(w, wd);
    if (i < w->n && w->slots[i].wd == wd) {
        if (!w->slots[i].folder)
            w->count++;
        w->slots[i] = (struct slot){ wd, folder, gen };
    } else if (w->count < WATCHES_MAX) {
        if (w->n == w->cap && w->n > w->count) {
            compact(w);
            i = lower_bound(w, wd);
        }
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 256;
            struct slot *s = realloc(w->slots, cap * sizeof *s);
            if (s) {
                w->slots = s;
                w->cap = cap;
            }
        }
        if (w->n < w->cap) {
            memmove(&w->slots[i + 1], &w->slots[i], (w->n - i) * sizeof *w->slots);
            w->slots[i] = (struct slot){ wd, folder, gen };
            w->n++;
            w->count++;
        } else {
            inotify_rm_watch(w->ino, wd);       /* no memory to know it by */
        }
    } else {
        inotify_rm_watch(w->ino, wd);
    }
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int64_t watches_folder(watches *w, int wd)
{
    pthread_mutex_lock(&w->mu);
    const struct slot *s = find(w, wd);
    int64_t f = s ? s->folder : 0;
    pthread_mutex_unlock(&w->mu);
    return f;
}

void watches_gone(watches *w, int wd)
{
    pthread_mutex_lock(&w->mu);
    struct slot *s = find(w, wd);
    if (s) {
        s->folder = 0;
        w->count--;
    }
    pthread_mutex_unlock(&w->mu);
}

/* Remove the watches for which drop(slot, arg) holds. Under the mutex. */
static int remove_if(watches *w, bool (*drop)(const struct slot *, const void *), const void *arg)
{
    int n = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->slots[i].folder && drop(&w->slots[i], arg)) {
            inotify_rm_watch(w->ino, w->slots[i].wd);   /* its IN_IGNORED finds no slot */
            w->slots[i].folder = 0;
            w->count--;
            n++;
        }
    compact(w);
    return n;
}

struct stale {
    int64_t folder;
    uint64_t gen;
};

static bool is_stale(const struct slot *s, const void *arg)
{
    const struct stale *st = arg;
    return s->folder == st->folder && s->seen < st->gen;
}

static bool of_folder(const struct slot *s, const void *arg)
{
    return s->folder == *(const int64_t *)arg;
}

struct keep {
    const int64_t *ids;
    size_t n;
};

static bool not_kept(const struct slot *s, const void *arg)
{
    const struct keep *k = arg;
    for (size_t i = 0; i < k->n; i++)
        if (k->ids[i] == s->folder)
            return false;
    return true;
}

int watches_prune(watches *w, int64_t folder, uint64_t gen)
{
    struct stale st = { folder, gen };
    pthread_mutex_lock(&w->mu);
    int n = remove_if(w, is_stale, &st);
    pthread_mutex_unlock(&w->mu);
    return n;
}

int watches_drop_folder(watches *w, int64_t folder)
{
    pthread_mutex_lock(&w->mu);
    int n = remove_if(w, of_folder, &folder);
    pthread_mutex_unlock(&w->mu);
    return n;
}

int watches_keep_only(watches *w, const int64_t *keep, size_t n)
{
    struct keep k = { keep, n };
    pthread_mutex_lock(&w->mu);
    int r = remove_if(w, not_kept, &k);
    pthread_mutex_unlock(&w->mu);
    return r;
}

size_t watches_count(watches *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->count;
    pthread_mutex_unlock(&w->mu);
    return n;
}
