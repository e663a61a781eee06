/*
 * q8k.h: hearth's conversion of float activation rows to ggml's Q8_K
 * blocks, in place of ggml's.
 *
 * Every product with a K-quant matrix (Q2_K to Q6_K: most downloadable
 * models) first turns the activation row into block_q8_K: per 256 floats,
 * int8 quants scaled by the value of largest magnitude, their sums of 16
 * and the scale. On x86 ggml does that with its plain-C reference,
 * quantize_row_q8_K_ref (libggml-base; the CPU backend's
 * quantize_row_q8_K jumps there through its PLT): 3.3% of a Q5_K_M decode
 * step and 3.4% of its prompts here, where each of the two threads converts
 * every row. hearth's version does the same arithmetic 16 lanes at a time
 * with AVX-512, to the bit: the same scale (the first element of largest
 * magnitude, -127 divided by it), the same products rounded to nearest
 * even, the same clamp at 127 and the same sums (and an all-zero block's
 * sums left as they were, as ggml leaves them). A block holding an
 * infinity or a NaN, or only values so small that -127 over the largest
 * overflows, goes one element at a time through the format's definition
 * as ggml computes it, whose rounding through the float adder gives those
 * lanes bytes a vector conversion does not.
 *
 * The worker exports quantize_row_q8_K_ref under ggml's name and
 * signature, so the backend's call binds here; every call reads the
 * decision q8k_init() made and forwards to ggml's own when hearth's is off.
 *
 * Ownership: nothing to free; the decision holds for the process and is
 * made before any model is loaded.
 */
#ifndef HEARTH_Q8K_H
#define HEARTH_Q8K_H

#include <stdbool.h>
#include <stdint.h>

/* Under ggml's name and signature (ggml-quants.h): k floats (a multiple of
 * 256) from x into k/256 block_q8_K at y. */
void quantize_row_q8_K_ref(const float *restrict x, void *restrict y, int64_t k);

/* hearth's conversion called directly (tests, benchmarks), whatever the
 * decision; it needs AVX-512 (kernels_cpu_ok()). */
void q8k_quantize(const float *restrict x, void *restrict y, int64_t k);
/* Rows converted by hearth's code on the calling thread (tests). */
long q8k_calls(void);

/* ggml's own, from libggml-base (NULL when not found: then "off" runs the
 * one-element-at-a-time definition). */
typedef void (*q8k_fn)(const float *restrict, void *restrict, int64_t);
q8k_fn q8k_ggml(void);

/* Decide: `mode` "off" keeps ggml's; otherwise hearth's when the CPU can run
 * it and it gives ggml's bytes on a set of rows with ties, zeros, tiny and
 * huge values. Returns true when hearth's is in use. */
bool q8k_init(const char *mode);
bool q8k_active(void);

#endif
