/*
 * embed.h: the embedding engine: a sentence-embedding model (BERT family)
 * turning texts into L2-normalised vectors. Runs only inside a worker.
 *
 * Inputs of one request are packed into as few encoder calls as the batch
 * allows (many sequences per call); each sequence is pooled by the model's
 * own pooling type (GGUF <arch>.pooling_type). A vector does not depend on
 * which other inputs share its batch (sequences never attend across).
 *
 * Output: embed_run reports each vector through sink->delta as n_embd raw
 * float32 values, in input order, then sink->done with the token count.
 */
#ifndef HEARTH_EMBED_H
#define HEARTH_EMBED_H

#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"
#include "engine/llm.h"

typedef struct embedder embedder;

/* Uses p->path, threads, batch_size; sink like the LLM engine's. */
embedder *embed_load(const llm_params *p, const llm_sink *sink, char *err, size_t errlen);
void      embed_free(embedder *e);
int       embed_describe(embedder *e, buf *out);
/* Runs a whole request ({"kind":"embedding","input":[...]}) synchronously. */
int       embed_run(embedder *e, uint32_t id, const json *req);

#endif
