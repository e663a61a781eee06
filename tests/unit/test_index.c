/*
 * test_index.c: unit tests for the retrieval index:
 *
 *   src/index/text.{h,c}    file kinds, cleaning (newlines, control bytes,
 *                           UTF-8 / Latin-1, HTML), chunking (sizes, breaks,
 *                           UTF-8 edges, line numbers) and chunk hygiene
 *   src/index/search.{h,c}  the FTS5 query made from free text (never one
 *                           SQLite rejects), BM25 / vector / hybrid (RRF)
 *                           ranking
 *   src/index/db.{h,c}      folders (with their exclude patterns, also in a
 *                           file from before them), scans, the indexer's
 *                           durable queue (claim, store, fail, release,
 *                           recover, retry),
 *                           BM25 and cosine look-ups, passages, listing, and
 *                           a damaged file refused untouched
 *
 * Each database test has a fresh folder (under $HEARTH_TMP when set, else
 * /tmp) with a real SQLite file in it, removed at the end.
 */
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "check.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/utf8.h"
#include "index/db.h"
#include "index/search.h"
#include "index/text.h"
#include "index/vcache.h"

/* ---- helpers: temp folder, database -------------------------------------- */

static char g_dir[512];
static char g_db[600];

/* A fresh folder for the current test, and the database path in it. */
static void fresh_dir(void)
{
    const char *tmp = getenv("HEARTH_TMP");
    snprintf(g_dir, sizeof g_dir, "%s/hearth-test-index-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        _exit(1);
    }
    snprintf(g_db, sizeof g_db, "%s/index.db", g_dir);
}

static void remove_dir(void)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    char p[640];
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        snprintf(p, sizeof p, "%s%s", g_db, suffix[i]);
        unlink(p);
    }
    rmdir(g_dir);
}

/* vector memory for the indexes the tests open (0: vectors from disk) */
static size_t g_vecmem;

/* idb_nearest, with the vectors in memory filled first (as the indexer's
 * thread does) when the tests run with vector memory */
static int nearest_of(idb *d, const char *model, const float *q, int dim, idb_hit *out,
                      int limit)
{
    if (g_vecmem)
        idb_vector_memory_fill(d, model);
    return idb_nearest(d, model, q, dim, NULL, out, limit);
}

static idb *open_fresh(void)
{
    fresh_dir();
    char err[512] = "";
    idb *d = idb_open(g_db, err, sizeof err);
    if (!d)
        fprintf(stderr, "  idb_open: %s\n", err);
    else if (g_vecmem)
        idb_set_vector_memory(d, g_vecmem);
    return d;
}

static idb *reopen(void)
{
    char err[512] = "";
    idb *d = idb_open(g_db, err, sizeof err);
    if (!d)
        fprintf(stderr, "  idb_open (again): %s\n", err);
    return d;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc(len > 0 ? (size_t)len : 1);
    *n = data ? fread(data, 1, (size_t)len, f) : 0;
    fclose(f);
    return data;
}

/* FTS5's own consistency check of chunks_fts against chunks, through a
 * second connection (the index's is private to db.c). */
static bool fts_consistent(void)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return false;
    }
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, "INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)",
                          NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "  fts integrity-check: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc == SQLITE_OK;
}

/* One file of a walk: size and mtime as given, kind "text". */
static idb_seen seen_file(const char *path, int64_t size, int64_t mtime)
{
    return (idb_seen){ path, size, mtime, "text" };
}

/* Walk folder finding paths[0..n) (sizes 100 + i, mtime 1000). */
static int scan_paths(idb *d, int64_t folder, const char *const *paths, size_t n, double now,
                      int *added, int *removed)
{
    idb_seen f[32];
    for (size_t i = 0; i < n && i < 32; i++)
        f[i] = seen_file(paths[i], 100 + (int64_t)i, 1000);
    return idb_scan(d, folder, f, n, true, now, added, removed);
}

/* The one document with this path (0 found, 1 not). */
static int doc_of(idb *d, const char *path, idb_doc *out)
{
    idb_doc *all = NULL;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    if (idb_docs(d, -1, 1000, NULL, &all, &n) < 0)
        return -1;
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (!found && !strcmp(all[i].path, path)) {
            *out = all[i];
            memset(&all[i], 0, sizeof all[i]);
            found = 1;
        }
    idb_docs_free(all, n);
    return found;
}

static int state_of(idb *d, const char *path)
{
    idb_doc x;
    if (doc_of(d, path, &x) != 1)
        return -100;
    int s = (int)x.state;
    idb_doc_free(&x);
    return s;
}

/* Claim the next due document; it must be `path`. */
static bool claim_path(idb *d, double now, const char *path, idb_doc *out)
{
    int rc = idb_claim(d, now, out);
    if (rc != 1) {
        fprintf(stderr, "  idb_claim(%s) = %d\n", path, rc);
        return false;
    }
    if (strcmp(out->path, path)) {
        fprintf(stderr, "  claimed %s, wanted %s\n", out->path, path);
        idb_doc_free(out);
        return false;
    }
    return true;
}

/* Store texts[0..n) as doc's chunks (chunk i on lines 2i+1..2i+2); vecs:
 * n * dim floats, or NULL. */
static int store_texts(idb *d, const idb_doc *doc, const char *const *texts, size_t n,
                       const char *model, int dim, const float *vecs, double now)
{
    idb_chunk_in *c = calloc(n ? n : 1, sizeof *c);
    if (!c)
        return -1;
    for (size_t i = 0; i < n; i++)
        c[i] = (idb_chunk_in){ texts[i], strlen(texts[i]), 2 * (int)i + 1, 2 * (int)i + 2,
                               vecs ? vecs + i * (size_t)dim : NULL, -1, -1 };
    int rc = idb_store(d, doc, c, n, 0, model, dim, NULL, now);
    free(c);
    return rc;
}

/* Scan one file into folder, claim it and store texts: the doc's id, or -1. */
static int64_t index_one(idb *d, int64_t folder, const char *path, const char *const *texts,
                         size_t n, const char *model, int dim, const float *vecs)
{
    idb_seen f = seen_file(path, 100, 1000);
    int added, removed;
    /* one file per folder in these tests: scanning only it keeps the rest */
    if (idb_scan(d, folder, &f, 1, true, 100, &added, &removed) < 0)
        return -1;
    idb_doc doc;
    if (!claim_path(d, 100, path, &doc))
        return -1;
    int rc = store_texts(d, &doc, texts, n, model, dim, vecs, 101);
    int64_t id = doc.id;
    idb_doc_free(&doc);
    return rc == 0 ? id : -1;
}

/* BM25 hits for free text (quoted through search_fts_query), or -1. */
static int bm25_hits(idb *d, const char *q, idb_hit *out, int limit)
{
    buf b = buf_make(0);
    int terms = search_fts_query(q, strlen(q), &b);
    int n = terms > 0 ? idb_bm25(d, b.data, NULL, out, limit) : terms;
    buf_free(&b);
    return n;
}

static int bm25_count(idb *d, const char *q)
{
    idb_hit h[SEARCH_MAX_K];
    return bm25_hits(d, q, h, SEARCH_MAX_K);
}

/* ---- helpers: text ------------------------------------------------------- */

static size_t count_nl(const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '\n';
    return k;
}

/* 1-based line of the first occurrence of needle in p[0..n), or 0. */
static size_t line_of(const char *p, size_t n, const char *needle)
{
    const char *at = memmem(p, n, needle, strlen(needle));
    return at ? 1 + count_nl(p, (size_t)(at - p)) : 0;
}

/* text_clean into a fresh unlimited buf; the text is NUL-terminated. */
static buf cleaned(const char *p, size_t n, bool html)
{
    buf b = buf_make(0);
    if (text_clean(&b, p, n, html) < 0)
        fprintf(stderr, "  text_clean failed\n");
    if (!b.data) {                          /* data non-NULL even when empty */
        buf_putc(&b, 'x');
        buf_reset(&b);
    }
    return b;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* The invariants every chunking must keep: each chunk non-empty, trimmed,
 * at most CHUNK_MAX bytes and valid UTF-8 when the text is; in order and
 * not overlapping; every non-blank byte inside one; line0/line1 the text's
 * own. Returns false (having reported) on the first violation. */
static bool chunks_sound(const char *t, size_t n, const text_chunk *c, long nc)
{
    bool text_utf8 = utf8_valid(t, n);
    size_t prev_end = 0;
    for (long i = 0; i < nc; i++) {
        const text_chunk *k = &c[i];
        if (!(k->start < k->end && k->end <= n)) {
            fprintf(stderr, "  chunk %ld: bad range [%zu,%zu)\n", i, k->start, k->end);
            return false;
        }
        if (k->end - k->start > CHUNK_MAX) {
            fprintf(stderr, "  chunk %ld: %zu bytes > CHUNK_MAX\n", i, k->end - k->start);
            return false;
        }
        if (i > 0 && k->start < prev_end) {
            fprintf(stderr, "  chunk %ld overlaps or is out of order\n", i);
            return false;
        }
        if (is_blank(t[k->start]) || is_blank(t[k->end - 1])) {
            fprintf(stderr, "  chunk %ld not trimmed\n", i);
            return false;
        }
        if (text_utf8 && !utf8_valid(t + k->start, k->end - k->start)) {
            fprintf(stderr, "  chunk %ld splits a UTF-8 sequence\n", i);
            return false;
        }
        /* blanks only between the previous chunk and this one */
        for (size_t j = prev_end; j < k->start; j++)
            if (!is_blank(t[j])) {
                fprintf(stderr, "  byte %zu (before chunk %ld) is in no chunk\n", j, i);
                return false;
            }
        int want0 = 1 + (int)count_nl(t, k->start);
        int want1 = want0 + (int)count_nl(t + k->start, k->end - k->start);
        if (k->line0 != want0 || k->line1 != want1) {
            fprintf(stderr, "  chunk %ld: lines %d-%d, want %d-%d\n", i, k->line0, k->line1,
                    want0, want1);
            return false;
        }
        prev_end = k->end;
    }
    for (size_t j = prev_end; j < n; j++)
        if (!is_blank(t[j])) {
            fprintf(stderr, "  byte %zu (after the last chunk) is in no chunk\n", j);
            return false;
        }
    return true;
}

/* ==== text.c ============================================================== */

/* ---- file kinds ---------------------------------------------------------- */

TEST(kind_of_extensions)
{
    CHECK_EQ_INT(text_kind_of("notes.md"), TK_TEXT);
    CHECK_EQ_INT(text_kind_of("todo.txt"), TK_TEXT);
    CHECK_EQ_INT(text_kind_of("src/main.c"), TK_TEXT);
    CHECK_EQ_INT(text_kind_of("/home/u/config.yaml"), TK_TEXT);
    CHECK_EQ_INT(text_kind_of("page.html"), TK_HTML);
    CHECK_EQ_INT(text_kind_of("old/page.htm"), TK_HTML);
    CHECK_EQ_INT(text_kind_of("scan.png"), TK_IMAGE);
    CHECK_EQ_INT(text_kind_of("paper.pdf"), TK_IMAGE);
    CHECK_EQ_INT(text_kind_of("fax.tif"), TK_IMAGE);
    CHECK_EQ_INT(text_kind_of("memo.wav"), TK_AUDIO);
    CHECK_EQ_INT(text_kind_of("song.mp3"), TK_AUDIO);
    CHECK_EQ_INT(text_kind_of("setup.exe"), TK_NONE);
    CHECK_EQ_INT(text_kind_of("backup.zip"), TK_NONE);
    CHECK_EQ_INT(text_kind_of("archive.tar.gz"), TK_NONE);   /* the last extension counts */
    /* case-insensitive */
    CHECK_EQ_INT(text_kind_of("README.MD"), TK_TEXT);
    CHECK_EQ_INT(text_kind_of("Page.HtMl"), TK_HTML);
    CHECK_EQ_INT(text_kind_of("SCAN.PNG"), TK_IMAGE);
    CHECK_EQ_INT(text_kind_of("Memo.WAV"), TK_AUDIO);
    CHECK_EQ_INT(text_kind_of("SETUP.EXE"), TK_NONE);
    /* no extension: text (the indexer checks the bytes) */
    CHECK_EQ_INT(text_kind_of("README"), TK_TEXT);
    CHECK_EQ_INT(text_kind_of("/src/proj/Makefile"), TK_TEXT);
    /* a dot in a folder's name is not the file's extension */
    CHECK_EQ_INT(text_kind_of("/home/u/site.d/LICENSE"), TK_TEXT);
    CHECK_EQ_INT(text_kind_of("/tmp/x.zip/notes"), TK_TEXT);
    /* a leading dot is a hidden name, not an extension */
    CHECK_EQ_INT(text_kind_of(".bashrc"), TK_TEXT);
    CHECK_EQ_INT(text_kind_of("/home/u/.profile"), TK_TEXT);
    CHECK_EQ_INT(text_kind_of("/home/u/.hidden.png"), TK_IMAGE);
}

TEST(kind_names)
{
    CHECK_STR(text_kind_name(TK_TEXT), "text");
    CHECK_STR(text_kind_name(TK_HTML), "html");
    CHECK_STR(text_kind_name(TK_IMAGE), "image");
    CHECK_STR(text_kind_name(TK_AUDIO), "audio");
    CHECK_STR(text_kind_name(TK_NONE), "none");
}

TEST(looks_binary)
{
    CHECK(!text_looks_binary("hello, world\n", 13));
    CHECK(!text_looks_binary("", 0));
    static const char high[] = "Gr\xc3\xbc\xc3\x9f" "e \xff\xfe";
    CHECK(!text_looks_binary(high, sizeof high - 1));       /* high bytes are not binary */
    CHECK(text_looks_binary("he\0llo", 6));
    CHECK(text_looks_binary("h\0i\0", 4));                   /* UTF-16 */
    /* only the first 8 KiB are looked at */
    static char big[10000];
    memset(big, 'a', sizeof big);
    big[8191] = '\0';
    CHECK(text_looks_binary(big, sizeof big));
    big[8191] = 'a';
    big[8192] = '\0';
    CHECK(!text_looks_binary(big, sizeof big));
    big[8192] = 'a';
    CHECK(!text_looks_binary(big, sizeof big));
    /* n is respected: a NUL past n is not seen */
    CHECK(!text_looks_binary("abc\0", 3));
}

/* ---- cleaning ------------------------------------------------------------ */

TEST(clean_newlines)
{
    static const char in[] = "a\r\nb\rc\nd\r\n\r\ne\r";
    buf b = cleaned(in, sizeof in - 1, false);
    CHECK_STR(b.data, "a\nb\nc\nd\n\ne\n");
    /* one line ending each, so every line stays where it was */
    CHECK_EQ_INT(count_nl(b.data, b.len), 6);
    CHECK(memchr(b.data, '\r', b.len) == NULL);
    buf_free(&b);

    /* a CR alone at the very end, and CR CR LF (two endings) */
    b = cleaned("x\r\r\ny", 5, false);
    CHECK_STR(b.data, "x\n\ny");
    buf_free(&b);
}

TEST(clean_controls)
{
    static const char in[] = "x\ty\x01z\x1b[0m\x7f\n\fend\x00!\n\v.";
    buf b = cleaned(in, sizeof in - 1, false);
    CHECK_EQ_INT(b.len, sizeof in - 1);               /* one byte each */
    CHECK(b.data && !memcmp(b.data, "x\ty z [0m \n end !\n .", b.len));
    CHECK_EQ_INT(count_nl(b.data, b.len), count_nl(in, sizeof in - 1));
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.data[i];
        CHECK(c >= 0x20 || c == '\t' || c == '\n');
        CHECK(c != 0x7F);
    }
    buf_free(&b);
}

TEST(clean_utf8_kept)
{
    static const char in[] = "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x80\x93 \xe6\x97\xa5\xe6\x9c\xac"
                             "\xe8\xaa\x9e, \xe2\x82\xac 5, \xf0\x9f\x98\x80 \xe2\x80\x9cquoted\xe2\x80\x9d\n"
                             "second line\n";
    CHECK(utf8_valid(in, sizeof in - 1));
    buf b = cleaned(in, sizeof in - 1, false);
    CHECK_EQ_INT(b.len, sizeof in - 1);
    CHECK(b.data && !memcmp(b.data, in, sizeof in - 1));   /* byte for byte */
    buf_free(&b);
}

TEST(clean_stray_invalid_byte)
{
    /* mostly valid UTF-8 (many multi-byte characters) with one stray byte
     * in the middle and a truncated sequence at the end */
    buf in = buf_make(0), want = buf_make(0);
    for (int i = 0; i < 20; i++) {
        buf_puts(&in, "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln, sch\xc3\xb6n hier. ");
        buf_puts(&want, "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln, sch\xc3\xb6n hier. ");
        if (i == 10) {
            buf_puts(&in, "\xff");
            buf_puts(&want, "\xef\xbf\xbd");
        }
    }
    buf_puts(&in, "Ende \xe2\x82");
    buf_puts(&want, "Ende \xef\xbf\xbd\xef\xbf\xbd");
    buf b = cleaned(in.data, in.len, false);
    CHECK_EQ_INT(b.len, want.len);
    CHECK(b.data && want.data && b.len == want.len && !memcmp(b.data, want.data, want.len));
    CHECK(utf8_valid(b.data, b.len));
    buf_free(&b);
    buf_free(&in);
    buf_free(&want);
}

TEST(clean_latin1)
{
    static const char in[] = "caf\xe9 cr\xe8me br\xfbl\xe9" "e, na\xefve fa\xe7" "ade, \xe0 la carte.\n"
                             "Stra\xdf" "e, \xa9 2001 \x85 end\n";
    buf b = cleaned(in, sizeof in - 1, false);
    CHECK_STR(b.data, "caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e, na\xc3\xafve fa\xc3\xa7"
                      "ade, \xc3\xa0 la carte.\n"
                      "Stra\xc3\x9f" "e, \xc2\xa9 2001   end\n");    /* C1 control: a space */
    CHECK(b.data && utf8_valid(b.data, b.len));
    CHECK(b.data && strstr(b.data, "caf\xc3\xa9 cr\xc3\xa8me") != NULL);
    CHECK_EQ_INT(count_nl(b.data, b.len), 2);
    buf_free(&b);
}

TEST(clean_html_tags_and_hidden)
{
    static const char in[] =
        "<!DOCTYPE html>\n"
        "<html><head><title>Garden notes</title>\n"
        "<style>\n"
        "body { color: red; }\n"
        "</style>\n"
        "<script type=\"text/javascript\">\n"
        "var secret = 1 < 2;\n"
        "</script>\n"
        "</head>\n"
        "<body><p class=\"intro\n"
        "long\">Tomatoes need <b>deep</b> watering.</p>\n"
        "<SCRIPT>alert('x')</SCRIPT>after\n"
        "<Style type=x>p{}</STYLE>done\n"
        "</body></html>\n";
    size_t n = sizeof in - 1;
    buf b = cleaned(in, n, true);
    CHECK(b.data != NULL);
    if (!b.data)
        return;
    CHECK(strstr(b.data, "Garden notes") != NULL);
    CHECK(strstr(b.data, "Tomatoes need  deep  watering.") != NULL);   /* tags: spaces */
    CHECK(strstr(b.data, "after") != NULL);
    CHECK(strstr(b.data, "done") != NULL);
    /* script and style contents, tags and attributes all gone */
    CHECK(strstr(b.data, "color") == NULL);
    CHECK(strstr(b.data, "secret") == NULL);
    CHECK(strstr(b.data, "alert") == NULL);
    CHECK(strstr(b.data, "p{}") == NULL);
    CHECK(strstr(b.data, "class") == NULL);
    CHECK(strstr(b.data, "intro") == NULL);
    CHECK(strchr(b.data, '<') == NULL);
    CHECK(strchr(b.data, '>') == NULL);
    /* lines kept: the same number, and the text on its own line */
    CHECK_EQ_INT(count_nl(b.data, b.len), count_nl(in, n));
    CHECK_EQ_INT(line_of(b.data, b.len, "Garden notes"), line_of(in, n, "Garden notes"));
    CHECK_EQ_INT(line_of(b.data, b.len, "Tomatoes"), line_of(in, n, "Tomatoes"));
    CHECK_EQ_INT(line_of(b.data, b.len, "after"), line_of(in, n, "after"));
    CHECK_EQ_INT(line_of(b.data, b.len, "done"), line_of(in, n, "done"));
    buf_free(&b);
}

TEST(clean_html_lines_kept)
{
    /* tags, comments and hidden elements spanning lines */
    static const char in[] =
        "<div\n"
        "  class=\"x\"\n"
        "  id=y\n"
        ">first</div\n"
        ">\n"
        "<!-- a comment\n"
        "over lines -->second\n"
        "<script>\n"
        "\n"
        "x()\n"
        "</script><p>third</p>\n"
        "\n"
        "<a href=\"\n"
        "u\">fourth</a>\n"
        "fifth\n";
    size_t n = sizeof in - 1;
    buf b = cleaned(in, n, true);
    CHECK(b.data != NULL);
    if (!b.data)
        return;
    CHECK_EQ_INT(count_nl(b.data, b.len), count_nl(in, n));
    static const char *const words[] = { "first", "second", "third", "fourth", "fifth" };
    for (size_t i = 0; i < 5; i++) {
        CHECK(line_of(b.data, b.len, words[i]) > 0);
        CHECK_EQ_INT(line_of(b.data, b.len, words[i]), line_of(in, n, words[i]));
    }
    CHECK(strstr(b.data, "comment") == NULL);
    CHECK(strstr(b.data, "x()") == NULL);
    buf_free(&b);
}

TEST(clean_html_entities)
{
    static const char in[] = "a &amp; b &lt;c&gt; &quot;q&quot; &apos;s caf&#233; &#x41;&#X42; "
                             "x&nbsp;y &unknown; &amp &#; &#xZZ; AT&T &mdash; &#0; &#xD800;";
    buf b = cleaned(in, sizeof in - 1, true);
    CHECK_STR(b.data, "a & b <c> \"q\" 's caf\xc3\xa9 AB x y &unknown; &amp &#; &#xZZ; AT&T "
                      "\xe2\x80\x94 &#0; &#xD800;");
    buf_free(&b);

    /* without html, entities and tags are text */
    static const char plain[] = "<b>&amp;</b>";
    b = cleaned(plain, sizeof plain - 1, false);
    CHECK_STR(b.data, plain);
    buf_free(&b);
}

/* Numeric character references to control characters ("&#10;", "&#13;",
 * "&#1;") become spaces, as the raw bytes would: a decoded "&#10;" would
 * add a line and every passage below it would be cited a line too low.
 * (Found by this test's first version; fixed in text.c.) */
TEST(clean_html_numeric_entity_controls)
{
    static const char in[] = "a&#10;b\nc&#13;d&#1;e\nend";
    size_t n = sizeof in - 1;
    buf b = cleaned(in, n, true);
    CHECK(b.data != NULL);
    if (!b.data)
        return;
    CHECK_EQ_INT(count_nl(b.data, b.len), count_nl(in, n));
    CHECK_EQ_INT(line_of(b.data, b.len, "end"), line_of(in, n, "end"));
    CHECK(memchr(b.data, '\r', b.len) == NULL);
    CHECK(memchr(b.data, '\x01', b.len) == NULL);
    CHECK(strstr(b.data, "a b") == b.data);
    buf_free(&b);
}

/* The edges of a <script> or <style> element: never closed (the rest is
 * hidden, its lines kept), an end tag split across lines ("</script\n>",
 * its newline kept), and a longer tag name ("<styled-box>") that is not
 * one (its text kept). (Found by this test's first version; fixed.) */
TEST(clean_html_hidden_element_edges)
{
    static const char unclosed[] = "top\n<script>\nvar a;\n\n\n";
    size_t n = sizeof unclosed - 1;
    buf b = cleaned(unclosed, n, true);
    CHECK(b.data != NULL);
    if (!b.data)
        return;
    CHECK(strstr(b.data, "var") == NULL);               /* the rest is hidden: right */
    CHECK(strstr(b.data, "top") == b.data);
    CHECK_EQ_INT(count_nl(b.data, b.len), count_nl(unclosed, n));
    buf_free(&b);

    static const char split_end[] = "<script>x()</script\n>after\nnext";
    n = sizeof split_end - 1;
    b = cleaned(split_end, n, true);
    CHECK(b.data && strstr(b.data, "x()") == NULL);
    CHECK(b.data && strstr(b.data, "after") != NULL);
    CHECK_EQ_INT(count_nl(b.data, b.len), count_nl(split_end, n));
    CHECK_EQ_INT(line_of(b.data, b.len, "next"), line_of(split_end, n, "next"));
    buf_free(&b);

    static const char custom[] = "<styled-box>visible text</styled-box> tail";
    b = cleaned(custom, sizeof custom - 1, true);
    CHECK(b.data && strstr(b.data, "tail") != NULL);
    CHECK(b.data && strstr(b.data, "visible text") != NULL);
    buf_free(&b);
}

/* A literal '<' in HTML ("a < b", "x <= 3") is text: only a '<' followed
 * by a letter, '/', '!' or '?' opens a tag, as in HTML5 parsers. (Found by
 * this test's first version, where such text was swallowed; fixed.) */
TEST(clean_html_lone_lt)
{
    static const char in[] = "a < b and c\nnext line <b>bold</b>\n";
    size_t n = sizeof in - 1;
    buf b = cleaned(in, n, true);
    CHECK(b.data != NULL);
    if (!b.data)
        return;
    CHECK(strstr(b.data, "bold") != NULL);
    CHECK_EQ_INT(count_nl(b.data, b.len), count_nl(in, n));      /* lines kept: right */
    CHECK(strstr(b.data, "a < b and c") != NULL);
    CHECK(strstr(b.data, "next line") != NULL);
    buf_free(&b);

    static const char tail[] = "x < 3\nmore text\nno close";
    n = sizeof tail - 1;
    b = cleaned(tail, n, true);
    CHECK(b.data && strstr(b.data, "x") == b.data);
    CHECK_EQ_INT(count_nl(b.data, b.len), count_nl(tail, n));
    CHECK(b.data && strstr(b.data, "more text") != NULL);
    CHECK(b.data && strstr(b.data, "no close") != NULL);
    buf_free(&b);
}

TEST(clean_cap)
{
    static char in[200];
    memset(in, 'a', sizeof in);
    buf small = buf_make(16);
    CHECK_EQ_INT(text_clean(&small, in, sizeof in, false), -1);
    CHECK(small.len <= 16);
    buf_free(&small);

    /* output that outgrows a cap mid-way (Latin-1 doubles every byte) */
    static char hi[200];
    memset(hi, '\xe9', sizeof hi);
    buf mid = buf_make(300);
    CHECK_EQ_INT(text_clean(&mid, hi, sizeof hi, false), -1);
    CHECK(mid.len <= 300);
    buf_free(&mid);

    /* with room enough it works */
    buf big = buf_make(400);
    CHECK_EQ_INT(text_clean(&big, hi, sizeof hi, false), 0);
    CHECK_EQ_INT(big.len, 400);
    buf_free(&big);
}

/* ---- chunking ------------------------------------------------------------ */

TEST(chunks_empty)
{
    text_chunk *c = (text_chunk *)1;
    CHECK_EQ_INT(text_chunks("", 0, &c), 0);
    CHECK(c == NULL);
    static const char blank[] = "  \n\n\t \n   \n";
    c = (text_chunk *)1;
    CHECK_EQ_INT(text_chunks(blank, sizeof blank - 1, &c), 0);
    CHECK(c == NULL);
    free(c);
}

TEST(chunks_short)
{
    static const char t[] = "\n\n   Hello world.  \n\t\n";
    text_chunk *c = NULL;
    CHECK_EQ_INT(text_chunks(t, sizeof t - 1, &c), 1);
    if (c) {
        CHECK_EQ_INT(c[0].start, 5);
        CHECK_EQ_INT(c[0].end - c[0].start, strlen("Hello world."));
        CHECK(!memcmp(t + c[0].start, "Hello world.", c[0].end - c[0].start));
        CHECK_EQ_INT(c[0].line0, 3);
        CHECK_EQ_INT(c[0].line1, 3);
        CHECK(chunks_sound(t, sizeof t - 1, c, 1));
    }
    free(c);

    static const char t2[] = "a\nb\n\nc";
    c = NULL;
    CHECK_EQ_INT(text_chunks(t2, sizeof t2 - 1, &c), 1);
    if (c) {
        CHECK_EQ_INT(c[0].start, 0);
        CHECK_EQ_INT(c[0].end, sizeof t2 - 1);
        CHECK_EQ_INT(c[0].line0, 1);
        CHECK_EQ_INT(c[0].line1, 4);
    }
    free(c);
}

/* Deterministic pseudo-random numbers for generated texts. */
static unsigned rnd_state = 12345;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) % n;
}

static const char *const vocab[] = { "tomato", "water", "garden", "soil", "light", "leaf",
                                     "root", "sun", "seed", "grow", "compost", "pepper" };

/* A sentence of 4..12 words ending in '.'. */
static void sentence(buf *b)
{
    unsigned w = 4 + rnd(9);
    for (unsigned i = 0; i < w; i++) {
        if (i)
            buf_putc(b, ' ');
        buf_puts(b, vocab[rnd(12)]);
    }
    buf_putc(b, '.');
}

TEST(chunks_long_paragraphs)
{
    /* paragraphs of up to 700 bytes, separated by one or two blank lines,
     * some with line breaks inside */
    buf t = buf_make(0);
    rnd_state = 7;
    for (int p = 0; p < 80; p++) {
        if (p)
            buf_puts(&t, rnd(3) == 0 ? "\n\n\n" : "\n\n");
        buf para = buf_make(0);
        size_t want = 1 + rnd(700);
        while (para.len < want) {
            buf s = buf_make(0);
            sentence(&s);
            bool full = para.len && para.len + 1 + s.len > 700;
            if (!full) {
                if (para.len)
                    buf_puts(&para, rnd(5) == 0 ? "\n" : " ");
                buf_append(&para, s.data, s.len);
            }
            buf_free(&s);
            if (full)
                break;
        }
        buf_append(&t, para.data, para.len);
        buf_free(&para);
    }
    CHECK(t.len > 20000);
    text_chunk *c = NULL;
    long nc = text_chunks(t.data, t.len, &c);
    CHECK(nc > (long)(t.len / CHUNK_MAX));
    CHECK(chunks_sound(t.data, t.len, c, nc));
    /* every chunk but the last ends at a paragraph break (there is always
     * one in reach: no paragraph is longer than 700 bytes) */
    int at_para = 0;
    for (long i = 0; i + 1 < nc; i++) {
        size_t e = c[i].end;
        size_t j = e;
        while (j < t.len && (t.data[j] == ' ' || t.data[j] == '\t'))
            j++;
        bool para = j + 1 < t.len && t.data[j] == '\n';
        size_t k = j + 1;
        while (k < t.len && (t.data[k] == ' ' || t.data[k] == '\t'))
            k++;
        para = para && k < t.len && t.data[k] == '\n';
        at_para += para;
        if (!para)
            fprintf(stderr, "  chunk %ld ends mid-paragraph at %zu\n", i, e);
    }
    CHECK_EQ_INT(at_para, nc - 1);
    /* and they are not tiny: a chunk aims for CHUNK_TARGET */
    for (long i = 0; i + 1 < nc; i++)
        CHECK(c[i].end - c[i].start >= CHUNK_TARGET / 2 - 1);
    free(c);
    buf_free(&t);
}

TEST(chunks_sentences)
{
    /* one paragraph with no line breaks: chunks end after a sentence */
    buf t = buf_make(0);
    rnd_state = 99;
    while (t.len < 12000) {
        if (t.len)
            buf_putc(&t, ' ');
        sentence(&t);
    }
    text_chunk *c = NULL;
    long nc = text_chunks(t.data, t.len, &c);
    CHECK(nc >= 8);
    CHECK(chunks_sound(t.data, t.len, c, nc));
    for (long i = 0; i + 1 < nc; i++)
        CHECK(t.data[c[i].end - 1] == '.');
    free(c);
    buf_free(&t);
}

/* Paragraphs of 5 to 7 sentences of two lengths, separated by sep; how
 * many chunks (all but the last) end at a paragraph break. */
static int paragraph_ends(const char *sep, long *nchunks, bool *sound)
{
    buf t = buf_make(0);
    for (int p = 0; p < 20; p++) {
        if (p)
            buf_puts(&t, sep);
        for (int k = 0; k < 5 + p % 3; k++)
            buf_puts(&t, k % 2 ? "A much longer sentence with quite a few more words in it. "
                               : "Short one. ");
    }
    text_chunk *c = NULL;
    long nc = text_chunks(t.data, t.len, &c);
    *nchunks = nc;
    *sound = chunks_sound(t.data, t.len, c, nc);
    int para = 0;
    for (long i = 0; i + 1 < nc; i++) {
        const char *q = t.data + c[i].end;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q++ != '\n')
            continue;
        while (*q == ' ' || *q == '\t')
            q++;
        para += *q == '\n';
    }
    free(c);
    buf_free(&t);
    return para;
}

/* A line of spaces or tabs between paragraphs (what many editors leave,
 * and a blank line to Markdown and to any reader) is a paragraph break:
 * the same text with "\n  \n" instead of "\n\n" is cut at paragraphs
 * as often. (Found by this test's first version; fixed in cut().) */
TEST(chunks_blank_line_with_spaces)
{
    long n1 = 0, n2 = 0;
    bool ok1 = false, ok2 = false;
    int p1 = paragraph_ends("\n\n", &n1, &ok1);
    int p2 = paragraph_ends("\n  \n", &n2, &ok2);
    CHECK(ok1 && ok2);
    CHECK(n1 >= 3);
    CHECK_EQ_INT(p1, n1 - 1);       /* "\n\n": every cut at a paragraph */
    CHECK_EQ_INT(p2, n2 - 1);
}

TEST(chunks_long_word_utf8)
{
    /* one 10 kB "word" of two-byte characters, no break anywhere (after
     * one ASCII byte, so a cut CHUNK_MAX bytes in lands mid-character) */
    buf t = buf_make(0);
    buf_putc(&t, 'x');
    for (int i = 0; i < 5000; i++)
        buf_puts(&t, "\xc3\xa9");
    text_chunk *c = NULL;
    long nc = text_chunks(t.data, t.len, &c);
    CHECK(nc >= (long)(t.len / CHUNK_MAX));
    CHECK(chunks_sound(t.data, t.len, c, nc));      /* valid UTF-8, <= CHUNK_MAX */
    for (long i = 0; i < nc; i++) {
        CHECK(utf8_valid(t.data + c[i].start, c[i].end - c[i].start));
        CHECK(c[i].end - c[i].start <= CHUNK_MAX);
        if (i + 1 < nc) {
            CHECK(c[i].end - c[i].start >= CHUNK_MAX - 3);  /* hard cuts use the room */
            CHECK_EQ_INT(c[i].end, c[i + 1].start);         /* no byte lost */
        }
    }
    free(c);
    buf_free(&t);

    /* mixed 2-, 3- and 4-byte characters (9 bytes a round, prime to
     * CHUNK_MAX), so cuts land inside each kind */
    t = buf_make(0);
    while (t.len < 10000)
        buf_puts(&t, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    c = NULL;
    nc = text_chunks(t.data, t.len, &c);
    CHECK(nc >= (long)(t.len / CHUNK_MAX));
    CHECK(chunks_sound(t.data, t.len, c, nc));
    for (long i = 0; i < nc; i++)
        CHECK(utf8_valid(t.data + c[i].start, c[i].end - c[i].start));
    free(c);
    buf_free(&t);
}

TEST(chunks_line_numbers)
{
    /* many short lines and blank runs: line0/line1 the file's own */
    buf t = buf_make(0);
    rnd_state = 3;
    for (int i = 0; i < 1500; i++) {
        unsigned r = rnd(10);
        if (r < 2)
            buf_puts(&t, "\n");
        else if (r < 3)
            buf_puts(&t, "   \t\n");
        else {
            sentence(&t);
            buf_putc(&t, '\n');
        }
    }
    text_chunk *c = NULL;
    long nc = text_chunks(t.data, t.len, &c);
    CHECK(nc > 10);
    CHECK(chunks_sound(t.data, t.len, c, nc));
    for (long i = 0; i < nc; i++) {
        CHECK_EQ_INT(c[i].line0, 1 + (long)count_nl(t.data, c[i].start));
        CHECK(c[i].line1 >= c[i].line0);
        if (i)
            CHECK(c[i].line0 >= c[i - 1].line1);
    }
    free(c);
    buf_free(&t);
}

/* ---- hygiene ------------------------------------------------------------- */

static const char *hyg(const char *s, uint64_t *seen, size_t *nseen)
{
    return text_hygiene(s, strlen(s), seen, nseen);
}

TEST(hygiene_prose_kept)
{
    uint64_t seen[8];
    size_t nseen = 0;
    CHECK(hyg("The quick brown fox jumps over the lazy dog.", seen, &nseen) == NULL);
    CHECK_EQ_INT(nseen, 1);
    CHECK(hyg("Tomatoes want deep watering twice a week in July.", seen, &nseen) == NULL);
    CHECK_EQ_INT(nseen, 2);
    CHECK(seen[0] != seen[1]);
    /* non-ASCII letters count as letters */
    CHECK(hyg("\xc3\xa9\xc3\xa9\xc3\xa9 \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
              "\xd0\xbc\xd0\xb8\xd1\x80 \xd0\xb4\xd1\x80\xd1\x83\xd0\xb3", seen, &nseen) == NULL);
    CHECK_EQ_INT(nseen, 3);
}

TEST(hygiene_too_short)
{
    uint64_t seen[4];
    size_t nseen = 0;
    const char *why = hyg("short text", seen, &nseen);       /* 9 visible */
    CHECK(why != NULL);
    CHECK(why && strstr(why, "short") != NULL);
    CHECK(hyg("abcdefghijk", seen, &nseen) != NULL);         /* 11 */
    CHECK(hyg("  a b c d e f g h i j k  \n", seen, &nseen) != NULL);   /* blanks do not count */
    CHECK(hyg("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", seen, &nseen)
          != NULL);                                          /* 8 characters, 16 bytes */
    CHECK_EQ_INT(nseen, 0);                                  /* refused ones are not kept */
    CHECK(hyg("abcdefghijkl", seen, &nseen) == NULL);        /* 12: enough */
    CHECK_EQ_INT(nseen, 1);
}

TEST(hygiene_numbers_and_blobs)
{
    uint64_t seen[4];
    size_t nseen = 0;
    const char *why = hyg("| 2021 | 12.50 | 3,400 | 7 |\n| 2022 | 13.75 | 3,910 | 9 |\n"
                          "| 2023 | 15.00 | 4,205 | 11 |\n", seen, &nseen);
    CHECK(why != NULL);
    CHECK(why && strstr(why, "digits") != NULL);

    /* 1 kB of base64 (mostly letters, but one unbroken string) */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char blob[1025];
    rnd_state = 11;
    for (int i = 0; i < 1024; i++)
        blob[i] = b64[rnd(64)];
    blob[1024] = '\0';
    why = hyg(blob, seen, &nseen);
    CHECK(why != NULL);
    CHECK(why && strstr(why, "unbroken") != NULL);

    /* base64 in 76-character lines, as in mail */
    char lines[1100];
    size_t k = 0;
    for (int i = 0; i < 1024; i++) {
        lines[k++] = blob[i];
        if (i % 76 == 75)
            lines[k++] = '\n';
    }
    lines[k] = '\0';
    CHECK(hyg(lines, seen, &nseen) != NULL);
    CHECK_EQ_INT(nseen, 0);
}

TEST(hygiene_repeats)
{
    uint64_t seen[8];
    size_t nseen = 0;
    CHECK(hyg("Water the tomatoes every morning before it gets hot.", seen, &nseen) == NULL);
    CHECK_EQ_INT(nseen, 1);
    uint64_t first = seen[0];
    const char *why = hyg("water  THE tomatoes\nevery\tmorning before it gets   HOT.", seen, &nseen);
    CHECK(why != NULL);
    CHECK(why && strstr(why, "a repeat") == why);
    CHECK_EQ_INT(nseen, 1);                     /* a repeat is not added */
    CHECK(seen[0] == first);
    /* different words are no repeat */
    CHECK(hyg("Water the peppers every morning before it gets hot.", seen, &nseen) == NULL);
    CHECK_EQ_INT(nseen, 2);
    /* word boundaries matter: joined words differ */
    CHECK(hyg("Water the tomatoeseverymorning before it gets hot.", seen, &nseen) == NULL);
    CHECK_EQ_INT(nseen, 3);
    /* a fresh list forgets */
    size_t fresh = 0;
    CHECK(hyg("Water the tomatoes every morning before it gets hot.", seen + 4, &fresh) == NULL);
    CHECK_EQ_INT(fresh, 1);
}

/* ==== search.c: the FTS5 query ============================================ */

static int fts(const char *q, buf *out)
{
    buf_reset(out);
    return search_fts_query(q, strlen(q), out);
}

TEST(fts_query_words)
{
    buf b = buf_make(0);
    CHECK_EQ_INT(fts("When to water tomatoes?", &b), 4);
    CHECK_STR(b.data, "\"When\" OR \"to\" OR \"water\" OR \"tomatoes\"");
    CHECK_EQ_INT(fts("tomato", &b), 1);
    CHECK_STR(b.data, "\"tomato\"");
    /* digits are word bytes, punctuation separates; bytes past ASCII are letters */
    CHECK_EQ_INT(fts("ip-10.0.0.1 caf\xc3\xa9!", &b), 5);
    CHECK_STR(b.data, "\"ip\" OR \"10\" OR \"0\" OR \"1\" OR \"caf\xc3\xa9\"");
    buf_free(&b);
}

TEST(fts_query_dups_and_limits)
{
    buf b = buf_make(0);
    /* duplicates (any case) once, the first spelling kept */
    CHECK_EQ_INT(fts("Water water WATER tomatoes wAtEr Tomatoes", &b), 2);
    CHECK_STR(b.data, "\"Water\" OR \"tomatoes\"");
    /* no word characters: nothing to search for */
    CHECK_EQ_INT(fts("?!  -- \"\" () * ^ :", &b), 0);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(fts("", &b), 0);
    CHECK_EQ_INT(search_fts_query(NULL, 0, &b), 0);
    /* n is respected */
    buf_reset(&b);
    CHECK_EQ_INT(search_fts_query("water tomatoes", 5, &b), 1);
    CHECK_STR(b.data, "\"water\"");
    /* at most SEARCH_MAX_TERMS words */
    buf q = buf_make(0);
    for (int i = 0; i < 100; i++)
        buf_printf(&q, "w%d ", i);
    buf_reset(&b);
    CHECK_EQ_INT(search_fts_query(q.data, q.len, &b), SEARCH_MAX_TERMS);
    int quotes = 0;
    for (size_t i = 0; i < b.len; i++)
        quotes += b.data[i] == '"';
    CHECK_EQ_INT(quotes, 2 * SEARCH_MAX_TERMS);
    char last[32];
    snprintf(last, sizeof last, "\"w%d\"", SEARCH_MAX_TERMS - 1);
    CHECK(b.len >= strlen(last) && !strcmp(b.data + b.len - strlen(last), last));
    CHECK(strstr(b.data, "\"w64\"") == NULL);
    /* duplicates do not use up the limit */
    buf_reset(&q);
    for (int i = 0; i < 200; i++)
        buf_puts(&q, "same ");
    buf_puts(&q, "other");
    CHECK_EQ_INT(fts(q.data, &b), 2);
    CHECK_STR(b.data, "\"same\" OR \"other\"");
    /* a cap too small: -1 */
    buf tiny = buf_make(8);
    CHECK_EQ_INT(search_fts_query("water tomatoes", 14, &tiny), -1);
    buf_free(&tiny);
    buf_free(&q);
    buf_free(&b);
}

TEST(fts_query_never_rejected)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/notes", NULL, 1);
    static const char *const texts[] = { "Water the tomatoes near the fence.",
                                         "AND OR NOT NEAR are plain words here: text col." };
    CHECK(index_one(d, f, "/notes/a.md", texts, 2, NULL, 0, NULL) > 0);

    /* the test can see a rejected query: raw FTS5 syntax errors are -1 */
    idb_hit h[SEARCH_MAX_K];
    CHECK_EQ_INT(idb_bm25(d, "\"unbalanced", NULL, h, 10), -1);
    CHECK_EQ_INT(idb_bm25(d, "water AND", NULL, h, 10), -1);
    CHECK_EQ_INT(idb_bm25(d, "NEAR(water", NULL, h, 10), -1);

    static const char *const nasty[] = {
        "\"", "\"water", "water\"", "\"\"\"", "water*", "*", "*water", "NEAR(water tomatoes, 2)",
        "NEAR(water", "-water", "^water", "+water", "text:water", "col:water", "{text}: water",
        "(water OR", ")", "water)", "AND", "OR", "NOT", "water AND", "AND water", "water NOT",
        "NOT NOT NOT", "OR OR", "a\"b\"c", "'", "''water''", "water'", "\\", "water\\",
        "water;DROP TABLE chunks;--", "%", "_", "\x01\x02", "\xff\xfe", "\xc3", "\x80\x80",
        "\xe2\x82\xac \xe2\x82\xbf", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xf0\x9f\x98\x80",
        "water\xe2\x80\x8b", "NEAR/3", "water + tomatoes", "water.tomatoes", "0", "00000",
    };
    for (size_t i = 0; i < sizeof nasty / sizeof *nasty; i++) {
        buf q = buf_make(0);
        int terms = search_fts_query(nasty[i], strlen(nasty[i]), &q);
        CHECK(terms >= 0);
        if (terms > 0) {
            int n = idb_bm25(d, q.data, NULL, h, 10);
            if (n < 0)
                fprintf(stderr, "  query %zu (%s) rejected as %s\n", i, nasty[i], q.data);
            CHECK(n >= 0);
        }
        /* and through search_run */
        search_hit out[10];
        CHECK(search_run(d, SEARCH_BM25, nasty[i], strlen(nasty[i]), NULL, NULL, 0, 10, NULL, out) >= 0);
        buf_free(&q);
    }
    /* the operators are searched as words */
    CHECK_EQ_INT(bm25_count(d, "NEAR(water"), 2);
    CHECK_EQ_INT(bm25_count(d, "text:"), 1);
    CHECK_EQ_INT(bm25_count(d, "\"NOT\""), 1);
    CHECK_EQ_INT(bm25_count(d, "-fence*"), 1);
    idb_close(d);
    remove_dir();
}

/* ==== db.c ================================================================ */

/* ---- opening, folders ---------------------------------------------------- */

TEST(open_mode_and_names)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    struct stat st;
    CHECK(stat(g_db, &st) == 0 && (st.st_mode & 0777) == 0600);
    int64_t f = idb_folder_add(d, "/x", NULL, 1);
    CHECK(f > 0);
    char wal[640];
    snprintf(wal, sizeof wal, "%s-wal", g_db);
    if (stat(wal, &st) == 0)
        CHECK((st.st_mode & 0777) == 0600);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.folders, 1);
    CHECK_EQ_INT(c.chunks, 0);
    for (int i = 0; i < DOC_NSTATES; i++)
        CHECK_EQ_INT(c.docs[i], 0);
    idb_close(d);

    /* the names */
    static const char *const want[DOC_NSTATES] = { "pending", "indexed", "failed", "dead" };
    for (int i = 0; i < DOC_NSTATES; i++) {
        CHECK_STR(doc_state_name((doc_state)i), want[i]);
        CHECK_EQ_INT(doc_state_parse(want[i]), i);
    }
    CHECK_STR(doc_state_name(DOC_NSTATES), "?");
    CHECK_EQ_INT(doc_state_parse("Pending"), -1);
    CHECK_EQ_INT(doc_state_parse(""), -1);
    CHECK_STR(search_mode_name(SEARCH_HYBRID), "hybrid");
    CHECK_STR(search_mode_name(SEARCH_BM25), "bm25");
    CHECK_STR(search_mode_name(SEARCH_VECTOR), "vector");
    CHECK_EQ_INT(search_mode_parse("hybrid"), SEARCH_HYBRID);
    CHECK_EQ_INT(search_mode_parse("bm25"), SEARCH_BM25);
    CHECK_EQ_INT(search_mode_parse("vector"), SEARCH_VECTOR);
    CHECK_EQ_INT(search_mode_parse("BM25"), -1);
    CHECK_EQ_INT(search_mode_parse(""), -1);
    remove_dir();
}

TEST(folders)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t a = idb_folder_add(d, "/home/u/notes", NULL, 10);
    int64_t b = idb_folder_add(d, "/home/u/docs", NULL, 20);
    CHECK(a > 0);
    CHECK(b > 0 && b != a);
    CHECK_EQ_INT(idb_folder_add(d, "/home/u/notes", NULL, 30), a);    /* the same id */
    CHECK_EQ_INT(idb_folder_add(d, "/home/u/docs", NULL, 40), b);

    static const char *const paths[] = { "/home/u/notes/1.md", "/home/u/notes/2.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, a, paths, 2, 50, &added, &removed), 0);

    idb_folder *fs = NULL;
    size_t n = 0;
    CHECK_EQ_INT(idb_folders(d, &fs, &n), 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_EQ_INT(fs[0].id, a);                  /* oldest first */
        CHECK_STR(fs[0].path, "/home/u/notes");
        CHECK(fs[0].added == 10);                   /* kept from the first add */
        CHECK(fs[0].last_scan == 50);
        CHECK_EQ_INT(fs[0].docs, 2);
        CHECK_EQ_INT(fs[1].id, b);
        CHECK_STR(fs[1].path, "/home/u/docs");
        CHECK(fs[1].last_scan == 0);
        CHECK_EQ_INT(fs[1].docs, 0);
    }
    idb_folders_free(fs, n);

    /* survives a reopen */
    idb_close(d);
    d = reopen();
    CHECK(d != NULL);
    if (!d)
        return;
    CHECK_EQ_INT(idb_folder_add(d, "/home/u/docs", NULL, 60), b);
    CHECK_EQ_INT(idb_folder_remove(d, "/nowhere"), 0);
    idb_close(d);
    remove_dir();
}

/* A folder's exclude patterns: set when added, replaced when given again,
 * kept when not (NULL), cleared with "". */
TEST(folder_excludes)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t a = idb_folder_add(d, "/vault", "*.min.js\nbuild/", 10);
    int64_t b = idb_folder_add(d, "/plain", NULL, 10);
    CHECK(a > 0 && b > 0);
    idb_folder *fs = NULL;
    size_t n = 0;
    CHECK_EQ_INT(idb_folders(d, &fs, &n), 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_STR(fs[0].exclude, "*.min.js\nbuild/");
        CHECK_STR(fs[1].exclude, "");
    }
    idb_folders_free(fs, n);
    /* again without patterns: kept, with the same id and added time */
    CHECK_EQ_INT(idb_folder_add(d, "/vault", NULL, 20), a);
    CHECK_EQ_INT(idb_folders(d, &fs, &n), 0);
    CHECK(n == 2 && !strcmp(fs[0].exclude, "*.min.js\nbuild/") && fs[0].added == 10);
    idb_folders_free(fs, n);
    /* replaced, then cleared; the reopened file keeps them */
    CHECK_EQ_INT(idb_folder_add(d, "/vault", "drafts/**", 30), a);
    CHECK_EQ_INT(idb_folder_add(d, "/plain", "x", 30), b);
    CHECK_EQ_INT(idb_folder_add(d, "/plain", "", 31), b);
    idb_close(d);
    d = reopen();
    CHECK(d != NULL);
    if (!d)
        return;
    CHECK_EQ_INT(idb_folders(d, &fs, &n), 0);
    CHECK(n == 2 && fs[0].added == 10);
    if (n == 2) {
        CHECK_STR(fs[0].exclude, "drafts/**");
        CHECK_STR(fs[1].exclude, "");
    }
    idb_folders_free(fs, n);
    idb_close(d);
    remove_dir();
}

/* An index.db from before exclude patterns (its folders table without the
 * column) opens, keeps its folders, and takes patterns. */
TEST(folders_from_an_older_file)
{
    fresh_dir();
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(g_db, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE folders(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT "
                           "NULL, added REAL NOT NULL, last_scan REAL NOT NULL DEFAULT 0);"
                           "INSERT INTO folders(path, added) VALUES('/old', 5);",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    idb *d = reopen();
    CHECK(d != NULL);
    if (!d) {
        remove_dir();
        return;
    }
    idb_folder *fs = NULL;
    size_t n = 0;
    CHECK_EQ_INT(idb_folders(d, &fs, &n), 0);
    CHECK(n == 1 && !strcmp(fs[0].path, "/old") && !strcmp(fs[0].exclude, "") &&
          fs[0].added == 5);
    idb_folders_free(fs, n);
    CHECK_EQ_INT(idb_folder_add(d, "/old", "*.bak", 9), 1);
    CHECK_EQ_INT(idb_folders(d, &fs, &n), 0);
    CHECK(n == 1 && !strcmp(fs[0].exclude, "*.bak"));
    idb_folders_free(fs, n);
    idb_close(d);
    remove_dir();
}

/* ---- scanning ------------------------------------------------------------ */

TEST(scan_new_unchanged_changed)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/a.md", "/n/b.md", "/n/c.md" };
    int added = -1, removed = -1;
    CHECK_EQ_INT(scan_paths(d, f, paths, 3, 100, &added, &removed), 0);
    CHECK_EQ_INT(added, 3);
    CHECK_EQ_INT(removed, 0);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.docs[DOC_PENDING], 3);
    CHECK_EQ_INT(c.docs[DOC_INDEXED], 0);

    idb_doc x;
    CHECK_EQ_INT(doc_of(d, "/n/b.md", &x), 1);
    CHECK_EQ_INT(x.size, 101);
    CHECK_EQ_INT(x.mtime, 1000);
    CHECK_STR(x.kind, "text");
    CHECK_EQ_INT(x.state, DOC_PENDING);
    CHECK_EQ_INT(x.attempts, 0);
    idb_doc_free(&x);

    /* index a.md */
    idb_doc doc;
    CHECK(claim_path(d, 100, "/n/a.md", &doc));
    static const char *const texts[] = { "alpha text here" };
    CHECK_EQ_INT(store_texts(d, &doc, texts, 1, NULL, 0, NULL, 101), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(state_of(d, "/n/a.md"), DOC_INDEXED);

    /* the same walk again: no change */
    CHECK_EQ_INT(scan_paths(d, f, paths, 3, 200, &added, &removed), 0);
    CHECK_EQ_INT(added, 0);
    CHECK_EQ_INT(removed, 0);
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.docs[DOC_PENDING], 2);
    CHECK_EQ_INT(c.docs[DOC_INDEXED], 1);
    CHECK_EQ_INT(c.chunks, 1);

    /* a.md's mtime changed, b.md's size: both pending again */
    idb_seen w[3] = { seen_file("/n/a.md", 100, 2000), seen_file("/n/b.md", 555, 1000),
                      seen_file("/n/c.md", 102, 1000) };
    CHECK_EQ_INT(idb_scan(d, f, w, 3, true, 300, &added, &removed), 0);
    CHECK_EQ_INT(added, 2);
    CHECK_EQ_INT(removed, 0);
    CHECK_EQ_INT(state_of(d, "/n/a.md"), DOC_PENDING);
    CHECK_EQ_INT(doc_of(d, "/n/b.md", &x), 1);
    CHECK_EQ_INT(x.size, 555);
    idb_doc_free(&x);
    CHECK_EQ_INT(doc_of(d, "/n/a.md", &x), 1);
    CHECK_EQ_INT(x.mtime, 2000);
    CHECK_EQ_INT(x.attempts, 0);
    idb_doc_free(&x);
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.docs[DOC_PENDING], 3);
    CHECK_EQ_INT(c.docs[DOC_INDEXED], 0);
    /* the old text stays searchable until the new is stored */
    CHECK_EQ_INT(c.chunks, 1);
    CHECK_EQ_INT(bm25_count(d, "alpha"), 1);
    idb_close(d);
    remove_dir();
}

TEST(scan_removes_missing)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/a.md", "/n/b.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 2, 100, &added, &removed), 0);
    static const char *const ta[] = { "apples grow on trees", "apples are red" };
    static const char *const tb[] = { "bananas grow in bunches", "bananas are yellow",
                                      "bananas again" };
    static const float va[2 * 2] = { 1, 0, 0, 1 };
    static const float vb[3 * 2] = { 1, 1, 1, 2, 2, 1 };
    for (int i = 0; i < 2; i++) {
        idb_doc doc;
        CHECK_EQ_INT(idb_claim(d, 100, &doc), 1);
        bool is_a = !strcmp(doc.path, "/n/a.md");
        CHECK_EQ_INT(store_texts(d, &doc, is_a ? ta : tb, is_a ? 2 : 3, "m", 2, is_a ? va : vb,
                                 101), 0);
        idb_doc_free(&doc);
    }
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.chunks, 5);
    CHECK_EQ_INT(c.vectors, 5);
    CHECK_EQ_INT(c.docs[DOC_INDEXED], 2);
    idb_hit h[10];
    CHECK_EQ_INT(bm25_hits(d, "bananas", h, 10), 3);
    int64_t banana_chunk = h[0].chunk;

    /* b.md is gone from the next walk */
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 200, &added, &removed), 0);
    CHECK_EQ_INT(added, 0);
    CHECK_EQ_INT(removed, 1);
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.chunks, 2);
    CHECK_EQ_INT(c.vectors, 2);
    CHECK_EQ_INT(c.docs[DOC_INDEXED], 1);
    CHECK_EQ_INT(state_of(d, "/n/b.md"), -100);
    CHECK_EQ_INT(bm25_count(d, "bananas"), 0);
    CHECK_EQ_INT(bm25_count(d, "apples"), 2);
    idb_passage p;
    CHECK_EQ_INT(idb_passage_get(d, banana_chunk, &p), 0);
    float q[2] = { 1, 1 };
    CHECK_EQ_INT(idb_nearest(d, "m", q, 2, NULL, h, 10), 2);      /* only a.md's vectors */
    CHECK(fts_consistent());
    idb_close(d);
    remove_dir();
}

TEST(scan_empty_walk)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f1 = idb_folder_add(d, "/one", NULL, 1);
    int64_t f2 = idb_folder_add(d, "/two", NULL, 1);
    static const char *const t1[] = { "first folder words kiwi" };
    static const char *const t2[] = { "second folder words mango" };
    CHECK(index_one(d, f1, "/one/x.md", t1, 1, NULL, 0, NULL) > 0);
    CHECK(index_one(d, f2, "/two/y.md", t2, 1, NULL, 0, NULL) > 0);
    static const char *const more[] = { "/one/x.md", "/one/z.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f1, more, 2, 150, &added, &removed), 0);
    CHECK_EQ_INT(added, 1);         /* z.md new; x.md: size 100 as before */
    CHECK_EQ_INT(removed, 0);

    CHECK_EQ_INT(idb_scan(d, f1, NULL, 0, true, 200, &added, &removed), 0);
    CHECK_EQ_INT(added, 0);
    CHECK_EQ_INT(removed, 2);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.chunks, 1);
    CHECK_EQ_INT(c.docs[DOC_INDEXED], 1);
    CHECK_EQ_INT(c.docs[DOC_PENDING], 0);
    CHECK_EQ_INT(c.folders, 2);     /* the folder itself stays */
    CHECK_EQ_INT(bm25_count(d, "kiwi"), 0);
    CHECK_EQ_INT(bm25_count(d, "mango"), 1);
    CHECK_EQ_INT(bm25_count(d, "folder"), 1);
    CHECK_EQ_INT(state_of(d, "/two/y.md"), DOC_INDEXED);
    /* and again: nothing left to remove */
    CHECK_EQ_INT(idb_scan(d, f1, NULL, 0, true, 300, &added, &removed), 0);
    CHECK_EQ_INT(removed, 0);
    CHECK(fts_consistent());
    idb_close(d);
    remove_dir();
}

/* ---- the queue ----------------------------------------------------------- */

TEST(claim_order_and_due)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    idb_doc doc;
    CHECK_EQ_INT(idb_claim(d, 100, &doc), 0);           /* nothing yet */
    CHECK(idb_next_due(d) == -1);
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/a", "/n/b" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 2, 100, &added, &removed), 0);
    CHECK(idb_next_due(d) == 0);
    CHECK(claim_path(d, 100, "/n/a", &doc));           /* oldest id first */
    CHECK_EQ_INT(doc.attempts, 1);
    CHECK_EQ_INT(doc.state, DOC_PENDING);
    CHECK_EQ_INT(doc.size, 100);
    CHECK_EQ_INT(doc.mtime, 1000);
    idb_doc_free(&doc);
    idb_doc x;
    CHECK_EQ_INT(doc_of(d, "/n/a", &x), 1);
    CHECK_EQ_INT(x.attempts, 1);                        /* counted in the file */
    idb_doc_free(&x);
    idb_close(d);
    remove_dir();
}

TEST(claim_is_durable)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/a.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 100, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 100, "/n/a.md", &doc));
    CHECK_EQ_INT(doc.attempts, 1);
    idb_doc_free(&doc);
    /* hearthd dies here: closed without storing */
    idb_close(d);

    d = reopen();
    CHECK(d != NULL);
    if (!d)
        return;
    idb_doc x;
    CHECK_EQ_INT(doc_of(d, "/n/a.md", &x), 1);
    CHECK_EQ_INT(x.state, DOC_PENDING);
    CHECK_EQ_INT(x.attempts, 1);                        /* the attempt survived */
    idb_doc_free(&x);
    CHECK_EQ_INT(idb_recover(d, NULL, 1000), 0);              /* none re-embedded */
    CHECK(idb_next_due(d) == 0);                        /* due now */
    CHECK(claim_path(d, 200, "/n/a.md", &doc));
    CHECK_EQ_INT(doc.attempts, 2);                      /* kept, and counted again */
    idb_doc_free(&doc);
    idb_close(d);
    remove_dir();
}

TEST(store_and_search)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/garden", NULL, 1);
    static const char *const paths[] = { "/garden/tomatoes.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 100, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 100, "/garden/tomatoes.md", &doc));
    /* the text is bound by length: pass a longer buffer and a shorter len */
    static const char src[] = "The plants were watered at dawn.XXXX JUNK";
    idb_chunk_in c[2] = {
        { src, 32, 3, 4, NULL, -1, -1 },
        { "Caf\xc3\xa9 gardens use compost heavily.", 34, 10, 12, NULL, -1, -1 },
    };
    CHECK_EQ_INT(idb_store(d, &doc, c, 2, 5, NULL, 0, NULL, 150), 0);
    idb_doc_free(&doc);

    idb_doc x;
    CHECK_EQ_INT(doc_of(d, "/garden/tomatoes.md", &x), 1);
    CHECK_EQ_INT(x.state, DOC_INDEXED);
    CHECK_EQ_INT(x.chunks, 2);
    CHECK_EQ_INT(x.dropped, 5);
    CHECK_EQ_INT(x.attempts, 0);
    CHECK(x.indexed_at == 150);
    CHECK_STR(x.error, "");
    int64_t doc_id = x.id;
    idb_doc_free(&x);

    /* porter stemming: "watering" finds "watered" */
    idb_hit h[10];
    CHECK_EQ_INT(bm25_hits(d, "watering", h, 10), 1);
    CHECK(h[0].score > 0);
    idb_passage p;
    CHECK_EQ_INT(idb_passage_get(d, h[0].chunk, &p), 1);
    CHECK_STR(p.path, "/garden/tomatoes.md");
    CHECK_STR(p.text, "The plants were watered at dawn.");
    CHECK_EQ_INT(p.line0, 3);
    CHECK_EQ_INT(p.line1, 4);
    CHECK_EQ_INT(p.doc, doc_id);
    idb_passage_free(&p);
    CHECK_EQ_INT(bm25_count(d, "plant"), 1);
    CHECK_EQ_INT(bm25_count(d, "JUNK"), 0);            /* past len: not stored */
    /* diacritics removed: "cafe" finds "café" */
    CHECK_EQ_INT(bm25_hits(d, "cafe", h, 10), 1);
    CHECK_EQ_INT(idb_passage_get(d, h[0].chunk, &p), 1);
    CHECK_STR(p.text, "Caf\xc3\xa9 gardens use compost heavily.");
    CHECK_EQ_INT(p.line0, 10);
    CHECK_EQ_INT(p.line1, 12);
    idb_passage_free(&p);
    CHECK_EQ_INT(idb_passage_get(d, 999999, &p), 0);
    CHECK_EQ_INT(bm25_count(d, "zucchini"), 0);
    CHECK(fts_consistent());
    idb_close(d);
    remove_dir();
}

TEST(store_replaces)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const old_t[] = { "old giraffe words", "more giraffe lines",
                                         "giraffe again" };
    static const float old_v[3 * 2] = { 1, 0, 0, 1, 1, 1 };
    CHECK(index_one(d, f, "/n/a.md", old_t, 3, "m", 2, old_v) > 0);
    CHECK_EQ_INT(bm25_count(d, "giraffe"), 3);

    /* the file changes; indexed again */
    idb_seen w = seen_file("/n/a.md", 100, 5000);
    int added, removed;
    CHECK_EQ_INT(idb_scan(d, f, &w, 1, true, 200, &added, &removed), 0);
    CHECK_EQ_INT(added, 1);
    idb_doc doc;
    CHECK(claim_path(d, 200, "/n/a.md", &doc));
    static const char *const new_t[] = { "new elephant words" };
    static const float new_v[2] = { 0.5f, 0.5f };
    CHECK_EQ_INT(store_texts(d, &doc, new_t, 1, "m", 2, new_v, 201), 0);
    idb_doc_free(&doc);

    CHECK_EQ_INT(bm25_count(d, "giraffe"), 0);
    CHECK_EQ_INT(bm25_count(d, "elephant"), 1);
    CHECK_EQ_INT(bm25_count(d, "words"), 1);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.chunks, 1);
    CHECK_EQ_INT(c.vectors, 1);
    idb_hit h[10];
    float q[2] = { 1, 0 };
    CHECK_EQ_INT(idb_nearest(d, "m", q, 2, NULL, h, 10), 1);
    CHECK(fts_consistent());

    /* and stored again with nothing: no chunks at all */
    CHECK_EQ_INT(idb_scan(d, f, &(idb_seen){ "/n/a.md", 0, 6000, "text" }, 1, true, 300, &added,
                          &removed), 0);
    CHECK(claim_path(d, 300, "/n/a.md", &doc));
    CHECK_EQ_INT(store_texts(d, &doc, NULL, 0, NULL, 0, NULL, 301), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.chunks, 0);
    CHECK_EQ_INT(c.vectors, 0);
    CHECK_EQ_INT(c.docs[DOC_INDEXED], 1);
    CHECK_EQ_INT(bm25_count(d, "elephant"), 0);
    CHECK(fts_consistent());
    idb_close(d);
    remove_dir();
}

TEST(store_stale)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const first[] = { "first version with owls" };
    CHECK(index_one(d, f, "/n/a.md", first, 1, NULL, 0, NULL) > 0);

    /* changed: claimed, then changed again while being read */
    int added, removed;
    CHECK_EQ_INT(idb_scan(d, f, &(idb_seen){ "/n/a.md", 200, 2000, "text" }, 1, true, 200, &added,
                          &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 200, "/n/a.md", &doc));
    CHECK_EQ_INT(idb_scan(d, f, &(idb_seen){ "/n/a.md", 300, 3000, "text" }, 1, true, 210, &added,
                          &removed), 0);
    CHECK_EQ_INT(added, 1);
    static const char *const stale[] = { "stale version with zebras" };
    CHECK_EQ_INT(store_texts(d, &doc, stale, 1, NULL, 0, NULL, 220), 0);
    int64_t stale_id = doc.id;
    idb_doc_free(&doc);
    CHECK_EQ_INT(state_of(d, "/n/a.md"), DOC_PENDING);
    CHECK_EQ_INT(bm25_count(d, "zebras"), 0);          /* nothing stored */
    CHECK_EQ_INT(bm25_count(d, "owls"), 1);            /* the old text kept */
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.chunks, 1);

    /* a stale failure does not touch it either */
    CHECK_EQ_INT(idb_fail(d, &(idb_doc){ .id = stale_id, .size = 200, .mtime = 2000,
                                         .attempts = 1 }, false, 3, 1, "boom", 230), 0);
    CHECK_EQ_INT(state_of(d, "/n/a.md"), DOC_PENDING);

    /* the current version stores */
    CHECK(claim_path(d, 240, "/n/a.md", &doc));
    CHECK_EQ_INT(doc.size, 300);
    static const char *const cur[] = { "current version with otters" };
    CHECK_EQ_INT(store_texts(d, &doc, cur, 1, NULL, 0, NULL, 250), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(state_of(d, "/n/a.md"), DOC_INDEXED);
    CHECK_EQ_INT(bm25_count(d, "otters"), 1);
    CHECK_EQ_INT(bm25_count(d, "owls"), 0);

    /* a file forgotten while it was read: storing is a no-op */
    CHECK_EQ_INT(idb_scan(d, f, &(idb_seen){ "/n/a.md", 400, 4000, "text" }, 1, true, 300, &added,
                          &removed), 0);
    CHECK(claim_path(d, 300, "/n/a.md", &doc));
    CHECK_EQ_INT(idb_scan(d, f, NULL, 0, true, 310, &added, &removed), 0);
    CHECK_EQ_INT(removed, 1);
    CHECK_EQ_INT(store_texts(d, &doc, stale, 1, NULL, 0, NULL, 320), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.chunks, 0);
    CHECK_EQ_INT(c.docs[DOC_PENDING] + c.docs[DOC_INDEXED], 0);
    CHECK(fts_consistent());
    idb_close(d);
    remove_dir();
}

TEST(fail_retry_then_dead)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/a.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 100, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 1000, "/n/a.md", &doc));
    CHECK_EQ_INT(doc.attempts, 1);
    CHECK_EQ_INT(idb_fail(d, &doc, true, 3, 10, "worker crashed", 1000), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(state_of(d, "/n/a.md"), DOC_PENDING);
    CHECK(idb_next_due(d) == 1010);                     /* delay * 2^0 */
    CHECK_EQ_INT(idb_claim(d, 1009, &doc), 0);          /* not yet */
    CHECK(claim_path(d, 1010, "/n/a.md", &doc));
    CHECK_EQ_INT(doc.attempts, 2);
    CHECK_STR(doc.error, "worker crashed");
    CHECK_EQ_INT(idb_fail(d, &doc, true, 3, 10, "no model", 1010), 0);
    idb_doc_free(&doc);
    CHECK(idb_next_due(d) == 1030);                     /* delay * 2^1 */
    CHECK(claim_path(d, 1030, "/n/a.md", &doc));
    CHECK_EQ_INT(doc.attempts, 3);
    CHECK_EQ_INT(idb_fail(d, &doc, true, 3, 10, "no model again", 1030), 0);
    idb_doc_free(&doc);
    /* attempts used up */
    idb_doc x;
    CHECK_EQ_INT(doc_of(d, "/n/a.md", &x), 1);
    CHECK_EQ_INT(x.state, DOC_DEAD);
    CHECK_STR(x.error, "no model again");
    idb_doc_free(&x);
    CHECK(idb_next_due(d) == -1);
    CHECK_EQ_INT(idb_claim(d, 1e9, &doc), 0);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.docs[DOC_DEAD], 1);
    CHECK_EQ_INT(c.docs[DOC_PENDING], 0);

    /* the back-off is capped at an hour */
    static const char *const p2[] = { "/n/a.md", "/n/b.md" };
    CHECK_EQ_INT(scan_paths(d, f, p2, 2, 2000, &added, &removed), 0);
    CHECK(claim_path(d, 2000, "/n/b.md", &doc));
    doc.attempts = 30;                                  /* as if many were made */
    CHECK_EQ_INT(idb_fail(d, &doc, true, 100, 10, "x", 2000), 0);
    idb_doc_free(&doc);
    CHECK(idb_next_due(d) == 2000 + 3600);
    idb_close(d);
    remove_dir();
}

TEST(fail_not_retry)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/big.bin" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 100, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 100, "/n/big.bin", &doc));
    CHECK_EQ_INT(idb_fail(d, &doc, false, 3, 10, "not text", 100), 0);
    idb_doc_free(&doc);
    idb_doc x;
    CHECK_EQ_INT(doc_of(d, "/n/big.bin", &x), 1);
    CHECK_EQ_INT(x.state, DOC_FAILED);                 /* at once, attempts left or not */
    CHECK_STR(x.error, "not text");
    idb_doc_free(&x);
    CHECK(idb_next_due(d) == -1);
    CHECK_EQ_INT(idb_claim(d, 1e9, &doc), 0);
    /* an unchanged rescan leaves it failed; a change makes it pending */
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 200, &added, &removed), 0);
    CHECK_EQ_INT(state_of(d, "/n/big.bin"), DOC_FAILED);
    CHECK_EQ_INT(idb_scan(d, f, &(idb_seen){ "/n/big.bin", 7, 7, "text" }, 1, true, 300, &added,
                          &removed), 0);
    CHECK_EQ_INT(doc_of(d, "/n/big.bin", &x), 1);
    CHECK_EQ_INT(x.state, DOC_PENDING);
    CHECK_STR(x.error, "");
    CHECK_EQ_INT(x.attempts, 0);
    idb_doc_free(&x);
    idb_close(d);
    remove_dir();
}

TEST(release)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/a.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 100, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 100, "/n/a.md", &doc));
    CHECK_EQ_INT(doc.attempts, 1);
    CHECK_EQ_INT(idb_release(d, &doc, 500), 0);
    idb_doc_free(&doc);
    idb_doc x;
    CHECK_EQ_INT(doc_of(d, "/n/a.md", &x), 1);
    CHECK_EQ_INT(x.attempts, 0);                        /* given back */
    CHECK_EQ_INT(x.state, DOC_PENDING);
    idb_doc_free(&x);
    CHECK(idb_next_due(d) == 500);
    CHECK_EQ_INT(idb_claim(d, 499, &doc), 0);
    CHECK(claim_path(d, 500, "/n/a.md", &doc));
    CHECK_EQ_INT(doc.attempts, 1);
    /* released twice: never below zero */
    CHECK_EQ_INT(idb_release(d, &doc, 600), 0);
    CHECK_EQ_INT(idb_release(d, &doc, 600), 0);
    CHECK_EQ_INT(doc_of(d, "/n/a.md", &x), 1);
    CHECK_EQ_INT(x.attempts, 0);
    idb_doc_free(&x);
    /* a release does not bring back an indexed document */
    CHECK(claim_path(d, 600, "/n/a.md", &doc));
    static const char *const t[] = { "some text" };
    CHECK_EQ_INT(store_texts(d, &doc, t, 1, NULL, 0, NULL, 601), 0);
    CHECK_EQ_INT(idb_release(d, &doc, 700), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(state_of(d, "/n/a.md"), DOC_INDEXED);
    CHECK(idb_next_due(d) == -1);
    idb_close(d);
    remove_dir();
}

TEST(retry_all)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/failed", "/n/dead", "/n/indexed", "/n/pending" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 4, 100, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 100, "/n/failed", &doc));
    CHECK_EQ_INT(idb_fail(d, &doc, false, 3, 1, "bad", 100), 0);
    idb_doc_free(&doc);
    CHECK(claim_path(d, 100, "/n/dead", &doc));
    CHECK_EQ_INT(idb_fail(d, &doc, true, 1, 1, "crash", 100), 0);
    idb_doc_free(&doc);
    CHECK(claim_path(d, 100, "/n/indexed", &doc));
    static const char *const t[] = { "hello there" };
    CHECK_EQ_INT(store_texts(d, &doc, t, 1, NULL, 0, NULL, 100), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(state_of(d, "/n/failed"), DOC_FAILED);
    CHECK_EQ_INT(state_of(d, "/n/dead"), DOC_DEAD);

    CHECK_EQ_INT(idb_retry_all(d), 2);
    idb_doc x;
    static const char *const back[] = { "/n/failed", "/n/dead" };
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(doc_of(d, back[i], &x), 1);
        CHECK_EQ_INT(x.state, DOC_PENDING);
        CHECK_EQ_INT(x.attempts, 0);
        CHECK_STR(x.error, "");
        idb_doc_free(&x);
    }
    CHECK_EQ_INT(state_of(d, "/n/indexed"), DOC_INDEXED);
    CHECK_EQ_INT(state_of(d, "/n/pending"), DOC_PENDING);
    CHECK_EQ_INT(idb_retry_all(d), 0);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.docs[DOC_PENDING], 3);
    CHECK_EQ_INT(c.docs[DOC_FAILED] + c.docs[DOC_DEAD], 0);
    idb_close(d);
    remove_dir();
}

TEST(recover_model)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    static const char *const t[] = { "some words" };
    static const float v[2] = { 1, 0 };
    int64_t fa = idb_folder_add(d, "/a", NULL, 1), fn = idb_folder_add(d, "/none", NULL, 1);
    CHECK(index_one(d, fa, "/a/x.md", t, 1, "a", 2, v) > 0);
    CHECK(index_one(d, fn, "/none/y.md", t, 1, NULL, 0, NULL) > 0);

    /* the same model: nothing to do */
    CHECK_EQ_INT(idb_recover(d, "a", 1000), 1);               /* y.md: made without one */
    CHECK_EQ_INT(state_of(d, "/a/x.md"), DOC_INDEXED);
    CHECK_EQ_INT(state_of(d, "/none/y.md"), DOC_PENDING);
    idb_doc doc;
    CHECK(claim_path(d, 200, "/none/y.md", &doc));
    CHECK_EQ_INT(store_texts(d, &doc, t, 1, NULL, 0, NULL, 201), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(idb_recover(d, NULL, 1000), 1);              /* now x.md: made with "a" */
    CHECK_EQ_INT(state_of(d, "/a/x.md"), DOC_PENDING);
    CHECK_EQ_INT(state_of(d, "/none/y.md"), DOC_INDEXED);
    CHECK_EQ_INT(idb_recover(d, NULL, 1000), 0);              /* pending ones are not counted */

    /* x.md indexed with "a" again; another model requeues it */
    CHECK(claim_path(d, 300, "/a/x.md", &doc));
    CHECK_EQ_INT(store_texts(d, &doc, t, 1, "a", 2, v, 301), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(state_of(d, "/a/x.md"), DOC_INDEXED);
    CHECK_EQ_INT(idb_recover(d, "a", 1000), 1);               /* y.md again (no model) */
    CHECK_EQ_INT(state_of(d, "/a/x.md"), DOC_INDEXED);
    CHECK_EQ_INT(idb_recover(d, "b", 1000), 1);               /* x.md */
    CHECK_EQ_INT(state_of(d, "/a/x.md"), DOC_PENDING);
    idb_doc x;
    CHECK_EQ_INT(doc_of(d, "/a/x.md", &x), 1);
    CHECK_EQ_INT(x.attempts, 0);
    idb_doc_free(&x);
    /* failed and dead ones stay as they are */
    CHECK(claim_path(d, 400, "/a/x.md", &doc));
    CHECK_EQ_INT(idb_fail(d, &doc, false, 3, 1, "bad", 400), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(idb_recover(d, "c", 1000), 0);
    CHECK_EQ_INT(state_of(d, "/a/x.md"), DOC_FAILED);
    idb_close(d);
    remove_dir();
}

TEST(recover_keeps_backoff)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/a.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 100, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 100, "/n/a.md", &doc));
    CHECK_EQ_INT(idb_fail(d, &doc, true, 5, 1000, "later", 100), 0);
    idb_doc_free(&doc);
    CHECK(idb_next_due(d) == 1100);
    CHECK_EQ_INT(idb_claim(d, 200, &doc), 0);
    idb_close(d);
    d = reopen();
    CHECK(d != NULL);
    if (!d)
        return;
    /* a restart keeps the back-off: the file is due when it was */
    CHECK_EQ_INT(idb_recover(d, NULL, 1000), 0);
    CHECK(idb_next_due(d) == 1100);
    CHECK_EQ_INT(idb_claim(d, 200, &doc), 0);
    CHECK(claim_path(d, 1100, "/n/a.md", &doc));
    CHECK_EQ_INT(doc.attempts, 2);
    idb_doc_free(&doc);
    idb_close(d);
    remove_dir();
}

/* A file whose every attempt was cut short by a stop (claimed, never
 * stored nor failed) is dead at the next start, not retried forever. */
TEST(recover_interrupted_is_dead)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/a.md", "/n/b.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 2, 100, &added, &removed), 0);
    idb_doc doc;
    for (int i = 0; i < 3; i++) {       /* three starts, each killed mid-way */
        CHECK(claim_path(d, 100, "/n/a.md", &doc));
        idb_doc_free(&doc);
        CHECK_EQ_INT(idb_recover(d, NULL, 3), 0);
    }
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.docs[DOC_DEAD], 1);
    CHECK_EQ_INT(c.docs[DOC_PENDING], 1);       /* b.md, never tried */
    idb_doc *list = NULL;
    size_t n = 0;
    CHECK_EQ_INT(idb_docs(d, DOC_DEAD, 10, NULL, &list, &n), 0);
    CHECK(n == 1 && strstr(list[0].path, "a.md") && strstr(list[0].error, "interrupted"));
    idb_docs_free(list, n);
    idb_close(d);
    remove_dir();
}

/* A walk that could not read everything (a subfolder unreadable, the file
 * cap reached) forgets nothing; a complete one forgets what is gone. */
TEST(scan_incomplete_keeps_missing)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/w", NULL, 1);
    static const char *const both[] = { "/w/a.md", "/w/b.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, both, 2, 100, &added, &removed), 0);
    CHECK_EQ_INT(added, 2);
    idb_seen only_a = seen_file("/w/a.md", 100, 1000);
    CHECK_EQ_INT(idb_scan(d, f, &only_a, 1, false, 200, &added, &removed), 0);
    CHECK_EQ_INT(added, 0);
    CHECK_EQ_INT(removed, 0);
    CHECK_EQ_INT(state_of(d, "/w/b.md"), DOC_PENDING);
    CHECK_EQ_INT(idb_scan(d, f, &only_a, 1, true, 300, &added, &removed), 0);
    CHECK_EQ_INT(removed, 1);
    CHECK_EQ_INT(state_of(d, "/w/b.md"), -100);
    idb_close(d);
    remove_dir();
}

/* A folder removed while it was being walked: the walk records nothing
 * (its files would otherwise come back as orphans no walk removes). */
TEST(scan_of_removed_folder_records_nothing)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/gone", NULL, 1);
    CHECK_EQ_INT(idb_folder_remove(d, "/gone"), 1);
    static const char *const paths[] = { "/gone/a.md" };
    int added = -1, removed = -1;
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 100, &added, &removed), 0);
    CHECK_EQ_INT(added, 0);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.docs[DOC_PENDING] + c.docs[DOC_INDEXED], 0);
    idb_doc doc;
    CHECK_EQ_INT(idb_claim(d, 100, &doc), 0);
    idb_close(d);
    remove_dir();
}

/* A file that becomes failed (made unreadable, grown too large) is not
 * searchable any more: its last good passages go with it. */
TEST(fail_drops_passages)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/p", NULL, 1);
    static const char *const t[] = { "the secret recipe for plum jam" };
    static const float v[2] = { 1, 0 };
    CHECK(index_one(d, f, "/p/s.md", t, 1, "m", 2, v) > 0);
    CHECK_EQ_INT(bm25_count(d, "plum"), 1);
    idb_seen changed = seen_file("/p/s.md", 5, 5);
    int added, removed;
    CHECK_EQ_INT(idb_scan(d, f, &changed, 1, true, 200, &added, &removed), 0);
    CHECK_EQ_INT(bm25_count(d, "plum"), 1);         /* pending: the old text still serves */
    idb_doc doc;
    CHECK(claim_path(d, 200, "/p/s.md", &doc));
    CHECK_EQ_INT(idb_fail(d, &doc, false, 3, 1, "cannot open the file", 200), 0);
    idb_doc_free(&doc);
    CHECK_EQ_INT(bm25_count(d, "plum"), 0);
    idb_hit h[4];
    CHECK_EQ_INT(idb_nearest(d, "m", v, 2, NULL, h, 4), 0);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.chunks, 0);
    CHECK_EQ_INT(c.vectors, 0);
    CHECK_EQ_INT(c.docs[DOC_FAILED], 1);
    idb_close(d);
    remove_dir();
}

/* Passages stored without vectors keep the reason as the document's error. */
TEST(store_note)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/q", NULL, 1);
    static const char *const paths[] = { "/q/a.md" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 100, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 100, "/q/a.md", &doc));
    idb_chunk_in c = { "quince paste", 12, 1, 1, NULL, -1, -1 };
    CHECK_EQ_INT(idb_store(d, &doc, &c, 1, 0, NULL, 0, "indexed without vectors: emb: gone",
                           101), 0);
    idb_doc_free(&doc);
    idb_doc x;
    CHECK_EQ_INT(doc_of(d, "/q/a.md", &x), 1);
    CHECK_EQ_INT(x.state, DOC_INDEXED);
    CHECK_STR(x.error, "indexed without vectors: emb: gone");
    idb_doc_free(&x);
    CHECK_EQ_INT(bm25_count(d, "quince"), 1);
    idb_close(d);
    remove_dir();
}

/* ---- vectors ------------------------------------------------------------- */

TEST(nearest)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f1 = idb_folder_add(d, "/m", NULL, 1), f2 = idb_folder_add(d, "/other", NULL, 1),
            f3 = idb_folder_add(d, "/dim3", NULL, 1);
    static const char *const t[] = { "north", "north east", "east", "south west" };
    static const float v[4 * 4] = { 10, 0, 0, 0,     /* cos 1 with q */
                                    1, 1, 0, 0,      /* cos 0.707 */
                                    0, 3, 0, 0,      /* cos 0 */
                                    -1, -1, 0, 0 };  /* cos -0.707 */
    int64_t doc = index_one(d, f1, "/m/a.md", t, 4, "m", 4, v);
    CHECK(doc > 0);
    /* closer vectors of another model, and of another size, are ignored */
    static const char *const t2[] = { "other model" };
    static const float v2[4] = { 1, 0, 0, 0 };
    CHECK(index_one(d, f2, "/other/b.md", t2, 1, "other", 4, v2) > 0);
    static const float v3[3] = { 1, 0, 0 };
    CHECK(index_one(d, f3, "/dim3/c.md", t2, 1, "m", 3, v3) > 0);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.vectors, 6);

    float q[4] = { 2, 0, 0, 0 };
    idb_hit h[10];
    int n = nearest_of(d, "m", q, 4, h, 10);
    CHECK_EQ_INT(n, 4);
    static const char *const order[] = { "north", "north east", "east", "south west" };
    static const double cos_want[] = { 1, 0.70710678, 0, -0.70710678 };
    for (int i = 0; i < n && i < 4; i++) {
        idb_passage p;
        CHECK_EQ_INT(idb_passage_get(d, h[i].chunk, &p), 1);
        CHECK_STR(p.text, order[i]);
        CHECK_STR(p.path, "/m/a.md");
        CHECK(fabs(h[i].score - cos_want[i]) < 1e-5);
        idb_passage_free(&p);
    }
    /* limit: the best ones */
    n = nearest_of(d, "m", q, 4, h, 2);
    CHECK_EQ_INT(n, 2);
    if (n == 2)
        CHECK(h[0].score > h[1].score && fabs(h[1].score - 0.70710678) < 1e-5);
    /* the other model alone, dim 3 alone */
    CHECK_EQ_INT(nearest_of(d, "other", q, 4, h, 10), 1);
    CHECK_EQ_INT(nearest_of(d, "m", q, 3, h, 10), 1);
    CHECK_EQ_INT(nearest_of(d, "none", q, 4, h, 10), 0);
    /* a zero query has no direction: nothing */
    float z[4] = { 0, 0, 0, 0 };
    CHECK_EQ_INT(nearest_of(d, "m", z, 4, h, 10), 0);
    idb_close(d);
    remove_dir();
}

TEST(nearest_many)
{
    /* more vectors than the limit, in a scrambled order: the heap keeps the
     * best, sorted */
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/m", NULL, 1);
    enum { N = 200 };
    static char names[N][16];
    static const char *texts[N];
    static float v[N * 2];
    for (int i = 0; i < N; i++) {
        int k = (i * 37) % N;                   /* a permutation */
        double a = k * (3.14159265 / N);        /* angle 0..pi */
        v[2 * i] = (float)cos(a);
        v[2 * i + 1] = (float)sin(a);
        snprintf(names[i], sizeof names[i], "angle %d", k);
        texts[i] = names[i];
    }
    CHECK(index_one(d, f, "/m/a.md", texts, N, "m", 2, v) > 0);
    float q[2] = { 1, 0 };
    idb_hit h[20];
    CHECK_EQ_INT(nearest_of(d, "m", q, 2, h, 20), 20);
    for (int i = 0; i < 20; i++) {
        idb_passage p;
        CHECK_EQ_INT(idb_passage_get(d, h[i].chunk, &p), 1);
        char want[16];
        snprintf(want, sizeof want, "angle %d", i);
        CHECK_STR(p.text, want);
        idb_passage_free(&p);
        if (i)
            CHECK(h[i].score <= h[i - 1].score);
    }
    idb_close(d);
    remove_dir();
}

/* The same tests with the vectors kept in memory */
TEST(nearest_in_memory)
{
    g_vecmem = 64u << 20;
    nearest();
    g_vecmem = 0;
}

TEST(nearest_many_in_memory)
{
    g_vecmem = 64u << 20;
    nearest_many();
    g_vecmem = 0;
}

/* A standard normal number (Box-Muller) from a small generator */
static uint64_t g_rng = 88172645463325252ull;
static double normal(void)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        g_rng ^= g_rng << 13;
        g_rng ^= g_rng >> 7;
        g_rng ^= g_rng << 17;
        u[i] = ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* 4,000 random 96-wide vectors, with clusters (queries near a stored
 * vector, as real ones are): the in-memory first pass and the exact
 * rescoring give what reading every vector from disk gives, best first
 * with the same scores; its recall of the true top 10 is at least 0.99. */
TEST(memory_matches_disk)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    enum { N = 4000, D = 96, Q = 40, K = 10 };
    static float v[N * D];
    static char names[N][16];
    static const char *texts[N];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < D; k++)
            v[i * D + k] = (float)normal();
        snprintf(names[i], sizeof names[i], "passage %d", i);
        texts[i] = names[i];
    }
    int64_t f = idb_folder_add(d, "/m", NULL, 1);
    CHECK(index_one(d, f, "/m/a.md", texts, N, "m", D, v) > 0);
    int found = 0, same_order = 0;
    for (int t = 0; t < Q; t++) {
        float q[D];
        const float *near = &v[(size_t)(t * 97 % N) * D];
        for (int k = 0; k < D; k++)
            q[k] = near[k] + 0.8f * (float)normal();
        idb_hit disk[K], mem[K];
        idb_set_vector_memory(d, 0);
        int nd = idb_nearest(d, "m", q, D, NULL, disk, K);
        idb_set_vector_memory(d, 16u << 20);
        CHECK_EQ_INT(idb_vector_memory_fill(d, "m"), 1);
        int nm = idb_nearest(d, "m", q, D, NULL, mem, K);
        CHECK_EQ_INT(nd, K);
        CHECK_EQ_INT(nm, K);
        bool all = true;
        for (int i = 0; i < K; i++) {
            bool in = false;
            for (int j = 0; j < K; j++)
                if (mem[j].chunk == disk[i].chunk) {
                    in = true;
                    CHECK(fabs(mem[j].score - disk[i].score) < 1e-6);
                }
            found += in;
            all = all && in && mem[i].chunk == disk[i].chunk;
            if (i)
                CHECK(mem[i].score <= mem[i - 1].score);
        }
        same_order += all;
    }
    double recall = (double)found / (Q * K);
    printf("  in-memory first pass: recall@10 %.3f, %d of %d queries in the same order\n",
           recall, same_order, Q);
    CHECK(recall >= 0.99);
    idb_close(d);
    remove_dir();
}

/* The vectors in memory follow the file: a new closer passage is found, a
 * removed folder's passages are not. */
TEST(memory_follows_changes)
{
    g_vecmem = 1u << 20;
    idb *d = open_fresh();
    g_vecmem = 0;
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f1 = idb_folder_add(d, "/a", NULL, 1), f2 = idb_folder_add(d, "/b", NULL, 1);
    static const char *const ta[] = { "far", "near" };
    static const float va[] = { 0, 1, 0, 1, 1, 0 };
    CHECK(index_one(d, f1, "/a/x.md", ta, 2, "m", 3, va) > 0);
    float q[3] = { 1, 0, 0 };
    idb_hit h[4];
    CHECK_EQ_INT(idb_vector_memory_fill(d, "m"), 1);         /* fills the memory */
    CHECK_EQ_INT(idb_vector_memory_fill(d, "m"), 0);         /* in step: nothing to do */
    CHECK_EQ_INT(idb_nearest(d, "m", q, 3, NULL, h, 4), 2);
    idb_vmem m;
    idb_vector_memory(d, &m);
    CHECK(m.on && !m.too_big && m.vectors == 2 && m.fills == 1 && m.bytes > 0);
    static const char *const tb[] = { "nearest" };
    static const float vb[] = { 1, 0.01f, 0 };
    CHECK(index_one(d, f2, "/b/y.md", tb, 1, "m", 3, vb) > 0);
    CHECK_EQ_INT(idb_nearest(d, "m", q, 3, NULL, h, 4), 3);
    idb_passage p;
    CHECK_EQ_INT(idb_passage_get(d, h[0].chunk, &p), 1);
    CHECK_STR(p.text, "nearest");
    idb_passage_free(&p);
    idb_vector_memory(d, &m);
    CHECK(m.vectors == 3 && m.fills == 1);          /* appended, not filled anew */
    CHECK_EQ_INT(idb_folder_remove(d, "/b"), 1);
    CHECK_EQ_INT(idb_nearest(d, "m", q, 3, NULL, h, 4), 2);
    CHECK_EQ_INT(idb_passage_get(d, h[0].chunk, &p), 1);
    CHECK_STR(p.text, "near");
    idb_passage_free(&p);
    idb_vector_memory(d, &m);
    CHECK(m.vectors == 2 && m.fills == 1);          /* removed in place */
    /* a file indexed again: its old vectors go, its new ones come */
    static const float va2[] = { 0, 0, 1, -1, 0, 0 };
    idb_seen changed = seen_file("/a/x.md", 200, 2000);
    int added, removed;
    CHECK_EQ_INT(idb_scan(d, f1, &changed, 1, true, 200, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 200, "/a/x.md", &doc));
    CHECK_EQ_INT(store_texts(d, &doc, ta, 2, "m", 3, va2, 201), 0);
    idb_doc_free(&doc);
    idb_vector_memory(d, &m);
    CHECK(m.vectors == 2 && m.fills == 1);
    CHECK_EQ_INT(idb_nearest(d, "m", q, 3, NULL, h, 4), 2);
    CHECK(h[0].score < 0.01 && h[1].score < -0.99);     /* the new vectors' scores */
    /* vectors of another model leave these alone */
    static const char *const tc[] = { "other" };
    CHECK(index_one(d, idb_folder_add(d, "/c", NULL, 1), "/c/z.md", tc, 1, "m2", 3, vb) > 0);
    CHECK_EQ_INT(idb_nearest(d, "m", q, 3, NULL, h, 4), 2);
    idb_vector_memory(d, &m);
    CHECK(m.vectors == 2 && m.fills == 1);
    /* filled for another model */
    CHECK_EQ_INT(idb_vector_memory_fill(d, "m2"), 1);
    CHECK_EQ_INT(idb_nearest(d, "m2", q, 3, NULL, h, 4), 1);
    idb_vector_memory(d, &m);
    CHECK(m.vectors == 1 && m.fills == 2);
    idb_close(d);
    remove_dir();
}

/* More vectors than the memory holds: searched from disk, same answers. */
TEST(memory_too_small)
{
    g_vecmem = 2000;                    /* a few vectors' worth */
    idb *d = open_fresh();
    g_vecmem = 0;
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/m", NULL, 1);
    enum { N = 300 };
    static float v[N * 8];
    static char names[N][16];
    static const char *texts[N];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 8; k++)
            v[i * 8 + k] = (float)normal();
        snprintf(names[i], sizeof names[i], "p %d", i);
        texts[i] = names[i];
    }
    CHECK(index_one(d, f, "/m/a.md", texts, N, "m", 8, v) > 0);
    idb_hit a[5], b[5];
    CHECK_EQ_INT(idb_vector_memory_fill(d, "m"), -1);        /* does not fit */
    CHECK_EQ_INT(idb_vector_memory_fill(d, "m"), 0);         /* said once */
    CHECK_EQ_INT(idb_nearest(d, "m", v, 8, NULL, a, 5), 5);
    idb_set_vector_memory(d, 0);
    CHECK_EQ_INT(idb_nearest(d, "m", v, 8, NULL, b, 5), 5);
    for (int i = 0; i < 5; i++)
        CHECK(a[i].chunk == b[i].chunk);
    idb_close(d);
    remove_dir();
}

/* Scopes: a path is in one when it is one of its folders or inside one;
 * BM25, vectors and the document list see only what is in scope. */
TEST(scopes)
{
    CHECK(idb_in_scope("/a/b.md", NULL));
    CHECK(idb_in_scope("/home/ana/recipes/soup.md", "/home/ana/recipes"));
    CHECK(idb_in_scope("/home/ana/recipes", "/home/ana/recipes"));
    CHECK(!idb_in_scope("/home/ana/recipes-old/soup.md", "/home/ana/recipes"));
    CHECK(!idb_in_scope("/home/ana/diary.md", "/home/ana/recipes"));
    CHECK(idb_in_scope("/srv/m/x.pdf", "/home/ana/recipes\n/srv/m"));
    CHECK(!idb_in_scope("/srv/mx/x.pdf", "/home/ana/recipes\n/srv/m"));
    CHECK(idb_in_scope("/anything", "/"));
    CHECK(!idb_in_scope("/a", ""));
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    idb_set_vector_memory(d, 1u << 20);
    int64_t f1 = idb_folder_add(d, "/n/recipes", NULL, 1), f2 = idb_folder_add(d, "/n/diary", NULL, 1);
    static const char *const t1[] = { "secret soup with leeks" };
    static const char *const t2[] = { "secret diary entry about leeks" };
    static const float v1[] = { 1, 0.1f }, v2[] = { 1, 0 };
    CHECK(index_one(d, f1, "/n/recipes/soup.md", t1, 1, "m", 2, v1) > 0);
    CHECK(index_one(d, f2, "/n/diary/day.md", t2, 1, "m", 2, v2) > 0);
    buf fq = buf_make(0);
    CHECK(search_fts_query("secret leeks", 12, &fq) == 2);
    idb_hit h[4];
    CHECK_EQ_INT(idb_bm25(d, fq.data, NULL, h, 4), 2);
    CHECK_EQ_INT(idb_bm25(d, fq.data, "/n/recipes", h, 4), 1);
    idb_passage p;
    CHECK_EQ_INT(idb_passage_get(d, h[0].chunk, &p), 1);
    CHECK_STR(p.path, "/n/recipes/soup.md");
    idb_passage_free(&p);
    CHECK_EQ_INT(idb_bm25(d, fq.data, "/elsewhere", h, 4), 0);
    float q[2] = { 1, 0 };
    CHECK_EQ_INT(idb_nearest(d, "m", q, 2, NULL, h, 4), 2);      /* the diary is closer */
    CHECK_EQ_INT(idb_nearest(d, "m", q, 2, "/n/recipes", h, 4), 1);
    CHECK_EQ_INT(idb_passage_get(d, h[0].chunk, &p), 1);
    CHECK_STR(p.path, "/n/recipes/soup.md");
    idb_passage_free(&p);
    search_hit sh[4];
    CHECK_EQ_INT(search_run(d, SEARCH_HYBRID, "secret leeks", 12, "m", q, 2, 4, "/n/diary", sh),
                 1);
    CHECK_EQ_INT(idb_passage_get(d, sh[0].chunk, &p), 1);
    CHECK_STR(p.path, "/n/diary/day.md");
    idb_passage_free(&p);
    idb_doc *docs = NULL;
    size_t nd = 0;
    CHECK_EQ_INT(idb_docs(d, -1, 10, "/n/diary", &docs, &nd), 0);
    CHECK(nd == 1 && docs && !strcmp(docs[0].path, "/n/diary/day.md"));
    idb_docs_free(docs, nd);
    CHECK_EQ_INT(idb_docs(d, -1, 10, NULL, &docs, &nd), 0);
    CHECK_EQ_INT(nd, 2);
    idb_docs_free(docs, nd);
    buf_free(&fq);
    idb_close(d);
    remove_dir();
}

/* The cache itself: limits, skipped vectors, searches before filling. */
TEST(vcache_rules)
{
    vcache *c = vcache_new(1u << 20);
    CHECK(c != NULL);
    if (!c)
        return;
    float q[4] = { 1, 0, 0, 0 };
    int64_t ids[4];
    CHECK_EQ_INT(vcache_search(c, q, ids, 4), 0);       /* not filled */
    CHECK(!vcache_begin(c, "m", 0, 10));
    char long_name[200];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK(!vcache_begin(c, long_name, 4, 10));
    CHECK(!vcache_begin(c, "m", 4, 1u << 20));         /* would not fit */
    CHECK(vcache_begin(c, "m", 4, 2));
    static const float zero[4] = { 0, 0, 0, 0 }, a[4] = { 0, 1, 0, 0 }, b[4] = { 3, 0.1f, 0, 0 };
    float bad[4] = { 1, 0, 0, 0 };
    bad[2] = NAN;
    CHECK(vcache_add(c, 1, zero));
    CHECK(vcache_add(c, 2, bad));
    CHECK(vcache_add(c, 3, a));
    CHECK(vcache_add(c, 4, b));
    CHECK_EQ_INT(vcache_search(c, q, ids, 4), 0);       /* still filling */
    vcache_end(c);
    CHECK(vcache_ready(c, "m", 4));
    CHECK(!vcache_ready(c, "m", 3) && !vcache_ready(c, "other", 4));
    CHECK_EQ_INT(vcache_count(c), 2);                   /* zero and NaN left out */
    CHECK_EQ_INT(vcache_search(c, q, ids, 4), 2);
    CHECK(ids[0] == 4 && ids[1] == 3);
    CHECK_EQ_INT(vcache_search(c, q, ids, 1), 1);
    CHECK(ids[0] == 4);
    CHECK_EQ_INT(vcache_search(c, zero, ids, 4), 0);
    /* growing past the limit empties it */
    vcache *small = vcache_new(64 * (4 + 12) + 100);
    CHECK(vcache_begin(small, "m", 4, 1));
    bool ok = true;
    for (int i = 0; i < 100 && ok; i++)
        ok = vcache_add(small, i, a);
    CHECK(!ok);
    CHECK(!vcache_ready(small, "m", 4));
    CHECK_EQ_INT(vcache_count(small), 0);
    vcache_free(small);
    /* filled close to the limit: vectors appended later fit up to it */
    vcache *edge = vcache_new(100 * (4 + 12));         /* 100 vectors of 4 */
    CHECK(vcache_begin(edge, "m", 4, 90));
    for (int i = 1; i <= 90; i++)
        CHECK(vcache_add(edge, i, a));
    vcache_end(edge);
    for (int i = 91; i <= 100; i++)
        CHECK(vcache_append(edge, i, a));
    CHECK_EQ_INT(vcache_count(edge), 100);
    CHECK(!vcache_append(edge, 101, a));               /* past the limit: emptied */
    CHECK(!vcache_ready(edge, "m", 4));
    CHECK(!vcache_begin(edge, "m", 4, 101));
    vcache_free(edge);
    /* once ready: appended in id order only, removed by id, compacted */
    CHECK(vcache_append(c, 10, a));
    CHECK(!vcache_append(c, 10, a) && !vcache_append(c, 5, b));
    CHECK_EQ_INT(vcache_count(c), 3);
    vcache_remove(c, 4);
    vcache_remove(c, 4);                                /* twice: once */
    vcache_remove(c, 7);                                /* not held */
    CHECK_EQ_INT(vcache_count(c), 2);
    CHECK_EQ_INT(vcache_search(c, q, ids, 4), 2);
    CHECK(ids[0] == 3 || ids[0] == 10);
    for (int64_t id = 11; id < 200; id++)
        CHECK(vcache_append(c, id, id % 2 ? a : b));
    for (int64_t id = 11; id < 200; id++)
        if (id % 2)
            vcache_remove(c, id);
    CHECK_EQ_INT(vcache_count(c), 2 + 94);
    CHECK_EQ_INT(vcache_search(c, q, ids, 4), 4);
    for (int i = 0; i < 4; i++)
        CHECK(ids[i] >= 12 && ids[i] % 2 == 0);         /* b's, the closest */
    for (int64_t id = 12; id < 200; id += 2)
        vcache_remove(c, id);                           /* compacts on the way */
    CHECK_EQ_INT(vcache_count(c), 2);
    CHECK_EQ_INT(vcache_search(c, q, ids, 4), 2);
    vcache_clear(c);
    CHECK(!vcache_ready(c, "m", 4));
    vcache_free(c);
}

/* idb_nearest with limit 0 finds nothing and leaves out untouched (its
 * first version wrote out[0]: the heap's "full" branch ran on an empty
 * heap). */
TEST(nearest_limit_zero)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/m", NULL, 1);
    static const char *const t[] = { "hello" };
    static const float v[2] = { 1, 0 };
    CHECK(index_one(d, f, "/m/a.md", t, 1, "m", 2, v) > 0);
    idb_hit h[1] = { { -7, -99 } };
    CHECK_EQ_INT(idb_nearest(d, "m", v, 2, NULL, h, 0), 0);
    CHECK_EQ_INT(h[0].chunk, -7);
    idb_close(d);
    remove_dir();
}

/* ---- removing a folder, listing ------------------------------------------ */

TEST(folder_remove)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f1 = idb_folder_add(d, "/one", NULL, 1), f2 = idb_folder_add(d, "/two", NULL, 1);
    static const char *const t1[] = { "lemon tree", "lemon juice" };
    static const char *const t2[] = { "lime tree" };
    static const float v1[4] = { 1, 0, 0, 1 }, v2[2] = { 1, 1 };
    CHECK(index_one(d, f1, "/one/a.md", t1, 2, "m", 2, v1) > 0);
    CHECK(index_one(d, f2, "/two/b.md", t2, 1, "m", 2, v2) > 0);
    static const char *const pend[] = { "/one/a.md", "/one/new.md" };
    int added, removed;
    CHECK_EQ_INT(idb_scan(d, f1, (idb_seen[]){ seen_file(pend[0], 100, 1000),
                                               seen_file(pend[1], 5, 5) }, 2, true, 150, &added,
                          &removed), 0);
    CHECK_EQ_INT(added, 1);

    CHECK_EQ_INT(idb_folder_remove(d, "/one"), 1);
    idb_counts c;
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.folders, 1);
    CHECK_EQ_INT(c.chunks, 1);
    CHECK_EQ_INT(c.vectors, 1);
    CHECK_EQ_INT(c.docs[DOC_INDEXED], 1);
    CHECK_EQ_INT(c.docs[DOC_PENDING], 0);
    CHECK_EQ_INT(bm25_count(d, "lemon"), 0);
    CHECK_EQ_INT(bm25_count(d, "tree"), 1);
    idb_hit h[4];
    float q[2] = { 1, 0 };
    CHECK_EQ_INT(idb_nearest(d, "m", q, 2, NULL, h, 4), 1);
    CHECK_EQ_INT(state_of(d, "/one/a.md"), -100);
    CHECK_EQ_INT(state_of(d, "/two/b.md"), DOC_INDEXED);
    idb_folder *fs = NULL;
    size_t n = 0;
    CHECK_EQ_INT(idb_folders(d, &fs, &n), 0);
    CHECK_EQ_INT(n, 1);
    if (n == 1)
        CHECK_STR(fs[0].path, "/two");
    idb_folders_free(fs, n);
    CHECK_EQ_INT(idb_folder_remove(d, "/one"), 0);
    CHECK(fts_consistent());
    /* added again: a new, empty folder */
    int64_t again = idb_folder_add(d, "/one", NULL, 500);
    CHECK(again > 0);
    CHECK_EQ_INT(idb_get_counts(d, &c), 0);
    CHECK_EQ_INT(c.folders, 2);
    CHECK_EQ_INT(c.chunks, 1);
    idb_close(d);
    remove_dir();
}

TEST(docs_listing)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static const char *const paths[] = { "/n/a", "/n/b", "/n/c", "/n/d" };
    int added, removed;
    /* each walk finds one more file: a changed at 100, b at 200, ... */
    for (size_t i = 1; i <= 4; i++)
        CHECK_EQ_INT(scan_paths(d, f, paths, i, 100.0 * (double)i, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 1000, "/n/a", &doc));
    CHECK_EQ_INT(idb_fail(d, &doc, false, 3, 1, "bad", 1000), 0);
    idb_doc_free(&doc);
    CHECK(claim_path(d, 1000, "/n/b", &doc));
    static const char *const t[] = { "text" };
    CHECK_EQ_INT(store_texts(d, &doc, t, 1, NULL, 0, NULL, 1000), 0);
    idb_doc_free(&doc);

    idb_doc *all = NULL;
    size_t n = 0;
    CHECK_EQ_INT(idb_docs(d, -1, 10, NULL, &all, &n), 0);
    CHECK_EQ_INT(n, 4);
    static const char *const newest_first[] = { "/n/d", "/n/c", "/n/b", "/n/a" };
    for (size_t i = 0; i < n && i < 4; i++)
        CHECK_STR(all[i].path, newest_first[i]);
    idb_docs_free(all, n);

    CHECK_EQ_INT(idb_docs(d, -1, 2, NULL, &all, &n), 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_STR(all[0].path, "/n/d");
        CHECK_STR(all[1].path, "/n/c");
    }
    idb_docs_free(all, n);

    CHECK_EQ_INT(idb_docs(d, DOC_PENDING, 10, NULL, &all, &n), 0);
    CHECK_EQ_INT(n, 2);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(all[i].state, DOC_PENDING);
    idb_docs_free(all, n);
    CHECK_EQ_INT(idb_docs(d, DOC_FAILED, 10, NULL, &all, &n), 0);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_STR(all[0].path, "/n/a");
        CHECK_STR(all[0].error, "bad");
    }
    idb_docs_free(all, n);
    CHECK_EQ_INT(idb_docs(d, DOC_INDEXED, 10, NULL, &all, &n), 0);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_STR(all[0].path, "/n/b");
        CHECK_EQ_INT(all[0].chunks, 1);
    }
    idb_docs_free(all, n);
    CHECK_EQ_INT(idb_docs(d, DOC_DEAD, 10, NULL, &all, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK(all == NULL);
    idb_docs_free(all, n);
    idb_close(d);
    remove_dir();
}

/* ---- a damaged file ------------------------------------------------------ */

/* An index of many pages, closed (so all of it is in the main file). */
static bool make_filled_index(size_t *size)
{
    idb *d = open_fresh();
    if (!d)
        return false;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    static char text[200][900];
    static const char *texts[200];
    rnd_state = 5;
    for (int i = 0; i < 200; i++) {
        buf b = buf_make(0);
        while (sentence(&b), b.len < 800)
            buf_putc(&b, ' ');
        snprintf(text[i], sizeof text[i], "%s", b.data);
        texts[i] = text[i];
        buf_free(&b);
    }
    bool ok = index_one(d, f, "/n/a.md", texts, 200, NULL, 0, NULL) > 0;
    idb_close(d);
    struct stat st;
    if (!ok || stat(g_db, &st) != 0)
        return false;
    *size = (size_t)st.st_size;
    return true;
}

TEST(damaged_pages_refused)
{
    size_t size = 0;
    CHECK(make_filled_index(&size));
    CHECK(size >= 16 * 4096);
    if (size < 16 * 4096) {
        remove_dir();
        return;
    }
    /* every page but the first overwritten */
    int fd = open(g_db, O_WRONLY);
    CHECK(fd >= 0);
    static char junk[4096];
    memset(junk, 0xA5, sizeof junk);
    for (off_t off = 4096; off + (off_t)sizeof junk <= (off_t)size; off += 4096)
        CHECK(pwrite(fd, junk, sizeof junk, off) == (ssize_t)sizeof junk);
    close(fd);
    size_t n0 = 0;
    char *before = slurp(g_db, &n0);

    char err[512] = "";
    idb *d = idb_open(g_db, err, sizeof err);
    CHECK(d == NULL);
    if (d)
        idb_close(d);
    CHECK(err[0] != '\0');
    CHECK(strstr(err, "damaged") != NULL);
    CHECK(strstr(err, "index.db") != NULL);
    CHECK(strstr(err, g_dir) == NULL);          /* the file's name, not its folder */
    if (!strstr(err, "damaged"))
        fprintf(stderr, "  err: %s\n", err);

    size_t n1 = 0;
    char *after = slurp(g_db, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    err[0] = '\0';
    d = idb_open(g_db, err, sizeof err);
    CHECK(d == NULL);
    if (d)
        idb_close(d);
    CHECK(strstr(err, "damaged") != NULL);
    remove_dir();
}

TEST(not_a_database_refused)
{
    fresh_dir();
    FILE *f = fopen(g_db, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    for (int i = 0; i < 1000; i++)
        fputs("this is not a database. ", f);
    fclose(f);
    size_t n0 = 0;
    char *before = slurp(g_db, &n0);
    char err[512] = "";
    idb *d = idb_open(g_db, err, sizeof err);
    CHECK(d == NULL);
    if (d)
        idb_close(d);
    CHECK(err[0] != '\0');
    CHECK(strstr(err, "index.db") != NULL);
    size_t n1 = 0;
    char *after = slurp(g_db, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    remove_dir();
}

TEST(unopenable_path)
{
    fresh_dir();
    char path[700];
    snprintf(path, sizeof path, "%s/no/such/folder/index.db", g_dir);
    char err[512] = "";
    idb *d = idb_open(path, err, sizeof err);
    CHECK(d == NULL);
    if (d)
        idb_close(d);
    CHECK(err[0] != '\0');
    remove_dir();
}

/* ==== search.c: ranking =================================================== */

/* A small index for ranking:
 *   A "apple apple apple banana"          no vector        BM25 rank 1
 *   B "apple cherry cherry cherry ..."    near q (rank 2)  BM25 rank 2
 *   C "durian"                            q itself         vector rank 1
 *   D "elderberry"                        further          vector rank 3
 * Chunk ids in *ids (A..D). */
static idb *ranking_index(int64_t ids[4])
{
    idb *d = open_fresh();
    if (!d)
        return NULL;
    int64_t f = idb_folder_add(d, "/fruit", NULL, 1);
    idb_seen w = seen_file("/fruit/list.md", 100, 1000);
    int added, removed;
    idb_doc doc;
    if (idb_scan(d, f, &w, 1, true, 100, &added, &removed) < 0 || !claim_path(d, 100, w.path, &doc)) {
        idb_close(d);
        return NULL;
    }
    static const float vb[3] = { 0.9f, 0.3f, 0 }, vc[3] = { 1, 0, 0 }, vd[3] = { 0.2f, 1, 0 };
    idb_chunk_in c[4] = {
        { "apple apple apple banana", 24, 1, 1, NULL, -1, -1 },
        { "apple cherry cherry cherry cherry cherry", 40, 3, 3, vb, -1, -1 },
        { "durian", 6, 5, 5, vc, -1, -1 },
        { "elderberry", 10, 7, 7, vd, -1, -1 },
    };
    int rc = idb_store(d, &doc, c, 4, 0, "emb", 3, NULL, 101);
    idb_doc_free(&doc);
    if (rc < 0) {
        idb_close(d);
        return NULL;
    }
    static const char *const words[] = { "banana", "cherry", "durian", "elderberry" };
    for (int i = 0; i < 4; i++) {
        idb_hit h[4];
        ids[i] = bm25_hits(d, words[i], h, 4) == 1 ? h[0].chunk : -1;
    }
    return d;
}

static const float rank_q[3] = { 1, 0, 0 };

TEST(run_bm25)
{
    int64_t id[4];
    idb *d = ranking_index(id);
    CHECK(d != NULL);
    if (!d)
        return;
    search_hit out[SEARCH_MAX_K];
    int n = search_run(d, SEARCH_BM25, "apple", 5, "emb", rank_q, 3, 10, NULL, out);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_EQ_INT(out[0].chunk, id[0]);
        CHECK_EQ_INT(out[1].chunk, id[1]);
        CHECK(out[0].score > out[1].score);
        CHECK(out[1].score > 0);
        CHECK_EQ_INT(out[0].bm25_rank, 1);
        CHECK_EQ_INT(out[1].bm25_rank, 2);
        CHECK_EQ_INT(out[0].vector_rank, 0);             /* qvec ignored in BM25 mode */
        CHECK_EQ_INT(out[1].vector_rank, 0);
    }
    /* the same scores as idb_bm25's */
    idb_hit h[4];
    CHECK_EQ_INT(bm25_hits(d, "apple", h, 4), 2);
    CHECK(h[0].score == out[0].score && h[1].score == out[1].score);
    /* k respected */
    CHECK_EQ_INT(search_run(d, SEARCH_BM25, "apple", 5, NULL, NULL, 0, 1, NULL, out), 1);
    CHECK_EQ_INT(out[0].chunk, id[0]);
    /* several words: any of them */
    CHECK_EQ_INT(search_run(d, SEARCH_BM25, "durian or banana?", 17, NULL, NULL, 0, 10, NULL, out), 2);
    /* no words, no hits; k < 1, no hits */
    CHECK_EQ_INT(search_run(d, SEARCH_BM25, "?!", 2, NULL, NULL, 0, 10, NULL, out), 0);
    CHECK_EQ_INT(search_run(d, SEARCH_BM25, "apple", 5, NULL, NULL, 0, 0, NULL, out), 0);
    CHECK_EQ_INT(search_run(d, SEARCH_BM25, "nothing", 7, NULL, NULL, 0, 10, NULL, out), 0);
    idb_close(d);
    remove_dir();
}

TEST(run_vector)
{
    int64_t id[4];
    idb *d = ranking_index(id);
    CHECK(d != NULL);
    if (!d)
        return;
    search_hit out[SEARCH_MAX_K];
    int n = search_run(d, SEARCH_VECTOR, "apple", 5, "emb", rank_q, 3, 10, NULL, out);
    CHECK_EQ_INT(n, 3);                                  /* A has no vector */
    if (n == 3) {
        CHECK_EQ_INT(out[0].chunk, id[2]);
        CHECK_EQ_INT(out[1].chunk, id[1]);
        CHECK_EQ_INT(out[2].chunk, id[3]);
        CHECK(fabs(out[0].score - 1) < 1e-6);            /* cosine */
        CHECK(out[0].score > out[1].score && out[1].score > out[2].score);
        for (int i = 0; i < 3; i++) {
            CHECK_EQ_INT(out[i].vector_rank, i + 1);
            CHECK_EQ_INT(out[i].bm25_rank, 0);
        }
    }
    CHECK_EQ_INT(search_run(d, SEARCH_VECTOR, "apple", 5, "emb", rank_q, 3, 2, NULL, out), 2);
    /* another model, or no query vector: nothing */
    CHECK_EQ_INT(search_run(d, SEARCH_VECTOR, "apple", 5, "other", rank_q, 3, 10, NULL, out), 0);
    CHECK_EQ_INT(search_run(d, SEARCH_VECTOR, "apple", 5, "emb", NULL, 0, 10, NULL, out), 0);
    idb_close(d);
    remove_dir();
}

TEST(run_hybrid)
{
    int64_t id[4];
    idb *d = ranking_index(id);
    CHECK(d != NULL);
    if (!d)
        return;
    search_hit out[SEARCH_MAX_K];
    int n = search_run(d, SEARCH_HYBRID, "apple", 5, "emb", rank_q, 3, 10, NULL, out);
    CHECK_EQ_INT(n, 4);
    if (n == 4) {
        /* B is in both lists (2nd in each): above A and C, each 1st in one */
        CHECK_EQ_INT(out[0].chunk, id[1]);
        CHECK_EQ_INT(out[0].bm25_rank, 2);
        CHECK_EQ_INT(out[0].vector_rank, 2);
        CHECK(fabs(out[0].score - 2.0 / (SEARCH_RRF_K + 2)) < 1e-12);
        /* A and C tie at 1 / (60 + 1): the lower chunk id first */
        CHECK_EQ_INT(out[1].chunk, id[0] < id[2] ? id[0] : id[2]);
        CHECK_EQ_INT(out[2].chunk, id[0] < id[2] ? id[2] : id[0]);
        CHECK(fabs(out[1].score - 1.0 / (SEARCH_RRF_K + 1)) < 1e-12);
        CHECK(fabs(out[2].score - 1.0 / (SEARCH_RRF_K + 1)) < 1e-12);
        for (int i = 1; i <= 2; i++) {
            if (out[i].chunk == id[0]) {
                CHECK_EQ_INT(out[i].bm25_rank, 1);
                CHECK_EQ_INT(out[i].vector_rank, 0);
            } else {
                CHECK_EQ_INT(out[i].bm25_rank, 0);
                CHECK_EQ_INT(out[i].vector_rank, 1);
            }
        }
        /* D: vector rank 3 only */
        CHECK_EQ_INT(out[3].chunk, id[3]);
        CHECK_EQ_INT(out[3].bm25_rank, 0);
        CHECK_EQ_INT(out[3].vector_rank, 3);
        CHECK(fabs(out[3].score - 1.0 / (SEARCH_RRF_K + 3)) < 1e-12);
    }
    /* k respected: the best first */
    CHECK_EQ_INT(search_run(d, SEARCH_HYBRID, "apple", 5, "emb", rank_q, 3, 1, NULL, out), 1);
    CHECK_EQ_INT(out[0].chunk, id[1]);
    CHECK_EQ_INT(search_run(d, SEARCH_HYBRID, "apple", 5, "emb", rank_q, 3, 2, NULL, out), 2);
    /* no words in the text: the vector list alone, fused */
    n = search_run(d, SEARCH_HYBRID, "??", 2, "emb", rank_q, 3, 10, NULL, out);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_EQ_INT(out[0].chunk, id[2]);
        CHECK_EQ_INT(out[0].vector_rank, 1);
        CHECK_EQ_INT(out[0].bm25_rank, 0);
    }
    idb_close(d);
    remove_dir();
}

TEST(run_hybrid_without_vector)
{
    int64_t id[4];
    idb *d = ranking_index(id);
    CHECK(d != NULL);
    if (!d)
        return;
    search_hit h[SEARCH_MAX_K], b[SEARCH_MAX_K];
    int nh = search_run(d, SEARCH_HYBRID, "apple durian", 12, "emb", NULL, 0, 10, NULL, h);
    int nb = search_run(d, SEARCH_BM25, "apple durian", 12, "emb", NULL, 0, 10, NULL, b);
    CHECK_EQ_INT(nh, 3);
    CHECK_EQ_INT(nh, nb);
    for (int i = 0; i < nh && i < nb; i++) {
        CHECK_EQ_INT(h[i].chunk, b[i].chunk);
        CHECK(h[i].score == b[i].score);                 /* BM25's own scores, no RRF */
        CHECK_EQ_INT(h[i].bm25_rank, i + 1);
        CHECK_EQ_INT(h[i].vector_rank, 0);
    }
    idb_close(d);
    remove_dir();
}

TEST(run_k_clamped)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/n", NULL, 1);
    enum { N = 150 };
    static char names[N][32];
    static const char *texts[N];
    static float v[N * 2];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "common word %d", i);
        texts[i] = names[i];
        v[2 * i] = 1;
        v[2 * i + 1] = (float)i / N;
    }
    CHECK(index_one(d, f, "/n/a.md", texts, N, "m", 2, v) > 0);
    /* out has exactly SEARCH_MAX_K places: a k past it must not overrun */
    search_hit *out = malloc(SEARCH_MAX_K * sizeof *out);
    float q[2] = { 1, 0 };
    CHECK_EQ_INT(search_run(d, SEARCH_BM25, "common", 6, NULL, NULL, 0, 1000, NULL, out),
                 SEARCH_MAX_K);
    CHECK_EQ_INT(search_run(d, SEARCH_VECTOR, "", 0, "m", q, 2, 1000, NULL, out), SEARCH_MAX_K);
    CHECK_EQ_INT(out[0].vector_rank, 1);
    CHECK_EQ_INT(out[SEARCH_MAX_K - 1].vector_rank, SEARCH_MAX_K);
    CHECK_EQ_INT(search_run(d, SEARCH_HYBRID, "common", 6, "m", q, 2, 1000, NULL, out), SEARCH_MAX_K);
    for (int i = 1; i < SEARCH_MAX_K; i++)
        CHECK(out[i].score <= out[i - 1].score);
    CHECK_EQ_INT(search_run(d, SEARCH_HYBRID, "common", 6, "m", q, 2, SEARCH_MAX_K + 1, NULL, out),
                 SEARCH_MAX_K);
    CHECK_EQ_INT(search_run(d, SEARCH_HYBRID, "common", 6, "m", q, 2, -5, NULL, out), 0);
    free(out);
    idb_close(d);
    remove_dir();
}

/* ---- checks ----------------------------------------------------------------- */

/* n files in one folder, each one passage with vector vecs[i] (dim 4). */
static void index_many(idb *d, int n, const float (*vecs)[4])
{
    int64_t f = idb_folder_add(d, "/c", NULL, 1);
    static char names[32][32];
    const char *paths[32];
    for (int i = 0; i < n && i < 32; i++) {
        snprintf(names[i], sizeof names[i], "/c/f%02d.md", i);
        paths[i] = names[i];
    }
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, (size_t)n, 100, &added, &removed), 0);
    for (int i = 0; i < n; i++) {
        idb_doc doc;
        if (idb_claim(d, 100, &doc) != 1) {
            CHECK(0);
            return;
        }
        char text[64];
        snprintf(text, sizeof text, "passage number %d of the check", i);
        idb_chunk_in c = { text, strlen(text), 1, 1, vecs[atoi(doc.path + 4)], -1, -1 };
        CHECK_EQ_INT(idb_store(d, &doc, &c, 1, 0, "m", 4, NULL, 101), 0);
        idb_doc_free(&doc);
    }
}

TEST(check_healthy)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    float v[20][4];
    for (int i = 0; i < 20; i++)        /* directions spread around */
        for (int k = 0; k < 4; k++)
            v[i][k] = (float)sin(i * 1.7 + k * 2.3);
    index_many(d, 20, v);
    idb_check_result r;
    CHECK_EQ_INT(idb_check(d, &r), 0);
    CHECK(r.storage_ok && r.fts_ok && r.vectors_ok);
    CHECK_EQ_INT(r.vectors_checked, 20);
    CHECK_EQ_INT(r.vectors_bad, 0);
    CHECK(r.pairs >= 10);
    CHECK(r.mean_cosine < IDB_CHECK_MAX_COSINE);
    idb_close(d);
    remove_dir();
}

/* A broken embedding model: the same direction for every passage. No
 * single vector is wrong; only the spread shows it. */
TEST(check_vectors_alike)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    float v[20][4];
    for (int i = 0; i < 20; i++)
        for (int k = 0; k < 4; k++)
            v[i][k] = 1.0f + (float)k + 0.001f * (float)i;
    index_many(d, 20, v);
    idb_check_result r;
    CHECK_EQ_INT(idb_check(d, &r), 0);
    CHECK(r.storage_ok && r.fts_ok);
    CHECK(!r.vectors_ok);
    CHECK(r.mean_cosine > 0.99);
    CHECK(strstr(r.vectors, "nearly all alike") != NULL);
    idb_close(d);
    remove_dir();
}

/* Damage behind the index's back, through a second connection: a NaN in a
 * vector, and a passage deleted without its full-text row. */
TEST(check_damage)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    float v[12][4];
    for (int i = 0; i < 12; i++)
        for (int k = 0; k < 4; k++)
            v[i][k] = (float)cos(i * 2.1 + k);
    index_many(d, 12, v);
    sqlite3 *raw = NULL;
    CHECK(sqlite3_open(g_db, &raw) == SQLITE_OK);
    float nan4[4] = { 1, NAN, 0, 0 };
    sqlite3_stmt *q = NULL;
    CHECK(sqlite3_prepare_v2(raw, "UPDATE vecs SET v=? WHERE chunk=(SELECT min(chunk) FROM vecs)",
                             -1, &q, NULL) == SQLITE_OK);
    sqlite3_bind_blob(q, 1, nan4, sizeof nan4, SQLITE_TRANSIENT);
    CHECK(sqlite3_step(q) == SQLITE_DONE);
    sqlite3_finalize(q);
    CHECK(sqlite3_exec(raw, "DELETE FROM chunks WHERE id=(SELECT max(id) FROM chunks)", NULL,
                       NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    idb_check_result r;
    CHECK_EQ_INT(idb_check(d, &r), 0);
    CHECK(r.storage_ok);
    CHECK(!r.fts_ok);
    CHECK(!r.vectors_ok);
    CHECK_EQ_INT(r.vectors_bad, 1);
    CHECK(strstr(r.vectors, "malformed") != NULL);
    idb_close(d);
    remove_dir();
}

/* ---- transcripts ------------------------------------------------------------ */

TEST(segments_to_lines)
{
    static const char doc[] = "{\"text\":\"all\",\"segments\":["
        "{\"start\":0.5,\"end\":4.25,\"text\":\" And so my fellow\\nAmericans\"},"
        "{\"start\":4.25,\"end\":9,\"text\":\" ask not\"},"
        "{\"start\":9,\"end\":11,\"tokens\":[1]}]}";
    arena *a = arena_new(0);
    const json *o = json_parse(a, doc, sizeof doc - 1, NULL, 0);
    buf b = buf_make(0);
    double *t = NULL;
    long n = text_from_segments(json_get(o, "segments"), &b, &t);
    CHECK_EQ_INT(n, 2);                 /* the segment without text is left out */
    CHECK_STR(b.data, " And so my fellow Americans\n ask not\n");
    CHECK(t && t[0] == 0.5 && t[1] == 4.25 && t[2] == 4.25 && t[3] == 9);
    free(t);
    buf_free(&b);
    /* none, or not an array */
    b = buf_make(0);
    CHECK_EQ_INT(text_from_segments(NULL, &b, &t), 0);
    CHECK(t == NULL && b.len == 0);
    CHECK_EQ_INT(text_from_segments(json_get(o, "text"), &b, &t), 0);
    /* a cap too small */
    buf small = buf_make(8);
    CHECK_EQ_INT(text_from_segments(json_get(o, "segments"), &small, &t), -1);
    CHECK(t == NULL);
    buf_free(&small);
    buf_free(&b);
    arena_free(a);
}

/* A recording's passage keeps its seconds; others have none (-1). */
TEST(passage_times)
{
    idb *d = open_fresh();
    CHECK(d != NULL);
    if (!d)
        return;
    int64_t f = idb_folder_add(d, "/v", NULL, 1);
    static const char *const paths[] = { "/v/note.wav" };
    int added, removed;
    CHECK_EQ_INT(scan_paths(d, f, paths, 1, 100, &added, &removed), 0);
    idb_doc doc;
    CHECK(claim_path(d, 100, "/v/note.wav", &doc));
    idb_chunk_in c[2] = { { "buy oat milk and bread", 22, 1, 2, NULL, 0.5, 9.25 },
                          { "call the dentist on monday", 26, 3, 3, NULL, -1, -1 } };
    CHECK_EQ_INT(idb_store(d, &doc, c, 2, 0, NULL, 0, NULL, 101), 0);
    idb_doc_free(&doc);
    idb_hit h[2];
    CHECK_EQ_INT(bm25_hits(d, "oat milk", h, 2), 1);
    idb_passage p;
    CHECK_EQ_INT(idb_passage_get(d, h[0].chunk, &p), 1);
    CHECK(p.t0 == 0.5 && p.t1 == 9.25);
    idb_passage_free(&p);
    CHECK_EQ_INT(bm25_hits(d, "dentist", h, 2), 1);
    CHECK_EQ_INT(idb_passage_get(d, h[0].chunk, &p), 1);
    CHECK(p.t0 == -1 && p.t1 == -1);
    idb_passage_free(&p);
    idb_close(d);
    remove_dir();
}

int main(void)
{
    /* text.c */
    RUN(kind_of_extensions);
    RUN(kind_names);
    RUN(looks_binary);
    RUN(clean_newlines);
    RUN(clean_controls);
    RUN(clean_utf8_kept);
    RUN(clean_stray_invalid_byte);
    RUN(clean_latin1);
    RUN(clean_html_tags_and_hidden);
    RUN(clean_html_lines_kept);
    RUN(clean_html_entities);
    RUN(clean_html_numeric_entity_controls);
    RUN(clean_html_hidden_element_edges);
    RUN(clean_html_lone_lt);
    RUN(clean_cap);
    RUN(chunks_empty);
    RUN(chunks_short);
    RUN(chunks_long_paragraphs);
    RUN(chunks_sentences);
    RUN(chunks_blank_line_with_spaces);
    RUN(chunks_long_word_utf8);
    RUN(chunks_line_numbers);
    RUN(hygiene_prose_kept);
    RUN(hygiene_too_short);
    RUN(hygiene_numbers_and_blobs);
    RUN(hygiene_repeats);
    /* search.c: the query */
    RUN(fts_query_words);
    RUN(fts_query_dups_and_limits);
    RUN(fts_query_never_rejected);
    /* db.c */
    RUN(open_mode_and_names);
    RUN(folders);
    RUN(folder_excludes);
    RUN(folders_from_an_older_file);
    RUN(scan_new_unchanged_changed);
    RUN(scan_removes_missing);
    RUN(scan_empty_walk);
    RUN(claim_order_and_due);
    RUN(claim_is_durable);
    RUN(store_and_search);
    RUN(store_replaces);
    RUN(store_stale);
    RUN(fail_retry_then_dead);
    RUN(fail_not_retry);
    RUN(release);
    RUN(retry_all);
    RUN(recover_model);
    RUN(recover_keeps_backoff);
    RUN(recover_interrupted_is_dead);
    RUN(scan_incomplete_keeps_missing);
    RUN(scan_of_removed_folder_records_nothing);
    RUN(fail_drops_passages);
    RUN(store_note);
    RUN(check_healthy);
    RUN(check_vectors_alike);
    RUN(check_damage);
    RUN(segments_to_lines);
    RUN(passage_times);
    RUN(nearest);
    RUN(nearest_many);
    RUN(nearest_in_memory);
    RUN(nearest_many_in_memory);
    RUN(memory_matches_disk);
    RUN(memory_follows_changes);
    RUN(memory_too_small);
    RUN(vcache_rules);
    RUN(scopes);
    RUN(nearest_limit_zero);
    RUN(folder_remove);
    RUN(docs_listing);
    RUN(damaged_pages_refused);
    RUN(not_a_database_refused);
    RUN(unopenable_path);
    /* search.c: ranking */
    RUN(run_bm25);
    RUN(run_vector);
    RUN(run_hybrid);
    RUN(run_hybrid_without_vector);
    RUN(run_k_clamped);
    return check_summary();
}
