/*
 * job.h: one generation request in flight between an HTTP thread (the
 * consumer) and the scheduler (the producer, fed by a worker's frames).
 *
 * The producer appends text and sets state under `mu` and broadcasts `cv`;
 * the consumer waits with job_wait and drains with job_take. A job is
 * reference counted: the HTTP handler holds one reference, the scheduler one
 * while the job is queued or running. Text waiting to be taken is capped
 * (JOB_TEXT_CAP); past it the job fails rather than growing.
 */
#ifndef HEARTH_JOB_H
#define HEARTH_JOB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define JOB_TEXT_CAP (16u << 20)
#define JOB_KEEP_ALIVE_DEFAULT (-2)

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED } job_phase;

typedef struct job_status {
    job_phase phase;
    bool started;              /* the worker accepted the prompt */
    bool dispatched;           /* handed to a worker (it left the model's queue) */
    int prompt_tokens, completion_tokens, cached_tokens;
    double prompt_ms, gen_ms;
    double progress;           /* a document's share done, 0..1 (workers that tell) */
    char finish[16];           /* "stop", "length", "cancelled" */
    bool cancelled;            /* its client went away (sched_cancel) */
    int err_status;            /* HTTP status on failure */
    char err_code[48];
    char err_msg[256];
} job_status;

typedef struct job job;
struct job {
    /* immutable after job_new */
    uint32_t id;
    char rid[40];
    char *payload;             /* the worker request (owned) */
    size_t payload_len;
    char model[72];
    int keep_alive;            /* seconds, -1 forever, JOB_KEEP_ALIVE_DEFAULT */
    int want_kind;             /* the model_kind (sched.h) it needs; -1 any */
    double enqueued_ms;        /* monotonic, set by the scheduler */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    uint64_t version;          /* bumps on every change */
    buf text;                  /* produced, not yet taken */
    buf logprobs;              /* entries of a JSON array (comma-separated), not yet taken */
    job_status st;

    /* owned by the scheduler, under its lock */
    job *qnext;
    int slot;
};

/* A worker request for a stored file: the request's fields (a JSON object
 * such as {"kind":"ocr","language":"eng"}) with "path" put first. Appends
 * to out; 0 or -1 (out of memory or over out's cap). */
int job_payload(buf *out, const char *fields, const char *path);

/* Takes ownership of payload (malloc'd). Returns a job with one reference. */
job *job_new(const char *rid, const char *model, char *payload, size_t len);
void job_ref(job *j);
void job_unref(job *j);      /* accepts NULL */

/* Producer side. */
void job_started(job *j, int prompt_tokens, int cached_tokens);
void job_append(job *j, const char *text, size_t n);
/* Appends entries (the inside of a JSON array) to the pending logprobs. */
void job_append_logprobs(job *j, const char *entries, size_t n);
void job_finish(job *j, const char *finish, int prompt_tokens, int completion_tokens,
                int cached_tokens, double prompt_ms, double gen_ms);
void job_fail(job *j, int status, const char *code, const char *msg);
/* The scheduler handed the job to a worker (does not wake waiters). */
void job_dispatched(job *j);
/* How much of a document is done, 0..1 (does not wake waiters). */
void job_progress(job *j, double fraction);
/* Marks the job as given up by its client (whatever phase it is in). */
void job_mark_cancelled(job *j);

/* Consumer side. Waits until the job changed since *seen (or timeout_ms);
 * returns true if it changed. */
bool job_wait(job *j, uint64_t *seen, int timeout_ms);
/* Moves pending text into out (appending) and copies the status. */
void job_take(job *j, buf *out, job_status *st);
/* The same, and the pending logprobs entries into lp (comma-separated),
 * taken together with the text they belong to. */
void job_take_logprobs(job *j, buf *out, buf *lp, job_status *st);
/* Copies the status alone (the text stays). */
void job_peek(job *j, job_status *st);

#endif
