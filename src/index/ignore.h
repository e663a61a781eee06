/*
 * ignore.h: what the indexer leaves out of a watched folder, in gitignore's
 * syntax: the .gitignore and .hearthignore files found inside the folder,
 * and the folder's own exclude patterns (POST /v1/index/folders).
 *
 * A pattern, one per line:
 *   - blank lines and lines starting with '#' say nothing; trailing spaces
 *     are dropped unless escaped ("\ "), a CR before the newline too;
 *   - "!" in front re-includes what an earlier pattern left out ("\!" and
 *     "\#" start a pattern with a literal '!' or '#');
 *   - a trailing "/" matches directories only;
 *   - a "/" at the start or in the middle anchors the pattern to the
 *     directory of its ignore file (the folder's root for excludes);
 *     without one it matches a name at any depth;
 *   - '*' matches anything but '/', '?' one character but '/', "[a-z]",
 *     "[!0-9]" (or "[^0-9]") and "[[:digit:]]" one character of a class;
 *     '\' makes the next character literal;
 *   - "**" matches across folders: "**" + "/" at the start (in every folder),
 *     "/" + "**" at the end (everything inside), "/" + "**" + "/" in the
 *     middle (zero or more folders); elsewhere "**" is a plain '*'.
 * Matching is case-sensitive (as git on Linux).
 *
 * Precedence, as git's: within one list the last matching pattern decides;
 * a deeper ignore file overrides a shallower one; in one directory the
 * .hearthignore comes after the .gitignore (it can re-include what the
 * .gitignore leaves out); the folder's excludes come before all of them (as
 * patterns given on git's command line). A directory left out is not
 * descended into, so nothing inside it can be re-included.
 *
 * Caps (every byte read from disk or a request is bounded): an ignore file
 * is read up to IGNORE_MAX_FILE bytes, a list holds up to
 * IGNORE_MAX_PATTERNS patterns of up to IGNORE_MAX_PATTERN bytes; what is
 * past a cap is left out and counted in the load report, so the caller can
 * warn (the first patterns are used).
 *
 * Pure functions over caller-owned memory except ignore_rules_load, which
 * reads one file. Not thread-safe per object; separate objects are
 * independent.
 */
#ifndef HEARTH_INDEX_IGNORE_H
#define HEARTH_INDEX_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

#define IGNORE_MAX_FILE     (64 * 1024)     /* bytes read of one ignore file */
#define IGNORE_MAX_PATTERNS 4096            /* patterns in one list */
#define IGNORE_MAX_PATTERN  1024            /* bytes of one pattern (its line) */
#define IGNORE_STACK_MAX    64              /* directory levels an ignore_stack holds */

/* The ignore files read in each directory, in this order. */
#define IGNORE_FILE_GIT    ".gitignore"
#define IGNORE_FILE_HEARTH ".hearthignore"

/* One list of patterns (one directory's ignore files, or a folder's
 * excludes). Opaque; owns copies of its patterns. */
typedef struct ignore_rules ignore_rules;

ignore_rules *ignore_rules_new(void);       /* NULL when out of memory */
void          ignore_rules_free(ignore_rules *r);       /* NULL is fine */
size_t        ignore_rules_count(const ignore_rules *r);

/* What one line is to a list. */
typedef enum {
    IGNORE_ADDED,               /* a pattern */
    IGNORE_NOTHING,             /* blank or a comment */
    IGNORE_INVALID,             /* a trailing lone '\', an unclosed '[', an unknown [:class:],
                                   or nothing left after "!" and "/" */
    IGNORE_TOO_LONG,            /* longer than IGNORE_MAX_PATTERN */
    IGNORE_FULL,                /* the list already holds IGNORE_MAX_PATTERNS */
    IGNORE_NOMEM,
} ignore_line;

/* Add one line (len bytes, no newline in it; a NUL inside makes it invalid). */
ignore_line ignore_rules_add(ignore_rules *r, const char *line, size_t len);

/* What loading a file, or text of many lines, left out. */
typedef struct ignore_report {
    size_t added;               /* patterns added */
    size_t invalid, too_long;   /* lines skipped */
    size_t over_cap;            /* pattern lines past IGNORE_MAX_PATTERNS */
    bool truncated;             /* the file was longer than IGNORE_MAX_FILE: its end unread */
} ignore_report;

/* Every line of text (LF or CRLF separated) into r. rep may be NULL. */
void ignore_rules_parse(ignore_rules *r, const char *text, size_t len, ignore_report *rep);

/* Read the ignore file name in the directory open as dirfd into r: a
 * regular file only, never through a symlink, never blocking (a FIFO is
 * not waited on), the first IGNORE_MAX_FILE bytes (the last, partial line
 * of a truncated file is dropped). 1 read, 0 none there (or not a regular
 * file), -1 it could not be read (errno). */
int ignore_rules_load(ignore_rules *r, int dirfd, const char *name, ignore_report *rep);

/* A list's verdict on path, relative to the list's directory ("a/b.txt";
 * no leading or trailing '/'). */
typedef enum { IGNORE_NO_MATCH, IGNORE_EXCLUDE, IGNORE_INCLUDE } ignore_verdict;
ignore_verdict ignore_rules_match(const ignore_rules *r, const char *path, bool is_dir);

/* Whether one pattern matches path (a test helper and the matcher's
 * interface; anchoring, negation and dir-only as a list would apply them;
 * an invalid pattern matches nothing). */
bool ignore_pattern_matches(const char *pattern, const char *path, bool is_dir);

/* ---- a walk's view: the lists of the directories from the root down ---- */

/* Paths are relative to the walked folder's root. The top list (the
 * folder's excludes) is borrowed and may be NULL; pushed lists are owned. */
typedef struct ignore_stack {
    const ignore_rules *top;
    struct ignore_level {
        ignore_rules *rules;    /* NULL: no ignore file in that directory */
        size_t base_len;        /* its directory's path length ("" for the root: 0) */
    } level[IGNORE_STACK_MAX];
    int depth;
} ignore_stack;

void ignore_stack_init(ignore_stack *s, const ignore_rules *top);
/* Enter a directory (dir_len: its path's length, 0 for the root) with its
 * lists (taken, may be NULL). -1 when IGNORE_STACK_MAX levels are held
 * (rules freed): the caller should not descend. */
int  ignore_stack_push(ignore_stack *s, ignore_rules *rules, size_t dir_len);
void ignore_stack_pop(ignore_stack *s);     /* frees the deepest level's lists */
void ignore_stack_clear(ignore_stack *s);   /* pops every level */
/* Whether path (in the deepest directory pushed) is left out. */
bool ignore_stack_excludes(const ignore_stack *s, const char *path, bool is_dir);

#endif
