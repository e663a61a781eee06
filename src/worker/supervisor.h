/*
 * supervisor.h: spawning and watching worker processes.
 *
 * worker_start creates a thread that forks and execs the worker binary with
 * a socketpair on fd 3, then reads its frames until the socket closes, reaps
 * the process, and reports the exit. The forking thread lives exactly as long
 * as the worker, which matters: the child asks the kernel (PR_SET_PDEATHSIG)
 * to SIGKILL it when that thread dies, so no worker outlives hearthd, even a
 * hearthd killed with SIGKILL. The child also gets its own process group so
 * a terminal's Ctrl-C reaches hearthd (which shuts workers down in order)
 * rather than every worker at once.
 *
 * Threads: `frame` and `exited` run on the worker's reader thread. After
 * `exited` returns no more callbacks come; worker_free then joins and frees.
 */
#ifndef HEARTH_SUPERVISOR_H
#define HEARTH_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker/wire.h"

typedef struct worker worker;

typedef struct worker_events {
    void *ud;
    void (*frame)(void *ud, worker *w, const wire_hdr *h, const char *payload);
    /* status as from waitpid; why is a short human description */
    void (*exited)(void *ud, worker *w, int status, const char *why);
} worker_events;

/* argv: NULL-terminated, argv[0] is the executable path. Copied.
 * mem_limit > 0 sets the child's RLIMIT_DATA (private writable memory: heap,
 * anonymous buffers, repacked weights; not the read-only file mapping), so a
 * worker whose estimate was wrong fails its own allocations instead of
 * pushing the box into swap. */
worker *worker_start(char *const *argv, uint64_t mem_limit, const worker_events *ev, char *err,
                     size_t errlen);
/* Thread-safe; returns -1 if the worker is gone. */
int     worker_send(worker *w, unsigned type, uint32_t id, const void *payload, size_t len);
pid_t   worker_pid(const worker *w);
void    worker_signal(worker *w, int sig);
/* Joins the reader thread (kill the worker first if it must stop now). */
void    worker_free(worker *w);

/* Path of the hearth-worker binary next to the running executable. */
int     worker_default_exe(char *out, size_t n);

#endif
