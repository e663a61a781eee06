/*
 * job.c: the producer/consumer hand-off of one request; see job.h.
 */
#include "sched/job.h"

#include "core/json.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_uint g_next_id = 1;

job *job_new(const char *rid, const char *model, char *payload, size_t len)
{
    job *j = calloc(1, sizeof *j);
    if (!j) {
        free(payload);
        return NULL;
    }
    j->id = atomic_fetch_add(&g_next_id, 1);
    snprintf(j->rid, sizeof j->rid, "%s", rid);
    snprintf(j->model, sizeof j->model, "%s", model);
    j->payload = payload;
    j->payload_len = len;
    j->refs = 1;
    j->text = buf_make(JOB_TEXT_CAP);
    j->logprobs = buf_make(JOB_TEXT_CAP);
    j->slot = -1;
    j->keep_alive = JOB_KEEP_ALIVE_DEFAULT;
    j->want_kind = -1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    return j;
}

void job_ref(job *j)
{
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void job_unref(job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    buf_free(&j->text);
    buf_free(&j->logprobs);
    free(j->payload);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static void changed(job *j)
{
    j->version++;
    pthread_cond_broadcast(&j->cv);
}

void job_started(job *j, int prompt_tokens, int cached_tokens)
{
    pthread_mutex_lock(&j->mu);
    if (j->st.phase < JOB_DONE) {
        j->st.phase = JOB_RUNNING;
        j->st.started = true;
        j->st.prompt_tokens = prompt_tokens;
        j->st.cached_tokens = cached_tokens;
        changed(j);
    }
    pthread_mutex_unlock(&j->mu);
}

static void fail_locked(job *j, int status, const char *code, const char *msg)
{
    j->st.phase = JOB_FAILED;
    j->st.err_status = status;
    snprintf(j->st.err_code, sizeof j->st.err_code, "%s", code);
    snprintf(j->st.err_msg, sizeof j->st.err_msg, "%s", msg);
    changed(j);
}

void job_append(job *j, const char *text, size_t n)
{
    pthread_mutex_lock(&j->mu);
    if (j->st.phase < JOB_DONE) {
        if (buf_append(&j->text, text, n) < 0)
            fail_locked(j, 500, "output_too_large", "the response exceeded the output cap");
        else
            changed(j);
    }
    pthread_mutex_unlock(&j->mu);
}

void job_append_logprobs(job *j, const char *entries, size_t n)
{
    pthread_mutex_lock(&j->mu);
    if (j->st.phase < JOB_DONE && n) {
        if ((j->logprobs.len && buf_putc(&j->logprobs, ',') < 0) ||
            buf_append(&j->logprobs, entries, n) < 0)
            fail_locked(j, 500, "output_too_large", "the response exceeded the output cap");
        else
            changed(j);
    }
    pthread_mutex_unlock(&j->mu);
}

void job_finish(job *j, const char *finish, int prompt_tokens, int completion_tokens,
                int cached_tokens, double prompt_ms, double gen_ms)
{
    pthread_mutex_lock(&j->mu);
    if (j->st.phase < JOB_DONE) {
        j->st.phase = JOB_DONE;
        snprintf(j->st.finish, sizeof j->st.finish, "%s", finish);
        j->st.prompt_tokens = prompt_tokens;
        j->st.completion_tokens = completion_tokens;
        j->st.cached_tokens = cached_tokens;
        j->st.prompt_ms = prompt_ms;
        j->st.gen_ms = gen_ms;
        changed(j);
    }
    pthread_mutex_unlock(&j->mu);
}

void job_mark_cancelled(job *j)
{
    pthread_mutex_lock(&j->mu);
    j->st.cancelled = true;
    pthread_mutex_unlock(&j->mu);
}

void job_fail(job *j, int status, const char *code, const char *msg)
{
    pthread_mutex_lock(&j->mu);
    if (j->st.phase < JOB_DONE)
        fail_locked(j, status, code, msg);
    pthread_mutex_unlock(&j->mu);
}

bool job_wait(job *j, uint64_t *seen, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    while (j->version == *seen) {
        if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) == ETIMEDOUT)
            break;
    }
    bool ch = j->version != *seen;
    *seen = j->version;
    pthread_mutex_unlock(&j->mu);
    return ch;
}

void job_peek(job *j, job_status *st)
{
    pthread_mutex_lock(&j->mu);
    *st = j->st;
    pthread_mutex_unlock(&j->mu);
}

void job_take_logprobs(job *j, buf *out, buf *lp, job_status *st)
{
    pthread_mutex_lock(&j->mu);
    if (j->text.len) {
        buf_append(out, j->text.data, j->text.len);
        buf_reset(&j->text);
    }
    if (lp && j->logprobs.len) {
        if (lp->len)
            buf_putc(lp, ',');
        buf_append(lp, j->logprobs.data, j->logprobs.len);
        buf_reset(&j->logprobs);
    }
    *st = j->st;
    pthread_mutex_unlock(&j->mu);
}

void job_take(job *j, buf *out, job_status *st)
{
    job_take_logprobs(j, out, NULL, st);
}

int job_payload(buf *out, const char *fields, const char *path)
{
    const char *o = fields && fields[0] == '{' ? fields + 1 : "}";
    if (buf_puts(out, "{\"path\":") < 0 || jw_cstr(out, path) < 0)
        return -1;
    if (*o != '}' && buf_putc(out, ',') < 0)
        return -1;
    return buf_puts(out, o);
}

void job_progress(job *j, double fraction)
{
    if (!(fraction >= 0))
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    pthread_mutex_lock(&j->mu);
    j->st.progress = fraction;
    pthread_mutex_unlock(&j->mu);
}

void job_dispatched(job *j)
{
    pthread_mutex_lock(&j->mu);
    j->st.dispatched = true;
    pthread_mutex_unlock(&j->mu);
}
