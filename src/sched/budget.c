/*
 * budget.c: estimates and measurements for the memory budget; see budget.h.
 */
#include "sched/budget.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* An encoder has no KV cache: one batch of sequences (at least one full
 * context) with full attention scores per head. */
static uint64_t estimate_embedding(const gguf_info *gi, const config *cfg)
{
    uint64_t embd = gi->n_embd, ff = gi->n_ff ? gi->n_ff : 4 * gi->n_embd;
    uint64_t heads = gi->n_head ? gi->n_head : 1;
    uint64_t batch = (uint64_t)cfg->batch_size;
    if (gi->n_ctx_train && batch < gi->n_ctx_train)
        batch = gi->n_ctx_train;
    uint64_t compute = batch * (3 * ff + 8 * embd) * 4 + heads * batch * batch * 4;
    uint64_t total = gi->tensor_bytes + compute + BUDGET_RUNTIME_BYTES;
    return total + total / 25;
}

uint64_t budget_estimate(const gguf_info *gi, const config *cfg)
{
    if (gguf_arch_is_embedding(gi->arch))
        return estimate_embedding(gi, cfg);
    uint64_t layers = gi->n_layer, embd = gi->n_embd;
    uint64_t heads = gi->n_head ? gi->n_head : 1;
    uint64_t kv_heads = gi->n_head_kv ? gi->n_head_kv : heads;
    uint64_t head_dim = embd / heads;
    uint64_t k_len = gi->key_length ? gi->key_length : head_dim;
    uint64_t v_len = gi->value_length ? gi->value_length : head_dim;
    uint64_t ctx = (uint64_t)cfg->ctx_size;
    if (gi->n_ctx_train && ctx > gi->n_ctx_train)
        ctx = gi->n_ctx_train;
    /* llama.cpp pads each sequence's cache to 256 cells */
    ctx = (ctx + 255) / 256 * 256;
    uint64_t slots = (uint64_t)cfg->parallel;
    uint64_t kv = layers * kv_heads * (k_len + v_len) * 2 * ctx * slots;
    uint64_t batch = (uint64_t)cfg->batch_size;
    uint64_t vocab = gi->n_vocab ? gi->n_vocab : 32000;
    uint64_t ff = gi->n_ff ? gi->n_ff : 4 * embd;
    /* What one micro-batch of the graph actually touches (llama.cpp reserves
     * more: logits for every row, but only output rows are ever written):
     * within a layer the feed-forward gate, up and product (3 x n_ff wide),
     * about eight embedding-wide temporaries (norm, Q, K, V, attention out,
     * residuals), the F16 attention mask over one sequence's cells, and the
     * logits of at most one row per slot. Checked against measured peaks of
     * the test models (tests/e2e/e2e_supervise.c, estimate_error). */
    uint64_t compute = batch * (3 * ff + 8 * embd) * 4 + ctx * batch * 2 + (slots + 1) * vocab * 4;
    uint64_t output = slots * vocab * 4;
    uint64_t total = gi->tensor_bytes + kv + compute + output + BUDGET_RUNTIME_BYTES;
    /* a float model's prompts run on the BLAS backend: OpenBLAS itself, and
     * ggml's copy of the largest layer matrix it has converted to F32; with
     * 32 or more slots the output matrix reaches it too (32+ logits rows) */
    if (gguf_is_float_chat_model(gi) && strcmp(cfg->blas, "off") != 0) {
        uint64_t out32 = 0;
        if (slots >= 32 && __builtin_mul_overflow(vocab, embd * 4, &out32))
            out32 = UINT64_MAX / 4;
        uint64_t blas_threads = cfg->threads > 0 ? (uint64_t)cfg->threads
                                                 : (uint64_t)sysconf(_SC_NPROCESSORS_ONLN);
        total += BUDGET_BLAS_BYTES * blas_threads + 2 * gi->largest_float_matrix_bytes + out32;
    }
    /* 4% over: the budget needs an upper bound, the tests allow 10% */
    return total + total / 25;
}

uint64_t budget_estimate_whisper(const whisper_file_info *wi)
{
    uint64_t ctx = (uint64_t)wi->n_audio_ctx, st = (uint64_t)wi->n_audio_state;
    uint64_t heads = (uint64_t)wi->n_audio_head;
    uint64_t compute = heads * ctx * ctx * 4 + ctx * st * 4 * 16;
    uint64_t cross = (uint64_t)wi->n_text_layer * ctx * (uint64_t)wi->n_text_state * 2 * 2;
    uint64_t audio = 3600ull * 16000 * 4;      /* the longest recording, decoded (asr.h) */
    uint64_t total = wi->weights_bytes + compute + cross + audio + BUDGET_RUNTIME_BYTES;
    return total + total / 25;
}

uint64_t budget_estimate_ocr(void)
{
    return 192ull << 20;
}

uint64_t budget_hard_limit(uint64_t estimate)
{
    /* RLIMIT_DATA counts reserved address space, not resident memory, and
     * ggml/whisper reserve buffers they never touch (a whisper-tiny worker
     * maps ~690 MiB to use ~140): 50% + 1 GiB of headroom */
    return estimate + estimate / 2 + (1ull << 30);
}

uint64_t budget_physical_ram(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
}

uint64_t budget_rss(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long size = 0, res = 0;
    int n = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    if (n != 2)
        return 0;
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

void budget_human(uint64_t b, char *out, size_t n)
{
    if (b >= (1ull << 30))
        snprintf(out, n, "%.2f GiB", (double)b / (double)(1ull << 30));
    else
        snprintf(out, n, "%.1f MiB", (double)b / (double)(1ull << 20));
}
