/*
 * prompt.c: chat template rendering and safe tokenization; see prompt.h.
 *
 * The fast path renders the whole conversation and tokenizes it once with
 * special-token parsing, which is exact. It is only taken when no message
 * contains special-token text (checked by tokenizing each message both ways).
 * Otherwise each message is replaced by a sentinel, the template is rendered,
 * and the pieces are tokenized separately: template text with special parsing,
 * message text without.
 */
#include "engine/prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llama.h>

#include "core/buf.h"

int prompt_tokenize(const struct llama_model *model, const char *text, size_t len,
                    bool add_special, bool parse_special, tokvec *out)
{
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    if (len > (1u << 28))
        return -1;
    int need = (int)len + 8;
    if (tokvec_reserve(out, need) < 0)
        return -1;
    int n = llama_tokenize(vocab, text, (int32_t)len, out->v + out->n, need, add_special,
                           parse_special);
    if (n < 0)
        return -1;
    out->n += n;
    return 0;
}

/* True if text contains something that would parse as a special token. */
static bool has_special_text(const struct llama_model *model, const char *s)
{
    tokvec a = { 0 }, b = { 0 };
    size_t l = strlen(s);
    bool special = false;
    if (prompt_tokenize(model, s, l, false, false, &a) < 0 ||
        prompt_tokenize(model, s, l, false, true, &b) < 0)
        special = true;
    else if (a.n != b.n || memcmp(a.v, b.v, (size_t)a.n * sizeof *a.v) != 0)
        special = true;
    tokvec_free(&a);
    tokvec_free(&b);
    return special;
}

static int apply_template(const char *tmpl, const prompt_msg *msgs, size_t n, buf *out)
{
    llama_chat_message *cm = calloc(n ? n : 1, sizeof *cm);
    if (!cm)
        return -1;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        cm[i].role = msgs[i].role;
        cm[i].content = msgs[i].content;
        total += strlen(msgs[i].content) + strlen(msgs[i].role) + 64;
    }
    int cap = (int)(total * 2 + 1024);
    int rc = -1;
    for (int tries = 0; tries < 2; tries++) {
        buf_reset(out);
        if (buf_reserve(out, (size_t)cap) < 0)
            break;
        int r = llama_chat_apply_template(tmpl, cm, n, true, out->data, cap);
        if (r < 0)
            break;
        if (r <= cap) {
            out->len = (size_t)r;
            out->data[r] = '\0';
            rc = 0;
            break;
        }
        cap = r + 1;
    }
    free(cm);
    return rc;
}

/* Does the rendered text already start with the BOS token's text? */
static bool starts_with_bos(const struct llama_model *model, const char *s)
{
    const struct llama_vocab *v = llama_model_get_vocab(model);
    llama_token bos = llama_vocab_bos(v);
    if (bos < 0)
        return false;
    const char *t = llama_vocab_get_text(v, bos);
    return t && *t && strncmp(s, t, strlen(t)) == 0;
}

static int render_fallback(const struct llama_model *model, const prompt_msg *msgs, size_t n,
                           prompt_result *out)
{
    buf b = buf_make(0);
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!strcmp(r, "system") || !strcmp(r, "developer"))
            rc = buf_printf(&b, "%s\n\n", msgs[i].content);
        else if (!strcmp(r, "assistant"))
            rc = buf_printf(&b, "Assistant: %s\n", msgs[i].content);
        else
            rc = buf_printf(&b, "User: %s\n", msgs[i].content);
        if (rc < 0)
            goto out;
    }
    if (buf_puts(&b, "Assistant:") < 0)
        goto out;
    /* the transcript has no special tokens: all of it is plain text */
    rc = prompt_tokenize(model, b.data, b.len, true, false, &out->tokens);
    out->fallback_template = true;
    out->implicit_stop = "\nUser:";
out:
    buf_free(&b);
    return rc;
}

static int render_split(const struct llama_model *model, const char *tmpl,
                        const prompt_msg *msgs, size_t n, prompt_result *out)
{
    prompt_msg *sm = calloc(n, sizeof *sm);
    char (*marks)[32] = calloc(n, sizeof *marks);
    buf r = buf_make(0);
    int rc = -1;
    if (!sm || !marks)
        goto out;
    for (size_t i = 0; i < n; i++) {
        snprintf(marks[i], sizeof marks[i], "\x1b" "HRTH%zu\x1b", i);
        sm[i].role = msgs[i].role;
        sm[i].content = marks[i];
    }
    if (apply_template(tmpl, sm, n, &r) < 0)
        goto out;
    bool add_bos = !starts_with_bos(model, r.data);
    const char *p = r.data;
    for (size_t i = 0; i < n; i++) {
        const char *m = strstr(p, marks[i]);
        if (!m)
            goto out;        /* template dropped a message: let caller fall back */
        if (prompt_tokenize(model, p, (size_t)(m - p), add_bos, true, &out->tokens) < 0)
            goto out;
        add_bos = false;
        if (prompt_tokenize(model, msgs[i].content, strlen(msgs[i].content), false, false,
                            &out->tokens) < 0)
            goto out;
        p = m + strlen(marks[i]);
    }
    rc = prompt_tokenize(model, p, strlen(p), add_bos, true, &out->tokens);
out:
    free(sm);
    free(marks);
    buf_free(&r);
    return rc;
}

int prompt_chat(const struct llama_model *model, const prompt_msg *msgs, size_t n,
                prompt_result *out, char *err, size_t el)
{
    memset(out, 0, sizeof *out);
    const char *tmpl = llama_model_chat_template(model, NULL);
    if (tmpl) {
        buf r = buf_make(0);
        if (apply_template(tmpl, msgs, n, &r) == 0) {
            bool special = false;
            for (size_t i = 0; i < n && !special; i++)
                special = has_special_text(model, msgs[i].content);
            int rc;
            if (!special)
                rc = prompt_tokenize(model, r.data, r.len, !starts_with_bos(model, r.data), true,
                                     &out->tokens);
            else
                rc = render_split(model, tmpl, msgs, n, out);
            buf_free(&r);
            if (rc == 0)
                return 0;
            tokvec_free(&out->tokens);
            if (special) {
                snprintf(err, el, "could not render the chat template safely");
                return -1;
            }
        }
        buf_free(&r);
    }
    if (render_fallback(model, msgs, n, out) < 0) {
        tokvec_free(&out->tokens);
        snprintf(err, el, "could not tokenize the conversation");
        return -1;
    }
    return 0;
}

int prompt_completion(const struct llama_model *model, const char *text, size_t len,
                      prompt_result *out, char *err, size_t el)
{
    memset(out, 0, sizeof *out);
    if (prompt_tokenize(model, text, len, true, false, &out->tokens) < 0) {
        tokvec_free(&out->tokens);
        snprintf(err, el, "could not tokenize the prompt");
        return -1;
    }
    return 0;
}
