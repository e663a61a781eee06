/*
 * accel.h: ggml's BLAS backend (OpenBLAS) for the workers whose products
 * are unquantized.
 *
 * Embedding (BERT-family) and speech (whisper) models keep their weights in
 * F16, and this ggml CPU build multiplies F16 matrices one dot product at a
 * time (no llamafile GEMM). ggml's BLAS backend hands every large
 * multiplication (32+ rows each way) to OpenBLAS's tiled GEMM instead:
 * measured here, twice the embeddings per second and 1.4x faster
 * transcription; the same for the prompts of a chat model kept in F16, BF16
 * or F32 (gguf_is_float_chat_model). Other chat models keep the CPU backend
 * alone: their quantized, repacked weights are faster there.
 *
 * Ownership: nothing to free; the backend stays registered for the process.
 */
#ifndef HEARTH_ACCEL_H
#define HEARTH_ACCEL_H

#include <stdbool.h>

/* Smallest multiplication (rows each way) the BLAS backend takes; smaller
 * ones stay on the CPU backend, whose rounding differs. */
#define ACCEL_MIN_BATCH 32

/* Load the BLAS backend from `where`: "off" loads nothing, NULL/""/"auto"
 * means the build's default path. Call before any model is loaded: it sets
 * OpenBLAS's threading and, on AMD CPUs with AVX-512 that OpenBLAS does not
 * recognise, its AVX-512 kernels (HEARTH_OPENBLAS_CORETYPE picks others).
 * OpenBLAS runs `threads` threads (the worker's; 1 when below 1) that sleep
 * as soon as a call ends (OPENBLAS_THREAD_TIMEOUT=4, unless the user set
 * one): by default they spin ~0.1 s after each call, and on two cores that
 * took a core from ggml's threads, so a second BLAS thread had lost 30%;
 * asleep at once, two threads give 1.4x the embeddings per second, 1.6x an
 * F16 chat model's prompt rate and ~5% faster transcription (measured side
 * by side against one thread). Returns true when the backend is in use. */
bool accel_load(const char *where, int threads);

/* Whether accel_load(where) would find a backend to load (the path exists
 * and is readable; "off" never): decided before the worker commits to the
 * BLAS backend's thread settings. */
bool accel_available(const char *where);

#endif
