/*
 * kfloat.h: hearth's decode kernel for F16 layer matrices (a chat model kept
 * unquantized): rows of a plain F16 matrix against one activation row.
 *
 * ggml multiplies such a matrix one row at a time with its F16 dot
 * product, a call per row, converting the weights and the activation
 * (rounded to F16 by ggml's conversion) to floats as it goes, and leaves
 * fetching to the hardware. Here one call takes a thread's share of rows,
 * converting as ggml does into four accumulators, and fetches the matrix
 * ahead as the other rows kernels do (engine/kernels.h: into L1, or L2
 * only where that measured faster). On one core of an AMD Zen 4: 35
 * against 28 GB/s from cache, 25-26.5 against 24 from memory (a plain read
 * 27-30); the 0.5B F16 decoded 4-10% faster side by side. Converting the
 * activation once per call instead (kept in L1 as floats) was twice as
 * fast from cache but streamed 21.5 GB/s from memory, and decoded 5%
 * slower than ggml: on that core, fewer operations per byte fetched less.
 * The sums are ggml's products in another order: equal to float rounding,
 * not to the bit.
 *
 * Used by engine/mulmat.c for single-row products, once kfloat_init() has
 * compared it with ggml's dot product at widths that end inside its steps
 * (and mulmat_init() with ggml's operator). Needs AVX-512F, F16C and FMA.
 *
 * Ownership: nothing to free; the decision holds for the process and is
 * made before any model is loaded.
 */
#ifndef HEARTH_KFLOAT_H
#define HEARTH_KFLOAT_H

#include <stdbool.h>
#include <stddef.h>

/* Rows [0, rows) of a plain F16 matrix (n elements each, row_bytes apart
 * from vw) against the activation row va (n F16 values, as ggml converts
 * it for this type): out[r]. */
void kfloat_f16_rows(int n, float *out, const void *vw, size_t row_bytes, int rows,
                     const void *va);

/* True when this CPU can run it. */
bool kfloat_cpu_ok(void);

/* Decide: "off" keeps ggml's; NULL, "" or "auto" uses hearth's when the
 * CPU can and it agrees with ggml's exported ggml_vec_dot_f16 (from the
 * loaded CPU backend) to float rounding. Returns kfloat_active(). */
bool kfloat_init(const char *mode);
bool kfloat_active(void);

#endif
