/*
 * test_ignore.c: unit tests for src/index/ignore.{h,c}, the gitignore-style
 * rules of the index's walk: parsing lines (blanks, comments, trailing
 * spaces, escapes, negation, dir-only, anchoring), the glob ('*', '?',
 * classes, escapes, the three "**" forms; against a brute-force reference
 * on random patterns), precedence (the last pattern of
 * a list, deeper lists over shallower ones, the folder's excludes over
 * all), caps (pattern length, pattern count, file size) and reading ignore
 * files from disk (no symlinks, no FIFOs).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"
#include "core/buf.h"
#include "index/ignore.h"

#define M(pat, path) ignore_pattern_matches(pat, path, false)
#define MD(pat, path) ignore_pattern_matches(pat, path, true)

/* A list from text (lines separated by '\n'). */
static ignore_rules *rules_of(const char *text)
{
    ignore_rules *r = ignore_rules_new();
    if (r)
        ignore_rules_parse(r, text, strlen(text), NULL);
    return r;
}

static ignore_line add(ignore_rules *r, const char *line)
{
    return ignore_rules_add(r, line, strlen(line));
}

/* ---- lines ----------------------------------------------------------------- */

TEST(lines_blank_and_comments)
{
    ignore_rules *r = ignore_rules_new();
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK_EQ_INT(add(r, ""), IGNORE_NOTHING);
    CHECK_EQ_INT(add(r, "   "), IGNORE_NOTHING);
    CHECK_EQ_INT(add(r, "\r"), IGNORE_NOTHING);
    CHECK_EQ_INT(add(r, "# a comment"), IGNORE_NOTHING);
    CHECK_EQ_INT(add(r, "#*.md"), IGNORE_NOTHING);
    CHECK_EQ_INT(ignore_rules_count(r), 0);
    /* a '#' later in the line is part of the pattern */
    CHECK_EQ_INT(add(r, "a#b"), IGNORE_ADDED);
    CHECK_EQ_INT(ignore_rules_count(r), 1);
    CHECK_EQ_INT(ignore_rules_match(r, "a#b", false), IGNORE_EXCLUDE);
    ignore_rules_free(r);
    ignore_rules_free(NULL);
}

TEST(lines_escaped_hash_and_bang)
{
    CHECK(M("\\#notes.md", "#notes.md"));
    CHECK(!M("\\#notes.md", "notes.md"));
    CHECK(M("\\!important", "!important"));
    ignore_rules *r = rules_of("\\!important\n");
    CHECK_EQ_INT(ignore_rules_match(r, "!important", false), IGNORE_EXCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "important", false), IGNORE_NO_MATCH);
    ignore_rules_free(r);
}

TEST(lines_trailing_spaces_and_cr)
{
    CHECK(M("notes.md   ", "notes.md"));
    CHECK(M("notes.md\r", "notes.md"));
    CHECK(M("notes.md \r", "notes.md"));
    /* an escaped space is kept */
    CHECK(M("name\\ ", "name "));
    CHECK(!M("name\\ ", "name"));
    /* spaces inside stay */
    CHECK(M("my notes.md", "my notes.md"));
    CHECK(!M("my notes.md", "mynotes.md"));
    /* CRLF text parsed line by line */
    ignore_rules *r = rules_of("a.md\r\nb.md\r\n");
    CHECK_EQ_INT(ignore_rules_count(r), 2);
    CHECK_EQ_INT(ignore_rules_match(r, "b.md", false), IGNORE_EXCLUDE);
    ignore_rules_free(r);
}

TEST(lines_invalid)
{
    ignore_rules *r = ignore_rules_new();
    CHECK_EQ_INT(add(r, "!"), IGNORE_INVALID);
    CHECK_EQ_INT(add(r, "/"), IGNORE_INVALID);
    CHECK_EQ_INT(add(r, "!/"), IGNORE_INVALID);
    CHECK_EQ_INT(add(r, "//"), IGNORE_INVALID);
    CHECK_EQ_INT(add(r, "foo\\"), IGNORE_INVALID);     /* a trailing lone backslash */
    CHECK_EQ_INT(add(r, "[abc"), IGNORE_INVALID);      /* an unclosed class */
    CHECK_EQ_INT(add(r, "[[:bogus:]]"), IGNORE_INVALID);
    CHECK_EQ_INT(add(r, "[[:digit:]"), IGNORE_INVALID);
    CHECK_EQ_INT(ignore_rules_add(r, "a\0b", 3), IGNORE_INVALID);
    CHECK_EQ_INT(ignore_rules_count(r), 0);
    /* an escaped backslash at the end is fine */
    CHECK_EQ_INT(add(r, "foo\\\\"), IGNORE_ADDED);
    CHECK_EQ_INT(ignore_rules_match(r, "foo\\", false), IGNORE_EXCLUDE);
    ignore_rules_free(r);
    CHECK(!M("[abc", "[abc"));
    CHECK(!M("foo\\", "foo"));
}

/* ---- what a pattern matches --------------------------------------------------- */

TEST(name_at_any_depth)
{
    CHECK(M("*.log", "a.log"));
    CHECK(M("*.log", "x/y/a.log"));
    CHECK(!M("*.log", "a.log.txt"));
    CHECK(M("foo", "foo"));
    CHECK(M("foo", "a/b/foo"));
    CHECK(MD("foo", "a/foo"));
    CHECK(!M("foo", "foo.txt"));
    CHECK(!M("foo", "afoo"));
    CHECK(!M("foo", "a/foo/bar"));          /* the name, not a folder on the way */
    CHECK(M("*", "anything"));
    CHECK(M("*", "deep/down/anything"));
}

TEST(anchored)
{
    CHECK(M("/foo", "foo"));
    CHECK(!M("/foo", "a/foo"));
    CHECK(M("doc/frotz", "doc/frotz"));
    CHECK(!M("doc/frotz", "a/doc/frotz"));
    CHECK(M("/doc/frotz", "doc/frotz"));
    CHECK(!M("doc/frotz", "frotz"));
    /* a middle slash anchors even with wildcards */
    CHECK(M("doc/*.md", "doc/a.md"));
    CHECK(!M("doc/*.md", "x/doc/a.md"));
    /* '*' and '?' never cross a '/' */
    CHECK(!M("doc/*.md", "doc/sub/a.md"));
    CHECK(!M("/a?b", "a/b"));
    CHECK(M("/*.md", "top.md"));
    CHECK(!M("/*.md", "sub/top.md"));
}

TEST(dir_only)
{
    CHECK(MD("build/", "build"));
    CHECK(MD("build/", "src/build"));
    CHECK(!M("build/", "build"));            /* a file named build */
    CHECK(!M("build/", "src/build"));
    CHECK(MD("/build/", "build"));
    CHECK(!MD("/build/", "src/build"));
    CHECK(MD("doc/out/", "doc/out"));
    CHECK(!M("doc/out/", "doc/out"));
    CHECK(MD("build//", "build"));
    /* a negated dir-only pattern only re-includes folders */
    ignore_rules *r = rules_of("b*\n!b*/\n");
    CHECK_EQ_INT(ignore_rules_match(r, "bin", true), IGNORE_INCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "bin", false), IGNORE_EXCLUDE);
    ignore_rules_free(r);
}

TEST(question_mark)
{
    CHECK(M("?.md", "a.md"));
    CHECK(!M("?.md", "ab.md"));
    CHECK(!M("?.md", ".md"));
    CHECK(M("a??", "abc"));
    CHECK(!M("a??", "ab"));
}

TEST(star)
{
    CHECK(M("a*", "a"));
    CHECK(M("a*", "abc"));
    CHECK(M("*c", "abc"));
    CHECK(M("a*c", "ac"));
    CHECK(M("a*c", "abbbc"));
    CHECK(!M("a*c", "abd"));
    CHECK(M("*.min.js", "app.min.js"));
    CHECK(M("*.min.js", "static/js/app.min.js"));
    CHECK(!M("*.min.js", "app.js"));
    CHECK(M("*a*b*c*", "xxaxxbxxcxx"));
    CHECK(!M("*a*b*c*", "xxcxxbxxaxx"));
    CHECK(M("draft-*-v?.md", "draft-letter-v2.md"));
}

TEST(classes)
{
    CHECK(M("[abc].txt", "a.txt"));
    CHECK(M("[abc].txt", "c.txt"));
    CHECK(!M("[abc].txt", "d.txt"));
    CHECK(M("file[0-9]", "file7"));
    CHECK(!M("file[0-9]", "filex"));
    CHECK(M("file[!0-9]", "filex"));
    CHECK(!M("file[!0-9]", "file7"));
    CHECK(M("file[^0-9]", "filex"));
    CHECK(!M("file[^0-9]", "file7"));
    CHECK(M("[]]", "]"));                   /* ']' first is literal */
    CHECK(M("[!]]", "a"));
    CHECK(!M("[!]]", "]"));
    CHECK(M("[a-]", "-"));                  /* '-' last is literal */
    CHECK(M("[a-]", "a"));
    CHECK(!M("[a-]", "b"));
    CHECK(M("[a-cx-z]", "y"));
    CHECK(!M("[a-cx-z]", "m"));
    CHECK(M("[\\]]", "]"));
    CHECK(M("[\\-]", "-"));
    CHECK(M("v[[:digit:]]", "v3"));
    CHECK(!M("v[[:digit:]]", "vx"));
    CHECK(M("[[:upper:]]*", "README"));
    CHECK(!M("[[:upper:]]*", "readme"));
    CHECK(M("[[:alpha:][:digit:]]", "7"));
    CHECK(M("[![:space:]]", "x"));
    CHECK(!M("[![:space:]]", " "));
    /* a class never matches '/' */
    CHECK(!M("a[/]b", "a/b"));
    CHECK(!M("a[!x]b", "a/b"));
}

TEST(escapes)
{
    CHECK(M("\\*.txt", "*.txt"));
    CHECK(!M("\\*.txt", "a.txt"));
    CHECK(M("what\\?", "what?"));
    CHECK(!M("what\\?", "whatx"));
    CHECK(M("\\[draft\\]", "[draft]"));
    CHECK(!M("\\[draft\\]", "d"));
    CHECK(M("\\a", "a"));                   /* an ordinary character escaped is itself */
}

TEST(case_sensitive)
{
    CHECK(!M("*.MD", "notes.md"));
    CHECK(!M("readme", "README"));
}

TEST(starstar_leading)
{
    CHECK(M("**/foo", "foo"));
    CHECK(M("**/foo", "a/foo"));
    CHECK(M("**/foo", "a/b/foo"));
    CHECK(!M("**/foo", "a/foobar"));
    CHECK(M("**/foo/bar", "foo/bar"));
    CHECK(M("**/foo/bar", "x/y/foo/bar"));
    CHECK(!M("**/foo/bar", "foo/x/bar"));
    CHECK(MD("**/node/", "deep/node"));
}

TEST(starstar_trailing)
{
    CHECK(M("abc/**", "abc/x"));
    CHECK(M("abc/**", "abc/x/y/z"));
    CHECK(MD("abc/**", "abc/sub"));
    CHECK(!MD("abc/**", "abc"));            /* the folder itself is not matched */
    CHECK(!M("abc/**", "x/abc/y"));         /* anchored */
    CHECK(M("drafts/**", "drafts/a.md"));
    CHECK(M("**", "anything/at/all"));
}

TEST(starstar_middle)
{
    CHECK(M("a/**/b", "a/b"));
    CHECK(M("a/**/b", "a/x/b"));
    CHECK(M("a/**/b", "a/x/y/b"));
    CHECK(!M("a/**/b", "a/xb"));
    CHECK(!M("a/**/b", "ab"));
    CHECK(!M("a/**/b", "x/a/b"));
    CHECK(M("a/**/*.md", "a/n.md"));
    CHECK(M("a/**/*.md", "a/x/y/n.md"));
    CHECK(!M("a/**/*.md", "a/x/y/n.txt"));
    CHECK(M("a/**/b/**/c", "a/1/b/2/3/c"));
    CHECK(M("a/**/**/b", "a/b"));
}

TEST(starstar_elsewhere_is_star)
{
    /* not between slashes: a plain '*' */
    CHECK(M("a**b", "axxb"));
    CHECK(!M("/a**b", "a/b"));
    CHECK(M("/a/**b", "a/xb"));
    CHECK(!M("/a/**b", "a/x/b"));
    CHECK(M("**b", "xb"));                  /* a name: at any depth anyway */
    CHECK(M("/***/x", "a/b/x"));            /* three stars between slashes: as "**" */
}

TEST(no_runaway_backtracking)
{
    alarm(20);                  /* a runaway fails here instead of hanging the suite */
    char path[300];
    memset(path, 'a', 299);
    path[299] = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(!M("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", path));
    CHECK(!M("/**/a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", path));
    char deep[400] = "";
    for (int i = 0; i < 60; i++)
        strcat(deep, "d/");
    strcat(deep, "x");
    CHECK(!M("/**/d/**/d/**/d/**/d/**/d/**/d/**/d/**/y", deep));
    CHECK(M("/**/d/**/d/**/d/**/x", deep));
    /* thirty "**" against a thousand folders that almost match */
    buf pat = buf_make(0), many = buf_make(0);
    for (int i = 0; i < 30; i++)
        buf_puts(&pat, "**/a/");
    buf_puts(&pat, "b");
    for (int i = 0; i < 1000; i++)
        buf_puts(&many, "a/");
    buf_puts(&many, "c");
    CHECK(!M(pat.data, many.data));
    many.len -= 1;
    buf_puts(&many, "b");
    CHECK(M(pat.data, many.data));
    buf_free(&pat);
    buf_free(&many);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(s < 2.0);                         /* milliseconds in fact */
}

/* The glob's meaning spelled out without any early exit: every split
 * tried (exponential, fine for short strings). Classes: "[ab]" and
 * "[!a]" only, as the random patterns below use. */
static bool ref_glob(const char *p, const char *pat0, const char *s)
{
    if (!*p)
        return !*s;
    if (*p == '*') {
        const char *q = p;
        while (*q == '*')
            q++;
        bool deep = q - p >= 2 && (p == pat0 || p[-1] == '/') && (*q == 0 || *q == '/');
        if (deep && *q == '/' && ref_glob(q + 1, pat0, s))
            return true;                /* no folder at all */
        for (const char *t = s;; t++) {
            if (ref_glob(q, pat0, t))
                return true;
            if (!*t || (*t == '/' && !deep))
                return false;
        }
    }
    if (!*s)
        return false;
    if (*p == '?')
        return *s != '/' && ref_glob(p + 1, pat0, s + 1);
    if (*p == '[') {
        bool neg = p[1] == '!';
        const char *set = p + 1 + neg, *end = strchr(set, ']');
        bool in = memchr(set, *s, (size_t)(end - set)) != NULL;
        return *s != '/' && in != neg && ref_glob(end + 1, pat0, s + 1);
    }
    return *p == *s && ref_glob(p + 1, pat0, s + 1);
}

TEST(glob_agrees_with_the_reference)
{
    static const char *const tokens[] = { "a", "b", "/", "*", "**", "?", "[ab]", "[!a]", "/**/",
                                          "a/" };
    unsigned seed = 12345;
    int compared = 0, matched = 0;
    for (int it = 0; it < 200000; it++) {
        char pat[64] = "", path[16] = "";
        int nt = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 6;
        for (int k = 0; k < nt; k++)
            strcat(pat, tokens[((seed = seed * 1103515245u + 12345u) >> 16) % 10]);
        int np = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 9;
        for (int k = 0; k < np; k++)
            path[k] = "ab/ab/a"[((seed = seed * 1103515245u + 12345u) >> 16) % 7];
        path[np] = 0;
        size_t pl = strlen(pat);
        if (pat[0] == '/' || pat[pl - 1] == '/' || path[0] == '/' || path[np - 1] == '/' ||
            strstr(path, "//"))
            continue;           /* not a pattern or path the walk would have */
        char anchored[80];
        snprintf(anchored, sizeof anchored, "/%s", pat);
        bool got = ignore_pattern_matches(anchored, path, false);
        bool want = ref_glob(pat, pat, path);
        if (got != want) {
            fprintf(stderr, "  %s vs %s: %d, the reference says %d\n", pat, path, got, want);
            CHECK(got == want);
            return;
        }
        compared++;
        matched += want;
    }
    CHECK(compared > 50000);
    CHECK(matched > 1000);      /* not only non-matches compared */
}

/* ---- lists: the last pattern decides --------------------------------------------- */

TEST(list_negation_and_order)
{
    ignore_rules *r = rules_of("*.log\n!keep.log\n");
    CHECK_EQ_INT(ignore_rules_match(r, "other.log", false), IGNORE_EXCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "keep.log", false), IGNORE_INCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "sub/keep.log", false), IGNORE_INCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "notes.md", false), IGNORE_NO_MATCH);
    ignore_rules_free(r);
    /* the other way round: the later pattern wins */
    r = rules_of("!keep.log\n*.log\n");
    CHECK_EQ_INT(ignore_rules_match(r, "keep.log", false), IGNORE_EXCLUDE);
    ignore_rules_free(r);
    /* excluded again after a re-include */
    r = rules_of("*.md\n!*.md\nsecret.md\n");
    CHECK_EQ_INT(ignore_rules_match(r, "a.md", false), IGNORE_INCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "secret.md", false), IGNORE_EXCLUDE);
    ignore_rules_free(r);
    CHECK_EQ_INT(ignore_rules_match(NULL, "x", false), IGNORE_NO_MATCH);
}

/* ---- the stack: nested files and the folder's excludes ---------------------------- */

TEST(stack_deeper_overrides)
{
    ignore_stack s;
    ignore_stack_init(&s, NULL);
    CHECK_EQ_INT(ignore_stack_push(&s, rules_of("*.txt\n"), 0), 0);
    CHECK(ignore_stack_excludes(&s, "a.txt", false));
    CHECK(ignore_stack_excludes(&s, "sub/a.txt", false));
    CHECK_EQ_INT(ignore_stack_push(&s, rules_of("!notes.txt\n"), strlen("sub")), 0);
    CHECK(!ignore_stack_excludes(&s, "sub/notes.txt", false));
    CHECK(ignore_stack_excludes(&s, "sub/other.txt", false));
    CHECK(!ignore_stack_excludes(&s, "sub/x.md", false));
    /* a folder without ignore files in between */
    CHECK_EQ_INT(ignore_stack_push(&s, NULL, strlen("sub/deeper")), 0);
    CHECK(!ignore_stack_excludes(&s, "sub/deeper/notes.txt", false));
    CHECK(ignore_stack_excludes(&s, "sub/deeper/b.txt", false));
    ignore_stack_pop(&s);
    ignore_stack_pop(&s);
    /* back at the root: the sub folder's file no longer counts */
    CHECK(ignore_stack_excludes(&s, "notes.txt", false));
    ignore_stack_clear(&s);
    CHECK_EQ_INT(s.depth, 0);
    CHECK(!ignore_stack_excludes(&s, "a.txt", false));
}

TEST(stack_anchored_to_its_file)
{
    ignore_stack s;
    ignore_stack_init(&s, NULL);
    ignore_stack_push(&s, NULL, 0);
    ignore_stack_push(&s, rules_of("/x.md\nout/\nlib/*.c\n"), strlen("sub"));
    CHECK(ignore_stack_excludes(&s, "sub/x.md", false));
    CHECK(!ignore_stack_excludes(&s, "sub/y/x.md", false));
    CHECK(ignore_stack_excludes(&s, "sub/out", true));
    CHECK(ignore_stack_excludes(&s, "sub/lib/a.c", false));
    ignore_stack_push(&s, NULL, strlen("sub/y"));
    CHECK(!ignore_stack_excludes(&s, "sub/y/x.md", false));
    CHECK(ignore_stack_excludes(&s, "sub/y/out", true));   /* "out/" has no middle slash */
    CHECK(!ignore_stack_excludes(&s, "sub/y/lib/a.c", false));
    ignore_stack_clear(&s);
}

TEST(stack_excludes_come_first)
{
    ignore_rules *top = rules_of("!a.log\nsecret.md\ndrafts/**\n");
    ignore_stack s;
    ignore_stack_init(&s, top);
    CHECK(!ignore_stack_excludes(&s, "x.md", false));
    CHECK(ignore_stack_excludes(&s, "secret.md", false));
    CHECK(ignore_stack_excludes(&s, "drafts/a.md", false));
    CHECK(!ignore_stack_excludes(&s, "drafts", true));
    CHECK(!ignore_stack_excludes(&s, "sub/drafts/a.md", false));   /* anchored at the root */
    ignore_stack_push(&s, rules_of("*.log\n"), 0);
    ignore_stack_push(&s, rules_of("!secret.md\n"), strlen("sub"));
    CHECK(!ignore_stack_excludes(&s, "a.log", false));     /* re-included by the excludes */
    CHECK(ignore_stack_excludes(&s, "b.log", false));
    CHECK(ignore_stack_excludes(&s, "sub/secret.md", false)); /* a file cannot undo them */
    ignore_stack_clear(&s);
    ignore_rules_free(top);
}

TEST(stack_cap)
{
    ignore_stack s;
    ignore_stack_init(&s, NULL);
    for (int i = 0; i < IGNORE_STACK_MAX; i++)
        CHECK_EQ_INT(ignore_stack_push(&s, rules_of("x\n"), (size_t)i * 2), 0);
    CHECK_EQ_INT(ignore_stack_push(&s, rules_of("y\n"), 200), -1);     /* freed, not leaked */
    CHECK_EQ_INT(s.depth, IGNORE_STACK_MAX);
    ignore_stack_clear(&s);
    ignore_stack_pop(&s);                   /* on an empty stack: nothing */
    CHECK_EQ_INT(s.depth, 0);
}

TEST(stack_path_not_below_level)
{
    /* a path that is not under a level's folder is not judged by it */
    ignore_stack s;
    ignore_stack_init(&s, NULL);
    ignore_stack_push(&s, rules_of("*\n"), strlen("sub"));
    CHECK(!ignore_stack_excludes(&s, "other/a", false));
    CHECK(!ignore_stack_excludes(&s, "sub", true));
    CHECK(!ignore_stack_excludes(&s, "subx/a", false));
    CHECK(ignore_stack_excludes(&s, "sub/a", false));
    ignore_stack_clear(&s);
}

/* ---- caps ---------------------------------------------------------------------------- */

TEST(cap_pattern_length)
{
    char line[IGNORE_MAX_PATTERN + 2];
    memset(line, 'a', sizeof line);
    ignore_rules *r = ignore_rules_new();
    CHECK_EQ_INT(ignore_rules_add(r, line, IGNORE_MAX_PATTERN), IGNORE_ADDED);
    CHECK_EQ_INT(ignore_rules_add(r, line, IGNORE_MAX_PATTERN + 1), IGNORE_TOO_LONG);
    CHECK_EQ_INT(ignore_rules_count(r), 1);
    ignore_rules_free(r);
}

TEST(cap_pattern_count)
{
    buf text = buf_make(0);
    for (int i = 0; i < IGNORE_MAX_PATTERNS + 10; i++)
        buf_printf(&text, "# comment\nf%d.md\n", i);
    ignore_rules *r = ignore_rules_new();
    ignore_report rep = { 0 };
    ignore_rules_parse(r, text.data, text.len, &rep);
    CHECK_EQ_INT(rep.added, IGNORE_MAX_PATTERNS);
    CHECK_EQ_INT(rep.over_cap, 10);
    CHECK_EQ_INT(ignore_rules_count(r), IGNORE_MAX_PATTERNS);
    /* the first patterns are kept */
    CHECK_EQ_INT(ignore_rules_match(r, "f0.md", false), IGNORE_EXCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "f4095.md", false), IGNORE_EXCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "f4096.md", false), IGNORE_NO_MATCH);
    CHECK_EQ_INT(add(r, "more"), IGNORE_FULL);
    CHECK_EQ_INT(add(r, "# still a comment"), IGNORE_NOTHING);
    ignore_rules_free(r);
    buf_free(&text);
}

TEST(report_counts)
{
    char longline[IGNORE_MAX_PATTERN + 20];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = 0;
    buf text = buf_make(0);
    buf_printf(&text, "a\n\n# c\n[bad\n%s\nb\nfoo\\", longline);
    ignore_rules *r = ignore_rules_new();
    ignore_report rep = { 0 };
    ignore_rules_parse(r, text.data, text.len, &rep);
    CHECK_EQ_INT(rep.added, 2);
    CHECK_EQ_INT(rep.invalid, 2);
    CHECK_EQ_INT(rep.too_long, 1);
    CHECK_EQ_INT(rep.over_cap, 0);
    CHECK(!rep.truncated);
    ignore_rules_free(r);
    buf_free(&text);
}

/* ---- reading files ---------------------------------------------------------------------- */

static char g_dir[512];

static int fresh_dir(void)
{
    const char *tmp = getenv("HEARTH_TMP");
    snprintf(g_dir, sizeof g_dir, "%s/hearth-test-ignore-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        _exit(1);
    }
    return open(g_dir, O_RDONLY | O_DIRECTORY);
}

static void put(const char *name, const char *text, size_t len)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}

static void remove_dir(int dfd)
{
    close(dfd);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0);
}

TEST(load_git_then_hearth)
{
    int dfd = fresh_dir();
    put(IGNORE_FILE_GIT, "*.md\nbuild/\n", 12);
    put(IGNORE_FILE_HEARTH, "!keep.md\n", 9);
    ignore_rules *r = ignore_rules_new();
    ignore_report rep = { 0 };
    CHECK_EQ_INT(ignore_rules_load(r, dfd, IGNORE_FILE_GIT, &rep), 1);
    CHECK_EQ_INT(ignore_rules_load(r, dfd, IGNORE_FILE_HEARTH, &rep), 1);
    CHECK_EQ_INT(rep.added, 3);
    CHECK_EQ_INT(ignore_rules_match(r, "keep.md", false), IGNORE_INCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "other.md", false), IGNORE_EXCLUDE);
    CHECK_EQ_INT(ignore_rules_match(r, "build", true), IGNORE_EXCLUDE);
    /* none there */
    CHECK_EQ_INT(ignore_rules_load(r, dfd, "no-such-file", NULL), 0);
    ignore_rules_free(r);
    remove_dir(dfd);
}

TEST(load_no_symlink_no_fifo_no_dir)
{
    int dfd = fresh_dir();
    put("elsewhere", "*\n", 2);
    char p[700];
    snprintf(p, sizeof p, "%s/%s", g_dir, IGNORE_FILE_GIT);
    CHECK(symlink("elsewhere", p) == 0);
    snprintf(p, sizeof p, "%s/%s", g_dir, IGNORE_FILE_HEARTH);
    CHECK(mkfifo(p, 0600) == 0);
    ignore_rules *r = ignore_rules_new();
    CHECK_EQ_INT(ignore_rules_load(r, dfd, IGNORE_FILE_GIT, NULL), 0);    /* not followed */
    CHECK_EQ_INT(ignore_rules_load(r, dfd, IGNORE_FILE_HEARTH, NULL), 0); /* not waited on */
    snprintf(p, sizeof p, "%s/dir", g_dir);
    CHECK(mkdir(p, 0700) == 0);
    CHECK_EQ_INT(ignore_rules_load(r, dfd, "dir", NULL), 0);
    CHECK_EQ_INT(ignore_rules_count(r), 0);
    ignore_rules_free(r);
    remove_dir(dfd);
}

TEST(load_unreadable)
{
    if (geteuid() == 0)
        return;                 /* root reads anything */
    int dfd = fresh_dir();
    put(IGNORE_FILE_GIT, "*.md\n", 5);
    char p[700];
    snprintf(p, sizeof p, "%s/%s", g_dir, IGNORE_FILE_GIT);
    CHECK(chmod(p, 0) == 0);
    ignore_rules *r = ignore_rules_new();
    CHECK_EQ_INT(ignore_rules_load(r, dfd, IGNORE_FILE_GIT, NULL), -1);
    CHECK_EQ_INT(errno, EACCES);
    ignore_rules_free(r);
    remove_dir(dfd);
}

TEST(load_over_cap_uses_the_start)
{
    int dfd = fresh_dir();
    /* whole lines up to past the cap; the line across the cap is dropped */
    buf text = buf_make(0);
    int lines = 0;
    while (text.len < IGNORE_MAX_FILE + 1000) {
        buf_printf(&text, "pattern-%05d.txt\n", lines++);
    }
    put(IGNORE_FILE_GIT, text.data, text.len);
    ignore_rules *r = ignore_rules_new();
    ignore_report rep = { 0 };
    CHECK_EQ_INT(ignore_rules_load(r, dfd, IGNORE_FILE_GIT, &rep), 1);
    CHECK(rep.truncated);
    size_t whole = IGNORE_MAX_FILE / strlen("pattern-00000.txt\n");     /* lines within the cap */
    size_t want = whole < IGNORE_MAX_PATTERNS ? whole : IGNORE_MAX_PATTERNS;
    CHECK_EQ_INT(ignore_rules_count(r), want);
    CHECK_EQ_INT(ignore_rules_match(r, "pattern-00000.txt", false), IGNORE_EXCLUDE);
    CHECK_EQ_INT(rep.invalid + rep.too_long, 0);   /* no half line read as a pattern */
    ignore_rules_free(r);

    /* a file of exactly the cap is read whole */
    text.len = 0;
    while (text.len + 10 <= IGNORE_MAX_FILE)
        buf_puts(&text, "# padding\n");
    while (text.len < IGNORE_MAX_FILE - 6)
        buf_putc(&text, '#');
    buf_puts(&text, "\nx.md\n");
    CHECK_EQ_INT(text.len, IGNORE_MAX_FILE);
    put(IGNORE_FILE_GIT, text.data, text.len);
    r = ignore_rules_new();
    ignore_report rep2 = { 0 };
    CHECK_EQ_INT(ignore_rules_load(r, dfd, IGNORE_FILE_GIT, &rep2), 1);
    CHECK(!rep2.truncated);
    CHECK_EQ_INT(ignore_rules_match(r, "x.md", false), IGNORE_EXCLUDE);
    ignore_rules_free(r);
    buf_free(&text);
    remove_dir(dfd);
}

int main(void)
{
    RUN(lines_blank_and_comments);
    RUN(lines_escaped_hash_and_bang);
    RUN(lines_trailing_spaces_and_cr);
    RUN(lines_invalid);
    RUN(name_at_any_depth);
    RUN(anchored);
    RUN(dir_only);
    RUN(question_mark);
    RUN(star);
    RUN(classes);
    RUN(escapes);
    RUN(case_sensitive);
    RUN(starstar_leading);
    RUN(starstar_trailing);
    RUN(starstar_middle);
    RUN(starstar_elsewhere_is_star);
    RUN(no_runaway_backtracking);
    RUN(glob_agrees_with_the_reference);
    RUN(list_negation_and_order);
    RUN(stack_deeper_overrides);
    RUN(stack_anchored_to_its_file);
    RUN(stack_excludes_come_first);
    RUN(stack_cap);
    RUN(stack_path_not_below_level);
    RUN(cap_pattern_length);
    RUN(cap_pattern_count);
    RUN(report_counts);
    RUN(load_git_then_hearth);
    RUN(load_no_symlink_no_fifo_no_dir);
    RUN(load_unreadable);
    RUN(load_over_cap_uses_the_start);
    return check_summary();
}
