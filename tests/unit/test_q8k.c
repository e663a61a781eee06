/*
 * test_q8k.c: unit tests for src/engine/q8k.{h,c}: hearth's conversion of
 * float rows to Q8_K blocks gives ggml's bytes (libggml-base's own
 * quantize_row_q8_K_ref) on rows of every width a model has, on
 * activations of any scale, and on the blocks that take a branch (ties of
 * sign, zeros, halves, subnormals, infinities, NaNs); the decision follows
 * the mode; and the real CPU backend's conversion reaches hearth's through
 * the exported name.
 */
#include "check.h"
#include "engine/backends.h"
#include "engine/kernels.h"
#include "engine/q8k.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { BLOCK = 292 };

static bool g_avx512;
static uint32_t g_seed = 1234;

static float uniform(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)(g_seed >> 8) / 8388608.0f - 1.0f;
}

/* ggml's and hearth's blocks for the k floats at x: the same bytes, over
 * outputs that start as the same non-zero bytes (a byte left as it was
 * counts too) */
static bool same(const float *x, int64_t k)
{
    size_t n = (size_t)(k / 256) * BLOCK;
    uint8_t *a = malloc(n), *b = malloc(n);
    memset(a, 0xA5, n);
    memset(b, 0xA5, n);
    q8k_ggml()(x, a, k);
    q8k_quantize(x, b, k);
    bool ok = memcmp(a, b, n) == 0;
    if (!ok)
        for (size_t i = 0; i < n; i++)
            if (a[i] != b[i]) {
                fprintf(stderr, "  first difference at byte %zu of block %zu: %d != %d\n",
                        i % BLOCK, i / BLOCK, a[i], b[i]);
                break;
            }
    free(a);
    free(b);
    return ok;
}

TEST(ggml_reference_found)
{
    CHECK(q8k_ggml() != NULL);
}

TEST(init_follows_mode_and_cpu)
{
    CHECK(!q8k_init("off"));
    CHECK(!q8k_active());
    CHECK(q8k_init("auto") == g_avx512);
    CHECK(q8k_active() == g_avx512);
    CHECK(q8k_init(NULL) == g_avx512);
    q8k_init("off");
    CHECK(!q8k_active());
}

/* rows as wide as layer inputs (896 is not a multiple of 256: 768 and
 * 1024 stand on each side), scaled from 1e-6 to 1e4, with outliers */
TEST(rows_match_ggml)
{
    if (!g_avx512)
        return;
    static const int widths[] = { 256, 768, 1024, 2048, 4864 / 256 * 256, 8192, 16384 };
    float *x = malloc(sizeof(float) * 16384);
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
        for (int round = 0; round < 12; round++) {
            float scale = powf(10.0f, (float)(round % 11) - 6.0f);
            for (int i = 0; i < widths[w]; i++) {
                float u = uniform();
                x[i] = scale * u * (round % 3 == 0 && i % 97 == 5 ? 40.0f : 1.0f);
            }
            CHECK(same(x, widths[w]));
        }
    free(x);
}

TEST(branch_blocks_match_ggml)
{
    if (!g_avx512)
        return;
    float x[256];
    /* the largest magnitude twice, with both signs: the first one's sign */
    for (int order = 0; order < 2; order++) {
        for (int i = 0; i < 256; i++)
            x[i] = uniform();
        x[17] = order ? -5.0f : 5.0f;
        x[230] = order ? 5.0f : -5.0f;
        CHECK(same(x, 256));
    }
    /* the largest magnitude last, and first */
    for (int i = 0; i < 256; i++)
        x[i] = uniform();
    x[255] = -9.0f;
    CHECK(same(x, 256));
    x[0] = 9.5f;
    CHECK(same(x, 256));
    /* a tie of signs inside one 16-lane vector */
    for (int i = 0; i < 256; i++)
        x[i] = uniform();
    x[33] = -7.0f;
    x[38] = 7.0f;
    CHECK(same(x, 256));
    /* subnormals against a finite scale (the products stay subnormal) */
    for (int i = 0; i < 256; i++)
        x[i] = ldexpf((float)(i % 29) - 14.0f, -136);
    x[77] = ldexpf(-1.0f, -119);
    CHECK(same(x, 256));
    /* zeros, and signed zeros */
    memset(x, 0, sizeof x);
    CHECK(same(x, 256));
    for (int i = 0; i < 256; i += 2)
        x[i] = -0.0f;
    CHECK(same(x, 256));
    /* every quant on a rounding edge: k + 0.5 after scaling */
    for (int i = 0; i < 256; i++)
        x[i] = ((float)(i % 255) - 127.0f) + 0.5f * (float)(i % 2);
    x[3] = -127.0f;
    CHECK(same(x, 256));
    /* one value, all equal, and subnormals */
    for (int i = 0; i < 256; i++)
        x[i] = -1e-3f;
    CHECK(same(x, 256));
    for (int i = 0; i < 256; i++)
        x[i] = ldexpf((float)(i % 13) - 6.0f, -146);
    CHECK(same(x, 256));
    /* huge values (the scale's reciprocal is tiny) */
    for (int i = 0; i < 256; i++)
        x[i] = 3e38f * uniform();
    CHECK(same(x, 256));
    /* an infinity and a NaN: ggml's code for that block, hearth's for the others */
    float row[768];
    for (int i = 0; i < 768; i++)
        row[i] = uniform();
    row[300] = INFINITY;
    CHECK(same(row, 768));
    row[300] = 0.25f;
    row[700] = NAN;
    CHECK(same(row, 768));
    row[5] = -INFINITY;
    CHECK(same(row, 768));
}

/* The CPU backend's quantize_row_q8_K jumps to quantize_row_q8_K_ref through
 * its PLT; with the name exported, that is hearth's when on (its count of
 * rows goes up) and ggml's when off; the bytes are ggml's either way. */
TEST(backend_reaches_hearth)
{
    void (*conv)(const float *, void *, int64_t) =
        (void (*)(const float *, void *, int64_t))kernels_backend_symbol("quantize_row_q8_K");
    CHECK(conv != NULL);
    if (!conv)
        return;
    float x[512];
    for (int i = 0; i < 512; i++)
        x[i] = uniform();
    uint8_t y[2 * BLOCK], want[2 * BLOCK];
    q8k_ggml()(x, want, 512);
    for (int on = 0; on < 2; on++) {
        q8k_init(on ? "auto" : "off");
        long before = q8k_calls();
        conv(x, y, 512);
        CHECK_EQ_INT(q8k_calls() - before, on && g_avx512 ? 1 : 0);
        CHECK(memcmp(y, want, sizeof y) == 0);
    }
    q8k_init("off");
}

int main(void)
{
    backends_load();
    g_avx512 = kernels_cpu_ok();
    RUN(ggml_reference_found);
    RUN(init_follows_mode_and_cpu);
    RUN(rows_match_ggml);
    RUN(branch_blocks_match_ggml);
    RUN(backend_reaches_hearth);
    return check_summary();
}
