/*
 * indexer.c: the thread that keeps the retrieval index in step with the
 * watched folders (indexer.h).
 */
#include "index/indexer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/log.h"
#include "index/text.h"
#include "sched/job.h"

#define WALK_MAX_DEPTH  32
#define WALK_MAX_FILES  200000      /* per folder */
#define EMBED_BATCH     32
#define BUSY_WAIT_S     5           /* after a 503 without Retry-After */

struct indexer {
    _Atomic(const config *) cfg;
    sched *s;
    idb *db;
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, scan_now, retry_now;
    indexer_activity act;       /* under mu */
    /* inotify: every folder walked is watched, so a change is seen in
     * about a second, not at the next walk (-1: not available) */
    int ino;
    pthread_t watcher;
    bool watching;
    atomic_bool watch_full;     /* the kernel's watch limit was reached (logged once) */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool stopping(indexer *x)
{
    pthread_mutex_lock(&x->mu);
    bool s = x->stop;
    pthread_mutex_unlock(&x->mu);
    return s;
}

/* ---- walking a folder ---------------------------------------------------- */

struct walk {
    idb_seen *files;
    size_t n, cap;
    bool truncated;
    const char *skip;           /* hearthd's data dir: never indexed */
    indexer *x;                 /* for its inotify watches */
};

#define WATCH_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | \
                      IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

static void watch_dir(indexer *x, const char *dir)
{
    if (x->ino < 0 || atomic_load(&x->watch_full))
        return;
    if (inotify_add_watch(x->ino, dir, WATCH_EVENTS) < 0 && errno == ENOSPC &&
        !atomic_exchange(&x->watch_full, true))
        log_warn("index: the kernel's inotify watch limit is reached (fs.inotify."
                 "max_user_watches); changes in further folders are seen at the next walk "
                 "(index-scan-interval)");
}

static bool skipped_name(const char *name)
{
    return name[0] == '.' || !strcmp(name, "node_modules") || !strcmp(name, "__pycache__");
}

/* A file without an extension is text only if its first bytes say so. */
static bool sniff_text(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return false;
    char b[512];
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    return n > 0 && !text_looks_binary(b, (size_t)n);
}

static void walk_dir(struct walk *w, const char *dir, int depth)
{
    if (depth > WALK_MAX_DEPTH || w->truncated)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    watch_dir(w->x, dir);
    struct dirent *e;
    while ((e = readdir(d)) && !w->truncated) {
        if (skipped_name(e->d_name))
            continue;
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            continue;
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (!w->skip || strcmp(path, w->skip))
                walk_dir(w, path, depth + 1);   /* symlinked folders are not followed */
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        text_kind k = text_kind_of(e->d_name);
        if (k == TK_NONE || st.st_size == 0)
            continue;
        if (k == TK_TEXT && !strchr(e->d_name + 1, '.') && !sniff_text(path))
            continue;
        if (w->n == WALK_MAX_FILES) {
            w->truncated = true;
            break;
        }
        if (w->n == w->cap) {
            size_t nc = w->cap ? w->cap * 2 : 256;
            idb_seen *g = realloc(w->files, nc * sizeof *g);
            if (!g) {
                w->truncated = true;
                break;
            }
            w->files = g;
            w->cap = nc;
        }
        char *copy = strdup(path);
        if (!copy) {
            w->truncated = true;
            break;
        }
        w->files[w->n++] = (idb_seen){ copy, (int64_t)st.st_size, (int64_t)st.st_mtime,
                                       text_kind_name(k) };
    }
    closedir(d);
}

static void scan_all(indexer *x)
{
    idb_folder *f = NULL;
    size_t nf = 0;
    if (idb_folders(x->db, &f, &nf) < 0) {
        log_error("index: cannot read the watched folders");
        return;
    }
    pthread_mutex_lock(&x->mu);
    x->act.scanning = true;
    pthread_mutex_unlock(&x->mu);
    char data[PATH_MAX];
    bool have_data = realpath(atomic_load(&x->cfg)->data_dir, data) != NULL;
    for (size_t i = 0; i < nf && !stopping(x); i++) {
        struct stat st;
        if (stat(f[i].path, &st) < 0 || !S_ISDIR(st.st_mode)) {
            /* unplugged or unmounted: keep what is indexed rather than
             * forget a whole folder because a disk is away */
            log_warn("index: watched folder %s is not there (%s); its documents are kept",
                     f[i].path, strerror(errno ? errno : ENOTDIR));
            continue;
        }
        struct walk w = { .skip = have_data ? data : NULL, .x = x };
        walk_dir(&w, f[i].path, 0);
        if (w.truncated)
            log_warn("index: %s holds more than %d files (or memory ran short); the rest are "
                     "not indexed", f[i].path, WALK_MAX_FILES);
        int added = 0, removed = 0;
        if (idb_scan(x->db, f[i].id, w.files, w.n, now_s(), &added, &removed) < 0)
            log_error("index: cannot record the walk of %s", f[i].path);
        else if (added || removed)
            log_info("index: %s: %zu files, %d new or changed, %d gone", f[i].path, w.n, added,
                     removed);
        for (size_t k = 0; k < w.n; k++)
            free((char *)w.files[k].path);
        free(w.files);
    }
    idb_folders_free(f, nf);
    pthread_mutex_lock(&x->mu);
    x->act.scanning = false;
    x->act.last_scan = now_s();
    pthread_mutex_unlock(&x->mu);
}

/* ---- models -------------------------------------------------------------- */

/* Run one request on a model (like an HTTP handler would) and collect its
 * whole output. 0, or an HTTP status with err (503 also when stopping). */
static int run_model(indexer *x, const char *model, int kind, buf *payload, buf *out, char *err,
                     size_t el, int *retry_after)
{
    size_t n = 0;
    char *p = buf_detach(payload, &n);
    job *j = p ? job_new("index", model, p, n) : NULL;
    if (!j) {
        snprintf(err, el, "out of memory");
        return 500;
    }
    j->want_kind = kind;
    *retry_after = 0;
    int rc = sched_submit(x->s, j, err, el, retry_after);
    if (rc) {
        job_unref(j);
        return rc;
    }
    uint64_t seen = 0;
    job_status st;
    for (;;) {
        job_wait(j, &seen, 250);
        job_take(j, out, &st);
        if (st.phase == JOB_DONE)
            break;
        if (st.phase == JOB_FAILED) {
            snprintf(err, el, "%s", st.err_msg[0] ? st.err_msg : "the model failed");
            rc = st.err_status >= 400 ? st.err_status : 500;
            break;
        }
        if (stopping(x)) {
            sched_cancel(x->s, j);
            snprintf(err, el, "hearthd is stopping");
            rc = 503;
            break;
        }
    }
    job_unref(j);
    return rc;
}

/* The model a document of kind needs: "" when none is configured. */
static void model_for(indexer *x, text_kind k, char *name, size_t n)
{
    const config *c = atomic_load(&x->cfg);
    name[0] = 0;
    if (k == TK_IMAGE) {
        for (size_t i = 0; i < c->nmodels; i++)
            if (!strcmp(c->models[i].name, "ocr"))
                snprintf(name, n, "ocr");
        return;
    }
    if (c->index_asr_model) {
        snprintf(name, n, "%s", c->index_asr_model);
        return;
    }
    for (size_t i = 0; i < sched_model_count(x->s) && !name[0]; i++) {
        model_info mi;
        if (sched_model_info(x->s, i, &mi) == 0 && mi.kind == MODEL_KIND_TRANSCRIPTION)
            snprintf(name, n, "%s", mi.name);
    }
}

/* The "text" of a worker's JSON answer into text. 0 or -1. */
static int answer_text(const buf *ans, buf *text)
{
    /* a node per word box and number: far more than the text's bytes */
    arena *a = arena_new(ans->len * 64 + (1u << 20));
    const json *o = a ? json_parse(a, ans->data ? ans->data : "", ans->len, NULL, 0) : NULL;
    const json *t = json_get(o, "text");
    int rc = t && t->type == JSON_STRING ? buf_append(text, t->str, t->len) : -1;
    arena_free(a);
    return rc < 0 ? -1 : 0;
}

/* ---- one document -------------------------------------------------------- */

/* Why an attempt ended without chunks. */
struct failure {
    int status;                 /* 0: none; 4xx: the file; 503: not now; else retry */
    int retry_after;
    char msg[300];
};

static void fail_with(struct failure *f, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_with(struct failure *f, int status, const char *fmt, ...)
{
    f->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
}

/* The document's text, cleaned, into text. */
static void extract(indexer *x, const idb_doc *d, buf *text, struct failure *f)
{
    const config *c = atomic_load(&x->cfg);
    text_kind k = !strcmp(d->kind, "html") ? TK_HTML : !strcmp(d->kind, "image") ? TK_IMAGE
                  : !strcmp(d->kind, "audio") ? TK_AUDIO : TK_TEXT;
    struct stat st;
    if (lstat(d->path, &st) < 0 || !S_ISREG(st.st_mode)) {
        fail_with(f, 404, "the file is gone");
        return;
    }
    if (k == TK_TEXT || k == TK_HTML) {
        if ((uint64_t)st.st_size > c->index_max_file) {
            fail_with(f, 413, "the file is larger than index-max-file (%lld bytes)",
                      (long long)c->index_max_file);
            return;
        }
        /* not blocking: the file was a regular one when checked, but a
         * FIFO put in its place meanwhile must not hang the indexer */
        int fd = open(d->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        char *raw = fd >= 0 ? malloc((size_t)st.st_size + 1) : NULL;
        ssize_t got = 0;
        while (raw && got < st.st_size) {
            ssize_t r = read(fd, raw + got, (size_t)(st.st_size - got));
            if (r <= 0)
                break;
            got += r;
        }
        if (fd >= 0)
            close(fd);
        if (!raw) {
            fail_with(f, fd < 0 ? 403 : 500, "%s", fd < 0 ? strerror(errno) : "out of memory");
            return;
        }
        if (text_looks_binary(raw, (size_t)got))
            fail_with(f, 415, "not a text file (it holds NUL bytes)");
        else if (text_clean(text, raw, (size_t)got, k == TK_HTML) < 0)
            fail_with(f, 500, "out of memory");
        free(raw);
        return;
    }
    if ((uint64_t)st.st_size > c->max_upload) {
        fail_with(f, 413, "the file is larger than max-upload (%zu bytes)", c->max_upload);
        return;
    }
    char model[MODEL_NAME_MAX + 1];
    model_for(x, k, model, sizeof model);
    if (!model[0]) {
        fail_with(f, 424, k == TK_IMAGE ? "no OCR model: install tesseract-ocr-eng or set tessdata"
                                        : "no transcription model is configured (index-asr-model)");
        return;
    }
    buf fields = buf_make(0), payload = buf_make(0), ans = buf_make(JOB_TEXT_CAP);
    buf_puts(&fields, k == TK_IMAGE ? "{\"kind\":\"ocr\"}"
                                    : "{\"kind\":\"transcription\",\"translate\":false}");
    if (job_payload(&payload, fields.data, d->path) < 0)
        fail_with(f, 500, "out of memory");
    else {
        char err[300] = "";
        int rc = run_model(x, model, k == TK_IMAGE ? MODEL_KIND_OCR : MODEL_KIND_TRANSCRIPTION,
                           &payload, &ans, err, sizeof err, &f->retry_after);
        if (rc)
            fail_with(f, rc, "%s: %s", model, err);
        else {
            buf raw = buf_make(0);
            if (answer_text(&ans, &raw) < 0)
                fail_with(f, 502, "%s gave an answer without text", model);
            else if (text_clean(text, raw.data ? raw.data : "", raw.len, false) < 0)
                fail_with(f, 500, "out of memory");
            buf_free(&raw);
        }
    }
    buf_free(&fields);
    buf_free(&payload);
    buf_free(&ans);
}

/* Vectors for inputs[0..n) from model, dim floats each into vecs (malloc'd).
 * An input too long for the model is embedded by its first half, then
 * quarter. 0 or fills f. */
static int embed(indexer *x, const char *model, idb_chunk_in *c, size_t n, float **vecs, int *dim,
                 struct failure *f)
{
    *vecs = NULL;
    *dim = 0;
    for (size_t i = 0; i < n;) {
        size_t m = n - i < EMBED_BATCH ? n - i : EMBED_BATCH;
        size_t cut[EMBED_BATCH];
        for (size_t k = 0; k < m; k++)
            cut[k] = c[i + k].len;
        int rc = 0;
        char err[300] = "";
        buf ans = buf_make(JOB_TEXT_CAP);
        for (int shrink = 0; shrink < 4; shrink++) {
            buf p = buf_make(0);
            buf_puts(&p, "{\"kind\":\"embedding\",\"input\":[");
            for (size_t k = 0; k < m; k++) {
                if (k)
                    buf_putc(&p, ',');
                jw_str(&p, c[i + k].text, cut[k]);
            }
            buf_puts(&p, "]}");
            buf_reset(&ans);
            rc = run_model(x, model, MODEL_KIND_EMBEDDING, &p, &ans, err, sizeof err,
                           &f->retry_after);
            buf_free(&p);
            if (rc != 400 || !strstr(err, "tokens"))
                break;
            /* too many tokens for the model: halve every input of the batch
             * (at a character edge) and try again */
            for (size_t k = 0; k < m; k++) {
                size_t h = cut[k] / 2;
                while (h > 0 && ((unsigned char)c[i + k].text[h] & 0xC0) == 0x80)
                    h--;
                cut[k] = h ? h : cut[k];
            }
        }
        if (rc) {
            fail_with(f, rc == 400 ? 422 : rc, "%s: %s", model, err);
            buf_free(&ans);
            return -1;
        }
        size_t per = ans.len / m;
        if (!per || per % sizeof(float) || per * m != ans.len || (*dim && per / 4 != (size_t)*dim)) {
            fail_with(f, 502, "%s gave malformed embeddings", model);
            buf_free(&ans);
            return -1;
        }
        if (!*vecs) {
            *dim = (int)(per / sizeof(float));
            if (!(*vecs = malloc(n * per))) {
                fail_with(f, 500, "out of memory");
                buf_free(&ans);
                return -1;
            }
        }
        memcpy(*vecs + i * (size_t)*dim, ans.data, ans.len);
        buf_free(&ans);
        i += m;
    }
    return 0;
}

static void index_one(indexer *x, idb_doc *d)
{
    const config *c = atomic_load(&x->cfg);
    char embed_model[MODEL_NAME_MAX + 1] = "";
    if (c->index_embed_model)
        snprintf(embed_model, sizeof embed_model, "%s", c->index_embed_model);
    struct failure f = { 0 };
    buf text = buf_make((size_t)c->index_max_file * 2 + JOB_TEXT_CAP);
    text_chunk *tc = NULL;
    idb_chunk_in *in = NULL;
    uint64_t *seen = NULL;
    float *vecs = NULL;
    int dim = 0, dropped = 0;
    size_t kept = 0;

    extract(x, d, &text, &f);
    long nc = f.status ? 0 : text_chunks(text.data ? text.data : "", text.len, &tc);
    if (nc < 0)
        fail_with(&f, 500, "out of memory");
    if (!f.status && nc > 0) {
        in = calloc((size_t)nc, sizeof *in);
        seen = calloc((size_t)nc, sizeof *seen);
        if (!in || !seen)
            fail_with(&f, 500, "out of memory");
        size_t nseen = 0;
        for (long i = 0; !f.status && i < nc; i++) {
            const char *p = text.data + tc[i].start;
            size_t len = tc[i].end - tc[i].start;
            if (text_hygiene(p, len, seen, &nseen)) {
                dropped++;
                continue;
            }
            in[kept++] = (idb_chunk_in){ p, len, tc[i].line0, tc[i].line1, NULL };
        }
    }
    if (!f.status && kept && embed_model[0] && embed(x, embed_model, in, kept, &vecs, &dim, &f) == 0)
        for (size_t i = 0; i < kept; i++)
            in[i].vec = vecs + i * (size_t)dim;

    double now = now_s();
    if (!f.status) {
        if (idb_store(x->db, d, in, kept, dropped, embed_model[0] ? embed_model : NULL, dim,
                      now) < 0)
            log_error("index: cannot store the chunks of %s", d->path);
        else {
            log_info("index: %s: %zu chunks (%d dropped by hygiene)%s", d->path, kept, dropped,
                     vecs ? ", with vectors" : "");
            pthread_mutex_lock(&x->mu);
            x->act.indexed_since_start++;
            pthread_mutex_unlock(&x->mu);
        }
    } else if (f.status == 503) {
        /* not now: no memory in time, a model in back-off, hearthd
         * stopping. The attempt does not count. */
        idb_release(x->db, d, now + (f.retry_after > 0 ? f.retry_after : BUSY_WAIT_S));
    } else {
        /* 4xx: the file itself (binary, too large, refused by the model):
         * failed until it changes. Else (a crash, a bad answer): retried,
         * dead after job-attempts. */
        bool retry = !(f.status >= 400 && f.status < 500);
        idb_fail(x->db, d, retry, c->job_attempts, c->job_retry_delay, f.msg, now);
        bool dead = retry && d->attempts >= c->job_attempts;
        if (retry && !dead)
            log_warn("index: %s: %s (attempt %d of %d)", d->path, f.msg, d->attempts,
                     c->job_attempts);
        else
            log_error("index: %s is %s: %s", d->path, dead ? "dead" : "not indexed", f.msg);
        pthread_mutex_lock(&x->mu);
        x->act.failed_since_start++;
        pthread_mutex_unlock(&x->mu);
    }
    free(vecs);
    free(seen);
    free(in);
    free(tc);
    buf_free(&text);
}

/* ---- the thread ---------------------------------------------------------- */

static void *loop(void *arg)
{
    indexer *x = arg;
    log_set_rid("index");
    double next_scan = 0;
    for (;;) {
        pthread_mutex_lock(&x->mu);
        bool stop = x->stop, scan = x->scan_now, retry = x->retry_now;
        x->scan_now = x->retry_now = false;
        pthread_mutex_unlock(&x->mu);
        if (stop)
            break;
        double now = now_s();
        if (retry)
            idb_retry_all(x->db);
        if (scan || now >= next_scan) {
            scan_all(x);
            next_scan = now_s() + atomic_load(&x->cfg)->index_scan_interval;
        }
        idb_doc d;
        int got = idb_claim(x->db, now_s(), &d);
        if (got == 1) {
            pthread_mutex_lock(&x->mu);
            snprintf(x->act.current, sizeof x->act.current, "%s", d.path);
            pthread_mutex_unlock(&x->mu);
            index_one(x, &d);
            pthread_mutex_lock(&x->mu);
            x->act.current[0] = 0;
            pthread_mutex_unlock(&x->mu);
            idb_doc_free(&d);
            continue;
        }
        if (got < 0)
            log_error("index: cannot read the queue of files to index");
        /* sleep until the next scan, the next retry that is due, or a wake */
        double until = next_scan, due = idb_next_due(x->db);
        if (due >= 0 && due < until)
            until = due;
        if (got < 0 && until > now_s() + 5)
            until = now_s() + 5;
        struct timespec ts;
        double w = until > now_s() ? until : now_s() + 0.05;
        ts.tv_sec = (time_t)w;
        ts.tv_nsec = (long)((w - (double)ts.tv_sec) * 1e9);
        pthread_mutex_lock(&x->mu);
        if (!x->stop && !x->scan_now && !x->retry_now)
            pthread_cond_timedwait(&x->cv, &x->mu, &ts);
        pthread_mutex_unlock(&x->mu);
    }
    log_set_rid(NULL);
    return NULL;
}

/* Changes in watched folders: after a burst of events has been quiet for
 * WATCH_QUIET_MS (or went on for WATCH_MAX_MS), one walk. */
#define WATCH_QUIET_MS 700
#define WATCH_MAX_MS   5000

static void *watch_loop(void *arg)
{
    indexer *x = arg;
    char ev[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    double first = 0;
    while (!stopping(x)) {
        struct pollfd p = { x->ino, POLLIN, 0 };
        int r = poll(&p, 1, first ? WATCH_QUIET_MS : 500);
        double now = now_s();
        if (r > 0) {
            while (read(x->ino, ev, sizeof ev) > 0)
                ;               /* which file does not matter: the walk compares all */
            if (!first)
                first = now;
            if ((now - first) * 1000 < WATCH_MAX_MS)
                continue;
        }
        if (first) {
            first = 0;
            indexer_rescan(x, false);
        }
    }
    return NULL;
}

indexer *indexer_start(const config *cfg, sched *s, char *err, size_t errlen)
{
    indexer *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/index.db", cfg->data_dir);
    if (!(x->db = idb_open(path, err, errlen))) {
        free(x);
        return NULL;
    }
    atomic_init(&x->cfg, cfg);
    x->s = s;
    x->ino = -1;
    pthread_mutex_init(&x->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&x->cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(x->act.embed_model, sizeof x->act.embed_model, "%s",
             cfg->index_embed_model ? cfg->index_embed_model : "");
    int requeued = idb_recover(x->db, cfg->index_embed_model);
    if (requeued > 0)
        log_info("index: %d document(s) to index again for embedding model %s", requeued,
                 cfg->index_embed_model ? cfg->index_embed_model : "(none)");
    x->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (x->ino < 0)
        log_warn("index: no inotify (%s); changes are seen at each walk", strerror(errno));
    else if (pthread_create(&x->watcher, NULL, watch_loop, x) == 0)
        x->watching = true;
    if (pthread_create(&x->th, NULL, loop, x) != 0) {
        snprintf(err, errlen, "cannot start the indexer thread");
        indexer_free(x);
        return NULL;
    }
    x->started = true;
    return x;
}

void indexer_set_config(indexer *x, const config *cfg)
{
    if (!x)
        return;
    const config *old = atomic_exchange(&x->cfg, cfg);
    const char *a = old->index_embed_model ? old->index_embed_model : "";
    const char *b = cfg->index_embed_model ? cfg->index_embed_model : "";
    pthread_mutex_lock(&x->mu);
    snprintf(x->act.embed_model, sizeof x->act.embed_model, "%s", b);
    pthread_mutex_unlock(&x->mu);
    if (strcmp(a, b)) {
        int n = idb_recover(x->db, cfg->index_embed_model);
        log_info("index: embedding model now %s: %d document(s) to index again", *b ? b : "none",
                 n);
    }
    /* a new configuration may have what failed files lacked (a model,
     * a larger index-max-file): they get another chance */
    indexer_rescan(x, true);
}

void indexer_stop(indexer *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    if (x->started)
        pthread_join(x->th, NULL);
    if (x->watching)
        pthread_join(x->watcher, NULL);
    x->started = x->watching = false;
}

void indexer_free(indexer *x)
{
    if (!x)
        return;
    indexer_stop(x);
    if (x->ino >= 0)
        close(x->ino);
    idb_close(x->db);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

idb *indexer_db(indexer *x)
{
    return x->db;
}

/* a inside b, or the same folder */
static bool within(const char *a, const char *b)
{
    size_t n = strlen(b);
    return !strncmp(a, b, n) && (a[n] == 0 || a[n] == '/' || (n == 1 && b[0] == '/'));
}

int indexer_add_folder(indexer *x, const char *path, char *canon, size_t canonlen, char *err,
                       size_t errlen)
{
    if (path[0] != '/') {
        snprintf(err, errlen, "the folder must be an absolute path");
        return 400;
    }
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(path, real) || stat(real, &st) < 0) {
        snprintf(err, errlen, "cannot open the folder: %s", strerror(errno));
        return 400;
    }
    if (!S_ISDIR(st.st_mode) || access(real, R_OK | X_OK) < 0) {
        snprintf(err, errlen, S_ISDIR(st.st_mode) ? "hearthd cannot read that folder"
                                                  : "not a folder");
        return 400;
    }
    /* any API key can add a folder: only those inside the allowed roots
     * (index-roots, default hearthd's home), never all of the machine */
    const config *c = atomic_load(&x->cfg);
    const char *roots = c->index_roots ? c->index_roots : getenv("HOME");
    if (!roots || strcmp(roots, "any")) {
        bool inside = false;
        char *copy = strdup(roots ? roots : "");
        for (char *save = NULL, *r = copy ? strtok_r(copy, ":", &save) : NULL; r && !inside;
             r = strtok_r(NULL, ":", &save)) {
            char rr[PATH_MAX];
            inside = realpath(r, rr) && within(real, rr);
        }
        free(copy);
        if (!inside) {
            snprintf(err, errlen, "that folder is outside index-roots (%s)",
                     c->index_roots ? "as configured" : "hearthd's home folder by default");
            return 403;
        }
    }
    /* hearthd's own files (the index, logs, uploads) never index themselves */
    char data[PATH_MAX];
    if (realpath(atomic_load(&x->cfg)->data_dir, data) &&
        (within(real, data) || within(data, real))) {
        snprintf(err, errlen, "that folder %s hearthd's data dir", within(real, data) ? "is inside"
                 : "holds");
        return 400;
    }
    idb_folder *f = NULL;
    size_t nf = 0;
    if (idb_folders(x->db, &f, &nf) < 0) {
        snprintf(err, errlen, "cannot read the index");
        return 500;
    }
    int rc = 0;
    for (size_t i = 0; i < nf && !rc; i++) {
        if (!strcmp(f[i].path, real))
            continue;           /* already watched: adding it again only rescans */
        if (within(real, f[i].path) || within(f[i].path, real)) {
            snprintf(err, errlen, "%s is %s %s, which is watched already", real,
                     within(real, f[i].path) ? "inside" : "around", f[i].path);
            rc = 409;
        }
    }
    idb_folders_free(f, nf);
    if (rc)
        return rc;
    if (idb_folder_add(x->db, real, now_s()) < 0) {
        snprintf(err, errlen, "cannot write the index");
        return 500;
    }
    snprintf(canon, canonlen, "%s", real);
    log_info("index: watching %s", real);
    indexer_rescan(x, false);
    return 0;
}

int indexer_remove_folder(indexer *x, const char *path)
{
    char real[PATH_MAX];
    bool resolved = realpath(path, real) != NULL;
    int rc = idb_folder_remove(x->db, resolved ? real : path);
    /* a folder deleted from disk is forgotten by the name it was added as */
    if (rc == 0 && resolved && strcmp(real, path))
        rc = idb_folder_remove(x->db, path);
    if (rc == 1)
        log_info("index: no longer watching %s", path);
    return rc;
}

void indexer_rescan(indexer *x, bool retry)
{
    pthread_mutex_lock(&x->mu);
    x->scan_now = true;
    x->retry_now |= retry;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

void indexer_get_activity(indexer *x, indexer_activity *out)
{
    pthread_mutex_lock(&x->mu);
    *out = x->act;
    pthread_mutex_unlock(&x->mu);
}
