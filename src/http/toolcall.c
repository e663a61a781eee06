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
    buf_append(&s->held, t, n);
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
    arena *a = arena_new(n * 16 + 4096);
    if (!a) {
        buf_append(rest, t, n);
        return 0;
    }
    buf arr = buf_make(0);
    int count = 0;
    buf_putc(&arr, '[');
    for (;;) {
        p = skip_ws(p, end);
        if (p == end)
            break;
        const char *start = p;
        const char *close = (size_t)(end - p) >= ol && memcmp(p, TOOLCALL_OPEN, ol) == 0
                                ? memmem(p + ol, (size_t)(end - p - ol), TOOLCALL_CLOSE, cl)
                                : NULL;
        char err[8];
        const json *c = close ? json_parse(a, p + ol, (size_t)(close - p - ol), err, sizeof err)
                              : NULL;
        const json *nm = json_get(c, "name"), *args = json_get(c, "arguments");
        if (!c || c->type != JSON_OBJECT || !nm || nm->type != JSON_STRING || nm->len == 0) {
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
        if (args && args->type == JSON_STRING) {
            jw_str(&arr, args->str, args->len);
        } else {
            buf v = buf_make(0);
            if (args)
                jw_value(&v, args);
            else
                buf_puts(&v, "{}");
            jw_str(&arr, v.data, v.len);
            buf_free(&v);
        }
        buf_puts(&arr, "}}");
        count++;
        p = close + cl;
    }
    buf_putc(&arr, ']');
    if (count)
        buf_append(out, arr.data, arr.len);
    buf_free(&arr);
    arena_free(a);
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
