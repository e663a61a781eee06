#!/usr/bin/env bash
# run.sh: runs every test (unit, then end-to-end) and prints the sum:
# the last line is "N passed, N failed". Exit status 0 only if none failed.
# ONLY=REGEX runs just the test binaries whose names match (e.g.
# ONLY='test_auth|e2e_api' tests/run.sh).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SHARED=${HEARTH_SHARED:-$(cd .. && pwd)/shared}
[ -f "$SHARED/models/stories260K.gguf" ] || SHARED=/work/shared
if [ ! -f "$SHARED/models/stories260K.gguf" ]; then
  echo "tests: shared assets not found at $SHARED (set HEARTH_SHARED)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hearth-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
total_pass=0
total_fail=0

tally() {  # reads a test binary's output, echoes it, adds its summary line
  local out=$1
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -n1)
  if [ -z "$line" ]; then
    total_fail=$((total_fail + 1))
    echo "  (no summary line: the test binary crashed)"
    return
  fi
  total_pass=$((total_pass + $(cut -d' ' -f1 <<<"$line")))
  total_fail=$((total_fail + $(cut -d' ' -f3 <<<"$line")))
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  # a binary left from a test whose source is gone does not count
  [ -f "tests/unit/$(basename "$t").c" ] || continue
  [ -z "${ONLY:-}" ] || [[ $(basename "$t") =~ $ONLY ]] || continue
  echo "== $(basename "$t")"
  out=$("$t" 2>&1)
  echo "$out" | grep -v '^ok ' || true
  tally "$out"
done

echo "== e2e: synthesizing test models"
HEARTH_SHARED="$SHARED" "$BUILD/hearth" synth --preset minilm --out "$TMP/minilm.gguf" --quiet >/dev/null || total_fail=$((total_fail + 1))
HEARTH_SHARED="$SHARED" "$BUILD/hearth" synth --arch whisper --preset whisper-tiny --out "$TMP/whisper-tiny.bin" --quiet >/dev/null || total_fail=$((total_fail + 1))
# the JFK clip in the other containers a household's recordings come in (the
# test tool may shell out to ffmpeg; hearthd decodes with FFmpeg's libraries)
# a 33 s recording: longer than whisper's 30 s window
ffmpeg -loglevel error -y -i "$SHARED/data/speech/jfk.wav" -i "$SHARED/data/speech/jfk.wav" \
  -i "$SHARED/data/speech/jfk.wav" -filter_complex concat=n=3:v=0:a=1 "$TMP/long.mp3" || total_fail=$((total_fail + 1))
# a two-page TIFF for the OCR suite
tiffcp "$SHARED/data/ocr/phototest.tif" "$SHARED/data/ocr/eurotext.tif" "$TMP/two-pages.tif" || total_fail=$((total_fail + 1))
# sixteen scanned pages: ~10 s of OCR here, for a client that gives up
P="$SHARED/data/ocr/phototest.tif"
tiffcp "$P" "$P" "$P" "$P" "$P" "$P" "$P" "$P" "$P" "$P" "$P" "$P" "$P" "$P" "$P" "$P" \
  "$TMP/many-pages.tif" || total_fail=$((total_fail + 1))
for ext in flac ogg opus m4a webm; do
  ffmpeg -loglevel error -y -i "$SHARED/data/speech/jfk.wav" "$TMP/jfk.$ext" || total_fail=$((total_fail + 1))
done
"$BUILD/hearth" synth --preset tiny --out "$TMP/tiny.gguf" --quiet >/dev/null || total_fail=$((total_fail + 1))
# slow enough per token that a full-context answer outlasts the disconnect test
"$BUILD/hearth" synth --layers 8 --embd 512 --heads 8 --ff 2048 --vocab 32000 --type f16 \
  --out "$TMP/slow.gguf" --quiet >/dev/null || total_fail=$((total_fail + 1))
# the real stories260K with its layer matrices in Q4_0 and in Q8_0, for
# hearth's kernels (engine/kernels.h); llama-quantize comes with the prefix
LIB=$PWD/deps/prefix/usr/lib/x86_64-linux-gnu
for q in q4_0 q8_0; do
  if [ -x deps/prefix/usr/bin/llama-quantize ]; then
    (cd "$LIB/ggml/backends0" && "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB:$LIB/llama" \
       "$OLDPWD/deps/prefix/usr/bin/llama-quantize" "$SHARED/models/stories260K.gguf" \
       "$TMP/stories-$q.gguf" "${q^^}" >/dev/null 2>&1) || total_fail=$((total_fail + 1))
  else
    llama-quantize "$SHARED/models/stories260K.gguf" "$TMP/stories-$q.gguf" "${q^^}" \
      >/dev/null 2>&1 || total_fail=$((total_fail + 1))
  fi
done

for t in "$BUILD"/tests/e2e_*; do
  [ -x "$t" ] || continue
  [ -f "tests/e2e/$(basename "$t").c" ] || continue
  [ -z "${ONLY:-}" ] || [[ $(basename "$t") =~ $ONLY ]] || continue
  echo "== $(basename "$t")"
  out=$(HEARTH_BUILD="$BUILD" HEARTH_SHARED="$SHARED" HEARTH_TMP="$TMP" \
        HEARTH_NODE_TEST="$PWD/tests/e2e/node/openai.mjs" "$t" 2>&1)
  echo "$out" | grep -v ' INFO \| WARN ' || true
  tally "$out"
done
if [ "$total_fail" -ne 0 ]; then
  for f in "$TMP"/*/hearthd.log; do echo "--- $f (tail)"; tail -n 30 "$f"; done
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
