/*
 * sched.c: per-model queues, dispatch to workers, and worker lifecycle.
 *
 * One mutex guards all model state. Worker frames arrive on each worker's
 * reader thread; the lock is held only to find the job and update counters,
 * and job_* calls (which take the job's own lock) happen after the scheduler
 * lock is released, so the lock order is always sched -> nothing, job -> nothing.
 */
#include "sched/sched.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/supervisor.h"

#define MAX_SLOTS 64
#define MAX_ZOMBIES 16

struct model {
    sched *s;
    char name[MODEL_NAME_MAX + 1];
    char *path;
    model_state state;
    char last_error[256];
    worker *w;
    int slots, busy;
    job *inflight[MAX_SLOTS];
    job *qhead, *qtail;
    int qlen;
    int restarts;
    int64_t created;
};

struct sched {
    const config *cfg;
    char exe[4096];
    pthread_mutex_t mu;
    struct model *models;
    size_t nmodels;
    worker *zombies[MAX_ZOMBIES];
    size_t nzombies;
    int stopping;
};

const char *model_state_name(model_state st)
{
    static const char *n[] = { "unloaded", "loading", "ready", "failed" };
    return n[st];
}

static void on_worker_frame(void *ud, worker *w, const wire_hdr *h, const char *payload);
static void on_worker_exit(void *ud, worker *w, int status, const char *why);

sched *sched_new(const config *cfg, const char *exe, char *err, size_t el)
{
    sched *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->cfg = cfg;
    snprintf(s->exe, sizeof s->exe, "%s", exe);
    pthread_mutex_init(&s->mu, NULL);
    s->models = calloc(cfg->nmodels ? cfg->nmodels : 1, sizeof *s->models);
    if (!s->models)
        goto oom;
    s->nmodels = cfg->nmodels;
    for (size_t i = 0; i < cfg->nmodels; i++) {
        struct model *m = &s->models[i];
        m->s = s;
        snprintf(m->name, sizeof m->name, "%s", cfg->models[i].name);
        m->path = cfg->models[i].path;
        struct stat st;
        if (stat(m->path, &st) == 0)
            m->created = (int64_t)st.st_mtime;
        else
            log_warn("model %s: file not found: %s", m->name, m->path);
    }
    return s;
oom:
    snprintf(err, el, "out of memory");
    free(s);
    return NULL;
}

static struct model *find_model(sched *s, const char *name)
{
    for (size_t i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i].name, name) == 0)
            return &s->models[i];
    return NULL;
}

static void reap_zombies_locked(sched *s, worker **out, size_t *nout)
{
    for (size_t i = 0; i < s->nzombies; i++)
        out[(*nout)++] = s->zombies[i];
    s->nzombies = 0;
}

static void free_workers(worker **ws, size_t n)
{
    for (size_t i = 0; i < n; i++)
        worker_free(ws[i]);
}

/* Collected under the lock, delivered after it is released. */
struct pending_fail {
    job *j;
    int status;
    const char *code;
    char msg[256];
};

static int spawn_locked(struct model *m, char *err, size_t el)
{
    const config *c = m->s->cfg;
    struct stat st;
    if (stat(m->path, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, el, "the file of model '%s' is missing or not a regular file", m->name);
        return -1;
    }
    char th[16], par[16], ctx[16], bat[16];
    snprintf(th, sizeof th, "%d", c->threads);
    snprintf(par, sizeof par, "%d", c->parallel);
    snprintf(ctx, sizeof ctx, "%d", c->ctx_size);
    snprintf(bat, sizeof bat, "%d", c->batch_size);
    char *argv[] = { m->s->exe, "--model", m->path, "--name", m->name, "--threads", th,
                     "--parallel", par, "--ctx-size", ctx, "--batch-size", bat,
                     "--log-level", c->log_level, NULL };
    worker_events ev = { m, on_worker_frame, on_worker_exit };
    worker *w = worker_start(argv, &ev, err, el);
    if (!w)
        return -1;
    m->w = w;
    m->state = MODEL_LOADING;
    m->busy = 0;
    m->slots = 0;
    log_info("model %s: worker pid %d loading %s", m->name, (int)worker_pid(w), m->path);
    return 0;
}

/* Send queued jobs to free slots. Jobs the worker cannot take are failed via
 * the pending list. */
static void dispatch_locked(struct model *m, struct pending_fail *pf, size_t *npf)
{
    while (m->state == MODEL_READY && m->qhead && m->busy < m->slots) {
        job *j = m->qhead;
        m->qhead = j->qnext;
        if (!m->qhead)
            m->qtail = NULL;
        m->qlen--;
        j->qnext = NULL;
        int slot = -1;
        for (int i = 0; i < m->slots; i++)
            if (!m->inflight[i]) {
                slot = i;
                break;
            }
        m->inflight[slot] = j;
        j->slot = slot;
        m->busy++;
        if (worker_send(m->w, WIRE_REQUEST, j->id, j->payload, j->payload_len) < 0) {
            m->inflight[slot] = NULL;
            m->busy--;
            pf[*npf].j = j;
            pf[*npf].status = 502;
            pf[*npf].code = "worker_unavailable";
            snprintf(pf[*npf].msg, sizeof pf[*npf].msg, "the worker for model '%s' is gone",
                     m->name);
            (*npf)++;
        }
    }
}

static void deliver(struct pending_fail *pf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        job_fail(pf[i].j, pf[i].status, pf[i].code, pf[i].msg);
        job_unref(pf[i].j);
    }
}

int sched_submit(sched *s, job *j, char *err, size_t el)
{
    worker *z[MAX_ZOMBIES];
    size_t nz = 0;
    struct pending_fail pf[MAX_SLOTS];
    size_t npf = 0;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    reap_zombies_locked(s, z, &nz);
    struct model *m = find_model(s, j->model);
    if (!m) {
        snprintf(err, el, "The model '%s' does not exist", j->model);
        rc = 404;
        goto out;
    }
    if (s->stopping) {
        snprintf(err, el, "hearthd is shutting down");
        rc = 503;
        goto out;
    }
    /* before the worker reports its slots, assume the configured number */
    int capacity = m->state == MODEL_READY ? m->slots : s->cfg->parallel;
    bool slot_free = m->busy + m->qlen < capacity;
    if (!slot_free && m->qlen >= s->cfg->queue_size) {
        snprintf(err, el, "model '%s' has %d requests waiting and %d running; try again shortly",
                 m->name, m->qlen, m->busy);
        rc = 503;
        goto out;
    }
    if (m->state == MODEL_UNLOADED || m->state == MODEL_FAILED) {
        if (spawn_locked(m, err, el) < 0) {
            m->state = MODEL_FAILED;
            snprintf(m->last_error, sizeof m->last_error, "%s", err);
            rc = 500;
            goto out;
        }
    }
    job_ref(j);
    if (m->qtail)
        m->qtail->qnext = j;
    else
        m->qhead = j;
    m->qtail = j;
    m->qlen++;
    dispatch_locked(m, pf, &npf);
out:
    pthread_mutex_unlock(&s->mu);
    deliver(pf, npf);
    free_workers(z, nz);
    return rc;
}

void sched_cancel(sched *s, job *j)
{
    job *dequeued = NULL;
    pthread_mutex_lock(&s->mu);
    struct model *m = find_model(s, j->model);
    if (m) {
        job **pp = &m->qhead, *prev = NULL;
        while (*pp && *pp != j) {
            prev = *pp;
            pp = &(*pp)->qnext;
        }
        if (*pp) {
            *pp = j->qnext;
            if (m->qtail == j)
                m->qtail = prev;
            m->qlen--;
            j->qnext = NULL;
            dequeued = j;
        } else if (j->slot >= 0 && j->slot < MAX_SLOTS && m->inflight[j->slot] == j && m->w) {
            worker_send(m->w, WIRE_CANCEL, j->id, NULL, 0);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (dequeued) {
        job_fail(dequeued, 499, "cancelled", "the client went away");
        job_unref(dequeued);
    }
}

static job *take_inflight_locked(struct model *m, uint32_t id, bool remove)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        job *j = m->inflight[i];
        if (j && j->id == id) {
            if (remove) {
                m->inflight[i] = NULL;
                m->busy--;
                j->slot = -1;
            } else {
                job_ref(j);
            }
            return j;
        }
    }
    return NULL;
}

static void on_worker_frame(void *ud, worker *w, const wire_hdr *h, const char *payload)
{
    struct model *m = ud;
    sched *s = m->s;
    struct pending_fail pf[MAX_SLOTS];
    size_t npf = 0;
    (void)w;
    arena *a = NULL;
    const json *js = NULL;
    char perr[64];
    if (h->type != WIRE_DELTA) {
        a = arena_new(1u << 20);
        js = a ? json_parse(a, payload, h->len, perr, sizeof perr) : NULL;
        if (!js || js->type != JSON_OBJECT) {
            log_error("model %s: unparsable %s frame from worker", m->name,
                      wire_type_name(h->type));
            arena_free(a);
            worker_signal(w, SIGKILL);
            return;
        }
    }
#define NUM(k) (json_get(js, k) && json_get(js, k)->type == JSON_NUMBER ? json_get(js, k)->number : 0)
#define STR(k) (json_get(js, k) && json_get(js, k)->type == JSON_STRING ? json_get(js, k)->str : "")
    switch (h->type) {
    case WIRE_HELLO:
        pthread_mutex_lock(&s->mu);
        m->slots = (int)NUM("slots");
        if (m->slots < 1 || m->slots > MAX_SLOTS)
            m->slots = 1;
        m->state = MODEL_READY;
        m->last_error[0] = '\0';
        log_info("model %s: ready (%d slots, ctx %d per slot)", m->name, m->slots,
                 (int)NUM("n_ctx_slot"));
        dispatch_locked(m, pf, &npf);
        pthread_mutex_unlock(&s->mu);
        break;
    case WIRE_LOAD_FAILED:
        pthread_mutex_lock(&s->mu);
        snprintf(m->last_error, sizeof m->last_error, "%s", STR("message"));
        m->state = MODEL_FAILED;
        log_error("model %s: load failed: %s", m->name, m->last_error);
        pthread_mutex_unlock(&s->mu);
        break;      /* queued jobs are failed when the worker exits */
    case WIRE_START:
    case WIRE_DELTA: {
        pthread_mutex_lock(&s->mu);
        job *j = take_inflight_locked(m, h->id, false);
        pthread_mutex_unlock(&s->mu);
        if (!j)
            break;
        if (h->type == WIRE_START)
            job_started(j, (int)NUM("prompt_tokens"), (int)NUM("cached_tokens"));
        else
            job_append(j, payload, h->len);
        job_unref(j);
        break;
    }
    case WIRE_DONE:
    case WIRE_ERROR: {
        pthread_mutex_lock(&s->mu);
        job *j = take_inflight_locked(m, h->id, true);
        dispatch_locked(m, pf, &npf);
        pthread_mutex_unlock(&s->mu);
        if (!j)
            break;
        if (h->type == WIRE_DONE && strcmp(STR("finish_reason"), "cancelled") == 0)
            log_info("model %s: [%s] cancelled after %d completion tokens", m->name, j->rid,
                     (int)NUM("completion_tokens"));
        if (h->type == WIRE_DONE)
            job_finish(j, STR("finish_reason"), (int)NUM("prompt_tokens"),
                       (int)NUM("completion_tokens"), (int)NUM("cached_tokens"), NUM("prompt_ms"),
                       NUM("gen_ms"));
        else
            job_fail(j, (int)NUM("status"), STR("code"), STR("message"));
        job_unref(j);
        break;
    }
    default:
        log_warn("model %s: unexpected %s frame from worker", m->name, wire_type_name(h->type));
    }
#undef NUM
#undef STR
    arena_free(a);
    deliver(pf, npf);
}

static void on_worker_exit(void *ud, worker *w, int status, const char *why)
{
    struct model *m = ud;
    sched *s = m->s;
    (void)status;
    struct pending_fail pf[MAX_SLOTS * 2 + 1];
    size_t npf = 0;
    job *queued = NULL;
    pthread_mutex_lock(&s->mu);
    bool was_loading = m->state == MODEL_LOADING || m->state == MODEL_FAILED;
    for (int i = 0; i < MAX_SLOTS; i++) {
        job *j = m->inflight[i];
        if (!j)
            continue;
        m->inflight[i] = NULL;
        j->slot = -1;
        pf[npf].j = j;
        pf[npf].status = 502;
        pf[npf].code = "worker_crashed";
        snprintf(pf[npf].msg, sizeof pf[npf].msg,
                 "the worker serving model '%s' stopped (%s) while running this request",
                 m->name, why);
        npf++;
    }
    m->busy = 0;
    m->w = NULL;
    if (s->nzombies < MAX_ZOMBIES)
        s->zombies[s->nzombies++] = w;
    if (s->stopping) {
        m->state = MODEL_UNLOADED;
    } else if (was_loading) {
        if (!m->last_error[0])
            snprintf(m->last_error, sizeof m->last_error, "worker %s while loading", why);
        m->state = MODEL_FAILED;
        log_error("model %s: failed to load: %s", m->name, m->last_error);
        queued = m->qhead;          /* fail every waiting job */
        m->qhead = m->qtail = NULL;
        m->qlen = 0;
    } else {
        m->state = MODEL_UNLOADED;
        m->restarts++;
        snprintf(m->last_error, sizeof m->last_error, "worker %s", why);
        log_error("model %s: worker %s", m->name, why);
        if (m->qhead) {
            char err[256];
            if (spawn_locked(m, err, sizeof err) < 0) {
                m->state = MODEL_FAILED;
                snprintf(m->last_error, sizeof m->last_error, "%s", err);
                queued = m->qhead;
                m->qhead = m->qtail = NULL;
                m->qlen = 0;
            }
        }
    }
    char lerr[256];
    snprintf(lerr, sizeof lerr, "model '%s' could not be loaded: %s", m->name, m->last_error);
    pthread_mutex_unlock(&s->mu);
    deliver(pf, npf);
    while (queued) {
        job *n = queued->qnext;
        queued->qnext = NULL;
        job_fail(queued, 500, "model_load_failed", lerr);
        job_unref(queued);
        queued = n;
    }
}

size_t sched_model_count(const sched *s)
{
    return s->nmodels;
}

int sched_model_info(sched *s, size_t i, model_info *out)
{
    if (i >= s->nmodels)
        return -1;
    pthread_mutex_lock(&s->mu);
    struct model *m = &s->models[i];
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", m->name);
    out->state = m->state;
    out->slots = m->slots;
    out->busy = m->busy;
    out->queued = m->qlen;
    out->restarts = m->restarts;
    out->created = m->created;
    snprintf(out->last_error, sizeof out->last_error, "%s", m->last_error);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sched_shutdown(sched *s, int grace_ms)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (size_t i = 0; i < s->nmodels; i++)
        if (s->models[i].w)
            worker_send(s->models[i].w, WIRE_SHUTDOWN, 0, NULL, 0);
    pthread_mutex_unlock(&s->mu);
    for (int waited = 0;; waited += 20) {
        bool alive = false;
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->nmodels; i++) {
            if (!s->models[i].w)
                continue;
            alive = true;
            if (waited >= grace_ms)
                worker_signal(s->models[i].w, SIGKILL);
        }
        pthread_mutex_unlock(&s->mu);
        if (!alive)
            break;
        usleep(20000);
    }
    worker *z[MAX_ZOMBIES];
    size_t nz = 0;
    pthread_mutex_lock(&s->mu);
    reap_zombies_locked(s, z, &nz);
    pthread_mutex_unlock(&s->mu);
    free_workers(z, nz);
}

void sched_free(sched *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->models);
    free(s);
}
