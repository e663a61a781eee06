/*
 * index.c: `hearth index`, `hearth search`, `hearth ask`; see index.h.
 */
#include "cli/index.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/api.h"
#include "cli/client.h"

#define POLL_MS 500

static void index_usage(FILE *f)
{
    fprintf(f,
            "Usage: hearth index [COMMAND] [ARGS]\n"
            "\n"
            "The search index over your own files. hearthd walks the watched folders (every\n"
            "index-scan-interval seconds, default 60) and indexes notes, writing, code and\n"
            "HTML as text, scans, photos and PDFs through OCR, and voice notes through a\n"
            "transcription model; hidden files and folders are skipped. Nothing leaves the\n"
            "machine. Search it with `hearth search`, ask it with `hearth ask`.\n"
            "\n"
            "What a folder's .gitignore and .hearthignore files leave out is not indexed\n"
            "(git's rules: deeper files override shallower ones, '!' re-includes, a\n"
            "trailing '/' means folders only, '**' crosses folders).\n"
            "\n"
            "Commands:\n"
            "  ls                    folders, counts and what is being indexed (default)\n"
            "  add DIR... [--wait] [--exclude PATTERN]... [--no-exclude]\n"
            "                        watch these folders (paths on hearthd's machine);\n"
            "                        --wait shows a progress bar until they are indexed.\n"
            "                        --exclude leaves out what PATTERN matches (gitignore\n"
            "                        syntax from the folder's root: '*.min.js', 'build/',\n"
            "                        'drafts/**'; repeat it, at most 64). On a folder\n"
            "                        watched already, --exclude replaces its patterns and\n"
            "                        --no-exclude removes them; without either it keeps them\n"
            "  rm DIR                stop watching DIR and forget what was indexed from it\n"
            "  wait                  progress bar until nothing is pending; exit 1 when\n"
            "                        some files could not be indexed\n"
            "  docs [--state S] [--limit N]\n"
            "                        files and where they stand: pending, indexed, failed\n"
            "                        (the file itself: binary, too large) or dead (kept\n"
            "                        failing: see its error)\n"
            "  rescan [--retry]      walk the folders now; --retry also tries failed and\n"
            "                        dead files again\n"
            "  check                 check the index for silent damage: the database file,\n"
            "                        the full-text index, and the vectors (well-formed, and\n"
            "                        telling passages apart); exit 1 when a check fails\n");
}

/* A path as hearthd should see it: absolute (hearthd and the CLI share
 * the machine in the usual case; a path that does not exist here is sent
 * as given). */
static void absolute(const char *p, char *out, size_t n)
{
    char real[PATH_MAX];
    if (realpath(p, real))
        snprintf(out, n, "%s", real);
    else
        snprintf(out, n, "%s", p);
}

/* A folder's exclude patterns after lead, comma-separated; false (nothing
 * printed) when it has none. */
static bool print_patterns(const json *list, const char *lead)
{
    for (const json *p = list ? list->child : NULL; p; p = p->next)
        printf("%s%s", p == list->child ? lead : ", ", p->type == JSON_STRING ? p->str : "?");
    return list && list->child;
}

static int count_of(const json *counts, const char *state)
{
    return (int)api_num(json_get(counts, "documents"), state);
}

static int index_ls(void)
{
    arena *a = arena_new(1 << 24);
    const json *o = api("/v1/index", NULL, a);
    if (!o) {
        arena_free(a);
        return 1;
    }
    const json *c = json_get(o, "counts");
    const char *model = api_str(o, "embedding_model");
    printf("documents: %d indexed, %d pending, %d failed, %d dead; %.0f passages%s%s%s\n",
           count_of(c, "indexed"), count_of(c, "pending"), count_of(c, "failed"),
           count_of(c, "dead"), api_num(c, "chunks"), *model ? " with vectors from " : "",
           model, *model ? "" : " (BM25 only: no --index-embed-model)");
    const char *cur = api_str(o, "current");
    if (*cur)
        printf("indexing:  %s\n", cur);
    const json *f = json_get(o, "folders");
    if (!f || !f->len)
        printf("no folder is watched: hearth index add DIR\n");
    for (const json *e = f ? f->child : NULL; e; e = e->next) {
        printf("  %-60s %6.0f files\n", api_str(e, "path"), api_num(e, "documents"));
        if (print_patterns(json_get(e, "exclude"), "    exclude: "))
            putchar('\n');
    }
    arena_free(a);
    return 0;
}

/* The progress line until nothing is pending: in the n folders named (the
 * whole index when n is 0), walked since `since` (epoch seconds). 0 when
 * every file ended indexed, 1 when some could not be, 2 when hearthd
 * stopped answering. */
static int index_wait(char **folders, int n, double since)
{
    bool tty = isatty(STDERR_FILENO);
    time_t t0 = time(NULL);
    int last_line = -1;
    for (;;) {
        arena *a = arena_new(1 << 24);
        const json *o = api("/v1/index", NULL, a);
        if (!o) {
            arena_free(a);
            return 2;
        }
        const json *c = json_get(o, "counts"), *sc = json_get(o, "scanning");
        int pending = count_of(c, "pending"), indexed = count_of(c, "indexed"),
            bad = count_of(c, "failed") + count_of(c, "dead");
        bool busy = pending > 0 || (sc && sc->boolean);
        if (n) {
            pending = indexed = bad = 0;
            busy = false;
            const json *fl = json_get(o, "folders");
            for (const json *e = fl ? fl->child : NULL; e; e = e->next)
                for (int i = 0; i < n; i++)
                    if (!strcmp(api_str(e, "path"), folders[i])) {
                        pending += (int)api_num(e, "pending");
                        indexed += (int)api_num(e, "indexed");
                        bad += (int)api_num(e, "failed");
                        busy |= api_num(e, "last_scan") < since || api_num(e, "pending") > 0;
                    }
        }
        int total = pending + indexed + bad;
        int width = 30, fill = total ? (int)((double)(total - pending) * width / total) : width;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        /* a terminal gets one line redrawn; a log a line every 10 s */
        if (tty || !busy || (int)(time(NULL) - t0) / 10 != last_line) {
            fprintf(stderr, "%s[%s] %d/%d files indexed, %d pending, %d not indexed  %lds%s",
                    tty ? "\r" : "", bar, indexed, total, pending, bad, (long)(time(NULL) - t0),
                    tty ? " " : "\n");
            last_line = (int)(time(NULL) - t0) / 10;
        }
        arena_free(a);
        if (!busy) {
            if (tty)
                fputc('\n', stderr);
            if (bad)
                fprintf(stderr, "%d file(s) could not be indexed: see hearth index docs --state "
                        "failed (and --state dead)\n", bad);
            return bad ? 1 : 0;
        }
        usleep(POLL_MS * 1000);
    }
}

/* add's options: --wait, --exclude PATTERN (or --exclude=PATTERN, repeated;
 * into exclude as JSON strings, comma-separated) and --no-exclude (drops
 * the patterns before it), taken out of argv: the folders are left in
 * argv[1..], in order, and their count is returned (-1 after saying what
 * is wrong). */
static int add_options(int argc, char **argv, bool *wait, buf *exclude, bool *set_exclude)
{
    int nd = 0;
    for (int i = 1; i < argc; i++) {
        const char *pat = NULL;
        if (!strcmp(argv[i], "--wait"))
            *wait = true;
        else if (!strcmp(argv[i], "--no-exclude")) {
            *set_exclude = true;
            exclude->len = 0;           /* the patterns before it are dropped */
        }
        else if (!strcmp(argv[i], "--exclude")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hearth index add: --exclude needs a pattern\n");
                return -1;
            }
            pat = argv[++i];
        } else if (!strncmp(argv[i], "--exclude=", 10))
            pat = argv[i] + 10;
        else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "hearth index add: unknown option '%s' (hearth index --help)\n",
                    argv[i]);
            return -1;
        } else
            argv[1 + nd++] = argv[i];
        if (pat) {
            if (exclude->len)
                buf_putc(exclude, ',');
            jw_cstr(exclude, pat);
            *set_exclude = true;
        }
    }
    return nd;
}

static int index_add(int argc, char **argv)
{
    bool wait = false, set_exclude = false;
    int rc = 0, added = 0;
    buf exclude = buf_make(0);
    int nd = add_options(argc, argv, &wait, &exclude, &set_exclude);
    if (nd < 0) {
        buf_free(&exclude);
        return 2;
    }
    char **watched = calloc((size_t)argc, sizeof *watched);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double since = (double)now.tv_sec + now.tv_nsec / 1e9;
    for (int i = 1; i <= nd && watched; i++) {
        char path[PATH_MAX];
        absolute(argv[i], path, sizeof path);
        buf body = buf_make(0);
        buf_puts(&body, "{\"path\":");
        jw_cstr(&body, path);
        if (set_exclude) {
            buf_puts(&body, ",\"exclude\":[");
            buf_append(&body, exclude.data ? exclude.data : "", exclude.len);
            buf_putc(&body, ']');
        }
        buf_putc(&body, '}');
        arena *a = arena_new(1 << 20);
        const json *o = api_call("POST", "/v1/index/folders", body.data, a);
        if (o) {
            printf("watching %s", api_str(o, "path"));
            print_patterns(json_get(o, "exclude"), ", excluding ");
            putchar('\n');
            watched[added++] = strdup(api_str(o, "path"));
        } else
            rc = 1;
        arena_free(a);
        buf_free(&body);
    }
    buf_free(&exclude);
    if (!added && !rc) {
        fprintf(stderr, "hearth index add: which folder? (hearth index --help)\n");
        return 2;
    }
    if (wait && added) {
        int w = index_wait(watched, added, since);
        if (w)
            rc = w;
    }
    for (int i = 0; i < added; i++)
        free(watched[i]);
    free(watched);
    return rc;
}

static int index_rm(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "hearth index rm: one folder (hearth index --help)\n");
        return 2;
    }
    char path[PATH_MAX];
    absolute(argv[1], path, sizeof path);
    char *esc = curl_easy_escape(NULL, path, 0);
    char url[PATH_MAX * 3 + 64];
    snprintf(url, sizeof url, "/v1/index/folders?path=%s", esc ? esc : "");
    curl_free(esc);
    arena *a = arena_new(1 << 20);
    const json *o = api_call("DELETE", url, NULL, a);
    if (o)
        printf("no longer watching %s\n", path);
    arena_free(a);
    return o ? 0 : 1;
}

static int index_docs(int argc, char **argv)
{
    const char *state = NULL, *limit = "100";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--state") && i + 1 < argc)
            state = argv[++i];
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
            limit = argv[++i];
        else {
            fprintf(stderr, "hearth index docs: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    char url[256];
    snprintf(url, sizeof url, "/v1/index/documents?limit=%s%s%s", limit, state ? "&state=" : "",
             state ? state : "");
    arena *a = arena_new(1 << 26);
    const json *o = api(url, NULL, a);
    const json *d = o ? json_get(o, "data") : NULL;
    for (const json *e = d ? d->child : NULL; e; e = e->next) {
        const char *err = api_str(e, "error");
        printf("%-8s %4.0f passages  %s%s%s\n", api_str(e, "state"), api_num(e, "chunks"),
               api_str(e, "path"), *err ? "\n         " : "", err);
    }
    arena_free(a);
    return o ? 0 : 1;
}

int index_main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "ls";
    if (cli_wants_help(argc, argv)) {
        index_usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "ls"))
        return index_ls();
    if (!strcmp(cmd, "add"))
        return index_add(argc - 1, argv + 1);
    if (!strcmp(cmd, "rm"))
        return index_rm(argc - 1, argv + 1);
    if (!strcmp(cmd, "wait"))
        return index_wait(NULL, 0, 0);
    if (!strcmp(cmd, "docs"))
        return index_docs(argc - 1, argv + 1);
    if (!strcmp(cmd, "check")) {
        arena *a = arena_new(1 << 20);
        const json *o = api("/v1/index/check", NULL, a);
        const json *c = o ? json_get(o, "checks") : NULL;
        for (const json *e = c ? c->child : NULL; e; e = e->next) {
            const json *ok = json_get(e, "ok");
            printf("%-4s %-10s %s\n", ok && ok->boolean ? "ok" : "FAIL", api_str(e, "name"),
                   api_str(e, "detail"));
        }
        const json *all = o ? json_get(o, "ok") : NULL;
        int rc = all && all->boolean ? 0 : 1;
        arena_free(a);
        return rc;
    }
    if (!strcmp(cmd, "rescan")) {
        arena *a = arena_new(1 << 20);
        const json *o = api_call("POST", "/v1/index/rescan",
                                 cli_has_flag(argc, argv, "--retry") ? "{\"retry\":true}" : "{}", a);
        arena_free(a);
        return o ? 0 : 1;
    }
    fprintf(stderr, "hearth index: unknown command '%s'\n\n", cmd);
    index_usage(stderr);
    return 2;
}

/* ---- search and ask ------------------------------------------------------ */

/* The words of argv[first..] joined by spaces into out, the options taken
 * out: -k N, --mode M, --model M, --max-tokens N, --json. */
struct qopts {
    const char *k, *mode, *model, *max_tokens;
    bool json;
};

static int gather(int argc, char **argv, buf *text, struct qopts *o)
{
    for (int i = 1; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "-k") ? &o->k : !strcmp(argv[i], "--mode") ? &o->mode
                           : !strcmp(argv[i], "--model") ? &o->model
                           : !strcmp(argv[i], "--max-tokens") ? &o->max_tokens : NULL;
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hearth: %s needs a value\n", argv[i]);
                return -1;
            }
            *dst = argv[++i];
            continue;
        }
        if (!strcmp(argv[i], "--json")) {
            o->json = true;
            continue;
        }
        if (text->len)
            buf_putc(text, ' ');
        buf_puts(text, argv[i]);
    }
    if (!text->len) {
        fprintf(stderr, "hearth: what should I look for? (--help)\n");
        return -1;
    }
    return 0;
}

/* A number option as JSON, or false after saying why. */
static bool add_int(buf *body, const char *key, const char *v)
{
    if (!v)
        return true;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || !*v || n < 1 || n > 1000000) {
        fprintf(stderr, "hearth: %s must be a positive number\n", key);
        return false;
    }
    buf_printf(body, ",\"%s\":%ld", key, n);
    return true;
}

/* Where a passage is: FILE:FIRST-LAST, or FILE@M:SS-M:SS for a recording. */
static void place(const json *e, char *out, size_t n)
{
    const json *l = json_get(e, "lines"), *t0 = json_get(e, "start_s"), *t1 = json_get(e, "end_s");
    if (t0 && t1 && t0->type == JSON_NUMBER && t1->type == JSON_NUMBER)
        snprintf(out, n, "%s@%d:%02d-%d:%02d", api_str(e, "path"), (int)t0->number / 60,
                 (int)t0->number % 60, (int)t1->number / 60, (int)t1->number % 60);
    else
        snprintf(out, n, "%s:%.0f-%.0f", api_str(e, "path"), l && l->child ? l->child->number : 0,
                 l && l->child && l->child->next ? l->child->next->number : 0);
}

/* The passage's first line of text, squeezed, at most n characters. */
static void snippet(const char *t, char *out, size_t n)
{
    size_t k = 0;
    bool gap = false;
    for (; *t && k + 4 < n; t++) {
        if (*t == '\n' || *t == '\t' || *t == ' ') {
            gap = k > 0;
            continue;
        }
        if (gap)
            out[k++] = ' ';
        gap = false;
        out[k++] = *t;
    }
    if (*t) {
        while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
            k--;            /* not inside a character */
        if (k > 0 && (unsigned char)out[k - 1] >= 0xC0)
            k--;
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = 0;
}

int search_main(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("Usage: hearth search [-k N] [--mode hybrid|bm25|vector] [--json] QUERY...\n"
               "\n"
               "Search the indexed files (hearth index). Prints the best passages with\n"
               "their file and lines, best first (default 10, at most 100). hybrid (the\n"
               "default) fuses BM25 and vector search when hearthd has an embedding model\n"
               "for the index; without one it is BM25.\n");
        return 0;
    }
    buf text = buf_make(0), body = buf_make(0);
    struct qopts o = { 0 };
    int rc = 2;
    if (gather(argc, argv, &text, &o) < 0)
        goto out;
    buf_puts(&body, "{\"query\":");
    jw_str(&body, text.data, text.len);
    if (o.mode) {
        buf_puts(&body, ",\"mode\":");
        jw_cstr(&body, o.mode);
    }
    if (!add_int(&body, "k", o.k))
        goto out;
    buf_putc(&body, '}');
    rc = 1;
    arena *a = arena_new(1 << 26);
    const json *r = api_call("POST", "/v1/search", body.data, a);
    const json *d = r ? json_get(r, "data") : NULL;
    if (r && o.json) {
        buf out = buf_make(0);
        jw_value(&out, r);
        printf("%s\n", out.data ? out.data : "{}");
        buf_free(&out);
    } else if (d) {
        if (!d->len)
            printf("nothing found\n");
        for (const json *e = d->child; e; e = e->next) {
            char snip[200], where[4200];
            snippet(api_str(e, "text"), snip, sizeof snip);
            place(e, where, sizeof where);
            printf("%2.0f. %s\n    %s\n", api_num(e, "rank"), where, snip);
        }
    }
    if (r)
        rc = 0;
    arena_free(a);
out:
    buf_free(&text);
    buf_free(&body);
    return rc;
}

/* The streamed answer: each chunk's text printed as it comes, the
 * citations of the first chunk kept for the end. */
struct ask_stream {
    buf cites;                  /* the "citations" array, as JSON */
    bool error;
};

static int on_ask_event(void *ud, const char *data, size_t len)
{
    struct ask_stream *as = ud;
    if (len == 6 && !memcmp(data, "[DONE]", 6))
        return 0;
    arena *a = arena_new(len * 8 + 4096);
    const json *o = a ? json_parse(a, data, len, NULL, 0) : NULL;
    const json *err = json_get(o, "error");
    if (err) {
        fprintf(stderr, "\nhearth ask: %s\n", api_str(err, "message"));
        as->error = true;
    }
    const json *c = json_get(o, "citations");
    if (c && !as->cites.len)
        jw_value(&as->cites, c);
    const json *ch = json_get(o, "choices");
    const json *delta = ch && ch->child ? json_get(ch->child, "delta") : NULL;
    const char *t = api_str(delta, "content");
    if (*t) {
        fputs(t, stdout);
        fflush(stdout);
    }
    arena_free(a);
    return 0;
}

static void print_sources(const json *c)
{
    if (c && c->len)
        printf("\nSources:\n");
    for (const json *e = c ? c->child : NULL; e; e = e->next) {
        char where[4200];
        place(e, where, sizeof where);
        printf("  [%.0f] %s\n", api_num(e, "index"), where);
    }
}

int ask_main(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("Usage: hearth ask [--model M] [-k N] [--max-tokens N] [--json] QUESTION...\n"
               "\n"
               "Answer a question from your own indexed files (hearth index): hearthd finds\n"
               "the best passages (default 5, at most 20), gives them to a chat model (default:\n"
               "the first one it serves) and prints its answer as it is written, then the\n"
               "sources it was given, with their files and lines; the answer cites them as\n"
               "[1], [2], ... --json prints the whole answer object instead (citations\n"
               "included).\n");
        return 0;
    }
    buf text = buf_make(0), body = buf_make(0);
    struct qopts o = { 0 };
    int rc = 2;
    char model[80];
    if (gather(argc, argv, &text, &o) < 0)
        goto out;
    if (o.model)
        snprintf(model, sizeof model, "%s", o.model);
    else if (!api_first_model("chat", model, sizeof model)) {
        fprintf(stderr, "hearth ask: hearthd serves no chat model to answer with\n");
        rc = 1;
        goto out;
    }
    buf_puts(&body, "{\"model\":");
    jw_cstr(&body, model);
    buf_puts(&body, ",\"question\":");
    jw_str(&body, text.data, text.len);
    if (!add_int(&body, "k", o.k) || !add_int(&body, "max_tokens", o.max_tokens))
        goto out;
    if (!o.json)
        buf_puts(&body, ",\"stream\":true");
    buf_putc(&body, '}');
    rc = 1;
    if (!o.json) {
        /* streamed: the answer appears as the model writes it */
        char url[1024], err[512];
        snprintf(url, sizeof url, "%s/v1/ask", api_url());
        struct ask_stream as = { .cites = buf_make(1 << 24) };
        buf eb = buf_make(0);
        long st = 0;
        int sr = client_stream(url, body.data, on_ask_event, &as, &st, &eb, err, sizeof err);
        if (sr < 0)
            fprintf(stderr, "hearth: %s\n", err);
        else if (st < 200 || st >= 300)
            api_print_error(st, &eb);
        else {
            putchar('\n');
            arena *a = arena_new(as.cites.len * 8 + 4096);
            const json *c = as.cites.len && a ? json_parse(a, as.cites.data, as.cites.len, NULL, 0)
                                              : NULL;
            print_sources(c);
            arena_free(a);
            rc = as.error ? 1 : 0;
        }
        buf_free(&as.cites);
        buf_free(&eb);
        goto out;
    }
    arena *a = arena_new(1 << 26);
    const json *r = api_call("POST", "/v1/ask", body.data, a);
    if (r) {
        buf out = buf_make(0);
        jw_value(&out, r);
        printf("%s\n", out.data ? out.data : "{}");
        buf_free(&out);
        rc = 0;
    }
    arena_free(a);
out:
    buf_free(&text);
    buf_free(&body);
    return rc;
}
