/*
 * test_utf8.c: unit tests for src/core/utf8.{h,c}.
 */
#include "check.h"
#include "core/utf8.h"

#define CP(s) utf8_complete_prefix((s), sizeof(s) - 1)
#define VALID(s) utf8_valid((s), sizeof(s) - 1)

/* U+1F600 GRINNING FACE: F0 9F 98 80 */
#define EMOJI "\xF0\x9F\x98\x80"

TEST(prefix_ascii)
{
    CHECK_EQ_INT(utf8_complete_prefix("", 0), 0);
    CHECK_EQ_INT(CP("a"), 1);
    CHECK_EQ_INT(CP("hello world"), 11);
    CHECK_EQ_INT(utf8_complete_prefix("hello", 3), 3);
    CHECK_EQ_INT(utf8_complete_prefix("a\0b", 3), 3);
}

TEST(prefix_partial_4byte)
{
    /* text + the first 1, 2, 3 bytes of the emoji: the partial tail is held */
    CHECK_EQ_INT(CP("Hi \xF0"), 3);
    CHECK_EQ_INT(CP("Hi \xF0\x9F"), 3);
    CHECK_EQ_INT(CP("Hi \xF0\x9F\x98"), 3);
    /* the partial character alone */
    CHECK_EQ_INT(CP("\xF0"), 0);
    CHECK_EQ_INT(CP("\xF0\x9F"), 0);
    CHECK_EQ_INT(CP("\xF0\x9F\x98"), 0);
    /* after a complete emoji */
    CHECK_EQ_INT(CP(EMOJI "\xF0\x9F"), 4);
}

TEST(prefix_partial_2_3byte)
{
    CHECK_EQ_INT(CP("caf\xC3"), 3);                /* é = C3 A9 */
    CHECK_EQ_INT(CP("\xE2"), 0);                   /* € = E2 82 AC */
    CHECK_EQ_INT(CP("x\xE2\x82"), 1);
    CHECK_EQ_INT(CP("ab\xE2\x82"), 2);
}

TEST(prefix_complete_multibyte)
{
    CHECK_EQ_INT(CP("caf\xC3\xA9"), 5);
    CHECK_EQ_INT(CP("\xC3\xA9"), 2);
    CHECK_EQ_INT(CP("x\xE2\x82\xAC"), 4);
    CHECK_EQ_INT(CP("\xE2\x82\xAC"), 3);
    CHECK_EQ_INT(CP("Hi " EMOJI), 7);
    CHECK_EQ_INT(CP(EMOJI), 4);
    CHECK_EQ_INT(CP(EMOJI EMOJI), 8);
    CHECK_EQ_INT(CP("\xE2\x82\xAC" "a"), 4);
}

TEST(prefix_invalid_tail)
{
    /* invalid bytes count as complete one-byte units */
    CHECK_EQ_INT(CP("a\x80"), 2);                  /* stray continuation */
    CHECK_EQ_INT(CP("\x80\x80\x80"), 3);
    CHECK_EQ_INT(CP("\x80\x80\x80\x80"), 4);
    CHECK_EQ_INT(CP(EMOJI "\x80"), 5);             /* extra continuation */
    CHECK_EQ_INT(CP("a\xFF"), 2);
    CHECK_EQ_INT(CP("a\xFE"), 2);
    CHECK_EQ_INT(CP("a\xF8"), 2);
    CHECK_EQ_INT(CP("\xC3" "a"), 2);               /* lead + non-continuation */
    CHECK_EQ_INT(CP("\xF0\x9F" "a"), 3);
    CHECK_EQ_INT(CP("\xE2\x82" "a"), 3);
    CHECK_EQ_INT(CP("\xF0\x9F\x98" "a"), 4);
}

/* BUG (src/core/utf8.c, utf8_complete_prefix): the lead byte is classified by
 * its bit pattern alone, so bytes that can never start a valid sequence (C0,
 * C1, F5..F7) and prefixes that are already invalid (E0 80 = overlong,
 * ED A0 = surrogate, F4 90 = > U+10FFFF) are held back as "incomplete". The
 * header says only "incomplete (but so far valid)" sequences are held and
 * invalid bytes count as complete units. */
TEST(bug_prefix_holds_never_valid_leads)
{
    CHECK_EQ_INT(CP("a\xC0"), 2);
    CHECK_EQ_INT(CP("a\xC1"), 2);
    CHECK_EQ_INT(CP("a\xF5"), 2);
    CHECK_EQ_INT(CP("a\xE0\x80"), 3);
    CHECK_EQ_INT(CP("a\xED\xA0"), 3);
    CHECK_EQ_INT(CP("a\xF4\x90"), 3);
}

TEST(valid_accepts)
{
    CHECK(utf8_valid("", 0));
    CHECK(VALID("plain ascii"));
    CHECK(utf8_valid("a\0b", 3));
    CHECK(VALID("\x7f"));
    CHECK(VALID("caf\xC3\xA9"));
    CHECK(VALID("\xC2\x80"));                      /* U+0080, smallest 2-byte */
    CHECK(VALID("\xDF\xBF"));                      /* U+07FF */
    CHECK(VALID("\xE0\xA0\x80"));                  /* U+0800 */
    CHECK(VALID("\xED\x9F\xBF"));                  /* U+D7FF, below surrogates */
    CHECK(VALID("\xEE\x80\x80"));                  /* U+E000, above surrogates */
    CHECK(VALID("\xEF\xBF\xBF"));                  /* U+FFFF */
    CHECK(VALID("\xF0\x90\x80\x80"));              /* U+10000 */
    CHECK(VALID("\xF4\x8F\xBF\xBF"));              /* U+10FFFF */
    CHECK(VALID("\xE2\x82\xAC " EMOJI " \xC3\xA9"));
}

TEST(valid_rejects)
{
    CHECK(!VALID("\xC0\xAF"));                     /* overlong '/' */
    CHECK(!VALID("\xC1\xBF"));                     /* overlong */
    CHECK(!VALID("\xE0\x80\xAF"));                 /* overlong 3-byte */
    CHECK(!VALID("\xE0\x9F\xBF"));                 /* overlong U+07FF */
    CHECK(!VALID("\xF0\x80\x80\xAF"));             /* overlong 4-byte */
    CHECK(!VALID("\xF0\x8F\xBF\xBF"));             /* overlong U+FFFF */
    CHECK(!VALID("\xED\xA0\x80"));                 /* U+D800 */
    CHECK(!VALID("\xED\xBF\xBF"));                 /* U+DFFF */
    CHECK(!VALID("\xED\xA0\xBD\xED\xB8\x80"));     /* CESU-8 surrogate pair */
    CHECK(!VALID("\xF4\x90\x80\x80"));             /* U+110000 */
    CHECK(!VALID("\xF7\xBF\xBF\xBF"));
    CHECK(!VALID("\xF8\x88\x80\x80\x80"));         /* 5-byte form */
    CHECK(!VALID("\xFC\x84\x80\x80\x80\x80"));     /* 6-byte form */
    CHECK(!VALID("\xFE"));
    CHECK(!VALID("\xFF"));
    CHECK(!VALID("\x80"));                         /* lone continuation */
    CHECK(!VALID("a\xBF" "b"));
    CHECK(!VALID("\xC3"));                         /* truncated */
    CHECK(!VALID("\xE2\x82"));
    CHECK(!VALID("\xF0\x9F\x98"));
    CHECK(!VALID("ok\xF0\x9F\x98"));
    CHECK(!VALID("\xC3" "a"));                     /* bad continuation */
    CHECK(!VALID("\xE2\x28\xA1"));
    CHECK(!VALID("\xF0\x9F\x98" "a"));
    /* a valid sequence cut short by n */
    CHECK(!utf8_valid(EMOJI, 3));
    CHECK(utf8_valid(EMOJI, 4));
}

TEST(decode)
{
    unsigned cp = 0;
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"A", 1, &cp), 1);
    CHECK_EQ_INT(cp, 0x41);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xC3\xA9", 2, &cp), 2);
    CHECK_EQ_INT(cp, 0xE9);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xE2\x82\xAC", 3, &cp), 3);
    CHECK_EQ_INT(cp, 0x20AC);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)EMOJI, 4, &cp), 4);
    CHECK_EQ_INT(cp, 0x1F600);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xF4\x8F\xBF\xBF", 4, &cp), 4);
    CHECK_EQ_INT(cp, 0x10FFFF);
    /* decodes only the first sequence */
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xC3\xA9xyz", 5, &cp), 2);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"", 0, &cp), 0);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)EMOJI, 3, &cp), 0);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xC0\xAF", 2, &cp), 0);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xED\xA0\x80", 3, &cp), 0);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xF4\x90\x80\x80", 4, &cp), 0);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\x80", 1, &cp), 0);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xFF", 1, &cp), 0);
}

TEST(prefix_then_valid)
{
    /* for every split point of a valid mixed string, the complete prefix is
     * itself valid UTF-8 and never more than 3 bytes short */
    const char s[] = "a\xC3\xA9\xE2\x82\xAC" EMOJI "z";
    size_t n = sizeof s - 1;
    for (size_t k = 0; k <= n; k++) {
        size_t p = utf8_complete_prefix(s, k);
        CHECK(p <= k);
        CHECK(k - p <= 3);
        CHECK(utf8_valid(s, p));
    }
    CHECK_EQ_INT(utf8_complete_prefix(s, n), n);
}

int main(void)
{
    RUN(prefix_ascii);
    RUN(prefix_partial_4byte);
    RUN(prefix_partial_2_3byte);
    RUN(prefix_complete_multibyte);
    RUN(prefix_invalid_tail);
    RUN(bug_prefix_holds_never_valid_leads);
    RUN(valid_accepts);
    RUN(valid_rejects);
    RUN(decode);
    RUN(prefix_then_valid);
    return check_summary();
}
