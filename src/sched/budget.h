/*
 * budget.h: the memory arithmetic of the one budget: what a model will cost
 * before it is loaded, what a worker costs now, and what the box has.
 *
 * Estimate basis (llama.cpp, CPU backend, as configured by engine/llm.c):
 *   weights   the sum of the GGUF tensor sizes (read from the header). On CPU
 *             they end up resident either in the file mapping or repacked into
 *             anonymous buffers; repacking does not grow them.
 *   KV cache  n_layer x (n_head_kv x key_length + n_head_kv x value_length)
 *             x 2 bytes (F16) x ctx-size x parallel.
 *   compute   what one micro-batch of batch-size tokens touches: the widest
 *             activations (3 x n_ff + 8 x n_embd floats per token), the F16
 *             attention mask, and the logits of one row per slot.
 *   weights are read, not mapped (engine/llm.c), so they are resident once.
 *   runtime   the worker process with libllama/ggml loaded: a fixed
 *             overhead measured here (BUDGET_RUNTIME_BYTES): 21-24 MiB
 *             resident for a 0.2M-parameter model, whose tensors, cache
 *             and activations come to about 8 MiB; buffers in huge pages
 *             (worker/supervisor.c) round up to 2 MiB, so it varies.
 *   BLAS      a chat model kept in F16/BF16/F32 runs its prompts on the BLAS
 *             backend (gguf_is_float_chat_model, unless --blas off): OpenBLAS
 *             (BUDGET_BLAS_BYTES per thread) and ggml's F32 copy of the largest layer
 *             matrix (twice its F16 bytes); with 32+ slots, the output matrix
 *             in F32 too.
 * The tests compare estimate and measured RSS; keep the error under 10%.
 */
#ifndef HEARTH_BUDGET_H
#define HEARTH_BUDGET_H

#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/ggml_legacy.h"
#include "core/gguf.h"

#define BUDGET_RUNTIME_BYTES (14ull << 20)
/* what the BLAS backend adds to a float chat model's worker per OpenBLAS
 * thread (the library, each thread's buffers): the tiny test model's peak
 * grew ~3-4 MiB with each */
#define BUDGET_BLAS_BYTES (4ull << 20)

/* Estimated resident bytes of a worker serving this model with cfg's slots. */
uint64_t budget_estimate(const gguf_info *gi, const config *cfg);
/* A whisper worker: the weights whisper.cpp allocates for the file's shape,
 * the encoder's graph over one 30 s window (n_audio_ctx positions: the
 * attention scores of every head and a few state-wide activations), the
 * cross-attention cache, the decoded samples of the longest recording
 * accepted (1 h) and the runtime. */
uint64_t budget_estimate_whisper(const whisper_file_info *wi);
/* An OCR worker: Tesseract's LSTM models and a few 300-dpi page buffers. */
uint64_t budget_estimate_ocr(void);
/* The hard per-worker limit derived from an estimate (RLIMIT_DATA, which
 * counts private address space): headroom so a right estimate never trips
 * it, while a runaway worker still stops far short of the box's memory. */
uint64_t budget_hard_limit(uint64_t estimate);
/* Physical RAM in bytes (0 if unknown). */
uint64_t budget_physical_ram(void);
/* Resident set of a process in bytes, 0 if it is gone. */
uint64_t budget_rss(pid_t pid);
/* "1.2 GiB" style, into out. */
void     budget_human(uint64_t bytes, char *out, size_t n);

#endif
