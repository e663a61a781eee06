/*
 * fuzz_index.c: libFuzzer on what the search index reads from the user's
 * files and from requests: cleaning (plain and HTML), chunking and hygiene
 * of a file's bytes; the FTS query built from a search; and ignore rules
 * (.gitignore text and exclude patterns) matched against paths. The first
 * byte picks the part.
 *
 * Checked: cleaned text is valid UTF-8 with no control character but tab
 * and newline; chunks lie inside it, in order, at most CHUNK_MAX bytes,
 * starting on a character, with lines in order; the FTS query quotes
 * every word; a match gives the same verdict twice (and no pattern runs
 * away: libFuzzer's -timeout catches that).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/utf8.h"
#include "index/ignore.h"
#include "index/search.h"
#include "index/text.h"

static void text_part(const char *p, size_t n, bool html)
{
    buf out = buf_make(1u << 24);
    if (text_clean(&out, p, n, html) != 0) {
        buf_free(&out);
        return;
    }
    const char *t = out.data ? out.data : "";
    if (!utf8_valid(t, out.len))
        abort();
    for (size_t i = 0; i < out.len; i++)
        if ((unsigned char)t[i] < 0x20 && t[i] != '\t' && t[i] != '\n')
            abort();
    text_chunk *c = NULL;
    long nc = text_chunks(t, out.len, &c);
    if (nc < 0)
        abort();
    uint64_t *seen = calloc((size_t)nc + 1, sizeof *seen);
    size_t nseen = 0;
    size_t last = 0;
    for (long i = 0; i < nc; i++) {
        if (c[i].start < last || c[i].end <= c[i].start || c[i].end > out.len ||
            c[i].end - c[i].start > CHUNK_MAX || c[i].line0 < 1 || c[i].line1 < c[i].line0 ||
            (i && c[i].line0 < c[i - 1].line1) ||
            ((unsigned char)t[c[i].start] & 0xC0) == 0x80)
            abort();
        last = c[i].end;
        if (seen)
            text_hygiene(t + c[i].start, c[i].end - c[i].start, seen, &nseen);
    }
    free(seen);
    free(c);
    buf_free(&out);
}

static void query_part(const char *p, size_t n)
{
    buf q = buf_make(1u << 20);
    int terms = search_fts_query(p, n > 4096 ? 4096 : n, &q);
    if (terms > 0) {
        size_t quotes = 0;
        for (size_t i = 0; i < q.len; i++)
            quotes += q.data[i] == '"';
        if (quotes % 2 || quotes < 2 * (size_t)terms)
            abort();
    }
    buf_free(&q);
}

/* rules text, a NUL, then paths one a line ("/" at the end: a folder) */
static void ignore_part(const char *p, size_t n)
{
    const char *nul = memchr(p, '\0', n);
    size_t rl = nul ? (size_t)(nul - p) : n;
    ignore_rules *r = ignore_rules_new();
    if (!r)
        return;
    ignore_report rep = { 0 };
    ignore_rules_parse(r, p, rl, &rep);
    const char *q = nul ? nul + 1 : p + n, *end = p + n;
    for (int k = 0; k < 16 && q < end; k++) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        size_t len = nl ? (size_t)(nl - q) : (size_t)(end - q);
        char path[512];
        if (len >= sizeof path)
            len = sizeof path - 1;
        memcpy(path, q, len);
        path[len] = '\0';
        bool dir = len && path[len - 1] == '/';
        if (dir)
            path[len - 1] = '\0';
        if (path[0] && strlen(path) == (dir ? len - 1 : len)) {
            ignore_verdict a = ignore_rules_match(r, path, dir);
            ignore_verdict b = ignore_rules_match(r, path, dir);
            if (a != b)
                abort();
            size_t first = strcspn(p, "\n");
            if (first < rl && first < 300) {
                char pat[301];
                memcpy(pat, p, first);
                pat[first] = '\0';
                (void)ignore_pattern_matches(pat, path, dir);
            }
        }
        q += len + 1;
        if (nl)
            q = nl + 1;
    }
    ignore_rules_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: text_part(p, n, false); break;
    case 1: text_part(p, n, true); break;
    case 2: query_part(p, n); break;
    default: ignore_part(p, n); break;
    }
    return 0;
}
