/*
 * synth.h: `hearth synth`, which writes a GGUF llama-architecture model with
 * seeded random weights (for tests and benchmarks: no real weights can be
 * downloaded here). The file loads and runs in llama.cpp.
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
