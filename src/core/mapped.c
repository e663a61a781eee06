/*
 * mapped.c: releasing a mapped file's pages; see mapped.h.
 */
#include "core/mapped.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define HUGE_PAGE (2u << 20)

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
        /* later faults map whole 2 MiB folios of the page cache at once
         * (see mapped_warm_huge); refused harmlessly under THP "never" */
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
            released += (long long)(hi - lo);
    }
    fclose(f);
    return released;
}

/* Bytes of the mapping that starts at `lo` mapped with 2 MiB entries
 * (FilePmdMapped in /proc/self/smaps), or -1. */
static long long pmd_mapped(uintptr_t lo)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    long long kb = -1;
    bool in = false;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        uintptr_t a, b;
        /* a mapping's header line ("lo-hi perms ..."); field lines start
         * with a name and a colon */
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &a, &b) == 2) {
            in = a == lo;
            continue;
        }
        if (in && sscanf(line, "FilePmdMapped: %lld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* Map the file read-only at a 2 MiB-aligned address, ask for huge pages, and
 * touch one byte per 2 MiB: a folio not yet cached is read as one 2 MiB
 * folio. Returns FilePmdMapped of the mapping (-1 when it cannot map), and
 * unmaps. */
static long long warm(int fd, size_t size)
{
    size_t span = size + HUGE_PAGE;
    char *res = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED)
        return -1;
    char *at = (char *)(((uintptr_t)res + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    char *p = mmap(at, size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    long long pmd = -1;
    if (p != MAP_FAILED && madvise(p, size, MADV_HUGEPAGE) == 0) {
        unsigned sum = 0;
        for (size_t o = 0; o < size; o += HUGE_PAGE)
            sum += *(volatile const unsigned char *)(p + o);
        (void)sum;
        pmd = pmd_mapped((uintptr_t)p);
    }
    munmap(res, span);
    return pmd;
}

long long mapped_warm_huge(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    long long pmd = -1;
    if (fstat(fd, &st) != 0)
        goto out;
    pmd = 0;
    if (st.st_size < 8 * (off_t)HUGE_PAGE)
        goto out;
    size_t size = (size_t)st.st_size;
    pmd = warm(fd, size);
out:
    close(fd);
    return pmd;
}
