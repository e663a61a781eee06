/*
 * graphexec.h: ggml's CPU graphs run with barriers only where nodes depend
 * on each other.
 *
 * ggml's executor runs every node on every thread and puts a barrier after
 * each: ~410 per token of a 24-layer llama, most of them around nodes of a
 * single row (norms, additions, rope, SwiGLU, cache writes) where one
 * thread works and the others find no row to take and wait. A barrier
 * costs every thread the spread of the one before it (engine/pace.h).
 * Many are not needed: the K and V products after Q read what Q read and
 * write elsewhere; the residual addition, the norm after it and its weight
 * all run on one thread.
 *
 * The worker defines ggml_graph_plan and ggml_graph_compute, which ggml's
 * CPU backend calls through its PLT (as with engine/pace.h). For a graph of
 * operators hearth knows:
 *
 *  - Steps. Each node ggml would compute (its COMPUTE flag, not a view,
 *    reshape or permutation, not empty) is a step, computed as ggml's
 *    executor would: ggml_cpu_extra_compute_forward() first (hearth's
 *    products, engine/mulmat.h, or ggml's repacked ones), else the
 *    operator's function, which the backend exports (hearth's own for flash
 *    attention, engine/attn.h).
 *  - Thread 0 alone. An element-wise node of at most 8192 elements (the
 *    norms, additions, rope, SwiGLU and cache writes of a step that
 *    generates a token or a few) runs on thread 0 as if it were the only
 *    thread; the others go on.
 *  - Barriers where needed. A step waits for every thread only if it reads
 *    or writes memory that a step since the last barrier wrote, or writes
 *    memory such a step read, unless both ran on thread 0 alone. The work
 *    buffer counts as written by every step that may use it (products not
 *    taken by engine/mulmat.h's private path, attention, rope, softmax,
 *    copies). A 24-layer llama's decode step has 10 barriers a layer
 *    instead of 17.
 *  - Kept plans. The steps and ggml's own plan (its work size) are kept for
 *    the last few graphs and used again while a signature of the graph's
 *    nodes (addresses, operators, shapes, sources) repeats, as decode
 *    steps do: the plan of a 24-layer graph took ~30 us a token.
 *
 * Graphs with another operator, an abort callback (transcription), ggml's
 * reference mode or one thread go to ggml's executor, and so does every
 * graph when hearth's barrier is not in use. The threads are OpenMP's, as
 * ggml's; an operator that waits at a barrier inside gets hearth's
 * barrier, and one that takes chunks from ggml's thread-pool counter gets
 * a zeroed stand-in, reset behind a barrier as ggml's is.
 *
 * graphexec_init() decides after pace_init(): a graph with every operator
 * hearth runs (one row and several, products through ggml and through
 * engine/mulmat.h, attention) is computed by ggml's executor and three
 * times by hearth's; hearth's is kept only if every node's bits agree.
 *
 * Ownership: plans are kept per calling thread (a worker calls ggml from
 * one) and live as long as it; nothing for callers to free.
 */
#ifndef HEARTH_GRAPHEXEC_H
#define HEARTH_GRAPHEXEC_H

#include <stdbool.h>

/* "off" keeps ggml's executor; NULL, "" or "auto" uses hearth's when
 * hearth's barrier is in use (pace_init) and the check passes. Returns true
 * when hearth's is in use. */
bool graphexec_init(const char *mode);

bool graphexec_active(void);

/* For status and tests: graphs run by hearth's executor, their barriers,
 * and plans built (not found kept) since the process started. */
long graphexec_graphs(void);
long graphexec_barriers(void);
long graphexec_plans_built(void);

#endif
