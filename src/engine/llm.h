/*
 * llm.h: the LLM engine: one llama.cpp model and context serving several
 * sequences with continuous batching. Runs only inside a worker process.
 *
 * Usage: llm_load, then repeatedly llm_submit / llm_cancel as requests arrive
 * and llm_step while llm_busy. Each llm_step runs ONE llama_decode that
 * advances every active sequence together: one generated token for each
 * sequence that is generating, plus a chunk of prompt for sequences still
 * reading theirs. New requests join between steps.
 *
 * Prefix reuse: a slot keeps the tokens of its last request in the KV cache;
 * a new request goes to the free slot sharing the longest prefix with it and
 * only the rest is computed.
 *
 * Results flow out through the llm_sink callbacks, called from llm_submit and
 * llm_step on the caller's thread. llama.cpp errors are translated to HTTP-ish
 * statuses and messages here and never leak upward.
 */
#ifndef HEARTH_LLM_H
#define HEARTH_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"

typedef struct llm llm;

typedef struct llm_params {
    const char *path;
    int threads;        /* 0 = all online CPUs */
    int parallel;       /* slots */
    int ctx_size;       /* tokens per slot */
    int batch_size;     /* max tokens per decode */
    int stream_interval_ms; /* send generated text at most this often (the first at once) */
    bool accel;         /* the BLAS backend is loaded (worker/accel.h) */
} llm_params;

typedef struct llm_usage {
    int prompt_tokens;
    int completion_tokens;
    int cached_tokens;
    double prompt_ms;   /* from accept to first token */
    double gen_ms;      /* from first token to done */
} llm_usage;

typedef struct llm_sink {
    void *ud;
    void (*start)(void *ud, uint32_t id, int prompt_tokens, int cached_tokens);
    void (*delta)(void *ud, uint32_t id, const char *text, size_t n);
    /* finish: "stop", "length" or "cancelled" */
    void (*done)(void *ud, uint32_t id, const char *finish, const llm_usage *u);
    void (*error)(void *ud, uint32_t id, int status, const char *code, const char *msg);
    /* the logprobs of the tokens whose text the next delta (or done) carries:
     * a JSON array of OpenAI's entries; only for requests that ask */
    void (*logprobs)(void *ud, uint32_t id, const char *json_array, size_t n);
} llm_sink;

/* Loads the model; NULL with err on failure. */
llm *llm_load(const llm_params *p, const llm_sink *sink, char *err, size_t errlen);
void llm_free(llm *m);

/* Facts for the HELLO message: {"n_ctx_slot":..,"slots":..,"n_vocab":..,...} */
int  llm_describe(llm *m, buf *out);

/* Accept a request (the internal JSON documented in http/genreq.h). Errors are
 * reported through sink->error; returns 0 if accepted. */
int  llm_submit(llm *m, uint32_t id, const json *req);
void llm_cancel(llm *m, uint32_t id);
bool llm_busy(const llm *m);
/* One decode step. Returns the number of tokens decoded (0 if idle), -1 on a
 * fatal engine error. */
int  llm_step(llm *m);

#endif
