/*
 * test_toolcall.c: unit tests for src/http/toolcall.c (tool calls split out
 * of generated text, as it streams and at the end).
 */
#include "http/toolcall.c"

#include "check.h"

/* Feeds text in pieces of `step` bytes; returns the content sent before the end. */
static void feed_steps(toolcall_stream *s, const char *t, size_t step, buf *content)
{
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i += step)
        tcs_feed(s, t + i, i + step > n ? n - i : step, content);
}

TEST(plain_text_passes_through)
{
    for (size_t step = 1; step <= 7; step++) {
        toolcall_stream s;
        tcs_init(&s);
        buf c = buf_make(0), calls = buf_make(0);
        feed_steps(&s, "Hello <b>world</b> <tool", step, &c);
        /* the tail that may open a tag is held back */
        CHECK_STR(c.data, "Hello <b>world</b> ");
        CHECK_EQ_INT(tcs_end(&s, "r", false, &c, &calls), 0);
        CHECK_STR(c.data, "Hello <b>world</b> <tool");
        CHECK_EQ_INT(calls.len, 0);
        buf_free(&c);
        buf_free(&calls);
        tcs_free(&s);
    }
}

TEST(calls_split_from_content)
{
    const char *text = "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                       "{\"city\": \"Oslo\", \"days\": 2}}\n</tool_call>\n<tool_call>{\"name\":\"add\","
                       "\"arguments\":{\"a\":0.1,\"b\":[1,\"x\"]}}</tool_call>\n";
    for (size_t step = 1; step <= 13; step += 3) {
        toolcall_stream s;
        tcs_init(&s);
        buf c = buf_make(0), calls = buf_make(0);
        feed_steps(&s, text, step, &c);
        CHECK_STR(c.data, "Let me look.\n");
        CHECK_EQ_INT(tcs_end(&s, "req_1", true, &c, &calls), 2);
        CHECK_STR(c.data, "Let me look.\n");
        CHECK_STR(calls.data,
                  "[{\"index\":0,\"id\":\"call_req_1_0\",\"type\":\"function\",\"function\":"
                  "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\",\\\"days\\\":2}\"}},"
                  "{\"index\":1,\"id\":\"call_req_1_1\",\"type\":\"function\",\"function\":"
                  "{\"name\":\"add\",\"arguments\":\"{\\\"a\\\":0.1,\\\"b\\\":[1,\\\"x\\\"]}\"}}]");
        buf_free(&c);
        buf_free(&calls);
        tcs_free(&s);
    }
}

TEST(cut_call_given_back_as_content)
{
    toolcall_stream s;
    tcs_init(&s);
    buf c = buf_make(0), calls = buf_make(0);
    const char *t = "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>"
                    "<tool_call>{\"name\":\"b\",\"argu";
    tcs_feed(&s, t, strlen(t), &c);
    CHECK_EQ_INT(c.len, 0);
    CHECK_EQ_INT(tcs_end(&s, "r", false, &c, &calls), 1);
    CHECK_STR(c.data, "<tool_call>{\"name\":\"b\",\"argu");
    CHECK(strstr(calls.data, "\"name\":\"a\"") && !strstr(calls.data, "\"index\""));
    buf_free(&c);
    buf_free(&calls);
    tcs_free(&s);
    /* nothing whole: all of it is content, no calls */
    tcs_init(&s);
    c = buf_make(0);
    calls = buf_make(0);
    tcs_feed(&s, "ok <tool_call>{\"nam", 19, &c);
    CHECK_EQ_INT(tcs_end(&s, "r", false, &c, &calls), 0);
    CHECK_STR(c.data, "ok <tool_call>{\"nam");
    CHECK_EQ_INT(calls.len, 0);
    buf_free(&c);
    buf_free(&calls);
    tcs_free(&s);
}

TEST(malformed_calls)
{
    const char *bad[] = {
        "<tool_call>{\"arguments\":{}}</tool_call>",          /* no name */
        "<tool_call>{\"name\":\"\"}</tool_call>",             /* empty name */
        "<tool_call>[1,2]</tool_call>",                       /* not an object */
        "<tool_call>{\"name\":\"a\"</tool_call>",             /* broken JSON */
        "<tool_call>{\"name\":\"a\"}</tool_call> trailing",   /* text after */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        toolcall_stream s;
        tcs_init(&s);
        buf c = buf_make(0), calls = buf_make(0);
        tcs_feed(&s, bad[i], strlen(bad[i]), &c);
        int n = tcs_end(&s, "r", false, &c, &calls);
        if (i < 4) {
            CHECK_EQ_INT(n, 0);
            CHECK_STR(c.data, bad[i]);
        } else {       /* the whole call is a call; the text after it is content */
            CHECK_EQ_INT(n, 1);
            CHECK_STR(c.data, "trailing");
        }
        buf_free(&c);
        buf_free(&calls);
        tcs_free(&s);
    }
    /* a call without arguments gets {}; arguments are always JSON text */
    toolcall_stream s;
    tcs_init(&s);
    buf c = buf_make(0), calls = buf_make(0);
    const char *t = "<tool_call>{\"name\":\"now\"}</tool_call><tool_call>{\"name\":\"say\","
                    "\"arguments\":\"{\\\"x\\\": 1}\"}</tool_call>";
    tcs_feed(&s, t, strlen(t), &c);
    CHECK_EQ_INT(tcs_end(&s, "r", false, &c, &calls), 2);
    CHECK(strstr(calls.data, "\"arguments\":\"{}\"") &&
          strstr(calls.data, "\"arguments\":\"\\\"{\\\\\\\"x\\\\\\\": 1}\\\"\""));
    buf_free(&c);
    buf_free(&calls);
    tcs_free(&s);
}

TEST(closing_tag_inside_an_argument)
{
    toolcall_stream s;
    tcs_init(&s);
    buf c = buf_make(0), calls = buf_make(0);
    const char *t = "<tool_call>{\"name\":\"say\",\"arguments\":{\"text\":\"a </tool_call> b\"}}"
                    "</tool_call>";
    tcs_feed(&s, t, strlen(t), &c);
    CHECK_EQ_INT(tcs_end(&s, "r", false, &c, &calls), 1);
    CHECK_EQ_INT(c.len, 0);
    CHECK(calls.data && strstr(calls.data, "a </tool_call> b"));
    buf_free(&c);
    buf_free(&calls);
    tcs_free(&s);
}

TEST(text_cap)
{
    /* the kept text has a cap: a runaway model cannot grow it without bound */
    toolcall_stream s;
    tcs_init(&s);
    buf c = buf_make(0), calls = buf_make(0);
    tcs_feed(&s, "<tool_call>", 11, &c);
    char block[4096];
    memset(block, 'x', sizeof block);
    for (int i = 0; i < 2048; i++)
        tcs_feed(&s, block, sizeof block, &c);
    CHECK(s.calls.len <= TOOLCALL_TEXT_MAX);
    CHECK_EQ_INT(tcs_end(&s, "r", false, &c, &calls), 0);
    buf_free(&c);
    buf_free(&calls);
    tcs_free(&s);
}

int main(void)
{
    RUN(plain_text_passes_through);
    RUN(calls_split_from_content);
    RUN(cut_call_given_back_as_content);
    RUN(malformed_calls);
    RUN(closing_tag_inside_an_argument);
    RUN(text_cap);
    return check_summary();
}
