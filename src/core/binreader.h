/*
 * binreader.h: a bounds-checked little-endian reader over a file or a memory
 * image, shared by the model-file validators (gguf.c, ggml_legacy.c).
 *
 * A file is read through a small window with pread, never mapped and never
 * read whole (model files are gigabytes; only their headers are parsed). Every
 * read checks the bytes remaining first, so a length field from the file can
 * never make a read run past its end; a failure writes one line into err,
 * naming what was being read (`where`) and never the file's path.
 *
 * Ownership: the reader borrows fd / mem and err; br_window allocates the
 * window, br_release frees it (and nothing else).
 */
#ifndef HEARTH_BINREADER_H
#define HEARTH_BINREADER_H

#include <stddef.h>
#include <stdint.h>

#define BR_WINDOW (64u << 10)

typedef struct binreader {
    int            fd;          /* -1: reading the memory image mem */
    const uint8_t *mem;
    uint64_t       size;        /* bytes in the file or image */
    uint64_t       pos;         /* next unread byte; pos <= size (and <= cap) */
    uint64_t       cap;         /* the most bytes a parse may consume; 0 = no cap */
    uint8_t       *win;         /* fd mode: a window on the file */
    size_t         win_alloc;
    uint64_t       win_off;
    size_t         win_len;
    char          *err;
    size_t         errlen;
    char           where[112];  /* what is being read, for messages */
} binreader;

/* Write the reason into r->err; always returns -1. */
int      br_fail(binreader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t br_left(const binreader *r);
/* -1 (with a "truncated" reason) unless n more bytes remain, and (with a
 * cap) unless the read stays within the first cap bytes. */
int      br_need(binreader *r, uint64_t n);
int      br_bytes(binreader *r, void *dst, size_t n);
int      br_skip(binreader *r, uint64_t n);
int      br_u32(binreader *r, uint32_t *v);
int      br_i32(binreader *r, int32_t *v);
int      br_u64(binreader *r, uint64_t *v);
/* fd mode: allocate the window for a file of r->size bytes; -1 on ENOMEM. */
int      br_window(binreader *r);
/* Open path for reading if, and only if, it is a regular file (a FIFO or a
 * device is refused before it is opened, and checked again on the fd), and
 * set up fd mode with its window. The reader then owns the fd. 0, or -1 with
 * a reason. */
int      br_open_file(binreader *r, const char *path);
/* Frees the window and closes a file br_open_file opened. */
void     br_release(binreader *r);

#endif
