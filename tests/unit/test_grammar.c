/*
 * test_grammar.c: the grammars hearth builds (src/core/jsonschema.c, and the
 * tool-call grammars of src/http/genreq.c) run in llama.cpp's own grammar
 * sampler, on the vocabulary of the real stories260K model.
 *
 * - Texts are fed token by token: valid documents are accepted to the end
 *   (where the end of text is allowed), invalid ones are refused.
 * - Random walks: at each step every token gets a random logit, the grammar
 *   removes what it forbids and the best remaining token is taken, until the
 *   grammar allows only the end. Every finished text must parse as JSON and
 *   be valid against the schema by this file's own validator.
 * - Schemas the grammar cannot enforce are refused with the keyword named.
 */
#include "http/genreq.c"

#include <llama.h>
#include <math.h>
#include <sys/stat.h>

#include "check.h"
#include "engine/backends.h"
#include "engine/sample_safe.h"

static const struct llama_vocab *V;
static int NV;
static char **PIECE;      /* each token's text */
static size_t *PLEN;

static const char *stories_path(void)
{
    static char p[512];
    const char *c[] = { getenv("HEARTH_SHARED"), "../shared", "/work/shared" };
    struct stat st;
    for (int i = 0; i < 3; i++) {
        if (!c[i])
            continue;
        snprintf(p, sizeof p, "%s/models/stories260K.gguf", c[i]);
        if (stat(p, &st) == 0)
            return p;
    }
    return NULL;
}

static struct llama_sampler *grammar_of(const char *g, const char *trigger)
{
    if (trigger)
        return llama_sampler_init_grammar_lazy_patterns(V, g, "root", &trigger, 1, NULL, 0);
    return llama_sampler_init_grammar(V, g, "root");
}

static bool allowed(struct llama_sampler *s, llama_token t)
{
    llama_token_data d = { t, 0.0f, 0.0f };
    llama_token_data_array a = { &d, 1, -1, false };
    llama_sampler_apply(s, &a);
    return d.logit != -INFINITY;
}

/* 1: the grammar takes the whole text and then allows the end; 0: it
 * refuses a token or the text is unfinished; -1: the grammar does not parse.
 * The text is cut into tokens by longest match (byte tokens cover the rest). */
static int accepts(const char *g, const char *trigger, const char *text)
{
    struct llama_sampler *s = grammar_of(g, trigger);
    if (!s)
        return -1;
    size_t n = strlen(text), at = 0;
    int rc = 1;
    while (at < n && rc == 1) {
        int best = -1;
        size_t bl = 0;
        for (int t = 0; t < NV; t++)
            if (PLEN[t] > bl && PLEN[t] <= n - at && !memcmp(PIECE[t], text + at, PLEN[t]) &&
                !llama_vocab_is_eog(V, t) && !llama_vocab_is_control(V, t)) {
                best = t;
                bl = PLEN[t];
            }
        if (best < 0 || !allowed(s, best)) {
            rc = 0;
            break;
        }
        llama_sampler_accept(s, best);
        at += bl;
    }
    if (rc == 1 && !allowed(s, llama_vocab_eos(V)))
        rc = 0;
    llama_sampler_free(s);
    return rc;
}

static uint64_t rng = 88172645463325252ull;
static double rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* A random walk through the grammar: 1 finished (text in out), 0 not
 * within the step limit, -1 stuck (no token allowed: a broken grammar). */
static int walk(const char *g, buf *out)
{
    struct llama_sampler *s = grammar_of(g, NULL);
    if (!s)
        return -1;
    llama_token_data *d = malloc(sizeof *d * (size_t)NV);
    int rc = 0;
    buf_reset(out);
    for (int step = 0; step < 1500; step++) {
        for (int t = 0; t < NV; t++) {
            /* lean towards closing strings, objects and arrays, so walks end */
            double bias = PLEN[t] && strpbrk(PIECE[t], "\"]}") ? 0.6 : 0;
            d[t] = (llama_token_data){ t, (float)(rnd() + bias), 0.0f };
        }
        llama_token_data_array a = { d, (size_t)NV, -1, false };
        llama_sampler_apply(s, &a);
        int best = -1;
        for (size_t i = 0; i < a.size; i++)
            if (a.data[i].logit != -INFINITY &&
                (!llama_vocab_is_control(V, a.data[i].id) || llama_vocab_is_eog(V, a.data[i].id)) &&
                (best < 0 || a.data[i].logit > a.data[best].logit))
                best = (int)i;
        if (best < 0) {
            int n_ok = 0;
            for (size_t i = 0; i < a.size; i++)
                n_ok += a.data[i].logit != -INFINITY;
            fprintf(stderr, "  stuck (%d allowed of %zu) after %zu bytes\n", n_ok, a.size, out->len);
            rc = -1;
            break;
        }
        llama_token t = a.data[best].id;
        if (llama_vocab_is_eog(V, t)) {
            rc = 1;
            break;
        }
        llama_sampler_accept(s, t);
        buf_append(out, PIECE[t], PLEN[t]);
    }
    free(d);
    llama_sampler_free(s);
    return rc;
}

/* ---- a validator for the subset, independent of the converter ---------- */

static size_t code_points(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool is_date(const char *s)
{
    return strlen(s) == 10 && digits(s, 4) && s[4] == '-' && digits(s + 5, 2) && s[7] == '-' &&
           digits(s + 8, 2) && atoi(s + 5) >= 1 && atoi(s + 5) <= 12 && atoi(s + 8) >= 1 &&
           atoi(s + 8) <= 31;
}

static bool is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    }
    return true;
}

static bool same(const json *a, const json *b)
{
    buf x = buf_make(0), y = buf_make(0);
    jw_value(&x, a);
    jw_value(&y, b);
    bool r = x.len == y.len && !memcmp(x.data, y.data, x.len);
    buf_free(&x);
    buf_free(&y);
    return r;
}

static bool valid(const json *v, const json *s, const json *doc);

static bool valid_type(const json *v, const char *t, const json *s, const json *doc)
{
    if (!strcmp(t, "null"))
        return v->type == JSON_NULL;
    if (!strcmp(t, "boolean"))
        return v->type == JSON_BOOL;
    if (!strcmp(t, "integer"))
        return v->type == JSON_NUMBER && v->number == floor(v->number);
    if (!strcmp(t, "number"))
        return v->type == JSON_NUMBER;
    if (!strcmp(t, "string")) {
        if (v->type != JSON_STRING)
            return false;
        const json *mn = json_get(s, "minLength"), *mx = json_get(s, "maxLength");
        const json *f = json_get(s, "format");
        size_t n = code_points(v->str, v->len);
        if ((mn && n < (size_t)mn->integer) || (mx && n > (size_t)mx->integer))
            return false;
        if (f && json_str_is(f, "date"))
            return is_date(v->str);
        if (f && json_str_is(f, "uuid"))
            return is_uuid(v->str);
        if (f && json_str_is(f, "date-time"))
            return v->len >= 20 && v->str[10] == 'T' && is_date(strndupa(v->str, 10));
        return true;
    }
    if (!strcmp(t, "array")) {
        if (v->type != JSON_ARRAY)
            return false;
        const json *mn = json_get(s, "minItems"), *mx = json_get(s, "maxItems");
        if ((mn && v->len < (size_t)mn->integer) || (mx && v->len > (size_t)mx->integer))
            return false;
        const json *pre = json_get(s, "prefixItems"), *items = json_get(s, "items");
        const json *p = pre ? pre->child : NULL;
        for (const json *e = v->child; e; e = e->next) {
            const json *sch = p ? p : items;
            if (p)
                p = p->next;
            if (sch && !valid(e, sch, doc))
                return false;
        }
        return !p;
    }
    if (!strcmp(t, "object")) {
        if (v->type != JSON_OBJECT)
            return false;
        const json *props = json_get(s, "properties"), *req = json_get(s, "required");
        const json *add = json_get(s, "additionalProperties");
        for (const json *r = req ? req->child : NULL; r; r = r->next) {
            bool found = false;
            for (const json *m = v->child; m; m = m->next)
                found |= m->keylen == r->len && !memcmp(m->key, r->str, r->len);
            if (!found)
                return false;
        }
        for (const json *m = v->child; m; m = m->next) {
            const json *ps = NULL;
            for (const json *p = props ? props->child : NULL; p; p = p->next)
                if (p->keylen == m->keylen && !memcmp(p->key, m->key, m->keylen))
                    ps = p;
            /* a key twice is not valid JSON for a schema's purposes */
            for (const json *o = m->next; o; o = o->next)
                if (o->keylen == m->keylen && !memcmp(o->key, m->key, m->keylen))
                    return false;
            if (ps ? !valid(m, ps, doc)
                   : add && (add->type == JSON_BOOL ? !add->boolean : !valid(m, add, doc)))
                return false;
        }
        return true;
    }
    return false;
}

static bool valid(const json *v, const json *s, const json *doc)
{
    if (s->type == JSON_BOOL)
        return s->boolean;
    const json *ref = json_get(s, "$ref");
    if (ref) {
        const json *at = doc;
        if (!strncmp(ref->str, "#/$defs/", 8))
            at = json_get(json_get(doc, "$defs"), ref->str + 8);
        return at && valid(v, at, doc);
    }
    const json *nb = json_get(s, "nullable");
    if (nb && nb->boolean && v->type == JSON_NULL)
        return true;
    const json *c = json_get(s, "const"), *en = json_get(s, "enum");
    if (c)
        return same(v, c);
    if (en) {
        for (const json *e = en->child; e; e = e->next)
            if (same(v, e))
                return true;
        return false;
    }
    const json *any = json_get(s, "anyOf");
    if (any) {
        for (const json *a = any->child; a; a = a->next)
            if (valid(v, a, doc))
                return true;
        return false;
    }
    const json *t = json_get(s, "type");
    if (t && t->type == JSON_ARRAY) {
        for (const json *e = t->child; e; e = e->next)
            if (valid_type(v, e->str, s, doc))
                return true;
        return false;
    }
    if (t)
        return valid_type(v, t->str, s, doc);
    if (json_get(s, "properties"))
        return valid_type(v, "object", s, doc);
    return true;
}

/* ---- tests --------------------------------------------------------------- */

static char *grammar_for(const char *schema_text)
{
    arena *a = arena_new(0);
    char err[200];
    const json *s = json_parse(a, schema_text, strlen(schema_text), err, sizeof err);
    buf g = buf_make(0);
    char *r = NULL;
    if (s && json_schema_grammar(s, &g, err, sizeof err) == 0)
        r = strdup(g.data);
    else
        fprintf(stderr, "  schema %s: %s\n", schema_text, err);
    buf_free(&g);
    arena_free(a);
    return r;
}

static const char *SCHEMAS[] = {
    /* 0: the shapes a typical structured output has */
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":8},"
    "\"age\":{\"type\":\"integer\"},\"score\":{\"type\":\"number\"},\"ok\":{\"type\":\"boolean\"},"
    "\"nothing\":{\"type\":\"null\"},\"color\":{\"enum\":[\"red\",\"green\",3,null]},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":4},\"minItems\":1,"
    "\"maxItems\":3},\"note\":{\"type\":\"string\",\"maxLength\":5,\"nullable\":true}},"
    "\"required\":[\"name\",\"age\",\"score\",\"ok\",\"nothing\",\"color\",\"tags\",\"note\"],"
    "\"additionalProperties\":false}",
    /* 1: every property optional (no stray commas) */
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"boolean\"},"
    "\"c\":{\"const\":\"x\"}}}",
    /* 2: a recursive tree through $defs */
    "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
    "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},"
    "\"required\":[\"v\"]}},\"$ref\":\"#/$defs/node\"}",
    /* 3: alternatives, type lists, formats, a tuple */
    "{\"type\":\"object\",\"properties\":{\"x\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":"
    "\"array\",\"items\":{\"type\":\"boolean\"},\"maxItems\":2}]},\"y\":{\"type\":[\"string\","
    "\"null\"],\"maxLength\":3},\"d\":{\"type\":\"string\",\"format\":\"date\"},\"u\":{\"type\":"
    "\"string\",\"format\":\"uuid\"},\"t\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"p\":{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},{\"const\":true}]}},"
    "\"required\":[\"x\",\"y\",\"d\",\"u\",\"t\",\"p\"]}",
    /* 4: a map of integers; a string with both bounds; an exact-length array */
    "{\"type\":\"object\",\"properties\":{\"m\":{\"type\":\"object\",\"additionalProperties\":"
    "{\"type\":\"integer\"}},\"s\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":3},"
    "\"e\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":2,\"items\":{\"type\":\"integer\"}}},"
    "\"required\":[\"m\",\"s\",\"e\"]}",
};

TEST(documents_accepted_and_refused)
{
    char *g0 = grammar_for(SCHEMAS[0]);
    CHECK(g0 != NULL);
    if (!g0)
        return;
    const char *good = "{\"name\": \"Ana\", \"age\": 41, \"score\": -0.5e3, \"ok\": true, "
                       "\"nothing\": null, \"color\": 3, \"tags\": [\"a\", \"b\"], \"note\": null}";
    CHECK_EQ_INT(accepts(g0, NULL, good), 1);
    /* pretty-printed, as models often write it */
    CHECK_EQ_INT(accepts(g0, NULL, "{\n  \"name\": \"\\u00e9\\n\",\n  \"age\": 0,\n  \"score\": 1,\n"
                                   "  \"ok\": false,\n  \"nothing\": null,\n  \"color\": \"red\",\n"
                                   "  \"tags\": [\"abcd\"],\n  \"note\": \"hi\"\n}"), 1);
    const char *bad[] = {
        /* a name too long, a float for an integer, a color not listed, no tags,
         * four tags, a property left out, an extra one, a leading zero, unfinished */
        "{\"name\": \"Anastasia\", \"age\": 41, \"score\": 1, \"ok\": true, \"nothing\": null, "
        "\"color\": 3, \"tags\": [\"a\"], \"note\": null}",
        "{\"name\": \"A\", \"age\": 4.5, \"score\": 1, \"ok\": true, \"nothing\": null, "
        "\"color\": 3, \"tags\": [\"a\"], \"note\": null}",
        "{\"name\": \"A\", \"age\": 4, \"score\": 1, \"ok\": true, \"nothing\": null, "
        "\"color\": \"blue\", \"tags\": [\"a\"], \"note\": null}",
        "{\"name\": \"A\", \"age\": 4, \"score\": 1, \"ok\": true, \"nothing\": null, "
        "\"color\": 3, \"tags\": [], \"note\": null}",
        "{\"name\": \"A\", \"age\": 4, \"score\": 1, \"ok\": true, \"nothing\": null, "
        "\"color\": 3, \"tags\": [\"a\",\"b\",\"c\",\"d\"], \"note\": null}",
        "{\"name\": \"A\", \"age\": 4, \"score\": 1, \"ok\": true, \"nothing\": null, "
        "\"color\": 3, \"tags\": [\"a\"]}",
        "{\"name\": \"A\", \"age\": 4, \"score\": 1, \"ok\": true, \"nothing\": null, "
        "\"color\": 3, \"tags\": [\"a\"], \"note\": null, \"more\": 1}",
        "{\"name\": \"A\", \"age\": 04, \"score\": 1, \"ok\": true, \"nothing\": null, "
        "\"color\": 3, \"tags\": [\"a\"], \"note\": null}",
        "{\"name\": \"A\", \"age\": 4",
        "[1, 2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (accepts(g0, NULL, bad[i]) != 0) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
            CHECK(0);
        }
    free(g0);
    char *g1 = grammar_for(SCHEMAS[1]);
    CHECK(g1 && accepts(g1, NULL, "{}") == 1 && accepts(g1, NULL, "{\"b\": true}") == 1 &&
          accepts(g1, NULL, "{\"a\": 1, \"c\": \"x\"}") == 1 &&
          accepts(g1, NULL, "{, \"b\": true}") == 0 && accepts(g1, NULL, "{\"c\": \"y\"}") == 0 &&
          accepts(g1, NULL, "{\"b\": true, \"a\": 1}") == 0);   /* declared order */
    free(g1);
    char *g2 = grammar_for(SCHEMAS[2]);
    CHECK(g2 && accepts(g2, NULL, "{\"v\": 1, \"kids\": [{\"v\": 2}, {\"v\": 3, \"kids\": []}]}") == 1 &&
          accepts(g2, NULL, "{\"v\": 1, \"kids\": [{\"kids\": []}]}") == 0);
    free(g2);
    char *g3 = grammar_for(SCHEMAS[3]);
    CHECK(g3 && accepts(g3, NULL, "{\"x\": [true], \"y\": null, \"d\": \"2026-11-26\", \"u\": "
                                  "\"123e4567-e89b-12d3-a456-426614174000\", \"t\": "
                                  "\"2026-11-26T21:05:00Z\", \"p\": [7, true]}") == 1 &&
          accepts(g3, NULL, "{\"x\": 1, \"y\": \"ab\", \"d\": \"2026-13-01\", \"u\": "
                            "\"123e4567-e89b-12d3-a456-426614174000\", \"t\": "
                            "\"2026-11-26T21:05:00Z\", \"p\": [7, true]}") == 0);
    free(g3);
}

TEST(random_walks_are_valid)
{
    arena *a = arena_new(0);
    buf out = buf_make(0);
    for (size_t k = 0; k < sizeof SCHEMAS / sizeof *SCHEMAS; k++) {
        char *g = grammar_for(SCHEMAS[k]);
        CHECK(g != NULL);
        if (!g)
            continue;
        char err[128];
        const json *schema = json_parse(a, SCHEMAS[k], strlen(SCHEMAS[k]), err, sizeof err);
        int finished = 0, invalid = 0;
        for (int run = 0; run < 25; run++) {
            int rc = walk(g, &out);
            CHECK(rc >= 0);             /* the grammar never leaves no token */
            if (rc != 1)
                continue;
            finished++;
            const json *v = json_parse(a, out.data, out.len, err, sizeof err);
            if (!v || !valid(v, schema, schema)) {
                fprintf(stderr, "  schema %zu, not valid: %s\n", k, out.data);
                invalid++;
            }
        }
        printf("  schema %zu: %d of 25 random walks finished, %d not valid\n", k, finished, invalid);
        CHECK_EQ_INT(invalid, 0);
        CHECK(finished >= 5);
        free(g);
    }
    buf_free(&out);
    arena_free(a);
}

/* the tool-call grammar genreq builds, lazy (auto) and not (required) */
static char *tool_grammar(const char *choice, char **trigger)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":["
             "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
             "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
             "\"required\":[\"city\"]}}},{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]"
             "%s%s%s}", choice ? ",\"tool_choice\":\"" : "", choice ? choice : "",
             choice ? "\"" : "");
    gen_request g;
    gen_error e;
    if (genreq_parse(GEN_CHAT, body, strlen(body), &g, &e) < 0)
        return NULL;
    arena *a = arena_new(0);
    char err[64];
    const json *p = json_parse(a, g.payload.data, g.payload.len, err, sizeof err);
    const json *gr = json_get(p, "grammar"), *tr = json_get(p, "grammar_trigger");
    char *r = gr ? strdup(gr->str) : NULL;
    *trigger = tr ? strdup(tr->str) : NULL;
    arena_free(a);
    buf_free(&g.payload);
    return r;
}

TEST(tool_call_grammars)
{
    char *trig = NULL;
    char *g = tool_grammar(NULL, &trig);      /* auto */
    CHECK(g && trig);
    if (!g || !trig)
        return;
    const char *call = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n"
                       "</tool_call>";
    char text[512];
    /* free text, or text and then calls: each call held to its tool's parameters */
    CHECK_EQ_INT(accepts(g, trig, "It is sunny, I think."), 1);
    snprintf(text, sizeof text, "Let me check. %s", call);
    CHECK_EQ_INT(accepts(g, trig, text), 1);
    snprintf(text, sizeof text, "%s\n<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>", call);
    CHECK_EQ_INT(accepts(g, trig, text), 1);
    CHECK_EQ_INT(accepts(g, trig, "Sure <tool_call>{\"name\": \"get_time\""), 0);
    CHECK_EQ_INT(accepts(g, trig, "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}"
                                  "</tool_call>"), 0);      /* city is required */
    /* an opened call must be finished */
    CHECK_EQ_INT(accepts(g, trig, "<tool_call>{\"name\": \"now\""), 0);
    free(g);
    free(trig);
    /* required: a call from the first token */
    g = tool_grammar("required", &trig);
    CHECK(g && !trig);
    CHECK_EQ_INT(accepts(g, NULL, call), 1);
    CHECK_EQ_INT(accepts(g, NULL, "It is sunny."), 0);
    free(g);
    /* none: no grammar at all */
    g = tool_grammar("none", &trig);
    CHECK(!g && !trig);
}

TEST(unsupported_schemas_named)
{
    struct { const char *schema, *expect; } cases[] = {
        { "{\"type\":\"string\",\"pattern\":\"^a$\"}", "'pattern' is not supported" },
        { "{\"type\":\"integer\",\"minimum\":1}", "'minimum' is not supported" },
        { "{\"type\":\"string\",\"format\":\"email\"}", "format 'email'" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"]}", "'b' is not in" },
        { "{\"$ref\":\"#/$defs/missing\"}", "does not name a schema" },
        { "{\"$ref\":\"https://example.com/s.json\"}", "only local references" },
        { "{\"type\":\"object\",\"properties\":{\"a\":false}}", "schema.properties.a: the schema false" },
        { "{\"type\":\"array\",\"maxItems\":5000}", "above 1024" },
        { "{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "larger than" },
        { "{\"type\":\"strin\"}", "unknown type 'strin'" },
        { "{\"allOf\":[{},{}]}", "exactly one" },
        { "[1]", "must be an object or a boolean" },
        { "{\"anyOf\":[{\"type\":\"integer\"},{\"not\":{}}]}", "schema.anyOf[1]: the keyword 'not'" },
        /* keywords beside one that says it all would be dropped: refused */
        { "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}],\"maxLength\":3}",
          "'maxLength' beside 'anyOf'" },
        { "{\"$defs\":{\"s\":{\"type\":\"string\"}},\"$ref\":\"#/$defs/s\",\"maxLength\":2}",
          "'maxLength' beside '$ref'" },
        { "{\"enum\":[\"a\",\"bb\"],\"maxLength\":1}", "'maxLength' beside 'enum'" },
        { "{\"type\":\"integer\",\"const\":\"x\"}", "does not have the schema's 'type'" },
        { "{\"type\":\"boolean\",\"enum\":[1,\"a\"]}", "no 'enum' value" },
        /* rules that start with themselves */
        { "{\"$ref\":\"#\"}", "refers back to itself" },
        { "{\"$defs\":{\"a\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"},{\"type\":\"null\"}]}},"
          "\"$ref\":\"#/$defs/a\"}", "refers back to itself" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{},\"a\":{}}}", "declared twice" },
        { "{\"const\":12345678901234567890}", "beyond 2^53" },
    };
    arena *a = arena_new(0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[200] = "";
        const json *s = json_parse(a, cases[i].schema, strlen(cases[i].schema), err, sizeof err);
        buf g = buf_make(0);
        int rc = s ? json_schema_grammar(s, &g, err, sizeof err) : 0;
        if (rc != -1 || !strstr(err, cases[i].expect)) {
            fprintf(stderr, "  %s -> rc %d, \"%s\"\n", cases[i].schema, rc, err);
            CHECK(0);
        }
        buf_free(&g);
    }
    /* deep nesting stops at a limit, with an error rather than a crash */
    buf deep = buf_make(0);
    for (int i = 0; i < 60; i++)
        buf_puts(&deep, "{\"type\":\"array\",\"items\":");
    buf_puts(&deep, "true");
    for (int i = 0; i < 60; i++)
        buf_putc(&deep, '}');
    char err[200] = "";
    const json *s = json_parse(a, deep.data, deep.len, err, sizeof err);
    buf g = buf_make(0);
    int rc = s ? json_schema_grammar(s, &g, err, sizeof err) : 0;
    if (!(s && rc == -1 && strstr(err, "too deeply")))
        fprintf(stderr, "  deep: parsed %d, rc %d, %s\n", s != NULL, rc, err);
    CHECK(s && rc == -1 && strstr(err, "too deeply"));
    buf_free(&g);
    buf_free(&deep);
    arena_free(a);
}

/* A lazy grammar replays the rest of the token that triggered it without
 * checking; a rest that does not fit makes llama.cpp throw. Caught, it is an
 * error for that request, not the end of the worker. */
TEST(lazy_trigger_rest_caught)
{
    /* a token of two or more letters (or a blank and letters): the trigger is
     * its first character, and the grammar wants another second one */
    int tok = -1;
    for (int t = 0; t < NV && tok < 0; t++)
        if (PLEN[t] >= 2 && strspn(PIECE[t], " abcdefghijklmnopqrstuvwxyz") == PLEN[t])
            tok = t;
    CHECK(tok >= 0);
    if (tok < 0)
        return;
    char pat[2] = { PIECE[tok][0], 0 }, g[32];
    snprintf(g, sizeof g, "root ::= \"%c%c\"", PIECE[tok][0], PIECE[tok][1] == 'q' ? 'z' : 'q');
    const char *pp = pat;
    struct llama_sampler *s = llama_sampler_init_grammar_lazy_patterns(V, g, "root", &pp, 1, NULL, 0);
    CHECK(s != NULL);
    char err[200] = "";
    CHECK(accept_safe(s, tok, err, sizeof err) == -1 && err[0]);
    llama_sampler_free(s);
    /* a token that fits goes through */
    s = llama_sampler_init_grammar(V, "root ::= [a-z ]+", "root");
    int ok = -1;
    for (int t = 0; t < NV && ok < 0; t++)
        if (PLEN[t] >= 2 && strspn(PIECE[t], "abcdefghijklmnopqrstuvwxyz ") == PLEN[t])
            ok = t;
    CHECK(ok >= 0 && accept_safe(s, ok, err, sizeof err) == 0);
    llama_sampler_free(s);
}

TEST(schema_edges)
{
    /* an enum is held to the schema's type */
    char *g = grammar_for("{\"type\":\"string\",\"enum\":[\"a\",1,\"b\"]}");
    CHECK(g && accepts(g, NULL, "\"a\"") == 1 && accepts(g, NULL, "1") == 0);
    free(g);
    /* recursion through an object is fine */
    g = grammar_for("{\"type\":\"object\",\"properties\":{\"next\":{\"anyOf\":[{\"$ref\":\"#\"},"
                    "{\"type\":\"null\"}]}},\"required\":[\"next\"]}");
    CHECK(g && accepts(g, NULL, "{\"next\": {\"next\": null}}") == 1);
    free(g);
    /* \u escapes: not a lone surrogate */
    g = grammar_for("{\"type\":\"string\"}");
    CHECK(g && accepts(g, NULL, "\"\\u00e9\"") == 1 && accepts(g, NULL, "\"\\ud800\"") == 0);
    free(g);
    /* the length limits of a whole grammar have a budget (llama.cpp spells them out) */
    buf b = buf_make(0);
    buf_puts(&b, "{\"type\":\"object\",\"properties\":{");
    for (int i = 0; i < 12; i++)
        buf_printf(&b, "%s\"p%d\":{\"type\":\"string\",\"maxLength\":1000}", i ? "," : "", i);
    buf_puts(&b, "}}");
    arena *a = arena_new(0);
    char err[200] = "";
    const json *s = json_parse(a, b.data, b.len, err, sizeof err);
    buf out = buf_make(0);
    CHECK(s && json_schema_grammar(s, &out, err, sizeof err) == -1 && strstr(err, "add up"));
    buf_free(&out);
    buf_free(&b);
    arena_free(a);
}

static void quiet(enum ggml_log_level l, const char *t, void *u)
{
    (void)l, (void)t, (void)u;
}

int main(void)
{
    const char *path = stories_path();
    if (!path) {
        fprintf(stderr, "stories260K.gguf not found (set HEARTH_SHARED)\n0 passed, 1 failed\n");
        return 1;
    }
    llama_log_set(quiet, NULL);
    backends_load();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *m = llama_model_load_from_file(path, mp);
    if (!m) {
        fprintf(stderr, "could not load %s\n0 passed, 1 failed\n", path);
        return 1;
    }
    V = llama_model_get_vocab(m);
    NV = llama_vocab_n_tokens(V);
    PIECE = calloc((size_t)NV, sizeof *PIECE);
    PLEN = calloc((size_t)NV, sizeof *PLEN);
    for (int t = 0; t < NV; t++) {
        char p[64];
        int n = llama_token_to_piece(V, t, p, sizeof p, 0, false);
        n = n < 0 ? 0 : n;
        PIECE[t] = strndup(p, (size_t)n);
        PLEN[t] = (size_t)n;
    }
    RUN(documents_accepted_and_refused);
    RUN(random_walks_are_valid);
    RUN(tool_call_grammars);
    RUN(unsupported_schemas_named);
    RUN(lazy_trigger_rest_caught);
    RUN(schema_edges);
    return check_summary();
}
