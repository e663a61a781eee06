/*
 * ocr.c: POST /v1/ocr, hearth's own endpoint for text from scans, photos of
 * receipts and PDFs.
 *
 * Either multipart/form-data (the document in "file"; optional "language"
 * and "model") or JSON {"file": "<base64>", "language": "eng", "model":
 * "ocr"}. The document is written to a private temp file (never under a name
 * from the request), recognised by the OCR worker, and the answer is
 *   {"model":..., "text":..., "pages":[{"page","source","orientation","width",
 *    "height","confidence","text","lines":[...],"words":[...]}]}
 * with bounding boxes [x0,y0,x1,y1] in pixels and confidences 0-100.
 */
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/log.h"
#include "http/http.h"
#include "http/upload.h"
#include "sched/job.h"

static int bad(http_req *r, const char *param, const char *code, const char *msg)
{
    return http_reply_error(r, 400, NULL, param, code, msg, 0);
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decode base64 (whitespace ignored; a data: URL prefix allowed) into a new
 * temp file; returns 0 and the path. */
static int write_b64(const char *s, size_t n, const char *dir, char *path, size_t pl)
{
    const char *comma = memchr(s, ',', n < 128 ? n : 128);
    if (n > 5 && !strncmp(s, "data:", 5) && comma) {
        n -= (size_t)(comma + 1 - s);
        s = comma + 1;
    }
    mkdir(dir, 0700);
    snprintf(path, pl, "%s/ocr-XXXXXX", dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char out[3072];
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0, rc = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        int v = b64val(c);
        if (v < 0) {
            rc = -1;
            break;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            if (o == sizeof out) {
                if (write(fd, out, o) != (ssize_t)o)
                    rc = -1;
                o = 0;
            }
        }
    }
    if (rc == 0 && o && write(fd, out, o) != (ssize_t)o)
        rc = -1;
    close(fd);
    if (rc < 0)
        unlink(path);
    return rc;
}

int ocr_options(const upload *u, buf *opts, const char **model, http_bad *e)
{
    const char *m = upload_field(u, "model");
    *model = m && *m ? m : "ocr";
    if (strlen(*model) > MODEL_NAME_MAX) {
        e->param = "model";
        e->code = "invalid_value";
        e->msg = "model names are at most 64 characters";
        return -1;
    }
    return ocr_fields(opts, upload_field(u, "language"), e);
}

int ocr_fields(buf *opts, const char *lang, http_bad *e)
{
    if (lang && (strlen(lang) > 64 ||
                 strspn(lang, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-") !=
                     strlen(lang))) {
        e->param = "language";
        e->code = "invalid_value";
        e->msg = "language must name Tesseract languages, like 'eng' or 'eng+deu'";
        return -1;
    }
    int rc = buf_puts(opts, "{\"kind\":\"ocr\"");
    if (lang && *lang)
        rc |= buf_puts(opts, ",\"language\":") | jw_cstr(opts, lang);
    return rc | buf_putc(opts, '}') ? -1 : 0;     /* e->code NULL: out of memory */
}

int ocr_render(buf *out, const char *model, const char *doc, size_t n)
{
    buf_puts(out, "{\"model\":");
    jw_cstr(out, model);
    if (n > 1 && doc[0] == '{') {
        buf_putc(out, ',');
        return buf_append(out, doc + 1, n - 1);
    }
    return buf_putc(out, '}');
}

static int recognise(http_req *r);

int http_ocr(http_req *r)
{
    int ret = recognise(r);
    upload_release_file(r->up);     /* before the response leaves */
    return ret;
}

static int recognise(http_req *r)
{
    char tmp[700] = "", dir[600];
    snprintf(dir, sizeof dir, "%s/tmp", http_data_dir(r));
    const char *path = NULL, *lang = NULL, *model = "ocr";
    arena *a = NULL;
    int ret = MHD_NO;
    buf text = buf_make(0), p = buf_make(0);
    job *j = NULL;
    if (r->up || r->upload_err[0]) {     /* multipart */
        if (upload_refused(r, &ret))
            goto out;
        path = upload_file_path(r->up);
        lang = upload_field(r->up, "language");
        if (upload_field(r->up, "model") && *upload_field(r->up, "model"))
            model = upload_field(r->up, "model");
    } else {
        a = arena_new(r->body.len * 2 + (1u << 20));
        char perr[96];
        const json *o = a ? json_parse(a, r->body.data ? r->body.data : "", r->body.len, perr,
                                       sizeof perr) : NULL;
        if (!o || o->type != JSON_OBJECT) {
            ret = bad(r, NULL, "invalid_json",
                      "send multipart/form-data with a 'file' part, or JSON {\"file\": base64}");
            goto out;
        }
        const json *f = json_get(o, "file"), *l = json_get(o, "language"), *m = json_get(o, "model");
        if (!f || f->type != JSON_STRING || f->len == 0) {
            ret = bad(r, "file", "missing_required_parameter",
                      "'file' must be the document, base64-encoded");
            goto out;
        }
        if (l && l->type == JSON_STRING)
            lang = l->str;
        if (m && m->type == JSON_STRING && m->len && m->len <= MODEL_NAME_MAX)
            model = m->str;
        if (write_b64(f->str, f->len, dir, tmp, sizeof tmp) < 0) {
            ret = bad(r, "file", "invalid_value", "'file' is not valid base64");
            goto out;
        }
        path = tmp;
    }
    if (!path) {
        ret = bad(r, "file", "missing_required_parameter", "Missing required parameter: 'file'");
        goto out;
    }
    http_bad e = { 0 };
    buf opts = buf_make(0);
    int rc = ocr_fields(&opts, lang, &e);
    if (rc == 0)
        rc = job_payload(&p, opts.data, path);
    buf_free(&opts);
    if (rc < 0) {
        ret = e.code ? bad(r, e.param, e.code, e.msg)
                     : http_reply_error(r, 500, NULL, NULL, "out_of_memory", "out of memory", 0);
        goto out;
    }
    if (!(j = http_new_job(r, model, MODEL_KIND_OCR, &p, &ret)))
        goto out;
    job_status st;
    if (!http_run_job(r, j, &text, &st, &ret))
        goto out;
    /* the worker's document, with the model name in front */
    buf b = buf_make(0);
    ocr_render(&b, model, text.data ? text.data : "", text.len);
    log_info("ocr: %zu bytes of result", text.len);
    ret = http_reply_json(r, 200, &b);
out:
    if (tmp[0])
        unlink(tmp);
    job_unref(j);
    arena_free(a);
    buf_free(&text);
    buf_free(&p);
    return ret;
}
