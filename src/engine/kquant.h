/*
 * kquant.h: hearth's kernels for Q4_K, Q5_K and Q6_K weights, the types most
 * downloadable models (Q4_K_M: Q4_K, and Q6_K for the output matrix and
 * half the down and V projections; Q5_K_M: Q5_K and Q6_K) are made of, and
 * for Q3_K, IQ4_XS and Q2_K (Q3_K_M, IQ4_XS and Q2_K models, for little
 * memory): Q4_K and Q2_K against one activation row (decode) and against
 * groups of 4 (prompts), Q6_K, Q5_K, Q3_K and IQ4_XS rows (decode).
 *
 * ggml's CPU backend repacks Q4_K matrices into groups of 8 rows
 * (block_q4_Kx8) and multiplies one activation row (block_q8_K) with
 * ggml_gemv_q4_K_8x8_q8_K, which streams ~30 GB/s per core from cache on
 * this machine: slower than memory, so a decode step waits on arithmetic.
 * kquant_gemv_q4_K takes the same layout and arguments; it adds 8 rows'
 * products of a 64-byte load with two vpdpbusd, scales whole sub-blocks in
 * integers (vpmaddwd) and converts to float once per 256 elements.
 *
 * Layout (ggml's), per 8 rows and 256 elements: 8 fp16 scales d, 8 fp16
 * mins dmin, 96 bytes of 6-bit sub-block scales and mins (12 bytes per
 * sub-block s, the 8 rows' values packed as in a plain Q4_K block), then
 * 1024 bytes where byte k*64 + j*8 + i of row j holds, in its low nibble,
 * element (k/4)*64 + (k%4)*8 + i and, in its high nibble, the element 32
 * after it. Row j's value is sum over sub-blocks s of
 * d_j*sc_sj*(q . a_s) - dmin_j*m_sj*(sum of a_s), times the activation's
 * scale.
 *
 * The one-row kernels are used by engine/mulmat.c for single-row products,
 * the 4-row one by ggml's prompts through the worker's export of
 * ggml_gemm_q4_K_8x8_q8_K (this file defines it; it forwards to ggml's own
 * when hearth's is off), once kquant_init() has compared each with ggml's
 * code. The results are not bit-identical to ggml's (the float sums run in
 * another order); they agree within rounding and are closer to the exact
 * product (ggml sums the scale and min terms apart, each ~10^3 times the
 * result on a row with a mean; tests/unit/test_mulmat.c measures both
 * against the exact value). Needs AVX-512 VNNI (kernels_cpu_ok()).
 *
 * Ownership: nothing to free; the decisions hold for the process and are
 * made before any model is loaded.
 */
#ifndef HEARTH_KQUANT_H
#define HEARTH_KQUANT_H

#include <stdbool.h>
#include <stddef.h>

/* ggml's gemv signature: s[x*8 + j] for the nc/8 groups of vx against the
 * block_q8_K row vy (nr must be 1; bs is unused). */
void kquant_gemv_q4_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc);

/* ggml's 4-row signature (ggml_gemm_q4_K_8x8_q8_K): groups of 4 activation
 * rows interleaved as block_q8_Kx4 against the nc/8 groups of vx:
 * s[(4y + m)*bs + 8x + j]. Each 64-byte weight load meets 8 activation
 * rows (two groups) in 16 vpdpbusd, so unpacking and scales are paid once
 * per 8 rows; the scale lanes come from one vpermb each. Needs AVX-512 VBMI
 * too. 2.5x ggml's in cache. */
void kquant_gemm_q4_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc);

/* ggml's gemv signature for its 8-row repacked Q2_K (block_q2_Kx8: 8 fp16
 * d and dmin, 128 bytes of 4-bit scale|min pairs, 512 bytes of 2-bit
 * quants, 8 bytes of each row in turn) against one block_q8_K row: each
 * 64-byte load of quants yields four 2-bit planes, each meeting 8
 * activation bytes in one vpdpbusd; a lane's sum of 8 products is an int16,
 * so the sub-block's scale comes in by vpmaddwd from one masked vpermb;
 * the mins meet the activation's 16-element sums by vpmaddwd, and
 * d*S - dmin*M is taken per superblock in float. Needs AVX-512 VBMI. */
void kquant_gemv_q2_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc);
bool kquant_q2_K_active(void);
/* The same sums for groups of 4 activation rows (ggml's
 * ggml_gemm_q2_K_8x8_q8_K, which this file defines for the worker to
 * export, as for Q4_K): each plane meets 8 activation rows. */
void kquant_gemm_q2_K(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc);
bool kquant_gemm_q2_K_active(void);

/* Rows [0, rows) of a plain Q6_K matrix (n elements each, row_bytes apart
 * from vw) against one block_q8_K activation row: out[r]. The activation's
 * block sums are taken once per call; each 128 elements of a row cost two
 * 64-byte unpacks (4 low bits, 2 high bits), two vpdpbusd and the 16-element
 * scales in integers (vpmaddwd), with one float step per 256 elements.
 * Equal to ggml's dot product to rounding. Rows wider than 16384 elements
 * go to ggml's dot product. */
void kquant_q6_K_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                      const void *va);

/* The same for a plain Q5_K matrix (Q5_K_M models): each 128 elements of
 * a row cost one 64-byte load of low bits, the fifth bits from one
 * 32-byte load shifted into place, two vpdpbusd against the activation
 * reordered once per call, and the sub-block scales in integers; the
 * mins meet the activation's block sums once per 256 elements. Equal to
 * ggml's dot product to rounding. */
void kquant_q5_K_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                      const void *va);

/* Check hearth's Q4_K and Q2_K kernels against ggml's plain-C references
 * (ggml_gemv_/ggml_gemm_q4_K_8x8_q8_K_generic and the q2_K ones) and its
 * Q6_K, Q5_K, Q3_K and IQ4_XS kernels against ggml's dot products on random
 * blocks, each alone (one failing leaves the others); "off" skips all. Call
 * after kernels_init() and before any model is loaded. Returns true when
 * the one-row Q4_K kernel is in use. */
bool kquant_init(const char *mode);
bool kquant_active(void);
/* The Q6_K rows kernel, checked by kquant_init against ggml's exported
 * ggml_vec_dot_q6_K_q8_K: true when in use. */
bool kquant_q6_K_active(void);

/* The same for a plain Q3_K matrix (most of a Q3_K_M file): the quants
 * used as q+4 (two low bits, the third from hmask, moved into place with
 * per-half variable shifts), the 16 scales unpacked from 12 bytes in SIMD,
 * then as Q6_K's. */
void kquant_q3_K_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                      const void *va);
bool kquant_q3_K_active(void);

/* The same for a plain IQ4_XS matrix: each 4-bit index looked up (vpshufb)
 * in the IQ4_NL values plus 128, vpdpbusd against the activation with 128
 * times its sums taken off in advance, each 32-element sub-block's 6-bit
 * scale less 32 applied in int32 (vpmulld: a lane's sum exceeds int16). */
void kquant_iq4_xs_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                        const void *va);
bool kquant_iq4_xs_active(void);
/* The Q5_K rows kernel, checked against ggml_vec_dot_q5_K_q8_K. */
bool kquant_q5_K_active(void);
/* The 4-row Q4_K kernel, checked against ggml's plain-C reference: true
 * when the worker's ggml_gemm_q4_K_8x8_q8_K (which ggml's prompts reach by
 * name) runs it. */
bool kquant_gemm_active(void);

#endif
