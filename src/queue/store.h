/*
 * store.h: the durable queue of batch jobs, one SQLite file
 * (DATA-DIR/jobs.db), and the jobs' input files beside it (DATA-DIR/jobs/).
 *
 * A batch job is a transcription, translation or OCR of one stored file. It
 * is accepted only once its input file and its row are on disk: the input is
 * fsync'd and renamed into jobs/ (and the folder fsync'd) before the row is
 * committed, and every commit is durable (WAL, synchronous=FULL), so a job
 * acknowledged to a client survives kill -9 and power loss.
 *
 * Life of a job:
 *
 *   queued --claim--> running --> completed          (result kept, input deleted)
 *     ^                  |------> failed             (the input was refused: 4xx)
 *     |                  |------> dead               (attempts used up: dead letter)
 *     +--- retry delay --+  (a retryable failure: worker crash, model load)
 *
 * A claim counts an attempt and is committed before the job runs, so a job
 * that was running when hearthd died (store_recover at the next start)
 * has used that attempt: a job that brings hearthd down every time ends up
 * dead instead of looping. Failed, dead and cancelled jobs keep their input
 * until deleted, so they can be retried (store_retry) or inspected.
 *
 * Times are unix seconds (doubles). Ids grow and are never reused.
 *
 * Thread-safety: every function may be called from any thread (one mutex
 * around the connection). Ownership: a store is the caller's until
 * store_close; strings in a bjob are copies (bjob_free frees options).
 */
#ifndef HEARTH_STORE_H
#define HEARTH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef enum {
    BJ_QUEUED, BJ_RUNNING, BJ_COMPLETED, BJ_FAILED, BJ_DEAD, BJ_CANCELLED, BJ_NSTATUS
} bjob_status;

/* "queued", "running", ...; and back (-1 for an unknown name). */
const char *bjob_status_name(bjob_status s);
int bjob_status_of(const char *name);

#define BJOB_KIND_MAX   16
#define BJOB_MODEL_MAX  64
#define BJOB_FORMAT_MAX 16
#define BJOB_NAME_MAX   255
#define BJOB_INPUT_MAX  64
#define BJOB_OWNER_MAX  32                 /* an API key's name (API_KEY_NAME_MAX) */

typedef struct bjob {
    int64_t id;
    char kind[BJOB_KIND_MAX + 1];      /* "transcription", "translation", "ocr" */
    char model[BJOB_MODEL_MAX + 1];
    char format[BJOB_FORMAT_MAX + 1];  /* how the result is rendered */
    char *options;                     /* JSON object: the worker request's fields */
    char input[BJOB_INPUT_MAX + 1];    /* the input's file name inside jobs/ */
    char input_name[BJOB_NAME_MAX + 1];/* the client's file name, display only */
    int64_t input_bytes;
    bjob_status status;
    int attempts, max_attempts;
    double created, started, finished, next_run;
    char error_code[48];
    char error[400];
    int64_t result_bytes;
    int64_t position;                  /* queued: jobs due before it (store_get) */
    double progress;                   /* running: the share of its file done, 0..1 */
    char idem[129];                    /* the client's idempotency key, "" when none */
    bool cancel_requested;             /* running: the user asked to cancel it */
    char owner[BJOB_OWNER_MAX + 1];    /* the API key's name that added it, "" without keys */
} bjob;

void bjob_free(bjob *j);

typedef struct store store;

/* Open (creating) the store at path. A file that fails SQLite's quick check
 * is left as it is and refused with the reason in err. */
store *store_open(const char *path, char *err, size_t errlen);
void   store_close(store *s);

/* At start: jobs left running by a stopped hearthd go back to the queue, or
 * become dead when that was their last attempt. Counts each in *requeued,
 * *dead. Returns 0 or -1. */
int store_recover(store *s, double now, int *requeued, int *dead);

/* Add a queued job (id, status, attempts, times but created are ignored),
 * unless max_active (> 0) jobs are already queued or running: then
 * STORE_FULL. Returns the new id, or -1 (err). */
#define STORE_FULL (-3)
#define STORE_DUPLICATE (-4)          /* j->idem is already one of j->owner's jobs */
int64_t store_add(store *s, const bjob *j, double now, int64_t max_active, char *err,
                  size_t errlen);

/* Claim the oldest job due at now: it becomes running and its attempt is
 * counted (committed before this returns). 1 with *out filled, 0 when none
 * is due, -1 on error. *next_due gets the earliest next_run among the
 * queued jobs not yet due (0 when there is none). */
int store_claim(store *s, double now, bjob *out, double *next_due);

/* A running job's outcomes. store_complete keeps the result. store_fail
 * with retryable: queued again after delay * 2^(attempts-1) seconds (at
 * most an hour), or dead when attempts are used up; without: failed.
 * store_release puts a job back without counting its attempt, due again
 * at next_run (0: at once; hearthd is stopping, or the model could not take
 * it yet). Each returns the job's new status, or -1. */
int store_complete(store *s, int64_t id, const char *result, size_t n, double now);
int store_fail(store *s, int64_t id, bool retryable, double delay, const char *code,
               const char *msg, double now);
int store_release(store *s, int64_t id, double next_run);
/* How far a running job is (0..1; kept until the next claim). */
int store_progress(store *s, int64_t id, double fraction);
/* A running job that was cancelled while it ran. */
int store_cancelled(store *s, int64_t id, double now);

/* 1 with *out filled, 0 when there is no such job, -1 on error. */
int store_get(store *s, int64_t id, bjob *out);
/* A completed job's result into out: 1, 0 when it has none, -1. */
int store_result(store *s, int64_t id, buf *out);

/* Up to max jobs with ids below before (0: from the newest), newest first,
 * of one owner (NULL: any) and one status (-1: any). Returns how many were
 * filled, or -1. */
int store_list(store *s, const char *owner, int status, int64_t before, bjob *out, int max);
/* Jobs per status, of one owner (NULL: every job). */
int store_counts(store *s, const char *owner, int64_t counts[BJ_NSTATUS]);

/* User actions. Each returns the job's status before the action,
 * STORE_NOT_FOUND when there is no such job, or -1 on error.
 * store_cancel: a queued job becomes cancelled; a running one is marked
 * (its status is returned unchanged): the runner stops it, and an attempt
 * that would have queued it again cancels it instead. store_retry: a
 * failed, dead or cancelled job is queued again with its attempts reset.
 * store_delete: removes a job that is not running, with its result; the
 * caller removes its input file (copied into input). */
#define STORE_NOT_FOUND (-2)
int store_cancel(store *s, int64_t id, double now);
int store_retry(store *s, int64_t id, double now);
int store_delete(store *s, int64_t id, char input[BJOB_INPUT_MAX + 1]);

/* The job this owner (NULL: "") added with this idempotency key: its id,
 * 0 when none, -1. Each owner's keys are its own. */
int64_t store_find_idem(store *s, const char *owner, const char *key);

/* Delete completed and cancelled jobs that finished before `before` (unix
 * seconds), calling fn with each one's input name first (a cancelled job
 * still has its file). Failed and dead jobs are kept: they hold a file the
 * user has not got back. Returns how many were deleted, or -1. */
int store_prune(store *s, double before, void (*fn)(void *ud, const char *input), void *ud);

/* Calls fn for every input file name the store refers to (for sweeping
 * jobs/ of files whose job was never committed). */
int store_each_input(store *s, void (*fn)(void *ud, const char *input), void *ud);

#endif
