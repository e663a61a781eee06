/*
 * mulmat.h: one activation row against a Q4_0 or Q8_0 layer matrix,
 * scheduled by hearth instead of ggml.
 *
 * While a model generates one token, every layer matrix is multiplied by a
 * single activation row. ggml's operator (for matrices it repacked, Q4_0,
 * and for those it did not, Q8_0) does that in two phases: one thread
 * converts the row to Q8_0 while the others wait at a barrier, then the
 * threads take chunks of the matrix from a shared counter and the last
 * chunk leaves the others waiting again. On the 0.5B model a
 * step has 168 such operators, and the waits were about a seventh of the
 * threads' time. hearth's version lets every thread convert the row itself
 * (a few thousand floats, into its own stack) and take a fixed, equal share
 * of the matrix (8-row groups of a repacked Q4_0 matrix, rows of a Q8_0
 * one), so the operator has no barrier inside and
 * no shared counter; the multiplication is hearth's kernel, as before
 * (engine/kernels.h), and the conversion ggml's own function, so the result
 * is the same to the bit.
 *
 * How it gets there: before running any operator, ggml's CPU backend asks
 * ggml_cpu_extra_compute_forward() whether an extra buffer type (the
 * repacked one) computes it, through its PLT; the worker defines and
 * exports that function, takes these single-row cases and hands every
 * other operator to ggml's.
 *
 * mulmat_init() decides after the CPU backend is loaded: for each type it
 * multiplies a real matrix (Q4_0 in ggml's repacked buffer, Q8_0 in its
 * plain one) through ggml's executor with ggml's operator and with hearth's,
 * and keeps hearth's only if the results are identical. A type needs
 * hearth's kernel for it in use (kernels_init first).
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

/* True when hearth's is in use (after mulmat_init). */
bool mulmat_active(void);

/* Under ggml's name and signature (ggml-cpu's traits.h): true when the
 * operator was computed here. */
bool ggml_cpu_extra_compute_forward(struct ggml_compute_params *params, struct ggml_tensor *op);

/* For tests: operators computed here since the process started; and a
 * switch like attn_set(). */
long mulmat_calls(void);
bool mulmat_set(bool on);

#endif
