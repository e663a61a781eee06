/*
 * backend.h: load ggml's CPU backend the way the worker does, for the unit
 * tests that check hearth's code against it (kernels, attention, products):
 * from $HEARTH_GGML_BACKENDS, else the build's folder, else ggml's search.
 */
#ifndef HEARTH_TEST_BACKEND_H
#define HEARTH_TEST_BACKEND_H

#include <ggml-backend.h>
#include <stdlib.h>

#ifndef HEARTH_GGML_BACKENDS
#define HEARTH_GGML_BACKENDS ""
#endif

static inline void test_load_backend(void)
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
