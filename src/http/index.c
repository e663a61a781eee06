/*
 * index.c: the retrieval index's endpoints.
 *
 *   GET    /v1/index                 what is indexed, what is pending, the folders
 *   POST   /v1/index/folders         {"path","exclude"}: watch a folder (201), or set
 *                                    the exclude patterns of one watched (200)
 *   DELETE /v1/index/folders?path=P  stop watching it (its chunks are forgotten)
 *   POST   /v1/index/rescan          {"retry": bool}: walk the folders now
 *   GET    /v1/index/documents       ?state=&limit=: files and where they stand
 *   GET    /v1/index/check           storage, full-text index and vectors checked
 *   POST   /v1/search                {"query","k","mode"}: passages with citations
 *   POST   /v1/ask                   {"question","model","k",...}: an answer from a
 *                                    chat model over the passages found, citing them
 *
 * The index itself lives in index/; these handlers validate, ask it, and
 * run the query's embedding or the answer on a model like any request.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/log.h"
#include "http/genreq.h"
#include "http/http.h"
#include "index/ignore.h"
#include "index/indexer.h"
#include "index/search.h"
#include "sched/job.h"

#define DOCS_LIST_MAX 1000
#define ASK_DEFAULT_K 5
#define ASK_MAX_K     20
#define INDEX_MAX_EXCLUDES 64       /* a folder's exclude patterns */
#define INDEX_MAX_EXCLUDE  256      /* bytes of one */
#define FOLDERS_BODY_MAX   (256 * 1024)     /* POST /v1/index/folders: a path and patterns */

static int bad(http_req *r, const char *param, const char *code, const char *msg)
{
    return http_reply_error(r, 400, NULL, param, code, msg, 0);
}

static indexer *index_of(http_req *r, int *ret)
{
    const char *why;
    indexer *x = http_index(r, &why);
    if (!x)
        *ret = http_reply_error(r, 503, NULL, NULL, "index_unavailable", why, 0);
    return x;
}

/* ---- status -------------------------------------------------------------- */

/* A folder's exclude patterns (stored one a line) as a JSON array. */
static void excludes_json(buf *b, const char *lines)
{
    buf_putc(b, '[');
    for (const char *p = lines ? lines : ""; *p;) {
        size_t n = strcspn(p, "\n");
        if (p != lines)
            buf_putc(b, ',');
        jw_str(b, p, n);
        p += n + (p[n] == '\n');
    }
    buf_putc(b, ']');
}


void http_index_counts(http_req *r, buf *b, bool prometheus)
{
    const char *why;
    indexer *x = http_index(r, &why);
    idb_counts c;
    bool ok = x && idb_get_counts(indexer_db(x), &c) == 0;
    idb_vmem vm = { 0 };
    if (ok)
        idb_vector_memory(indexer_db(x), &vm);
    if (prometheus) {
        buf_printf(b, "# HELP hearth_index_available 1 while the search index is usable.\n"
                      "# TYPE hearth_index_available gauge\nhearth_index_available %d\n", ok);
        if (!ok)
            return;
        buf_puts(b, "# HELP hearth_index_documents Files in watched folders, by state.\n"
                    "# TYPE hearth_index_documents gauge\n");
        for (int s = 0; s < DOC_NSTATES; s++)
            buf_printf(b, "hearth_index_documents{state=\"%s\"} %lld\n",
                       doc_state_name((doc_state)s), (long long)c.docs[s]);
        buf_printf(b, "# HELP hearth_index_chunks Passages search can return.\n"
                      "# TYPE hearth_index_chunks gauge\nhearth_index_chunks %lld\n"
                      "# HELP hearth_index_vectors Passages with an embedding.\n"
                      "# TYPE hearth_index_vectors gauge\nhearth_index_vectors %lld\n"
                      "# HELP hearth_index_vector_memory_bytes Memory of the vectors kept for "
                      "vector search.\n"
                      "# TYPE hearth_index_vector_memory_bytes gauge\n"
                      "hearth_index_vector_memory_bytes %zu\n",
                   (long long)c.chunks, (long long)c.vectors, vm.bytes);
        return;
    }
    if (!ok) {
        buf_puts(b, "null");
        return;
    }
    buf_puts(b, "{\"documents\":{");
    for (int s = 0; s < DOC_NSTATES; s++)
        buf_printf(b, "%s\"%s\":%lld", s ? "," : "", doc_state_name((doc_state)s),
                   (long long)c.docs[s]);
    buf_printf(b, "},\"chunks\":%lld,\"vectors\":%lld,\"folders\":%lld,", (long long)c.chunks,
               (long long)c.vectors, (long long)c.folders);
    /* the vectors vector search holds in memory; "from_disk" when they did
     * not fit (or the memory is off) */
    buf_printf(b, "\"vector_memory\":{\"vectors\":%zu,\"bytes\":%zu,\"mode\":\"%s\"}}",
               vm.vectors, vm.bytes, vm.on && !vm.too_big ? "memory" : "from_disk");
}

int http_index_status(http_req *r)
{
    int ret = MHD_NO;
    indexer *x = index_of(r, &ret);
    if (!x)
        return ret;
    idb_folder *f = NULL;
    size_t nf = 0;
    if (idb_folders(indexer_db(x), &f, &nf) < 0)
        return http_reply_error(r, 500, NULL, NULL, "index_error", "cannot read the index", 0);
    indexer_activity act;
    indexer_get_activity(x, &act);
    buf b = buf_make(0);
    buf_puts(&b, "{\"object\":\"index\",\"embedding_model\":");
    jw_cstr(&b, act.embed_model[0] ? act.embed_model : NULL);
    buf_printf(&b, ",\"scanning\":%s,\"current\":", act.scanning ? "true" : "false");
    /* (a key limited to some folders is not told of a file outside them) */
    bool shown = act.current[0] && idb_in_scope(act.current, r->key_folders);
    jw_cstr(&b, shown ? act.current : NULL);
    buf_printf(&b, ",\"last_scan\":%.3f,\"indexed_since_start\":%lld,\"failed_since_start\":%lld,"
                   "\"watches\":%zu,\"counts\":", act.last_scan, (long long)act.indexed_since_start,
               (long long)act.failed_since_start, act.watches);
    http_index_counts(r, &b, false);
    buf_puts(&b, ",\"folders\":[");
    bool first = true;
    for (size_t i = 0; i < nf; i++) {
        if (!idb_in_scope(f[i].path, r->key_folders))
            continue;           /* a key limited to some folders sees those */
        buf_puts(&b, first ? "{\"path\":" : ",{\"path\":");
        first = false;
        jw_cstr(&b, f[i].path);
        buf_printf(&b, ",\"documents\":%lld,\"pending\":%lld,\"indexed\":%lld,\"failed\":%lld,"
                       "\"added\":%.0f,\"last_scan\":%.3f,\"exclude\":",
                   (long long)f[i].docs, (long long)f[i].pending, (long long)f[i].indexed,
                   (long long)f[i].failed, f[i].added, f[i].last_scan);
        excludes_json(&b, f[i].exclude);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    idb_folders_free(f, nf);
    return http_reply_json(r, 200, &b);
}

/* ---- folders ------------------------------------------------------------- */

/* The request's "exclude": absent or null keeps the folder's patterns
 * (*keep); else an array of at most INDEX_MAX_EXCLUDES gitignore patterns
 * of at most INDEX_MAX_EXCLUDE bytes each, into out one a line. false
 * after replying 400 (*ret). */
static bool read_excludes(http_req *r, const json *e, buf *out, bool *keep, int *ret)
{
    *keep = !e || e->type == JSON_NULL;
    if (*keep)
        return true;
    char msg[400];
    if (e->type != JSON_ARRAY) {
        *ret = bad(r, "exclude", "invalid_type",
                   "'exclude' must be an array of gitignore-style patterns");
        return false;
    }
    if (e->len > INDEX_MAX_EXCLUDES) {
        snprintf(msg, sizeof msg, "'exclude' holds at most %d patterns", INDEX_MAX_EXCLUDES);
        *ret = bad(r, "exclude", "array_above_max_length", msg);
        return false;
    }
    ignore_rules *check = ignore_rules_new();
    bool ok = check != NULL;
    if (!ok)
        *ret = http_reply_error(r, 500, NULL, NULL, "index_error", "out of memory", 0);
    int i = 0;
    for (const json *v = e->child; ok && v; v = v->next, i++) {
        const char *code = NULL, *why = NULL;
        bool controls = false;
        for (size_t k = 0; v->type == JSON_STRING && k < v->len; k++)
            controls |= (unsigned char)v->str[k] < 0x20 || v->str[k] == 0x7f;
        if (v->type != JSON_STRING)
            code = "invalid_type", why = "is not a string";
        else if (v->len > INDEX_MAX_EXCLUDE)
            code = "string_above_max_length", why = "is longer than 256 bytes";
        else if (controls)
            code = "invalid_value", why = "holds a control character";
        else {
            ignore_line k = ignore_rules_add(check, v->str, v->len);
            if (k != IGNORE_ADDED)
                code = "invalid_value",
                why = k == IGNORE_NOTHING ? "is blank or a comment ('#'), which excludes nothing"
                      : k == IGNORE_NOMEM ? "could not be read (out of memory)"
                                          : "is not a valid pattern (a lone trailing '\\', an "
                                            "unclosed '[', an unknown [:class:], or nothing but "
                                            "'!' and '/')";
        }
        if (code) {
            snprintf(msg, sizeof msg, "exclude[%d] %s", i, why);
            *ret = bad(r, "exclude", code, msg);
            ok = false;
            break;
        }
        if (i)
            buf_putc(out, '\n');
        buf_append(out, v->str, v->len);
    }
    ignore_rules_free(check);
    return ok;
}

/* The answer to POST /v1/index/folders: 201 for a new folder, 200 for one
 * watched already (its excludes updated). */
static int reply_folder(http_req *r, indexer *x, const char *canon, bool existed)
{
    idb_folder *f = NULL;
    size_t nf = 0;
    const char *exclude = "";
    if (idb_folders(indexer_db(x), &f, &nf) == 0)
        for (size_t i = 0; i < nf; i++)
            if (!strcmp(f[i].path, canon))
                exclude = f[i].exclude;
    buf b = buf_make(0);
    buf_puts(&b, "{\"object\":\"index.folder\",\"path\":");
    jw_cstr(&b, canon);
    buf_puts(&b, ",\"exclude\":");
    excludes_json(&b, exclude);
    buf_printf(&b, ",\"created\":%s,\"status\":\"scanning\"}", existed ? "false" : "true");
    idb_folders_free(f, nf);
    return http_reply_json(r, existed ? 200 : 201, &b);
}

int http_index_folders(http_req *r)
{
    int ret = MHD_NO;
    indexer *x = index_of(r, &ret);
    if (!x)
        return ret;
    if (!strcmp(r->method, "DELETE")) {
        const char *p = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "path");
        if (!p || !*p || strlen(p) >= 4096)
            return bad(r, "path", "missing_required_parameter",
                       "DELETE /v1/index/folders needs ?path=FOLDER");
        if (p[0] != '/')
            return bad(r, "path", "invalid_folder", "the folder must be an absolute path");
        int rc = indexer_remove_folder(x, p);
        if (rc < 0)
            return http_reply_error(r, 500, NULL, NULL, "index_error", "cannot write the index", 0);
        if (rc == 0)
            return http_reply_error(r, 404, NULL, "path", "folder_not_found",
                                    "that folder is not watched", 0);
        buf b = buf_make(0);
        buf_puts(&b, "{\"object\":\"index.folder.deleted\",\"deleted\":true,\"path\":");
        jw_cstr(&b, p);
        buf_putc(&b, '}');
        return http_reply_json(r, 200, &b);
    }
    /* a node per pattern: far more than the body's bytes; a body past
     * FOLDERS_BODY_MAX is not worth parsing (it fails as too large) */
    size_t body = r->body.len < FOLDERS_BODY_MAX ? r->body.len : FOLDERS_BODY_MAX;
    arena *a = arena_new(body * 48 + 16384);
    const json *o = http_json_body(r, a, &ret);
    const json *p = o ? json_get(o, "path") : NULL;
    buf exclude = buf_make(0);
    bool keep = true;           /* no "exclude": the folder keeps its patterns */
    if (o && (!p || p->type != JSON_STRING || p->len == 0 || p->len >= 4096 ||
              strlen(p->str) != p->len))
        ret = bad(r, "path", p ? "invalid_type" : "missing_required_parameter",
                  "'path' must be the absolute path of a folder on hearthd's machine");
    else if (o && read_excludes(r, json_get(o, "exclude"), &exclude, &keep, &ret)) {
        char canon[4096], err[600];
        bool existed = false;
        int rc = indexer_add_folder(x, p->str, keep ? NULL : exclude.data ? exclude.data : "",
                                    canon, sizeof canon, &existed, err, sizeof err);
        if (rc)
            ret = http_reply_error(r, (unsigned)rc, NULL, "path",
                                   rc == 409 ? "folder_overlaps" : rc == 400 ? "invalid_folder"
                                   : rc == 403 ? "folder_not_allowed" : "index_error",
                                   err, 0);
        else
            ret = reply_folder(r, x, canon, existed);
    }
    buf_free(&exclude);
    arena_free(a);
    return ret;
}

int http_index_rescan(http_req *r)
{
    int ret = MHD_NO;
    indexer *x = index_of(r, &ret);
    if (!x)
        return ret;
    bool retry = false;
    if (r->body.len) {
        arena *a = arena_new(r->body.len * 4 + 4096);
        const json *o = http_json_body(r, a, &ret);
        const json *rv = o ? json_get(o, "retry") : NULL;
        bool okv = o && (!rv || rv->type == JSON_BOOL || rv->type == JSON_NULL);
        retry = okv && rv && rv->type == JSON_BOOL && rv->boolean;
        if (o && !okv)
            ret = bad(r, "retry", "invalid_type", "'retry' must be a boolean");
        arena_free(a);
        if (!okv)
            return ret;
    }
    indexer_rescan(x, retry);
    buf b = buf_make(0);
    buf_printf(&b, "{\"object\":\"index.rescan\",\"retry\":%s}", retry ? "true" : "false");
    return http_reply_json(r, 202, &b);
}

int http_index_documents(http_req *r)
{
    int ret = MHD_NO;
    indexer *x = index_of(r, &ret);
    if (!x)
        return ret;
    const char *sv = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "state");
    const char *lv = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
    int state = -1, limit = 100;
    if (sv && *sv && (state = doc_state_parse(sv)) < 0)
        return bad(r, "state", "invalid_value", "state must be pending, indexed, failed or dead");
    if (lv && *lv) {
        char *end;
        long v = strtol(lv, &end, 10);
        if (*end || v < 1 || v > DOCS_LIST_MAX)
            return bad(r, "limit", "invalid_value", "limit must be 1 to 1000");
        limit = (int)v;
    }
    idb_doc *d = NULL;
    size_t n = 0;
    if (idb_docs(indexer_db(x), state, limit, r->key_folders, &d, &n) < 0)
        return http_reply_error(r, 500, NULL, NULL, "index_error", "cannot read the index", 0);
    buf b = buf_make(0);
    buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        buf_puts(&b, i ? ",{\"path\":" : "{\"path\":");
        jw_cstr(&b, d[i].path);
        buf_puts(&b, ",\"kind\":");
        jw_cstr(&b, d[i].kind);
        buf_printf(&b, ",\"state\":\"%s\",\"bytes\":%lld,\"chunks\":%d,\"dropped\":%d,"
                       "\"attempts\":%d,\"indexed_at\":%.0f,\"error\":",
                   doc_state_name(d[i].state), (long long)d[i].size, d[i].chunks, d[i].dropped,
                   d[i].attempts, d[i].indexed_at);
        jw_cstr(&b, d[i].error[0] ? d[i].error : NULL);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    idb_docs_free(d, n);
    return http_reply_json(r, 200, &b);
}

int http_index_check(http_req *r)
{
    int ret = MHD_NO;
    indexer *x = index_of(r, &ret);
    if (!x)
        return ret;
    idb_check_result c;
    if (idb_check(indexer_db(x), &c) < 0)
        return http_reply_error(r, 500, NULL, NULL, "index_error", "cannot check the index", 0);
    bool ok = c.storage_ok && c.fts_ok && c.vectors_ok;
    if (!ok)
        log_error("index check: %s; %s; %s", c.storage, c.fts, c.vectors);
    buf b = buf_make(0);
    buf_printf(&b, "{\"object\":\"index.check\",\"ok\":%s,\"checks\":[", ok ? "true" : "false");
    const struct { const char *name; bool ok; const char *detail; } list[] = {
        { "storage", c.storage_ok, c.storage },
        { "full_text", c.fts_ok, c.fts },
        { "vectors", c.vectors_ok, c.vectors },
    };
    for (size_t i = 0; i < sizeof list / sizeof *list; i++) {
        buf_printf(&b, "%s{\"name\":\"%s\",\"ok\":%s,\"detail\":", i ? "," : "",
                   list[i].name, list[i].ok ? "true" : "false");
        jw_cstr(&b, list[i].detail);
        buf_putc(&b, '}');
    }
    buf_printf(&b, "],\"vectors_checked\":%lld,\"vectors_bad\":%lld,\"mean_cosine\":%.4f,"
                   "\"pairs\":%d}", (long long)c.vectors_checked, (long long)c.vectors_bad,
               c.mean_cosine, c.pairs);
    return http_reply_json(r, 200, &b);
}

/* ---- search -------------------------------------------------------------- */

/* A search request's fields. */
struct query {
    const char *text;
    size_t len;
    int k;
    search_mode mode;
};

/* false after replying 400 (*ret) */
static bool read_query(http_req *r, const json *o, const char *field, int kdef, int kmax,
                       struct query *q, int *ret)
{
    const json *t = json_get(o, field);
    if (!t || t->type != JSON_STRING || t->len == 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "'%s' must be a non-empty string", field);
        *ret = bad(r, field, !t ? "missing_required_parameter"
                             : t->type == JSON_STRING ? "invalid_value" : "invalid_type", msg);
        return false;
    }
    if (t->len > SEARCH_MAX_QUERY) {
        *ret = bad(r, field, "string_above_max_length", "the query is longer than 4096 bytes");
        return false;
    }
    q->text = t->str;
    q->len = t->len;
    const json *k = json_get(o, "k");
    q->k = kdef;
    if (k && k->type != JSON_NULL) {
        if (k->type != JSON_NUMBER || !k->is_int || k->integer < 1 || k->integer > kmax) {
            char msg[64];
            snprintf(msg, sizeof msg, "'k' must be an integer from 1 to %d", kmax);
            *ret = bad(r, "k", "invalid_value", msg);
            return false;
        }
        q->k = (int)k->integer;
    }
    const json *m = json_get(o, "mode");
    q->mode = SEARCH_HYBRID;
    if (m && m->type != JSON_NULL) {
        int v = m->type == JSON_STRING ? search_mode_parse(m->str) : -1;
        if (v < 0) {
            *ret = bad(r, "mode", "invalid_value", "'mode' must be hybrid, bm25 or vector");
            return false;
        }
        q->mode = (search_mode)v;
    }
    return true;
}

/* Run q; hits into out. The query's embedding runs on the index's model
 * when the mode needs it. false after replying with the error. */
static bool find(http_req *r, indexer *x, struct query *q, search_hit *out, int *nout, int *ret)
{
    indexer_activity act;
    indexer_get_activity(x, &act);
    if (q->mode == SEARCH_VECTOR && !act.embed_model[0]) {
        *ret = bad(r, "mode", "no_embedding_model",
                   "vector search needs an embedding model: start hearthd with "
                   "--index-embed-model NAME");
        return false;
    }
    if (q->mode == SEARCH_HYBRID && !act.embed_model[0])
        q->mode = SEARCH_BM25;
    float *qv = NULL;
    int dim = 0;
    buf vec = buf_make(0);
    if (q->mode != SEARCH_BM25) {
        buf p = buf_make(0);
        buf_puts(&p, "{\"kind\":\"embedding\",\"input\":[");
        jw_str(&p, q->text, q->len);
        buf_puts(&p, "]}");
        job *j = http_new_job(r, act.embed_model, MODEL_KIND_EMBEDDING, &p, ret);
        buf_free(&p);
        if (!j)
            return false;
        job_status st;
        bool ok = http_run_job(r, j, &vec, &st, ret);
        job_unref(j);
        if (!ok) {
            buf_free(&vec);
            return false;
        }
        if (vec.len < sizeof(float) || vec.len % sizeof(float)) {
            buf_free(&vec);
            *ret = http_reply_error(r, 502, NULL, NULL, "bad_worker_output",
                                    "the embedding model returned a malformed vector", 0);
            return false;
        }
        qv = (float *)vec.data;
        dim = (int)(vec.len / sizeof(float));
    }
    int n = search_run(indexer_db(x), q->mode, q->text, q->len, act.embed_model, qv, dim,
                          q->k, r->key_folders, out);
    buf_free(&vec);
    if (n < 0) {
        *ret = http_reply_error(r, 500, NULL, NULL, "index_error", "the search failed", 0);
        return false;
    }
    *nout = n;
    return true;
}

/* A recording's passage: "start_s","end_s" members (and a comma). */
static void times_json(buf *b, const idb_passage *p)
{
    if (p->t0 >= 0)
        buf_printf(b, "\"start_s\":%.2f,\"end_s\":%.2f,", p->t0, p->t1);
}

/* One hit as JSON; false when its chunk vanished meanwhile (a file
 * reindexed between the search and this read). */
static bool hit_json(buf *b, idb *d, const search_hit *h, int rank, idb_passage *p)
{
    if (idb_passage_get(d, h->chunk, p) != 1)
        return false;
    buf_printf(b, "{\"object\":\"search.result\",\"rank\":%d,\"score\":%.6g,\"path\":", rank,
               h->score);
    jw_cstr(b, p->path);
    buf_printf(b, ",\"lines\":[%d,%d],", p->line0, p->line1);
    times_json(b, p);
    buf_printf(b, "\"chunk_id\":%lld,\"bm25_rank\":", (long long)h->chunk);
    buf_printf(b, h->bm25_rank ? "%d" : "null", h->bm25_rank);
    buf_puts(b, ",\"vector_rank\":");
    buf_printf(b, h->vector_rank ? "%d" : "null", h->vector_rank);
    buf_puts(b, ",\"text\":");
    jw_cstr(b, p->text);
    buf_putc(b, '}');
    return true;
}

int http_search(http_req *r)
{
    int ret = MHD_NO;
    indexer *x = index_of(r, &ret);
    if (!x)
        return ret;
    arena *a = arena_new(r->body.len * 4 + 4096);
    const json *o = http_json_body(r, a, &ret);
    struct query q;
    search_hit hits[SEARCH_MAX_K];
    int n = 0;
    if (!o || !read_query(r, o, "query", 10, SEARCH_MAX_K, &q, &ret) ||
        !find(r, x, &q, hits, &n, &ret))
        goto out;
    buf b = buf_make(0);
    buf_printf(&b, "{\"object\":\"list\",\"mode\":\"%s\",\"data\":[", search_mode_name(q.mode));
    int shown = 0;
    for (int i = 0; i < n; i++) {
        idb_passage p;
        buf one = buf_make(0);
        if (hit_json(&one, indexer_db(x), &hits[i], shown + 1, &p)) {
            if (shown++)
                buf_putc(&b, ',');
            buf_append(&b, one.data, one.len);
        }
        buf_free(&one);
        idb_passage_free(&p);
    }
    buf_puts(&b, "]}");
    log_info("search (%s): %d result(s)", search_mode_name(q.mode), shown);
    ret = http_reply_json(r, 200, &b);
out:
    arena_free(a);
    return ret;
}

/* ---- ask ----------------------------------------------------------------- */

static const char ask_system[] =
    "You answer questions from the user's own documents, quoted below as numbered sources. "
    "Use only these sources. After each statement, cite the source it comes from by its "
    "number in square brackets, like [1]. If the sources do not hold the answer, say that "
    "you could not find it in the documents.\n\nSources:\n";

/* fields of the request passed on to the chat model as they are */
static const char *const ask_passthrough[] = { "max_tokens", "max_completion_tokens", "temperature",
                                               "top_p", "top_k", "min_p", "seed", "stop",
                                               "keep_alive", "stream", "stream_options", NULL };

int http_ask(http_req *r)
{
    int ret = MHD_NO;
    indexer *x = index_of(r, &ret);
    if (!x)
        return ret;
    arena *a = arena_new(r->body.len * 4 + 4096);
    const json *o = http_json_body(r, a, &ret);
    struct query q;
    search_hit hits[ASK_MAX_K];
    int n = 0;
    buf req = buf_make(0), cites = buf_make(0), sources = buf_make(0);
    gen_request g = { 0 };
    job *j = NULL;
    if (!o || !read_query(r, o, "question", ASK_DEFAULT_K, ASK_MAX_K, &q, &ret))
        goto out;
    const json *model = json_get(o, "model");
    if (!model || model->type != JSON_STRING || model->len == 0 || model->len > MODEL_NAME_MAX) {
        ret = bad(r, "model", model ? "invalid_type" : "missing_required_parameter",
                  "'model' must name the chat model that answers");
        goto out;
    }
    if (!find(r, x, &q, hits, &n, &ret))
        goto out;

    /* the sources, numbered as cited, and the citations the answer refers to */
    buf_puts(&sources, ask_system);
    buf_putc(&cites, '[');
    int shown = 0;
    for (int i = 0; i < n; i++) {
        idb_passage p;
        if (idb_passage_get(indexer_db(x), hits[i].chunk, &p) != 1)
            continue;
        shown++;
        if (p.t0 >= 0)
            buf_printf(&sources, "\n[%d] %s (at %d:%02d-%d:%02d)\n%s\n", shown, p.path,
                       (int)p.t0 / 60, (int)p.t0 % 60, (int)p.t1 / 60, (int)p.t1 % 60, p.text);
        else
            buf_printf(&sources, "\n[%d] %s (lines %d-%d)\n%s\n", shown, p.path, p.line0,
                       p.line1, p.text);
        buf_printf(&cites, "%s{\"index\":%d,\"path\":", shown > 1 ? "," : "", shown);
        jw_cstr(&cites, p.path);
        buf_printf(&cites, ",\"lines\":[%d,%d],", p.line0, p.line1);
        times_json(&cites, &p);
        buf_printf(&cites, "\"chunk_id\":%lld,\"score\":%.6g,\"text\":",
                   (long long)hits[i].chunk, hits[i].score);
        jw_cstr(&cites, p.text);
        buf_putc(&cites, '}');
        idb_passage_free(&p);
    }
    buf_putc(&cites, ']');
    if (!shown)
        buf_puts(&sources, "\n(no document matched the question)\n");

    buf_puts(&req, "{\"model\":");
    jw_cstr(&req, model->str);
    buf_puts(&req, ",\"messages\":[{\"role\":\"system\",\"content\":");
    jw_str(&req, sources.data, sources.len);
    buf_puts(&req, "},{\"role\":\"user\",\"content\":");
    jw_str(&req, q.text, q.len);
    buf_puts(&req, "}]");
    for (int i = 0; ask_passthrough[i]; i++) {
        const json *v = json_get(o, ask_passthrough[i]);
        if (v) {
            buf_printf(&req, ",\"%s\":", ask_passthrough[i]);
            jw_value(&req, v);
        }
    }
    buf_putc(&req, '}');
    gen_error e;
    if (genreq_parse(GEN_CHAT, req.data, req.len, &g, &e) < 0) {
        ret = http_reply_error(r, (unsigned)e.status, NULL, e.param, e.code, e.message, 0);
        goto out;
    }
    if (!(j = http_new_job(r, g.model, MODEL_KIND_CHAT, &g.payload, &ret)))
        goto out;
    /* the answer as chat/completions gives it (whole or streamed), with
     * the sources it was given: in the answer, or in the first chunk */
    buf extra = buf_make(0);
    buf_printf(&extra, "\"search_mode\":\"%s\",\"citations\":", search_mode_name(q.mode));
    buf_append(&extra, cites.data, cites.len);
    log_info("ask: %d source(s) for %s", shown, g.model);
    ret = http_generate(r, j, &g, GEN_CHAT, extra.data);
    j = NULL;                   /* http_generate took the reference */
    buf_free(&extra);
out:
    job_unref(j);
    buf_free(&g.payload);
    buf_free(&req);
    buf_free(&cites);
    buf_free(&sources);
    arena_free(a);
    return ret;
}
