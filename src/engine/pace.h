/*
 * pace.h: keeping a decode step's threads and the memory bus busy together.
 *
 * A decode step of one sequence reads every layer matrix once, and its pace
 * is set by the thread that finishes its share of each product last. Two
 * things cost time here that no kernel can win back:
 *
 *  - Threads do not stream at the same rate (in this VM one core is often
 *    10-15% slower than the other, and which one changes from run to run),
 *    so with equal shares the faster thread waits at every barrier after a
 *    product.
 *  - Between the products come small operators (norms, rope, attention,
 *    additions; many run on thread 0 alone) and ~400 barriers per token,
 *    during which the memory bus sits idle.
 *
 * So hearth does three things, all in the worker:
 *
 *  1. Shares. engine/mulmat.c asks pace_share() how to split a single-row
 *     product. Each thread reports the time it spent streaming its share
 *     (pace_product_done()); before each graph, the shares move towards
 *     each thread's measured rate (a running average), so threads finish
 *     together. Shares change only between graphs; every thread of a graph
 *     sees the same split.
 *  2. A barrier of hearth's own. The worker defines ggml_barrier, which
 *     ggml's CPU backend calls through its PLT (as with engine/kernels.h).
 *  3. Fetching while waiting. A thread that arrives at a barrier before the
 *     others issues prefetches into its L2 cache for its share of the next
 *     single-row products, until the last thread arrives or it is a set
 *     number of bytes ahead. What comes next is learned: thread 0's
 *     sequence of products (pace_product_start()) in one graph becomes the
 *     schedule once the next graph repeats it (decode steps run the same
 *     graph), and a graph that differs drops it. The worker also defines
 *     ggml_graph_compute, which marks where a graph starts. A prefetch of a
 *     stale address costs bandwidth, never correctness: prefetches do not
 *     fault.
 *
 * The barrier counts the threads of the current OpenMP team, so it needs
 * ggml built with OpenMP (Debian's is). Without it, with mode "off", or if
 * the start-up check fails, ggml's own barrier stays and shares are equal.
 *
 * Ownership: nothing to free; the decision holds for the process and is
 * made before any model is loaded.
 */
#ifndef HEARTH_PACE_H
#define HEARTH_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ggml_threadpool;

/* Under ggml's name (its ggml-cpu-impl.h): wait until every thread of the
 * current team arrives. hearth's when pace is active, else ggml's own. */
void ggml_barrier(struct ggml_threadpool *tp);

/* Decide: "off" keeps ggml's barrier and equal shares; NULL, "" or "auto"
 * uses hearth's when the backend is ggml's OpenMP build and graphs computed
 * with hearth's barrier match ggml's bit for bit. Call after kernels_init()
 * and mulmat_init() and before any model is loaded. Returns true when
 * hearth's barrier is in use. HEARTH_PREFETCH_KB in the environment sets
 * how far ahead a waiting thread fetches (default 768 KiB, at most 16384;
 * 0 fetches nothing). */
bool pace_init(const char *mode);

/* True when hearth's barrier is in use. */
bool pace_active(void);

/* The units [*u0, *u1) of a product of `units` units that thread ith of
 * nth takes. The shares of threads 0..nth-1 partition [0, units) in order. */
void pace_share(int64_t units, int ith, int nth, int64_t *u0, int64_t *u1);

/* Thread ith of nth starts a single-row product whose matrix is `units`
 * units of `unit_bytes` bytes each from `base` (its share from
 * pace_share()). */
void pace_product_start(const void *base, size_t unit_bytes, int64_t units, int ith, int nth);

/* Thread ith streamed `bytes` of its share in `ticks` (pace_ticks()). */
void pace_product_done(int ith, size_t bytes, uint64_t ticks);

/* A cheap clock for pace_product_done() (the time-stamp counter on x86). */
uint64_t pace_ticks(void);

/* Since the process started: bytes fetched by waiting threads, and graphs
 * whose products followed the learned schedule. */
uint64_t pace_fetched_bytes(void);
long pace_scheduled_graphs(void);

/* Thread 0's share of the last graph's products, as a fraction (0.5 for two
 * threads at an equal pace; for status and tests). */
double pace_first_share(void);

#endif
