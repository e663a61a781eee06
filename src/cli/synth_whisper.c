/*
 * synth_whisper.c: `hearth synth --arch whisper`, a writer of whisper.cpp
 * models (the legacy ggml format, magic "lmgg") with seeded random weights,
 * for tests and benchmarks of the transcription engine.
 *
 * The header (hparams, mel filter bank, vocabulary) is copied from a
 * whisper.cpp file that has one (by default the shared weightless
 * whisper-tiny.en asset), after core/ggml_legacy.c has validated it. The
 * hparams are then set to the preset's English-only shape (n_vocab 51864,
 * n_mels 80, audio ctx 1500, text ctx 448) and ftype to F16, and every tensor
 * whisper.cpp's loader expects is appended, in its own record format
 * (i32 n_dims, i32 name length, i32 type, the dims ne0 first, the name, the
 * data): the 2-D weights, conv kernels and token embedding F16, the norms,
 * biases and positional embeddings F32, with the shapes whisper_model_load
 * checks. The loader then finds every tensor ("model size" equals what
 * core/ggml_legacy.c computes as weights_bytes) and prints no "assuming empty
 * model" warning.
 *
 * Values: matrices, conv kernels, token and positional embeddings N(0, 0.02);
 * norm weights 1; biases 0. Element j of tensor k comes from a counter-based
 * PRNG keyed by (seed, k, j), the same Irwin-Hall construction as synth.c, so
 * the same seed gives a byte-identical file. Data is generated and written
 * one chunk at a time (a few MB of memory whatever the model size); the file
 * goes to FILE.tmp and is renamed onto FILE only on success.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ggml.h>

#include "core/ggml_legacy.h"

#define WS_ASSET     "whisper-tiny.en-for-tests-noweights.bin"
#define WS_CHUNK     (1 << 18)          /* floats generated per write */
#define WS_MAX_TENSORS 512
#define WS_F32       0
#define WS_F16       1

int synth_whisper_main(int argc, char **argv);

typedef struct {
    const char *name;
    int32_t state, heads, layers;
} ws_preset;

/* The English-only OpenAI shapes (whisper.cpp's ggml-tiny.en / ggml-base.en). */
static const ws_preset presets[] = {
    { "whisper-tiny", 384, 6, 4 },
    { "whisper-base", 512, 8, 6 },
};

typedef struct {
    char name[HLEGACY_MAX_NAME_LEN + 1];
    int32_t n_dims, ne[3];
    int32_t type;
    float std;                          /* 0: constant value below */
    float value;
} ws_tensor;

typedef struct {
    const char *out, *from, *preset_name;
    const ws_preset *preset;
    uint64_t seed;
    bool quiet;
} ws_opts;

static volatile sig_atomic_t ws_stop;

static void ws_on_signal(int sig)
{
    (void)sig;
    ws_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hearth synth --arch whisper --out FILE [options]\n"
            "\n"
            "Write a whisper.cpp model (legacy ggml format) with seeded random weights,\n"
            "for tests and benchmarks. Same options and seed -> byte-identical file.\n"
            "\n"
            "Options:\n"
            "  --out FILE        output path (written to FILE.tmp, renamed on success)\n"
            "  --preset NAME     whisper-tiny (default: audio/text state 384, 6 heads,\n"
            "                    4 layers; ~78 MB) or whisper-base (512, 8 heads, 6 layers;\n"
            "                    ~148 MB); both English-only: vocab 51864, 80 mels,\n"
            "                    audio ctx 1500, text ctx 448; weights F16\n"
            "  --from FILE       a whisper.cpp model whose mel filters and vocabulary are\n"
            "                    copied (its tensors are not); default " WS_ASSET "\n"
            "                    in $HEARTH_SHARED/models, ../shared/models or\n"
            "                    /work/shared/models (first found)\n"
            "  --seed N          PRNG seed (default 42)\n"
            "  --quiet           no notes on stderr (the result line still goes to stdout)\n"
            "  -h, --help        this help\n"
            "\n"
            "Weights: matrices, conv kernels and embeddings ~N(0, 0.02), norms 1, biases 0.\n"
            "The transcripts such a model writes are gibberish; it exercises the code path\n"
            "and the cost of a real model of that size.\n"
            "Prints `wrote FILE: N tensors, X.X MB, PRESET, type f16` on stdout.\n");
}

static int parse_args(int argc, char **argv, ws_opts *o)
{
    memset(o, 0, sizeof *o);
    o->preset = &presets[0];
    o->preset_name = presets[0].name;
    o->seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        char flag[32];
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (n >= sizeof flag) {
            fprintf(stderr, "synth: unknown option '%s' (see hearth synth --arch whisper --help)\n",
                    a);
            return 2;
        }
        memcpy(flag, a, n);
        flag[n] = '\0';
        if (!strcmp(flag, "--quiet")) {
            o->quiet = true;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "synth: %s needs a value\n", flag);
                return 2;
            }
            val = argv[++i];
        }
        if (!strcmp(flag, "--out")) {
            o->out = *val ? val : NULL;
        } else if (!strcmp(flag, "--from")) {
            o->from = val;
        } else if (!strcmp(flag, "--arch")) {
            if (strcmp(val, "whisper")) {
                fprintf(stderr, "synth: --arch %s cannot be mixed with whisper options\n", val);
                return 2;
            }
        } else if (!strcmp(flag, "--preset")) {
            o->preset = NULL;
            for (size_t p = 0; p < sizeof presets / sizeof *presets; p++)
                if (!strcmp(val, presets[p].name))
                    o->preset = &presets[p];
            if (!o->preset) {
                fprintf(stderr, "synth: unknown whisper preset '%s' (whisper-tiny, "
                                "whisper-base)\n", val);
                return 2;
            }
            o->preset_name = o->preset->name;
        } else if (!strcmp(flag, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(val, &end, 0);
            if (errno || end == val || *end || *val == '-') {
                fprintf(stderr, "synth: --seed wants an unsigned integer, got '%s'\n", val);
                return 2;
            }
            o->seed = v;
        } else {
            fprintf(stderr, "synth: unknown option '%s' for --arch whisper (see hearth synth "
                            "--arch whisper --help)\n", a);
            return 2;
        }
    }
    if (!o->out) {
        fprintf(stderr, "synth: --out FILE is required (see hearth synth --arch whisper --help)\n");
        return 2;
    }
    return 0;
}

/* The default --from: WS_ASSET in the shared models. 0, or -1 after a message. */
static int find_asset(char *buf, size_t sz)
{
    const char *env = getenv("HEARTH_SHARED");
    const char *dirs[3] = { NULL, "../shared/models", "/work/shared/models" };
    char envdir[PATH_MAX];
    if (env && *env && snprintf(envdir, sizeof envdir, "%s/models", env) < (int)sizeof envdir)
        dirs[0] = envdir;
    for (int i = 0; i < 3; i++)
        if (dirs[i] && snprintf(buf, sz, "%s/%s", dirs[i], WS_ASSET) < (int)sz &&
            access(buf, R_OK) == 0)
            return 0;
    fprintf(stderr, "synth: --arch whisper copies its vocabulary from " WS_ASSET ", which "
                    "was not found in $HEARTH_SHARED/models, ../shared/models or "
                    "/work/shared/models; set HEARTH_SHARED or pass --from FILE\n");
    return -1;
}

/* ---- the tensor list ------------------------------------------------------- */

typedef struct {
    ws_tensor *t;
    int n;
} ws_list;

static void add(ws_list *l, int32_t type, float std, float value, int32_t ne0, int32_t ne1,
                int32_t ne2, const char *fmt, int layer)
{
    ws_tensor *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->n_dims = ne2 ? 3 : ne1 ? 2 : 1;
    t->ne[0] = ne0, t->ne[1] = ne1 ? ne1 : 1, t->ne[2] = ne2 ? ne2 : 1;
    t->type = type;
    t->std = std;
    t->value = value;
}

#define W(ne0, ne1, ...)   add(l, WS_F16, 0.02f, 0, ne0, ne1, 0, __VA_ARGS__)
#define NORM(ne0, ...)     add(l, WS_F32, 0, 1, ne0, 0, 0, __VA_ARGS__)
#define BIAS(ne0, ...)     add(l, WS_F32, 0, 0, ne0, 0, 0, __VA_ARGS__)

/* One attention block's tensors (prefix "attn" or "cross_attn"). */
static void add_attn(ws_list *l, const char *sys, const char *attn, int32_t s, int layer)
{
    char f[96];
    static const char *const parts[] = { "query", "key", "value", "out" };
    snprintf(f, sizeof f, "%s.blocks.%%d.%s_ln.weight", sys, attn);
    NORM(s, f, layer);
    snprintf(f, sizeof f, "%s.blocks.%%d.%s_ln.bias", sys, attn);
    BIAS(s, f, layer);
    for (int p = 0; p < 4; p++) {
        snprintf(f, sizeof f, "%s.blocks.%%d.%s.%s.weight", sys, attn, parts[p]);
        W(s, s, f, layer);
        if (p != 1) {                          /* whisper's key projection has no bias */
            snprintf(f, sizeof f, "%s.blocks.%%d.%s.%s.bias", sys, attn, parts[p]);
            BIAS(s, f, layer);
        }
    }
}

static void add_mlp(ws_list *l, const char *sys, int32_t s, int layer)
{
    char f[96];
    snprintf(f, sizeof f, "%s.blocks.%%d.mlp_ln.weight", sys);
    NORM(s, f, layer);
    snprintf(f, sizeof f, "%s.blocks.%%d.mlp_ln.bias", sys);
    BIAS(s, f, layer);
    snprintf(f, sizeof f, "%s.blocks.%%d.mlp.0.weight", sys);
    W(s, 4 * s, f, layer);
    snprintf(f, sizeof f, "%s.blocks.%%d.mlp.0.bias", sys);
    BIAS(4 * s, f, layer);
    snprintf(f, sizeof f, "%s.blocks.%%d.mlp.2.weight", sys);
    W(4 * s, s, f, layer);
    snprintf(f, sizeof f, "%s.blocks.%%d.mlp.2.bias", sys);
    BIAS(s, f, layer);
}

/* whisper_model_load's tensors for these hparams (see ggml_legacy.c's
 * weights_bytes for the same list in sizes). */
static int plan(const whisper_file_info *h, ws_list *l)
{
    int32_t a = h->n_audio_state, t = h->n_text_state;

    l->n = 0;
    l->t = calloc(WS_MAX_TENSORS, sizeof *l->t);
    if (!l->t || 7 + 15 * h->n_audio_layer + 4 + 24 * h->n_text_layer > WS_MAX_TENSORS)
        return -1;
    add(l, WS_F32, 0.02f, 0, a, h->n_audio_ctx, 0, "encoder.positional_embedding", 0);
    add(l, WS_F16, 0.02f, 0, 3, h->n_mels, a, "encoder.conv1.weight", 0);
    add(l, WS_F32, 0, 0, 1, a, 0, "encoder.conv1.bias", 0);
    add(l, WS_F16, 0.02f, 0, 3, a, a, "encoder.conv2.weight", 0);
    add(l, WS_F32, 0, 0, 1, a, 0, "encoder.conv2.bias", 0);
    for (int i = 0; i < h->n_audio_layer; i++) {
        add_attn(l, "encoder", "attn", a, i);
        add_mlp(l, "encoder", a, i);
    }
    NORM(a, "encoder.ln_post.weight", 0);
    BIAS(a, "encoder.ln_post.bias", 0);
    add(l, WS_F16, 0.02f, 0, t, h->n_vocab, 0, "decoder.token_embedding.weight", 0);
    add(l, WS_F32, 0.02f, 0, t, h->n_text_ctx, 0, "decoder.positional_embedding", 0);
    for (int i = 0; i < h->n_text_layer; i++) {
        add_attn(l, "decoder", "attn", t, i);
        add_attn(l, "decoder", "cross_attn", t, i);
        add_mlp(l, "decoder", t, i);
    }
    NORM(t, "decoder.ln.weight", 0);
    BIAS(t, "decoder.ln.bias", 0);
    return 0;
}

/* ---- values ---------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define GOLDEN 0x9e3779b97f4a7c15ull

/* Elements [j0, j0 + n) of tensor k: Irwin-Hall sums of four 16-bit uniforms
 * scaled to the std (integer-exact up to one multiply: identical everywhere). */
static void gen(float *dst, size_t n, uint64_t seed, uint64_t k, uint64_t j0, const ws_tensor *t)
{
    if (t->std == 0.0f) {
        for (size_t j = 0; j < n; j++)
            dst[j] = t->value;
        return;
    }
    uint64_t base = mix64(mix64(seed) + k * GOLDEN);
    const float scale = (float)((double)t->std * 1.7320508075688772 / 65536.0);
    for (size_t j = 0; j < n; j++) {
        uint64_t r = mix64(base + (j0 + j + 1) * GOLDEN);
        int32_t s = (int32_t)((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) +
                              (r >> 48));
        dst[j] = (float)(s - 131070) * scale;
    }
}

static int put_i32(FILE *f, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t b[4] = { (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24) };
    return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}

static int write_tensor(FILE *f, const ws_tensor *t, uint64_t seed, uint64_t k, float *fb,
                        ggml_fp16_t *hb)
{
    size_t nl = strlen(t->name);
    if (put_i32(f, t->n_dims) || put_i32(f, (int32_t)nl) || put_i32(f, t->type))
        return -1;
    for (int d = 0; d < t->n_dims; d++)
        if (put_i32(f, t->ne[d]))
            return -1;
    if (fwrite(t->name, 1, nl, f) != nl)
        return -1;
    uint64_t total = (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * (uint64_t)t->ne[2];
    for (uint64_t j = 0; j < total && !ws_stop; j += WS_CHUNK) {
        size_t n = total - j < WS_CHUNK ? (size_t)(total - j) : WS_CHUNK;
        gen(fb, n, seed, k, j, t);
        if (t->type == WS_F16) {
            ggml_fp32_to_fp16_row(fb, hb, (int64_t)n);
            if (fwrite(hb, sizeof *hb, n, f) != n)
                return -1;
        } else if (fwrite(fb, sizeof *fb, n, f) != n) {
            return -1;
        }
    }
    return 0;
}

/* ---- the file -------------------------------------------------------------- */

/* Copy bytes [off, off + n) of src to dst. */
static int copy_range(FILE *dst, FILE *src, long off, uint64_t n)
{
    char b[1 << 16];
    if (fseek(src, off, SEEK_SET))
        return -1;
    while (n) {
        size_t k = n < sizeof b ? (size_t)n : sizeof b;
        if (fread(b, 1, k, src) != k || fwrite(b, 1, k, dst) != k)
            return -1;
        n -= k;
    }
    return 0;
}

int synth_whisper_main(int argc, char **argv)
{
    ws_opts o;
    int prc = parse_args(argc, argv, &o);
    if (prc)
        return prc == 1 ? 0 : 2;

    int rc = 1;
    char from[PATH_MAX], err[256], *tmp = NULL;
    FILE *src = NULL, *f = NULL;
    bool tmp_made = false, sig_set = false;
    ws_list l = { 0 };
    float *fb = NULL;
    ggml_fp16_t *hb = NULL;
    whisper_file_info in, h;
    struct sigaction sa, old_int, old_term;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    if (o.from)
        snprintf(from, sizeof from, "%s", o.from);
    else if (find_asset(from, sizeof from))
        goto out;
    if (ggml_legacy_check_file(from, &in, err, sizeof err)) {
        fprintf(stderr, "synth: %s is not a usable whisper model: %s\n", from, err);
        goto out;
    }
    if (in.n_mels != 80 || in.n_vocab_file > 51864) {
        fprintf(stderr, "synth: %s has %d mels and %d vocabulary entries; the whisper presets "
                        "need 80 mels and at most 51864 entries (an English-only header)\n",
                from, (int)in.n_mels, (int)in.n_vocab_file);
        goto out;
    }
    h = in;
    h.n_vocab = 51864;
    h.n_audio_ctx = 1500, h.n_text_ctx = 448;
    h.n_audio_state = h.n_text_state = o.preset->state;
    h.n_audio_head = h.n_text_head = o.preset->heads;
    h.n_audio_layer = h.n_text_layer = o.preset->layers;
    h.ftype = 1;
    if (plan(&h, &l)) {
        fprintf(stderr, "synth: out of memory\n");
        goto out;
    }
    fb = malloc(WS_CHUNK * sizeof *fb);
    hb = malloc(WS_CHUNK * sizeof *hb);
    size_t ol = strlen(o.out);
    tmp = malloc(ol + 5);
    if (!fb || !hb || !tmp) {
        fprintf(stderr, "synth: out of memory\n");
        goto out;
    }
    memcpy(tmp, o.out, ol);
    memcpy(tmp + ol, ".tmp", 5);
    if (!o.quiet)
        fprintf(stderr, "synth: %s: state %d, %d heads, %d+%d layers, vocab %d, f16, seed %llu, "
                        "header from %s -> %s\n", o.preset_name, (int)h.n_audio_state,
                (int)h.n_audio_head, (int)h.n_audio_layer, (int)h.n_text_layer, (int)h.n_vocab,
                (unsigned long long)o.seed, from, o.out);

    ws_stop = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ws_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sig_set = true;

    src = fopen(from, "rb");
    if (!src) {
        fprintf(stderr, "synth: cannot open %s: %s\n", from, strerror(errno));
        goto out;
    }
    f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "synth: cannot create %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    tmp_made = true;
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    const int32_t hp[] = { h.n_vocab, h.n_audio_ctx, h.n_audio_state, h.n_audio_head,
                           h.n_audio_layer, h.n_text_ctx, h.n_text_state, h.n_text_head,
                           h.n_text_layer, h.n_mels, h.ftype };
    int werr = put_i32(f, (int32_t)HLEGACY_MAGIC);
    for (size_t i = 0; i < sizeof hp / sizeof *hp && !werr; i++)
        werr = put_i32(f, hp[i]);
    /* mel filters and vocabulary, verbatim: everything after magic + hparams */
    if (!werr)
        werr = copy_range(f, src, 48, in.header_bytes - 48);
    for (int i = 0; i < l.n && !werr && !ws_stop; i++)
        werr = write_tensor(f, &l.t[i], o.seed, (uint64_t)i, fb, hb);
    if (werr || fflush(f) || ferror(f)) {
        fprintf(stderr, "synth: write %s: %s\n", tmp, errno ? strerror(errno) : "failed");
        goto out;
    }
    long size = ftell(f);
    int cr = fclose(f);
    f = NULL;
    if (cr) {
        fprintf(stderr, "synth: close %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    if (ws_stop) {
        fprintf(stderr, "synth: interrupted\n");
        goto out;
    }
    /* what we wrote must pass our own validator, with every weight present */
    whisper_file_info chk;
    if (ggml_legacy_check_file(tmp, &chk, err, sizeof err) ||
        chk.tensor_bytes != chk.weights_bytes || chk.n_tensors != (uint64_t)l.n) {
        fprintf(stderr, "synth: internal error: the written file does not check out: %s\n",
                err[0] ? err : "tensor bytes differ from whisper's layout");
        goto out;
    }
    if (rename(tmp, o.out)) {
        fprintf(stderr, "synth: rename %s -> %s: %s\n", tmp, o.out, strerror(errno));
        goto out;
    }
    tmp_made = false;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!o.quiet)
        fprintf(stderr, "synth: done in %.2f s\n",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    printf("wrote %s: %d tensors, %.1f MB, %s, type f16\n", o.out, l.n, (double)size / 1e6,
           o.preset_name);
    fflush(stdout);
    rc = 0;
out:
    if (f)
        fclose(f);
    if (src)
        fclose(src);
    if (tmp_made)
        unlink(tmp);
    if (sig_set) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    free(tmp);
    free(fb);
    free(hb);
    free(l.t);
    return rc;
}
