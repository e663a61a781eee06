/*
 * worker_main.c: the hearth-worker process. hearthd spawns one per loaded
 * model and talks to it over the socket on fd 3 (see wire.h).
 *
 * Loop: read frames without blocking while sequences are active, block when
 * idle; between frames run one engine step. A crash here (a GGML_ASSERT, a
 * segfault in llama.cpp) ends only this process; hearthd notices the closed
 * socket and fails the requests that were in flight.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* One source, three binaries, so a worker maps only the libraries of its own
 * engine (each library costs resident memory in every worker):
 *   hearth-worker      LLMs and embedding models (llama.cpp)
 *   hearth-worker-asr  speech (whisper.cpp, FFmpeg)
 *   hearth-worker-ocr  OCR (Tesseract, Leptonica, poppler)
 * The scheduler starts the one that matches the model's file. */
#if !defined(W_ASR) && !defined(W_OCR)
#define W_LLM 1
#endif
#ifndef W_LLM
#define W_LLM 0
#endif
#ifndef W_ASR
#define W_ASR 0
#endif
#ifndef W_OCR
#define W_OCR 0
#endif

#if W_LLM || W_ASR
#include <ggml-backend.h>
#endif
#if W_LLM
#include <llama.h>
#endif

#include "core/arena.h"
#include "core/json.h"
#include "core/log.h"
#include "core/ggml_legacy.h"
#include "core/gguf.h"
#include "core/thp.h"
#include "engine/llm.h"        /* llm_sink and llm_usage: the shared result callbacks */
#if W_ASR
#include "engine/asr.h"
#endif
#if W_LLM
#include "engine/embed.h"
#include "engine/attn.h"
#include "engine/kernels.h"
#include "engine/kfloat.h"
#include "engine/kquant.h"
#include "engine/q8k.h"
#include "engine/mulmat.h"
#include "engine/pace.h"
#endif
#if W_OCR
#include "engine/ocr.h"
#endif
#include "worker/wire.h"
#if W_LLM || W_ASR
#include "engine/backends.h"
#include "worker/accel.h"
#endif

static int g_fd = 3;

/* A read of mapped memory past the end of its file (a model file truncated
 * or replaced while loaded): say so once, then die of the signal as before,
 * for the supervisor to see and restart. Several threads may fault at once:
 * the others wait for the message before they go. */
static atomic_int g_bus;            /* 0, 1 writing the message, 2 written */

static void on_sigbus(int sig)
{
    static const char msg[] = "hearth-worker: bus error reading mapped memory: the model file "
                              "was truncated or replaced while in use\n";
    int none = 0;
    if (atomic_compare_exchange_strong(&g_bus, &none, 1)) {
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        atomic_store(&g_bus, 2);
    } else {
        while (atomic_load(&g_bus) != 2)
            ;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void send_or_die(unsigned type, uint32_t id, const void *p, size_t n)
{
    if (wire_send(g_fd, type, id, p, n) < 0) {
        log_error("daemon socket closed (%s); exiting", strerror(errno));
        _exit(0);
    }
}

static void on_start(void *ud, uint32_t id, int prompt_tokens, int cached)
{
    (void)ud;
    char js[96];
    int n = snprintf(js, sizeof js, "{\"prompt_tokens\":%d,\"cached_tokens\":%d}", prompt_tokens,
                     cached);
    send_or_die(WIRE_START, id, js, (size_t)n);
}

static void on_delta(void *ud, uint32_t id, const char *text, size_t n)
{
    (void)ud;
    send_or_die(WIRE_DELTA, id, text, n);
}

static void on_logprobs(void *ud, uint32_t id, const char *json_array, size_t n)
{
    (void)ud;
    send_or_die(WIRE_LOGPROBS, id, json_array, n);
}

static void on_done(void *ud, uint32_t id, const char *finish, const llm_usage *u)
{
    (void)ud;
    char js[256];
    int n = snprintf(js, sizeof js,
                     "{\"finish_reason\":\"%s\",\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                     "\"cached_tokens\":%d,\"prompt_ms\":%.3f,\"gen_ms\":%.3f}",
                     finish, u->prompt_tokens, u->completion_tokens, u->cached_tokens,
                     u->prompt_ms, u->gen_ms);
    send_or_die(WIRE_DONE, id, js, (size_t)n);
}

static void on_error(void *ud, uint32_t id, int status, const char *code, const char *msg)
{
    (void)ud;
    buf b = buf_make(0);
    buf_printf(&b, "{\"status\":%d,\"code\":", status);
    jw_cstr(&b, code);
    buf_puts(&b, ",\"message\":");
    jw_cstr(&b, msg);
    buf_putc(&b, '}');
    send_or_die(WIRE_ERROR, id, b.data, b.len);
    buf_free(&b);
}

static void usage(void)
{
    printf("Usage: hearth-worker --model PATH [--threads N] [--parallel N] [--ctx-size N]\n"
           "                     [--batch-size N] [--stream-interval MS] [--name NAME]\n"
           "                     [--log-level LEVEL]\n"
           "                     [--blas auto|off|PATH] [--kernels auto|off]\n"
           "\n"
           "The inference process hearthd spawns for one model. It is not meant to be run\n"
           "by hand: it speaks hearth's wire format on file descriptor 3.\n");
}

/* One engine per worker, chosen from the model file: a folder of tessdata is
 * OCR, a legacy ggml whisper file is speech, a GGUF is an LLM or (BERT
 * family) an embedding model. */
struct engine {
    struct llm *llm;
    struct embedder *emb;
    struct asr *asr;
    struct ocr *ocr;
    const char *name;
};

/* The main loop's reader: doc_cancelled() reads into it while a document
 * request runs (the request's payload is no longer needed then: the JSON
 * holds copies), and the frames it brings are handled after, in order. */
static wire_reader *g_reader;

#if W_ASR || W_OCR
static uint32_t g_doc_id;           /* the document request running */
static double g_doc_look;           /* when doc_cancelled() may read again */
static bool g_doc_shutdown;         /* it stopped for a shutdown, not a cancel */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* While a transcription or OCR runs (engine/asr.h calls this between graph
 * nodes, engine/ocr.h between pages and words): at most every 20 ms, read
 * what the daemon sent and stop for a cancel of this request (already
 * buffered or new), a shutdown, or a daemon that went away. */
static bool doc_cancelled(void *ud)
{
    (void)ud;
    double now = mono_s();
    if (now < g_doc_look)
        return false;
    g_doc_look = now + 0.02;
    struct pollfd pfd = { .fd = g_fd, .events = POLLIN };
    if (poll(&pfd, 1, 0) > 0 && wire_reader_fill(g_reader, g_fd) == 0) {
        g_doc_shutdown = true;      /* the daemon is gone: nobody wants the result */
        return true;
    }
    if (wire_reader_holds(g_reader, WIRE_SHUTDOWN, 0, true)) {
        g_doc_shutdown = true;
        return true;
    }
    return wire_reader_holds(g_reader, WIRE_CANCEL, g_doc_id, false);
}

/* How far the document is: to the daemon when it moved by a percent or
 * more, at most every 250 ms (the last share sent is remembered). */
static double g_doc_sent, g_doc_sent_at;

static void doc_progress(void *ud, double fraction)
{
    (void)ud;
    double now = mono_s();
    if (fraction - g_doc_sent < 0.01 || (now - g_doc_sent_at < 0.25 && fraction < 1))
        return;
    g_doc_sent = fraction;
    g_doc_sent_at = now;
    char js[48];
    int n = snprintf(js, sizeof js, "{\"progress\":%.3f}", fraction);
    send_or_die(WIRE_PROGRESS, g_doc_id, js, (size_t)n);
}

static void doc_begins(uint32_t id)
{
    g_doc_id = id;
    g_doc_look = 0;
    g_doc_shutdown = false;
    g_doc_sent = g_doc_sent_at = 0;
}
#endif

/* True when the document request stopped for a shutdown (or a daemon that
 * went away) rather than for its client's cancel. */
static bool doc_stopped_for_shutdown(void)
{
#if W_ASR || W_OCR
    return g_doc_shutdown;
#else
    return false;
#endif
}

/* A one-shot engine (speech, OCR): run it, send the document or the error. */
static void run_document(struct engine *en, uint32_t id, const json *req)
{
    buf out = buf_make(64u << 20);
    int status = 500;
    char err[256] = "";
    int rc = -1;
    (void)en;
    (void)req;
#if W_ASR
    if (en->asr) {
        doc_begins(id);
        asr_set_abort(en->asr, doc_cancelled, NULL);
        asr_set_progress(en->asr, doc_progress, NULL);
        rc = asr_transcribe(en->asr, req, &out, &status, err, sizeof err);
    }
#endif
#if W_OCR
    if (en->ocr) {
        doc_begins(id);
        ocr_set_abort(en->ocr, doc_cancelled, NULL);
        ocr_set_progress(en->ocr, doc_progress, NULL);
        rc = ocr_run(en->ocr, req, &out, &status, err, sizeof err);
    }
#endif
    if (rc == 0) {
        on_start(NULL, id, 0, 0);
        /* the wire caps a frame; a document larger than that is an error */
        if (out.len > WIRE_MAX_PAYLOAD) {
            on_error(NULL, id, 413, "result_too_large", "the result is too large to return");
        } else {
            on_delta(NULL, id, out.data ? out.data : "", out.len);
            llm_usage u = { 0 };
            on_done(NULL, id, "stop", &u);
        }
    } else if (status == 499 && doc_stopped_for_shutdown()) {
        on_error(NULL, id, 503, "shutting_down", "the server is shutting down");
    } else {
        on_error(NULL, id, status, status == 413 ? "input_too_large"
                                   : status == 400 ? "invalid_input"
                                   : status == 499 ? "cancelled" : "engine_failed", err);
    }
    buf_free(&out);
}

static void handle_request(struct engine *en, uint32_t id, const json *req)
{
    const json *kind = json_get(req, "kind");
    bool want_embed = json_str_is(kind, "embedding");
    char msg[160];
    const char *have = en->asr ? "transcription" : en->ocr ? "ocr" : NULL;
    if (have || json_str_is(kind, "transcription") || json_str_is(kind, "ocr")) {
        if (!have || !json_str_is(kind, have)) {
            snprintf(msg, sizeof msg, "model '%s' is %s model; it cannot serve this endpoint",
                     en->name, have ? (en->asr ? "a transcription" : "an OCR")
                               : en->emb ? "an embedding" : "a chat");
            on_error(NULL, id, 400, "wrong_model_kind", msg);
        } else {
            run_document(en, id, req);
        }
    } else if (en->emb && !want_embed) {
        snprintf(msg, sizeof msg, "model '%s' is an embedding model; use /v1/embeddings", en->name);
        on_error(NULL, id, 400, "wrong_model_kind", msg);
    } else if (en->llm && want_embed) {
        snprintf(msg, sizeof msg, "model '%s' is not an embedding model", en->name);
        on_error(NULL, id, 400, "wrong_model_kind", msg);
    } else {
#if W_LLM
        if (en->emb)
            embed_run(en->emb, id, req);
        else
            llm_submit(en->llm, id, req);
#endif
    }
}

static void handle_frame(struct engine *en, const wire_hdr *h, const char *payload, int *quit)
{
    switch (h->type) {
    case WIRE_REQUEST: {
        arena *a = arena_new(WIRE_MAX_PAYLOAD * 4ull);
        char err[128];
        const json *req = a ? json_parse(a, payload, h->len, err, sizeof err) : NULL;
        if (!req || req->type != JSON_OBJECT)
            on_error(NULL, h->id, 400, "bad_request", "malformed request from daemon");
        else
            handle_request(en, h->id, req);
        arena_free(a);
        break;
    }
    case WIRE_CANCEL:
#if W_LLM
        if (en->llm)
            llm_cancel(en->llm, h->id);
#endif
        break;
    case WIRE_SHUTDOWN:
        *quit = 1;
        break;
    default:
        log_warn("unexpected frame %s from daemon", wire_type_name(h->type));
    }
}

int main(int argc, char **argv)
{
#if W_LLM
    /* One malloc arena for every thread. glibc gives each new thread that
     * allocates its own arena, and with huge pages for malloc (the worker's
     * GLIBC_TUNABLES, worker/supervisor.c) an arena's first allocation
     * makes 2 MiB resident: ggml's threads added 1-2 MiB to a small model's
     * footprint. This worker's threads
     * allocate little, so they do not contend for the one arena. */
    mallopt(M_ARENA_MAX, 1);
#endif
    llm_params p = { .parallel = 1, .ctx_size = 4096, .batch_size = 512 };
    const char *name = "model", *blas = "auto", *kernels = "auto";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "hearth-worker: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model")) p.path = v;
        else if (!strcmp(a, "--threads")) p.threads = atoi(v);
        else if (!strcmp(a, "--parallel")) p.parallel = atoi(v);
        else if (!strcmp(a, "--ctx-size")) p.ctx_size = atoi(v);
        else if (!strcmp(a, "--batch-size")) p.batch_size = atoi(v);
        else if (!strcmp(a, "--stream-interval")) p.stream_interval_ms = atoi(v);
        else if (!strcmp(a, "--name")) name = v;
        else if (!strcmp(a, "--blas")) blas = v;
        else if (!strcmp(a, "--kernels")) kernels = v;
        else if (!strcmp(a, "--fd")) g_fd = atoi(v);
        else if (!strcmp(a, "--log-level")) {
            log_level lv;
            if (log_parse_level(v, &lv) == 0)
                log_set_level(lv);
        } else {
            fprintf(stderr, "hearth-worker: unknown option %s\n", a);
            return 2;
        }
    }
    if (!p.path) {
        usage();
        return 2;
    }
    if (p.threads <= 0) {               /* ggml's, OpenBLAS's and whisper's alike */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        p.threads = ncpu > 0 ? (int)ncpu : 1;
    }
    if (fcntl(g_fd, F_GETFD) < 0) {
        fprintf(stderr, "hearth-worker: no daemon socket on fd %d (run by hearthd only)\n", g_fd);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
    char proc[48];
    snprintf(proc, sizeof proc, "worker:%s", name);
    log_set_process(proc);

    /* What the file holds decides the engine, and whether its F16 products
     * get the BLAS backend (worker/accel.h): embeddings and speech, whose
     * weights are F16, and chat models whose layer matrices are mostly
     * F16, BF16 or F32 (their prompts: 0.5B F16 103 -> 430 t/s). */
    struct stat st;
    bool is_dir = stat(p.path, &st) == 0 && S_ISDIR(st.st_mode);
    bool is_whisper = !is_dir && ggml_legacy_is_whisper(p.path);
    bool is_embed = false, is_float = false;
    if (!is_dir && !is_whisper) {
        gguf_info gi;
        char gerr[128];
        if (gguf_check_file(p.path, &gi, gerr, sizeof gerr) == 0) {
            is_embed = gguf_arch_is_embedding(gi.arch);
            is_float = gguf_is_float_chat_model(&gi);
        }
    }
#if W_LLM
    /* An embedding model runs its products on the BLAS backend's threads
     * and the rest on ggml's OpenMP team: two pools on the same cores.
     * OpenMP's threads spin after each graph by default and took a core
     * from BLAS's (41% of a MiniLM worker's samples in libgomp); asleep at
     * once they do not (embeddings 84 -> 97 per second). libgomp reads the
     * policy once, as it loads with ggml (before main), so the worker runs
     * itself again with it set; a policy the user set stays. A chat model's
     * prompts on the BLAS backend meet the same two pools (its decode steps,
     * one row per sequence, stay on ggml's team: no change measured). */
    if ((is_embed || is_float) && accel_available(blas) && !getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
        log_warn("could not run the worker again with OpenMP's passive wait: %s", strerror(errno));
    }
#endif
#if W_LLM || W_ASR
    if (is_whisper || is_embed || is_float)
        p.accel = accel_load(blas, p.threads);
#else
    (void)blas;
    (void)is_embed;
    (void)is_float;
#endif
#if W_LLM || W_ASR
    backends_load();
#endif
#if W_LLM
    llama_backend_init();
    kernels_init(kernels);      /* status asks kernels_active_for() */
    kquant_init(kernels);       /* K-quant and IQ4_XS kernels (engine/kquant.h) */
    kfloat_init(kernels);       /* F16 rows (engine/kfloat.h) */
    q8k_init(kernels);          /* K-quants' activation rows (engine/q8k.h) */
    attn_init(kernels);         /* decode attention (engine/attn.h) */
    mulmat_init(kernels);       /* single-row products (engine/mulmat.h) */
    pace_init(kernels);         /* shares, barrier, fetching (engine/pace.h) */
#else
    (void)kernels;
#endif

    llm_sink sink = { NULL, on_start, on_delta, on_done, on_error, on_logprobs };
    (void)sink;
    char err[256];
    struct engine en = { .name = name };
    snprintf(err, sizeof err, "this worker binary does not run this kind of model");
    if (is_dir) {
#if W_OCR
        en.ocr = ocr_load(p.path, err, sizeof err);
#endif
    } else if (is_whisper) {
#if W_ASR
        en.asr = asr_load(p.path, p.threads, p.accel, err, sizeof err);
#endif
    } else {
#if W_LLM
        if (is_embed)
            en.emb = embed_load(&p, &sink, err, sizeof err);
        else
            en.llm = llm_load(&p, &sink, err, sizeof err);
#endif
    }
    if (!en.emb && !en.llm && !en.asr && !en.ocr) {
        char js[400];
        buf b = buf_make(0);
        buf_puts(&b, "{\"message\":");
        jw_cstr(&b, err);
        buf_putc(&b, '}');
        snprintf(js, sizeof js, "%s", b.data);
        buf_free(&b);
        send_or_die(WIRE_LOAD_FAILED, 0, js, strlen(js));
        return 1;
    }
    buf hello = buf_make(0);
#if W_LLM
    if (en.emb)
        embed_describe(en.emb, &hello);
    else
        llm_describe(en.llm, &hello);
#endif
#if W_ASR
    asr_describe(en.asr, &hello);
#endif
#if W_OCR
    ocr_describe(en.ocr, &hello);
#endif
    send_or_die(WIRE_HELLO, 0, hello.data, hello.len);
    buf_free(&hello);

    fcntl(g_fd, F_SETFL, fcntl(g_fd, F_GETFL) | O_NONBLOCK);
    wire_reader r;
    wire_reader_init(&r);
    g_reader = &r;
    int quit = 0;
#if W_LLM
    /* the model loaded in small pages: fold them into huge ones while idle */
    thp_fold *fold = en.llm ? thp_fold_plan() : NULL;
#endif
    while (!quit) {
        struct pollfd pfd = { .fd = g_fd, .events = POLLIN };
        bool busy = false, chores = false;
#if W_LLM
        busy = en.llm && llm_busy(en.llm);
        chores = fold != NULL;
#endif
        int pr = poll(&pfd, 1, busy || chores ? 0 : -1);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr > 0) {
            long n = wire_reader_fill(&r, g_fd);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;              /* daemon gone */
            wire_hdr h;
            const char *payload;
            int k;
            while ((k = wire_reader_next(&r, &h, &payload)) == 1)
                handle_frame(&en, &h, payload, &quit);
            if (k < 0) {
                log_error("corrupt frame from daemon; exiting");
                break;
            }
        }
#if W_LLM
        if (en.llm && llm_busy(en.llm)) {
            if (llm_step(en.llm) < 0)
                break;
        } else if (fold && pr == 0 && !thp_fold_step(fold, 2)) {
            log_debug("%.1f MiB of the model's memory folded into huge pages",
                      (double)thp_fold_done(fold) / (1 << 20));
            thp_fold_free(fold);
            fold = NULL;
        }
#endif
    }
    g_reader = NULL;
    wire_reader_free(&r);
#if W_LLM
    thp_fold_free(fold);
    llm_free(en.llm);
    embed_free(en.emb);
    llama_backend_free();
#endif
#if W_ASR
    asr_free(en.asr);
#endif
#if W_OCR
    ocr_free(en.ocr);
#endif
    return 0;
}
