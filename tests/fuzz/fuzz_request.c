/*
 * fuzz_request.c: libFuzzer on what every HTTP request body goes through:
 * the JSON parser (with the arena cap) and the OpenAI request validation for
 * chat and completions (with response_format's JSON schemas and tools turned
 * into grammars). Anything it accepts must re-serialise to JSON that parses
 * again. The same bytes, as a model's output, go through the tool-call
 * splitter, whose calls must be JSON too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "http/genreq.h"
#include "http/toolcall.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena *a = arena_new(size * 16 + (1u << 20));
    char err[128];
    const json *v = json_parse(a, (const char *)data, size, err, sizeof err);
    if (v) {
        buf b = buf_make(0);
        if (jw_value(&b, v) == 0) {
            arena *a2 = arena_new(b.len * 16 + (1u << 20));
            if (!json_parse(a2, b.data ? b.data : "", b.len, err, sizeof err))
                abort();        /* what we wrote must read back */
            arena_free(a2);
        }
        buf_free(&b);
    }
    arena_free(a);
    for (int k = 0; k < 2; k++) {
        gen_request g;
        gen_error e;
        if (genreq_parse(k ? GEN_COMPLETION : GEN_CHAT, (const char *)data, size, &g, &e) == 0) {
            /* the internal request handed to the worker is valid JSON */
            arena *a3 = arena_new(g.payload.len * 16 + (1u << 20));
            if (!json_parse(a3, g.payload.data, g.payload.len, err, sizeof err))
                abort();
            arena_free(a3);
            buf_free(&g.payload);
        } else if (e.status != 400 || !e.message[0]) {
            abort();            /* every refusal is a 400 with a message */
        }
    }
    /* as generated text: content and calls split, fed in two pieces */
    toolcall_stream t;
    tcs_init(&t);
    buf content = buf_make(0), calls = buf_make(0);
    tcs_feed(&t, (const char *)data, size / 2, &content);
    tcs_feed(&t, (const char *)data + size / 2, size - size / 2, &content);
    if (tcs_end(&t, "r", true, &content, &calls) > 0) {
        arena *a4 = arena_new(calls.len * 16 + (1u << 20));
        if (!json_parse(a4, calls.data, calls.len, err, sizeof err))
            abort();
        arena_free(a4);
    } else if (content.len != size) {
        abort();            /* no calls: every byte comes back as content */
    }
    buf_free(&content);
    buf_free(&calls);
    tcs_free(&t);
    return 0;
}
