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
#include "core/jsonschema.h"
#include "core/textstream.h"
#include "http/toolcall.h"

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

/* A message's content as plain text (text parts joined by newlines),
 * appended to t. */
static int content_text(const json *c, size_t idx, buf *t, gen_error *e)
{
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", idx);
    if (!c)
        return 0;
    if (c->type == JSON_STRING)
        return buf_append(t, c->str, c->len);
    if (c->type != JSON_ARRAY)
        return bad(e, param, "invalid_type", "'%s' must be a string or an array of text parts",
                   param);
    size_t k = 0;
    for (const json *p = c->child; p; p = p->next, k++) {
        const json *ty = json_get(p, "type"), *tx = json_get(p, "text");
        if (p->type != JSON_OBJECT || !ty || ty->type != JSON_STRING)
            return bad(e, param, "invalid_type", "'%s[%zu]' must be a content part object",
                       param, k);
        if (!json_str_is(ty, "text"))
            return bad(e, param, "unsupported_content",
                       "content parts of type '%.32s' are not supported; only 'text'", ty->str);
        if (!tx || tx->type != JSON_STRING)
            return bad(e, param, "invalid_type", "'%s[%zu].text' must be a string", param, k);
        if (k)
            buf_putc(t, '\n');
        buf_append(t, tx->str, tx->len);
    }
    return 0;
}

/* An assistant message's tool_calls, written after its text as the model
 * writes them: <tool_call>{"name":...,"arguments":...}</tool_call>. */
static int tool_calls_text(const json *tc, size_t idx, buf *t, gen_error *e)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].tool_calls", idx);
    if (tc->type != JSON_ARRAY)
        return bad(e, param, "invalid_type", "'%s' must be an array", param);
    size_t k = 0;
    for (const json *c = tc->child; c; c = c->next, k++) {
        const json *f = json_get(c, "function");
        const json *nm = json_get(f, "name"), *args = json_get(f, "arguments");
        if (c->type != JSON_OBJECT || !f || f->type != JSON_OBJECT || !nm ||
            nm->type != JSON_STRING || (args && args->type != JSON_STRING))
            return bad(e, param, "invalid_type",
                       "'%s[%zu]' must be {\"type\":\"function\",\"function\":{\"name\":...,"
                       "\"arguments\":\"...\"}}", param, k);
        if (t->len)
            buf_putc(t, '\n');
        buf_puts(t, TOOLCALL_OPEN "\n{\"name\": ");
        jw_str(t, nm->str, nm->len);
        buf_puts(t, ", \"arguments\": ");
        /* the arguments are JSON text in a string: inline them when they parse */
        arena *a = arena_new(args ? args->len * 16 + 4096 : 4096);
        char err[8];
        const json *v = a && args ? json_parse(a, args->str, args->len, err, sizeof err) : NULL;
        if (v)
            jw_value(t, v);
        else if (args)
            jw_str(t, args->str, args->len);
        else
            buf_puts(t, "{}");
        arena_free(a);
        buf_puts(t, "}\n" TOOLCALL_CLOSE);
    }
    return 0;
}

/* messages: tool results become user turns in <tool_response> tags (what
 * models trained on tool use read, and what any chat template can render);
 * `tool_prompt`, when given, opens the system message. */
static int messages_field(const json *o, const char *tool_prompt, buf *out, gen_error *e)
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
    const json *first_role = json_get(m->child, "role");
    bool sys_first = first_role && (json_str_is(first_role, "system") ||
                                    json_str_is(first_role, "developer"));
    if (tool_prompt && !sys_first &&
        (buf_puts(out, "{\"role\":\"system\",\"content\":") < 0 || jw_cstr(out, tool_prompt) < 0 ||
         buf_puts(out, "},") < 0))
        return -1;          /* over the payload's cap: request_too_large */
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
        const json *tc = opt(c, "tool_calls");
        if (tc && !json_str_is(r, "assistant")) {
            snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
            return bad(e, param, "invalid_value", "only assistant messages carry tool_calls");
        }
        bool tool = json_str_is(r, "tool");
        if (i)
            buf_putc(out, ',');
        buf_puts(out, "{\"role\":");
        if (tool)
            buf_puts(out, "\"user\"");
        else
            jw_str(out, r->str, r->len);
        buf_puts(out, ",\"content\":");
        buf w = buf_make(0);
        if (i == 0 && tool_prompt && sys_first)
            buf_puts(&w, tool_prompt);
        size_t at = w.len;
        if (tool)
            buf_puts(&w, TOOLRESP_OPEN "\n");
        int rc = content_text(ct && ct->type != JSON_NULL ? ct : NULL, i, &w, e);
        if (rc == 0 && at && w.len > at) {      /* the tool prompt, a blank line, the text */
            buf_puts(&w, "\n\n");
            memmove(w.data + at + 2, w.data + at, w.len - at - 2);
            memcpy(w.data + at, "\n\n", 2);
        }
        if (rc == 0 && tool)
            buf_puts(&w, "\n" TOOLRESP_CLOSE);
        if (rc == 0 && tc)
            rc = tool_calls_text(tc, i, &w, e);
        if (rc == 0)
            rc = jw_str(out, w.data ? w.data : "", w.len);
        buf_free(&w);
        if (rc < 0)
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

/* ,"grammar":"..." for a schema (its own document for $refs). */
static int schema_grammar(const json *schema, const char *param, buf *out, gen_error *e)
{
    buf g = buf_make(JSG_MAX_BYTES + 4096);
    char err[200];
    int rc = json_schema_grammar(schema, &g, err, sizeof err);
    if (rc < 0) {
        buf_free(&g);
        return bad(e, param, "invalid_schema", "%s", err);
    }
    buf_puts(out, ",\"grammar\":");
    rc = jw_str(out, g.data, g.len);
    buf_free(&g);
    return rc;
}

/* JSON mode: a grammar for any JSON object. */
static int any_object(buf *out, gen_error *e)
{
    arena *a = arena_new(4096);
    char err[64];
    const json *s = a ? json_parse(a, "{\"type\":\"object\"}", 17, err, sizeof err) : NULL;
    int rc = s ? schema_grammar(s, "response_format", out, e) : -1;
    arena_free(a);
    return rc;
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
        return any_object(out, e);
    if (json_str_is(t, "text"))
        return 0;
    if (json_str_is(t, "json_schema")) {
        const json *js = json_get(rf, "json_schema");
        if (!js || js->type != JSON_OBJECT)
            return bad(e, "response_format.json_schema", "invalid_type",
                       "'response_format.json_schema' must be an object with a 'schema'");
        const json *nm = json_get(js, "name");
        if (nm && nm->type != JSON_STRING)
            return bad(e, "response_format.json_schema.name", "invalid_type",
                       "'response_format.json_schema.name' must be a string");
        const json *sc = opt(js, "schema");
        if (!sc)
            return any_object(out, e);             /* no schema: any JSON object */
        return schema_grammar(sc, "response_format.json_schema.schema", out, e);
    }
    return bad(e, "response_format.type", "invalid_value",
               "response_format type '%.32s' is not supported; use 'text', 'json_object' or "
               "'json_schema'", t->str);
}

/* The system text that tells the model its tools and how to call them. */
static void tool_prompt_of(const json *tools, buf *p)
{
    buf_puts(p, "# Tools\n\nYou can call functions to answer. Their signatures, one JSON object "
                "per line, are inside <tools></tools>:\n<tools>");
    for (const json *t = tools->child; t; t = t->next) {
        buf_putc(p, '\n');
        jw_value(p, t);
    }
    buf_puts(p, "\n</tools>\n\nTo call a function, write a JSON object with its name and "
                "arguments inside <tool_call></tool_call>, one block per call:\n"
                TOOLCALL_OPEN "\n{\"name\": \"function name\", \"arguments\": {...}}\n"
                TOOLCALL_CLOSE);
}

static bool tool_name_ok(const json *n)
{
    if (!n || n->type != JSON_STRING || n->len == 0 || n->len > 64)
        return false;
    for (size_t i = 0; i < n->len; i++) {
        char c = n->str[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* tools, tool_choice and parallel_tool_calls. Validates them; writes the
 * grammar every call must follow (lazy, from the opening tag on, when the
 * model may also answer in text) and the prompt describing the tools.
 * *calls is set when the answer may hold tool calls. */
static int tools_field(const json *o, gen_kind kind, buf *prompt, buf *out, bool *calls,
                       gen_error *e)
{
    const json *tools = opt(o, "tools"), *choice = opt(o, "tool_choice");
    const json *par = opt(o, "parallel_tool_calls");
    *calls = false;
    if (par && par->type != JSON_BOOL)
        return bad(e, "parallel_tool_calls", "invalid_type", "'parallel_tool_calls' must be a boolean");
    if (!tools || (tools->type == JSON_ARRAY && tools->len == 0)) {
        if (choice && !json_str_is(choice, "none") && !json_str_is(choice, "auto"))
            return bad(e, "tool_choice", "invalid_value", "'tool_choice' needs 'tools'");
        return 0;
    }
    if (kind != GEN_CHAT)
        return bad(e, "tools", "unsupported_parameter", "tools are for chat completions");
    if (tools->type != JSON_ARRAY)
        return bad(e, "tools", "invalid_type", "'tools' must be an array");
    if (tools->len > TOOLS_MAX)
        return bad(e, "tools", "invalid_value", "at most %d tools", TOOLS_MAX);
    /* the choice: none, auto, required, or one function by name */
    const char *only = NULL;
    size_t only_len = 0;
    bool required = false;
    if (choice && choice->type == JSON_STRING) {
        if (json_str_is(choice, "required"))
            required = true;
        else if (!json_str_is(choice, "none") && !json_str_is(choice, "auto"))
            return bad(e, "tool_choice", "invalid_value",
                       "'tool_choice' must be none, auto, required or {\"type\":\"function\","
                       "\"function\":{\"name\":...}}");
    } else if (choice) {
        const json *f = json_get(choice, "function"), *n = json_get(f, "name");
        if (choice->type != JSON_OBJECT || !n || n->type != JSON_STRING)
            return bad(e, "tool_choice", "invalid_type",
                       "'tool_choice' must be a string or {\"type\":\"function\",\"function\":"
                       "{\"name\":...}}");
        only = n->str;
        only_len = n->len;
        required = true;
    }
    jsg *g = jsg_new();
    if (!g)
        return bad(e, NULL, "out_of_memory", "out of memory");
    buf alts = buf_make(0), rule = buf_make(0);
    int rc = 0;
    bool found = !only;
    size_t i = 0;
    for (const json *t = tools->child; rc == 0 && t; t = t->next, i++) {
        char param[48];
        snprintf(param, sizeof param, "tools[%zu]", i);
        const json *ty = json_get(t, "type"), *f = json_get(t, "function");
        const json *n = json_get(f, "name"), *d = json_get(f, "description");
        const json *ps = opt(f, "parameters");
        if (t->type != JSON_OBJECT || !json_str_is(ty, "function") || !f ||
            f->type != JSON_OBJECT) {
            rc = bad(e, param, "invalid_type",
                     "'%s' must be {\"type\":\"function\",\"function\":{\"name\":...}}", param);
            break;
        }
        if (!tool_name_ok(n)) {
            rc = bad(e, param, "invalid_value",
                     "'%s.function.name' must be 1 to 64 letters, digits, '_', '-' or '.'", param);
            break;
        }
        for (const json *u = tools->child; u != t && rc == 0; u = u->next) {
            const json *un = json_get(json_get(u, "function"), "name");
            if (un->len == n->len && !memcmp(un->str, n->str, n->len))
                rc = bad(e, param, "invalid_value", "two tools are named '%s'", n->str);
        }
        if (rc == 0 && d && d->type != JSON_STRING)
            rc = bad(e, param, "invalid_type", "'%s.function.description' must be a string", param);
        /* arguments are an object: the schema must say so (or be empty) */
        const json *pt = json_get(ps, "type");
        if (rc == 0 && ps && !(ps->type == JSON_OBJECT && (json_str_is(pt, "object") ||
                                                          (!pt && (ps->len == 0 ||
                                                                   json_get(ps, "properties"))))))
            rc = bad(e, param, "invalid_schema",
                     "'%s.function.parameters' must be a JSON Schema of type \"object\"", param);
        if (rc < 0)
            break;
        if (only && !(n->len == only_len && !memcmp(n->str, only, only_len)))
            continue;
        found = true;
        /* "\"NAME\"" ws "," ws "\"arguments\"" ws ":" ws ARGS */
        char args[16] = "object", err[200];
        if (ps && ps->len && jsg_add(g, ps, ps, args, sizeof args, err, sizeof err) < 0) {
            snprintf(param, sizeof param, "tools[%zu].function.parameters", i);
            rc = bad(e, param, "invalid_schema", "%s", err);
            break;
        }
        buf k = buf_make(0);
        jw_str(&k, n->str, n->len);
        if (alts.len)
            buf_puts(&alts, " | ");
        buf_putc(&alts, '(');
        jsg_literal(&alts, k.data, k.len);
        buf_printf(&alts, " ws \",\" ws \"\\\"arguments\\\"\" ws \":\" ws %s)", args);
        buf_free(&k);
    }
    if (rc == 0 && !found)
        rc = bad(e, "tool_choice", "invalid_value", "'tool_choice' names a function not in 'tools'");
    bool none = choice && json_str_is(choice, "none");
    /* "none": the model is neither told of the tools nor held to calls */
    if (rc == 0 && !none) {
        tool_prompt_of(tools, prompt);
        /* after the tag, any few blanks: with "auto" the rest of the token that
         * opened the call is taken unchecked (engine/sample_safe.h) */
        buf_puts(&rule, "\"" TOOLCALL_OPEN "\" [ \\t\\n]{0,8} \"{\" ws \"\\\"name\\\"\" ws \":\" ws (");
        buf_append(&rule, alts.data, alts.len);
        buf_puts(&rule, ") \"}\" ws \"" TOOLCALL_CLOSE "\" ws");
        bool many = !only && !(par && !par->boolean);
        if (jsg_rule(g, "call", rule.data) < 0 || jsg_rule(g, "root", many ? "call+" : "call") < 0)
            rc = bad(e, "tools", "invalid_value", "the tools' schemas are too large");
    }
    if (rc == 0 && !none) {
        buf gram = buf_make(JSG_MAX_BYTES + 65536);
        if (jsg_finish(g, &gram) < 0) {
            rc = bad(e, "tools", "invalid_value", "the tools' schemas are too large");
        } else {
            if (buf_puts(out, ",\"grammar\":") < 0 || jw_str(out, gram.data, gram.len) < 0)
                rc = -1;        /* over the payload's cap: request_too_large */
            /* free text until the model opens a call: llama.cpp searches its
             * text for the tag after every token, so the pattern is the bare tag */
            if (!required && buf_puts(out, ",\"grammar_trigger\":\"" TOOLCALL_OPEN "\"") < 0)
                rc = -1;
            *calls = rc == 0;
        }
        buf_free(&gram);
    }
    buf_free(&alts);
    buf_free(&rule);
    jsg_free(g);
    return rc;
}

static int unsupported(const json *o, gen_kind kind, gen_error *e)
{
    const json *n = opt(o, "n");
    if (n && (n->type != JSON_NUMBER || !n->is_int))
        return bad(e, "n", "invalid_type", "'n' must be an integer");
    if (n && n->integer != 1)
        return bad(e, "n", "invalid_value", "only n=1 is supported");
    const json *lp = opt(o, "logprobs");
    if (kind == GEN_COMPLETION && lp && ((lp->type == JSON_BOOL && lp->boolean) ||
                                         lp->type == JSON_NUMBER))
        return bad(e, "logprobs", "unsupported_parameter",
                   "logprobs are supported in chat completions, not in completions");
    if (opt(o, "functions") || opt(o, "function_call"))
        return bad(e, opt(o, "functions") ? "functions" : "function_call", "unsupported_parameter",
                   "'functions' and 'function_call' are deprecated; use 'tools' and 'tool_choice'");
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

/* logprobs (a boolean) and top_logprobs (0-20, only with logprobs). */
static int logprobs_field(const json *o, gen_request *g, buf *out, gen_error *e)
{
    bool on = false;
    if (bool_field(o, "logprobs", &on, e) < 0)
        return -1;
    const json *top = opt(o, "top_logprobs");
    if (top && !on)
        return bad(e, "top_logprobs", "invalid_value", "'top_logprobs' needs 'logprobs': true");
    if (!on)
        return 0;
    if (g->tools)
        return bad(e, "logprobs", "unsupported_parameter",
                   "logprobs together with tools the model may call are not supported");
    g->logprobs = true;
    buf_puts(out, ",\"logprobs\":true");
    return num_field(o, "top_logprobs", 0, 20, true, out, e);
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
    /* escaping can turn one byte into six (\\u007f); a grammar adds up to
     * JSG_MAX_BYTES, escaped (x2), and its shared rules */
    g->payload = buf_make(len * 6 + 2 * JSG_MAX_BYTES + 65536);
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
    if (unsupported(o, kind, e) < 0 || keep_alive_field(o, &g->keep_alive, e) < 0)
        goto out;
    buf tprompt = buf_make(0);
    if (tools_field(o, kind, &tprompt, p, &g->tools, e) < 0 ||
        (kind == GEN_CHAT ? messages_field(o, tprompt.len ? tprompt.data : NULL, p, e)
                          : prompt_field(o, p, e)) < 0) {
        buf_free(&tprompt);
        goto out;
    }
    buf_free(&tprompt);
    const json *rft = json_get(opt(o, "response_format"), "type");
    if (g->tools && rft && !json_str_is(rft, "text")) {
        bad(e, "response_format", "unsupported_parameter",
            "a response_format together with tools the model may call is not supported");
        goto out;
    }
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
    if (kind == GEN_CHAT && logprobs_field(o, g, p, e) < 0)
        goto out;
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
