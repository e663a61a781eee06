/*
 * indexer.h: the personal retrieval index: watched folders flow through
 * extract -> (OCR | transcribe) -> clean -> chunk -> hygiene -> embed into
 * DATA-DIR/index.db (index/db.h), where search (index/search.h) finds them.
 *
 * One thread does the work, so indexing never takes more than one model
 * slot at a time; it reaches models the way an HTTP request does
 * (sched_submit: the same memory budget and queues), so a folder of scans
 * or voice notes waits its turn behind interactive requests instead of
 * overlapping them past RAM.
 *
 *  - Every index-scan-interval seconds (and at once after a folder is added
 *    or a rescan asked) the folders are walked: hidden entries and symlinks
 *    are skipped, and so is what the folder's .gitignore / .hearthignore
 *    files and its exclude patterns leave out (index/ignore.h); new and
 *    changed files become pending, vanished (or newly ignored) ones are
 *    forgotten with their chunks. Ignore files are read though hidden, and
 *    a change to one is seen like any change in the folder.
 *  - Text (notes, writing, code, HTML) is read directly; images and PDFs go
 *    to the "ocr" model; audio to a transcription model (index-asr-model or
 *    the first configured); chunks get vectors from index-embed-model when
 *    one is set.
 *  - The queue is the docs table: an attempt is committed before it runs,
 *    so after kill -9 the file is indexed again, and one that keeps
 *    crashing a worker ends dead after job-attempts, with its error.
 *    Files that are the problem themselves (binary, too large, refused by
 *    the model) end failed at once. "Not now" (503: no memory in time, a
 *    model in back-off) waits without spending an attempt.
 *
 * Thread-safety: every function may be called from any thread.
 * Ownership: indexer_stop joins the thread; indexer_free closes the db.
 */
#ifndef HEARTH_INDEXER_H
#define HEARTH_INDEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "index/db.h"
#include "sched/sched.h"

typedef struct indexer indexer;

/* Open DATA-DIR/index.db and start the thread. NULL with the reason in err
 * (hearthd runs on without the index). cfg must outlive it (or the next
 * indexer_set_config). */
indexer *indexer_start(const config *cfg, sched *s, char *err, size_t errlen);
/* A reload: a new embedding model requeues every document; failed and
 * dead files are tried again (the new configuration may be what they
 * lacked). */
void     indexer_set_config(indexer *x, const config *cfg);
void     indexer_stop(indexer *x);
void     indexer_free(indexer *x);

idb     *indexer_db(indexer *x);

/* Watch a folder (an absolute path to a directory hearthd can read, not
 * inside or around one already watched). exclude: its exclude patterns,
 * one a line (index/ignore.h; checked by the caller), replacing those it
 * had; NULL keeps them. 0, with *existed when the folder was watched
 * already (it is walked again), or an HTTP status (400, 403, 409, 500)
 * with the reason in err. The canonical path goes to canon. */
int  indexer_add_folder(indexer *x, const char *path, const char *exclude, char *canon,
                        size_t canonlen, bool *existed, char *err, size_t errlen);
/* Stop watching: 1, 0 when it was not watched, -1. */
int  indexer_remove_folder(indexer *x, const char *path);
/* Walk the folders now (and retry failed and dead files when retry). */
void indexer_rescan(indexer *x, bool retry);

/* What the indexer is doing, for status and progress. */
typedef struct indexer_activity {
    bool scanning;
    char current[512];          /* the file being indexed, "" when idle */
    int64_t indexed_since_start, failed_since_start;
    double last_scan;           /* epoch seconds, 0 before the first */
    char embed_model[MODEL_NAME_MAX + 1];   /* "" when BM25 alone */
    size_t watches;             /* inotify watches held (folders and subfolders) */
} indexer_activity;
void indexer_get_activity(indexer *x, indexer_activity *out);

#endif
