/*
 * client.c: libcurl wrappers for the CLI; see client.h.
 */
#include "cli/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"

const char *client_default_url(void)
{
    const char *u = getenv("HEARTH_URL");
    return u && *u ? u : "http://127.0.0.1:8321";
}

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    buf *b = ud;
    if (buf_append(b, p, sz * n) < 0)
        return 0;           /* over the cap: abort the transfer */
    return sz * n;
}

static void describe(CURLcode rc, const char *url, char *err, size_t el)
{
    if (rc == CURLE_COULDNT_CONNECT)
        snprintf(err, el,
                 "cannot reach hearthd at %s (is it running? start it with: "
                 "hearthd --model NAME=FILE.gguf)", url);
    else
        snprintf(err, el, "request to %s failed: %s", url, curl_easy_strerror(rc));
}

/* The Authorization header from $HEARTH_API_KEY, appended to h. */
static struct curl_slist *with_key(struct curl_slist *h)
{
    const char *k = getenv("HEARTH_API_KEY");
    if (!k || !*k || strlen(k) > 256)
        return h;
    char line[300];
    snprintf(line, sizeof line, "Authorization: Bearer %s", k);
    struct curl_slist *n = curl_slist_append(h, line);
    explicit_bzero(line, sizeof line);
    return n ? n : h;
}

static CURL *make(const char *url, const char *body, struct curl_slist **hdrs)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hearth-cli/" HEARTH_VERSION);
    *hdrs = with_key(NULL);
    if (body) {
        *hdrs = curl_slist_append(*hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (*hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    return c;
}

int client_request(const char *url, const char *body, buf *out, long *status, char *err,
                   size_t el)
{
    return client_call(NULL, url, body, out, status, err, el);
}

int client_call(const char *method, const char *url, const char *body, buf *out, long *status,
                char *err, size_t el)
{
    struct curl_slist *h = NULL;
    CURL *c = make(url, body, &h);
    if (!c) {
        snprintf(err, el, "cannot initialise libcurl");
        return -1;
    }
    if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    out->cap = CLIENT_MAX_BODY;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    else
        describe(rc, url, err, el);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return rc == CURLE_OK ? 0 : -1;
}

struct sse {
    CURL *c;
    client_event_fn fn;
    void *ud;
    buf line;
    buf *errbody;
    long status;
    int stopped;
};

static size_t on_sse(char *p, size_t sz, size_t n, void *ud)
{
    struct sse *s = ud;
    size_t len = sz * n;
    if (!s->status)
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status < 200 || s->status >= 300)
        return buf_append(s->errbody, p, len) < 0 ? 0 : len;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') {
            if (buf_putc(&s->line, p[i]) < 0)
                return 0;
            continue;
        }
        const char *l = s->line.data ? s->line.data : "";
        size_t ll = s->line.len;
        if (ll && l[ll - 1] == '\r')
            ll--;
        if (ll >= 5 && strncmp(l, "data:", 5) == 0) {
            size_t off = l[5] == ' ' ? 6 : 5;
            if (s->fn(s->ud, l + off, ll - off)) {
                s->stopped = 1;
                return 0;
            }
        }
        buf_reset(&s->line);
    }
    return len;
}

int client_stream(const char *url, const char *body, client_event_fn fn, void *ud, long *status,
                  buf *errbody, char *err, size_t el)
{
    struct curl_slist *h = NULL;
    CURL *c = make(url, body, &h);
    if (!c) {
        snprintf(err, el, "cannot initialise libcurl");
        return -1;
    }
    struct sse s = { .c = c, .fn = fn, .ud = ud, .line = buf_make(1u << 20), .errbody = errbody };
    errbody->cap = CLIENT_MAX_BODY;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && s.stopped)) {
        describe(rc, url, err, el);
        ret = -1;
    }
    if (!s.status)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s.status);
    *status = s.status;
    buf_free(&s.line);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return ret;
}

struct progress {
    bool on;
    double t0;
    const char *name;
};

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct progress *p = ud;
    (void)dltotal;
    (void)dlnow;
    if (!p->on)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (!p->t0)
        p->t0 = now;
    if (ultotal > 0 && ulnow < ultotal)
        fprintf(stderr, "\r%s: uploading %3d%%   ", p->name, (int)(100 * ulnow / ultotal));
    else
        fprintf(stderr, "\r%s: working... %.0f s   ", p->name, now - p->t0);
    return 0;
}

int client_upload(const char *url, const char *file_path, const char *const *fields, bool progress,
                  buf *out, long *status, char *err, size_t el)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, el, "cannot initialise libcurl");
        return -1;
    }
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "file");
    if (curl_mime_filedata(part, file_path) != CURLE_OK) {
        snprintf(err, el, "cannot read %s", file_path);
        curl_mime_free(mime);
        curl_easy_cleanup(c);
        return -1;
    }
    for (int i = 0; fields && fields[i]; i += 2) {
        part = curl_mime_addpart(mime);
        curl_mime_name(part, fields[i]);
        curl_mime_data(part, fields[i + 1], CURL_ZERO_TERMINATED);
    }
    const char *slash = strrchr(file_path, '/');
    struct progress pr = { progress, 0, slash ? slash + 1 : file_path };
    out->cap = CLIENT_MAX_BODY;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    struct curl_slist *hdrs = with_key(NULL);
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &pr);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(c);
    if (progress)
        fprintf(stderr, "\r%*s\r", 60, "");
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    else
        describe(rc, url, err, el);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    return rc == CURLE_OK ? 0 : -1;
}
