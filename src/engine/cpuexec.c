/*
 * cpuexec.c: small graphs on ggml's CPU executor (see cpuexec.h).
 */
#include "engine/cpuexec.h"

#include "engine/kernels.h"

#include <ggml-cpu.h>
#include <ggml.h>
#include <sys/mman.h>

typedef struct ggml_cplan (*plan_fn)(const struct ggml_cgraph *, int, struct ggml_threadpool *);
typedef enum ggml_status (*compute_fn)(struct ggml_cgraph *, struct ggml_cplan *);

/* `size` bytes of zeroed memory in 4 KiB pages, or NULL. */
static void *cpuexec_scratch(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, size, MADV_NOHUGEPAGE);
    return p;
}

static void cpuexec_scratch_free(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}

struct ggml_context *cpuexec_context(size_t size)
{
    void *mem = cpuexec_scratch(size);
    if (!mem)
        return NULL;
    struct ggml_init_params ip = { size, mem, false };
    struct ggml_context *ctx = ggml_init(ip);
    if (!ctx)
        cpuexec_scratch_free(mem, size);
    return ctx;
}

void cpuexec_context_free(struct ggml_context *ctx)
{
    if (!ctx)
        return;
    void *mem = ggml_get_mem_buffer(ctx);
    size_t size = ggml_get_mem_size(ctx);
    ggml_free(ctx);
    cpuexec_scratch_free(mem, size);
}

bool cpuexec_run(struct ggml_cgraph *gf, int threads)
{
    plan_fn plan = (plan_fn)kernels_backend_symbol("ggml_graph_plan");
    compute_fn compute = (compute_fn)kernels_backend_symbol("ggml_graph_compute");
    if (!plan || !compute)
        return false;
    struct ggml_cplan cp = plan(gf, threads, NULL);
    size_t size = cp.work_size ? cp.work_size : 1;
    cp.work_data = cpuexec_scratch(size);
    if (!cp.work_data)
        return false;
    bool ok = compute(gf, &cp) == GGML_STATUS_SUCCESS;
    cpuexec_scratch_free(cp.work_data, size);
    return ok;
}
