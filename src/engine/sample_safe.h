/*
 * sample_safe.h: llama.cpp's sampling, with its C++ exceptions kept inside.
 *
 * llama.cpp is C++ behind a C API, and one path can throw through that API:
 * a lazy grammar (tools the model may call) replays the text of the token
 * that opened a call through the grammar without checking it first, and a
 * token whose rest does not fit makes the grammar throw. An exception that
 * reaches C code ends the whole worker (std::terminate), and every request
 * on the model with it. This one C++ function catches it, so only the
 * request whose text left the grammar fails.
 */
#ifndef HEARTH_SAMPLE_SAFE_H
#define HEARTH_SAMPLE_SAFE_H

#include <stddef.h>

#include <llama.h>

#ifdef __cplusplus
extern "C" {
#endif

/* llama_sampler_sample(smpl, ctx, idx) into *out. Returns 0, or -1 with
 * the exception's message in err. */
int sample_safe(struct llama_sampler *smpl, struct llama_context *ctx, int idx, llama_token *out,
                char *err, size_t errlen);

/* llama_sampler_accept(smpl, token): 0, or -1 with the message in err. */
int accept_safe(struct llama_sampler *smpl, llama_token token, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
