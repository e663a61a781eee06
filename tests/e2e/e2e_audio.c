/*
 * e2e_audio.c: POST /v1/audio/transcriptions and /translations against the
 * real daemon, on a synthesized whisper-tiny-shape model (random weights: the
 * text is meaningless, so these tests check the path, the formats and the
 * error handling, and that a client who gives up stops the work; quality
 * waits for a real model). Recordings: the shared
 * speech clips, converted to other containers by tests/run.sh with ffmpeg.
 * See harness.h for the environment.
 */
#include "harness.h"

#include <dirent.h>

static struct daemon W;
static char g_speech[600];
static long g_give_up_ms;        /* > 0: the client gives up after this long */
static CURLcode g_curl_rc;       /* how the last request ended */

/* multipart POST with a file from disk (or raw bytes) and text fields */
static struct resp transcribe(const char *path_or_null, const char *bytes, size_t nbytes,
                              const char *filename, const char *const *fields, bool translate)
{
    struct resp r = { 0, buf_make(0), buf_make(0) };
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/audio/%s", W.port,
             translate ? "translations" : "transcriptions");
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "file");
    if (path_or_null)
        curl_mime_filedata(part, path_or_null);
    else
        curl_mime_data(part, bytes, nbytes);
    curl_mime_filename(part, filename);
    for (int i = 0; fields && fields[i]; i += 2) {
        part = curl_mime_addpart(mime);
        curl_mime_name(part, fields[i]);
        curl_mime_data(part, fields[i + 1], CURL_ZERO_TERMINATED);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    if (g_give_up_ms > 0)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, g_give_up_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    if ((g_curl_rc = curl_easy_perform(c)) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    return r;
}

static void t_formats(void)
{
    char wav[700];
    snprintf(wav, sizeof wav, "%s/jfk.wav", g_speech);
    const char *fmts[] = { "json", "text", "srt", "vtt", "verbose_json" };
    const char *ctypes[] = { "application/json", "text/plain", "application/x-subrip", "text/vtt",
                             "application/json" };
    for (int i = 0; i < 5; i++) {
        const char *fields[] = { "model", "whisper", "response_format", fmts[i], "language", "en",
                                 NULL };
        struct resp r = transcribe(wav, NULL, 0, "jfk.wav", fields, false);
        if (r.status != 200)
            fprintf(stderr, "  %s: %ld %s\n", fmts[i], r.status, r.body.data ? r.body.data : "");
        CHECK(r.status == 200);
        char want[96];
        snprintf(want, sizeof want, "Content-Type: %s", ctypes[i]);
        CHECK(r.headers.data && strcasestr(r.headers.data, want));
        arena *a = arena_new(0);
        if (i == 0)
            CHECK(parse(a, &r.body) && str_at(parse(a, &r.body), "text"));
        if (i == 3)
            CHECK(r.body.data && !strncmp(r.body.data, "WEBVTT", 6));
        if (i == 4) {
            const json *j = parse(a, &r.body);
            CHECK(str_at(j, "task") && !strcmp(str_at(j, "task"), "transcribe"));
            CHECK(num_at(j, "duration") > 10.9 && num_at(j, "duration") < 11.1);
            CHECK(json_get(j, "segments") && json_get(j, "segments")->type == JSON_ARRAY);
            CHECK(str_at(j, "language") != NULL);
            const json *s0 = path(j, "segments.0");
            if (s0) {   /* a random model may say nothing at all */
                CHECK(num_at(s0, "end") >= num_at(s0, "start"));
                CHECK(json_get(s0, "tokens") && json_get(s0, "avg_logprob") &&
                      json_get(s0, "no_speech_prob") && json_get(s0, "id"));
            }
            CHECK(!json_get(j, "words"));
        }
        arena_free(a);
        resp_free(&r);
    }
    /* word timestamps on request */
    const char *fields[] = { "model", "whisper", "response_format", "verbose_json",
                             "timestamp_granularities[]", "word", "timestamp_granularities[]",
                             "segment", NULL };
    struct resp r = transcribe(wav, NULL, 0, "jfk.wav", fields, false);
    arena *a = arena_new(0);
    CHECK(r.status == 200 && json_get(parse(a, &r.body), "words"));
    arena_free(a);
    resp_free(&r);
    /* translations: the synthesized model has tiny.en's English-only vocabulary
     * (the only one available here), so it must refuse clearly, not pretend */
    const char *tf[] = { "model", "whisper", "response_format", "verbose_json", NULL };
    r = transcribe(wav, NULL, 0, "jfk.wav", tf, true);
    a = arena_new(0);
    const char *msg = str_at(parse(a, &r.body), "error.message");
    CHECK(r.status == 400 && msg && strstr(msg, "English-only"));
    arena_free(a);
    resp_free(&r);
}

static void t_containers(void)
{
    const char *files[] = { "jfk.mp3", "jfk.flac", "jfk.ogg", "jfk.opus", "jfk.m4a", "jfk.webm" };
    for (int i = 0; i < 6; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", i == 0 ? g_speech : g_tmp, files[i]);
        const char *fields[] = { "model", "whisper", "response_format", "verbose_json", NULL };
        struct resp r = transcribe(p, NULL, 0, files[i], fields, false);
        arena *a = arena_new(0);
        const json *j = parse(a, &r.body);
        double d = num_at(j, "duration");
        if (r.status != 200 || d < 10.5 || d > 11.5) {
            fprintf(stderr, "  %s: %ld duration %.2f %s\n", files[i], r.status, d,
                    r.status != 200 && r.body.data ? r.body.data : "");
            cur_failed = 1;
        }
        arena_free(a);
        resp_free(&r);
    }
}

static void t_long_recording(void)
{
    /* 33 s: whisper.cpp has to slide past its first 30 s window */
    char p[700];
    snprintf(p, sizeof p, "%s/long.mp3", g_tmp);
    const char *fields[] = { "model", "whisper", "response_format", "verbose_json", NULL };
    struct resp r = transcribe(p, NULL, 0, "long.mp3", fields, false);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    CHECK(r.status == 200);
    CHECK(num_at(j, "duration") > 32.9 && num_at(j, "duration") < 33.1);
    CHECK(json_get(j, "segments") && json_get(j, "segments")->type == JSON_ARRAY);
    arena_free(a);
    resp_free(&r);
}

/* A client that gives up on a long transcription stops it: the worker
 * says so in the log (whisper.cpp would take ~15 s here), nothing is
 * logged as an error, and the next request is served. */
static void t_cancel_running(void)
{
    char p[700], wav[700];
    snprintf(p, sizeof p, "%s/long.mp3", g_tmp);
    snprintf(wav, sizeof wav, "%s/jfk.wav", g_speech);
    const char *fields[] = { "model", "whisper", NULL };
    g_give_up_ms = 1500;
    struct resp r = transcribe(p, NULL, 0, "long.mp3", fields, false);
    g_give_up_ms = 0;
    CHECK(g_curl_rc == CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);
    CHECK(log_holds(W.log, "transcription of 33.0 s of audio cancelled", 60));
    CHECK(!log_holds(W.log, "failed to decode", 0));
    r = transcribe(wav, NULL, 0, "jfk.wav", fields, false);
    CHECK(r.status == 200);
    resp_free(&r);
}

static void put_le32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void t_hostile_inputs(void)
{
    /* a minimal 16 kHz mono WAV header + 1 s of silence, then corrupted */
    unsigned char wav[44 + 32000];
    memset(wav, 0, sizeof wav);
    memcpy(wav, "RIFF", 4);
    put_le32(wav + 4, sizeof wav - 8);
    memcpy(wav + 8, "WAVEfmt ", 8);
    put_le32(wav + 16, 16);
    wav[20] = 1;            /* PCM */
    wav[22] = 1;            /* channels */
    put_le32(wav + 24, 16000);
    put_le32(wav + 28, 32000);
    wav[32] = 2;
    wav[34] = 16;
    memcpy(wav + 36, "data", 4);
    put_le32(wav + 40, 32000);
    unsigned char bad[sizeof wav];
    struct {
        const char *name;
        int kind;
    } cases[] = { { "data chunk claims more than the file", 0 }, { "zero channels", 1 },
                  { "fmt chunk size 0xFFFFFFFF", 2 }, { "truncated mp3", 3 },
                  { "not audio at all", 4 }, { "empty file", 5 } };
    for (int i = 0; i < 6; i++) {
        memcpy(bad, wav, sizeof wav);
        const char *data = (const char *)bad;
        size_t n = sizeof bad;
        buf tmp = buf_make(0);
        if (cases[i].kind == 0)
            put_le32(bad + 40, 0x7fffffff);
        else if (cases[i].kind == 1)
            bad[22] = 0;
        else if (cases[i].kind == 2)
            put_le32(bad + 16, 0xffffffffu);
        else if (cases[i].kind == 3) {
            char p[700];
            snprintf(p, sizeof p, "%s/jfk.mp3", g_speech);
            FILE *f = fopen(p, "rb");
            char chunk[5000];
            size_t k = f ? fread(chunk, 1, sizeof chunk, f) : 0;
            if (f)
                fclose(f);
            buf_append(&tmp, chunk, k);
            data = tmp.data;
            n = tmp.len;
        } else if (cases[i].kind == 4) {
            data = "This is a plain text file, not a recording.\n";
            n = strlen(data);
        } else {
            data = "";
            n = 0;
        }
        const char *fields[] = { "model", "whisper", NULL };
        struct resp r = transcribe(NULL, data, n, "x.wav", fields, false);
        arena *a = arena_new(0);
        /* a 4xx with an error JSON, or (for a header that lies but still
         * decodes) a normal answer; never a crash or a 5xx */
        bool ok = (r.status >= 400 && r.status < 500 && is_error_shape(parse(a, &r.body), NULL)) ||
                  (r.status == 200 && cases[i].kind <= 2);
        if (!ok) {
            fprintf(stderr, "  %s: %ld %s\n", cases[i].name, r.status, r.body.data ? r.body.data : "");
            cur_failed = 1;
        }
        if (cases[i].kind == 5)     /* said as such, not as a missing file */
            CHECK(r.status == 400 && r.body.data && strstr(r.body.data, "is empty"));
        arena_free(a);
        resp_free(&r);
        buf_free(&tmp);
        CHECK(healthy(&W));
    }
    /* a client file name that tries to climb out: never used as a path */
    const char *fields[] = { "model", "whisper", NULL };
    struct resp r = transcribe(NULL, (const char *)wav, sizeof wav, "../../etc/passwd", fields, false);
    CHECK(r.status == 200 || (r.status >= 400 && r.status < 500));
    resp_free(&r);
    char leftover[700];
    snprintf(leftover, sizeof leftover, "%s/daemonAudio/tmp", g_tmp);
    DIR *d = opendir(leftover);
    int files = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        files += e->d_name[0] != '.';
    if (d)
        closedir(d);
    CHECK(files == 0);      /* no upload left behind */
}

static void t_multipart_errors(void)
{
    /* a body whose boundary line contains NUL bytes and does not match */
    const char body[] = "--ab\0cd\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--ab\0cd--\r\n";
    struct resp r = { 0, buf_make(0), buf_make(0) };
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/audio/transcriptions", W.port);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: multipart/form-data; boundary=ab");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(sizeof body - 1));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    CHECK(r.status == 400);
    resp_free(&r);
    /* not multipart at all; missing file; missing model; bad format; unknown model */
    r = post(&W, "/v1/audio/transcriptions", "{\"model\":\"whisper\"}");
    CHECK(r.status == 400);
    resp_free(&r);
    const char *nomodel[] = { "response_format", "json", NULL };
    char wav[700];
    snprintf(wav, sizeof wav, "%s/jfk.wav", g_speech);
    r = transcribe(wav, NULL, 0, "a.wav", nomodel, false);
    CHECK(r.status == 400);
    resp_free(&r);
    const char *badfmt[] = { "model", "whisper", "response_format", "xml", NULL };
    r = transcribe(wav, NULL, 0, "a.wav", badfmt, false);
    CHECK(r.status == 400);
    resp_free(&r);
    const char *unknown[] = { "model", "nope", NULL };
    r = transcribe(wav, NULL, 0, "a.wav", unknown, false);
    CHECK(r.status == 404);
    resp_free(&r);
    const char *chat[] = { "model", "tiny", NULL };
    r = transcribe(wav, NULL, 0, "a.wav", chat, false);
    CHECK(r.status == 400);
    resp_free(&r);
    CHECK(healthy(&W));
}

static void t_upload_cap(void)
{
    /* the daemon runs with --max-upload 1M */
    size_t n = 3u << 20;
    char *big = calloc(1, n);
    const char *fields[] = { "model", "whisper", NULL };
    struct resp r = transcribe(NULL, big, n, "big.wav", fields, false);
    arena *a = arena_new(0);
    CHECK(r.status == 413 && is_error_shape(parse(a, &r.body), "request_too_large"));
    arena_free(a);
    resp_free(&r);
    free(big);
    CHECK(healthy(&W));
}

static void t_cli_transcribe(void)
{
    char cmd[1400], out[600];
    snprintf(out, sizeof out, "%s/cli.srt", g_tmp);
    snprintf(cmd, sizeof cmd, "'%s/hearth' --url http://127.0.0.1:%d transcribe '%s/jfk.wav' "
             "--model whisper --format srt > '%s' 2>/dev/null", g_build, W.port, g_speech, out);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "'%s/hearth' --url http://127.0.0.1:%d transcribe /nonexistent.wav --model whisper "
             ">/dev/null 2>&1", g_build, W.port);
    CHECK(system(cmd) != 0);
}

int main(void)
{
    g_build = getenv("HEARTH_BUILD");
    g_tmp = getenv("HEARTH_TMP");
    g_shared = getenv("HEARTH_SHARED");
    if (!g_build || !g_tmp || !g_shared) {
        fprintf(stderr, "e2e: set HEARTH_BUILD, HEARTH_SHARED and HEARTH_TMP (tests/run.sh does)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(g_speech, sizeof g_speech, "%s/data/speech", g_shared);
    char mw[700], mt[700];
    snprintf(mw, sizeof mw, "whisper=%s/whisper-tiny.bin", g_tmp);
    snprintf(mt, sizeof mt, "tiny=%s/tiny.gguf", g_tmp);
    char *args[] = { "--model", mw, "--model", mt, "--threads", "2", "--max-upload", "1M", NULL };
    if (start_daemon(&W, "daemonAudio", args) < 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    run("formats", t_formats);
    run("containers", t_containers);
    run("long_recording", t_long_recording);
    run("cancel_running", t_cancel_running);
    run("hostile_inputs", t_hostile_inputs);
    run("multipart_errors", t_multipart_errors);
    run("upload_cap", t_upload_cap);
    run("cli_transcribe", t_cli_transcribe);
    stop_daemon(&W);
    curl_global_cleanup();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
