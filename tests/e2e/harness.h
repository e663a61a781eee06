#ifndef HEARTH_E2E_HARNESS_H
#define HEARTH_E2E_HARNESS_H
/*
 * harness.h: shared helpers of the end-to-end test programs (included once
 * per program): starting and stopping a real hearthd, HTTP calls with
 * libcurl, JSON and SSE parsing, and the pass/fail tally. The original
 * description of the API suite follows.
 *
 * e2e_api.c: end-to-end tests. Starts the real hearthd (and through it the real
 * worker and llama.cpp) on loopback with a temporary data dir and drives it
 * over HTTP like a user's client would.
 *
 * Environment (set by tests/run.sh):
 *   HEARTH_BUILD     folder with hearthd, hearth-worker, hearth
 *   HEARTH_SHARED    the shared assets folder (models/stories260K.gguf)
 *   HEARTH_TMP       scratch folder; synthesized models are written here
 *   HEARTH_NODE_TEST path of the openai-client check (skipped if unset)
 *
 * Daemon A serves stories260K (a real tiny model without a chat template) and
 * a synthesized tiny chat model; daemon B serves a slower synthesized model
 * with one slot and no queue, to observe slot occupancy.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/gguf.h"
#include "core/json.h"
#include "core/utf8.h"

static int passed, failed;
static int cur_failed;
static const char *g_build, *g_tmp;
static const char *g_shared __attribute__((unused));

#define CHECK(e)                                                                     \
    do {                                                                             \
        if (!(e)) {                                                                  \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #e);  \
            cur_failed = 1;                                                          \
        }                                                                            \
    } while (0)

/* The first line of a file into line[n] ("" when it cannot be read). */
static inline void first_line(const char *path, char *line, size_t n)
{
    line[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(line, (int)n, f))
            line[0] = '\0';
        fclose(f);
    }
}

static inline void run(const char *name, void (*fn)(void))
{
    cur_failed = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    if (cur_failed) {
        failed++;
        printf("FAIL %s (%.2fs)\n", name, s);
    } else {
        passed++;
        printf("ok   %s (%.2fs)\n", name, s);
    }
    fflush(stdout);
}

/* ---- daemon control ----------------------------------------------------- */

struct daemon {
    pid_t pid;
    int port;
    char dir[512];
    char log[600];
};

static inline int start_daemon(struct daemon *d, const char *name, char *const extra[])
{
    snprintf(d->dir, sizeof d->dir, "%s/%s", g_tmp, name);
    mkdir(d->dir, 0700);
    snprintf(d->log, sizeof d->log, "%s/hearthd.log", d->dir);
    char addr[700];
    snprintf(addr, sizeof addr, "%s/hearthd.addr", d->dir);
    unlink(addr);
    char exe[600];
    snprintf(exe, sizeof exe, "%s/hearthd", g_build);
    char *argv[64];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--data-dir";
    argv[n++] = d->dir;
    for (int i = 0; extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid == 0) {
        FILE *f = freopen(d->log, "w", stderr);
        (void)f;
        execv(exe, argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(addr, "r");
        if (f) {
            char line[128] = "";
            char *r = fgets(line, sizeof line, f);
            fclose(f);
            char *colon = r ? strrchr(line, ':') : NULL;
            if (colon && (d->port = atoi(colon + 1)) > 0)
                return 0;
        }
        usleep(50000);
    }
    fprintf(stderr, "hearthd did not start; see %s\n", d->log);
    return -1;
}

static inline int stop_daemon(struct daemon *d)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 200; i++) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(50000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return -1;
}


/* ---- HTTP helpers ------------------------------------------------------- */

struct resp {
    long status;
    buf body;
    buf headers;
};

static inline size_t collect(char *p, size_t s, size_t n, void *ud)
{
    buf_append(ud, p, s * n);
    return s * n;
}

static inline void resp_free(struct resp *r)
{
    buf_free(&r->body);
    buf_free(&r->headers);
}

/* A request with a body of the given Content-Type (none without a body)
 * and one more header line when `header` is not NULL. */
static inline struct resp http_full(struct daemon *d, const char *method, const char *path,
                                    const char *ctype, const char *header, const char *body,
                                    size_t len)
{
    struct resp r = { 0, buf_make(0), buf_make(0) };
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", d->port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
    if (body) {
        char ct[160];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (h)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return r;
}

static inline struct resp http_typed(struct daemon *d, const char *method, const char *path,
                                     const char *ctype, const char *body, size_t len)
{
    return http_full(d, method, path, ctype, NULL, body, len);
}

static inline struct resp http(struct daemon *d, const char *method, const char *path,
                               const char *body, size_t len)
{
    return http_typed(d, method, path, "application/json", body, len);
}

static inline struct resp post(struct daemon *d, const char *path, const char *body)
{
    return http(d, "POST", path, body, strlen(body));
}

static inline const json *parse(arena *a, const buf *b)
{
    char e[96];
    return b->len ? json_parse(a, b->data, b->len, e, sizeof e) : NULL;
}

static inline const json *path(const json *v, const char *p)
{
    /* "choices.0.message.content" */
    char key[64];
    while (v && *p) {
        size_t l = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)l, p);
        if (v->type == JSON_ARRAY) {
            int idx = atoi(key);
            const json *c = v->child;
            while (c && idx--)
                c = c->next;
            v = c;
        } else {
            v = json_get(v, key);
        }
        p += l;
        if (*p == '.')
            p++;
    }
    return v;
}

static inline const char *str_at(const json *v, const char *p)
{
    const json *s = path(v, p);
    return s && s->type == JSON_STRING ? s->str : NULL;
}

static inline double num_at(const json *v, const char *p)
{
    const json *s = path(v, p);
    return s && s->type == JSON_NUMBER ? s->number : -1;
}

static inline bool is_error_shape(const json *j, const char *code)
{
    const json *e = json_get(j, "error");
    if (!e || e->type != JSON_OBJECT)
        return false;
    const json *m = json_get(e, "message"), *t = json_get(e, "type"), *p = json_get(e, "param"),
               *c = json_get(e, "code");
    if (!m || m->type != JSON_STRING || !t || t->type != JSON_STRING || !p || !c)
        return false;
    if (code && !(c->type == JSON_STRING && strcmp(c->str, code) == 0))
        return false;
    /* never a path of the machine in an error */
    return strstr(m->str, g_tmp) == NULL && strstr(m->str, "/work/") == NULL &&
           strstr(m->str, ".gguf") == NULL;
}

/* Whether r is an error of this status in OpenAI's shape with this code. */
static inline bool answer_is_error(const struct resp *r, long status, const char *code)
{
    arena *a = arena_new(0);
    bool ok = r->status == status && is_error_shape(parse(a, &r->body), code);
    arena_free(a);
    return ok;
}

/* Completion text of a non-stream response (chat or completions). */
static inline char *content_of(const struct resp *r, bool chat, char *finish, size_t fl)
{
    arena *a = arena_new(0);
    const json *j = parse(a, &r->body);
    const char *t = str_at(j, chat ? "choices.0.message.content" : "choices.0.text");
    const char *f = str_at(j, "choices.0.finish_reason");
    if (finish)
        snprintf(finish, fl, "%s", f ? f : "");
    char *out = t ? strdup(t) : NULL;
    arena_free(a);
    return out;
}

/* Parse an SSE body: concatenated content, finish reason, usage chunk seen,
 * role in first delta, [DONE] last, every chunk valid JSON. */
struct sse_result {
    buf content;
    char finish[16];
    bool role_first, done_last, all_json, usage_seen, error_seen;
    int chunks;
    int completion_tokens;
};

static inline struct sse_result parse_sse(const buf *body, bool chat)
{
    struct sse_result s = { .content = buf_make(0), .all_json = true };
    const char *p = body->data ? body->data : "";
    const char *end = p + body->len;
    const char *last_data = NULL;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (l > 6 && strncmp(p, "data: ", 6) == 0) {
            last_data = p;
            if (!(l == 12 && strncmp(p + 6, "[DONE]", 6) == 0)) {
                arena *a = arena_new(0);
                char e[64];
                const json *j = json_parse(a, p + 6, l - 6, e, sizeof e);
                if (!j) {
                    s.all_json = false;
                } else if (json_get(j, "error")) {
                    s.error_seen = true;
                } else {
                    if (s.chunks == 0 && chat)
                        s.role_first = str_at(j, "choices.0.delta.role") &&
                                       !strcmp(str_at(j, "choices.0.delta.role"), "assistant");
                    const char *t = str_at(j, chat ? "choices.0.delta.content" : "choices.0.text");
                    if (t) {
                        if (!utf8_valid(t, strlen(t)))
                            s.all_json = false;
                        buf_puts(&s.content, t);
                    }
                    const char *f = str_at(j, "choices.0.finish_reason");
                    if (f)
                        snprintf(s.finish, sizeof s.finish, "%s", f);
                    const json *u = json_get(j, "usage");
                    if (u && u->type == JSON_OBJECT) {
                        s.usage_seen = true;
                        s.completion_tokens = (int)num_at(u, "completion_tokens");
                    }
                    s.chunks++;
                }
                arena_free(a);
            }
        }
        p += l + 1;
    }
    s.done_last = last_data && strncmp(last_data, "data: [DONE]", 12) == 0;
    return s;
}

static inline char *chat_body(const char *model, const char *user, const char *extra)
{
    buf b = buf_make(0);
    buf_puts(&b, "{\"model\":");
    jw_cstr(&b, model);
    buf_puts(&b, ",\"messages\":[{\"role\":\"user\",\"content\":");
    jw_cstr(&b, user);
    buf_printf(&b, "}]%s%s}", extra && *extra ? "," : "", extra ? extra : "");
    return buf_detach(&b, NULL);
}

/* The HTTP status of one chat request (its body is dropped). */
static inline long chat_status(struct daemon *d, const char *model, const char *user,
                               const char *extra)
{
    char *b = chat_body(model, user, extra);
    struct resp r = post(d, "/v1/chat/completions", b);
    long status = r.status;
    resp_free(&r);
    free(b);
    return status;
}

static inline char *completion_body(const char *model, const char *prompt, const char *extra)
{
    buf b = buf_make(0);
    buf_puts(&b, "{\"model\":");
    jw_cstr(&b, model);
    buf_puts(&b, ",\"prompt\":");
    jw_cstr(&b, prompt);
    buf_printf(&b, "%s%s}", extra && *extra ? "," : "", extra ? extra : "");
    return buf_detach(&b, NULL);
}

/* True once the file at path holds needle (checked every 100 ms, up to
 * timeout_s seconds). */
static inline bool log_holds(const char *path, const char *needle, double timeout_s)
{
    for (double waited = 0; waited <= timeout_s; waited += 0.1) {
        FILE *f = fopen(path, "r");
        if (f) {
            char line[1024];
            bool hit = false;
            while (!hit && fgets(line, sizeof line, f))
                hit = strstr(line, needle) != NULL;
            fclose(f);
            if (hit)
                return true;
        }
        usleep(100000);
    }
    return false;
}

static inline bool healthy(struct daemon *d)
{
    struct resp r = http(d, "GET", "/health", NULL, 0);
    bool ok = r.status == 200 && r.body.data && strstr(r.body.data, "\"ok\"");
    resp_free(&r);
    return ok;
}


/* Open a streaming chat and read until content arrives; returns the socket
 * (still open) or -1. */
static inline int open_stream(struct daemon *d, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)d->port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tmo = { .tv_sec = 30 };     /* never hang the suite */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    buf got = buf_make(1 << 20);
    char tmp[4096];
    for (int i = 0; i < 2000; i++) {
        ssize_t k = read(fd, tmp, sizeof tmp);
        if (k <= 0)
            break;
        buf_append(&got, tmp, (size_t)k);
        const char *c = got.data ? strstr(got.data, "\"content\":\"") : NULL;
        if (c && strstr(c + 11, "\"content\":")) {
            buf_free(&got);
            return fd;
        }
    }
    buf_free(&got);
    close(fd);
    return -1;
}


/* A copy of path whose tensor data is all 0xFF bytes (NaN in F16 and F32):
 * a model file damaged past its header. */
static inline int damaged_copy(const char *path, const char *out)
{
    gguf_info g;
    char err[200];
    if (gguf_check_file(path, &g, err, sizeof err) < 0)
        return -1;
    FILE *in = fopen(path, "rb"), *o = fopen(out, "wb");
    int rc = in && o ? 0 : -1;
    char chunk[65536];
    uint64_t at = 0;
    size_t n;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, in)) > 0) {
        for (size_t i = 0; i < n; i++)
            if (at + i >= g.data_offset)
                chunk[i] = (char)0xFF;
        if (fwrite(chunk, 1, n, o) != n)
            rc = -1;
        at += n;
    }
    if (in)
        fclose(in);
    if (o && fclose(o) != 0)
        rc = -1;
    return rc;
}

/* A damaged twin of g_tmp/file served as "damaged": writes
 * g_tmp/damaged-file (tensor data all 0xFF) and puts "damaged=PATH" in
 * arg. */
static inline int damaged_model(const char *file, char *arg, size_t n)
{
    char src[600], bad[620];
    snprintf(src, sizeof src, "%s/%s", g_tmp, file);
    snprintf(bad, sizeof bad, "%s/damaged-%s", g_tmp, file);
    snprintf(arg, n, "damaged=%s", bad);
    return damaged_copy(src, bad);
}

#endif
