/*
 * bench.c: hearth against llama.cpp's llama-server on the same model, the
 * same threads (2), in one run, with the machine's memory bandwidth beside.
 *
 * Figures (median of BENCH_RUNS runs, printed as hearth / peer):
 *   decode1     single-stream decode tokens/s (128 tokens, greedy, EOS ignored)
 *   decode4/8   aggregate decode tokens/s with 4 and 8 concurrent streams
 *   ttft512     time to first token for a ~512-token prompt; prompt tokens/s
 *   turn5       time to first token of turn 5 of a chat (hearth reuses the
 *               prefix; the peer runs with cache_prompt=false)
 *   coldload    hearth: POST /v1/models/x/load until ready; peer: process
 *               start until /health answers 200
 *   evict       hearth with a budget for one model: asking for the second
 *               model (the first idle) until its answer; peer: stop one server,
 *               start the other, until its answer
 *   memory      idle RSS of hearthd with no model; per-model overhead = RSS
 *               of the process holding the model - tensor bytes
 * The bandwidth limit: decode reads every weight once per token, so tokens/s
 * cannot exceed read bandwidth / tensor bytes.
 *
 * Environment: HEARTH_BUILD, BENCH_MODEL, BENCH_MODEL2, PEER_SERVER, PEER_LIB,
 * BENCH_OUT (markdown file), BENCH_RUNS (default 3), BENCH_MACHINE (a line of
 * machine facts for the report).
 */
#include "../tests/e2e/harness.h"

#include <fcntl.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sys/mman.h>

#include "core/gguf.h"

static int g_runs = 3;
static double g_bw1;        /* best bandwidth read beside the single-stream runs */
static double g_share1[2];  /* medians of the paired shares: hearth, llama-server */
static double g_bw;                 /* GB/s, measured once */
static buf g_notes;                 /* notes printed under the table */

/* Bytes a decode step reads: every weight, except that only one row of the
 * token-embedding table is read when the output layer has its own matrix. */
static double per_token_bytes(const gguf_info *g)
{
    return (double)(g->tensor_bytes - (g->has_output ? g->token_embd_bytes : 0));
}
static buf g_md;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double max_of(const double *v, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

/* The share of the bandwidth limit one decode run reached: `rate` tokens/s
 * against the limit from the better of the two reads right before and right
 * after the run (this VM's bandwidth moves between ~45 and ~85 GB/s within
 * minutes, so a read from another moment says little about this run). */
static double paired_share(double rate, double bw_before, double bw_after, double bytes)
{
    double bw = bw_before > bw_after ? bw_before : bw_after;
    return bw > 0 ? rate * bytes / (bw * 1e9) : 0;
}

static uint64_t rss_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long a = 0, r = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &a, &r) != 2)
            r = 0;
        fclose(f);
    }
    return (uint64_t)r * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &l) < 0) {
        close(fd);
        return 0;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static bool wait_health(pid_t pid, int port, double timeout)
{
    struct daemon d = { .port = port };
    double end = now_s() + timeout;
    while (now_s() < end) {
        if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
            return false;           /* it died: see llama-server.log */
        struct resp r = http(&d, "GET", "/health", NULL, 0);
        long st = r.status;
        resp_free(&r);
        if (st == 200)
            return true;
        usleep(5000);
    }
    return false;
}

static pid_t start_peer_args(const char *model, int port, int np, int ctx_total,
                             const char *extra);

static pid_t start_peer(const char *model, int port, int np, int ctx_total)
{
    return start_peer_args(model, port, np, ctx_total, NULL);
}

static pid_t start_peer_args(const char *model, int port, int np, int ctx_total,
                             const char *extra)
{
    const char *srv = getenv("PEER_SERVER"), *lib = getenv("PEER_LIB");
    if (!srv || !lib)
        return -1;
    char ldso[600], libpath[1300], ports[16], nps[16], ctxs[16], dir[700];
    snprintf(ldso, sizeof ldso, "%s/ld-linux-x86-64.so.2", lib);
    snprintf(libpath, sizeof libpath, "%s:%s/llama", lib, lib);
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(nps, sizeof nps, "%d", np);
    snprintf(ctxs, sizeof ctxs, "%d", ctx_total);
    snprintf(dir, sizeof dir, "%s/ggml/backends0", lib);
    pid_t pid = fork();
    if (pid == 0) {
        /* this llama-server finds its CPU backends only from their folder */
        if (chdir(dir) != 0)
            _exit(126);
        char logp[700];
        snprintf(logp, sizeof logp, "%s/llama-server.log", g_tmp);
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        if (extra)      /* embeddings: a batch big enough for a request's inputs */
            execl(ldso, ldso, "--library-path", libpath, srv, "-m", model, "-t", "2", "-np", nps,
                  "-c", ctxs, "--port", ports, "--host", "127.0.0.1", "--no-webui", extra,
                  "-b", ctxs, "-ub", ctxs, (char *)NULL);
        execl(ldso, ldso, "--library-path", libpath, srv, "-m", model, "-t", "2", "-np", nps,
              "-c", ctxs, "--port", ports, "--host", "127.0.0.1", "--no-webui", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_pid(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ---- one streamed request, timed ----------------------------------------- */

struct timed {
    double t0, t_first, t_last;
    int chunks;
    int tokens;              /* usage.completion_tokens, 0 if not sent */
    buf line;
};

/* Tokens generated after the first: a server may send several in a chunk
 * (hearth's stream_interval), so count them from the usage both servers
 * send at the end, and only fall back to chunks. */
static int later_tokens(const struct timed *t)
{
    return t->tokens > 0 ? t->tokens - 1 : t->chunks - 1;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    struct timed *t = ud;
    size_t len = sz * n;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') {
            buf_putc(&t->line, p[i]);
            continue;
        }
        if (t->line.len > 6 && !strncmp(t->line.data, "data: ", 6) &&
            strstr(t->line.data, "\"content\":\"") && !strstr(t->line.data, "\"content\":\"\"")) {
            double now = now_s();
            if (!t->chunks)
                t->t_first = now;
            t->t_last = now;
            t->chunks++;
        }
        const char *u = t->line.len > 6 ? strstr(t->line.data, "\"completion_tokens\":") : NULL;
        if (u && !strncmp(t->line.data, "data: ", 6))
            t->tokens = atoi(u + strlen("\"completion_tokens\":"));
        buf_reset(&t->line);
    }
    return len;
}

static struct timed stream_chat(int port, const char *body)
{
    struct timed t = { .line = buf_make(1 << 20) };
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    t.t0 = now_s();
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    buf_free(&t.line);
    return t;
}

static char *decode_body(const char *model, const char *prompt, int n, bool cache)
{
    buf b = buf_make(0);
    buf_printf(&b, "{\"model\":\"%s\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
               "\"temperature\":0,\"ignore_eos\":true,"
               "\"max_tokens\":%d,\"cache_prompt\":%s,\"messages\":[{\"role\":\"user\","
               "\"content\":", model, n, cache ? "true" : "false");
    jw_cstr(&b, prompt);
    buf_puts(&b, "}]}");
    return buf_detach(&b, NULL);
}

struct par {
    int port;
    char *body;
    struct timed t;
};

static void *par_main(void *arg)
{
    struct par *p = arg;
    p->t = stream_chat(p->port, p->body);
    return NULL;
}

/* Aggregate decode tokens/s of n concurrent 128-token streams. */
static double decode_rate(int port, const char *model, int n)
{
    struct par ps[8];
    pthread_t th[8];
    char prompt[64];
    for (int i = 0; i < n; i++) {
        snprintf(prompt, sizeof prompt, "Story number %d about the sea.", i);
        ps[i].port = port;
        ps[i].body = decode_body(model, prompt, 128, true);
    }
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, par_main, &ps[i]);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    /* the window where all streams decode: from the last first token to the
     * first last token, counting the tokens each produced inside it */
    double start = 0, end = 1e300;
    for (int i = 0; i < n; i++) {
        if (ps[i].t.t_first > start)
            start = ps[i].t.t_first;
        if (ps[i].t.t_last < end)
            end = ps[i].t.t_last;
    }
    double toks = 0, span = 0;
    if (n == 1) {
        toks = later_tokens(&ps[0].t);
        span = ps[0].t.t_last - ps[0].t.t_first;
    } else {
        /* whole-run aggregate: all tokens over the time from the first
         * request's start to the last stream's end, minus prompt time */
        double t0 = 1e300, t1 = 0;
        for (int i = 0; i < n; i++) {
            toks += later_tokens(&ps[i].t);
            if (ps[i].t.t_first < t0)
                t0 = ps[i].t.t_first;
            if (ps[i].t.t_last > t1)
                t1 = ps[i].t.t_last;
        }
        span = t1 - t0;
    }
    (void)start;
    (void)end;
    for (int i = 0; i < n; i++)
        free(ps[i].body);
    return span > 0 ? toks / span : 0;
}

static double ttft(int port, const char *model, const char *prompt, bool cache)
{
    char *b = decode_body(model, prompt, 1, cache);
    struct timed t = stream_chat(port, b);
    free(b);
    return t.chunks ? t.t_first - t.t0 : -1;
}

/* Turn 5 of a chat: four earlier turns, each with the previous answers. */
static double turn5(int port, const char *model, bool cache)
{
    buf msgs = buf_make(0);
    buf_puts(&msgs, "[{\"role\":\"system\",\"content\":\"You are a helpful assistant. Answer with care "
                    "and in detail, citing what you know about boats, tides, weather and the sea.\"}");
    double last = 0;
    for (int turn = 1; turn <= 5; turn++) {
        buf_printf(&msgs, ",{\"role\":\"user\",\"content\":\"Question %d: tell me more about "
                          "sailing in rough weather and how to stay safe on a small boat.\"}", turn);
        buf b = buf_make(0);
        buf_printf(&b, "{\"model\":\"%s\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
               "\"temperature\":0,\"ignore_eos\":true,"
                   "\"max_tokens\":48,\"cache_prompt\":%s,\"messages\":%s]}", model,
                   cache ? "true" : "false", msgs.data);
        struct timed t = stream_chat(port, b.data);
        last = t.chunks ? t.t_first - t.t0 : -1;
        buf_free(&b);
        buf_puts(&msgs, ",{\"role\":\"assistant\",\"content\":\"");
        for (int i = 0; i < 48; i++)
            buf_puts(&msgs, "word ");
        buf_puts(&msgs, "\"}");
    }
    buf_free(&msgs);
    return last;
}

/* ---- memory read bandwidth (2 threads) ----------------------------------- */

struct bw {
    const uint64_t *p;
    size_t n;                   /* 64-byte lines */
    uint64_t sum;
    pthread_barrier_t *go;
    bool wide;                  /* the CPU has AVX-512 */
    double t0, t1;
};

/* Read n 64-byte lines with full-width loads (AVX-512 where the CPU has it,
 * else 64-bit words), eight independent sums so loads never wait on adds.
 * Like hearth's matrix kernels, the AVX-512 reader also asks for each line
 * 4 KiB ahead: on this VM that reads up to 6% faster than the hardware
 * prefetcher alone, and the limit should be the best any reader gets. */
#define BW_PREFETCH_LINES 64
__attribute__((target("avx512f"))) static uint64_t read_lines_avx512(const uint64_t *p, size_t n)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    const __m512i *v = (const __m512i *)p;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        if (i + BW_PREFETCH_LINES + 4 <= n)
            for (int k = 0; k < 4; k++)
                _mm_prefetch((const char *)(v + i + BW_PREFETCH_LINES + k), _MM_HINT_T0);
        a0 = _mm512_add_epi64(a0, _mm512_load_si512(v + i));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512(v + i + 1));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512(v + i + 2));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512(v + i + 3));
    }
    a0 = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
    return (uint64_t)_mm512_reduce_add_epi64(a0);
}

static uint64_t read_lines_scalar(const uint64_t *p, size_t n)
{
    uint64_t s[8] = { 0 };
    for (size_t i = 0; i < n * 8; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += p[i + k];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static void *bw_main(void *arg)
{
    struct bw *b = arg;
    pthread_barrier_wait(b->go);
    b->t0 = now_s();
    b->sum = b->wide ? read_lines_avx512(b->p, b->n) : read_lines_scalar(b->p, b->n);
    b->t1 = now_s();
    return NULL;
}

/* Memory read bandwidth with 2 threads, each streaming its half of a 1 GiB
 * buffer in huge pages (far beyond any cache): the best of 7 passes, timed from the first
 * thread's start to the last one's end, thread creation excluded. */
static uint64_t *g_bwmem;       /* the 1 GiB read buffer, kept for the run */

static double read_bandwidth_passes(int passes)
{
    size_t bytes = 1ull << 30;
    if (!g_bwmem) {
        g_bwmem = aligned_alloc(2u << 20, bytes);
        if (!g_bwmem)
            return 0;
        /* in 2 MiB pages, as hearth's weights are: the machine's best read
         * rate (4 KiB pages read ~13% slower here) */
        madvise(g_bwmem, bytes, MADV_HUGEPAGE);
        memset(g_bwmem, 1, bytes);
    }
    uint64_t *mem = g_bwmem;
    double best = 0;
    for (int rep = 0; rep < passes; rep++) {
        struct bw b[2];
        pthread_t th[2];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        size_t lines = bytes / 64 / 2;
        for (int i = 0; i < 2; i++) {
            b[i] = (struct bw){ mem + (size_t)i * lines * 8, lines, 0, &go,
                                __builtin_cpu_supports("avx512f"), 0, 0 };
            pthread_create(&th[i], NULL, bw_main, &b[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        double t0 = fmin(b[0].t0, b[1].t0), t1 = fmax(b[0].t1, b[1].t1);
        double gbs = (double)bytes / (t1 - t0) / 1e9;
        if (gbs > best && b[0].sum + b[1].sum != 1)
            best = gbs;
    }
    return best;
}

static double read_bandwidth(void)
{
    return read_bandwidth_passes(7);
}

/* The bandwidth right beside a measurement: this VM's memory bandwidth
 * moves (50 to 85 GB/s within an hour), so each decode figure's limit uses
 * the bandwidth read between its own runs, not the one from the start. */
static double bandwidth_now(void)
{
    return read_bandwidth_passes(3);
}

/* ---- report -------------------------------------------------------------- */

static void row(const char *what, double h, double p, const char *unit, bool higher_better);

static void row(const char *what, double h, double p, const char *unit, bool higher_better)
{
    double ratio = p > 0 ? (higher_better ? h / p : p / h) : 0;
    printf("%-40s %12.2f %12.2f %-6s %8.2fx\n", what, h, p, unit, ratio);
    buf_printf(&g_md, "| %s | %.2f | %.2f | %s | %.2fx |\n", what, h, p, unit, ratio);
}


/* ---- llama-bench and the engine's own prompt rate ------------------------- */

/* llama-bench (next to llama-server) on one model: pp512 and tg128 t/s of
 * one repetition, as a user would run it (its defaults otherwise). */
static int llama_bench(const char *model, double *pp, double *tg)
{
    const char *srv = getenv("PEER_SERVER"), *lib = getenv("PEER_LIB");
    *pp = *tg = 0;
    if (!srv || !lib)
        return -1;
    char bin[700], cmd[3000];
    snprintf(bin, sizeof bin, "%s", srv);
    char *slash = strrchr(bin, '/');
    if (!slash)
        return -1;
    snprintf(slash + 1, sizeof bin - (size_t)(slash + 1 - bin), "llama-bench");
    snprintf(cmd, sizeof cmd, "cd '%s/ggml/backends0' && '%s/ld-linux-x86-64.so.2' --library-path "
             "'%s:%s/llama' '%s' -m '%s' -t 2 -p 512 -n 128 -r 1 -o jsonl 2>/dev/null",
             lib, lib, lib, lib, bin, model);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[16384];
    while (fgets(line, sizeof line, f)) {
        arena *a = arena_new(0);
        char err[64];
        const json *j = json_parse(a, line, strlen(line), err, sizeof err);
        double np = num_at(j, "n_prompt"), ng = num_at(j, "n_gen"), ts = num_at(j, "avg_ts");
        if (np > 0 && ng == 0)
            *pp = ts;
        else if (ng > 0 && np == 0)
            *tg = ts;
        arena_free(a);
    }
    return pclose(f) == 0 && *pp > 0 && *tg > 0 ? 0 : -1;
}

/* One raw prompt of 356 words the tokenizer maps to ~7 tokens per 5, then
 * `pad` times " the", starting with digit `salt`: hearth's prompt tokens
 * and milliseconds from its own timings. */
static int prompt_once(struct daemon *d, const char *model, int salt, int pad, double *n,
                       double *ms)
{
    buf b = buf_make(0);
    buf_printf(&b, "{\"model\":\"%s\",\"max_tokens\":1,\"temperature\":0,"
               "\"cache_prompt\":false,\"prompt\":\"%d", model, salt);
    for (int i = 0; i < 71; i++)
        buf_puts(&b, " the quick brown fox jumps");
    for (int i = 0; i < pad; i++)
        buf_puts(&b, " the");
    buf_puts(&b, "\"}");
    struct resp r = post(d, "/v1/completions", b.data);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    *n = num_at(j, "timings.prompt_n");
    *ms = num_at(j, "timings.prompt_ms");
    arena_free(a);
    resp_free(&r);
    buf_free(&b);
    return r.status == 200 && *n > 0 && *ms > 0 ? 0 : -1;
}

/* hearth's prompt tokens/s for a 512-token raw prompt (llama-bench's pp512),
 * from its own timings (the engine's time, as llama-bench measures its
 * own). The count matters: ggml's prompt kernels work in tiles of 32 rows,
 * and llama-bench's own pp499 is ~2.5% slower than its pp512. When *pad is
 * negative, the padding that makes 512 tokens is found first, by requests
 * that start with the digits 9 to 6 (hearth reuses a cached prefix,
 * whatever a request says, so they must not share a measured prompt's
 * start); measured runs start with 0 to 5 (more than 6 runs repeat a start,
 * and a repeat is then mostly reused). */
static double prompt_rate(struct daemon *d, const char *model, int salt, int *pad,
                          int *n_tokens)
{
    double n, ms;
    if (*pad < 0) {
        int p = 0;
        for (int k = 0; k < 4; k++) {
            if (prompt_once(d, model, 9 - k, p, &n, &ms) < 0)
                return 0;
            if ((int)n == 512)
                break;
            p += 512 - (int)n;
            if (p < 0)
                p = 0;
        }
        *pad = p;
    }
    if (prompt_once(d, model, salt % 6, *pad, &n, &ms) < 0)
        return 0;
    if (n_tokens)
        *n_tokens = (int)n;
    /* n counts the tokens computed, not a reused start (the first one or
     * two, shared with whatever a slot held): the next run is padded to
     * what this one lacked */
    *pad += 512 - (int)n;
    if (*pad < 0)
        *pad = 0;
    return n * 1000 / ms;
}

/* Rows against llama-bench for one model served by d as `name`. */
static void versus_llama_bench(struct daemon *d, const char *name, const char *path,
                               const char *label)
{
    gguf_info g;
    char err[200];
    if (gguf_check_file(path, &g, err, sizeof err) < 0)
        return;
    /* hearth and llama-bench take turns, so both sample the same moments
     * of this machine's (unsteady) memory bandwidth; medians of g_runs */
    double hv[16], hp[16], lp[16], lt[16], bw[17], bwb[16], bwc[16], hs[16], ls[16];
    double bytes = per_token_bytes(&g);
    int ntok = 0, pad = -1;
    for (int i = 0; i < g_runs; i++) {
        bw[i] = bandwidth_now();
        if (llama_bench(path, &lp[i], &lt[i]) < 0) {
            fprintf(stderr, "bench: llama-bench failed on %s\n", path);
            return;
        }
        bwb[i] = bandwidth_now();
        hv[i] = decode_rate(d->port, name, 1);
        bwc[i] = bandwidth_now();
        hs[i] = paired_share(hv[i], bwb[i], bwc[i], bytes);
        ls[i] = paired_share(lt[i], bw[i], bwb[i], bytes);
        printf("  %s run %d: llama-bench %.2f t/s (reads %.1f, %.1f GB/s), hearth %.2f t/s "
               "(reads %.1f, %.1f GB/s)\n", label, i + 1, lt[i], bw[i], bwb[i], hv[i], bwb[i],
               bwc[i]);
        hp[i] = prompt_rate(d, name, i, &pad, &ntok);
    }
    bw[g_runs] = bandwidth_now();
    double dec = median(hv, g_runs), pr = median(hp, g_runs);
    double pp = median(lp, g_runs), tg = median(lt, g_runs);
    char what[160];
    snprintf(what, sizeof what, "%s: decode 1 stream (t/s) vs llama-bench tg128", label);
    row(what, dec, tg, "t/s", true);
    snprintf(what, sizeof what, "%s: prompt t/s (%d tokens) vs llama-bench pp512", label, ntok);
    row(what, pr, pp, "t/s", true);
    /* a limit must not be read low: the best bandwidth read before, between
     * and after the runs */
    for (int i = 0; i < g_runs; i++) {
        double b = bwb[i] > bwc[i] ? bwb[i] : bwc[i];
        bw[g_runs] = b > bw[g_runs] ? b : bw[g_runs];
    }
    double bwm = max_of(bw, g_runs + 1), lim = bwm * 1e9 / bytes;
    double hsh = median(hs, g_runs), lsh = median(ls, g_runs);
    printf("  %s: each run against the bandwidth read right before and after it: hearth %.0f%%, "
           "llama-bench %.0f%% of the limit; against the best read beside all runs (%.1f GB/s, "
           "%.1f t/s): hearth %.0f%%, llama-bench %.0f%%\n",
           label, 100 * hsh, 100 * lsh, bwm, lim, 100 * dec / lim, 100 * tg / lim);
    buf_printf(&g_md, "| %s: share of the bandwidth limit, each run against the reads right beside it "
               "| %.0f%% | %.0f%% | | |\n", label, 100 * hsh, 100 * lsh);
    buf_printf(&g_md, "| %s: share of the bandwidth limit (%.1f GB/s, best beside the runs: %.1f t/s) "
               "| %.0f%% | %.0f%% | | |\n", label, bwm, lim, 100 * dec / lim, 100 * tg / lim);
}

/* Transcription real-time factor on the shared speech clips, one whisper
 * model (`shape` names it in the report) against whisper-cli. */
static void transcription(const char *wmodel, const char *shape)
{
    const char *wpeer = getenv("PEER_WHISPER_ROOT");
    const char *speech = getenv("BENCH_SPEECH_DIR");
    if (wmodel && *wmodel && wpeer && speech) {
        const char *clips[] = { "jfk.wav",
            "librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
            "librivox/sense_and_sensibility_01_austen_64kb-0880.wav",
            "librivox/sense_and_sensibility_01_austen_64kb-0890.wav",
            "librivox/sense_and_sensibility_01_austen_64kb-0920.wav",
            "librivox/sense_and_sensibility_01_austen_64kb-0930.wav",
            "librispeech-test-clean/1089-134686-0000.wav",
            "librispeech-test-clean/1089-134686-0001.wav",
            "librispeech-test-clean/1089-134691-0000.wav",
            "librispeech-test-clean/1089-134691-0001.wav" };
        char mw[700];
        snprintf(mw, sizeof mw, "whisper=%s", wmodel);
        char *wargs[] = { "--model", mw, "--threads", "2", "--log-level", "warn", NULL };
        struct daemon WH = { 0 };
        double h_proc = 0, p_proc = 0, audio = 0;
        int ok = 0;
        if (start_daemon(&WH, "bench-whisper", wargs) == 0) {
            struct resp w = post(&WH, "/v1/models/whisper/load", "{}");
            resp_free(&w);
            for (size_t i = 0; i < sizeof clips / sizeof *clips; i++) {
                char f[1200];
                snprintf(f, sizeof f, "%s/%s", speech, clips[i]);
                /* hearth: the whole request, upload and decode included */
                char cmd[4000];
                snprintf(cmd, sizeof cmd, "curl -s -o %s/wout.json -F model=whisper "
                         "-F response_format=verbose_json -F file=@'%s' "
                         "http://127.0.0.1:%d/v1/audio/transcriptions", g_tmp, f, WH.port);
                double s0 = now_s();
                int rc = system(cmd);
                double dt = now_s() - s0;
                char wj[700];
                snprintf(wj, sizeof wj, "%s/wout.json", g_tmp);
                size_t n = 0;
                FILE *fj = fopen(wj, "rb");
                char *doc = NULL;
                if (fj) {
                    doc = malloc(1 << 22);
                    n = fread(doc, 1, (1 << 22) - 1, fj);
                    doc[n] = '\0';
                    fclose(fj);
                }
                const char *dur = doc ? strstr(doc, "\"duration\":") : NULL;
                double secs = dur ? atof(dur + 11) : 0;
                free(doc);
                /* the peer: whisper-cli's own compute time (its "total time"),
                 * greedy like hearth; its process start-up is not counted */
                char lib[800];
                snprintf(lib, sizeof lib, "%s/usr/lib/x86_64-linux-gnu", wpeer);
                snprintf(cmd, sizeof cmd, "cd '%s/ggml/backends0' && '%s/ld-linux-x86-64.so.2' "
                         "--library-path '%s:%s/pulseaudio:%s/blas:%s/lapack' '%s/usr/bin/whisper-cli' "
                         "-m '%s' -f '%s' -t 2 -bs 1 -bo 1 2>&1 | grep 'total time' > %s/wpeer.txt",
                         lib, lib, lib, lib, lib, lib, wpeer, wmodel, f, g_tmp);
                int prc = system(cmd);
                char wp[700];
                snprintf(wp, sizeof wp, "%s/wpeer.txt", g_tmp);
                char line[256];
                first_line(wp, line, sizeof line);
                const char *eq = strstr(line, "=");
                double pms = eq ? atof(eq + 1) : 0;
                if (rc == 0 && prc == 0 && secs > 0 && pms > 0) {
                    h_proc += dt;
                    p_proc += pms / 1000;
                    audio += secs;
                    ok++;
                }
            }
            stop_daemon(&WH);
        }
        if (ok) {
            char what[120];
            snprintf(what, sizeof what, "transcription, %s (x faster than real time)", shape);
            row(what, audio / h_proc, audio / p_proc, "x", true);
            buf_printf(&g_notes, "\nTranscription (%s): %d clips, %.1f s of audio, F16 "
                       "(random weights, so both sides fall back to higher temperatures alike); "
                       "whisper-cli run greedy (-bs 1 -bo 1), its own compute time counted, not "
                       "its process start-up; hearth's figure is the whole HTTP request.\n",
                       shape, ok, audio);
        }
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each row as it is measured, also into a log */
    g_build = getenv("HEARTH_BUILD");
    if (getenv("BENCH_BANDWIDTH_ONLY")) {   /* just the machine's read bandwidth */
        printf("%.1f GB/s\n", read_bandwidth());
        return 0;
    }
    g_tmp = getenv("BENCH_TMP");
    const char *model = getenv("BENCH_MODEL"), *model2 = getenv("BENCH_MODEL2");
    if (!g_build || !g_tmp || !model || !model2) {
        fprintf(stderr, "bench: run it with bench/run.sh (make bench)\n");
        return 2;
    }
    if (getenv("BENCH_RUNS"))
        g_runs = atoi(getenv("BENCH_RUNS"));
    if (g_runs < 1 || g_runs > 16) {       /* the per-figure arrays hold 16 */
        fprintf(stderr, "bench: BENCH_RUNS must be 1 to 16\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_md = buf_make(0);
    g_notes = buf_make(0);
    gguf_info gi;
    char err[200];
    if (gguf_check_file(model, &gi, err, sizeof err) < 0) {
        fprintf(stderr, "bench: %s: %s\n", model, err);
        return 1;
    }
    g_bw = read_bandwidth();
    double limit = g_bw * 1e9 / per_token_bytes(&gi);
    printf("memory read bandwidth (2 threads): %.1f GB/s; weights read per token %.1f MB -> "
           "decode limit %.1f t/s\n", g_bw, per_token_bytes(&gi) / 1e6, limit);
    buf_printf(&g_md, "Memory read bandwidth (2 threads, best of 7 reads of 1 GiB in 2 MiB pages): **%.1f GB/s**. "
               "Weights read per token: %.1f MB (every tensor but the token-embedding table, of "
               "which a step reads one row), so single-stream decode cannot exceed **%.1f "
               "tokens/s**.\n\n", g_bw, per_token_bytes(&gi) / 1e6, limit);
    buf_puts(&g_md, "The peer is llama-server (2 threads) unless a row names llama-bench; for "
                    "embeddings it is llama-server --embedding, for transcription whisper-cli.\n\n"
                    "| figure | hearth | peer | unit | hearth vs peer |\n|---|---|---|---|---|\n");
    printf("%-40s %12s %12s %-6s %9s\n", "figure", "hearth", "peer", "unit", "ratio");

    /* hearth */
    struct daemon H = { 0 };
    char m1[700], m2[700];
    snprintf(m1, sizeof m1, "bench=%s", model);
    snprintf(m2, sizeof m2, "bench2=%s", model2);
    char *hargs[] = { "--model", m1, "--parallel", "8", "--ctx-size", "2048", "--threads", "2",
                      "--log-level", "warn", NULL };
    if (start_daemon(&H, "bench-hearth", hargs) < 0)
        return 1;
    double idle_rss = (double)rss_of(H.pid);
    /* cold loads, taking turns with llama-server's start (how fast this VM
     * hands out fresh memory moves from minute to minute): medians of g_runs;
     * the peer's last start stays up for the figures below */
    int pport = free_port();
    pid_t peer = -1;
    double hc[16], pc[16], t0;
    for (int i = 0; i < g_runs; i++) {
        if (i > 0) {
            struct resp u = post(&H, "/v1/models/bench/unload", "{}");
            resp_free(&u);
            stop_pid(peer);
        }
        t0 = now_s();
        struct resp r = post(&H, "/v1/models/bench/load", "{}");
        hc[i] = now_s() - t0;
        resp_free(&r);
        t0 = now_s();
        peer = start_peer(model, pport, 8, 2048 * 8);
        if (peer < 0 || !wait_health(peer, pport, 120)) {
            fprintf(stderr, "bench: llama-server did not start\n");
            stop_daemon(&H);
            return 1;
        }
        pc[i] = now_s() - t0;
    }
    double h_cold = median(hc, g_runs), p_cold = median(pc, g_runs);
    int ppid = 0;
    {
        arena *a = arena_new(0);
        struct resp s = http(&H, "GET", "/v1/status", NULL, 0);
        const json *j = parse(a, &s.body);
        ppid = (int)num_at(j, "models.0.pid");
        resp_free(&s);
        arena_free(a);
    }


    double hv[16], pv[16];
    char prompt512[8192];
    prompt512[0] = '\0';
    for (int i = 0; i < 100; i++)
        strcat(prompt512, "the quick brown fox jumps ");

    struct { const char *name; int n; } dec[] = { { "decode, 1 stream (t/s)", 1 },
                                                  { "decode, 4 streams aggregate (t/s)", 4 },
                                                  { "decode, 8 streams aggregate (t/s)", 8 } };
    double h_dec1 = 0, bw1[17], bwa[16], hs[16], ps[16], bytes1 = per_token_bytes(&gi);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < g_runs; i++) {
            if (k == 0)
                bw1[i] = bandwidth_now();
            hv[i] = decode_rate(H.port, "bench", dec[k].n);
            if (k == 0)
                bwa[i] = bandwidth_now();
            pv[i] = decode_rate(pport, "bench", dec[k].n);
        }
        if (k == 0) {
            bw1[g_runs] = bandwidth_now();
            for (int i = 0; i < g_runs; i++) {
                hs[i] = paired_share(hv[i], bw1[i], bwa[i], bytes1);
                ps[i] = paired_share(pv[i], bwa[i], bw1[i + 1], bytes1);
            }
            g_share1[0] = median(hs, g_runs);
            g_share1[1] = median(ps, g_runs);
        }
        double h = median(hv, g_runs), p = median(pv, g_runs);
        if (k == 0) {
            h_dec1 = h;
            g_bw1 = max_of(bw1, g_runs + 1);   /* the best read beside the runs */
            g_bw1 = fmax(g_bw1, max_of(bwa, g_runs));
        }
        row(dec[k].name, h, p, "t/s", true);
    }
    for (int i = 0; i < g_runs; i++) {
        /* vary the prompt so neither side serves it from a cache */
        char pr[8300];
        snprintf(pr, sizeof pr, "%d %s", i * 7 + 1, prompt512);
        hv[i] = ttft(H.port, "bench", pr, false) * 1000;
        snprintf(pr, sizeof pr, "%d %s", i * 7 + 2, prompt512);
        pv[i] = ttft(pport, "bench", pr, false) * 1000;
    }
    row("time to first token, ~512-token prompt", median(hv, g_runs), median(pv, g_runs), "ms", false);
    for (int i = 0; i < g_runs; i++) {
        hv[i] = turn5(H.port, "bench", true) * 1000;
        pv[i] = turn5(pport, "bench", false) * 1000;
    }
    row("turn-5 first token (peer without reuse)", median(hv, g_runs), median(pv, g_runs), "ms", false);
    row("cold load until ready", h_cold * 1000, p_cold * 1000, "ms", false);
    double tb = (double)gi.tensor_bytes;
    double h_over = ((double)rss_of(ppid) - tb) / 1048576.0;
    double p_over = ((double)rss_of(peer) - tb) / 1048576.0;
    row("memory beyond the weights, model loaded", h_over, p_over, "MiB", false);
    printf("%-40s %12.1f %12s %-6s\n", "hearthd idle RSS, no model", idle_rss / 1048576.0, "-", "MiB");
    buf_printf(&g_md, "| hearthd idle RSS, no model loaded | %.1f | - | MiB | |\n",
               idle_rss / 1048576.0);
    stop_pid(peer);
    versus_llama_bench(&H, "bench", model, "0.5B Q4_0");
    stop_daemon(&H);

    /* the other shapes against llama-bench: the Q8_0 twin, the same shape in
     * Q4_K_M (what most downloadable models are; 896 wide, so mostly Q5_0)
     * and in F16 (unquantized: its prompts on the BLAS backend),
     * and a ~1B model in Q4_0, in Q4_K_M (2048 wide: Q4_K and Q6_K), in
     * Q5_K_M (Q5_K and Q6_K), in Q3_K_M (Q3_K and Q4_K), in IQ4_XS and in
     * Q2_K (Q2_K, Q3_K and Q4_K) */
    {
        static const struct {
            const char *name, *env, *label;
        } shapes[] = {
            { "q8", NULL, "0.5B Q8_0" },                      /* BENCH_MODEL2 */
            { "km", "BENCH_MODEL_Q4KM", "0.5B Q4_K_M" },
            { "f16", "BENCH_MODEL_F16", "0.5B F16" },
            { "b1", "BENCH_MODEL_1B", "1.1B Q4_0" },
            { "bkm", "BENCH_MODEL_1B_Q4KM", "1.1B Q4_K_M" },
            { "b5", "BENCH_MODEL_1B_Q5KM", "1.1B Q5_K_M" },
            { "b3", "BENCH_MODEL_1B_Q3KM", "1.1B Q3_K_M" },
            { "bx", "BENCH_MODEL_1B_IQ4XS", "1.1B IQ4_XS" },
            { "b2", "BENCH_MODEL_1B_Q2K", "1.1B Q2_K" },
        };
        enum { N = sizeof shapes / sizeof shapes[0] };
        const char *path[N];
        char arg[N][700];
        char *xargs[2 * N + 10];
        int na = 0;
        for (int i = 0; i < N; i++) {
            path[i] = shapes[i].env ? getenv(shapes[i].env) : model2;
            if (!path[i] || !*path[i]) {
                path[i] = NULL;             /* not made (llama-quantize failed): left out */
                continue;
            }
            if (snprintf(arg[i], sizeof arg[i], "%s=%s", shapes[i].name, path[i]) >=
                (int)sizeof arg[i]) {
                fprintf(stderr, "bench: model path too long, %s left out: %s\n", shapes[i].label,
                        path[i]);
                path[i] = NULL;
                continue;
            }
            xargs[na++] = "--model";
            xargs[na++] = arg[i];
        }
        char *rest[] = { "--parallel", "4", "--ctx-size", "2048", "--threads", "2",
                         "--log-level", "warn", NULL };
        for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
            xargs[na++] = rest[i];
        struct daemon X = { 0 };
        if (start_daemon(&X, "bench-shapes", xargs) == 0) {
            for (int i = 0; i < N; i++) {
                if (!path[i])
                    continue;
                versus_llama_bench(&X, shapes[i].name, path[i], shapes[i].label);
                char url[64];
                snprintf(url, sizeof url, "/v1/models/%s/unload", shapes[i].name);
                struct resp u = post(&X, url, "{}");
                resp_free(&u);
            }
            stop_daemon(&X);
        }
    }

    /* evict -> next model ready: a budget that holds one model */
    {
        gguf_info g2;
        if (gguf_check_file(model2, &g2, err, sizeof err) == 0) {
            char budget[32];
            snprintf(budget, sizeof budget, "%llu",
                     (unsigned long long)((gi.tensor_bytes > g2.tensor_bytes ? gi.tensor_bytes
                                                                             : g2.tensor_bytes) *
                                          3 / 2 + (256ull << 20)));
            char *eargs[] = { "--model", m1, "--model", m2, "--parallel", "4", "--ctx-size", "2048",
                              "--threads", "2", "--memory-budget", budget, "--log-level", "warn",
                              "--index-vector-memory", "0", NULL };
            struct daemon E = { 0 };
            double ev[16], pe[16];
            if (start_daemon(&E, "bench-evict", eargs) == 0) {
                for (int i = 0; i < g_runs; i++) {
                    /* the same switch as the peer's: bench loaded, then bench2 */
                    char *b1 = decode_body("bench", "hi", 1, true);
                    char *b2 = decode_body("bench2", "hi", 1, true);
                    struct timed t = stream_chat(E.port, b1);
                    t = stream_chat(E.port, b2);
                    ev[i] = t.chunks ? (t.t_first - t.t0) * 1000 : -1;
                    free(b1);
                    free(b2);
                }
                stop_daemon(&E);
            }
            for (int i = 0; i < g_runs; i++) {
                int port = free_port();
                pid_t a = start_peer(model, port, 4, 8192);
                wait_health(a, port, 120);
                double s0 = now_s();
                stop_pid(a);
                int port2 = free_port();
                pid_t b = start_peer(model2, port2, 4, 8192);
                wait_health(b, port2, 120);
                char *bb = decode_body("bench2", "hi", 1, true);
                struct timed t = stream_chat(port2, bb);
                pe[i] = t.chunks ? (t.t_first - s0) * 1000 : -1;
                free(bb);
                stop_pid(b);
            }
            row("switch model: evict until first token", median(ev, g_runs), median(pe, g_runs),
                "ms", false);
        }
    }

    /* embeddings: 32 inputs of ~64 tokens per request */
    const char *emodel = getenv("BENCH_EMBED_MODEL");
    if (emodel) {
        buf eb = buf_make(0);
        buf_puts(&eb, "{\"model\":\"embed\",\"input\":[");
        for (int i = 0; i < 32; i++) {
            buf_printf(&eb, "%s\"", i ? "," : "");
            for (int w = 0; w < 60; w++)
                buf_printf(&eb, "%s ", (const char *[]){ "the", "river", "ran", "past", "old",
                                                          "mills", "and", "quiet", "farms" }[(i + w) % 9]);
            buf_puts(&eb, "\"");
        }
        buf_puts(&eb, "]}");
        char me[700];
        snprintf(me, sizeof me, "embed=%s", emodel);
        char *eargs[] = { "--model", me, "--threads", "2", "--log-level", "warn", NULL };
        struct daemon EH = { 0 };
        double he[16], pe[16];
        int eport = free_port();
        pid_t ep = start_peer_args(emodel, eport, 4, 2048, "--embedding");
        if (start_daemon(&EH, "bench-embed", eargs) == 0 && ep > 0 && wait_health(ep, eport, 60)) {
            struct daemon PD = { .port = eport };
            struct resp w = post(&EH, "/v1/embeddings", eb.data);      /* warm both */
            resp_free(&w);
            w = post(&PD, "/v1/embeddings", eb.data);
            resp_free(&w);
            for (int i = 0; i < g_runs; i++) {
                double s0 = now_s();
                struct resp a = post(&EH, "/v1/embeddings", eb.data);
                he[i] = a.status == 200 ? 32 / (now_s() - s0) : 0;
                resp_free(&a);
                s0 = now_s();
                a = post(&PD, "/v1/embeddings", eb.data);
                pe[i] = a.status == 200 ? 32 / (now_s() - s0) : 0;
                resp_free(&a);
            }
            row("embeddings, 32 inputs x ~64 tokens (emb/s)", median(he, g_runs),
                median(pe, g_runs), "emb/s", true);
        }
        stop_daemon(&EH);
        stop_pid(ep);
        buf_free(&eb);
    }

    /* transcription: real-time factor on the shared speech clips */
    transcription(getenv("BENCH_WHISPER_MODEL"), "whisper-tiny shape");
    transcription(getenv("BENCH_WHISPER_BASE_MODEL"), "whisper-base shape");

    buf_puts(&g_md, g_notes.data ? g_notes.data : "");
    buf_free(&g_notes);
    double limit1 = g_bw1 * 1e9 / per_token_bytes(&gi);
    printf("single-stream decode reaches %.0f%% of the bandwidth limit, each run against the "
           "bandwidth read right before and after it (llama-server %.0f%%); %.0f%% against the best "
           "read beside all its runs (%.1f GB/s: %.1f t/s); %.0f%% of the limit from the start of "
           "the run\n", 100 * g_share1[0], 100 * g_share1[1], 100 * h_dec1 / limit1, g_bw1, limit1,
           100 * h_dec1 / limit);
    buf_printf(&g_md, "\nSingle-stream decode reaches **%.0f%%** of the bandwidth limit, each run "
               "against the bandwidth read right before and after it (llama-server: %.0f%%); "
               "**%.0f%%** against the best read beside all its runs (%.1f GB/s: %.1f t/s); %.0f%% "
               "of the limit from the start of the run.\n", 100 * g_share1[0], 100 * g_share1[1],
               100 * h_dec1 / limit1, g_bw1, limit1, 100 * h_dec1 / limit);
    const char *out = getenv("BENCH_OUT");
    if (out) {
        FILE *f = fopen(out, "a");
        if (f) {
            fputs(g_md.data, f);
            fclose(f);
        }
    }
    buf_free(&g_md);
    curl_global_cleanup();
    return 0;
}
