/*
 * test_thp.c: unit tests for src/core/thp.{h,c}: memory filled in small
 * pages is folded into huge pages afterwards, sparse memory is left alone
 * (no resident growth), and the pause switch is the kernel's.
 */
#include "check.h"
#include "core/smaps.h"
#include "core/thp.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define MIB (1ull << 20)

/* THP usable here: not "never" */
static bool thp_available(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f)
        return false;
    char line[128] = "";
    bool ok = fgets(line, sizeof line, f) && !strstr(line, "[never]");
    fclose(f);
    return ok;
}

struct sizes {
    uintptr_t at;
    unsigned long long rss, huge;
};

static bool sizes_one(const struct smaps_entry *e, void *ud)
{
    struct sizes *z = ud;
    if (z->at < e->lo || z->at >= e->hi)
        return true;
    z->rss = e->rss;
    z->huge = e->anon_huge;
    return false;
}

/* Rss and AnonHugePages (bytes) of the mapping that holds `p`. */
static void region_sizes(const void *p, unsigned long long *rss, unsigned long long *huge)
{
    struct sizes z = { (uintptr_t)p, 0, 0 };
    smaps_each(sizes_one, &z);
    *rss = z.rss;
    *huge = z.huge;
}

/* 16 MiB, 2 MiB-aligned, faulted in small pages (huge pages refused) */
static char *small_paged(size_t bytes)
{
    char *m = mmap(NULL, bytes + 2 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                   0);
    if (m == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)m + 2 * MIB - 1) & ~(uintptr_t)(2 * MIB - 1));
    madvise(a, bytes, MADV_NOHUGEPAGE);
    return a;
}

TEST(collapse_folds_resident_memory)
{
    if (!thp_available())
        return;
    size_t bytes = 16 * MIB;
    char *a = small_paged(bytes);
    CHECK(a != NULL);
    memset(a, 7, bytes);
    unsigned long long rss, huge;
    region_sizes(a, &rss, &huge);
    CHECK(rss >= bytes);
    CHECK(huge == 0);
    long long done = thp_collapse_resident();
    if (done == 0)
        return;          /* a kernel without MADV_COLLAPSE: nothing to check */
    CHECK(done >= (long long)bytes);
    region_sizes(a, &rss, &huge);
    CHECK(huge >= bytes);
    CHECK(rss < bytes + 2 * MIB);         /* folding added no memory */
    for (size_t i = 0; i < bytes; i += 4096)
        if (a[i] != 7) {                  /* the contents survived */
            CHECK(a[i] == 7);
            break;
        }
}

TEST(sparse_memory_left_alone)
{
    size_t bytes = 16 * MIB;
    char *a = small_paged(bytes);
    CHECK(a != NULL);
    for (size_t i = 0; i < bytes; i += 2 * MIB)
        a[i] = 1;                         /* one small page per 2 MiB */
    CHECK(thp_collapse_resident() >= 0);
    unsigned long long rss, huge;
    region_sizes(a, &rss, &huge);
    CHECK(huge == 0);
    CHECK(rss <= 1 * MIB);
}

TEST(pause_is_the_kernels_switch)
{
    bool paused = thp_pause();
    CHECK(paused);
    CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1);
    thp_resume(paused);
    CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 0);
    thp_resume(false);                    /* not paused: nothing to undo */
    CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 0);
}

int main(void)
{
    RUN(collapse_folds_resident_memory);
    RUN(sparse_memory_left_alone);
    RUN(pause_is_the_kernels_switch);
    return check_summary();
}
