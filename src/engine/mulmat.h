/*
 * mulmat.h: one activation row against a layer matrix, scheduled by hearth
 * instead of ggml.
 *
 * While a model generates one token, every layer matrix is multiplied by a
 * single activation row. ggml's operator does that in two phases: one
 * thread converts the row to the type the weights' kernel takes (Q8_0,
 * Q8_K, F16) while the others wait at a barrier, then the threads take
 * chunks of the matrix from a shared counter and the last chunk leaves the
 * others waiting again. On the 0.5B model a
 * step has 168 such operators, and the waits were about a seventh of the
 * threads' time. hearth's version lets every thread convert the row itself
 * (a few thousand floats, into its own stack) and take a fixed share of
 * the matrix (8-row groups of a matrix ggml repacked, else rows; equal, or
 * in proportion to each thread's measured rate, engine/pace.h), so the
 * operator has no barrier inside and no shared counter. The conversion and
 * the multiplication are the functions ggml's operator would call (ggml's
 * own, or hearth's kernels where they replace them, engine/kernels.h), so
 * the result is the same to the bit, or to float rounding where hearth's
 * kernel sums in another order (Q5_0 by quads, the K-quants, IQ4_XS, F16). Types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
 * Q2_K-Q6_K, IQ4_NL, IQ4_XS, F16 and BF16 matrices, and the repacked Q4_0, IQ4_NL,
 * Q4_K and Q2_K ones.
 *
 * How it gets there: before running any operator, ggml's CPU backend asks
 * ggml_cpu_extra_compute_forward() whether an extra buffer type (the
 * repacked one) computes it, through its PLT; the worker defines and
 * exports that function, takes these single-row cases and hands every
 * other operator to ggml's.
 *
 * mulmat_init() decides after the CPU backend is loaded (and after
 * kernels_init): for each type and buffer it multiplies a real matrix,
 * quantized by ggml, through ggml's executor with ggml's operator and with
 * hearth's, and keeps hearth's for that type only if the results are
 * identical (within float rounding for the kernels that sum in another
 * order).
 *
 * Ownership: nothing to free; the decision holds for the process.
 */
#ifndef HEARTH_MULMAT_H
#define HEARTH_MULMAT_H

#include <stdbool.h>

struct ggml_tensor;
struct ggml_compute_params;

/* `mode` "off" keeps ggml's. Returns true when hearth's is in use. */
bool mulmat_init(const char *mode);

/* True when hearth's is in use (after mulmat_init); and for one ggml type
 * (enum ggml_type), in ggml's repacked buffer or a plain one. */
bool mulmat_active(void);
bool mulmat_active_for(int type, bool packed);

/* Under ggml's name and signature (ggml-cpu's traits.h): true when the
 * operator was computed here. */
bool ggml_cpu_extra_compute_forward(struct ggml_compute_params *params, struct ggml_tensor *op);

/* For tests: operators computed here since the process started; and a
 * switch like attn_set(). */
long mulmat_calls(void);
bool mulmat_set(bool on);

#endif
