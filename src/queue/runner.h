/*
 * runner.h: hearthd's batch queue: the store (queue/store.h) and the
 * threads that run its jobs through the scheduler, like any request.
 *
 * A batch job reaches a worker the way an HTTP request does (sched_submit,
 * the same memory budget and model queue), so batch work never overlaps
 * interactive work past RAM; it only waits its turn. `job-workers` threads
 * (default 1) each claim the oldest due job, run it, and record the outcome:
 *
 *  - finished: completed, the worker's answer kept, the input deleted;
 *  - refused for its input (a 4xx: not audio, not an image): failed at once;
 *  - anything else (the worker crashed, the model cannot load, a timeout):
 *    queued again after job-retry-delay * 2^(attempt-1) seconds, and dead
 *    (the dead letter) once job-attempts attempts are used;
 *  - hearthd stopping, or the scheduler saying "not now" (503 at submit:
 *    the model's queue is full or it is in back-off after a crash): put
 *    back without counting the attempt (after the Retry-After it gave).
 *
 * At start the runner recovers jobs a stopped hearthd left running
 * (store_recover) and deletes input files no job refers to (uploads whose
 * row never committed).
 *
 * Thread-safety: every function may be called from any thread.
 * Ownership: runner_stop stops the threads; runner_free frees the runner
 * and closes the store.
 */
#ifndef HEARTH_RUNNER_H
#define HEARTH_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "queue/store.h"
#include "sched/sched.h"

typedef struct runner runner;

/* Open DATA-DIR/jobs.db and DATA-DIR/jobs/, recover, start the threads.
 * NULL with the reason in err (the rest of hearthd runs without batch
 * jobs). The config must outlive the runner (runner_set_config on reload). */
runner *runner_start(const config *cfg, sched *s, char *err, size_t errlen);
void    runner_set_config(runner *r, const config *cfg);
/* Stop claiming, put running jobs back (their attempt not counted) and
 * join the threads. Call before sched_shutdown. */
void    runner_stop(runner *r);
void    runner_free(runner *r);

store  *runner_store(runner *r);
/* The folder holding the inputs (DATA-DIR/jobs). */
const char *runner_dir(const runner *r);
/* A job was added or retried: look again now. */
void    runner_wake(runner *r);
/* Stop job id now if one of the threads is running it (after store_cancel
 * marked it, which covers a job claimed but not yet started). */
void    runner_cancel(runner *r, int64_t id);

#endif
