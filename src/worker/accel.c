/*
 * accel.c: loading ggml's BLAS backend; see accel.h.
 */
#include "worker/accel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ggml-backend.h>

#include "core/log.h"

#ifndef HEARTH_GGML_ACCEL
#define HEARTH_GGML_ACCEL ""
#endif

static bool has_avx512(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

static bool is_amd(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_is("amd");
#else
    return false;
#endif
}

static const char *path_of(const char *where)
{
    return where && *where && strcmp(where, "auto") != 0 ? where : HEARTH_GGML_ACCEL;
}

bool accel_available(const char *where)
{
    if (where && strcmp(where, "off") == 0)
        return false;
    const char *path = path_of(where);
    return *path && access(path, R_OK) == 0;
}

bool accel_load(const char *where, int threads)
{
    if (where && strcmp(where, "off") == 0)
        return false;
    const char *path = path_of(where);
    if (!accel_available(where)) {
        log_info("no BLAS backend (%s); F16 models run on the CPU backend alone",
                 *path ? path : "none built in");
        return false;
    }
    /* The worker's BLAS threading is hearth's, not the shell's: a global
     * OPENBLAS_NUM_THREADS (some systems set one for numpy) is overridden, and
     * so is OPENBLAS_CORETYPE on AMD CPUs with AVX-512; HEARTH_OPENBLAS_CORETYPE
     * chooses the kernels anywhere. OpenBLAS reads these as it loads. */
    char nt[16];
    snprintf(nt, sizeof nt, "%d", threads < 1 ? 1 : threads > 256 ? 256 : threads);
    setenv("OPENBLAS_NUM_THREADS", nt, 1);
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);     /* 2^4 cycles of spinning, then sleep */
    const char *core = getenv("HEARTH_OPENBLAS_CORETYPE");
    if (core && *core)
        setenv("OPENBLAS_CORETYPE", core, 1);
    else if (is_amd() && has_avx512())
        /* OpenBLAS 0.3.34 does not know Zen 5 and would run its AVX2 kernels;
         * its AVX-512 (SkylakeX) ones are 1.4x faster there */
        setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 1);
    const char *chosen = getenv("OPENBLAS_CORETYPE");
    log_debug("BLAS: OPENBLAS_CORETYPE=%s", chosen ? chosen : "(detect)");
    if (!ggml_backend_load(path)) {
        log_warn("could not load the BLAS backend %s; F16 models run on the CPU backend alone",
                 path);
        return false;
    }
    log_info("BLAS backend loaded (%s)", path);
    return true;
}
