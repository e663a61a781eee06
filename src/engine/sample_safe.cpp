/*
 * sample_safe.cpp: see sample_safe.h. The project's one C++ file.
 */
#include "engine/sample_safe.h"

#include <cstdio>
#include <exception>

/* Runs f; an exception becomes -1 and its message in err. */
template <class F> static int guarded(F f, char *err, size_t errlen)
{
    try {
        f();
        return 0;
    } catch (const std::exception &e) {
        std::snprintf(err, errlen, "%s", e.what());
    } catch (...) {
        std::snprintf(err, errlen, "unknown exception");
    }
    return -1;
}

extern "C" int sample_safe(struct llama_sampler *smpl, struct llama_context *ctx, int idx,
                           llama_token *out, char *err, size_t errlen)
{
    return guarded([&] { *out = llama_sampler_sample(smpl, ctx, idx); }, err, errlen);
}

extern "C" int accept_safe(struct llama_sampler *smpl, llama_token token, char *err,
                           size_t errlen)
{
    return guarded([&] { llama_sampler_accept(smpl, token); }, err, errlen);
}
