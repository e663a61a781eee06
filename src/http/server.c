/*
 * server.c: libmicrohttpd set-up, routing, request bodies with a cap, the
 * request id, and the shared reply helpers.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "http/audit.h"
#include "http/auth.h"
#include "http/metrics.h"
#include "http/upload.h"
#include "index/indexer.h"
#include "queue/runner.h"
#include "sched/job.h"

struct http_server {
    struct MHD_Daemon *d;
    _Atomic(const config *) cfg;
    sched *s;
    atomic_int active;
    atomic_bool draining;
    int port;
    _Atomic(audit *) audit;     /* NULL while the audit log is off */
    pthread_mutex_t audit_mu;   /* opening it at a reload */
    char data_dir[512];         /* as started: a reload's data dir applies at restart */
    runner *jobs;               /* the batch queue, NULL when it could not open */
    char jobs_err[300];         /* why not */
    indexer *index;             /* the retrieval index, likewise */
    char index_err[300];
};

enum { R_NONE, R_HEALTH, R_MODELS, R_MODEL, R_MODEL_ACTION, R_STATUS, R_CHAT, R_COMPLETIONS,
       R_EMBEDDINGS, R_TRANSCRIBE, R_TRANSLATE, R_OCR, R_METRICS, R_JOBS_SUBMIT, R_JOBS_LIST,
       R_JOB, R_JOB_ACTION, R_JOB_DELETE, R_INDEX, R_INDEX_FOLDERS, R_INDEX_RESCAN,
       R_INDEX_DOCS, R_INDEX_CHECK, R_SEARCH, R_ASK };

/* What each route is, and the scopes a key needs for it (all of them; 0:
 * any key). SCOPE_ADMIN_ONLY is held by admin keys alone. */
static const struct route {
    const char *method, *path;
    int id;
    bool prefix;
    unsigned needs;
} routes[] = {
    { "GET", "/health", R_HEALTH, false, 0 },
    { "GET", "/v1/models", R_MODELS, false, 0 },
    { "GET", "/v1/models/", R_MODEL, true, 0 },
    { "POST", "/v1/models/", R_MODEL_ACTION, true, SCOPE_ADMIN_ONLY },
    { "GET", "/v1/status", R_STATUS, false, SCOPE_MONITOR },
    { "POST", "/v1/chat/completions", R_CHAT, false, SCOPE_INFER },
    { "POST", "/v1/completions", R_COMPLETIONS, false, SCOPE_INFER },
    { "POST", "/v1/embeddings", R_EMBEDDINGS, false, SCOPE_INFER },
    { "POST", "/v1/audio/transcriptions", R_TRANSCRIBE, false, SCOPE_INFER },
    { "POST", "/v1/audio/translations", R_TRANSLATE, false, SCOPE_INFER },
    { "POST", "/v1/ocr", R_OCR, false, SCOPE_INFER },
    { "GET", "/metrics", R_METRICS, false, SCOPE_MONITOR },
    { "POST", "/v1/jobs", R_JOBS_SUBMIT, false, SCOPE_JOBS },
    { "GET", "/v1/jobs", R_JOBS_LIST, false, SCOPE_JOBS },
    { "GET", "/v1/jobs/", R_JOB, true, SCOPE_JOBS },
    { "POST", "/v1/jobs/", R_JOB_ACTION, true, SCOPE_JOBS },
    { "DELETE", "/v1/jobs/", R_JOB_DELETE, true, SCOPE_JOBS },
    { "GET", "/v1/index", R_INDEX, false, SCOPE_SEARCH },
    { "POST", "/v1/index/folders", R_INDEX_FOLDERS, false, SCOPE_ADMIN_ONLY },
    { "DELETE", "/v1/index/folders", R_INDEX_FOLDERS, false, SCOPE_ADMIN_ONLY },
    { "POST", "/v1/index/rescan", R_INDEX_RESCAN, false, SCOPE_ADMIN_ONLY },
    { "GET", "/v1/index/documents", R_INDEX_DOCS, false, SCOPE_SEARCH },
    { "GET", "/v1/index/check", R_INDEX_CHECK, false, SCOPE_MONITOR },
    { "POST", "/v1/search", R_SEARCH, false, SCOPE_SEARCH },
    { "POST", "/v1/ask", R_ASK, false, SCOPE_SEARCH | SCOPE_INFER },
};

/* A route's name in the metrics: its path, with {name} for the model. */
static const char *route_name(int id)
{
    switch (id) {
    case R_MODEL: return "/v1/models/{name}";
    case R_MODEL_ACTION: return "/v1/models/{name}/{action}";
    case R_JOB: case R_JOB_DELETE: return "/v1/jobs/{id}";
    case R_JOB_ACTION: return "/v1/jobs/{id}/{action}";
    case R_NONE: return "other";
    default: break;
    }
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (routes[i].id == id)
            return routes[i].path;
    return "other";
}

const char *http_error_type(unsigned status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void http_error_json(buf *b, const char *type, const char *param, const char *code,
                     const char *msg)
{
    buf_puts(b, "{\"error\":{\"message\":");
    jw_cstr(b, msg);
    buf_puts(b, ",\"type\":");
    jw_cstr(b, type);
    buf_puts(b, ",\"param\":");
    jw_cstr(b, param && *param ? param : NULL);
    buf_puts(b, ",\"code\":");
    jw_cstr(b, code && *code ? code : NULL);
    buf_puts(b, "}}");
}

void http_add_common_headers(http_req *r, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Request-Id", r->rid);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
}

/* A response holding b's bytes (b is left empty), with its Content-Type and
 * the common headers; NULL when out of memory. */
static struct MHD_Response *response_of(http_req *r, const char *ctype, buf *b)
{
    size_t len;
    char *data = buf_detach(b, &len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    http_add_common_headers(r, resp);
    return resp;
}

int http_reply_body(http_req *r, unsigned status, const char *ctype, buf *b)
{
    struct MHD_Response *resp = response_of(r, ctype, b);
    if (!resp)
        return MHD_NO;
    int rc = http_queue(r, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static int queue_json(http_req *r, unsigned status, buf *b, int retry_after)
{
    struct MHD_Response *resp = response_of(r, "application/json", b);
    if (!resp)
        return MHD_NO;
    if (status == 405 && r->allow[0])
        MHD_add_response_header(resp, "Allow", r->allow);
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    int rc = http_queue(r, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

int http_queue(http_req *r, unsigned status, struct MHD_Response *resp)
{
    int rc = MHD_queue_response(r->conn, status, resp);
    if (rc == MHD_YES)
        r->status = status;
    return rc;
}

int http_reply_json(http_req *r, unsigned status, buf *b)
{
    return queue_json(r, status, b, 0);
}

int http_reply_error(http_req *r, unsigned status, const char *type, const char *param,
                     const char *code, const char *msg, int retry_after)
{
    buf b = buf_make(0);
    http_error_json(&b, type ? type : http_error_type(status), param, code, msg);
    log_info("%s %s -> %u %s", r->method, r->url, status, msg);
    return queue_json(r, status, &b, retry_after);
}

int http_conn_fd(http_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

bool http_client_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void make_rid(http_req *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (h) {
        size_t l = strlen(h);
        bool ok = l > 0 && l < sizeof r->rid;
        for (size_t i = 0; ok && i < l; i++)
            ok = (h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
                 (h[i] >= '0' && h[i] <= '9') || h[i] == '-' || h[i] == '_' || h[i] == '.';
        if (ok) {
            snprintf(r->rid, sizeof r->rid, "%s", h);
            return;
        }
    }
    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
        memset(rnd, 0, sizeof rnd);
    snprintf(r->rid, sizeof r->rid, "req_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
}

/* The route for method and url; R_NONE with *path_known when the path
 * exists for other methods, which are listed in allow (for a 405). *label
 * is the route the metrics count the request under: the one returned, or
 * for a 405 the path's first. */
static int route_of(const char *method, const char *url, bool *path_known, int *label,
                    char *allow, size_t al)
{
    *path_known = false;
    *label = R_NONE;
    allow[0] = '\0';
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        const struct route *rt = &routes[i];
        bool match = rt->prefix ? strncmp(url, rt->path, strlen(rt->path)) == 0 &&
                                      url[strlen(rt->path)] != '\0'
                                : strcmp(url, rt->path) == 0;
        if (!match)
            continue;
        *path_known = true;
        if (*label == R_NONE)
            *label = rt->id;
        if (strcmp(method, rt->method) == 0)
            return *label = rt->id;
        if (!strstr(allow, rt->method)) {
            size_t n = strlen(allow);
            snprintf(allow + n, al - n, "%s%s", n ? ", " : "", rt->method);
        }
    }
    return R_NONE;
}

static const char *rate_period_name(double s)
{
    return s >= 3600 ? "hour" : s >= 60 ? "minute" : "second";
}

/* The scopes a route needs (the same for each of its methods). */
static unsigned route_needs(int id)
{
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (routes[i].id == id)
            return routes[i].needs;
    return 0;
}

/* Routes whose body is a multipart upload streamed to a file (OCR takes
 * JSON too). */
static bool uploads(int route, bool multipart)
{
    return route == R_TRANSCRIBE || route == R_TRANSLATE || route == R_JOBS_SUBMIT ||
           (route == R_OCR && multipart);
}

static enum MHD_Result dispatch(http_req *r)
{
    switch (r->route) {
    case R_HEALTH: return (enum MHD_Result)http_health(r);
    case R_MODELS: return (enum MHD_Result)http_models(r);
    case R_MODEL: return (enum MHD_Result)http_model_get(r, r->url + strlen("/v1/models/"));
    case R_MODEL_ACTION:
        return (enum MHD_Result)http_model_action(r, r->url + strlen("/v1/models/"));
    case R_STATUS: return (enum MHD_Result)http_status(r);
    case R_CHAT: return (enum MHD_Result)http_chat(r);
    case R_COMPLETIONS: return (enum MHD_Result)http_completions(r);
    case R_EMBEDDINGS: return (enum MHD_Result)http_embeddings(r);
    case R_TRANSCRIBE: return (enum MHD_Result)http_transcriptions(r, false);
    case R_TRANSLATE: return (enum MHD_Result)http_transcriptions(r, true);
    case R_OCR: return (enum MHD_Result)http_ocr(r);
    case R_METRICS: return (enum MHD_Result)http_metrics(r);
    case R_JOBS_SUBMIT: return (enum MHD_Result)http_jobs_submit(r);
    case R_JOBS_LIST: return (enum MHD_Result)http_jobs_list(r);
    case R_JOB: return (enum MHD_Result)http_job_get(r, r->url + strlen("/v1/jobs/"));
    case R_JOB_ACTION: return (enum MHD_Result)http_job_action(r, r->url + strlen("/v1/jobs/"));
    case R_JOB_DELETE: return (enum MHD_Result)http_job_delete(r, r->url + strlen("/v1/jobs/"));
    case R_INDEX: return (enum MHD_Result)http_index_status(r);
    case R_INDEX_FOLDERS: return (enum MHD_Result)http_index_folders(r);
    case R_INDEX_RESCAN: return (enum MHD_Result)http_index_rescan(r);
    case R_INDEX_DOCS: return (enum MHD_Result)http_index_documents(r);
    case R_INDEX_CHECK: return (enum MHD_Result)http_index_check(r);
    case R_SEARCH: return (enum MHD_Result)http_search(r);
    case R_ASK: return (enum MHD_Result)http_ask(r);
    }
    return MHD_NO;
}

/* A connection that has not sent a whole request's headers (or sits idle
 * between keep-alive requests) is closed after this many seconds, at most
 * --timeout: every local client shares one address, so a few dozen
 * half-open connections would otherwise lock the others out for the whole
 * --timeout. Once a request arrives its connection gets --timeout. */
#define HEADER_TIMEOUT_S 15

static unsigned header_timeout(const config *cfg)
{
    return cfg->timeout > 0 && cfg->timeout < HEADER_TIMEOUT_S ? (unsigned)cfg->timeout
                                                              : HEADER_TIMEOUT_S;
}

static enum MHD_Result count_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    (void)value;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        ++*(int *)cls;
    return MHD_YES;
}

/* The client's address as text ("?" when unknown). */
static void client_address(struct MHD_Connection *conn, char *out, size_t n)
{
    snprintf(out, n, "?");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)n);
}

/* At most REFUSALS_LOGGED refused requests a second reach the log (a
 * client guessing keys must not flood it); the rest are counted, and the
 * count is logged with the next one that gets through. */
#define REFUSALS_LOGGED 5

static bool refusal_may_log(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static time_t second;
    static int logged;
    static long suppressed;
    time_t now = time(NULL);
    bool ok;
    pthread_mutex_lock(&mu);
    if (now != second) {
        if (suppressed)
            log_warn("%ld more requests refused for their API key", suppressed);
        second = now;
        logged = 0;
        suppressed = 0;
    }
    ok = logged < REFUSALS_LOGGED;
    if (ok)
        logged++;
    else
        suppressed++;
    pthread_mutex_unlock(&mu);
    return ok;
}

/* A request has ended: its audit line and its counts in the metrics. */
static void finish_request(http_server *srv, const http_req *r,
                           enum MHD_RequestTerminationCode toe)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double ms = ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 - r->t0) * 1e3;
    job_status st = { .phase = JOB_QUEUED };
    if (r->job)
        job_peek(r->job, &st);
    bool ran = st.phase == JOB_DONE;
    metrics_request(route_name(r->route_label), r->status, ms / 1e3, ran ? r->model : NULL,
                    st.prompt_tokens, st.cached_tokens, st.completion_tokens,
                    (st.prompt_ms + st.gen_ms) / 1e3);
    audit *a = atomic_load(&srv->audit);
    if (!a || !r->cfg->audit_log)
        return;
    const char *outcome = "error";
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK: outcome = "ok"; break;
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
    case MHD_REQUEST_TERMINATED_READ_ERROR: outcome = "client_gone"; break;
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: outcome = "timeout"; break;
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: outcome = "shutdown"; break;
    default: break;
    }
    /* the client left first: its job was cancelled, or the connection broke
     * while the job still ran (a stream's send failed; the stream's own
     * cleanup cancels the job only after this) */
    if (st.cancelled || (toe == MHD_REQUEST_TERMINATED_WITH_ERROR && r->job &&
                         st.phase != JOB_DONE && st.phase != JOB_FAILED))
        outcome = "client_gone";
    audit_entry e = {
        .wall = r->wall, .rid = r->rid, .client = r->client, .key = r->key_name,
        .method = r->seen_method, .path = r->seen_path, .model = r->model[0] ? r->model : NULL,
        .status = r->status, .outcome = outcome, .ms = ms, .bytes_in = r->bytes_in,
        .tokens_in = ran ? st.prompt_tokens : -1, .tokens_cached = st.cached_tokens,
        .tokens_out = st.completion_tokens, .compute_ms = st.prompt_ms + st.gen_ms,
    };
    audit_write(a, &e);
}

/* Opens the audit log when the config asks for it and it is not open. */
static void audit_follow(http_server *h, const config *cfg)
{
    if (!cfg->audit_log)
        return;
    pthread_mutex_lock(&h->audit_mu);
    if (!atomic_load(&h->audit)) {
        char err[400];
        audit *a = audit_open(h->data_dir, AUDIT_MAX_BYTES, err, sizeof err);
        if (a)
            atomic_store(&h->audit, a);
        if (!a || err[0])
            log_error("%s; requests go unrecorded until it can be written",
                      a ? err : "audit log: out of memory");
    }
    pthread_mutex_unlock(&h->audit_mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    http_server *srv = cls;
    (void)version;
    http_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->srv = srv;
        r->sched = srv->s;
        r->cfg = atomic_load(&srv->cfg);
        r->conn = conn;
        r->key_scopes = SCOPE_ADMIN;        /* unless a key says otherwise */
        r->method = method;
        r->url = url;
        snprintf(r->seen_method, sizeof r->seen_method, "%s", method);
        snprintf(r->seen_path, sizeof r->seen_path, "%s", url);
        client_address(conn, r->client, sizeof r->client);
        r->body = buf_make(r->cfg->max_body);
        r->first = true;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r->wall = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r->t0 = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
        atomic_fetch_add(&srv->active, 1);
        make_rid(r);
        log_set_rid(r->rid);
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)r->cfg->timeout);
        /* two lengths would let a body carry a second request past us */
        int lengths = 0;
        MHD_get_connection_values(conn, MHD_HEADER_KIND, count_length, &lengths);
        if (lengths > 1)
            return (enum MHD_Result)http_reply_error(r, 400, NULL, NULL, "invalid_request",
                                                     "More than one Content-Length header", 0);
        /* the route first, for the metrics' label; acted on after the key */
        bool known;
        r->route = route_of(method, url, &known, &r->route_label, r->allow, sizeof r->allow);
        /* with API keys, nothing but the health check without one */
        int hit = -1;           /* the key's index in the config */
        if (r->cfg->napi_keys && !(strcmp(method, "GET") == 0 && strcmp(url, "/health") == 0)) {
            const char *az = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_AUTHORIZATION);
            const char *xk = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Api-Key");
            time_t now = time(NULL);
            int wait = auth_blocked(r->client, (long long)now);
            if (wait > 0)
                return (enum MHD_Result)http_reply_error(
                    r, 429, NULL, NULL, "too_many_failed_attempts",
                    "Too many requests with a wrong API key from this address; try again later",
                    wait);
            if (!auth_allows(r->cfg, az, xk, &r->key_name, &r->key_scopes, &hit)) {
                auth_failed(r->client, (long long)now);
                if (refusal_may_log())
                    log_warn("refused %s %s from %s: %s API key", method, url, r->client,
                             az || xk ? "wrong" : "no");
                return (enum MHD_Result)http_reply_error(
                    r, 401, "invalid_request_error", NULL, "invalid_api_key",
                    az || xk ? "Incorrect API key provided"
                             : "This server needs an API key: send 'Authorization: Bearer KEY'",
                    0);
            }
        }
        unsigned needs = route_needs(r->route);
        if (r->route != R_NONE && (r->key_scopes & needs) != needs) {
            char want[SCOPE_NAMES_MAX], msg[200];
            config_scopes_str(needs & ~r->key_scopes, want, sizeof want);
            if (strcmp(want, "") == 0 || (needs & SCOPE_ADMIN_ONLY))
                snprintf(want, sizeof want, "admin");
            snprintf(msg, sizeof msg, "The API key '%s' may not %s %s: it needs the scope '%s'",
                     r->key_name ? r->key_name : "", method, route_name(r->route_label), want);
            return (enum MHD_Result)http_reply_error(r, 403, "invalid_request_error", NULL,
                                                     "insufficient_permissions", msg, 0);
        }
        /* a key's rate: refused requests do not count */
        r->key_folders = hit >= 0 ? r->cfg->api_key_folders[hit] : NULL;
        if (hit >= 0 && r->cfg->api_key_rate_n[hit] > 0) {
            double now = clock_mono_s();
            int wait = auth_rate_take(r->key_name, r->cfg->api_key_rate_n[hit],
                                      r->cfg->api_key_rate_per_s[hit], now);
            if (wait > 0) {
                char msg[200];
                snprintf(msg, sizeof msg, "Rate limit reached for the API key '%s': %.0f "
                         "requests per %s; try again in %d s", r->key_name,
                         r->cfg->api_key_rate_n[hit],
                         rate_period_name(r->cfg->api_key_rate_n[hit] /
                                          r->cfg->api_key_rate_per_s[hit]), wait);
                return (enum MHD_Result)http_reply_error(r, 429, "requests", NULL,
                                                         "rate_limit_exceeded", msg, wait);
            }
        }
        if (r->route == R_NONE) {
            if (known)
                return (enum MHD_Result)http_reply_error(r, 405, NULL, NULL, "method_not_allowed",
                                                         "Method not allowed for this path", 0);
            return (enum MHD_Result)http_reply_error(r, 404, NULL, NULL, "unknown_url",
                                                     "Unknown request URL", 0);
        }
        if (atomic_load(&srv->draining) && r->route != R_HEALTH)
            return (enum MHD_Result)http_reply_error(r, 503, NULL, NULL, "shutting_down",
                                                     "hearthd is shutting down", 5);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_CONTENT_TYPE);
        bool multipart = ctype && strncasecmp(ctype, "multipart/", 10) == 0;
        if (uploads(r->route, multipart)) {
            /* the file part may be max-upload; the other fields are small */
            size_t cap = r->cfg->max_upload + UPLOAD_MAX_FIELDS * (size_t)UPLOAD_FIELD_MAX;
            if (cl && strtoull(cl, NULL, 10) > cap) {
                char msg[128];
                snprintf(msg, sizeof msg, "Upload too large (limit %zu bytes)", r->cfg->max_upload);
                return (enum MHD_Result)http_reply_error(r, 413, NULL, "file",
                                                         "request_too_large", msg, 0);
            }
            char tmpdir[600];     /* the data dir as started (a reload's applies at restart) */
            snprintf(tmpdir, sizeof tmpdir, "%s/tmp", http_data_dir(r));
            r->up = upload_begin(r, tmpdir, r->cfg->max_upload, r->upload_err,
                                 sizeof r->upload_err, &r->upload_status);
            return MHD_YES;     /* the handler reports a failed begin */
        }
        if (cl && strtoull(cl, NULL, 10) > r->cfg->max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "Request body too large (limit %zu bytes)",
                     r->cfg->max_body);
            return (enum MHD_Result)http_reply_error(r, 413, NULL, NULL, "request_too_large",
                                                     msg, 0);
        }
        return MHD_YES;
    }
    log_set_rid(r->rid);
    r->bytes_in += *upload_size;
    if (*upload_size && uploads(r->route, r->up || r->upload_err[0])) {
        if (r->up)
            upload_feed(r->up, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && buf_append(&r->body, upload, *upload_size) < 0) {
            r->too_large = true;
            buf_free(&r->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "Request body too large (limit %zu bytes)", r->cfg->max_body);
        return (enum MHD_Result)http_reply_error(r, 413, NULL, NULL, "request_too_large", msg, 0);
    }
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    http_req *r = *con_cls;
    if (!r)
        return;
    finish_request(srv, r, toe);
    job_unref(r->job);
    /* idle until the next request on this connection: the short timeout */
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, header_timeout(r->cfg));
    buf_free(&r->body);
    upload_free(r->up);     /* removes the temp file */
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->active, 1);
    log_set_rid(NULL);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_debug("mhd: %s", msg);
}


static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes a path or query value in place, as libmicrohttpd would,
 * except %00: a NUL would cut the string short, so "/v1/models/a%00b"
 * would name model "a". It stays as the three characters "%00" instead. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *p = s; *p; p++) {
        int hi, lo;
        if (*p == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi << 4 | lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}
/* Loud when the daemon answers beyond this machine without keys. */
static void warn_if_open(const config *cfg)
{
    const char *h = cfg->listen_host;
    bool loopback = strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 ||
                    strcmp(h, "::1") == 0;
    if (!loopback && cfg->napi_keys == 0)
        log_warn("listening on %s without API keys: anyone who can reach this address can "
                 "use every model (set api-key-file)", *h ? h : "every address");
}

const char *http_data_dir(const http_req *r)
{
    return r->srv->data_dir;
}

runner *http_jobs(http_req *r, const char **why)
{
    *why = r->srv->jobs_err;
    return r->srv->jobs;
}

const json *http_json_body(http_req *r, arena *a, int *ret)
{
    if (!a) {
        *ret = http_reply_error(r, 500, NULL, NULL, "out_of_memory", "out of memory", 0);
        return NULL;
    }
    char perr[96];
    const json *o = json_parse(a, r->body.data ? r->body.data : "", r->body.len, perr,
                               sizeof perr);
    if (!o || o->type != JSON_OBJECT) {
        char msg[160];
        snprintf(msg, sizeof msg, "We could not parse the JSON body of your request (%s)",
                 o ? "not an object" : perr);
        *ret = http_reply_error(r, 400, NULL, NULL, "invalid_json", msg, 0);
        return NULL;
    }
    return o;
}

indexer *http_index(http_req *r, const char **why)
{
    *why = r->srv->index_err;
    return r->srv->index;
}

http_server *http_start(const config *cfg, sched *s, const http_services *svc, char *err,
                        size_t el)
{
    http_server *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, el, "out of memory");
        return NULL;
    }
    atomic_store(&h->cfg, cfg);
    h->s = s;
    h->jobs = svc->jobs;
    snprintf(h->jobs_err, sizeof h->jobs_err, "batch jobs are not available: %s",
             svc->jobs_err && *svc->jobs_err ? svc->jobs_err : "see hearthd's log");
    h->index = svc->index;
    snprintf(h->index_err, sizeof h->index_err, "the search index is not available: %s",
             svc->index_err && *svc->index_err ? svc->index_err : "see hearthd's log");
    pthread_mutex_init(&h->audit_mu, NULL);
    snprintf(h->data_dir, sizeof h->data_dir, "%s", cfg->data_dir);
    audit_follow(h, cfg);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_PASSIVE };
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    const char *host = cfg->listen_host;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (getaddrinfo(*host ? host : NULL, port, &hints, &ai) != 0 || !ai) {
        snprintf(err, el, "listen: '%s' is not a numeric IP address", cfg->listen_host);
        http_stop(h);
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, header_timeout(cfg),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        snprintf(err, el, "cannot listen on %s:%d (address in use or not permitted?)",
                 cfg->listen_host, cfg->listen_port);
        http_stop(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->listen_port;
    warn_if_open(cfg);
    return h;
}

int http_port(const http_server *h)
{
    return h->port;
}

void http_set_config(http_server *h, const config *cfg)
{
    audit_follow(h, cfg);
    atomic_store(&h->cfg, cfg);
    warn_if_open(cfg);
}

void http_drain(http_server *h)
{
    atomic_store(&h->draining, true);
}

int http_active(const http_server *h)
{
    return atomic_load(&h->active);
}

void http_stop(http_server *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    audit_close(atomic_load(&h->audit));
    pthread_mutex_destroy(&h->audit_mu);
    free(h);
}
