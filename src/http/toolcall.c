/*
 * toolcall.c: tool calls in generated text; see toolcall.h.
 */
#include "http/toolcall.h"

#include <string.h>

#include "core/arena.h"
#include "core/json.h"

void tcs_init(toolcall_stream *s)
{
    s->held = buf_make(0);
    s->calls = buf_make(TOOLCALL_TEXT_MAX);
    s->open = false;
}

void tcs_free(toolcall_stream *s)
{
    buf_free(&s->held);
    buf_free(&s->calls);
}

/* The longest tail of t[0..n) that is a proper start of the opening tag. */
static size_t partial_tag(const char *t, size_t n)
{
    size_t tl = strlen(TOOLCALL_OPEN);
    for (size_t k = n < tl - 1 ? n : tl - 1; k > 0; k--)
        if (memcmp(t + n - k, TOOLCALL_OPEN, k) == 0)
            return k;
    return 0;
}

void tcs_feed(toolcall_stream *s, const char *t, size_t n, buf *content)
{
    if (s->open) {
        buf_append(&s->calls, t, n);
        return;
    }
    if (buf_append(&s->held, t, n) < 0 || !s->held.data) {
        buf_append(content, t, n);      /* out of memory: pass the text on */
        return;
    }
    const char *h = s->held.data;
    size_t hl = s->held.len;
    const char *tag = hl ? memmem(h, hl, TOOLCALL_OPEN, strlen(TOOLCALL_OPEN)) : NULL;
    if (tag) {
        buf_append(content, h, (size_t)(tag - h));
        buf_append(&s->calls, tag, hl - (size_t)(tag - h));
        s->open = true;
        buf_reset(&s->held);
        return;
    }
    size_t keep = partial_tag(h, hl);
    buf_append(content, h, hl - keep);
    memmove(s->held.data, h + hl - keep, keep);
    s->held.len = keep;
    s->held.data[keep] = '\0';
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    return p;
}

/* Parses the blocks in t[0..n) into an OpenAI tool_calls array; the text
 * from the first block that is not a whole call on (one cut by max_tokens)
 * goes to rest. Returns the number of calls. */
static int parse_calls(const char *t, size_t n, const char *id_prefix, bool indexed, buf *out,
                       buf *rest)
{
    const char *p = t, *end = t + n;
    size_t ol = strlen(TOOLCALL_OPEN), cl = strlen(TOOLCALL_CLOSE);
    buf arr = buf_make(0);
    int count = 0;
    buf_putc(&arr, '[');
    for (;;) {
        p = skip_ws(p, end);
        if (p == end)
            break;
        const char *start = p;
        bool opened = (size_t)(end - p) >= ol && memcmp(p, TOOLCALL_OPEN, ol) == 0;
        /* the first closing tag after which the call parses (an argument may
         * hold the closing tag's text itself; a few tries at most) */
        const char *close = NULL;
        const json *c = NULL;
        arena *a = NULL;
        int tries = 0;
        for (const char *q = opened ? p + ol : end; q < end && !c && tries < 8; tries++) {
            close = memmem(q, (size_t)(end - q), TOOLCALL_CLOSE, cl);
            if (!close)
                break;
            arena_free(a);
            a = arena_new((size_t)(close - p) * 16 + 4096);
            char err[8];
            c = a ? json_parse(a, p + ol, (size_t)(close - p - ol), err, sizeof err) : NULL;
            q = close + 1;
        }
        const json *nm = json_get(c, "name"), *args = json_get(c, "arguments");
        if (!c || c->type != JSON_OBJECT || !nm || nm->type != JSON_STRING || nm->len == 0) {
            arena_free(a);
            buf_append(rest, start, (size_t)(end - start));
            break;
        }
        if (count)
            buf_putc(&arr, ',');
        buf_putc(&arr, '{');
        if (indexed)
            buf_printf(&arr, "\"index\":%d,", count);
        buf_printf(&arr, "\"id\":\"call_%s_%d\",\"type\":\"function\",\"function\":{\"name\":",
                   id_prefix, count);
        jw_str(&arr, nm->str, nm->len);
        buf_puts(&arr, ",\"arguments\":");
        /* OpenAI gives the arguments as JSON text in a string */
        buf v = buf_make(0);
        if (args)
            jw_value(&v, args);
        else
            buf_puts(&v, "{}");
        jw_str(&arr, v.data ? v.data : "{}", v.len);
        buf_free(&v);
        buf_puts(&arr, "}}");
        arena_free(a);
        count++;
        p = close + cl;
    }
    buf_putc(&arr, ']');
    if (count)
        buf_append(out, arr.data, arr.len);
    buf_free(&arr);
    return count;
}

int tcs_end(toolcall_stream *s, const char *id_prefix, bool indexed, buf *content, buf *calls)
{
    if (!s->open) {
        buf_append(content, s->held.data, s->held.len);
        buf_reset(&s->held);
        return 0;
    }
    return parse_calls(s->calls.data, s->calls.len, id_prefix, indexed, calls, content);
}
