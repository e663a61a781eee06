/*
 * backends.h: load ggml's backends (the CPU backend's variants for each
 * CPU, and BLAS) the way every hearth process that computes does: from
 * $HEARTH_GGML_BACKENDS, else the folder the build was configured with
 * (HEARTH_GGML_BACKENDS, the private prefix), else ggml's own search.
 * Used by the workers and by the unit tests that check hearth's code
 * against ggml's.
 */
#ifndef HEARTH_BACKENDS_H
#define HEARTH_BACKENDS_H

#include <ggml-backend.h>
#include <stdlib.h>

#ifndef HEARTH_GGML_BACKENDS
#define HEARTH_GGML_BACKENDS ""
#endif

static inline void backends_load(void)
{
    const char *dir = getenv("HEARTH_GGML_BACKENDS");
    if (!dir || !*dir)
        dir = HEARTH_GGML_BACKENDS;
    if (*dir)
        ggml_backend_load_all_from_path(dir);
    else
        ggml_backend_load_all();
}

#endif
