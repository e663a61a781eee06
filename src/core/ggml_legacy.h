/*
 * ggml_legacy.h: validate a whisper.cpp model file (the legacy ggml format,
 * magic "lmgg") before anything trusts it.
 *
 * whisper.cpp's loader believes every number in the file: a tensor record with
 * n_dims 5 writes past a 4-element stack array, an unknown tensor type indexes
 * past ggml's type table, a vocabulary entry longer than the file reads
 * garbage. So, as with GGUF (core/gguf.h), hearth checks the file itself and
 * refuses a hostile or broken one with a one-line reason.
 *
 * The layout (all integers little-endian):
 *   u32 magic 0x67676d6c ("lmgg" on disk);
 *   11 x i32 hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
 *     n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer,
 *     n_mels, ftype;
 *   mel filters: i32 n_mel, i32 n_fft, then n_mel * n_fft f32;
 *   vocabulary: i32 count, then count x (u32 len, len bytes);
 *   tensors until end of file, each: i32 n_dims, i32 name_len, i32 ttype,
 *     n_dims x i32 ne (ne0 first), name_len name bytes, the data (no padding).
 *
 * What "valid" means here:
 *   - a regular file (never a FIFO, device or directory);
 *   - the magic; hparams within the HLEGACY_MAX_* bounds below, every count
 *     > 0, each head count dividing its state width; ftype a known ggml file
 *     type (ftype % 1000; the thousands are the quantization version);
 *   - the mel filter bank has n_mels rows of 1..HLEGACY_MAX_FFT floats, all in
 *     the file; the vocabulary has 0..HLEGACY_MAX_VOCAB entries, each at most
 *     HLEGACY_MAX_TOKEN_LEN bytes, all in the file;
 *   - every tensor record: 1..4 dims, every dim > 0, an element count that
 *     fits an int32 (whisper multiplies them as int32), a known type whose
 *     block size divides ne0, a name of 1..HLEGACY_MAX_NAME_LEN bytes, and
 *     data that lies wholly inside the file; at most HLEGACY_MAX_TENSORS.
 * A file with no tensors at all is valid (whisper.cpp then runs with
 * uninitialised weights; the test assets are such files).
 * Tensor names are not matched against whisper's expectations (the loader
 * refuses unknown names and wrong shapes itself, cleanly).
 *
 * All arithmetic on file-supplied numbers is overflow-checked and nothing is
 * read past the end of the file or image. Only the records are read (buffered
 * pread; tensor data is skipped, never read), so checking a 3 GB model costs
 * a few hundred small reads.
 *
 * Plain C + libc: hearthd does not link ggml or whisper. Thread safety: every
 * entry point is reentrant (no global state).
 */
#ifndef HEARTH_GGML_LEGACY_H
#define HEARTH_GGML_LEGACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HLEGACY_MAGIC          0x67676d6cu   /* "lmgg" read as a little-endian u32 */
#define HLEGACY_MAX_VOCAB      200000
#define HLEGACY_MAX_MELS       256
#define HLEGACY_MAX_FFT        4096          /* floats in one mel filter row */
#define HLEGACY_MAX_CTX        65536         /* n_audio_ctx, n_text_ctx */
#define HLEGACY_MAX_STATE      16384         /* n_audio_state, n_text_state */
#define HLEGACY_MAX_HEADS      1024
#define HLEGACY_MAX_LAYERS     1024
#define HLEGACY_MAX_TOKEN_LEN  1024          /* bytes in one vocabulary entry */
#define HLEGACY_MAX_TENSORS    65536
#define HLEGACY_MAX_NAME_LEN   63            /* GGML_MAX_NAME (64) less the NUL */
#define HLEGACY_MAX_DIMS       4

/* What a successful check learned. Plain values: nothing to free. */
typedef struct whisper_file_info {
    /* hparams, as stored */
    int32_t n_vocab;
    int32_t n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer;
    int32_t n_text_ctx, n_text_state, n_text_head, n_text_layer;
    int32_t n_mels;
    int32_t ftype;                 /* raw; ftype % 1000 is the ggml file type */
    int32_t n_fft;                 /* floats per mel filter row */
    int32_t n_vocab_file;          /* vocabulary entries stored (may be < n_vocab:
                                      whisper adds the special tokens itself) */
    uint64_t header_bytes;         /* offset of the first tensor record */
    uint64_t n_tensors;            /* tensor records in the file (0 is allowed) */
    uint64_t tensor_bytes;         /* sum of their data sizes */
    uint64_t weights_bytes;        /* the bytes whisper.cpp allocates for the
                                      weights of this shape and ftype, whether or
                                      not the file carries them (for budgeting) */
    uint64_t file_size;
} whisper_file_info;

/*
 * Validate the whisper model at path. The path is stat()ed first and anything
 * but a regular file is refused without being opened; the file is then opened
 * O_RDONLY|O_NONBLOCK|O_CLOEXEC and fstat()ed again, so a path swapped for a
 * FIFO cannot block the caller.
 *
 * Returns 0 and fills *out on success. Returns -1 on any failure (I/O errors
 * included) and writes a one-line, NUL-terminated reason that does not contain
 * the path into err (truncated to errlen; err may be NULL when errlen is 0);
 * *out is then zeroed. out may be NULL to validate only. Borrows path.
 */
int ggml_legacy_check_file(const char *path, whisper_file_info *out, char *err, size_t errlen);

/*
 * The same checks on an in-memory image of a whole file (tests and fuzzers);
 * file_size is len. data may be NULL only when len is 0. Never reads outside
 * data[0, len). Same contract as ggml_legacy_check_file. Borrows data.
 */
int ggml_legacy_check_buffer(const void *data, size_t len, whisper_file_info *out, char *err,
                             size_t errlen);

/* True when path is a regular file that starts with the legacy ggml magic.
 * Reads 4 bytes; no validation beyond that (use ggml_legacy_check_file). */
bool ggml_legacy_is_whisper(const char *path);

#endif
