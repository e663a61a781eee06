/*
 * json.c: recursive-descent JSON parser with a depth cap; writer helpers.
 */
#include "core/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

struct parser {
    arena *a;
    const char *s;
    size_t n, i;
    char *err;
    size_t errlen;
    int depth;
};

static json *fail(struct parser *p, const char *what)
{
    if (p->err && p->err[0] == '\0')
        snprintf(p->err, p->errlen, "%s at byte %zu", what, p->i);
    return NULL;
}

static void skip_ws(struct parser *p)
{
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->i++;
    }
}

static json *new_node(struct parser *p, json_type t)
{
    json *v = arena_alloc(p->a, sizeof *v);
    if (!v)
        return fail(p, "document too large");
    v->type = t;
    return v;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string at p->i (which is at the opening quote). */
static int parse_string(struct parser *p, const char **out, size_t *outlen)
{
    size_t start = ++p->i;
    /* first pass: find the end and the raw length bound */
    size_t j = start;
    while (j < p->n && p->s[j] != '"') {
        if (p->s[j] == '\\')
            j++;
        j++;
    }
    if (j >= p->n) {
        fail(p, "unterminated string");
        return -1;
    }
    char *o = arena_alloc(p->a, j - start + 1);
    if (!o) {
        fail(p, "document too large");
        return -1;
    }
    size_t k = 0;
    while (p->i < j) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c < 0x20) {
            fail(p, "control character in string");
            return -1;
        }
        if (c != '\\') {
            if (c < 0x80) {
                o[k++] = (char)c;
                p->i++;
                continue;
            }
            unsigned cp;
            size_t l = utf8_decode((const unsigned char *)p->s + p->i, j - p->i, &cp);
            if (!l) {
                fail(p, "invalid UTF-8 in string");
                return -1;
            }
            memcpy(o + k, p->s + p->i, l);
            k += l;
            p->i += l;
            continue;
        }
        p->i++;
        char e = p->s[p->i++];
        switch (e) {
        case '"': o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; break;
        case '/': o[k++] = '/'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (p->i + 4 > j || hex4(p->s + p->i, &cp) < 0) {
                fail(p, "bad \\u escape");
                return -1;
            }
            p->i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (p->i + 6 > j || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' ||
                    hex4(p->s + p->i + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
                    fail(p, "unpaired surrogate");
                    return -1;
                }
                p->i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(p, "unpaired surrogate");
                return -1;
            }
            /* a \u escape is 6 input bytes and at most 4 output bytes */
            k += put_utf8(o + k, cp);
            break;
        }
        default:
            p->i--;
            fail(p, "bad escape");
            return -1;
        }
    }
    o[k] = '\0';
    p->i = j + 1;
    *out = o;
    *outlen = k;
    return 0;
}

static json *parse_number(struct parser *p)
{
    size_t st = p->i;
    bool frac = false;
    if (p->i < p->n && p->s[p->i] == '-')
        p->i++;
    if (p->i >= p->n)
        return fail(p, "bad number");
    if (p->s[p->i] == '0') {
        p->i++;
    } else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') {
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    } else {
        return fail(p, "bad number");
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        frac = true;
        p->i++;
        size_t d = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (d == p->i)
            return fail(p, "bad number");
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        frac = true;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        size_t d = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (d == p->i)
            return fail(p, "bad number");
    }
    size_t len = p->i - st;
    if (len > 400)
        return fail(p, "number too long");
    char tmp[401];
    memcpy(tmp, p->s + st, len);
    tmp[len] = '\0';
    json *v = new_node(p, JSON_NUMBER);
    if (!v)
        return NULL;
    v->number = strtod(tmp, NULL);
    if (!isfinite(v->number))
        return fail(p, "number out of range");
    if (!frac) {
        errno = 0;
        long long ll = strtoll(tmp, NULL, 10);
        if (errno == 0) {
            v->is_int = true;
            v->integer = ll;
        }
    }
    return v;
}

static json *parse_value(struct parser *p);

static json *parse_container(struct parser *p, bool object)
{
    if (++p->depth > JSON_MAX_DEPTH)
        return fail(p, "nesting too deep");
    json *v = new_node(p, object ? JSON_OBJECT : JSON_ARRAY);
    if (!v)
        return NULL;
    p->i++;
    json **tail = &v->child;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == (object ? '}' : ']')) {
        p->i++;
        p->depth--;
        return v;
    }
    for (;;) {
        const char *key = NULL;
        size_t keylen = 0;
        skip_ws(p);
        if (object) {
            if (p->i >= p->n || p->s[p->i] != '"')
                return fail(p, "expected member name");
            if (parse_string(p, &key, &keylen) < 0)
                return NULL;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return fail(p, "expected ':'");
            p->i++;
        }
        json *c = parse_value(p);
        if (!c)
            return NULL;
        c->key = key;
        c->keylen = keylen;
        *tail = c;
        tail = &c->next;
        v->len++;
        skip_ws(p);
        if (p->i >= p->n)
            return fail(p, "unexpected end of input");
        char ch = p->s[p->i++];
        if (ch == ',')
            continue;
        if (ch == (object ? '}' : ']'))
            break;
        p->i--;
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    p->depth--;
    return v;
}

static json *parse_lit(struct parser *p, const char *lit, json_type t, bool b)
{
    size_t l = strlen(lit);
    if (p->n - p->i < l || memcmp(p->s + p->i, lit, l) != 0)
        return fail(p, "unexpected token");
    p->i += l;
    json *v = new_node(p, t);
    if (v)
        v->boolean = b;
    return v;
}

static json *parse_value(struct parser *p)
{
    skip_ws(p);
    if (p->i >= p->n)
        return fail(p, "unexpected end of input");
    char c = p->s[p->i];
    switch (c) {
    case '{': return parse_container(p, true);
    case '[': return parse_container(p, false);
    case '"': {
        json *v = new_node(p, JSON_STRING);
        if (!v || parse_string(p, &v->str, &v->len) < 0)
            return NULL;
        return v;
    }
    case 't': return parse_lit(p, "true", JSON_BOOL, true);
    case 'f': return parse_lit(p, "false", JSON_BOOL, false);
    case 'n': return parse_lit(p, "null", JSON_NULL, false);
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p);
        return fail(p, "unexpected character");
    }
}

json *json_parse(arena *a, const char *text, size_t n, char *err, size_t errlen)
{
    struct parser p = { .a = a, .s = text, .n = n, .err = err, .errlen = errlen };
    if (err && errlen)
        err[0] = '\0';
    json *v = parse_value(&p);
    if (!v)
        return NULL;
    skip_ws(&p);
    if (p.i != p.n)
        return fail(&p, "trailing characters");
    return v;
}

const json *json_get(const json *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    size_t kl = strlen(key);
    const json *found = NULL;
    for (const json *c = obj->child; c; c = c->next)
        if (c->keylen == kl && memcmp(c->key, key, kl) == 0)
            found = c;      /* last duplicate wins, as in most parsers */
    return found;
}

bool json_str_is(const json *v, const char *lit)
{
    size_t l = strlen(lit);
    return v && v->type == JSON_STRING && v->len == l && memcmp(v->str, lit, l) == 0;
}

const char *json_type_name(json_type t)
{
    static const char *names[] = { "null", "boolean", "number", "string", "array", "object" };
    return names[t];
}

int jw_str(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_reserve(b, n + 2) < 0)
        return -1;
    if (buf_putc(b, '"') < 0)
        return -1;
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned char c = u[i];
        const char *esc = NULL;
        char tmp[8];
        size_t adv = 1;
        if (c >= 0x80) {
            unsigned cp;
            size_t l = utf8_decode(u + i, n - i, &cp);
            if (l) {
                i += l;
                run += l;
                continue;
            }
            esc = "\xEF\xBF\xBD";   /* U+FFFD for an invalid byte */
        } else if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            tmp[0] = '\\'; tmp[1] = 'u'; tmp[2] = '0'; tmp[3] = '0';
            tmp[4] = hex[c >> 4]; tmp[5] = hex[c & 15]; tmp[6] = 0;
            esc = tmp;
        }
        if (!esc) {
            i++;
            run++;
            continue;
        }
        if (buf_append(b, s + i - run, run) < 0 || buf_puts(b, esc) < 0)
            return -1;
        run = 0;
        i += adv;
    }
    if (buf_append(b, s + i - run, run) < 0)
        return -1;
    return buf_putc(b, '"');
}

int jw_cstr(buf *b, const char *s)
{
    if (!s)
        return buf_puts(b, "null");
    return jw_str(b, s, strlen(s));
}

int jw_number(buf *b, double d)
{
    if (!isfinite(d))
        return buf_puts(b, "null");
    /* the shortest text that reads back as the same double: 0.1, not
     * 0.10000000000000001 */
    char t[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, d);
        if (strtod(t, NULL) == d)
            break;
    }
    return buf_puts(b, t);
}

int jw_value(buf *b, const json *v)
{
    switch (v->type) {
    case JSON_NULL: return buf_puts(b, "null");
    case JSON_BOOL: return buf_puts(b, v->boolean ? "true" : "false");
    case JSON_NUMBER:
        if (v->is_int)
            return buf_printf(b, "%lld", (long long)v->integer);
        return jw_number(b, v->number);
    case JSON_STRING: return jw_str(b, v->str, v->len);
    case JSON_ARRAY:
    case JSON_OBJECT: {
        bool obj = v->type == JSON_OBJECT;
        if (buf_putc(b, obj ? '{' : '[') < 0)
            return -1;
        for (const json *c = v->child; c; c = c->next) {
            if (c != v->child && buf_putc(b, ',') < 0)
                return -1;
            if (obj && (jw_str(b, c->key, c->keylen) < 0 || buf_putc(b, ':') < 0))
                return -1;
            if (jw_value(b, c) < 0)
                return -1;
        }
        return buf_putc(b, obj ? '}' : ']');
    }
    }
    return -1;
}
