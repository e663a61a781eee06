/*
 * sql.h: the few SQLite helpers hearthd's stores share (queue/store.c,
 * index/db.c): opening a file the way both need it, and binding a
 * statement's arguments in one call.
 *
 * No state of its own; the caller owns the connection and serialises its
 * use.
 */
#ifndef HEARTH_SQL_H
#define HEARTH_SQL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/* Open (creating, mode 0600) the database at path: busy timeout 5 s, WAL,
 * synchronous=FULL. A damaged file is refused untouched (PRAGMA
 * quick_check), with a message naming the file (not its folder: messages
 * reach clients) and `what` it should have been. NULL with err set. */
sqlite3 *sql_open(const char *path, const char *what, char *err, size_t errlen);

/* Columns added after a table's first version (ALTER TABLE ... ADD COLUMN
 * statements): a file made by an older hearthd gets them; an error that
 * only says a column is there already is not one. Nothing when the table
 * does not exist yet (its CREATE has every column). 0, or -1 with err
 * (naming `name`, the file). */
int sql_add_columns(sqlite3 *db, const char *table, const char *const *alters, size_t n,
                    const char *name, char *err, size_t errlen);

/* Prepare sql and bind the arguments described by fmt: 'i' int64, 'd'
 * double, 's' text (NULL binds NULL), 'b' blob (pointer, size_t). NULL on
 * error. */
sqlite3_stmt *sql_prep(sqlite3 *db, const char *sql, const char *fmt, ...);
/* Step a statement that returns no rows and finalize it: changes made, or
 * -1 (also for q NULL). */
int  sql_run(sqlite3 *db, sqlite3_stmt *q);
bool sql_exec(sqlite3 *db, const char *sql);

#endif
