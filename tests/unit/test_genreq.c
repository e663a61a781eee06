/*
 * test_genreq.c: unit tests for src/http/genreq.c (OpenAI request validation).
 * The .c is included so the test links it alone (it is not in src/core).
 */
#include "http/genreq.c"

#include "check.h"

static arena *A;   /* holds the parsed payloads of one test */

/* Parse body; on success return the payload parsed as JSON (in A). */
static const json *ok_req(gen_kind kind, const char *body, gen_request *g)
{
    gen_error e;
    int rc = genreq_parse(kind, body, strlen(body), g, &e);
    if (rc != 0) {
        fprintf(stderr, "  unexpected error %d param='%s' code='%s': %s\n", e.status, e.param,
                e.code, e.message);
        return NULL;
    }
    if (!A)
        A = arena_new(0);
    char err[128];
    const json *v = json_parse(A, g->payload.data, g->payload.len, err, sizeof err);
    if (!v)
        fprintf(stderr, "  payload is not JSON (%s): %s\n", err, g->payload.data);
    return v;
}

/* Expect a 400 with the given param and code (code NULL: any). */
static int err_req(gen_kind kind, const char *body, const char *param, const char *code)
{
    gen_request g;
    gen_error e;
    int rc = genreq_parse(kind, body, strlen(body), &g, &e);
    int ok = rc == -1 && e.status == 400 && strcmp(e.param, param) == 0 &&
             (!code || strcmp(e.code, code) == 0) && e.message[0] != '\0';
    if (!ok)
        fprintf(stderr, "  body %s\n    -> rc=%d status=%d param='%s' code='%s' msg='%s'\n", body,
                rc, e.status, e.param, e.code, e.message);
    if (rc == 0)
        buf_free(&g.payload);
    /* on error the payload is released */
    if (rc != 0 && (g.payload.data != NULL || g.payload.len != 0))
        ok = 0;
    return ok;
}

#define CHAT_ERR(body, param, code) CHECK(err_req(GEN_CHAT, body, param, code))
#define COMP_ERR(body, param, code) CHECK(err_req(GEN_COMPLETION, body, param, code))

static int str_is(const json *v, const char *s)
{
    return v && v->type == JSON_STRING && v->len == strlen(s) && memcmp(v->str, s, v->len) == 0;
}

static int num_is(const json *v, double x)
{
    return v && v->type == JSON_NUMBER && fabs(v->number - x) < 1e-6;
}

static int int_is(const json *v, long long x)
{
    return v && v->type == JSON_NUMBER && v->is_int && v->integer == x;
}

#define M "\"model\":\"llama\""

TEST(full_chat_request)
{
    gen_request g;
    const char *body =
        "{" M ",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Hi \\\"there\\\"\\n\\u00e9\"},"
        "{\"role\":\"assistant\",\"content\":\"Hello.\"},"
        "{\"role\":\"user\",\"content\":\"Again\",\"name\":\"bob\"}],"
        "\"max_tokens\":100,\"max_completion_tokens\":50,\"temperature\":0.7,"
        "\"top_p\":0.9,\"top_k\":40,\"min_p\":0.05,\"seed\":-12345,"
        "\"presence_penalty\":-1.5,\"frequency_penalty\":2,\"stop\":\"END\","
        "\"response_format\":{\"type\":\"json_object\"},\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"ignore_eos\":true,"
        "\"user\":\"someone\",\"unknown_field\":{\"x\":[1,2]},\"n\":1,\"logprobs\":false,"
        "\"tools\":[]}";
    const json *p = ok_req(GEN_CHAT, body, &g);
    CHECK(p && p->type == JSON_OBJECT);
    if (!p)
        return;
    CHECK_STR(g.model, "llama");
    CHECK(g.kind == GEN_CHAT);
    CHECK(g.stream);
    CHECK(g.include_usage);
    CHECK(str_is(json_get(p, "kind"), "chat"));
    const json *ms = json_get(p, "messages");
    CHECK(ms && ms->type == JSON_ARRAY && ms->len == 4);
    if (ms && ms->len == 4) {
        const json *m0 = ms->child, *m1 = m0->next, *m2 = m1->next, *m3 = m2->next;
        CHECK(str_is(json_get(m0, "role"), "system"));
        CHECK(str_is(json_get(m0, "content"), "Be brief."));
        CHECK(str_is(json_get(m1, "role"), "user"));
        CHECK(str_is(json_get(m1, "content"), "Hi \"there\"\n\xC3\xA9"));
        CHECK(str_is(json_get(m2, "role"), "assistant"));
        CHECK(str_is(json_get(m2, "content"), "Hello."));
        CHECK(str_is(json_get(m3, "role"), "user"));
        CHECK(str_is(json_get(m3, "content"), "Again"));
        CHECK_EQ_INT(m3->len, 2);                    /* only role and content */
    }
    CHECK(int_is(json_get(p, "max_tokens"), 50));    /* max_completion_tokens wins */
    CHECK(json_get(p, "max_completion_tokens") == NULL);
    CHECK(num_is(json_get(p, "temperature"), 0.7));
    CHECK(num_is(json_get(p, "top_p"), 0.9));
    CHECK(int_is(json_get(p, "top_k"), 40));
    CHECK(num_is(json_get(p, "min_p"), 0.05));
    CHECK(int_is(json_get(p, "seed"), -12345));
    CHECK(num_is(json_get(p, "presence_penalty"), -1.5));
    CHECK(num_is(json_get(p, "frequency_penalty"), 2));
    const json *stop = json_get(p, "stop");
    CHECK(stop && stop->type == JSON_ARRAY && stop->len == 1);
    if (stop && stop->len == 1)
        CHECK(str_is(stop->child, "END"));
    /* JSON mode: the grammar of any JSON object */
    const json *js = json_get(p, "grammar");
    CHECK(js && js->type == JSON_STRING && strstr(js->str, "s0 ::= object\n") &&
          strstr(js->str, "root ::= s0\n"));
    const json *ie = json_get(p, "ignore_eos");
    CHECK(ie && ie->type == JSON_BOOL && ie->boolean);
    /* nothing from the client beyond the known fields */
    CHECK(json_get(p, "model") == NULL);
    CHECK(json_get(p, "stream") == NULL);
    CHECK(json_get(p, "user") == NULL);
    CHECK(json_get(p, "unknown_field") == NULL);
    CHECK(json_get(p, "prompt") == NULL);
    buf_free(&g.payload);
}

TEST(minimal_chat_request)
{
    gen_request g;
    const json *p =
        ok_req(GEN_CHAT, "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &g);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(!g.stream && !g.include_usage);
    CHECK_EQ_INT(p->len, 2);                         /* kind, messages only */
    CHECK(str_is(json_get(p, "kind"), "chat"));
    CHECK(json_get(p, "max_tokens") == NULL);        /* chat: engine default */
    CHECK(json_get(p, "grammar") == NULL);
    CHECK(json_get(p, "stop") == NULL);
    buf_free(&g.payload);
}

TEST(max_tokens_alone)
{
    gen_request g;
    const json *p = ok_req(
        GEN_CHAT, "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":7}",
        &g);
    CHECK(p && int_is(json_get(p, "max_tokens"), 7));
    if (p)
        buf_free(&g.payload);
    p = ok_req(GEN_CHAT,
               "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
               "\"max_completion_tokens\":9,\"max_tokens\":null}",
               &g);
    CHECK(p && int_is(json_get(p, "max_tokens"), 9));
    if (p)
        buf_free(&g.payload);
    /* a null max_completion_tokens falls back to max_tokens */
    p = ok_req(GEN_CHAT,
               "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
               "\"max_completion_tokens\":null,\"max_tokens\":11}",
               &g);
    CHECK(p && int_is(json_get(p, "max_tokens"), 11));
    if (p)
        buf_free(&g.payload);
}

TEST(content_parts_joined)
{
    gen_request g;
    const json *p = ok_req(GEN_CHAT,
                           "{" M ",\"messages\":[{\"role\":\"user\",\"content\":["
                           "{\"type\":\"text\",\"text\":\"part one\"},"
                           "{\"type\":\"text\",\"text\":\"part two\"},"
                           "{\"type\":\"text\",\"text\":\"\"}]}]}",
                           &g);
    CHECK(p != NULL);
    if (!p)
        return;
    const json *ms = json_get(p, "messages");
    CHECK(ms && ms->len == 1);
    if (ms && ms->child)
        CHECK(str_is(json_get(ms->child, "content"), "part one\npart two\n"));
    buf_free(&g.payload);

    /* an empty parts array is empty text */
    p = ok_req(GEN_CHAT, "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[]}]}", &g);
    CHECK(p != NULL);
    if (p) {
        ms = json_get(p, "messages");
        CHECK(ms && ms->child && str_is(json_get(ms->child, "content"), ""));
        buf_free(&g.payload);
    }
}

TEST(assistant_without_content)
{
    gen_request g;
    const json *p = ok_req(GEN_CHAT,
                           "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                           "{\"role\":\"assistant\",\"content\":null},"
                           "{\"role\":\"assistant\"},"
                           "{\"role\":\"developer\",\"content\":\"d\"},"
                           "{\"role\":\"tool\",\"content\":\"t\"}]}",
                           &g);
    CHECK(p != NULL);
    if (!p)
        return;
    const json *ms = json_get(p, "messages");
    CHECK(ms && ms->len == 5);
    if (ms && ms->len == 5) {
        const json *m1 = ms->child->next, *m2 = m1->next;
        CHECK(str_is(json_get(m1, "content"), ""));
        CHECK(str_is(json_get(m2, "content"), ""));
        CHECK(str_is(json_get(m2->next, "role"), "developer"));
        /* a tool's result is a user turn in <tool_response> tags */
        CHECK(str_is(json_get(m2->next->next, "role"), "user"));
        CHECK(str_is(json_get(m2->next->next, "content"), "<tool_response>\nt\n</tool_response>"));
    }
    buf_free(&g.payload);
}

TEST(completion_requests)
{
    gen_request g;
    const json *p = ok_req(GEN_COMPLETION, "{" M ",\"prompt\":\"Once upon\"}", &g);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(g.kind == GEN_COMPLETION);
    CHECK(str_is(json_get(p, "kind"), "completion"));
    CHECK(str_is(json_get(p, "prompt"), "Once upon"));
    CHECK(int_is(json_get(p, "max_tokens"), 16));    /* OpenAI's default */
    CHECK(json_get(p, "messages") == NULL);
    buf_free(&g.payload);

    p = ok_req(GEN_COMPLETION, "{" M ",\"prompt\":[\"one string\"],\"max_tokens\":3}", &g);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(str_is(json_get(p, "prompt"), "one string"));
    CHECK(int_is(json_get(p, "max_tokens"), 3));
    buf_free(&g.payload);

    p = ok_req(GEN_COMPLETION,
               "{" M ",\"prompt\":\"\",\"echo\":false,\"best_of\":1,\"stop\":[\"\\n\",\"##\"]}",
               &g);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(str_is(json_get(p, "prompt"), ""));
    const json *stop = json_get(p, "stop");
    CHECK(stop && stop->len == 2 && str_is(stop->child, "\n") && str_is(stop->child->next, "##"));
    buf_free(&g.payload);
}

TEST(null_optionals_absent)
{
    gen_request g;
    const json *p = ok_req(GEN_CHAT,
                           "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                           "\"temperature\":null,\"top_p\":null,\"top_k\":null,\"min_p\":null,"
                           "\"seed\":null,\"presence_penalty\":null,\"frequency_penalty\":null,"
                           "\"max_tokens\":null,\"max_completion_tokens\":null,\"stop\":null,"
                           "\"response_format\":null,\"stream\":null,\"stream_options\":null,"
                           "\"n\":null,\"logprobs\":null,\"tools\":null,\"ignore_eos\":null,"
                           "\"best_of\":null,\"echo\":null,\"suffix\":null}",
                           &g);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK_EQ_INT(p->len, 2);
    CHECK(json_get(p, "temperature") == NULL);
    CHECK(json_get(p, "max_tokens") == NULL);
    CHECK(json_get(p, "stop") == NULL);
    CHECK(!g.stream);
    buf_free(&g.payload);
}

TEST(response_format_text)
{
    gen_request g;
    const json *p = ok_req(GEN_CHAT,
                           "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                           "\"response_format\":{\"type\":\"text\"}}",
                           &g);
    CHECK(p && json_get(p, "grammar") == NULL);
    if (p)
        buf_free(&g.payload);
}

TEST(range_edges_accepted)
{
    gen_request g;
    const json *p = ok_req(GEN_CHAT,
                           "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                           "\"temperature\":0,\"top_p\":1,\"top_k\":0,\"min_p\":0,"
                           "\"presence_penalty\":2,\"frequency_penalty\":-2,\"max_tokens\":1}",
                           &g);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(num_is(json_get(p, "temperature"), 0));
    CHECK(num_is(json_get(p, "top_p"), 1));
    CHECK(int_is(json_get(p, "max_tokens"), 1));
    buf_free(&g.payload);

    p = ok_req(GEN_CHAT,
               "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
               "\"temperature\":2,\"max_tokens\":16777216}",
               &g);
    CHECK(p && num_is(json_get(p, "temperature"), 2));
    CHECK(p && int_is(json_get(p, "max_tokens"), 16777216));
    if (p)
        buf_free(&g.payload);
}

TEST(stop_limits_accepted)
{
    /* 16 stops of 256 bytes each: the maximum */
    buf b = buf_make(0);
    buf_puts(&b, "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[");
    for (int i = 0; i < TS_MAX_STOPS; i++) {
        if (i)
            buf_putc(&b, ',');
        buf_putc(&b, '"');
        for (int k = 0; k < TS_MAX_STOP_LEN; k++)
            buf_putc(&b, (char)('a' + (i + k) % 26));
        buf_putc(&b, '"');
    }
    buf_puts(&b, "]}");
    gen_request g;
    const json *p = ok_req(GEN_CHAT, b.data, &g);
    CHECK(p != NULL);
    if (p) {
        const json *s = json_get(p, "stop");
        CHECK(s && s->len == TS_MAX_STOPS);
        CHECK(s && s->child && s->child->len == TS_MAX_STOP_LEN);
        buf_free(&g.payload);
    }
    buf_free(&b);
}

/* ---- errors ------------------------------------------------------------- */

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"

TEST(errors_model)
{
    CHAT_ERR("{" MSGS "}", "model", "missing_required_parameter");
    CHAT_ERR("{\"model\":5," MSGS "}", "model", "invalid_type");
    CHAT_ERR("{\"model\":null," MSGS "}", "model", NULL);
    CHAT_ERR("{\"model\":\"\"," MSGS "}", "model", NULL);
    CHAT_ERR("{\"model\":[\"m\"]," MSGS "}", "model", NULL);
    CHAT_ERR("{\"model\":\"a\\u0000b\"," MSGS "}", "model", NULL);
    CHAT_ERR("{\"model\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"," MSGS
             "}",
             "model", NULL);                         /* 65 bytes */
    COMP_ERR("{\"prompt\":\"x\"}", "model", "missing_required_parameter");
}

TEST(errors_body)
{
    CHAT_ERR("{" M ",", "", "invalid_json");
    CHAT_ERR("", "", "invalid_json");
    CHAT_ERR("{" M "," MSGS "} trailing", "", "invalid_json");
    CHAT_ERR("[{" M "," MSGS "}]", "", "invalid_json");
    CHAT_ERR("\"just a string\"", "", "invalid_json");
    CHAT_ERR("null", "", "invalid_json");
}

TEST(errors_messages)
{
    CHAT_ERR("{" M "}", "messages", "missing_required_parameter");
    CHAT_ERR("{" M ",\"messages\":[]}", "messages", "invalid_value");
    CHAT_ERR("{" M ",\"messages\":{\"role\":\"user\",\"content\":\"x\"}}", "messages",
             "invalid_type");
    CHAT_ERR("{" M ",\"messages\":\"hi\"}", "messages", "invalid_type");
    CHAT_ERR("{" M ",\"messages\":null}", "messages", NULL);
    CHAT_ERR("{" M ",\"messages\":[\"hi\"]}", "messages[0]", "invalid_type");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"wizard\","
             "\"content\":\"x\"}]}",
             "messages[1].role", "invalid_value");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"User\",\"content\":\"x\"}]}", "messages[0].role",
             "invalid_value");
    CHAT_ERR("{" M ",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", "invalid_type");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":1,\"content\":\"x\"}]}", "messages[0].role",
             "invalid_type");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\"}]}", "messages[0].content",
             "missing_required_parameter");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content",
             "missing_required_parameter");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content",
             "invalid_type");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
             "\"image_url\":{\"url\":\"http://x/y.png\"}}]}]}",
             "messages[0].content", "unsupported_content");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
             "\"text\":\"a\"},{\"type\":\"image_url\"}]}]}",
             "messages[0].content", "unsupported_content");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":[\"plain\"]}]}",
             "messages[0].content", "invalid_type");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"}]}]}",
             "messages[0].content", "invalid_type");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
             "messages[0].content", "invalid_type");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
             "\"text\":7}]}]}",
             "messages[0].content", "invalid_type");
}

TEST(errors_prompt)
{
    COMP_ERR("{" M "}", "prompt", "missing_required_parameter");
    COMP_ERR("{" M ",\"prompt\":5}", "prompt", "invalid_type");
    COMP_ERR("{" M ",\"prompt\":[]}", "prompt", "invalid_type");
    COMP_ERR("{" M ",\"prompt\":[\"a\",\"b\"]}", "prompt", "invalid_type");
    COMP_ERR("{" M ",\"prompt\":[1]}", "prompt", "invalid_type");
    COMP_ERR("{" M ",\"prompt\":[[\"a\"]]}", "prompt", "invalid_type");
    /* a chat body is not a completion body */
    COMP_ERR("{" M "," MSGS "}", "prompt", "missing_required_parameter");
}

TEST(errors_numbers)
{
    CHAT_ERR("{" M "," MSGS ",\"temperature\":\"hot\"}", "temperature", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"temperature\":true}", "temperature", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"temperature\":3}", "temperature", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"temperature\":-0.1}", "temperature", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"top_p\":1.5}", "top_p", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"top_k\":-1}", "top_k", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"top_k\":2.5}", "top_k", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"min_p\":2}", "min_p", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"seed\":1.5}", "seed", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"presence_penalty\":2.5}", "presence_penalty", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"frequency_penalty\":-3}", "frequency_penalty", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"max_tokens\":0}", "max_tokens", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"max_tokens\":-5}", "max_tokens", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"max_tokens\":1.5}", "max_tokens", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"max_tokens\":\"10\"}", "max_tokens", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"max_tokens\":16777217}", "max_tokens", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"max_completion_tokens\":0}", "max_completion_tokens",
             "invalid_value");
    /* max_completion_tokens wins, so a bad max_tokens beside it is not looked at */
    gen_request g;
    const json *p = ok_req(GEN_CHAT, "{" M "," MSGS ",\"max_completion_tokens\":4,\"max_tokens\":0}",
                           &g);
    CHECK(p && int_is(json_get(p, "max_tokens"), 4));
    if (p)
        buf_free(&g.payload);
    COMP_ERR("{" M ",\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens", "invalid_value");
}

TEST(errors_unsupported)
{
    CHAT_ERR("{" M "," MSGS ",\"n\":2}", "n", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"n\":0}", "n", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"n\":\"1\"}", "n", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"n\":1.5}", "n", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"tools\":[{\"type\":\"function\"}]}", "tools[0]",
             "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"tools\":{}}", "tools", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"functions\":[{\"name\":\"f\"}]}", "functions",
             "unsupported_parameter");
    CHAT_ERR("{" M "," MSGS ",\"logprobs\":3}", "logprobs", "invalid_type");
    COMP_ERR("{" M ",\"prompt\":\"x\",\"logprobs\":3}", "logprobs", "unsupported_parameter");
    COMP_ERR("{" M ",\"prompt\":\"x\",\"best_of\":2}", "best_of", "unsupported_parameter");
    COMP_ERR("{" M ",\"prompt\":\"x\",\"echo\":true}", "echo", "unsupported_parameter");
    COMP_ERR("{" M ",\"prompt\":\"x\",\"suffix\":\"end\"}", "suffix", "unsupported_parameter");
    CHAT_ERR("{" M "," MSGS ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":1}}",
             "response_format.json_schema", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"response_format\":{\"type\":\"xml\"}}",
             "response_format.type", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"response_format\":\"json_object\"}", "response_format",
             "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"response_format\":{}}", "response_format", "invalid_type");
}

TEST(errors_stream)
{
    CHAT_ERR("{" M "," MSGS ",\"stream_options\":{\"include_usage\":true}}", "stream_options",
             "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"stream\":false,\"stream_options\":{\"include_usage\":true}}",
             "stream_options", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"stream\":true,\"stream_options\":true}", "stream_options",
             "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
             "stream_options.include_usage", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"stream\":\"yes\"}", "stream", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"ignore_eos\":1}", "ignore_eos", "invalid_type");

    gen_request g;
    const json *p = ok_req(GEN_CHAT,
                           "{" M "," MSGS ",\"stream\":true,\"stream_options\":{}}", &g);
    CHECK(p != NULL);
    CHECK(g.stream && !g.include_usage);
    if (p)
        buf_free(&g.payload);
}

TEST(errors_stop)
{
    buf b = buf_make(0);
    buf_puts(&b, "{" M "," MSGS ",\"stop\":[");
    for (int i = 0; i < TS_MAX_STOPS + 1; i++)
        buf_puts(&b, i ? ",\"s\"" : "\"s\"");
    buf_puts(&b, "]}");
    CHAT_ERR(b.data, "stop", "invalid_value");

    buf_reset(&b);
    buf_puts(&b, "{" M "," MSGS ",\"stop\":[\"ok\",\"");
    for (int i = 0; i < 300; i++)
        buf_putc(&b, 'x');
    buf_puts(&b, "\"]}");
    CHAT_ERR(b.data, "stop", "invalid_value");

    buf_reset(&b);
    buf_puts(&b, "{" M "," MSGS ",\"stop\":\"");
    for (int i = 0; i < TS_MAX_STOP_LEN + 1; i++)
        buf_putc(&b, 'x');
    buf_puts(&b, "\"}");
    CHAT_ERR(b.data, "stop", "invalid_value");
    buf_free(&b);

    CHAT_ERR("{" M "," MSGS ",\"stop\":5}", "stop", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"stop\":[\"a\",null]}", "stop", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"stop\":{\"a\":1}}", "stop", "invalid_type");
}

TEST(error_order)
{
    /* malformed JSON beats everything; model is checked before messages */
    CHAT_ERR("{\"messages\":[]", "", "invalid_json");
    CHAT_ERR("{\"messages\":[]}", "model", "missing_required_parameter");
}

/* ---- bugs ------------------------------------------------------------------
 * BUG (src/http/genreq.c): the payload buf is capped at len*2+4096, but jw_str
 * writes a raw DEL byte (0x7f, legal unescaped in JSON) as the 6-byte
 * "\u007f". A body with a few thousand DEL bytes in a message content (or
 * prompt, or stop strings) overflows the cap; content_text / prompt_field
 * return jw_str's -1 (and stop_field the failed buf_putc) without calling
 * bad(), so genreq_parse returns -1 with e->status == 0 and empty
 * code/message. chat.c then calls http_reply_error(r, 0, ...), i.e.
 * MHD_queue_response with status 0, instead of answering 400/413.
 * stop_field ignores jw_str's result altogether: with 16 stops of 256 DEL
 * bytes genreq_parse returns 0 with a truncated, malformed payload
 * (`...\u007f",,,,,,,,]}`) that is sent to the worker.
 */
static int error_is_filled(gen_kind kind, const char *body, size_t len)
{
    gen_request g;
    gen_error e;
    int rc = genreq_parse(kind, body, len, &g, &e);
    if (rc == 0) {
        /* accepting it would also be fine, but only with a well-formed payload */
        arena *a = arena_new(0);
        char err[128];
        int ok = json_parse(a, g.payload.data, g.payload.len, err, sizeof err) != NULL;
        if (!ok)
            fprintf(stderr, "  rc=0 but the payload is not valid JSON (%s)\n", err);
        arena_free(a);
        buf_free(&g.payload);
        return ok;
    }
    if (!(e.status >= 400 && e.status < 500 && e.code[0] && e.message[0])) {
        fprintf(stderr, "  rc=-1 but status=%d code='%s' message='%s'\n", e.status, e.code,
                e.message);
        return 0;
    }
    return 1;
}

TEST(bug_payload_cap_error_not_filled)
{
    buf b = buf_make(0);
    buf_puts(&b, "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 5000; i++)
        buf_putc(&b, 0x7f);
    buf_puts(&b, "\"}]}");
    CHECK(error_is_filled(GEN_CHAT, b.data, b.len));

    buf_reset(&b);
    buf_puts(&b, "{" M ",\"prompt\":\"");
    for (int i = 0; i < 5000; i++)
        buf_putc(&b, 0x7f);
    buf_puts(&b, "\"}");
    CHECK(error_is_filled(GEN_COMPLETION, b.data, b.len));

    buf_reset(&b);
    buf_puts(&b, "{" M ",\"prompt\":\"x\",\"stop\":[");
    for (int i = 0; i < TS_MAX_STOPS; i++) {
        buf_puts(&b, i ? ",\"" : "\"");
        for (int k = 0; k < TS_MAX_STOP_LEN; k++)
            buf_putc(&b, 0x7f);
        buf_putc(&b, '"');
    }
    buf_puts(&b, "]}");
    CHECK(error_is_filled(GEN_COMPLETION, b.data, b.len));
    buf_free(&b);
}

/* BUG (src/http/genreq.c, genreq_parse): the parse arena is capped at
 * len*4+65536 bytes, but every JSON node costs 96 bytes (+16 per string), so
 * a short-message conversation needs ~11x its size. A valid 31 KB body of
 * 1000 {"role":"user","content":"hi"} messages (far below MAX_MESSAGES = 4096
 * and the 8 MB max-body) is rejected as 400 invalid_json "We could not parse
 * the JSON body of your request (document too large ...)". */
TEST(bug_many_short_messages_rejected_as_invalid_json)
{
    buf b = buf_make(0);
    buf_puts(&b, "{" M ",\"messages\":[");
    for (int i = 0; i < 1000; i++)
        buf_puts(&b, i ? ",{\"role\":\"user\",\"content\":\"hi\"}"
                       : "{\"role\":\"user\",\"content\":\"hi\"}");
    buf_puts(&b, "]}");
    gen_request g;
    const json *p = ok_req(GEN_CHAT, b.data, &g);
    CHECK(p != NULL);
    if (p) {
        const json *ms = json_get(p, "messages");
        CHECK(ms && ms->len == 1000);
        buf_free(&g.payload);
    }
    buf_free(&b);
}

/* BUG (src/http/genreq.c, messages_field): the role is compared with strcmp,
 * which stops at an embedded NUL, so "user\u0000anything" passes validation
 * and is copied (with its full length) into the payload. Same for a content
 * part type "text\u0000x" and response_format type "json_object\u0000x". */
TEST(bug_role_with_embedded_nul_accepted)
{
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\\u0000x\",\"content\":\"hi\"}]}",
             "messages[0].role", "invalid_value");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\\u0000x\","
             "\"text\":\"a\"}]}]}",
             "messages[0].content", "unsupported_content");
    CHAT_ERR("{" M "," MSGS ",\"response_format\":{\"type\":\"json_object\\u0000x\"}}",
             "response_format.type", "invalid_value");
}


#define TOOL_W "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"d\"," \
               "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}," \
               "\"required\":[\"city\"]}}}"
#define TOOL_A "{\"type\":\"function\",\"function\":{\"name\":\"add\"}}"

TEST(json_schema_grammar_in_payload)
{
    gen_request g;
    const json *p = ok_req(GEN_CHAT,
                           "{" M "," MSGS ",\"response_format\":{\"type\":\"json_schema\","
                           "\"json_schema\":{\"name\":\"x\",\"strict\":true,\"schema\":{\"type\":"
                           "\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
                           "\"required\":[\"a\"],\"additionalProperties\":false}}}}",
                           &g);
    CHECK(p != NULL);
    if (!p)
        return;
    const json *gr = json_get(p, "grammar");
    CHECK(gr && gr->type == JSON_STRING && strstr(gr->str, "root ::= ") &&
          strstr(gr->str, "\"\\\"a\\\"\""));
    CHECK(json_get(p, "grammar_trigger") == NULL && !strstr(gr->str, "s0 ::= object"));
    CHECK(!g.tools);
    buf_free(&g.payload);
    /* no schema: any JSON object */
    p = ok_req(GEN_CHAT, "{" M "," MSGS ",\"response_format\":{\"type\":\"json_schema\","
                         "\"json_schema\":{\"name\":\"x\"}}}", &g);
    CHECK(p && json_get(p, "grammar") && strstr(json_get(p, "grammar")->str, "s0 ::= object"));
    if (p)
        buf_free(&g.payload);
    /* a keyword the grammar cannot enforce is refused, naming where */
    CHAT_ERR("{" M "," MSGS ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
             "{\"name\":\"x\",\"schema\":{\"type\":\"object\",\"properties\":{\"z\":"
             "{\"type\":\"string\",\"pattern\":\"^a\"}}}}}}",
             "response_format.json_schema.schema", "invalid_schema");
    gen_error e;
    const char *b = "{" M "," MSGS ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                    "{\"schema\":{\"properties\":{\"z\":{\"pattern\":\"^a\"}}}}}}";
    CHECK(genreq_parse(GEN_CHAT, b, strlen(b), &g, &e) < 0 &&
          strstr(e.message, "schema.properties.z") && strstr(e.message, "pattern"));
}

TEST(tools_auto_required_named_none)
{
    gen_request g;
    /* auto (the default): a lazy grammar, the tools described in a new system message */
    const json *p = ok_req(GEN_CHAT, "{" M "," MSGS ",\"tools\":[" TOOL_W "," TOOL_A "]}", &g);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(g.tools);
    const json *gr = json_get(p, "grammar"), *tr = json_get(p, "grammar_trigger");
    CHECK(gr && strstr(gr->str, "root ::= call+") && strstr(gr->str, "\"\\\"get_weather\\\"\"") &&
          strstr(gr->str, "\"\\\"add\\\"\""));
    CHECK(tr && !strcmp(tr->str, "<tool_call>"));
    const json *ms = json_get(p, "messages");
    CHECK(ms && ms->len == 2 && str_is(json_get(ms->child, "role"), "system"));
    const json *sys = json_get(ms->child, "content");
    CHECK(sys && strstr(sys->str, "<tools>") && strstr(sys->str, "\"get_weather\"") &&
          strstr(sys->str, "<tool_call>"));
    buf_free(&g.payload);
    /* required, one call at a time: not lazy */
    p = ok_req(GEN_CHAT, "{" M "," MSGS ",\"tools\":[" TOOL_W "],\"tool_choice\":\"required\","
                         "\"parallel_tool_calls\":false}", &g);
    CHECK(p && g.tools && json_get(p, "grammar_trigger") == NULL &&
          strstr(json_get(p, "grammar")->str, "root ::= call\n"));
    if (p)
        buf_free(&g.payload);
    /* a named function: only it */
    p = ok_req(GEN_CHAT, "{" M "," MSGS ",\"tools\":[" TOOL_W "," TOOL_A "],\"tool_choice\":"
                         "{\"type\":\"function\",\"function\":{\"name\":\"add\"}}}", &g);
    CHECK(p && g.tools && !strstr(json_get(p, "grammar")->str, "get_weather") &&
          strstr(json_get(p, "grammar")->str, "\"\\\"add\\\"\""));
    if (p)
        buf_free(&g.payload);
    /* none: neither described nor called */
    p = ok_req(GEN_CHAT, "{" M ",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                         "{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[" TOOL_W "],"
                         "\"tool_choice\":\"none\"}", &g);
    CHECK(p && !g.tools && json_get(p, "grammar") == NULL);
    if (p) {
        const json *m0 = json_get(p, "messages")->child;
        const json *c0 = json_get(m0, "content");
        CHECK(str_is(json_get(m0, "role"), "system") && !strcmp(c0->str, "Be brief."));
        buf_free(&g.payload);
    }
}

TEST(tools_open_system_message)
{
    gen_request g;
    const json *p = ok_req(GEN_CHAT, "{" M ",\"messages\":[{\"role\":\"system\",\"content\":"
                                     "\"Be brief.\"},{\"role\":\"user\",\"content\":\"x\"}],"
                                     "\"tools\":[" TOOL_W "]}", &g);
    CHECK(p != NULL);
    if (!p)
        return;
    const json *ms = json_get(p, "messages");
    const json *c0 = json_get(ms->child, "content");
    CHECK(ms->len == 2 && str_is(json_get(ms->child, "role"), "system") &&
          strstr(c0->str, "<tools>") && c0->len > 11 &&
          !strcmp(c0->str + c0->len - 11, "\n\nBe brief."));
    buf_free(&g.payload);
}

TEST(tool_messages_rendered)
{
    gen_request g;
    const json *p = ok_req(
        GEN_CHAT,
        "{" M ",\"tools\":[" TOOL_W "],\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
        "\"{\\\"city\\\": \\\"Oslo\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"-3 C\"}]}",
        &g);
    CHECK(p != NULL);
    if (!p)
        return;
    const json *ms = json_get(p, "messages");
    CHECK(ms && ms->len == 4);
    if (ms && ms->len == 4) {
        const json *as = ms->child->next->next, *tl = as->next;
        CHECK(str_is(json_get(as, "content"),
                     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Oslo\"}}\n"
                     "</tool_call>"));
        CHECK(str_is(json_get(tl, "role"), "user"));
        CHECK(str_is(json_get(tl, "content"), "<tool_response>\n-3 C\n</tool_response>"));
    }
    buf_free(&g.payload);
}

TEST(tools_errors)
{
    CHAT_ERR("{" M "," MSGS ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]}",
             "tools[0]", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"tools\":[" TOOL_A "," TOOL_A "]}", "tools[1]", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"tools\":[" TOOL_A "],\"tool_choice\":\"always\"}", "tool_choice",
             "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"tools\":[" TOOL_A "],\"tool_choice\":{\"type\":\"function\","
             "\"function\":{\"name\":\"sub\"}}}", "tool_choice", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"tool_choice\":\"required\"}", "tool_choice", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"tools\":[" TOOL_A "],\"parallel_tool_calls\":1}",
             "parallel_tool_calls", "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
             "\"parameters\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\","
             "\"minimum\":3}}}}}]}", "tools[0].function.parameters", "invalid_schema");
    CHAT_ERR("{" M "," MSGS ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
             "\"parameters\":{\"type\":\"string\"}}}]}", "tools[0]", "invalid_schema");
    CHAT_ERR("{" M "," MSGS ",\"tools\":[" TOOL_A "],\"response_format\":{\"type\":\"json_object\"}}",
             "response_format", "unsupported_parameter");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}",
             "messages[0].tool_calls", "invalid_value");
    CHAT_ERR("{" M ",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":1}]}]}",
             "messages[0].tool_calls", "invalid_type");
    COMP_ERR("{" M ",\"prompt\":\"x\",\"tools\":[" TOOL_A "]}", "tools", "unsupported_parameter");
    /* too many tools */
    buf b = buf_make(0);
    buf_puts(&b, "{" M "," MSGS ",\"tools\":[");
    for (int i = 0; i <= TOOLS_MAX; i++)
        buf_printf(&b, "%s{\"type\":\"function\",\"function\":{\"name\":\"f%d\"}}", i ? "," : "", i);
    buf_puts(&b, "]}");
    CHECK(err_req(GEN_CHAT, b.data, "tools", "invalid_value"));
    buf_free(&b);
}


TEST(logprobs_fields)
{
    gen_request g;
    const json *p = ok_req(GEN_CHAT, "{" M "," MSGS ",\"logprobs\":true,\"top_logprobs\":5}", &g);
    CHECK(p && g.logprobs && json_get(p, "logprobs") && json_get(p, "logprobs")->boolean &&
          num_is(json_get(p, "top_logprobs"), 5));
    if (p)
        buf_free(&g.payload);
    p = ok_req(GEN_CHAT, "{" M "," MSGS ",\"logprobs\":false}", &g);
    CHECK(p && !g.logprobs && json_get(p, "logprobs") == NULL);
    if (p)
        buf_free(&g.payload);
    CHAT_ERR("{" M "," MSGS ",\"top_logprobs\":2}", "top_logprobs", "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs",
             "invalid_value");
    CHAT_ERR("{" M "," MSGS ",\"logprobs\":true,\"top_logprobs\":1.5}", "top_logprobs",
             "invalid_type");
    CHAT_ERR("{" M "," MSGS ",\"logprobs\":true,\"tools\":[" TOOL_A "]}", "logprobs",
             "unsupported_parameter");
    COMP_ERR("{" M ",\"prompt\":\"x\",\"logprobs\":true}", "logprobs", "unsupported_parameter");
}

int main(void)
{
    RUN(full_chat_request);
    RUN(minimal_chat_request);
    RUN(max_tokens_alone);
    RUN(content_parts_joined);
    RUN(assistant_without_content);
    RUN(completion_requests);
    RUN(null_optionals_absent);
    RUN(response_format_text);
    RUN(range_edges_accepted);
    RUN(stop_limits_accepted);
    RUN(errors_model);
    RUN(errors_body);
    RUN(errors_messages);
    RUN(errors_prompt);
    RUN(errors_numbers);
    RUN(errors_unsupported);
    RUN(json_schema_grammar_in_payload);
    RUN(tools_auto_required_named_none);
    RUN(tools_open_system_message);
    RUN(tool_messages_rendered);
    RUN(tools_errors);
    RUN(logprobs_fields);
    RUN(errors_stream);
    RUN(errors_stop);
    RUN(error_order);
    RUN(bug_payload_cap_error_not_filled);
    RUN(bug_many_short_messages_rejected_as_invalid_json);
    RUN(bug_role_with_embedded_nul_accepted);
    return check_summary();
}
