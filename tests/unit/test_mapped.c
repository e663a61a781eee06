/*
 * test_mapped.c: unit tests for src/core/mapped.{h,c}: a mapped file's
 * resident pages are given back, the data stays readable, and nothing else
 * (writable mappings, other files) is touched.
 */
#include "check.h"
#include "core/mapped.h"

#include <fcntl.h>
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

static int make_file(void)
{
    snprintf(g_path, sizeof g_path, "/tmp/hearth-mapped-XXXXXX");
    int fd = mkstemp(g_path);
    if (fd < 0)
        return -1;
    unsigned char *b = malloc(1 << 20);
    for (unsigned i = 0; b && i < FILE_BYTES; i += 1 << 20) {
        for (unsigned k = 0; k < 1u << 20; k++)
            b[k] = (unsigned char)((i + k) * 31u);
        if (write(fd, b, 1 << 20) != 1 << 20)
            break;
    }
    free(b);
    return fd;
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

int main(void)
{
    RUN(release_drops_resident_pages_and_keeps_data);
    RUN(writable_and_unmapped_are_left_alone);
    return check_summary();
}
