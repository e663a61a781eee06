/*
 * genreq.h: validation of OpenAI chat/completions request bodies.
 *
 * genreq_parse checks every field hearth honours against OpenAI's types and
 * ranges and builds the internal request the worker executes:
 *
 *   {"kind":"chat"|"completion", "messages":[{"role","content"}] | "prompt",
 *    "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed",
 *    "stop":[...], "presence_penalty", "frequency_penalty", "ignore_eos",
 *    "grammar", "grammar_trigger", "logprobs", "top_logprobs"}
 *
 * "grammar" is GBNF text built here: from response_format (json_object: any
 * object; json_schema: core/jsonschema.h), or from the tools' parameters, so that every tool
 * call is valid JSON for its function. With tool_choice "auto" the grammar
 * is lazy: "grammar_trigger" is the pattern after which it holds (the model
 * opening a call). Tools are described to the model in the system message;
 * earlier tool calls and tool results are written into the conversation in
 * the same tags (http/toolcall.h), results as user turns.
 *
 * Absent (or null) fields are left out so the engine's defaults apply. Unknown
 * fields are ignored, as OpenAI clients send many; fields hearth cannot honour
 * (n > 1, logprobs in completions, a schema keyword a grammar cannot enforce) are refused
 * with 400 rather than silently dropped.
 */
#ifndef HEARTH_GENREQ_H
#define HEARTH_GENREQ_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/config.h"

typedef enum { GEN_CHAT, GEN_COMPLETION } gen_kind;

#define GEN_KEEP_ALIVE_DEFAULT (-2)

/* keep_alive as Ollama takes it: seconds as a number, or a string "30s",
 * "5m", "1h", "-1" (forever), "0" (unload after the request). Returns 0 and
 * the seconds, or -1. */
int genreq_parse_keep_alive(const char *s, size_t len, int *out);

typedef struct gen_request {
    gen_kind kind;
    char model[MODEL_NAME_MAX + 8];
    bool stream;
    bool include_usage;
    int keep_alive;        /* seconds; -1 forever; GEN_KEEP_ALIVE_DEFAULT if absent */
    bool tools;            /* the answer may hold tool calls (http/toolcall.h) */
    bool logprobs;         /* the answer carries the tokens' logprobs (chat) */
    buf payload;           /* the internal request JSON (owned) */
} gen_request;

typedef struct gen_error {
    int status;            /* 400 or 404 */
    char param[64];        /* offending field, "" when none */
    char code[48];
    char message[256];
} gen_error;

/* Returns 0 and fills g (caller frees g->payload), or -1 and fills e. */
int genreq_parse(gen_kind kind, const char *body, size_t len, gen_request *g, gen_error *e);

#endif
