/*
 * test_mapped.c: unit tests for src/core/mapped.{h,c}: a mapped file's
 * resident pages are given back, the data stays readable, and nothing else
 * (writable mappings, other files) is touched.
 */
#include "check.h"
#include "core/mapped.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FILE_BYTES (8u << 20)

static char g_path[64];

/* resident pages of this process, in bytes (from /proc/self/statm) */
static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lld %lld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * sysconf(_SC_PAGESIZE);
}

static int make_file_of(unsigned bytes)
{
    snprintf(g_path, sizeof g_path, "/tmp/hearth-mapped-XXXXXX");
    int fd = mkstemp(g_path);
    if (fd < 0)
        return -1;
    unsigned char *b = malloc(1 << 20);
    for (unsigned i = 0; b && i < bytes; i += 1 << 20) {
        for (unsigned k = 0; k < 1u << 20; k++)
            b[k] = (unsigned char)((i + k) * 31u);
        if (write(fd, b, 1 << 20) != 1 << 20)
            break;
    }
    free(b);
    return fd;
}

static int make_file(void)
{
    return make_file_of(FILE_BYTES);
}

/* THP as the kernel offers it: false under "never" (or no THP at all) */
static bool thp_available(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char line[128] = "";
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
    }
    return strstr(line, "[always]") || strstr(line, "[madvise]");
}

TEST(release_drops_resident_pages_and_keeps_data)
{
    int fd = make_file();
    CHECK(fd >= 0);
    const unsigned char *m = mmap(NULL, FILE_BYTES, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    if (fd < 0 || m == MAP_FAILED)
        return;
    unsigned sum = 0;
    for (unsigned i = 0; i < FILE_BYTES; i += 4096)
        sum += m[i];
    long long before = rss_bytes();
    long long released = mapped_release(g_path);
    long long after = rss_bytes();
    CHECK(released == (long long)FILE_BYTES);
    /* most of the 8 MiB left the resident set (other pages may come and go) */
    CHECK(before - after > (long long)FILE_BYTES * 3 / 4);
    /* the data is still there, read back from the page cache */
    unsigned sum2 = 0;
    for (unsigned i = 0; i < FILE_BYTES; i += 4096)
        sum2 += m[i];
    CHECK_EQ_INT((int)sum, (int)sum2);
    CHECK_EQ_INT(m[12345], (unsigned char)(12345u * 31u));
    munmap((void *)m, FILE_BYTES);
    close(fd);
    unlink(g_path);
}

TEST(writable_and_unmapped_are_left_alone)
{
    int fd = make_file();
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    /* not mapped at all: nothing to release */
    CHECK(mapped_release(g_path) == 0);
    /* a writable mapping of the file is never dropped (it could hold changes) */
    unsigned char *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(w != MAP_FAILED);
    if (w != MAP_FAILED) {
        w[0] = 0xAB;
        CHECK(mapped_release(g_path) == 0);
        CHECK_EQ_INT(w[0], 0xAB);
        munmap(w, 4096);
    }
    close(fd);
    unlink(g_path);
    CHECK(mapped_release("/nonexistent/hearth/model.gguf") == -1);
}

/* Warming a file for huge pages: small files are left alone, the data is
 * unchanged, the answer is a byte count within the file, and a file read
 * from disk (its cache dropped first) is read in 2 MiB folios where the
 * filesystem supports them (printed: that part is the kernel's). */
TEST(warm_huge)
{
    int fd = make_file();           /* 8 MiB: under the 16 MiB floor */
    CHECK(fd >= 0);
    CHECK(mapped_warm_huge(g_path) == 0);
    close(fd);
    unlink(g_path);
    CHECK(mapped_warm_huge("/nonexistent/hearth/model.gguf") == -1);

    const unsigned big = 32u << 20;
    fd = make_file_of(big);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    fsync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    long long first = mapped_warm_huge(g_path);
    long long second = mapped_warm_huge(g_path);
    if (!thp_available()) {
        CHECK(first == -1);
    } else {
        CHECK(first >= 0 && first <= (long long)big);
        /* what the first call cached as 2 MiB folios stays so */
        CHECK(second >= first);
        CHECK(second <= (long long)big);
        printf("  32 MiB file read from disk: %lld MiB in 2 MiB pages\n", first >> 20);
    }
    const unsigned char *m = mmap(NULL, big, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    if (m != MAP_FAILED) {
        bool same = true;
        for (unsigned i = 0; i < big; i += 4093)
            same = same && m[i] == (unsigned char)(i * 31u);
        CHECK(same);
        munmap((void *)m, big);
    }
    close(fd);
    unlink(g_path);
}

int main(void)
{
    RUN(release_drops_resident_pages_and_keeps_data);
    RUN(writable_and_unmapped_are_left_alone);
    RUN(warm_huge);
    return check_summary();
}
