/*
 * kernels.h: hearth's own matrix kernels for Q4_0 and Q8_0 weights, put in
 * place of ggml's inside its CPU backend.
 *
 * ggml repacks Q4_0 layer matrices at load ("q4_0_8x8": eight rows
 * interleaved) and multiplies them with two exported functions, one for a
 * single activation row (gemv) and one for groups of four (gemm). Debian's
 * ggml build runs them with AVX2-style byte multiplies (vpmaddubsw +
 * vpmaddwd); on CPUs with AVX-512 VNNI one vpdpbusd does the work of that
 * pair and its shuffles. The worker executable defines functions of the same
 * names, and because the backend calls them through its PLT, the dynamic
 * linker binds the backend's calls to these. Every call reads the decision
 * kernels_init() made; when hearth's kernels are off (or the CPU lacks
 * AVX-512 VNNI, or the self-check failed) it forwards to the backend's own
 * function.
 *
 * kernels_init() must run before a model is loaded: it decides, and it
 * checks hearth's kernels against ggml's reference code on random data of
 * the repacked layout, so a ggml whose layout changed is caught and left to
 * its own kernels rather than computed wrong.
 *
 * Ownership: nothing to free; the decision holds for the process.
 */
#ifndef HEARTH_KERNELS_H
#define HEARTH_KERNELS_H

#include <immintrin.h>       /* KERNELS_ROWS_FETCH */
#include <stdbool.h>
#include <stddef.h>

/* Decide whether hearth's kernels replace ggml's: `mode` "off" keeps
 * ggml's; NULL, "" or "auto" uses hearth's when the CPU has AVX-512 VNNI and
 * the self-check passes. Call after ggml's CPU backend is loaded and before
 * any model is. Returns true when hearth's kernels are in use. */
bool kernels_init(const char *mode);

/* True when any of hearth's kernels is in use (after kernels_init). */
bool kernels_active(void);

/* True when hearth's kernels multiply the layer matrices of a model whose
 * description names its type (llama_model_desc, e.g. "llama 0.5B Q4_0",
 * or just "Q8_0" or "Q5_0"). */
bool kernels_active_for(const char *desc);

/* The kernels themselves, under ggml's names and signatures (ggml's
 * repack.h): n = inner dimension (multiple of 32), s = output with row
 * stride bs floats, vx = nc/8 groups of repacked weights, vy = quantized
 * activations (nr rows: 1 for gemv, a multiple of 4 for gemm). */
void ggml_gemv_q4_0_8x8_q8_0(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                             int nc);
void ggml_gemm_q4_0_8x8_q8_0(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                             int nc);

/* Q8_0 weights are not repacked: ggml multiplies them one row at a time
 * with this dot product of n elements (ggml's quants.h), nrc = 1 on x86. */
void ggml_vec_dot_q8_0_q8_0(int n, float *s, size_t bs, const void *vx, size_t bx,
                            const void *vy, size_t by, int nrc);
/* Q5_0 matrices (which llama-quantize uses in "Q4_K_M" files for rows that
 * are not a multiple of 256 wide) the same way, against Q8_0 rows. */
void ggml_vec_dot_q5_0_q8_0(int n, float *s, size_t bs, const void *vx, size_t bx,
                            const void *vy, size_t by, int nrc);

/* hearth's kernels called directly (tests, benchmarks), whatever the
 * decision; they need AVX-512 VNNI. */
void kernels_gemv_q4_0(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc);
void kernels_gemm_q4_0(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc);
void kernels_vec_dot_q8_0(int n, float *s, const void *vx, const void *vy);
void kernels_vec_dot_q5_0(int n, float *s, const void *vx, const void *vy);
/* One Q5_0 weight row (n elements) against m Q8_0 activation rows of n/32
 * blocks each, da their scales as floats: out[j * stride] for row j. Each
 * weight block is unpacked once per 8 rows (prompts; engine/mulmat.h). */
void kernels_q5_0_rows(int n, const void *vw, const void *va, const float *da, int m,
                       float *out, size_t stride);
/* Rows [0, rows) of a plain Q5_0 (Q8_0) matrix (n elements each, row_bytes
 * apart from vw) against one Q8_0 activation row: out[r], the same bits as
 * kernels_vec_dot_q5_0 (_q8_0) row by row, with the activation prepared
 * once (single-row products, engine/mulmat.h). Rows wider than
 * KERNELS_GEMV_MAX_N elements go row by row. Q5_0 rows go by quads of
 * blocks where the CPU allows (kernels_q5_0_quads), equal to the dot
 * product to rounding then (up to 8288 elements). */
#define KERNELS_GEMV_MAX_N 8192
void kernels_q5_0_gemv(int n, float *out, const void *vw, size_t row_bytes, int rows,
                       const void *va);
void kernels_q8_0_gemv(int n, float *out, const void *vw, size_t row_bytes, int rows,
                       const void *va);
/* True when kernels_q8_0_gemv is checked and in use (with the dot product). */
bool kernels_q8_0_gemv_active(void);
/* True when kernels_q5_0_gemv is checked and in use (with the dot product). */
bool kernels_q5_0_gemv_active(void);
/* Q5_0 rows (kernels_q5_0_gemv) go by quads of blocks on CPUs with AVX-512
 * VBMI and BITALG (50-55 against 35-39 GB/s in cache), equal to the dot
 * product to rounding; else by pairs, the dot product's bits. false forces
 * pairs (tests, and kernels_init when the quads fail its check); returns
 * whether quads are in use. */
bool kernels_q5_0_quads(bool on);
/* True when Q5_0 rows give the dot product's bits (they go by pairs). */
bool kernels_q5_0_gemv_exact(void);
/* True when hearth's Q5_0 dot product is in use. */
bool kernels_q5_0_active(void);

/* ggml's own kernels and its plain-C references, from the loaded CPU
 * backend, in the order gemv, gemm, reference gemv, reference gemm (NULL
 * where absent): for tests and benchmarks. */
typedef void (*kernels_fn)(int n, float *s, size_t bs, const void *vx, const void *vy, int nr,
                           int nc);
void kernels_ggml(kernels_fn out[4]);
/* ggml's Q8_0 dot product and its reference, as above. */
typedef void (*kernels_dot_fn)(int n, float *s, size_t bs, const void *vx, size_t bx,
                               const void *vy, size_t by, int nrc);
void kernels_ggml_dot8(kernels_dot_fn out[2]);
/* ggml's Q5_0 dot product and its reference, as above. */
void kernels_ggml_dot5(kernels_dot_fn out[2]);

/* A symbol of the loaded ggml CPU backend (its own definition, not the
 * worker's replacement), or NULL when no backend or no such symbol. */
void *kernels_backend_symbol(const char *name);
/* The same in the loaded library whose path holds `lib` (e.g. "libggml-base"). */
void *kernels_library_symbol(const char *lib, const char *name);

/* True when this CPU can run hearth's kernels. */
bool kernels_cpu_ok(void);

/* Where the rows kernels (plain Q8_0 and Q5_0 here, Q6_K, Q5_K, Q3_K and
 * IQ4_XS in engine/kquant.c) fetch the matrix ahead of them: into L1
 * (prefetcht0) or L2 only (prefetcht1). Measured on one core from memory:
 * on AMD Zen 4 L2 only streamed Q8_0 and Q6_K rows ~15% faster (L1 lost to
 * ggml's kernels, which fetch nothing: 21 and 19 against 24 GB/s) and
 * decoded a 0.5B Q8_0 6-10% faster side by side; on Zen 5 the L1 distance
 * was tuned. kernels_init() decides: L2 on AMD family 19h, else L1; the
 * environment's HEARTH_ROWS_FETCH=l1 or l2 overrides (for measuring).
 * Until kernels_init() runs (a process that calls only kquant_init()), L1. */
bool kernels_rows_fetch_l2(void);

/* How far ahead of its position a rows kernel fetches the matrix: 32
 * blocks (~1 KiB) had left Q8_0 rows at ~80% of a plain read when a Zen 5
 * VM read ~75 GB/s, 4.5 KiB at 89-94%; 9 KiB more still on one core from
 * memory (Q8_0 41 against 39 GB/s, Q5_0 quads 40 against 37, Q5_K 40
 * against 35, Q6_K 42.5 against 39), and side by side the same at ~50 GB/s
 * and faster at ~80. On one Zen 4 core 2-18 KiB measured the same. */
#define KERNELS_ROWS_AHEAD 9216

/* Fetch the line at p for a rows kernel, l2 being kernels_rows_fetch_l2()
 * read once per call. */
#define KERNELS_ROWS_FETCH(p, l2) \
    ((l2) ? _mm_prefetch((const char *)(p), _MM_HINT_T1) : _mm_prefetch((const char *)(p), _MM_HINT_T0))

#endif
