/*
 * genreq.c: OpenAI request validation; see genreq.h.
 */
#include "http/genreq.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/textstream.h"

#define MAX_MESSAGES 4096

static int bad(gen_error *e, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(gen_error *e, const char *param, const char *code, const char *fmt, ...)
{
    e->status = 400;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static const json *opt(const json *o, const char *k)
{
    const json *v = json_get(o, k);
    return v && v->type != JSON_NULL ? v : NULL;
}

/* Optional number in [lo, hi]; appends "key":value to out. */
static int num_field(const json *o, const char *k, double lo, double hi, bool integer, buf *out,
                     gen_error *e)
{
    const json *v = opt(o, k);
    if (!v)
        return 0;
    if (v->type != JSON_NUMBER)
        return bad(e, k, "invalid_type", "'%s' must be a number, not %s", k,
                   json_type_name(v->type));
    if (integer && !v->is_int)
        return bad(e, k, "invalid_type", "'%s' must be an integer", k);
    if (v->number < lo || v->number > hi)
        return bad(e, k, "invalid_value", "'%s' must be between %g and %g; got %g", k, lo, hi,
                   v->number);
    if (integer)
        buf_printf(out, ",\"%s\":%lld", k, (long long)v->integer);
    else
        buf_printf(out, ",\"%s\":%.9g", k, v->number);
    return 0;
}

static int bool_field(const json *o, const char *k, bool *out, gen_error *e)
{
    const json *v = opt(o, k);
    if (!v)
        return 0;
    if (v->type != JSON_BOOL)
        return bad(e, k, "invalid_type", "'%s' must be a boolean, not %s", k,
                   json_type_name(v->type));
    *out = v->boolean;
    return 0;
}

static int content_text(const json *c, size_t idx, buf *out, gen_error *e)
{
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", idx);
    if (!c)
        return jw_str(out, "", 0);
    if (c->type == JSON_STRING)
        return jw_str(out, c->str, c->len);
    if (c->type != JSON_ARRAY)
        return bad(e, param, "invalid_type", "'%s' must be a string or an array of text parts",
                   param);
    buf t = buf_make(0);
    size_t k = 0;
    for (const json *p = c->child; p; p = p->next, k++) {
        const json *ty = json_get(p, "type"), *tx = json_get(p, "text");
        if (p->type != JSON_OBJECT || !ty || ty->type != JSON_STRING) {
            buf_free(&t);
            return bad(e, param, "invalid_type", "'%s[%zu]' must be a content part object",
                       param, k);
        }
        if (!json_str_is(ty, "text")) {
            buf_free(&t);
            return bad(e, param, "unsupported_content",
                       "content parts of type '%.32s' are not supported; only 'text'", ty->str);
        }
        if (!tx || tx->type != JSON_STRING) {
            buf_free(&t);
            return bad(e, param, "invalid_type", "'%s[%zu].text' must be a string", param, k);
        }
        if (k)
            buf_putc(&t, '\n');
        buf_append(&t, tx->str, tx->len);
    }
    int rc = jw_str(out, t.data ? t.data : "", t.len);
    buf_free(&t);
    return rc;
}

static int messages_field(const json *o, buf *out, gen_error *e)
{
    const json *m = json_get(o, "messages");
    if (!m)
        return bad(e, "messages", "missing_required_parameter",
                   "Missing required parameter: 'messages'");
    if (m->type != JSON_ARRAY)
        return bad(e, "messages", "invalid_type", "'messages' must be an array");
    if (m->len == 0)
        return bad(e, "messages", "invalid_value", "'messages' must contain at least one message");
    if (m->len > MAX_MESSAGES)
        return bad(e, "messages", "invalid_value", "too many messages (max %d)", MAX_MESSAGES);
    static const char *roles[] = { "system", "developer", "user", "assistant", "tool" };
    buf_puts(out, ",\"messages\":[");
    size_t i = 0;
    for (const json *c = m->child; c; c = c->next, i++) {
        char param[48];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (c->type != JSON_OBJECT)
            return bad(e, param, "invalid_type", "'%s' must be an object", param);
        const json *r = json_get(c, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!r || r->type != JSON_STRING)
            return bad(e, param, "invalid_type", "'%s' must be a string", param);
        bool ok = false;
        for (size_t k = 0; k < sizeof roles / sizeof *roles; k++)
            ok |= json_str_is(r, roles[k]);
        if (!ok)
            return bad(e, param, "invalid_value",
                       "'%s' must be one of system, developer, user, assistant, tool", param);
        const json *ct = json_get(c, "content");
        if ((!ct || ct->type == JSON_NULL) && !json_str_is(r, "assistant")) {
            snprintf(param, sizeof param, "messages[%zu].content", i);
            return bad(e, param, "missing_required_parameter", "'%s' is required", param);
        }
        if (i)
            buf_putc(out, ',');
        buf_puts(out, "{\"role\":");
        jw_str(out, r->str, r->len);
        buf_puts(out, ",\"content\":");
        if (content_text(ct && ct->type != JSON_NULL ? ct : NULL, i, out, e) < 0)
            return -1;
        buf_putc(out, '}');
    }
    buf_putc(out, ']');
    return 0;
}

static int prompt_field(const json *o, buf *out, gen_error *e)
{
    const json *p = json_get(o, "prompt");
    if (!p)
        return bad(e, "prompt", "missing_required_parameter",
                   "Missing required parameter: 'prompt'");
    if (p->type == JSON_ARRAY && p->len == 1 && p->child->type == JSON_STRING)
        p = p->child;
    if (p->type != JSON_STRING)
        return bad(e, "prompt", "invalid_type",
                   "'prompt' must be a string (or an array holding one string)");
    buf_puts(out, ",\"prompt\":");
    return jw_str(out, p->str, p->len);
}

static int stop_field(const json *o, buf *out, gen_error *e)
{
    const json *s = opt(o, "stop");
    if (!s)
        return 0;
    if (s->type == JSON_STRING) {
        if (s->len > TS_MAX_STOP_LEN)
            return bad(e, "stop", "invalid_value", "a stop sequence may be at most %d bytes",
                       TS_MAX_STOP_LEN);
        buf_puts(out, ",\"stop\":[");
        jw_str(out, s->str, s->len);
        return buf_putc(out, ']');
    }
    if (s->type != JSON_ARRAY)
        return bad(e, "stop", "invalid_type", "'stop' must be a string or an array of strings");
    if (s->len > TS_MAX_STOPS)
        return bad(e, "stop", "invalid_value", "at most %d stop sequences", TS_MAX_STOPS);
    buf_puts(out, ",\"stop\":[");
    for (const json *c = s->child; c; c = c->next) {
        if (c->type != JSON_STRING)
            return bad(e, "stop", "invalid_type", "'stop' must contain only strings");
        if (c->len > TS_MAX_STOP_LEN)
            return bad(e, "stop", "invalid_value", "a stop sequence may be at most %d bytes",
                       TS_MAX_STOP_LEN);
        if ((c != s->child && buf_putc(out, ',') < 0) || jw_str(out, c->str, c->len) < 0)
            return -1;
    }
    return buf_putc(out, ']');
}

static int response_format_field(const json *o, buf *out, gen_error *e)
{
    const json *rf = opt(o, "response_format");
    if (!rf)
        return 0;
    const json *t = json_get(rf, "type");
    if (rf->type != JSON_OBJECT || !t || t->type != JSON_STRING)
        return bad(e, "response_format", "invalid_type",
                   "'response_format' must be an object with a 'type'");
    if (json_str_is(t, "json_object"))
        return buf_puts(out, ",\"json\":true");
    if (json_str_is(t, "text"))
        return 0;
    return bad(e, "response_format.type", "invalid_value",
               "response_format type '%.32s' is not supported; use 'text' or 'json_object'",
               t->str);
}

static int unsupported(const json *o, gen_error *e)
{
    const json *n = opt(o, "n");
    if (n && (n->type != JSON_NUMBER || !n->is_int))
        return bad(e, "n", "invalid_type", "'n' must be an integer");
    if (n && n->integer != 1)
        return bad(e, "n", "invalid_value", "only n=1 is supported");
    const json *lp = opt(o, "logprobs");
    if (lp && ((lp->type == JSON_BOOL && lp->boolean) || lp->type == JSON_NUMBER))
        return bad(e, "logprobs", "unsupported_parameter", "logprobs are not supported yet");
    const json *tools = opt(o, "tools");
    if (tools && (tools->type != JSON_ARRAY || tools->len > 0))
        return bad(e, "tools", "unsupported_parameter", "tools are not supported yet");
    const json *bo = opt(o, "best_of");
    if (bo && !(bo->type == JSON_NUMBER && bo->is_int && bo->integer == 1))
        return bad(e, "best_of", "unsupported_parameter", "only best_of=1 is supported");
    const json *sfx = opt(o, "suffix");
    if (sfx && !(sfx->type == JSON_STRING && sfx->len == 0))
        return bad(e, "suffix", "unsupported_parameter",
                   "suffix (insertion) is not supported");
    const json *echo = opt(o, "echo");
    if (echo && echo->type == JSON_BOOL && echo->boolean)
        return bad(e, "echo", "unsupported_parameter", "echo is not supported");
    return 0;
}

int genreq_parse_keep_alive(const char *s, size_t len, int *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (end == tmp || !isfinite(v))
        return -1;
    double mul = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mul = 60, end++;
    else if (*end == 'h')
        mul = 3600, end++;
    if (*end)
        return -1;
    v *= mul;
    if (v < 0)
        v = -1;
    if (v > 1e9)
        v = 1e9;
    *out = (int)v;
    return 0;
}

static int keep_alive_field(const json *o, int *out, gen_error *e)
{
    const json *k = opt(o, "keep_alive");
    *out = GEN_KEEP_ALIVE_DEFAULT;
    if (!k)
        return 0;
    if (k->type == JSON_NUMBER) {
        *out = k->number < 0 ? -1 : k->number > 1e9 ? 1000000000 : (int)k->number;
        return 0;
    }
    if (k->type == JSON_STRING && strlen(k->str) == k->len &&
        genreq_parse_keep_alive(k->str, k->len, out) == 0)
        return 0;
    return bad(e, "keep_alive", "invalid_value",
               "'keep_alive' must be seconds (a number) or a duration like \"5m\"");
}

int genreq_parse(gen_kind kind, const char *body, size_t len, gen_request *g, gen_error *e)
{
    memset(g, 0, sizeof *g);
    memset(e, 0, sizeof *e);
    g->kind = kind;
    /* escaping can turn one byte into six (\\u007f) */
    g->payload = buf_make(len * 6 + 65536);
    /* a parsed node is ~96 bytes; the smallest useful JSON element ~6 */
    arena *a = arena_new(len * 16 + (1u << 20));
    char perr[96];
    int rc = -1;
    const json *o = a ? json_parse(a, body, len, perr, sizeof perr) : NULL;
    if (!o) {
        bad(e, NULL, "invalid_json", "We could not parse the JSON body of your request (%s)",
            a ? perr : "out of memory");
        goto out;
    }
    if (o->type != JSON_OBJECT) {
        bad(e, NULL, "invalid_json", "the request body must be a JSON object");
        goto out;
    }
    const json *m = json_get(o, "model");
    if (!m) {
        bad(e, "model", "missing_required_parameter", "Missing required parameter: 'model'");
        goto out;
    }
    if (m->type != JSON_STRING || m->len == 0 || m->len > MODEL_NAME_MAX ||
        strlen(m->str) != m->len) {
        bad(e, "model", "invalid_type", "'model' must be a non-empty string of at most %d bytes",
            MODEL_NAME_MAX);
        goto out;
    }
    snprintf(g->model, sizeof g->model, "%s", m->str);
    buf *p = &g->payload;
    buf_puts(p, kind == GEN_CHAT ? "{\"kind\":\"chat\"" : "{\"kind\":\"completion\"");
    if (unsupported(o, e) < 0 || keep_alive_field(o, &g->keep_alive, e) < 0)
        goto out;
    if ((kind == GEN_CHAT ? messages_field(o, p, e) : prompt_field(o, p, e)) < 0)
        goto out;
    if (bool_field(o, "stream", &g->stream, e) < 0)
        goto out;
    const json *so = opt(o, "stream_options");
    if (so) {
        if (so->type != JSON_OBJECT) {
            bad(e, "stream_options", "invalid_type", "'stream_options' must be an object");
            goto out;
        }
        if (!g->stream) {
            bad(e, "stream_options", "invalid_value",
                "'stream_options' is only allowed when 'stream' is true");
            goto out;
        }
        if (bool_field(so, "include_usage", &g->include_usage, e) < 0) {
            snprintf(e->param, sizeof e->param, "stream_options.include_usage");
            goto out;
        }
    }
    /* max_completion_tokens is the newer name; it wins when both are set */
    const char *mt = opt(o, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    buf tmp = buf_make(0);
    if (num_field(o, mt, 1, 1 << 24, true, &tmp, e) < 0) {
        buf_free(&tmp);
        goto out;
    }
    if (tmp.len) {
        const char *colon = strchr(tmp.data, ':');
        buf_printf(p, ",\"max_tokens\"%s", colon);
    } else if (kind == GEN_COMPLETION) {
        buf_puts(p, ",\"max_tokens\":16");     /* OpenAI's default for completions */
    }
    buf_free(&tmp);
    bool ignore_eos = false;
    if (num_field(o, "temperature", 0, 2, false, p, e) < 0 ||
        num_field(o, "top_p", 0, 1, false, p, e) < 0 ||
        num_field(o, "top_k", 0, 100000, true, p, e) < 0 ||
        num_field(o, "min_p", 0, 1, false, p, e) < 0 ||
        num_field(o, "seed", -9.2e18, 9.2e18, true, p, e) < 0 ||
        num_field(o, "presence_penalty", -2, 2, false, p, e) < 0 ||
        num_field(o, "frequency_penalty", -2, 2, false, p, e) < 0 ||
        stop_field(o, p, e) < 0 || response_format_field(o, p, e) < 0 ||
        bool_field(o, "ignore_eos", &ignore_eos, e) < 0)
        goto out;
    if (ignore_eos)
        buf_puts(p, ",\"ignore_eos\":true");
    if (buf_putc(p, '}') < 0) {
        bad(e, NULL, "request_too_large", "the request is too large");
        goto out;
    }
    rc = 0;
out:
    arena_free(a);
    if (rc < 0 && e->status == 0)   /* a write hit the payload cap */
        bad(e, NULL, "request_too_large", "the request is too large to process");
    if (rc < 0)
        buf_free(&g->payload);
    return rc;
}
