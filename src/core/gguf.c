/*
 * gguf.c: the GGUF header validator; see gguf.h for what it accepts.
 *
 * One pass over the header through a small reader that is backed either by a
 * file descriptor (pread into a 64 KiB window) or by a memory image. Every
 * number that comes from the file is treated as hostile:
 *
 *   - the reader refuses any read or skip that would pass the end of the file
 *     or the HGGUF_MAX_HEADER_BYTES cap, so nothing is ever read out of bounds
 *     and position arithmetic cannot overflow (pos <= cap always holds);
 *   - counts are compared by division (count <= left / elem_size) before any
 *     multiplication, and the remaining products use __builtin_*_overflow;
 *   - memory we allocate is bounded by n_kv and n_tensors, which are capped
 *     and must also fit in the bytes the file actually has.
 *
 * Keys and tensor names are kept in two small hash sets (for the duplicate
 * checks); the key set also remembers each key's type and integer value, so
 * "<arch>.*" keys can be looked up after the pass no matter where
 * general.architecture sits in the file.
 *
 * The first failure wins: it writes the reason and every caller just
 * propagates -1.
 */
#include "core/gguf.h"

#include "core/binreader.h"

#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_SIZE 24u         /* magic + version + n_tensors + n_kv */
#define MIN_KV      13u         /* u64 key length + u32 type + 1-byte value */
#define MIN_TENSOR  32u         /* name length + n_dims + one ne + type + offset */
#define MIN_STRING  8u          /* a string element: its u64 length */
#define MIN_ARRAY   12u         /* an array element: u32 type + u64 count */

/* ---- GGUF value types ---------------------------------------------------- */

enum {
    GT_U8, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL,
    GT_STRING, GT_ARRAY, GT_U64, GT_I64, GT_F64, GT_COUNT
};

/* Encoded size of each fixed-size type; 0 for string and array. */
static const uint8_t gt_size[GT_COUNT] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

static const char *const gt_name[GT_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
    "string", "array", "u64", "i64", "f64"
};

static bool gt_is_int(uint32_t t)
{
    return t <= GT_I32 || t == GT_U64 || t == GT_I64;
}

static bool gt_is_signed(uint32_t t)
{
    return t == GT_I8 || t == GT_I16 || t == GT_I32 || t == GT_I64;
}

/* ---- ggml tensor types ----------------------------------------------------
 * (block size in elements, bytes per block), verified against
 * ggml_blck_size()/ggml_type_size() of the ggml in deps/prefix (0.27.0).
 * Gaps are types ggml removed; they and anything past the end are refused. */

static const struct ggml_type_desc {
    uint16_t    blck;
    uint16_t    size;
    const char *name;
} ggml_types[] = {
    [0]  = { 1, 4, "F32" },         [1]  = { 1, 2, "F16" },
    [2]  = { 32, 18, "Q4_0" },      [3]  = { 32, 20, "Q4_1" },
    [6]  = { 32, 22, "Q5_0" },      [7]  = { 32, 24, "Q5_1" },
    [8]  = { 32, 34, "Q8_0" },      [9]  = { 32, 36, "Q8_1" },
    [10] = { 256, 84, "Q2_K" },     [11] = { 256, 110, "Q3_K" },
    [12] = { 256, 144, "Q4_K" },    [13] = { 256, 176, "Q5_K" },
    [14] = { 256, 210, "Q6_K" },    [15] = { 256, 292, "Q8_K" },
    [16] = { 256, 66, "IQ2_XXS" },  [17] = { 256, 74, "IQ2_XS" },
    [18] = { 256, 98, "IQ3_XXS" },  [19] = { 256, 50, "IQ1_S" },
    [20] = { 32, 18, "IQ4_NL" },    [21] = { 256, 110, "IQ3_S" },
    [22] = { 256, 82, "IQ2_S" },    [23] = { 256, 136, "IQ4_XS" },
    [24] = { 1, 1, "I8" },          [25] = { 1, 2, "I16" },
    [26] = { 1, 4, "I32" },         [27] = { 1, 8, "I64" },
    [28] = { 1, 8, "F64" },         [29] = { 256, 56, "IQ1_M" },
    [30] = { 1, 2, "BF16" },
    [34] = { 256, 54, "TQ1_0" },    [35] = { 256, 66, "TQ2_0" },
    [39] = { 32, 17, "MXFP4" },     [40] = { 64, 36, "NVFP4" },
    [41] = { 128, 18, "Q1_0" },     [42] = { 64, 18, "Q2_0" },
};

static const struct ggml_type_desc *ggml_type_find(uint32_t t)
{
    if (t >= sizeof ggml_types / sizeof ggml_types[0] || ggml_types[t].blck == 0)
        return NULL;
    return &ggml_types[t];
}

/* ---- reader --------------------------------------------------------------- */

typedef binreader reader;

static uint64_t le(const uint8_t *b, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | b[i];
    return v;
}

/* where = "<kind> <idx> '<name>'", the name made printable and shortened. */
static void rd_where(reader *r, const char *kind, uint64_t idx, const void *name,
                     size_t len)
{
    const uint8_t *s = name;
    char shown[52];
    size_t n = 0;

    for (size_t i = 0; i < len && n < 44; i++)
        shown[n++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? (char)s[i] : '?';
    if (len > 44) {
        memcpy(shown + n, "...", 3);
        n += 3;
    }
    shown[n] = '\0';
    snprintf(r->where, sizeof r->where, "%s %" PRIu64 " '%s'", kind, idx, shown);
}

/* ---- name sets ------------------------------------------------------------ */

typedef struct entry {
    uint64_t hash;
    uint32_t off, len;      /* the name's bytes in nameset.names */
    uint32_t type;          /* keys: GGUF value type */
    uint32_t elem_type;     /* keys: element type of an array */
    bool     has_int;       /* keys: a scalar integer >= 0 */
    uint64_t ival;          /* that integer, or an array's element count */
} entry;

typedef struct nameset {
    buf       names;        /* every name back to back */
    entry    *ents;         /* room for max entries, never moves */
    uint32_t  n, max;
    uint32_t *slots;        /* open addressing: entry index + 1; 0 = empty */
    uint32_t  mask;
} nameset;

static uint64_t fnv1a(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static int ns_init(nameset *s, uint32_t max)
{
    uint32_t nslots = 16;

    while (nslots < 2 * max)
        nslots *= 2;
    s->names = buf_make(HGGUF_MAX_HEADER_BYTES);
    s->ents = calloc(max ? max : 1, sizeof *s->ents);
    s->slots = calloc(nslots, sizeof *s->slots);
    s->n = 0;
    s->max = max;
    s->mask = nslots - 1;
    return s->ents && s->slots ? 0 : -1;
}

static void ns_free(nameset *s)
{
    buf_free(&s->names);
    free(s->ents);
    free(s->slots);
    s->ents = NULL;
    s->slots = NULL;
}

/* The slot that holds name, or the empty slot where it would go. */
static uint32_t *ns_slot(const nameset *s, const void *name, size_t len, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & s->mask;; i = (i + 1) & s->mask) {
        uint32_t e = s->slots[i];
        if (e == 0)
            return &s->slots[i];
        const entry *x = &s->ents[e - 1];
        if (x->hash == h && x->len == len &&
            (len == 0 || memcmp(s->names.data + x->off, name, len) == 0))
            return &s->slots[i];
    }
}

static entry *ns_find(const nameset *s, const char *name)
{
    size_t len = strlen(name);
    uint32_t *slot = ns_slot(s, name, len, fnv1a(name, len));
    return *slot ? &s->ents[*slot - 1] : NULL;
}

/* Adds name; 0 and *out set, 1 if already present, -1 when out of memory. */
static int ns_add(nameset *s, const void *name, size_t len, entry **out)
{
    uint64_t h = fnv1a(name, len);
    uint32_t *slot = ns_slot(s, name, len, h);

    if (*slot)
        return 1;
    if (s->n >= s->max || buf_append(&s->names, name, len))
        return -1;
    entry *e = &s->ents[s->n];
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->off = (uint32_t)(s->names.len - len);
    e->len = (uint32_t)len;
    *slot = ++s->n;
    *out = e;
    return 0;
}

/* ---- parser --------------------------------------------------------------- */

typedef struct span {
    uint64_t offset, size;
} span;

typedef struct parser {
    reader    r;
    gguf_info info;
    nameset   keys, tnames;
    uint8_t  *scratch;      /* the current key */
    size_t    scratch_alloc;
    span     *spans;        /* one per tensor */
} parser;

static void parser_init(parser *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->r.fd = -1;
    p->r.cap = HGGUF_MAX_HEADER_BYTES;
    p->r.err = err;
    p->r.errlen = errlen;
    snprintf(p->r.where, sizeof p->r.where, "the header");
    if (err && errlen)
        err[0] = '\0';
}

static void parser_free(parser *p)
{
    ns_free(&p->keys);
    ns_free(&p->tnames);
    free(p->scratch);
    free(p->spans);
    br_release(&p->r);
}

static int parse_header(parser *p)
{
    reader *r = &p->r;
    uint8_t magic[4];
    uint32_t version;
    uint64_t nt, nkv;

    if (r->size < HEADER_SIZE)
        return br_fail(r, "file is %" PRIu64 " bytes, too small for a GGUF header (%u)",
                    r->size, HEADER_SIZE);
    if (br_bytes(r, magic, 4) || br_u32(r, &version) || br_u64(r, &nt) || br_u64(r, &nkv))
        return -1;
    if (memcmp(magic, "GGUF", 4) != 0)
        return br_fail(r, "bad magic: not a GGUF file");
    if (version != 2 && version != 3)
        return br_fail(r, "unsupported GGUF version %" PRIu32 " (only 2 and 3 are accepted%s)",
                    version, version && !(version & 0xffff) ? "; big-endian file?" : "");
    if (nt > HGGUF_MAX_TENSORS)
        return br_fail(r, "n_tensors %" PRIu64 " exceeds the limit of %u", nt, HGGUF_MAX_TENSORS);
    if (nkv > HGGUF_MAX_KV)
        return br_fail(r, "n_kv %" PRIu64 " exceeds the limit of %u", nkv, HGGUF_MAX_KV);
    /* Both are <= 2^16, so this cannot overflow. */
    if (nkv * MIN_KV + nt * MIN_TENSOR > br_left(r))
        return br_fail(r, "%" PRIu64 " keys and %" PRIu64 " tensors cannot fit in the %" PRIu64
                       " bytes after the header", nkv, nt, br_left(r));
    p->info.version = version;
    p->info.n_tensors = nt;
    p->info.n_kv = nkv;
    if (ns_init(&p->keys, (uint32_t)nkv) || ns_init(&p->tnames, (uint32_t)nt))
        return br_fail(r, "out of memory");
    p->spans = calloc(nt ? nt : 1, sizeof *p->spans);
    if (!p->spans)
        return br_fail(r, "out of memory");
    return 0;
}

static int skip_string(parser *p)
{
    reader *r = &p->r;
    uint64_t len;

    if (br_u64(r, &len))
        return -1;
    if (len > br_left(r))
        return br_fail(r, "%s: string length %" PRIu64 " exceeds the %" PRIu64
                       " bytes left in the file", r->where, len, br_left(r));
    return br_skip(r, len);
}

/* A fixed-size scalar; integers are remembered in e when e is not NULL. */
static int read_scalar(parser *p, uint32_t type, entry *e)
{
    uint8_t b[8];
    unsigned n = gt_size[type];

    if (br_bytes(&p->r, b, n))
        return -1;
    if (e && gt_is_int(type)) {
        uint64_t v = le(b, n);
        bool neg = gt_is_signed(type) && (b[n - 1] & 0x80);
        e->has_int = !neg;
        e->ival = v;
    }
    return 0;
}

/* An array's body (element type, count, elements); depth counts this array. */
static int read_array(parser *p, unsigned depth, entry *e)
{
    reader *r = &p->r;
    uint32_t et;
    uint64_t n, min;

    if (br_u32(r, &et) || br_u64(r, &n))
        return -1;
    if (et >= GT_COUNT)
        return br_fail(r, "%s: array element type %" PRIu32 " is not a GGUF type", r->where, et);
    if (et == GT_ARRAY && depth >= HGGUF_MAX_ARRAY_DEPTH)
        return br_fail(r, "%s: arrays nested deeper than %u levels", r->where,
                    HGGUF_MAX_ARRAY_DEPTH);
    if (e) {
        e->elem_type = et;
        e->ival = n;
    }
    min = gt_size[et] ? gt_size[et] : et == GT_STRING ? MIN_STRING : MIN_ARRAY;
    if (n > br_left(r) / min)
        return br_fail(r, "%s: array of %" PRIu64 " %s elements cannot fit in the %" PRIu64
                       " bytes left in the file", r->where, n, gt_name[et], br_left(r));
    if (gt_size[et])
        return br_skip(r, n * gt_size[et]);     /* n * size <= left: no overflow */
    for (uint64_t i = 0; i < n; i++)
        if (et == GT_STRING ? skip_string(p) : read_array(p, depth + 1, NULL))
            return -1;
    return 0;
}

static int read_value(parser *p, uint32_t type, entry *e)
{
    if (type >= GT_COUNT)
        return br_fail(&p->r, "%s: value type %" PRIu32 " is not a GGUF type", p->r.where, type);
    if (type == GT_STRING)
        return skip_string(p);
    if (type == GT_ARRAY)
        return read_array(p, 1, e);
    return read_scalar(p, type, e);
}

/* general.architecture: kept in info.arch, so it must be short and NUL-free. */
static int read_arch(parser *p)
{
    reader *r = &p->r;
    uint64_t len;

    if (br_u64(r, &len))
        return -1;
    if (len > br_left(r))
        return br_fail(r, "%s: string length %" PRIu64 " exceeds the %" PRIu64
                       " bytes left in the file", r->where, len, br_left(r));
    if (len >= sizeof p->info.arch)
        return br_fail(r, "general.architecture is %" PRIu64 " bytes (limit %zu)", len,
                    sizeof p->info.arch - 1);
    if (br_bytes(r, p->info.arch, (size_t)len))
        return -1;
    p->info.arch[len] = '\0';
    if (strlen(p->info.arch) != len)
        return br_fail(r, "general.architecture contains a NUL byte");
    return 0;
}

static int read_key(parser *p, uint64_t i, entry **e)
{
    reader *r = &p->r;
    uint64_t len;
    int rc;

    snprintf(r->where, sizeof r->where, "key %" PRIu64, i);
    if (br_u64(r, &len))
        return -1;
    if (len > br_left(r))
        return br_fail(r, "key %" PRIu64 ": length %" PRIu64 " exceeds the %" PRIu64
                       " bytes left in the file", i, len, br_left(r));
    if (len > HGGUF_MAX_KEY_LEN)
        return br_fail(r, "key %" PRIu64 ": length %" PRIu64 " exceeds the %u MiB key limit",
                    i, len, HGGUF_MAX_KEY_LEN >> 20);
    if (len > p->scratch_alloc) {
        uint8_t *s = realloc(p->scratch, (size_t)len);
        if (!s)
            return br_fail(r, "out of memory");
        p->scratch = s;
        p->scratch_alloc = (size_t)len;
    }
    if (br_bytes(r, p->scratch, (size_t)len))
        return -1;
    rd_where(r, "key", i, p->scratch, (size_t)len);
    rc = ns_add(&p->keys, p->scratch, (size_t)len, e);
    if (rc > 0)
        return br_fail(r, "duplicate %s", r->where);
    if (rc < 0)
        return br_fail(r, "out of memory");
    return 0;
}

static int parse_kvs(parser *p)
{
    for (uint64_t i = 0; i < p->info.n_kv; i++) {
        entry *e;
        if (read_key(p, i, &e) || br_u32(&p->r, &e->type))
            return -1;
        bool is_arch = e->len == 20 &&
                       memcmp(p->keys.names.data + e->off, "general.architecture", 20) == 0;
        if (is_arch && e->type == GT_STRING) {
            if (read_arch(p))
                return -1;
        } else if (read_value(p, e->type, e)) {
            return -1;
        }
    }
    return 0;
}

static int check_alignment(parser *p)
{
    const entry *e = ns_find(&p->keys, "general.alignment");
    reader *r = &p->r;

    p->info.alignment = HGGUF_DEFAULT_ALIGNMENT;
    if (!e)
        return 0;
    if (e->type != GT_U32)
        return br_fail(r, "general.alignment has type %s, expected u32",
                    e->type < GT_COUNT ? gt_name[e->type] : "?");
    if (e->ival == 0)
        return br_fail(r, "general.alignment is 0");
    if (e->ival & (e->ival - 1))
        return br_fail(r, "general.alignment %" PRIu64 " is not a power of two", e->ival);
    if (e->ival > HGGUF_MAX_ALIGNMENT)
        return br_fail(r, "general.alignment %" PRIu64 " exceeds %u", e->ival, HGGUF_MAX_ALIGNMENT);
    p->info.alignment = (uint32_t)e->ival;
    return 0;
}

/* The value of "<arch>.<suffix>" when it is a scalar integer that fits u32. */
static uint32_t arch_u32(const parser *p, const char *suffix)
{
    char key[96];
    const entry *e;

    snprintf(key, sizeof key, "%s.%s", p->info.arch, suffix);
    e = ns_find(&p->keys, key);
    return e && e->has_int && e->ival <= UINT32_MAX ? (uint32_t)e->ival : 0;
}

static void collect_hparams(parser *p)
{
    gguf_info *in = &p->info;
    const entry *tok = ns_find(&p->keys, "tokenizer.ggml.tokens");

    if (tok && tok->type == GT_ARRAY && tok->elem_type == GT_STRING && tok->ival <= UINT32_MAX)
        in->n_vocab = (uint32_t)tok->ival;
    if (!in->arch[0])
        return;
    in->n_layer = arch_u32(p, "block_count");
    in->n_embd = arch_u32(p, "embedding_length");
    in->n_head = arch_u32(p, "attention.head_count");
    in->n_head_kv = arch_u32(p, "attention.head_count_kv");
    if (!in->n_head_kv)
        in->n_head_kv = in->n_head;
    in->n_ctx_train = arch_u32(p, "context_length");
    in->n_ff = arch_u32(p, "feed_forward_length");
    in->key_length = arch_u32(p, "attention.key_length");
    in->value_length = arch_u32(p, "attention.value_length");
}

/* Shape and type of one tensor; *size gets its data size in bytes, and
 * *elems its element count if it is a matrix (2+ dimensions, 2+ rows; else
 * 0) and *is_float whether it is kept in F32, F16 or BF16. */
static int read_shape(parser *p, uint64_t *size, uint64_t *elems, bool *is_float)
{
    reader *r = &p->r;
    uint32_t n_dims, type;
    uint64_t ne[HGGUF_MAX_DIMS] = { 1, 1, 1, 1 }, nelem = 1, bytes;
    const struct ggml_type_desc *t;

    if (br_u32(r, &n_dims))
        return -1;
    if (n_dims < 1 || n_dims > HGGUF_MAX_DIMS)
        return br_fail(r, "%s: %" PRIu32 " dimensions (must be 1 to %u)", r->where, n_dims,
                    HGGUF_MAX_DIMS);
    for (uint32_t d = 0; d < n_dims; d++) {
        if (br_u64(r, &ne[d]))
            return -1;
        if (ne[d] == 0)
            return br_fail(r, "%s: dimension %" PRIu32 " is 0", r->where, d);
        if (ne[d] > INT64_MAX)
            return br_fail(r, "%s: dimension %" PRIu32 " is %" PRIu64 ", beyond INT64_MAX",
                        r->where, d, ne[d]);
        if (__builtin_mul_overflow(nelem, ne[d], &nelem) || nelem > INT64_MAX)
            return br_fail(r, "%s: element count overflows", r->where);
    }
    if (br_u32(r, &type))
        return -1;
    t = ggml_type_find(type);
    if (!t)
        return br_fail(r, "%s: unknown ggml type %" PRIu32, r->where, type);
    if (ne[0] % t->blck)
        return br_fail(r, "%s: ne0 %" PRIu64 " is not a multiple of the %s block size %u",
                    r->where, ne[0], t->name, t->blck);
    bytes = ne[0] / t->blck;
    for (unsigned d = 1; d <= HGGUF_MAX_DIMS; d++)
        if (__builtin_mul_overflow(bytes, d == 1 ? (uint64_t)t->size : ne[d - 1], &bytes))
            return br_fail(r, "%s: byte size overflows", r->where);
    *size = bytes;
    *elems = n_dims >= 2 && ne[1] >= 2 ? nelem : 0;
    *is_float = type == 0 || type == 1 || type == 30;
    return 0;
}

static int parse_tensor_infos(parser *p)
{
    reader *r = &p->r;

    for (uint64_t i = 0; i < p->info.n_tensors; i++) {
        char name[HGGUF_MAX_NAME_LEN + 1];
        uint64_t len;
        entry *e;
        int rc;

        snprintf(r->where, sizeof r->where, "tensor %" PRIu64, i);
        if (br_u64(r, &len))
            return -1;
        if (len > br_left(r))
            return br_fail(r, "tensor %" PRIu64 ": name length %" PRIu64 " exceeds the %" PRIu64
                           " bytes left in the file", i, len, br_left(r));
        if (len > HGGUF_MAX_NAME_LEN)
            return br_fail(r, "tensor %" PRIu64 ": name is %" PRIu64 " bytes (limit %u)", i, len,
                        HGGUF_MAX_NAME_LEN);
        if (br_bytes(r, name, (size_t)len))
            return -1;
        rd_where(r, "tensor", i, name, (size_t)len);
        rc = ns_add(&p->tnames, name, (size_t)len, &e);
        if (rc > 0)
            return br_fail(r, "duplicate tensor name: %s", r->where);
        if (rc < 0)
            return br_fail(r, "out of memory");
        uint64_t elems = 0;
        bool is_float = false;
        if (read_shape(p, &p->spans[i].size, &elems, &is_float) ||
            br_u64(r, &p->spans[i].offset))
            return -1;
        const bool edge = (len == 17 && memcmp(name, "token_embd.weight", 17) == 0) ||
                          (len == 13 && memcmp(name, "output.weight", 13) == 0);
        if (elems && !edge) {
            gguf_info *in = &p->info;
            if (__builtin_add_overflow(in->matrix_elems, elems, &in->matrix_elems) ||
                (is_float && __builtin_add_overflow(in->float_matrix_elems, elems,
                                                    &in->float_matrix_elems)))
                return br_fail(r, "total element count overflows");
            if (is_float && p->spans[i].size > in->largest_float_matrix_bytes)
                in->largest_float_matrix_bytes = p->spans[i].size;
        }
    }
    return 0;
}

/* Each tensor's data must be aligned and lie inside the file. */
static int check_data(parser *p)
{
    reader *r = &p->r;
    gguf_info *in = &p->info;
    uint64_t header_end = r->pos, align = in->alignment, start;

    /* header_end <= 64 MiB and align <= 64 KiB: no overflow. */
    start = (header_end + align - 1) / align * align;
    in->data_offset = in->n_tensors ? start : header_end;
    if (in->n_tensors && start > r->size)
        return br_fail(r, "tensor data would start at byte %" PRIu64 ", past the end of the"
                       " file (%" PRIu64 " bytes)", start, r->size);
    for (uint64_t i = 0; i < in->n_tensors; i++) {
        const span *s = &p->spans[i];
        const entry *e = &p->tnames.ents[i];
        uint64_t at, end;

        rd_where(r, "tensor", i, e->len ? p->tnames.names.data + e->off : "", e->len);
        if (s->offset % align)
            return br_fail(r, "%s: offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                        r->where, s->offset, align);
        if (__builtin_add_overflow(start, s->offset, &at) ||
            __builtin_add_overflow(at, s->size, &end))
            return br_fail(r, "%s: offset %" PRIu64 " + size %" PRIu64 " overflows", r->where,
                        s->offset, s->size);
        if (end > r->size)
            return br_fail(r, "%s: data ends at byte %" PRIu64 ", past the end of the file"
                           " (%" PRIu64 " bytes)", r->where, end, r->size);
        /* each size <= file size, but 65536 of them could still wrap */
        if (__builtin_add_overflow(in->tensor_bytes, s->size, &in->tensor_bytes))
            return br_fail(r, "total tensor size overflows");
        if (s->size > in->largest_tensor_bytes)
            in->largest_tensor_bytes = s->size;
        const char *nm = e->len ? p->tnames.names.data + e->off : "";
        if (e->len == 17 && memcmp(nm, "token_embd.weight", 17) == 0)
            in->token_embd_bytes = s->size;
        if (e->len == 13 && memcmp(nm, "output.weight", 13) == 0) {
            in->has_output = true;
            in->output_bytes = s->size;
        }
    }
    /* Real files pack tensors without overlap; more bytes than the data
     * section holds means overlapping tensors inflating the memory estimate. */
    if (in->n_tensors && in->tensor_bytes > r->size - start)
        return br_fail(r, "tensors overlap: %" PRIu64 " bytes of tensor data in a %" PRIu64
                       "-byte data section", in->tensor_bytes, r->size - start);
    return 0;
}

static int parse(parser *p)
{
    p->info.file_size = p->r.size;
    if (parse_header(p) || parse_kvs(p) || check_alignment(p))
        return -1;
    collect_hparams(p);
    if (parse_tensor_infos(p) || check_data(p))
        return -1;
    return 0;
}

/* ---- entry points --------------------------------------------------------- */

static int finish(parser *p, int rc, gguf_info *out)
{
    if (out) {
        if (rc == 0)
            *out = p->info;
        else
            memset(out, 0, sizeof *out);
    }
    parser_free(p);
    return rc;
}

int gguf_check_buffer(const void *data, size_t len, gguf_info *out, char *err,
                      size_t errlen)
{
    parser p;

    parser_init(&p, err, errlen);
    p.r.mem = data;
    p.r.size = len;
    if (!data && len)
        return finish(&p, br_fail(&p.r, "no data"), out);
    return finish(&p, parse(&p), out);
}

int gguf_check_file(const char *path, gguf_info *out, char *err, size_t errlen)
{
    parser p;
    int rc = -1;

    parser_init(&p, err, errlen);
    if (br_open_file(&p.r, path) == 0)
        rc = parse(&p);
    return finish(&p, rc, out);
}

bool gguf_is_float_chat_model(const gguf_info *gi)
{
    return !gguf_arch_is_embedding(gi->arch) && gi->float_matrix_elems > gi->matrix_elems / 2;
}

bool gguf_arch_is_embedding(const char *arch)
{
    static const char *const enc[] = { "bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2",
                                       "jina-bert-v3", "modern-bert", "neo-bert", "t5encoder" };
    for (size_t i = 0; i < sizeof enc / sizeof *enc; i++)
        if (strcmp(arch, enc[i]) == 0)
            return true;
    return false;
}
