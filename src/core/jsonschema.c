/*
 * jsonschema.c: JSON Schema to GBNF; see jsonschema.h.
 *
 * Every value rule ends with `ws` (bounded blanks), as the shared rules do,
 * so rules compose without thinking about blanks. Each schema node becomes a
 * rule "sN"; a $ref gets its rule name before its body is written, so a
 * recursive schema refers to itself by name.
 */
#include "core/jsonschema.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 48
#define MAX_REFS  256
#define MAX_ENUM  1024
#define MAX_PROPS 512       /* properties (and required names) of one object */
#define MAX_REPEATS_TOTAL 8192  /* llama.cpp spells x{0,n} out as n rules */

struct ref {
    const json *doc;
    char *ref;
    char name[16];
    bool open;              /* its body is being written */
    int consumed;           /* ctx.consumed when it was entered */
};

struct jsg {
    buf rules;
    int n;                  /* rules written, and the next sN */
    struct ref refs[MAX_REFS];
    int nrefs;
    long repeats;           /* the bounded repetitions spelled out so far */
};

/* The shared rules. Blanks are bounded (a weak model must not loop on them
 * forever); so are a number's digits. */
static const char SHARED[] =
    "ws ::= (\" \" | \"\\n\" [ \\t]{0,20})?\n"
    "char ::= [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-CefEF] hex{3} | [dD] [0-7] hex{2}))\n"
    "string ::= \"\\\"\" char* \"\\\"\" ws\n"
    "int ::= \"-\"? (\"0\" | [1-9] [0-9]{0,15})\n"
    "integer ::= int ws\n"
    "number ::= int (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})? ws\n"
    "boolean ::= (\"true\" | \"false\") ws\n"
    "null ::= \"null\" ws\n"
    "value ::= object | array | string | number | boolean | null\n"
    "object ::= \"{\" ws (string \":\" ws value (\",\" ws string \":\" ws value)*)? \"}\" ws\n"
    "array ::= \"[\" ws (value (\",\" ws value)*)? \"]\" ws\n"
    "hex ::= [0-9a-fA-F]\n"
    "d2 ::= [0-9] [0-9]\n"
    "date ::= [0-9]{4} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01])\n"
    "time ::= ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,6})? "
    "(\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])\n";

jsg *jsg_new(void)
{
    jsg *g = calloc(1, sizeof *g);
    if (g)
        g->rules = buf_make(JSG_MAX_BYTES);
    return g;
}

void jsg_free(jsg *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nrefs; i++)
        free(g->refs[i].ref);
    buf_free(&g->rules);
    free(g);
}

int jsg_literal(buf *b, const char *s, size_t n)
{
    if (buf_putc(b, '"') < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (c == '"' || c == '\\')
            rc = buf_printf(b, "\\%c", c);
        else if (c == '\n')
            rc = buf_puts(b, "\\n");
        else if (c == '\r')
            rc = buf_puts(b, "\\r");
        else if (c == '\t')
            rc = buf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f)
            rc = buf_printf(b, "\\x%02X", c);
        else
            rc = buf_putc(b, (char)c);
        if (rc < 0)
            return -1;
    }
    return buf_putc(b, '"');
}

int jsg_rule(jsg *g, const char *name, const char *body)
{
    if (g->n >= JSG_MAX_RULES)
        return -1;
    g->n++;
    return buf_printf(&g->rules, "%s ::= %s\n", name, body);
}

int jsg_finish(jsg *g, buf *out)
{
    if (buf_append(out, g->rules.data ? g->rules.data : "", g->rules.len) < 0)
        return -1;
    return buf_puts(out, SHARED);
}

/* ---- conversion ------------------------------------------------------- */

struct ctx {
    jsg *g;
    const json *doc;
    int consumed;           /* constructs on the path here that read a character first */
    char *err;
    size_t el;
    char path[256];
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ctx *c, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* a deep path keeps its end, where the problem is */
    size_t pl = strlen(c->path);
    const char *path = pl > 80 ? c->path + pl - 80 : c->path;
    if (c->err && !c->err[0])
        snprintf(c->err, c->el, "%s%s: %s", pl > 80 ? "..." : "", path, msg);
    return -1;
}

static int gen(struct ctx *c, const json *s, int depth, char *name, size_t nl);

/* Reserves the next rule name. */
static int new_name(struct ctx *c, char *name, size_t nl)
{
    if (c->g->n >= JSG_MAX_RULES)
        return fail(c, "the schema is too large (more than %d rules)", JSG_MAX_RULES);
    snprintf(name, nl, "s%d", c->g->n++);
    return 0;
}

static int put_rule(struct ctx *c, const char *name, const buf *body)
{
    if (buf_printf(&c->g->rules, "%s ::= %s\n", name, body->data ? body->data : "") < 0)
        return fail(c, "the schema is too large (grammar over %u bytes)", JSG_MAX_BYTES);
    return 0;
}

/* gen on a child, with ".key" (or "[i]") added to the path for errors. */
static int gen_at(struct ctx *c, const json *s, int depth, const char *key, long idx, char *name,
                  size_t nl)
{
    size_t at = strlen(c->path);
    if (idx >= 0)
        snprintf(c->path + at, sizeof c->path - at, "[%ld]", idx);
    else
        snprintf(c->path + at, sizeof c->path - at, ".%s", key);
    int rc = gen(c, s, depth + 1, name, nl);
    if (rc == 0)
        c->path[at] = '\0';
    return rc;
}

static const char *const KNOWN[] = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems",
    "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs",
    "definitions", "minLength", "maxLength", "format", "nullable",
    /* annotations: no effect on what is valid */
    "title", "description", "$schema", "$id", "$comment", "default", "examples", "deprecated",
    "readOnly", "writeOnly", "strict", "name", "discriminator", NULL
};

static int check_keywords(struct ctx *c, const json *s)
{
    for (const json *m = s->child; m; m = m->next) {
        bool ok = false;
        for (int i = 0; KNOWN[i] && !ok; i++)
            ok = strlen(KNOWN[i]) == m->keylen && memcmp(KNOWN[i], m->key, m->keylen) == 0;
        if (!ok)
            return fail(c, "the keyword '%.*s' is not supported", (int)(m->keylen > 64 ? 64 : m->keylen),
                        m->key);
    }
    return 0;
}

/* $ref, allOf, anyOf, oneOf, const and enum say all that is valid by
 * themselves; a keyword beside them that would narrow it further (maxLength
 * beside an anyOf, say) cannot be written into the grammar, so it is refused.
 * Allowed beside them: annotations, $defs, nullable, and for const and enum
 * a type, which their values must have. */
static int check_siblings(struct ctx *c, const json *s)
{
    static const char *const whole[] = { "$ref", "allOf", "anyOf", "oneOf", "const", "enum" };
    static const char *const narrow[] = { "type", "properties", "required",
                                          "additionalProperties", "items", "prefixItems",
                                          "minItems", "maxItems", "minLength", "maxLength",
                                          "format", "$ref", "allOf", "anyOf", "oneOf", "const",
                                          "enum" };
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++) {
        if (!json_get(s, whole[i]))
            continue;
        for (size_t k = 0; k < sizeof narrow / sizeof *narrow; k++) {
            if (!strcmp(narrow[k], whole[i]) || !json_get(s, narrow[k]))
                continue;
            bool typed = !strcmp(narrow[k], "type") &&
                         (!strcmp(whole[i], "const") || !strcmp(whole[i], "enum"));
            if (!typed)
                return fail(c, "'%s' beside '%s' is not supported", narrow[k], whole[i]);
        }
    }
    return 0;
}

/* Whether a value has one of the types `type` names (a string or a list). */
static bool has_type(const json *v, const json *type)
{
    if (!type)
        return true;
    if (type->type == JSON_ARRAY) {
        for (const json *t = type->child; t; t = t->next)
            if (has_type(v, t))
                return true;
        return false;
    }
    const char *t = type->type == JSON_STRING ? type->str : "";
    switch (v->type) {
    case JSON_NULL: return !strcmp(t, "null");
    case JSON_BOOL: return !strcmp(t, "boolean");
    case JSON_STRING: return !strcmp(t, "string");
    case JSON_ARRAY: return !strcmp(t, "array");
    case JSON_OBJECT: return !strcmp(t, "object");
    case JSON_NUMBER:
        return !strcmp(t, "number") || (!strcmp(t, "integer") && v->number == floor(v->number));
    }
    return false;
}

/* A non-negative integer keyword, or def when absent. */
static int count_kw(struct ctx *c, const json *s, const char *k, long def, long *out)
{
    const json *v = json_get(s, k);
    *out = def;
    if (!v)
        return 0;
    if (v->type != JSON_NUMBER || !v->is_int || v->integer < 0)
        return fail(c, "'%s' must be a non-negative integer", k);
    *out = (long)v->integer;
    return 0;
}

/* "{m,n}" (or "*" / "+" / "{m,}") after an item; n < 0: unbounded. The
 * bounds of a whole grammar add up to at most MAX_REPEATS_TOTAL: llama.cpp
 * turns each into that many rules, in every sequence that uses it. */
static int repeat(struct ctx *c, buf *b, long m, long n)
{
    c->g->repeats += n < 0 ? m : n;
    if (c->g->repeats > MAX_REPEATS_TOTAL)
        return fail(c, "the schema's length limits add up to more than %d", MAX_REPEATS_TOTAL);
    if (n < 0)
        buf_printf(b, m == 0 ? "*" : m == 1 ? "+" : "{%ld,}", m);
    else if (!(m == 1 && n == 1))
        buf_printf(b, "{%ld,%ld}", m, n);
    return 0;
}

/* A literal for a JSON value: its compact text, then blanks. */
static int literal_of(struct ctx *c, const json *v, buf *b)
{
    if (v->type == JSON_NUMBER && !v->is_int && fabs(v->number) >= 9007199254740992.0)
        return fail(c, "numbers beyond 2^53 in 'enum' or 'const' are not supported");
    buf t = buf_make(JSG_MAX_BYTES);
    int rc = jw_value(&t, v);
    if (rc == 0)
        rc = jsg_literal(b, t.data, t.len);
    buf_free(&t);
    if (rc < 0 || buf_puts(b, " ws") < 0)
        return fail(c, "the schema is too large");
    return 0;
}

/* Resolves a local reference in c->doc: "#", "#/$defs/x", "#/definitions/x",
 * or any JSON pointer into the document (~0 and ~1 unescaped). */
static const json *resolve(const json *doc, const char *ref)
{
    if (ref[0] != '#')
        return NULL;
    const json *at = doc;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof tok) {
            if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                tok[n++] = p[1] == '0' ? '~' : '/';
                p += 2;
            } else {
                tok[n++] = *p++;
            }
        }
        if (*p && *p != '/')
            return NULL;
        tok[n] = '\0';
        if (at->type == JSON_OBJECT) {
            at = json_get(at, tok);
        } else if (at->type == JSON_ARRAY) {
            char *end;
            long i = strtol(tok, &end, 10);
            if (*end || i < 0)
                return NULL;
            for (at = at->child; at && i > 0; at = at->next)
                i--;
        } else {
            return NULL;
        }
        if (!at)
            return NULL;
    }
    return *p ? NULL : at;
}

static int gen_ref(struct ctx *c, const json *r, int depth, char *name, size_t nl)
{
    if (r->type != JSON_STRING || strlen(r->str) != r->len)
        return fail(c, "'$ref' must be a string");
    jsg *g = c->g;
    for (int i = 0; i < g->nrefs; i++)
        if (g->refs[i].doc == c->doc && !strcmp(g->refs[i].ref, r->str)) {
            /* back into a schema being written, with no character read on
             * the way: a rule that starts with itself, which no parser takes */
            if (g->refs[i].open && g->refs[i].consumed == c->consumed)
                return fail(c, "'$ref' \"%.100s\" refers back to itself before any value starts",
                            r->str);
            snprintf(name, nl, "%s", g->refs[i].name);
            return 0;
        }
    const json *t = resolve(c->doc, r->str);
    if (!t)
        return fail(c, "'$ref' \"%.100s\" does not name a schema in this document (only local "
                       "references such as \"#/$defs/Name\" are supported)", r->str);
    if (g->nrefs >= MAX_REFS)
        return fail(c, "too many references (at most %d)", MAX_REFS);
    struct ref *e = &g->refs[g->nrefs];
    if (!(e->ref = strdup(r->str)))
        return fail(c, "out of memory");
    e->doc = c->doc;
    if (new_name(c, e->name, sizeof e->name) < 0) {
        free(e->ref);
        return -1;
    }
    g->nrefs++;
    e->open = true;
    e->consumed = c->consumed;
    char inner[16];
    int at = (int)(e - g->refs);
    if (gen_at(c, t, depth, "$ref", -1, inner, sizeof inner) < 0)
        return -1;
    e = &g->refs[at];
    e->open = false;
    buf b = buf_make(0);
    buf_puts(&b, inner);
    int rc = put_rule(c, e->name, &b);
    buf_free(&b);
    snprintf(name, nl, "%s", e->name);
    return rc;
}

/* Alternatives: anyOf/oneOf lists, or enum values. */
static int gen_alts(struct ctx *c, const json *list, const char *kw, int depth, buf *body)
{
    if (list->type != JSON_ARRAY || list->len == 0)
        return fail(c, "'%s' must be a non-empty array", kw);
    long i = 0;
    for (const json *a = list->child; a; a = a->next, i++) {
        char sub[16];
        size_t at = strlen(c->path);
        snprintf(c->path + at, sizeof c->path - at, ".%s", kw);
        int rc = gen_at(c, a, depth, NULL, i, sub, sizeof sub);
        if (rc < 0)
            return -1;
        c->path[at] = '\0';
        buf_printf(body, "%s%s", i ? " | " : "", sub);
    }
    return 0;
}

/* A pair of length bounds (minLength/maxLength, minItems/maxItems): *mn
 * (0 when absent) and *mx (-1 when absent), checked and capped. */
static int bounds(struct ctx *c, const json *s, const char *lo, const char *hi, const char *what,
                  long *mn, long *mx)
{
    if (count_kw(c, s, lo, 0, mn) < 0 || count_kw(c, s, hi, -1, mx) < 0)
        return -1;
    if (*mx >= 0 && *mn > *mx)
        return fail(c, "'%s' is larger than '%s'", lo, hi);
    if (*mn > JSG_MAX_REPEAT || *mx > JSG_MAX_REPEAT)
        return fail(c, "%s above %d are not supported", what, JSG_MAX_REPEAT);
    return 0;
}

static int gen_string(struct ctx *c, const json *s, buf *body)
{
    long mn, mx;
    if (bounds(c, s, "minLength", "maxLength", "string lengths", &mn, &mx) < 0)
        return -1;
    const json *f = json_get(s, "format");
    if (f) {
        if (f->type != JSON_STRING)
            return fail(c, "'format' must be a string");
        const char *body_of = json_str_is(f, "date")        ? "date"
                              : json_str_is(f, "time")      ? "time"
                              : json_str_is(f, "date-time") ? "date \"T\" time"
                              : json_str_is(f, "uuid")
                                  ? "hex{8} \"-\" hex{4} \"-\" hex{4} \"-\" hex{4} \"-\" hex{12}"
                                  : NULL;
        if (!body_of)
            return fail(c, "the string format '%.40s' is not supported (date, time, date-time "
                           "and uuid are)", f->str);
        if (mn || mx >= 0)
            return fail(c, "'format' together with 'minLength'/'maxLength' is not supported");
        buf_printf(body, "\"\\\"\" %s \"\\\"\" ws", body_of);
        return 0;
    }
    if (mn == 0 && mx < 0) {
        buf_puts(body, "string");
        return 0;
    }
    buf_puts(body, "\"\\\"\" char");
    if (repeat(c, body, mn, mx) < 0)
        return -1;
    buf_puts(body, " \"\\\"\" ws");
    return 0;
}

static int gen_array(struct ctx *c, const json *s, int depth, buf *body)
{
    long mn, mx;
    if (bounds(c, s, "minItems", "maxItems", "array lengths", &mn, &mx) < 0)
        return -1;
    const json *pre = json_get(s, "prefixItems");
    if (pre) {
        /* a tuple: exactly its items (valid whatever 'items' says of more) */
        if (pre->type != JSON_ARRAY || pre->len == 0)
            return fail(c, "'prefixItems' must be a non-empty array");
        if ((long)pre->len < mn || (mx >= 0 && (long)pre->len > mx))
            return fail(c, "'prefixItems' with 'minItems'/'maxItems' beyond its length is not "
                           "supported");
        buf_puts(body, "\"[\" ws ");
        long i = 0;
        for (const json *it = pre->child; it; it = it->next, i++) {
            char sub[16];
            size_t at = strlen(c->path);
            snprintf(c->path + at, sizeof c->path - at, ".prefixItems");
            c->consumed++;          /* after "[" */
            int rc = gen_at(c, it, depth, NULL, i, sub, sizeof sub);
            c->consumed--;
            if (rc < 0)
                return -1;
            c->path[at] = '\0';
            buf_printf(body, "%s%s", i ? "\",\" ws " : "", sub);
            buf_putc(body, ' ');
        }
        buf_puts(body, "\"]\" ws");
        return 0;
    }
    const json *items = json_get(s, "items");
    char sub[16] = "value";
    c->consumed++;
    int rc = items ? gen_at(c, items, depth, "items", -1, sub, sizeof sub) : 0;
    c->consumed--;
    if (rc < 0)
        return -1;
    if (mx == 0) {
        buf_puts(body, "\"[\" ws \"]\" ws");
        return 0;
    }
    /* the first item, then up to mx - 1 more after commas */
    long more_min = mn > 0 ? mn - 1 : 0, more_max = mx < 0 ? -1 : mx - 1;
    buf_printf(body, "\"[\" ws %s%s", mn == 0 ? "(" : "", sub);
    if (more_max != 0) {
        buf_printf(body, " (\",\" ws %s)", sub);
        if (repeat(c, body, more_min, more_max) < 0)
            return -1;
    }
    buf_printf(body, "%s \"]\" ws", mn == 0 ? ")?" : "");
    return 0;
}

/* An object of the declared properties, in their order, the required ones
 * always there. Two rules per property: a_i (nothing written yet, so no
 * comma before it) and b_i (something written). */
static int gen_object(struct ctx *c, const json *s, int depth, buf *body)
{
    const json *props = json_get(s, "properties"), *req = json_get(s, "required");
    const json *add = json_get(s, "additionalProperties");
    if (props && props->type != JSON_OBJECT)
        return fail(c, "'properties' must be an object");
    if (req && req->type != JSON_ARRAY)
        return fail(c, "'required' must be an array of property names");
    if ((props && props->len > MAX_PROPS) || (req && req->len > MAX_PROPS))
        return fail(c, "at most %d properties (and required names) an object", MAX_PROPS);
    for (const json *p = props ? props->child : NULL; p; p = p->next)
        for (const json *q = p->next; q; q = q->next)
            if (p->keylen == q->keylen && !memcmp(p->key, q->key, p->keylen))
                return fail(c, "the property '%.64s' is declared twice", p->key);
    for (const json *r = req ? req->child : NULL; r; r = r->next) {
        if (r->type != JSON_STRING)
            return fail(c, "'required' must be an array of property names");
        bool found = false;
        for (const json *p = props ? props->child : NULL; p && !found; p = p->next)
            found = p->keylen == r->len && memcmp(p->key, r->str, r->len) == 0;
        if (!found)
            return fail(c, "the required property '%.64s' is not in 'properties'", r->str);
    }
    if (!props || props->len == 0) {
        /* a map: any keys, values of additionalProperties' schema */
        if (add && add->type == JSON_BOOL && !add->boolean) {
            buf_puts(body, "\"{\" ws \"}\" ws");
            return 0;
        }
        char sub[16] = "value";
        c->consumed++;
        int rc = add && add->type != JSON_BOOL
                     ? gen_at(c, add, depth, "additionalProperties", -1, sub, sizeof sub)
                     : 0;
        c->consumed--;
        if (rc < 0)
            return -1;
        if (!strcmp(sub, "value")) {
            buf_puts(body, "object");
            return 0;
        }
        buf_printf(body, "\"{\" ws (string \":\" ws %s (\",\" ws string \":\" ws %s)*)? \"}\" ws",
                   sub, sub);
        return 0;
    }
    size_t n = props->len;
    char (*a)[16] = calloc(n + 1, sizeof *a), (*b)[16] = calloc(n + 1, sizeof *b);
    char (*kv)[16] = calloc(n, sizeof *kv);
    bool *must = calloc(n, sizeof *must);
    int rc = -1;
    if (!a || !b || !kv || !must) {
        fail(c, "out of memory");
        goto out;
    }
    size_t i = 0;
    for (const json *p = props->child; p; p = p->next, i++) {
        for (const json *r = req ? req->child : NULL; r; r = r->next)
            must[i] |= p->keylen == r->len && memcmp(p->key, r->str, r->len) == 0;
        char sub[16];
        char key[72];
        snprintf(key, sizeof key, "properties.%.*s", (int)(p->keylen > 48 ? 48 : p->keylen), p->key);
        c->consumed++;          /* after "{" and the key */
        rc = gen_at(c, p, depth, key, -1, sub, sizeof sub);
        c->consumed--;
        if (rc < 0)
            goto out;
        /* kv_i ::= "\"key\"" ws ":" ws value */
        buf line = buf_make(0), k = buf_make(0);
        jw_str(&k, p->key, p->keylen);
        jsg_literal(&line, k.data, k.len);
        buf_printf(&line, " ws \":\" ws %s", sub);
        buf_free(&k);
        rc = new_name(c, kv[i], sizeof kv[i]);
        if (rc == 0)
            rc = put_rule(c, kv[i], &line);
        buf_free(&line);
        if (rc < 0)
            goto out;
        rc = -1;
    }
    for (i = 0; i < n; i++)
        if (new_name(c, a[i], sizeof a[i]) < 0 || new_name(c, b[i], sizeof b[i]) < 0)
            goto out;
    for (i = n; i-- > 0;) {
        buf la = buf_make(0), lb = buf_make(0);
        const char *na = i + 1 < n ? b[i + 1] : "";
        buf_printf(&la, "%s %s", kv[i], na);
        buf_printf(&lb, "\",\" ws %s %s", kv[i], na);
        if (!must[i]) {
            /* or leave it out: the rest as if nothing came before (a) or after it (b) */
            buf_printf(&la, " | %s", i + 1 < n ? a[i + 1] : "\"\"");
            buf_printf(&lb, " | %s", i + 1 < n ? b[i + 1] : "\"\"");
        }
        int r1 = put_rule(c, a[i], &la), r2 = r1 == 0 ? put_rule(c, b[i], &lb) : -1;
        buf_free(&la);
        buf_free(&lb);
        if (r2 < 0)
            goto out;
    }
    buf_printf(body, "\"{\" ws %s \"}\" ws", a[0]);
    rc = 0;
out:
    free(a);
    free(b);
    free(kv);
    free(must);
    return rc;
}

/* The schema restricted to one type name. */
static int gen_typed(struct ctx *c, const json *s, const char *t, int depth, buf *body)
{
    if (!strcmp(t, "string"))
        return gen_string(c, s, body);
    if (!strcmp(t, "array"))
        return gen_array(c, s, depth, body);
    if (!strcmp(t, "object"))
        return gen_object(c, s, depth, body);
    if (!strcmp(t, "number") || !strcmp(t, "integer") || !strcmp(t, "boolean") ||
        !strcmp(t, "null"))
        return buf_puts(body, t) < 0 ? fail(c, "the schema is too large") : 0;
    return fail(c, "unknown type '%.32s'", t);
}

static int gen(struct ctx *c, const json *s, int depth, char *name, size_t nl)
{
    if (depth > MAX_DEPTH)
        return fail(c, "the schema is nested too deeply (more than %d levels)", MAX_DEPTH);
    if (s->type == JSON_BOOL) {
        if (!s->boolean)
            return fail(c, "the schema false accepts no value");
        snprintf(name, nl, "value");
        return 0;
    }
    if (s->type != JSON_OBJECT)
        return fail(c, "a schema must be an object or a boolean, not %s", json_type_name(s->type));
    if (check_keywords(c, s) < 0)
        return -1;
    if (check_siblings(c, s) < 0)
        return -1;
    const json *ref = json_get(s, "$ref");
    if (ref)
        return gen_ref(c, ref, depth, name, nl);
    const json *all = json_get(s, "allOf");
    if (all) {
        if (all->type != JSON_ARRAY || all->len != 1)
            return fail(c, "'allOf' is supported with exactly one schema");
        return gen_at(c, all->child, depth, "allOf[0]", -1, name, nl);
    }
    buf body = buf_make(0);     /* bounded by the schema; the rules' buffer has the cap */
    int rc = 0;
    const json *cst = json_get(s, "const"), *en = json_get(s, "enum");
    const json *any = json_get(s, "anyOf"), *one = json_get(s, "oneOf");
    const json *ty = json_get(s, "type");
    if (cst) {
        rc = has_type(cst, ty) ? literal_of(c, cst, &body)
                               : fail(c, "the 'const' value does not have the schema's 'type'");
    } else if (en) {
        if (en->type != JSON_ARRAY || en->len == 0 || en->len > MAX_ENUM)
            rc = fail(c, "'enum' must be an array of 1 to %d values", MAX_ENUM);
        int kept = 0;
        for (const json *v = en->child; rc == 0 && v; v = v->next) {
            if (!has_type(v, ty))
                continue;       /* a value of another type is not valid here */
            if (kept++)
                buf_puts(&body, " | ");
            rc = literal_of(c, v, &body);
        }
        if (rc == 0 && kept == 0)
            rc = fail(c, "no 'enum' value has the schema's 'type'");
    } else if (any || one) {
        rc = gen_alts(c, any ? any : one, any ? "anyOf" : "oneOf", depth, &body);
    } else if (ty && ty->type == JSON_ARRAY) {
        if (ty->len == 0)
            rc = fail(c, "'type' must not be an empty list");
        for (const json *t = ty->child; rc == 0 && t; t = t->next) {
            if (t->type != JSON_STRING) {
                rc = fail(c, "'type' must be a string or a list of strings");
                break;
            }
            buf_puts(&body, t == ty->child ? "(" : " | (");
            rc = gen_typed(c, s, t->str, depth, &body);
            buf_putc(&body, ')');
        }
    } else if (ty) {
        rc = ty->type == JSON_STRING ? gen_typed(c, s, ty->str, depth, &body)
                                     : fail(c, "'type' must be a string or a list of strings");
    } else if (json_get(s, "properties") || json_get(s, "additionalProperties") ||
               json_get(s, "required")) {
        rc = gen_object(c, s, depth, &body);
    } else if (json_get(s, "items") || json_get(s, "prefixItems")) {
        rc = gen_array(c, s, depth, &body);
    } else if (json_get(s, "minLength") || json_get(s, "maxLength") || json_get(s, "format")) {
        rc = gen_string(c, s, &body);
    } else {
        buf_puts(&body, "value");
    }
    const json *nb = json_get(s, "nullable");
    if (rc == 0 && nb && nb->type == JSON_BOOL && nb->boolean) {
        buf t = buf_make(0);
        buf_printf(&t, "(%s) | null", body.data);
        buf_free(&body);
        body = t;
    }
    if (rc == 0 && new_name(c, name, nl) == 0)
        rc = put_rule(c, name, &body);
    else if (rc == 0)
        rc = -1;
    buf_free(&body);
    return rc;
}

int jsg_add(jsg *g, const json *schema, const json *doc, char *name, size_t nl, char *err,
            size_t el)
{
    struct ctx c = { .g = g, .doc = doc ? doc : schema, .err = err, .el = el };
    snprintf(c.path, sizeof c.path, "schema");
    if (err && el)
        err[0] = '\0';
    return gen(&c, schema, 0, name, nl);
}

int json_schema_grammar(const json *schema, buf *out, char *err, size_t el)
{
    jsg *g = jsg_new();
    if (!g) {
        snprintf(err, el, "out of memory");
        return -1;
    }
    char name[16];
    int rc = jsg_add(g, schema, schema, name, sizeof name, err, el);
    if (rc == 0)
        rc = jsg_rule(g, "root", name);
    if (rc == 0 && jsg_finish(g, out) < 0) {
        snprintf(err, el, "the schema is too large");
        rc = -1;
    }
    jsg_free(g);
    return rc;
}
