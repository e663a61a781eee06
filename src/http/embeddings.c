/*
 * embeddings.c: POST /v1/embeddings (OpenAI's shape).
 *
 * input: a string, an array of strings, an array of token ids, or an array of
 * token-id arrays (at most EMBED_MAX_INPUTS). The worker returns raw float32
 * vectors in input order; this file turns them into JSON floats or, with
 * encoding_format "base64", the little-endian float32 bytes in base64, as
 * OpenAI's clients expect.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/log.h"
#include "http/http.h"
#include "sched/job.h"

#define EMBED_MAX_INPUTS 2048

static void base64(buf *b, const unsigned char *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    buf_reserve(b, (n + 2) / 3 * 4 + 2);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = { tbl[(v >> 18) & 63], tbl[(v >> 12) & 63],
                      i + 1 < n ? tbl[(v >> 6) & 63] : '=', i + 2 < n ? tbl[v & 63] : '=' };
        buf_append(b, q, 4);
    }
}

static int bad(http_req *r, const char *param, const char *code, const char *msg)
{
    return http_reply_error(r, 400, NULL, param, code, msg, 0);
}

/* Checks input and writes it as the worker's "input" array. Returns the
 * number of inputs, or -1 after replying with the error. */
static int check_input(http_req *r, const json *in, buf *payload, int *ret)
{
    if (!in) {
        *ret = bad(r, "input", "missing_required_parameter", "Missing required parameter: 'input'");
        return -1;
    }
    buf_puts(payload, "[");
    int n = 0;
    if (in->type == JSON_STRING) {
        if (in->len == 0) {
            *ret = bad(r, "input", "invalid_value", "'input' must not be empty");
            return -1;
        }
        jw_value(payload, in);
        n = 1;
    } else if (in->type == JSON_ARRAY && in->len > 0) {
        bool ids = in->child->type == JSON_NUMBER;
        if (ids) {
            /* one input given as token ids */
            for (const json *t = in->child; t; t = t->next)
                if (t->type != JSON_NUMBER || !t->is_int) {
                    *ret = bad(r, "input", "invalid_type", "token ids must be integers");
                    return -1;
                }
            jw_value(payload, in);
            n = 1;
        } else {
            if (in->len > EMBED_MAX_INPUTS) {
                char msg[96];
                snprintf(msg, sizeof msg, "at most %d inputs per request", EMBED_MAX_INPUTS);
                *ret = bad(r, "input", "invalid_value", msg);
                return -1;
            }
            for (const json *c = in->child; c; c = c->next, n++) {
                bool ok = (c->type == JSON_STRING && c->len > 0) ||
                          (c->type == JSON_ARRAY && c->len > 0);
                for (const json *t = c->type == JSON_ARRAY ? c->child : NULL; ok && t; t = t->next)
                    ok = t->type == JSON_NUMBER && t->is_int;
                if (!ok) {
                    char msg[128];
                    snprintf(msg, sizeof msg, "input[%d] must be a non-empty string or a "
                             "non-empty array of token ids", n);
                    *ret = bad(r, "input", "invalid_type", msg);
                    return -1;
                }
                if (n)
                    buf_putc(payload, ',');
                jw_value(payload, c);
            }
        }
    } else {
        *ret = bad(r, "input", "invalid_type",
                   "'input' must be a string, an array of strings, or token ids");
        return -1;
    }
    buf_puts(payload, "]");
    return n;
}

int http_embeddings(http_req *r)
{
    arena *a = arena_new(r->body.len * 16 + (1u << 20));
    int ret = MHD_NO;
    buf payload = buf_make(0), text = buf_make(0), out = buf_make(0);
    job *j = NULL;
    const json *o = http_json_body(r, a, &ret);
    if (!o)
        goto out;
    const json *model = json_get(o, "model");
    if (!model || model->type != JSON_STRING || model->len == 0 || model->len > MODEL_NAME_MAX ||
        strlen(model->str) != model->len) {
        ret = bad(r, "model", model ? "invalid_type" : "missing_required_parameter",
                  "'model' must be a model name");
        goto out;
    }
    const json *fmt = json_get(o, "encoding_format");
    bool b64 = false;
    if (fmt && fmt->type != JSON_NULL) {
        if (json_str_is(fmt, "base64"))
            b64 = true;
        else if (!json_str_is(fmt, "float")) {
            ret = bad(r, "encoding_format", "invalid_value",
                      "'encoding_format' must be 'float' or 'base64'");
            goto out;
        }
    }
    const json *dims = json_get(o, "dimensions");
    if (dims && dims->type != JSON_NULL &&
        (dims->type != JSON_NUMBER || !dims->is_int || dims->integer < 1)) {
        ret = bad(r, "dimensions", "invalid_value", "'dimensions' must be a positive integer");
        goto out;
    }
    buf_puts(&payload, "{\"kind\":\"embedding\",\"input\":");
    int n = check_input(r, json_get(o, "input"), &payload, &ret);
    if (n < 0)
        goto out;
    buf_putc(&payload, '}');

    if (!(j = http_new_job(r, model->str, MODEL_KIND_EMBEDDING, &payload, &ret)))
        goto out;
    job_status st;
    if (!http_run_job(r, j, &text, &st, &ret))
        goto out;
    size_t per = n ? text.len / (size_t)n : 0;
    if (n == 0 || per == 0 || per % sizeof(float) || per * (size_t)n != text.len) {
        ret = http_reply_error(r, 500, NULL, NULL, "bad_worker_output",
                               "the model returned malformed embeddings", 0);
        goto out;
    }
    size_t dim = per / sizeof(float);
    if (dims && dims->type == JSON_NUMBER && (size_t)dims->integer != dim) {
        char msg[128];
        snprintf(msg, sizeof msg, "this model's embeddings have %zu dimensions; it cannot give %lld",
                 dim, (long long)dims->integer);
        ret = bad(r, "dimensions", "invalid_value", msg);
        goto out;
    }
    buf_puts(&out, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < n; i++) {
        const float *v = (const float *)(text.data + (size_t)i * per);
        buf_printf(&out, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
        if (b64) {
            buf_putc(&out, '"');
            base64(&out, (const unsigned char *)v, per);
            buf_putc(&out, '"');
        } else {
            buf_putc(&out, '[');
            for (size_t k = 0; k < dim; k++)
                buf_printf(&out, k ? ",%.8g" : "%.8g", (double)v[k]);
            buf_putc(&out, ']');
        }
        buf_putc(&out, '}');
    }
    buf_puts(&out, "],\"model\":");
    jw_cstr(&out, model->str);
    buf_printf(&out, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}", st.prompt_tokens,
               st.prompt_tokens);
    log_info("embeddings: %d input(s), %d tokens, %zu dims", n, st.prompt_tokens, dim);
    ret = http_reply_json(r, 200, &out);
out:
    job_unref(j);
    arena_free(a);
    buf_free(&payload);
    buf_free(&text);
    buf_free(&out);
    return ret;
}
