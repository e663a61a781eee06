/*
 * chat.c: POST /v1/chat/completions and POST /v1/completions.
 *
 * Both validate the body (genreq.c), queue a job with the scheduler and then
 * either wait for the whole answer (non-stream) or stream it as server-sent
 * events. Status codes are decided before any byte is sent: a streamed
 * response starts only once the worker has accepted the prompt, so prompt
 * errors (context too long) still get a proper 400.
 *
 * While waiting, the handler polls the client's socket; a client that hangs
 * up cancels its job at once, which frees its slot in the worker.
 */
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/log.h"
#include "http/genreq.h"
#include "http/http.h"
#include "http/toolcall.h"

#define WAIT_TICK_MS 50

struct stream {
    http_req *r;          /* only valid until the handler returns: copy what we need */
    sched *sched;
    job *job;
    int fd;
    gen_kind kind;
    bool include_usage;
    char id[64];
    char model[MODEL_NAME_MAX + 8];
    long long created;
    buf out;              /* SSE bytes not yet handed to MHD */
    size_t out_pos;
    bool finished;        /* all events written to out */
    bool sent_role;
    uint64_t seen;
    char rid[40];
    char *extra;          /* members for the first chunk (malloc'd), NULL when none */
    bool tools;           /* the text may hold tool calls: split it with tcs */
    bool logprobs;        /* chunks carry their tokens' logprobs */
    buf lp;               /* logprobs entries taken, for the next chunk with text */
    toolcall_stream tcs;
};

static void chunk_head(struct stream *st, buf *b)
{
    buf_printf(b, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", st->id,
               st->kind == GEN_CHAT ? "chat.completion.chunk" : "text_completion", st->created);
    jw_cstr(b, st->model);
    buf_puts(b, ",\"system_fingerprint\":\"hearth-" HEARTH_VERSION "\",\"choices\":[");
}

static void chunk_tail(struct stream *st, buf *b)
{
    buf_puts(b, "]");
    if (st->include_usage)
        buf_puts(b, ",\"usage\":null");
    if (st->extra) {            /* once, in the first chunk */
        buf_putc(b, ',');
        buf_puts(b, st->extra);
        free(st->extra);
        st->extra = NULL;
    }
    buf_puts(b, "}\n\n");
}

/* The "logprobs" member's value: null, or {"content":[entries],"refusal":null}. */
static void logprobs_json(buf *b, const buf *lp)
{
    if (!lp) {
        buf_puts(b, "null");
        return;
    }
    buf_puts(b, "{\"content\":[");
    buf_append(b, lp->data ? lp->data : "", lp->len);
    buf_puts(b, "],\"refusal\":null}");
}

/* One chunk with content (text may be NULL), tool calls (a JSON array, or
 * NULL) and an optional finish reason. */
static void emit_chunk_calls(struct stream *st, const char *text, size_t n, const char *calls,
                             const buf *lp, const char *finish, bool role)
{
    buf *b = &st->out;
    chunk_head(st, b);
    if (st->kind == GEN_CHAT) {
        buf_puts(b, "{\"index\":0,\"delta\":{");
        if (role)
            buf_puts(b, "\"role\":\"assistant\",\"content\":\"\",\"refusal\":null");
        else if (text) {
            buf_puts(b, "\"content\":");
            jw_str(b, text, n);
        } else if (calls) {
            buf_puts(b, "\"tool_calls\":");
            buf_puts(b, calls);
        }
        buf_puts(b, "},\"logprobs\":");
        logprobs_json(b, lp);
        buf_puts(b, ",\"finish_reason\":");
    } else {
        buf_puts(b, "{\"index\":0,\"text\":");
        jw_str(b, text ? text : "", text ? n : 0);
        buf_puts(b, ",\"logprobs\":null,\"finish_reason\":");
    }
    jw_cstr(b, finish);
    buf_putc(b, '}');
    chunk_tail(st, b);
}

static void emit_chunk(struct stream *st, const char *text, size_t n, const char *finish,
                       bool role)
{
    emit_chunk_calls(st, text, n, NULL, NULL, finish, role);
}

/* Ids for one answer's tool calls: random, so that no two turns of a
 * conversation share one (the request id may come from the client). */
static void call_ids(char *out, size_t n)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)out << 16);
    snprintf(out, n, "%016llx", (unsigned long long)r);
}

static bool blank(const buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (!strchr(" \t\r\n", b->data[i]))
            return false;
    return true;
}

/* The finish reason of an answer with tool calls: "tool_calls", unless it
 * was cut (by max_tokens: the last call may be incomplete). */
static const char *tool_finish(const char *finish)
{
    return strcmp(finish, "stop") == 0 ? "tool_calls" : finish;
}

/* Generated text: content at once, unless it may be (part of) a tool call;
 * lp holds its tokens' logprobs when they were asked for. */
static void emit_text(struct stream *st, const char *text, size_t n, buf *lp)
{
    if (!st->tools) {
        emit_chunk_calls(st, text, n, NULL, lp, NULL, false);
        if (lp)
            buf_reset(lp);
        return;
    }
    buf c = buf_make(0);
    tcs_feed(&st->tcs, text, n, &c);
    if (c.len)
        emit_chunk(st, c.data, c.len, NULL, false);
    buf_free(&c);
}

static void usage_json(buf *b, const job_status *s)
{
    buf_printf(b,
               "{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
               "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
               s->prompt_tokens, s->completion_tokens, s->prompt_tokens + s->completion_tokens,
               s->cached_tokens);
}

static void timings_json(buf *b, const job_status *s)
{
    buf_printf(b,
               "{\"prompt_n\":%d,\"prompt_ms\":%.3f,\"predicted_n\":%d,\"predicted_ms\":%.3f,"
               "\"cache_n\":%d}",
               s->prompt_tokens - s->cached_tokens, s->prompt_ms, s->completion_tokens,
               s->gen_ms, s->cached_tokens);
}

static void emit_end(struct stream *st, const job_status *s)
{
    buf *b = &st->out;
    if (s->phase == JOB_FAILED) {
        /* headers are gone: an error event, then the stream closes */
        buf_puts(b, "data: ");
        http_error_json(b, http_error_type((unsigned)s->err_status), NULL, s->err_code,
                        s->err_msg);
        buf_puts(b, "\n\n");
        st->finished = true;
        return;
    }
    const char *finish = s->finish;
    if (st->tools) {
        buf c = buf_make(0), calls = buf_make(0);
        char ids[24];
        call_ids(ids, sizeof ids);
        int nc = tcs_end(&st->tcs, ids, true, &c, &calls);
        if (nc > 0) {
            emit_chunk_calls(st, NULL, 0, calls.data, NULL, NULL, false);
            finish = tool_finish(finish);
        }
        if (c.len && !(nc > 0 && blank(&c)))
            emit_chunk(st, c.data, c.len, NULL, false);
        buf_free(&c);
        buf_free(&calls);
    }
    /* entries whose text never came (held stop text) ride on the last chunk */
    emit_chunk_calls(st, NULL, 0, NULL, st->logprobs && st->lp.len ? &st->lp : NULL, finish, false);
    if (st->include_usage) {
        chunk_head(st, b);
        buf_puts(b, "],\"usage\":");
        usage_json(b, s);
        buf_puts(b, ",\"timings\":");
        timings_json(b, s);
        buf_puts(b, "}\n\n");
    }
    buf_puts(b, "data: [DONE]\n\n");
    st->finished = true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *dst, size_t max)
{
    struct stream *st = cls;
    (void)pos;
    log_set_rid(st->rid);
    buf text = buf_make(0);
    for (;;) {
        if (st->out_pos < st->out.len) {
            size_t n = st->out.len - st->out_pos;
            if (n > max)
                n = max;
            memcpy(dst, st->out.data + st->out_pos, n);
            st->out_pos += n;
            if (st->out_pos == st->out.len) {
                buf_reset(&st->out);
                st->out_pos = 0;
            }
            buf_free(&text);
            return (ssize_t)n;
        }
        if (st->finished) {
            buf_free(&text);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        bool changed = job_wait(st->job, &st->seen, WAIT_TICK_MS);
        job_status s;
        buf_reset(&text);
        /* entries may come a moment before their text: kept until it does */
        job_take_logprobs(st->job, &text, st->logprobs ? &st->lp : NULL, &s);
        if (text.len)
            emit_text(st, text.data, text.len, st->logprobs ? &st->lp : NULL);
        if (s.phase == JOB_DONE || s.phase == JOB_FAILED) {
            emit_end(st, &s);
            if (s.phase == JOB_DONE)
                log_info("stream done: %s, %d prompt (%d cached) + %d completion tokens",
                         s.finish, s.prompt_tokens, s.cached_tokens, s.completion_tokens);
            else
                log_warn("stream failed: %s", s.err_msg);
        } else if (!changed && http_client_gone(st->fd)) {
            log_info("client disconnected; cancelling generation");
            sched_cancel(st->sched, st->job);
            buf_free(&text);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_free(void *cls)
{
    struct stream *st = cls;
    job_status s;
    buf scratch = buf_make(0);
    job_take(st->job, &scratch, &s);
    if (s.phase != JOB_DONE && s.phase != JOB_FAILED)
        sched_cancel(st->sched, st->job);     /* the connection died mid-stream */
    buf_free(&scratch);
    job_unref(st->job);
    buf_free(&st->out);
    free(st->extra);
    buf_free(&st->lp);
    if (st->tools)
        tcs_free(&st->tcs);
    free(st);
}

/* Wait until the job has started (stream) or finished; false if the client
 * left first (the job is then cancelled). */
bool http_job_wait(http_req *r, job *j, bool until_done, buf *text, job_status *s)
{
    return http_job_wait_lp(r, j, until_done, text, NULL, s);
}

bool http_job_wait_lp(http_req *r, job *j, bool until_done, buf *text, buf *lp, job_status *s)
{
    int fd = http_conn_fd(r);
    uint64_t seen = 0;
    for (;;) {
        bool changed = job_wait(j, &seen, WAIT_TICK_MS);
        job_take_logprobs(j, text, lp, s);
        if (s->phase == JOB_DONE || s->phase == JOB_FAILED)
            return true;
        if (!until_done && s->started)
            return true;
        if (!changed && http_client_gone(fd)) {
            log_info("client disconnected while waiting; cancelling");
            sched_cancel(r->sched, j);
            return false;
        }
    }
}

int http_reply_submit_failed(http_req *r, int rc, const char *err, int retry)
{
    const char *code = rc == 404 ? "model_not_found"
                       : rc == 400 ? "wrong_model_kind"
                       : rc == 503 && strstr(err, "waiting") ? "server_busy"
                       : rc == 503 ? "model_unavailable"
                                   : "model_load_failed";
    return http_reply_error(r, (unsigned)rc, NULL, rc == 404 ? "model" : NULL, code, err, retry);
}

job *http_new_job(http_req *r, const char *model, int want_kind, buf *payload, int *ret)
{
    size_t plen;
    char *p = buf_detach(payload, &plen);
    snprintf(r->model, sizeof r->model, "%s", model);
    job *j = job_new(r->rid, model, p, plen);      /* frees p when it fails */
    if (!j) {
        *ret = http_reply_error(r, 500, NULL, NULL, "out_of_memory", "out of memory", 0);
        return NULL;
    }
    j->want_kind = want_kind;
    if (!r->job) {              /* the audit log reads its counts at the end */
        job_ref(j);
        r->job = j;
    }
    return j;
}

bool http_run_job(http_req *r, job *j, buf *out, job_status *st, int *ret)
{
    char err[320];
    int retry = 0;
    int rc = sched_submit(r->sched, j, err, sizeof err, &retry);
    if (rc) {
        *ret = http_reply_submit_failed(r, rc, err, retry);
        return false;
    }
    if (!http_job_wait(r, j, true, out, st)) {
        *ret = MHD_NO;              /* the client is gone: close without a response */
        return false;
    }
    if (st->phase == JOB_FAILED) {
        *ret = http_reply_job_failed(r, st);
        return false;
    }
    return true;
}

int http_reply_job_failed(http_req *r, const job_status *s)
{
    unsigned st = s->err_status >= 400 && s->err_status < 600 ? (unsigned)s->err_status : 500;
    return http_reply_error(r, st, NULL, NULL, s->err_code, s->err_msg,
                            st == 503 ? 5 : 0);
}

static int reply_whole(http_req *r, gen_kind kind, const char *id, const char *model,
                       long long created, const buf *text, const job_status *s, const char *extra,
                       bool tools, const buf *lp)
{
    buf b = buf_make(0);
    buf content = buf_make(0), calls = buf_make(0);
    const char *finish = s->finish;
    if (tools) {
        toolcall_stream t;
        tcs_init(&t);
        tcs_feed(&t, text->data ? text->data : "", text->len, &content);
        char ids[24];
        call_ids(ids, sizeof ids);
        if (tcs_end(&t, ids, false, &content, &calls) > 0)
            finish = tool_finish(finish);
        tcs_free(&t);
        text = &content;
    }
    buf_printf(&b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", id,
               kind == GEN_CHAT ? "chat.completion" : "text_completion", created);
    jw_cstr(&b, model);
    buf_puts(&b, ",\"system_fingerprint\":\"hearth-" HEARTH_VERSION "\",\"choices\":[{\"index\":0,");
    if (kind == GEN_CHAT) {
        buf_puts(&b, "\"message\":{\"role\":\"assistant\",\"content\":");
        if (calls.len && blank(text))       /* only blanks around the calls */
            buf_puts(&b, "null");
        else
            jw_str(&b, text->data ? text->data : "", text->len);
        if (calls.len) {
            buf_puts(&b, ",\"tool_calls\":");
            buf_append(&b, calls.data, calls.len);
        }
        buf_puts(&b, ",\"refusal\":null},");
    } else {
        buf_puts(&b, "\"text\":");
        jw_str(&b, text->data ? text->data : "", text->len);
        buf_putc(&b, ',');
    }
    buf_puts(&b, "\"logprobs\":");
    logprobs_json(&b, lp);
    buf_puts(&b, ",\"finish_reason\":");
    jw_cstr(&b, finish);
    buf_free(&content);
    buf_free(&calls);
    buf_puts(&b, "}],\"usage\":");
    usage_json(&b, s);
    buf_puts(&b, ",\"timings\":");
    timings_json(&b, s);
    if (extra) {
        buf_putc(&b, ',');
        buf_puts(&b, extra);
    }
    buf_putc(&b, '}');
    log_info("done: %s, %d prompt (%d cached) + %d completion tokens", s->finish,
             s->prompt_tokens, s->cached_tokens, s->completion_tokens);
    return http_reply_json(r, 200, &b);
}

int http_generate(http_req *r, job *j, const gen_request *g, int kind_value, const char *extra)
{
    gen_kind kind = (gen_kind)kind_value;
    int ret;
    j->keep_alive = g->keep_alive;
    char err[320];
    int retry = 0;
    int rc = sched_submit(r->sched, j, err, sizeof err, &retry);
    if (rc) {
        job_unref(j);
        return http_reply_submit_failed(r, rc, err, retry);
    }
    char id[64];
    snprintf(id, sizeof id, "%s%s", kind == GEN_CHAT ? "chatcmpl-" : "cmpl-", r->rid);
    long long created = (long long)time(NULL);
    buf text = buf_make(0), lp = buf_make(0);
    job_status s;
    if (!http_job_wait_lp(r, j, !g->stream, &text, g->logprobs ? &lp : NULL, &s)) {
        ret = MHD_NO;               /* client gone: close without a response */
        goto out;
    }
    if (s.phase == JOB_FAILED) {
        ret = http_reply_job_failed(r, &s);
        goto out;
    }
    if (!g->stream) {
        ret = reply_whole(r, kind, id, g->model, created, &text, &s, extra, g->tools,
                          g->logprobs ? &lp : NULL);
        goto out;
    }
    struct stream *st = calloc(1, sizeof *st);
    if (!st || (extra && !(st->extra = strdup(extra)))) {
        free(st);
        sched_cancel(r->sched, j);
        ret = MHD_NO;
        goto out;
    }
    st->sched = r->sched;
    st->job = j;
    job_ref(j);
    st->fd = http_conn_fd(r);
    st->kind = kind;
    st->include_usage = g->include_usage;
    snprintf(st->id, sizeof st->id, "%s", id);
    snprintf(st->model, sizeof st->model, "%s", g->model);
    snprintf(st->rid, sizeof st->rid, "%s", r->rid);
    st->created = created;
    st->out = buf_make(0);
    st->tools = g->tools;
    st->logprobs = g->logprobs;
    st->lp = lp;                /* what came with the first text, if not sent below */
    lp = buf_make(0);
    if (st->tools)
        tcs_init(&st->tcs);
    if (kind == GEN_CHAT)
        emit_chunk(st, NULL, 0, NULL, true);
    if (text.len)
        emit_text(st, text.data, text.len, st->logprobs ? &st->lp : NULL);
    if (s.phase == JOB_DONE)
        emit_end(st, &s);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
                                          stream_free);
    if (!resp) {
        stream_free(st);
        ret = MHD_NO;
        goto out;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    http_add_common_headers(r, resp);
    ret = http_queue(r, 200, resp);
    MHD_destroy_response(resp);
out:
    buf_free(&text);
    buf_free(&lp);
    job_unref(j);
    return ret;
}

static int generate(http_req *r, gen_kind kind)
{
    gen_request g;
    gen_error e;
    if (genreq_parse(kind, r->body.data ? r->body.data : "", r->body.len, &g, &e) < 0)
        return http_reply_error(r, (unsigned)e.status, NULL, e.param, e.code, e.message, 0);
    int ret;
    job *j = http_new_job(r, g.model, MODEL_KIND_CHAT, &g.payload, &ret);
    if (!j)
        return ret;
    return http_generate(r, j, &g, kind, NULL);
}

int http_chat(http_req *r)
{
    return generate(r, GEN_CHAT);
}

int http_completions(http_req *r)
{
    return generate(r, GEN_COMPLETION);
}
