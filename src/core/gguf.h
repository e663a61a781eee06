/*
 * gguf.h: validate a GGUF model file's header before anything trusts it.
 *
 * hearthd checks every model file itself, before a worker lets llama.cpp open
 * it: a hostile or broken file is refused with a one-line reason instead of
 * crashing (or exhausting) a worker. The same pass gathers the facts the
 * scheduler needs to estimate a model's memory footprint.
 *
 * What "valid" means here (GGUF v2/v3, little-endian):
 *   - a regular file (never a FIFO, device or directory), at least 24 bytes;
 *   - magic "GGUF", version 2 or 3;
 *   - n_tensors <= HGGUF_MAX_TENSORS, n_kv <= HGGUF_MAX_KV;
 *   - every string, array and nested array (depth <= 2) fits in the bytes
 *     that remain, keys <= HGGUF_MAX_KEY_LEN, no duplicate keys;
 *   - general.alignment, if present, is a u32 power of two in
 *     [1, HGGUF_MAX_ALIGNMENT] (default HGGUF_DEFAULT_ALIGNMENT);
 *   - each tensor: unique name shorter than HGGUF_MAX_NAME_LEN + 1 bytes,
 *     1..4 dims, every dim > 0, element count and byte size free of overflow,
 *     a known ggml type whose block size divides ne0, an aligned offset, and
 *     data that lies wholly inside the file;
 *   - the header (everything before the tensor data) is at most
 *     HGGUF_MAX_HEADER_BYTES.
 * All arithmetic on file-supplied numbers is overflow-checked; the parser
 * never reads past the file or image. Only the header is read (buffered
 * pread, never mmap and never the tensor data), so checking a 40 GB model
 * costs a few reads.
 *
 * The module is plain C + libc: hearthd does not link ggml. The ggml type
 * table inside gguf.c was checked against ggml_type_size()/ggml_blck_size()
 * of the ggml in deps/prefix.
 *
 * Thread safety: both entry points are reentrant (no global state).
 */
#ifndef HEARTH_GGUF_H
#define HEARTH_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HGGUF_MAX_TENSORS        65536u
#define HGGUF_MAX_KV             65536u
#define HGGUF_MAX_KEY_LEN        (1u << 20)      /* bytes in one KV key */
#define HGGUF_MAX_HEADER_BYTES   (64u << 20)     /* KVs + tensor infos */
#define HGGUF_MAX_ALIGNMENT      65536u
#define HGGUF_DEFAULT_ALIGNMENT  32u
#define HGGUF_MAX_DIMS           4u              /* GGML_MAX_DIMS */
#define HGGUF_MAX_NAME_LEN       63u             /* GGML_MAX_NAME (64) less the NUL */
#define HGGUF_MAX_ARRAY_DEPTH    1u              /* no arrays of arrays (ggml refuses them) */

/* What a successful check learned. Plain values: nothing to free. */
typedef struct gguf_info {
    uint32_t version;              /* 2 or 3 */
    uint64_t n_tensors, n_kv;
    uint64_t file_size;            /* bytes in the file (image length for buffers) */
    uint64_t data_offset;          /* start of tensor data: the header end rounded
                                      up to the alignment; with no tensors there is
                                      no data section and this is the header end */
    uint64_t tensor_bytes;         /* sum of all tensor data sizes */
    uint32_t alignment;            /* general.alignment or HGGUF_DEFAULT_ALIGNMENT */
    char arch[32];                 /* general.architecture, "" if absent or not a string */
    /* Hyper-parameters read from "<arch>.*" keys. 0 when absent, or when the
       value is not a scalar integer in [0, UINT32_MAX] (some architectures
       store per-layer arrays; callers must cope with 0). */
    uint32_t n_layer;              /* <arch>.block_count */
    uint32_t n_embd;               /* <arch>.embedding_length */
    uint32_t n_head, n_head_kv;    /* <arch>.attention.head_count(_kv); n_head_kv
                                      defaults to n_head when absent */
    uint32_t n_ctx_train;          /* <arch>.context_length */
    uint32_t n_ff;                 /* <arch>.feed_forward_length */
    uint32_t n_vocab;              /* element count of the tokenizer.ggml.tokens array */
    uint32_t key_length, value_length; /* <arch>.attention.key_length / value_length */
    uint64_t largest_tensor_bytes;
    uint64_t token_embd_bytes;     /* "token_embd.weight": a decode step reads one row
                                      of it, unless no "output.weight" ties the output
                                      layer to it */
    bool has_output;               /* an "output.weight" tensor exists */
    uint64_t matrix_elems;         /* elements of the matrices (2+ dimensions, 2+ rows),
                                      token_embd.weight and output.weight aside (a
                                      prompt reads one row of the first and meets the
                                      second with one row per sequence) */
    uint64_t float_matrix_elems;   /* of those, kept in F32, F16 or BF16: how much of
                                      a model's products are unquantized */
    uint64_t largest_float_matrix_bytes; /* the largest of those matrices */
    uint64_t output_bytes;         /* "output.weight", 0 if none */
} gguf_info;

/*
 * Validate the GGUF file at path without following it into tensor data.
 * The path is stat()ed first and anything but a regular file is refused
 * without being opened; the file is then opened O_RDONLY|O_NONBLOCK|O_CLOEXEC
 * and fstat()ed again, so a path swapped for a FIFO cannot block the caller.
 *
 * Returns 0 and fills *out on success. Returns -1 on any failure (I/O errors
 * included) and writes a one-line, NUL-terminated reason that does not
 * contain the path into err (truncated to errlen; err may be NULL when
 * errlen is 0); *out is then zeroed. out may be NULL to validate only.
 * Borrows path; opens and closes its own descriptor.
 */
int gguf_check_file(const char *path, gguf_info *out, char *err, size_t errlen);

/*
 * The same checks on an in-memory image of a whole file (the fuzzer and tests
 * use this); file_size is len. data may be NULL only when len is 0. Never
 * reads outside data[0, len). Same return, out and err contract as
 * gguf_check_file. Borrows data.
 */
/* True for architectures that are sentence-embedding encoders (BERT family):
 * hearth serves them on /v1/embeddings, not chat. */
bool gguf_arch_is_embedding(const char *arch);

/* True for a chat model whose layer matrices (token_embd.weight and
 * output.weight aside) are mostly F32, F16 or BF16 by element count (a
 * quantized file whose few odd-width matrices fell back to F16 is not): its prompts go
 * to the BLAS backend (worker/accel.h), and its memory estimate counts that. */
bool gguf_is_float_chat_model(const gguf_info *gi);

int gguf_check_buffer(const void *data, size_t len, gguf_info *out, char *err,
                      size_t errlen);

#endif
