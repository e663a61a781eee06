/*
 * smaps.h: this process's memory mappings with their sizes, from
 * /proc/self/smaps: the one reader behind mapped.c (model-file mappings)
 * and thp.c (memory to fold into huge pages).
 *
 * Ownership: an entry, its path included, is valid only during the call
 * that receives it.
 */
#ifndef HEARTH_SMAPS_H
#define HEARTH_SMAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct smaps_entry {
    uintptr_t lo, hi;               /* [lo, hi) */
    char perms[5];                  /* "r-xp" and the like */
    dev_t dev;
    unsigned long long inode;       /* 0 for anonymous memory */
    const char *path;               /* "" when none; "[heap]", "[stack]", ... */
    unsigned long long rss;         /* bytes resident */
    unsigned long long anon_huge;   /* bytes in anonymous huge pages */
    unsigned long long file_pmd;    /* bytes of a file mapped with 2 MiB entries */
};

/* Calls fn for every mapping in address order until it returns false.
 * Returns 0, or -1 when /proc/self/smaps cannot be read. */
int smaps_each(bool (*fn)(const struct smaps_entry *e, void *ud), void *ud);

#endif
