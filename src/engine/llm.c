/*
 * llm.c: continuous batching over llama.cpp; see llm.h.
 *
 * Invariant per slot: cache.v[0..cache.n) are exactly the tokens stored in
 * the KV cache for sequence `seq` at positions 0..cache.n-1. Every change to
 * the KV cache (seq_rm, decode) updates cache in the same step.
 */
#include "engine/llm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <llama.h>

#include "core/log.h"
#include "core/mapped.h"
#include "core/thp.h"
#include "engine/argmax.h"
#include "engine/kernels.h"
#include "engine/kquant.h"
#include "core/textstream.h"
#include "engine/prompt.h"
#include "engine/sample_safe.h"
#include "engine/tokvec.h"

struct slot {
    int seq;
    bool active, cancelled, ignore_eos;
    uint32_t req;
    tokvec cache;           /* tokens in the KV cache for this sequence */
    tokvec prompt;          /* the request's prompt */
    int n_gen, max_gen;
    int cached;             /* prompt tokens reused from the cache */
    llama_token last;       /* sampled, not yet decoded */
    bool feed_last;
    int i_batch;            /* logits row in the current batch, -1 none */
    struct llama_sampler *smpl;
    bool greedy;            /* smpl is plain greedy: take the argmax directly */
    textstream ts;
    buf held;               /* text decoded but not yet sent (stream_interval_ms) */
    int top_logprobs;       /* -1: no logprobs; else how many alternatives (0-20) */
    buf lp;                 /* logprobs entries of the tokens not yet sent */
    double t_accept, t_first, t_sent;
    uint64_t used;          /* LRU tick */
};

struct llm {
    struct llama_model *model;
    struct llama_context *ctx;
    const struct llama_vocab *vocab;
    llm_sink sink;
    struct slot *slots;
    int nslots;
    int n_ctx_slot;
    int batch_size;
    int stream_interval_ms;
    bool accel;             /* the BLAS backend takes its prompts' products */
    struct llama_batch batch;
    uint64_t tick;
    buf out;                /* scratch for deltas */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void llama_log_cb(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("HEARTH_LLAMA_LOG") != NULL;
    if (!verbose && level != GGML_LOG_LEVEL_WARN && level != GGML_LOG_LEVEL_ERROR)
        return;
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        n--;
    if (n)
        log_msg(level == GGML_LOG_LEVEL_ERROR ? LOG_ERROR : LOG_WARN, "llama: %.*s", (int)n, text);
}

llm *llm_load(const llm_params *p, const llm_sink *sink, char *err, size_t el)
{
    llama_log_set(llama_log_cb, NULL);
    llm *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, el, "out of memory");
        return NULL;
    }
    m->sink = *sink;
    m->nslots = p->parallel > 0 ? p->parallel : 1;
    m->batch_size = p->batch_size > 0 ? p->batch_size : 512;
    m->stream_interval_ms = p->stream_interval_ms > 0 ? p->stream_interval_ms : 0;
    m->accel = p->accel;

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    /* Map the weights (no copy: a model switch is 1.5x faster than reading
     * them), then drop the mapped pages from the resident set: the weights
     * llama.cpp repacked were copied out and are never read again, and the
     * ones used in place fault back from the page cache. The resident size
     * is then the tensor bytes once, as the memory budget estimates
     * (sched/budget.h), not the mapping plus the repacked copy. */
    mp.load_mode = LLAMA_LOAD_MODE_MMAP;
    long long huge = mapped_warm_huge(p->path);
    log_debug("%lld bytes of the model file map with 2 MiB pages", huge);
    /* the repacked weights and the KV cache are filled in small pages; the
     * worker folds them into huge ones while idle (core/thp.h) */
    bool paused = thp_pause();
    m->model = llama_model_load_from_file(p->path, mp);
    if (!m->model) {
        snprintf(err, el, "llama.cpp could not load the model file");
        goto fail;
    }
    long long dropped = mapped_release(p->path);
    log_debug("released %lld bytes of the model file's mapping", dropped);
    m->vocab = llama_model_get_vocab(m->model);

    int threads = p->threads > 0 ? p->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int ctx_slot = p->ctx_size > 0 ? p->ctx_size : 4096;
    int train = llama_model_n_ctx_train(m->model);
    if (train > 0 && ctx_slot > train)
        ctx_slot = train;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(ctx_slot * m->nslots);
    cp.n_batch = (uint32_t)m->batch_size;
    cp.n_ubatch = (uint32_t)m->batch_size;
    cp.n_seq_max = (uint32_t)m->nslots;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.kv_unified = false;
    cp.no_perf = true;
    m->ctx = llama_init_from_model(m->model, cp);
    thp_resume(paused);
    paused = false;
    if (!m->ctx) {
        snprintf(err, el, "llama.cpp could not create a context (ctx-size %d x %d slots)",
                 ctx_slot, m->nslots);
        goto fail;
    }
    m->n_ctx_slot = (int)llama_n_ctx_seq(m->ctx);
    m->batch = llama_batch_init(m->batch_size + m->nslots, 0, 1);
    m->slots = calloc((size_t)m->nslots, sizeof *m->slots);
    if (!m->slots) {
        snprintf(err, el, "out of memory");
        goto fail;
    }
    for (int i = 0; i < m->nslots; i++) {
        m->slots[i].seq = i;
        m->slots[i].i_batch = -1;
    }
    m->out = buf_make(0);
    log_info("model loaded: %d slots x %d ctx, %d threads, %.1f M params", m->nslots,
             m->n_ctx_slot, threads, (double)llama_model_n_params(m->model) / 1e6);
    return m;
fail:
    thp_resume(paused);
    llm_free(m);
    return NULL;
}

static void slot_release(struct slot *s)
{
    if (s->smpl)
        llama_sampler_free(s->smpl);
    s->smpl = NULL;
    ts_free(&s->ts);
    buf_free(&s->held);
    buf_free(&s->lp);
    tokvec_free(&s->prompt);
    s->active = s->cancelled = false;
    s->feed_last = false;
    s->i_batch = -1;
}

/* Sends the held text, after the logprobs of its tokens. */
static void send_held(llm *m, struct slot *s)
{
    if (s->lp.len && m->sink.logprobs) {
        buf a = buf_make(0);
        buf_putc(&a, '[');
        buf_append(&a, s->lp.data, s->lp.len);
        buf_putc(&a, ']');
        m->sink.logprobs(m->sink.ud, s->req, a.data, a.len);
        buf_free(&a);
        buf_reset(&s->lp);
    }
    if (s->held.len)
        m->sink.delta(m->sink.ud, s->req, s->held.data, s->held.len);
    buf_reset(&s->held);
}

/* One token as OpenAI's logprobs give it: "token" (its text), "bytes". */
static void token_fields(llm *m, llama_token t, buf *b)
{
    char piece[256];
    int n = llama_token_to_piece(m->vocab, t, piece, sizeof piece, 0, false);
    n = n < 0 ? 0 : n;
    buf_puts(b, "\"token\":");
    jw_str(b, piece, (size_t)n);
    buf_puts(b, ",\"bytes\":[");
    for (int i = 0; i < n; i++)
        buf_printf(b, "%s%u", i ? "," : "", (unsigned char)piece[i]);
    buf_putc(b, ']');
}

/* Appends the logprobs entry of token t, sampled from the scores lg: log
 * softmax of the model's raw scores (before temperature and the other
 * samplers), with the top_logprobs most likely tokens. */
static void add_logprobs(llm *m, struct slot *s, const float *lg, llama_token t)
{
    int nv = llama_vocab_n_tokens(m->vocab), k = s->top_logprobs;
    float mx = lg[argmax_f32(lg, nv)];
    double sum = 0;
    for (int i = 0; i < nv; i++)
        sum += exp((double)(lg[i] - mx));
    double lse = (double)mx + log(sum);
    int top[20];
    int nt = 0;
    for (int i = 0; i < nv && k > 0; i++) {       /* the k best, kept sorted */
        if (nt == k && lg[i] <= lg[top[nt - 1]])
            continue;
        int at = nt < k ? nt++ : nt - 1;
        while (at > 0 && lg[top[at - 1]] < lg[i]) {
            top[at] = top[at - 1];
            at--;
        }
        top[at] = i;
    }
    buf *b = &s->lp;
    if (b->len)
        buf_putc(b, ',');
    buf_putc(b, '{');
    token_fields(m, t, b);
    buf_puts(b, ",\"logprob\":");
    jw_number(b, (double)lg[t] - lse);
    buf_puts(b, ",\"top_logprobs\":[");
    for (int i = 0; i < nt; i++) {
        buf_puts(b, i ? ",{" : "{");
        token_fields(m, top[i], b);
        buf_puts(b, ",\"logprob\":");
        jw_number(b, (double)lg[top[i]] - lse);
        buf_putc(b, '}');
    }
    buf_puts(b, "]}");
}

/* Ends a slot's request with a 500: the text it held back goes out first,
 * then the error; its cache is dropped (what it holds may be wrong). */
static void fail_slot(llm *m, struct slot *s, const char *code, const char *msg)
{
    llama_memory_seq_rm(llama_get_memory(m->ctx), s->seq, -1, -1);
    s->cache.n = 0;
    send_held(m, s);
    m->sink.error(m->sink.ud, s->req, 500, code, msg);
    slot_release(s);
}

void llm_free(llm *m)
{
    if (!m)
        return;
    for (int i = 0; m->slots && i < m->nslots; i++) {
        slot_release(&m->slots[i]);
        tokvec_free(&m->slots[i].cache);
    }
    free(m->slots);
    if (m->batch.token)
        llama_batch_free(m->batch);
    if (m->ctx)
        llama_free(m->ctx);
    if (m->model)
        llama_model_free(m->model);
    buf_free(&m->out);
    free(m);
}

int llm_describe(llm *m, buf *out)
{
    char desc[256] = "";
    llama_model_desc(m->model, desc, sizeof desc);
    const char *tmpl = llama_model_chat_template(m->model, NULL);
    /* +vnni: hearth's kernels multiply this model's main type of matrices
     * (Q4_0, Q8_0, Q5_0 or a K-quant: a Q4_K_M file names Q4_K); +blas: its
     * prompts' products run on OpenBLAS (a model kept in F16, BF16 or F32) */
    bool vnni = kernels_active_for(desc) || (kquant_active() && strstr(desc, "Q4_K")) ||
                (kquant_q5_K_active() && strstr(desc, "Q5_K")) ||
                (kquant_q2_K_active() && strstr(desc, "Q2_K")) ||
                (kquant_q3_K_active() && strstr(desc, "Q3_K")) ||
                (kquant_q6_K_active() && strstr(desc, "Q6_K")) ||
                (kquant_iq4_xs_active() && strstr(desc, "IQ4_XS"));
    buf_printf(out, "{\"slots\":%d,\"n_ctx_slot\":%d,\"n_ctx_train\":%d,\"n_vocab\":%d,"
               "\"n_params\":%llu,\"size\":%llu,\"has_chat_template\":%s,\"backend\":\"%s\","
               "\"desc\":",
               m->nslots, m->n_ctx_slot, llama_model_n_ctx_train(m->model),
               llama_vocab_n_tokens(m->vocab), (unsigned long long)llama_model_n_params(m->model),
               (unsigned long long)llama_model_size(m->model), tmpl ? "true" : "false",
               vnni ? "cpu+vnni" : m->accel ? "cpu+blas" : "cpu");
    jw_cstr(out, desc);
    return buf_putc(out, '}');
}

static double num(const json *req, const char *k, double def)
{
    const json *v = json_get(req, k);
    return v && v->type == JSON_NUMBER ? v->number : def;
}

/* *greedy is set when the chain is plain greedy decoding. */
static struct llama_sampler *build_sampler(llm *m, const json *req, bool *greedy)
{
    *greedy = false;
    struct llama_sampler_chain_params sp = llama_sampler_chain_default_params();
    sp.no_perf = true;
    struct llama_sampler *c = llama_sampler_chain_init(sp);
    /* JSON mode, a schema, or tools: GBNF the daemon built (core/jsonschema.h) */
    const json *gr = json_get(req, "grammar"), *trig = json_get(req, "grammar_trigger");
    const char *gtext = gr && gr->type == JSON_STRING ? gr->str : NULL;
    if (gtext) {
        /* a lazy grammar (tools the model may call) holds from its trigger on */
        struct llama_sampler *g;
        if (trig && trig->type == JSON_STRING) {
            const char *pat[1] = { trig->str };
            g = llama_sampler_init_grammar_lazy_patterns(m->vocab, gtext, "root", pat, 1, NULL, 0);
        } else {
            g = llama_sampler_init_grammar(m->vocab, gtext, "root");
        }
        if (!g) {
            llama_sampler_free(c);
            return NULL;
        }
        llama_sampler_chain_add(c, g);
    }
    double pres = num(req, "presence_penalty", 0), freq = num(req, "frequency_penalty", 0);
    if (pres != 0 || freq != 0)
        llama_sampler_chain_add(c, llama_sampler_init_penalties(
                                       llama_vocab_n_tokens(m->vocab), 256, 1.0f, (float)freq,
                                       (float)pres));
    double temp = num(req, "temperature", 0.8);
    if (temp <= 0) {
        *greedy = llama_sampler_chain_n(c) == 0;
        llama_sampler_chain_add(c, llama_sampler_init_greedy());
        return c;
    }
    int top_k = (int)num(req, "top_k", 40);
    double top_p = num(req, "top_p", 0.95), min_p = num(req, "min_p", 0.05);
    double seed = num(req, "seed", -1);
    if (top_k > 0)
        llama_sampler_chain_add(c, llama_sampler_init_top_k(top_k));
    if (top_p < 1.0)
        llama_sampler_chain_add(c, llama_sampler_init_top_p((float)top_p, 1));
    if (min_p > 0)
        llama_sampler_chain_add(c, llama_sampler_init_min_p((float)min_p, 1));
    llama_sampler_chain_add(c, llama_sampler_init_temp((float)temp));
    uint32_t s = seed < 0 ? LLAMA_DEFAULT_SEED : (uint32_t)((uint64_t)seed & 0xffffffffu);
    llama_sampler_chain_add(c, llama_sampler_init_dist(s));
    return c;
}

static int tokenize_request(llm *m, const json *req, prompt_result *pr, char *err, size_t el)
{
    const json *kind = json_get(req, "kind");
    if (kind && kind->type == JSON_STRING && strcmp(kind->str, "chat") == 0) {
        const json *msgs = json_get(req, "messages");
        if (!msgs || msgs->type != JSON_ARRAY || msgs->len == 0) {
            snprintf(err, el, "messages missing");
            return -1;
        }
        prompt_msg *pm = calloc(msgs->len, sizeof *pm);
        if (!pm)
            return -1;
        size_t i = 0;
        for (const json *c = msgs->child; c; c = c->next, i++) {
            const json *r = json_get(c, "role"), *t = json_get(c, "content");
            pm[i].role = r && r->type == JSON_STRING ? r->str : "user";
            pm[i].content = t && t->type == JSON_STRING ? t->str : "";
        }
        int rc = prompt_chat(m->model, pm, msgs->len, pr, err, el);
        free(pm);
        return rc;
    }
    const json *p = json_get(req, "prompt");
    if (!p || p->type != JSON_STRING) {
        snprintf(err, el, "prompt missing");
        return -1;
    }
    return prompt_completion(m->model, p->str, p->len, pr, err, el);
}

static int common_prefix(const tokvec *a, const tokvec *b)
{
    int n = a->n < b->n ? a->n : b->n, i = 0;
    while (i < n && a->v[i] == b->v[i])
        i++;
    return i;
}

int llm_submit(llm *m, uint32_t id, const json *req)
{
    char err[256];
    prompt_result pr;
    if (tokenize_request(m, req, &pr, err, sizeof err) < 0) {
        m->sink.error(m->sink.ud, id, 400, "invalid_prompt", err);
        return -1;
    }
    if (pr.tokens.n == 0) {
        tokvec_free(&pr.tokens);
        m->sink.error(m->sink.ud, id, 400, "invalid_prompt", "the prompt is empty");
        return -1;
    }
    if (pr.tokens.n >= m->n_ctx_slot) {
        snprintf(err, sizeof err,
                 "this model's context is %d tokens per request; the prompt has %d tokens",
                 m->n_ctx_slot, pr.tokens.n);
        tokvec_free(&pr.tokens);
        m->sink.error(m->sink.ud, id, 400, "context_length_exceeded", err);
        return -1;
    }
    /* the free slot sharing the longest prefix; least recently used on ties */
    struct slot *best = NULL;
    int best_common = -1;
    for (int i = 0; i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        if (s->active)
            continue;
        int c = common_prefix(&s->cache, &pr.tokens);
        if (c > best_common || (c == best_common && s->used < best->used)) {
            best = s;
            best_common = c;
        }
    }
    if (!best) {
        tokvec_free(&pr.tokens);
        m->sink.error(m->sink.ud, id, 503, "slots_full", "all slots of this model are busy");
        return -1;
    }
    struct slot *s = best;
    int keep = best_common;
    if (keep >= pr.tokens.n)
        keep = pr.tokens.n - 1;         /* recompute the last token for its logits */
    llama_memory_t mem = llama_get_memory(m->ctx);
    if (!llama_memory_seq_rm(mem, s->seq, keep, -1)) {
        llama_memory_seq_rm(mem, s->seq, -1, -1);
        keep = 0;
    }
    s->cache.n = keep;

    const char *stops[TS_MAX_STOPS + 1];
    size_t ns = 0;
    const json *st = json_get(req, "stop");
    for (const json *c = st && st->type == JSON_ARRAY ? st->child : NULL; c && ns < TS_MAX_STOPS;
         c = c->next)
        if (c->type == JSON_STRING)
            stops[ns++] = c->str;
    if (pr.implicit_stop && ns < TS_MAX_STOPS)
        stops[ns++] = pr.implicit_stop;
    if (ts_init(&s->ts, stops, ns) < 0) {
        tokvec_free(&pr.tokens);
        m->sink.error(m->sink.ud, id, 400, "invalid_stop", "stop sequences too long or too many");
        return -1;
    }
    s->smpl = build_sampler(m, req, &s->greedy);
    if (!s->smpl) {
        ts_free(&s->ts);
        tokvec_free(&pr.tokens);
        m->sink.error(m->sink.ud, id, 500, "sampler_failed", "could not build the sampler");
        return -1;
    }
    int max = (int)num(req, "max_tokens", 0);
    s->max_gen = max > 0 ? max : m->n_ctx_slot;
    const json *ie = json_get(req, "ignore_eos");
    /* a grammar ends with the end of its text: past it only EOS is allowed */
    s->ignore_eos = ie && ie->type == JSON_BOOL && ie->boolean && !json_get(req, "grammar");
    s->prompt = pr.tokens;
    s->cached = keep;
    s->n_gen = 0;
    s->req = id;
    s->active = true;
    s->cancelled = false;
    s->feed_last = false;
    s->i_batch = -1;
    s->used = ++m->tick;
    s->t_accept = now_ms();
    s->t_first = 0;
    s->t_sent = 0;
    s->held = buf_make(0);
    s->lp = buf_make(0);
    const json *lpj = json_get(req, "logprobs"), *tlp = json_get(req, "top_logprobs");
    s->top_logprobs = lpj && lpj->type == JSON_BOOL && lpj->boolean
                          ? (tlp && tlp->type == JSON_NUMBER ? (int)tlp->number : 0)
                          : -1;
    if (s->top_logprobs > 20)
        s->top_logprobs = 20;
    m->sink.start(m->sink.ud, id, s->prompt.n, keep);
    return 0;
}

static void finish(llm *m, struct slot *s, const char *reason)
{
    if (strcmp(reason, "cancelled") != 0) {
        buf_reset(&m->out);
        ts_flush(&s->ts, &m->out);
        buf_append(&s->held, m->out.data, m->out.len);
        send_held(m, s);
    }
    buf_reset(&s->held);
    buf_reset(&s->lp);
    double t = now_ms();
    llm_usage u = {
        .prompt_tokens = s->prompt.n,
        .completion_tokens = s->n_gen,
        .cached_tokens = s->cached,
        .prompt_ms = (s->t_first ? s->t_first : t) - s->t_accept,
        .gen_ms = s->t_first ? t - s->t_first : 0,
    };
    m->sink.done(m->sink.ud, s->req, reason, &u);
    slot_release(s);
}

void llm_cancel(llm *m, uint32_t id)
{
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].active && m->slots[i].req == id)
            m->slots[i].cancelled = true;
}

bool llm_busy(const llm *m)
{
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].active)
            return true;
    return false;
}

static void batch_add(struct llama_batch *b, llama_token t, int pos, int seq, bool logits)
{
    int i = b->n_tokens++;
    b->token[i] = t;
    b->pos[i] = pos;
    b->n_seq_id[i] = 1;
    b->seq_id[i][0] = seq;
    b->logits[i] = logits;
}

/* A sampled token: stream its text, decide whether the sequence ends. */
static void on_token(llm *m, struct slot *s, llama_token tok)
{
    if (!s->t_first)
        s->t_first = now_ms();
    if (llama_vocab_is_eog(m->vocab, tok) && !s->ignore_eos) {
        finish(m, s, "stop");
        return;
    }
    s->n_gen++;
    char piece[256];
    int n = llama_token_to_piece(m->vocab, tok, piece, sizeof piece, 0, false);
    if (n < 0)
        n = 0;
    buf_reset(&m->out);
    bool stopped = ts_feed(&s->ts, piece, (size_t)n, &m->out);
    buf_append(&s->held, m->out.data, m->out.len);
    /* the first text at once, then at most every stream_interval_ms: each
     * send wakes the daemon and the client */
    double now = now_ms();
    if (s->held.len && (!s->t_sent || now - s->t_sent >= m->stream_interval_ms)) {
        send_held(m, s);
        s->t_sent = now;
    }
    if (stopped) {
        finish(m, s, "stop");
        return;
    }
    if (s->n_gen >= s->max_gen || s->cache.n + 1 >= m->n_ctx_slot) {
        finish(m, s, "length");
        return;
    }
    s->last = tok;
    s->feed_last = true;
}

int llm_step(llm *m)
{
    struct llama_batch *b = &m->batch;
    b->n_tokens = 0;
    /* count of prompt tokens each slot puts in this batch */
    int took[64] = { 0 };
    for (int i = 0; i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        s->i_batch = -1;
        if (s->active && s->cancelled)
            finish(m, s, "cancelled");
    }
    /* generating sequences first: one token each */
    for (int i = 0; i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        if (!s->active || !s->feed_last)
            continue;
        s->i_batch = b->n_tokens;
        batch_add(b, s->last, s->cache.n, s->seq, true);
    }
    /* then prompt chunks in the remaining room */
    for (int i = 0; i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        if (!s->active || s->feed_last)
            continue;
        int left = s->prompt.n - s->cache.n;
        int room = m->batch_size - b->n_tokens;
        if (left <= 0 || room <= 0)
            continue;
        int k = left < room ? left : room;
        for (int j = 0; j < k; j++) {
            int pos = s->cache.n + j;
            bool last = pos == s->prompt.n - 1;
            if (last)
                s->i_batch = b->n_tokens;
            batch_add(b, s->prompt.v[pos], pos, s->seq, last);
        }
        took[i < 64 ? i : 63] = k;
    }
    if (b->n_tokens == 0)
        return 0;
    int rc = llama_decode(m->ctx, *b);
    if (rc != 0) {
        log_error("llama_decode failed (%d) on a batch of %d tokens", rc, b->n_tokens);
        for (int i = 0; i < m->nslots; i++)
            if (m->slots[i].active)
                fail_slot(m, &m->slots[i], "decode_failed", "the model failed to evaluate the batch");
        return rc < 0 ? -1 : 0;
    }
    int n = b->n_tokens;
    for (int i = 0; i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        if (!s->active)
            continue;
        if (s->feed_last) {
            tokvec_push(&s->cache, s->last);
            s->feed_last = false;
        } else if (took[i < 64 ? i : 63] > 0) {
            tokvec_append(&s->cache, s->prompt.v + s->cache.n, took[i < 64 ? i : 63]);
        }
        if (s->i_batch >= 0) {
            const float *lg = llama_get_logits_ith(m->ctx, s->i_batch);
            int nv = llama_vocab_n_tokens(m->vocab);
            if (lg && !all_finite_f32(lg, nv)) {
                /* damaged weights (or a broken kernel): never sample from NaN */
                log_error("the model's scores for the next token are NaN or infinite; its "
                          "weights may be damaged");
                fail_slot(m, s, "bad_model_output",
                          "the model produced NaN or infinite scores; its weights may be damaged");
                continue;
            }
            llama_token t;
            char why[200];
            if (s->greedy && lg) {
                t = argmax_f32(lg, nv);
            } else if (sample_safe(s->smpl, m->ctx, s->i_batch, &t, why, sizeof why) < 0) {
                /* a lazy grammar met text it cannot continue (sample_safe.h) */
                log_warn("sampling failed: %s", why);
                fail_slot(m, s, "grammar_failed",
                          "the model's text could not continue the tool call's grammar");
                continue;
            }
            if (s->top_logprobs >= 0 && lg && !llama_vocab_is_eog(m->vocab, t))
                add_logprobs(m, s, lg, t);
            on_token(m, s, t);
        }
    }
    return n;
}
