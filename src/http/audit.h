/*
 * audit.h: the audit log, one JSON line per HTTP request.
 *
 * <data-dir>/audit.log (mode 0600) records who asked what of the daemon and
 * how it ended: time, request id, client address, the API key's name (never
 * the key), method, path, model, status, outcome, duration, body bytes and,
 * for a request a model ran, its tokens in and out and the compute time.
 * It never holds a prompt, an answer, a recording or a document: it says
 * that a request happened, not what it said. Past max_bytes the file
 * becomes audit.log.1 (replacing the one before) and a new one starts, so
 * it never grows without bound (when it cannot be renamed, it starts over).
 * When the file cannot be opened the daemon still serves, logs the error
 * and tries again with each request. An HTTP thread only formats its line
 * and queues it (AUDIT_QUEUE_MAX bytes at most): a thread of the audit's own
 * does the file's I/O, a line per write() under O_APPEND, so a slow disk
 * holds up no request, and lines never interleave. When the queue is full
 * a line is dropped and counted, and the writer logs the count.
 *
 * Ownership: an audit owns its file descriptor and its writer thread;
 * audit_close() writes what is queued, stops the thread and frees both.
 * audit_write() is safe from any thread.
 */
#ifndef HEARTH_AUDIT_H
#define HEARTH_AUDIT_H

#include <stdint.h>
#include <stddef.h>

typedef struct audit audit;

typedef struct audit_entry {
    double wall;           /* seconds since the epoch, when the request arrived */
    const char *rid;
    const char *client;    /* address, or NULL */
    const char *key;       /* the key's name, or NULL (no keys, or refused) */
    const char *method;
    const char *path;      /* the URL's path (cut at 256 bytes) */
    const char *model;     /* NULL when the request named none */
    unsigned status;       /* 0 when no response was sent */
    const char *outcome;   /* "ok", "client_gone", "timeout", "error", "shutdown" */
    double ms;             /* arrival to completion */
    uint64_t bytes_in;     /* request body bytes received */
    /* what the model did (a request that ran one; else all negative) */
    int tokens_in, tokens_cached, tokens_out;
    double compute_ms;     /* prompt and generation time in the worker */
} audit_entry;

#define AUDIT_MAX_BYTES (64ull << 20)
#define AUDIT_QUEUE_MAX (1u << 20)    /* lines waiting for the writer */

/* Opens (creating) dir/audit.log. NULL only when out of memory; when the
 * file cannot be opened now, err says why (else it is "") and each write
 * tries again. */
audit *audit_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen);
void   audit_write(audit *a, const audit_entry *e);
void   audit_close(audit *a);

#endif
