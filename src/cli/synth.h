/*
 * synth.h: `hearth synth`, which writes a GGUF model with seeded random
 * weights (for tests and benchmarks: no real weights can be downloaded here):
 * a llama-architecture decoder, or with --arch bert (--preset minilm) a
 * BERT sentence-embedding encoder with mean pooling and a WordPiece vocab
 * copied from a llama.cpp vocab GGUF. The file loads and runs in llama.cpp
 * (llama_decode for llama, llama_encode for bert).
 *
 * The same options and seed give a byte-identical file. Tensors are generated
 * and written chunk by chunk, so a 1B-parameter model never sits in RAM. The
 * file is written to FILE.tmp and renamed onto FILE only on success; on any
 * failure the tmp file is removed. Self-contained: owns everything it
 * allocates and frees it before returning.
 */
#ifndef HEARTH_SYNTH_H
#define HEARTH_SYNTH_H

int synth_main(int argc, char **argv);   /* argv[0] is "synth"; returns process exit code */

#endif
