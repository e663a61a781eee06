/*
 * test_ggml_legacy.c: unit tests for src/core/ggml_legacy.{h,c}.
 *
 * The shared weightless whisper-tiny.en asset must pass (0 tensors), and so
 * must a small model written here with every tensor whisper.cpp's loader
 * expects (and, when HEARTH_WHISPER_MODEL names one, a model written by
 * `hearth synth --arch whisper`). Hostile files are built here: a small writer
 * produces a valid image from a spec and each test bends one field. Every
 * hostile image goes through both entry points (an exact-size buffer and a
 * temp file), which must reject it with the same one-line, path-free reason.
 */
#include "check.h"
#include "core/ggml_legacy.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* ---- a tiny legacy-ggml writer -------------------------------------------- */

typedef struct img {
    uint8_t *d;
    size_t   len, cap;
} img;

static void put(img *m, const void *p, size_t n)
{
    if (m->len + n > m->cap) {
        size_t c = m->cap ? m->cap : 256;
        while (c < m->len + n)
            c *= 2;
        m->d = realloc(m->d, c);
        if (!m->d)
            abort();
        m->cap = c;
    }
    if (n)
        memcpy(m->d + m->len, p, n);
    m->len += n;
}

static void put_i32(img *m, int64_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t b[4] = { (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24) };
    put(m, b, 4);
}

static void put_zeros(img *m, size_t n)
{
    static const uint8_t z[256];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        put(m, z, k);
        n -= k;
    }
}

enum { HP_VOCAB, HP_ACTX, HP_ASTATE, HP_AHEAD, HP_ALAYER, HP_TCTX, HP_TSTATE, HP_THEAD,
       HP_TLAYER, HP_MELS, HP_FTYPE, HP_N };
enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2 };

typedef struct tdesc {
    const char *name;
    int64_t     n_dims;
    int64_t     ne[5];
    int64_t     type;
    int         set_name_len;
    int64_t     name_len;       /* the length the record claims, when set */
    int         set_data;
    uint64_t    data;           /* bytes of data actually written, when set */
} tdesc;

typedef struct spec {
    uint32_t magic;
    int64_t  hp[HP_N];
    int64_t  mel_rows, n_fft;
    int64_t  vocab_claim;       /* the count written */
    int      vocab_real;        /* entries actually written */
    int      lie_token;         /* entry 3 claims token_len bytes */
    int64_t  token_len;
    int      full;              /* append whisper's whole tensor list */
    size_t   nt;
    tdesc    t[3];
    size_t   trailing;          /* extra zero bytes at the end */
} spec;

static spec base_spec(void)
{
    spec s = {
        .magic = HLEGACY_MAGIC,
        .hp = { 300, 30, 8, 2, 1, 16, 8, 2, 2, 4, 1 },
        .mel_rows = 4, .n_fft = 5, .vocab_claim = 290, .vocab_real = 290,
        .nt = 2,
        .t = {
            { "encoder.ln_post.weight", 1, { 8 }, T_F32, 0, 0, 0, 0 },      /* 32 bytes */
            { "decoder.token_embedding.weight", 2, { 32, 3 }, T_Q4_0, 0, 0, 0, 0 }, /* 54 */
        },
    };
    return s;
}

static uint64_t tsize(const tdesc *t)
{
    uint64_t n = 1;
    for (int64_t d = 0; d < t->n_dims && d < 5; d++)
        n *= (uint64_t)t->ne[d];
    switch (t->type) {
    case T_F32: return n * 4;
    case T_F16: return n * 2;
    case T_Q4_0: return n / 32 * 18;
    default: return 0;
    }
}

static void put_tensor(img *m, const tdesc *t)
{
    size_t nl = strlen(t->name);
    put_i32(m, t->n_dims);
    put_i32(m, t->set_name_len ? t->name_len : (int64_t)nl);
    put_i32(m, t->type);
    for (int64_t d = 0; d < t->n_dims && d < 5; d++)
        put_i32(m, t->ne[d]);
    put(m, t->name, nl);
    put_zeros(m, t->set_data ? t->data : tsize(t));
}

static void put_t(img *m, const char *name, int64_t type, int64_t ne0, int64_t ne1, int64_t ne2)
{
    tdesc t = { name, ne2 ? 3 : ne1 ? 2 : 1, { ne0, ne1, ne2 }, type, 0, 0, 0, 0 };
    put_tensor(m, &t);
}

/* whisper.cpp's tensor list for the spec's shape (F16 weights). */
static uint64_t put_whisper_tensors(img *m, const int64_t *hp)
{
    int64_t a = hp[HP_ASTATE], t = hp[HP_TSTATE];
    uint64_t n = 0;
    char nm[96];

    put_t(m, "encoder.positional_embedding", T_F32, a, hp[HP_ACTX], 0);
    put_t(m, "encoder.conv1.weight", T_F16, 3, hp[HP_MELS], a);
    put_t(m, "encoder.conv1.bias", T_F32, 1, a, 0);
    put_t(m, "encoder.conv2.weight", T_F16, 3, a, a);
    put_t(m, "encoder.conv2.bias", T_F32, 1, a, 0);
    put_t(m, "encoder.ln_post.weight", T_F32, a, 0, 0);
    put_t(m, "encoder.ln_post.bias", T_F32, a, 0, 0);
    n += 7;
    static const char *const vec[] = { "mlp_ln.weight", "mlp_ln.bias", "mlp.2.bias",
                                       "attn_ln.weight", "attn_ln.bias", "attn.query.bias",
                                       "attn.value.bias", "attn.out.bias" };
    static const char *const sq[] = { "attn.query.weight", "attn.key.weight",
                                      "attn.value.weight", "attn.out.weight" };
    static const char *const cross_vec[] = { "cross_attn_ln.weight", "cross_attn_ln.bias",
                                             "cross_attn.query.bias", "cross_attn.value.bias",
                                             "cross_attn.out.bias" };
    static const char *const cross_sq[] = { "cross_attn.query.weight", "cross_attn.key.weight",
                                            "cross_attn.value.weight", "cross_attn.out.weight" };
    for (int pass = 0; pass < 2; pass++) {
        const char *sys = pass ? "decoder" : "encoder";
        int64_t s = pass ? t : a, layers = pass ? hp[HP_TLAYER] : hp[HP_ALAYER];
        if (pass) {
            put_t(m, "decoder.positional_embedding", T_F32, t, hp[HP_TCTX], 0);
            put_t(m, "decoder.token_embedding.weight", T_F16, t, hp[HP_VOCAB], 0);
            put_t(m, "decoder.ln.weight", T_F32, t, 0, 0);
            put_t(m, "decoder.ln.bias", T_F32, t, 0, 0);
            n += 4;
        }
        for (int64_t l = 0; l < layers; l++) {
            for (size_t i = 0; i < sizeof vec / sizeof *vec; i++, n++) {
                snprintf(nm, sizeof nm, "%s.blocks.%d.%s", sys, (int)l, vec[i]);
                put_t(m, nm, T_F32, s, 0, 0);
            }
            snprintf(nm, sizeof nm, "%s.blocks.%d.mlp.0.bias", sys, (int)l);
            put_t(m, nm, T_F32, 4 * s, 0, 0);
            snprintf(nm, sizeof nm, "%s.blocks.%d.mlp.0.weight", sys, (int)l);
            put_t(m, nm, T_F16, s, 4 * s, 0);
            snprintf(nm, sizeof nm, "%s.blocks.%d.mlp.2.weight", sys, (int)l);
            put_t(m, nm, T_F16, 4 * s, s, 0);
            n += 3;
            for (size_t i = 0; i < sizeof sq / sizeof *sq; i++, n++) {
                snprintf(nm, sizeof nm, "%s.blocks.%d.%s", sys, (int)l, sq[i]);
                put_t(m, nm, T_F16, s, s, 0);
            }
            for (size_t i = 0; pass && i < sizeof cross_vec / sizeof *cross_vec; i++, n++) {
                snprintf(nm, sizeof nm, "decoder.blocks.%d.%s", (int)l, cross_vec[i]);
                put_t(m, nm, T_F32, s, 0, 0);
            }
            for (size_t i = 0; pass && i < sizeof cross_sq / sizeof *cross_sq; i++, n++) {
                snprintf(nm, sizeof nm, "decoder.blocks.%d.%s", (int)l, cross_sq[i]);
                put_t(m, nm, T_F16, s, s, 0);
            }
        }
    }
    return n;
}

static img build(const spec *s)
{
    img m = { 0 };
    char tok[32];

    put_i32(&m, s->magic);
    for (int i = 0; i < HP_N; i++)
        put_i32(&m, s->hp[i]);
    put_i32(&m, s->mel_rows);
    put_i32(&m, s->n_fft);
    if (s->mel_rows > 0 && s->mel_rows < 4096)     /* rows of 5 floats, whatever n_fft says */
        put_zeros(&m, (size_t)s->mel_rows * 5 * 4);
    put_i32(&m, s->vocab_claim);
    for (int i = 0; i < s->vocab_real; i++) {
        int n = snprintf(tok, sizeof tok, "t%d", i);
        put_i32(&m, s->lie_token && i == 3 ? s->token_len : n);
        put(&m, tok, (size_t)n);
    }
    if (s->full)
        put_whisper_tensors(&m, s->hp);
    for (size_t i = 0; i < s->nt; i++)
        put_tensor(&m, &s->t[i]);
    put_zeros(&m, s->trailing);
    return m;
}

/* ---- harness --------------------------------------------------------------- */

static char tmpdir[64];

static void tmp_init(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_ggml_legacy.XXXXXX");
    if (!mkdtemp(tmpdir))
        abort();
}

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        abort();
}

static int check_copy(const void *p, size_t n, whisper_file_info *out, char *err, size_t el)
{
    /* an exact-size copy, so ASan sees any read past the end */
    void *c = malloc(n ? n : 1);
    if (n)
        memcpy(c, p, n);
    int rc = ggml_legacy_check_buffer(n ? c : NULL, n, out, err, el);
    free(c);
    return rc;
}

static int info_is_zero(const whisper_file_info *w)
{
    static const whisper_file_info z;
    return memcmp(w, &z, sizeof z) == 0;
}

static void expect_reject_img(const uint8_t *p, size_t n, const char *want)
{
    char e1[256] = "", e2[256] = "", path[128];
    whisper_file_info in;

    memset(&in, 0xab, sizeof in);
    CHECK_EQ_INT(check_copy(p, n, &in, e1, sizeof e1), -1);
    CHECK(info_is_zero(&in));
    CHECK(e1[0] != '\0');
    CHECK(strchr(e1, '\n') == NULL);
    if (!strstr(e1, want))
        fprintf(stderr, "  reason \"%s\" lacks \"%s\"\n", e1, want);
    CHECK(strstr(e1, want) != NULL);

    tmp_init();
    tmp_path(path, sizeof path, "m.bin");
    write_file(path, p, n);
    memset(&in, 0xab, sizeof in);
    CHECK_EQ_INT(ggml_legacy_check_file(path, &in, e2, sizeof e2), -1);
    CHECK(info_is_zero(&in));
    CHECK_STR(e2, e1);
    CHECK(strstr(e2, tmpdir) == NULL);      /* the path is never in the reason */
    unlink(path);
    rmdir(tmpdir);
}

static void expect_reject(const spec *s, const char *want)
{
    img m = build(s);
    expect_reject_img(m.d, m.len, want);
    free(m.d);
}

static int expect_accept(const spec *s, whisper_file_info *in)
{
    char err[256] = "";
    img m = build(s);
    int rc = check_copy(m.d, m.len, in, err, sizeof err);
    if (rc)
        fprintf(stderr, "  unexpected rejection: %s\n", err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(in->file_size, m.len);
    free(m.d);
    return rc;
}

static const char *shared_model(void)
{
    static const char *cands[3];
    static char buf[512];
    struct stat st;

    cands[0] = getenv("HEARTH_SHARED");
    cands[1] = "../shared";
    cands[2] = "/work/shared";
    for (int i = 0; i < 3; i++) {
        if (!cands[i])
            continue;
        snprintf(buf, sizeof buf, "%s/models/whisper-tiny.en-for-tests-noweights.bin", cands[i]);
        if (stat(buf, &st) == 0)
            return buf;
    }
    fprintf(stderr, "  shared assets not found (set HEARTH_SHARED)\n");
    return NULL;
}

/* ---- real and built valid files --------------------------------------------- */

TEST(shared_noweights)
{
    const char *path = shared_model();
    whisper_file_info w;
    char err[256] = "";

    CHECK(path != NULL);
    if (!path)
        return;
    CHECK(ggml_legacy_is_whisper(path));
    int rc = ggml_legacy_check_file(path, &w, err, sizeof err);
    if (rc)
        fprintf(stderr, "  %s\n", err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(w.n_vocab, 51864);
    CHECK_EQ_INT(w.n_audio_ctx, 1500);
    CHECK_EQ_INT(w.n_audio_state, 384);
    CHECK_EQ_INT(w.n_audio_head, 6);
    CHECK_EQ_INT(w.n_audio_layer, 4);
    CHECK_EQ_INT(w.n_text_ctx, 448);
    CHECK_EQ_INT(w.n_text_state, 384);
    CHECK_EQ_INT(w.n_text_head, 6);
    CHECK_EQ_INT(w.n_text_layer, 4);
    CHECK_EQ_INT(w.n_mels, 80);
    CHECK_EQ_INT(w.ftype, 1);
    CHECK_EQ_INT(w.n_fft, 201);
    CHECK_EQ_INT(w.n_vocab_file, 50257);
    CHECK_EQ_INT(w.n_tensors, 0);
    CHECK_EQ_INT(w.tensor_bytes, 0);
    CHECK_EQ_INT(w.file_size, 586836);
    CHECK_EQ_INT(w.header_bytes, 586836);
    /* tiny.en at F16: the sum of whisper.cpp's tensor sizes */
    CHECK_EQ_INT(w.weights_bytes, 77110272);
}

TEST(built_full_model)
{
    spec s = base_spec();
    whisper_file_info w;

    s.full = 1;
    s.nt = 0;
    if (expect_accept(&s, &w))
        return;
    /* 7 + 15 per encoder layer + 4 + 24 per decoder layer */
    CHECK_EQ_INT(w.n_tensors, 7 + 15 * 1 + 4 + 24 * 2);
    CHECK_EQ_INT(w.tensor_bytes, w.weights_bytes);
    CHECK_EQ_INT(w.n_vocab_file, 290);
    CHECK_EQ_INT(w.header_bytes, 4 + 44 + 8 + 4 * 5 * 4 + 4 + 290 * 4 + 10 * 2 + 90 * 3 + 190 * 4);

    /* the same through a file, with identical results */
    char path[128], err[256] = "";
    whisper_file_info w2;
    img m = build(&s);
    tmp_init();
    tmp_path(path, sizeof path, "full.bin");
    write_file(path, m.d, m.len);
    CHECK_EQ_INT(ggml_legacy_check_file(path, &w2, err, sizeof err), 0);
    CHECK(memcmp(&w, &w2, sizeof w) == 0);
    CHECK(ggml_legacy_is_whisper(path));
    unlink(path);
    rmdir(tmpdir);
    free(m.d);
}

TEST(base_spec_and_variants_pass)
{
    spec s = base_spec();
    whisper_file_info w;

    if (!expect_accept(&s, &w)) {
        CHECK_EQ_INT(w.n_tensors, 2);
        CHECK_EQ_INT(w.tensor_bytes, 32 + 54);
    }
    s.nt = 0;                                   /* no tensors at all */
    if (!expect_accept(&s, &w))
        CHECK_EQ_INT(w.n_tensors, 0);
    s = base_spec();
    s.vocab_claim = s.vocab_real = 0;           /* an empty vocabulary */
    expect_accept(&s, &w);
    s = base_spec();
    s.hp[HP_FTYPE] = 2002;                      /* q4_0, quantization version 2 */
    expect_accept(&s, &w);
    s = base_spec();
    s.t[0].n_dims = 4;                          /* 4 dims, ne 8x1x1x1 */
    s.t[0].ne[1] = s.t[0].ne[2] = s.t[0].ne[3] = 1;
    expect_accept(&s, &w);
}

/* A model written by `hearth synth --arch whisper`, when the caller names one. */
TEST(synth_model_if_given)
{
    const char *path = getenv("HEARTH_WHISPER_MODEL");
    whisper_file_info w;
    char err[256] = "";

    if (!path || !*path)
        return;
    int rc = ggml_legacy_check_file(path, &w, err, sizeof err);
    if (rc)
        fprintf(stderr, "  %s\n", err);
    CHECK_EQ_INT(rc, 0);
    CHECK(w.n_tensors > 0);
    CHECK_EQ_INT(w.tensor_bytes, w.weights_bytes);
    CHECK_EQ_INT(w.header_bytes + w.tensor_bytes + w.n_tensors * 12 <= w.file_size, 1);
}

TEST(null_out_and_err)
{
    spec s = base_spec();
    img m = build(&s);
    CHECK_EQ_INT(check_copy(m.d, m.len, NULL, NULL, 0), 0);
    m.d[0] ^= 1;
    CHECK_EQ_INT(check_copy(m.d, m.len, NULL, NULL, 0), -1);
    CHECK_EQ_INT(ggml_legacy_check_buffer(NULL, 0, NULL, NULL, 0), -1);
    CHECK_EQ_INT(ggml_legacy_check_file(NULL, NULL, NULL, 0), -1);
    CHECK(!ggml_legacy_is_whisper(NULL));
    free(m.d);
}

/* ---- hostile headers ------------------------------------------------------- */

TEST(hostile_tiny_and_magic)
{
    static const uint8_t three[] = { 'l', 'm', 'g' };
    expect_reject_img((const uint8_t *)"", 0, "truncated");
    expect_reject_img(three, sizeof three, "truncated");
    static const uint8_t text[] = "hello, this is not a model at all\n";
    expect_reject_img(text, sizeof text - 1, "bad magic");
    static const uint8_t gguf[] = { 'G', 'G', 'U', 'F', 3, 0, 0, 0 };
    expect_reject_img(gguf, sizeof gguf, "bad magic");

    spec s = base_spec();
    s.magic = 0x67676d66;                       /* "fmgg": llama's old GGMF */
    expect_reject(&s, "bad magic");

    s = base_spec();
    img v = build(&s);                          /* magic and half the hparams */
    expect_reject_img(v.d, 4 + 20, "truncated: the hparams");
    free(v.d);
}

TEST(hostile_hparams)
{
    static const struct { int idx; int64_t v; const char *want; } cases[] = {
        { HP_VOCAB, 0, "n_vocab = 0" },
        { HP_VOCAB, 200001, "n_vocab = 200001" },
        { HP_VOCAB, -1, "n_vocab = -1" },
        { HP_VOCAB, 0x7fffffff, "n_vocab" },
        { HP_ACTX, 0, "n_audio_ctx" },
        { HP_ACTX, 1 << 20, "n_audio_ctx" },
        { HP_ASTATE, -384, "n_audio_state" },
        { HP_ASTATE, 1 << 20, "n_audio_state" },
        { HP_AHEAD, 0, "n_audio_head" },
        { HP_AHEAD, 3, "n_audio_head 3 does not divide n_audio_state 8" },
        { HP_ALAYER, 0, "n_audio_layer" },
        { HP_ALAYER, 100000, "n_audio_layer" },
        { HP_TCTX, -5, "n_text_ctx" },
        { HP_TSTATE, 0, "n_text_state" },
        { HP_THEAD, 5, "n_text_head 5 does not divide" },
        { HP_TLAYER, -1, "n_text_layer" },
        { HP_MELS, 0, "n_mels = 0" },
        { HP_MELS, 257, "n_mels = 257" },
        { HP_FTYPE, -1, "ftype" },
        { HP_FTYPE, 5, "unknown ftype 5" },
        { HP_FTYPE, 1004, "unknown ftype 1004" },
        { HP_FTYPE, 99999, "ftype" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        spec s = base_spec();
        s.hp[cases[i].idx] = cases[i].v;
        if (cases[i].idx == HP_MELS && cases[i].v > 0 && cases[i].v < 4096)
            s.mel_rows = cases[i].v;            /* keep the filters consistent */
        expect_reject(&s, cases[i].want);
    }
}

TEST(hostile_mel_filters)
{
    spec s = base_spec();
    s.mel_rows = 5;
    expect_reject(&s, "5 rows but n_mels is 4");
    s = base_spec();
    s.n_fft = 0;
    expect_reject(&s, "row length 0");
    s = base_spec();
    s.n_fft = -1;
    expect_reject(&s, "row length -1");
    s = base_spec();
    s.n_fft = 0x7fffffff;                       /* a product that would overflow int32 */
    expect_reject(&s, "row length 2147483647");
    s = base_spec();
    s.n_fft = 4096;                             /* in bounds, but more than the file has */
    expect_reject(&s, "truncated: the mel filters");
}

TEST(hostile_vocab)
{
    spec s = base_spec();
    s.vocab_claim = 0x7fffffff;
    expect_reject(&s, "vocabulary: 2147483647 entries");
    s.vocab_claim = -1;
    expect_reject(&s, "vocabulary: -1 entries");
    s.vocab_claim = 200000;                     /* in bounds, but past the file */
    expect_reject(&s, "truncated: the vocabulary claims 200000");
    s = base_spec();
    s.nt = 0;
    s.vocab_claim = 291;                        /* one more than written */
    expect_reject(&s, "truncated: vocabulary entry 290");
    s = base_spec();
    s.nt = 0;
    s.vocab_claim = s.vocab_real = 6;
    s.lie_token = 1;
    s.token_len = 1000;                         /* past the end of the file */
    expect_reject(&s, "truncated: vocabulary entry 3");
    s.token_len = 0xffffffff;
    expect_reject(&s, "vocabulary entry 3 is 4294967295 bytes");
    s.token_len = HLEGACY_MAX_TOKEN_LEN + 1;
    expect_reject(&s, "vocabulary entry 3 is 1025 bytes");
}

TEST(hostile_tensors)
{
    static const struct { int64_t n_dims; const char *want; } dims[] = {
        { 0, "tensor 0: 0 dimensions" },
        { 5, "tensor 0: 5 dimensions" },
        { -1, "tensor 0: -1 dimensions" },
        { 0x7fffffff, "tensor 0: 2147483647 dimensions" },
    };
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        spec s = base_spec();
        s.t[0].n_dims = dims[i].n_dims;
        expect_reject(&s, dims[i].want);
    }
    spec s = base_spec();
    s.t[1].ne[1] = 0;
    expect_reject(&s, "tensor 1: dimension 1 is 0");
    s = base_spec();
    s.t[0].ne[0] = -8;
    s.t[0].set_data = 1;
    expect_reject(&s, "tensor 0: dimension 0 is -8");
    s = base_spec();
    s.t[0].n_dims = 2;                          /* 65536 x 65536 overflows int32 */
    s.t[0].ne[0] = s.t[0].ne[1] = 65536;
    s.t[0].set_data = 1;
    expect_reject(&s, "more than 2^31-1 elements");
    s = base_spec();
    s.t[1].ne[0] = 48;                          /* q4_0 rows must be multiples of 32 */
    expect_reject(&s, "ne0 48 is not a multiple of its type's block size 32");

    static const int64_t bad_types[] = { -1, 4, 5, 9, 15, 16, 30, 1000 };
    for (size_t i = 0; i < sizeof bad_types / sizeof *bad_types; i++) {
        s = base_spec();
        s.t[1].type = bad_types[i];
        s.t[1].set_data = 1;
        expect_reject(&s, "unknown or unsupported type");
    }

    s = base_spec();
    s.t[0].set_name_len = 1, s.t[0].name_len = 0;
    expect_reject(&s, "tensor 0: name length 0");
    s.t[0].name_len = -3;
    expect_reject(&s, "tensor 0: name length -3");
    s.t[0].name_len = 64;
    expect_reject(&s, "tensor 0: name length 64");
    s = base_spec();
    s.nt = 1;
    s.t[0].set_name_len = 1, s.t[0].name_len = 40;  /* reads into the data: a NUL */
    expect_reject(&s, "name contains a NUL");
    s.t[0].set_data = 1, s.t[0].data = 0;           /* the name runs past the end */
    expect_reject(&s, "truncated: tensor record 0 needs 40 bytes but only 22 remain");
    s = base_spec();
    s.t[0].name = "enc\0oder";                  /* strlen 3, claims 8 */
    s.t[0].set_name_len = 1, s.t[0].name_len = 8;
    s.t[0].set_data = 1, s.t[0].data = 5 + 32;
    expect_reject(&s, "name contains a NUL");
}

TEST(hostile_tensor_data_past_eof)
{
    spec s = base_spec();
    s.t[1].set_data = 1, s.t[1].data = 53;      /* one byte short */
    expect_reject(&s, "truncated: tensor 1 data needs 54 bytes but only 53 remain");
    s = base_spec();
    s.nt = 1;
    s.t[0].ne[0] = 0x7fffffff;                  /* 8 GiB of F32 claimed */
    s.t[0].set_data = 1, s.t[0].data = 32;
    expect_reject(&s, "truncated: tensor 0 data");
    s = base_spec();
    s.trailing = 5;                             /* a partial record at the end */
    expect_reject(&s, "truncated: tensor record 2");
    s.trailing = 12;                            /* a record of zeros: 0 dims */
    expect_reject(&s, "tensor 2: 0 dimensions");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(hostile_not_regular)
{
    char path[128], link_path[128], err[256];
    double t0;

    tmp_init();
    tmp_path(path, sizeof path, "fifo");
    CHECK_EQ_INT(mkfifo(path, 0600), 0);
    alarm(10);                                  /* a blocking open would hang here */
    t0 = now_s();
    CHECK_EQ_INT(ggml_legacy_check_file(path, NULL, err, sizeof err), -1);
    CHECK(!ggml_legacy_is_whisper(path));
    CHECK(now_s() - t0 < 1.0);
    alarm(0);
    CHECK(strstr(err, "FIFO") != NULL);
    unlink(path);

    CHECK_EQ_INT(ggml_legacy_check_file("/dev/zero", NULL, err, sizeof err), -1);
    CHECK(strstr(err, "character device") != NULL);
    CHECK(!ggml_legacy_is_whisper("/dev/zero"));
    CHECK_EQ_INT(ggml_legacy_check_file(tmpdir, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "directory") != NULL);

    tmp_path(link_path, sizeof link_path, "link");
    CHECK_EQ_INT(symlink("/dev/zero", link_path), 0);
    CHECK_EQ_INT(ggml_legacy_check_file(link_path, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "character device") != NULL);
    unlink(link_path);

    tmp_path(path, sizeof path, "missing.bin");
    CHECK_EQ_INT(ggml_legacy_check_file(path, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "cannot stat") != NULL);
    CHECK(strstr(err, tmpdir) == NULL);
    CHECK(!ggml_legacy_is_whisper(path));

    tmp_path(path, sizeof path, "empty.bin");
    write_file(path, "", 0);
    CHECK(!ggml_legacy_is_whisper(path));
    write_file(path, "lmg", 3);
    CHECK(!ggml_legacy_is_whisper(path));
    write_file(path, "lmgg", 4);                /* the magic alone is enough here */
    CHECK(ggml_legacy_is_whisper(path));
    CHECK_EQ_INT(ggml_legacy_check_file(path, NULL, err, sizeof err), -1);
    unlink(path);
    rmdir(tmpdir);
}

/* Every bit flip, byte overwrite and truncation of a valid image: no crash,
 * no read past the end (ASan watches the exact-size copies), and both entry
 * points agree. Tensor records run to the end of the file, so a cut is
 * accepted exactly where a record ends (after the vocabulary, after tensor 0)
 * and refused everywhere else. */
TEST(mutations_never_crash)
{
    spec s = base_spec();
    s.vocab_claim = s.vocab_real = 6;
    img m = build(&s);
    uint8_t *c = malloc(m.len);
    char err[256], err2[256], path[128];
    static const uint8_t fills[] = { 0x00, 0xff, 0x7f, 0x80 };
    int accepted = 0;

    for (size_t pos = 0; pos < m.len; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(c, m.d, m.len);
            c[pos] ^= (uint8_t)(1u << bit);
            accepted += check_copy(c, m.len, NULL, err, sizeof err) == 0;
        }
        for (size_t f = 0; f < sizeof fills; f++) {
            memcpy(c, m.d, m.len);
            memset(c + pos, fills[f], m.len - pos < 8 ? m.len - pos : 8);
            accepted += check_copy(c, m.len, NULL, err, sizeof err) == 0;
        }
    }
    CHECK(accepted > 0);                        /* flips inside data are fine */

    tmp_init();
    tmp_path(path, sizeof path, "cut.bin");
    whisper_file_info w;
    CHECK_EQ_INT(check_copy(m.d, m.len, &w, err, sizeof err), 0);
    size_t ok_at[2] = { (size_t)w.header_bytes, (size_t)w.header_bytes + 12 + 4 + 22 + 32 };
    for (size_t len = 0; len < m.len; len++) {
        int rc = check_copy(m.d, len, NULL, err, sizeof err);
        write_file(path, m.d, len);
        CHECK_EQ_INT(ggml_legacy_check_file(path, NULL, err2, sizeof err2), rc);
        if (rc)
            CHECK_STR(err2, err);
        CHECK_EQ_INT(rc == 0, len == ok_at[0] || len == ok_at[1]);
    }
    unlink(path);
    rmdir(tmpdir);
    free(c);
    free(m.d);
}

int main(void)
{
    RUN(shared_noweights);
    RUN(built_full_model);
    RUN(base_spec_and_variants_pass);
    RUN(synth_model_if_given);
    RUN(null_out_and_err);
    RUN(hostile_tiny_and_magic);
    RUN(hostile_hparams);
    RUN(hostile_mel_filters);
    RUN(hostile_vocab);
    RUN(hostile_tensors);
    RUN(hostile_tensor_data_past_eof);
    RUN(hostile_not_regular);
    RUN(mutations_never_crash);
    return check_summary();
}
