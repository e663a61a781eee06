/*
 * test_smaps.c: unit tests for src/core/smaps.{h,c}: the walker finds a
 * mapping this test made with its resident size, a file mapping with its
 * inode and path, and stops when told to.
 */
#include "check.h"
#include "core/smaps.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

struct find {
    uintptr_t lo;
    struct smaps_entry e;
    char path[256];
    bool found;
    int seen;
};

static bool find_one(const struct smaps_entry *e, void *ud)
{
    struct find *f = ud;
    f->seen++;
    if (e->lo != f->lo)
        return true;
    f->e = *e;
    snprintf(f->path, sizeof f->path, "%s", e->path);
    f->found = true;
    return false;                    /* stop here */
}

TEST(anonymous_mapping_with_its_size)
{
    size_t bytes = 4u << 20;
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 1, bytes);
    struct find f = { .lo = (uintptr_t)p };
    CHECK(smaps_each(find_one, &f) == 0);
    CHECK(f.found);
    CHECK(f.e.hi - f.e.lo >= bytes);
    CHECK(f.e.rss >= bytes);
    CHECK(f.e.inode == 0);
    CHECK(f.e.perms[0] == 'r' && f.e.perms[1] == 'w');
    munmap(p, bytes);
}

TEST(file_mapping_with_inode_and_path)
{
    const char *path = "/proc/self/exe";
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    struct find f = { .lo = (uintptr_t)p };
    CHECK(smaps_each(find_one, &f) == 0);
    CHECK(f.found);
    CHECK(f.e.inode == (unsigned long long)st.st_ino);
    CHECK(f.e.dev == st.st_dev);
    CHECK(strstr(f.path, "test_smaps") != NULL);
    CHECK(f.e.perms[1] == '-');
    munmap(p, 4096);
    close(fd);
}

TEST(stops_when_told)
{
    struct find all = { .lo = 0 };   /* matches nothing: walks everything */
    CHECK(smaps_each(find_one, &all) == 0);
    CHECK(all.seen > 3);
    struct find first = { .lo = 0 };
    char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    first.lo = (uintptr_t)p;
    CHECK(smaps_each(find_one, &first) == 0);
    CHECK(first.found);
    /* the walk ended at the new mapping, before the stack and the vdso */
    CHECK(first.seen < all.seen);
    munmap(p, 4096);
}

int main(void)
{
    RUN(anonymous_mapping_with_its_size);
    RUN(file_mapping_with_inode_and_path);
    RUN(stops_when_told);
    return check_summary();
}
