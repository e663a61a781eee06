#!/usr/bin/env bash
# setup.sh: install everything hearth needs to build and test, idempotently.
#
# 1. Debian packages (apt) for the build and the tests.
# 2. llama.cpp / whisper.cpp / ggml: from pkg-config when the system has them;
#    otherwise Debian unstable's binary packages unpacked into a private prefix
#    (deps/prefix) that the build links against with its own loader
#    (see ../shared/docs/debian12-deps.md for why this works).
# 3. The npm packages the end-to-end tests use (the official `openai` client).
#
# A second run with everything present does no network work and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PREFIX=$ROOT/deps/prefix
STAMP=$ROOT/deps/prefix.stamp
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

log() { printf '[setup] %s\n' "$*"; }

APT_PKGS="build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev patchelf
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev ffmpeg
  libtesseract-dev libleptonica-dev tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd
  libpoppler-glib-dev libcairo2-dev libtiff-tools
  libsqlite3-dev clang libclang-rt-14-dev curl ca-certificates nodejs npm"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node/npm may come from elsewhere (nodesource, nvm): only want apt's if absent
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
if [ -n "${missing// /}" ]; then
  log "apt install:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
else
  log "apt packages present"
fi

# --- llama.cpp / whisper.cpp / ggml ----------------------------------------
if pkg-config --exists llama ggml 2>/dev/null && [ -z "${HEARTH_FORCE_PREFIX:-}" ]; then
  log "llama/ggml from the system (pkg-config)"
  rm -f deps/use-prefix
elif [ -f "$STAMP" ]; then
  log "private prefix present ($(cat "$STAMP"))"
else
  log "building private prefix from Debian unstable binary packages"
  APTD=$ROOT/deps/apt
  mkdir -p "$APTD/lists/partial" "$APTD/cache/archives/partial" "$APTD/debs"
  echo "deb http://deb.debian.org/debian sid main" > "$APTD/sources.list"
  AOPT=(-o Dir::Etc::SourceList="$APTD/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$APTD/lists" -o Dir::Cache="$APTD/cache"
        -o APT::Architecture=amd64 -o Debug::NoLocking=1)
  apt-get "${AOPT[@]}" update -qq
  PKGS="libggml0 libggml-dev libllama0 libllama-dev libwhisper1 libwhisper-dev
        libc6 libstdc++6 libgcc-s1 libgomp1 libssl3t64 llama.cpp-tools"
  (cd "$APTD/debs" && apt-get "${AOPT[@]}" download $PKGS)
  rm -rf "$PREFIX.tmp" && mkdir -p "$PREFIX.tmp"
  for d in "$APTD"/debs/*.deb; do dpkg-deb -x "$d" "$PREFIX.tmp"; done
  LIB=$PREFIX.tmp/usr/lib/x86_64-linux-gnu
  # Point the llama/ggml/whisper libraries at their own folder; never touch libc's files.
  for f in "$LIB"/libggml*.so.*.*.* "$LIB"/libllama*.so.*.*.* "$LIB"/libmtmd.so.*.*.* \
           "$LIB"/libwhisper.so.*.*.*; do
    [ -f "$f" ] && [ ! -L "$f" ] && patchelf --set-rpath '$ORIGIN' "$f"
  done
  for f in "$LIB"/ggml/backends0/*.so; do
    [ -f "$f" ] && patchelf --set-rpath '$ORIGIN/../..' "$f"
  done
  if [ -d "$LIB/llama" ]; then
    for f in "$LIB"/llama/*.so*; do [ -f "$f" ] && [ ! -L "$f" ] && patchelf --set-rpath '$ORIGIN/..' "$f"; done
  fi
  # Plain unversioned names for the linker where -dev packages did not provide them.
  rm -rf "$PREFIX" && mv "$PREFIX.tmp" "$PREFIX"
  vers=$(cd "$APTD/debs" && ls *.deb | grep -E '^lib(ggml0|llama0|whisper1)_' | tr '\n' ' ')
  echo "$vers" > "$STAMP"
  log "prefix ready: $vers"
fi

# --- ggml's BLAS backend with OpenBLAS, for hearth's encoder workers ---------
# Debian only suggests it (llama-server and whisper-cli run without it). It goes
# into its own folder, ggml/accel, so that only hearth's embedding and speech
# workers load it (src/worker/accel.h); the peers in the prefix never see it.
LIB=$ROOT/deps/prefix/usr/lib/x86_64-linux-gnu
if [ -f "$STAMP" ] && [ ! -f "$LIB/ggml/accel/libggml-blas.so" ]; then
  log "ggml BLAS backend + OpenBLAS into the private prefix"
  APTD=$ROOT/deps/apt
  AOPT=(-o Dir::Etc::SourceList="$APTD/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$APTD/lists" -o Dir::Cache="$APTD/cache"
        -o APT::Architecture=amd64 -o Debug::NoLocking=1)
  rm -rf "$ROOT/deps/accel.tmp" && mkdir -p "$ROOT/deps/accel.tmp/debs"
  (cd "$ROOT/deps/accel.tmp/debs" &&
     apt-get "${AOPT[@]}" download libggml0-backend-blas libopenblas0-pthread libgfortran5 >/dev/null)
  for d in "$ROOT"/deps/accel.tmp/debs/*.deb; do dpkg-deb -x "$d" "$ROOT/deps/accel.tmp"; done
  T=$ROOT/deps/accel.tmp/usr/lib/x86_64-linux-gnu
  mkdir -p "$LIB/ggml/accel" "$LIB/openblas-pthread"
  cp -a "$T"/openblas-pthread/libblas.so.3 "$T"/openblas-pthread/libopenblas*.so* "$LIB/openblas-pthread/"
  cp -a "$T"/libgfortran.so.5* "$LIB/"
  for f in "$LIB"/openblas-pthread/libblas.so.3 "$LIB"/openblas-pthread/libopenblasp-*.so; do
    patchelf --set-rpath '$ORIGIN:$ORIGIN/..' "$f"
  done
  cp "$T/ggml/backends0/libggml-blas.so" "$LIB/ggml/accel/libggml-blas.so.tmp"
  patchelf --set-rpath '$ORIGIN/../..:$ORIGIN/../../openblas-pthread' "$LIB/ggml/accel/libggml-blas.so.tmp"
  mv "$LIB/ggml/accel/libggml-blas.so.tmp" "$LIB/ggml/accel/libggml-blas.so"
  rm -rf "$ROOT/deps/accel.tmp"
  log "BLAS backend ready"
fi

# --- benchmark peers (only with --bench): whisper.cpp's whisper-cli ---------
# It needs Debian unstable's FFmpeg, SDL and their dependencies: the whole
# closure is unpacked into its own prefix (deps/peer) so nothing else sees it.
if [ "${1:-}" = "--bench" ] && [ ! -f "$ROOT/deps/peer.stamp" ]; then
  log "bench peers: whisper.cpp-tools and its dependencies into deps/peer"
  APTD=$ROOT/deps/apt
  AOPT=(-o Dir::Etc::SourceList="$APTD/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$APTD/lists" -o Dir::Cache="$APTD/cache"
        -o APT::Architecture=amd64 -o Debug::NoLocking=1)
  [ -d "$APTD/lists" ] || { echo "bench peers need the private prefix first" >&2; exit 1; }
  deps=$(apt-cache "${AOPT[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
           --no-breaks --no-replaces --no-enhances --no-pre-depends whisper.cpp-tools 2>/dev/null |
         grep -v '^ ' | grep -v '<' | sort -u |
         grep -vE '^(fonts-|fontconfig|debconf|cdebconf|bubblewrap|glycin)')
  rm -rf "$ROOT/deps/peer.tmp" && mkdir -p "$ROOT/deps/peer.tmp/debs"
  (cd "$ROOT/deps/peer.tmp/debs" && apt-get "${AOPT[@]}" download $deps >/dev/null)
  for d in "$ROOT"/deps/peer.tmp/debs/*.deb; do dpkg-deb -x "$d" "$ROOT/deps/peer.tmp"; done
  rm -rf "$ROOT/deps/peer.tmp/debs" "$ROOT/deps/peer" && mv "$ROOT/deps/peer.tmp" "$ROOT/deps/peer"
  echo "whisper.cpp-tools $(ls "$APTD"/cache/archives 2>/dev/null | head -0)" > "$ROOT/deps/peer.stamp"
  log "bench peers ready"
fi

# --- npm: the official OpenAI client for the e2e suite -----------------------
if [ ! -d tests/e2e/node/node_modules/openai ]; then
  log "npm install (tests/e2e/node)"
  (cd tests/e2e/node && npm install --no-audit --no-fund --silent)
else
  log "npm packages present"
fi
log "done"
