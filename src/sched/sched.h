/*
 * sched.h: the scheduler: which model serves a request, when, and in which
 * worker process.
 *
 * Each configured model has at most one worker. A request (job) is queued on
 * its model; the queue is bounded (config queue-size) and a full queue is
 * refused with 503 so a burst cannot pile up without limit. Jobs are sent to
 * the worker while it has free slots; the worker batches them.
 *
 * Workers start on first use, after hearthd has validated the GGUF header
 * itself, and only when the model's estimated footprint fits the memory budget
 * beside the models already loaded; idle models are unloaded (least recently
 * used first) to make room, otherwise the request waits, and past the
 * load-timeout gets 503 naming the models that hold the memory. Each worker
 * also gets a hard memory limit so a wrong estimate kills one worker, not the
 * box. Idle models unload after their keep-alive.
 *
 * A worker that dies fails exactly the jobs it was running (502) and is
 * restarted when jobs wait, with exponential back-off if it keeps dying. A
 * model that fails to load is marked failed with its reason; requests get that
 * reason (503 + Retry-After until the next retry) instead of a crash loop.
 * Model names from requests are looked up among configured names only; they
 * never become paths.
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

typedef enum { MODEL_UNLOADED, MODEL_LOADING, MODEL_READY, MODEL_STOPPING, MODEL_FAILED } model_state;

/* What a model serves; decided from its file (sched.c, inspect). */
typedef enum { MODEL_KIND_CHAT, MODEL_KIND_EMBEDDING, MODEL_KIND_TRANSCRIPTION, MODEL_KIND_OCR }
    model_kind;
const char *model_kind_name(model_kind k);

typedef struct model_info {
    char name[MODEL_NAME_MAX + 1];
    model_kind kind;
    model_state state;
    int slots, busy, queued;
    int restarts;               /* worker crashes after a successful load */
    int load_failures;          /* consecutive failed loads */
    int64_t created;            /* file mtime, unix seconds */
    int pid;                    /* worker pid, 0 when none */
    double uptime_s;            /* since the worker became ready */
    int keep_alive_s;           /* current keep-alive; -1 forever */
    uint64_t est_bytes;         /* estimated footprint (0: file invalid) */
    uint64_t rss_bytes;         /* measured resident set now */
    uint64_t loaded_rss_bytes;  /* measured right after load */
    uint64_t peak_rss_bytes;    /* highest measured while loaded */
    char last_error[256];
    char backend[16];           /* cpu, cpu+blas or tesseract; "" until loaded */
} model_info;

typedef struct sched_totals {
    uint64_t budget;            /* bytes: workers and the index's vectors together */
    uint64_t reserved;          /* estimates of loading/loaded models, and index_vectors */
    uint64_t index_vectors;     /* held for the index's vectors (--index-vector-memory) */
    uint64_t rss;               /* sum of worker RSS now */
    uint64_t rss_peak;          /* highest sum of worker RSS seen */
    int draining;
} sched_totals;

/* The config must outlive the scheduler. worker_exe: the hearth-worker binary. */
sched *sched_new(const config *cfg, const char *worker_exe, char *err, size_t errlen);
/* Refuses new jobs and stops every worker: asks, then kills after grace_ms.
 * Jobs still running fail with 503. */
void   sched_shutdown(sched *s, int grace_ms);
/* Frees (after sched_shutdown, once no thread uses the scheduler). */
void   sched_free(sched *s);

/* Queue a job on its model (j->model). On success the scheduler holds its
 * own reference. Returns 0, or an HTTP status (404 unknown model, 503 queue
 * full, shutting down or model in back-off, 500 model cannot load) with a
 * message in err and, for 503, seconds to wait in *retry_after. */
int    sched_submit(sched *s, job *j, char *err, size_t errlen, int *retry_after);
/* Withdraw a job: dequeued if waiting, cancelled in the worker if running. */
void   sched_cancel(sched *s, job *j);
/* For a job a worker is running that did not stop when cancelled (a hung
 * engine): kill that worker, which fails its jobs (502) and restarts on
 * the next need. True when there was such a worker. */
bool   sched_kill_worker_of(sched *s, job *j);
/* Withdraw a job whatever its phase (batch jobs, the indexer): cancel it
 * and wait up to grace_ms for its worker to let go; a worker that does not
 * (a hung engine, which would hold its model and every job behind it) is
 * killed, and its end awaited as long again. */
void   sched_withdraw(sched *s, job *j, int grace_ms);

/* Load a model now (waits up to load-timeout for it to be ready), or unload
 * it once idle (waits up to 10 s). 0 on success, else an HTTP status. */
int    sched_load(sched *s, const char *name, char *err, size_t errlen);
int    sched_unload(sched *s, const char *name, char *err, size_t errlen);

/* Apply a new configuration (SIGHUP) without dropping in-flight requests:
 * new models are added, removed ones stop once idle (requests for them get
 * 404 at once), models whose file or slot settings changed restart once
 * idle; budget, keep-alive, queue and timeouts apply from now on. cfg must
 * stay alive until the next reload or sched_free. */
void   sched_reload(sched *s, const config *cfg);

/* Entries, including removed ones (sched_model_info returns -1 for those). */
size_t sched_model_count(sched *s);
void   sched_get_totals(sched *s, sched_totals *out);
int    sched_model_info(sched *s, size_t i, model_info *out);
const char *model_state_name(model_state st);

#endif
