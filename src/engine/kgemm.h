/*
 * kgemm.h: prompts against plain Q5_K and Q6_K matrices (Q5_K_M models;
 * the Q6_K half of the down and V projections in Q4_K_M ones), Q3_K ones
 * (Q3_K_M models), and Q8_0 and Q5_0 ones, in tiles of 32 weight rows by 6
 * activation rows held in registers.
 *
 * ggml has no repacked layout for Q5_K, Q6_K or Q3_K on x86; its operator
 * multiplies a prompt through a generic tiled path whose inner loop loads
 * and stores an accumulator around every vpdpbusd. hearth's kernel unpacks 32 rows of one
 * superblock (256 elements) once into bytes laid out so that one 64-byte
 * load holds 4 consecutive quants of 16 rows, and then runs every
 * activation row past them: per 4 elements, two weight loads, one
 * broadcast per activation row and two vpdpbusd per activation row, all 24
 * accumulators in registers. Each sub-block's integer sums are scaled in
 * integers (vpmulld) and the mins (Q5_K) or the +32 offset (Q6_K) meet the
 * activation's sums of 16 with vpdpwssd, so a superblock costs one step.
 * Q5_K's:
 * da * (d * S - dmin * M), the difference rounded once near its own size
 * (the min term's rounding error kept with one fma): on an activation
 * with a mean both terms run to ~10^3 times the difference, where ggml's
 * float sums lose ~1e-4 of the result (measured on 2048-8192 wide rows:
 * 5-10x closer to the exact product than ggml's). Q6_K's difference is
 * exact in integers, its result the same as ggml's; so is Q3_K's (its
 * quants stored +4 and its scales less 32, the Q6_K path with 4 for 32).
 *
 * The activation is laid out for this kernel (kgemm_act_*): the Q8_K quants
 * of each superblock for all activation rows together, then their scales
 * and sub-block sums. The quants are ggml's Q8_K (the caller's conversion).
 *
 * Needs AVX-512 VNNI (kernels_cpu_ok()). Results equal ggml's dot product
 * to float rounding (checked by engine/mulmat.c before use;
 * tests/unit/test_mulmat.c holds the K-quants' against the exact product
 * and Q8_0's against ggml's).
 *
 * Ownership: the caller owns every buffer; nothing here allocates.
 */
#ifndef HEARTH_KGEMM_H
#define HEARTH_KGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Activation rows are taken this many at a time (the accumulators of a
 * tile for them are the kernel's scratch), and the scratch it needs. */
#define KGEMM_BLOCK_ROWS 512
/* (the larger of Q8_0's 128 tiles of 1280 bytes and the K-quants' 12 KiB
 * tile, then 32 accumulators per activation row) */
#define KGEMM_SCRATCH_BYTES (163840 + KGEMM_BLOCK_ROWS * 32 * 4)

/* Bytes of the prepared activation for m rows of k elements (k a
 * multiple of 256): 292 per row and superblock, as many as ggml's Q8_K
 * rows take. No alignment needed. */
size_t kgemm_act_bytes(int k, int m);

/* Row j (0 <= j < m) of the prepared activation at `act`
 * (kgemm_act_bytes(k, m) bytes) from one Q8_K row (k/256 block_q8_K). */
void kgemm_act_put(void *act, int k, int m, int j, const void *q8k_row);

/* The plain matrix types the kernel takes:
 *  - Q5_K;
 *  - Q6_K (Q4_K_M and Q5_K_M files hold their output matrix, half the down
 *    projections and V projections in it);
 *  - Q3_K (most of a "Q3_K_M" file): its quants stored +4, its scales less
 *    32, as Q6_K's;
 *  - IQ4_XS: each index's IQ4_NL value stored +128, 32-element sub-blocks
 *    with 6-bit scales less 32;
 *  - Q8_0, in tiles of 32 rows by 32 elements (a block, one scale): the
 *    weights gathered a dword of each row at a time, the activation's
 *    quants 128 higher (the unsigned side of vpdpbusd) and each row's sum
 *    of quants times 128 taken back in integers, so each block's sum is
 *    exact before its two scales. The weight rows are gathered with 32-bit
 *    offsets: row_bytes at most INT32_MAX / 16 (engine/mulmat.c requires
 *    plain rows of at most 32 KiB);
 *  - Q5_0 (what llama-quantize makes of rows not a multiple of 256 wide in
 *    "Q4_K_M" and "Q5_K_M" files): each quant unpacked to its signed value
 *    q - 16, then as Q8_0. */
enum kgemm_type { KGEMM_Q5_K, KGEMM_Q6_K, KGEMM_Q3_K, KGEMM_IQ4_XS, KGEMM_Q8_0, KGEMM_Q5_0 };

/* True for the types that take Q8_0 activation rows, laid out by
 * kgemm_q8_0_act_* (34 bytes per row and block, a block_q8_0's; k a
 * multiple of 32); the others take Q8_K rows laid out by kgemm_act_*. */
static inline bool kgemm_q8_0_rows(enum kgemm_type type)
{
    return type == KGEMM_Q8_0 || type == KGEMM_Q5_0;
}

size_t kgemm_q8_0_act_bytes(int k, int m);
void kgemm_q8_0_act_put(void *act, int k, int m, int j, const void *q8_0_row);

/* Weight rows [r0, r1) of a plain matrix of `type` (k elements each,
 * row_bytes apart from w) against all m prepared activation rows:
 * out[j * ostride + r] for each row r and activation row j. `scratch`:
 * KGEMM_SCRATCH_BYTES, 64-byte aligned. */
void kgemm(enum kgemm_type type, int k, const void *w, size_t row_bytes, int64_t r0, int64_t r1,
           const void *act, int m, float *out, size_t ostride, void *scratch);

#endif
