/*
 * sched.h: the scheduler: which model serves a request, when, and in which
 * worker process.
 *
 * Each configured model has at most one worker. A request (job) is queued on
 * its model; the queue is bounded (config queue-size) and a full queue is
 * refused with 503 so a burst cannot pile up without limit. Jobs are sent to
 * the worker while it has free slots; the worker batches them.
 *
 * Workers start on first use. A worker that dies fails exactly the jobs it was
 * running (502) and is restarted if jobs are waiting. Model names from requests
 * are looked up among configured names only; they never become paths.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef HEARTH_SCHED_H
#define HEARTH_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "sched/job.h"

typedef struct sched sched;

typedef enum { MODEL_UNLOADED, MODEL_LOADING, MODEL_READY, MODEL_FAILED } model_state;

typedef struct model_info {
    char name[MODEL_NAME_MAX + 1];
    model_state state;
    int slots, busy, queued;
    int restarts;
    int64_t created;            /* file mtime, unix seconds */
    char last_error[256];
} model_info;

/* The config must outlive the scheduler. worker_exe: the hearth-worker binary. */
sched *sched_new(const config *cfg, const char *worker_exe, char *err, size_t errlen);
/* Refuses new jobs and stops every worker: asks, then kills after grace_ms.
 * Jobs still running fail with 503. */
void   sched_shutdown(sched *s, int grace_ms);
/* Frees (after sched_shutdown, once no thread uses the scheduler). */
void   sched_free(sched *s);

/* Queue a job on its model (j->model). On success the scheduler holds its
 * own reference. Returns 0, or an HTTP status (404 unknown model, 503 queue
 * full or shutting down, 500 model failed) with a message in err. */
int    sched_submit(sched *s, job *j, char *err, size_t errlen);
/* Withdraw a job: dequeued if waiting, cancelled in the worker if running. */
void   sched_cancel(sched *s, job *j);

size_t sched_model_count(const sched *s);
int    sched_model_info(sched *s, size_t i, model_info *out);
const char *model_state_name(model_state st);

#endif
