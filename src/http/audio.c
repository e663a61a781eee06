/*
 * audio.c: POST /v1/audio/transcriptions and /v1/audio/translations.
 *
 * multipart/form-data with the recording in "file" (streamed to a capped temp
 * file by upload.c) and the fields model, language, prompt, temperature,
 * response_format and timestamp_granularities[]. The worker decodes and
 * transcribes the file and answers with one JSON document (segments with
 * times); this file renders the requested response_format: json, text, srt,
 * vtt or verbose_json.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void timestamp(buf *b, double t, char sep)
{
    if (t < 0)
        t = 0;
    long ms = (long)(t * 1000 + 0.5);
    buf_printf(b, "%02ld:%02ld:%02ld%c%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, sep,
               ms % 1000);
}

static double num(const json *o, const char *k)
{
    const json *v = json_get(o, k);
    return v && v->type == JSON_NUMBER ? v->number : 0;
}

static const char *str(const json *o, const char *k)
{
    const json *v = json_get(o, k);
    return v && v->type == JSON_STRING ? v->str : "";
}

void audio_render(buf *out, const char **ctype_out, const char *fmt, const json *res, bool words)
{
    buf b = buf_make(0);
    const char *ctype = "application/json";
    const json *segs = json_get(res, "segments");
    const char *text = str(res, "text");
    if (!strcmp(fmt, "json")) {
        buf_puts(&b, "{\"text\":");
        jw_cstr(&b, text);
        buf_putc(&b, '}');
    } else if (!strcmp(fmt, "text")) {
        ctype = "text/plain; charset=utf-8";
        buf_printf(&b, "%s\n", text);
    } else if (!strcmp(fmt, "srt") || !strcmp(fmt, "vtt")) {
        bool vtt = fmt[0] == 'v';
        ctype = vtt ? "text/vtt; charset=utf-8" : "application/x-subrip; charset=utf-8";
        if (vtt)
            buf_puts(&b, "WEBVTT\n\n");
        int i = 1;
        for (const json *s = segs ? segs->child : NULL; s; s = s->next, i++) {
            if (!vtt)
                buf_printf(&b, "%d\n", i);
            timestamp(&b, num(s, "start"), vtt ? '.' : ',');
            buf_puts(&b, " --> ");
            timestamp(&b, num(s, "end"), vtt ? '.' : ',');
            const char *t = str(s, "text");
            while (*t == ' ')
                t++;
            buf_printf(&b, "\n%s\n\n", t);
        }
    } else {    /* verbose_json: the worker's document, words only when asked */
        buf_puts(&b, "{");
        bool first = true;
        for (const json *c = res->child; c; c = c->next) {
            if (!words && c->keylen == 5 && !memcmp(c->key, "words", 5))
                continue;
            if (!first)
                buf_putc(&b, ',');
            first = false;
            jw_str(&b, c->key, c->keylen);
            buf_putc(&b, ':');
            jw_value(&b, c);
        }
        buf_puts(&b, "}");
    }
    *ctype_out = ctype;
    *out = b;
}

static int transcribe(http_req *r, bool translate);

int http_transcriptions(http_req *r, bool translate)
{
    int ret = transcribe(r, translate);
    upload_release_file(r->up);     /* before the response leaves */
    return ret;
}

int audio_options(const upload *u, bool translate, buf *opts, audio_form *f, http_bad *e)
{
#define BAD(p, c, m) do { e->param = p; e->code = c; e->msg = m; return -1; } while (0)
    f->model = upload_field(u, "model");
    if (!f->model || !*f->model || strlen(f->model) > MODEL_NAME_MAX)
        BAD("model", "missing_required_parameter", "Missing required parameter: 'model'");
    const char *fmt = upload_field(u, "response_format");
    if (!fmt || !*fmt)
        fmt = "json";
    if (strcmp(fmt, "json") && strcmp(fmt, "text") && strcmp(fmt, "srt") &&
        strcmp(fmt, "vtt") && strcmp(fmt, "verbose_json"))
        BAD("response_format", "invalid_value",
            "response_format must be json, text, srt, vtt or verbose_json");
    f->format = fmt;
    const char *lang = upload_field(u, "language");
    if (lang && (strlen(lang) > 16 || strspn(lang, "abcdefghijklmnopqrstuvwxyz-") != strlen(lang)))
        BAD("language", "invalid_value", "language must be an ISO-639-1 code like 'en'");
    const char *temp = upload_field(u, "temperature");
    double t = 0;
    if (temp && *temp) {
        char *end;
        t = strtod(temp, &end);
        if (*end || !(t >= 0 && t <= 1))
            BAD("temperature", "invalid_value", "temperature must be between 0 and 1");
    }
    const char *gran = upload_field(u, "timestamp_granularities[]");
    f->words = gran && strstr(gran, "word");
    if (gran && *gran && strcmp(fmt, "verbose_json"))
        BAD("timestamp_granularities", "invalid_value",
            "timestamp_granularities needs response_format verbose_json");
#undef BAD
    int rc = buf_puts(opts, "{\"kind\":\"transcription\"");
    rc |= buf_printf(opts, ",\"translate\":%s,\"words\":%s,\"temperature\":%g",
                     translate ? "true" : "false", f->words ? "true" : "false", t);
    if (lang && *lang)
        rc |= buf_puts(opts, ",\"language\":") | jw_cstr(opts, lang);
    const char *prompt = upload_field(u, "prompt");
    if (prompt && *prompt)
        rc |= buf_puts(opts, ",\"prompt\":") | jw_cstr(opts, prompt);
    return rc | buf_putc(opts, '}') ? -1 : 0;     /* e->code NULL: out of memory */
}

static int transcribe(http_req *r, bool translate)
{
    int refused;
    if (upload_refused(r, &refused))
        return refused;
    const char *path = upload_file_path(r->up);
    if (!path)
        return bad(r, "file", "missing_required_parameter", "Missing required parameter: 'file'");
    buf opts = buf_make(0), p = buf_make(0);
    audio_form f;
    http_bad e = { 0 };
    int rc = audio_options(r->up, translate, &opts, &f, &e);
    if (rc == 0)
        rc = job_payload(&p, opts.data, path);
    buf_free(&opts);
    if (rc < 0) {
        buf_free(&p);
        return e.code ? bad(r, e.param, e.code, e.msg)
                      : http_reply_error(r, 500, NULL, NULL, "out_of_memory", "out of memory", 0);
    }
    const char *model = f.model, *fmt = f.format;
    bool words = f.words;
    int ret = MHD_NO;
    job *j = http_new_job(r, model, MODEL_KIND_TRANSCRIPTION, &p, &ret);
    if (!j)
        return ret;
    buf text = buf_make(0);
    arena *a = NULL;
    job_status st;
    if (!http_run_job(r, j, &text, &st, &ret))
        goto out;
    a = arena_new(text.len * 16 + (1u << 20));
    char perr[64];
    const json *res = a ? json_parse(a, text.data ? text.data : "", text.len, perr, sizeof perr)
                        : NULL;
    if (!res || res->type != JSON_OBJECT) {
        ret = http_reply_error(r, 500, NULL, NULL, "bad_worker_output",
                               "the model returned a malformed transcript", 0);
        goto out;
    }
    log_info("transcribed %.1f s of audio (%zu bytes) as %s", num(res, "duration"),
             upload_file_size(r->up), fmt);
    buf b;
    const char *ctype;
    audio_render(&b, &ctype, fmt, res, words);
    ret = http_reply_body(r, 200, ctype, &b);
out:
    arena_free(a);
    buf_free(&text);
    job_unref(j);
    return ret;
}
