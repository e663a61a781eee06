/*
 * audit.c: the audit log's file, lines and rotation; see audit.h.
 */
#include "http/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"

#define PATH_CAP 256

struct audit {
    /* the queue, shared with the HTTP threads */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    buf queue;                 /* whole lines waiting, capped at AUDIT_QUEUE_MAX */
    long dropped;              /* lines that found the queue full */
    bool stop;
    pthread_t writer;
    /* the file: the writer's alone once it runs */
    int fd;
    uint64_t size, max;
    char path[600], old[610];
};

static int open_log(audit *a)
{
    a->fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (a->fd < 0)
        return -1;
    if (fchmod(a->fd, 0600) != 0)       /* a file left looser from before */
        log_warn("audit: cannot make %s private: %s", a->path, strerror(errno));
    struct stat st;
    a->size = fstat(a->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

static void rotate(audit *a);

/* One line into the file (the writer thread). */
static void write_line(audit *a, const char *line, size_t n)
{
    if (a->fd < 0 && open_log(a) == 0)     /* it failed before: not now */
        log_info("audit: %s is open again", a->path);
    if (a->fd >= 0 && a->size > 0 && a->size + n > a->max)
        rotate(a);
    if (a->fd < 0)
        return;
    ssize_t w = write(a->fd, line, n);
    if (w > 0)
        a->size += (uint64_t)w;
    if (w != (ssize_t)n)
        log_warn("audit: short write to %s", a->path);
}

/* Takes what the HTTP threads queued and writes it, line by line, until
 * audit_close; a slow disk holds up this thread alone. */
static void *writer_main(void *arg)
{
    audit *a = arg;
    for (;;) {
        pthread_mutex_lock(&a->mu);
        while (!a->queue.len && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        size_t len = 0;
        char *lines = NULL;
        if (a->queue.len) {
            lines = buf_detach(&a->queue, &len);
            a->queue = buf_make(AUDIT_QUEUE_MAX);
        }
        long dropped = a->dropped;
        a->dropped = 0;
        bool stop = a->stop;
        pthread_mutex_unlock(&a->mu);
        if (dropped)
            log_warn("audit: %ld request(s) went unrecorded: the disk did not keep up", dropped);
        for (size_t at = 0; lines && at < len;) {
            const char *nl = memchr(lines + at, '\n', len - at);
            size_t n = nl ? (size_t)(nl - (lines + at)) + 1 : len - at;
            write_line(a, lines + at, n);
            at += n;
        }
        free(lines);
        if (stop && !lines)
            return NULL;
    }
}

/* Frees what an audit holds once no writer runs. */
static void release(audit *a)
{
    if (a->fd >= 0)
        close(a->fd);
    buf_free(&a->queue);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

audit *audit_open(const char *dir, uint64_t max_bytes, char *err, size_t el)
{
    audit *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, el, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->queue = buf_make(AUDIT_QUEUE_MAX);
    a->max = max_bytes ? max_bytes : AUDIT_MAX_BYTES;
    snprintf(a->path, sizeof a->path, "%s/audit.log", dir);
    snprintf(a->old, sizeof a->old, "%s.1", a->path);
    err[0] = '\0';
    if (open_log(a) < 0)
        snprintf(err, el, "cannot open the audit log %.300s: %s", a->path, strerror(errno));
    if (pthread_create(&a->writer, NULL, writer_main, a) != 0) {
        snprintf(err, el, "cannot start the audit log's writer");
        release(a);
        return NULL;
    }
    return a;
}

/* The file grew past its cap: it becomes audit.log.1, a new one starts.
 * When it cannot be renamed it starts over in place, so the cap holds. */
static void rotate(audit *a)
{
    if (rename(a->path, a->old) != 0) {
        log_warn("audit: cannot rotate %s: %s; starting it over", a->path, strerror(errno));
        if (ftruncate(a->fd, 0) == 0) {
            a->size = 0;
            return;
        }
    }
    close(a->fd);
    a->fd = -1;
    if (open_log(a) < 0)
        log_error("audit: cannot reopen %s: %s; retrying with the next request", a->path,
                  strerror(errno));
}

static void put_str(buf *b, const char *key, const char *v)
{
    buf_printf(b, ",\"%s\":", key);
    jw_cstr(b, v);
}

void audit_write(audit *a, const audit_entry *e)
{
    if (!a)
        return;
    char when[40];
    time_t s = (time_t)e->wall;
    struct tm tm;
    gmtime_r(&s, &tm);
    int ms = (int)((e->wall - (double)s) * 1000);
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms < 0 ? 0 : ms % 1000);
    /* the path (libmicrohttpd's, without the query), cut at PATH_CAP bytes
     * and never inside a UTF-8 character (the JSON writer replaces what is
     * not UTF-8) */
    const char *p = e->path ? e->path : "";
    size_t pl = strlen(p);
    if (pl > PATH_CAP) {
        pl = PATH_CAP;
        while (pl && ((unsigned char)p[pl] & 0xC0) == 0x80)
            pl--;
    }
    buf b = buf_make(0);
    buf_printf(&b, "{\"time\":\"%s\"", when);
    put_str(&b, "rid", e->rid);
    put_str(&b, "client", e->client);
    put_str(&b, "key", e->key);
    put_str(&b, "method", e->method);
    buf_puts(&b, ",\"path\":");
    jw_str(&b, p, pl);
    put_str(&b, "model", e->model);
    buf_printf(&b, ",\"status\":%u", e->status);
    put_str(&b, "outcome", e->outcome);
    buf_printf(&b, ",\"ms\":%.1f,\"bytes_in\":%llu", e->ms, (unsigned long long)e->bytes_in);
    if (e->tokens_in >= 0)
        buf_printf(&b, ",\"tokens_in\":%d,\"tokens_cached\":%d,\"tokens_out\":%d,"
                   "\"compute_ms\":%.1f", e->tokens_in, e->tokens_cached < 0 ? 0 : e->tokens_cached,
                   e->tokens_out < 0 ? 0 : e->tokens_out, e->compute_ms);
    buf_puts(&b, "}\n");
    pthread_mutex_lock(&a->mu);
    if (!b.data || buf_append(&a->queue, b.data, b.len) < 0)
        a->dropped++;               /* the queue is full: counted, said by the writer */
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    buf_free(&b);
}

void audit_close(audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->writer, NULL);     /* it writes what was queued first */
    release(a);
}
