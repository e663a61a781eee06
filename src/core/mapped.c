/*
 * mapped.c: releasing a mapped file's pages; see mapped.h.
 */
#include "core/mapped.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

long long mapped_release(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    long long released = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        uintptr_t lo, hi;
        unsigned maj, min;
        unsigned long long ino;
        char perms[8];
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*x %x:%x %llu", &lo, &hi, perms, &maj,
                   &min, &ino) != 6)
            continue;
        /* the file's own mappings, read-only: never anything writable */
        if (ino != (unsigned long long)st.st_ino || makedev(maj, min) != st.st_dev ||
            perms[1] == 'w' || hi <= lo)
            continue;
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
            released += (long long)(hi - lo);
    }
    fclose(f);
    return released;
}
