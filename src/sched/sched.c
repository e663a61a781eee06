/*
 * sched.c: per-model queues, dispatch to workers, the memory budget and the
 * worker lifecycle (load, keep-alive unload, crash restart with back-off).
 *
 * One mutex guards all model state. Worker frames arrive on each worker's
 * reader thread; the lock is held only to find the job and update counters;
 * job_* calls (which take the job's own lock) run after it is released where
 * possible. The only allowed nesting is sched -> job (job_* never takes the
 * scheduler lock), used when a batch of failures overflows (fail_later).
 *
 * A governor thread ticks every GOVERNOR_TICK_MS: it starts loads that were
 * waiting for memory or for a back-off to pass, unloads idle models past
 * their keep-alive, fails jobs that waited past the load-timeout, and samples
 * the workers' resident memory.
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
#include "core/ggml_legacy.h"
#include "core/gguf.h"
#include "core/json.h"
#include "core/log.h"
#include "sched/budget.h"
#include "worker/supervisor.h"

#define MAX_SLOTS 64
#define MAX_ZOMBIES 64
#define GOVERNOR_TICK_MS 100
#define CRASH_WINDOW_MS 60000.0
#define MAX_BACKOFF_MS 300000.0

struct model {
    sched *s;
    char name[MODEL_NAME_MAX + 1];
    char *path;                 /* owned */
    bool removed;               /* dropped from the config by a reload */
    bool stale;                 /* file or settings changed: restart when idle */
    model_kind kind;
    model_state state;
    char last_error[256];
    char backend[16];           /* what the worker computes on: cpu, cpu+blas, tesseract */
    worker *w;
    int slots, busy;
    job *inflight[MAX_SLOTS];
    job *qhead, *qtail;
    int qlen;
    int restarts, load_failures;
    int64_t created;
    uint64_t est;               /* 0 when the file did not validate */
    int64_t checked_mtime;      /* the file version the last check saw */
    int64_t checked_size;
    uint64_t loaded_rss, rss, peak_rss;
    double ready_at, last_used, retry_at, backoff_ms;
    int keep_alive;             /* seconds; -1 forever: the last request's, else the config's */
    bool unload_when_idle;      /* an unload came while it was busy */
    bool stop_requested;        /* we asked it to exit: not a crash */
};

struct sched {
    const config *cfg;
    char exe[4096];
    pthread_mutex_t mu;
    pthread_cond_t changed;     /* a model changed state (for sched_load/unload) */
    struct model *models;
    size_t nmodels;
    worker *zombies[MAX_ZOMBIES];
    size_t nzombies;
    int stopping;
    uint64_t budget, rss_peak, rss_now;
    uint64_t fixed;             /* held for the index's vectors (hearthd's own memory) */
    pthread_t governor;
    bool governor_running;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *model_kind_name(model_kind k)
{
    static const char *n[] = { "chat", "embedding", "transcription", "ocr" };
    return n[k];
}

const char *model_state_name(model_state st)
{
    static const char *n[] = { "unloaded", "loading", "ready", "stopping", "failed" };
    return n[st];
}

static void on_worker_frame(void *ud, worker *w, const wire_hdr *h, const char *payload);
static void on_worker_exit(void *ud, worker *w, int status, const char *why);
static void *governor_main(void *arg);

/* Validate the file and estimate its footprint; on failure the model is
 * marked failed with the validator's reason. */
static int inspect_locked(struct model *m)
{
    gguf_info gi;
    char why[200];
    struct stat st;
    if (stat(m->path, &st) == 0) {
        if (m->est && (int64_t)st.st_mtime == m->checked_mtime &&
            (int64_t)st.st_size == m->checked_size)
            return m->est + m->s->fixed <= m->s->budget ? 0 : -1;   /* unchanged since checked */
        m->created = (int64_t)st.st_mtime;
        m->checked_mtime = (int64_t)st.st_mtime;
        m->checked_size = (int64_t)st.st_size;
    }
    if (stat(m->path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* an OCR "model" is a tessdata folder */
        char p[4200];
        snprintf(p, sizeof p, "%s/eng.traineddata", m->path);
        m->kind = MODEL_KIND_OCR;
        if (access(p, R_OK) != 0) {
            m->est = 0;
            snprintf(m->last_error, sizeof m->last_error, "no eng.traineddata in the OCR folder");
            return -1;
        }
        m->est = budget_estimate_ocr();
    } else if (ggml_legacy_is_whisper(m->path)) {
        whisper_file_info wi;
        m->kind = MODEL_KIND_TRANSCRIPTION;
        if (ggml_legacy_check_file(m->path, &wi, why, sizeof why) < 0) {
            m->est = 0;
            snprintf(m->last_error, sizeof m->last_error, "invalid model file: %s", why);
            return -1;
        }
        m->est = budget_estimate_whisper(&wi);
    } else {
        if (gguf_check_file(m->path, &gi, why, sizeof why) < 0) {
            m->est = 0;
            snprintf(m->last_error, sizeof m->last_error, "invalid model file: %s", why);
            return -1;
        }
        m->kind = gguf_arch_is_embedding(gi.arch) ? MODEL_KIND_EMBEDDING : MODEL_KIND_CHAT;
        m->est = budget_estimate(&gi, m->s->cfg);
    }
    if (m->est + m->s->fixed > m->s->budget) {
        char need[32], have[32], held[32];
        budget_human(m->est, need, sizeof need);
        budget_human(m->s->budget, have, sizeof have);
        budget_human(m->s->fixed, held, sizeof held);
        snprintf(m->last_error, sizeof m->last_error,
                 "needs an estimated %s, more than the whole memory budget of %s (%s of it held "
                 "for the index's vectors, --index-vector-memory)", need, have, held);
        return -1;
    }
    return 0;
}

static void add_model_locked(sched *s, const model_entry *e)
{
    struct model *m = NULL;
    for (size_t i = 0; i < s->nmodels && !m; i++)
        if (s->models[i].removed && strcmp(s->models[i].name, e->name) == 0 && !s->models[i].w)
            m = &s->models[i];          /* a name that comes back reuses its entry */
    if (!m) {
        if (s->nmodels == CONFIG_MAX_MODELS)
            return;
        m = &s->models[s->nmodels++];
    } else {
        free(m->path);
        memset(m, 0, sizeof *m);
    }
    char b[32];
    m->s = s;
    snprintf(m->name, sizeof m->name, "%s", e->name);
    m->path = strdup(e->path);
    m->keep_alive = s->cfg->keep_alive;
    if (!m->path || inspect_locked(m) < 0) {
        m->state = MODEL_FAILED;
        log_error("model %s: %s", m->name, m->last_error);
    } else {
        budget_human(m->est, b, sizeof b);
        log_info("model %s: estimated footprint %s", m->name, b);
    }
}

/* The one budget: --memory-budget (default 70% of RAM) holds the workers
 * and, first, the index's vectors kept in hearthd (--index-vector-memory, at
 * most that much), so models are scheduled around them. */
static void set_budget(sched *s, const config *cfg)
{
    s->budget = cfg->memory_budget ? cfg->memory_budget : budget_physical_ram() / 10 * 7;
    s->fixed = cfg->index_vector_memory;
    char b[32], f[32];
    budget_human(s->budget, b, sizeof b);
    budget_human(s->fixed, f, sizeof f);
    log_info("memory budget: %s, of which %s held for the index's vectors", b, f);
    if (s->fixed > s->budget / 2)
        log_warn("--index-vector-memory (%s) takes more than half the memory budget (%s): "
                 "little is left for models", f, b);
}

sched *sched_new(const config *cfg, const char *exe, char *err, size_t el)
{
    sched *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->cfg = cfg;
    snprintf(s->exe, sizeof s->exe, "%s", exe);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->changed, NULL);
    set_budget(s, cfg);
    /* room for every model a reload may add: entries never move */
    s->models = calloc(CONFIG_MAX_MODELS, sizeof *s->models);
    if (!s->models)
        goto oom;
    for (size_t i = 0; i < cfg->nmodels; i++)
        add_model_locked(s, &cfg->models[i]);
    if (pthread_create(&s->governor, NULL, governor_main, s) == 0)
        s->governor_running = true;
    return s;
oom:
    snprintf(err, el, "out of memory");
    free(s);
    return NULL;
}

static struct model *find_model(sched *s, const char *name)
{
    for (size_t i = 0; i < s->nmodels; i++)
        if (!s->models[i].removed && strcmp(s->models[i].name, name) == 0)
            return &s->models[i];
    return NULL;
}

static void take_zombies_locked(sched *s, worker **out, size_t *nout)
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

/* Failures collected under the lock and delivered after it is released. */
struct fails {
    job *j[MAX_SLOTS * 4];
    int status[MAX_SLOTS * 4];
    const char *code[MAX_SLOTS * 4];
    char msg[MAX_SLOTS * 4][256];
    int retry[MAX_SLOTS * 4];
    size_t n;
};

static void fail_later(struct fails *f, job *j, int status, const char *code, const char *msg)
{
    if (f->n == sizeof f->j / sizeof *f->j) {
        /* out of room: fail it now, under the scheduler lock. That is safe
         * (job_* never takes the scheduler lock, so no cycle), just slower;
         * dropping it would leave its client waiting forever. */
        job_fail(j, status, code, msg);
        job_unref(j);
        return;
    }
    f->j[f->n] = j;
    f->status[f->n] = status;
    f->code[f->n] = code;
    snprintf(f->msg[f->n], sizeof f->msg[f->n], "%s", msg);
    f->n++;
}

static void deliver(struct fails *f)
{
    for (size_t i = 0; i < f->n; i++) {
        job_fail(f->j[i], f->status[i], f->code[i], f->msg[i]);
        job_unref(f->j[i]);
    }
    f->n = 0;
}

static void fail_queue_locked(struct model *m, struct fails *f, int status, const char *code,
                              const char *msg)
{
    while (m->qhead && f->n < sizeof f->j / sizeof *f->j) {
        job *j = m->qhead;
        m->qhead = j->qnext;
        j->qnext = NULL;
        m->qlen--;
        fail_later(f, j, status, code, msg);
    }
    if (!m->qhead)
        m->qtail = NULL;
}

static uint64_t reserved_locked(sched *s)
{
    uint64_t r = s->fixed;
    for (size_t i = 0; i < s->nmodels; i++) {
        model_state st = s->models[i].state;
        if (st == MODEL_LOADING || st == MODEL_READY || st == MODEL_STOPPING)
            r += s->models[i].est;
    }
    return r;
}

static void request_stop_locked(struct model *m, const char *why)
{
    if (!m->w || m->state == MODEL_STOPPING)
        return;
    log_info("model %s: unloading (%s)", m->name, why);
    m->state = MODEL_STOPPING;
    m->stop_requested = true;
    m->unload_when_idle = false;
    /* only idle workers are stopped here: nothing is in flight, so no
     * goodbye; the kernel frees their memory faster than their own teardown */
    worker_signal(m->w, SIGKILL);
}

/* Make room for `need` bytes: stop idle loaded models, least recently used
 * first. Returns true if enough is free now (nothing to wait for). */
static bool make_room_locked(sched *s, struct model *want, uint64_t need)
{
    uint64_t used = reserved_locked(s);
    if (used + need <= s->budget)
        return true;
    uint64_t freeing = 0;
    for (size_t i = 0; i < s->nmodels; i++)
        if (s->models[i].state == MODEL_STOPPING)
            freeing += s->models[i].est;
    while (used - freeing + need > s->budget) {
        struct model *lru = NULL;
        for (size_t i = 0; i < s->nmodels; i++) {
            struct model *c = &s->models[i];
            if (c == want || c->state != MODEL_READY || c->busy || c->qlen)
                continue;
            if (!lru || c->last_used < lru->last_used)
                lru = c;
        }
        if (!lru)
            break;
        char why[96];
        snprintf(why, sizeof why, "idle, making room for %s", want->name);
        request_stop_locked(lru, why);
        freeing += lru->est;
    }
    return false;
}

static void describe_holders_locked(sched *s, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->nmodels && o < n; i++) {
        struct model *c = &s->models[i];
        if (c->state != MODEL_LOADING && c->state != MODEL_READY && c->state != MODEL_STOPPING)
            continue;
        char h[32];
        budget_human(c->est, h, sizeof h);
        o += (size_t)snprintf(out + o, n - o, "%s%s (%s, %s)", o ? ", " : "", c->name, h,
                              c->busy ? "busy" : model_state_name(c->state));
    }
}

static int spawn_locked(struct model *m, char *err, size_t el)
{
    const config *c = m->s->cfg;
    char th[16], par[16], ctx[16], bat[16], si[16];
    snprintf(th, sizeof th, "%d", c->threads);
    snprintf(par, sizeof par, "%d", c->parallel);
    snprintf(ctx, sizeof ctx, "%d", c->ctx_size);
    snprintf(bat, sizeof bat, "%d", c->batch_size);
    snprintf(si, sizeof si, "%d", c->stream_interval);
    /* each kind of model has its worker binary (worker/worker_main.c) */
    char exe[4200];
    snprintf(exe, sizeof exe, "%s%s", m->s->exe,
             m->kind == MODEL_KIND_TRANSCRIPTION ? "-asr" : m->kind == MODEL_KIND_OCR ? "-ocr" : "");
    char *argv[] = { exe, "--model", m->path, "--name", m->name, "--threads", th,
                     "--parallel", par, "--ctx-size", ctx, "--batch-size", bat,
                     "--stream-interval", si,
                     "--log-level", c->log_level, "--blas", c->blas, "--kernels", c->kernels,
                     NULL };
    worker_events ev = { m, on_worker_frame, on_worker_exit };
    worker *w = worker_start(argv, budget_hard_limit(m->est), &ev, err, el);
    if (!w)
        return -1;
    m->w = w;
    m->state = MODEL_LOADING;
    m->busy = 0;
    m->slots = 0;
    m->stop_requested = false;
    m->loaded_rss = m->rss = m->peak_rss = 0;
    log_info("model %s: worker pid %d loading", m->name, (int)worker_pid(w));
    return 0;
}

/* Try to get the model loading: validation, budget, back-off. Returns 0 when
 * it is loading/ready or will be once memory frees; an HTTP status with a
 * message when the request cannot be served. */
static int ensure_loaded_locked(struct model *m, char *err, size_t el, int *retry_after)
{
    sched *s = m->s;
    *retry_after = 0;
    if (m->state == MODEL_LOADING || m->state == MODEL_READY)
        return 0;
    if (m->state == MODEL_STOPPING)
        return 0;       /* restarts once the old worker is gone */
    double now = now_ms();
    if (m->state == MODEL_FAILED && now < m->retry_at) {
        *retry_after = (int)((m->retry_at - now) / 1000) + 1;
        snprintf(err, el, "model '%s' is unavailable: %s (next retry in %d s)", m->name,
                 m->last_error, *retry_after);
        return 503;
    }
    if (inspect_locked(m) < 0) {
        m->state = MODEL_FAILED;
        m->load_failures++;
        m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : 5000;
        if (m->backoff_ms > MAX_BACKOFF_MS)
            m->backoff_ms = MAX_BACKOFF_MS;
        m->retry_at = now + m->backoff_ms;
        snprintf(err, el, "model '%s' cannot be loaded: %s", m->name, m->last_error);
        return 500;
    }
    if (!make_room_locked(s, m, m->est))
        return 0;       /* the governor starts it when memory frees */
    if (spawn_locked(m, err, el) < 0) {
        m->state = MODEL_FAILED;
        snprintf(m->last_error, sizeof m->last_error, "%s", err);
        m->retry_at = now + 5000;
        return 500;
    }
    return 0;
}

static void dispatch_locked(struct model *m, struct fails *f)
{
    while (m->state == MODEL_READY && m->qhead && m->busy < m->slots) {
        job *j = m->qhead;
        m->qhead = j->qnext;
        if (!m->qhead)
            m->qtail = NULL;
        m->qlen--;
        j->qnext = NULL;
        int slot = 0;
        while (slot < m->slots && m->inflight[slot])
            slot++;
        m->inflight[slot] = j;
        j->slot = slot;
        m->busy++;
        m->last_used = now_ms();
        if (worker_send(m->w, WIRE_REQUEST, j->id, j->payload, j->payload_len) < 0) {
            m->inflight[slot] = NULL;
            m->busy--;
            char msg[160];
            snprintf(msg, sizeof msg, "the worker for model '%s' is gone", m->name);
            fail_later(f, j, 502, "worker_unavailable", msg);
        } else {
            job_dispatched(j);
        }
    }
}

int sched_submit(sched *s, job *j, char *err, size_t el, int *retry_after)
{
    worker *z[MAX_ZOMBIES];
    size_t nz = 0;
    struct fails *f = calloc(1, sizeof *f);
    int rc = 0, retry = 0;
    if (!f) {
        snprintf(err, el, "out of memory");
        return 500;
    }
    pthread_mutex_lock(&s->mu);
    take_zombies_locked(s, z, &nz);
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
    int capacity = m->state == MODEL_READY ? m->slots : s->cfg->parallel;
    bool slot_free = m->busy + m->qlen < capacity;
    if (!slot_free && m->qlen >= s->cfg->queue_size) {
        snprintf(err, el, "model '%s' has %d requests waiting and %d running; try again shortly",
                 m->name, m->qlen, m->busy);
        rc = 503;
        goto out;
    }
    /* the wrong kind of model is refused before anything loads */
    if (j->want_kind >= 0 && m->est && (int)m->kind != j->want_kind) {
        snprintf(err, el, "model '%s' is a model of kind '%s'; it cannot serve this endpoint",
                 m->name, model_kind_name(m->kind));
        rc = 400;
        goto out;
    }
    rc = ensure_loaded_locked(m, err, el, &retry);
    if (rc)
        goto out;
    /* a request's keep_alive holds after that request, the next one's
     * (or the configured one) after the next (Ollama's meaning) */
    m->keep_alive = j->keep_alive != JOB_KEEP_ALIVE_DEFAULT ? j->keep_alive : s->cfg->keep_alive;
    job_ref(j);
    j->enqueued_ms = now_ms();
    if (m->qtail)
        m->qtail->qnext = j;
    else
        m->qhead = j;
    m->qtail = j;
    m->qlen++;
    m->last_used = now_ms();
    dispatch_locked(m, f);
out:
    pthread_mutex_unlock(&s->mu);
    deliver(f);
    free(f);
    free_workers(z, nz);
    *retry_after = rc == 503 ? (retry > 0 ? retry : 2) : 0;
    return rc;
}

void sched_cancel(sched *s, job *j)
{
    job *dequeued = NULL;
    job_mark_cancelled(j);
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

bool sched_kill_worker_of(sched *s, job *j)
{
    bool killed = false;
    pthread_mutex_lock(&s->mu);
    struct model *m = find_model(s, j->model);
    if (m && j->slot >= 0 && j->slot < MAX_SLOTS && m->inflight[j->slot] == j && m->w) {
        log_warn("model %s: [%s] did not stop when asked; killing its worker", m->name, j->rid);
        worker_signal(m->w, SIGKILL);
        killed = true;
    }
    pthread_mutex_unlock(&s->mu);
    return killed;
}

void sched_withdraw(sched *s, job *j, int grace_ms)
{
    sched_cancel(s, j);
    for (int round = 0; round < 2; round++) {
        uint64_t seen = 0;
        job_status st;
        for (int waited = 0; waited < grace_ms; waited += 250) {
            job_wait(j, &seen, 250);
            job_peek(j, &st);
            if (st.phase == JOB_DONE || st.phase == JOB_FAILED || !st.dispatched)
                return;
        }
        /* a hung engine: its worker is killed, which fails the job (502) */
        if (round == 0 && !sched_kill_worker_of(s, j))
            return;
    }
}

static job *find_inflight_locked(struct model *m, uint32_t id, bool remove)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        job *j = m->inflight[i];
        if (!j || j->id != id)
            continue;
        if (remove) {
            m->inflight[i] = NULL;
            m->busy--;
            j->slot = -1;
            m->last_used = now_ms();
        } else {
            job_ref(j);
        }
        return j;
    }
    return NULL;
}

static void on_worker_frame(void *ud, worker *w, const wire_hdr *h, const char *payload)
{
    struct model *m = ud;
    sched *s = m->s;
    struct fails f;
    f.n = 0;
    arena *a = NULL;
    const json *js = NULL;
    char perr[64];
    if (h->type != WIRE_DELTA) {
        /* a parsed node is ~96 bytes, the smallest JSON element ~2 (a
         * LOGPROBS frame may hold many entries) */
        a = arena_new((size_t)h->len * 48 + (1u << 20));
        js = a ? json_parse(a, payload, h->len, perr, sizeof perr) : NULL;
        if (!js || js->type != (h->type == WIRE_LOGPROBS ? JSON_ARRAY : JSON_OBJECT) ||
            (h->type == WIRE_LOGPROBS && (h->len < 2 || payload[0] != '[' ||
                                          payload[h->len - 1] != ']'))) {
            log_error("model %s: unparsable %s frame from worker; killing it", m->name,
                      wire_type_name(h->type));
            arena_free(a);
            worker_signal(w, SIGKILL);
            return;
        }
    }
#define NUM(k) (json_get(js, k) && json_get(js, k)->type == JSON_NUMBER ? json_get(js, k)->number : 0)
#define STR(k) (json_get(js, k) && json_get(js, k)->type == JSON_STRING ? json_get(js, k)->str : "")
    switch (h->type) {
    case WIRE_HELLO: {
        pthread_mutex_lock(&s->mu);
        m->slots = (int)NUM("slots");
        if (m->slots < 1 || m->slots > MAX_SLOTS)
            m->slots = 1;
        if (m->state == MODEL_LOADING)
            m->state = MODEL_READY;
        m->ready_at = m->last_used = now_ms();
        m->load_failures = 0;
        m->last_error[0] = '\0';
        snprintf(m->backend, sizeof m->backend, "%s", STR("backend"));
        m->loaded_rss = m->rss = m->peak_rss = budget_rss(worker_pid(w));
        char e[32], r[32];
        budget_human(m->est, e, sizeof e);
        budget_human(m->loaded_rss, r, sizeof r);
        double errpct = m->loaded_rss ? 100.0 * ((double)m->est - (double)m->loaded_rss) /
                                            (double)m->loaded_rss : 0;
        log_info("model %s: ready (%d slots, ctx %d per slot); memory estimated %s, measured %s "
                 "(estimate %+.1f%%)", m->name, m->slots, (int)NUM("n_ctx_slot"), e, r, errpct);
        dispatch_locked(m, &f);
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->mu);
        break;
    }
    case WIRE_LOAD_FAILED:
        pthread_mutex_lock(&s->mu);
        snprintf(m->last_error, sizeof m->last_error, "%s", STR("message"));
        log_error("model %s: load failed: %s", m->name, m->last_error);
        pthread_mutex_unlock(&s->mu);
        break;      /* the exit that follows fails the queue */
    case WIRE_START:
    case WIRE_DELTA:
    case WIRE_LOGPROBS:
    case WIRE_PROGRESS: {
        pthread_mutex_lock(&s->mu);
        job *j = find_inflight_locked(m, h->id, false);
        pthread_mutex_unlock(&s->mu);
        if (!j)
            break;
        if (h->type == WIRE_START)
            job_started(j, (int)NUM("prompt_tokens"), (int)NUM("cached_tokens"));
        else if (h->type == WIRE_PROGRESS)
            job_progress(j, NUM("progress"));
        else if (h->type == WIRE_LOGPROBS)     /* checked JSON: "[...]", its inside kept */
            job_append_logprobs(j, payload + 1, h->len - 2);
        else
            job_append(j, payload, h->len);
        job_unref(j);
        break;
    }
    case WIRE_DONE:
    case WIRE_ERROR: {
        pthread_mutex_lock(&s->mu);
        job *j = find_inflight_locked(m, h->id, true);
        dispatch_locked(m, &f);
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
    deliver(&f);
}

static void on_worker_exit(void *ud, worker *w, int status, const char *why)
{
    struct model *m = ud;
    sched *s = m->s;
    (void)status;
    struct fails *f = calloc(1, sizeof *f);
    pthread_mutex_lock(&s->mu);
    bool was_loading = m->state == MODEL_LOADING;
    bool planned = m->stop_requested || s->stopping;
    for (int i = 0; i < MAX_SLOTS; i++) {
        job *j = m->inflight[i];
        if (!j)
            continue;
        m->inflight[i] = NULL;
        j->slot = -1;
        char msg[256];
        snprintf(msg, sizeof msg,
                 "the worker serving model '%s' stopped (%s) while running this request",
                 m->name, why);
        if (f)
            fail_later(f, j, 502, "worker_crashed", msg);
        else
            job_unref(j);
    }
    m->busy = 0;
    m->w = NULL;
    m->rss = 0;
    if (s->nzombies < MAX_ZOMBIES)
        s->zombies[s->nzombies++] = w;
    double now = now_ms();
    if (planned) {
        m->state = MODEL_UNLOADED;
        m->stale = false;
        log_info("model %s: unloaded; peak resident %.1f MiB, estimate %.1f MiB (%+.1f%%)", m->name,
                 (double)m->peak_rss / 1048576.0, (double)m->est / 1048576.0,
                 m->peak_rss ? 100.0 * ((double)m->est - (double)m->peak_rss) / (double)m->peak_rss
                             : 0.0);
    } else if (was_loading) {
        if (!m->last_error[0])
            snprintf(m->last_error, sizeof m->last_error, "worker %s while loading", why);
        m->state = MODEL_FAILED;
        m->load_failures++;
        m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : 2000;
        if (m->backoff_ms > MAX_BACKOFF_MS)
            m->backoff_ms = MAX_BACKOFF_MS;
        m->retry_at = now + m->backoff_ms;
        log_error("model %s: failed to load (%d in a row; next try in %.0f s): %s", m->name,
                  m->load_failures, m->backoff_ms / 1000, m->last_error);
        char msg[256];
        snprintf(msg, sizeof msg, "model '%s' could not be loaded: %s", m->name, m->last_error);
        if (f)
            fail_queue_locked(m, f, 500, "model_load_failed", msg);
    } else {
        m->state = MODEL_UNLOADED;
        m->restarts++;
        snprintf(m->last_error, sizeof m->last_error, "worker %s", why);
        /* a worker that dies soon after a restart backs off exponentially */
        if (now - m->ready_at < CRASH_WINDOW_MS)
            m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : 0.0;
        else
            m->backoff_ms = 0;
        if (m->backoff_ms == 0 && m->restarts > 1 && now - m->ready_at < CRASH_WINDOW_MS)
            m->backoff_ms = 1000;
        if (m->backoff_ms > MAX_BACKOFF_MS)
            m->backoff_ms = MAX_BACKOFF_MS;
        m->retry_at = now + m->backoff_ms;
        log_error("model %s: worker %s; restart #%d %s", m->name, why, m->restarts,
                  m->qhead ? "when jobs wait (governor)" : "on next request");
    }
    /* memory just freed: start what waits for it now, not at the next tick */
    if (planned && !s->stopping && f) {
        for (size_t i = 0; i < s->nmodels; i++) {
            struct model *o = &s->models[i];
            if (o->qhead && o->state == MODEL_UNLOADED && now >= o->retry_at) {
                char err[256];
                int retry;
                int rc = ensure_loaded_locked(o, err, sizeof err, &retry);
                if (rc)
                    fail_queue_locked(o, f, rc, "model_load_failed", err);
            }
        }
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    if (f) {
        deliver(f);
        free(f);
    }
}

/* ---- governor ----------------------------------------------------------- */

static void governor_tick(sched *s, struct fails *f)
{
    double now = now_ms();
    uint64_t rss_sum = 0;
    for (size_t i = 0; i < s->nmodels; i++) {
        struct model *m = &s->models[i];
        if (m->w) {
            m->rss = budget_rss(worker_pid(m->w));
            rss_sum += m->rss;
            if (m->rss > m->peak_rss)
                m->peak_rss = m->rss;
        }
        /* keep-alive; models a reload removed or changed stop once idle */
        if (m->state == MODEL_READY && !m->busy && !m->qlen) {
            if (m->removed || m->stale)
                request_stop_locked(m, m->removed ? "removed from the configuration"
                                                  : "configuration changed");
            else if (m->unload_when_idle)
                request_stop_locked(m, "unload requested");
            else if (m->keep_alive >= 0 && now - m->last_used >= (double)m->keep_alive * 1000)
                request_stop_locked(m, "keep-alive expired");
        }
        /* waiting jobs that need a worker */
        if (m->qhead && (m->state == MODEL_UNLOADED || m->state == MODEL_FAILED) &&
            now >= m->retry_at) {
            char err[256];
            int retry;
            int rc = ensure_loaded_locked(m, err, sizeof err, &retry);
            if (rc)
                fail_queue_locked(m, f, rc, rc == 503 ? "model_unavailable" : "model_load_failed",
                                  err);
        }
        /* jobs that waited too long for memory or a load */
        if (m->qhead && m->state != MODEL_READY &&
            now - m->qhead->enqueued_ms > (double)s->cfg->load_timeout * 1000) {
            char holders[200], msg[256];
            describe_holders_locked(s, holders, sizeof holders);
            snprintf(msg, sizeof msg, "model '%s' could not be loaded within %d s; memory is "
                     "held by: %s", m->name, s->cfg->load_timeout, holders[0] ? holders : "none");
            fail_queue_locked(m, f, 503, "memory_budget_full", msg);
        }
    }
    s->rss_now = rss_sum;
    if (rss_sum > s->rss_peak)
        s->rss_peak = rss_sum;
}

static void *governor_main(void *arg)
{
    sched *s = arg;
    struct fails *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    for (;;) {
        worker *z[MAX_ZOMBIES];
        size_t nz = 0;
        pthread_mutex_lock(&s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        governor_tick(s, f);
        take_zombies_locked(s, z, &nz);
        pthread_mutex_unlock(&s->mu);
        deliver(f);
        free_workers(z, nz);
        usleep(GOVERNOR_TICK_MS * 1000);
    }
    free(f);
    return NULL;
}

/* ---- explicit load / unload, status -------------------------------------- */

static int wait_state_locked(sched *s, struct model *m, model_state want, double deadline)
{
    while (m->state != want && !s->stopping) {
        if (want == MODEL_READY && m->state == MODEL_FAILED)
            return -1;
        if (now_ms() >= deadline)
            return -1;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->changed, &s->mu, &ts);
    }
    return m->state == want ? 0 : -1;
}

int sched_load(sched *s, const char *name, char *err, size_t el)
{
    pthread_mutex_lock(&s->mu);
    struct model *m = find_model(s, name);
    int rc = 0, retry;
    if (!m) {
        snprintf(err, el, "The model '%s' does not exist", name);
        rc = 404;
        goto out;
    }
    double deadline = now_ms() + (double)s->cfg->load_timeout * 1000;
    if (m->state == MODEL_FAILED)
        m->retry_at = 0;           /* an explicit load retries at once */
    while ((rc = ensure_loaded_locked(m, err, el, &retry)) == 0 && m->state != MODEL_LOADING &&
           m->state != MODEL_READY) {
        if (now_ms() >= deadline)
            break;
        pthread_mutex_unlock(&s->mu);
        usleep(50000);
        pthread_mutex_lock(&s->mu);
    }
    if (rc)
        goto out;
    if (m->keep_alive == 0)
        m->keep_alive = s->cfg->keep_alive;
    m->unload_when_idle = false;
    if (wait_state_locked(s, m, MODEL_READY, deadline) < 0) {
        char holders[200];
        describe_holders_locked(s, holders, sizeof holders);
        if (m->state == MODEL_FAILED) {
            snprintf(err, el, "model '%s' failed to load: %s", name, m->last_error);
            rc = 500;
        } else {
            snprintf(err, el, "model '%s' did not become ready within %d s; memory is held by: %s",
                     name, s->cfg->load_timeout, holders[0] ? holders : "none");
            rc = 503;
        }
    }
    m->last_used = now_ms();
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sched_unload(sched *s, const char *name, char *err, size_t el)
{
    pthread_mutex_lock(&s->mu);
    struct model *m = find_model(s, name);
    int rc = 0;
    if (!m) {
        snprintf(err, el, "The model '%s' does not exist", name);
        rc = 404;
        goto out;
    }
    if (m->state == MODEL_READY && (m->busy || m->qlen)) {
        m->unload_when_idle = true;
        snprintf(err, el, "model '%s' is busy; it will unload when idle", name);
        rc = 409;
        goto out;
    }
    if (m->state == MODEL_READY || m->state == MODEL_LOADING)
        request_stop_locked(m, "unload requested");
    if (m->state == MODEL_STOPPING &&
        wait_state_locked(s, m, MODEL_UNLOADED, now_ms() + 10000) < 0) {
        snprintf(err, el, "model '%s' did not stop within 10 s", name);
        rc = 503;
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void sched_reload(sched *s, const config *cfg)
{
    pthread_mutex_lock(&s->mu);
    const config *old = s->cfg;
    s->cfg = cfg;
    set_budget(s, cfg);
    bool settings = old->parallel != cfg->parallel || old->ctx_size != cfg->ctx_size ||
                    old->batch_size != cfg->batch_size || old->threads != cfg->threads;
    for (size_t i = 0; i < s->nmodels; i++) {
        struct model *m = &s->models[i];
        if (m->removed)
            continue;
        const model_entry *e = NULL;
        for (size_t k = 0; k < cfg->nmodels; k++)
            if (strcmp(cfg->models[k].name, m->name) == 0)
                e = &cfg->models[k];
        if (!e) {
            m->removed = true;
            log_info("model %s: removed by reload (stops once idle)", m->name);
            continue;
        }
        if (strcmp(e->path, m->path) != 0 || settings) {
            char *p = strdup(e->path);
            if (p) {
                free(m->path);
                m->path = p;
            }
            m->est = 0;                 /* validate and estimate again */
            inspect_locked(m);
            if (m->state == MODEL_READY || m->state == MODEL_LOADING)
                m->stale = true;
            else if (m->state == MODEL_FAILED)
                m->retry_at = 0;
            log_info("model %s: changed by reload", m->name);
        }
        if (m->keep_alive == old->keep_alive)
            m->keep_alive = cfg->keep_alive;
    }
    for (size_t k = 0; k < cfg->nmodels; k++)
        if (!find_model(s, cfg->models[k].name)) {
            log_info("model %s: added by reload", cfg->models[k].name);
            add_model_locked(s, &cfg->models[k]);
        }
    pthread_mutex_unlock(&s->mu);
}

size_t sched_model_count(sched *s)
{
    pthread_mutex_lock(&s->mu);     /* a reload may be adding models */
    size_t n = s->nmodels;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int sched_model_info(sched *s, size_t i, model_info *out)
{
    if (i >= s->nmodels)
        return -1;
    pthread_mutex_lock(&s->mu);
    struct model *m = &s->models[i];
    if (m->removed) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", m->name);
    out->kind = m->kind;
    out->state = m->state;
    out->slots = m->state == MODEL_READY ? m->slots : s->cfg->parallel;
    out->busy = m->busy;
    out->queued = m->qlen;
    out->restarts = m->restarts;
    out->load_failures = m->load_failures;
    out->created = m->created;
    out->pid = m->w ? (int)worker_pid(m->w) : 0;
    out->uptime_s = m->state == MODEL_READY ? (now_ms() - m->ready_at) / 1000 : 0;
    out->keep_alive_s = m->keep_alive;
    out->est_bytes = m->est;
    out->rss_bytes = m->rss;
    out->loaded_rss_bytes = m->loaded_rss;
    out->peak_rss_bytes = m->peak_rss;
    snprintf(out->last_error, sizeof out->last_error, "%s", m->last_error);
    snprintf(out->backend, sizeof out->backend, "%s", m->backend);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sched_get_totals(sched *s, sched_totals *out)
{
    pthread_mutex_lock(&s->mu);
    out->budget = s->budget;
    out->reserved = reserved_locked(s);
    out->index_vectors = s->fixed;
    out->rss = s->rss_now;
    out->rss_peak = s->rss_peak;
    out->draining = s->stopping;
    pthread_mutex_unlock(&s->mu);
}

void sched_shutdown(sched *s, int grace_ms)
{
    struct fails *f = calloc(1, sizeof *f);
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (size_t i = 0; i < s->nmodels; i++) {
        struct model *m = &s->models[i];
        if (f)
            fail_queue_locked(m, f, 503, "shutting_down", "hearthd is shutting down");
        if (m->w)
            worker_send(m->w, WIRE_SHUTDOWN, 0, NULL, 0);
    }
    pthread_mutex_unlock(&s->mu);
    if (f) {
        deliver(f);
        free(f);
    }
    if (s->governor_running) {
        pthread_join(s->governor, NULL);
        s->governor_running = false;
    }
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
    take_zombies_locked(s, z, &nz);
    pthread_mutex_unlock(&s->mu);
    free_workers(z, nz);
}

void sched_free(sched *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->changed);
    for (size_t i = 0; i < s->nmodels; i++)
        free(s->models[i].path);
    free(s->models);
    free(s);
}
