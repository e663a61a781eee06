/*
 * store.c: the batch jobs' SQLite file. See store.h.
 */
#include "queue/store.h"

#include "core/sql.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETRY_DELAY_MAX 3600.0

struct store {
    sqlite3 *db;
    pthread_mutex_t mu;
};

static const char *const status_names[BJ_NSTATUS] = {
    "queued", "running", "completed", "failed", "dead", "cancelled"
};

const char *bjob_status_name(bjob_status s)
{
    return (unsigned)s < BJ_NSTATUS ? status_names[s] : "unknown";
}

int bjob_status_of(const char *name)
{
    for (int i = 0; i < BJ_NSTATUS; i++)
        if (name && !strcmp(name, status_names[i]))
            return i;
    return -1;
}

void bjob_free(bjob *j)
{
    if (j) {
        free(j->options);
        j->options = NULL;
    }
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS jobs("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL, model TEXT NOT NULL, format TEXT NOT NULL, options TEXT NOT NULL,"
    " input TEXT NOT NULL, input_name TEXT NOT NULL, input_bytes INTEGER NOT NULL,"
    " status INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL,"
    " created REAL NOT NULL, started REAL NOT NULL DEFAULT 0, finished REAL NOT NULL DEFAULT 0,"
    " next_run REAL NOT NULL,"
    " error_code TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',"
    " result BLOB, progress REAL NOT NULL DEFAULT 0, idem TEXT,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs(status, next_run, id);"
    /* idempotency keys are each owner's own (the first version had one
     * namespace for all) */
    "DROP INDEX IF EXISTS jobs_idem;"
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_owner_idem ON jobs(owner, idem) "
    "WHERE idem IS NOT NULL;";

static void set_err(char *err, size_t n, const char *what, sqlite3 *db)
{
    if (err && n)
        snprintf(err, n, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

store *store_open(const char *path, char *err, size_t errlen)
{
    store *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errlen, "job store", NULL);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (!(s->db = sql_open(path, "a job store", err, errlen)))
        goto fail;
    char *msg = NULL;
    /* columns added after the first version: a file made by it gets them
     * (an error here only says the column is there already) */
    static const char *const added[] = {
        "ALTER TABLE jobs ADD COLUMN progress REAL NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN idem TEXT",
        "ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
    };
    if (sql_add_columns(s->db, "jobs", added, sizeof added / sizeof *added, name, err,
                        errlen) < 0)
        goto fail;
    if (sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", name, msg ? msg : "cannot set up");
        sqlite3_free(msg);
        goto fail;
    }
    return s;
fail:
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return NULL;
}

void store_close(store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- statements --------------------------------------------------------- */

#define prep(s, ...) sql_prep((s)->db, __VA_ARGS__)
#define run(s, q) sql_run((s)->db, (q))
#define exec(s, sql) sql_exec((s)->db, (sql))

static void copy_text(char *dst, size_t n, sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

#define JOB_COLUMNS                                                                      \
    "id, kind, model, format, options, input, input_name, input_bytes, status, attempts, " \
    "max_attempts, created, started, finished, next_run, error_code, error, "            \
    "coalesce(length(result), 0), progress, cancel_requested, owner"

static void read_job(sqlite3_stmt *q, bjob *j)
{
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(q, 0);
    copy_text(j->kind, sizeof j->kind, q, 1);
    copy_text(j->model, sizeof j->model, q, 2);
    copy_text(j->format, sizeof j->format, q, 3);
    const unsigned char *o = sqlite3_column_text(q, 4);
    j->options = strdup(o ? (const char *)o : "{}");
    copy_text(j->input, sizeof j->input, q, 5);
    copy_text(j->input_name, sizeof j->input_name, q, 6);
    j->input_bytes = sqlite3_column_int64(q, 7);
    j->status = (bjob_status)sqlite3_column_int(q, 8);
    j->attempts = sqlite3_column_int(q, 9);
    j->max_attempts = sqlite3_column_int(q, 10);
    j->created = sqlite3_column_double(q, 11);
    j->started = sqlite3_column_double(q, 12);
    j->finished = sqlite3_column_double(q, 13);
    j->next_run = sqlite3_column_double(q, 14);
    copy_text(j->error_code, sizeof j->error_code, q, 15);
    copy_text(j->error, sizeof j->error, q, 16);
    j->result_bytes = sqlite3_column_int64(q, 17);
    j->progress = sqlite3_column_double(q, 18);
    j->cancel_requested = sqlite3_column_int(q, 19) != 0;
    copy_text(j->owner, sizeof j->owner, q, 20);
}

/* The status of job id, STORE_NOT_FOUND, or -1. Under the lock. */
static int status_of(store *s, int64_t id)
{
    sqlite3_stmt *q = prep(s, "SELECT status FROM jobs WHERE id=?", "i", id);
    if (!q)
        return -1;
    int rc = sqlite3_step(q);
    int st = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : rc == SQLITE_DONE ? STORE_NOT_FOUND : -1;
    sqlite3_finalize(q);
    return st;
}

/* ---- the queue ----------------------------------------------------------- */

int store_recover(store *s, double now, int *requeued, int *dead)
{
    *requeued = *dead = 0;
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    if (!exec(s, "BEGIN IMMEDIATE"))
        goto out;
    int d = run(s, prep(s, "UPDATE jobs SET status=?, finished=?, error_code='interrupted', "
                           "error='hearthd stopped while this job ran, on every attempt' "
                           "WHERE status=? AND attempts>=max_attempts",
                        "idi", (int64_t)BJ_DEAD, now, (int64_t)BJ_RUNNING));
    int q = d < 0 ? -1
                  : run(s, prep(s, "UPDATE jobs SET status=?, next_run=? WHERE status=?", "idi",
                                (int64_t)BJ_QUEUED, now, (int64_t)BJ_RUNNING));
    if (d < 0 || q < 0 || !exec(s, "COMMIT")) {
        exec(s, "ROLLBACK");
        goto out;
    }
    *requeued = q;
    *dead = d;
    rc = 0;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int64_t store_add(store *s, const bjob *j, double now, int64_t max_active, char *err,
                  size_t errlen)
{
    pthread_mutex_lock(&s->mu);
    int64_t id = -1, active = 0;
    if (!exec(s, "BEGIN IMMEDIATE")) {
        set_err(err, errlen, "job store", s->db);
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (max_active > 0) {
        sqlite3_stmt *c = prep(s, "SELECT count(*) FROM jobs WHERE status IN (?, ?)", "ii",
                               (int64_t)BJ_QUEUED, (int64_t)BJ_RUNNING);
        if (c && sqlite3_step(c) == SQLITE_ROW)
            active = sqlite3_column_int64(c, 0);
        sqlite3_finalize(c);
        if (active >= max_active) {
            exec(s, "ROLLBACK");
            pthread_mutex_unlock(&s->mu);
            return STORE_FULL;
        }
    }
    sqlite3_stmt *q = prep(s,
                           "INSERT INTO jobs(kind, model, format, options, input, input_name, "
                           "input_bytes, status, max_attempts, created, next_run, idem, owner) "
                           "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           "ssssssiiiddss", j->kind, j->model, j->format,
                           j->options ? j->options : "{}", j->input, j->input_name,
                           j->input_bytes, (int64_t)BJ_QUEUED,
                           (int64_t)(j->max_attempts > 0 ? j->max_attempts : 1), now, now,
                           j->idem[0] ? j->idem : NULL, j->owner);
    int added = run(s, q);
    if (added == 1 && exec(s, "COMMIT")) {
        id = sqlite3_last_insert_rowid(s->db);
    } else {
        if (added < 0 && sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE)
            id = STORE_DUPLICATE;       /* its idempotency key is taken */
        else
            set_err(err, errlen, "job store", s->db);
        exec(s, "ROLLBACK");
    }
    pthread_mutex_unlock(&s->mu);
    return id;
}

int store_claim(store *s, double now, bjob *out, double *next_due)
{
    *next_due = 0;
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    if (!exec(s, "BEGIN IMMEDIATE"))
        goto out;
    sqlite3_stmt *q = prep(s, "SELECT " JOB_COLUMNS " FROM jobs WHERE status=? AND next_run<=? "
                              "ORDER BY next_run, id LIMIT 1", "id", (int64_t)BJ_QUEUED, now);
    int step = q ? sqlite3_step(q) : SQLITE_ERROR;
    if (step == SQLITE_ROW) {
        read_job(q, out);
        sqlite3_finalize(q);
        out->status = BJ_RUNNING;
        out->attempts++;
        out->started = now;
        out->progress = 0;
        if (run(s, prep(s, "UPDATE jobs SET status=?, attempts=attempts+1, started=?, "
                           "progress=0, cancel_requested=0 WHERE id=?",
                        "idi", (int64_t)BJ_RUNNING, now, out->id)) != 1 ||
            !exec(s, "COMMIT")) {
            bjob_free(out);
            exec(s, "ROLLBACK");
            goto out;
        }
        rc = 1;
        goto out;
    }
    sqlite3_finalize(q);
    if (step != SQLITE_DONE) {
        exec(s, "ROLLBACK");
        goto out;
    }
    q = prep(s, "SELECT min(next_run) FROM jobs WHERE status=?", "i", (int64_t)BJ_QUEUED);
    if (q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
        *next_due = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    exec(s, "COMMIT");
    rc = 0;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Under the lock: whether the user asked to cancel running job id. */
static bool cancel_asked(store *s, int64_t id)
{
    sqlite3_stmt *q = prep(s, "SELECT cancel_requested FROM jobs WHERE id=?", "i", id);
    bool asked = q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) != 0;
    sqlite3_finalize(q);
    return asked;
}

/* Set a running job's new status with its error; the status or -1. A job
 * that would be queued again is cancelled instead when the user asked. */
static int finish(store *s, int64_t id, bjob_status st, const char *code, const char *msg,
                  double now, double next_run)
{
    pthread_mutex_lock(&s->mu);
    if (st == BJ_QUEUED && cancel_asked(s, id)) {   /* it would run again: not wanted */
        st = BJ_CANCELLED;
        code = "cancelled";
        msg = "cancelled by the user";
    }
    int rc = run(s, prep(s, "UPDATE jobs SET status=?, finished=?, next_run=?, error_code=?, "
                            "error=?, cancel_requested=0 WHERE id=? AND status=?",
                         "iddssii", (int64_t)st, st == BJ_QUEUED ? 0.0 : now, next_run,
                         code ? code : "", msg ? msg : "", id, (int64_t)BJ_RUNNING));
    pthread_mutex_unlock(&s->mu);
    return rc == 1 ? (int)st : -1;
}

int store_complete(store *s, int64_t id, const char *result, size_t n, double now)
{
    pthread_mutex_lock(&s->mu);
    int rc = run(s, prep(s, "UPDATE jobs SET status=?, finished=?, result=?, error_code='', "
                            "error='', cancel_requested=0 WHERE id=? AND status=?",
                         "idbii", (int64_t)BJ_COMPLETED, now, result, n, id, (int64_t)BJ_RUNNING));
    pthread_mutex_unlock(&s->mu);
    return rc == 1 ? BJ_COMPLETED : -1;
}

int store_fail(store *s, int64_t id, bool retryable, double delay, const char *code,
               const char *msg, double now)
{
    if (!retryable)
        return finish(s, id, BJ_FAILED, code, msg, now, 0);
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT attempts, max_attempts FROM jobs WHERE id=?", "i", id);
    int attempts = 0, max = 0, step = q ? sqlite3_step(q) : SQLITE_ERROR;
    if (step == SQLITE_ROW) {
        attempts = sqlite3_column_int(q, 0);
        max = sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    if (step != SQLITE_ROW)
        return -1;
    if (attempts >= max)
        return finish(s, id, BJ_DEAD, code, msg, now, 0);
    double wait = delay * pow(2.0, attempts > 1 ? attempts - 1 : 0);
    if (wait > RETRY_DELAY_MAX)
        wait = RETRY_DELAY_MAX;
    return finish(s, id, BJ_QUEUED, code, msg, now, now + wait);
}

int store_release(store *s, int64_t id, double next_run)
{
    pthread_mutex_lock(&s->mu);
    bool cancel = cancel_asked(s, id);
    pthread_mutex_unlock(&s->mu);
    if (cancel)
        return store_cancelled(s, id, (double)time(NULL));
    pthread_mutex_lock(&s->mu);
    int rc = run(s, prep(s, "UPDATE jobs SET status=?, attempts=max(attempts-1, 0), "
                            "next_run=max(next_run, ?) WHERE id=? AND status=?",
                         "idii", (int64_t)BJ_QUEUED, next_run, id, (int64_t)BJ_RUNNING));
    pthread_mutex_unlock(&s->mu);
    return rc == 1 ? BJ_QUEUED : -1;
}

int store_progress(store *s, int64_t id, double fraction)
{
    pthread_mutex_lock(&s->mu);
    int rc = run(s, prep(s, "UPDATE jobs SET progress=? WHERE id=? AND status=?", "dii", fraction,
                         id, (int64_t)BJ_RUNNING));
    pthread_mutex_unlock(&s->mu);
    return rc == 1 ? 0 : -1;
}

int store_cancelled(store *s, int64_t id, double now)
{
    return finish(s, id, BJ_CANCELLED, "cancelled", "cancelled by the user", now, 0);
}

/* ---- reading ------------------------------------------------------------- */

int store_get(store *s, int64_t id, bjob *out)
{
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    sqlite3_stmt *q = prep(s, "SELECT " JOB_COLUMNS " FROM jobs WHERE id=?", "i", id);
    int step = q ? sqlite3_step(q) : SQLITE_ERROR;
    if (step == SQLITE_ROW) {
        read_job(q, out);
        rc = 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    }
    sqlite3_finalize(q);
    if (rc == 1 && out->status == BJ_QUEUED) {
        q = prep(s, "SELECT count(*) FROM jobs WHERE status=? AND (next_run<? OR "
                    "(next_run=? AND id<?))",
                 "iddi", (int64_t)BJ_QUEUED, out->next_run, out->next_run, out->id);
        if (q && sqlite3_step(q) == SQLITE_ROW)
            out->position = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_result(store *s, int64_t id, buf *out)
{
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    sqlite3_stmt *q = prep(s, "SELECT result FROM jobs WHERE id=?", "i", id);
    int step = q ? sqlite3_step(q) : SQLITE_ERROR;
    if (step == SQLITE_ROW) {
        if (sqlite3_column_type(q, 0) == SQLITE_NULL)
            rc = 0;
        else
            rc = buf_append(out, sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0)) < 0
                     ? -1 : 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_list(store *s, const char *owner, int status, int64_t before, bjob *out, int max)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT " JOB_COLUMNS " FROM jobs WHERE (?<0 OR status=?) AND id<? "
                              "AND (? IS NULL OR owner=?) ORDER BY id DESC LIMIT ?",
                           "iiissi", (int64_t)status, (int64_t)status,
                           before > 0 ? before : INT64_MAX, owner, owner, (int64_t)max);
    int n = q ? 0 : -1;
    while (q && n < max && sqlite3_step(q) == SQLITE_ROW)
        read_job(q, &out[n++]);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return n;
}

int store_counts(store *s, const char *owner, int64_t counts[BJ_NSTATUS])
{
    memset(counts, 0, sizeof(int64_t) * BJ_NSTATUS);
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT status, count(*) FROM jobs WHERE ? IS NULL OR owner=? "
                              "GROUP BY status", "ss", owner, owner);
    int rc = q ? 0 : -1;
    while (q && sqlite3_step(q) == SQLITE_ROW) {
        int st = sqlite3_column_int(q, 0);
        if (st >= 0 && st < BJ_NSTATUS)
            counts[st] = sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- user actions -------------------------------------------------------- */

int store_cancel(store *s, int64_t id, double now)
{
    pthread_mutex_lock(&s->mu);
    int st = status_of(s, id);
    if (st == BJ_QUEUED &&
        run(s, prep(s, "UPDATE jobs SET status=?, finished=?, error_code='cancelled', "
                       "error='cancelled by the user' WHERE id=? AND status=?",
                    "idii", (int64_t)BJ_CANCELLED, now, id, (int64_t)BJ_QUEUED)) != 1)
        st = -1;
    /* a running one: asked durably, so whatever its attempt ends in, it
     * does not run again (the runner also stops it at once) */
    if (st == BJ_RUNNING &&
        run(s, prep(s, "UPDATE jobs SET cancel_requested=1 WHERE id=? AND status=?", "ii", id,
                    (int64_t)BJ_RUNNING)) != 1)
        st = -1;
    pthread_mutex_unlock(&s->mu);
    return st;
}

int store_retry(store *s, int64_t id, double now)
{
    pthread_mutex_lock(&s->mu);
    int st = status_of(s, id);
    if ((st == BJ_FAILED || st == BJ_DEAD || st == BJ_CANCELLED) &&
        run(s, prep(s, "UPDATE jobs SET status=?, attempts=0, next_run=?, started=0, finished=0, "
                       "error_code='', error='' WHERE id=?",
                    "idi", (int64_t)BJ_QUEUED, now, id)) != 1)
        st = -1;
    pthread_mutex_unlock(&s->mu);
    return st;
}

int store_delete(store *s, int64_t id, char input[BJOB_INPUT_MAX + 1])
{
    input[0] = '\0';
    pthread_mutex_lock(&s->mu);
    int st = status_of(s, id);
    if (st >= 0 && st != BJ_RUNNING) {
        sqlite3_stmt *q = prep(s, "SELECT input FROM jobs WHERE id=?", "i", id);
        if (q && sqlite3_step(q) == SQLITE_ROW)
            copy_text(input, BJOB_INPUT_MAX + 1, q, 0);
        sqlite3_finalize(q);
        if (run(s, prep(s, "DELETE FROM jobs WHERE id=?", "i", id)) != 1)
            st = -1;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

int64_t store_find_idem(store *s, const char *owner, const char *key)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT id FROM jobs WHERE owner=? AND idem=?", "ss",
                           owner ? owner : "", key);
    int step = q ? sqlite3_step(q) : SQLITE_ERROR;
    int64_t id = step == SQLITE_ROW ? sqlite3_column_int64(q, 0) : step == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return id;
}

int store_prune(store *s, double before, void (*fn)(void *ud, const char *input), void *ud)
{
    pthread_mutex_lock(&s->mu);
    int n = -1;
    char (*names)[BJOB_INPUT_MAX + 1] = NULL;
    size_t count = 0, cap = 0;
    if (!exec(s, "BEGIN IMMEDIATE"))
        goto out;
    sqlite3_stmt *q = prep(s, "SELECT input FROM jobs WHERE status IN (?, ?) AND finished<?",
                           "iid", (int64_t)BJ_COMPLETED, (int64_t)BJ_CANCELLED, before);
    bool ok = q != NULL;
    while (ok && sqlite3_step(q) == SQLITE_ROW) {
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 64;
            void *p = realloc(names, nc * sizeof *names);
            if (!p) {
                ok = false;     /* nothing deleted rather than files lost */
                break;
            }
            names = p;
            cap = nc;
        }
        copy_text(names[count++], sizeof names[0], q, 0);
    }
    sqlite3_finalize(q);
    n = ok ? run(s, prep(s, "DELETE FROM jobs WHERE status IN (?, ?) AND finished<?", "iid",
                         (int64_t)BJ_COMPLETED, (int64_t)BJ_CANCELLED, before))
           : -1;
    if (n < 0 || !exec(s, "COMMIT")) {
        exec(s, "ROLLBACK");
        n = -1;
        goto out;
    }
    /* the files go once their rows are gone for good */
    for (size_t i = 0; fn && i < count; i++)
        if (names[i][0])
            fn(ud, names[i]);
out:
    pthread_mutex_unlock(&s->mu);
    free(names);
    return n;
}

int store_each_input(store *s, void (*fn)(void *ud, const char *input), void *ud)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT input FROM jobs WHERE status<>?", "i", (int64_t)BJ_COMPLETED);
    int rc = q ? 0 : -1;
    while (q && sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(q, 0);
        if (t)
            fn(ud, (const char *)t);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return rc;
}
