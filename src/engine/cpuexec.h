/*
 * cpuexec.h: run a small ggml graph on the loaded CPU backend's own
 * executor, for the start-up checks of hearth's replacements (engine/attn.h,
 * engine/mulmat.h): each runs a graph with ggml's operator and with hearth's
 * and compares; and tell those operators which thread runs them.
 *
 * Memory comes from anonymous mappings in 4 KiB pages, unmapped after use,
 * so a check leaves nothing in a worker's resident set (malloc would put
 * buffers this size in huge pages, see worker/supervisor.c).
 *
 * Ownership: a cpuexec_context() is the caller's until
 * cpuexec_context_free().
 */
#ifndef HEARTH_CPUEXEC_H
#define HEARTH_CPUEXEC_H

#include <stdbool.h>
#include <stddef.h>

struct ggml_cgraph;
struct ggml_compute_params;

/* Inside an operator hearth computes in ggml's place: this thread's index
 * and the number of threads, the leading fields of ggml's (internal)
 * struct ggml_compute_params (its ggml-cpu-impl.h). The start-up checks
 * that run hearth's operators through ggml's executor fail if a ggml moved
 * them. */
struct cpuexec_thread {
    int ith, nth;
};

static inline struct cpuexec_thread cpuexec_thread_of(const struct ggml_compute_params *params)
{
    return *(const struct cpuexec_thread *)(const void *)params;
}

/* All of ggml's leading fields: also the work buffer the graph's plan
 * sized (for a matrix product, at least its activation converted to the
 * weights' row type) and the thread pool for ggml_barrier(). */
struct cpuexec_params {
    int ith, nth;
    size_t wsize;
    void *wdata;
    struct ggml_threadpool *threadpool;
};

static inline struct cpuexec_params cpuexec_params_of(const struct ggml_compute_params *params)
{
    return *(const struct cpuexec_params *)(const void *)params;
}

/* A ggml context that allocates its tensors in `size` bytes of scratch
 * memory, or NULL; cpuexec_context_free() frees both (NULL is fine). */
struct ggml_context *cpuexec_context(size_t size);
void cpuexec_context_free(struct ggml_context *ctx);

/* The graph through ggml_graph_plan/ggml_graph_compute of the loaded CPU
 * backend on `threads` threads (its work buffer in scratch memory).
 * False when the backend is missing or the computation failed. */
bool cpuexec_run(struct ggml_cgraph *gf, int threads);

#endif
