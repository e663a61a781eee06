/*
 * db.c: the retrieval index's SQLite file (db.h).
 */
#include "index/db.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/sql.h"
#include "index/vcache.h"

struct idb {
    sqlite3 *db;
    pthread_mutex_t mu;
    /* vectors in memory for the first pass of idb_nearest (index/vcache.h):
     * kept in step with vecs (removals as they happen, stored vectors once
     * committed), and filled anew by a search that finds vc_gen behind
     * vgen, which a rolled-back transaction bumps (its removals from the
     * cache were not removals on disk) */
    vcache *vc;
    uint64_t vgen, vc_gen;
    bool vc_too_big;            /* the vectors did not fit: search from disk */
    uint64_t vc_fills;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS folders(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL,"
    " added REAL NOT NULL, last_scan REAL NOT NULL DEFAULT 0,"
    " exclude TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS docs(id INTEGER PRIMARY KEY, folder INTEGER NOT NULL,"
    " path TEXT UNIQUE NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL,"
    " kind TEXT NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " error TEXT, chunks INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0,"
    " model TEXT, changed REAL NOT NULL, indexed_at REAL NOT NULL DEFAULT 0,"
    " next_run REAL NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS docs_due ON docs(state, next_run);"
    "CREATE INDEX IF NOT EXISTS docs_folder ON docs(folder);"
    /* AUTOINCREMENT: a chunk id is never reused, so a search hit read a
     * moment later can only be its own passage or gone */
    "CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY AUTOINCREMENT, doc INTEGER NOT NULL,"
    " ord INTEGER NOT NULL, line0 INTEGER NOT NULL, line1 INTEGER NOT NULL, text TEXT NOT NULL,"
    " t0 REAL, t1 REAL);"
    "CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, content='chunks',"
    " content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');"
    "CREATE TABLE IF NOT EXISTS vecs(chunk INTEGER PRIMARY KEY, model TEXT NOT NULL,"
    " dim INTEGER NOT NULL, v BLOB NOT NULL);";

static const char *const state_names[DOC_NSTATES] = { "pending", "indexed", "failed", "dead" };

const char *doc_state_name(doc_state s)
{
    return s >= 0 && s < DOC_NSTATES ? state_names[s] : "?";
}

int doc_state_parse(const char *s)
{
    for (int i = 0; i < DOC_NSTATES; i++)
        if (!strcmp(s, state_names[i]))
            return i;
    return -1;
}

bool idb_in_scope(const char *path, const char *scope)
{
    if (!scope)
        return true;
    size_t pl = strlen(path);
    for (const char *p = scope; *p;) {
        size_t l = strcspn(p, "\n");
        if (l && pl >= l && memcmp(path, p, l) == 0 &&
            (pl == l || path[l] == '/' || (l == 1 && p[0] == '/')))
            return true;
        p += l + (p[l] == '\n');
    }
    return false;
}

/* SQL: hearth_in(path, scope) is idb_in_scope (a NULL scope: everything) */
static void sql_in_scope(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *path = sqlite3_value_text(argv[0]);
    const unsigned char *scope = sqlite3_value_text(argv[1]);
    sqlite3_result_int(ctx, !scope || (path && idb_in_scope((const char *)path,
                                                             (const char *)scope)));
}

idb *idb_open(const char *path, char *err, size_t errlen)
{
    idb *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(d->db = sql_open(path, "a search index", err, errlen))) {
        free(d);
        return NULL;
    }
    char *msg = NULL;
    /* columns added after the first version */
    static const char *const added[] = { "ALTER TABLE chunks ADD COLUMN t0 REAL",
                                         "ALTER TABLE chunks ADD COLUMN t1 REAL" };
    static const char *const added_f[] = {
        "ALTER TABLE folders ADD COLUMN exclude TEXT NOT NULL DEFAULT ''" };
    if (sql_add_columns(d->db, "chunks", added, sizeof added / sizeof *added, "index.db", err,
                        errlen) < 0 ||
        sql_add_columns(d->db, "folders", added_f, sizeof added_f / sizeof *added_f, "index.db",
                        err, errlen) < 0) {
        sqlite3_close(d->db);
        free(d);
        return NULL;
    }
    if (sqlite3_exec(d->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "index.db: %s", msg ? msg : "cannot set up");
        sqlite3_free(msg);
        sqlite3_close(d->db);
        free(d);
        return NULL;
    }
    if (sqlite3_create_function_v2(d->db, "hearth_in", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                   NULL, sql_in_scope, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "index.db: %s", sqlite3_errmsg(d->db));
        sqlite3_close(d->db);
        free(d);
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

void idb_close(idb *d)
{
    if (!d)
        return;
    vcache_free(d->vc);
    sqlite3_close(d->db);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

#define lock(d) pthread_mutex_lock(&(d)->mu)
#define unlock(d) pthread_mutex_unlock(&(d)->mu)

/* Undo the open transaction; the vectors in memory are filled anew. */
static void rollback(idb *d)
{
    sql_exec(d->db, "ROLLBACK");
    d->vgen++;
}

/* Whether the vectors in memory are in step with the file. */
static bool cache_current(const idb *d)
{
    return d->vc && d->vc_gen == d->vgen;
}

static char *col_dup(sqlite3_stmt *q, int c)
{
    const unsigned char *t = sqlite3_column_text(q, c);
    return strdup(t ? (const char *)t : "");
}

/* Forget one document's chunks: FTS rows (external content needs the old
 * text), vectors, then the chunks. Under the lock, inside a transaction. */
static int drop_chunks(idb *d, int64_t doc)
{
    if (cache_current(d)) {
        sqlite3_stmt *q = sql_prep(d->db, "SELECT chunk FROM vecs WHERE chunk IN (SELECT id FROM"
                                   " chunks WHERE doc=?)", "i", doc);
        int st = SQLITE_ERROR;
        while (q && (st = sqlite3_step(q)) == SQLITE_ROW)
            vcache_remove(d->vc, sqlite3_column_int64(q, 0));
        sqlite3_finalize(q);
        if (st != SQLITE_DONE)
            d->vgen++;                  /* unsure what is gone: fill anew */
    }
    int a = sql_run(d->db, sql_prep(d->db,
        "INSERT INTO chunks_fts(chunks_fts, rowid, text) SELECT 'delete', id, text FROM chunks "
        "WHERE doc=?", "i", doc));
    int b = sql_run(d->db, sql_prep(d->db,
        "DELETE FROM vecs WHERE chunk IN (SELECT id FROM chunks WHERE doc=?)", "i", doc));
    int c = sql_run(d->db, sql_prep(d->db, "DELETE FROM chunks WHERE doc=?", "i", doc));
    return a < 0 || b < 0 || c < 0 ? -1 : 0;
}

/* Forget documents matching `where` (on docs; parameters ?1 and ?2). */
static int drop_docs(idb *d, const char *where, int64_t a1, int64_t a2)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT id FROM docs WHERE %s", where);
    sqlite3_stmt *q = sql_prep(d->db, sql, "ii", a1, a2);
    if (!q)
        return -1;
    int n = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (drop_chunks(d, sqlite3_column_int64(q, 0)) < 0) {
            sqlite3_finalize(q);
            return -1;
        }
        n++;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return -1;
    snprintf(sql, sizeof sql, "DELETE FROM docs WHERE %s", where);
    return sql_run(d->db, sql_prep(d->db, sql, "ii", a1, a2)) < 0 ? -1 : n;
}

/* ---- folders ------------------------------------------------------------ */

int64_t idb_folder_add(idb *d, const char *path, const char *exclude, double now)
{
    lock(d);
    int64_t id = -1;
    sqlite3_stmt *add = exclude
        ? sql_prep(d->db, "INSERT INTO folders(path, added, exclude) VALUES(?,?,?) "
                   "ON CONFLICT(path) DO UPDATE SET exclude=excluded.exclude", "sds", path, now,
                   exclude)
        : sql_prep(d->db, "INSERT OR IGNORE INTO folders(path, added) VALUES(?,?)", "sd", path,
                   now);
    if (sql_run(d->db, add) >= 0) {
        sqlite3_stmt *q = sql_prep(d->db, "SELECT id FROM folders WHERE path=?", "s", path);
        if (q && sqlite3_step(q) == SQLITE_ROW)
            id = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    unlock(d);
    return id;
}

int idb_folder_remove(idb *d, const char *path)
{
    lock(d);
    int rc = -1;
    sqlite3_stmt *q = sql_prep(d->db, "SELECT id FROM folders WHERE path=?", "s", path);
    int step = q ? sqlite3_step(q) : SQLITE_ERROR;
    int64_t id = step == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    if (step == SQLITE_DONE)
        rc = 0;
    else if (step == SQLITE_ROW && sql_exec(d->db, "BEGIN IMMEDIATE")) {
        if (drop_docs(d, "folder=?1 AND ?2=?2", id, 0) >= 0 &&
            sql_run(d->db, sql_prep(d->db, "DELETE FROM folders WHERE id=?", "i", id)) >= 0 &&
            sql_exec(d->db, "COMMIT"))
            rc = 1;
        else
            rollback(d);
    }
    unlock(d);
    return rc;
}

int idb_folders(idb *d, idb_folder **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    lock(d);
    sqlite3_stmt *q = sql_prep(d->db,
        "SELECT f.id, f.path, f.added, f.last_scan, count(d.id), coalesce(sum(d.state=?1), 0),"
        " coalesce(sum(d.state=?2), 0), coalesce(sum(d.state>=?3), 0), f.exclude"
        " FROM folders f LEFT JOIN docs d ON d.folder=f.id GROUP BY f.id ORDER BY f.id", "iii",
        (int64_t)DOC_PENDING, (int64_t)DOC_INDEXED, (int64_t)DOC_FAILED);
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    size_t cap = 0;
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            idb_folder *g = realloc(*out, nc * sizeof *g);
            if (!g) {
                rc = SQLITE_NOMEM;
                break;
            }
            *out = g;
            cap = nc;
        }
        idb_folder *f = &(*out)[(*n)++];
        f->id = sqlite3_column_int64(q, 0);
        f->path = col_dup(q, 1);
        f->added = sqlite3_column_double(q, 2);
        f->last_scan = sqlite3_column_double(q, 3);
        f->docs = sqlite3_column_int64(q, 4);
        f->pending = sqlite3_column_int64(q, 5);
        f->indexed = sqlite3_column_int64(q, 6);
        f->failed = sqlite3_column_int64(q, 7);
        f->exclude = col_dup(q, 8);
    }
    sqlite3_finalize(q);
    unlock(d);
    if (rc != SQLITE_DONE) {
        idb_folders_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

void idb_folders_free(idb_folder *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].path);
        free(f[i].exclude);
    }
    free(f);
}

/* ---- scanning ----------------------------------------------------------- */

int idb_scan(idb *d, int64_t folder, const idb_seen *files, size_t n, bool complete, double now,
             int *added, int *removed)
{
    *added = *removed = 0;
    lock(d);
    if (!sql_exec(d->db, "BEGIN IMMEDIATE")) {
        unlock(d);
        return -1;
    }
    /* the folder may have been removed while it was walked: then nothing
     * of the walk is recorded (its files would be orphans no walk removes) */
    sqlite3_stmt *g = sql_prep(d->db, "SELECT 1 FROM folders WHERE id=?", "i", folder);
    int st = g ? sqlite3_step(g) : SQLITE_ERROR;
    sqlite3_finalize(g);
    if (st != SQLITE_ROW) {
        rollback(d);
        unlock(d);
        return st == SQLITE_DONE ? 0 : -1;
    }
    /* the walk's paths, to find the vanished ones; unchanged files are
     * not written at all (a walk of a big folder stays a read) */
    int ok = sql_exec(d->db, "CREATE TEMP TABLE IF NOT EXISTS walk(path TEXT PRIMARY KEY);"
                             "DELETE FROM temp.walk;");
    for (size_t i = 0; ok && i < n; i++) {
        const idb_seen *f = &files[i];
        if (complete)
            ok = sql_run(d->db, sql_prep(d->db, "INSERT OR IGNORE INTO temp.walk(path) VALUES(?)",
                                         "s", f->path)) >= 0;
        sqlite3_stmt *q = ok ? sql_prep(d->db, "SELECT id, size, mtime, folder FROM docs "
                                        "WHERE path=?", "s", f->path) : NULL;
        st = q ? sqlite3_step(q) : SQLITE_ERROR;
        if (st == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(q, 0);
            bool same = sqlite3_column_int64(q, 1) == f->size &&
                        sqlite3_column_int64(q, 2) == f->mtime &&
                        sqlite3_column_int64(q, 3) == folder;
            sqlite3_finalize(q);
            if (!same) {
                ok = sql_run(d->db, sql_prep(d->db,
                    "UPDATE docs SET folder=?, size=?, mtime=?, kind=?, state=?, attempts=0,"
                    " error=NULL, next_run=0, changed=? WHERE id=?",
                    "iiisidi", folder, f->size, f->mtime, f->kind, (int64_t)DOC_PENDING, now,
                    id)) >= 0;
                (*added)++;
            }
        } else if (st == SQLITE_DONE) {
            sqlite3_finalize(q);
            ok = sql_run(d->db, sql_prep(d->db,
                "INSERT INTO docs(folder, path, size, mtime, kind, state, changed)"
                " VALUES(?,?,?,?,?,?,?)",
                "isiisid", folder, f->path, f->size, f->mtime, f->kind, (int64_t)DOC_PENDING,
                now)) >= 0;
            (*added)++;
        } else {
            sqlite3_finalize(q);
            ok = 0;
        }
    }
    /* only a complete walk says what is gone: one that could not open a
     * subfolder, or stopped at the file cap, keeps what it did not see */
    int gone = !ok ? -1 : complete ? drop_docs(d, "folder=?1 AND ?2=?2 AND path NOT IN "
                                               "(SELECT path FROM temp.walk)", folder, 0) : 0;
    ok = ok && gone >= 0 &&
         sql_run(d->db, sql_prep(d->db, "UPDATE folders SET last_scan=? WHERE id=?", "di", now,
                                 folder)) >= 0 &&
         sql_exec(d->db, "COMMIT");
    if (!ok)
        rollback(d);
    sql_exec(d->db, "DELETE FROM temp.walk");
    unlock(d);
    *removed = ok ? gone : 0;
    return ok ? 0 : -1;
}

/* ---- the indexer's queue ------------------------------------------------ */

#define DOC_COLUMNS \
    "id, path, kind, coalesce(error,''), state, attempts, chunks, dropped, size, mtime, indexed_at"

static void read_doc(sqlite3_stmt *q, idb_doc *o)
{
    o->id = sqlite3_column_int64(q, 0);
    o->path = col_dup(q, 1);
    o->kind = col_dup(q, 2);
    o->error = col_dup(q, 3);
    o->state = (doc_state)sqlite3_column_int(q, 4);
    o->attempts = sqlite3_column_int(q, 5);
    o->chunks = sqlite3_column_int(q, 6);
    o->dropped = sqlite3_column_int(q, 7);
    o->size = sqlite3_column_int64(q, 8);
    o->mtime = sqlite3_column_int64(q, 9);
    o->indexed_at = sqlite3_column_double(q, 10);
}

void idb_doc_free(idb_doc *o)
{
    if (!o)
        return;
    free(o->path);
    free(o->kind);
    free(o->error);
    memset(o, 0, sizeof *o);
}

int idb_claim(idb *d, double now, idb_doc *out)
{
    memset(out, 0, sizeof *out);
    lock(d);
    int rc = -1;
    if (sql_exec(d->db, "BEGIN IMMEDIATE")) {
        sqlite3_stmt *q = sql_prep(d->db, "SELECT " DOC_COLUMNS " FROM docs WHERE state=? AND "
                                   "next_run<=? ORDER BY next_run, id LIMIT 1",
                                   "id", (int64_t)DOC_PENDING, now);
        int st = q ? sqlite3_step(q) : SQLITE_ERROR;
        if (st == SQLITE_ROW)
            read_doc(q, out);
        sqlite3_finalize(q);
        if (st == SQLITE_DONE)
            rc = 0;
        else if (st == SQLITE_ROW &&
                 sql_run(d->db, sql_prep(d->db, "UPDATE docs SET attempts=attempts+1 WHERE id=?",
                                         "i", out->id)) == 1) {
            out->attempts++;
            rc = 1;
        }
        if (rc < 0 || !sql_exec(d->db, "COMMIT")) {
            rollback(d);
            rc = -1;
        }
    }
    unlock(d);
    if (rc != 1)
        idb_doc_free(out);
    return rc;
}

double idb_next_due(idb *d)
{
    lock(d);
    sqlite3_stmt *q = sql_prep(d->db, "SELECT min(next_run) FROM docs WHERE state=?", "i",
                               (int64_t)DOC_PENDING);
    double t = -1;
    if (q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
        t = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    unlock(d);
    return t;
}

int idb_store(idb *d, const idb_doc *doc, const idb_chunk_in *c, size_t n, int dropped,
              const char *model, int dim, const char *note, double now)
{
    lock(d);
    if (!sql_exec(d->db, "BEGIN IMMEDIATE")) {
        unlock(d);
        return -1;
    }
    /* the file may have changed (or gone) while it was read: then its row
     * says so and this text is stale */
    sqlite3_stmt *q = sql_prep(d->db, "SELECT size, mtime FROM docs WHERE id=?", "i", doc->id);
    int st = q ? sqlite3_step(q) : SQLITE_ERROR;
    bool current = st == SQLITE_ROW && sqlite3_column_int64(q, 0) == doc->size &&
                   sqlite3_column_int64(q, 1) == doc->mtime;
    sqlite3_finalize(q);
    int ok = st == SQLITE_ROW || st == SQLITE_DONE;
    int64_t *ids = n ? calloc(n, sizeof *ids) : NULL;   /* of the vectors stored */
    if (ok && current) {
        ok = drop_chunks(d, doc->id) == 0;
        for (size_t i = 0; ok && i < n; i++) {
            /* the text is bound by length: it is not NUL-terminated */
            sqlite3_stmt *t = sql_prep(d->db, "INSERT INTO chunks(doc, ord, line0, line1, text,"
                                       " t0, t1) VALUES(?,?,?,?,?,?,?)", "iiii", doc->id,
                                       (int64_t)i, (int64_t)c[i].line0, (int64_t)c[i].line1);
            bool timed = c[i].t0 >= 0;
            if (t && (sqlite3_bind_text(t, 5, c[i].text, (int)c[i].len, SQLITE_TRANSIENT) !=
                          SQLITE_OK ||
                      (timed ? sqlite3_bind_double(t, 6, c[i].t0) : sqlite3_bind_null(t, 6)) !=
                          SQLITE_OK ||
                      (timed ? sqlite3_bind_double(t, 7, c[i].t1) : sqlite3_bind_null(t, 7)) !=
                          SQLITE_OK)) {
                sqlite3_finalize(t);
                t = NULL;
            }
            ok = sql_run(d->db, t) == 1;
            int64_t id = sqlite3_last_insert_rowid(d->db);
            if (ok)
                ok = sql_run(d->db, sql_prep(d->db, "INSERT INTO chunks_fts(rowid, text) SELECT id,"
                                             " text FROM chunks WHERE id=?", "i", id)) == 1;
            if (ok && c[i].vec && model) {
                ok = sql_run(d->db, sql_prep(d->db, "INSERT INTO vecs(chunk, model, dim, v)"
                                             " VALUES(?,?,?,?)", "isib", id, model, (int64_t)dim,
                                             (const void *)c[i].vec,
                                             (size_t)dim * sizeof(float))) == 1;
                if (ids)
                    ids[i] = id;
            }
        }
        ok = ok && sql_run(d->db, sql_prep(d->db,
            "UPDATE docs SET state=?, error=?, chunks=?, dropped=?, model=?, indexed_at=?,"
            " attempts=0 WHERE id=?", "isiisdi", (int64_t)DOC_INDEXED, note, (int64_t)n,
            (int64_t)dropped, model, now, doc->id)) == 1;
    }
    ok = ok && sql_exec(d->db, "COMMIT");
    if (!ok)
        rollback(d);
    /* the committed vectors join those in memory (or it is filled anew) */
    if (ok && current && model && cache_current(d) && vcache_ready(d->vc, model, dim))
        for (size_t i = 0; i < n; i++)
            if (c[i].vec && (!ids || !vcache_append(d->vc, ids[i], c[i].vec))) {
                d->vgen++;
                break;
            }
    free(ids);
    unlock(d);
    return ok ? 0 : -1;
}

int idb_fail(idb *d, const idb_doc *doc, bool retry, int max_attempts, double delay,
             const char *why, double now)
{
    doc_state to = !retry ? DOC_FAILED : doc->attempts >= max_attempts ? DOC_DEAD : DOC_PENDING;
    double wait = delay * pow(2, doc->attempts > 0 ? doc->attempts - 1 : 0);
    if (wait > 3600)
        wait = 3600;
    lock(d);
    int ok = sql_exec(d->db, "BEGIN IMMEDIATE");
    int rc = ok ? sql_run(d->db, sql_prep(d->db,
        "UPDATE docs SET state=?, error=?, next_run=? WHERE id=? AND size=? AND mtime=?",
        "isdiii", (int64_t)to, why, to == DOC_PENDING ? now + wait : 0.0, doc->id, doc->size,
        doc->mtime)) : -1;
    /* a file that is not indexed any more is not searchable any more: its
     * last good version's passages go (a file made unreadable on purpose
     * must not stay in the answers) */
    if (rc == 1 && to != DOC_PENDING)
        rc = drop_chunks(d, doc->id) == 0 &&
             sql_run(d->db, sql_prep(d->db, "UPDATE docs SET chunks=0, model=NULL WHERE id=?",
                                     "i", doc->id)) == 1 ? 1 : -1;
    ok = ok && rc >= 0 && sql_exec(d->db, "COMMIT");
    if (!ok)
        rollback(d);
    unlock(d);
    return ok ? 0 : -1;
}

int idb_release(idb *d, const idb_doc *doc, double next_run)
{
    lock(d);
    int rc = sql_run(d->db, sql_prep(d->db,
        "UPDATE docs SET attempts=max(attempts-1, 0), next_run=? WHERE id=? AND state=?", "dii",
        next_run, doc->id, (int64_t)DOC_PENDING));
    unlock(d);
    return rc < 0 ? -1 : 0;
}

int idb_recover(idb *d, const char *model, int max_attempts)
{
    lock(d);
    /* a file whose every attempt was cut short (hearthd killed, or taking
     * the machine down with it) is dead, not tried at every start forever */
    int a = sql_run(d->db, sql_prep(d->db,
        "UPDATE docs SET state=?, error='interrupted: hearthd stopped during each of its "
        "attempts' WHERE state=? AND attempts>=?", "iii", (int64_t)DOC_DEAD, (int64_t)DOC_PENDING,
        (int64_t)max_attempts));
    int b = sql_run(d->db, sql_prep(d->db,
        "UPDATE docs SET state=?, attempts=0, next_run=0 WHERE state=? AND"
        " coalesce(model,'') IS NOT coalesce(?,'')", "iis", (int64_t)DOC_PENDING,
        (int64_t)DOC_INDEXED, model));
    unlock(d);
    return a < 0 || b < 0 ? -1 : b;
}

int idb_retry_all(idb *d)
{
    lock(d);
    int rc = sql_run(d->db, sql_prep(d->db,
        "UPDATE docs SET state=?, attempts=0, next_run=0, error=NULL WHERE state IN (?,?)", "iii",
        (int64_t)DOC_PENDING, (int64_t)DOC_FAILED, (int64_t)DOC_DEAD));
    unlock(d);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

int idb_get_counts(idb *d, idb_counts *c)
{
    memset(c, 0, sizeof *c);
    lock(d);
    int ok = 1;
    sqlite3_stmt *q = sql_prep(d->db, "SELECT state, count(*) FROM docs GROUP BY state", "");
    ok = q != NULL;
    while (q && sqlite3_step(q) == SQLITE_ROW) {
        int s = sqlite3_column_int(q, 0);
        if (s >= 0 && s < DOC_NSTATES)
            c->docs[s] = sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    static const char *const tot[] = { "SELECT count(*) FROM chunks",
                                       "SELECT count(*) FROM vecs",
                                       "SELECT count(*) FROM folders" };
    int64_t *dst[] = { &c->chunks, &c->vectors, &c->folders };
    for (int i = 0; i < 3 && ok; i++) {
        q = sql_prep(d->db, tot[i], "");
        ok = q && sqlite3_step(q) == SQLITE_ROW;
        if (ok)
            *dst[i] = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    unlock(d);
    return ok ? 0 : -1;
}

int idb_docs(idb *d, int state, int limit, const char *scope, idb_doc **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit < 1)
        return 0;
    lock(d);
    sqlite3_stmt *q = sql_prep(d->db, "SELECT " DOC_COLUMNS " FROM docs WHERE (?1 < 0 OR state=?1)"
                               " AND hearth_in(path, ?3) ORDER BY changed DESC, id DESC LIMIT ?2",
                               "iis", (int64_t)state, (int64_t)limit, scope);
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    while (q && *n < (size_t)limit && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (!*out && !(*out = calloc((size_t)limit, sizeof **out))) {
            rc = SQLITE_NOMEM;
            break;
        }
        read_doc(q, &(*out)[(*n)++]);
    }
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;       /* stopped at the limit */
    sqlite3_finalize(q);
    unlock(d);
    if (rc != SQLITE_DONE) {
        idb_docs_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

void idb_docs_free(idb_doc *docs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        idb_doc_free(&docs[i]);
    free(docs);
}

int idb_bm25(idb *d, const char *fts_query, const char *scope, idb_hit *out, int limit)
{
    lock(d);
    /* bm25() is lower for better matches: negated, higher is better */
    sqlite3_stmt *q = scope
        ? sql_prep(d->db, "SELECT f.rowid, -bm25(chunks_fts) FROM chunks_fts f JOIN chunks c"
                   " ON c.id=f.rowid JOIN docs d ON d.id=c.doc WHERE chunks_fts MATCH ? AND"
                   " hearth_in(d.path, ?) ORDER BY bm25(chunks_fts) LIMIT ?", "ssi", fts_query,
                   scope, (int64_t)limit)
        : sql_prep(d->db, "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE "
                   "chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?", "si",
                   fts_query, (int64_t)limit);
    int n = 0, rc = q ? SQLITE_ROW : SQLITE_ERROR;
    while (q && n < limit && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        out[n].chunk = sqlite3_column_int64(q, 0);
        out[n].score = sqlite3_column_double(q, 1);
        n++;
    }
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    sqlite3_finalize(q);
    unlock(d);
    return rc == SQLITE_DONE ? n : -1;
}

/* Keep the best `limit` hits in out (a min-heap by score; sorted at the end). */
static void heap_push(idb_hit *h, int *n, int limit, idb_hit x)
{
    if (*n < limit) {
        int i = (*n)++;
        while (i > 0 && h[(i - 1) / 2].score > x.score) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = x;
        return;
    }
    if (x.score <= h[0].score)
        return;
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        double ms = x.score;
        if (l < *n && h[l].score < ms) {
            m = l;
            ms = h[l].score;
        }
        if (r < *n && h[r].score < ms)
            m = r;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const idb_hit *)a)->score, y = ((const idb_hit *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

void idb_set_vector_memory(idb *d, size_t bytes)
{
    lock(d);
    vcache_free(d->vc);
    d->vc = bytes ? vcache_new(bytes) : NULL;
    d->vc_too_big = false;
    d->vc_fills = 0;
    unlock(d);
}

void idb_vector_memory(idb *d, idb_vmem *out)
{
    lock(d);
    *out = (idb_vmem){ d->vc ? vcache_count(d->vc) : 0, d->vc ? vcache_bytes(d->vc) : 0,
                       d->vc_fills, d->vc != NULL, d->vc_too_big };
    unlock(d);
}

/* Fill the cache with model's vectors of dim; false when they do not fit
 * (then it stays off until idb_set_vector_memory) or cannot be read. Under
 * the lock. */
static bool fill_cache(idb *d, const char *model, int dim)
{
    sqlite3_stmt *q = sql_prep(d->db, "SELECT count(*) FROM vecs WHERE model=? AND dim=?", "si",
                               model, (int64_t)dim);
    size_t expect = q && sqlite3_step(q) == SQLITE_ROW ? (size_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    bool ok = vcache_begin(d->vc, model, dim, expect);
    q = ok ? sql_prep(d->db, "SELECT chunk, v FROM vecs WHERE model=? AND dim=? ORDER BY chunk",
                      "si", model, (int64_t)dim)
           : NULL;
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    while (ok && q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const float *v = sqlite3_column_blob(q, 1);
        if (v && sqlite3_column_bytes(q, 1) == dim * (int)sizeof(float))
            ok = vcache_add(d->vc, sqlite3_column_int64(q, 0), v);
    }
    sqlite3_finalize(q);
    if (!ok) {
        d->vc_too_big = true;
        log_warn("index: %zu vectors of %s do not fit in index-vector-memory; vector search "
                 "reads them from disk", expect, model);
    }
    if (!ok || rc != SQLITE_DONE) {
        vcache_clear(d->vc);
        return false;
    }
    vcache_end(d->vc);
    d->vc_gen = d->vgen;
    d->vc_fills++;
    return true;
}

int idb_vector_memory_fill(idb *d, const char *model)
{
    if (!model || !*model)
        return 0;
    lock(d);
    int rc = 0;
    if (d->vc && !d->vc_too_big) {
        sqlite3_stmt *q = sql_prep(d->db, "SELECT dim FROM vecs WHERE model=? LIMIT 1", "s",
                                   model);
        int dim = q && sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : 0;
        sqlite3_finalize(q);
        if (dim > 0 && !(cache_current(d) && vcache_ready(d->vc, model, dim)))
            rc = fill_cache(d, model, dim) ? 1 : -1;
    }
    unlock(d);
    return rc;
}

/* Cosine of qv (norm qn) and a stored vector's blob; false when it is not
 * a usable vector of dim. */
static bool blob_cosine(const float *qv, double qn, const void *blob, int bytes, int dim,
                        double *out)
{
    const float *v = blob;
    if (!v || bytes != dim * (int)sizeof(float))
        return false;
    float dot = 0, vn = 0;
    for (int k = 0; k < dim; k++) {
        dot += qv[k] * v[k];
        vn += v[k] * v[k];
    }
    if (!(vn > 0))
        return false;
    *out = dot / (qn * sqrt(vn));
    return true;
}

/* The candidates' exact scores: ids from the cache, vectors from disk. */
static int rescore(idb *d, const float *qv, double qn, int dim, const int64_t *ids, int nc,
                   idb_hit *out, int limit)
{
    sqlite3_stmt *q = sql_prep(d->db, "SELECT v FROM vecs WHERE chunk=?", "");
    if (!q)
        return -1;
    int n = 0;
    for (int i = 0; i < nc; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, ids[i]);
        double c;
        if (sqlite3_step(q) == SQLITE_ROW &&
            blob_cosine(qv, qn, sqlite3_column_blob(q, 0), sqlite3_column_bytes(q, 0), dim, &c))
            heap_push(out, &n, limit, (idb_hit){ ids[i], c });
    }
    sqlite3_finalize(q);
    return n;
}

int idb_nearest(idb *d, const char *model, const float *qv, int dim, const char *scope,
                idb_hit *out, int limit)
{
    if (limit < 1)
        return 0;
    double qn = 0;
    for (int k = 0; k < dim; k++)
        qn += (double)qv[k] * qv[k];
    qn = sqrt(qn);
    if (qn == 0 || !isfinite(qn))
        return 0;
    lock(d);
    int n = 0, rc = SQLITE_DONE;
    /* a search within some folders reads their vectors from disk */
    /* never filled here (a request's thread): idb_vector_memory_fill does
     * that on the indexer's */
    bool cached = !scope && cache_current(d) && vcache_ready(d->vc, model, dim);
    if (cached) {
        /* the first pass finds 4x the candidates asked for (at least
         * IDB_RESCORE_MIN); the exact pass orders them */
        int nc = limit * 4 > IDB_RESCORE_MIN ? limit * 4 : IDB_RESCORE_MIN;
        int64_t *ids = malloc((size_t)nc * sizeof *ids);
        nc = ids ? vcache_search(d->vc, qv, ids, nc) : -1;
        n = nc < 0 ? -1 : rescore(d, qv, qn, dim, ids, nc, out, limit);
        free(ids);
        if (n < 0)
            rc = SQLITE_ERROR;
    } else {
        sqlite3_stmt *q = scope
            ? sql_prep(d->db, "SELECT v.chunk, v.v FROM vecs v JOIN chunks c ON c.id=v.chunk"
                       " JOIN docs d ON d.id=c.doc WHERE v.model=? AND v.dim=? AND"
                       " hearth_in(d.path, ?)", "sis", model, (int64_t)dim, scope)
            : sql_prep(d->db, "SELECT chunk, v FROM vecs WHERE model=? AND dim=?", "si", model,
                       (int64_t)dim);
        rc = q ? SQLITE_ROW : SQLITE_ERROR;
        double c;
        while (q && (rc = sqlite3_step(q)) == SQLITE_ROW)
            if (blob_cosine(qv, qn, sqlite3_column_blob(q, 1), sqlite3_column_bytes(q, 1), dim, &c))
                heap_push(out, &n, limit, (idb_hit){ sqlite3_column_int64(q, 0), c });
        sqlite3_finalize(q);
    }
    unlock(d);
    if (rc != SQLITE_DONE)
        return -1;
    qsort(out, (size_t)n, sizeof *out, by_score_desc);
    return n;
}

int idb_passage_get(idb *d, int64_t chunk, idb_passage *out)
{
    memset(out, 0, sizeof *out);
    lock(d);
    sqlite3_stmt *q = sql_prep(d->db, "SELECT d.path, c.text, c.line0, c.line1, c.doc,"
                               " coalesce(c.t0, -1), coalesce(c.t1, -1) FROM chunks c"
                               " JOIN docs d ON d.id=c.doc WHERE c.id=?", "i", chunk);
    int st = q ? sqlite3_step(q) : SQLITE_ERROR;
    if (st == SQLITE_ROW) {
        out->path = col_dup(q, 0);
        out->text = col_dup(q, 1);
        out->line0 = sqlite3_column_int(q, 2);
        out->line1 = sqlite3_column_int(q, 3);
        out->doc = sqlite3_column_int64(q, 4);
        out->t0 = sqlite3_column_double(q, 5);
        out->t1 = sqlite3_column_double(q, 6);
    }
    sqlite3_finalize(q);
    unlock(d);
    return st == SQLITE_ROW ? 1 : st == SQLITE_DONE ? 0 : -1;
}

void idb_passage_free(idb_passage *p)
{
    free(p->path);
    free(p->text);
    memset(p, 0, sizeof *p);
}

/* ---- checks --------------------------------------------------------------- */

static double cosine(const float *a, const float *b, int dim)
{
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < dim; k++) {
        ab += (double)a[k] * b[k];
        aa += (double)a[k] * a[k];
        bb += (double)b[k] * b[k];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

int idb_check(idb *d, idb_check_result *r)
{
    memset(r, 0, sizeof *r);
    lock(d);
    sqlite3_stmt *q = sql_prep(d->db, "PRAGMA quick_check", "");
    const char *v = q && sqlite3_step(q) == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0)
                                                       : NULL;
    r->storage_ok = v && !strcmp(v, "ok");
    snprintf(r->storage, sizeof r->storage, "%s", r->storage_ok ? "the database file is sound"
             : v ? v : sqlite3_errmsg(d->db));
    sqlite3_finalize(q);

    char *msg = NULL;
    r->fts_ok = sqlite3_exec(d->db, "INSERT INTO chunks_fts(chunks_fts, rank) "
                             "VALUES('integrity-check', 1)", NULL, NULL, &msg) == SQLITE_OK;
    snprintf(r->fts, sizeof r->fts, "%s", r->fts_ok ? "the full-text index matches the passages"
             : msg ? msg : "integrity-check failed");
    sqlite3_free(msg);

    /* every vector well-formed; a sample, spread over the index, for the
     * spread of directions */
    q = sql_prep(d->db, "SELECT v.dim, v.v, c.doc FROM vecs v JOIN chunks c ON c.id=v.chunk "
                 "ORDER BY v.chunk", "");
    int64_t total = 0;
    sqlite3_stmt *cnt = sql_prep(d->db, "SELECT count(*) FROM vecs", "");
    if (cnt && sqlite3_step(cnt) == SQLITE_ROW)
        total = sqlite3_column_int64(cnt, 0);
    sqlite3_finalize(cnt);
    int64_t every = total > IDB_CHECK_SAMPLE ? total / IDB_CHECK_SAMPLE : 1;
    float *sample = NULL;
    int64_t *sample_doc = NULL;
    int ns = 0, dim = 0;
    bool mixed_dims = false;
    int64_t i = 0;
    while (q && sqlite3_step(q) == SQLITE_ROW) {
        int vd = sqlite3_column_int(q, 0);
        const float *vv = sqlite3_column_blob(q, 1);
        int bytes = sqlite3_column_bytes(q, 1);
        r->vectors_checked++;
        bool bad = vd <= 0 || !vv || bytes != vd * (int)sizeof(float);
        double norm = 0;
        for (int k = 0; !bad && k < vd; k++) {
            if (!isfinite(vv[k]))
                bad = true;
            norm += (double)vv[k] * vv[k];
        }
        bad |= norm == 0;
        if (!bad && dim && vd != dim)
            mixed_dims = true;
        if (bad) {
            r->vectors_bad++;
            continue;
        }
        if (!dim) {
            dim = vd;
            sample = malloc((size_t)IDB_CHECK_SAMPLE * (size_t)dim * sizeof *sample);
            sample_doc = malloc(IDB_CHECK_SAMPLE * sizeof *sample_doc);
        }
        if (sample && sample_doc && vd == dim && ns < IDB_CHECK_SAMPLE && i++ % every == 0) {
            memcpy(sample + (size_t)ns * (size_t)dim, vv, (size_t)dim * sizeof *sample);
            sample_doc[ns++] = sqlite3_column_int64(q, 2);
        }
    }
    sqlite3_finalize(q);
    unlock(d);
    double sum = 0;
    for (int a = 0; sample && a < ns; a++)
        for (int b = a + 1; b < ns && b < a + 8; b++)
            if (sample_doc[a] != sample_doc[b]) {   /* passages of different files */
                sum += cosine(sample + (size_t)a * (size_t)dim, sample + (size_t)b * (size_t)dim,
                              dim);
                r->pairs++;
            }
    free(sample);
    free(sample_doc);
    r->mean_cosine = r->pairs ? sum / r->pairs : 0;
    if (r->vectors_bad)
        snprintf(r->vectors, sizeof r->vectors, "%lld of %lld vectors are malformed (wrong size, "
                 "NaN or infinite values, or zero)", (long long)r->vectors_bad,
                 (long long)r->vectors_checked);
    else if (mixed_dims)
        snprintf(r->vectors, sizeof r->vectors, "vectors of different sizes: more than one "
                 "embedding model's vectors are mixed");
    else if (r->pairs >= 10 && r->mean_cosine > IDB_CHECK_MAX_COSINE)
        snprintf(r->vectors, sizeof r->vectors, "the vectors are nearly all alike (mean cosine "
                 "%.3f over %d pairs of passages of different files): the embedding model "
                 "cannot tell passages apart; its weights may be damaged", r->mean_cosine,
                 r->pairs);
    else
        snprintf(r->vectors, sizeof r->vectors, "%lld vectors well-formed; mean cosine %.3f over "
                 "%d pairs of different files", (long long)r->vectors_checked, r->mean_cosine,
                 r->pairs);
    r->vectors_ok = !r->vectors_bad && !mixed_dims &&
                    !(r->pairs >= 10 && r->mean_cosine > IDB_CHECK_MAX_COSINE);
    return 0;
}
