/*
 * e2e_jobs.c: batch jobs (POST /v1/jobs ...) against the real daemon, the
 * real SQLite file and the real Tesseract and whisper workers:
 *
 *  - an OCR job's result equals the direct /v1/ocr answer; its input is
 *    deleted once done; a transcription job renders its response_format;
 *  - bad requests get OpenAI-shaped 4xx errors and store nothing;
 *  - a file the worker refuses fails at once (no retries), keeps its input,
 *    can be retried and deleted;
 *  - kill -9 of hearthd right after the 202s loses nothing; a job that was
 *    running when hearthd was killed runs again (its attempt counted), or
 *    is dead when that was its last attempt;
 *  - SIGTERM puts a running job back without counting the attempt;
 *  - a worker that crashes on every attempt makes the job dead (the dead
 *    letter), with the error kept;
 *  - a running job can be cancelled; the CLI adds, waits and prints.
 *
 * The long job is $HEARTH_TMP/many-pages.tif (sixteen scanned pages, ~10 s
 * of OCR here), so "running" lasts long enough to act on. See harness.h.
 */
#include "harness.h"

#include <dirent.h>
#include <stdarg.h>

static struct daemon J;
static char g_many[600], g_photo[600], g_whisper[700];

/* POST multipart/form-data to path: the file as part "file" (none when
 * NULL), one more header line (none when NULL), and the fields
 * (name, value, ..., NULL). */
static struct resp vform_post(struct daemon *d, const char *path, const char *header,
                              const char *file, va_list ap)
{
    struct resp r = { 0, buf_make(0), buf_make(0) };
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", d->port, path);
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part;
    if (file) {
        part = curl_mime_addpart(mime);
        curl_mime_name(part, "file");
        curl_mime_filedata(part, file);
    }
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        part = curl_mime_addpart(mime);
        curl_mime_name(part, k);
        curl_mime_data(part, v, CURL_ZERO_TERMINATED);
    }
    /* header: one or more lines, '\n' between them */
    struct curl_slist *h = NULL;
    for (const char *p = header; p && *p;) {
        char line[300];
        size_t l = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)l, p);
        h = curl_slist_append(h, line);
        p += l + (p[l] == '\n');
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    if (h)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    return r;
}

static struct resp form_post(struct daemon *d, const char *path, const char *header,
                             const char *file, ...)
{
    va_list ap;
    va_start(ap, file);
    struct resp r = vform_post(d, path, header, file, ap);
    va_end(ap);
    return r;
}

/* POST /v1/jobs with a file and fields (name, value, ..., NULL). */
static struct resp submit(struct daemon *d, const char *file, ...)
{
    va_list ap;
    va_start(ap, file);
    struct resp r = vform_post(d, "/v1/jobs", NULL, file, ap);
    va_end(ap);
    return r;
}

/* The id ("job_N") of a 202, copied into id; false otherwise. */
static bool accepted(struct resp *r, char *id, size_t n)
{
    arena *a = arena_new(0);
    const json *j = parse(a, &r->body);
    const char *s = str_at(j, "id");
    const char *st = str_at(j, "status");      /* a runner may have claimed it already */
    bool ok = r->status == 202 && s && !strncmp(s, "job_", 4) && st &&
              (!strcmp(st, "queued") || !strcmp(st, "running"));
    if (ok)
        snprintf(id, n, "%s", s);
    else
        fprintf(stderr, "  POST /v1/jobs: %ld %.300s\n", r->status, r->body.data ? r->body.data : "");
    arena_free(a);
    resp_free(r);
    return ok;
}

struct job_view {
    char status[16], error_code[48], error[400];
    int attempts;
    double progress;        /* -1 when absent */
};

static bool job_get(struct daemon *d, const char *id, struct job_view *v)
{
    char p[96];
    snprintf(p, sizeof p, "/v1/jobs/%s", id);
    struct resp r = http(d, "GET", p, NULL, 0);
    arena *a = arena_new(0);
    const json *j = r.status == 200 ? parse(a, &r.body) : NULL;
    memset(v, 0, sizeof *v);
    if (j) {
        snprintf(v->status, sizeof v->status, "%s", str_at(j, "status") ? str_at(j, "status") : "");
        v->attempts = (int)num_at(j, "attempts");
        v->progress = num_at(j, "progress");
        const char *ec = str_at(j, "error.code"), *em = str_at(j, "error.message");
        snprintf(v->error_code, sizeof v->error_code, "%s", ec ? ec : "");
        snprintf(v->error, sizeof v->error, "%s", em ? em : "");
    }
    arena_free(a);
    resp_free(&r);
    return j != NULL;
}

/* Poll until the job's status is one of want ("completed|failed"), up to
 * timeout_s; the last view in v. */
static bool wait_status(struct daemon *d, const char *id, const char *want, double timeout_s,
                        struct job_view *v)
{
    for (double t = 0; t <= timeout_s; t += 0.05) {
        if (job_get(d, id, v) && v->status[0]) {
            char pat[32];
            snprintf(pat, sizeof pat, "|%s|", v->status);
            char all[128];
            snprintf(all, sizeof all, "|%s|", want);
            if (strstr(all, pat))
                return true;
        }
        usleep(50000);
    }
    fprintf(stderr, "  %s: still %s after %.0f s (wanted %s)\n", id, v->status, timeout_s, want);
    return false;
}

/* The pid of the first model's worker once it is ready (0 when not). */
static int worker_pid(struct daemon *d)
{
    struct resp s = http(d, "GET", "/v1/status", NULL, 0);
    arena *a = arena_new(0);
    const json *sj = parse(a, &s.body);
    int pid = str_at(sj, "models.0.state") && !strcmp(str_at(sj, "models.0.state"), "ready")
                  ? (int)num_at(sj, "models.0.pid") : 0;
    arena_free(a);
    resp_free(&s);
    return pid;
}

static size_t files_in(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static char *field_of(const buf *b, const char *key)
{
    arena *a = arena_new(0);
    const char *s = str_at(parse(a, b), key);
    char *out = s ? strdup(s) : NULL;
    arena_free(a);
    return out;
}

/* ---- tests --------------------------------------------------------------- */

static void t_ocr_job_matches_direct(void)
{
    char id[32];
    CHECK(accepted((struct resp[]){ submit(&J, g_photo, "type", "ocr", NULL) }, id, sizeof id));
    struct job_view v;
    CHECK(wait_status(&J, id, "completed", 120, &v));
    CHECK(v.attempts == 1 && !v.error_code[0]);
    char p[96];
    snprintf(p, sizeof p, "/v1/jobs/%s/result", id);
    struct resp res = http(&J, "GET", p, NULL, 0);
    CHECK(res.status == 200);
    /* the same text as the synchronous endpoint's */
    struct resp direct = form_post(&J, "/v1/ocr", NULL, g_photo, NULL);
    char *a = field_of(&res.body, "text"), *b = field_of(&direct.body, "text");
    CHECK(direct.status == 200 && a && b && strlen(a) > 100 && !strcmp(a, b));
    CHECK(a && strstr(a, "quick brown dog"));
    free(a);
    free(b);
    resp_free(&direct);
    resp_free(&res);
    /* the listing holds it, with the client's file name and the counts */
    struct resp l = http(&J, "GET", "/v1/jobs?status=completed&limit=5", NULL, 0);
    arena *ar = arena_new(0);
    const json *lj = parse(ar, &l.body);
    CHECK(l.status == 200 && str_at(lj, "data.0.id") && !strcmp(str_at(lj, "data.0.id"), id));
    CHECK(str_at(lj, "data.0.file.name") && !strcmp(str_at(lj, "data.0.file.name"), "phototest.tif"));
    CHECK(num_at(lj, "counts.completed") >= 1);
    arena_free(ar);
    resp_free(&l);
    l = http(&J, "GET", "/metrics", NULL, 0);
    CHECK(l.status == 200 && l.body.data && strstr(l.body.data, "hearth_jobs_available 1") &&
          strstr(l.body.data, "hearth_jobs{status=\"completed\"} "));
    resp_free(&l);
    /* its input is gone once done */
    char dir[700];
    snprintf(dir, sizeof dir, "%s/jobs", J.dir);
    CHECK(files_in(dir) == 0);
    /* the database is private */
    char db[700];
    snprintf(db, sizeof db, "%s/jobs.db", J.dir);
    struct stat st;
    CHECK(stat(db, &st) == 0 && (st.st_mode & 077) == 0);
}

static void t_transcription_job_renders_format(void)
{
    char id[32];
    CHECK(accepted((struct resp[]){ submit(&J, g_whisper, "type", "transcription", "model", "wt",
                                           "response_format", "srt", NULL) },
                   id, sizeof id));
    struct job_view v;
    CHECK(wait_status(&J, id, "completed", 180, &v));
    char p[96];
    snprintf(p, sizeof p, "/v1/jobs/%s/result", id);
    struct resp res = http(&J, "GET", p, NULL, 0);
    CHECK(res.status == 200 && strstr(res.headers.data ? res.headers.data : "",
                                      "application/x-subrip"));
    CHECK(res.body.data && strstr(res.body.data, " --> "));
    resp_free(&res);
}

/* An OCR job of the photo sent with this header line. */
static struct resp keyed(const char *header)
{
    return form_post(&J, "/v1/jobs", header, g_photo, "type", "ocr", NULL);
}

/* The same Idempotency-Key twice: one job. */
static void t_idempotency_key(void)
{
    struct resp a = keyed("Idempotency-Key: scan-2026-11-26-0001");
    struct resp b = keyed("Idempotency-Key: scan-2026-11-26-0001");
    struct resp c = keyed("Idempotency-Key: scan-2026-11-26-0002");
    char *ia = field_of(&a.body, "id"), *ib = field_of(&b.body, "id"), *ic = field_of(&c.body, "id");
    CHECK(a.status == 202 && b.status == 200 && c.status == 202);
    CHECK(ia && ib && ic && !strcmp(ia, ib) && strcmp(ia, ic));
    struct job_view v;
    CHECK(ia && wait_status(&J, ia, "completed", 60, &v));
    CHECK(ic && wait_status(&J, ic, "completed", 60, &v));
    struct resp d = keyed("Idempotency-Key: has space");
    CHECK(answer_is_error(&d, 400, "invalid_value"));
    free(ia);
    free(ib);
    free(ic);
    resp_free(&a);
    resp_free(&b);
    resp_free(&c);
    resp_free(&d);
}

/* status of a request with header h (and no body) */
static long status_with(struct daemon *d, const char *h, const char *method, const char *path,
                        buf *body)
{
    struct resp r = http_full(d, method, path, NULL, h, NULL, 0);
    long st = r.status;
    if (body) {
        buf_free(body);
        *body = r.body;
        r.body = buf_make(0);
    }
    resp_free(&r);
    return st;
}

/* With API keys, a job is its key's: another key without the admin scope
 * cannot see, fetch, cancel or delete it (404, as if it did not exist),
 * lists and counts hold its own jobs, idempotency keys are per key; an
 * admin key sees every job with its owner. */
static void t_jobs_per_key(void)
{
    struct daemon K;
    char keys[600];
    snprintf(keys, sizeof keys, "%s/job-keys", g_tmp);
    FILE *f = fopen(keys, "w");
    if (f) {
        fputs("owner owner-key-00001\nalice alice-key-00002 jobs\n"
              "bob bob-key-0000003 jobs,infer\nkid kid-key-0000004 infer\n", f);
        fclose(f);
    }
    char *args[] = { "--api-key-file", keys, "--job-workers", "1", NULL };
    if (start_daemon(&K, "jobsKeys", args) < 0) {
        CHECK(0);
        return;
    }
    const char *A = "Authorization: Bearer alice-key-00002";
    const char *B = "Authorization: Bearer bob-key-0000003";
    const char *O = "Authorization: Bearer owner-key-00001";
    /* the same Idempotency-Key from two keys: two jobs; again from alice: hers */
    char ha[200], hb[200];
    snprintf(ha, sizeof ha, "%s\nIdempotency-Key: scan-0001", A);
    snprintf(hb, sizeof hb, "%s\nIdempotency-Key: scan-0001", B);
    struct resp ra = form_post(&K, "/v1/jobs", ha, g_many, "type", "ocr", NULL);
    char *ja = field_of(&ra.body, "id");
    CHECK(ra.status == 202 && ja);
    CHECK(ra.body.data && strstr(ra.body.data, "\"owner\":\"alice\""));
    resp_free(&ra);
    struct resp rb = form_post(&K, "/v1/jobs", hb, g_photo, "type", "ocr", NULL);
    char *jb = field_of(&rb.body, "id");
    CHECK(rb.status == 202 && jb && ja && strcmp(ja, jb));
    resp_free(&rb);
    ra = form_post(&K, "/v1/jobs", ha, g_many, "type", "ocr", NULL);     /* sent again */
    char *again = field_of(&ra.body, "id");
    CHECK(ra.status == 200 && again && ja && !strcmp(again, ja));
    free(again);
    resp_free(&ra);
    struct resp rk = form_post(&K, "/v1/jobs", "Authorization: Bearer kid-key-0000004", g_photo,
                               "type", "ocr", NULL);
    CHECK(answer_is_error(&rk, 403, "insufficient_permissions"));
    resp_free(&rk);
    if (!ja || !jb) {
        stop_daemon(&K);
        free(ja);
        free(jb);
        return;
    }
    char p[128];
    buf body = buf_make(0);
    /* alice sees hers, not bob's */
    CHECK(status_with(&K, A, "GET", "/v1/jobs", &body) == 200);
    CHECK(body.data && strstr(body.data, ja) && !strstr(body.data, jb));
    CHECK(body.data && !strstr(body.data, "\"owner\":\"bob\""));
    snprintf(p, sizeof p, "/v1/jobs/%s", jb);
    CHECK(status_with(&K, A, "GET", p, &body) == 404);
    CHECK(body.data && strstr(body.data, "job_not_found"));
    CHECK(status_with(&K, A, "DELETE", p, NULL) == 404);
    snprintf(p, sizeof p, "/v1/jobs/%s/result", jb);
    CHECK(status_with(&K, A, "GET", p, NULL) == 404);
    snprintf(p, sizeof p, "/v1/jobs/%s/cancel", jb);
    CHECK(status_with(&K, A, "POST", p, NULL) == 404);
    snprintf(p, sizeof p, "/v1/jobs/%s/retry", jb);
    CHECK(status_with(&K, A, "POST", p, NULL) == 404);
    /* bob likewise for alice's */
    snprintf(p, sizeof p, "/v1/jobs/%s", ja);
    CHECK(status_with(&K, B, "GET", p, NULL) == 404);
    snprintf(p, sizeof p, "/v1/jobs/%s/cancel", ja);
    CHECK(status_with(&K, B, "POST", p, NULL) == 404);
    /* counts are per key: bob has one job in all */
    CHECK(status_with(&K, B, "GET", "/v1/jobs", &body) == 200);
    arena *a = arena_new(0);
    const json *j = parse(a, &body);
    double total = 0;
    const char *names[] = { "queued", "running", "completed", "failed", "dead", "cancelled" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char k[40];
        snprintf(k, sizeof k, "counts.%s", names[i]);
        total += num_at(j, k);
    }
    CHECK(total == 1);
    arena_free(a);
    /* the admin key sees both, with their owners, and may cancel alice's */
    CHECK(status_with(&K, O, "GET", "/v1/jobs", &body) == 200);
    CHECK(body.data && strstr(body.data, ja) && strstr(body.data, jb));
    CHECK(body.data && strstr(body.data, "\"owner\":\"alice\"") &&
          strstr(body.data, "\"owner\":\"bob\""));
    snprintf(p, sizeof p, "/v1/jobs/%s/cancel", ja);
    long st = status_with(&K, O, "POST", p, &body);
    CHECK(st == 200 || st == 409);      /* 409: the 16 pages were done already */
    /* alice's own request works on her own job */
    snprintf(p, sizeof p, "/v1/jobs/%s", ja);
    CHECK(status_with(&K, A, "GET", p, &body) == 200);
    buf_free(&body);
    /* the CLI: the admin's list names each job's key, bob's holds his alone */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "HEARTH_API_KEY=owner-key-00001 '%s/hearth' --url "
             "http://127.0.0.1:%d jobs ls | grep -c '(key alice)\\|(key bob)' | grep -qx 2",
             g_build, K.port);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "out=$(HEARTH_API_KEY=bob-key-0000003 '%s/hearth' --url "
             "http://127.0.0.1:%d jobs ls) && echo \"$out\" | grep -q '(key bob)' && "
             "! echo \"$out\" | grep -q '(key alice)'", g_build, K.port);
    CHECK(system(cmd) == 0);
    CHECK(stop_daemon(&K) == 0);
    free(ja);
    free(jb);
}

static void t_bad_requests(void)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/jobs", J.dir);
    size_t before = files_in(dir);
    struct resp r = submit(&J, g_photo, NULL);
    CHECK(answer_is_error(&r, 400, "missing_required_parameter"));
    resp_free(&r);
    r = submit(&J, g_photo, "type", "summarise", NULL);
    CHECK(answer_is_error(&r, 400, "invalid_value"));
    resp_free(&r);
    r = submit(&J, NULL, "type", "ocr", NULL);
    CHECK(answer_is_error(&r, 400, "missing_required_parameter"));
    resp_free(&r);
    r = submit(&J, g_photo, "type", "ocr", "model", "nope", NULL);
    CHECK(answer_is_error(&r, 404, "model_not_found"));
    resp_free(&r);
    r = submit(&J, g_photo, "type", "transcription", "model", "ocr", NULL);
    CHECK(answer_is_error(&r, 400, "wrong_model_kind"));
    resp_free(&r);
    r = submit(&J, g_photo, "type", "transcription", "model", "wt", "response_format", "doc", NULL);
    CHECK(answer_is_error(&r, 400, "invalid_value"));
    resp_free(&r);
    r = submit(&J, g_photo, "type", "ocr", "max_attempts", "0", NULL);
    CHECK(answer_is_error(&r, 400, "invalid_value"));
    resp_free(&r);
    r = submit(&J, g_photo, "type", "ocr", "language", "../../etc", NULL);
    CHECK(answer_is_error(&r, 400, "invalid_value"));
    resp_free(&r);
    r = post(&J, "/v1/jobs", "{\"type\":\"ocr\"}");
    CHECK(answer_is_error(&r, 400, "invalid_multipart"));
    resp_free(&r);
    CHECK(files_in(dir) == before);       /* nothing stored */

    r = http(&J, "GET", "/v1/jobs/job_999999", NULL, 0);
    CHECK(answer_is_error(&r, 404, "job_not_found"));
    resp_free(&r);
    r = http(&J, "GET", "/v1/jobs/banana", NULL, 0);
    CHECK(answer_is_error(&r, 404, "job_not_found"));
    resp_free(&r);
    r = http(&J, "GET", "/v1/jobs/99999999999999999999999", NULL, 0);
    CHECK(r.status == 404);
    resp_free(&r);
    r = http(&J, "GET", "/v1/jobs?status=sleeping", NULL, 0);
    CHECK(answer_is_error(&r, 400, "invalid_value"));
    resp_free(&r);
    r = http(&J, "GET", "/v1/jobs?limit=100000", NULL, 0);
    CHECK(answer_is_error(&r, 400, "invalid_value"));
    resp_free(&r);
    r = post(&J, "/v1/jobs/job_1/explode", "{}");
    CHECK(r.status == 404);
    resp_free(&r);
    r = http(&J, "PUT", "/v1/jobs", "{}", 2);
    CHECK(answer_is_error(&r, 405, "method_not_allowed"));
    resp_free(&r);
    r = http(&J, "DELETE", "/v1/jobs/job_999999", NULL, 0);
    CHECK(answer_is_error(&r, 404, "job_not_found"));
    resp_free(&r);
}

static void t_refused_input_fails_once_and_can_retry(void)
{
    char junk[700];
    snprintf(junk, sizeof junk, "%s/not-an-image.png", g_tmp);
    FILE *f = fopen(junk, "w");
    if (f) {
        fputs("this is not a picture of anything\n", f);
        fclose(f);
    }
    char id[32];
    CHECK(accepted((struct resp[]){ submit(&J, junk, "type", "ocr", NULL) }, id, sizeof id));
    struct job_view v;
    CHECK(wait_status(&J, id, "failed|dead", 60, &v));
    CHECK(!strcmp(v.status, "failed") && v.attempts == 1 && v.error_code[0] && v.error[0]);
    char p[96], dir[700];
    snprintf(dir, sizeof dir, "%s/jobs", J.dir);
    CHECK(files_in(dir) == 1);            /* kept for a retry */
    snprintf(p, sizeof p, "/v1/jobs/%s/result", id);
    struct resp r = http(&J, "GET", p, NULL, 0);
    CHECK(answer_is_error(&r, 409, "job_not_completed"));
    resp_free(&r);
    snprintf(p, sizeof p, "/v1/jobs/%s/retry", id);
    r = post(&J, p, "{}");
    CHECK(r.status == 200 && strstr(r.body.data ? r.body.data : "", "\"queued\""));
    resp_free(&r);
    CHECK(wait_status(&J, id, "failed|dead", 60, &v));
    CHECK(!strcmp(v.status, "failed") && v.attempts == 1);
    snprintf(p, sizeof p, "/v1/jobs/%s/cancel", id);
    r = post(&J, p, "{}");
    CHECK(answer_is_error(&r, 409, "job_state_conflict"));
    resp_free(&r);
    snprintf(p, sizeof p, "/v1/jobs/%s", id);
    r = http(&J, "DELETE", p, NULL, 0);
    CHECK(r.status == 200 && strstr(r.body.data ? r.body.data : "", "\"deleted\":true"));
    resp_free(&r);
    CHECK(files_in(dir) == 0);
    r = http(&J, "GET", p, NULL, 0);
    CHECK(r.status == 404);
    resp_free(&r);
}

static void t_cancel_running(void)
{
    char id[32];
    CHECK(accepted((struct resp[]){ submit(&J, g_many, "type", "ocr", NULL) }, id, sizeof id));
    struct job_view v;
    CHECK(wait_status(&J, id, "running", 60, &v));
    /* the worker tells how many of the sixteen pages are done */
    double seen = 0;
    for (int i = 0; i < 600 && seen <= 0; i++) {
        if (job_get(&J, id, &v) && v.progress > 0)
            seen = v.progress;
        else
            usleep(50000);
    }
    CHECK(seen > 0 && seen < 1);
    char p[96];
    snprintf(p, sizeof p, "/v1/jobs/%s", id);
    struct resp r = http(&J, "DELETE", p, NULL, 0);
    CHECK(answer_is_error(&r, 409, "job_state_conflict"));      /* not while it runs */
    resp_free(&r);
    snprintf(p, sizeof p, "/v1/jobs/%s/cancel", id);
    r = post(&J, p, "{}");
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK(wait_status(&J, id, "cancelled", 30, &v));
    snprintf(p, sizeof p, "/v1/jobs/%s", id);
    r = http(&J, "DELETE", p, NULL, 0);
    CHECK(r.status == 200);
    resp_free(&r);
    /* the OCR model is free again for the next job */
    CHECK(accepted((struct resp[]){ submit(&J, g_photo, "type", "ocr", NULL) }, id, sizeof id));
    CHECK(wait_status(&J, id, "completed", 60, &v));
}

/* kill -9 right after the 202s, and again while a job runs. */
static void t_survives_kill9(void)
{
    struct daemon K;
    char *args[] = { NULL };
    if (start_daemon(&K, "jobsKill", args) < 0) {
        CHECK(false);
        return;
    }
    char ids[4][32], longid[32];
    bool ok = true;
    CHECK(accepted((struct resp[]){ submit(&K, g_many, "type", "ocr", NULL) }, longid,
                   sizeof longid));
    for (int i = 0; i < 4; i++)
        ok &= accepted((struct resp[]){ submit(&K, g_photo, "type", "ocr", NULL) }, ids[i],
                       sizeof ids[i]);
    CHECK(ok);
    struct job_view v;
    CHECK(wait_status(&K, longid, "running", 60, &v));
    kill(K.pid, SIGKILL);
    waitpid(K.pid, NULL, 0);
    K.pid = 0;
    if (start_daemon(&K, "jobsKill", args) < 0) {
        CHECK(false);
        return;
    }
    CHECK(log_holds(K.log, "were running when hearthd stopped; queued again", 10));
    for (int i = 0; i < 4; i++) {
        CHECK(wait_status(&K, ids[i], "completed", 180, &v));
        CHECK(v.attempts == 1);
    }
    CHECK(wait_status(&K, longid, "completed", 180, &v));
    CHECK(v.attempts == 2);                       /* the killed attempt counted */
    char p[96];
    snprintf(p, sizeof p, "/v1/jobs/%s/result", longid);
    struct resp r = http(&K, "GET", p, NULL, 0);
    CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "\"page\":16"));
    resp_free(&r);

    /* a job on its last attempt when hearthd dies is dead, not looping */
    CHECK(accepted((struct resp[]){ submit(&K, g_many, "type", "ocr", "max_attempts", "1", NULL) },
                   longid, sizeof longid));
    CHECK(wait_status(&K, longid, "running", 60, &v));
    kill(K.pid, SIGKILL);
    waitpid(K.pid, NULL, 0);
    K.pid = 0;
    if (start_daemon(&K, "jobsKill", args) < 0) {
        CHECK(false);
        return;
    }
    CHECK(job_get(&K, longid, &v));
    CHECK(!strcmp(v.status, "dead") && !strcmp(v.error_code, "interrupted"));
    char dir[700];
    snprintf(dir, sizeof dir, "%s/jobs", K.dir);
    CHECK(files_in(dir) == 1);                    /* the dead letter keeps its file */

    /* SIGTERM: the running job goes back without spending an attempt */
    snprintf(p, sizeof p, "/v1/jobs/%s/retry", longid);
    r = post(&K, p, "{}");
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK(wait_status(&K, longid, "running", 60, &v));
    CHECK(stop_daemon(&K) == 0);
    if (start_daemon(&K, "jobsKill", args) < 0) {
        CHECK(false);
        return;
    }
    CHECK(job_get(&K, longid, &v));
    CHECK((!strcmp(v.status, "queued") || !strcmp(v.status, "running")) && v.attempts <= 1);
    CHECK(wait_status(&K, longid, "completed", 180, &v));
    CHECK(v.attempts == 1);
    CHECK(stop_daemon(&K) == 0);
}

/* A worker that dies on every attempt: retried after the delay, then dead;
 * and an attempt past job-timeout. */
static void t_failing_attempts_are_dead_lettered(void)
{
    struct daemon C;
    char *args[] = { "--job-attempts", "2", "--job-retry-delay", "1", NULL };
    if (start_daemon(&C, "jobsCrash", args) < 0) {
        CHECK(false);
        return;
    }
    char id[32];
    CHECK(accepted((struct resp[]){ submit(&C, g_many, "type", "ocr", NULL) }, id, sizeof id));
    struct job_view v;
    for (int attempt = 1; attempt <= 2; attempt++) {
        /* wait for this attempt to be running in a worker, then kill it */
        int pid = 0;
        for (int i = 0; i < 1200 && pid <= 0; i++) {
            if (job_get(&C, id, &v) && !strcmp(v.status, "running") && v.attempts == attempt)
                pid = worker_pid(&C);
            if (pid <= 0)
                usleep(50000);
        }
        CHECK(pid > 0);
        if (pid > 0)
            kill(pid, SIGKILL);
        if (attempt == 1) {
            CHECK(wait_status(&C, id, "queued", 30, &v));
            CHECK(v.attempts == 1 && !strcmp(v.error_code, "worker_crashed"));
        }
    }
    CHECK(wait_status(&C, id, "dead", 60, &v));
    CHECK(v.attempts == 2 && !strcmp(v.error_code, "worker_crashed"));
    CHECK(log_holds(C.log, "is dead after 2 attempts", 5));
    /* hearthd and the model live on */
    CHECK(accepted((struct resp[]){ submit(&C, g_photo, "type", "ocr", NULL) }, id, sizeof id));
    CHECK(wait_status(&C, id, "completed", 60, &v));
    CHECK(stop_daemon(&C) == 0);

    /* an attempt that runs past job-timeout is stopped and counts */
    char *targs[] = { "--job-attempts", "1", "--job-timeout", "1", NULL };
    if (start_daemon(&C, "jobsTimeout", targs) < 0) {
        CHECK(false);
        return;
    }
    CHECK(accepted((struct resp[]){ submit(&C, g_many, "type", "ocr", NULL) }, id, sizeof id));
    CHECK(wait_status(&C, id, "dead", 60, &v));
    CHECK(v.attempts == 1 && !strcmp(v.error_code, "job_timeout"));

    /* a worker that hangs (stopped) is killed once it ignores the cancel:
     * it cannot hold the model, and the next request is served (a direct
     * one: a second job might not fit this daemon's one-second timeout on
     * a slow machine) */
    CHECK(accepted((struct resp[]){ submit(&C, g_many, "type", "ocr", NULL) }, id, sizeof id));
    CHECK(wait_status(&C, id, "running", 60, &v));
    int pid = 0;
    for (int i = 0; i < 200 && (pid = worker_pid(&C)) <= 0; i++)
        usleep(50000);
    CHECK(pid > 0);
    if (pid > 0)
        kill(pid, SIGSTOP);
    CHECK(wait_status(&C, id, "dead", 60, &v));
    CHECK(!strcmp(v.error_code, "job_timeout"));
    CHECK(log_holds(C.log, "did not stop when asked; killing its worker", 5));
    struct resp direct = form_post(&C, "/v1/ocr", NULL, g_photo, NULL);
    CHECK(direct.status == 200 && direct.body.data && strstr(direct.body.data, "quick brown"));
    resp_free(&direct);
    CHECK(stop_daemon(&C) == 0);
}

/* A damaged jobs.db is left alone; hearthd serves everything else and
 * says why there are no jobs. */
static void t_damaged_store_is_loud(void)
{
    struct daemon D;
    char dir[600], db[700];
    snprintf(dir, sizeof dir, "%s/jobsDamaged", g_tmp);
    mkdir(dir, 0700);
    snprintf(db, sizeof db, "%s/jobs.db", dir);
    const char junk[] = "SQLite format 3 is what this file claims, and it is wrong\n";
    FILE *f = fopen(db, "w");
    if (f) {
        for (int i = 0; i < 200; i++)
            fputs(junk, f);
        fclose(f);
    }
    struct stat before;
    CHECK(stat(db, &before) == 0);
    char *args[] = { NULL };
    if (start_daemon(&D, "jobsDamaged", args) < 0) {
        CHECK(false);
        return;
    }
    CHECK(healthy(&D));
    struct resp r = submit(&D, g_photo, "type", "ocr", NULL);
    CHECK(answer_is_error(&r, 503, "jobs_unavailable"));
    resp_free(&r);
    r = http(&D, "GET", "/v1/jobs", NULL, 0);
    CHECK(answer_is_error(&r, 503, "jobs_unavailable"));
    resp_free(&r);
    r = http(&D, "GET", "/metrics", NULL, 0);
    CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "hearth_jobs_available 0"));
    resp_free(&r);
    r = http(&D, "GET", "/v1/status", NULL, 0);
    CHECK(r.status == 200 && r.body.data && strstr(r.body.data, "\"jobs\":null"));
    resp_free(&r);
    CHECK(log_holds(D.log, "batch jobs are not available", 5));
    CHECK(stop_daemon(&D) == 0);
    struct stat after;
    CHECK(stat(db, &after) == 0 && after.st_size == before.st_size &&
          after.st_mtime == before.st_mtime);
}

/* A second hearthd on the same data dir refuses to start, and the first
 * one's running job is not disturbed. */
static void t_one_daemon_per_data_dir(void)
{
    char id[32];
    CHECK(accepted((struct resp[]){ submit(&J, g_many, "type", "ocr", NULL) }, id, sizeof id));
    struct job_view v;
    CHECK(wait_status(&J, id, "running", 60, &v));
    char exe[600], err[700];
    snprintf(exe, sizeof exe, "%s/hearthd", g_build);
    snprintf(err, sizeof err, "%s/second.log", g_tmp);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(err, "w", stderr);
        (void)f;
        execl(exe, exe, "--listen", "127.0.0.1:0", "--data-dir", J.dir, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    CHECK(log_holds(err, "another hearthd", 1));
    CHECK(job_get(&J, id, &v) && !strcmp(v.status, "running") && v.attempts == 1);
    char p[96];
    snprintf(p, sizeof p, "/v1/jobs/%s/cancel", id);
    struct resp r = post(&J, p, "{}");
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK(wait_status(&J, id, "cancelled", 30, &v));
    CHECK(v.attempts == 1);
}

static void t_cli(void)
{
    char cmd[2400], out[700];
    snprintf(out, sizeof out, "%s/cli-jobs.txt", g_tmp);
    snprintf(cmd, sizeof cmd,
             "HEARTH_URL=http://127.0.0.1:%d %s/hearth jobs add --wait %s %s > %s 2>&1", J.port,
             g_build, g_photo, g_photo, out);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(out, "r");
    char line[512];
    int queued = 0, done = 0;
    while (f && fgets(line, sizeof line, f)) {
        queued += !strncmp(line, "job_", 4) && strchr(line, '\t') != NULL;
        done += strstr(line, "2/2 done") != NULL;
    }
    if (f)
        fclose(f);
    CHECK(queued == 2 && done >= 1);
    snprintf(cmd, sizeof cmd, "HEARTH_URL=http://127.0.0.1:%d %s/hearth jobs ls > %s 2>&1",
             J.port, g_build, out);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "grep -q 'completed' %s && grep -q 'phototest.tif' %s", out, out);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd,
             "HEARTH_URL=http://127.0.0.1:%d %s/hearth jobs result job_999999 > %s 2>&1", J.port,
             g_build, out);
    CHECK(WEXITSTATUS(system(cmd)) == 1);
    snprintf(cmd, sizeof cmd, "%s/hearth jobs --help > %s 2>&1", g_build, out);
    CHECK(system(cmd) == 0);
    /* a folder: its images (in subfolders too) are queued, the rest skipped */
    snprintf(cmd, sizeof cmd,
             "set -e; d=%s/scans; rm -rf $d; mkdir -p $d/2025; cp %s $d/a.tif; "
             "cp %s/data/ocr/phototest-rotated-L.png $d/2025/b.png; echo notes > $d/c.txt; "
             "ln -s .. $d/2025/up; "
             "HEARTH_URL=http://127.0.0.1:%d %s/hearth jobs add --save $d > %s 2>&1",
             g_tmp, g_photo, g_shared, J.port, g_build, out);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd,
             "test $(grep -c '^job_[0-9]*\t.*\t' %s) = 2 && grep -q 'scans/2025/b.png' %s && "
             "grep -q 'skipped 1 file' %s && grep -q '2/2 done' %s", out, out, out, out);
    CHECK(system(cmd) == 0);
    /* --save wrote each text beside its scan */
    snprintf(cmd, sizeof cmd, "grep -q 'quick brown' %s/scans/a.tif.txt && "
             "grep -q 'quick brown' %s/scans/2025/b.png.txt", g_tmp, g_tmp);
    CHECK(system(cmd) == 0);
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
    snprintf(g_many, sizeof g_many, "%s/many-pages.tif", g_tmp);
    snprintf(g_photo, sizeof g_photo, "%s/data/ocr/phototest.tif", g_shared);
    snprintf(g_whisper, sizeof g_whisper, "%s/data/speech/jfk.wav", g_shared);
    char wt[700];
    snprintf(wt, sizeof wt, "wt=%s/whisper-tiny.bin", g_tmp);
    char *args[] = { "--model", wt, NULL };
    if (start_daemon(&J, "jobsJ", args) < 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    run("ocr_job_matches_direct", t_ocr_job_matches_direct);
    run("transcription_job_renders_format", t_transcription_job_renders_format);
    run("bad_requests", t_bad_requests);
    run("idempotency_key", t_idempotency_key);
    run("refused_input_fails_once_and_can_retry", t_refused_input_fails_once_and_can_retry);
    run("cancel_running", t_cancel_running);
    run("cli", t_cli);
    run("jobs_per_key", t_jobs_per_key);
    run("one_daemon_per_data_dir", t_one_daemon_per_data_dir);
    CHECK(stop_daemon(&J) == 0);
    run("survives_kill9", t_survives_kill9);
    run("failing_attempts_are_dead_lettered", t_failing_attempts_are_dead_lettered);
    run("damaged_store_is_loud", t_damaged_store_is_loud);
    printf("%d passed, %d failed\n", passed, failed);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
