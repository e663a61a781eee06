/*
 * thp.h: transparent huge pages for the memory a worker fills while it
 * loads a model.
 *
 * A decode step streams every weight once; with 4 KiB pages the walk misses
 * the TLB all along, and in 2 MiB pages the weights ggml repacked read
 * about 9% faster here. But a 2 MiB page can be slow to come by: in a VM
 * whose host takes back free guest memory in 2 MiB blocks, each fresh huge
 * page costs a host fault, and a load that touched 400 MiB in huge pages
 * took from 0.2 to 1.1 s, where in 4 KiB pages it takes 0.2 s every time.
 * So a worker loads with huge pages off (thp_pause) and afterwards, in the
 * background, folds what it filled into huge pages (thp_collapse_async,
 * MADV_COLLAPSE): the model is ready at once and reaches full speed a
 * fraction of a second later. Only 2 MiB pieces whose small pages are all
 * resident are folded (weights, the KV cache), never sparse memory such as
 * thread stacks, which a huge page would fill with zeros.
 *
 * Under THP "never", or on kernels without MADV_COLLAPSE (before 6.1),
 * these do nothing and the worker keeps 4 KiB pages.
 *
 * Ownership: nothing to free; the background thread is detached and works
 * only on the process's own mappings.
 */
#ifndef HEARTH_THP_H
#define HEARTH_THP_H

#include <stdbool.h>

/* Turns huge pages off for this process (PR_SET_THP_DISABLE) until
 * thp_resume(). Returns whether they were turned off. */
bool thp_pause(void);

/* Undoes thp_pause() when it returned true. */
void thp_resume(bool paused);

/* Folds into huge pages, now, every 2 MiB-aligned piece of an anonymous
 * writable mapping of at least 4 MiB whose small pages are all resident. Returns the bytes that became
 * huge pages (0 when none could), or -1 when /proc/self/smaps cannot be
 * read. */
long long thp_collapse_resident(void);

/* The same in a detached background thread at idle priority (SCHED_IDLE:
 * it runs on CPU time nothing else wants), which logs what it did (debug).
 * `what` names the work in that line (copied). */
void thp_collapse_async(const char *what);

#endif
