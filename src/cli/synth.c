/*
 * synth.c: `hearth synth`, a writer of GGUF llama (decoder) and bert
 * (sentence-embedding encoder) models with seeded random weights; see synth.h.
 *
 * How the file is written: the tensor metadata is built in a ggml context
 * with no_alloc (no weight memory), the gguf writer writes the header, the
 * KV pairs and the tensor infos (only_meta), and then each tensor's data is
 * generated a chunk of rows at a time (F32), converted to the tensor's type
 * (ggml_fp32_to_fp16_row / ggml_quantize_chunk) and appended, padded with
 * zeros to the file's alignment, exactly where gguf's offsets say it goes
 * (data section start = meta size, which the writer pads to the alignment).
 * Peak memory is a few chunks of 1M floats, whatever the model size.
 *
 * Weights: every matrix element comes from a counter-based PRNG keyed by
 * (seed, tensor index, row, column) (splitmix64's mixer), so the bytes do not
 * depend on chunking or thread count. The value is an Irwin-Hall sum of four
 * 16-bit uniforms, rescaled to the wanted standard deviation: close to normal
 * (bounded at +-3.46 sigma), integer-exact up to one float multiply, so the
 * file is identical on any machine and libm, and much cheaper than
 * Box-Muller (the 0.5b preset at q4_0 is written in about a second). Scales: layer matrices N(0, 0.02); token_embd std 1.0 (so the
 * residual stream starts at the RMS-norm scale and the token identity is not
 * drowned by the layers); output std 1/sqrt(embd) (logits ~ N(0,1)); with
 * --tied, token_embd doubles as output and gets std 1/sqrt(embd). Norm
 * weights are 1.0 (F32).
 *
 * --arch bert writes the llama.cpp BERT layout (all-MiniLM-L6-v2 / bge-small
 * shape with --preset minilm): token_embd, token_types (always F32: llama.cpp
 * aborts on F16 at the first encode), position_embd (never quantized, like
 * llama-quantize), token_embd_norm (w, b), per layer attn_q/k/v/output (w, b),
 * attn_output_norm (w, b), ffn_up/ffn_down (w, b), layer_output_norm (w, b);
 * no output head. Matrices N(0, 0.02), token_embd std 1, position_embd and
 * token_types std 0.02, norm weights 1.0, every bias 0 (all vectors F32).
 * Metadata: bidirectional (bert.attention.causal = false), mean pooling
 * (bert.pooling_type = 1), LayerNorm eps 1e-12, token_type_count 2; the
 * WordPiece tokenizer is copied from --vocab-from (by default llama.cpp's
 * ggml-vocab-bert-bge.gguf from the shared assets). No chat template.
 */
#include "cli/synth.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ggml.h>
#include <gguf.h>

#define SYNTH_CHUNK_ELEMS (1 << 20)   /* floats generated per chunk */
#ifndef SYNTH_MAX_THREADS
#define SYNTH_MAX_THREADS 8           /* worker threads (the bytes do not depend on it) */
#endif
#define SYNTH_MIN_VOCAB   (5 + 256 + 1)
#define SYNTH_BERT_VOCAB  "ggml-vocab-bert-bge.gguf"
#define SYNTH_BERT_TYPES  2           /* tokenizer.ggml.token_type_count */

static const char CHATML_TEMPLATE[] =
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/* ------------------------------------------------------------------ options */

typedef struct {
    const char *out;
    int64_t layers, embd, heads, kv_heads, ff, vocab, ctx;
    bool kv_set, ff_set, vocab_set, ctx_set;
    bool bert;          /* --arch bert */
    enum ggml_type type;
    const char *type_name;
    uint32_t file_type;
    const char *vocab_from;
    bool chatml;
    uint64_t seed;
    bool tied, quiet;
} synth_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hearth synth --out FILE [options]\n"
            "\n"
            "Write a GGUF model with seeded random weights (for tests and benchmarks):\n"
            "a llama-architecture decoder, or with --arch bert a BERT sentence-embedding\n"
            "encoder (llama_encode, mean pooling). Same options and seed -> byte-identical\n"
            "file.\n"
            "\n"
            "Options:\n"
            "  --out FILE          output path (written to FILE.tmp, renamed on success)\n"
            "  --arch A            llama|bert|whisper (default llama); whisper writes a\n"
            "                      whisper.cpp model: see hearth synth --arch whisper --help\n"
            "  --preset NAME       tiny  (2 layers, embd 64, 4 heads, ff 256, vocab 512)\n"
            "                      0.5b  (24 layers, embd 896, 14 heads, 2 kv heads,\n"
            "                             ff 4864, vocab 32000, ctx 4096)\n"
            "                      1b    (16 layers, embd 2048, 32 heads, 8 kv heads,\n"
            "                             ff 8192, vocab 32000)\n"
            "                      minilm (arch bert: 6 layers, embd 384, 12 heads,\n"
            "                             ff 1536, ctx 512, f16, the bert-bge WordPiece\n"
            "                             vocab of 30522; the all-MiniLM-L6-v2 shape)\n"
            "                      the preset is applied first; other flags override it\n"
            "  --layers N          block count (default 2)\n"
            "  --embd N            embedding length (default 64)\n"
            "  --heads N           attention heads (default 4)\n"
            "  --kv-heads N        KV heads (default = heads)\n"
            "  --ff N              feed-forward length (default 4*embd)\n"
            "  --vocab N           size of the built-in vocab (default 512, min %d)\n"
            "  --ctx N             context_length (default 2048; 512 for bert, where it\n"
            "                      is the number of learned positions)\n"
            "  --type T            f32|f16|q8_0|q4_0 (default f16): the 2-D matrices,\n"
            "                      token_embd and output; norms stay F32. With q8_0/q4_0\n"
            "                      a matrix whose rows are not a multiple of 32 is F16\n"
            "  --vocab-from FILE   copy the tokenizer (all tokenizer.* keys) from a GGUF,\n"
            "                      e.g. a llama.cpp vocab file; the vocab size is its size.\n"
            "                      bert always uses one; default " SYNTH_BERT_VOCAB "\n"
            "                      in $HEARTH_SHARED/models/vocab, ../shared/models/vocab\n"
            "                      or /work/shared/models/vocab (first found)\n"
            "  --template T        chatml|none (default chatml): tokenizer.chat_template;\n"
            "                      overrides a template copied by --vocab-from (llama\n"
            "                      only: bert gets no template)\n"
            "  --seed N            PRNG seed (default 42)\n"
            "  --tied              no output.weight (llama then uses token_embd); llama only\n"
            "  --quiet             no progress or notes on stderr (the result line\n"
            "                      still goes to stdout)\n"
            "  -h, --help          this help\n"
            "\n"
            "Built-in vocab: SentencePiece-style (<unk> <s> </s> <|im_start|> <|im_end|>,\n"
            "256 byte tokens, ASCII characters, common English words, fillers).\n"
            "Weights: matrices ~N(0, 0.02), token_embd std 1 (1/sqrt(embd) if tied),\n"
            "output std 1/sqrt(embd), norms 1.0.\n"
            "bert: bidirectional, bert.pooling_type 1 (mean), LayerNorm eps 1e-12, 2 token\n"
            "types; tensors token_embd, token_types (F32), position_embd (never quantized),\n"
            "token_embd_norm, per layer attn_q/k/v/output, attn_output_norm, ffn_up/down,\n"
            "layer_output_norm, all with biases (0); no output head. --kv-heads, --vocab\n"
            "and --tied do not apply.\n"
            "Prints `wrote FILE: N tensors, X.X MB, vocab V, type T` on stdout (MB = 10^6 B).\n",
            SYNTH_MIN_VOCAB);
}

static int parse_i64(const char *flag, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "synth: %s wants an integer in [%lld, %lld], got '%s'\n", flag,
                (long long)min, (long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    while (*s == ' ')
        s++;
    unsigned long long v = *s == '-' ? 0 : strtoull(s, &end, 0);
    if (*s == '-' || errno || end == s || *end) {
        fprintf(stderr, "synth: %s wants an unsigned integer, got '%s'\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int apply_preset(synth_opts *o, const char *name)
{
    if (!strcmp(name, "tiny")) {
        o->layers = 2, o->embd = 64, o->heads = 4, o->ff = 256, o->vocab = 512;
        o->ff_set = true;
    } else if (!strcmp(name, "0.5b")) {
        o->layers = 24, o->embd = 896, o->heads = 14, o->kv_heads = 2, o->ff = 4864;
        o->vocab = 32000, o->ctx = 4096;
        o->kv_set = o->ff_set = true;
    } else if (!strcmp(name, "1b")) {
        o->layers = 16, o->embd = 2048, o->heads = 32, o->kv_heads = 8, o->ff = 8192;
        o->vocab = 32000;
        o->kv_set = o->ff_set = true;
    } else if (!strcmp(name, "minilm")) {
        o->bert = true;
        o->layers = 6, o->embd = 384, o->heads = 12, o->ff = 1536, o->ctx = 512;
        o->type = GGML_TYPE_F16, o->type_name = "f16", o->file_type = 1;
        o->ff_set = o->ctx_set = true;
    } else {
        fprintf(stderr, "synth: unknown preset '%s' (tiny, 0.5b, 1b, minilm)\n", name);
        return -1;
    }
    return 0;
}

static bool flag_takes_value(const char *f)
{
    static const char *const v[] = { "--out", "--layers", "--embd", "--heads", "--kv-heads",
                                     "--ff", "--vocab", "--ctx", "--type", "--vocab-from",
                                     "--template", "--seed", "--preset", "--arch" };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!strcmp(f, v[i]))
            return true;
    return false;
}

/* Split argv[*i] into flag and value ("--x=v" or "--x v"). Returns 0, or -1
 * after printing a message. *val is NULL for a flag that takes none. */
static int next_flag(int argc, char **argv, int *i, char *flag, size_t flag_sz, const char **val)
{
    const char *a = argv[*i];
    const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    if (n >= flag_sz) {
        fprintf(stderr, "synth: unknown option '%s'\n", a);
        return -1;
    }
    memcpy(flag, a, n);
    flag[n] = '\0';
    *val = NULL;
    if (flag_takes_value(flag)) {
        if (eq) {
            *val = eq + 1;
        } else {
            if (*i + 1 >= argc) {
                fprintf(stderr, "synth: %s needs a value\n", flag);
                return -1;
            }
            *val = argv[++*i];
        }
    } else if (eq) {
        fprintf(stderr, "synth: %s takes no value\n", flag);
        return -1;
    }
    return 0;
}

/* Returns 0 to go on, 1 when --help was printed, 2 on a usage error. */
static int parse_args(int argc, char **argv, synth_opts *o)
{
    memset(o, 0, sizeof *o);
    o->layers = 2, o->embd = 64, o->heads = 4, o->vocab = 512, o->ctx = 2048;
    o->type = GGML_TYPE_F16, o->type_name = "f16", o->file_type = 1;
    o->chatml = true;
    o->seed = 42;

    char flag[32];
    const char *val;
    /* pass 1: --help, then the preset (applied before every other flag) */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (next_flag(argc, argv, &i, flag, sizeof flag, &val))
            return 2;
        if (!strcmp(flag, "--preset") && apply_preset(o, val))
            return 2;
    }
    /* pass 2: everything else */
    for (int i = 1; i < argc; i++) {
        if (next_flag(argc, argv, &i, flag, sizeof flag, &val))
            return 2;
        int rc = 0;
        if (!strcmp(flag, "--preset")) {
            /* done in pass 1 */
        } else if (!strcmp(flag, "--out")) {
            if (!*val) {
                fprintf(stderr, "synth: --out wants a file name\n");
                return 2;
            }
            o->out = val;
        } else if (!strcmp(flag, "--layers")) {
            rc = parse_i64(flag, val, 1, 4096, &o->layers);
        } else if (!strcmp(flag, "--embd")) {
            rc = parse_i64(flag, val, 2, 1 << 17, &o->embd);
        } else if (!strcmp(flag, "--heads")) {
            rc = parse_i64(flag, val, 1, 1 << 16, &o->heads);
        } else if (!strcmp(flag, "--kv-heads")) {
            rc = parse_i64(flag, val, 1, 1 << 16, &o->kv_heads);
            o->kv_set = true;
        } else if (!strcmp(flag, "--ff")) {
            rc = parse_i64(flag, val, 1, 1 << 20, &o->ff);
            o->ff_set = true;
        } else if (!strcmp(flag, "--vocab")) {
            rc = parse_i64(flag, val, SYNTH_MIN_VOCAB, 1 << 24, &o->vocab);
            o->vocab_set = true;
        } else if (!strcmp(flag, "--ctx")) {
            rc = parse_i64(flag, val, 1, INT32_MAX, &o->ctx);
            o->ctx_set = true;
        } else if (!strcmp(flag, "--arch")) {
            if (!strcmp(val, "llama"))
                o->bert = false;
            else if (!strcmp(val, "bert"))
                o->bert = true;
            else {
                fprintf(stderr, "synth: --arch wants llama, bert or whisper, got '%s'\n", val);
                return 2;
            }
        } else if (!strcmp(flag, "--type")) {
            if (!strcmp(val, "f32"))
                o->type = GGML_TYPE_F32, o->file_type = 0;
            else if (!strcmp(val, "f16"))
                o->type = GGML_TYPE_F16, o->file_type = 1;
            else if (!strcmp(val, "q8_0"))
                o->type = GGML_TYPE_Q8_0, o->file_type = 7;
            else if (!strcmp(val, "q4_0"))
                o->type = GGML_TYPE_Q4_0, o->file_type = 2;
            else {
                fprintf(stderr, "synth: --type wants f32, f16, q8_0 or q4_0, got '%s'\n", val);
                return 2;
            }
            o->type_name = val;
        } else if (!strcmp(flag, "--vocab-from")) {
            o->vocab_from = val;
        } else if (!strcmp(flag, "--template")) {
            if (!strcmp(val, "chatml"))
                o->chatml = true;
            else if (!strcmp(val, "none"))
                o->chatml = false;
            else {
                fprintf(stderr, "synth: --template wants chatml or none, got '%s'\n", val);
                return 2;
            }
        } else if (!strcmp(flag, "--seed")) {
            rc = parse_u64(flag, val, &o->seed);
        } else if (!strcmp(flag, "--tied")) {
            o->tied = true;
        } else if (!strcmp(flag, "--quiet")) {
            o->quiet = true;
        } else {
            fprintf(stderr, "synth: unknown option '%s' (see hearth synth --help)\n", argv[i]);
            return 2;
        }
        if (rc)
            return 2;
    }

    if (!o->out) {
        fprintf(stderr, "synth: --out FILE is required (see hearth synth --help)\n");
        return 2;
    }
    if (o->bert) {
        if (o->kv_set && o->kv_heads != o->heads) {
            fprintf(stderr, "synth: --kv-heads does not apply to --arch bert "
                            "(every head has its own K and V)\n");
            return 2;
        }
        if (o->vocab_set) {
            fprintf(stderr, "synth: --vocab does not apply to --arch bert (its WordPiece "
                            "vocab comes from --vocab-from)\n");
            return 2;
        }
        if (o->tied) {
            fprintf(stderr, "synth: --tied does not apply to --arch bert (it has no "
                            "output head)\n");
            return 2;
        }
        if (!o->ctx_set)
            o->ctx = 512;
    }
    if (!o->kv_set)
        o->kv_heads = o->heads;
    if (!o->ff_set)
        o->ff = 4 * o->embd;
    if (o->embd % o->heads) {
        fprintf(stderr, "synth: embd (%lld) must be a multiple of heads (%lld)\n",
                (long long)o->embd, (long long)o->heads);
        return 2;
    }
    if (!o->bert && (o->embd / o->heads) % 2) {
        fprintf(stderr, "synth: head size embd/heads = %lld must be even (RoPE rotates pairs)\n",
                (long long)(o->embd / o->heads));
        return 2;
    }
    if (o->kv_heads > o->heads || o->heads % o->kv_heads) {
        fprintf(stderr, "synth: heads (%lld) must be a multiple of kv-heads (%lld)\n",
                (long long)o->heads, (long long)o->kv_heads);
        return 2;
    }
    if (o->vocab_from && o->vocab_set) {
        fprintf(stderr, "synth: --vocab and --vocab-from exclude each other "
                        "(the vocab size comes from the file)\n");
        return 2;
    }
    if (!o->vocab_from && o->vocab < SYNTH_MIN_VOCAB) {
        fprintf(stderr, "synth: the built-in vocab needs at least %d tokens, got %lld\n",
                SYNTH_MIN_VOCAB, (long long)o->vocab);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------ built-in vocab */

typedef struct {
    char **tok;
    float *score;
    int32_t *type;
    int64_t n, cap, n_normal;
    uint32_t *ht;     /* open addressing: index + 1, 0 = empty */
    size_t hmask;
} vocab_b;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int vocab_init(vocab_b *v, int64_t cap)
{
    memset(v, 0, sizeof *v);
    size_t hs = 1;
    while (hs < (size_t)cap * 2)
        hs <<= 1;
    v->cap = cap;
    v->hmask = hs - 1;
    v->tok = calloc((size_t)cap, sizeof *v->tok);
    v->score = calloc((size_t)cap, sizeof *v->score);
    v->type = calloc((size_t)cap, sizeof *v->type);
    v->ht = calloc(hs, sizeof *v->ht);
    return v->tok && v->score && v->type && v->ht ? 0 : -1;
}

static void vocab_free(vocab_b *v)
{
    if (v->tok)
        for (int64_t i = 0; i < v->n; i++)
            free(v->tok[i]);
    free(v->tok);
    free(v->score);
    free(v->type);
    free(v->ht);
    memset(v, 0, sizeof *v);
}

/* 0 added, 1 already present, 2 full, -1 out of memory. */
static int vocab_add(vocab_b *v, const char *s, int32_t type)
{
    if (v->n >= v->cap)
        return 2;
    size_t h = (size_t)fnv1a(s) & v->hmask;
    while (v->ht[h]) {
        if (!strcmp(v->tok[v->ht[h] - 1], s))
            return 1;
        h = (h + 1) & v->hmask;
    }
    char *c = strdup(s);
    if (!c)
        return -1;
    v->tok[v->n] = c;
    v->type[v->n] = type;
    v->score[v->n] = type == 1 ? -(float)v->n_normal++ : 0.0f;
    v->ht[h] = (uint32_t)(++v->n);
    return 0;
}

#define SPM_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's word boundary */

static const char *const WORDS[] = {
    "the", "of", "and", "to", "in", "is", "it", "that", "for", "on", "was", "with", "he",
    "as", "you", "at", "be", "this", "have", "from", "or", "one", "had", "by", "but", "not",
    "what", "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each",
    "which", "she", "do", "how", "their", "if", "will", "up", "other", "about", "out", "many",
    "then", "them", "these", "so", "some", "her", "would", "make", "like", "him", "into",
    "time", "has", "look", "two", "more", "write", "go", "see", "number", "no", "way",
    "could", "people", "my", "than", "first", "water", "been", "call", "who", "now", "find",
    "long", "down", "day", "did", "get", "come", "made", "may", "part", "over", "new",
    "work", "know", "place", "year", "back", "good", "world", "hello", "model", "answer",
    "question", "story", "little", "once", "upon", "The", "Hello", "I",
};

/* tokens: specials, bytes, "▁", ASCII chars (alone and ▁-prefixed), words
 * (with every ▁-prefix of a word before it, so SPM's pair merges can reach
 * the word), then "▁w<N>" fillers. */
static int build_vocab(vocab_b *v, int64_t n)
{
    if (vocab_init(v, n))
        return -1;
    static const char *const specials[] = { "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>" };
    static const int32_t special_types[] = { 2, 3, 3, 3, 3 };
    char t[64];
    for (int i = 0; i < 5; i++)
        if (vocab_add(v, specials[i], special_types[i]) < 0)
            return -1;
    for (int b = 0; b < 256; b++) {
        snprintf(t, sizeof t, "<0x%02X>", b);
        if (vocab_add(v, t, 6) < 0)
            return -1;
    }
    int rc = vocab_add(v, SPM_SPACE, 1);
    for (int c = 0x21; c <= 0x7e && rc >= 0 && rc != 2; c++) {
        t[0] = (char)c, t[1] = '\0';
        rc = vocab_add(v, t, 1);
        if (rc >= 0 && rc != 2) {
            snprintf(t, sizeof t, SPM_SPACE "%c", c);
            rc = vocab_add(v, t, 1);
        }
    }
    for (size_t w = 0; w < sizeof WORDS / sizeof WORDS[0] && rc >= 0 && rc != 2; w++) {
        size_t len = strlen(WORDS[w]);
        for (size_t k = 2; k <= len && rc >= 0 && rc != 2; k++) {
            snprintf(t, sizeof t, SPM_SPACE "%.*s", (int)k, WORDS[w]);
            rc = vocab_add(v, t, 1);
        }
    }
    for (int64_t k = 0; v->n < n && rc >= 0; k++) {
        snprintf(t, sizeof t, SPM_SPACE "w%lld", (long long)k);
        rc = vocab_add(v, t, 1);
    }
    return rc < 0 ? -1 : 0;
}

/* ----------------------------------------------------- tokenizer from a GGUF */

static bool is_template_key(const char *k)
{
    return !strncmp(k, "tokenizer.chat_template", 23) && (!k[23] || k[23] == '.');
}

/* Copy every tokenizer.* KV of src into dst (templates skipped: --template
 * decides). Sets *n_vocab. Returns 0, or -1 after printing a message. */
static int copy_tokenizer(struct gguf_context *dst, const char *path, int64_t *n_vocab)
{
    struct gguf_init_params ip = { .no_alloc = true, .ctx = NULL };
    struct gguf_context *src = gguf_init_from_file(path, ip);
    if (!src) {
        fprintf(stderr, "synth: cannot read GGUF '%s'\n", path);
        return -1;
    }
    int rc = 0;
    int64_t tid = gguf_find_key(src, "tokenizer.ggml.tokens");
    if (tid < 0 || gguf_get_kv_type(src, tid) != GGUF_TYPE_ARRAY ||
        gguf_get_arr_type(src, tid) != GGUF_TYPE_STRING || gguf_get_arr_n(src, tid) == 0) {
        fprintf(stderr, "synth: '%s' has no tokenizer.ggml.tokens string array\n", path);
        gguf_free(src);
        return -1;
    }
    *n_vocab = (int64_t)gguf_get_arr_n(src, tid);

    int64_t nkv = gguf_get_n_kv(src);
    for (int64_t i = 0; i < nkv && !rc; i++) {
        const char *k = gguf_get_key(src, i);
        if (strncmp(k, "tokenizer.", 10) || is_template_key(k))
            continue;
        switch (gguf_get_kv_type(src, i)) {
        case GGUF_TYPE_UINT8: gguf_set_val_u8(dst, k, gguf_get_val_u8(src, i)); break;
        case GGUF_TYPE_INT8: gguf_set_val_i8(dst, k, gguf_get_val_i8(src, i)); break;
        case GGUF_TYPE_UINT16: gguf_set_val_u16(dst, k, gguf_get_val_u16(src, i)); break;
        case GGUF_TYPE_INT16: gguf_set_val_i16(dst, k, gguf_get_val_i16(src, i)); break;
        case GGUF_TYPE_UINT32: gguf_set_val_u32(dst, k, gguf_get_val_u32(src, i)); break;
        case GGUF_TYPE_INT32: gguf_set_val_i32(dst, k, gguf_get_val_i32(src, i)); break;
        case GGUF_TYPE_FLOAT32: gguf_set_val_f32(dst, k, gguf_get_val_f32(src, i)); break;
        case GGUF_TYPE_BOOL: gguf_set_val_bool(dst, k, gguf_get_val_bool(src, i)); break;
        case GGUF_TYPE_STRING: gguf_set_val_str(dst, k, gguf_get_val_str(src, i)); break;
        case GGUF_TYPE_UINT64: gguf_set_val_u64(dst, k, gguf_get_val_u64(src, i)); break;
        case GGUF_TYPE_INT64: gguf_set_val_i64(dst, k, gguf_get_val_i64(src, i)); break;
        case GGUF_TYPE_FLOAT64: gguf_set_val_f64(dst, k, gguf_get_val_f64(src, i)); break;
        case GGUF_TYPE_ARRAY: {
            enum gguf_type at = gguf_get_arr_type(src, i);
            size_t n = gguf_get_arr_n(src, i);
            if (at == GGUF_TYPE_STRING) {
                const char **s = malloc((n ? n : 1) * sizeof *s);
                if (!s) {
                    fprintf(stderr, "synth: out of memory\n");
                    rc = -1;
                    break;
                }
                for (size_t j = 0; j < n; j++)
                    s[j] = gguf_get_arr_str(src, i, j);
                gguf_set_arr_str(dst, k, s, n);
                free(s);
            } else if (at == GGUF_TYPE_ARRAY) {
                fprintf(stderr, "synth: skipping nested array %s\n", k);
            } else {
                gguf_set_arr_data(dst, k, at, gguf_get_arr_data(src, i), n);
            }
            break;
        }
        default:
            fprintf(stderr, "synth: skipping %s of unknown type\n", k);
            break;
        }
    }
    gguf_free(src);
    return rc;
}

/* ------------------------------------------------------------------ weights */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define GOLDEN 0x9e3779b97f4a7c15ull

/* n approximately-normal values of the given std for one row. */
static void gen_row(float *dst, int64_t n, uint64_t seed, uint64_t tensor, uint64_t row, float std)
{
    if (std == 0.0f) { /* norm weights */
        for (int64_t j = 0; j < n; j++)
            dst[j] = 1.0f;
        return;
    }
    uint64_t base = mix64(mix64(mix64(seed) + tensor * GOLDEN) + row);
    /* sum of four U{0..65535}: mean 131070, std 65536/sqrt(3) (to 1e-5) */
    const float scale = (float)((double)std * 1.7320508075688772 / 65536.0);
    for (int64_t j = 0; j < n; j++) {
        uint64_t r = mix64(base + (uint64_t)(j + 1) * GOLDEN);
        int32_t s = (int32_t)((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
        dst[j] = (float)(s - 131070) * scale;
    }
}

typedef struct {
    char name[GGML_MAX_NAME];
    int64_t ne0, ne1;
    int n_dims;
    enum ggml_type type;
    float std;          /* 0 = constant 1.0 (unless zero) */
    bool zero;          /* constant 0.0 (biases) */
} tplan;

typedef struct {
    const tplan *t;
    uint64_t seed, tidx;
    int64_t row0, nrows;
    float *f;           /* nrows * ne0 */
    char *o;            /* nrows * row_size */
} job;

static void run_job(const job *j)
{
    const tplan *t = j->t;
    if (t->zero)
        memset(j->f, 0, (size_t)(j->nrows * t->ne0) * sizeof(float));
    else
        for (int64_t r = 0; r < j->nrows; r++)
            gen_row(j->f + r * t->ne0, t->ne0, j->seed, j->tidx, (uint64_t)(j->row0 + r),
                    t->std);
    switch (t->type) {
    case GGML_TYPE_F32:
        memcpy(j->o, j->f, (size_t)(j->nrows * t->ne0) * sizeof(float));
        break;
    case GGML_TYPE_F16:
        ggml_fp32_to_fp16_row(j->f, (ggml_fp16_t *)j->o, j->nrows * t->ne0);
        break;
    default:
        ggml_quantize_chunk(t->type, j->f, j->o, 0, j->nrows, t->ne0, NULL);
        break;
    }
}

static void *job_thread(void *arg)
{
    run_job(arg);
    return NULL;
}

/* ------------------------------------------------------------------ writing */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

typedef struct {
    bool quiet, tty;
    uint64_t total, done;
    int last_decile;
    int last_pct;
} progress;

static void progress_update(progress *p, int i, int n, const char *name)
{
    if (p->quiet)
        return;
    int pct = p->total ? (int)(p->done * 100 / p->total) : 100;
    if (p->tty) {
        if (pct == p->last_pct)
            return;
        p->last_pct = pct;
        fprintf(stderr, "\rsynth: writing tensor %d/%d %s %3d%%\033[K", i, n, name, pct);
        fflush(stderr);
    } else if (pct / 10 > p->last_decile) {
        p->last_decile = pct / 10;
        fprintf(stderr, "synth: writing tensor %d/%d %s %3d%%\n", i, n, name, pct);
    }
}

/* "\n" to end an updating progress line before a message, else "". */
static const char *progress_nl(const progress *p)
{
    return p->tty && !p->quiet && p->last_pct >= 0 ? "\n" : "";
}

static int write_zeros(FILE *f, size_t n)
{
    static const char z[64];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        if (fwrite(z, 1, k, f) != k)
            return -1;
        n -= k;
    }
    return 0;
}

static int n_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > SYNTH_MAX_THREADS ? SYNTH_MAX_THREADS : (int)n;
}

/* Append every tensor's data after the metadata. Returns 0 or -1 (message printed). */
static int write_data(FILE *f, const char *tmp, struct gguf_context *g, const tplan *tp, int nt,
                      uint64_t seed, progress *pg)
{
    int64_t max_ne0 = 0;
    for (int i = 0; i < nt; i++)
        if (tp[i].ne0 > max_ne0)
            max_ne0 = tp[i].ne0;
    size_t elems = max_ne0 > SYNTH_CHUNK_ELEMS ? (size_t)max_ne0 : SYNTH_CHUNK_ELEMS;
    float *fbuf = malloc(elems * sizeof(float));
    char *obuf = malloc(elems * sizeof(float));
    int rc = 0;
    if (!fbuf || !obuf) {
        fprintf(stderr, "synth: out of memory\n");
        rc = -1;
    }
    const size_t meta = gguf_get_meta_size(g);
    const size_t align = gguf_get_alignment(g);
    const int nth = n_threads();

    for (int i = 0; i < nt && !rc; i++) {
        const tplan *t = &tp[i];
        long pos = ftell(f);
        if (pos < 0 || (size_t)pos != meta + gguf_get_tensor_offset(g, i)) {
            fprintf(stderr, "synth: internal error: %s at %ld, expected %zu\n", t->name, pos,
                    meta + gguf_get_tensor_offset(g, i));
            rc = -1;
            break;
        }
        const size_t row_size = ggml_row_size(t->type, t->ne0);
        int64_t rpc = (int64_t)(elems / (size_t)t->ne0);
        if (rpc < 1)
            rpc = 1;
        for (int64_t r0 = 0; r0 < t->ne1 && !rc; r0 += rpc) {
            if (g_stop) {
                fprintf(stderr, "%ssynth: interrupted\n", progress_nl(pg));
                rc = -1;
                break;
            }
            int64_t nr = t->ne1 - r0 < rpc ? t->ne1 - r0 : rpc;
            /* split the chunk's rows among threads; each row's values depend
             * only on (seed, tensor, row), so the split does not change bytes */
            job jobs[SYNTH_MAX_THREADS];
            pthread_t th[SYNTH_MAX_THREADS];
            bool started[SYNTH_MAX_THREADS] = { false };
            int nj = nr < nth ? (int)nr : nth;
            if (t->ne0 * nr < 65536)
                nj = 1;
            int64_t per = nr / nj, extra = nr % nj, at = 0;
            for (int k = 0; k < nj; k++) {
                int64_t cnt = per + (k < extra ? 1 : 0);
                jobs[k] = (job){ .t = t, .seed = seed, .tidx = (uint64_t)i, .row0 = r0 + at,
                                 .nrows = cnt, .f = fbuf + at * t->ne0,
                                 .o = obuf + (size_t)at * row_size };
                at += cnt;
            }
            for (int k = 1; k < nj; k++)
                started[k] = pthread_create(&th[k], NULL, job_thread, &jobs[k]) == 0;
            run_job(&jobs[0]);
            for (int k = 1; k < nj; k++) {
                if (started[k])
                    pthread_join(th[k], NULL);
                else
                    run_job(&jobs[k]);
            }
            size_t bytes = (size_t)nr * row_size;
            if (fwrite(obuf, 1, bytes, f) != bytes) {
                fprintf(stderr, "%ssynth: write %s: %s\n", progress_nl(pg), tmp, strerror(errno));
                rc = -1;
                break;
            }
            pg->done += bytes;
            progress_update(pg, i + 1, nt, t->name);
        }
        if (rc)
            break;
        size_t sz = (size_t)t->ne1 * row_size;
        if (sz != gguf_get_tensor_size(g, i)) {
            fprintf(stderr, "synth: internal error: %s size %zu, gguf says %zu\n", t->name, sz,
                    gguf_get_tensor_size(g, i));
            rc = -1;
            break;
        }
        size_t pad = (align - sz % align) % align;
        if (write_zeros(f, pad)) {
            fprintf(stderr, "%ssynth: write %s: %s\n", progress_nl(pg), tmp, strerror(errno));
            rc = -1;
        }
        pg->done += pad;
    }
    free(fbuf);
    free(obuf);
    return rc;
}

/* --------------------------------------------------------------------- main */

static void set_meta(struct gguf_context *g, const synth_opts *o, int64_t n_vocab)
{
    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_str(g, "general.name", "hearth-synth");
    gguf_set_val_u32(g, "general.file_type", o->file_type);
    gguf_set_val_u32(g, "llama.context_length", (uint32_t)o->ctx);
    gguf_set_val_u32(g, "llama.embedding_length", (uint32_t)o->embd);
    gguf_set_val_u32(g, "llama.feed_forward_length", (uint32_t)o->ff);
    gguf_set_val_u32(g, "llama.block_count", (uint32_t)o->layers);
    gguf_set_val_u32(g, "llama.attention.head_count", (uint32_t)o->heads);
    gguf_set_val_u32(g, "llama.attention.head_count_kv", (uint32_t)o->kv_heads);
    gguf_set_val_u32(g, "llama.rope.dimension_count", (uint32_t)(o->embd / o->heads));
    gguf_set_val_f32(g, "llama.rope.freq_base", 10000.0f);
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_val_u32(g, "llama.vocab_size", (uint32_t)n_vocab);
}

static void set_meta_bert(struct gguf_context *g, const synth_opts *o)
{
    gguf_set_val_str(g, "general.architecture", "bert");
    gguf_set_val_str(g, "general.name", "hearth-synth");
    gguf_set_val_u32(g, "general.file_type", o->file_type);
    gguf_set_val_u32(g, "bert.context_length", (uint32_t)o->ctx);
    gguf_set_val_u32(g, "bert.embedding_length", (uint32_t)o->embd);
    gguf_set_val_u32(g, "bert.feed_forward_length", (uint32_t)o->ff);
    gguf_set_val_u32(g, "bert.block_count", (uint32_t)o->layers);
    gguf_set_val_u32(g, "bert.attention.head_count", (uint32_t)o->heads);
    gguf_set_val_f32(g, "bert.attention.layer_norm_epsilon", 1e-12f);
    gguf_set_val_bool(g, "bert.attention.causal", false);
    gguf_set_val_u32(g, "bert.pooling_type", 1); /* LLAMA_POOLING_TYPE_MEAN */
}

/* The default --vocab-from of --arch bert: SYNTH_BERT_VOCAB in the shared
 * assets. Writes the path to buf; returns 0, or -1 after printing a message. */
static int find_bert_vocab(char *buf, size_t sz)
{
    const char *env = getenv("HEARTH_SHARED");
    const char *dirs[3] = { NULL, "../shared/models/vocab", "/work/shared/models/vocab" };
    char envdir[PATH_MAX];
    if (env && *env && snprintf(envdir, sizeof envdir, "%s/models/vocab", env) <
                           (int)sizeof envdir)
        dirs[0] = envdir;
    for (int i = 0; i < 3; i++) {
        if (!dirs[i])
            continue;
        if (snprintf(buf, sz, "%s/%s", dirs[i], SYNTH_BERT_VOCAB) < (int)sz &&
            access(buf, R_OK) == 0)
            return 0;
    }
    fprintf(stderr, "synth: --arch bert needs a WordPiece vocab and " SYNTH_BERT_VOCAB
                    " was not found in %s%s../shared/models/vocab or "
                    "/work/shared/models/vocab; set HEARTH_SHARED or pass --vocab-from FILE\n",
            dirs[0] ? dirs[0] : "", dirs[0] ? ", " : "($HEARTH_SHARED unset), ");
    return -1;
}

static void set_builtin_vocab(struct gguf_context *g, const vocab_b *v, bool chatml)
{
    gguf_set_val_str(g, "tokenizer.ggml.model", "llama");
    gguf_set_val_str(g, "tokenizer.ggml.pre", "default");
    gguf_set_arr_str(g, "tokenizer.ggml.tokens", (const char **)v->tok, (size_t)v->n);
    gguf_set_arr_data(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v->score, (size_t)v->n);
    gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->type, (size_t)v->n);
    gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", 1);
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", 2);
    gguf_set_val_u32(g, "tokenizer.ggml.unknown_token_id", 0);
    if (chatml)
        gguf_set_val_u32(g, "tokenizer.ggml.eot_token_id", 4);
    gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", true);
    gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
}

/* Fill the tensor plan (caller frees). Returns the count, or -1 on ENOMEM. */

/* Like llama-quantize: a matrix whose rows do not split into the type's
 * blocks is stored as F16 instead. Returns how many fell back. */
static int block_fallback(const synth_opts *o, tplan *tp, int k)
{
    int n = 0;
    for (int i = 0; i < k; i++) {
        if (tp[i].n_dims == 2 && tp[i].ne0 % ggml_blck_size(tp[i].type)) {
            if (!o->quiet)
                fprintf(stderr, "synth: %s: row length %lld is not a multiple of %lld, "
                                "stored as f16\n", tp[i].name, (long long)tp[i].ne0,
                        (long long)ggml_blck_size(tp[i].type));
            tp[i].type = GGML_TYPE_F16;
            n++;
        }
    }
    return n;
}

static int plan_tensors(const synth_opts *o, int64_t n_vocab, tplan **out, int *n_fallback)
{
    int n = (int)(o->layers * 9 + 2 + (o->tied ? 0 : 1));
    tplan *tp = calloc((size_t)n, sizeof *tp);
    if (!tp)
        return -1;
    const int64_t hd = o->embd / o->heads, kv = o->kv_heads * hd;
    const float mat = 0.02f, inv = (float)(1.0 / sqrt((double)o->embd));
    int k = 0;
    *n_fallback = 0;
#define T2(name_, a, b, s) (snprintf(tp[k].name, GGML_MAX_NAME, "%s", name_), tp[k].ne0 = (a), \
                         tp[k].ne1 = (b), tp[k].n_dims = 2, tp[k].type = o->type, tp[k].std = (s), k++)
#define T1(name_, a) (snprintf(tp[k].name, GGML_MAX_NAME, "%s", name_), tp[k].ne0 = (a), tp[k].ne1 = 1, \
                   tp[k].n_dims = 1, tp[k].type = GGML_TYPE_F32, tp[k].std = 0.0f, k++)
    T2("token_embd.weight", o->embd, n_vocab, o->tied ? inv : 1.0f);
    char nm[GGML_MAX_NAME];
    for (int64_t l = 0; l < o->layers; l++) {
#define NM(s) (snprintf(nm, sizeof nm, "blk.%lld." s, (long long)l), nm)
        T1(NM("attn_norm.weight"), o->embd);
        T2(NM("attn_q.weight"), o->embd, o->embd, mat);
        T2(NM("attn_k.weight"), o->embd, kv, mat);
        T2(NM("attn_v.weight"), o->embd, kv, mat);
        T2(NM("attn_output.weight"), o->embd, o->embd, mat);
        T1(NM("ffn_norm.weight"), o->embd);
        T2(NM("ffn_gate.weight"), o->embd, o->ff, mat);
        T2(NM("ffn_up.weight"), o->embd, o->ff, mat);
        T2(NM("ffn_down.weight"), o->ff, o->embd, mat);
#undef NM
    }
    T1("output_norm.weight", o->embd);
    if (!o->tied)
        T2("output.weight", o->embd, n_vocab, inv);
#undef T1
#undef T2
    *n_fallback = block_fallback(o, tp, k);
    *out = tp;
    return k;
}

/* The bert tensor plan (caller frees). Returns the count, or -1 on ENOMEM. */
static int plan_tensors_bert(const synth_opts *o, int64_t n_vocab, tplan **out, int *n_fallback)
{
    int n = (int)(o->layers * 16 + 5);
    tplan *tp = calloc((size_t)n, sizeof *tp);
    if (!tp)
        return -1;
    const float mat = 0.02f;
    /* llama-quantize keeps position_embd and token_types unquantized */
    const enum ggml_type pos_type = o->type == GGML_TYPE_F32 ? GGML_TYPE_F32 : GGML_TYPE_F16;
    int k = 0;
    *n_fallback = 0;
#define T2(name_, a, b, ty, s) (snprintf(tp[k].name, GGML_MAX_NAME, "%s", name_), tp[k].ne0 = (a), \
                             tp[k].ne1 = (b), tp[k].n_dims = 2, tp[k].type = (ty), tp[k].std = (s), k++)
#define T1(name_, a, z) (snprintf(tp[k].name, GGML_MAX_NAME, "%s", name_), tp[k].ne0 = (a), tp[k].ne1 = 1, \
                      tp[k].n_dims = 1, tp[k].type = GGML_TYPE_F32, tp[k].std = 0.0f, tp[k].zero = (z), k++)
    T2("token_embd.weight", o->embd, n_vocab, o->type, 1.0f);
    T2("token_types.weight", o->embd, SYNTH_BERT_TYPES, GGML_TYPE_F32, mat);
    T2("position_embd.weight", o->embd, o->ctx, pos_type, mat);
    T1("token_embd_norm.weight", o->embd, false);
    T1("token_embd_norm.bias", o->embd, true);
    char nm[GGML_MAX_NAME];
    for (int64_t l = 0; l < o->layers; l++) {
#define NM(s) (snprintf(nm, sizeof nm, "blk.%lld." s, (long long)l), nm)
        T2(NM("attn_q.weight"), o->embd, o->embd, o->type, mat);
        T1(NM("attn_q.bias"), o->embd, true);
        T2(NM("attn_k.weight"), o->embd, o->embd, o->type, mat);
        T1(NM("attn_k.bias"), o->embd, true);
        T2(NM("attn_v.weight"), o->embd, o->embd, o->type, mat);
        T1(NM("attn_v.bias"), o->embd, true);
        T2(NM("attn_output.weight"), o->embd, o->embd, o->type, mat);
        T1(NM("attn_output.bias"), o->embd, true);
        T1(NM("attn_output_norm.weight"), o->embd, false);
        T1(NM("attn_output_norm.bias"), o->embd, true);
        T2(NM("ffn_up.weight"), o->embd, o->ff, o->type, mat);
        T1(NM("ffn_up.bias"), o->ff, true);
        T2(NM("ffn_down.weight"), o->ff, o->embd, o->type, mat);
        T1(NM("ffn_down.bias"), o->embd, true);
        T1(NM("layer_output_norm.weight"), o->embd, false);
        T1(NM("layer_output_norm.bias"), o->embd, true);
#undef NM
    }
#undef T1
#undef T2
    *n_fallback = block_fallback(o, tp, k);
    *out = tp;
    return k;
}

/* --arch whisper writes a whisper.cpp (legacy ggml) file instead of a GGUF:
 * a separate writer with its own options, in cli/synth_whisper.c. */
int synth_whisper_main(int argc, char **argv);

static bool wants_whisper(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strncmp(a, "--arch=", 7) || !strncmp(a, "--preset=", 9))
            v = strchr(a, '=') + 1;
        else if ((!strcmp(a, "--arch") || !strcmp(a, "--preset")) && i + 1 < argc)
            v = argv[++i];
        if (v && (!strcmp(v, "whisper") || !strncmp(v, "whisper-", 8)))
            return true;
    }
    return false;
}

int synth_main(int argc, char **argv)
{
    if (wants_whisper(argc, argv))
        return synth_whisper_main(argc, argv);

    synth_opts o;
    int prc = parse_args(argc, argv, &o);
    if (prc == 1)
        return 0;
    if (prc)
        return 2;

    int rc = 1;
    struct gguf_context *g = gguf_init_empty(), *tk = NULL;
    struct ggml_context *gc = NULL;
    vocab_b voc = { 0 };
    tplan *tp = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    bool tmp_made = false;
    struct sigaction old_int, old_term;
    bool sig_set = false;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    if (!g) {
        fprintf(stderr, "synth: out of memory\n");
        goto done;
    }

    int64_t n_vocab = o.vocab;
    char bert_vocab[PATH_MAX];
    if (o.bert) {
        if (!o.vocab_from) {
            if (find_bert_vocab(bert_vocab, sizeof bert_vocab))
                goto done;
            o.vocab_from = bert_vocab;
        }
        tk = gguf_init_empty();
        if (!tk || copy_tokenizer(tk, o.vocab_from, &n_vocab))
            goto done;
        /* must match token_types.weight */
        gguf_set_val_u32(tk, "tokenizer.ggml.token_type_count", SYNTH_BERT_TYPES);
        set_meta_bert(g, &o);
        gguf_set_kv(g, tk);
    } else if (o.vocab_from) {
        /* read the tokenizer first (it gives the vocab size), but keep
         * general.* and llama.* first in the file */
        tk = gguf_init_empty();
        if (!tk || copy_tokenizer(tk, o.vocab_from, &n_vocab))
            goto done;
        set_meta(g, &o, n_vocab);
        gguf_set_kv(g, tk);
    } else {
        if (build_vocab(&voc, o.vocab)) {
            fprintf(stderr, "synth: out of memory building the vocab\n");
            goto done;
        }
        set_meta(g, &o, n_vocab);
        set_builtin_vocab(g, &voc, o.chatml);
    }
    if (o.chatml && !o.bert)
        gguf_set_val_str(g, "tokenizer.chat_template", CHATML_TEMPLATE);

    int n_fallback = 0;
    int nt = o.bert ? plan_tensors_bert(&o, n_vocab, &tp, &n_fallback)
                    : plan_tensors(&o, n_vocab, &tp, &n_fallback);
    if (nt < 0) {
        fprintf(stderr, "synth: out of memory\n");
        goto done;
    }
    struct ggml_init_params gp = {
        .mem_size = ggml_tensor_overhead() * (size_t)(nt + 1),
        .mem_buffer = NULL,
        .no_alloc = true,
    };
    gc = ggml_init(gp);
    if (!gc) {
        fprintf(stderr, "synth: ggml_init failed\n");
        goto done;
    }
    for (int i = 0; i < nt; i++) {
        struct ggml_tensor *t = tp[i].n_dims == 1
                                    ? ggml_new_tensor_1d(gc, tp[i].type, tp[i].ne0)
                                    : ggml_new_tensor_2d(gc, tp[i].type, tp[i].ne0, tp[i].ne1);
        ggml_set_name(t, tp[i].name);
        gguf_add_tensor(g, t);
    }

    progress pg = { .quiet = o.quiet, .tty = isatty(STDERR_FILENO) == 1, .last_pct = -1 };
    for (int i = 0; i < nt; i++) {
        size_t sz = gguf_get_tensor_size(g, i), al = gguf_get_alignment(g);
        pg.total += sz + (al - sz % al) % al;
    }
    if (!o.quiet && o.bert)
        fprintf(stderr, "synth: bert %lld layers, embd %lld, heads %lld, ff %lld, "
                        "vocab %lld (%s), ctx %lld, type %s, pooling mean, seed %llu -> %s\n",
                (long long)o.layers, (long long)o.embd, (long long)o.heads, (long long)o.ff,
                (long long)n_vocab, o.vocab_from, (long long)o.ctx, o.type_name,
                (unsigned long long)o.seed, o.out);
    else if (!o.quiet)
        fprintf(stderr, "synth: llama %lld layers, embd %lld, heads %lld/%lld, ff %lld, "
                        "vocab %lld, ctx %lld, type %s, seed %llu%s -> %s\n",
                (long long)o.layers, (long long)o.embd, (long long)o.heads, (long long)o.kv_heads,
                (long long)o.ff, (long long)n_vocab, (long long)o.ctx, o.type_name,
                (unsigned long long)o.seed, o.tied ? ", tied" : "", o.out);

    size_t ol = strlen(o.out);
    tmp = malloc(ol + 5);
    if (!tmp) {
        fprintf(stderr, "synth: out of memory\n");
        goto done;
    }
    memcpy(tmp, o.out, ol);
    memcpy(tmp + ol, ".tmp", 5);

    g_stop = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sig_set = true;

    f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "synth: cannot create %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    tmp_made = true;
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    if (!gguf_write_to_file_ptr(g, f, true)) {
        fprintf(stderr, "synth: writing the metadata to %s failed\n", tmp);
        goto done;
    }
    if (write_data(f, tmp, g, tp, nt, o.seed, &pg))
        goto done;
    if (fflush(f) || ferror(f)) {
        fprintf(stderr, "synth: write %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    long size = ftell(f);
    int cr = fclose(f);
    f = NULL;
    if (cr) {
        fprintf(stderr, "synth: close %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    if (g_stop) {
        fprintf(stderr, "%ssynth: interrupted\n", progress_nl(&pg));
        goto done;
    }
    if (rename(tmp, o.out)) {
        fprintf(stderr, "synth: rename %s -> %s: %s\n", tmp, o.out, strerror(errno));
        goto done;
    }
    tmp_made = false;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!o.quiet) {
        fputs(progress_nl(&pg), stderr);
        fprintf(stderr, "synth: done in %.2f s\n",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    printf("wrote %s: %d tensors, %.1f MB, vocab %lld, type %s\n", o.out, nt,
           (double)size / 1e6, (long long)n_vocab, o.type_name);
    fflush(stdout);
    rc = 0;

done:
    if (f)
        fclose(f);
    if (tmp_made)
        unlink(tmp);
    if (sig_set) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    free(tmp);
    free(tp);
    vocab_free(&voc);
    if (gc)
        ggml_free(gc);
    if (tk)
        gguf_free(tk);
    if (g)
        gguf_free(g);
    return rc;
}
