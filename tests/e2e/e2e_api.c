/*
 * e2e_api.c: the API suite (issue: OpenAI-compatible chat on a local model).
 * See harness.h for the environment it needs.
 */
#include "harness.h"

#include <ifaddrs.h>
#include <math.h>
#include <net/if.h>

static struct daemon A, B;

/* ---- tests -------------------------------------------------------------- */

static void t_health_and_models(void)
{
    struct resp r = http(&A, "GET", "/health", NULL, 0);
    CHECK(r.status == 200);
    CHECK(r.body.data && strcmp(r.body.data, "{\"status\":\"ok\"}") == 0);
    CHECK(r.headers.data && strcasestr(r.headers.data, "X-Request-Id: req_"));
    resp_free(&r);
    r = http(&A, "GET", "/v1/models", NULL, 0);
    CHECK(r.status == 200);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    CHECK(str_at(j, "object") && !strcmp(str_at(j, "object"), "list"));
    const json *data = json_get(j, "data");
    /* the three configured models, plus the built-in "ocr" where Tesseract is installed */
    CHECK(data && data->type == JSON_ARRAY && (data->len == 3 || data->len == 4));
    bool stories = false, tiny = false;
    for (const json *m = data ? data->child : NULL; m; m = m->next) {
        const char *id = str_at(m, "id");
        CHECK(str_at(m, "object") && !strcmp(str_at(m, "object"), "model"));
        CHECK(num_at(m, "created") > 0);
        CHECK(str_at(m, "kind") != NULL);
        stories |= id && !strcmp(id, "stories");
        tiny |= id && !strcmp(id, "tiny");
    }
    CHECK(stories && tiny);
    arena_free(a);
    resp_free(&r);
    r = http(&A, "GET", "/v1/models/tiny", NULL, 0);
    CHECK(r.status == 200);
    resp_free(&r);
    r = http(&A, "GET", "/v1/models/..%2F..%2Fetc%2Fpasswd", NULL, 0);
    CHECK(r.status == 404);
    resp_free(&r);
}

static void t_chat_nonstream(void)
{
    char *body = chat_body("stories", "Once upon a time", "\"max_tokens\":24,\"temperature\":0");
    struct resp r = post(&A, "/v1/chat/completions", body);
    CHECK(r.status == 200);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    CHECK(str_at(j, "object") && !strcmp(str_at(j, "object"), "chat.completion"));
    CHECK(str_at(j, "id") && !strncmp(str_at(j, "id"), "chatcmpl-", 9));
    CHECK(str_at(j, "model") && !strcmp(str_at(j, "model"), "stories"));
    CHECK(str_at(j, "choices.0.message.role") &&
          !strcmp(str_at(j, "choices.0.message.role"), "assistant"));
    const char *c = str_at(j, "choices.0.message.content");
    CHECK(c && strlen(c) > 0);
    CHECK(num_at(j, "choices.0.index") == 0);
    double pt = num_at(j, "usage.prompt_tokens"), ct = num_at(j, "usage.completion_tokens");
    CHECK(pt > 0 && ct > 0 && ct <= 24);
    CHECK(num_at(j, "usage.total_tokens") == pt + ct);
    CHECK(num_at(j, "created") > 1.7e9);
    const char *f = str_at(j, "choices.0.finish_reason");
    CHECK(f && (!strcmp(f, "stop") || !strcmp(f, "length")));
    arena_free(a);
    resp_free(&r);
    free(body);
}

static void t_chat_stream_matches_nonstream(void)
{
    const char *models[] = { "stories", "tiny" };
    for (int k = 0; k < 2; k++) {
        char *b1 = chat_body(models[k], "Tell me about the sea.", "\"max_tokens\":48,\"temperature\":0");
        char *b2 = chat_body(models[k], "Tell me about the sea.",
                             "\"max_tokens\":48,\"temperature\":0,\"stream\":true,"
                             "\"stream_options\":{\"include_usage\":true}");
        struct resp r1 = post(&A, "/v1/chat/completions", b1);
        struct resp r2 = post(&A, "/v1/chat/completions", b2);
        CHECK(r1.status == 200 && r2.status == 200);
        CHECK(r2.headers.data && strcasestr(r2.headers.data, "Content-Type: text/event-stream"));
        char fin[16];
        char *whole = content_of(&r1, true, fin, sizeof fin);
        struct sse_result s = parse_sse(&r2.body, true);
        CHECK(s.all_json);
        CHECK(s.role_first);
        CHECK(s.done_last);
        CHECK(s.usage_seen);
        CHECK(!s.error_seen);
        CHECK(s.chunks >= 3);          /* role, text, finish (text may come in one send) */
        CHECK(whole && s.content.data && strcmp(whole, s.content.data) == 0);
        CHECK(!strcmp(s.finish, fin));
        if (whole && s.content.data && strcmp(whole, s.content.data))
            fprintf(stderr, "  [%s] non-stream %zu bytes vs stream %zu bytes\n", models[k],
                    strlen(whole), s.content.len);
        free(whole);
        buf_free(&s.content);
        resp_free(&r1);
        resp_free(&r2);
        free(b1);
        free(b2);
    }
}

static void t_completions(void)
{
    char *b = completion_body("stories", "Once upon a time", "\"max_tokens\":30,\"temperature\":0");
    struct resp r = post(&A, "/v1/completions", b);
    CHECK(r.status == 200);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    CHECK(str_at(j, "object") && !strcmp(str_at(j, "object"), "text_completion"));
    const char *t = str_at(j, "choices.0.text");
    /* stories260K, greedy, is known to continue with the girl named Lily */
    CHECK(t && strstr(t, "Lily"));
    CHECK(num_at(j, "usage.completion_tokens") == 30);
    CHECK(str_at(j, "choices.0.finish_reason") &&
          !strcmp(str_at(j, "choices.0.finish_reason"), "length"));
    arena_free(a);
    resp_free(&r);
    free(b);
    /* default max_tokens for completions is 16, as in OpenAI's API */
    b = completion_body("stories", "Once upon a time", "\"temperature\":0,\"ignore_eos\":true");
    r = post(&A, "/v1/completions", b);
    a = arena_new(0);
    j = parse(a, &r.body);
    CHECK(num_at(j, "usage.completion_tokens") == 16);
    arena_free(a);
    resp_free(&r);
    free(b);
    /* streamed completions */
    b = completion_body("stories", "Once upon a time",
                        "\"max_tokens\":30,\"temperature\":0,\"stream\":true");
    r = post(&A, "/v1/completions", b);
    struct sse_result s = parse_sse(&r.body, false);
    CHECK(r.status == 200 && s.done_last && s.all_json && !s.usage_seen);
    CHECK(s.content.data && strstr(s.content.data, "Lily"));
    CHECK(!strcmp(s.finish, "length"));
    buf_free(&s.content);
    resp_free(&r);
    free(b);
}

static void t_stop_sequences(void)
{
    char *b = completion_body("stories", "Once upon a time", "\"max_tokens\":40,\"temperature\":0");
    struct resp r = post(&A, "/v1/completions", b);
    char *full = content_of(&r, false, NULL, 0);
    resp_free(&r);
    free(b);
    CHECK(full && strlen(full) > 20);
    if (!full)
        return;
    /* pick a stop string from the middle of the greedy output */
    const char *stop = "Lily";
    const char *at = strstr(full, stop);
    CHECK(at != NULL);
    if (!at) {
        free(full);
        return;
    }
    size_t prefix = (size_t)(at - full);
    for (int stream = 0; stream < 2; stream++) {
        char extra[256];
        snprintf(extra, sizeof extra,
                 "\"max_tokens\":40,\"temperature\":0,\"stop\":[\"zzzq\",\"%s\"]%s", stop,
                 stream ? ",\"stream\":true" : "");
        b = completion_body("stories", "Once upon a time", extra);
        r = post(&A, "/v1/completions", b);
        char fin[16] = "";
        char *t;
        if (stream) {
            struct sse_result s = parse_sse(&r.body, false);
            t = s.content.data ? strdup(s.content.data) : strdup("");
            snprintf(fin, sizeof fin, "%s", s.finish);
            buf_free(&s.content);
        } else {
            t = content_of(&r, false, fin, sizeof fin);
        }
        CHECK(t && strlen(t) == prefix && strncmp(t, full, prefix) == 0);
        CHECK(!strcmp(fin, "stop"));
        CHECK(t && !strstr(t, stop));
        free(t);
        resp_free(&r);
        free(b);
    }
    /* a single string works as well as an array */
    b = completion_body("stories", "Once upon a time",
                        "\"max_tokens\":40,\"temperature\":0,\"stop\":\" named\"");
    r = post(&A, "/v1/completions", b);
    char *t = content_of(&r, false, NULL, 0);
    CHECK(t && !strstr(t, " named") && strstr(full, t) == full);
    free(t);
    resp_free(&r);
    free(b);
    free(full);
}

static void t_max_tokens_length(void)
{
    char *b = chat_body("tiny", "hi", "\"max_completion_tokens\":7,\"temperature\":0,\"ignore_eos\":true");
    struct resp r = post(&A, "/v1/chat/completions", b);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    CHECK(r.status == 200);
    CHECK(num_at(j, "usage.completion_tokens") == 7);
    CHECK(str_at(j, "choices.0.finish_reason") &&
          !strcmp(str_at(j, "choices.0.finish_reason"), "length"));
    arena_free(a);
    resp_free(&r);
    free(b);
}

struct conc {
    const char *model;
    char *body;
    char *out;
    bool chat;
};

static void *conc_main(void *arg)
{
    struct conc *c = arg;
    struct resp r = post(&A, c->chat ? "/v1/chat/completions" : "/v1/completions", c->body);
    c->out = r.status == 200 ? content_of(&r, c->chat, NULL, 0) : NULL;
    resp_free(&r);
    return NULL;
}

static void t_greedy_alone_vs_concurrent(void)
{
    const char *models[] = { "stories", "tiny" };
    for (int k = 0; k < 2; k++) {
        bool chat = k == 1;
        char *main_body = chat ? chat_body(models[k], "Write a line about fire.",
                                           "\"max_tokens\":64,\"temperature\":0,\"ignore_eos\":true")
                               : completion_body(models[k], "The little dog",
                                                 "\"max_tokens\":64,\"temperature\":0,\"ignore_eos\":true");
        struct conc alone = { models[k], main_body, NULL, chat };
        conc_main(&alone);
        CHECK(alone.out && strlen(alone.out) > 0);
        struct conc cs[4];
        const char *others[] = { "Once upon a time there was", "A cat sat",
                                 "The sun was hot and the children" };
        cs[0] = (struct conc){ models[k], main_body, NULL, chat };
        for (int i = 0; i < 3; i++)
            cs[i + 1] = (struct conc){
                models[k],
                chat ? chat_body(models[k], others[i], "\"max_tokens\":80,\"temperature\":0.9,\"seed\":7")
                     : completion_body(models[k], others[i], "\"max_tokens\":80,\"temperature\":0.9,\"seed\":7"),
                NULL, chat };
        pthread_t th[4];
        /* start the others first so the main request joins a busy batch */
        for (int i = 3; i >= 0; i--)
            pthread_create(&th[i], NULL, conc_main, &cs[i]);
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        CHECK(cs[0].out && alone.out && strcmp(cs[0].out, alone.out) == 0);
        if (cs[0].out && alone.out && strcmp(cs[0].out, alone.out))
            fprintf(stderr, "  [%s] alone: %.60s\n  [%s] conc.: %.60s\n", models[k], alone.out,
                    models[k], cs[0].out);
        for (int i = 1; i < 4; i++) {
            CHECK(cs[i].out != NULL);
            free(cs[i].out);
            free(cs[i].body);
        }
        free(cs[0].out);
        free(alone.out);
        free(main_body);
    }
}

static void t_errors(void)
{
    struct {
        const char *path, *body;
        long status;
        const char *code;
    } cases[] = {
        { "/v1/chat/completions", "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\"", 400, "invalid_json" },
        { "/v1/chat/completions", "[1,2]", 400, "invalid_json" },
        { "/v1/chat/completions", "{\"model\":\"stories\",\"messages\":\"hi\"}", 400, "invalid_type" },
        { "/v1/chat/completions", "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", 400, "invalid_type" },
        { "/v1/chat/completions", "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":5}", 400, "invalid_value" },
        { "/v1/chat/completions", "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-3}", 400, "invalid_value" },
        { "/v1/chat/completions", "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":3}", 400, "invalid_value" },
        { "/v1/chat/completions", "{\"model\":42,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "invalid_type" },
        { "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "missing_required_parameter" },
        { "/v1/chat/completions", "{\"model\":\"no-such-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404, "model_not_found" },
        { "/v1/chat/completions", "{\"model\":\"../../etc/passwd\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404, "model_not_found" },
        { "/v1/completions", "{\"model\":\"stories\",\"prompt\":7}", 400, "invalid_type" },
        { "/v1/nothing", "{}", 404, "unknown_url" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct resp r = post(&A, cases[i].path, cases[i].body);
        arena *a = arena_new(0);
        const json *j = parse(a, &r.body);
        if (r.status != cases[i].status || !is_error_shape(j, cases[i].code)) {
            fprintf(stderr, "  case %zu: got %ld %s\n", i, r.status, r.body.data ? r.body.data : "");
            cur_failed = 1;
        }
        CHECK(r.headers.data && strcasestr(r.headers.data, "Content-Type: application/json"));
        arena_free(a);
        resp_free(&r);
    }
    /* a prompt longer than the context is a 400 with OpenAI's code */
    buf big = buf_make(0);
    for (int i = 0; i < 3000; i++)
        buf_puts(&big, "word ");
    char *b = completion_body("stories", big.data, "\"max_tokens\":4");
    struct resp r = post(&A, "/v1/completions", b);
    arena *a = arena_new(0);
    CHECK(r.status == 400 && is_error_shape(parse(a, &r.body), "context_length_exceeded"));
    arena_free(a);
    resp_free(&r);
    free(b);
    buf_free(&big);
    /* body over --max-body (1M here) */
    size_t n = 2u << 20;
    char *huge = malloc(n);
    memset(huge, ' ', n);
    memcpy(huge, "{\"model\":\"stories\",\"prompt\":\"", 29);
    huge[n - 2] = '"';
    huge[n - 1] = '}';
    r = http(&A, "POST", "/v1/completions", huge, n);
    a = arena_new(0);
    CHECK(r.status == 413 && is_error_shape(parse(a, &r.body), "request_too_large"));
    arena_free(a);
    resp_free(&r);
    free(huge);
    CHECK(healthy(&A));
}

static void t_special_tokens_are_text(void)
{
    /* the tiny model's vocab has <|im_start|> as one control token; typed by a
     * user it must be plain text (many byte tokens), not that control token */
    char *b1 = chat_body("tiny", "<|im_start|>", "\"max_tokens\":1");
    char *b2 = chat_body("tiny", "x", "\"max_tokens\":1");
    struct resp r1 = post(&A, "/v1/chat/completions", b1);
    struct resp r2 = post(&A, "/v1/chat/completions", b2);
    arena *a = arena_new(0);
    double p1 = num_at(parse(a, &r1.body), "usage.prompt_tokens");
    double p2 = num_at(parse(a, &r2.body), "usage.prompt_tokens");
    CHECK(r1.status == 200 && r2.status == 200);
    CHECK(p1 > 0 && p2 > 0);
    CHECK(p1 - p2 >= 8);    /* 12 characters as text, vs 1 control token */
    arena_free(a);
    resp_free(&r1);
    resp_free(&r2);
    free(b1);
    free(b2);
}

static void t_prefix_reuse(void)
{
    const char *sys = "You are a helpful assistant who answers briefly and kindly. "
                      "You know a great deal about boats, the weather and the sea.";
    buf msgs = buf_make(0);
    buf_puts(&msgs, "[{\"role\":\"system\",\"content\":");
    jw_cstr(&msgs, sys);
    buf_puts(&msgs, "},{\"role\":\"user\",\"content\":\"What is a sloop?\"}");
    double prev_prompt = 0;
    for (int turn = 1; turn <= 3; turn++) {
        buf b = buf_make(0);
        buf_printf(&b, "{\"model\":\"tiny\",\"temperature\":0,\"max_tokens\":12,\"messages\":%s]}",
                   msgs.data);
        struct resp r = post(&A, "/v1/chat/completions", b.data);
        arena *a = arena_new(0);
        const json *j = parse(a, &r.body);
        CHECK(r.status == 200);
        double pt = num_at(j, "usage.prompt_tokens");
        double cached = num_at(j, "usage.prompt_tokens_details.cached_tokens");
        if (turn > 1) {
            /* the previous turn's prompt is not recomputed */
            CHECK(cached >= prev_prompt - 1);
            CHECK(cached < pt);
        }
        prev_prompt = pt;
        const char *ans = str_at(j, "choices.0.message.content");
        buf_puts(&msgs, ",{\"role\":\"assistant\",\"content\":");
        jw_cstr(&msgs, ans ? ans : "");
        buf_puts(&msgs, "},{\"role\":\"user\",\"content\":\"And then?\"}");
        arena_free(a);
        resp_free(&r);
        buf_free(&b);
    }
    buf_free(&msgs);
}

static void t_json_mode(void)
{
    char *b = chat_body("tiny", "Give me JSON.",
                        "\"max_tokens\":48,\"temperature\":0.7,\"seed\":3,"
                        "\"response_format\":{\"type\":\"json_object\"}");
    struct resp r = post(&A, "/v1/chat/completions", b);
    char fin[16];
    char *t = content_of(&r, true, fin, sizeof fin);
    CHECK(r.status == 200 && t);
    if (t) {
        const char *p = t;
        while (*p == ' ' || *p == '\n' || *p == '\t')
            p++;
        CHECK(*p == '{');
        if (!strcmp(fin, "stop")) {
            arena *a = arena_new(0);
            char e[64];
            CHECK(json_parse(a, t, strlen(t), e, sizeof e) != NULL);
            arena_free(a);
        }
    }
    free(t);
    resp_free(&r);
    free(b);
    b = chat_body("tiny", "x", "\"response_format\":{\"type\":\"json_schema\"}");
    r = post(&A, "/v1/chat/completions", b);
    CHECK(r.status == 400);
    resp_free(&r);
    free(b);
}

/* response_format json_schema on the real model: the answer is JSON valid
 * against the schema (greedy, so stream and whole agree), and a schema
 * keyword a grammar cannot enforce is a 400 naming it. */
#define CAT_SCHEMA "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12}," \
                   "\"age\":{\"type\":\"integer\"},\"color\":{\"enum\":[\"black\",\"white\",\"orange\"]}," \
                   "\"friends\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":8}," \
                   "\"maxItems\":3}},\"required\":[\"name\",\"age\",\"color\",\"friends\"]," \
                   "\"additionalProperties\":false}"

static void t_structured_outputs(void)
{
    const char *extra = "\"max_tokens\":400,\"temperature\":0,\"response_format\":{\"type\":"
                        "\"json_schema\",\"json_schema\":{\"name\":\"cat\",\"strict\":true,"
                        "\"schema\":" CAT_SCHEMA "}}";
    char *b = chat_body("stories", "Tell me about a cat.", extra);
    struct resp r = post(&A, "/v1/chat/completions", b);
    char fin[16];
    char *t = content_of(&r, true, fin, sizeof fin);
    CHECK(r.status == 200 && t && !strcmp(fin, "stop"));
    arena *a = arena_new(0);
    char e[64];
    const json *v = t ? json_parse(a, t, strlen(t), e, sizeof e) : NULL;
    CHECK(v && v->type == JSON_OBJECT && v->len == 4);
    const json *name = json_get(v, "name"), *age = json_get(v, "age");
    const json *color = json_get(v, "color"), *fr = json_get(v, "friends");
    CHECK(name && name->type == JSON_STRING && utf8_valid(name->str, name->len));
    CHECK(age && age->type == JSON_NUMBER && age->is_int);
    CHECK(color && (json_str_is(color, "black") || json_str_is(color, "white") ||
                    json_str_is(color, "orange")));
    CHECK(fr && fr->type == JSON_ARRAY && fr->len <= 3);
    for (const json *f = fr ? fr->child : NULL; f; f = f->next)
        CHECK(f->type == JSON_STRING);
    resp_free(&r);
    free(b);
    /* streamed: the same text */
    char sx[1024];
    snprintf(sx, sizeof sx, "%s,\"stream\":true", extra);
    b = chat_body("stories", "Tell me about a cat.", sx);
    r = post(&A, "/v1/chat/completions", b);
    struct sse_result sr = parse_sse(&r.body, true);
    CHECK(r.status == 200 && sr.all_json && sr.done_last && !strcmp(sr.finish, "stop"));
    CHECK(t && sr.content.data && !strcmp(sr.content.data, t));
    buf_free(&sr.content);
    resp_free(&r);
    free(b);
    free(t);
    arena_free(a);
    /* refused: what a grammar cannot hold the model to */
    b = chat_body("stories", "x", "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                                  "{\"name\":\"n\",\"schema\":{\"type\":\"object\",\"properties\":"
                                  "{\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"}}}}}");
    r = post(&A, "/v1/chat/completions", b);
    CHECK(r.status == 400 && r.body.data && strstr(r.body.data, "\"code\":\"invalid_schema\"") &&
          strstr(r.body.data, "properties.zip") && strstr(r.body.data, "pattern") &&
          strstr(r.body.data, "\"param\":\"response_format.json_schema.schema\""));
    resp_free(&r);
    free(b);
}

#define WEATHER_TOOLS "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"," \
    "\"description\":\"The weather in a city\",\"parameters\":{\"type\":\"object\",\"properties\":" \
    "{\"city\":{\"type\":\"string\",\"maxLength\":16},\"unit\":{\"enum\":[\"c\",\"f\"]}}," \
    "\"required\":[\"city\"]}}},{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]"

/* The one call in an answer: its name and arguments (parsed), from a whole
 * response or from the streamed chunks. */
static bool one_call(arena *a, const json *calls, char *name, size_t nl, const json **args,
                     char *id, size_t il)
{
    const json *c = calls && calls->type == JSON_ARRAY && calls->len == 1 ? calls->child : NULL;
    const char *n = str_at(c, "function.name"), *ar = str_at(c, "function.arguments");
    const char *ty = str_at(c, "type"), *cid = str_at(c, "id");
    if (!n || !ar || !ty || strcmp(ty, "function") || !cid)
        return false;
    snprintf(name, nl, "%s", n);
    snprintf(id, il, "%s", cid);
    char e[64];
    *args = json_parse(a, ar, strlen(ar), e, sizeof e);
    return *args && (*args)->type == JSON_OBJECT;
}

static void t_tool_calls(void)
{
    arena *a = arena_new(0);
    /* required, one call: a call held to the tool's parameters */
    const char *extra = "\"max_tokens\":200,\"temperature\":0," WEATHER_TOOLS
                        ",\"tool_choice\":\"required\",\"parallel_tool_calls\":false";
    char *b = chat_body("stories", "What is the weather in Oslo?", extra);
    struct resp r = post(&A, "/v1/chat/completions", b);
    const json *j = parse(a, &r.body);
    CHECK(r.status == 200 && str_at(j, "choices.0.finish_reason") &&
          !strcmp(str_at(j, "choices.0.finish_reason"), "tool_calls"));
    const json *msg = json_get(json_get(j, "choices")->child, "message");
    const json *content = json_get(msg, "content");
    CHECK(content && content->type == JSON_NULL);
    char name[64] = "", id[96] = "";
    const json *args = NULL;
    CHECK(one_call(a, json_get(msg, "tool_calls"), name, sizeof name, &args, id, sizeof id));
    CHECK(!strcmp(name, "get_weather") || !strcmp(name, "now"));
    if (!strcmp(name, "get_weather")) {
        const json *city = json_get(args, "city"), *unit = json_get(args, "unit");
        CHECK(city && city->type == JSON_STRING);
        CHECK(!unit || json_str_is(unit, "c") || json_str_is(unit, "f"));
    }
    CHECK(!strncmp(id, "call_", 5));
    resp_free(&r);
    free(b);
    /* streamed: role, then one chunk with the call, then the finish reason */
    char sx[2048];
    snprintf(sx, sizeof sx, "%s,\"stream\":true", extra);
    b = chat_body("stories", "What is the weather in Oslo?", sx);
    r = post(&A, "/v1/chat/completions", b);
    struct sse_result sr = parse_sse(&r.body, true);
    CHECK(r.status == 200 && sr.all_json && sr.done_last && !strcmp(sr.finish, "tool_calls"));
    CHECK(sr.content.len == 0);         /* no text besides the call */
    const char *tc = r.body.data ? strstr(r.body.data, "\"tool_calls\":") : NULL;
    const char *line = tc ? tc : NULL;
    while (line && line > r.body.data && line[-1] != '\n')
        line--;
    const char *eol = line ? strchr(line, '\n') : NULL;
    const json *chunk = line && eol ? json_parse(a, line + 6, (size_t)(eol - line - 6), (char[64]){0}, 64)
                                    : NULL;
    const json *delta = json_get(json_get(chunk, "choices")->child, "delta");
    char sname[64] = "", sid[96] = "";
    const json *sargs = NULL;
    CHECK(one_call(a, json_get(delta, "tool_calls"), sname, sizeof sname, &sargs, sid, sizeof sid));
    CHECK(num_at(json_get(delta, "tool_calls")->child, "index") == 0);
    CHECK(!strcmp(sname, name));        /* greedy: the same call */
    buf w1 = buf_make(0), w2 = buf_make(0);
    jw_value(&w1, args);
    jw_value(&w2, sargs);
    CHECK(w1.data && w2.data && !strcmp(w1.data, w2.data));
    buf_free(&w1);
    buf_free(&w2);
    buf_free(&sr.content);
    resp_free(&r);
    free(b);
    /* the conversation goes on with the result; its start is reused */
    buf conv = buf_make(0);
    buf_printf(&conv, "{\"model\":\"stories\",\"max_tokens\":8,\"temperature\":0," WEATHER_TOOLS ","
                      "\"messages\":[{\"role\":\"user\",\"content\":\"What is the weather in Oslo?\"},"
                      "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"%s\",\"type\":"
                      "\"function\",\"function\":{\"name\":\"%s\",\"arguments\":\"{}\"}}]},"
                      "{\"role\":\"tool\",\"tool_call_id\":\"%s\",\"content\":\"-3 C and snow\"}]}",
               id, name, id);
    r = post(&A, "/v1/chat/completions", conv.data);
    j = parse(a, &r.body);
    CHECK(r.status == 200 && str_at(j, "choices.0.message.content"));
    CHECK(num_at(j, "usage.prompt_tokens_details.cached_tokens") > 50);
    resp_free(&r);
    buf_free(&conv);
    /* auto: stories260K answers in text; nothing is taken for a call */
    b = chat_body("stories", "What is the weather in Oslo?",
                  "\"max_tokens\":24,\"temperature\":0," WEATHER_TOOLS);
    r = post(&A, "/v1/chat/completions", b);
    j = parse(a, &r.body);
    const char *fin = str_at(j, "choices.0.finish_reason");
    CHECK(r.status == 200 && str_at(j, "choices.0.message.content") && fin &&
          strcmp(fin, "tool_calls") && !json_get(json_get(json_get(j, "choices")->child, "message"),
                                                  "tool_calls"));
    resp_free(&r);
    free(b);
    /* refused */
    b = chat_body("stories", "x", WEATHER_TOOLS ",\"tool_choice\":{\"type\":\"function\","
                                  "\"function\":{\"name\":\"get_time\"}}");
    r = post(&A, "/v1/chat/completions", b);
    CHECK(r.status == 400 && strstr(r.body.data, "\"param\":\"tool_choice\""));
    resp_free(&r);
    free(b);
    arena_free(a);
}

/* logprobs: one entry a generated token, whose texts make the content, each
 * with its top alternatives (greedy: the chosen token is the first); the
 * streamed chunks carry the same entries as the whole answer. */
static void check_entries(const json *content, const char *text, int n_tokens, int top)
{
    CHECK(content && content->type == JSON_ARRAY && (int)content->len == n_tokens);
    buf joined = buf_make(0);
    for (const json *e = content ? content->child : NULL; e; e = e->next) {
        const char *tok = str_at(e, "token");
        const json *lp = json_get(e, "logprob"), *tops = json_get(e, "top_logprobs");
        const json *bytes = json_get(e, "bytes");
        CHECK(tok && lp && lp->type == JSON_NUMBER && lp->number <= 0 && isfinite(lp->number));
        CHECK(bytes && bytes->type == JSON_ARRAY && bytes->len == strlen(tok ? tok : ""));
        CHECK(tops && (int)tops->len == top);
        double prev = 0, mass = 0;
        for (const json *t = tops ? tops->child : NULL; t; t = t->next) {
            double v = num_at(t, "logprob");
            CHECK(v <= prev + 1e-12);       /* most likely first */
            prev = v;
            mass += exp(v);
        }
        CHECK(mass <= 1.0 + 1e-9);
        if (top > 0 && tops && tops->child) {
            CHECK(str_at(tops->child, "token") && tok && !strcmp(str_at(tops->child, "token"), tok));
            CHECK(fabs(num_at(tops->child, "logprob") - lp->number) < 1e-12);
        }
        if (tok)
            buf_puts(&joined, tok);
    }
    CHECK(joined.data && text && !strcmp(joined.data, text));
    buf_free(&joined);
}

static void t_logprobs(void)
{
    arena *a = arena_new(0);
    char *b = chat_body("stories", "Once upon a time",
                        "\"max_tokens\":12,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":3");
    struct resp r = post(&A, "/v1/chat/completions", b);
    const json *j = parse(a, &r.body);
    const char *text = str_at(j, "choices.0.message.content");
    CHECK(r.status == 200 && text && num_at(j, "usage.completion_tokens") == 12);
    const json *ch = json_get(j, "choices") ? json_get(j, "choices")->child : NULL;
    const json *whole = json_get(json_get(ch, "logprobs"), "content");
    check_entries(whole, text, 12, 3);
    resp_free(&r);
    free(b);
    /* streamed: each content chunk with its tokens' entries; together the same
     * (the same tokens; the numbers agree closely, not to the bit: the second
     * request reuses the first's cached prompt, computed in another batch) */
    b = chat_body("stories", "Once upon a time",
                  "\"max_tokens\":12,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":3,"
                  "\"stream\":true");
    r = post(&A, "/v1/chat/completions", b);
    int with = 0, k = 0;
    const json *we = whole ? whole->child : NULL;
    for (const char *p = r.body.data; p && (p = strstr(p, "data: {")); p++) {
        const char *eol = strchr(p, '\n');
        const json *c = eol ? json_parse(a, p + 6, (size_t)(eol - p - 6), (char[64]){0}, 64) : NULL;
        const json *c0 = json_get(c, "choices") ? json_get(c, "choices")->child : NULL;
        const json *lc = json_get(json_get(c0, "logprobs"), "content");
        const char *piece = str_at(c0, "delta.content");
        if (!lc || !lc->len)
            continue;
        with++;
        CHECK(piece && *piece);             /* entries come with their text */
        for (const json *e = lc->child; e; e = e->next, k++) {
            CHECK(we && str_at(e, "token") && str_at(we, "token") &&
                  !strcmp(str_at(e, "token"), str_at(we, "token")));
            CHECK(we && fabs(num_at(e, "logprob") - num_at(we, "logprob")) < 1e-3);
            we = we ? we->next : NULL;
        }
    }
    CHECK(with >= 1 && k == 12);
    resp_free(&r);
    free(b);
    /* without logprobs: null */
    b = chat_body("stories", "Once upon a time", "\"max_tokens\":2,\"temperature\":0");
    r = post(&A, "/v1/chat/completions", b);
    j = parse(a, &r.body);
    ch = json_get(j, "choices") ? json_get(j, "choices")->child : NULL;
    CHECK(r.status == 200 && json_get(ch, "logprobs") && json_get(ch, "logprobs")->type == JSON_NULL);
    resp_free(&r);
    free(b);
    arena_free(a);
}

/* Send a streaming request, read until the first content chunk, hang up. */
static bool stream_and_hang_up(struct daemon *d, const char *body)
{
    int fd = open_stream(d, body);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static void t_disconnect_frees_slot(void)
{
    /* B: one slot, no queue, a model slow enough that a full-context answer
     * takes far longer than this test waits */
    char *long_req = chat_body("slow", "Talk forever.",
                               "\"stream\":true,\"temperature\":0,\"ignore_eos\":true");
    char *short_req = chat_body("slow", "hi", "\"max_tokens\":2");
    CHECK(stream_and_hang_up(&B, long_req));
    /* first: while the slot was busy, a second request got 503 + Retry-After
     * (checked on a fresh long request that we keep open) */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long status = 0;
    int tries = 0;
    for (; tries < 300; tries++) {
        struct resp r = post(&B, "/v1/chat/completions", short_req);
        status = r.status;
        resp_free(&r);
        if (status == 200)
            break;
        usleep(50000);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(status == 200);
    /* the cancelled job ended early: the log says how many tokens it made */
    FILE *f = fopen(B.log, "r");
    char line[1024];
    int cancelled_tokens = -1;
    while (f && fgets(line, sizeof line, f)) {
        char *p = strstr(line, "cancelled after ");
        if (p)
            cancelled_tokens = atoi(p + 16);
    }
    if (f)
        fclose(f);
    CHECK(cancelled_tokens >= 1 && cancelled_tokens < 2000);
    /* and the audit log says the client left */
    char audit[700];
    snprintf(audit, sizeof audit, "%s/audit.log", B.dir);
    CHECK(log_holds(audit, "\"path\":\"/v1/chat/completions\",\"model\":\"slow\",\"status\":200,"
                           "\"outcome\":\"client_gone\"", 5));
    free(long_req);
    free(short_req);
}

static void *hold_stream(void *arg)
{
    char *body = arg;
    struct resp r = post(&B, "/v1/chat/completions", body);
    resp_free(&r);
    return NULL;
}

static void t_queue_full_503(void)
{
    /* occupy B's only slot with a bounded stream, then ask again */
    char *busy = chat_body("slow", "Talk.", "\"stream\":true,\"temperature\":0,\"ignore_eos\":true,"
                                            "\"max_tokens\":400");
    pthread_t th;
    pthread_create(&th, NULL, hold_stream, busy);
    char *req = chat_body("slow", "hi", "\"max_tokens\":2");
    bool saw_503 = false;
    for (int i = 0; i < 100 && !saw_503; i++) {
        usleep(20000);
        struct resp r = post(&B, "/v1/chat/completions", req);
        if (r.status == 503) {
            arena *a = arena_new(0);
            CHECK(is_error_shape(parse(a, &r.body), "server_busy"));
            CHECK(r.headers.data && strcasestr(r.headers.data, "Retry-After: "));
            arena_free(a);
            saw_503 = true;
        }
        resp_free(&r);
    }
    CHECK(saw_503);
    pthread_join(th, NULL);
    struct resp r = post(&B, "/v1/chat/completions", req);
    CHECK(r.status == 200);
    resp_free(&r);
    free(req);
    free(busy);
}

static void t_openai_node_client(void)
{
    const char *script = getenv("HEARTH_NODE_TEST");
    CHECK(script && *script);
    if (!script)
        return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "node '%s' http://127.0.0.1:%d/v1 tiny", script, A.port);
    int rc = system(cmd);
    CHECK(rc == 0);
}

static void t_cli(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/hearth' --url http://127.0.0.1:%d run stories 'Once upon a time' "
             "--max-tokens 20 --temperature 0 > '%s/cli.out'", g_build, A.port, g_tmp);
    CHECK(system(cmd) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/cli.out", g_tmp);
    FILE *f = fopen(path, "r");
    char out[4096] = "";
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    CHECK(n > 5);
    snprintf(cmd, sizeof cmd, "'%s/hearth' --url http://127.0.0.1:%d models | grep -q tiny",
             g_build, A.port);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "'%s/hearth' --url http://127.0.0.1:%d health >/dev/null", g_build,
             A.port);
    CHECK(system(cmd) == 0);
    /* interactive chat keeps the conversation: two turns from stdin */
    snprintf(cmd, sizeof cmd, "printf 'Hello\\nAgain\\n' | '%s/hearth' --url http://127.0.0.1:%d "
             "run tiny --max-tokens 4 --temperature 0 >/dev/null", g_build, A.port);
    CHECK(system(cmd) == 0);
    /* a daemon that is not running: clear error, non-zero exit */
    snprintf(cmd, sizeof cmd, "'%s/hearth' --url http://127.0.0.1:1 health 2>'%s/cli.err'",
             g_build, g_tmp);
    CHECK(system(cmd) != 0);
    snprintf(path, sizeof path, "%s/cli.err", g_tmp);
    f = fopen(path, "r");
    n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strstr(out, "cannot reach hearthd") != NULL);
}

/* --stream-interval: 0 sends every token's text, 1000 the first piece at
 * once and the rest together at the end (48 tokens of stories260K take far
 * less than a second); the text and the usage are the same either way. */
static void t_stream_interval(void)
{
    char model[600];
    snprintf(model, sizeof model, "stories=%s/models/stories260K.gguf", g_shared);
    char *every[] = { "--model", model, "--threads", "2", "--stream-interval", "0", NULL };
    char *rare[] = { "--model", model, "--threads", "2", "--stream-interval", "1000", NULL };
    struct daemon e = { 0 }, r = { 0 };
    CHECK(start_daemon(&e, "interval-0", every) == 0);
    CHECK(start_daemon(&r, "interval-1000", rare) == 0);
    if (e.pid <= 0 || r.pid <= 0)
        goto out;
    char *body = chat_body("stories", "Tell me about the sea.",
                           "\"max_tokens\":48,\"temperature\":0,\"ignore_eos\":true,"
                           "\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    struct daemon *ds[] = { &e, &A, &r };
    struct sse_result res[3];
    double held_s = 0;          /* how long the held stream took */
    for (int i = 0; i < 3; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct resp x = post(ds[i], "/v1/chat/completions", body);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (i == 2)
            held_s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
        CHECK(x.status == 200);
        res[i] = parse_sse(&x.body, true);
        CHECK(res[i].all_json && res[i].done_last && !res[i].error_seen);
        CHECK(res[i].completion_tokens == 48);
        resp_free(&x);
    }
    for (int i = 1; i < 3; i++)
        CHECK(res[0].content.data && res[i].content.data &&
              strcmp(res[0].content.data, res[i].content.data) == 0);
    /* role, text pieces, finish, usage. The daemon also merges pieces that
     * queue up while it writes, so how many chunks every-token sending gives
     * depends on the machine's pace (48 tokens of this model take a few ms):
     * only the held stream's bound is certain: the first piece, one a second
     * (on a loaded machine this tiny model's 48 tokens can take seconds),
     * and the rest. */
    CHECK(res[2].chunks <= 3 + 2 + (int)held_s);
    CHECK(res[0].chunks >= 3 && res[1].chunks >= 3);
    for (int i = 0; i < 3; i++)
        buf_free(&res[i].content);
    free(body);
out:
    if (e.pid > 0)
        stop_daemon(&e);
    if (r.pid > 0)
        stop_daemon(&r);
}

/* A real model with Q4_0 layer matrices: hearth's kernels (engine/kernels.h)
 * take them when the CPU has AVX-512 VNNI, and the greedy text is the text
 * ggml's own kernels give. */
static void kernels_same_text(const char *type)
{
    char model[600];
    snprintf(model, sizeof model, "st4=%s/stories-%s.gguf", g_tmp, type);
    char *on_args[] = { "--model", model, "--threads", "2", "--parallel", "2", NULL };
    char *off_args[] = { "--model", model, "--threads", "2", "--parallel", "2", "--kernels", "off",
                         NULL };
    struct daemon on = { 0 }, off = { 0 };
    CHECK(start_daemon(&on, "kernels-on", on_args) == 0);
    CHECK(start_daemon(&off, "kernels-off", off_args) == 0);
    if (on.pid <= 0 || off.pid <= 0)
        goto out;
    /* a prompt long enough for ggml's four-row kernel, and a greedy answer */
    const char *body = "{\"model\":\"st4\",\"prompt\":\"Once upon a time, there was a little "
                       "girl named Lily. She loved to play\",\"max_tokens\":48,\"temperature\":0}";
    struct resp a = post(&on, "/v1/completions", body), b = post(&off, "/v1/completions", body);
    CHECK(a.status == 200 && b.status == 200);
    char *ta = content_of(&a, false, NULL, 0), *tb = content_of(&b, false, NULL, 0);
    CHECK(ta && tb && strlen(ta) > 20);
    CHECK(ta && tb && strcmp(ta, tb) == 0);
    if (ta && tb && strcmp(ta, tb) != 0)
        fprintf(stderr, "  kernels on:  %s\n  kernels off: %s\n", ta, tb);
    free(ta);
    free(tb);
    resp_free(&a);
    resp_free(&b);

    /* what each daemon says it computes on */
    arena *ar = arena_new(0);
    struct resp s1 = http(&on, "GET", "/v1/status", NULL, 0);
    struct resp s0 = http(&off, "GET", "/v1/status", NULL, 0);
    const char *b1 = str_at(parse(ar, &s1.body), "models.0.backend");
    const char *b0 = str_at(parse(ar, &s0.body), "models.0.backend");
    CHECK(b0 && strcmp(b0, "cpu") == 0);
    bool vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl");
    CHECK(b1 && strcmp(b1, vnni ? "cpu+vnni" : "cpu") == 0);
    resp_free(&s1);
    resp_free(&s0);
    arena_free(ar);
out:
    if (on.pid > 0)
        stop_daemon(&on);
    if (off.pid > 0)
        stop_daemon(&off);
}

static void t_q4_kernels_same_text(void)
{
    kernels_same_text("q4_0");
}

/* the same for Q8_0 layer matrices, which hearth multiplies with its own
 * dot product (ggml keeps them unrepacked) */
static void t_q8_kernels_same_text(void)
{
    kernels_same_text("q8_0");
}

/* Raw requests no client library sends: two Content-Length headers (which
 * would let a body carry a second request) get a 400, and a connection that
 * never finishes its headers does not hold its place for --timeout. */
static void t_raw_http(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)A.port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tmo = { .tv_sec = 30 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    const char *body = "{\"model\":\"tiny\",\"prompt\":\"hi\",\"max_tokens\":2}";
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 5\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    CHECK(write(fd, req, (size_t)n) == n);
    char got[512] = { 0 };
    ssize_t k = read(fd, got, sizeof got - 1);
    CHECK(k > 0 && strncmp(got, "HTTP/1.1 400", 12) == 0);
    CHECK(strstr(got, "invalid_request") != NULL);
    close(fd);
    /* half a request line: closed by the daemon after its 15 s header timeout
     * (this daemon's --timeout is longer) */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(write(fd, "GE", 2) == 2);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    k = read(fd, got, sizeof got);                  /* 0: closed */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(k <= 0);
    CHECK(waited > 10000 && waited < 29000);
    close(fd);
    CHECK(healthy(&A));
    /* %00 in a path does not cut the name short: "tiny%00x" is not "tiny" */
    struct resp z = http(&A, "GET", "/v1/models/tiny%00x", NULL, 0);
    CHECK(z.status == 404);
    resp_free(&z);
    z = http(&A, "GET", "/v1/models/t%69ny", NULL, 0);     /* other escapes still decode */
    CHECK(z.status == 200);
    resp_free(&z);
    /* a known path with the wrong method: 405 with the methods it takes */
    const struct {
        const char *method, *path, *allow;
    } wrong[] = { { "GET", "/v1/models/tiny/load", "Allow: POST" },
                  { "POST", "/v1/models/tiny", "Allow: GET" },
                  { "PUT", "/v1/chat/completions", "Allow: POST" },
                  { "DELETE", "/v1/models", "Allow: GET" } };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        struct resp r = http(&A, wrong[i].method, wrong[i].path, "{}", 2);
        CHECK(r.status == 405);
        CHECK(r.headers.data && strstr(r.headers.data, wrong[i].allow));
        CHECK(r.body.data && strstr(r.body.data, "method_not_allowed"));
        resp_free(&r);
    }
}

/* A stopped daemon's audit log into text (cap bytes with the NUL); its
 * length, 0 when it cannot be read. */
static size_t read_audit(const struct daemon *d, char *text, size_t cap)
{
    char path[700];
    snprintf(path, sizeof path, "%s/audit.log", d->dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        text[0] = '\0';
        return 0;
    }
    size_t n = fread(text, 1, cap - 1, f);
    text[n] = '\0';
    fclose(f);
    return n;
}

/* A daemon with API keys: everything but the health check needs one, the
 * audit log names keys but never holds one. */
static void t_api_keys_and_audit(void)
{
    struct daemon C;
    char keys[600], tiny[600];
    snprintf(keys, sizeof keys, "%s/keys", g_tmp);
    FILE *f = fopen(keys, "w");
    if (f) {
        fputs("# who may ask\nalice alice-secret-0001\n", f);
        fclose(f);
    }
    snprintf(tiny, sizeof tiny, "tiny=%s/tiny.gguf", g_tmp);
    char *args[] = { "--model", tiny, "--api-key", "sk-plain-key-0002", "--api-key-file", keys,
                     "--threads", "2", NULL };
    char stale[700];
    snprintf(stale, sizeof stale, "%s/daemonKeys/audit.log", g_tmp);
    unlink(stale);              /* a rerun in the same folder starts a fresh log */
    if (start_daemon(&C, "daemonKeys", args) < 0) {
        CHECK(0);
        return;
    }
    struct resp r = http(&C, "GET", "/health", NULL, 0);
    CHECK(r.status == 200);
    resp_free(&r);
    r = http(&C, "GET", "/v1/models", NULL, 0);
    CHECK(answer_is_error(&r, 401, "invalid_api_key"));
    CHECK(r.headers.data && strstr(r.headers.data, "WWW-Authenticate: Bearer"));
    resp_free(&r);
    r = http(&C, "GET", "/no/such/url", NULL, 0);       /* no route is told without a key */
    CHECK(r.status == 401);
    resp_free(&r);
    r = http_full(&C, "GET", "/v1/models", NULL, "Authorization: Bearer alice-secret-0002", NULL, 0);
    CHECK(r.status == 401 && r.body.data && strstr(r.body.data, "Incorrect API key"));
    resp_free(&r);
    r = http_full(&C, "GET", "/v1/models", NULL, "Authorization: Bearer sk-plain-key-0002", NULL, 0);
    CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "tiny"));
    resp_free(&r);
    const char *body = "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"max_tokens\":2}";
    r = http_full(&C, "POST", "/v1/chat/completions", "application/json",
                  "X-Api-Key: alice-secret-0001", body, strlen(body));
    CHECK(r.status == 200);
    resp_free(&r);
    r = post(&C, "/v1/chat/completions", body);
    CHECK(r.status == 401);
    resp_free(&r);
    r = http_full(&C, "POST", "/v1/models/tiny/load", "application/json",
                  "Authorization: Bearer sk-plain-key-0002", "{}", 2);
    CHECK(r.status == 200);
    resp_free(&r);
    /* an upload without a key: refused before its body is read */
    size_t big = 4u << 20;
    char *blob = malloc(big);
    if (blob) {
        memset(blob, 'x', big);
        r = http_typed(&C, "POST", "/v1/audio/transcriptions",
                       "multipart/form-data; boundary=zz", blob, big);
        CHECK(r.status == 401);
        resp_free(&r);
        free(blob);
    }
    /* the metrics: behind the key too; requests by route and status, tokens by model */
    r = http(&C, "GET", "/metrics", NULL, 0);
    CHECK(r.status == 401);
    resp_free(&r);
    r = http_full(&C, "GET", "/metrics", NULL, "Authorization: Bearer sk-plain-key-0002", NULL, 0);
    CHECK(r.status == 200 && r.headers.data && strstr(r.headers.data, "text/plain; version=0.0.4"));
    const char *m = r.body.data ? r.body.data : "";
    CHECK(strstr(m, "hearth_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1\n"));
    CHECK(strstr(m, "hearth_requests_total{route=\"/v1/chat/completions\",status=\"401\"} 1\n"));
    CHECK(strstr(m, "hearth_requests_total{route=\"other\",status=\"401\"} 1\n"));
    CHECK(strstr(m, "hearth_requests_total{route=\"/v1/models\",status=\"401\"} 2\n"));
    CHECK(strstr(m, "hearth_requests_total{route=\"/v1/audio/transcriptions\",status=\"401\"} 1\n"));
    CHECK(strstr(m, "hearth_model_requests_total{model=\"tiny\"} 1\n"));
    CHECK(strstr(m, "hearth_completion_tokens_total{model=\"tiny\"} "));
    CHECK(strstr(m, "hearth_model_info{model=\"tiny\",kind=\"chat\",state=\""));
    CHECK(strstr(m, "# TYPE hearth_prompt_tokens_total counter\n"));
    const char *pt = strstr(m, "hearth_prompt_tokens_total{model=\"tiny\"} ");
    CHECK(pt && atoi(pt + strlen("hearth_prompt_tokens_total{model=\"tiny\"} ")) > 0);
    resp_free(&r);
    /* the CLI sends $HEARTH_API_KEY */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "HEARTH_API_KEY=alice-secret-0001 '%s/hearth' --url "
             "http://127.0.0.1:%d models | grep -q tiny", g_build, C.port);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "HEARTH_API_KEY= '%s/hearth' --url http://127.0.0.1:%d models "
             ">/dev/null 2>&1", g_build, C.port);
    CHECK(system(cmd) != 0);
    CHECK(stop_daemon(&C) == 0);
    /* the audit log: a line per request, key names, no key */
    static char text[1 << 17];
    size_t n = read_audit(&C, text, sizeof text);
    CHECK(n > 0);
    int lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    CHECK(lines >= 13);
    CHECK(strstr(text, "secret") == NULL && strstr(text, "sk-plain") == NULL);
    CHECK(strstr(text, "\"key\":\"alice\",\"method\":\"POST\",\"path\":\"/v1/chat/completions\","
                       "\"model\":\"tiny\",\"status\":200,\"outcome\":\"ok\"") != NULL);
    CHECK(strstr(text, "\"key\":null,\"method\":\"POST\",\"path\":\"/v1/chat/completions\","
                       "\"model\":null,\"status\":401") != NULL);
    CHECK(strstr(text, "\"key\":\"key-1\",\"method\":\"GET\",\"path\":\"/v1/models\"") != NULL);
    CHECK(strstr(text, "\"client\":\"127.0.0.1\"") != NULL);
    CHECK(strstr(text, "\"path\":\"/v1/models/tiny/load\",\"model\":\"tiny\",\"status\":200"));
    /* the chat's cost: tokens in and out, compute time; none for a refused request */
    const char *chat = strstr(text, "\"key\":\"alice\",\"method\":\"POST\"");
    const char *eol = chat ? strchr(chat, '\n') : NULL;
    const char *tin = chat ? strstr(chat, "\"tokens_in\":") : NULL;
    CHECK(tin && eol && tin < eol && atoi(tin + 12) > 0);
    CHECK(chat && strstr(chat, "\"compute_ms\":") && strstr(chat, "\"compute_ms\":") < eol);
    const char *refused = strstr(text, "\"status\":401");
    eol = refused ? strchr(refused, '\n') : NULL;
    CHECK(refused && eol && !memmem(refused, (size_t)(eol - refused), "tokens_in", 9));
}

/* A request with "Authorization: Bearer key"; its status. */
static long as_key(struct daemon *d, const char *key, const char *method, const char *path,
                   const char *body, char *code, size_t cn)
{
    char h[300];
    snprintf(h, sizeof h, "Authorization: Bearer %s", key);
    struct resp r = http_full(d, method, path, body ? "application/json" : NULL, h, body,
                              body ? strlen(body) : 0);
    if (code && cn) {
        const char *c = r.body.data ? strstr(r.body.data, "\"code\":\"") : NULL;
        snprintf(code, cn, "%.*s", c ? (int)strcspn(c + 8, "\"") : 0, c ? c + 8 : "");
    }
    long st = r.status;
    resp_free(&r);
    return st;
}

/* Keys with scopes: each key reaches what its scopes cover and gets 403
 * insufficient_permissions (before any body is read) for the rest; the
 * audit log names the refused key. */
static void t_key_scopes(void)
{
    struct daemon C;
    char keys[600], tiny[600];
    snprintf(keys, sizeof keys, "%s/scoped-keys", g_tmp);
    FILE *f = fopen(keys, "w");
    if (f) {
        fputs("owner  owner-key-00001\n"
              "kid    kid-key-0000002  infer\n"
              "tablet tablet-key-00003 infer,search\n"
              "prom   prom-key-0000004 monitor\n"
              "scan   scan-key-0000005 jobs\n"
              "script script-key-00006 infer 4/h\n", f);
        fclose(f);
    }
    snprintf(tiny, sizeof tiny, "tiny=%s/tiny.gguf", g_tmp);
    char *args[] = { "--model", tiny, "--api-key-file", keys, "--threads", "2", NULL };
    char stale[700];
    snprintf(stale, sizeof stale, "%s/daemonScopes/audit.log", g_tmp);
    unlink(stale);
    if (start_daemon(&C, "daemonScopes", args) < 0) {
        CHECK(0);
        return;
    }
    const char *chat = "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"hi\"}],\"max_tokens\":2}";
    const char *search = "{\"query\":\"notes\"}";
    static const struct {
        const char *key, *method, *path;
        int body;           /* 1: the chat body, 2: the search body */
        long want;
    } cases[] = {
        { "kid-key-0000002", "POST", "/v1/chat/completions", 1, 200 },
        { "kid-key-0000002", "GET", "/v1/models", 0, 200 },
        { "kid-key-0000002", "GET", "/v1/models/tiny", 0, 200 },
        { "kid-key-0000002", "POST", "/v1/models/tiny/load", 0, 403 },
        { "kid-key-0000002", "GET", "/metrics", 0, 403 },
        { "kid-key-0000002", "GET", "/v1/status", 0, 403 },
        { "kid-key-0000002", "POST", "/v1/search", 2, 403 },
        { "kid-key-0000002", "POST", "/v1/ask", 2, 403 },
        { "kid-key-0000002", "GET", "/v1/index", 0, 403 },
        { "kid-key-0000002", "GET", "/v1/index/documents", 0, 403 },
        { "kid-key-0000002", "GET", "/v1/jobs", 0, 403 },
        { "kid-key-0000002", "GET", "/v1/jobs/job_1", 0, 403 },
        { "kid-key-0000002", "DELETE", "/v1/jobs/job_1", 0, 403 },
        { "tablet-key-00003", "POST", "/v1/search", 2, 200 },
        { "tablet-key-00003", "GET", "/v1/index", 0, 200 },
        { "tablet-key-00003", "POST", "/v1/chat/completions", 1, 200 },
        { "tablet-key-00003", "POST", "/v1/index/folders", 0, 403 },
        { "tablet-key-00003", "DELETE", "/v1/index/folders", 0, 403 },
        { "tablet-key-00003", "POST", "/v1/index/rescan", 0, 403 },
        { "tablet-key-00003", "GET", "/v1/index/check", 0, 403 },
        { "prom-key-0000004", "GET", "/metrics", 0, 200 },
        { "prom-key-0000004", "GET", "/v1/status", 0, 200 },
        { "prom-key-0000004", "GET", "/v1/index/check", 0, 200 },
        { "prom-key-0000004", "POST", "/v1/chat/completions", 1, 403 },
        { "prom-key-0000004", "POST", "/v1/models/tiny/unload", 0, 403 },
        { "scan-key-0000005", "GET", "/v1/jobs", 0, 200 },
        { "scan-key-0000005", "GET", "/v1/jobs/job_1", 0, 404 },
        { "scan-key-0000005", "POST", "/v1/embeddings", 0, 403 },
        { "scan-key-0000005", "POST", "/v1/ocr", 0, 403 },
        { "owner-key-00001", "POST", "/v1/models/tiny/load", 0, 200 },
        { "owner-key-00001", "GET", "/metrics", 0, 200 },
        { "owner-key-00001", "GET", "/v1/jobs", 0, 200 },
        { "owner-key-00001", "POST", "/v1/search", 2, 200 },
        { "owner-key-00001", "POST", "/v1/chat/completions", 1, 200 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char code[64];
        const char *body = cases[i].body == 1 ? chat : cases[i].body == 2 ? search : NULL;
        long st = as_key(&C, cases[i].key, cases[i].method, cases[i].path, body, code,
                         sizeof code);
        if (st != cases[i].want)
            fprintf(stderr, "  %s %s %s: %ld (%s), expected %ld\n", cases[i].key,
                    cases[i].method, cases[i].path, st, code, cases[i].want);
        CHECK(st == cases[i].want);
        if (cases[i].want == 403)
            CHECK(!strcmp(code, "insufficient_permissions"));
    }
    /* the message says which scope is missing */
    struct resp r = http_full(&C, "POST", "/v1/search", "application/json",
                              "X-Api-Key: kid-key-0000002", search, strlen(search));
    CHECK(answer_is_error(&r, 403, "insufficient_permissions"));
    CHECK(r.body.data && strstr(r.body.data, "'kid'") && strstr(r.body.data, "'search'"));
    resp_free(&r);
    r = http_full(&C, "POST", "/v1/models/tiny/unload", "application/json",
                  "X-Api-Key: tablet-key-00003", "{}", 2);
    CHECK(answer_is_error(&r, 403, "insufficient_permissions"));
    CHECK(r.body.data && strstr(r.body.data, "'admin'"));
    resp_free(&r);
    /* refused before the body is read: a large upload gets its 403 at once */
    size_t big = 8u << 20;
    char *blob = malloc(big);
    if (blob) {
        memset(blob, 'x', big);
        r = http_full(&C, "POST", "/v1/jobs", "multipart/form-data; boundary=zz",
                      "Authorization: Bearer kid-key-0000002", blob, big);
        CHECK(answer_is_error(&r, 403, "insufficient_permissions"));
        resp_free(&r);
        free(blob);
    }
    /* a key with a rate: 4 requests an hour, then 429 with Retry-After; the
     * refused ones do not count, and other keys are not held */
    for (int i = 0; i < 4; i++)
        CHECK(as_key(&C, "script-key-00006", "GET", "/v1/models", NULL, NULL, 0) == 200);
    for (int i = 0; i < 3; i++) {
        r = http_full(&C, "GET", "/v1/models", NULL, "Authorization: Bearer script-key-00006",
                      NULL, 0);
        CHECK(answer_is_error(&r, 429, "rate_limit_exceeded"));
        CHECK(r.body.data && strstr(r.body.data, "\"type\":\"requests\"") &&
              strstr(r.body.data, "4 requests per hour"));
        const char *ra = r.headers.data ? strcasestr(r.headers.data, "Retry-After: ") : NULL;
        CHECK(ra && atoi(ra + 13) > 800 && atoi(ra + 13) <= 900);
        resp_free(&r);
    }
    CHECK(as_key(&C, "kid-key-0000002", "GET", "/v1/models", NULL, NULL, 0) == 200);
    /* a wrong key is still 401, whatever the route */
    CHECK(as_key(&C, "nobody-key-00000", "GET", "/v1/models", NULL, NULL, 0) == 401);
    /* the CLI reports the refusal */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "HEARTH_API_KEY=kid-key-0000002 '%s/hearth' --url "
             "http://127.0.0.1:%d search notes 2>&1 | grep -q 'search'", g_build, C.port);
    CHECK(system(cmd) == 0);
    /* the key file edited and re-read (SIGHUP): the kid may search now, the
     * tablet may no longer chat, the script's rate is lifted, a new key works */
    f = fopen(keys, "w");
    if (f) {
        fputs("owner  owner-key-00001\n"
              "kid    kid-key-0000002  infer,search\n"
              "tablet tablet-key-00003 search\n"
              "prom   prom-key-0000004 monitor\n"
              "scan   scan-key-0000005 jobs\n"
              "script script-key-00006 infer\n"
              "guest  guest-key-000007 infer 1/h\n", f);
        fclose(f);
    }
    CHECK(kill(C.pid, SIGHUP) == 0);
    bool reloaded = false;
    for (int i = 0; i < 100 && !reloaded; i++) {
        reloaded = as_key(&C, "kid-key-0000002", "POST", "/v1/search", search, NULL, 0) == 200;
        if (!reloaded)
            usleep(100000);
    }
    CHECK(reloaded);
    char code[64];
    CHECK(as_key(&C, "tablet-key-00003", "POST", "/v1/chat/completions", chat, code,
                 sizeof code) == 403);
    CHECK(!strcmp(code, "insufficient_permissions"));
    CHECK(as_key(&C, "script-key-00006", "GET", "/v1/models", NULL, NULL, 0) == 200);
    CHECK(as_key(&C, "guest-key-000007", "GET", "/v1/models", NULL, NULL, 0) == 200);
    CHECK(as_key(&C, "guest-key-000007", "GET", "/v1/models", NULL, NULL, 0) == 429);
    CHECK(stop_daemon(&C) == 0);
    static char text[1 << 17];
    CHECK(read_audit(&C, text, sizeof text) > 0);
    CHECK(strstr(text, "\"key\":\"kid\",\"method\":\"POST\",\"path\":\"/v1/search\"") != NULL);
    CHECK(strstr(text, "\"status\":403") != NULL);
    CHECK(strstr(text, "\"key\":\"script\",\"method\":\"GET\",\"path\":\"/v1/models\","
                       "\"model\":null,\"status\":429") != NULL);
    CHECK(strstr(text, "key-0000") == NULL);    /* names only, never a key */
}

/* This machine's first IPv4 address that is not loopback, or "" */
static void lan_address(char *out, size_t n)
{
    out[0] = '\0';
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i && !out[0]; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !(i->ifa_flags & IFF_LOOPBACK))
            inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, out,
                      (socklen_t)n);
    freeifaddrs(ifs);
}

static long status_at(const char *ip, int port, const char *path, const char *header)
{
    char url[128];
    snprintf(url, sizeof url, "http://%s:%d%s", ip, port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
    buf body = buf_make(0);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    if (h)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    buf_free(&body);
    return status;
}

/* Guessing keys from the network: after 10 wrong keys an address gets 429
 * for the rest of the minute, even with the right key; loopback is not
 * counted. Needs an address other than loopback to reach the daemon by. */
static void t_key_guessing_slowed(void)
{
    char ip[64];
    lan_address(ip, sizeof ip);
    if (!ip[0]) {
        printf("  no address but loopback on this machine: guessing from the network "
               "not tried\n");
        return;
    }
    struct daemon D;
    char tiny[600];
    snprintf(tiny, sizeof tiny, "tiny=%s/tiny.gguf", g_tmp);
    char *args[] = { "--listen", "0.0.0.0:0", "--model", tiny, "--api-key", "right-key-000001",
                     NULL };
    if (start_daemon(&D, "daemonLan", args) < 0) {
        CHECK(0);
        return;
    }
    CHECK(status_at(ip, D.port, "/v1/models", "Authorization: Bearer right-key-000001") == 200);
    for (int i = 0; i < 10; i++)
        CHECK(status_at(ip, D.port, "/v1/models", "Authorization: Bearer wrong-key-00000") == 401);
    CHECK(status_at(ip, D.port, "/v1/models", "Authorization: Bearer wrong-key-00000") == 429);
    CHECK(status_at(ip, D.port, "/v1/models", "Authorization: Bearer right-key-000001") == 429);
    CHECK(status_at(ip, D.port, "/health", NULL) == 200);
    CHECK(status_at("127.0.0.1", D.port, "/v1/models", "Authorization: Bearer right-key-000001") ==
          200);
    CHECK(stop_daemon(&D) == 0);
}

/* Damaged weights give NaN scores: the request fails loudly (500, streamed
 * or not), nothing is sampled from them, and the daemon goes on. */
static void t_damaged_model_is_loud(void)
{
    char *body = chat_body("damaged", "hello", "\"max_tokens\":4");
    struct resp r = post(&A, "/v1/chat/completions", body);
    CHECK(answer_is_error(&r, 500, "bad_model_output"));
    resp_free(&r);
    free(body);
    body = chat_body("damaged", "hello", "\"max_tokens\":4,\"stream\":true");
    r = post(&A, "/v1/chat/completions", body);
    CHECK(r.body.data && strstr(r.body.data, "bad_model_output"));
    resp_free(&r);
    free(body);
    CHECK(chat_status(&A, "tiny", "still fine", "\"max_tokens\":2") == 200);
    CHECK(healthy(&A));
}

static void t_sigterm_exits_cleanly(void)
{
    CHECK(healthy(&A));
    CHECK(stop_daemon(&A) == 0);
    CHECK(stop_daemon(&B) == 0);
}

int main(void)
{
    g_build = getenv("HEARTH_BUILD");
    g_shared = getenv("HEARTH_SHARED");
    g_tmp = getenv("HEARTH_TMP");
    if (!g_build || !g_shared || !g_tmp) {
        fprintf(stderr, "e2e: set HEARTH_BUILD, HEARTH_SHARED and HEARTH_TMP (tests/run.sh does)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char stories[600], tiny[600], slow[600];
    snprintf(stories, sizeof stories, "stories=%s/models/stories260K.gguf", g_shared);
    snprintf(tiny, sizeof tiny, "tiny=%s/tiny.gguf", g_tmp);
    snprintf(slow, sizeof slow, "slow=%s/slow.gguf", g_tmp);
    char damaged[700];
    if (damaged_model("tiny.gguf", damaged, sizeof damaged) < 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    char *argsA[] = { "--model", stories, "--model", tiny, "--model", damaged, "--parallel", "4",
                      "--ctx-size", "2048",
                      "--threads", "2", "--max-body", "1M", NULL };
    char *argsB[] = { "--model", slow, "--parallel", "1", "--queue-size", "0", "--ctx-size", "8192",
                      "--threads", "2", NULL };
    if (start_daemon(&A, "daemonA", argsA) < 0 || start_daemon(&B, "daemonB", argsB) < 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    run("health_and_models", t_health_and_models);
    run("chat_nonstream", t_chat_nonstream);
    run("chat_stream_matches_nonstream", t_chat_stream_matches_nonstream);
    run("completions", t_completions);
    run("stop_sequences", t_stop_sequences);
    run("max_tokens_length", t_max_tokens_length);
    run("greedy_alone_vs_concurrent", t_greedy_alone_vs_concurrent);
    run("errors", t_errors);
    run("special_tokens_are_text", t_special_tokens_are_text);
    run("prefix_reuse", t_prefix_reuse);
    run("json_mode", t_json_mode);
    run("structured_outputs", t_structured_outputs);
    run("tool_calls", t_tool_calls);
    run("logprobs", t_logprobs);
    run("disconnect_frees_slot", t_disconnect_frees_slot);
    run("queue_full_503", t_queue_full_503);
    run("openai_node_client", t_openai_node_client);
    run("cli", t_cli);
    run("stream_interval", t_stream_interval);
    run("q4_kernels_same_text", t_q4_kernels_same_text);
    run("q8_kernels_same_text", t_q8_kernels_same_text);
    run("raw_http", t_raw_http);
    run("api_keys_and_audit", t_api_keys_and_audit);
    run("key_scopes", t_key_scopes);
    run("key_guessing_slowed", t_key_guessing_slowed);
    run("damaged_model_is_loud", t_damaged_model_is_loud);
    run("sigterm_exits_cleanly", t_sigterm_exits_cleanly);
    if (A.pid > 0)
        stop_daemon(&A);
    if (B.pid > 0)
        stop_daemon(&B);
    curl_global_cleanup();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
