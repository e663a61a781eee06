/*
 * sql.c: shared SQLite helpers (sql.h).
 */
#include "core/sql.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

sqlite3 *sql_open(const char *path, const char *what, char *err, size_t errlen)
{
    /* private like the rest of the data dir: SQLite would create it 0644,
     * and its -wal and -shm files take the database's mode */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                             SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "%s cannot be opened: %s", name,
                     db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    /* a damaged file is refused, never repaired or replaced behind the
     * user's back: what is in it is theirs */
    sqlite3_stmt *q = NULL;
    const char *verdict = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        verdict = (const char *)sqlite3_column_text(q, 0);
    if (!verdict || strcmp(verdict, "ok")) {
        if (err && errlen)
            snprintf(err, errlen, "%s is damaged or not %s (%s); it is left as it is: "
                     "move it aside to start an empty one", name, what,
                     verdict ? verdict : sqlite3_errmsg(db));
        sqlite3_finalize(q);
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_finalize(q);
    char *msg = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                     &msg) != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", name, msg ? msg : "cannot set up");
        sqlite3_free(msg);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

int sql_add_columns(sqlite3 *db, const char *table, const char *const *alters, size_t n,
                    const char *name, char *err, size_t errlen)
{
    char probe[128];
    snprintf(probe, sizeof probe, "SELECT 1 FROM %s LIMIT 0", table);
    if (sqlite3_exec(db, probe, NULL, NULL, NULL) != SQLITE_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char *why = NULL;
        if (sqlite3_exec(db, alters[i], NULL, NULL, &why) != SQLITE_OK &&
            !(why && strstr(why, "duplicate column"))) {
            if (err && errlen)
                snprintf(err, errlen, "%s: cannot add a column: %s", name, why ? why : "?");
            sqlite3_free(why);
            return -1;
        }
        sqlite3_free(why);
    }
    return 0;
}

sqlite3_stmt *sql_prep(sqlite3 *db, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = SQLITE_OK;
    for (int i = 0; fmt[i] && rc == SQLITE_OK; i++) {
        switch (fmt[i]) {
        case 'i': rc = sqlite3_bind_int64(q, i + 1, va_arg(ap, int64_t)); break;
        case 'd': rc = sqlite3_bind_double(q, i + 1, va_arg(ap, double)); break;
        case 's': rc = sqlite3_bind_text(q, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
                  break;
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            rc = sqlite3_bind_blob64(q, i + 1, p ? p : "", n, SQLITE_TRANSIENT);
            break;
        }
        default: rc = SQLITE_MISUSE; break;
        }
    }
    va_end(ap);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(q);
        return NULL;
    }
    return q;
}

int sql_run(sqlite3 *db, sqlite3_stmt *q)
{
    if (!q)
        return -1;
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? sqlite3_changes(db) : -1;
}

bool sql_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
}
