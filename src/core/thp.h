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
 * So a worker loads with huge pages off (thp_pause) and afterwards, while
 * it has nothing else to do, folds what it filled into huge pages piece by
 * piece (thp_fold_*, MADV_COLLAPSE): the model is ready at once and reaches
 * full speed once the worker has been idle for a fraction of a second. (A
 * background thread was tried first: at normal priority it slowed the first
 * request after a load, at idle priority a busy machine starved it.) Only 2 MiB pieces whose small pages are all
 * resident are folded (weights, the KV cache), never sparse memory such as
 * thread stacks, which a huge page would fill with zeros.
 *
 * Under THP "never", or on kernels without MADV_COLLAPSE (before 6.1),
 * these do nothing and the worker keeps 4 KiB pages.
 *
 * Ownership: a thp_fold belongs to its caller (thp_fold_free); it only
 * reads and advises the process's own mappings.
 */
#ifndef HEARTH_THP_H
#define HEARTH_THP_H

#include <stdbool.h>

/* Turns huge pages off for this process (PR_SET_THP_DISABLE) until
 * thp_resume(). Returns whether they were turned off. */
bool thp_pause(void);

/* Undoes thp_pause() when it returned true. */
void thp_resume(bool paused);

/* The 2 MiB pieces still to fold: every 2 MiB-aligned piece of an
 * anonymous writable mapping of at least 4 MiB that holds 2 MiB or more in
 * small pages. NULL when there is nothing to fold or /proc/self/smaps
 * cannot be read. Free with thp_fold_free(). */
typedef struct thp_fold thp_fold;
thp_fold *thp_fold_plan(void);

/* Folds up to `max` more pieces whose small pages are all resident (the
 * others are skipped). Returns true while pieces remain. A worker calls it
 * while it has nothing to compute, so the copies never delay a request by
 * more than one step (a few milliseconds per piece). */
bool thp_fold_step(thp_fold *f, int max);

/* Bytes folded so far. */
long long thp_fold_done(const thp_fold *f);

void thp_fold_free(thp_fold *f);

/* Plans and folds everything now; returns the bytes folded (tests). */
long long thp_collapse_resident(void);

#endif
