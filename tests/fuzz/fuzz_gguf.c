/*
 * fuzz_gguf.c: libFuzzer entry point for the GGUF header validator.
 *
 * Feeds each input to gguf_check_buffer, which must accept or refuse it
 * without crashing, reading out of bounds or leaking (ASan/UBSan watch).
 * On acceptance the reported facts must be self-consistent. Run with
 * `make fuzz` (seeds in tests/fuzz/seeds; corpus kept in build/fuzz).
 */
#include "core/gguf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_info in;
    char err[160];

    if (gguf_check_buffer(data, size, &in, err, sizeof err) == 0) {
        /* what an accepted file reports must hold together */
        if (in.file_size != size || in.data_offset > size ||
            in.tensor_bytes > size - (in.n_tensors ? in.data_offset : size) ||
            in.largest_tensor_bytes > in.tensor_bytes ||
            in.n_tensors > HGGUF_MAX_TENSORS || in.n_kv > HGGUF_MAX_KV ||
            memchr(in.arch, '\0', sizeof in.arch) == NULL)
            abort();
    } else if (err[0] == '\0' || memchr(err, '\n', strlen(err))) {
        abort();                            /* a refusal always says why, on one line */
    }
    return 0;
}
