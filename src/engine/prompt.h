/*
 * prompt.h: turns chat messages or a completion prompt into tokens.
 *
 * Chat messages go through the model's chat template (GGUF metadata
 * tokenizer.chat_template, rendered by llama.cpp's built-in template engine).
 * When the model has no template, or one llama.cpp cannot render, a plain
 * transcript is used (documented in the README):
 *
 *     {system}\n\n        (only when there is a system message)
 *     User: {text}\n
 *     Assistant: {text}\n
 *     ...
 *     Assistant:
 *
 * and "\nUser:" becomes an implicit stop sequence.
 *
 * Safety: text from a request is never parsed for special tokens, so a user
 * who types "<|im_start|>" gets those characters, not a control token. Only
 * the template's own text is tokenized with special-token parsing.
 */
#ifndef HEARTH_PROMPT_H
#define HEARTH_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/tokvec.h"

struct llama_model;

typedef struct prompt_msg {
    const char *role;
    const char *content;
} prompt_msg;

typedef struct prompt_result {
    tokvec tokens;
    bool fallback_template;   /* the plain transcript was used */
    const char *implicit_stop; /* static string or NULL */
} prompt_result;

/* Returns 0, or -1 with err set. The caller frees out->tokens. */
int prompt_chat(const struct llama_model *model, const prompt_msg *msgs, size_t n,
                prompt_result *out, char *err, size_t errlen);
int prompt_completion(const struct llama_model *model, const char *text, size_t len,
                      prompt_result *out, char *err, size_t errlen);

/* Tokenize text; parse_special only for template text. Appends to out. */
int prompt_tokenize(const struct llama_model *model, const char *text, size_t len,
                    bool add_special, bool parse_special, tokvec *out);

#endif
