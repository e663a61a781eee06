/*
 * runner.c: the threads that run batch jobs. See runner.h.
 */
#include "queue/runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "sched/job.h"

#define RUNNERS_MAX 8
#define IDLE_WAIT_S 60.0        /* look again at least this often */
#define ERROR_WAIT_S 5.0        /* after the store failed */
#define TICK_MS 500
#define PROGRESS_EVERY_S 1.0
#define PRUNE_EVERY_S 3600.0
#define STOP_GRACE_MS 10000     /* a cancelled job's worker lets go within this */

struct runner;

struct slot {
    struct runner *owner;
    pthread_t th;
    bool started;
    int64_t id;                 /* the batch job running, 0 when none */
    bool cancel;                /* the user cancelled it */
};

struct runner {
    store *st;
    sched *s;
    _Atomic(const config *) cfg;
    char dir[600];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    unsigned wakes;
    int nslots;
    struct slot slots[RUNNERS_MAX];
    double pruned_at;               /* last prune (thread 0's) */
};

/* Which outcomes of a scheduler job are worth another attempt: anything
 * but a refusal of the input itself. */
static bool retryable(int status)
{
    return status == 408 || status == 429 || status >= 500 || status < 400;
}

/* Wait for the scheduler job to finish, collecting its output. False when
 * the runner is stopping, the user cancelled, or the job ran past
 * job-timeout since a worker took it (*timed_out): the job is then
 * withdrawn. */
static bool wait_job(runner *r, struct slot *sl, int64_t id, job *j, buf *text, job_status *st,
                     bool *timed_out)
{
    uint64_t seen = 0;
    double began = 0, stored = 0, stored_at = 0;
    *timed_out = false;
    for (;;) {
        job_wait(j, &seen, TICK_MS);
        job_take(j, text, st);
        if (st->phase == JOB_DONE || st->phase == JOB_FAILED)
            return true;
        double now = clock_mono_s();
        if (st->dispatched && began == 0)
            began = now;        /* the time in the model's queue does not count */
        /* progress reaches the store about once a second: it is for people
         * watching, and each write is a synced commit */
        if (st->progress > stored && now - stored_at >= PROGRESS_EVERY_S) {
            store_progress(r->st, id, st->progress);
            stored = st->progress;
            stored_at = now;
        }
        int limit = atomic_load(&r->cfg)->job_timeout;
        pthread_mutex_lock(&r->mu);
        bool quit = r->stop || sl->cancel;
        pthread_mutex_unlock(&r->mu);
        if (!quit && limit > 0 && began > 0 && now - began > limit)
            quit = *timed_out = true;
        if (quit) {
            sched_withdraw(r->s, j, STOP_GRACE_MS);
            job_peek(j, st);
            return false;
        }
    }
}

/* What became of an attempt. */
struct outcome {
    int submit_rc;              /* sched_submit's refusal, 0 when it took the job */
    int retry_after;
    char submit_err[320];
    bool finished, timed_out, stopping, cancelled;
    job_status st;
};

/* Write the outcome to the store; the job's new status, or -1. */
static int record(runner *r, const bjob *b, const struct outcome *o, const buf *text,
                  double delay, int timeout)
{
    double now = clock_wall_s();
    int rc = o->submit_rc;
    if (o->cancelled && !(o->finished && o->st.phase == JOB_DONE))
        return store_cancelled(r->st, b->id, now);
    if (o->stopping && (rc == 503 || !o->finished ||
                        (o->st.phase == JOB_FAILED && o->st.err_status == 503)))
        return store_release(r->st, b->id, 0);
    if (rc == 503 || (o->finished && o->st.phase == JOB_FAILED && o->st.err_status == 503)) {
        /* not now: the model's queue is full, it is in back-off after a
         * crash, or no memory came free in time. Waiting its turn spends
         * no attempt. */
        int wait = rc == 503 && o->retry_after > 0 ? o->retry_after : 5;
        return store_release(r->st, b->id, now + wait);
    }
    if (rc != 0) {
        bool refused = rc == 404 || rc == 400;      /* no such model, or not this kind */
        return store_fail(r->st, b->id, !refused, delay,
                          rc == 404 ? "model_not_found" : rc == 400 ? "wrong_model_kind"
                                                                    : "model_load_failed",
                          o->submit_err, now);
    }
    if (o->timed_out) {
        char msg[160];
        snprintf(msg, sizeof msg, "the job ran longer than job-timeout (%d s) and was stopped",
                 timeout);
        return store_fail(r->st, b->id, true, delay, "job_timeout", msg, now);
    }
    if (o->st.phase == JOB_DONE)
        return store_complete(r->st, b->id, text->data ? text->data : "", text->len, now);
    return store_fail(r->st, b->id, retryable(o->st.err_status), delay,
                      o->st.err_code[0] ? o->st.err_code : "job_failed", o->st.err_msg, now);
}

static void run_one(runner *r, struct slot *sl, bjob *b)
{
    char path[700], rid[40];
    snprintf(path, sizeof path, "%s/%s", r->dir, b->input);
    snprintf(rid, sizeof rid, "job_%lld", (long long)b->id);
    log_set_rid(rid);
    const config *cfg = atomic_load(&r->cfg);
    log_info("batch job: %s of %s (%lld bytes) with %s, attempt %d of %d", b->kind,
             b->input_name[0] ? b->input_name : b->input, (long long)b->input_bytes, b->model,
             b->attempts, b->max_attempts);

    struct outcome o = { 0 };
    buf p = buf_make(0), text = buf_make(JOB_TEXT_CAP);
    size_t plen = 0;
    char *payload = job_payload(&p, b->options, path) == 0 ? buf_detach(&p, &plen) : NULL;
    job *j = payload ? job_new(rid, b->model, payload, plen) : NULL;
    buf_free(&p);
    if (!j) {
        o.submit_rc = 500;
        snprintf(o.submit_err, sizeof o.submit_err, "out of memory");
    } else {
        j->want_kind = strcmp(b->kind, "ocr") ? MODEL_KIND_TRANSCRIPTION : MODEL_KIND_OCR;
        pthread_mutex_lock(&r->mu);
        sl->id = b->id;         /* from here a cancel finds the slot ... */
        pthread_mutex_unlock(&r->mu);
        bjob now;               /* ... and before, it was marked in the store */
        if (store_get(r->st, b->id, &now) == 1) {
            if (now.cancel_requested) {
                pthread_mutex_lock(&r->mu);
                sl->cancel = true;
                pthread_mutex_unlock(&r->mu);
            }
            bjob_free(&now);
        }
        pthread_mutex_lock(&r->mu);
        bool go = !sl->cancel && !r->stop;
        pthread_mutex_unlock(&r->mu);
        if (go) {
            o.submit_rc = sched_submit(r->s, j, o.submit_err, sizeof o.submit_err,
                                       &o.retry_after);
            if (o.submit_rc == 0)
                o.finished = wait_job(r, sl, b->id, j, &text, &o.st, &o.timed_out);
        }
    }
    /* the slot stays claimed until the outcome is written, so a cancel
     * arriving meanwhile is not lost */
    pthread_mutex_lock(&r->mu);
    o.stopping = r->stop;
    o.cancelled = sl->cancel;
    pthread_mutex_unlock(&r->mu);

    /* the store busy or the disk full: try again until it takes (or
     * hearthd stops; the next start then recovers the job) */
    int to = record(r, b, &o, &text, cfg->job_retry_delay, cfg->job_timeout);
    for (int tries = 1; to < 0; tries++) {
        if (tries % 30 == 1)
            log_error("batch job: the job store did not take the outcome; trying again");
        sleep(1);
        pthread_mutex_lock(&r->mu);
        bool stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        to = record(r, b, &o, &text, cfg->job_retry_delay, cfg->job_timeout);
    }
    pthread_mutex_lock(&r->mu);
    sl->id = 0;
    sl->cancel = false;
    pthread_mutex_unlock(&r->mu);

    const char *why = o.timed_out ? "job-timeout"
                      : o.submit_rc ? o.submit_err
                      : o.st.err_msg[0] ? o.st.err_msg : "";
    if (to < 0)
        log_error("batch job: the job store did not record the outcome; it runs again at the "
                  "next start");
    else if (to == BJ_COMPLETED) {
        if (unlink(path) < 0 && errno != ENOENT)
            log_warn("cannot delete the finished job's input %s: %s", path, strerror(errno));
        log_info("batch job completed: %zu bytes of result in %.1f s", text.len,
                 clock_wall_s() - b->started);
    } else if (to == BJ_DEAD)
        log_error("batch job is dead after %d attempts: %s", b->attempts, why);
    else
        log_warn("batch job attempt %d ended (%s): now %s", b->attempts,
                 *why ? why : o.stopping ? "hearthd is stopping" : "cancelled",
                 bjob_status_name((bjob_status)to));
    job_unref(j);
    buf_free(&text);
    log_set_rid(NULL);
}

static void unlink_input(void *ud, const char *input)
{
    runner *r = ud;
    char p[900];
    snprintf(p, sizeof p, "%s/%s", r->dir, input);
    if (unlink(p) < 0 && errno != ENOENT)
        log_warn("cannot delete %s: %s", p, strerror(errno));
}

/* Past job-retention, completed and cancelled jobs go (at most hourly;
 * thread 0 only). */
static void prune(runner *r, double now)
{
    int days = atomic_load(&r->cfg)->job_retention;
    if (days <= 0 || now - r->pruned_at < PRUNE_EVERY_S)
        return;
    r->pruned_at = now;
    int n = store_prune(r->st, now - days * 86400.0, unlink_input, r);
    if (n > 0)
        log_info("batch jobs: deleted %d finished job(s) older than %d days (job-retention)", n,
                 days);
    else if (n < 0)
        log_warn("batch jobs: could not delete old finished jobs");
}

static void *loop(void *arg)
{
    struct slot *sl = arg;
    runner *r = sl->owner;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        unsigned wakes = r->wakes;
        pthread_mutex_unlock(&r->mu);
        bjob b;
        double next_due = 0, now = clock_wall_s();
        if (sl == r->slots)
            prune(r, now);      /* hourly, busy or not */
        int c = store_claim(r->st, now, &b, &next_due);
        if (c == 1) {
            run_one(r, sl, &b);
            bjob_free(&b);
            pthread_mutex_lock(&r->mu);
            continue;
        }
        double wait = IDLE_WAIT_S;
        if (c < 0) {
            log_error("batch jobs: cannot read the job store; trying again in %.0f s",
                      ERROR_WAIT_S);
            wait = ERROR_WAIT_S;
        } else if (next_due > 0 && next_due - now < wait) {
            wait = next_due - now;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double t = (double)until.tv_sec + (double)until.tv_nsec * 1e-9 + (wait > 0 ? wait : 0);
        until.tv_sec = (time_t)t;
        until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
        pthread_mutex_lock(&r->mu);
        while (!r->stop && r->wakes == wakes)
            if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

struct sweep {
    char **names;
    size_t n, cap;
    bool short_of_memory;       /* a name was not noted: delete nothing */
};

static void note_input(void *ud, const char *input)
{
    struct sweep *sw = ud;
    if (sw->n == sw->cap) {
        size_t cap = sw->cap ? sw->cap * 2 : 64;
        char **p = realloc(sw->names, cap * sizeof *p);
        if (!p) {
            sw->short_of_memory = true;
            return;
        }
        sw->names = p;
        sw->cap = cap;
    }
    char *d = strdup(input);
    if (d)
        sw->names[sw->n++] = d;
    else
        sw->short_of_memory = true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Delete input files no job refers to: uploads whose job never committed,
 * and inputs of completed jobs whose deletion was cut short. */
static void sweep_inputs(runner *r)
{
    struct sweep sw = { 0 };
    if (store_each_input(r->st, note_input, &sw) < 0 || sw.short_of_memory)
        goto out;
    if (sw.n)
        qsort(sw.names, sw.n, sizeof *sw.names, cmp_str);
    DIR *d = opendir(r->dir);
    if (!d)
        goto out;
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "in-", 3))
            continue;
        const char *key = e->d_name;
        if (sw.n && bsearch(&key, sw.names, sw.n, sizeof *sw.names, cmp_str))
            continue;
        char p[900];
        snprintf(p, sizeof p, "%s/%s", r->dir, e->d_name);
        if (unlink(p) == 0)
            removed++;
    }
    closedir(d);
    if (removed)
        log_info("batch jobs: deleted %d input file(s) no job refers to", removed);
out:
    for (size_t i = 0; i < sw.n; i++)
        free(sw.names[i]);
    free(sw.names);
}

runner *runner_start(const config *cfg, sched *s, char *err, size_t errlen)
{
    runner *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->s = s;
    atomic_store(&r->cfg, cfg);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(r->dir, sizeof r->dir, "%s/jobs", cfg->data_dir);
    if (mkdir(r->dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the jobs folder in the data dir: %s", strerror(errno));
        goto fail;
    }
    char db[700];
    snprintf(db, sizeof db, "%s/jobs.db", cfg->data_dir);
    if (!(r->st = store_open(db, err, errlen)))
        goto fail;
    /* the new jobs folder and database file are entries of the data dir:
     * make them durable before the first job relies on them */
    int dfd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    int requeued = 0, dead = 0;
    if (store_recover(r->st, clock_wall_s(), &requeued, &dead) < 0) {
        snprintf(err, errlen, "cannot recover the jobs in jobs.db");
        goto fail;
    }
    if (requeued)
        log_warn("batch jobs: %d job(s) were running when hearthd stopped; queued again",
                 requeued);
    if (dead)
        log_error("batch jobs: %d job(s) were running when hearthd stopped on their last "
                  "attempt; dead (retry them with `hearth jobs retry`)", dead);
    sweep_inputs(r);
    int64_t counts[BJ_NSTATUS];
    if (store_counts(r->st, NULL, counts) == 0 && counts[BJ_QUEUED])
        log_info("batch jobs: %lld queued", (long long)counts[BJ_QUEUED]);
    r->nslots = cfg->job_workers < 1 ? 1 : cfg->job_workers > RUNNERS_MAX ? RUNNERS_MAX
                                                                          : cfg->job_workers;
    for (int i = 0; i < r->nslots; i++) {
        r->slots[i].owner = r;
        if (pthread_create(&r->slots[i].th, NULL, loop, &r->slots[i]) != 0) {
            snprintf(err, errlen, "cannot start the batch job threads");
            runner_stop(r);
            goto fail;
        }
        r->slots[i].started = true;
    }
    return r;
fail:
    runner_free(r);
    return NULL;
}

void runner_set_config(runner *r, const config *cfg)
{
    if (r)
        atomic_store(&r->cfg, cfg);
}

void runner_stop(runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nslots; i++)
        if (r->slots[i].started) {
            pthread_join(r->slots[i].th, NULL);
            r->slots[i].started = false;
        }
}

void runner_free(runner *r)
{
    if (!r)
        return;
    runner_stop(r);
    store_close(r->st);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

store *runner_store(runner *r)
{
    return r->st;
}

const char *runner_dir(const runner *r)
{
    return r->dir;
}

void runner_wake(runner *r)
{
    pthread_mutex_lock(&r->mu);
    r->wakes++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void runner_cancel(runner *r, int64_t id)
{
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nslots; i++)
        if (r->slots[i].id == id)
            r->slots[i].cancel = true;
    pthread_mutex_unlock(&r->mu);
}
