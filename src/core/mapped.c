/*
 * mapped.c: releasing a mapped file's pages; see mapped.h.
 */
#include "core/mapped.h"

#include "core/smaps.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HUGE_PAGE (2u << 20)

struct release {
    dev_t dev;
    ino_t ino;
    long long released;
};

static bool release_one(const struct smaps_entry *e, void *ud)
{
    struct release *r = ud;
    /* the file's own mappings, read-only: never anything writable */
    if (e->inode != (unsigned long long)r->ino || e->dev != r->dev || e->perms[1] == 'w' ||
        e->hi <= e->lo)
        return true;
    /* later faults map whole 2 MiB folios of the page cache at once (see
     * mapped_warm_huge); refused harmlessly under THP "never" */
    madvise((void *)e->lo, e->hi - e->lo, MADV_HUGEPAGE);
    if (madvise((void *)e->lo, e->hi - e->lo, MADV_DONTNEED) == 0)
        r->released += (long long)(e->hi - e->lo);
    return true;
}

long long mapped_release(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    struct release r = { st.st_dev, st.st_ino, 0 };
    return smaps_each(release_one, &r) < 0 ? -1 : r.released;
}

struct pmd {
    uintptr_t lo;
    long long bytes;
};

static bool pmd_one(const struct smaps_entry *e, void *ud)
{
    struct pmd *p = ud;
    if (e->lo != p->lo)
        return true;
    p->bytes = (long long)e->file_pmd;
    return false;
}

/* Bytes of the mapping that starts at `lo` mapped with 2 MiB entries
 * (FilePmdMapped in /proc/self/smaps), or -1. */
static long long pmd_mapped(uintptr_t lo)
{
    struct pmd p = { lo, -1 };
    return smaps_each(pmd_one, &p) < 0 ? -1 : p.bytes;
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
