/*
 * watches.h: the indexer's inotify watches, each with the watched folder it
 * belongs to.
 *
 * Every subfolder a walk enters is watched, so a change is seen in about a
 * second. Knowing which watched folder a watch belongs to lets a change
 * walk that folder alone, and knowing which walk last saw it lets the
 * watches of subfolders that are gone or now ignored, and of folders no
 * longer watched, be removed (the kernel ends a watch by itself only when
 * its folder is deleted or unmounted: IN_IGNORED).
 *
 * Watches are kept sorted by descriptor (the kernel hands out ever larger
 * ones), at most WATCHES_MAX at once; past that, or when memory runs
 * short, a new watch is removed again (its folder's changes are seen at
 * the timer's walk).
 *
 * Thread-safety: every function may be called from any thread (one mutex).
 * Ownership: the inotify descriptor stays the caller's; watches_free
 * removes no watch (closing the descriptor does).
 */
#ifndef HEARTH_INDEX_WATCHES_H
#define HEARTH_INDEX_WATCHES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WATCHES_MAX (1 << 22)

typedef struct watches watches;

/* A table for the inotify descriptor ino; NULL when out of memory. */
watches *watches_new(int ino);
void     watches_free(watches *w);

/* Watch dir (mask: inotify's events) for folder, seen by walk number gen.
 * 0, or -1 with errno (ENOSPC: the kernel's watch limit). Folder ids are
 * positive. */
int watches_add(watches *w, const char *dir, uint32_t mask, int64_t folder, uint64_t gen);
/* The folder whose subfolder wd watches; 0 when unknown. */
int64_t watches_folder(watches *w, int wd);
/* The kernel ended wd's watch (IN_IGNORED). */
void watches_gone(watches *w, int wd);
/* After a complete walk of folder, number gen: remove its watches that
 * walk did not see. How many were removed. */
int watches_prune(watches *w, int64_t folder, uint64_t gen);
/* Remove every watch of folder (no longer watched). How many. */
int watches_drop_folder(watches *w, int64_t folder);
/* Remove every watch of a folder not among keep[0..n). How many. */
int watches_keep_only(watches *w, const int64_t *keep, size_t n);
/* Watches held now. */
size_t watches_count(watches *w);

#endif
