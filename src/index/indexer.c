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
#include <linux/openat2.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "index/ignore.h"
#include "index/watches.h"
#include "index/text.h"
#include "sched/job.h"

#define WALK_MAX_DEPTH  32
#define WALK_MAX_FILES  200000      /* per folder */
#define EMBED_BATCH     32
#define BUSY_WAIT_S     5           /* after a 503 without Retry-After */
#define WITHDRAW_GRACE_MS 10000     /* a worker's time to let go of a cancelled job */
#define IGNORE_WARNED   32          /* ignore files remembered as warned about */
#define CHANGED_MAX     64          /* folders inotify asks to walk; past it, all */

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
    watches *watches;           /* its watches by folder (NULL without inotify) */
    uint64_t walk_gen;          /* walks of folders so far (the indexer's thread) */
    pthread_t watcher;
    bool watching;
    atomic_bool watch_full;     /* the kernel's watch limit was reached (logged once) */
    /* folders to walk because inotify saw a change in them (under mu);
     * scan_now walks them all */
    int64_t changed[CHANGED_MAX];
    size_t nchanged;
    /* hearthd's own files, which the walk never takes: the data dir (as
     * started), the config file and the API key file (as last loaded);
     * device and inode, so no path spelling gets around them */
    pthread_mutex_t own_mu;
    struct own { dev_t dev; ino_t ino; bool set; } own[3];
    char data_real[PATH_MAX];   /* the data dir as started, resolved ("" unknown) */
    pthread_mutex_t add_mu;     /* adding folders: the overlap check and the insert */
    /* ignore files already warned about (unreadable, past a cap), so that
     * the same file does not warn at every walk; the indexer's thread only */
    struct warned { dev_t dev; ino_t ino; int64_t mtime; } warned[IGNORE_WARNED];
    int warned_next;
};

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
    bool truncated;             /* the file cap was reached (or memory ran short) */
    bool incomplete;            /* a subfolder could not be read: vanished files unknown */
    size_t ignored;             /* entries left out by ignore files or excludes */
    size_t root_len;            /* the folder's path length: paths past it are relative */
    ignore_stack ig;            /* the ignore files of the folders walked into */
    indexer *x;                 /* for its inotify watches and own files */
    int64_t folder;             /* the watched folder's id, for its watches */
};

#define WATCH_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | \
                      IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

/* Watch dir, or mark its watch seen by this walk (a folder watched
 * already keeps its watch: the kernel gives it back). Past the kernel's
 * limit the folders watched already stay watched; the warning is said once
 * until watches are freed. */
static void watch_dir(indexer *x, const char *dir, int64_t folder)
{
    if (!x->watches)
        return;
    if (watches_add(x->watches, dir, WATCH_EVENTS, folder, x->walk_gen) < 0 && errno == ENOSPC &&
        !atomic_exchange(&x->watch_full, true))
        log_warn("index: the kernel's inotify watch limit is reached (fs.inotify."
                 "max_user_watches); changes in further folders are seen at the next walk "
                 "(index-scan-interval)");
}

static bool skipped_name(const char *name)
{
    return name[0] == '.' || !strcmp(name, "node_modules") || !strcmp(name, "__pycache__");
}

static bool is_own(indexer *x, const struct stat *st)
{
    pthread_mutex_lock(&x->own_mu);
    bool own = false;
    for (int i = 0; i < 3 && !own; i++)
        own = x->own[i].set && x->own[i].dev == st->st_dev && x->own[i].ino == st->st_ino;
    pthread_mutex_unlock(&x->own_mu);
    return own;
}

static void set_own(indexer *x, int i, const char *path)
{
    struct stat st;
    pthread_mutex_lock(&x->own_mu);
    x->own[i].set = path && stat(path, &st) == 0;
    if (x->own[i].set) {
        x->own[i].dev = st.st_dev;
        x->own[i].ino = st.st_ino;
    }
    pthread_mutex_unlock(&x->own_mu);
}

/* When a file last changed, in nanoseconds: its content (mtime) or its
 * metadata (ctime: a chmod that makes it private, a rename), so a change
 * within the same second, or of permissions alone, is seen too. */
static int64_t mtime_ns(const struct stat *st)
{
    int64_t m = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    int64_t c = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
    return m > c ? m : c;
}

/* A file without an extension is text only if its first bytes say so. */
static bool sniff_text(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return false;
    char b[512];
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    return n > 0 && !text_looks_binary(b, (size_t)n);
}

/* path relative to the walked folder's root ("" for the root itself) */
static const char *relative(const struct walk *w, const char *path)
{
    const char *r = path + w->root_len;
    while (*r == '/')
        r++;
    return r;
}

/* Whether an ignore file's trouble was told already: the same file
 * unchanged is not warned about at every walk (the indexer's thread alone
 * walks, so no lock). */
static bool warned_before(indexer *x, const struct stat *st)
{
    for (int i = 0; i < IGNORE_WARNED; i++)
        if (x->warned[i].dev == st->st_dev && x->warned[i].ino == st->st_ino &&
            x->warned[i].mtime == mtime_ns(st))
            return true;
    x->warned[x->warned_next] = (struct warned){ st->st_dev, st->st_ino, mtime_ns(st) };
    x->warned_next = (x->warned_next + 1) % IGNORE_WARNED;
    return false;
}

/* The .gitignore and .hearthignore of the folder open as dfd, named dir,
 * as one list (the .hearthignore's lines last); NULL when it has none.
 * *unreadable when one is there but cannot be read. */
static ignore_rules *load_ignores(indexer *x, int dfd, const char *dir, bool *unreadable)
{
    static const char *const names[] = { IGNORE_FILE_GIT, IGNORE_FILE_HEARTH };
    ignore_rules *r = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !*unreadable; i++) {
        struct stat st;
        if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;           /* none, or a symlink or a FIFO: not read */
        ignore_report rep = { 0 };
        if ((!r && !(r = ignore_rules_new())) || ignore_rules_load(r, dfd, names[i], &rep) < 0) {
            if (!warned_before(x, &st))
                log_warn("index: cannot read %s/%s (%s); that folder is not indexed until it "
                         "can be", dir, names[i], r ? strerror(errno) : "out of memory");
            *unreadable = true;
            break;
        }
        if ((rep.truncated || rep.invalid || rep.too_long || rep.over_cap) &&
            !warned_before(x, &st))
            log_warn("index: %s/%s: %s%zu pattern(s) used; %zu invalid, %zu longer than %d "
                     "bytes, %zu past the cap of %d patterns", dir, names[i],
                     rep.truncated ? "longer than 64 KiB, its end unread; " : "", rep.added,
                     rep.invalid, rep.too_long, IGNORE_MAX_PATTERN, rep.over_cap,
                     IGNORE_MAX_PATTERNS);
    }
    return r;
}

/* Walk the folder open as dfd (taken: closed here), named dir. Entries are
 * examined relative to their folder's descriptor and subfolders opened
 * with O_NOFOLLOW, so a symlink swapped in for a folder mid-walk is not
 * followed out of the watched tree. */
static void walk_dir(struct walk *w, int dfd, const char *dir, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        w->incomplete = true;
        return;
    }
    /* this folder's ignore files hold for it and below; one that cannot
     * be read keeps the folder out (what it leaves out is not known), and
     * what was indexed from it is kept until a walk reads it */
    bool unreadable = false;
    ignore_rules *rules = load_ignores(w->x, dirfd(d), dir, &unreadable);
    if (unreadable || ignore_stack_push(&w->ig, rules, strlen(relative(w, dir))) < 0) {
        if (!unreadable)
            rules = NULL;       /* the push freed them */
        ignore_rules_free(rules);
        w->incomplete = true;
        closedir(d);
        return;
    }
    watch_dir(w->x, dir, w->folder);
    struct dirent *e;
    errno = 0;
    while (!w->truncated && (e = readdir(d))) {
        if (skipped_name(e->d_name))
            continue;
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            w->incomplete |= errno != ENOENT;
            continue;
        }
        if (is_own(w->x, &st))
            continue;
        if ((S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) &&
            ignore_stack_excludes(&w->ig, relative(w, path), S_ISDIR(st.st_mode))) {
            w->ignored++;       /* a folder left out is not walked into */
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth + 1 > WALK_MAX_DEPTH)
                continue;
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                w->incomplete |= errno != ENOENT;
            else
                walk_dir(w, sub, path, depth + 1);
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        text_kind k = text_kind_of(e->d_name);
        if (k == TK_NONE || st.st_size == 0)
            continue;
        if (k == TK_TEXT && !strchr(e->d_name + 1, '.') && !sniff_text(dirfd(d), e->d_name))
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
        w->files[w->n++] = (idb_seen){ copy, (int64_t)st.st_size, mtime_ns(&st),
                                       text_kind_name(k) };
    }
    ignore_stack_pop(&w->ig);
    closedir(d);
}

static bool has_id(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Walk the watched folders: all of them (nonly 0), or those of only[]. */
static void scan_folders(indexer *x, const int64_t *only, size_t nonly)
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
    x->walk_gen++;
    int64_t *ids = calloc(nf ? nf : 1, sizeof *ids);
    for (size_t i = 0; ids && i < nf; i++)
        ids[i] = f[i].id;
    /* watches of folders no longer watched go */
    if (x->watches && ids) {
        int gone = nonly ? 0 : watches_keep_only(x->watches, ids, nf);
        for (size_t i = 0; i < nonly; i++)
            if (!has_id(ids, nf, only[i]))
                gone += watches_drop_folder(x->watches, only[i]);
        if (gone) {
            log_debug("index: %d watch(es) of folders no longer watched removed", gone);
            atomic_store(&x->watch_full, false);
        }
    }
    free(ids);
    for (size_t i = 0; i < nf && !stopping(x); i++) {
        if (nonly && !has_id(only, nonly, f[i].id))
            continue;
        int fd = open(f[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            /* unplugged or unmounted: keep what is indexed rather than
             * forget a whole folder because a disk is away */
            log_warn("index: watched folder %s cannot be opened (%s); its documents are kept",
                     f[i].path, strerror(errno));
            continue;
        }
        /* the folder's own excludes come first (ignore.h) */
        ignore_rules *excludes = ignore_rules_new();
        ignore_report rep = { 0 };
        if (excludes && f[i].exclude)
            ignore_rules_parse(excludes, f[i].exclude, strlen(f[i].exclude), &rep);
        struct walk w = { .x = x, .root_len = strlen(f[i].path), .folder = f[i].id };
        ignore_stack_init(&w.ig, excludes);
        /* without all of its excludes, a walk could take what they leave
         * out (the API checked them: only memory can fail here) */
        if (!excludes || !f[i].exclude || rep.over_cap) {
            log_error("index: out of memory reading the exclude patterns of %s; not walked",
                      f[i].path);
            ignore_rules_free(excludes);
            close(fd);
            continue;
        }
        walk_dir(&w, fd, f[i].path, 0);
        ignore_stack_clear(&w.ig);
        ignore_rules_free(excludes);
        if (w.truncated)
            log_warn("index: %s holds more than %d files (or memory ran short); the rest are "
                     "not indexed", f[i].path, WALK_MAX_FILES);
        if (w.incomplete)
            log_warn("index: some folders in %s could not be read; files missing from them "
                     "are kept until a walk reads them", f[i].path);
        /* a folder that held files and is empty now is more likely an
         * unmounted disk (its empty mount point) than every file deleted:
         * keep them; removing the folder from the index forgets them.
         * (Files left out by ignore rules show that the folder is there.) */
        bool emptied = w.n == 0 && w.ignored == 0 && f[i].docs > 0;
        if (emptied)
            log_warn("index: %s is empty now; its %lld indexed file(s) are kept (a disk away?). "
                     "If they were deleted, remove the folder: hearth index rm", f[i].path,
                     (long long)f[i].docs);
        bool complete = !w.truncated && !w.incomplete && !emptied;
        /* subfolders this walk did not enter (gone, or ignored now) are
         * watched no longer */
        if (x->watches && !w.truncated && !w.incomplete) {
            int gone = watches_prune(x->watches, f[i].id, x->walk_gen);
            if (gone) {
                log_debug("index: %s: %d watch(es) of subfolders gone or ignored removed",
                          f[i].path, gone);
                atomic_store(&x->watch_full, false);    /* room again: warn anew */
            }
        }
        int added = 0, removed = 0;
        if (idb_scan(x->db, f[i].id, w.files, w.n, complete, clock_wall_s(), &added, &removed) < 0)
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
    x->act.last_scan = clock_wall_s();
    pthread_mutex_unlock(&x->mu);
}

/* ---- models -------------------------------------------------------------- */

/* Run one request on a model (like an HTTP handler would) and collect its
 * whole output. 0, or an HTTP status with err: 503 also when stopping,
 * 504 when it ran in its worker longer than job-timeout. */
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
    double began = 0;
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
        if (st.dispatched && began == 0)
            began = clock_mono_s();       /* the time in the model's queue does not count */
        int limit = atomic_load(&x->cfg)->job_timeout;
        if (limit > 0 && began > 0 && clock_mono_s() - began > limit) {
            sched_withdraw(x->s, j, WITHDRAW_GRACE_MS);
            snprintf(err, el, "it ran longer than job-timeout (%d s) and was stopped", limit);
            rc = 504;
            break;
        }
        if (stopping(x)) {
            sched_withdraw(x->s, j, WITHDRAW_GRACE_MS);
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

/* The "text" of a worker's JSON answer into text. With times (a
 * transcript), its segments instead, one a line, with their seconds. 0 or
 * -1. */
static int answer_text(const buf *ans, buf *text, double **times, long *nlines)
{
    /* a node per word box and number: far more than the text's bytes */
    arena *a = arena_new(ans->len * 64 + (1u << 20));
    const json *o = a ? json_parse(a, ans->data ? ans->data : "", ans->len, NULL, 0) : NULL;
    const json *t = json_get(o, "text"), *segs = json_get(o, "segments");
    int rc;
    if (times && segs && segs->type == JSON_ARRAY && segs->len) {
        long n = text_from_segments(segs, text, times);
        rc = n < 0 ? -1 : 0;
        *nlines = n < 0 ? 0 : n;
    } else
        rc = t && t->type == JSON_STRING ? buf_append(text, t->str, t->len) : -1;
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

/* Open a file of a watched folder for reading: no symlink anywhere in its
 * path (a folder on the way swapped for a symlink to ~/.ssh after the walk
 * must not be followed), not blocking (a FIFO swapped in must not hang
 * the indexer). */
static int open_file(const char *path)
{
#ifdef SYS_openat2
    struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                            .resolve = RESOLVE_NO_SYMLINKS };
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS)
        return fd;
#endif
    return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

/* All of fd (n bytes expected) into a malloc'd buffer; NULL on error. */
static char *read_all(int fd, size_t n, size_t *got)
{
    char *raw = malloc(n + 1);
    *got = 0;
    while (raw && *got < n) {
        ssize_t r = read(fd, raw + *got, n - *got);
        if (r <= 0)
            break;
        *got += (size_t)r;
    }
    return raw;
}

/* A private copy of fd's bytes in DATA-DIR/tmp for a worker to read: it
 * reads what was checked, not whatever the path points at by then. */
static bool copy_for_worker(indexer *x, int fd, const idb_doc *d, char *out, size_t n)
{
    const char *dot = strrchr(d->path, '.');
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tmp", atomic_load(&x->cfg)->data_dir);
    mkdir(dir, 0700);
    snprintf(out, n, "%s/index-%lld%.16s", dir, (long long)d->id, dot ? dot : "");
    unlink(out);
    int w = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w < 0)
        return false;
    char b[65536];
    ssize_t r;
    bool ok = true;
    while (ok && (r = read(fd, b, sizeof b)) > 0)
        ok = write(w, b, (size_t)r) == r;
    ok = close(w) == 0 && ok && r == 0;
    if (!ok)
        unlink(out);
    return ok;
}

/* The document's text, cleaned, into text; for a recording, each line's
 * start and end in seconds into *times (malloc'd, 2 a line; else NULL). */
static void extract(indexer *x, const idb_doc *d, buf *text, double **times, long *nlines,
                    struct failure *f)
{
    *times = NULL;
    *nlines = 0;
    const config *c = atomic_load(&x->cfg);
    text_kind k = !strcmp(d->kind, "html") ? TK_HTML : !strcmp(d->kind, "image") ? TK_IMAGE
                  : !strcmp(d->kind, "audio") ? TK_AUDIO : TK_TEXT;
    int fd = open_file(d->path);
    struct stat st;
    if (fd < 0) {
        if (errno == ENOENT)
            fail_with(f, 404, "the file is gone");
        else if (errno == ELOOP)
            fail_with(f, 403, "a symlink is on the way to the file: not followed");
        else
            fail_with(f, 403, "cannot open the file: %s", strerror(errno));
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fail_with(f, 415, "not a regular file");
        close(fd);
        return;
    }
    if (st.st_size != d->size || mtime_ns(&st) != d->mtime) {
        /* changed since the walk: the next walk (inotify or the timer)
         * queues it again as it is now */
        fail_with(f, 503, "changed while it was being indexed");
        f->retry_after = 2;
        close(fd);
        return;
    }
    uint64_t cap = k == TK_TEXT || k == TK_HTML ? c->index_max_file : c->max_upload;
    if ((uint64_t)st.st_size > cap) {
        fail_with(f, 413, "the file is larger than %s (%llu bytes)",
                  k == TK_TEXT || k == TK_HTML ? "index-max-file" : "max-upload",
                  (unsigned long long)cap);
        close(fd);
        return;
    }
    if (k == TK_TEXT || k == TK_HTML) {
        size_t got = 0;
        char *raw = read_all(fd, (size_t)st.st_size, &got);
        close(fd);
        if (!raw)
            fail_with(f, 500, "out of memory");
        else if (text_looks_binary(raw, got))
            fail_with(f, 415, "not a text file (it holds NUL bytes)");
        else if (text_clean(text, raw, got, k == TK_HTML) < 0)
            fail_with(f, 500, "out of memory");
        free(raw);
        return;
    }
    char model[MODEL_NAME_MAX + 1];
    model_for(x, k, model, sizeof model);
    if (!model[0]) {
        fail_with(f, 424, k == TK_IMAGE ? "no OCR model: install tesseract-ocr-eng or set tessdata"
                                        : "no transcription model is configured (index-asr-model)");
        close(fd);
        return;
    }
    char copy[PATH_MAX + 64];
    bool copied = copy_for_worker(x, fd, d, copy, sizeof copy);
    close(fd);
    if (!copied) {
        fail_with(f, 500, "cannot copy the file for the %s worker (is the data dir full?)", model);
        return;
    }
    buf payload = buf_make(0), ans = buf_make(JOB_TEXT_CAP);
    if (job_payload(&payload, k == TK_IMAGE ? "{\"kind\":\"ocr\"}"
                                            : "{\"kind\":\"transcription\",\"translate\":false}",
                    copy) < 0)
        fail_with(f, 500, "out of memory");
    else {
        char err[300] = "";
        int rc = run_model(x, model, k == TK_IMAGE ? MODEL_KIND_OCR : MODEL_KIND_TRANSCRIPTION,
                           &payload, &ans, err, sizeof err, &f->retry_after);
        if (rc)
            fail_with(f, rc, "%s: %s", model, err);
        else {
            buf raw = buf_make(JOB_TEXT_CAP);
            if (answer_text(&ans, &raw, k == TK_AUDIO ? times : NULL, nlines) < 0)
                fail_with(f, 502, "%s gave an answer without text", model);
            else if (text_clean(text, raw.data ? raw.data : "", raw.len, false) < 0)
                fail_with(f, 500, "out of memory");
            buf_free(&raw);
        }
    }
    unlink(copy);
    buf_free(&payload);
    buf_free(&ans);
}

/* One embedding request for inputs c[0..m) cut to cut[]; vectors into ans. */
static int embed_request(indexer *x, const char *model, const idb_chunk_in *c, const size_t *cut,
                         size_t m, buf *ans, char *err, size_t el, int *retry_after)
{
    buf p = buf_make(0);
    buf_puts(&p, "{\"kind\":\"embedding\",\"input\":[");
    for (size_t k = 0; k < m; k++) {
        if (k)
            buf_putc(&p, ',');
        jw_str(&p, c[k].text, cut[k]);
    }
    buf_puts(&p, "]}");
    buf_reset(ans);
    int rc = run_model(x, model, MODEL_KIND_EMBEDDING, &p, ans, err, el, retry_after);
    buf_free(&p);
    return rc;
}

static bool too_many_tokens(int rc, const char *err)
{
    return rc == 400 && strstr(err, "tokens") != NULL;
}

/* Vectors for inputs[0..n) from model, dim floats each into vecs (malloc'd),
 * in batches of EMBED_BATCH. A batch the model refuses as too long is sent
 * one input at a time, and an input too long for the model is embedded by
 * its first half (then quarter, eighth): the passage keeps all its text
 * for BM25. 0, or -1 with f filled. */
static int embed(indexer *x, const char *model, idb_chunk_in *c, size_t n, float **vecs, int *dim,
                 struct failure *f)
{
    *vecs = NULL;
    *dim = 0;
    buf ans = buf_make(JOB_TEXT_CAP);
    int rc = 0;
    char err[300] = "";
    for (size_t i = 0; i < n && !rc;) {
        size_t m = n - i < EMBED_BATCH ? n - i : EMBED_BATCH;
        size_t cut[EMBED_BATCH];
        for (size_t k = 0; k < m; k++)
            cut[k] = c[i + k].len;
        rc = embed_request(x, model, c + i, cut, m, &ans, err, sizeof err, &f->retry_after);
        if (too_many_tokens(rc, err)) {
            /* one at a time, halving only the one that is too long */
            m = 1;
            for (int shrink = 0; shrink < 4 && too_many_tokens(rc, err); shrink++) {
                if (shrink) {
                    size_t h = cut[0] / 2;
                    while (h > 0 && ((unsigned char)c[i].text[h] & 0xC0) == 0x80)
                        h--;
                    if (h)
                        cut[0] = h;
                }
                rc = embed_request(x, model, c + i, cut, 1, &ans, err, sizeof err,
                                   &f->retry_after);
            }
        }
        if (rc)
            break;
        size_t per = ans.len / m;
        if (!per || per % sizeof(float) || per * m != ans.len ||
            (*dim && per / sizeof(float) != (size_t)*dim)) {
            rc = 502;
            snprintf(err, sizeof err, "malformed embeddings");
            break;
        }
        if (!*vecs) {
            *dim = (int)(per / sizeof(float));
            if (!(*vecs = malloc(n * per))) {
                rc = 500;
                snprintf(err, sizeof err, "out of memory");
                break;
            }
        }
        memcpy(*vecs + i * (size_t)*dim, ans.data, ans.len);
        i += m;
    }
    buf_free(&ans);
    if (rc) {
        fail_with(f, rc, "%s: %s", model, err);
        free(*vecs);
        *vecs = NULL;
        return -1;
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

    double *times = NULL;
    long nlines = 0;
    extract(x, d, &text, &times, &nlines, &f);
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
            idb_chunk_in ci = { p, len, tc[i].line0, tc[i].line1, NULL, -1, -1 };
            if (times && tc[i].line0 >= 1 && tc[i].line1 <= nlines) {
                ci.t0 = times[2 * (tc[i].line0 - 1)];       /* a recording: when it is said */
                ci.t1 = times[2 * (tc[i].line1 - 1) + 1];
            }
            in[kept++] = ci;
        }
    }
    /* vectors: when the embedding model refuses (no such model, the wrong
     * kind) or fails on the file's last attempt, the passages are stored
     * without them: BM25 still finds them, and the document says why */
    char note[360] = "";
    if (!f.status && kept && embed_model[0]) {
        struct failure ef = { 0 };
        if (embed(x, embed_model, in, kept, &vecs, &dim, &ef) == 0) {
            for (size_t i = 0; i < kept; i++)
                in[i].vec = vecs + i * (size_t)dim;
        } else if (ef.status == 503 ||
                   (ef.status >= 500 && d->attempts < c->job_attempts)) {
            f = ef;             /* not now, or a crash worth another attempt */
        } else {
            snprintf(note, sizeof note, "indexed without vectors: %s", ef.msg);
            embed_model[0] = 0;
        }
    }

    double now = clock_wall_s();
    if (!f.status) {
        if (idb_store(x->db, d, in, kept, dropped, embed_model[0] ? embed_model : NULL, dim,
                      note[0] ? note : NULL, now) < 0) {
            log_error("index: cannot store the passages of %s", d->path);
            fail_with(&f, 500, "the index could not store its passages");
        } else {
            log_info("index: %s: %zu chunks (%d dropped by hygiene)%s%s%s", d->path, kept, dropped,
                     vecs ? ", with vectors" : "", note[0] ? "; " : "", note);
            pthread_mutex_lock(&x->mu);
            x->act.indexed_since_start++;
            pthread_mutex_unlock(&x->mu);
            /* the embedding model changed (SIGHUP) while this file was
             * embedded: it is queued again for the new one */
            const config *now_cfg = atomic_load(&x->cfg);
            const char *want = now_cfg->index_embed_model ? now_cfg->index_embed_model : "";
            if (!note[0] && strcmp(want, embed_model))
                idb_recover(x->db, now_cfg->index_embed_model, INT_MAX);
        }
    }
    if (f.status == 503) {
        /* not now: no memory in time, a model in back-off, hearthd
         * stopping, the file changing. The attempt does not count. */
        idb_release(x->db, d, now + (f.retry_after > 0 ? f.retry_after : BUSY_WAIT_S));
    } else if (f.status) {
        /* 4xx: the file itself (binary, too large, refused by the model):
         * failed until it changes. Else (a crash, a bad answer, the index
         * not storing): retried, dead after job-attempts. */
        bool retry = !(f.status >= 400 && f.status < 500);
        if (idb_fail(x->db, d, retry, c->job_attempts, c->job_retry_delay, f.msg, now) < 0)
            log_error("index: cannot record the failure of %s", d->path);
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
    free(times);
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
        int64_t some[CHANGED_MAX];
        size_t nsome = x->nchanged;
        memcpy(some, x->changed, nsome * sizeof *some);
        x->nchanged = 0;
        x->scan_now = x->retry_now = false;
        pthread_mutex_unlock(&x->mu);
        if (stop)
            break;
        double now = clock_wall_s();
        if (retry)
            idb_retry_all(x->db);
        if (scan || now >= next_scan) {
            scan_folders(x, NULL, 0);
            next_scan = clock_wall_s() + atomic_load(&x->cfg)->index_scan_interval;
        } else if (nsome) {
            scan_folders(x, some, nsome);       /* where inotify saw changes */
        }
        idb_doc d;
        int got = idb_claim(x->db, clock_wall_s(), &d);
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
        /* idle: the vectors vector search holds in memory, filled here
         * rather than by a search (after a start, a reload or a rollback) */
        idb_vector_memory_fill(x->db, atomic_load(&x->cfg)->index_embed_model);
        /* sleep until the next scan, the next retry that is due, or a wake */
        double until = next_scan, due = idb_next_due(x->db);
        if (due >= 0 && due < until)
            until = due;
        if (got < 0 && until > clock_wall_s() + 5)
            until = clock_wall_s() + 5;
        struct timespec ts;
        double w = until > clock_wall_s() ? until : clock_wall_s() + 0.05;
        ts.tv_sec = (time_t)w;
        ts.tv_nsec = (long)((w - (double)ts.tv_sec) * 1e9);
        pthread_mutex_lock(&x->mu);
        if (!x->stop && !x->scan_now && !x->retry_now && !x->nchanged)
            pthread_cond_timedwait(&x->cv, &x->mu, &ts);
        pthread_mutex_unlock(&x->mu);
    }
    log_set_rid(NULL);
    return NULL;
}

/* Walk these folders soon (all of them when there are too many). */
static void rescan_folders(indexer *x, const int64_t *ids, size_t n)
{
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < n; i++) {
        if (has_id(x->changed, x->nchanged, ids[i]))
            continue;
        if (x->nchanged == CHANGED_MAX)
            x->scan_now = true;
        else
            x->changed[x->nchanged++] = ids[i];
    }
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

/* Changes in watched folders: after a burst of events has been quiet for
 * WATCH_QUIET_MS (or went on for WATCH_MAX_MS), one walk of the folders
 * they were in (of all, when a watch is not known or events were lost). */
#define WATCH_QUIET_MS 700
#define WATCH_MAX_MS   5000

static void *watch_loop(void *arg)
{
    indexer *x = arg;
    char ev[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    double first = 0;
    int64_t pending[CHANGED_MAX];
    size_t npending = 0;
    bool all = false;
    while (!stopping(x)) {
        struct pollfd p = { x->ino, POLLIN, 0 };
        int r = poll(&p, 1, first ? WATCH_QUIET_MS : 500);
        double now = clock_wall_s();
        ssize_t len;
        while (r > 0 && (len = read(x->ino, ev, sizeof ev)) > 0) {
            for (char *q = ev; q < ev + len;) {
                const struct inotify_event *e = (const struct inotify_event *)(void *)q;
                q += sizeof *e + e->len;
                if (e->mask & IN_IGNORED) {
                    watches_gone(x->watches, e->wd);    /* its folder's parent saw why */
                    continue;
                }
                /* events were lost: walk all. A watch not (or no longer)
                 * in the table is one a walk is adding (that walk reads
                 * the folder after) or removing: nothing to walk for it */
                int64_t f = e->mask & IN_Q_OVERFLOW ? 0 : watches_folder(x->watches, e->wd);
                if (!(e->mask & IN_Q_OVERFLOW) && !f)
                    continue;
                if (!f || npending == CHANGED_MAX)
                    all = true;
                else if (!has_id(pending, npending, f))
                    pending[npending++] = f;
                if (!first)
                    first = now;
            }
        }
        if (first && (now - first) * 1000 < WATCH_MAX_MS && r > 0)
            continue;
        if (first) {
            first = 0;
            if (all)
                indexer_rescan(x, false);
            else
                rescan_folders(x, pending, npending);
            npending = 0;
            all = false;
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
    idb_set_vector_memory(x->db, (size_t)cfg->index_vector_memory);
    x->s = s;
    x->ino = -1;
    pthread_mutex_init(&x->mu, NULL);
    pthread_mutex_init(&x->own_mu, NULL);
    pthread_mutex_init(&x->add_mu, NULL);
    if (!realpath(cfg->data_dir, x->data_real))
        x->data_real[0] = 0;
    set_own(x, 0, cfg->data_dir);
    set_own(x, 1, cfg->config_file);
    set_own(x, 2, cfg->api_key_file);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&x->cv, &ca);
    pthread_condattr_destroy(&ca);
    int requeued = idb_recover(x->db, cfg->index_embed_model, cfg->job_attempts);
    if (requeued > 0)
        log_info("index: %d document(s) to index again for embedding model %s", requeued,
                 cfg->index_embed_model ? cfg->index_embed_model : "(none)");
    x->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (x->ino < 0)
        log_warn("index: no inotify (%s); changes are seen at each walk", strerror(errno));
    else if ((x->watches = watches_new(x->ino)) &&
             pthread_create(&x->watcher, NULL, watch_loop, x) == 0)
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
    /* (also after vectors that did not fit: there may be room now) */
    idb_set_vector_memory(x->db, (size_t)cfg->index_vector_memory);
    const char *a = old->index_embed_model ? old->index_embed_model : "";
    const char *b = cfg->index_embed_model ? cfg->index_embed_model : "";
    set_own(x, 1, cfg->config_file);
    set_own(x, 2, cfg->api_key_file);
    /* a new embedding model indexes everything again; the same one gets
     * another try at passages stored without vectors (it may load now).
     * (No attempt limit here: a file being indexed right now is not
     * interrupted.) */
    int n = idb_recover(x->db, cfg->index_embed_model, INT_MAX);
    if (strcmp(a, b))
        log_info("index: embedding model now %s: %d document(s) to index again", *b ? b : "none",
                 n);
    else if (n > 0)
        log_info("index: %d document(s) without vectors to embed again", n);
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
    watches_free(x->watches);
    idb_close(x->db);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->mu);
    pthread_mutex_destroy(&x->own_mu);
    pthread_mutex_destroy(&x->add_mu);
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

/* Whether path is inside index-roots (default $HOME; "any": anywhere). */
static bool allowed(const config *c, const char *path)
{
    const char *roots = c->index_roots ? c->index_roots : getenv("HOME");
    if (roots && !strcmp(roots, "any"))
        return true;
    bool inside = false;
    char *copy = strdup(roots ? roots : "");
    for (char *save = NULL, *r = copy ? strtok_r(copy, ":", &save) : NULL; r && !inside;
         r = strtok_r(NULL, ":", &save)) {
        char rr[PATH_MAX];
        inside = r[0] == '/' && realpath(r, rr) && within(path, rr);
    }
    free(copy);
    return inside;
}

int indexer_add_folder(indexer *x, const char *path, const char *exclude, char *canon,
                       size_t canonlen, bool *existed, char *err, size_t errlen)
{
    *existed = false;
    const config *c = atomic_load(&x->cfg);
    if (path[0] != '/') {
        snprintf(err, errlen, "the folder must be an absolute path");
        return 400;
    }
    /* any API key can add a folder: only those inside the allowed roots
     * (index-roots, default hearthd's home), never all of the machine. The
     * roots are checked first, on the path as given when it does not
     * resolve, so that outside them every path gets the same answer (no
     * probing which files exist) */
    char real[PATH_MAX];
    bool resolved = realpath(path, real) != NULL;
    int why = errno;
    if (!allowed(c, resolved ? real : path)) {
        snprintf(err, errlen, "that folder is outside index-roots (%s)",
                 c->index_roots ? "as configured" : "hearthd's home folder by default");
        return 403;
    }
    struct stat st;
    if (!resolved || stat(real, &st) < 0) {
        snprintf(err, errlen, "cannot open the folder: %s", strerror(resolved ? errno : why));
        return 400;
    }
    if (!S_ISDIR(st.st_mode) || access(real, R_OK | X_OK) < 0) {
        snprintf(err, errlen, S_ISDIR(st.st_mode) ? "hearthd cannot read that folder"
                                                  : "not a folder");
        return 400;
    }
    /* hearthd's own files (the index, logs, uploads) never index themselves */
    if (x->data_real[0] && (within(real, x->data_real) || within(x->data_real, real))) {
        snprintf(err, errlen, "that folder %s hearthd's data dir",
                 within(real, x->data_real) ? "is inside" : "holds");
        return 400;
    }
    pthread_mutex_lock(&x->add_mu);     /* two adds at once cannot both pass the check */
    idb_folder *f = NULL;
    size_t nf = 0;
    int rc = 0;
    if (idb_folders(x->db, &f, &nf) < 0) {
        snprintf(err, errlen, "cannot read the index");
        rc = 500;
    }
    for (size_t i = 0; i < nf && !rc; i++) {
        if (!strcmp(f[i].path, real)) {
            *existed = true;    /* already watched: its excludes updated, a rescan */
            continue;
        }
        if (within(real, f[i].path) || within(f[i].path, real)) {
            snprintf(err, errlen, "that folder is %s a folder that is watched already (see "
                     "GET /v1/index)", within(real, f[i].path) ? "inside" : "around");
            rc = 409;
        }
    }
    idb_folders_free(f, nf);
    if (!rc && idb_folder_add(x->db, real, exclude, clock_wall_s()) < 0) {
        snprintf(err, errlen, "cannot write the index");
        rc = 500;
    }
    pthread_mutex_unlock(&x->add_mu);
    if (rc)
        return rc;
    snprintf(canon, canonlen, "%s", real);
    if (!*existed)
        log_info("index: watching %s", real);
    else if (exclude)
        log_info("index: %s: exclude patterns updated", real);
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
    if (rc == 1) {
        log_info("index: no longer watching %s", path);
        indexer_rescan(x, false);       /* a walk of all removes its inotify watches */
    }
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
    out->watches = x->watches ? watches_count(x->watches) : 0;
    const config *c = atomic_load(&x->cfg);     /* the model as configured now */
    snprintf(out->embed_model, sizeof out->embed_model, "%s",
             c->index_embed_model ? c->index_embed_model : "");
}
