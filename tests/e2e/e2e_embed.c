/*
 * e2e_embed.c: POST /v1/embeddings against the real daemon, on a synthesized
 * MiniLM-shape BERT model (random weights, the real bge WordPiece vocab):
 * shapes, L2 norm, single vs batch vs reordered equality, token-id inputs,
 * base64, and the error cases. See harness.h for the environment.
 */
#include "harness.h"

#include <math.h>

static struct daemon E;

struct vecs {
    int n, dim;
    float *v;          /* n x dim */
    int prompt_tokens;
};

static void vecs_free(struct vecs *v)
{
    free(v->v);
    v->v = NULL;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* POST and parse; status in *st. Floats or base64 both land in v. */
static struct vecs embed(const char *body, long *st)
{
    struct vecs out = { 0 };
    struct resp r = post(&E, "/v1/embeddings", body);
    *st = r.status;
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    const json *data = json_get(j, "data");
    if (r.status == 200 && data && data->type == JSON_ARRAY) {
        out.n = (int)data->len;
        out.prompt_tokens = (int)num_at(j, "usage.prompt_tokens");
        int i = 0;
        for (const json *d = data->child; d; d = d->next, i++) {
            const json *e = json_get(d, "embedding");
            if (num_at(d, "index") != i || !str_at(d, "object") ||
                strcmp(str_at(d, "object"), "embedding"))
                out.n = -1;
            if (e && e->type == JSON_ARRAY) {
                if (!out.v) {
                    out.dim = (int)e->len;
                    out.v = calloc((size_t)out.n * (size_t)out.dim, sizeof(float));
                }
                int k = 0;
                for (const json *x = e->child; x && k < out.dim; x = x->next, k++)
                    out.v[(size_t)i * (size_t)out.dim + (size_t)k] = (float)x->number;
            } else if (e && e->type == JSON_STRING) {
                size_t nb = e->len / 4 * 3 - (e->len && e->str[e->len - 1] == '=') -
                            (e->len > 1 && e->str[e->len - 2] == '=');
                if (!out.v) {
                    out.dim = (int)(nb / 4);
                    out.v = calloc((size_t)out.n * (size_t)out.dim, sizeof(float));
                }
                unsigned char *dst = (unsigned char *)(out.v + (size_t)i * (size_t)out.dim);
                size_t o = 0;
                for (size_t q = 0; q + 3 < e->len; q += 4) {
                    int c0 = b64val(e->str[q]), c1 = b64val(e->str[q + 1]);
                    int c2 = b64val(e->str[q + 2]), c3 = b64val(e->str[q + 3]);
                    unsigned v = ((unsigned)c0 << 18) | ((unsigned)c1 << 12) |
                                 ((unsigned)(c2 < 0 ? 0 : c2) << 6) | (unsigned)(c3 < 0 ? 0 : c3);
                    if (o < nb) dst[o++] = (unsigned char)(v >> 16);
                    if (o < nb && c2 >= 0) dst[o++] = (unsigned char)(v >> 8);
                    if (o < nb && c3 >= 0) dst[o++] = (unsigned char)v;
                }
            }
        }
    }
    arena_free(a);
    resp_free(&r);
    return out;
}

static double maxdiff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > m)
            m = fabs((double)a[i] - b[i]);
    return m;
}

static const char *texts[] = { "The cat sat on the mat.", "Stock markets fell sharply today.",
                               "A kitten rests on a rug.", "Rain is expected tomorrow morning.",
                               "hello" };

static void t_single_and_norm(void)
{
    long st;
    struct vecs v = embed("{\"model\":\"minilm\",\"input\":\"The cat sat on the mat.\"}", &st);
    CHECK(st == 200);
    CHECK(v.n == 1 && v.dim == 384);
    double norm = 0;
    for (int i = 0; i < v.dim; i++)
        norm += (double)v.v[i] * v.v[i];
    CHECK(fabs(sqrt(norm) - 1.0) < 1e-3);
    CHECK(v.prompt_tokens >= 8);        /* [CLS] 7 word pieces [SEP] */
    vecs_free(&v);
}

static void t_batch_equals_single_any_order(void)
{
    long st;
    buf b = buf_make(0);
    buf_puts(&b, "{\"model\":\"minilm\",\"input\":[");
    for (int i = 0; i < 5; i++) {
        if (i)
            buf_putc(&b, ',');
        jw_cstr(&b, texts[i]);
    }
    buf_puts(&b, "]}");
    struct vecs all = embed(b.data, &st);
    CHECK(st == 200 && all.n == 5);
    buf_reset(&b);
    buf_puts(&b, "{\"model\":\"minilm\",\"input\":[");
    for (int i = 4; i >= 0; i--) {
        if (i != 4)
            buf_putc(&b, ',');
        jw_cstr(&b, texts[i]);
    }
    buf_puts(&b, "]}");
    struct vecs rev = embed(b.data, &st);
    CHECK(st == 200 && rev.n == 5);
    double worst = 0;
    for (int i = 0; i < 5 && all.v && rev.v; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"model\":\"minilm\",\"input\":\"%s\"}", texts[i]);
        struct vecs one = embed(body, &st);
        CHECK(st == 200 && one.n == 1 && one.dim == all.dim);
        if (one.v) {
            double d1 = maxdiff(one.v, all.v + (size_t)i * (size_t)all.dim, all.dim);
            double d2 = maxdiff(one.v, rev.v + (size_t)(4 - i) * (size_t)all.dim, all.dim);
            worst = fmax(worst, fmax(d1, d2));
        }
        vecs_free(&one);
    }
    fprintf(stderr, "  largest difference single vs batch vs reversed: %.2e\n", worst);
    CHECK(worst == 0);     /* bit-identical, with or without the BLAS backend */
    /* different texts give different vectors */
    CHECK(all.v && maxdiff(all.v, all.v + all.dim, all.dim) > 1e-3);
    vecs_free(&all);
    vecs_free(&rev);
    buf_free(&b);
}

static void t_token_ids_and_base64(void)
{
    long st;
    /* [CLS] the cat [SEP] in the bge vocab: 101 1996 4937 102 */
    struct vecs ids = embed("{\"model\":\"minilm\",\"input\":[101,1996,4937,102]}", &st);
    CHECK(st == 200 && ids.n == 1 && ids.prompt_tokens == 4);
    struct vecs txt = embed("{\"model\":\"minilm\",\"input\":\"the cat\"}", &st);
    CHECK(st == 200 && txt.n == 1);
    CHECK(ids.v && txt.v && maxdiff(ids.v, txt.v, ids.dim) < 1e-5);
    struct vecs two = embed("{\"model\":\"minilm\",\"input\":[[101,1996,4937,102],[101,102]]}", &st);
    CHECK(st == 200 && two.n == 2);
    struct vecs b64 = embed("{\"model\":\"minilm\",\"input\":\"the cat\",\"encoding_format\":\"base64\"}",
                            &st);
    CHECK(st == 200 && b64.n == 1 && b64.dim == txt.dim);
    CHECK(b64.v && txt.v && maxdiff(b64.v, txt.v, txt.dim) < 1e-6);
    vecs_free(&ids);
    vecs_free(&txt);
    vecs_free(&two);
    vecs_free(&b64);
}

static void t_errors(void)
{
    struct {
        const char *path, *body;
        long status;
        const char *code;
    } cases[] = {
        { "/v1/embeddings", "{\"model\":\"minilm\"}", 400, "missing_required_parameter" },
        { "/v1/embeddings", "{\"model\":\"minilm\",\"input\":\"\"}", 400, "invalid_value" },
        { "/v1/embeddings", "{\"model\":\"minilm\",\"input\":{\"a\":1}}", 400, "invalid_type" },
        { "/v1/embeddings", "{\"model\":\"minilm\",\"input\":[\"ok\",7]}", 400, "invalid_type" },
        { "/v1/embeddings", "{\"model\":\"minilm\",\"input\":[1.5]}", 400, "invalid_type" },
        { "/v1/embeddings", "{\"model\":\"minilm\",\"input\":[99999999]}", 400, "invalid_input" },
        { "/v1/embeddings", "{\"model\":\"minilm\",\"input\":\"x\",\"encoding_format\":\"hex\"}", 400, "invalid_value" },
        { "/v1/embeddings", "{\"model\":\"minilm\",\"input\":\"x\",\"dimensions\":128}", 400, "invalid_value" },
        { "/v1/embeddings", "{\"model\":\"nope\",\"input\":\"x\"}", 404, "model_not_found" },
        { "/v1/embeddings", "{\"model\":\"tiny\",\"input\":\"x\"}", 400, "wrong_model_kind" },
        { "/v1/chat/completions", "{\"model\":\"minilm\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "wrong_model_kind" },
        { "/v1/embeddings", "{\"model\":\"minilm\",\"input\":", 400, "invalid_json" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct resp r = post(&E, cases[i].path, cases[i].body);
        arena *a = arena_new(0);
        if (r.status != cases[i].status || !is_error_shape(parse(a, &r.body), cases[i].code)) {
            fprintf(stderr, "  case %zu: got %ld %s\n", i, r.status, r.body.data ? r.body.data : "");
            cur_failed = 1;
        }
        arena_free(a);
        resp_free(&r);
    }
    /* more inputs than allowed, and an input longer than the model's context */
    buf b = buf_make(0);
    buf_puts(&b, "{\"model\":\"minilm\",\"input\":[");
    for (int i = 0; i < 2049; i++)
        buf_puts(&b, i ? ",\"a\"" : "\"a\"");
    buf_puts(&b, "]}");
    struct resp r = post(&E, "/v1/embeddings", b.data);
    CHECK(r.status == 400);
    resp_free(&r);
    buf_reset(&b);
    buf_puts(&b, "{\"model\":\"minilm\",\"input\":\"");
    for (int i = 0; i < 700; i++)
        buf_puts(&b, "word ");
    buf_puts(&b, "\"}");
    r = post(&E, "/v1/embeddings", b.data);
    arena *a = arena_new(0);
    CHECK(r.status == 400 && is_error_shape(parse(a, &r.body), "context_length_exceeded"));
    arena_free(a);
    resp_free(&r);
    buf_free(&b);
    CHECK(healthy(&E));
}

/* The backend the worker reports in /v1/status for model `name`. */
static void backend_of(struct daemon *d, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    struct resp r = http(d, "GET", "/v1/status", NULL, 0);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    const json *ms = json_get(j, "models");
    for (const json *m = ms ? ms->child : NULL; m; m = m->next)
        if (str_at(m, "name") && strcmp(str_at(m, "name"), name) == 0 && str_at(m, "backend"))
            snprintf(out, n, "%s", str_at(m, "backend"));
    arena_free(a);
    resp_free(&r);
}

/* With setup's BLAS backend the encoder runs on OpenBLAS; with --blas off on
 * the CPU backend alone. Both give the same vectors up to rounding. */
static void t_blas_and_cpu_agree(void)
{
    char be[32];
    backend_of(&E, "minilm", be, sizeof be);
    bool installed = access("deps/prefix/usr/lib/x86_64-linux-gnu/ggml/accel/libggml-blas.so",
                            R_OK) == 0;
    fprintf(stderr, "  minilm backend: %s\n", be);
    /* setup installs it; a system ggml may bring its own or none */
    CHECK(installed ? !strcmp(be, "cpu+blas") : (!strcmp(be, "cpu") || !strcmp(be, "cpu+blas")));
    char me[700];
    snprintf(me, sizeof me, "minilm=%s/minilm.gguf", g_tmp);
    char *args[] = { "--model", me, "--threads", "2", "--blas", "off", NULL };
    struct daemon C = { 0 };
    CHECK(start_daemon(&C, "daemonEmbedCpu", args) == 0);
    long st;
    const char *body = "{\"model\":\"minilm\",\"input\":[\"The cat sat on the mat.\","
                       "\"Rain is expected tomorrow morning, then sun by the afternoon.\"]}";
    struct vecs blas = embed(body, &st);
    CHECK(st == 200 && blas.n == 2);
    struct daemon keep = E;
    E = C;                                  /* embed() posts to E */
    struct vecs cpu = embed(body, &st);
    CHECK(st == 200 && cpu.n == 2);
    backend_of(&C, "minilm", be, sizeof be);
    CHECK(strcmp(be, "cpu") == 0);
    E = keep;
    double d = blas.v && cpu.v ? maxdiff(blas.v, cpu.v, 2 * blas.dim) : 1;
    fprintf(stderr, "  largest difference BLAS vs CPU backend: %.2e\n", d);
    CHECK(d < 2e-3);
    vecs_free(&blas);
    vecs_free(&cpu);
    stop_daemon(&C);
}

static void t_cli_embed(void)
{
    char cmd[1200], path[600];
    snprintf(path, sizeof path, "%s/embed.out", g_tmp);
    snprintf(cmd, sizeof cmd, "'%s/hearth' --url http://127.0.0.1:%d embed minilm 'the cat' 'a dog' "
             "> '%s'", g_build, E.port, path);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(path, "r");
    int lines = 0, commas = 0, c;
    while (f && (c = fgetc(f)) != EOF) {
        lines += c == '\n';
        commas += c == ',';
    }
    if (f)
        fclose(f);
    CHECK(lines == 2);
    CHECK(commas == 2 * 383);      /* two vectors of 384 numbers */
    snprintf(cmd, sizeof cmd, "'%s/hearth' --url http://127.0.0.1:%d embed tiny x >/dev/null 2>&1",
             g_build, E.port);
    CHECK(system(cmd) != 0);       /* not an embedding model: a clear error, exit 1 */
}

static void t_openai_node_client(void)
{
    const char *script = getenv("HEARTH_NODE_TEST");
    CHECK(script && *script);
    if (!script)
        return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "node '%s' http://127.0.0.1:%d/v1 tiny minilm", script, E.port);
    CHECK(system(cmd) == 0);
}

/* Damaged weights give NaN vectors: a 500 that says so, never "nan" in the
 * JSON, and the daemon and the good model go on. */
static void t_damaged_model_is_loud(void)
{
    const char *body = "{\"model\":\"damaged\",\"input\":[\"one\",\"two\"]}";
    struct resp r = post(&E, "/v1/embeddings", body);
    CHECK(answer_is_error(&r, 500, "bad_model_output"));
    CHECK(r.body.data && strstr(r.body.data, "NaN or infinite") && !strstr(r.body.data, "nan,"));
    resp_free(&r);
    r = post(&E, "/v1/embeddings", "{\"model\":\"minilm\",\"input\":\"still fine\"}");
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK(healthy(&E));
}

int main(void)
{
    g_build = getenv("HEARTH_BUILD");
    g_tmp = getenv("HEARTH_TMP");
    if (!g_build || !g_tmp) {
        fprintf(stderr, "e2e: set HEARTH_BUILD and HEARTH_TMP (tests/run.sh does)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char me[700], mt[700];
    snprintf(me, sizeof me, "minilm=%s/minilm.gguf", g_tmp);
    snprintf(mt, sizeof mt, "tiny=%s/tiny.gguf", g_tmp);
    char mb[700];
    if (damaged_model("minilm.gguf", mb, sizeof mb) < 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    char *args[] = { "--model", me, "--model", mt, "--model", mb, "--threads", "2", NULL };
    if (start_daemon(&E, "daemonEmbed", args) < 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    run("single_and_norm", t_single_and_norm);
    run("batch_equals_single_any_order", t_batch_equals_single_any_order);
    run("token_ids_and_base64", t_token_ids_and_base64);
    run("errors", t_errors);
    run("blas_and_cpu_agree", t_blas_and_cpu_agree);
    run("cli_embed", t_cli_embed);
    run("openai_node_client", t_openai_node_client);
    run("damaged_model_is_loud", t_damaged_model_is_loud);
    stop_daemon(&E);
    curl_global_cleanup();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
