/*
 * asr.c: speech to text over whisper.cpp; see asr.h.
 *
 * A request: options checked (400 before any work), the recording decoded
 * (engine/audio.c: 400/413), one whisper_full over all of it (whisper walks
 * the 30 s windows), then the result is written as JSON from whisper's
 * segments and tokens. The document is assembled in three capped scratch
 * buffers (text, segments, words) because "text" comes first in the output
 * but is known only after the segments are walked; the finished document is
 * appended to the caller's buf in one call, so a failure leaves it untouched.
 *
 * Token classes: ids below whisper_token_eot() are text; eot and above are
 * control and timestamp tokens, never shown and never counted.
 */
#include "engine/asr.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <whisper.h>
#include <zlib.h>

#include "core/ggml_legacy.h"
#include "core/log.h"
#include "engine/audio.h"
#include "engine/stopcheck.h"

#define ASR_MAX_SEGMENTS_JSON (48u << 20)
#define ASR_MAX_WORDS_JSON    (48u << 20)

struct asr {
    struct whisper_context *ctx;
    int threads;
    bool accel;                 /* the BLAS backend is loaded (worker/accel.h) */
    whisper_file_info info;
    struct stop_check stop;     /* asr_set_abort() */
    void (*progress)(void *ud, double fraction);    /* asr_set_progress() */
    void *progress_ud;
};

void asr_set_progress(asr *a, void (*progress)(void *ud, double fraction), void *ud)
{
    a->progress = progress;
    a->progress_ud = ud;
}

/* whisper's progress callback: percent of the recording done */
static void on_progress(struct whisper_context *ctx, struct whisper_state *st, int pct, void *ud)
{
    (void)ctx;
    (void)st;
    asr *a = ud;
    if (a->progress)
        a->progress(a->progress_ud, pct / 100.0);
}

/* set while a transcription stops on request: whisper.cpp then reports a
 * "failed to decode", which is no failure (whisper_log_route) */
static atomic_bool g_stopping;

void asr_set_abort(asr *a, bool (*should_abort)(void *ud), void *ud)
{
    stop_check_set(&a->stop, should_abort, ud);
}

/* whisper's abort callback (also ggml's, between graph nodes): asks the
 * caller's check, and remembers a yes */
static bool abort_check(void *data)
{
    asr *a = data;
    if (!stop_check_now(&a->stop))
        return false;
    g_stopping = true;
    return true;
}

/* whisper.cpp and ggml log lines: info and below at debug, the rest as is
 * (all at debug while a cancelled transcription winds down). */
static void whisper_log_route(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (g_stopping)
        level = GGML_LOG_LEVEL_DEBUG;
    size_t n = text ? strlen(text) : 0;
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    if (n == 0)
        return;
    if (level == GGML_LOG_LEVEL_ERROR)
        log_error("whisper: %.*s", (int)n, text);
    else if (level == GGML_LOG_LEVEL_WARN)
        log_warn("whisper: %.*s", (int)n, text);
    else
        log_debug("whisper: %.*s", (int)n, text);
}

asr *asr_load(const char *model_path, int threads, bool accel, char *err, size_t errlen)
{
    char why[200];
    asr *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->accel = accel;
    if (ggml_legacy_check_file(model_path, &a->info, why, sizeof why)) {
        snprintf(err, errlen, "not a usable whisper model: %s", why);
        goto fail;
    }
    whisper_log_set(whisper_log_route, NULL);
    struct whisper_context_params cp = whisper_context_default_params();
    cp.use_gpu = false;
    cp.dtw_token_timestamps = false;
    a->ctx = whisper_init_from_file_with_params(model_path, cp);
    if (!a->ctx) {
        snprintf(err, errlen, "whisper.cpp could not load the model file");
        goto fail;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a->threads = threads > 0 ? threads : ncpu > 0 ? (int)ncpu : 1;
    if (a->info.n_tensors == 0)
        log_warn("the whisper model has no weights (a test file): transcripts will be empty "
                 "or noise");
    log_info("whisper model loaded: %s%s, %d threads", whisper_model_type_readable(a->ctx),
             whisper_is_multilingual(a->ctx) ? "" : " (English-only)", a->threads);
    return a;
fail:
    asr_free(a);
    return NULL;
}

void asr_free(asr *a)
{
    if (!a)
        return;
    if (a->ctx)
        whisper_free(a->ctx);
    free(a);
}

int asr_describe(asr *a, buf *out)
{
    return buf_printf(out, "{\"kind\":\"transcription\",\"slots\":1,\"model_type\":\"%s\","
                      "\"multilingual\":%s,\"sample_rate\":%d,\"max_seconds\":%d,"
                      "\"weights_bytes\":%llu,\"has_weights\":%s,\"backend\":\"%s\"}",
                      whisper_model_type_readable(a->ctx),
                      whisper_is_multilingual(a->ctx) ? "true" : "false", AUDIO_RATE,
                      ASR_MAX_SECONDS, (unsigned long long)a->info.weights_bytes,
                      a->info.n_tensors ? "true" : "false", a->accel ? "cpu+blas" : "cpu");
}

/* ---- options ---------------------------------------------------------------- */

typedef struct req {
    const char *path, *language, *prompt;
    char lang[24];              /* language, lower-cased (whisper's names are) */
    double temperature, max_seconds;
    bool translate, words;
} req;

/* A string member without NUL bytes, at most max bytes; absent/null -> NULL. */
static int opt_str(const json *o, const char *key, size_t max, const char **out, char *err,
                   size_t el)
{
    const json *v = json_get(o, key);
    *out = NULL;
    if (!v || v->type == JSON_NULL)
        return 0;
    if (v->type != JSON_STRING) {
        snprintf(err, el, "'%s' must be a string", key);
        return -1;
    }
    if (strlen(v->str) != v->len) {
        snprintf(err, el, "'%s' contains a NUL byte", key);
        return -1;
    }
    if (v->len > max) {
        snprintf(err, el, "'%s' is longer than %zu bytes", key, max);
        return -1;
    }
    *out = v->str;
    return 0;
}

static int opt_bool(const json *o, const char *key, bool *out, char *err, size_t el)
{
    const json *v = json_get(o, key);
    if (!v || v->type == JSON_NULL)
        return 0;
    if (v->type != JSON_BOOL) {
        snprintf(err, el, "'%s' must be true or false", key);
        return -1;
    }
    *out = v->boolean;
    return 0;
}

static int opt_num(const json *o, const char *key, double lo, double hi, double *out, char *err,
                   size_t el)
{
    const json *v = json_get(o, key);
    if (!v || v->type == JSON_NULL)
        return 0;
    if (v->type != JSON_NUMBER || !isfinite(v->number) || v->number < lo || v->number > hi) {
        snprintf(err, el, "'%s' must be a number in [%g, %g]", key, lo, hi);
        return -1;
    }
    *out = v->number;
    return 0;
}

/* whisper_lang_id without its error log line for an unknown name. */
static int lang_id(const char *lang)
{
    for (int id = 0; id <= whisper_lang_max_id(); id++) {
        const char *code = whisper_lang_str(id), *name = whisper_lang_str_full(id);
        if ((code && !strcmp(code, lang)) || (name && !strcmp(name, lang)))
            return id;
    }
    return -1;
}

static int parse_opts(const asr *a, const json *o, req *r, char *err, size_t el)
{
    memset(r, 0, sizeof *r);
    r->max_seconds = ASR_MAX_SECONDS;
    if (!o || o->type != JSON_OBJECT) {
        snprintf(err, el, "the request must be a JSON object");
        return -1;
    }
    if (opt_str(o, "path", 4096, &r->path, err, el) ||
        opt_str(o, "language", 32, &r->language, err, el) ||
        opt_str(o, "prompt", ASR_MAX_PROMPT, &r->prompt, err, el) ||
        opt_num(o, "temperature", 0, 1, &r->temperature, err, el) ||
        opt_num(o, "max_seconds", 0.1, ASR_MAX_SECONDS, &r->max_seconds, err, el) ||
        opt_bool(o, "translate", &r->translate, err, el) ||
        opt_bool(o, "words", &r->words, err, el))
        return -1;
    if (!r->path || r->path[0] != '/') {
        snprintf(err, el, "'path' must name the audio file by an absolute path");
        return -1;
    }
    if (r->language && (!*r->language || !strcmp(r->language, "auto")))
        r->language = NULL;
    bool multi = whisper_is_multilingual(a->ctx);
    if (r->language) {
        /* a code ("de") or a name ("german"): letters only, so that nothing
         * odd reaches whisper's log or our message */
        bool word = strlen(r->language) <= 20;
        for (const char *p = r->language; *p && word; p++)
            word = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
        if (!word) {
            snprintf(err, el, "unknown language");
            return -1;
        }
        size_t i = 0;
        for (; r->language[i]; i++)
            r->lang[i] = (char)tolower((unsigned char)r->language[i]);
        r->lang[i] = '\0';
        r->language = r->lang;
        if (lang_id(r->language) < 0) {
            snprintf(err, el, "unknown language '%s'", r->language);
            return -1;
        }
        if (!multi && lang_id(r->language) != lang_id("en")) {
            snprintf(err, el, "this model is English-only; language must be en or auto");
            return -1;
        }
    }
    if (r->translate && !multi) {
        snprintf(err, el, "this model is English-only and cannot translate");
        return -1;
    }
    return 0;
}

/* ---- result ----------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double finite_or0(double v)
{
    return isfinite(v) ? v : 0.0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* Only a non-speech marker: "[BLANK_AUDIO]", "[ Silence ]", "(music)",
 * "*laughs*", music notes, or punctuation alone. */
static bool non_speech(const char *s, size_t n)
{
    trim(&s, &n);
    if (n == 0)
        return true;
    static const char open[] = "[(*", close[] = "])*";
    for (int k = 0; k < 3; k++)
        if (n >= 2 && s[0] == open[k] && s[n - 1] == close[k] &&
            memchr(s + 1, close[k], n - 2) == NULL)
            return true;
    for (size_t i = 0; i < n;) {
        /* music notes U+266A and U+266B */
        if (n - i >= 3 && !memcmp(s + i, "\xe2\x99", 2) && (s[i + 2] == '\xaa' ||
                                                             s[i + 2] == '\xab')) {
            i += 3;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || isalnum(c))
            return false;
        i++;
    }
    return true;
}

static double compression_ratio(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    uLongf cap = compressBound((uLong)n);
    Bytef *z = malloc(cap);
    double r = 0;
    if (z && compress2(z, &cap, (const Bytef *)s, (uLong)n, Z_DEFAULT_COMPRESSION) == Z_OK &&
        cap > 0)
        r = (double)n / (double)cap;
    free(z);
    return r;
}

typedef struct doc {
    buf text, segs, words;
    int n_kept, n_words;
    double duration;
} doc;

/* One word: tokens' bytes joined (a character split across tokens is whole
 * again before escaping), its leading space dropped. */
static int put_word(doc *d, const buf *w, double t0, double t1)
{
    const char *s = w->data;
    size_t n = w->len;
    trim(&s, &n);
    if (n == 0)
        return 0;
    if (t1 < t0)
        t1 = t0;
    return buf_puts(&d->words, d->n_words++ ? ",{\"word\":" : "{\"word\":") ||
           jw_str(&d->words, s, n) ||
           buf_printf(&d->words, ",\"start\":%.2f,\"end\":%.2f}", t0, t1);
}

static int segment_words(struct whisper_context *ctx, int si, whisper_token eot, double t_lo,
                         double t_hi, doc *d)
{
    buf w = buf_make(4096);
    double w0 = 0, w1 = 0;
    int rc = 0, nt = whisper_full_n_tokens(ctx, si);

    for (int ti = 0; ti < nt && rc == 0; ti++) {
        if (whisper_full_get_token_id(ctx, si, ti) >= eot)
            continue;
        const char *tx = whisper_full_get_token_text(ctx, si, ti);
        if (!tx || !*tx)
            continue;
        double t0 = (double)whisper_full_get_token_t0(ctx, si, ti) / 100.0;
        double t1 = (double)whisper_full_get_token_t1(ctx, si, ti) / 100.0;
        t0 = t0 < t_lo ? t_lo : t0 > t_hi ? t_hi : t0;
        t1 = t1 < t_lo ? t_lo : t1 > t_hi ? t_hi : t1;
        if (tx[0] == ' ' && w.len) {
            rc = put_word(d, &w, w0, w1);
            buf_reset(&w);
        }
        if (w.len == 0)
            w0 = t0;
        w1 = t1;
        if (rc == 0 && buf_puts(&w, tx))
            rc = -1;                                /* a 4 KB "word": refuse */
    }
    if (rc == 0 && w.len)
        rc = put_word(d, &w, w0, w1);
    buf_free(&w);
    return rc;
}

static int put_segment(struct whisper_context *ctx, int si, const req *r, whisper_token eot,
                       doc *d)
{
    const char *tx = whisper_full_get_segment_text(ctx, si);
    size_t n = tx ? strlen(tx) : 0;
    if (non_speech(tx, n)) {
        log_debug("asr: segment %d dropped as non-speech (%zu bytes)", si, n);
        return 0;
    }
    double t0 = (double)whisper_full_get_segment_t0(ctx, si) / 100.0;
    double t1 = (double)whisper_full_get_segment_t1(ctx, si) / 100.0;
    if (t1 > d->duration)
        t1 = d->duration;
    if (t0 > t1)
        t0 = t1;
    if (t0 < 0)
        t0 = 0;

    buf *s = &d->segs;
    int nt = whisper_full_n_tokens(ctx, si), n_text = 0;
    double lp = 0;
    int rc = buf_printf(s, "%s{\"id\":%d,\"seek\":%lld,\"start\":%.2f,\"end\":%.2f,\"text\":",
                        d->n_kept ? "," : "", d->n_kept,
                        (long long)whisper_full_get_segment_t0(ctx, si), t0, t1) ||
             jw_str(s, tx, n) || buf_puts(s, ",\"tokens\":[");
    for (int ti = 0; ti < nt && rc == 0; ti++) {
        whisper_token_data td = whisper_full_get_token_data(ctx, si, ti);
        if (td.id >= eot)
            continue;
        rc = buf_printf(s, n_text ? ",%d" : "%d", (int)td.id);
        lp += finite_or0(td.plog);
        n_text++;
    }
    if (rc == 0)
        rc = buf_printf(s, "],\"temperature\":%.2f,\"avg_logprob\":%.5f,"
                        "\"compression_ratio\":%.4f,\"no_speech_prob\":%.5f}",
                        r->temperature, n_text ? lp / n_text : 0.0,
                        compression_ratio(tx, n),
                        finite_or0(whisper_full_get_segment_no_speech_prob(ctx, si)));
    /* whisper's segment texts carry their own leading spaces */
    if (rc == 0)
        rc = buf_append(&d->text, tx, n);
    if (rc == 0 && r->words)
        rc = segment_words(ctx, si, eot, t0, t1, d);
    d->n_kept++;
    return rc;
}

static int run_whisper(asr *a, const req *r, const float *pcm, size_t n, char *err, size_t el)
{
    struct whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
    p.n_threads = a->threads;
    /* "auto" costs an extra encoder pass, even on an English-only model */
    p.language = r->language ? r->language : whisper_is_multilingual(a->ctx) ? "auto" : "en";
    p.detect_language = false;
    p.translate = r->translate;
    p.initial_prompt = r->prompt;
    p.temperature = (float)r->temperature;
    if (r->temperature > 0)
        p.temperature_inc = 0.0f;               /* a fixed temperature: no fallback */
    p.token_timestamps = r->words;
    p.suppress_nst = true;                      /* as OpenAI's default suppress_tokens */
    p.print_progress = p.print_realtime = p.print_timestamps = p.print_special = false;
    stop_check_reset(&a->stop);
    if (a->progress) {
        p.progress_callback = on_progress;
        p.progress_callback_user_data = a;
    }
    if (a->stop.should_stop) {
        p.abort_callback = abort_check;
        p.abort_callback_user_data = a;
    }
    int rc = whisper_full(a->ctx, p, pcm, (int)n);
    g_stopping = false;
    if (a->stop.stopped) {
        snprintf(err, el, "cancelled");
        return -1;
    }
    if (rc != 0) {
        log_warn("whisper_full failed: code %d", rc);
        snprintf(err, el, "the speech model failed on this recording (code %d)", rc);
        return -1;
    }
    return 0;
}

/* The finished document, appended to out in one call (out is untouched on
 * failure). Returns 0, or -1 when a cap is hit. */
static int write_doc(asr *a, const req *r, doc *d, buf *out)
{
    buf res = buf_make(0);
    const char *lang = r->language;
    if (!whisper_is_multilingual(a->ctx))
        lang = "en";
    else if (!lang)
        lang = whisper_lang_str(whisper_full_lang_id(a->ctx));
    const char *text = d->text.data ? d->text.data : "";
    size_t tn = d->text.len;
    trim(&text, &tn);
    int rc = buf_printf(&res, "{\"task\":\"%s\",\"language\":",
                        r->translate ? "translate" : "transcribe") ||
             jw_cstr(&res, lang ? lang : "en") ||
             buf_printf(&res, ",\"duration\":%.3f,\"text\":", d->duration) ||
             jw_str(&res, text, tn) || buf_puts(&res, ",\"segments\":[") ||
             buf_append(&res, d->segs.data ? d->segs.data : "", d->segs.len) ||
             buf_putc(&res, ']') ||
             (r->words && (buf_puts(&res, ",\"words\":[") ||
                           buf_append(&res, d->words.data ? d->words.data : "", d->words.len) ||
                           buf_putc(&res, ']'))) ||
             buf_putc(&res, '}') || buf_append(out, res.data, res.len);
    buf_free(&res);
    return rc ? -1 : 0;
}

int asr_transcribe(asr *a, const json *opts, buf *out, int *status, char *err, size_t el)
{
    req r;
    doc d = { .text = buf_make(ASR_MAX_TEXT), .segs = buf_make(ASR_MAX_SEGMENTS_JSON),
              .words = buf_make(ASR_MAX_WORDS_JSON) };
    float *pcm = NULL;
    size_t n = 0;
    int rc = -1;

    double t_start = now_s();
    *status = 400;
    if (err && el)
        err[0] = '\0';
    if (parse_opts(a, opts, &r, err, el))
        goto out;

    size_t max = (size_t)(r.max_seconds * AUDIO_RATE);
    int ar = audio_decode_file(r.path, &pcm, &n, &d.duration, max ? max : 1, err, el);
    if (ar != AUDIO_OK) {
        *status = ar == AUDIO_ETOOLONG ? 413 : ar == AUDIO_EINTERNAL ? 500 : 400;
        goto out;
    }
    if (n > INT32_MAX) {            /* whisper_full counts samples in an int */
        *status = 413;
        snprintf(err, el, "the recording is too long");
        goto out;
    }
    *status = 500;
    double t_dec = now_s();
    if (run_whisper(a, &r, pcm, n, err, el)) {
        if (a->stop.stopped) {
            *status = 499;
            log_info("transcription of %.1f s of audio cancelled after %.2f s", d.duration,
                     now_s() - t_dec);
        }
        goto out;
    }
    double t_run = now_s();

    whisper_token eot = whisper_token_eot(a->ctx);
    int ns = whisper_full_n_segments(a->ctx);
    for (int i = 0; i < ns; i++)
        if (put_segment(a->ctx, i, &r, eot, &d)) {
            *status = 413;
            snprintf(err, el, "the transcript is larger than the %u MB limit",
                     ASR_MAX_TEXT >> 20);
            goto out;
        }

    if (write_doc(a, &r, &d, out)) {
        *status = 413;
        snprintf(err, el, "the transcript is too large to return");
        goto out;
    }
    log_info("transcribed %.1f s of audio: decode %.2f s, whisper %.2f s, %d of %d segments "
             "kept", d.duration, t_dec - t_start, t_run - t_dec, d.n_kept, ns);
    *status = 200;
    rc = 0;
out:
    free(pcm);
    buf_free(&d.text);
    buf_free(&d.segs);
    buf_free(&d.words);
    return rc;
}
