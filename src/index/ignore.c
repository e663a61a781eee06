/*
 * ignore.c: gitignore-style patterns for the index's walk (ignore.h).
 *
 * A line is parsed once into a pattern (its '!', its leading and trailing
 * '/' taken off and kept as flags); matching is then a glob of the pattern
 * against the path (anchored) or its last name (not anchored).
 *
 * The glob backtracks on '*', which alone could take exponential time on
 * a pattern of many stars. Two early exits keep it polynomial: when the
 * path runs out before the pattern, no other split of earlier stars can
 * help, since each would leave the rest less text (give up on the whole
 * match); and when a '*' that cannot cross '/' reaches one, earlier single
 * stars cannot help either, only a "**" can (give up to the nearest "**").
 */
#include "index/ignore.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pattern {
    char *glob;                 /* without '!', the leading '/' and the trailing '/'s */
    bool negate, dir_only, anchored;
};

struct ignore_rules {
    struct pattern *p;
    size_t n, cap;
};

ignore_rules *ignore_rules_new(void)
{
    return calloc(1, sizeof(ignore_rules));
}

void ignore_rules_free(ignore_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->p[i].glob);
    free(r->p);
    free(r);
}

size_t ignore_rules_count(const ignore_rules *r)
{
    return r ? r->n : 0;
}

/* ---- the glob ------------------------------------------------------------ */

/* A named class, "[:digit:]" and its kin: -1 when the name is unknown. */
static int named_class(const char *name, size_t len, unsigned char c)
{
    static const struct { const char *name; int (*is)(int); } classes[] = {
        { "alnum", isalnum }, { "alpha", isalpha }, { "blank", isblank }, { "cntrl", iscntrl },
        { "digit", isdigit }, { "graph", isgraph }, { "lower", islower }, { "print", isprint },
        { "punct", ispunct }, { "space", isspace }, { "upper", isupper }, { "xdigit", isxdigit },
    };
    for (size_t i = 0; i < sizeof classes / sizeof *classes; i++)
        if (strlen(classes[i].name) == len && !memcmp(classes[i].name, name, len))
            return classes[i].is(c) ? 1 : 0;
    return -1;
}

/* The class at p ('['): whether c is in it, with *end at its closing ']'.
 * -1 when the class is malformed (unclosed, an unknown name). */
static int class_has(const char *p, unsigned char c, const char **end)
{
    p++;
    bool negate = *p == '!' || *p == '^';
    if (negate)
        p++;
    bool found = false;
    for (bool first = true; *p != ']' || first; first = false) {
        if (!*p)
            return -1;
        if (p[0] == '[' && p[1] == ':') {
            const char *close = strstr(p + 2, ":]");
            if (!close)
                return -1;
            int in = named_class(p + 2, (size_t)(close - p - 2), c);
            if (in < 0)
                return -1;
            found |= in == 1;
            p = close + 2;
            continue;
        }
        if (*p == '\\' && !*++p)
            return -1;
        unsigned char lo = (unsigned char)*p++, hi = lo;
        if (p[0] == '-' && p[1] && p[1] != ']') {
            p++;
            if (*p == '\\' && !*++p)
                return -1;
            hi = (unsigned char)*p++;
        }
        found |= lo <= c && c <= hi;
    }
    *end = p;
    return found != negate;
}

enum { G_MATCH, G_NO, G_GIVE_UP, G_GIVE_UP_TO_STARSTAR };

/* Glob pattern p (whose first character is pat0) against s. */
static int glob_at(const char *p, const char *pat0, const char *s)
{
    for (; *p; p++, s++) {
        if (!*s && *p != '*')
            return G_GIVE_UP;
        switch (*p) {
        case '\\':
            p++;
            if (*p != *s)
                return G_NO;
            break;
        case '?':
            if (*s == '/')
                return G_NO;
            break;
        case '[': {
            const char *end = p;
            int in = class_has(p, (unsigned char)*s, &end);
            if (in < 0)
                return G_GIVE_UP;
            if (!in || *s == '/')
                return G_NO;
            p = end;
            break;
        }
        case '*': {
            const char *stars = p;
            while (p[1] == '*')
                p++;
            /* "**" between slashes (or the ends) crosses folders */
            bool deep = p > stars && (stars == pat0 || stars[-1] == '/') &&
                        (p[1] == 0 || p[1] == '/');
            p++;
            if (!*p)
                return deep || !strchr(s, '/') ? G_MATCH : G_NO;
            if (deep && *p == '/') {
                /* "**" + "/" standing for no folder at all; when the text
                 * ran out on it, it runs out on every later start too
                 * (without this, nested "**" + "/" would take 2^n tries) */
                int r = glob_at(p + 1, pat0, s);
                if (r == G_MATCH || r == G_GIVE_UP)
                    return r;
            }
            for (;; s++) {
                int r = glob_at(p, pat0, s);
                if (r != G_NO && (!deep || r != G_GIVE_UP_TO_STARSTAR))
                    return r;
                if (!*s)
                    return G_GIVE_UP;
                if (*s == '/' && !deep)
                    return G_GIVE_UP_TO_STARSTAR;
            }
        }
        default:
            if (*p != *s)
                return G_NO;
        }
    }
    return *s ? G_NO : G_MATCH;
}

/* A glob that can match: no trailing lone '\', every class closed and known. */
static bool glob_valid(const char *p)
{
    for (; *p; p++) {
        if (*p == '\\') {
            if (!*++p)
                return false;
        } else if (*p == '[') {
            const char *end = p;
            if (class_has(p, 0, &end) < 0)
                return false;
            p = end;
        }
    }
    return true;
}

/* ---- patterns ------------------------------------------------------------ */

/* Whether s[i] is escaped: an odd number of '\' before it. */
static bool escaped(const char *s, size_t i)
{
    size_t k = 0;
    while (k < i && s[i - 1 - k] == '\\')
        k++;
    return k % 2 == 1;
}

/* One line into pattern out (its glob malloc'd). */
static ignore_line parse_line(const char *line, size_t len, struct pattern *out)
{
    if (len > IGNORE_MAX_PATTERN)
        return IGNORE_TOO_LONG;
    if (memchr(line, 0, len))
        return IGNORE_INVALID;
    if (len && line[len - 1] == '\r')
        len--;
    while (len && line[len - 1] == ' ' && !escaped(line, len - 1))
        len--;
    if (!len || line[0] == '#')
        return IGNORE_NOTHING;
    size_t start = 0, end = len;
    *out = (struct pattern){ 0 };
    if (line[0] == '!') {
        out->negate = true;
        start = 1;
    }
    while (end > start && line[end - 1] == '/' && !escaped(line, end - 1)) {
        out->dir_only = true;
        end--;
    }
    if (end > start && line[start] == '/') {
        out->anchored = true;
        start++;
    }
    if (start == end)
        return IGNORE_INVALID;
    if (memchr(line + start, '/', end - start))
        out->anchored = true;
    out->glob = strndup(line + start, end - start);
    if (!out->glob)
        return IGNORE_NOMEM;
    if (!glob_valid(out->glob)) {
        free(out->glob);
        out->glob = NULL;
        return IGNORE_INVALID;
    }
    return IGNORE_ADDED;
}

ignore_line ignore_rules_add(ignore_rules *r, const char *line, size_t len)
{
    struct pattern p;
    ignore_line k = parse_line(line, len, &p);
    if (k != IGNORE_ADDED)
        return k;
    if (r->n >= IGNORE_MAX_PATTERNS) {
        free(p.glob);
        return IGNORE_FULL;
    }
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 8;
        struct pattern *g = realloc(r->p, nc * sizeof *g);
        if (!g) {
            free(p.glob);
            return IGNORE_NOMEM;
        }
        r->p = g;
        r->cap = nc;
    }
    r->p[r->n++] = p;
    return IGNORE_ADDED;
}

void ignore_rules_parse(ignore_rules *r, const char *text, size_t len, ignore_report *rep)
{
    ignore_report none;
    if (!rep)
        rep = &none;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        switch (ignore_rules_add(r, p, n)) {
        case IGNORE_ADDED: rep->added++; break;
        case IGNORE_NOTHING: break;
        case IGNORE_INVALID: rep->invalid++; break;
        case IGNORE_TOO_LONG: rep->too_long++; break;
        case IGNORE_FULL:
        case IGNORE_NOMEM: rep->over_cap++; break;
        }
        p += n + 1;
    }
}

int ignore_rules_load(ignore_rules *r, int dirfd, const char *name, ignore_report *rep)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? 0 : -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    /* one byte past the cap tells a file of exactly the cap from a longer one */
    char *text = malloc(IGNORE_MAX_FILE + 1);
    size_t n = 0;
    bool failed = false;
    while (text && n < IGNORE_MAX_FILE + 1) {
        ssize_t got = read(fd, text + n, IGNORE_MAX_FILE + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        failed = got < 0;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    int saved = errno;
    close(fd);
    if (!text || failed) {
        /* a part of the file is not rules enough: what it leaves out is
         * not known */
        free(text);
        errno = text ? saved : ENOMEM;
        return -1;
    }
    if (n > IGNORE_MAX_FILE) {
        if (rep)
            rep->truncated = true;
        n = IGNORE_MAX_FILE;
        while (n && text[n - 1] != '\n')
            n--;                /* the cut line is not half-read */
    }
    ignore_rules_parse(r, text, n, rep);
    free(text);
    errno = saved;
    return 1;
}

static ignore_verdict match_one(const struct pattern *p, const char *path, bool is_dir)
{
    if (p->dir_only && !is_dir)
        return IGNORE_NO_MATCH;
    const char *slash = strrchr(path, '/');
    const char *subject = p->anchored || !slash ? path : slash + 1;
    if (glob_at(p->glob, p->glob, subject) != G_MATCH)
        return IGNORE_NO_MATCH;
    return p->negate ? IGNORE_INCLUDE : IGNORE_EXCLUDE;
}

ignore_verdict ignore_rules_match(const ignore_rules *r, const char *path, bool is_dir)
{
    for (size_t i = r ? r->n : 0; i-- > 0;) {
        ignore_verdict v = match_one(&r->p[i], path, is_dir);
        if (v != IGNORE_NO_MATCH)
            return v;
    }
    return IGNORE_NO_MATCH;
}

bool ignore_pattern_matches(const char *pattern, const char *path, bool is_dir)
{
    struct pattern p;
    if (parse_line(pattern, strlen(pattern), &p) != IGNORE_ADDED)
        return false;
    bool m = match_one(&p, path, is_dir) != IGNORE_NO_MATCH;
    free(p.glob);
    return m;
}

/* ---- the walk's stack ---------------------------------------------------- */

void ignore_stack_init(ignore_stack *s, const ignore_rules *top)
{
    s->top = top;
    s->depth = 0;
}

int ignore_stack_push(ignore_stack *s, ignore_rules *rules, size_t dir_len)
{
    if (s->depth == IGNORE_STACK_MAX) {
        ignore_rules_free(rules);
        return -1;
    }
    s->level[s->depth++] = (struct ignore_level){ rules, dir_len };
    return 0;
}

void ignore_stack_pop(ignore_stack *s)
{
    if (s->depth > 0)
        ignore_rules_free(s->level[--s->depth].rules);
}

void ignore_stack_clear(ignore_stack *s)
{
    while (s->depth > 0)
        ignore_stack_pop(s);
}

bool ignore_stack_excludes(const ignore_stack *s, const char *path, bool is_dir)
{
    ignore_verdict v = ignore_rules_match(s->top, path, is_dir);
    size_t len = strlen(path);
    for (int i = s->depth - 1; v == IGNORE_NO_MATCH && i >= 0; i--) {
        size_t b = s->level[i].base_len;
        if (!s->level[i].rules || (b && (len <= b + 1 || path[b] != '/')))
            continue;           /* no list there, or path is not below it */
        v = ignore_rules_match(s->level[i].rules, b ? path + b + 1 : path, is_dir);
    }
    return v == IGNORE_EXCLUDE;
}
