/*
 * ggml_legacy.c: the whisper.cpp (legacy ggml) model validator; see
 * ggml_legacy.h for what it accepts.
 *
 * One pass through a small reader backed either by a file descriptor (pread
 * into a 64 KiB window) or by a memory image. Every number from the file is
 * hostile: the reader refuses any read or skip past the end (so positions
 * never overflow: pos <= size always holds), counts are compared with the
 * bytes that remain by division before anything is multiplied, and the
 * remaining products and sums use __builtin_*_overflow. Nothing is allocated
 * from a file-supplied size: the window is fixed and names are checked in a
 * fixed buffer. The first failure writes the reason; callers propagate -1.
 */
#include "core/ggml_legacy.h"

#include "core/binreader.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_HPARAMS   11

/* ---- ggml tensor types a whisper file may hold ------------------------------
 * (block size in elements, bytes per block), as in core/gguf.c, which checked
 * them against ggml_blck_size()/ggml_type_size(). Types whisper.cpp never
 * writes (Q8_1/Q8_K are intermediate, IQ* come only from llama's tools) are
 * refused. */

static const struct type_desc {
    uint16_t blck, size;
} types[] = {
    [0] = { 1, 4 },       [1] = { 1, 2 },                        /* F32, F16 */
    [2] = { 32, 18 },     [3] = { 32, 20 },                      /* Q4_0, Q4_1 */
    [6] = { 32, 22 },     [7] = { 32, 24 },     [8] = { 32, 34 }, /* Q5_0, Q5_1, Q8_0 */
    [10] = { 256, 84 },   [11] = { 256, 110 },  [12] = { 256, 144 }, /* Q2_K..Q4_K */
    [13] = { 256, 176 },  [14] = { 256, 210 },                   /* Q5_K, Q6_K */
};

static const struct type_desc *type_find(int32_t t)
{
    if (t < 0 || (size_t)t >= sizeof types / sizeof types[0] || types[t].blck == 0)
        return NULL;
    return &types[t];
}

/* ggml file type (hparams.ftype % 1000) -> the tensor type of the 2-D weights,
 * as whisper.cpp's ggml_ftype_to_ggml_type maps it; -1 when whisper refuses it. */
static int ftype_wtype(int32_t ftype)
{
    switch (ftype) {
    case 0: return 0;       /* ALL_F32 */
    case 1: return 1;       /* MOSTLY_F16 */
    case 2: return 2;       /* Q4_0 */
    case 3: return 3;       /* Q4_1 */
    case 7: return 8;       /* Q8_0 */
    case 8: return 6;       /* Q5_0 */
    case 9: return 7;       /* Q5_1 */
    case 10: return 10;     /* Q2_K */
    case 11: return 11;     /* Q3_K */
    case 12: return 12;     /* Q4_K */
    case 13: return 13;     /* Q5_K */
    case 14: return 14;     /* Q6_K */
    default: return -1;
    }
}

/* ---- reader --------------------------------------------------------------- */

typedef binreader reader;

static void rd_where(reader *r, const char *fmt, uint64_t idx)
{
    snprintf(r->where, sizeof r->where, fmt, idx);
}

/* ---- the checks ------------------------------------------------------------ */

static int check_range(reader *r, const char *name, int32_t v, int32_t lo, int32_t hi)
{
    if (v < lo || v > hi)
        return br_fail(r, "hparams: %s = %" PRId32 " is outside [%" PRId32 ", %" PRId32 "]", name,
                    v, lo, hi);
    return 0;
}

static int check_hparams(reader *r, whisper_file_info *w)
{
    int32_t h[N_HPARAMS];

    rd_where(r, "the hparams", 0);
    for (int i = 0; i < N_HPARAMS; i++)
        if (br_i32(r, &h[i]))
            return -1;
    w->n_vocab = h[0];
    w->n_audio_ctx = h[1], w->n_audio_state = h[2], w->n_audio_head = h[3];
    w->n_audio_layer = h[4];
    w->n_text_ctx = h[5], w->n_text_state = h[6], w->n_text_head = h[7];
    w->n_text_layer = h[8];
    w->n_mels = h[9], w->ftype = h[10];

    if (check_range(r, "n_vocab", w->n_vocab, 1, HLEGACY_MAX_VOCAB) ||
        check_range(r, "n_audio_ctx", w->n_audio_ctx, 1, HLEGACY_MAX_CTX) ||
        check_range(r, "n_audio_state", w->n_audio_state, 1, HLEGACY_MAX_STATE) ||
        check_range(r, "n_audio_head", w->n_audio_head, 1, HLEGACY_MAX_HEADS) ||
        check_range(r, "n_audio_layer", w->n_audio_layer, 1, HLEGACY_MAX_LAYERS) ||
        check_range(r, "n_text_ctx", w->n_text_ctx, 1, HLEGACY_MAX_CTX) ||
        check_range(r, "n_text_state", w->n_text_state, 1, HLEGACY_MAX_STATE) ||
        check_range(r, "n_text_head", w->n_text_head, 1, HLEGACY_MAX_HEADS) ||
        check_range(r, "n_text_layer", w->n_text_layer, 1, HLEGACY_MAX_LAYERS) ||
        check_range(r, "n_mels", w->n_mels, 1, HLEGACY_MAX_MELS) ||
        check_range(r, "ftype", w->ftype, 0, 9999))
        return -1;
    if (w->n_audio_state % w->n_audio_head)
        return br_fail(r, "hparams: n_audio_head %" PRId32 " does not divide n_audio_state %" PRId32,
                    w->n_audio_head, w->n_audio_state);
    if (w->n_text_state % w->n_text_head)
        return br_fail(r, "hparams: n_text_head %" PRId32 " does not divide n_text_state %" PRId32,
                    w->n_text_head, w->n_text_state);
    if (ftype_wtype(w->ftype % 1000) < 0)
        return br_fail(r, "hparams: unknown ftype %" PRId32, w->ftype);
    return 0;
}

static int check_mel_and_vocab(reader *r, whisper_file_info *w)
{
    int32_t n_mel, n_fft, n_words;

    rd_where(r, "the mel filter header", 0);
    if (br_i32(r, &n_mel) || br_i32(r, &n_fft))
        return -1;
    if (n_mel != w->n_mels)
        return br_fail(r, "mel filters: %" PRId32 " rows but n_mels is %" PRId32, n_mel, w->n_mels);
    if (n_fft < 1 || n_fft > HLEGACY_MAX_FFT)
        return br_fail(r, "mel filters: row length %" PRId32 " is outside [1, %d]", n_fft,
                    HLEGACY_MAX_FFT);
    w->n_fft = n_fft;
    rd_where(r, "the mel filters", 0);
    /* both factors are bounded above, so the product cannot overflow */
    if (br_skip(r, (uint64_t)n_mel * (uint64_t)n_fft * 4u))
        return -1;

    rd_where(r, "the vocabulary size", 0);
    if (br_i32(r, &n_words))
        return -1;
    if (n_words < 0 || n_words > HLEGACY_MAX_VOCAB)
        return br_fail(r, "vocabulary: %" PRId32 " entries is outside [0, %d]", n_words,
                    HLEGACY_MAX_VOCAB);
    /* each entry takes at least its 4-byte length */
    if ((uint64_t)n_words > br_left(r) / 4u)
        return br_fail(r, "truncated: the vocabulary claims %" PRId32 " entries but only %" PRIu64
                       " bytes remain", n_words, br_left(r));
    w->n_vocab_file = n_words;
    for (int32_t i = 0; i < n_words; i++) {
        uint32_t len;
        rd_where(r, "vocabulary entry %" PRIu64, (uint64_t)i);
        if (br_u32(r, &len))
            return -1;
        if (len > HLEGACY_MAX_TOKEN_LEN)
            return br_fail(r, "vocabulary entry %" PRId32 " is %" PRIu32 " bytes (limit %d)", i,
                        len, HLEGACY_MAX_TOKEN_LEN);
        if (br_skip(r, len))
            return -1;
    }
    return 0;
}

/* One tensor record; adds its data size to *bytes. */
static int check_tensor(reader *r, uint64_t idx, uint64_t *bytes)
{
    int32_t n_dims, name_len, ttype, ne[HLEGACY_MAX_DIMS];
    char name[HLEGACY_MAX_NAME_LEN + 1];

    rd_where(r, "tensor record %" PRIu64, idx);
    if (br_i32(r, &n_dims) || br_i32(r, &name_len) || br_i32(r, &ttype))
        return -1;
    if (n_dims < 1 || n_dims > HLEGACY_MAX_DIMS)
        return br_fail(r, "tensor %" PRIu64 ": %" PRId32 " dimensions (must be 1..%d)", idx, n_dims,
                    HLEGACY_MAX_DIMS);
    if (name_len < 1 || name_len > HLEGACY_MAX_NAME_LEN)
        return br_fail(r, "tensor %" PRIu64 ": name length %" PRId32 " (must be 1..%d)", idx,
                    name_len, HLEGACY_MAX_NAME_LEN);
    const struct type_desc *td = type_find(ttype);
    if (!td)
        return br_fail(r, "tensor %" PRIu64 ": unknown or unsupported type %" PRId32, idx, ttype);
    /* whisper.cpp multiplies the dims as int32: keep the count inside one */
    int64_t nelem = 1;
    for (int32_t d = 0; d < n_dims; d++) {
        if (br_i32(r, &ne[d]))
            return -1;
        if (ne[d] < 1)
            return br_fail(r, "tensor %" PRIu64 ": dimension %" PRId32 " is %" PRId32, idx, d, ne[d]);
        nelem *= ne[d];                 /* both <= INT32_MAX: fits int64 */
        if (nelem > INT32_MAX)
            return br_fail(r, "tensor %" PRIu64 ": more than 2^31-1 elements", idx);
    }
    if (br_bytes(r, name, (size_t)name_len))
        return -1;
    name[name_len] = '\0';
    if (memchr(name, '\0', (size_t)name_len))
        return br_fail(r, "tensor %" PRIu64 ": the name contains a NUL byte", idx);
    if (ne[0] % td->blck)
        return br_fail(r, "tensor %" PRIu64 ": ne0 %" PRId32 " is not a multiple of its type's "
                       "block size %u", idx, ne[0], td->blck);
    uint64_t sz = (uint64_t)nelem / td->blck * td->size;     /* < 2^31 * 292 */
    rd_where(r, "tensor %" PRIu64 " data", idx);
    if (br_skip(r, sz))
        return -1;
    if (__builtin_add_overflow(*bytes, sz, bytes))
        return br_fail(r, "tensor bytes overflow");
    return 0;
}

/* Bytes of rows x ne0 elements of type t (ggml_nbytes for a contiguous tensor). */
static uint64_t nbytes(int t, uint64_t ne0, uint64_t rows)
{
    return rows * (ne0 / types[t].blck * types[t].size);
}

/* The weight memory whisper.cpp allocates for this shape: the tensor list of
 * its whisper_model_load (2-D weights in the file type, conv kernels F16 or
 * F32, norms, biases and positional embeddings F32). Bounded hparams keep
 * every term far below 2^64. */
static uint64_t weights_bytes(const whisper_file_info *w)
{
    int wt = ftype_wtype(w->ftype % 1000);
    int vt = wt == 0 ? 0 : 1;
    uint64_t a = (uint64_t)w->n_audio_state, t = (uint64_t)w->n_text_state;
    uint64_t s = 0;

    s += nbytes(0, a, (uint64_t)w->n_audio_ctx);                 /* positional */
    s += nbytes(vt, 3, (uint64_t)w->n_mels * a) + nbytes(vt, 3, a * a); /* convs */
    s += nbytes(0, a, 4);                                         /* conv biases, ln_post */
    s += (uint64_t)w->n_audio_layer * (nbytes(0, a, 12) + nbytes(wt, a, 4 * a) +
                                       nbytes(wt, 4 * a, a) + nbytes(wt, a, 4 * a));
    s += nbytes(0, t, (uint64_t)w->n_text_ctx) + nbytes(wt, t, (uint64_t)w->n_vocab) +
         nbytes(0, t, 2);
    s += (uint64_t)w->n_text_layer * (nbytes(0, t, 17) + nbytes(wt, t, 4 * t) +
                                      nbytes(wt, 4 * t, t) + nbytes(wt, t, 8 * t));
    return s;
}

static int parse(reader *r, whisper_file_info *w)
{
    uint32_t magic;

    rd_where(r, "the magic", 0);
    if (br_u32(r, &magic))
        return -1;
    if (magic != HLEGACY_MAGIC)
        return br_fail(r, "not a whisper (legacy ggml) model: bad magic 0x%08" PRIx32, magic);
    if (check_hparams(r, w) || check_mel_and_vocab(r, w))
        return -1;
    w->header_bytes = r->pos;
    /* whisper.cpp reads tensor records until end of file */
    while (br_left(r) > 0) {
        if (w->n_tensors >= HLEGACY_MAX_TENSORS)
            return br_fail(r, "more than %d tensors", HLEGACY_MAX_TENSORS);
        if (check_tensor(r, w->n_tensors, &w->tensor_bytes))
            return -1;
        w->n_tensors++;
    }
    w->weights_bytes = weights_bytes(w);
    w->file_size = r->size;
    return 0;
}

static int finish(int rc, const whisper_file_info *w, whisper_file_info *out)
{
    if (out) {
        if (rc == 0)
            *out = *w;
        else
            memset(out, 0, sizeof *out);
    }
    return rc;
}

int ggml_legacy_check_buffer(const void *data, size_t len, whisper_file_info *out, char *err,
                             size_t errlen)
{
    reader r = { .fd = -1, .mem = data, .size = len, .err = err, .errlen = errlen };
    whisper_file_info w = { 0 };
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if (!data && len)
        rc = br_fail(&r, "no data");
    else
        rc = parse(&r, &w);
    return finish(rc, &w, out);
}

int ggml_legacy_check_file(const char *path, whisper_file_info *out, char *err, size_t errlen)
{
    reader r = { .fd = -1, .err = err, .errlen = errlen };
    whisper_file_info w = { 0 };
    int rc = -1;

    if (err && errlen)
        err[0] = '\0';
    if (br_open_file(&r, path) == 0)
        rc = parse(&r, &w);
    br_release(&r);
    return finish(rc, &w, out);
}

bool ggml_legacy_is_whisper(const char *path)
{
    reader r = { .fd = -1 };
    uint32_t magic = 0;
    bool yes = br_open_file(&r, path) == 0 && br_u32(&r, &magic) == 0 && magic == HLEGACY_MAGIC;
    br_release(&r);
    return yes;
}
