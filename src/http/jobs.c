/*
 * jobs.c: batch jobs over HTTP: the durable queue of queue/runner.h.
 *
 *   POST   /v1/jobs               multipart: type (transcription, translation
 *                                 or ocr), file, and the fields of the
 *                                 matching endpoint; 202 with the job once
 *                                 its file and row are on disk
 *   GET    /v1/jobs               the newest first: ?status=S&limit=N&before=ID
 *   GET    /v1/jobs/{id}          one job (status, attempts, error, place
 *                                 in the queue)
 *   GET    /v1/jobs/{id}/result   a completed job's answer, the same body
 *                                 the synchronous endpoint would have sent
 *   POST   /v1/jobs/{id}/cancel   a queued or running job stops
 *   POST   /v1/jobs/{id}/retry    a failed, dead or cancelled job runs again
 *   DELETE /v1/jobs/{id}          a job that is not running, with its input
 *                                 and result
 *
 * Ids are "job_N"; the bare number is accepted too. With API keys, a job
 * belongs to the key that added it: a key without the admin scope sees and
 * acts on its own jobs only (another key's are 404, as if they did not
 * exist), and idempotency keys are each key's own.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "http/http.h"
#include "http/upload.h"
#include "queue/runner.h"

#define LIST_MAX 100

/* a key's whole name is a job's owner: two names must never be cut alike */
_Static_assert(BJOB_OWNER_MAX >= API_KEY_NAME_MAX, "job owners hold API key names");
#define DISK_RESERVE (64ull << 20)      /* free space a new job must leave */

static void put_time(buf *b, const char *key, double t)
{
    buf_printf(b, ",\"%s\":", key);
    if (t > 0)
        buf_printf(b, "%lld", (long long)t);
    else
        buf_puts(b, "null");
}

/* The owner whose jobs this request may see: NULL for every job (no API
 * keys, or an admin key). */
static const char *visible_owner(const http_req *r)
{
    return r->key_name && !(r->key_scopes & SCOPE_ADMIN_ONLY) ? r->key_name : NULL;
}

/* Whether job id exists for this request: 1, 0 (none, or another key's), -1. */
static int may_see(http_req *r, store *st, int64_t id)
{
    const char *owner = visible_owner(r);
    bjob j;
    int rc = store_get(st, id, &j);
    if (rc == 1) {
        if (owner && strcmp(j.owner, owner) != 0)
            rc = 0;
        bjob_free(&j);
    }
    return rc;
}

static void job_json(buf *b, const bjob *j, double now)
{
    buf_printf(b, "{\"id\":\"job_%lld\",\"object\":\"job\",\"type\":", (long long)j->id);
    jw_cstr(b, j->kind);
    buf_puts(b, ",\"model\":");
    jw_cstr(b, j->model);
    buf_puts(b, ",\"status\":");
    jw_cstr(b, bjob_status_name(j->status));
    buf_puts(b, ",\"owner\":");
    if (j->owner[0])
        jw_cstr(b, j->owner);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"response_format\":");
    jw_cstr(b, j->format);
    buf_puts(b, ",\"file\":{\"name\":");
    jw_cstr(b, j->input_name);
    buf_printf(b, ",\"bytes\":%lld}", (long long)j->input_bytes);
    buf_printf(b, ",\"attempts\":%d,\"max_attempts\":%d", j->attempts, j->max_attempts);
    put_time(b, "created_at", j->created);
    put_time(b, "started_at", j->started);
    put_time(b, "finished_at", j->status == BJ_QUEUED || j->status == BJ_RUNNING ? 0 : j->finished);
    if (j->status == BJ_QUEUED) {
        put_time(b, "next_attempt_at", j->next_run);
        buf_printf(b, ",\"queue_position\":%lld", (long long)j->position);
    }
    if (j->status == BJ_RUNNING)
        buf_printf(b, ",\"running_for_s\":%.1f,\"progress\":%.3f",
                   now - j->started > 0 ? now - j->started : 0, j->progress);
    if (j->status == BJ_COMPLETED)
        buf_printf(b, ",\"result_bytes\":%lld", (long long)j->result_bytes);
    buf_puts(b, ",\"error\":");
    if (j->error_code[0] || j->error[0]) {
        buf_puts(b, "{\"code\":");
        jw_cstr(b, j->error_code);
        buf_puts(b, ",\"message\":");
        jw_cstr(b, j->error);
        buf_putc(b, '}');
    } else {
        buf_puts(b, "null");
    }
    buf_putc(b, '}');
}

/* The queue, or the 503 that says why there is none. */
static runner *queue_of(http_req *r, int *ret)
{
    const char *why = NULL;
    runner *q = http_jobs(r, &why);
    if (!q)
        *ret = http_reply_error(r, 503, NULL, NULL, "jobs_unavailable",
                                why && *why ? why : "batch jobs are not available", 0);
    return q;
}

static int reply_job(http_req *r, unsigned status, store *st, int64_t id)
{
    bjob j;
    int rc = store_get(st, id, &j);
    if (rc <= 0 && status == 202) {     /* committed all the same: never an error for it */
        buf b = buf_make(0);
        buf_printf(&b, "{\"id\":\"job_%lld\",\"object\":\"job\",\"status\":\"queued\"}",
                   (long long)id);
        return http_reply_json(r, 202, &b);
    }
    if (rc <= 0)
        return http_reply_error(r, rc == 0 ? 404 : 500, NULL, NULL,
                                rc == 0 ? "job_not_found" : "job_store_failed",
                                rc == 0 ? "No such job" : "the job store cannot be read", 0);
    buf b = buf_make(0);
    job_json(&b, &j, clock_wall_s());
    bjob_free(&j);
    return http_reply_json(r, status, &b);
}

/* A model of the kind a job needs: 0, else the error queued in *ret. */
static int check_model(http_req *r, const char *model, model_kind want, int *ret)
{
    model_info mi;
    char msg[200];
    if (!http_model_find(r, model, &mi)) {
        snprintf(msg, sizeof msg, "The model '%s' does not exist", model);
        *ret = http_reply_error(r, 404, NULL, "model", "model_not_found", msg, 0);
        return -1;
    }
    if (mi.kind == want)
        return 0;
    snprintf(msg, sizeof msg, "model '%s' serves %s, not %s", model, model_kind_name(mi.kind),
             model_kind_name(want));
    *ret = http_reply_error(r, 400, NULL, "model", "wrong_model_kind", msg, 0);
    return -1;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if (*s < '!' || *s > '~')
            return false;
    return true;
}

static int submit(http_req *r)
{
    int ret = MHD_NO;
    runner *q = queue_of(r, &ret);
    if (!q)
        return ret;
    if (upload_refused(r, &ret))
        return ret;
    const char *type = upload_field(r->up, "type");
    bool audio = type && (!strcmp(type, "transcription") || !strcmp(type, "translation"));
    if (!type || !*type)
        return http_reply_error(r, 400, NULL, "type", "missing_required_parameter",
                                "Missing required parameter: 'type' (transcription, translation "
                                "or ocr)", 0);
    if (!audio && strcmp(type, "ocr"))
        return http_reply_error(r, 400, NULL, "type", "invalid_value",
                                "type must be transcription, translation or ocr", 0);
    if (!upload_file_path(r->up))
        return http_reply_error(r, 400, NULL, "file", "missing_required_parameter",
                                "Missing required parameter: 'file'", 0);
    /* a client that did not hear back may send the same job again: with
     * the same Idempotency-Key it gets the first one, not a second */
    const char *idem = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (idem && (!*idem || strlen(idem) > 128 || !printable(idem)))
        return http_reply_error(r, 400, NULL, "Idempotency-Key", "invalid_value",
                                "Idempotency-Key must be 1 to 128 printable characters", 0);
    if (idem) {
        int64_t had = store_find_idem(runner_store(q), r->key_name, idem);
        if (had > 0)
            return reply_job(r, 200, runner_store(q), had);
    }
    const char *attempts_s = upload_field(r->up, "max_attempts");
    int attempts = r->cfg->job_attempts;
    if (attempts_s && *attempts_s) {
        char *end;
        long v = strtol(attempts_s, &end, 10);
        if (*end || v < 1 || v > 100)
            return http_reply_error(r, 400, NULL, "max_attempts", "invalid_value",
                                    "max_attempts must be 1 to 100", 0);
        attempts = (int)v;
    }

    bjob j = { 0 };
    buf opts = buf_make(0);    /* its fields are capped by the upload */
    http_bad e = { 0 };
    const char *model = NULL, *format = "json";
    int rc;
    if (audio) {
        audio_form f;
        rc = audio_options(r->up, !strcmp(type, "translation"), &opts, &f, &e);
        model = f.model;
        format = f.format;
    } else {
        rc = ocr_options(r->up, &opts, &model, &e);
    }
    if (rc < 0) {
        buf_free(&opts);
        return e.code ? http_reply_error(r, 400, NULL, e.param, e.code, e.msg, 0)
                      : http_reply_error(r, 500, NULL, NULL, "out_of_memory", "out of memory", 0);
    }
    snprintf(r->model, sizeof r->model, "%s", model);
    if (check_model(r, model, audio ? MODEL_KIND_TRANSCRIPTION : MODEL_KIND_OCR, &ret) < 0)
        goto out;

    store *st = runner_store(q);
    struct statvfs vfs;
    if (statvfs(runner_dir(q), &vfs) == 0 &&
        (unsigned long long)vfs.f_bavail * vfs.f_frsize < DISK_RESERVE) {
        ret = http_reply_error(r, 507, NULL, NULL, "insufficient_storage",
                               "the data dir's disk is nearly full; no job was stored", 0);
        goto out;
    }

    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd) {
        ret = http_reply_error(r, 500, NULL, NULL, "upload_failed", "no randomness for a name", 0);
        goto out;
    }
    snprintf(j.input, sizeof j.input, "in-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    char dest[800];
    snprintf(dest, sizeof dest, "%s/%s", runner_dir(q), j.input);
    j.input_bytes = (int64_t)upload_file_size(r->up);
    if (upload_keep_file(r->up, dest) < 0) {
        log_error("cannot store a job's input as %s: %s", dest, strerror(errno));
        ret = http_reply_error(r, 500, NULL, NULL, "upload_failed",
                               "the file could not be stored", 0);
        goto out;
    }
    snprintf(j.kind, sizeof j.kind, "%s", type);
    snprintf(j.model, sizeof j.model, "%s", model);
    snprintf(j.format, sizeof j.format, "%s", format);
    snprintf(j.input_name, sizeof j.input_name, "%s", upload_file_name(r->up));
    j.options = opts.data ? opts.data : (char *)"{}";
    j.max_attempts = attempts;
    if (idem)
        snprintf(j.idem, sizeof j.idem, "%s", idem);
    if (r->key_name)
        snprintf(j.owner, sizeof j.owner, "%s", r->key_name);
    char err[300];
    int64_t id = store_add(st, &j, clock_wall_s(), r->cfg->max_jobs, err, sizeof err);
    if (id == STORE_DUPLICATE) {    /* the same key, sent twice at once */
        unlink(dest);
        int64_t had = store_find_idem(st, r->key_name, idem);
        ret = had > 0 ? reply_job(r, 200, st, had)
                      : http_reply_error(r, 500, NULL, NULL, "job_store_failed",
                                         "the job store cannot be read", 0);
        goto out;
    }
    if (id == STORE_FULL) {     /* counted in the same transaction that adds */
        unlink(dest);
        char msg[160];
        snprintf(msg, sizeof msg, "%d batch jobs are waiting or running (max-jobs); try again "
                 "once some are done", r->cfg->max_jobs);
        ret = http_reply_error(r, 429, NULL, NULL, "too_many_jobs", msg, 30);
        goto out;
    }
    if (id < 0) {
        unlink(dest);
        log_error("cannot add a batch job: %s", err);
        ret = http_reply_error(r, 500, NULL, NULL, "job_store_failed",
                               "the job could not be stored", 0);
        goto out;
    }
    log_info("batch job job_%lld queued: %s of %lld bytes with %s", (long long)id, type,
             (long long)j.input_bytes, model);
    runner_wake(q);
    ret = reply_job(r, 202, st, id);
out:
    buf_free(&opts);
    return ret;
}

int http_jobs_submit(http_req *r)
{
    int ret = submit(r);
    upload_release_file(r->up);
    return ret;
}

/* "job_17" or "17" at the start of s; the rest after it in *rest. */
static int64_t parse_id(const char *s, const char **rest)
{
    if (!strncmp(s, "job_", 4))
        s += 4;
    int64_t id = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 18) {
        id = id * 10 + (*s++ - '0');
        digits++;
    }
    *rest = s;
    return digits && id > 0 ? id : -1;
}

static const char *query(http_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

int http_jobs_list(http_req *r)
{
    int ret = MHD_NO;
    runner *q = queue_of(r, &ret);
    if (!q)
        return ret;
    const char *sv = query(r, "status"), *lv = query(r, "limit"), *bv = query(r, "before");
    int status = -1, limit = 20;
    int64_t before = 0;
    if (sv && *sv && (status = bjob_status_of(sv)) < 0)
        return http_reply_error(r, 400, NULL, "status", "invalid_value",
                                "status must be queued, running, completed, failed, dead or "
                                "cancelled", 0);
    if (lv && *lv) {
        char *end;
        long v = strtol(lv, &end, 10);
        if (*end || v < 1 || v > LIST_MAX)
            return http_reply_error(r, 400, NULL, "limit", "invalid_value",
                                    "limit must be 1 to 100", 0);
        limit = (int)v;
    }
    const char *rest;
    if (bv && *bv && ((before = parse_id(bv, &rest)) < 0 || *rest))
        return http_reply_error(r, 400, NULL, "before", "invalid_value",
                                "before must be a job id", 0);
    store *st = runner_store(q);
    bjob *jobs = calloc(LIST_MAX + 1, sizeof *jobs);
    int64_t counts[BJ_NSTATUS];
    const char *owner = visible_owner(r);
    int n = jobs ? store_list(st, owner, status, before, jobs, limit + 1) : -1;
    if (n < 0 || store_counts(st, owner, counts) < 0) {
        for (int i = 0; i < n; i++)
            bjob_free(&jobs[i]);
        free(jobs);
        return http_reply_error(r, 500, NULL, NULL, "job_store_failed",
                                "the job store cannot be read", 0);
    }
    double now = clock_wall_s();
    buf b = buf_make(0);
    buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < n && i < limit; i++) {
        if (i)
            buf_putc(&b, ',');
        job_json(&b, &jobs[i], now);
    }
    buf_printf(&b, "],\"has_more\":%s,\"counts\":{", n > limit ? "true" : "false");
    for (int s = 0; s < BJ_NSTATUS; s++)
        buf_printf(&b, "%s\"%s\":%lld", s ? "," : "", bjob_status_name((bjob_status)s),
                   (long long)counts[s]);
    buf_puts(&b, "}}");
    for (int i = 0; i < n; i++)
        bjob_free(&jobs[i]);
    free(jobs);
    return http_reply_json(r, 200, &b);
}

static int not_found(http_req *r)
{
    return http_reply_error(r, 404, NULL, NULL, "job_not_found", "No such job", 0);
}

/* The answer when may_see() gave 0 or -1. */
static int unseen(http_req *r, int seen)
{
    return seen == 0 ? not_found(r)
                     : http_reply_error(r, 500, NULL, NULL, "job_store_failed",
                                        "the job store cannot be read", 0);
}

/* The queue and the job id at the start of a path's rest ("job_7/result"):
 * NULL with the error queued in *ret (no queue), else *id (-1 when the
 * rest names no job) and *tail, what follows the id. */
static runner *job_target(http_req *r, const char *rest, int64_t *id, const char **tail,
                          int *ret)
{
    runner *q = queue_of(r, ret);
    if (q)
        *id = parse_id(rest, tail);
    return q;
}

/* A completed job's answer, rendered as its endpoint would have. */
static int result(http_req *r, store *st, int64_t id)
{
    bjob j;
    int rc = store_get(st, id, &j);
    if (rc <= 0)
        return rc == 0 ? not_found(r)
                       : http_reply_error(r, 500, NULL, NULL, "job_store_failed",
                                          "the job store cannot be read", 0);
    if (j.status != BJ_COMPLETED) {
        char msg[160];
        snprintf(msg, sizeof msg, "job_%lld is %s; a result exists once it is completed",
                 (long long)id, bjob_status_name(j.status));
        bjob_free(&j);
        return http_reply_error(r, 409, NULL, NULL, "job_not_completed", msg, 0);
    }
    buf doc = buf_make(0), b = buf_make(0);
    arena *a = NULL;
    int ret;
    if (store_result(st, id, &doc) != 1) {
        ret = http_reply_error(r, 500, NULL, NULL, "job_store_failed",
                               "the job's result cannot be read", 0);
        goto out;
    }
    if (!strcmp(j.kind, "ocr")) {
        ocr_render(&b, j.model, doc.data ? doc.data : "", doc.len);
        ret = http_reply_json(r, 200, &b);
        goto out;
    }
    a = arena_new(doc.len * 16 + (1u << 20) + strlen(j.options) * 4);
    char perr[64];
    const json *res = a ? json_parse(a, doc.data ? doc.data : "", doc.len, perr, sizeof perr)
                        : NULL;
    const json *opts = a ? json_parse(a, j.options, strlen(j.options), perr, sizeof perr) : NULL;
    if (!res || res->type != JSON_OBJECT) {
        ret = http_reply_error(r, 500, NULL, NULL, "bad_worker_output",
                               "the stored transcript is malformed", 0);
        goto out;
    }
    const json *w = json_get(opts, "words");
    const char *ctype;
    audio_render(&b, &ctype, j.format, res, w && w->type == JSON_BOOL && w->boolean);
    ret = http_reply_body(r, 200, ctype, &b);
out:
    arena_free(a);
    buf_free(&doc);
    buf_free(&b);
    bjob_free(&j);
    return ret;
}

int http_job_get(http_req *r, const char *rest)
{
    int ret = MHD_NO;
    const char *tail;
    int64_t id;
    runner *q = job_target(r, rest, &id, &tail, &ret);
    if (!q)
        return ret;
    int seen = id < 0 ? 0 : may_see(r, runner_store(q), id);
    if (seen <= 0)
        return unseen(r, seen);
    if (!*tail)
        return reply_job(r, 200, runner_store(q), id);
    if (!strcmp(tail, "/result"))
        return result(r, runner_store(q), id);
    return http_reply_error(r, 404, NULL, NULL, "unknown_url", "Unknown request URL", 0);
}

static int conflict(http_req *r, int64_t id, int status, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof msg, "job_%lld is %s; %s", (long long)id,
             bjob_status_name((bjob_status)status), what);
    return http_reply_error(r, 409, NULL, NULL, "job_state_conflict", msg, 0);
}

int http_job_action(http_req *r, const char *rest)
{
    int ret = MHD_NO;
    const char *tail;
    int64_t id;
    runner *q = job_target(r, rest, &id, &tail, &ret);
    if (!q)
        return ret;
    store *st = runner_store(q);
    bool cancel = !strcmp(tail, "/cancel"), retry = !strcmp(tail, "/retry");
    if (id < 0 || (!cancel && !retry))
        return http_reply_error(r, 404, NULL, NULL, "unknown_url",
                                "Unknown request URL: use /v1/jobs/{id}/cancel or /retry", 0);
    int seen = may_see(r, st, id);
    if (seen <= 0)
        return unseen(r, seen);
    int was = cancel ? store_cancel(st, id, clock_wall_s()) : store_retry(st, id, clock_wall_s());
    if (was == STORE_NOT_FOUND)
        return not_found(r);
    if (was < 0)
        return http_reply_error(r, 500, NULL, NULL, "job_store_failed",
                                "the job store cannot be written", 0);
    if (cancel && was == BJ_RUNNING) {
        runner_cancel(q, id);       /* the runner records it once the worker lets go */
        for (int i = 0; i < 100; i++) {
            bjob j;
            if (store_get(st, id, &j) == 1) {
                bool still = j.status == BJ_RUNNING;
                bjob_free(&j);
                if (!still)
                    break;
            }
            usleep(20000);
        }
    } else if (cancel && was != BJ_QUEUED) {
        return conflict(r, id, was, "only a queued or running job can be cancelled");
    } else if (retry && was != BJ_FAILED && was != BJ_DEAD && was != BJ_CANCELLED) {
        return conflict(r, id, was, "only a failed, dead or cancelled job can be retried");
    }
    if (retry) {
        log_info("batch job job_%lld queued again", (long long)id);
        runner_wake(q);
    }
    return reply_job(r, 200, st, id);
}

int http_job_delete(http_req *r, const char *rest)
{
    int ret = MHD_NO;
    const char *tail;
    int64_t id;
    runner *q = job_target(r, rest, &id, &tail, &ret);
    if (!q)
        return ret;
    int seen = id < 0 || *tail ? 0 : may_see(r, runner_store(q), id);
    if (seen <= 0)
        return unseen(r, seen);
    char input[BJOB_INPUT_MAX + 1];
    int was = store_delete(runner_store(q), id, input);
    if (was == STORE_NOT_FOUND)
        return not_found(r);
    if (was < 0)
        return http_reply_error(r, 500, NULL, NULL, "job_store_failed",
                                "the job store cannot be written", 0);
    if (was == BJ_RUNNING)
        return conflict(r, id, was, "cancel it first");
    if (input[0]) {
        char p[800];
        snprintf(p, sizeof p, "%s/%s", runner_dir(q), input);
        if (unlink(p) < 0 && errno != ENOENT)
            log_warn("cannot delete %s: %s", p, strerror(errno));
    }
    buf b = buf_make(0);
    buf_printf(&b, "{\"id\":\"job_%lld\",\"object\":\"job.deleted\",\"deleted\":true}",
               (long long)id);
    return http_reply_json(r, 200, &b);
}

void http_jobs_counts(http_req *r, buf *b, bool prometheus)
{
    const char *why;
    runner *q = http_jobs(r, &why);
    int64_t counts[BJ_NSTATUS];
    bool ok = q && store_counts(runner_store(q), NULL, counts) == 0;
    if (prometheus) {
        buf_printf(b, "# HELP hearth_jobs_available 1 while the batch job store is usable.\n"
                      "# TYPE hearth_jobs_available gauge\nhearth_jobs_available %d\n", ok);
        if (!ok)
            return;
        buf_puts(b, "# HELP hearth_jobs Batch jobs, by status.\n# TYPE hearth_jobs gauge\n");
        for (int s = 0; s < BJ_NSTATUS; s++)
            buf_printf(b, "hearth_jobs{status=\"%s\"} %lld\n", bjob_status_name((bjob_status)s),
                       (long long)counts[s]);
        return;
    }
    if (!ok) {
        buf_puts(b, "null");
        return;
    }
    buf_putc(b, '{');
    for (int s = 0; s < BJ_NSTATUS; s++)
        buf_printf(b, "%s\"%s\":%lld", s ? "," : "", bjob_status_name((bjob_status)s),
                   (long long)counts[s]);
    buf_putc(b, '}');
}
