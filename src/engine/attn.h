/*
 * attn.h: hearth's attention for token generation, in place of ggml's flash
 * attention inside its CPU backend.
 *
 * While a model generates, each sequence brings one new query row per layer,
 * and ggml's CPU flash attention then walks the KV cache one position at a
 * time per query head: a 64-element fp16 dot product, a scalar expf, and an
 * fp16 multiply-add into the output, for each of the heads that share one
 * KV head. On a 0.5B model that was a tenth of a single stream's step and a
 * sixth of four streams'. hearth's version takes a KV head's group of query
 * heads together: each key and value row is converted to fp32 once and used
 * by every head of the group, the softmax runs sixteen positions to a vector
 * in fp32, and each thread takes whole (sequence, KV head) pairs, so no
 * thread waits for another inside the operator.
 *
 * How it gets there: the backend calls ggml_compute_forward_flash_attn_ext
 * through its PLT; the worker defines and exports a function of that name
 * (as with the matrix kernels, engine/kernels.h). It handles the decode case
 * it was written for -- one query row per sequence, fp32 queries, fp16 keys
 * and values of the same width (a multiple of 16, at most 256), at most 16
 * query heads per KV head, no ALiBi, soft-capping or sinks, a mask shared
 * by the heads -- passes prompts (several query rows) to engine/attnp.h
 * when that takes them, and hands every other case to ggml's own function.
 *
 * attn_init() decides, after the CPU backend is loaded and before a model
 * is: it runs a small attention graph through ggml's real graph executor
 * with two threads, once with ggml's function and once with hearth's, and
 * keeps hearth's only if the two agree; then the same for a prompt. A ggml whose operator or thread
 * parameters changed is caught there and keeps its own.
 *
 * Ownership: nothing to free; the decision holds for the process.
 */
#ifndef HEARTH_ATTN_H
#define HEARTH_ATTN_H

#include <stdbool.h>

struct ggml_tensor;
struct ggml_compute_params;

/* `mode` "off" keeps ggml's; NULL, "" or "auto" uses hearth's when the CPU
 * has AVX-512 and the check passes. Returns true when hearth's is in use. */
bool attn_init(const char *mode);

/* True when hearth's attention is in use (after attn_init). */
bool attn_active(void);

/* Under ggml's name and signature (ggml-cpu's ops.h). */
void ggml_compute_forward_flash_attn_ext(const struct ggml_compute_params *params,
                                         struct ggml_tensor *dst);

/* For tests: how many operator calls hearth's code has computed (not handed
 * on to ggml's) since the process started. */
long attn_calls(void);

/* For tests: turn hearth's attention on or off after attn_init decided it
 * may run (on is refused when the check failed). */
bool attn_set(bool on);

#endif
