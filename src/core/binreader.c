/*
 * binreader.c: the windowed, bounds-checked reader; see binreader.h.
 */
#include "core/binreader.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int br_fail(binreader *r, const char *fmt, ...)
{
    if (r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

uint64_t br_left(const binreader *r)
{
    return r->size - r->pos;
}

int br_need(binreader *r, uint64_t n)
{
    if (n > br_left(r))
        return br_fail(r, "truncated: %s needs %" PRIu64 " bytes but only %" PRIu64
                          " remain in the file", r->where, n, br_left(r));
    if (r->cap && n > r->cap - r->pos)
        return br_fail(r, "header larger than the %" PRIu64 " MiB limit (while reading %s)",
                       r->cap >> 20, r->where);
    return 0;
}

/* fd mode: load the window with the bytes starting at pos. */
static int fill(binreader *r)
{
    uint64_t want = br_left(r) < r->win_alloc ? br_left(r) : r->win_alloc;
    size_t got = 0;

    while (got < want) {
        ssize_t k = pread(r->fd, r->win + got, want - got, (off_t)(r->pos + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return br_fail(r, "read error: %s", strerror(errno));
        if (k == 0)
            return br_fail(r, "file shrank while it was being read");
        got += (size_t)k;
    }
    r->win_off = r->pos;
    r->win_len = got;
    return 0;
}

int br_bytes(binreader *r, void *dst, size_t n)
{
    uint8_t *d = dst;

    if (br_need(r, n))
        return -1;
    if (r->fd < 0) {
        if (n)
            memcpy(d, r->mem + r->pos, n);
        r->pos += n;
        return 0;
    }
    while (n) {
        if (r->pos < r->win_off || r->pos >= r->win_off + r->win_len)
            if (fill(r))
                return -1;
        size_t at = (size_t)(r->pos - r->win_off);
        size_t k = r->win_len - at < n ? r->win_len - at : n;
        memcpy(d, r->win + at, k);
        d += k;
        n -= k;
        r->pos += k;
    }
    return 0;
}

int br_skip(binreader *r, uint64_t n)
{
    if (br_need(r, n))
        return -1;
    r->pos += n;
    return 0;
}

static uint64_t le(const uint8_t *b, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | b[i];
    return v;
}

int br_u32(binreader *r, uint32_t *v)
{
    uint8_t b[4];
    if (br_bytes(r, b, sizeof b))
        return -1;
    *v = (uint32_t)le(b, 4);
    return 0;
}

int br_i32(binreader *r, int32_t *v)
{
    uint32_t u;
    if (br_u32(r, &u))
        return -1;
    memcpy(v, &u, sizeof *v);
    return 0;
}

int br_u64(binreader *r, uint64_t *v)
{
    uint8_t b[8];
    if (br_bytes(r, b, sizeof b))
        return -1;
    *v = le(b, 8);
    return 0;
}

int br_window(binreader *r)
{
    r->win_alloc = r->size < BR_WINDOW ? (size_t)r->size : BR_WINDOW;
    r->win = malloc(r->win_alloc ? r->win_alloc : 1);
    return r->win ? 0 : -1;
}

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

int br_open_file(binreader *r, const char *path)
{
    struct stat st;
    r->fd = -1;
    if (!path || !*path)
        return br_fail(r, "no path given");
    /* look before opening: opening a FIFO or a device can block or act */
    if (stat(path, &st) != 0)
        return br_fail(r, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return br_fail(r, "not a regular file: it is %s", file_kind(st.st_mode));
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return br_fail(r, "cannot open: %s", strerror(errno));
    /* the path may have been swapped since stat(): trust only the fd */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return br_fail(r, "not a regular file (it changed while being opened)");
    }
    r->fd = fd;
    r->size = (uint64_t)st.st_size;
    r->pos = 0;
    if (br_window(r) < 0)
        return br_fail(r, "out of memory");
    return 0;
}

void br_release(binreader *r)
{
    free(r->win);
    r->win = NULL;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}
