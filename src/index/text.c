/*
 * text.c: cleaning, chunking and hygiene of a file's text (text.h).
 */
#include "index/text.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/utf8.h"

static const char *const text_ext[] = {
    "txt", "md", "markdown", "rst", "org", "tex", "adoc", "asciidoc", "csv", "tsv", "log",
    "json", "yaml", "yml", "toml", "ini", "cfg", "conf", "xml", "c", "h", "cc", "cpp", "cxx",
    "hpp", "hh", "py", "js", "mjs", "ts", "tsx", "jsx", "go", "rs", "java", "kt", "swift", "rb",
    "php", "pl", "sh", "bash", "zsh", "fish", "lua", "sql", "r", "scala", "cs", "css", "scss",
    "el", "clj", "hs", "ml", "ex", "exs", "erl", "vim", "mk", "cmake", "gradle", "bib", "srt",
    "vtt", "eml", NULL,
};
static const char *const html_ext[] = { "html", "htm", "xhtml", NULL };
static const char *const image_ext[] = { "png", "jpg", "jpeg", "tif", "tiff", "bmp", "pnm",
                                         "pbm", "pgm", "ppm", "gif", "webp", "pdf", NULL };
static const char *const audio_ext[] = { "wav", "mp3", "flac", "ogg", "oga", "opus", "m4a",
                                         "aac", "wma", NULL };

static bool in(const char *const *list, const char *ext)
{
    for (int i = 0; list[i]; i++)
        if (!strcasecmp(list[i], ext))
            return true;
    return false;
}

text_kind text_kind_of(const char *name)
{
    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) {
        /* README, LICENSE, Makefile, NOTES: text when their bytes say so
         * (the indexer checks them before reading on) */
        return TK_TEXT;
    }
    const char *ext = dot + 1;
    if (in(text_ext, ext))
        return TK_TEXT;
    if (in(html_ext, ext))
        return TK_HTML;
    if (in(image_ext, ext))
        return TK_IMAGE;
    if (in(audio_ext, ext))
        return TK_AUDIO;
    return TK_NONE;
}

const char *text_kind_name(text_kind k)
{
    switch (k) {
    case TK_TEXT: return "text";
    case TK_HTML: return "html";
    case TK_IMAGE: return "image";
    case TK_AUDIO: return "audio";
    default: return "none";
    }
}

bool text_looks_binary(const char *p, size_t n)
{
    return memchr(p, 0, n < 8192 ? n : 8192) != NULL;
}

/* ---- cleaning ----------------------------------------------------------- */

static int put_cp(buf *out, unsigned cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 63));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 63));
        u[2] = (char)(0x80 | (cp & 63));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 63));
        u[2] = (char)(0x80 | ((cp >> 6) & 63));
        u[3] = (char)(0x80 | (cp & 63));
        k = 4;
    }
    return buf_append(out, u, k);
}

/* Bytes that are part of invalid UTF-8 sequences. */
static size_t invalid_bytes(const char *p, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t k = (unsigned char)p[i] < 0x80 ? 1
                   : utf8_decode((const unsigned char *)p + i, n - i, &cp);
        bad += k == 0;
        i += k ? k : 1;
    }
    return bad;
}

static const struct { const char *name; unsigned cp; } entities[] = {
    { "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
    { "nbsp", ' ' }, { "mdash", 0x2014 }, { "ndash", 0x2013 }, { "hellip", 0x2026 },
    { "copy", 0xA9 }, { "rsquo", 0x2019 }, { "lsquo", 0x2018 }, { "ldquo", 0x201C },
    { "rdquo", 0x201D },
};

/* An entity at p (after '&'): its code point and length through ';', or 0. */
static size_t entity(const char *p, size_t n, unsigned *cp)
{
    size_t semi = 0;
    while (semi < n && semi < 12 && p[semi] != ';')
        semi++;
    if (semi >= n || p[semi] != ';' || semi == 0)
        return 0;
    if (p[0] == '#') {
        unsigned long v = 0;
        bool hex = semi > 1 && (p[1] == 'x' || p[1] == 'X');
        size_t i = hex ? 2 : 1;
        if (i >= semi)
            return 0;
        for (; i < semi; i++) {
            int c = (unsigned char)p[i], d;
            if (isdigit(c))
                d = c - '0';
            else if (hex && isxdigit(c))
                d = tolower(c) - 'a' + 10;
            else
                return 0;
            v = v * (hex ? 16 : 10) + (unsigned long)d;
            if (v > 0x10FFFF)
                return 0;
        }
        if (v == 0 || (v >= 0xD800 && v < 0xE000))
            return 0;
        *cp = (unsigned)v;
        return semi + 1;
    }
    for (size_t e = 0; e < sizeof entities / sizeof *entities; e++)
        if (strlen(entities[e].name) == semi && !memcmp(p, entities[e].name, semi)) {
            *cp = entities[e].cp;
            return semi + 1;
        }
    return 0;
}

/* p (n bytes) starts with the tag name `name` (case-insensitive), ended
 * by '>', '/' or a blank: not a longer name like <styled-box>. */
static bool tag_named(const char *p, size_t n, const char *name)
{
    size_t l = strlen(name);
    return n > l && !strncasecmp(p, name, l) &&
           (p[l] == '>' || p[l] == '/' || p[l] == ' ' || p[l] == '\t' || p[l] == '\n' ||
            p[l] == '\r');
}

/* At a '<' that opens a tag: its length through '>' (the rest of the text
 * when never closed), and for <script> and <style> through their end tag.
 * Newlines inside are counted into *nl so lines stay in place. */
static size_t tag_span(const char *p, size_t n, int *nl)
{
    const char *end = NULL;
    if (tag_named(p + 1, n - 1, "script"))
        end = "</script";
    else if (tag_named(p + 1, n - 1, "style"))
        end = "</style";
    size_t i = 1;
    if (end) {
        size_t el = strlen(end);
        while (i + el <= n && !(p[i] == '<' && tag_named(p + i + 2, n - i - 2, end + 2)))
            i++;
        if (i + el > n)
            i = n;              /* never closed: the rest is hidden */
    }
    const char *gt = i < n ? memchr(p + i, '>', n - i) : NULL;
    size_t len = gt ? (size_t)(gt - p) + 1 : n;
    for (size_t k = 0; k < len; k++)
        *nl += p[k] == '\n' || (p[k] == '\r' && !(k + 1 < len && p[k + 1] == '\n'));
    return len;
}

/* A '<' that opens a tag (a letter, '/', '!' or '?' after it); else it is
 * text, as in "a < b". */
static bool opens_tag(const char *p, size_t n)
{
    return n > 1 && (isalpha((unsigned char)p[1]) || p[1] == '/' || p[1] == '!' || p[1] == '?');
}

int text_clean(buf *out, const char *p, size_t n, bool html)
{
    bool latin1 = false;
    size_t bad = invalid_bytes(p, n);
    if (bad && bad > n / 100) {
        /* many invalid bytes, and most bytes past ASCII invalid: an 8-bit
         * file, read as Latin-1 */
        size_t hi = 0;
        for (size_t i = 0; i < n; i++)
            hi += (unsigned char)p[i] >= 0x80;
        latin1 = bad * 2 > hi;
    }
    if (buf_reserve(out, n + n / 8 + 16) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r') {
            rc = buf_putc(out, '\n');
            i += (i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (html && c == '<' && opens_tag(p + i, n - i)) {
            int nl = 0;
            size_t skip = tag_span(p + i, n - i, &nl);
            rc = buf_putc(out, ' ');
            while (nl-- > 0 && rc == 0)
                rc = buf_putc(out, '\n');
            i += skip;
            continue;
        }
        if (html && c == '&') {
            unsigned cp;
            size_t k = entity(p + i + 1, n - i - 1, &cp);
            if (k) {
                /* an entity never adds a line or a control character:
                 * &#10; would shift every citation below it */
                bool control = cp < 0x20 || (cp >= 0x7F && cp < 0xA0);
                rc = control ? buf_putc(out, ' ') : put_cp(out, cp);
                i += 1 + k;
                continue;
            }
        }
        if (c < 0x80) {
            rc = buf_putc(out, (c < 0x20 && c != '\n' && c != '\t') || c == 0x7F ? ' ' : (char)c);
            i++;
            continue;
        }
        if (latin1) {
            rc = put_cp(out, c < 0xA0 ? ' ' : c);   /* C1 controls become spaces */
            i++;
            continue;
        }
        unsigned cp;
        size_t k = utf8_decode((const unsigned char *)p + i, n - i, &cp);
        if (k == 0) {
            rc = put_cp(out, 0xFFFD);
            i++;
            continue;
        }
        rc = buf_append(out, p + i, k);
        i += k;
    }
    return rc < 0 ? -1 : 0;
}

/* ---- chunking ----------------------------------------------------------- */

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* After a newline at i - 1: only spaces and tabs up to the next newline
 * (a paragraph break, as editors leave them). */
static bool blank_line_follows(const char *t, size_t i, size_t n)
{
    while (i < n && (t[i] == ' ' || t[i] == '\t'))
        i++;
    return i < n && t[i] == '\n';
}

/* Where to end a chunk that starts at s, in text[s..n): the best break at
 * or before s + CHUNK_MAX, preferring one past s + CHUNK_TARGET / 2. */
static size_t cut(const char *t, size_t s, size_t n)
{
    if (n - s <= CHUNK_TARGET)
        return n;
    size_t lim = s + CHUNK_MAX < n ? s + CHUNK_MAX : n;
    size_t lo = s + CHUNK_TARGET / 2;
    size_t para = 0, sent = 0, line = 0, space = 0;
    for (size_t i = lo; i < lim; i++) {
        bool within = i <= s + CHUNK_TARGET + CHUNK_TARGET / 4;
        if (t[i] == '\n' && blank_line_follows(t, i + 1, n)) {
            if (within || !para)
                para = i + 1;
            if (i > s + CHUNK_TARGET)
                break;
        } else if (t[i] == '\n') {
            if (within || !line)
                line = i + 1;
        } else if ((t[i] == '.' || t[i] == '?' || t[i] == '!') && i + 1 < n && blank(t[i + 1])) {
            if (within || !sent)
                sent = i + 1;
        } else if (blank(t[i])) {
            if (within || !space)
                space = i + 1;
        }
    }
    if (lim == n && n - s <= CHUNK_MAX)
        return n;
    size_t at = para ? para : sent ? sent : line ? line : space;
    if (!at) {
        at = lim;                   /* one long word: cut at a character edge */
        while (at > s + 1 && ((unsigned char)t[at] & 0xC0) == 0x80)
            at--;
    }
    return at;
}

long text_chunks(const char *t, size_t n, text_chunk **out)
{
    *out = NULL;
    size_t cap = 0, count = 0;
    int line = 1;
    size_t s = 0;
    while (s < n) {
        while (s < n && blank(t[s])) {
            line += t[s] == '\n';
            s++;
        }
        if (s >= n)
            break;
        size_t e = cut(t, s, n);
        size_t end = e;
        while (end > s && blank(t[end - 1]))
            end--;
        int l1 = line;
        for (size_t i = s; i < end; i++)
            l1 += t[i] == '\n';
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            text_chunk *grown = realloc(*out, nc * sizeof *grown);
            if (!grown) {
                free(*out);
                *out = NULL;
                return -1;
            }
            *out = grown;
            cap = nc;
        }
        (*out)[count++] = (text_chunk){ s, end, line, l1 };
        for (size_t i = s; i < e; i++)
            line += t[i] == '\n';
        s = e;
    }
    return (long)count;
}

/* ---- transcripts -------------------------------------------------------- */

long text_from_segments(const json *segments, buf *out, double **times)
{
    *times = NULL;
    size_t n = segments && segments->type == JSON_ARRAY ? segments->len : 0, lines = 0;
    if (n && !(*times = malloc(2 * n * sizeof **times)))
        return -1;
    for (const json *s = n ? segments->child : NULL; s; s = s->next) {
        const json *t = json_get(s, "text"), *a = json_get(s, "start"), *b = json_get(s, "end");
        if (!t || t->type != JSON_STRING)
            continue;
        for (size_t i = 0; i < t->len; i++)
            if (buf_putc(out, t->str[i] == '\n' || t->str[i] == '\r' ? ' ' : t->str[i]) < 0)
                goto oom;
        if (buf_putc(out, '\n') < 0)
            goto oom;
        (*times)[2 * lines] = a && a->type == JSON_NUMBER ? a->number : 0;
        (*times)[2 * lines + 1] = b && b->type == JSON_NUMBER ? b->number : 0;
        lines++;
    }
    return (long)lines;
oom:
    free(*times);
    *times = NULL;
    return -1;
}

/* ---- hygiene ------------------------------------------------------------ */

/* FNV-1a over the chunk's words, lower-cased, blanks folded. */
static uint64_t words_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    bool gap = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (blank((char)c)) {
            gap = true;
            continue;
        }
        if (gap) {
            h = (h ^ ' ') * 1099511628211ull;
            gap = false;
        }
        h = (h ^ (uint64_t)tolower(c)) * 1099511628211ull;
    }
    return h;
}

const char *text_hygiene(const char *p, size_t n, uint64_t *seen, size_t *nseen)
{
    size_t visible = 0, letters = 0, long_run = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (blank((char)c)) {
            if (run > 64)
                long_run += run;
            run = 0;
            continue;
        }
        run++;
        if ((c & 0xC0) == 0x80)
            continue;               /* counted with its lead byte */
        visible++;
        letters += isalpha(c) || c >= 0xC0;
    }
    if (run > 64)
        long_run += run;
    if (visible < 12)
        return "too short";
    if (letters * 10 < visible * 4)
        return "mostly digits and symbols";
    if (long_run * 2 > n)
        return "mostly unbroken strings (encoded data or minified code)";
    uint64_t h = words_hash(p, n);
    for (size_t i = 0; i < *nseen; i++)
        if (seen[i] == h)
            return "a repeat of an earlier chunk";
    seen[(*nseen)++] = h;
    return NULL;
}
