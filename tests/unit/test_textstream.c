/*
 * test_textstream.c: unit tests for src/core/textstream.{h,c}.
 */
#include "check.h"
#include "core/buf.h"
#include "core/textstream.h"

/* Feed a C string; returns ts_feed's result. */
static bool feed(textstream *ts, const char *s, buf *out)
{
    return ts_feed(ts, s, strlen(s), out);
}

static const char *str(const buf *b)
{
    return b->data ? b->data : "";
}

TEST(no_stops_passthrough)
{
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, NULL, 0), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "Hello", &out));
    CHECK_STR(str(&out), "Hello");
    CHECK(!feed(&ts, ", world", &out));
    CHECK_STR(str(&out), "Hello, world");
    CHECK(!ts_feed(&ts, "", 0, &out));
    CHECK_STR(str(&out), "Hello, world");
    CHECK_EQ_INT(ts.pending.len, 0);
    ts_flush(&ts, &out);
    CHECK_STR(str(&out), "Hello, world");
    ts_free(&ts);
    buf_free(&out);
}

TEST(no_stops_utf8_tail_held)
{
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, NULL, 0), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "caf\xC3", &out));
    CHECK_STR(str(&out), "caf");                   /* half of é held */
    CHECK(!feed(&ts, "\xA9!", &out));
    CHECK_STR(str(&out), "caf\xC3\xA9!");
    CHECK(!feed(&ts, "x\xF0\x9F", &out));
    CHECK_STR(str(&out), "caf\xC3\xA9!x");
    CHECK(!feed(&ts, "\x98\x80", &out));
    CHECK_STR(str(&out), "caf\xC3\xA9!x\xF0\x9F\x98\x80");
    ts_free(&ts);
    buf_free(&out);
}

TEST(multibyte_over_three_feeds)
{
    /* U+1F600 split 1 + 2 + 1 bytes: nothing until it is whole */
    const char *stops[] = { "STOP" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "a\xF0", &out));
    CHECK_STR(str(&out), "a");
    CHECK(!feed(&ts, "\x9F\x98", &out));
    CHECK_STR(str(&out), "a");
    CHECK(!feed(&ts, "\x80", &out));
    CHECK_STR(str(&out), "a\xF0\x9F\x98\x80");
    CHECK_EQ_INT(out.len, 5);
    ts_free(&ts);
    buf_free(&out);
}

TEST(stop_in_one_piece)
{
    const char *stops[] = { "</s>" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    CHECK(feed(&ts, "answer</s>ignored", &out));
    CHECK_STR(str(&out), "answer");
    CHECK(ts.stopped);
    /* further feeds are ignored */
    CHECK(feed(&ts, "more", &out));
    CHECK_STR(str(&out), "answer");
    ts_flush(&ts, &out);
    CHECK_STR(str(&out), "answer");
    ts_free(&ts);
    buf_free(&out);
}

TEST(stop_at_start)
{
    const char *stops[] = { "END" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    CHECK(feed(&ts, "END", &out));
    CHECK_EQ_INT(out.len, 0);
    ts_flush(&ts, &out);
    CHECK_EQ_INT(out.len, 0);
    ts_free(&ts);
    buf_free(&out);
}

TEST(stop_split_across_feeds)
{
    const char *stops[] = { "llo" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "Hel", &out));
    CHECK_STR(str(&out), "He");                    /* "l" might start "llo" */
    CHECK(feed(&ts, "lo", &out));
    CHECK_STR(str(&out), "He");
    ts_flush(&ts, &out);
    CHECK_STR(str(&out), "He");
    ts_free(&ts);
    buf_free(&out);
}

TEST(stop_split_byte_by_byte)
{
    const char *stops[] = { "<|end|>" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    const char *text = "ok <|end|> tail";
    bool stopped = false;
    for (size_t i = 0; text[i] && !stopped; i++)
        stopped = ts_feed(&ts, text + i, 1, &out);
    CHECK(stopped);
    CHECK_STR(str(&out), "ok ");
    ts_free(&ts);
    buf_free(&out);
}

TEST(partial_match_released)
{
    const char *stops[] = { "llo" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "Hel", &out));
    CHECK_STR(str(&out), "He");
    CHECK(!feed(&ts, "p", &out));                  /* "lp": not the stop */
    CHECK_STR(str(&out), "Help");
    CHECK(!feed(&ts, "ll", &out));                 /* "ll" could still be */
    CHECK_STR(str(&out), "Help");
    CHECK(!feed(&ts, "!", &out));
    CHECK_STR(str(&out), "Helpll!");
    CHECK_EQ_INT(ts.pending.len, 0);
    ts_free(&ts);
    buf_free(&out);
}

TEST(partial_match_released_by_flush)
{
    const char *stops[] = { "\nUser:" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "bye\nUs", &out));
    CHECK_STR(str(&out), "bye");
    ts_flush(&ts, &out);                           /* end: held text is real text */
    CHECK_STR(str(&out), "bye\nUs");
    CHECK_EQ_INT(ts.pending.len, 0);
    ts_free(&ts);
    buf_free(&out);
}

TEST(flush_emits_incomplete_utf8)
{
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, NULL, 0), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "x\xE2\x82", &out));
    CHECK_STR(str(&out), "x");
    ts_flush(&ts, &out);
    CHECK_EQ_INT(out.len, 3);
    CHECK(memcmp(out.data, "x\xE2\x82", 3) == 0);
    ts_free(&ts);
    buf_free(&out);
}

TEST(earliest_stop_wins)
{
    const char *stops[] = { "CD", "B", "ABC" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 3), 0);
    buf out = buf_make(0);
    /* "ABC" starts at 1, "B" at 2, "CD" at 3: the earliest is ABC */
    CHECK(feed(&ts, "xABCD", &out));
    CHECK_STR(str(&out), "x");
    ts_free(&ts);
    buf_free(&out);

    const char *stops2[] = { "world", "o" };
    CHECK_EQ_INT(ts_init(&ts, stops2, 2), 0);
    out = buf_make(0);
    CHECK(feed(&ts, "hello world", &out));
    CHECK_STR(str(&out), "hell");
    ts_free(&ts);
    buf_free(&out);
}

TEST(earliest_stop_across_feeds)
{
    /* a long stop is pending when a shorter one completes later in the text:
     * the long one, which started first, must still win */
    const char *stops[] = { "abcdef", "cd" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 2), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "1ab", &out));
    CHECK_STR(str(&out), "1");
    CHECK(feed(&ts, "cdef", &out));
    CHECK_STR(str(&out), "1");
    ts_free(&ts);
    buf_free(&out);
}

TEST(hold_is_longest_partial)
{
    const char *stops[] = { "a", "xyz", "yzq" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 3), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "0xy", &out));                /* "xy" prefix of xyz */
    CHECK_STR(str(&out), "0");
    CHECK(feed(&ts, "z", &out));                   /* completes xyz */
    CHECK_STR(str(&out), "0");
    ts_free(&ts);
    buf_free(&out);
}

TEST(flush_after_stop_emits_nothing)
{
    const char *stops[] = { "##" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "a#", &out));
    CHECK_STR(str(&out), "a");
    CHECK(feed(&ts, "#b", &out));
    ts_flush(&ts, &out);
    CHECK_STR(str(&out), "a");
    ts_free(&ts);
    buf_free(&out);
}

TEST(stop_with_multibyte)
{
    const char *stops[] = { "\xE2\x80\x94" };     /* EM DASH */
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "caf\xC3\xA9 \xE2", &out));
    CHECK_STR(str(&out), "caf\xC3\xA9 ");
    CHECK(feed(&ts, "\x80\x94 rest", &out));
    CHECK_STR(str(&out), "caf\xC3\xA9 ");
    ts_free(&ts);
    buf_free(&out);
}

TEST(empty_stops_ignored)
{
    const char *stops[] = { "", "Z", "" };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 3), 0);
    CHECK_EQ_INT(ts.nstops, 1);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "abc", &out));
    CHECK_STR(str(&out), "abc");
    CHECK(feed(&ts, "Zx", &out));
    CHECK_STR(str(&out), "abc");
    ts_free(&ts);
    buf_free(&out);
}

TEST(stops_are_copied)
{
    char s[] = "stop";
    const char *stops[] = { s };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    strcpy(s, "xxxx");
    buf out = buf_make(0);
    CHECK(feed(&ts, "a stop", &out));
    CHECK_STR(str(&out), "a ");
    ts_free(&ts);
    buf_free(&out);
}

TEST(init_limits)
{
    textstream ts;
    const char *many[TS_MAX_STOPS + 1];
    for (int i = 0; i <= TS_MAX_STOPS; i++)
        many[i] = "s";
    CHECK_EQ_INT(ts_init(&ts, many, TS_MAX_STOPS), 0);
    CHECK_EQ_INT(ts.nstops, TS_MAX_STOPS);
    ts_free(&ts);
    CHECK_EQ_INT(ts_init(&ts, many, TS_MAX_STOPS + 1), -1);

    /* empty stops do not count toward the limit */
    const char *with_empty[TS_MAX_STOPS + 1];
    for (int i = 0; i < TS_MAX_STOPS; i++)
        with_empty[i] = "s";
    with_empty[TS_MAX_STOPS] = "";
    CHECK_EQ_INT(ts_init(&ts, with_empty, TS_MAX_STOPS + 1), 0);
    ts_free(&ts);

    char longest[TS_MAX_STOP_LEN + 1];
    memset(longest, 'x', TS_MAX_STOP_LEN);
    longest[TS_MAX_STOP_LEN] = '\0';
    const char *ok[] = { longest };
    CHECK_EQ_INT(ts_init(&ts, ok, 1), 0);
    ts_free(&ts);

    char toolong[TS_MAX_STOP_LEN + 2];
    memset(toolong, 'x', TS_MAX_STOP_LEN + 1);
    toolong[TS_MAX_STOP_LEN + 1] = '\0';
    const char *bad[] = { "fine", toolong };
    CHECK_EQ_INT(ts_init(&ts, bad, 2), -1);
}

TEST(long_stop_split)
{
    char stop[TS_MAX_STOP_LEN + 1];
    for (int i = 0; i < TS_MAX_STOP_LEN; i++)
        stop[i] = (char)('a' + i % 26);
    stop[TS_MAX_STOP_LEN] = '\0';
    const char *stops[] = { stop };
    textstream ts;
    CHECK_EQ_INT(ts_init(&ts, stops, 1), 0);
    buf out = buf_make(0);
    CHECK(!feed(&ts, "pre-", &out));
    CHECK_STR(str(&out), "pre-");
    CHECK(!ts_feed(&ts, stop, 100, &out));
    CHECK_STR(str(&out), "pre-");
    CHECK(ts_feed(&ts, stop + 100, TS_MAX_STOP_LEN - 100, &out));
    CHECK_STR(str(&out), "pre-");
    ts_free(&ts);
    buf_free(&out);
}

int main(void)
{
    RUN(no_stops_passthrough);
    RUN(no_stops_utf8_tail_held);
    RUN(multibyte_over_three_feeds);
    RUN(stop_in_one_piece);
    RUN(stop_at_start);
    RUN(stop_split_across_feeds);
    RUN(stop_split_byte_by_byte);
    RUN(partial_match_released);
    RUN(partial_match_released_by_flush);
    RUN(flush_emits_incomplete_utf8);
    RUN(earliest_stop_wins);
    RUN(earliest_stop_across_feeds);
    RUN(hold_is_longest_partial);
    RUN(flush_after_stop_emits_nothing);
    RUN(stop_with_multibyte);
    RUN(empty_stops_ignored);
    RUN(stops_are_copied);
    RUN(init_limits);
    RUN(long_stop_split);
    return check_summary();
}
