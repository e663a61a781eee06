# hearth: plain Makefile. `make` builds the daemon, the worker and the CLI;
# `make test` runs every test; `make check` runs them under ASan+UBSan.
#
# llama.cpp / ggml come from pkg-config when the system has them, else from
# the private prefix that scripts/setup.sh unpacks into deps/prefix.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2 -g
CFLAGS_BASE = -std=c11 -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -Isrc $(OPT)
SAN     ?=

PREFIX_LIB = $(CURDIR)/deps/prefix/usr/lib/x86_64-linux-gnu
PREFIX_INC = $(CURDIR)/deps/prefix/usr/include

ifeq ($(shell pkg-config --exists llama ggml 2>/dev/null && echo yes),yes)
  LLAMA_CFLAGS := $(shell pkg-config --cflags llama ggml)
  LLAMA_LIBS   := $(shell pkg-config --libs llama ggml) -lggml-base
  GGML_LIBS    := $(shell pkg-config --libs ggml) -lggml-base
  BACKENDS_DEF :=
else
  LLAMA_CFLAGS := -I$(PREFIX_INC)
  PRIV_LINK    := -L$(PREFIX_LIB) -Wl,--allow-shlib-undefined -Wl,-rpath,$(PREFIX_LIB) \
                  -Wl,--dynamic-linker=$(PREFIX_LIB)/ld-linux-x86-64.so.2
  LLAMA_LIBS   := $(PRIV_LINK) -lllama -lggml -lggml-base
  GGML_LIBS    := $(PRIV_LINK) -lggml -lggml-base
  BACKENDS_DEF := -DHEARTH_GGML_BACKENDS='"$(PREFIX_LIB)/ggml/backends0"' \
                  -DHEARTH_GGML_ACCEL='"$(PREFIX_LIB)/ggml/accel/libggml-blas.so"'
endif

MHD_CFLAGS  := $(shell pkg-config --cflags libmicrohttpd)
MHD_LIBS    := $(shell pkg-config --libs libmicrohttpd)
CURL_CFLAGS := $(shell pkg-config --cflags libcurl)
CURL_LIBS   := $(shell pkg-config --libs libcurl)

# OCR in the worker: Tesseract, Leptonica, poppler (PDF) and cairo (rendering)
OCR_CFLAGS := $(shell pkg-config --cflags tesseract lept poppler-glib cairo 2>/dev/null)
OCR_LIBS   := $(shell pkg-config --libs tesseract lept poppler-glib cairo 2>/dev/null)

CFLAGS = $(CFLAGS_BASE) $(SAN) $(LLAMA_CFLAGS) $(MHD_CFLAGS) $(CURL_CFLAGS) $(OCR_CFLAGS)
# the one C++ file: catching llama.cpp's exceptions (src/engine/sample_safe.h)
CXX     ?= c++
CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc $(OPT) $(SAN) $(LLAMA_CFLAGS)
LDFLAGS_ALL = $(SAN) -pthread -lm

# core/sql.c is for hearthd's stores alone: the workers and the CLI do not link SQLite
SQL_SRC    = src/core/sql.c
CORE_SRC   = $(filter-out $(SQL_SRC),$(wildcard src/core/*.c))
HTTP_SRC   = $(wildcard src/http/*.c)
SCHED_SRC  = $(wildcard src/sched/*.c)
QUEUE_SRC  = $(wildcard src/queue/*.c)
INDEX_SRC  = $(wildcard src/index/*.c)
SUPER_SRC  = src/worker/supervisor.c src/worker/wire.c
ENGINE_SRC = $(wildcard src/engine/*.c)
CLI_SRC    = $(wildcard src/cli/*.c)

DAEMON_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,src/main.c $(CORE_SRC) $(SQL_SRC) $(HTTP_SRC) $(SCHED_SRC) $(QUEUE_SRC) $(INDEX_SRC) $(SUPER_SRC))
WORKER_COMMON = $(patsubst %.c,$(BUILD)/obj/%.o,src/worker/wire.c $(CORE_SRC))
WORKER_OBJ = $(BUILD)/obj/src/worker/worker_main.o $(WORKER_COMMON) \
             $(patsubst %.c,$(BUILD)/obj/%.o,src/worker/accel.c src/engine/llm.c src/engine/embed.c src/engine/prompt.c \
                                             src/engine/kernels.c src/engine/kquant.c src/engine/kfloat.c src/engine/q8k.c src/engine/attn.c src/engine/attnp.c src/engine/mulmat.c src/engine/kgemm.c \
                                             src/engine/pace.c src/engine/cpuexec.c) \
             $(BUILD)/obj/src/engine/sample_safe.o
ASR_WORKER_OBJ = $(BUILD)/obj/src/worker/worker_main-asr.o $(WORKER_COMMON) \
             $(patsubst %.c,$(BUILD)/obj/%.o,src/worker/accel.c src/engine/asr.c src/engine/audio.c)
OCR_WORKER_OBJ = $(BUILD)/obj/src/worker/worker_main-ocr.o $(WORKER_COMMON) \
             $(patsubst %.c,$(BUILD)/obj/%.o,src/engine/ocr.c)
# hearth's kernels take the place of ggml's by name (engine/kernels.h, kquant.h):
# the worker exports them so that ggml's CPU backend binds to them
KERNEL_EXPORTS = -Wl,--export-dynamic-symbol=ggml_gemv_q4_0_8x8_q8_0 \
                 -Wl,--export-dynamic-symbol=ggml_gemm_q4_0_8x8_q8_0 \
                 -Wl,--export-dynamic-symbol=ggml_vec_dot_q8_0_q8_0 \
                 -Wl,--export-dynamic-symbol=ggml_vec_dot_q5_0_q8_0 \
                 -Wl,--export-dynamic-symbol=ggml_compute_forward_flash_attn_ext \
                 -Wl,--export-dynamic-symbol=ggml_cpu_extra_compute_forward \
                 -Wl,--export-dynamic-symbol=ggml_barrier \
                 -Wl,--export-dynamic-symbol=ggml_graph_compute \
                 -Wl,--export-dynamic-symbol=ggml_gemm_q4_K_8x8_q8_K \
                 -Wl,--export-dynamic-symbol=ggml_gemm_q2_K_8x8_q8_K \
                 -Wl,--export-dynamic-symbol=quantize_row_q8_K_ref
CLI_OBJ    = $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRC) $(CORE_SRC))

UNIT_SRC   = $(wildcard tests/unit/test_*.c)
UNIT_BIN   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all test test-only check unit e2e clean setup run bench bench-kernels
all: $(BUILD)/hearthd $(BUILD)/hearth-worker $(BUILD)/hearth-worker-asr $(BUILD)/hearth-worker-ocr \
     $(BUILD)/hearth

# V=1 shows the full command lines
Q = $(if $(V),,@)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CXX     $<")
	$(Q)$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/hearthd: $(DAEMON_OBJ)
	@$(if $(V),,echo "  LINK    $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(MHD_LIBS) -lsqlite3

$(BUILD)/hearth-worker: $(WORKER_OBJ)
	@$(if $(V),,echo "  LINK    $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(KERNEL_EXPORTS) $(LLAMA_LIBS) -ldl -lstdc++

$(BUILD)/obj/src/worker/worker_main-%.o: src/worker/worker_main.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $< ($*)")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -DW_$(shell echo $* | tr a-z A-Z)=1 -MMD -MP -c $< -o $@

$(BUILD)/hearth-worker-asr: $(ASR_WORKER_OBJ)
	@$(if $(V),,echo "  LINK    $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(PRIV_LINK) $(WHISPER_LIBS) -lggml -lggml-base $(FFMPEG_LIBS) $(ZLIB_LIBS)

$(BUILD)/hearth-worker-ocr: $(OCR_WORKER_OBJ)
	@$(if $(V),,echo "  LINK    $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(OCR_LIBS)

$(BUILD)/hearth: $(CLI_OBJ)
	@$(if $(V),,echo "  LINK    $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(CURL_LIBS) $(GGML_LIBS)

# Unit tests: one binary per module; they may #include the .c under test.
$(BUILD)/tests/test_%: tests/unit/test_%.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/worker/wire.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL)

# the grammar test runs llama.cpp's grammar sampler on stories260K's vocabulary
$(BUILD)/tests/test_grammar: tests/unit/test_grammar.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC)) \
                            $(BUILD)/obj/src/engine/sample_safe.o
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) $(LLAMA_LIBS) -ldl -lstdc++

# the kernels' test loads ggml's CPU backend to check them against its own
$(BUILD)/tests/test_kernels: tests/unit/test_kernels.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/engine/kernels.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) $(GGML_LIBS) -ldl

# and so does the Q4_K kernel's
$(BUILD)/tests/test_kquant: tests/unit/test_kquant.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/engine/kernels.c src/engine/kquant.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) $(GGML_LIBS) -ldl

# and the F16 rows kernel's
$(BUILD)/tests/test_kfloat: tests/unit/test_kfloat.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/engine/kernels.c src/engine/kfloat.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) $(GGML_LIBS) -ldl

# and the Q8_K conversion's, exported as the worker does, so that the CPU
# backend's calls reach it
$(BUILD)/tests/test_q8k: tests/unit/test_q8k.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/engine/kernels.c src/engine/q8k.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) \
	    -Wl,--export-dynamic-symbol=quantize_row_q8_K_ref $(GGML_LIBS) -ldl

# the attention test runs graphs through ggml's executor, which must reach
# the test's own definition of the operator, as the worker's
$(BUILD)/tests/test_attn: tests/unit/test_attn.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/engine/kernels.c src/engine/attn.c src/engine/attnp.c src/engine/cpuexec.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) \
	    -Wl,--export-dynamic-symbol=ggml_compute_forward_flash_attn_ext $(GGML_LIBS) -ldl

# the single-row products' test, likewise, with the kernels exported too
$(BUILD)/tests/test_mulmat: tests/unit/test_mulmat.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/engine/kernels.c src/engine/kquant.c src/engine/kfloat.c src/engine/q8k.c src/engine/mulmat.c src/engine/kgemm.c src/engine/pace.c src/engine/cpuexec.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) \
	    $(KERNEL_EXPORTS) $(GGML_LIBS) -ldl

# the barrier's test, likewise (the products tell it what comes next)
$(BUILD)/tests/test_pace: tests/unit/test_pace.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/engine/kernels.c src/engine/kquant.c src/engine/kfloat.c src/engine/q8k.c src/engine/mulmat.c src/engine/kgemm.c src/engine/pace.c src/engine/cpuexec.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) \
	    $(KERNEL_EXPORTS) $(GGML_LIBS) -ldl

# the batch jobs' store, on a real SQLite file
$(BUILD)/tests/test_store: tests/unit/test_store.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) $(SQL_SRC) src/queue/store.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) -lsqlite3

# the retrieval index: text, search and its SQLite file (a real one)
$(BUILD)/tests/test_index: tests/unit/test_index.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) $(SQL_SRC) src/index/text.c src/index/db.c src/index/vcache.c src/index/search.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) -lsqlite3 -lm

# the index's inotify watches by folder, on real folders
$(BUILD)/tests/test_watches: tests/unit/test_watches.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/index/watches.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL)

# the ignore rules of the index's walk (gitignore syntax), with files on disk
$(BUILD)/tests/test_ignore: tests/unit/test_ignore.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/index/ignore.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL)

E2E_BIN = $(BUILD)/tests/e2e_api $(BUILD)/tests/e2e_supervise $(BUILD)/tests/e2e_embed \
          $(BUILD)/tests/e2e_audio $(BUILD)/tests/e2e_ocr $(BUILD)/tests/e2e_jobs \
          $(BUILD)/tests/e2e_index
$(BUILD)/tests/e2e_%: tests/e2e/e2e_%.c tests/e2e/harness.h $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC))
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) $(CURL_LIBS)

unit: $(UNIT_BIN)
e2e: all $(E2E_BIN)

# Installs what the build needs (idempotent; seconds when already done).
setup:
	scripts/setup.sh

# The README's commands. Each runs setup first, then re-enters make so the
# pkg-config lookups above see the freshly installed libraries.
test: setup
	$(MAKE) test-only

test-only: all unit e2e
	BUILD=$(BUILD) tests/run.sh

# Sanitizer build: everything rebuilt under build-san with ASan+UBSan.
check: setup
	$(MAKE) BUILD=build-san SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" OPT="-O1 -g" test-only

$(BUILD)/bench/bench: bench/bench.c tests/e2e/harness.h $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC))
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) $(CURL_LIBS)

# One core's rate of each decode kernel, hearth's and ggml's, from cache and
# from memory (which kernels a decode step waits on, on this machine).
$(BUILD)/bench/kspeed: bench/kspeed.c $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) src/engine/kernels.c src/engine/kquant.c src/engine/kfloat.c)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) $(BACKENDS_DEF) -o $@ $< $(filter %.o,$^) $(LDFLAGS_ALL) $(GGML_LIBS) -ldl

bench-kernels: setup
	$(MAKE) $(BUILD)/bench/kspeed
	$(BUILD)/bench/kspeed

# Benchmarks against llama-server in one run (bench/run.sh; under 20 minutes).
bench:
	scripts/setup.sh --bench
	$(MAKE) all $(BUILD)/bench/bench
	BUILD=$(BUILD) bench/run.sh

MODEL ?= ../shared/models/stories260K.gguf
run: setup
	$(MAKE) all
	$(BUILD)/hearthd --model $(basename $(notdir $(MODEL)))=$(MODEL)

clean:
	rm -rf build build-san

# dependency files are written by the compiler, never remade by a rule
%.d: ;
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# libFuzzer for a bounded time each, `make fuzz FUZZ_SECONDS=600`: the GGUF
# validator, request bodies, and what the search index reads (text, HTML,
# queries, ignore rules). Seeds come from tests/fuzz/seeds*; the growing
# corpus and any crash artifacts stay under build/fuzz.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz:
	@mkdir -p build/fuzz/corpus_gguf
	clang -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc -o build/fuzz/fuzz_gguf tests/fuzz/fuzz_gguf.c src/core/gguf.c src/core/binreader.c src/core/buf.c
	build/fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -artifact_prefix=build/fuzz/ build/fuzz/corpus_gguf tests/fuzz/seeds
	@mkdir -p build/fuzz/corpus_request
	clang -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc -o build/fuzz/fuzz_request tests/fuzz/fuzz_request.c src/http/genreq.c src/http/toolcall.c src/core/jsonschema.c src/core/json.c src/core/arena.c src/core/buf.c src/core/utf8.c
	build/fuzz/fuzz_request -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -artifact_prefix=build/fuzz/ build/fuzz/corpus_request tests/fuzz/seeds-request
	@mkdir -p build/fuzz/corpus_index
	clang -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc -o build/fuzz/fuzz_index tests/fuzz/fuzz_index.c src/index/text.c src/index/search.c src/index/ignore.c src/index/db.c src/index/vcache.c src/core/sql.c src/core/log.c src/core/json.c src/core/arena.c src/core/buf.c src/core/utf8.c -lsqlite3 -lm
	build/fuzz/fuzz_index -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=16384 -artifact_prefix=build/fuzz/ build/fuzz/corpus_index tests/fuzz/seeds-index

# ---- speech to text: whisper.cpp + FFmpeg, linked into the worker only ------
# (engine/asr.c, engine/audio.c). whisper from pkg-config when the system has
# it, else from the private prefix next to llama (same -L/rpath as LLAMA_LIBS).
FFMPEG_CFLAGS := $(shell pkg-config --cflags libavformat libavcodec libswresample libavutil)
FFMPEG_LIBS   := $(shell pkg-config --libs libavformat libavcodec libswresample libavutil)
ZLIB_LIBS     := $(shell pkg-config --libs zlib 2>/dev/null || echo -lz)
ifeq ($(shell pkg-config --exists whisper 2>/dev/null && echo yes),yes)
  WHISPER_CFLAGS := $(shell pkg-config --cflags whisper)
  WHISPER_LIBS   := $(shell pkg-config --libs whisper)
else
  WHISPER_CFLAGS :=
  WHISPER_LIBS   := -lwhisper
endif
CFLAGS     += $(FFMPEG_CFLAGS) $(WHISPER_CFLAGS)
