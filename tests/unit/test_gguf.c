/*
 * test_gguf.c: unit tests for src/core/gguf.{h,c}.
 *
 * Real files from the shared assets must pass with the values ggml itself
 * reports. Hostile files are built here: a small writer produces a valid GGUF
 * image from a spec, and each test bends one field of the spec. Every hostile
 * image goes through both entry points (the buffer and a temp file), which
 * must reject it with the same one-line reason.
 */
#include "check.h"
#include "core/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* ---- a tiny GGUF writer ---------------------------------------------------- */

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

static void put_le(img *m, uint64_t v, unsigned n)
{
    uint8_t b[8];
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(m, b, n);
}

static void put_u32(img *m, uint32_t v) { put_le(m, v, 4); }
static void put_u64(img *m, uint64_t v) { put_le(m, v, 8); }

static void put_str(img *m, const char *s)
{
    put_u64(m, strlen(s));
    put(m, s, strlen(s));
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

enum { T_U8 = 0, T_U32 = 4, T_I32 = 5, T_STRING = 8, T_ARRAY = 9, T_U64 = 10 };
enum { G_F32 = 0, G_F16 = 1, G_Q4_0 = 2, G_F64 = 28 };
enum { ALIGN_NONE, ALIGN_U32, ALIGN_STRING };

typedef struct tdesc {
    const char *name;
    uint32_t    n_dims;
    uint64_t    ne[5];
    uint32_t    type;
    int         fixed;          /* use offset below instead of packing */
    uint64_t    offset;
} tdesc;

typedef struct spec {
    const char *magic;
    uint32_t    version;
    int         set_n_tensors, set_n_kv;
    uint64_t    n_tensors, n_kv;       /* header counts when set_* */
    int         align_mode;
    uint32_t    align;
    const char *arch;
    int         lie_str;               /* 1: general.name, 2: general.architecture */
    uint64_t    str_len;               /* the length the lie claims */
    int         set_arr_count;
    uint64_t    arr_count;             /* claimed count of test.u32s */
    int         dup_key;
    int         nest;                  /* depth of test.nested; 0 = none */
    uint32_t    value_type;            /* if nonzero: type of test.bad */
    uint32_t    elem_type;             /* if nonzero: element type of test.badarr */
    size_t      nt;
    tdesc       t[4];
} spec;

static spec base_spec(void)
{
    spec s = {
        .magic = "GGUF", .version = 3, .align_mode = ALIGN_U32, .align = 32,
        .arch = "llama", .nt = 2,
        .t = {
            { "token_embd.weight", 2, { 32, 3 }, G_F32, 0, 0 },       /* 384 bytes */
            { "blk.0.attn_q.weight", 2, { 64, 2 }, G_Q4_0, 0, 0 },    /* 72 bytes */
        },
    };
    return s;
}

/* Data size as the writer sees it; 0 for shapes it does not pack. */
static uint64_t tsize(const tdesc *t)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims && d < 5; d++)
        if (__builtin_mul_overflow(n, t->ne[d], &n))
            return 0;
    switch (t->type) {
    case G_F32: return n * 4 / 4 == n ? n * 4 : 0;
    case G_F16: return n * 2;
    case G_Q4_0: return t->ne[0] % 32 ? 0 : n / 32 * 18;
    default: return 0;
    }
}

static void put_nested(img *m, int depth)
{
    if (depth == 0) {
        put_u32(m, T_U8);
        put_u64(m, 3);
        put_zeros(m, 3);
        return;
    }
    put_u32(m, T_ARRAY);
    put_u64(m, 2);
    put_nested(m, depth - 1);
    put_nested(m, depth - 1);
}

/* The key/value section; returns how many pairs it wrote. */
static uint64_t put_kvs(img *m, const spec *s)
{
    uint64_t n = 0;

    put_str(m, "general.architecture");
    put_u32(m, T_STRING);
    if (s->lie_str == 2) {
        put_u64(m, s->str_len);
        put(m, "llama", 5);
    } else {
        put_str(m, s->arch);
    }
    n++;
    put_str(m, "general.name");
    put_u32(m, T_STRING);
    if (s->lie_str == 1) {
        put_u64(m, s->str_len);
        put(m, "tiny", 4);
    } else {
        put_str(m, "tiny");
    }
    n++;
    if (s->dup_key) {
        put_str(m, "general.name");
        put_u32(m, T_STRING);
        put_str(m, "again");
        n++;
    }
    if (s->align_mode == ALIGN_U32) {
        put_str(m, "general.alignment");
        put_u32(m, T_U32);
        put_u32(m, s->align);
        n++;
    } else if (s->align_mode == ALIGN_STRING) {
        put_str(m, "general.alignment");
        put_u32(m, T_STRING);
        put_str(m, "32");
        n++;
    }
    static const char *const u32keys[] = { "llama.block_count", "llama.embedding_length",
                                           "llama.attention.head_count" };
    static const uint32_t u32vals[] = { 2, 32, 4 };
    for (int i = 0; i < 3; i++) {
        put_str(m, u32keys[i]);
        put_u32(m, T_U32);
        put_u32(m, u32vals[i]);
        n++;
    }
    put_str(m, "llama.context_length");          /* a u64 still counts */
    put_u32(m, T_U64);
    put_u64(m, 128);
    put_str(m, "llama.attention.key_length");    /* and so does an i32 */
    put_u32(m, T_I32);
    put_u32(m, 8);
    put_str(m, "llama.attention.value_length");  /* a negative one does not */
    put_u32(m, T_I32);
    put_u32(m, (uint32_t)-1);
    n += 3;
    put_str(m, "tokenizer.ggml.tokens");
    put_u32(m, T_ARRAY);
    put_u32(m, T_STRING);
    put_u64(m, 3);
    put_str(m, "a");
    put_str(m, "b");
    put_str(m, "<s>");
    n++;
    put_str(m, "test.u32s");
    put_u32(m, T_ARRAY);
    put_u32(m, T_U32);
    put_u64(m, s->set_arr_count ? s->arr_count : 2);
    put_u32(m, 1);
    put_u32(m, 2);
    n++;
    if (s->nest) {
        put_str(m, "test.nested");
        put_u32(m, T_ARRAY);
        put_nested(m, s->nest - 1);
        n++;
    }
    if (s->value_type) {
        put_str(m, "test.bad");
        put_u32(m, s->value_type);
        put_u32(m, 0);
        n++;
    }
    if (s->elem_type) {
        put_str(m, "test.badarr");
        put_u32(m, T_ARRAY);
        put_u32(m, s->elem_type);
        put_u64(m, 0);
        n++;
    }
    return n;
}

static img build(const spec *s)
{
    img m = { 0 }, kv = { 0 };
    uint64_t nkv = put_kvs(&kv, s), off = 0;
    uint32_t a = s->align_mode == ALIGN_U32 && s->align && !(s->align & (s->align - 1))
                 ? s->align : 32;

    put(&m, s->magic, 4);
    put_u32(&m, s->version);
    put_u64(&m, s->set_n_tensors ? s->n_tensors : s->nt);
    put_u64(&m, s->set_n_kv ? s->n_kv : nkv);
    put(&m, kv.d, kv.len);
    free(kv.d);
    for (size_t i = 0; i < s->nt; i++) {
        const tdesc *t = &s->t[i];
        put_str(&m, t->name);
        put_u32(&m, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(&m, t->ne[d]);
        put_u32(&m, t->type);
        if (t->fixed) {
            put_u64(&m, t->offset);
        } else {
            put_u64(&m, off);
            off += (tsize(t) + a - 1) / a * a;
        }
    }
    put_zeros(&m, (a - m.len % a) % a);
    /* data ends exactly where the last packed tensor does */
    for (size_t i = s->nt; i-- > 0;)
        if (!s->t[i].fixed) {
            off = off - (tsize(&s->t[i]) + a - 1) / a * a + tsize(&s->t[i]);
            break;
        }
    put_zeros(&m, off);
    return m;
}

/* ---- helpers --------------------------------------------------------------- */

static char tmpdir[64];

static void tmp_init(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_gguf.XXXXXX");
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

static int check_copy(const void *p, size_t n, gguf_info *out, char *err, size_t errlen)
{
    /* an exact-size copy, so ASan sees any read past the end */
    void *c = malloc(n ? n : 1);
    if (n)
        memcpy(c, p, n);
    int rc = gguf_check_buffer(c, n, out, err, errlen);
    free(c);
    return rc;
}

static int info_is_zero(const gguf_info *in)
{
    return in->version == 0 && in->n_tensors == 0 && in->n_kv == 0 &&
           in->file_size == 0 && in->tensor_bytes == 0 && in->arch[0] == '\0' &&
           in->n_vocab == 0 && in->data_offset == 0;
}

static int info_eq(const gguf_info *a, const gguf_info *b)
{
    return a->version == b->version && a->n_tensors == b->n_tensors && a->n_kv == b->n_kv &&
           a->file_size == b->file_size && a->data_offset == b->data_offset &&
           a->tensor_bytes == b->tensor_bytes && a->alignment == b->alignment &&
           strcmp(a->arch, b->arch) == 0 && a->n_layer == b->n_layer &&
           a->n_embd == b->n_embd && a->n_head == b->n_head &&
           a->n_head_kv == b->n_head_kv && a->n_ctx_train == b->n_ctx_train &&
           a->n_vocab == b->n_vocab && a->key_length == b->key_length &&
           a->value_length == b->value_length &&
           a->largest_tensor_bytes == b->largest_tensor_bytes;
}

/* Both entry points must refuse the image, with the same reason containing want. */
static void expect_reject_img(const uint8_t *p, size_t n, const char *want)
{
    char e1[256] = "", e2[256] = "", path[128];
    gguf_info in;

    memset(&in, 0xab, sizeof in);
    CHECK_EQ_INT(check_copy(p, n, &in, e1, sizeof e1), -1);
    CHECK(info_is_zero(&in));
    CHECK(e1[0] != '\0');
    CHECK(strchr(e1, '\n') == NULL);
    if (!strstr(e1, want))
        fprintf(stderr, "  reason \"%s\" lacks \"%s\"\n", e1, want);
    CHECK(strstr(e1, want) != NULL);

    tmp_init();
    tmp_path(path, sizeof path, "m.gguf");
    write_file(path, p, n);
    CHECK_EQ_INT(gguf_check_file(path, &in, e2, sizeof e2), -1);
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

static void expect_reject_cut(const spec *s, size_t drop, const char *want)
{
    img m = build(s);
    expect_reject_img(m.d, m.len - drop, want);
    free(m.d);
}

static int expect_accept(const spec *s, gguf_info *in)
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

static const char *shared_dir(void)
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
        snprintf(buf, sizeof buf, "%s/models/stories260K.gguf", cands[i]);
        if (stat(buf, &st) == 0)
            return cands[i];
    }
    fprintf(stderr, "  shared assets not found (set HEARTH_SHARED)\n");
    return NULL;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *d = NULL;
    long len;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        d = malloc((size_t)len + 1);
        if (d && fread(d, 1, (size_t)len, f) != (size_t)len) {
            free(d);
            d = NULL;
        }
        *n = (size_t)len;
    }
    fclose(f);
    return d;
}

/* The file and buffer paths must agree on a real file; returns the file's rc. */
static int check_real(const char *path, gguf_info *in)
{
    char e1[256] = "", e2[256] = "";
    gguf_info b;
    size_t n = 0;
    uint8_t *d = slurp(path, &n);
    int rc = gguf_check_file(path, in, e1, sizeof e1);

    if (rc)
        fprintf(stderr, "  %s rejected: %s\n", path, e1);
    CHECK(d != NULL);
    if (d) {
        CHECK_EQ_INT(gguf_check_buffer(d, n, &b, e2, sizeof e2), rc);
        CHECK(rc != 0 || info_eq(in, &b));
        free(d);
    }
    return rc;
}

/* ---- real files ------------------------------------------------------------ */

TEST(stories260k)
{
    const char *sh = shared_dir();
    char path[512];
    gguf_info in;

    CHECK(sh != NULL);
    if (!sh)
        return;
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", sh);
    CHECK_EQ_INT(check_real(path, &in), 0);
    /* the values ggml's gguf_init_from_file reports for this file */
    CHECK_EQ_INT(in.version, 3);
    CHECK_EQ_INT(in.n_tensors, 48);
    CHECK_EQ_INT(in.n_kv, 19);
    CHECK_EQ_INT(in.file_size, 1185376);
    CHECK_EQ_INT(in.data_offset, 14176);
    CHECK_EQ_INT(in.alignment, 32);
    CHECK_EQ_INT(in.tensor_bytes, 1171200);
    CHECK_EQ_INT(in.data_offset + in.tensor_bytes, in.file_size);
    CHECK_EQ_INT(in.largest_tensor_bytes, 131072);
    /* all F32: every matrix but token_embd.weight (131072 bytes); the 11
     * norms (256 bytes each) are vectors */
    /* 5 layers of 64x64 (q, o), 64x32 (k, v), 64x172 (gate, up, down) */
    CHECK_EQ_INT(in.matrix_elems, 5 * (2 * 4096 + 2 * 2048 + 3 * 11008));
    CHECK_EQ_INT(in.float_matrix_elems, in.matrix_elems);
    CHECK_EQ_INT(in.output_bytes, 131072);
    CHECK_EQ_INT(in.largest_float_matrix_bytes, 64 * 172 * 4);   /* an FFN matrix */
    CHECK(gguf_is_float_chat_model(&in));
    char arch[sizeof in.arch];
    memcpy(arch, in.arch, sizeof arch);
    snprintf(in.arch, sizeof in.arch, "bert");     /* an encoder is never one */
    CHECK(!gguf_is_float_chat_model(&in));
    memcpy(in.arch, arch, sizeof arch);
    CHECK_STR(in.arch, "llama");
    CHECK_EQ_INT(in.n_layer, 5);
    CHECK_EQ_INT(in.n_embd, 64);
    CHECK_EQ_INT(in.n_head, 8);
    CHECK_EQ_INT(in.n_head_kv, 4);
    CHECK_EQ_INT(in.n_ctx_train, 2048);
    CHECK_EQ_INT(in.n_vocab, 512);
    CHECK_EQ_INT(in.key_length, 0);
    CHECK_EQ_INT(in.value_length, 0);
}

TEST(vocab_files)
{
    static const struct { const char *file, *arch; uint32_t n_vocab; } want[] = {
        { "ggml-vocab-bert-bge.gguf", "bert", 30522 },
        { "ggml-vocab-deepseek-llm.gguf", "llama", 102400 },  /* 3.9 MB header */
        { "ggml-vocab-gpt-2.gguf", "gpt2", 50257 },
        { "ggml-vocab-llama-spm.gguf", "llama", 32000 },
        { "ggml-vocab-phi-3.gguf", "phi3", 32064 },
    };
    const char *sh = shared_dir();
    char path[512];
    gguf_info in;

    CHECK(sh != NULL);
    if (!sh)
        return;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(path, sizeof path, "%s/models/vocab/%s", sh, want[i].file);
        CHECK_EQ_INT(check_real(path, &in), 0);
        CHECK_EQ_INT(in.n_tensors, 0);
        CHECK_EQ_INT(in.tensor_bytes, 0);
        CHECK_EQ_INT(in.data_offset, in.file_size);   /* no data section */
        CHECK_STR(in.arch, want[i].arch);
        CHECK_EQ_INT(in.n_vocab, want[i].n_vocab);
    }
}

TEST(not_gguf_real_file)
{
    const char *sh = shared_dir();
    char path[512], err[256];

    CHECK(sh != NULL);
    if (!sh)
        return;
    snprintf(path, sizeof path, "%s/models/whisper-tiny.en-for-tests-noweights.bin", sh);
    CHECK_EQ_INT(gguf_check_file(path, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "bad magic") != NULL);
}

/* ---- built images that must pass -------------------------------------------- */

TEST(built_valid)
{
    spec s = base_spec();
    gguf_info in;

    if (expect_accept(&s, &in))
        return;
    CHECK_EQ_INT(in.version, 3);
    CHECK_EQ_INT(in.n_tensors, 2);
    CHECK_EQ_INT(in.n_kv, 11);
    CHECK_EQ_INT(in.alignment, 32);
    CHECK_EQ_INT(in.data_offset % 32, 0);
    CHECK_EQ_INT(in.tensor_bytes, 384 + 72);
    CHECK_EQ_INT(in.largest_tensor_bytes, 384);
    CHECK_EQ_INT(in.matrix_elems, 128);       /* F32 token_embd aside; Q4_0 */
    CHECK_EQ_INT(in.float_matrix_elems, 0);
    CHECK(!gguf_is_float_chat_model(&in));
    CHECK_EQ_INT(in.data_offset + 384 + 72, in.file_size);
    CHECK_STR(in.arch, "llama");
    CHECK_EQ_INT(in.n_layer, 2);
    CHECK_EQ_INT(in.n_embd, 32);
    CHECK_EQ_INT(in.n_head, 4);
    CHECK_EQ_INT(in.n_head_kv, 4);        /* defaults to head_count */
    CHECK_EQ_INT(in.n_ctx_train, 128);    /* stored as u64 */
    CHECK_EQ_INT(in.key_length, 8);       /* stored as i32 */
    CHECK_EQ_INT(in.value_length, 0);     /* negative: ignored */
    CHECK_EQ_INT(in.n_vocab, 3);
}

TEST(built_variants_pass)
{
    spec s;
    gguf_info in;

    s = base_spec();
    s.version = 2;
    expect_accept(&s, &in);
    CHECK_EQ_INT(in.version, 2);

    s = base_spec();
    s.align_mode = ALIGN_NONE;
    expect_accept(&s, &in);
    CHECK_EQ_INT(in.alignment, 32);

    s = base_spec();
    s.align = 64;
    expect_accept(&s, &in);
    CHECK_EQ_INT(in.alignment, 64);
    CHECK_EQ_INT(in.data_offset % 64, 0);

    s = base_spec();
    s.align = 65536;
    expect_accept(&s, &in);
    CHECK_EQ_INT(in.data_offset, 65536);

    s = base_spec();
    s.align = 1;
    expect_accept(&s, &in);

    s = base_spec();
    s.nest = 1;                              /* a plain array */
    expect_accept(&s, &in);

    s = base_spec();
    s.arch = "";                             /* no arch: no hyper-parameters */
    expect_accept(&s, &in);
    CHECK_EQ_INT(in.n_layer, 0);
    CHECK_EQ_INT(in.n_vocab, 3);

    s = base_spec();                         /* 63 bytes: the longest allowed name */
    s.t[0].name = "a23456789012345678901234567890123456789012345678901234567890123";
    expect_accept(&s, &in);

    s = base_spec();
    s.nt = 0;
    expect_accept(&s, &in);
    CHECK_EQ_INT(in.tensor_bytes, 0);
}

TEST(null_out_and_err)
{
    spec s = base_spec();
    img m = build(&s);
    char small[8];

    CHECK_EQ_INT(gguf_check_buffer(m.d, m.len, NULL, NULL, 0), 0);
    CHECK_EQ_INT(gguf_check_buffer(m.d, 10, NULL, NULL, 0), -1);
    CHECK_EQ_INT(gguf_check_buffer(NULL, 0, NULL, small, sizeof small), -1);
    CHECK(strlen(small) == sizeof small - 1);     /* truncated, terminated */
    CHECK_EQ_INT(gguf_check_buffer(NULL, 5, NULL, small, sizeof small), -1);
    CHECK_EQ_INT(gguf_check_file(NULL, NULL, small, sizeof small), -1);
    CHECK_EQ_INT(gguf_check_file("", NULL, small, sizeof small), -1);
    free(m.d);
}

/* ---- the hostile catalogue ------------------------------------------------- */

TEST(hostile_tiny)
{
    expect_reject_img((const uint8_t *)"GGUF", 4, "too small");
    expect_reject_img((const uint8_t *)"", 0, "too small");
}

TEST(hostile_magic_version)
{
    spec s = base_spec();
    s.magic = "GGML";
    expect_reject(&s, "bad magic");
    s = base_spec();
    s.version = 1;
    expect_reject(&s, "unsupported GGUF version 1 ");
    s.version = 4;
    expect_reject(&s, "unsupported GGUF version 4 ");
    s.version = 0x03000000;                  /* a big-endian v3 */
    expect_reject(&s, "big-endian");
}

TEST(hostile_counts)
{
    spec s = base_spec();
    s.set_n_tensors = 1;
    s.n_tensors = 1ull << 63;
    expect_reject(&s, "n_tensors 9223372036854775808 exceeds");
    s = base_spec();
    s.set_n_kv = 1;
    s.n_kv = 1ull << 63;
    expect_reject(&s, "n_kv 9223372036854775808 exceeds");
    s = base_spec();                         /* under the cap, over the file */
    s.set_n_tensors = 1;
    s.n_tensors = 60000;
    expect_reject(&s, "cannot fit");
    s = base_spec();                         /* one key more than written */
    s.set_n_kv = 1;
    s.n_kv = 12;
    expect_reject(&s, "tensor 0");
}

TEST(hostile_strings)
{
    spec s = base_spec();
    s.lie_str = 1;
    s.str_len = UINT64_MAX;
    expect_reject(&s, "string length 18446744073709551615 exceeds");
    s.lie_str = 2;
    expect_reject(&s, "string length 18446744073709551615 exceeds");
    s = base_spec();
    s.arch = "an-architecture-name-of-40-characters-xx";
    expect_reject(&s, "general.architecture is 40 bytes");
}

TEST(hostile_arrays)
{
    spec s = base_spec();
    s.set_arr_count = 1;
    s.arr_count = 1ull << 62;
    expect_reject(&s, "array of 4611686018427387904 u32 elements cannot fit");
    s.arr_count = UINT64_MAX;
    expect_reject(&s, "cannot fit");
    s = base_spec();
    s.nest = 2;                              /* an array of arrays: ggml refuses them */
    expect_reject(&s, "nested deeper");
    s = base_spec();
    s.elem_type = 13;
    expect_reject(&s, "array element type 13 is not a GGUF type");
    s = base_spec();
    s.value_type = 99;
    expect_reject(&s, "value type 99 is not a GGUF type");
}

TEST(hostile_duplicates)
{
    spec s = base_spec();
    s.dup_key = 1;
    expect_reject(&s, "duplicate key 2 'general.name'");
    s = base_spec();
    s.t[1].name = s.t[0].name;
    expect_reject(&s, "duplicate tensor name: tensor 1 'token_embd.weight'");
}

TEST(hostile_alignment)
{
    spec s = base_spec();
    s.align = 0;
    expect_reject(&s, "general.alignment is 0");
    s.align = 3;
    expect_reject(&s, "general.alignment 3 is not a power of two");
    s.align = 131072;
    expect_reject(&s, "general.alignment 131072 exceeds");
    s = base_spec();
    s.align_mode = ALIGN_STRING;
    expect_reject(&s, "general.alignment has type string, expected u32");
}

TEST(hostile_shapes)
{
    spec s = base_spec();
    s.t[0].n_dims = 5;
    s.t[0].ne[2] = s.t[0].ne[3] = s.t[0].ne[4] = 1;
    expect_reject(&s, "5 dimensions");
    s = base_spec();
    s.t[0].n_dims = 0;
    expect_reject(&s, "0 dimensions");
    s = base_spec();
    s.t[1].ne[1] = 0;
    expect_reject(&s, "dimension 1 is 0");
    s = base_spec();
    s.t[0].ne[0] = 1ull << 63;
    expect_reject(&s, "beyond INT64_MAX");
    s = base_spec();                         /* 2^80 elements */
    s.t[0] = (tdesc){ "big", 4, { 1u << 20, 1u << 20, 1u << 20, 1u << 20 }, G_F32, 1, 0 };
    expect_reject(&s, "tensor 0 'big': element count overflows");
    s = base_spec();                         /* 2^62 elements, 2^65 bytes */
    s.t[0] = (tdesc){ "big", 2, { 1ull << 31, 1ull << 31 }, G_F64, 1, 0 };
    expect_reject(&s, "byte size overflows");
    s = base_spec();
    s.t[1].type = 99;
    expect_reject(&s, "unknown ggml type 99");
    s.t[1].type = 4;                         /* Q4_2: removed from ggml */
    expect_reject(&s, "unknown ggml type 4");
    s = base_spec();
    s.t[1].ne[0] = 40;
    s.t[1].fixed = 1;
    expect_reject(&s, "ne0 40 is not a multiple of the Q4_0 block size 32");
    s = base_spec();
    s.t[0].name = "a234567890123456789012345678901234567890123456789012345678901234";
    expect_reject(&s, "name is 64 bytes (limit 63)");
}

TEST(hostile_offsets)
{
    spec s = base_spec();
    expect_reject_cut(&s, 10, "tensor 1 'blk.0.attn_q.weight': data ends at byte");
    s.t[1].fixed = 1;
    s.t[1].offset = 1ull << 40;
    expect_reject(&s, "past the end of the file");
    s.t[1].offset = UINT64_MAX - 31;         /* aligned, and wraps with the size */
    expect_reject(&s, "overflows");
    s.t[1].offset = 16;
    expect_reject(&s, "offset 16 is not a multiple of the alignment 32");
    s = base_spec();                         /* both at 0: more bytes than the file */
    s.t[1] = (tdesc){ "second", 2, { 32, 3 }, G_F32, 1, 0 };
    expect_reject(&s, "tensors overlap");
}

TEST(hostile_key_too_long)
{
    size_t klen = HGGUF_MAX_KEY_LEN + 1;
    img m = { 0 };

    put(&m, "GGUF", 4);
    put_u32(&m, 3);
    put_u64(&m, 0);
    put_u64(&m, 1);
    put_u64(&m, klen);
    put_zeros(&m, klen + 16);
    expect_reject_img(m.d, m.len, "exceeds the 1 MiB key limit");
    free(m.d);
}

/* A 65 MiB string value in a sparse file: the header cap stops the parse. */
TEST(hostile_header_cap)
{
    char path[128], err[256];
    img m = { 0 };
    int fd;

    put(&m, "GGUF", 4);
    put_u32(&m, 3);
    put_u64(&m, 0);
    put_u64(&m, 1);
    put_str(&m, "general.name");
    put_u32(&m, T_STRING);
    put_u64(&m, 65ull << 20);
    tmp_init();
    tmp_path(path, sizeof path, "cap.gguf");
    write_file(path, m.d, m.len);
    fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && ftruncate(fd, 70 << 20) == 0);
    close(fd);
    CHECK_EQ_INT(gguf_check_file(path, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "header larger than the 64 MiB limit") != NULL);
    unlink(path);
    rmdir(tmpdir);
    free(m.d);
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
    alarm(10);                               /* a blocking open would hang here */
    t0 = now_s();
    CHECK_EQ_INT(gguf_check_file(path, NULL, err, sizeof err), -1);
    CHECK(now_s() - t0 < 1.0);
    alarm(0);
    CHECK(strstr(err, "FIFO") != NULL);
    unlink(path);

    CHECK_EQ_INT(gguf_check_file("/dev/zero", NULL, err, sizeof err), -1);
    CHECK(strstr(err, "character device") != NULL);
    CHECK_EQ_INT(gguf_check_file(tmpdir, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "directory") != NULL);

    tmp_path(link_path, sizeof link_path, "link");
    CHECK_EQ_INT(symlink("/dev/zero", link_path), 0);
    CHECK_EQ_INT(gguf_check_file(link_path, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "character device") != NULL);
    unlink(link_path);

    tmp_path(path, sizeof path, "missing.gguf");
    CHECK_EQ_INT(gguf_check_file(path, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "cannot stat") != NULL);
    CHECK(strstr(err, tmpdir) == NULL);
    rmdir(tmpdir);
}

/* ---- properties ------------------------------------------------------------ */

/* Every bit flip, byte overwrite and truncation of a valid image: no crash,
 * no read past the end (ASan watches the exact-size copies), and truncation
 * is always refused, by both entry points alike. */
TEST(mutations_never_crash)
{
    spec s = base_spec();
    s.nest = 1;
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
    CHECK(accepted > 0);                     /* flips inside tensor data are fine */

    tmp_init();
    tmp_path(path, sizeof path, "cut.gguf");
    for (size_t len = 0; len < m.len; len++) {
        CHECK_EQ_INT(check_copy(m.d, len, NULL, err, sizeof err), -1);
        write_file(path, m.d, len);
        CHECK_EQ_INT(gguf_check_file(path, NULL, err2, sizeof err2), -1);
        CHECK_STR(err2, err);
    }
    unlink(path);
    rmdir(tmpdir);
    free(c);
    free(m.d);
}

int main(void)
{
    RUN(stories260k);
    RUN(vocab_files);
    RUN(not_gguf_real_file);
    RUN(built_valid);
    RUN(built_variants_pass);
    RUN(null_out_and_err);
    RUN(hostile_tiny);
    RUN(hostile_magic_version);
    RUN(hostile_counts);
    RUN(hostile_strings);
    RUN(hostile_arrays);
    RUN(hostile_duplicates);
    RUN(hostile_alignment);
    RUN(hostile_shapes);
    RUN(hostile_offsets);
    RUN(hostile_key_too_long);
    RUN(hostile_header_cap);
    RUN(hostile_not_regular);
    RUN(mutations_never_crash);
    return check_summary();
}
