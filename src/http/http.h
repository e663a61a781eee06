/*
 * http.h: hearthd's HTTP face (libmicrohttpd).
 *
 * Threading model: one thread per connection, capped by max-connections and
 * per-ip-connections. A streamed completion holds its connection for as long
 * as the model talks; a thread per connection lets the handler wait on its
 * job and poll the socket for a hang-up (so a client that goes away stops its
 * generation at once). MHD's thread-pool mode with suspended connections
 * cannot notice a hang-up while suspended, which is why it is not used.
 *
 * Handlers never run a model and never touch a model file: they validate,
 * hand a job to the scheduler and wait.
 */
#ifndef HEARTH_HTTP_H
#define HEARTH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "sched/sched.h"

struct MHD_Connection;
struct MHD_Response;
typedef struct http_server http_server;

/* What hearthd runs beside the models (kept by the caller): the batch
 * queue and the retrieval index, each NULL with the reason its endpoints
 * then answer 503 with. */
struct runner;
struct indexer;
typedef struct http_services {
    struct runner *jobs;
    const char *jobs_err;
    struct indexer *index;
    const char *index_err;
} http_services;
http_server *http_start(const config *cfg, sched *s, const http_services *svc, char *err,
                        size_t errlen);
/* The port actually bound (useful with port 0). */
int  http_port(const http_server *h);
/* Stop accepting; new requests get 503 while in-flight ones finish. */
void http_drain(http_server *h);
/* Use cfg for requests from now on (limits like max-body; the listen address
 * and connection limits stay as started). cfg must outlive the server. */
void http_set_config(http_server *h, const config *cfg);
int  http_active(const http_server *h);
void http_stop(http_server *h);

/* --- for endpoint files ------------------------------------------------- */

typedef struct http_req {
    http_server *srv;
    sched *sched;
    const config *cfg;
    struct MHD_Connection *conn;
    char rid[40];
    const char *method;
    const char *url;
    buf body;
    bool too_large;
    bool first;
    int route;
    struct upload *up;         /* multipart endpoints: the streamed upload */
    char upload_err[160];
    int upload_status;         /* with upload_err: 400 the client's fault, 500 ours */
    char allow[32];            /* a 405's Allow header: the path's methods */
    /* for the audit log */
    unsigned status;           /* of the response queued, 0 before */
    double wall, t0;           /* arrival: epoch seconds, monotonic seconds */
    const char *key_name;      /* the API key's name (in cfg), NULL without keys */
    unsigned key_scopes;       /* what it may do (SCOPE_*; all without keys) */
    const char *key_folders;   /* its search scope's folders (db.h's scope); NULL: all */
    char model[MODEL_NAME_MAX + 1];
    char seen_method[16];      /* copies: MHD's strings may not outlive the request */
    char seen_path[260];
    int route_label;           /* the path's route even for a 405, for the metrics */
    char client[64];           /* the client's address, "?" when unknown */
    uint64_t bytes_in;
    struct job *job;           /* a reference to the request's job, for its counts */
} http_req;

/* Queue resp with status (every response goes through here, so the audit
 * log knows the status). */
int http_queue(http_req *r, unsigned status, struct MHD_Response *resp);

/* Send a JSON body (takes the bytes of b; b is left empty). */
int http_reply_json(http_req *r, unsigned status, buf *b);
/* The same with another Content-Type (text, subtitles, metrics). */
int http_reply_body(http_req *r, unsigned status, const char *ctype, buf *b);
/* OpenAI error object: {"error":{"message","type","param","code"}}. param and
 * code may be NULL or "" (written as null). retry_after > 0 adds Retry-After;
 * a 405 carries r->allow as its Allow header. */
int http_reply_error(http_req *r, unsigned status, const char *type, const char *param,
                     const char *code, const char *msg, int retry_after);
/* Error type for a status: invalid_request_error, not_found_error, ... */
const char *http_error_type(unsigned status);
/* Append an OpenAI error object to b. */
void http_error_json(buf *b, const char *type, const char *param, const char *code,
                     const char *msg);
/* True when the client has closed its side of the connection. */
bool http_client_gone(int fd);
int  http_conn_fd(http_req *r);
void http_add_common_headers(http_req *r, struct MHD_Response *resp);

/* Wait for a job to start (until_done false) or finish, collecting its
 * output into text; false if the client hung up first (the job is then
 * cancelled). */
struct job;
struct job_status;
bool http_job_wait(http_req *r, struct job *j, bool until_done, buf *text, struct job_status *s);
/* The same, also taking the logprobs entries (job.h) into lp unless NULL. */
bool http_job_wait_lp(http_req *r, struct job *j, bool until_done, buf *text, buf *lp,
                      struct job_status *s);
/* The error response for a failed job. */
int  http_reply_job_failed(http_req *r, const struct job_status *s);
/* The error response for a refused sched_submit (its status, message, Retry-After). */
int  http_reply_submit_failed(http_req *r, int rc, const char *err, int retry);
/* A job for model carrying payload (detached from it). NULL when out of
 * memory, with the 500 queued and *ret holding the handler's return value. */
struct job *http_new_job(http_req *r, const char *model, int want_kind, buf *payload, int *ret);
/* Submit a job and wait for its whole output (in out). On any failure the
 * error response is already queued (or the client left) and *ret holds the
 * handler's return value; returns true when the job finished well. */
bool http_run_job(http_req *r, struct job *j, buf *out, struct job_status *st, int *ret);

/* Submit a generation job (made from g by http_new_job; the reference is
 * taken) and answer it as chat/completions does: the whole answer, or
 * server-sent events when g->stream. extra: more top-level members (JSON
 * text without braces, e.g. "\"citations\":[...]") for the answer, or for
 * the first streamed chunk; NULL for none. */
struct gen_request;
int http_generate(http_req *r, struct job *j, const struct gen_request *g, int kind,
                  const char *extra);

/* The request's body as a JSON object parsed into a (a's cap bounds it),
 * or NULL after replying: 400 invalid_json, or 500 when a is NULL. */
struct arena;
struct json;
const struct json *http_json_body(http_req *r, struct arena *a, int *ret);

/* A request's field that is wrong: the 400's param, code and message
 * (static strings). */
typedef struct http_bad {
    const char *param, *code, *msg;
} http_bad;

/* The transcription form (POST /v1/audio/..., and batch jobs): the
 * worker request's fields in opts (a JSON object, without the path), and
 * what rendering the answer needs. -1 with e set (or e->code NULL when out
 * of memory). Strings point into the upload. */
struct upload;
typedef struct audio_form {
    const char *model, *format;
    bool words;
} audio_form;
int  audio_options(const struct upload *u, bool translate, buf *opts, audio_form *f, http_bad *e);
/* The worker's transcript (parsed) as response format fmt: json, text,
 * srt, vtt or verbose_json; out gets the body, *ctype its Content-Type. */
struct json;
void audio_render(buf *out, const char **ctype, const char *fmt, const struct json *res, bool words);
/* The OCR form's fields (model, default "ocr"; language), likewise; and
 * the language alone; and /v1/ocr's answer from the worker's document. */
int  ocr_options(const struct upload *u, buf *opts, const char **model, http_bad *e);
int  ocr_fields(buf *opts, const char *lang, http_bad *e);
int  ocr_render(buf *out, const char *model, const char *doc, size_t n);

/* endpoints */
int http_health(http_req *r);
int http_models(http_req *r);
int http_model_get(http_req *r, const char *name);
int http_model_action(http_req *r, const char *rest);
int http_status(http_req *r);
int http_metrics(http_req *r);
int http_chat(http_req *r);
int http_embeddings(http_req *r);
int http_transcriptions(http_req *r, bool translate);
int http_ocr(http_req *r);
int http_completions(http_req *r);
int http_jobs_submit(http_req *r);
int http_jobs_list(http_req *r);
int http_job_get(http_req *r, const char *rest);
int http_job_action(http_req *r, const char *rest);
int http_job_delete(http_req *r, const char *rest);
/* The configured model called name, into *mi: false when there is none. */
bool http_model_find(http_req *r, const char *name, model_info *mi);
/* The data dir as hearthd started (a reload's applies at the next start). */
const char *http_data_dir(const http_req *r);
/* Batch jobs per status: a JSON object (null without a queue), or the
 * hearth_jobs gauge in Prometheus' text format. */
void http_jobs_counts(http_req *r, buf *b, bool prometheus);
/* The batch queue, or NULL with *why the message for a 503. */
struct runner *http_jobs(http_req *r, const char **why);
/* The retrieval index, likewise. */
struct indexer *http_index(http_req *r, const char **why);

/* the retrieval index (index.c) */
int http_index_status(http_req *r);
int http_index_folders(http_req *r);        /* POST add, DELETE ?path= remove */
int http_index_rescan(http_req *r);
int http_index_documents(http_req *r);
int http_index_check(http_req *r);
int http_search(http_req *r);
int http_ask(http_req *r);
/* Documents per state and chunks: a JSON object (null without an index),
 * or hearth_index_* gauges in Prometheus' text format. */
void http_index_counts(http_req *r, buf *b, bool prometheus);

#endif
