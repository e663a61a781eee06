/*
 * e2e_index.c: the retrieval index against the real daemon, the real
 * SQLite file, Tesseract, a synthesized whisper-tiny, a synthesized MiniLM
 * (the index's embedding model) and the real stories260K (the chat model
 * that answers /v1/ask):
 *
 *  - a watched folder of notes, code, HTML, a Latin-1 file, a scan and a
 *    recording is indexed: text read directly, the scan through OCR, the
 *    recording through whisper; hidden folders, symlinks and binary files
 *    stay out; search finds each passage with its file and lines;
 *  - a changed file is indexed again (its old words are gone), a deleted
 *    one is forgotten, a removed folder takes its passages with it;
 *  - .gitignore / .hearthignore files and a folder's exclude patterns (API
 *    and CLI) leave files out; editing an ignore file removes and adds
 *    files without a rescan; bad patterns get 400s;
 *  - kill -9 in the middle of indexing loses nothing and duplicates
 *    nothing once hearthd is back;
 *  - /v1/ask answers with citations of the passages it was given;
 *  - bad requests get OpenAI-shaped 4xx errors;
 *  - the CLI adds a folder with a progress bar, searches and asks;
 *  - retrieval quality on SciFact (BEIR): BM25 nDCG@10 over the 300 test
 *    queries, against the 0.665 BEIR reports for BM25.
 */
#include "harness.h"

#include <dirent.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>

static struct daemon X;
static char g_notes[600];

/* ---- helpers -------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *slash = strrchr(p, '/');
    *slash = 0;
    char mk[1300];
    snprintf(mk, sizeof mk, "mkdir -p '%s'", p);
    CHECK(system(mk) == 0);
    *slash = '/';
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static double now_epoch(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* GET /v1/index's counts.documents.<state> (-1 when unreadable). */
static int docs_in(struct daemon *d, const char *state)
{
    struct resp r = http(d, "GET", "/v1/index", NULL, 0);
    arena *a = arena_new(0);
    const json *o = parse(a, &r.body);
    char p[64];
    snprintf(p, sizeof p, "counts.documents.%s", state);
    int n = r.status == 200 ? (int)num_at(o, p) : -1;
    arena_free(a);
    resp_free(&r);
    return n;
}

static double index_num(struct daemon *d, const char *p)
{
    struct resp r = http(d, "GET", "/v1/index", NULL, 0);
    arena *a = arena_new(0);
    double v = r.status == 200 ? num_at(parse(a, &r.body), p) : -1;
    arena_free(a);
    resp_free(&r);
    return v;
}

/* Wait until every folder was walked after `after` (epoch seconds) and
 * nothing is pending. */
static bool settled(struct daemon *d, double after, double timeout_s)
{
    for (int i = 0; i < (int)(timeout_s * 10); i++) {
        struct resp r = http(d, "GET", "/v1/index", NULL, 0);
        arena *a = arena_new(0);
        const json *o = parse(a, &r.body);
        bool walked = true;     /* every folder walked since `after` */
        const json *f = path(o, "folders");
        for (const json *e = f ? f->child : NULL; e; e = e->next)
            walked &= num_at(e, "last_scan") >= after;
        bool done = r.status == 200 && walked && num_at(o, "counts.documents.pending") == 0 &&
                    path(o, "scanning") && !path(o, "scanning")->boolean &&
                    path(o, "current") && path(o, "current")->type == JSON_NULL;
        arena_free(a);
        resp_free(&r);
        if (done)
            return true;
        usleep(100000);
    }
    return false;
}

static bool add_folder(struct daemon *d, const char *dir)
{
    char body[800];
    snprintf(body, sizeof body, "{\"path\":\"%s\"}", dir);
    struct resp r = post(d, "/v1/index/folders", body);
    bool ok = r.status == 201;
    if (!ok)
        fprintf(stderr, "  add folder: %ld %s\n", r.status, r.body.data ? r.body.data : "");
    resp_free(&r);
    return ok;
}

/* POST /v1/search; the answer parsed into a (NULL unless 200). */
static const json *search(struct daemon *d, arena *a, const char *query, const char *extra)
{
    char body[1200];
    snprintf(body, sizeof body, "{\"query\":\"%s\"%s%s}", query, extra ? "," : "",
             extra ? extra : "");
    struct resp r = post(d, "/v1/search", body);
    const json *o = NULL;
    if (r.status == 200) {
        char *copy = arena_strndup(a, r.body.data, r.body.len);
        o = json_parse(a, copy, r.body.len, NULL, 0);
    } else
        fprintf(stderr, "  search: %ld %s\n", r.status, r.body.data ? r.body.data : "");
    resp_free(&r);
    return o;
}

/* The file name (after the last '/') of result i, "" when none. */
static const char *hit_name(const json *o, int i)
{
    char p[32];
    snprintf(p, sizeof p, "data.%d.path", i);
    const char *s = str_at(o, p);
    return s ? strrchr(s, '/') + 1 : "";
}

static bool any_hit_named(const json *o, const char *name)
{
    const json *d = path(o, "data");
    for (const json *e = d ? d->child : NULL; e; e = e->next) {
        const char *p = str_at(e, "path");
        if (p && !strcmp(strrchr(p, '/') + 1, name))
            return true;
    }
    return false;
}

static int hits(const json *o)
{
    const json *d = path(o, "data");
    return d && d->type == JSON_ARRAY ? (int)d->len : -1;
}

/* ---- the notes folder ------------------------------------------------------ */

static void make_notes(void)
{
    write_file(g_notes, "garden.md",
               "# Garden\n\nThe tomatoes need watering every morning in July.\n"
               "Basil grows well beside them.\n\nCompost the leaves in autumn.\n");
    write_file(g_notes, "house/boiler.txt",
               "\n\nMeeting with the plumber on Tuesday.\nHe said the pressure valve of the "
               "boiler is worn and must be replaced before winter.\n");
    write_file(g_notes, "code/fib.py",
               "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
               "    return a\n");
    write_file(g_notes, "web/recipe.html",
               "<html><head><style>body { color: zucchinired; }</style>\n"
               "<script>var secretscript = 1;</script></head>\n"
               "<body><h1>Lentil soup</h1>\n<p>Simmer the lentils &amp; carrots for "
               "forty minutes.</p></body></html>\n");
    write_file(g_notes, "latin1.txt", "Le caf\xe9 cr\xe8me du march\xe9 est d\xe9licieux.\n");
    write_file(g_notes, ".private/diary.txt", "The hiddenword diary must never be indexed.\n");
    write_file(g_notes, "blob.txt", "");
    char p[700];
    snprintf(p, sizeof p, "%s/blob.txt", g_notes);
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite("binary\0data\0here", 1, 16, f);
        fclose(f);
    }
    /* outside the folder, reached by a symlink: not indexed */
    char outside[700];
    snprintf(outside, sizeof outside, "%s/outside.txt", g_tmp);
    f = fopen(outside, "w");
    if (f) {
        fputs("The outsideword lives outside the watched folder.\n", f);
        fclose(f);
    }
    snprintf(p, sizeof p, "%s/link.txt", g_notes);
    CHECK(symlink(outside, p) == 0);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cp '%s/data/ocr/phototest.tif' '%s/scan.tif' && "
             "cp '%s/data/speech/jfk.wav' '%s/voice.wav'", g_shared, g_notes, g_shared, g_notes);
    CHECK(system(cmd) == 0);
}

/* ---- tests ------------------------------------------------------------------ */

static void t_folder_is_indexed(void)
{
    double t0 = now_epoch();
    CHECK(add_folder(&X, g_notes));
    CHECK(settled(&X, t0, 120));
    /* garden, boiler, fib, recipe, latin1, scan, voice; blob failed */
    CHECK(docs_in(&X, "indexed") == 7);
    CHECK(docs_in(&X, "failed") == 1);
    CHECK(docs_in(&X, "dead") == 0);
    CHECK(index_num(&X, "counts.vectors") == index_num(&X, "counts.chunks"));
    CHECK(index_num(&X, "counts.chunks") >= 6);

    struct resp r = http(&X, "GET", "/v1/index/documents?state=failed", NULL, 0);
    CHECK(r.status == 200 && strstr(r.body.data, "blob.txt") && strstr(r.body.data, "NUL bytes"));
    resp_free(&r);
}

/* Whether every vector comes to be held in memory within timeout_s. */
static bool memory_holds_all(struct daemon *d, double timeout_s)
{
    for (int i = 0; i < (int)(timeout_s * 10); i++) {
        double held = index_num(d, "counts.vector_memory.vectors");
        if (held > 0 && held == index_num(d, "counts.vectors"))
            return true;
        usleep(100000);
    }
    return false;
}

static void t_search_finds_passages(void)
{
    arena *a = arena_new(0);
    const json *o = search(&X, a, "watering tomatoes", "\"mode\":\"bm25\"");
    CHECK(o && !strcmp(hit_name(o, 0), "garden.md"));
    CHECK(o && num_at(o, "data.0.lines.0") == 1 && num_at(o, "data.0.lines.1") == 6);
    CHECK(o && strstr(str_at(o, "data.0.text"), "tomatoes need watering"));
    CHECK(o && num_at(o, "data.0.bm25_rank") == 1);

    /* lines count from the file's first line, blank ones included */
    o = search(&X, a, "pressure valve boiler", "\"mode\":\"bm25\",\"k\":1");
    CHECK(o && hits(o) == 1 && !strcmp(hit_name(o, 0), "boiler.txt"));
    CHECK(o && num_at(o, "data.0.lines.0") == 3 && num_at(o, "data.0.lines.1") == 4);

    o = search(&X, a, "fibonacci", "\"mode\":\"bm25\"");
    CHECK(o && !strcmp(hit_name(o, 0), "fib.py"));
    /* HTML: the text, not the script or style */
    o = search(&X, a, "lentils carrots", "\"mode\":\"bm25\"");
    CHECK(o && !strcmp(hit_name(o, 0), "recipe.html"));
    CHECK(o && strstr(str_at(o, "data.0.text"), "lentils & carrots"));
    o = search(&X, a, "secretscript zucchinired", "\"mode\":\"bm25\"");
    CHECK(o && hits(o) == 0);
    /* an 8-bit file read as Latin-1 */
    o = search(&X, a, "café", "\"mode\":\"bm25\"");
    CHECK(o && !strcmp(hit_name(o, 0), "latin1.txt"));
    /* the scan, through Tesseract */
    o = search(&X, a, "quick brown dog", "\"mode\":\"bm25\"");
    CHECK(o && !strcmp(hit_name(o, 0), "scan.tif"));
    /* hidden folders and symlinks stay out */
    o = search(&X, a, "hiddenword outsideword", "\"mode\":\"bm25\"");
    CHECK(o && hits(o) == 0);
    /* hybrid: BM25 and vectors fused; the BM25 winner is among the results */
    o = search(&X, a, "watering tomatoes", "\"k\":3");
    CHECK(o && str_at(o, "mode") && !strcmp(str_at(o, "mode"), "hybrid"));
    CHECK(o && any_hit_named(o, "garden.md"));
    CHECK(o && hits(o) == 3);
    /* vectors alone: k results, each with a vector rank */
    o = search(&X, a, "watering tomatoes", "\"k\":2,\"mode\":\"vector\"");
    CHECK(o && hits(o) == 2 && num_at(o, "data.0.vector_rank") == 1 &&
          path(o, "data.0.bm25_rank")->type == JSON_NULL);
    /* the vectors are held in memory for vector search (filled by the
     * indexer once idle) */
    CHECK(memory_holds_all(&X, 30));
    CHECK(index_num(&X, "counts.vector_memory.bytes") > 0);
    arena_free(a);
}

static void t_changes_are_followed(void)
{
    /* a changed file: the new words found, the old ones gone */
    write_file(g_notes, "garden.md", "# Garden\n\nThe courgettes want shade in August.\n");
    char p[700];
    snprintf(p, sizeof p, "%s/garden.md", g_notes);
    struct timespec ts[2] = { { time(NULL) + 5, 0 }, { time(NULL) + 5, 0 } };
    utimensat(AT_FDCWD, p, ts, 0);     /* a new mtime even within the same second */
    snprintf(p, sizeof p, "%s/code/fib.py", g_notes);
    CHECK(unlink(p) == 0);
    double t0 = now_epoch();
    struct resp r = post(&X, "/v1/index/rescan", "{}");
    CHECK(r.status == 202);
    resp_free(&r);
    CHECK(settled(&X, t0, 60));
    arena *a = arena_new(0);
    const json *o = search(&X, a, "courgettes shade", "\"mode\":\"bm25\"");
    CHECK(o && !strcmp(hit_name(o, 0), "garden.md"));
    o = search(&X, a, "tomatoes", "\"mode\":\"bm25\"");
    CHECK(o && hits(o) == 0);
    o = search(&X, a, "fibonacci", "\"mode\":\"bm25\"");
    CHECK(o && hits(o) == 0);
    CHECK(docs_in(&X, "indexed") == 6);
    CHECK(index_num(&X, "counts.vectors") == index_num(&X, "counts.chunks"));
    /* the vectors in memory followed: the changed file's new ones in, the
     * deleted file's out */
    o = search(&X, a, "courgettes shade", "\"mode\":\"vector\",\"k\":50");
    CHECK(o && hits(o) == (int)index_num(&X, "counts.vectors"));
    CHECK(o && any_hit_named(o, "garden.md") && !any_hit_named(o, "fib.py"));
    CHECK(memory_holds_all(&X, 30));
    arena_free(a);
}

/* without a rescan or a walk due (index-scan-interval is an hour here):
 * inotify sees a new file in a subfolder and a deleted one */
static void t_watch_sees_changes(void)
{
    write_file(g_notes, "house/airship.md", "The zeppelin hangar needs a new roof.\n");
    arena *a = arena_new(0);
    bool found = false;
    for (int i = 0; i < 150 && !found; i++) {
        const json *o = search(&X, a, "zeppelin hangar", "\"mode\":\"bm25\"");
        found = o && hits(o) == 1 && !strcmp(hit_name(o, 0), "airship.md");
        if (!found)
            usleep(100000);
    }
    CHECK(found);
    char p[700];
    snprintf(p, sizeof p, "%s/house/airship.md", g_notes);
    CHECK(unlink(p) == 0);
    bool gone = false;
    for (int i = 0; i < 150 && !gone; i++) {
        const json *o = search(&X, a, "zeppelin hangar", "\"mode\":\"bm25\"");
        gone = o && hits(o) == 0;
        if (!gone)
            usleep(100000);
    }
    CHECK(gone);
    arena_free(a);
}

static void t_ask_cites_sources(void)
{
    struct resp r = post(&X, "/v1/ask", "{\"model\":\"tiny\",\"question\":\"What did the plumber "
                                        "say about the boiler?\",\"max_tokens\":12,\"k\":2}");
    CHECK(r.status == 200);
    arena *a = arena_new(0);
    const json *o = parse(a, &r.body);
    CHECK(str_at(o, "object") && !strcmp(str_at(o, "object"), "chat.completion"));
    CHECK(str_at(o, "choices.0.message.content") != NULL);
    CHECK(num_at(o, "usage.completion_tokens") == 12);
    const json *c = path(o, "citations");
    CHECK(c && c->type == JSON_ARRAY && c->len == 2);
    CHECK(num_at(o, "citations.0.index") == 1 && num_at(o, "citations.1.index") == 2);
    bool boiler = false;
    for (const json *e = c ? c->child : NULL; e; e = e->next)
        boiler |= str_at(e, "path") && strstr(str_at(e, "path"), "boiler.txt") &&
                  strstr(str_at(e, "text"), "pressure valve");
    CHECK(boiler);
    /* the sources reached the model: its prompt holds them */
    CHECK(num_at(o, "usage.prompt_tokens") > 60);
    arena_free(a);
    resp_free(&r);

    /* streamed: OpenAI's chunks, the citations in the first one */
    r = post(&X, "/v1/ask", "{\"model\":\"tiny\",\"question\":\"What did the plumber say?\","
                            "\"max_tokens\":8,\"k\":2,\"stream\":true,"
                            "\"stream_options\":{\"include_usage\":true}}");
    CHECK(r.status == 200);
    struct sse_result sse = parse_sse(&r.body, true);
    CHECK(sse.role_first && sse.done_last && sse.all_json && !sse.error_seen);
    CHECK(sse.usage_seen && sse.completion_tokens == 8);
    const char *first = r.body.data ? strstr(r.body.data, "data: ") : NULL;
    const char *end = first ? strstr(first, "\n\n") : NULL;
    a = arena_new(0);
    o = first && end ? json_parse(a, first + 6, (size_t)(end - first - 6), NULL, 0) : NULL;
    CHECK(o && path(o, "citations") && path(o, "citations")->len == 2);
    CHECK(o && str_at(o, "citations.0.path") != NULL);
    /* only the first chunk carries them */
    const char *again = end ? strstr(end, "\"citations\"") : NULL;
    CHECK(again == NULL);
    arena_free(a);
    buf_free(&sse.content);
    resp_free(&r);
}

static void t_bad_requests(void)
{
    struct { const char *method, *path, *body; long status; const char *code; } c[] = {
        { "POST", "/v1/search", "{}", 400, "missing_required_parameter" },
        { "POST", "/v1/search", "{\"query\":\"\"}", 400, "invalid_value" },
        { "POST", "/v1/search", "{\"query\":3}", 400, "invalid_type" },
        { "POST", "/v1/search", "{\"query\":\"x\",\"k\":0}", 400, "invalid_value" },
        { "POST", "/v1/search", "{\"query\":\"x\",\"k\":101}", 400, "invalid_value" },
        { "POST", "/v1/search", "{\"query\":\"x\",\"mode\":\"magic\"}", 400, "invalid_value" },
        { "POST", "/v1/search", "not json", 400, "invalid_json" },
        { "POST", "/v1/search", "[1]", 400, "invalid_json" },
        { "POST", "/v1/ask", "{\"question\":\"x\"}", 400, "missing_required_parameter" },
        { "POST", "/v1/ask", "{\"question\":\"x\",\"model\":\"nope\"}", 404, NULL },
        { "POST", "/v1/ask", "{\"question\":\"x\",\"model\":\"tiny\",\"stream\":3}", 400,
          "invalid_type" },
        { "POST", "/v1/index/folders", "{}", 400, "missing_required_parameter" },
        { "POST", "/v1/index/folders", "{\"path\":\"relative/dir\"}", 400, "invalid_folder" },
        /* outside index-roots, whether it exists or not: one answer */
        { "POST", "/v1/index/folders", "{\"path\":\"/no/such/folder\"}", 403, "folder_not_allowed" },
        { "DELETE", "/v1/index/folders?path=relative", NULL, 400, "invalid_folder" },
        { "DELETE", "/v1/index/folders?path=/not/watched", NULL, 404, "folder_not_found" },
        { "DELETE", "/v1/index/folders", NULL, 400, "missing_required_parameter" },
        { "POST", "/v1/index/rescan", "{\"retry\":\"yes\"}", 400, "invalid_type" },
        { "GET", "/v1/index/documents?state=lost", NULL, 400, "invalid_value" },
        { "GET", "/v1/index/documents?limit=0", NULL, 400, "invalid_value" },
        { "GET", "/v1/search", NULL, 405, "method_not_allowed" },
        { "POST", "/v1/index/folders", "{\"path\":\"/\"}", 403, "folder_not_allowed" },
        { "POST", "/v1/index/folders", "{\"path\":\"/etc\"}", 403, "folder_not_allowed" },
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        struct resp r = http(&X, c[i].method, c[i].path, c[i].body, c[i].body ? strlen(c[i].body) : 0);
        bool ok = answer_is_error(&r, c[i].status, c[i].code);
        if (!ok)
            fprintf(stderr, "  %s %s %s -> %ld %s\n", c[i].method, c[i].path,
                    c[i].body ? c[i].body : "", r.status, r.body.data ? r.body.data : "");
        CHECK(ok);
        resp_free(&r);
    }
    /* a folder inside the watched one */
    char body[800];
    snprintf(body, sizeof body, "{\"path\":\"%s/house\"}", g_notes);
    struct resp r = post(&X, "/v1/index/folders", body);
    CHECK(r.status == 409 && r.body.data && strstr(r.body.data, "\"code\":\"folder_overlaps\"") &&
          strstr(r.body.data, "is inside"));
    resp_free(&r);
    /* inside index-roots: a folder that does not exist, and a file */
    snprintf(body, sizeof body, "{\"path\":\"%s/no/such/folder\"}", g_tmp);
    r = post(&X, "/v1/index/folders", body);
    CHECK(r.status == 400 && strstr(r.body.data, "invalid_folder"));
    resp_free(&r);
    snprintf(body, sizeof body, "{\"path\":\"%s/garden.md\"}", g_notes);
    r = post(&X, "/v1/index/folders", body);
    CHECK(r.status == 400 && strstr(r.body.data, "not a folder"));
    resp_free(&r);
    /* hearthd's own data dir, and a folder around it */
    snprintf(body, sizeof body, "{\"path\":\"%s\"}", X.dir);
    r = post(&X, "/v1/index/folders", body);
    CHECK(r.status == 400 && strstr(r.body.data, "data dir"));
    resp_free(&r);
    snprintf(body, sizeof body, "{\"path\":\"%s\"}", g_tmp);
    r = post(&X, "/v1/index/folders", body);
    CHECK(r.status == 400 && strstr(r.body.data, "data dir"));
    resp_free(&r);
    /* a query past the cap */
    size_t n = 5000;
    char *big = malloc(n + 32);
    memcpy(big, "{\"query\":\"", 10);
    memset(big + 10, 'a', n);
    memcpy(big + 10 + n, "\"}", 3);
    r = post(&X, "/v1/search", big);
    CHECK(answer_is_error(&r, 400, "string_above_max_length"));
    resp_free(&r);
    free(big);
    /* FTS5 syntax in a query is just words */
    arena *a = arena_new(0);
    const json *o = search(&X, a, "NEAR(boiler* \\\"valve) AND -plumber: ^x OR", "\"mode\":\"bm25\"");
    CHECK(o && any_hit_named(o, "boiler.txt"));
    arena_free(a);
    CHECK(healthy(&X));
}

static void t_metrics_and_status(void)
{
    /* the checks for silent damage pass on a sound index */
    struct resp c = http(&X, "GET", "/v1/index/check", NULL, 0);
    arena *ca = arena_new(0);
    const json *co = parse(ca, &c.body);
    CHECK(c.status == 200 && path(co, "ok") && path(co, "ok")->boolean);
    CHECK(num_at(co, "vectors_checked") == index_num(&X, "counts.vectors"));
    CHECK(num_at(co, "vectors_bad") == 0);
    CHECK(str_at(co, "checks.1.name") && !strcmp(str_at(co, "checks.1.name"), "full_text"));
    arena_free(ca);
    resp_free(&c);

    struct resp r = http(&X, "GET", "/metrics", NULL, 0);
    CHECK(r.status == 200 && strstr(r.body.data, "hearth_index_available 1") &&
          strstr(r.body.data, "hearth_index_documents{state=\"indexed\"} 6"));
    resp_free(&r);
    r = http(&X, "GET", "/v1/status", NULL, 0);
    arena *a = arena_new(0);
    CHECK(r.status == 200 && num_at(parse(a, &r.body), "index.documents.indexed") == 6);
    arena_free(a);
    resp_free(&r);
}

static void t_cli(void)
{
    char dir[700], cmd[3000], out[700], exe[PATH_MAX];
    if (!realpath(g_build, exe))
        snprintf(exe, sizeof exe, "%s", g_build);
    snprintf(dir, sizeof dir, "%s/cli-notes", g_tmp);
    write_file(dir, "a.md", "The lighthouse keeper polished the lamp every evening.\n");
    write_file(dir, "b.md", "Sourdough needs a starter fed twice a day.\n");
    snprintf(out, sizeof out, "%s/cli.out", g_tmp);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && HEARTH_URL=http://127.0.0.1:%d '%s/hearth' index add cli-notes --wait "
             "> '%s' 2>&1 && HEARTH_URL=http://127.0.0.1:%d '%s/hearth' search --mode bm25 "
             "lighthouse lamp >> '%s' 2>&1 && HEARTH_URL=http://127.0.0.1:%d '%s/hearth' ask "
             "--model tiny --max-tokens 4 -k 1 who polishes the lamp >> '%s' 2>&1 && "
             "HEARTH_URL=http://127.0.0.1:%d '%s/hearth' index >> '%s' 2>&1",
             g_tmp, X.port, exe, out, X.port, exe, out, X.port, exe, out, X.port, exe, out);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(out, "r");
    char text[8192] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f)
        fclose(f);
    char want[800];
    snprintf(want, sizeof want, "watching %s", dir);
    CHECK(strstr(text, want));
    CHECK(strstr(text, "2/2 files indexed"));
    snprintf(want, sizeof want, " 1. %s/a.md:1-1", dir);
    CHECK(strstr(text, want));
    snprintf(want, sizeof want, "  [1] %s/a.md:1-1", dir);
    CHECK(strstr(text, want));
    CHECK(strstr(text, "Sources:"));
    CHECK(strstr(text, "cli-notes"));
    if (cur_failed)
        fprintf(stderr, "%s\n", text);
    /* rm forgets the folder's passages */
    snprintf(cmd, sizeof cmd, "HEARTH_URL=http://127.0.0.1:%d '%s/hearth' index rm '%s' > /dev/null",
             X.port, g_build, dir);
    CHECK(system(cmd) == 0);
    arena *a = arena_new(0);
    const json *o = search(&X, a, "lighthouse sourdough", "\"mode\":\"bm25\"");
    CHECK(o && hits(o) == 0);
    arena_free(a);
    /* --help for each command */
    snprintf(cmd, sizeof cmd, "'%s/hearth' index --help | grep -q 'rescan' && '%s/hearth' search "
             "--help | grep -q 'hybrid' && '%s/hearth' ask --help | grep -q 'cites'",
             g_build, g_build, g_build);
    CHECK(system(cmd) == 0);
}

/* kill -9 while indexing; back up, everything is indexed exactly once */
static void t_survives_kill9(void)
{
    char dir[700], minilm[700];
    snprintf(dir, sizeof dir, "%s/many-notes", g_tmp);
    snprintf(minilm, sizeof minilm, "emb=%s/minilm.gguf", g_tmp);
    for (int i = 0; i < 300; i++) {
        char name[64], text[400];
        snprintf(name, sizeof name, "n%03d.md", i);
        snprintf(text, sizeof text, "Note number %d is about the topic word%d.\n\nIt has a second "
                 "paragraph that mentions shared words like river and stone.\n", i, i);
        write_file(dir, name, text);
    }
    struct daemon K;
    char *args[] = { "--model", minilm, "--index-embed-model", "emb", "--index-roots",
                     (char *)g_tmp, NULL };
    CHECK(start_daemon(&K, "indexK", args) == 0);
    CHECK(add_folder(&K, dir));
    bool some = false;
    for (int i = 0; i < 600 && !some; i++) {
        int n = docs_in(&K, "indexed");
        some = n >= 20;
        if (!some)
            usleep(50000);
    }
    CHECK(some);
    int pending_before = docs_in(&K, "pending");
    kill(K.pid, SIGKILL);
    waitpid(K.pid, NULL, 0);
    CHECK(pending_before > 0);       /* killed in the middle */
    double t0 = now_epoch();
    CHECK(start_daemon(&K, "indexK", args) == 0);
    CHECK(settled(&K, t0, 180));
    CHECK(docs_in(&K, "indexed") == 300);
    /* one passage per note (both paragraphs fit one chunk): none doubled */
    CHECK(index_num(&K, "counts.chunks") == 300);
    CHECK(index_num(&K, "counts.vectors") == 300);
    arena *a = arena_new(0);
    const json *o = search(&K, a, "word123", "\"mode\":\"bm25\"");
    CHECK(o && hits(o) == 1 && !strcmp(hit_name(o, 0), "n123.md"));
    arena_free(a);
    CHECK(stop_daemon(&K) == 0);
}

/* A file refused for its size is failed; a reload (SIGHUP) with a larger
 * index-max-file gives it another attempt, and it is indexed. */
static void t_reload_retries_failed(void)
{
    char dir[700], conf[700];
    snprintf(dir, sizeof dir, "%s/reload-notes", g_tmp);
    snprintf(conf, sizeof conf, "%s/reload.conf", g_tmp);
    char big[600];
    memset(big, 0, sizeof big);
    for (int i = 0; i < 12; i++)
        strcat(big, "The walrus keeps a ledger of every herring. ");
    write_file(dir, "walrus.md", big);
    FILE *f = fopen(conf, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fprintf(f, "index-max-file = 100\nindex-roots = %s\n", g_tmp);
    fclose(f);
    struct daemon R;
    char *args[] = { "--config", conf, NULL };
    CHECK(start_daemon(&R, "indexR", args) == 0);
    double t0 = now_epoch();
    CHECK(add_folder(&R, dir));
    CHECK(settled(&R, t0, 60));
    CHECK(docs_in(&R, "failed") == 1);
    struct resp r = http(&R, "GET", "/v1/index/documents?state=failed", NULL, 0);
    CHECK(r.body.data && strstr(r.body.data, "index-max-file"));
    resp_free(&r);
    f = fopen(conf, "w");
    if (f) {
        fprintf(f, "index-max-file = 1M\nindex-roots = %s\n", g_tmp);
        fclose(f);
    }
    kill(R.pid, SIGHUP);
    bool indexed = false;
    for (int i = 0; i < 100 && !indexed; i++) {
        indexed = docs_in(&R, "indexed") == 1;
        if (!indexed)
            usleep(100000);
    }
    CHECK(indexed);
    arena *a = arena_new(0);
    const json *o = search(&R, a, "walrus ledger", "\"mode\":\"bm25\"");
    CHECK(o && hits(o) == 1);
    arena_free(a);
    CHECK(stop_daemon(&R) == 0);
}

/* ---- ignore files and exclude patterns ---------------------------------------- */

static struct daemon I;         /* a daemon of its own: the counts above stay as they are */

/* The one hit for word is the file named name (name NULL: no hit at all). */
static bool finds(struct daemon *d, const char *word, const char *name)
{
    arena *a = arena_new(0);
    const json *o = search(d, a, word, "\"mode\":\"bm25\"");
    bool ok = o && (name ? hits(o) == 1 && !strcmp(hit_name(o, 0), name) : hits(o) == 0);
    arena_free(a);
    return ok;
}

/* Poll until finds(word, name) holds, up to timeout_s (a walk triggered by
 * inotify, then the indexing of what it found). */
static bool comes_to(struct daemon *d, const char *word, const char *name, double timeout_s)
{
    for (int i = 0; i < (int)(timeout_s * 10); i++) {
        if (finds(d, word, name))
            return true;
        usleep(100000);
    }
    fprintf(stderr, "  '%s' never came to %s\n", word, name ? name : "no hit");
    return false;
}

/* POST /v1/index/folders {"path": dir, <extra>}: the status; the answer's
 * body into out when given. */
static long post_folder(struct daemon *d, const char *dir, const char *extra, buf *out)
{
    char body[4000];
    snprintf(body, sizeof body, "{\"path\":\"%s\"%s%s}", dir, extra ? "," : "", extra ? extra : "");
    struct resp r = post(d, "/v1/index/folders", body);
    long st = r.status;
    if (out && r.body.data)
        buf_append(out, r.body.data, r.body.len);
    resp_free(&r);
    return st;
}

/* The folder's "exclude" in GET /v1/index as JSON text ("" when the folder
 * is not listed). */
static void excludes_of(struct daemon *d, const char *dir, char *out, size_t n)
{
    out[0] = 0;
    struct resp r = http(d, "GET", "/v1/index", NULL, 0);
    arena *a = arena_new(0);
    const json *f = path(parse(a, &r.body), "folders");
    for (const json *e = f ? f->child : NULL; e; e = e->next)
        if (str_at(e, "path") && !strcmp(str_at(e, "path"), dir)) {
            buf b = buf_make(0);
            jw_value(&b, json_get(e, "exclude"));
            snprintf(out, n, "%s", b.data ? b.data : "");
            buf_free(&b);
        }
    arena_free(a);
    resp_free(&r);
}

static char g_vault[600];

/* A notes vault with ignore files at two depths: what they leave out is
 * never indexed, '!' re-includes, an ignored folder is not walked into
 * (nothing in it comes back), a deeper file overrides a shallower one,
 * the .hearthignore comes after the .gitignore */
static void t_ignore_files(void)
{
    snprintf(g_vault, sizeof g_vault, "%s/vault", g_tmp);
    write_file(g_vault, ".gitignore",
               "# build output and logs\n"
               "*.log\n"
               "!keep.log\n"
               "build/\n"
               "!build/wanted.md\n"
               "/private.md\n"
               "notes/**/scratch-*.md\n"
               "tmp?.txt\n");
    write_file(g_vault, ".hearthignore", "!tmp1.txt\n");
    write_file(g_vault, "plain.md", "The aardvark digs tunnels under the garden wall.\n");
    write_file(g_vault, "debug.log", "The zebrafish swims in the debugging aquarium tank.\n");
    write_file(g_vault, "keep.log", "The kestrel hovers above the motorway verge today.\n");
    write_file(g_vault, "build/out.md", "The quokka smiles at every tourist camera lens.\n");
    write_file(g_vault, "build/wanted.md", "The wombat cannot be brought back from build.\n");
    write_file(g_vault, "private.md", "The pangolin secret stays out of the index.\n");
    write_file(g_vault, "notes/private.md", "The narwhal note is private only by name.\n");
    write_file(g_vault, "notes/a/b/scratch-1.md", "The axolotl scratch pad is ignored deep down.\n");
    write_file(g_vault, "notes/a/keeper.md", "The capybara keeper sits beside the scratch.\n");
    write_file(g_vault, "tmp1.txt", "The ocelot temporary file is re-included here.\n");
    write_file(g_vault, "tmp2.txt", "The tapir temporary file stays ignored always.\n");
    /* deeper files: logs are fine in sub/, and sub/ leaves out drafts */
    write_file(g_vault, "sub/.gitignore", "!*.log\n*.draft.md\n");
    write_file(g_vault, "sub/app.log", "The meerkat log of the sub folder is wanted.\n");
    write_file(g_vault, "sub/x.draft.md", "The dugong draft in sub is left out.\n");
    write_file(g_vault, "y.draft.md", "The gecko draft at the top is indexed.\n");

    double t0 = now_epoch();
    CHECK(add_folder(&I, g_vault));
    CHECK(settled(&I, t0, 120));
    /* plain, keep.log, notes/private, keeper, tmp1, sub/app.log, y.draft */
    CHECK(docs_in(&I, "indexed") == 7);
    CHECK(docs_in(&I, "failed") == 0);
    CHECK(finds(&I, "aardvark", "plain.md"));
    CHECK(finds(&I, "zebrafish", NULL));
    CHECK(finds(&I, "kestrel", "keep.log"));
    CHECK(finds(&I, "quokka", NULL));
    CHECK(finds(&I, "wombat", NULL));            /* inside an ignored folder: stays out */
    CHECK(finds(&I, "pangolin", NULL));
    CHECK(finds(&I, "narwhal", "private.md"));   /* "/private.md" is the top one only */
    CHECK(finds(&I, "axolotl", NULL));
    CHECK(finds(&I, "capybara", "keeper.md"));
    CHECK(finds(&I, "ocelot", "tmp1.txt"));      /* the .hearthignore re-includes it */
    CHECK(finds(&I, "tapir", NULL));
    CHECK(finds(&I, "meerkat", "app.log"));
    CHECK(finds(&I, "dugong", NULL));
    CHECK(finds(&I, "gecko", "y.draft.md"));
    /* no trace of the ignored files among the documents */
    struct resp r = http(&I, "GET", "/v1/index/documents?limit=1000", NULL, 0);
    CHECK(r.status == 200 && r.body.data && !strstr(r.body.data, "debug.log") &&
          !strstr(r.body.data, "/build/") && !strstr(r.body.data, "tmp2.txt") &&
          !strstr(r.body.data, ".gitignore") && !strstr(r.body.data, ".hearthignore"));
    resp_free(&r);
    CHECK(index_num(&I, "counts.vectors") == index_num(&I, "counts.chunks"));
}

/* Editing an ignore file is seen without a rescan (inotify; the walk
 * interval is an hour): files it now leaves out leave the index with their
 * passages and vectors, files it no longer leaves out are indexed. */
static void t_ignore_edit_followed(void)
{
    double chunks0 = index_num(&I, "counts.chunks");
    write_file(g_vault, ".gitignore",
               "build/\n"
               "!build/wanted.md\n"
               "/private.md\n"
               "plain.md\n"
               "notes/\n"
               "tmp?.txt\n");
    CHECK(comes_to(&I, "aardvark", NULL, 60));          /* now ignored: gone */
    CHECK(comes_to(&I, "zebrafish", "debug.log", 60));  /* *.log no longer: indexed */
    CHECK(comes_to(&I, "capybara", NULL, 60));          /* notes/ as a whole */
    CHECK(comes_to(&I, "narwhal", NULL, 60));
    /* a hidden ignore file in a subfolder: an edit there is seen too */
    write_file(g_vault, "sub/.gitignore", "!*.log\n");
    CHECK(comes_to(&I, "dugong", "x.draft.md", 60));
    CHECK(finds(&I, "meerkat", "app.log"));
    double t0 = now_epoch();
    struct resp r = post(&I, "/v1/index/rescan", "{}");
    resp_free(&r);
    CHECK(settled(&I, t0, 60));
    /* plain, notes/private and keeper out; debug.log and the sub draft in */
    CHECK(docs_in(&I, "indexed") == 6);
    CHECK(index_num(&I, "counts.chunks") == chunks0 - 1);
    CHECK(index_num(&I, "counts.vectors") == index_num(&I, "counts.chunks"));
    /* the full-text index holds no row of a removed passage */
    r = http(&I, "GET", "/v1/index/check", NULL, 0);
    CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "\"ok\":true"));
    resp_free(&r);
}

/* A watched folder's last walk, from GET /v1/index (-1 when not there). */
static double folder_last_scan(struct daemon *d, const char *dir)
{
    struct resp r = http(d, "GET", "/v1/index", NULL, 0);
    arena *a = arena_new(0);
    const json *o = parse(a, &r.body);
    double t = -1;
    const json *f = path(o, "folders");
    for (const json *e = f ? f->child : NULL; e; e = e->next)
        if (str_at(e, "path") && !strcmp(str_at(e, "path"), dir))
            t = num_at(e, "last_scan");
    arena_free(a);
    resp_free(&r);
    return t;
}

static bool watches_come_to(struct daemon *d, double want, double timeout_s)
{
    for (int i = 0; i < (int)(timeout_s * 10); i++) {
        if (index_num(d, "watches") == want)
            return true;
        usleep(100000);
    }
    fprintf(stderr, "  watches: %.0f, expected %.0f\n", index_num(d, "watches"), want);
    return false;
}

/* inotify watches follow the folders: subfolders now ignored are watched
 * no longer (the vault's notes/, notes/a, notes/a/b and build/ after the
 * edit above), a change walks only the folder it is in, and a folder no
 * longer watched loses its watches. */
static void t_watches_follow_folders(void)
{
    char vault[700], other[700];
    CHECK(realpath(g_vault, vault) != NULL);
    CHECK(watches_come_to(&I, 2, 30));              /* the vault and sub/ */
    snprintf(other, sizeof other, "%s/other-notes", g_tmp);
    write_file(other, "a.md", "The okapi lives in the rain forest of the Congo.\n");
    write_file(other, "deep/b.md", "The bonobo shares the same forest with the okapi.\n");
    double t0 = now_epoch();
    CHECK(add_folder(&I, other));
    CHECK(settled(&I, t0, 60));
    CHECK(watches_come_to(&I, 4, 30));
    char real_other[700];
    CHECK(realpath(other, real_other) != NULL);
    double vault_scan = folder_last_scan(&I, vault), other_scan = folder_last_scan(&I, real_other);
    CHECK(vault_scan > 0 && other_scan > 0);
    /* a new file in the other folder: that folder is walked, the vault not */
    write_file(other, "deep/c.md", "The giraffe weevil has a very long neck indeed.\n");
    CHECK(comes_to(&I, "weevil", "c.md", 60));
    CHECK(folder_last_scan(&I, real_other) > other_scan);
    CHECK(folder_last_scan(&I, vault) == vault_scan);
    /* a subfolder deleted: its watch goes with it */
    char p[800];
    snprintf(p, sizeof p, "%s/deep/b.md", other);
    CHECK(unlink(p) == 0);
    snprintf(p, sizeof p, "%s/deep/c.md", other);
    CHECK(unlink(p) == 0);
    snprintf(p, sizeof p, "%s/deep", other);
    CHECK(rmdir(p) == 0);
    CHECK(comes_to(&I, "weevil", NULL, 60));
    CHECK(watches_come_to(&I, 3, 30));
    /* the folder no longer watched: its watches go */
    char q[900];
    snprintf(q, sizeof q, "/v1/index/folders?path=%s", real_other);
    struct resp r = http(&I, "DELETE", q, NULL, 0);
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK(watches_come_to(&I, 2, 30));
    /* and changes there walk nothing (once the walk the removal starts is over:
     * the vault's last walk stays put for 2 s) */
    double v = folder_last_scan(&I, vault);
    for (int i = 0, still = 0; i < 300 && still < 20; i++) {
        usleep(100000);
        double now = folder_last_scan(&I, vault);
        still = now == v ? still + 1 : 0;
        v = now;
    }
    write_file(other, "late.md", "The tarsier has enormous eyes for its small size.\n");
    usleep(2500000);
    CHECK(folder_last_scan(&I, vault) == v);
    CHECK(finds(&I, "tarsier", NULL));
}

/* A request with a key and a JSON body (NULL: none); the response. */
static struct resp keyed(struct daemon *d, const char *key, const char *method, const char *path,
                         const char *body)
{
    char h[200];
    snprintf(h, sizeof h, "Authorization: Bearer %s", key);
    return http_full(d, method, path, body ? "application/json" : NULL, h, body,
                     body ? strlen(body) : 0);
}

/* A key limited to some folders ("search:FOLDER" in the key file): its
 * searches (BM25, vectors, hybrid), its asks' citations, its document
 * list and its folder list hold only files inside them; an unlimited key
 * sees everything. */
static void t_key_folders(void)
{
    char top[700], keys[800], emb[700], tiny[700];
    snprintf(top, sizeof top, "%s/household", g_tmp);
    write_file(top, "recipes/soup.md", "Secret leek soup: simmer the leeks for an hour.\n");
    write_file(top, "recipes/bread.md", "Secret bread: the dough rests overnight.\n");
    write_file(top, "diary/monday.md", "Secret diary: I ate the leek soup alone on Monday.\n");
    char real[PATH_MAX];
    CHECK(realpath(top, real) != NULL);
    snprintf(keys, sizeof keys, "%s/household-keys", g_tmp);
    FILE *f = fopen(keys, "w");
    if (f) {
        fprintf(f, "owner owner-key-000001\ntablet tablet-key-00002 infer,search:%s/recipes\n",
                real);
        fclose(f);
    }
    snprintf(emb, sizeof emb, "emb=%s/minilm.gguf", g_tmp);
    snprintf(tiny, sizeof tiny, "tiny=%s/models/stories260K.gguf", g_shared);
    char *args[] = { "--model", emb, "--model", tiny, "--index-embed-model", "emb",
                     "--index-scan-interval", "3600", "--index-roots", (char *)g_tmp,
                     "--api-key-file", keys, NULL };
    struct daemon K;
    if (start_daemon(&K, "indexKeys", args) < 0) {
        CHECK(0);
        return;
    }
    char body[900];
    snprintf(body, sizeof body, "{\"path\":\"%s\"}", real);
    struct resp r = keyed(&K, "tablet-key-00002", "POST", "/v1/index/folders", body);
    CHECK(r.status == 403);                 /* only an admin adds folders */
    resp_free(&r);
    r = keyed(&K, "owner-key-000001", "POST", "/v1/index/folders", body);
    CHECK(r.status == 201);
    resp_free(&r);
    bool done = false;
    for (int i = 0; i < 600 && !done; i++) {
        r = keyed(&K, "owner-key-000001", "GET", "/v1/index", NULL);
        arena *a = arena_new(0);
        const json *o = r.status == 200 ? parse(a, &r.body) : NULL;
        done = o && num_at(o, "counts.documents.indexed") == 3 &&
               num_at(o, "counts.vectors") == 3;
        arena_free(a);
        resp_free(&r);
        if (!done)
            usleep(100000);
    }
    CHECK(done);
    static const char *const modes[] = { "bm25", "vector", "hybrid" };
    for (size_t m = 0; m < 3; m++) {
        snprintf(body, sizeof body, "{\"query\":\"secret leek soup diary\",\"mode\":\"%s\"}",
                 modes[m]);
        r = keyed(&K, "tablet-key-00002", "POST", "/v1/search", body);
        CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "/recipes/") &&
              !strstr(r.body.data, "diary"));
        resp_free(&r);
        r = keyed(&K, "owner-key-000001", "POST", "/v1/search", body);
        CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "/diary/monday.md"));
        resp_free(&r);
    }
    r = keyed(&K, "tablet-key-00002", "POST", "/v1/ask",
              "{\"model\":\"tiny\",\"question\":\"what about the secret leek soup diary\","
              "\"max_tokens\":4}");
    CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "\"citations\"") &&
          strstr(r.body.data, "/recipes/") && !strstr(r.body.data, "diary"));
    resp_free(&r);
    r = keyed(&K, "tablet-key-00002", "GET", "/v1/index/documents", NULL);
    CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "soup.md") &&
          strstr(r.body.data, "bread.md") && !strstr(r.body.data, "diary"));
    resp_free(&r);
    /* the watched folder holds more than the key's: not listed for it */
    r = keyed(&K, "tablet-key-00002", "GET", "/v1/index", NULL);
    CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "\"folders\":[]"));
    resp_free(&r);
    r = keyed(&K, "owner-key-000001", "GET", "/v1/index/documents", NULL);
    CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "diary/monday.md"));
    resp_free(&r);
    CHECK(stop_daemon(&K) == 0);
}

/* Exclude patterns through the API: stored and shown per folder, applied
 * from the folder's root, replaced by posting the folder again (200),
 * kept when the post has none, cleared with []. */
static void t_exclude_api(void)
{
    char dir[700], shown[1200];
    snprintf(dir, sizeof dir, "%s/site", g_tmp);
    write_file(dir, "index.md", "The heron fishes at dawn by the quiet pond.\n");
    write_file(dir, "static/app.min.js", "var flamingo = 'minified flamingo bundle code';\n");
    write_file(dir, "static/app.js", "var pelican = 'readable pelican source code';\n");
    write_file(dir, "build/page.md", "The cormorant page is generated by the build.\n");
    write_file(dir, "docs/build/guide.md", "The bittern guide is left out as a build folder.\n");
    write_file(dir, "drafts/a.md", "The puffin draft is not ready for anyone.\n");
    write_file(dir, "drafts/deep/b.md", "The albatross draft sits deeper inside drafts.\n");
    write_file(dir, "more/drafts/c.md", "The egret draft is not under the root drafts.\n");

    double t0 = now_epoch();
    buf out = buf_make(0);
    CHECK(post_folder(&I, dir, "\"exclude\":[\"*.min.js\",\"build/\",\"drafts/**\"]", &out) == 201);
    arena *a = arena_new(0);
    const json *o = parse(a, &out);
    CHECK(str_at(o, "exclude.0") && !strcmp(str_at(o, "exclude.0"), "*.min.js"));
    CHECK(str_at(o, "exclude.2") && !strcmp(str_at(o, "exclude.2"), "drafts/**"));
    CHECK(path(o, "created") && path(o, "created")->boolean);
    arena_free(a);
    buf_free(&out);
    CHECK(settled(&I, t0, 120));
    excludes_of(&I, dir, shown, sizeof shown);
    CHECK(!strcmp(shown, "[\"*.min.js\",\"build/\",\"drafts/**\"]"));
    CHECK(finds(&I, "heron", "index.md"));
    CHECK(finds(&I, "flamingo", NULL));
    CHECK(finds(&I, "pelican", "app.js"));
    CHECK(finds(&I, "cormorant", NULL));
    CHECK(finds(&I, "bittern", NULL));          /* "build/" matches at any depth */
    CHECK(finds(&I, "puffin", NULL));
    CHECK(finds(&I, "albatross", NULL));
    CHECK(finds(&I, "egret", "c.md"));          /* the drafts pattern is anchored at the root */

    /* posted again: 200, the patterns replaced, the next walk follows */
    t0 = now_epoch();
    out = buf_make(0);
    CHECK(post_folder(&I, dir, "\"exclude\":[\"*.min.js\"]", &out) == 200);
    CHECK(out.data && strstr(out.data, "\"created\":false"));
    buf_free(&out);
    CHECK(settled(&I, t0, 120));
    excludes_of(&I, dir, shown, sizeof shown);
    CHECK(!strcmp(shown, "[\"*.min.js\"]"));
    CHECK(finds(&I, "cormorant", "page.md"));
    CHECK(finds(&I, "albatross", "b.md"));
    CHECK(finds(&I, "flamingo", NULL));
    /* posted without "exclude" (or null): kept */
    CHECK(post_folder(&I, dir, NULL, NULL) == 200);
    CHECK(post_folder(&I, dir, "\"exclude\":null", NULL) == 200);
    excludes_of(&I, dir, shown, sizeof shown);
    CHECK(!strcmp(shown, "[\"*.min.js\"]"));
    /* cleared: everything comes in */
    t0 = now_epoch();
    CHECK(post_folder(&I, dir, "\"exclude\":[]", NULL) == 200);
    CHECK(settled(&I, t0, 120));
    excludes_of(&I, dir, shown, sizeof shown);
    CHECK(!strcmp(shown, "[]"));
    CHECK(finds(&I, "flamingo", "app.min.js"));
    /* everything excluded: the files leave (not kept as if the disk were away) */
    t0 = now_epoch();
    CHECK(post_folder(&I, dir, "\"exclude\":[\"*\"]", NULL) == 200);
    CHECK(settled(&I, t0, 120));
    CHECK(finds(&I, "heron", NULL));
    CHECK(finds(&I, "flamingo", NULL));
    char del[1200];
    snprintf(del, sizeof del, "/v1/index/folders?path=%s", dir);
    struct resp r = http(&I, "DELETE", del, NULL, 0);
    CHECK(r.status == 200);
    resp_free(&r);
}

/* Bad "exclude" values: OpenAI-shaped 400s, and nothing changed. */
static void t_exclude_bad_input(void)
{
    char dir[700], shown[1200];
    snprintf(dir, sizeof dir, "%s/strict", g_tmp);
    write_file(dir, "a.md", "The lemur is the only note in this folder.\n");
    double t0 = now_epoch();
    CHECK(post_folder(&I, dir, "\"exclude\":[\"old/\"]", NULL) == 201);
    CHECK(settled(&I, t0, 60));
    char long_pat[300], too_long[300], many[2000], most[2000];
    memset(long_pat, 'x', 256);
    long_pat[256] = 0;
    memset(too_long, 'x', 257);
    too_long[257] = 0;
    strcpy(many, "\"exclude\":[");
    strcpy(most, "\"exclude\":[");
    for (int i = 0; i < 65; i++) {
        char one[16];
        snprintf(one, sizeof one, "%s\"p%d\"", i ? "," : "", i);
        strcat(many, one);
        if (i < 64)
            strcat(most, one);
    }
    strcat(many, "]");
    strcat(most, "]");
    char big[400], ok_big[400];
    snprintf(big, sizeof big, "\"exclude\":[\"%s\"]", too_long);
    snprintf(ok_big, sizeof ok_big, "\"exclude\":[\"%s\"]", long_pat);
    struct { const char *extra; const char *code; } c[] = {
        { "\"exclude\":\"*.md\"", "invalid_type" },
        { "\"exclude\":{\"a\":1}", "invalid_type" },
        { "\"exclude\":[\"*.md\",3]", "invalid_type" },
        { "\"exclude\":[null]", "invalid_type" },
        { many, "array_above_max_length" },
        { big, "string_above_max_length" },
        { "\"exclude\":[\"\"]", "invalid_value" },
        { "\"exclude\":[\"   \"]", "invalid_value" },
        { "\"exclude\":[\"# a comment\"]", "invalid_value" },
        { "\"exclude\":[\"[abc\"]", "invalid_value" },
        { "\"exclude\":[\"foo\\\\\"]", "invalid_value" },
        { "\"exclude\":[\"!\"]", "invalid_value" },
        { "\"exclude\":[\"a\\nb\"]", "invalid_value" },
        { "\"exclude\":[\"a\\u0000b\"]", "invalid_value" },
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        char body[4000];
        snprintf(body, sizeof body, "{\"path\":\"%s\",%s}", dir, c[i].extra);
        struct resp r = post(&I, "/v1/index/folders", body);
        bool ok = answer_is_error(&r, 400, c[i].code) && strstr(r.body.data, "\"param\":\"exclude\"");
        if (!ok)
            fprintf(stderr, "  %.80s -> %ld %s\n", c[i].extra, r.status,
                    r.body.data ? r.body.data : "");
        CHECK(ok);
        resp_free(&r);
    }
    /* thousands of patterns: refused for their number, not as bad JSON */
    buf huge = buf_make(0);
    buf_printf(&huge, "{\"path\":\"%s\",\"exclude\":[", dir);
    for (int i = 0; i < 5000; i++)
        buf_printf(&huge, "%s\"%d\"", i ? "," : "", i);
    buf_puts(&huge, "]}");
    struct resp hr = post(&I, "/v1/index/folders", huge.data);
    CHECK(answer_is_error(&hr, 400, "array_above_max_length"));
    resp_free(&hr);
    buf_free(&huge);
    /* the folder kept its patterns through all of that */
    excludes_of(&I, dir, shown, sizeof shown);
    CHECK(!strcmp(shown, "[\"old/\"]"));
    /* a folder not watched yet is not added by a bad request */
    char other[700];
    snprintf(other, sizeof other, "%s/strict-other", g_tmp);
    mkdir(other, 0700);
    CHECK(post_folder(&I, other, "\"exclude\":[\"\"]", NULL) == 400);
    excludes_of(&I, other, shown, sizeof shown);
    CHECK(shown[0] == 0);
    /* at the caps: accepted */
    CHECK(post_folder(&I, dir, most, NULL) == 200);
    CHECK(post_folder(&I, dir, ok_big, NULL) == 200);
    excludes_of(&I, dir, shown, sizeof shown);
    CHECK(strlen(shown) == 256 + 4);
    CHECK(healthy(&I));
}

/* The CLI: --exclude (repeated) when adding, shown by `hearth index`,
 * --no-exclude to clear them, and --help telling of both. */
static void t_exclude_cli(void)
{
    char dir[700], cmd[4000], out[700], exe[PATH_MAX];
    if (!realpath(g_build, exe))
        snprintf(exe, sizeof exe, "%s", g_build);
    snprintf(dir, sizeof dir, "%s/cli-ex", g_tmp);
    write_file(dir, "keep.md", "The mongoose keeps watch over the burrow.\n");
    write_file(dir, "skip.txt", "The jackal text file is excluded by its kind.\n");
    write_file(dir, "old/notes.md", "The hyena notes are old and excluded.\n");
    snprintf(out, sizeof out, "%s/cli-ex.out", g_tmp);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && HEARTH_URL=http://127.0.0.1:%d '%s/hearth' index add cli-ex "
             "--exclude '*.txt' --exclude=old/ --wait > '%s' 2>&1 && "
             "HEARTH_URL=http://127.0.0.1:%d '%s/hearth' index >> '%s' 2>&1",
             g_tmp, I.port, exe, out, I.port, exe, out);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(out, "r");
    char text[8192] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f)
        fclose(f);
    char want[800];
    snprintf(want, sizeof want, "watching %s, excluding *.txt, old/", dir);
    CHECK(strstr(text, want));
    CHECK(strstr(text, "1/1 files indexed"));
    CHECK(strstr(text, "    exclude: *.txt, old/"));
    if (cur_failed)
        fprintf(stderr, "%s\n", text);
    CHECK(finds(&I, "mongoose", "keep.md"));
    CHECK(finds(&I, "jackal", NULL));
    CHECK(finds(&I, "hyena", NULL));
    /* again without options: kept; with --no-exclude: cleared */
    snprintf(cmd, sizeof cmd,
             "HEARTH_URL=http://127.0.0.1:%d '%s/hearth' index add '%s' --wait > '%s' 2>&1 && "
             "grep -q 'excluding \\*.txt, old/' '%s' && "
             "HEARTH_URL=http://127.0.0.1:%d '%s/hearth' index add '%s' --no-exclude --wait "
             "> '%s' 2>&1 && grep -q '3/3 files indexed' '%s' && ! grep -q excluding '%s'",
             I.port, exe, dir, out, out, I.port, exe, dir, out, out, out);
    CHECK(system(cmd) == 0);
    CHECK(finds(&I, "jackal", "skip.txt"));
    CHECK(finds(&I, "hyena", "notes.md"));
    /* a bad pattern: hearthd's 400 shown, exit status 1 */
    snprintf(cmd, sizeof cmd,
             "HEARTH_URL=http://127.0.0.1:%d '%s/hearth' index add '%s' --exclude '[abc' "
             "> '%s' 2>&1; test $? -eq 1 && grep -q 'not a valid pattern' '%s'",
             I.port, exe, dir, out, out);
    CHECK(system(cmd) == 0);
    /* --exclude without a pattern, an unknown option: usage errors */
    snprintf(cmd, sizeof cmd,
             "'%s/hearth' index add '%s' --exclude > /dev/null 2>&1; test $? -eq 2 && "
             "'%s/hearth' index add '%s' --exlude x > /dev/null 2>&1; test $? -eq 2 && "
             "'%s/hearth' index --help | grep -q -- '--exclude PATTERN' && "
             "'%s/hearth' index --help | grep -q 'hearthignore'",
             exe, dir, exe, dir, exe, exe);
    CHECK(system(cmd) == 0);
}

/* ---- SciFact ----------------------------------------------------------------- */

struct qrel {
    char q[16], doc[16];
};

/* BM25 nDCG@10 and recall@100 over SciFact's test queries, through
 * /v1/search (documents ranked by their best passage). */
static void t_scifact_bm25_quality(void)
{
    char base[700], p[800];
    snprintf(base, sizeof base, "%s/data/retrieval/scifact", g_shared);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/scifact-corpus", g_tmp);
    mkdir(dir, 0700);
    /* the corpus as one file per abstract: title, blank line, text */
    snprintf(p, sizeof p, "%s/corpus.jsonl", base);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int docs = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        arena *a = arena_new(0);
        const json *o = json_parse(a, line, (size_t)len, NULL, 0);
        const char *id = str_at(o, "_id"), *title = str_at(o, "title"), *text = str_at(o, "text");
        if (id && title && text) {
            char fp[800];
            snprintf(fp, sizeof fp, "%s/%s.txt", dir, id);
            FILE *w = fopen(fp, "w");
            if (w) {
                fprintf(w, "%s\n\n%s\n", title, text);
                fclose(w);
                docs++;
            }
        }
        arena_free(a);
    }
    fclose(f);
    CHECK(docs == 5183);

    /* queries by id */
    static char qtext[1200][512];
    static char qid[1200][16];
    int nq = 0;
    snprintf(p, sizeof p, "%s/queries.jsonl", base);
    f = fopen(p, "r");
    while (f && nq < 1200 && (len = getline(&line, &cap, f)) > 0) {
        arena *a = arena_new(0);
        const json *o = json_parse(a, line, (size_t)len, NULL, 0);
        if (str_at(o, "_id") && str_at(o, "text")) {
            snprintf(qid[nq], sizeof qid[nq], "%s", str_at(o, "_id"));
            snprintf(qtext[nq], sizeof qtext[nq], "%s", str_at(o, "text"));
            nq++;
        }
        arena_free(a);
    }
    if (f)
        fclose(f);
    /* relevance judgments (all grade 1 in SciFact) */
    static struct qrel rel[400];
    int nr = 0;
    snprintf(p, sizeof p, "%s/qrels/test.tsv", base);
    f = fopen(p, "r");
    while (f && nr < 400 && (len = getline(&line, &cap, f)) > 0) {
        char q[32], d[32];
        int s;
        if (sscanf(line, "%31s %31s %d", q, d, &s) == 3 && s > 0) {
            snprintf(rel[nr].q, sizeof rel[nr].q, "%s", q);
            snprintf(rel[nr].doc, sizeof rel[nr].doc, "%s", d);
            nr++;
        }
    }
    if (f)
        fclose(f);
    free(line);
    CHECK(nq == 1109 && nr == 339);

    struct daemon S;
    char *args[] = { "--index-roots", "any", NULL };
    CHECK(start_daemon(&S, "scifact", args) == 0);
    double t0 = now_epoch();
    struct timespec a0, a1;
    clock_gettime(CLOCK_MONOTONIC, &a0);
    CHECK(add_folder(&S, dir));
    CHECK(settled(&S, t0, 300));
    clock_gettime(CLOCK_MONOTONIC, &a1);
    double index_s = (double)(a1.tv_sec - a0.tv_sec) + (double)(a1.tv_nsec - a0.tv_nsec) / 1e9;
    CHECK(docs_in(&S, "indexed") == 5183);
    if (cur_failed) {
        struct resp r = http(&S, "GET", "/v1/index/documents?limit=5&state=failed", NULL, 0);
        fprintf(stderr, "  %d pending, %d failed: %s\n", docs_in(&S, "pending"),
                docs_in(&S, "failed"), r.body.data ? r.body.data : "");
        resp_free(&r);
    }

    double ndcg = 0, recall = 0;
    int queries = 0;
    clock_gettime(CLOCK_MONOTONIC, &a0);
    for (int i = 0; i < nr; i++) {
        if (i > 0 && !strcmp(rel[i].q, rel[i - 1].q))
            continue;                   /* each query once */
        const char *text = NULL;
        for (int k = 0; k < nq && !text; k++)
            if (!strcmp(qid[k], rel[i].q))
                text = qtext[k];
        if (!text)
            continue;
        int nrel = 0;
        for (int k = i; k < nr && !strcmp(rel[k].q, rel[i].q); k++)
            nrel++;
        buf body = buf_make(0);
        buf_puts(&body, "{\"mode\":\"bm25\",\"k\":100,\"query\":");
        jw_cstr(&body, text);
        buf_putc(&body, '}');
        struct resp r = post(&S, "/v1/search", body.data);
        buf_free(&body);
        arena *a = arena_new(0);
        const json *o = r.status == 200 ? parse(a, &r.body) : NULL;
        /* documents in the order of their best passage */
        char ranked[100][16];
        int nd = 0;
        const json *d = path(o, "data");
        for (const json *e = d ? d->child : NULL; e && nd < 100; e = e->next) {
            const char *ps = str_at(e, "path");
            if (!ps)
                continue;
            char id[16];
            snprintf(id, sizeof id, "%.*s", (int)strcspn(strrchr(ps, '/') + 1, "."),
                     strrchr(ps, '/') + 1);
            bool seen = false;
            for (int k = 0; k < nd && !seen; k++)
                seen = !strcmp(ranked[k], id);
            if (!seen)
                snprintf(ranked[nd++], sizeof ranked[0], "%s", id);
        }
        double dcg = 0, idcg = 0;
        int found = 0;
        for (int k = 0; k < nd; k++) {
            bool relevant = false;
            for (int m = i; m < i + nrel && !relevant; m++)
                relevant = !strcmp(rel[m].doc, ranked[k]);
            if (relevant) {
                found++;
                if (k < 10)
                    dcg += 1.0 / log2(k + 2);
            }
        }
        for (int k = 0; k < nrel && k < 10; k++)
            idcg += 1.0 / log2(k + 2);
        ndcg += dcg / idcg;
        recall += (double)found / nrel;
        queries++;
        arena_free(a);
        resp_free(&r);
    }
    clock_gettime(CLOCK_MONOTONIC, &a1);
    double query_s = (double)(a1.tv_sec - a0.tv_sec) + (double)(a1.tv_nsec - a0.tv_nsec) / 1e9;
    CHECK(queries == 300);
    ndcg /= queries ? queries : 1;
    recall /= queries ? queries : 1;
    printf("  SciFact BM25: nDCG@10 %.4f, recall@100 %.4f over %d queries (BEIR's BM25: "
           "0.665); 5183 abstracts indexed in %.1f s, %.1f ms per query\n", ndcg, recall,
           queries, index_s, 1000 * query_s / (queries ? queries : 1));
    /* measured 0.692 when written; a drop below BEIR's BM25 is a regression */
    CHECK(ndcg >= 0.665);
    CHECK(recall >= 0.85);
    CHECK(stop_daemon(&S) == 0);
}

int main(void)
{
    g_build = getenv("HEARTH_BUILD");
    g_shared = getenv("HEARTH_SHARED");
    g_tmp = getenv("HEARTH_TMP");
    if (!g_build || !g_shared || !g_tmp) {
        fprintf(stderr, "set HEARTH_BUILD, HEARTH_SHARED and HEARTH_TMP (tests/run.sh does)\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(g_notes, sizeof g_notes, "%s/notes", g_tmp);
    mkdir(g_notes, 0700);
    make_notes();
    char emb[700], wt[700], tiny[700];
    snprintf(emb, sizeof emb, "emb=%s/minilm.gguf", g_tmp);
    snprintf(wt, sizeof wt, "wt=%s/whisper-tiny.bin", g_tmp);
    snprintf(tiny, sizeof tiny, "tiny=%s/models/stories260K.gguf", g_shared);
    char *args[] = { "--model", emb, "--model", wt, "--model", tiny, "--index-embed-model", "emb",
                     "--index-scan-interval", "3600", "--index-roots", (char *)g_tmp, NULL };
    if (start_daemon(&X, "indexX", args) < 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    run("folder_is_indexed", t_folder_is_indexed);
    run("search_finds_passages", t_search_finds_passages);
    run("changes_are_followed", t_changes_are_followed);
    run("watch_sees_changes", t_watch_sees_changes);
    run("ask_cites_sources", t_ask_cites_sources);
    run("bad_requests", t_bad_requests);
    run("metrics_and_status", t_metrics_and_status);
    run("cli", t_cli);
    CHECK(stop_daemon(&X) == 0);
    char *iargs[] = { "--model", emb, "--index-embed-model", "emb", "--index-scan-interval",
                      "3600", "--index-roots", (char *)g_tmp, NULL };
    if (start_daemon(&I, "indexI", iargs) == 0) {
        run("ignore_files", t_ignore_files);
        run("ignore_edit_followed", t_ignore_edit_followed);
        run("watches_follow_folders", t_watches_follow_folders);
        run("exclude_api", t_exclude_api);
        run("exclude_bad_input", t_exclude_bad_input);
        run("exclude_cli", t_exclude_cli);
        CHECK(stop_daemon(&I) == 0);
    } else
        failed++;
    run("key_folders", t_key_folders);
    run("survives_kill9", t_survives_kill9);
    run("reload_retries_failed", t_reload_retries_failed);
    run("scifact_bm25_quality", t_scifact_bm25_quality);
    printf("%d passed, %d failed\n", passed, failed);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
