/*
 * buf.h: a growable byte buffer with a hard cap.
 *
 * Every buffer that the outside world can fill (request bodies, model output,
 * wire frames) is a buf with a cap, so a hostile peer can make an append fail
 * but never make memory grow without bound (the idea of curl's dynbuf).
 *
 * Invariants: data is NUL-terminated whenever len > 0 or after buf_reserve
 * (the NUL is not counted in len); len <= cap. The buf owns data; buf_free
 * releases it and leaves an empty, reusable buf. A zeroed struct is a valid
 * empty buf with no cap (cap 0 means "no limit").
 */
#ifndef HEARTH_BUF_H
#define HEARTH_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct buf {
    char  *data;
    size_t len;
    size_t alloc;
    size_t cap;      /* max len; 0 = unlimited */
} buf;

/* An empty buf that refuses to grow past cap bytes (0 = unlimited). */
buf  buf_make(size_t cap);
void buf_free(buf *b);
void buf_reset(buf *b);                     /* len = 0, keeps memory */

/* Each returns 0 on success, -1 when the cap would be exceeded or on ENOMEM;
 * on failure the buf is unchanged. */
int  buf_reserve(buf *b, size_t extra);
int  buf_append(buf *b, const void *p, size_t n);
int  buf_puts(buf *b, const char *s);
int  buf_putc(buf *b, char c);
int  buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int  buf_vprintf(buf *b, const char *fmt, va_list ap);

/* Drop the first n bytes (n <= len). */
void buf_consume(buf *b, size_t n);

/* Hand the data to the caller (caller frees); the buf becomes empty. */
char *buf_detach(buf *b, size_t *len);

#endif
