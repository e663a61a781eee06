/*
 * attnp.h: attention for a prompt -- many query rows per sequence -- with
 * AVX-512, for engine/attn.c's operator (which takes one query row per
 * sequence itself and hands prompts here).
 *
 * ggml's CPU flash attention multiplies a prompt's probabilities by the
 * value rows with a loop that loads and stores its accumulators around
 * every multiply-add (a fifth of a 0.5B model's 512-token prompt). Here a
 * unit of work is a sequence, a KV head and a block of query positions:
 * the block's rows (each query position times each head of the group, at
 * most 64) lie across vector lanes. Their queries are transposed once per
 * unit; then, per tile of 64 positions, the key and value rows are
 * converted to fp32 once, the scores of four positions for all rows are
 * multiply-adds of a broadcast key element into 16 accumulators, the
 * running softmax works lane by lane (a row per lane, no horizontal
 * reductions), and the probabilities meet the value rows the same way.
 * Tiles no row of the block may see (a causal mask's upper right) are
 * skipped, and the mask is applied element by element only on tiles where
 * it is not all 0 for the block.
 *
 * Ownership: each thread's scratch (~290 KiB) is static thread-local
 * storage, so no thread can lack it (its pages are committed only when a
 * thread uses them); nothing to free. Static TLS of this size is fine in
 * an executable; moved into a dlopen'd library it could fail to load.
 */
#ifndef HEARTH_ATTNP_H
#define HEARTH_ATTNP_H

#include <stdbool.h>

struct ggml_tensor;

/* The prompt case handled: fp32 queries with more than one row, fp16 keys
 * and values of one width (a multiple of 16, at most 256: 64 and 128 for
 * most models, 80 or 96 for Phi's), at most 16
 * query heads per KV head, a mask with a row per query, no ALiBi,
 * soft-capping or sinks (the caller checked the operator's parameters). */
bool attnp_supported(const struct ggml_tensor *dst);

/* Thread ith of nth computes its units of the operator (every thread must
 * call it: units are dealt out by thread number). */
void attnp_compute(int ith, int nth, struct ggml_tensor *dst);

#endif
