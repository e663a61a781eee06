/*
 * embed.c: sentence embeddings over llama.cpp's encoder path; see embed.h.
 */
#include "engine/embed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llama.h>

#include "core/log.h"
#include "engine/kernels.h"
#include "engine/prompt.h"
#include "engine/tokvec.h"

#define EMBED_SEQS 32           /* sequences per encoder call; divides n_ubatch */
/* With the BLAS backend (llm_params.accel), multiplications of fewer than 32
 * rows stay on the CPU backend, which rounds differently; a call is padded to
 * 32 tokens so that a text's vector is the same alone or in any batch. */
#define EMBED_MIN_TOKENS 32

struct embedder {
    struct llama_model *model;
    struct llama_context *ctx;
    const struct llama_vocab *vocab;
    llm_sink sink;
    int n_embd, n_batch, n_ctx_train;
    bool accel;                 /* BLAS backend: calls padded to EMBED_MIN_TOKENS */
    bool vnni;                  /* hearth's kernels multiply its Q4_0 or Q8_0 matrices */
    llama_token pad_token;
    struct llama_batch batch;
    float *vec;
};

embedder *embed_load(const llm_params *p, const llm_sink *sink, char *err, size_t el)
{
    embedder *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, el, "out of memory");
        return NULL;
    }
    e->sink = *sink;
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.load_mode = LLAMA_LOAD_MODE_NONE;    /* resident once; see llm.c */
    e->model = llama_model_load_from_file(p->path, mp);
    if (!e->model) {
        snprintf(err, el, "llama.cpp could not load the model file");
        goto fail;
    }
    e->vocab = llama_model_get_vocab(e->model);
    e->accel = p->accel;
    char desc[128] = "";
    llama_model_desc(e->model, desc, sizeof desc);
    e->vnni = kernels_active_for(desc);
    e->pad_token = llama_vocab_bos(e->vocab) >= 0 ? llama_vocab_bos(e->vocab) : 0;
    e->n_embd = llama_model_n_embd(e->model);
    e->n_ctx_train = llama_model_n_ctx_train(e->model);
    /* one batch holds at least one full-length input */
    e->n_batch = p->batch_size > 0 ? p->batch_size : 512;
    if (e->n_ctx_train > 0 && e->n_batch < e->n_ctx_train)
        e->n_batch = e->n_ctx_train;
    e->n_batch = (e->n_batch + EMBED_SEQS - 1) / EMBED_SEQS * EMBED_SEQS;
    int threads = p->threads > 0 ? p->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    struct llama_context_params cp = llama_context_default_params();
    cp.embeddings = true;
    cp.pooling_type = LLAMA_POOLING_TYPE_UNSPECIFIED;  /* the model's own */
    cp.n_ctx = (uint32_t)e->n_batch;
    cp.n_batch = cp.n_ubatch = (uint32_t)e->n_batch;
    cp.n_seq_max = EMBED_SEQS;
    /* pooled outputs: the graph must allow every row (llama-facts) */
    cp.n_outputs_max = cp.n_outputs_max_per_seq = (uint32_t)e->n_batch;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.no_perf = true;
    e->ctx = llama_init_from_model(e->model, cp);
    if (!e->ctx) {
        snprintf(err, el, "llama.cpp could not create an embedding context");
        goto fail;
    }
    if (llama_pooling_type(e->ctx) == LLAMA_POOLING_TYPE_NONE) {
        snprintf(err, el, "the model has no pooling type, so it gives no sentence embeddings");
        goto fail;
    }
    e->batch = llama_batch_init(e->n_batch, 0, 1);
    e->vec = malloc((size_t)e->n_embd * sizeof *e->vec);
    if (!e->vec) {
        snprintf(err, el, "out of memory");
        goto fail;
    }
    log_info("embedding model loaded: %d dims, batch %d, %d threads", e->n_embd, e->n_batch,
             threads);
    return e;
fail:
    embed_free(e);
    return NULL;
}

void embed_free(embedder *e)
{
    if (!e)
        return;
    if (e->batch.token)
        llama_batch_free(e->batch);
    if (e->ctx)
        llama_free(e->ctx);
    if (e->model)
        llama_model_free(e->model);
    free(e->vec);
    free(e);
}

int embed_describe(embedder *e, buf *out)
{
    return buf_printf(out, "{\"kind\":\"embedding\",\"slots\":4,\"n_ctx_slot\":%d,\"n_embd\":%d,"
                      "\"pooling\":%d,\"backend\":\"%s\"}",
                      e->n_ctx_train > 0 ? e->n_ctx_train : e->n_batch, e->n_embd,
                      (int)llama_pooling_type(e->ctx),
                      e->accel ? (e->vnni ? "cpu+blas+vnni" : "cpu+blas") : e->vnni ? "cpu+vnni" : "cpu");
}

/* Tokenize one input: a string (with the model's [CLS]/[SEP]) or token ids. */
static int input_tokens(embedder *e, const json *in, tokvec *out, char *err, size_t el)
{
    out->n = 0;
    if (in->type == JSON_STRING) {
        if (prompt_tokenize(e->model, in->str, in->len, true, false, out) < 0) {
            snprintf(err, el, "could not tokenize an input");
            return -1;
        }
    } else {
        int nv = llama_vocab_n_tokens(e->vocab);
        for (const json *t = in->child; t; t = t->next) {
            if (t->type != JSON_NUMBER || !t->is_int || t->integer < 0 || t->integer >= nv) {
                snprintf(err, el, "token ids must be integers in [0, %d)", nv);
                return -1;
            }
            tokvec_push(out, (int32_t)t->integer);
        }
    }
    if (out->n == 0) {
        snprintf(err, el, "an input is empty");
        return -1;
    }
    int limit = e->n_ctx_train > 0 && e->n_ctx_train < e->n_batch ? e->n_ctx_train : e->n_batch;
    if (out->n > limit) {
        snprintf(err, el, "an input has %d tokens; this model takes at most %d", out->n, limit);
        return -1;
    }
    return 0;
}

/* Encode the batch and emit its sequences' vectors in order; *done counts
 * the inputs emitted so far. -1 when the encoder failed, -2 (with err) when
 * it gave a vector no caller can use: NaN or infinite values (damaged
 * weights), or all zeros (no direction to compare). Such a vector is never
 * sent: "nan" is not even JSON. */
static int flush(embedder *e, uint32_t id, int nseq, int *done, char *err, size_t el)
{
    if (nseq == 0)
        return 0;
    llama_memory_t mem = llama_get_memory(e->ctx);
    if (mem)
        llama_memory_clear(mem, true);
    /* a sequence of its own (never read) tops the call up; the attention
     * mask keeps it apart from the real inputs */
    for (int i = 0; e->accel && nseq < EMBED_SEQS && e->batch.n_tokens < EMBED_MIN_TOKENS; i++) {
        int k = e->batch.n_tokens++;
        e->batch.token[k] = e->pad_token;
        e->batch.pos[k] = i;
        e->batch.n_seq_id[k] = 1;
        e->batch.seq_id[k][0] = nseq;
        e->batch.logits[k] = true;
    }
    int rc = llama_model_has_encoder(e->model) || !mem ? llama_encode(e->ctx, e->batch)
                                                       : llama_decode(e->ctx, e->batch);
    if (rc != 0)
        return -1;
    for (int s = 0; s < nseq; s++) {
        const float *v = llama_get_embeddings_seq(e->ctx, s);
        if (!v)
            return -1;
        double norm = 0;
        for (int i = 0; i < e->n_embd; i++)
            norm += (double)v[i] * v[i];
        if (!isfinite(norm) || norm == 0) {
            snprintf(err, el, "the model gave input %d %s; its weights may be damaged", *done,
                     norm == 0 ? "a vector of zeros" : "a vector with NaN or infinite values");
            return -2;
        }
        norm = sqrt(norm);
        for (int i = 0; i < e->n_embd; i++)
            e->vec[i] = (float)(v[i] / norm);
        e->sink.delta(e->sink.ud, id, (const char *)e->vec, (size_t)e->n_embd * sizeof(float));
        ++*done;
    }
    e->batch.n_tokens = 0;
    return 0;
}

int embed_run(embedder *e, uint32_t id, const json *req)
{
    const json *inputs = json_get(req, "input");
    char err[160];
    if (!inputs || inputs->type != JSON_ARRAY || inputs->len == 0) {
        e->sink.error(e->sink.ud, id, 400, "invalid_input", "no input");
        return -1;
    }
    /* validate and count everything before producing any output */
    tokvec t = { 0 };
    int total = 0;
    for (const json *in = inputs->child; in; in = in->next) {
        if (input_tokens(e, in, &t, err, sizeof err) < 0) {
            tokvec_free(&t);
            e->sink.error(e->sink.ud, id, 400,
                          strstr(err, "at most") ? "context_length_exceeded" : "invalid_input", err);
            return -1;
        }
        total += t.n;
    }
    e->sink.start(e->sink.ud, id, total, 0);
    int nseq = 0, done = 0, rc = 0;
    e->batch.n_tokens = 0;
    for (const json *in = inputs->child; in; in = in->next) {
        input_tokens(e, in, &t, err, sizeof err);
        if (nseq == EMBED_SEQS || e->batch.n_tokens + t.n > e->n_batch) {
            if ((rc = flush(e, id, nseq, &done, err, sizeof err)) < 0)
                goto fail;
            nseq = 0;
        }
        for (int i = 0; i < t.n; i++) {
            int k = e->batch.n_tokens++;
            e->batch.token[k] = t.v[i];
            e->batch.pos[k] = i;
            e->batch.n_seq_id[k] = 1;
            e->batch.seq_id[k][0] = nseq;
            e->batch.logits[k] = true;
        }
        nseq++;
    }
    if ((rc = flush(e, id, nseq, &done, err, sizeof err)) < 0)
        goto fail;
    tokvec_free(&t);
    llm_usage u = { .prompt_tokens = total };
    e->sink.done(e->sink.ud, id, "stop", &u);
    return 0;
fail:
    tokvec_free(&t);
    if (rc == -2) {
        log_error("embeddings: %s", err);
        e->sink.error(e->sink.ud, id, 500, "bad_model_output", err);
    } else {
        e->sink.error(e->sink.ud, id, 500, "encode_failed", "the model failed to encode the inputs");
    }
    return -1;
}
