/*
 * watches.c: inotify watches by folder; see watches.h.
 */
#include "index/watches.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/inotify.h>

struct slot {
    int64_t folder;     /* 0: no watch */
    uint64_t seen;      /* the walk that last added it */
};

struct watches {
    int ino;
    pthread_mutex_t mu;
    struct slot *slots;     /* by descriptor */
    size_t cap, count;
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

int watches_add(watches *w, const char *dir, uint32_t mask, int64_t folder, uint64_t gen)
{
    int wd = inotify_add_watch(w->ino, dir, mask);
    if (wd < 0)
        return -1;
    pthread_mutex_lock(&w->mu);
    if ((size_t)wd >= w->cap && (size_t)wd < WATCHES_MAX) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap <= (size_t)wd)
            cap *= 2;
        struct slot *s = realloc(w->slots, cap * sizeof *s);
        if (s) {
            for (size_t i = w->cap; i < cap; i++)
                s[i] = (struct slot){ 0, 0 };
            w->slots = s;
            w->cap = cap;
        }
    }
    if ((size_t)wd < w->cap) {
        if (!w->slots[wd].folder)
            w->count++;
        w->slots[wd] = (struct slot){ folder, gen };
    }
    pthread_mutex_unlock(&w->mu);
    /* a watch the table cannot hold still works: its events walk every
     * folder (watches_folder gives 0) and it is removed only with the
     * descriptor */
    return 0;
}

int64_t watches_folder(watches *w, int wd)
{
    pthread_mutex_lock(&w->mu);
    int64_t f = wd >= 0 && (size_t)wd < w->cap ? w->slots[wd].folder : 0;
    pthread_mutex_unlock(&w->mu);
    return f;
}

void watches_gone(watches *w, int wd)
{
    pthread_mutex_lock(&w->mu);
    if (wd >= 0 && (size_t)wd < w->cap && w->slots[wd].folder) {
        w->slots[wd].folder = 0;
        w->count--;
    }
    pthread_mutex_unlock(&w->mu);
}

/* Remove the watches for which drop(slot, arg) holds. Under the mutex. */
static int remove_if(watches *w, bool (*drop)(const struct slot *, const void *), const void *arg)
{
    int n = 0;
    for (size_t i = 0; i < w->cap; i++)
        if (w->slots[i].folder && drop(&w->slots[i], arg)) {
            inotify_rm_watch(w->ino, (int)i);   /* its IN_IGNORED finds the slot empty */
            w->slots[i].folder = 0;
            w->count--;
            n++;
        }
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
