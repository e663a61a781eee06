#!/usr/bin/env bash
# run.sh: `make bench`. Synthesizes the benchmark models (cached under
# build/bench-models), runs hearth and llama-server on them in one run, prints
# the table and appends it, with the machine's facts, to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LIB=$PWD/deps/prefix/usr/lib/x86_64-linux-gnu
PEER=$PWD/deps/prefix/usr/bin/llama-server
if [ ! -x "$PEER" ]; then
  echo "bench: llama-server not found at $PEER (scripts/setup.sh installs it)" >&2
  exit 1
fi
MODELS=$PWD/$BUILD/bench-models
mkdir -p "$MODELS" bench/results
SHARED=${HEARTH_SHARED:-$(cd .. && pwd)/shared}
[ -f "$SHARED/models/vocab/ggml-vocab-llama-spm.gguf" ] || SHARED=/work/shared
VOCAB=$SHARED/models/vocab/ggml-vocab-llama-spm.gguf   # a real 32000-token tokenizer
# the 0.5B shape in Q4_0 and Q8_0, and in F16 (a model kept unquantized)
for t in q4_0 q8_0 f16; do
  [ -f "$MODELS/q05-$t.gguf" ] || "$BUILD/hearth" synth --preset 0.5b --type $t \
      --vocab-from "$VOCAB" --quiet --out "$MODELS/q05-$t.gguf"
done
# requantize SRC DST [TYPE]: DST in TYPE (default Q4_K_M) by Debian's
# llama-quantize (from the private prefix), unless it is there; prints DST
# when it is there, nothing when llama-quantize failed (the row is left out)
requantize() {
  [ -f "$2" ] || (cd "$LIB/ggml/backends0" && "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB:$LIB/llama" \
     "$OLDPWD/deps/prefix/usr/bin/llama-quantize" --allow-requantize "$1" "$2" "${3:-Q4_K_M}" \
     >/dev/null 2>&1) || rm -f "$2"
  if [ -f "$2" ]; then echo "$2"; fi
}
# the same shape in Q4_K_M, the mix most downloadable models come in (Q4_K
# and Q6_K matrices), made from the Q8_0 twin by llama-quantize
KM=$(requantize "$MODELS/q05-q8_0.gguf" "$MODELS/q05-q4_k_m.gguf")
[ -f "$MODELS/q1b-q4_0.gguf" ] || "$BUILD/hearth" synth --preset 1b --type q4_0 \
    --vocab-from "$VOCAB" --quiet --out "$MODELS/q1b-q4_0.gguf"
# the ~1B shape (the weights are random either way, so requantizing the Q4_0
# twin is fair) in Q4_K_M: 2048 wide, so real Q4_K and Q6_K matrices; in
# Q5_K_M, the next most common download (Q5_K and Q6_K); in Q3_K_M, for boxes
# with little memory (Q3_K and Q4_K); in IQ4_XS, a 4.25-bit i-quant many
# downloads come in (needs no importance matrix); in Q2_K, the smallest
# K-quant mix (Q2_K, Q3_K and Q4_K)
KM1=$(requantize "$MODELS/q1b-q4_0.gguf" "$MODELS/q1b-q4_k_m.gguf")
K5M1=$(requantize "$MODELS/q1b-q4_0.gguf" "$MODELS/q1b-q5_k_m.gguf" Q5_K_M)
K3M1=$(requantize "$MODELS/q1b-q4_0.gguf" "$MODELS/q1b-q3_k_m.gguf" Q3_K_M)
IX1=$(requantize "$MODELS/q1b-q4_0.gguf" "$MODELS/q1b-iq4_xs.gguf" IQ4_XS)
Q2K1=$(requantize "$MODELS/q1b-q4_0.gguf" "$MODELS/q1b-q2_k.gguf" Q2_K)
[ -f "$MODELS/minilm-f16.gguf" ] || HEARTH_SHARED=$SHARED "$BUILD/hearth" synth --preset minilm \
    --quiet --out "$MODELS/minilm-f16.gguf"
for w in tiny base; do
  [ -f "$MODELS/whisper-$w.bin" ] || HEARTH_SHARED=$SHARED "$BUILD/hearth" synth --arch whisper \
      --preset whisper-$w --quiet --out "$MODELS/whisper-$w.bin"
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hearth-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
OUT=bench/results/$(date -u +%Y-%m-%d).md
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
# the core's generation (kernels are tuned per microarchitecture: AMD family
# 19h is Zen 3/4, 1Ah Zen 5) and its caches
fam=$(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
cmod=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
caches=$(lscpu 2>/dev/null | awk -F: '/^L2 cache|^L3 cache/ {gsub(/^ +/, "", $2); printf "%s%s %s", sep, $1, $2; sep=", "}')
cpu="$cpu (family $(printf '%xh' "${fam:-0}") model $(printf '%xh' "${cmod:-0}")${caches:+; $caches})"
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
peer_ver=$(ls deps/apt/debs 2>/dev/null | grep -E '^llama.cpp-tools_' | sed 's/_amd64.deb//' || true)
{
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — hearth $(git rev-parse --short HEAD 2>/dev/null || echo '?') vs ${peer_ver:-llama-server}"
  echo
  echo "Machine: $cpu, $(nproc) CPUs, $mem. Both servers: 2 threads, the same synthesized"
  echo "~0.5B llama-shape model with the Llama-2 tokenizer (24 layers, 896 dims, 14/2 heads, ff 4864, vocab 32000) in Q4_0;"
  echo "the model switch uses its Q8_0 twin; embeddings use a MiniLM-L6 shape BERT (F16, bge vocab)."
  echo "Against llama-bench (its defaults, 2 threads): the 0.5B shape in Q4_0, Q8_0, Q4_K_M and F16 and a ~1.1B shape"
  echo "(16 layers, 2048 dims, 32/8 heads, ff 8192) in Q4_0, Q4_K_M, Q5_K_M, Q3_K_M, IQ4_XS and Q2_K; hearth's decode is measured over HTTP,"
  echo "its prompt rate from its own timings."
  echo "Transcription: whisper tiny and base shapes (F16, random weights) against whisper-cli. Medians of ${BENCH_RUNS:-3} runs."
  echo
} >> "$OUT"
HEARTH_BUILD=$BUILD BENCH_TMP=$TMP BENCH_MODEL=$MODELS/q05-q4_0.gguf BENCH_MODEL2=$MODELS/q05-q8_0.gguf \
  BENCH_MODEL_1B=$MODELS/q1b-q4_0.gguf BENCH_MODEL_Q4KM=$KM BENCH_MODEL_1B_Q4KM=$KM1 BENCH_MODEL_1B_Q5KM=$K5M1 BENCH_MODEL_1B_Q3KM=$K3M1 BENCH_MODEL_1B_IQ4XS=$IX1 BENCH_MODEL_1B_Q2K=$Q2K1 BENCH_MODEL_F16=$MODELS/q05-f16.gguf \
  BENCH_EMBED_MODEL=$MODELS/minilm-f16.gguf BENCH_WHISPER_MODEL=$MODELS/whisper-tiny.bin \
  BENCH_WHISPER_BASE_MODEL=$MODELS/whisper-base.bin \
  PEER_WHISPER_ROOT=$PWD/deps/peer BENCH_SPEECH_DIR=$SHARED/data/speech PEER_SERVER=$PEER PEER_LIB=$LIB BENCH_OUT=$OUT "$BUILD/bench/bench"
echo >> "$OUT"
echo "results appended to $OUT"
