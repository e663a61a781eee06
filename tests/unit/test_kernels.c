/*
 * test_kernels.c: unit tests for src/engine/kernels.{h,c}: hearth's Q4_0
 * and Q8_0 kernels give ggml's results (its plain-C reference and its own optimized
 * kernels, both from the real CPU backend) on every shape ggml hands them,
 * on extreme values, and the entry points under ggml's names forward to
 * ggml's own kernels when hearth's are off.
 */
#include "check.h"
#include "engine/backends.h"
#include "engine/kernels.h"

#include <ggml-backend.h>
#include <ggml.h>
#include <math.h>
#include <stdint.h>
#include <string.h>


enum { WBLOCK = 144, ABLOCK4 = 136, ABLOCK1 = 34 };

static kernels_fn g_ggml[4];    /* gemv, gemm, reference gemv, reference gemm */
static kernels_dot_fn g_dot8[2]; /* Q8_0 dot product: ggml's, its reference */
static kernels_dot_fn g_dot5[2]; /* Q5_0 */
static bool g_vnni;

static uint32_t g_seed = 1;
static uint32_t rnd(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return g_seed >> 8;
}

/* an fp16 scale: random mantissa, exponent near 2^-6, either sign */
static uint16_t scale(bool may_be_negative)
{
    uint16_t h = (uint16_t)(((8u + rnd() % 3) << 10) | (rnd() & 0x3FF));
    if (may_be_negative && (rnd() & 1))
        h |= 0x8000;
    return h;
}

/* bytes: random, or (extreme) only the largest magnitudes */
static void quants(uint8_t *p, size_t n, bool is_act, bool extreme)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t v = (uint8_t)rnd();
        if (extreme)
            v = is_act ? ((rnd() & 1) ? 127 : (uint8_t)-127) : ((rnd() & 1) ? 0x00 : 0xFF);
        if (is_act && v == 0x80)        /* ggml quantizes activations to -127..127 */
            v = 0x81;
        p[i] = v;
    }
}

static uint8_t *weights(int n, int nc, bool extreme)
{
    int nb = n / 32;
    uint8_t *w = malloc((size_t)nc / 8 * nb * WBLOCK);
    for (int b = 0; b < nc / 8 * nb; b++) {
        uint8_t *blk = w + (size_t)b * WBLOCK;
        for (int j = 0; j < 8; j++) {
            uint16_t h = scale(true);
            memcpy(blk + 2 * j, &h, 2);
        }
        quants(blk + 16, 128, false, extreme);
    }
    return w;
}

static uint8_t *acts4(int n, int nr, bool extreme)
{
    int nb = n / 32;
    uint8_t *a = malloc((size_t)nr / 4 * nb * ABLOCK4);
    for (int b = 0; b < nr / 4 * nb; b++) {
        uint8_t *blk = a + (size_t)b * ABLOCK4;
        for (int m = 0; m < 4; m++) {
            uint16_t h = scale(false);
            memcpy(blk + 2 * m, &h, 2);
        }
        quants(blk + 8, 128, true, extreme);
    }
    return a;
}

static uint8_t *acts1(int n, bool extreme)
{
    int nb = n / 32;
    uint8_t *a = malloc((size_t)nb * ABLOCK1);
    for (int b = 0; b < nb; b++) {
        uint16_t h = scale(false);
        memcpy(a + (size_t)b * ABLOCK1, &h, 2);
        quants(a + (size_t)b * ABLOCK1 + 2, 32, true, extreme);
    }
    return a;
}

/* worst |got - want|, relative to the largest |want| (+1): rounding in a
 * long float sum scales with its terms, not with a result that cancels */
static double worst(const float *got, const float *want, size_t n)
{
    double w = 0, top = 0;
    for (size_t i = 0; i < n; i++)
        top = fmax(top, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (top + 1.0);
        if (!(e <= w))
            w = isnan(e) ? INFINITY : e;
    }
    return w;
}

#define TOL 1e-5

TEST(backend_exports_what_hearth_replaces)
{
    CHECK(g_ggml[0] != NULL);
    CHECK(g_ggml[1] != NULL);
    CHECK(g_ggml[2] != NULL);
    CHECK(g_ggml[3] != NULL);
    CHECK(g_dot8[0] != NULL);
    CHECK(g_dot8[1] != NULL);
}

TEST(init_follows_mode_and_cpu)
{
    CHECK(!kernels_init("off"));
    CHECK(!kernels_active());
    CHECK(kernels_init("auto") == g_vnni);
    CHECK(kernels_active() == g_vnni);
    CHECK(kernels_init(NULL) == g_vnni);
    CHECK(kernels_active_for("Q4_0") == g_vnni);
    CHECK(kernels_active_for("Q8_0") == g_vnni);
    CHECK(kernels_active_for("Q5_0") == g_vnni);
    CHECK(kernels_q5_0_active() == g_vnni);
    CHECK(kernels_q5_0_gemv_active() == g_vnni);
    CHECK(kernels_q8_0_gemv_active() == g_vnni);
    CHECK(!kernels_active_for("F16"));
}

/* the shapes of real layers (0.5B and 1B llama, MiniLM), odd block counts,
 * one column group, and prompt-sized row counts */
static const struct { int n, nc, nr; } shapes[] = {
    { 32, 8, 4 },     { 64, 16, 8 },     { 896, 128, 4 },  { 896, 4864, 4 }, { 4864, 896, 8 },
    { 2048, 256, 12 }, { 8192, 64, 4 },  { 896, 1152, 64 }, { 384, 1536, 36 }, { 96, 24, 16 },
};

TEST(gemm_matches_ggml)
{
    if (!g_vnni) {
        printf("  (no AVX-512 VNNI here: hearth's kernels cannot run)\n");
        return;
    }
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        for (int extreme = 0; extreme < 2; extreme++) {
            int n = shapes[k].n, nc = shapes[k].nc, nr = shapes[k].nr;
            uint8_t *w = weights(n, nc, extreme), *a = acts4(n, nr, extreme);
            size_t out = (size_t)nr * nc;
            float *ref = calloc(out, 4), *opt = calloc(out, 4), *got = calloc(out, 4);
            g_ggml[3](n, ref, nc, w, a, nr, nc);
            g_ggml[1](n, opt, nc, w, a, nr, nc);
            kernels_gemm_q4_0(n, got, nc, w, a, nr, nc);
            double e_ref = worst(got, ref, out), e_opt = worst(got, opt, out);
            if (!(e_ref < TOL && e_opt < TOL))
                fprintf(stderr, "  gemm n=%d nc=%d nr=%d extreme=%d: %.2e vs reference, %.2e vs "
                        "ggml\n", n, nc, nr, extreme, e_ref, e_opt);
            CHECK(e_ref < TOL);
            CHECK(e_opt < TOL);
            free(w), free(a), free(ref), free(opt), free(got);
        }
    }
}

TEST(gemv_matches_ggml)
{
    if (!g_vnni)
        return;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        for (int extreme = 0; extreme < 2; extreme++) {
            int n = shapes[k].n, nc = shapes[k].nc;
            uint8_t *w = weights(n, nc, extreme), *a = acts1(n, extreme);
            float *ref = calloc(nc, 4), *opt = calloc(nc, 4), *got = calloc(nc, 4);
            g_ggml[2](n, ref, nc, w, a, 1, nc);
            g_ggml[0](n, opt, nc, w, a, 1, nc);
            kernels_gemv_q4_0(n, got, nc, w, a, 1, nc);
            CHECK(worst(got, ref, nc) < TOL);
            CHECK(worst(got, opt, nc) < TOL);
            free(w), free(a), free(ref), free(opt), free(got);
        }
    }
}

/* A gemm writes exactly its nr x nc outputs at row stride bs: the padding
 * between rows (bs > nc) is left as it was. */
TEST(gemm_respects_row_stride)
{
    if (!g_vnni)
        return;
    int n = 256, nc = 32, nr = 8, bs = 40;
    uint8_t *w = weights(n, nc, false), *a = acts4(n, nr, false);
    float *ref = malloc((size_t)nr * bs * 4), *got = malloc((size_t)nr * bs * 4);
    for (int i = 0; i < nr * bs; i++)
        ref[i] = got[i] = -12345.0f;
    g_ggml[3](n, ref, bs, w, a, nr, nc);
    kernels_gemm_q4_0(n, got, bs, w, a, nr, nc);
    CHECK(worst(got, ref, (size_t)nr * bs) < TOL);
    for (int r = 0; r < nr; r++)
        for (int c = nc; c < bs; c++)
            CHECK(got[r * bs + c] == -12345.0f);
    free(w), free(a), free(ref), free(got);
}

/* Q8_0 rows (block_q8_0: fp16 scale, 32 int8); weights may hold any byte,
 * -128 included, activations are -127..127 as ggml quantizes them. */
static uint8_t *rows8(int n, int rows, bool is_act, bool extreme)
{
    int nb = n / 32;
    uint8_t *r = malloc((size_t)rows * nb * ABLOCK1);
    for (int b = 0; b < rows * nb; b++) {
        uint16_t h = scale(!is_act);
        memcpy(r + (size_t)b * ABLOCK1, &h, 2);
        uint8_t *q = r + (size_t)b * ABLOCK1 + 2;
        quants(q, 32, is_act, false);
        if (extreme)
            for (int i = 0; i < 32; i++)
                q[i] = is_act ? ((rnd() & 1) ? 127 : (uint8_t)-127)
                              : ((rnd() & 1) ? 127 : 0x80);
    }
    return r;
}

/* every block count from 1 to 20 (the 4-, 2- and 1-block paths), then the
 * rows of real layers */
TEST(q8_0_dot_matches_ggml)
{
    if (!g_vnni)
        return;
    static const int lens[] = { 384, 896, 1536, 2048, 4864, 8192 };
    for (int k = -20; k < (int)(sizeof lens / sizeof lens[0]); k++) {
        int n = k < 0 ? -k * 32 : lens[k], rows = 16;
        for (int extreme = 0; extreme < 2; extreme++) {
            uint8_t *x = rows8(n, rows, false, extreme), *y = rows8(n, 1, true, extreme);
            float ref[16], opt[16], got[16];
            for (int r = 0; r < rows; r++) {
                const uint8_t *xr = x + (size_t)r * (n / 32) * ABLOCK1;
                g_dot8[1](n, &ref[r], 0, xr, 0, y, 0, 1);
                g_dot8[0](n, &opt[r], 0, xr, 0, y, 0, 1);
                kernels_vec_dot_q8_0(n, &got[r], xr, y);
            }
            /* the decode kernel: the whole matrix against the row, the dot
             * product's bits; and a window of rows from the middle */
            float all[16], mid[16];
            kernels_q8_0_gemv(n, all, x, (size_t)(n / 32) * ABLOCK1, rows, y);
            CHECK(memcmp(all, got, sizeof all) == 0);
            kernels_q8_0_gemv(n, mid, x + (size_t)5 * (n / 32) * ABLOCK1, (size_t)(n / 32) * ABLOCK1,
                              7, y);
            CHECK(memcmp(mid, got + 5, 7 * sizeof(float)) == 0);
            double e_ref = worst(got, ref, rows), e_opt = worst(got, opt, rows);
            if (!(e_ref < TOL && e_opt < TOL))
                fprintf(stderr, "  q8_0 n=%d extreme=%d: %.2e vs reference, %.2e vs ggml\n", n,
                        extreme, e_ref, e_opt);
            CHECK(e_ref < TOL);
            /* ggml's own kernel negates activations by the weights' sign
             * bytes, which is off for a weight of -128: compare off those */
            if (!extreme)
                CHECK(e_opt < TOL);
            free(x), free(y);
        }
    }
}

/* The rows kernels fetch into L1 or L2 as the environment says (else by
 * the CPU), and where they fetch does not change a bit of what they give. */
TEST(rows_fetch_follows_environment)
{
    if (!g_vnni)
        return;
    const char *user = getenv("HEARTH_ROWS_FETCH");
    char *saved = user ? strdup(user) : NULL;
    const int n = 2048, rows = 16;
    uint8_t *x = rows8(n, rows, false, false), *y = rows8(n, 1, true, false);
    float got[2][16];
    const char *modes[] = { "l1", "l2" };
    for (int m = 0; m < 2; m++) {
        setenv("HEARTH_ROWS_FETCH", modes[m], 1);
        CHECK(kernels_init("auto"));
        CHECK(kernels_rows_fetch_l2() == (m == 1));
        kernels_q8_0_gemv(n, got[m], x, (size_t)(n / 32) * ABLOCK1, rows, y);
    }
    CHECK(memcmp(got[0], got[1], sizeof got[0]) == 0);
    /* anything else is refused (with a warning) and the CPU decides */
    setenv("HEARTH_ROWS_FETCH", "L3", 1);
    kernels_init("auto");
    bool by_cpu = kernels_rows_fetch_l2();
    unsetenv("HEARTH_ROWS_FETCH");
    kernels_init("auto");
    CHECK(kernels_rows_fetch_l2() == by_cpu);
    if (saved)
        setenv("HEARTH_ROWS_FETCH", saved, 1);
    free(saved);
    free(x), free(y);
}

/* Q5_0 rows: random nibbles and fifth bits (all set when extreme: every
 * element 15 or 31), scales of either sign. */
static uint8_t *rows5(int n, int rows, bool extreme)
{
    int nb = n / 32;
    uint8_t *r = malloc((size_t)rows * nb * 22);
    for (int b = 0; b < rows * nb; b++) {
        uint8_t *blk = r + (size_t)b * 22;
        uint16_t h = scale(true);
        memcpy(blk, &h, 2);
        for (int i = 2; i < 22; i++)
            blk[i] = extreme ? 0xFF : (uint8_t)rnd();
    }
    return r;
}

/* One width of Q5_0 rows: the dot product and the prompt kernel against
 * ggml's, the decode kernel against the dot product (its bits by pairs, to
 * rounding by quads), and a window of rows equal to the whole. */
static void q5_0_width(int n, bool quads)
{
    const int rows = 16;
    for (int extreme = 0; extreme < 2; extreme++) {
        uint8_t *x = rows5(n, rows, extreme), *y = rows8(n, 1, true, extreme);
        float ref[16], opt[16], got[16], many[16];
        for (int r = 0; r < rows; r++) {
            const uint8_t *xr = x + (size_t)r * (n / 32) * 22;
            g_dot5[1](n, &ref[r], 0, xr, 0, y, 0, 1);
            g_dot5[0](n, &opt[r], 0, xr, 0, y, 0, 1);
            kernels_vec_dot_q5_0(n, &got[r], xr, y);
            /* the prompt kernel: one weight row against one activation row */
            float da[1024];
            for (int l = 0; l < n / 32; l++) {
                uint16_t h;
                memcpy(&h, y + (size_t)l * ABLOCK1, 2);
                da[l] = ggml_fp16_to_fp32(h);
            }
            kernels_q5_0_rows(n, xr, y, da, 1, &many[r], 1);
        }
        /* the decode kernel: the whole matrix against the row, the dot
         * product's bits by pairs (to rounding by quads); and a window
         * of rows from the middle, the same bits as the whole */
        float all[16], mid[16];
        kernels_q5_0_gemv(n, all, x, (size_t)(n / 32) * 22, rows, y);
        if (quads)
            CHECK(worst(all, got, rows) < TOL);
        else
            CHECK(memcmp(all, got, sizeof all) == 0);
        kernels_q5_0_gemv(n, mid, x + (size_t)5 * (n / 32) * 22, (size_t)(n / 32) * 22, 7, y);
        CHECK(memcmp(mid, all + 5, 7 * sizeof(float)) == 0);
        double e_ref = worst(got, ref, rows), e_opt = worst(got, opt, rows);
        double e_many = worst(many, ref, rows);
        if (!(e_ref < TOL && e_opt < TOL && e_many < TOL))
            fprintf(stderr, "  q5_0 n=%d extreme=%d: %.2e vs reference, %.2e vs ggml, "
                    "rows kernel %.2e\n", n, extreme, e_ref, e_opt, e_many);
        CHECK(e_ref < TOL);
        CHECK(e_opt < TOL);
        CHECK(e_many < TOL);
        free(x), free(y);
    }
}

TEST(q5_0_dot_matches_ggml)
{
    if (!g_vnni)
        return;
    /* real widths, 29 blocks (7 quads and one more), and past the quads'
     * limit (8288) and the rows kernel's (8192) */
    static const int lens[] = { 896, 928, 2048, 4864, 8192, 8320 };
    const bool has_quads =
        __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bitalg");
    /* the decode kernel by quads of blocks (where the CPU has VBMI and
     * BITALG), then by pairs */
    for (int quads = has_quads; quads >= 0; quads--) {
        CHECK(kernels_q5_0_quads(quads) == (bool)quads);
        CHECK(kernels_q5_0_gemv_exact() == !quads);
        for (int k = 1; k <= 20; k++)
            q5_0_width(32 * k, quads);
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
            q5_0_width(lens[k], quads);
    }
    kernels_q5_0_quads(true);
}

/* The entry points under ggml's names: ggml's own results, bit for bit,
 * when hearth's kernels are off; hearth's, bit for bit, when they are on. */
TEST(entry_points_dispatch)
{
    int n = 896, nc = 64, nr = 8;
    uint8_t *w = weights(n, nc, false), *a = acts4(n, nr, false), *a1 = acts1(n, false);
    size_t out = (size_t)nr * nc;
    float *want = calloc(out, 4), *got = calloc(out, 4);

    kernels_init("off");
    g_ggml[1](n, want, nc, w, a, nr, nc);
    ggml_gemm_q4_0_8x8_q8_0(n, got, nc, w, a, nr, nc);
    CHECK(memcmp(got, want, out * 4) == 0);
    g_ggml[0](n, want, nc, w, a1, 1, nc);
    ggml_gemv_q4_0_8x8_q8_0(n, got, nc, w, a1, 1, nc);
    CHECK(memcmp(got, want, (size_t)nc * 4) == 0);

    if (g_vnni) {
        CHECK(kernels_init("auto"));
        kernels_gemm_q4_0(n, want, nc, w, a, nr, nc);
        ggml_gemm_q4_0_8x8_q8_0(n, got, nc, w, a, nr, nc);
        CHECK(memcmp(got, want, out * 4) == 0);
        kernels_gemv_q4_0(n, want, nc, w, a1, 1, nc);
        ggml_gemv_q4_0_8x8_q8_0(n, got, nc, w, a1, 1, nc);
        CHECK(memcmp(got, want, (size_t)nc * 4) == 0);
    }

    /* the Q8_0 dot product: the same (n multiple of 32, one row) */
    uint8_t *x = rows8(n, 1, false, false), *y = rows8(n, 1, true, false);
    float d_want, d_got;
    kernels_init("off");
    g_dot8[0](n, &d_want, 0, x, 0, y, 0, 1);
    ggml_vec_dot_q8_0_q8_0(n, &d_got, 0, x, 0, y, 0, 1);
    CHECK(memcmp(&d_got, &d_want, 4) == 0);
    if (g_vnni) {
        kernels_init("auto");
        kernels_vec_dot_q8_0(n, &d_want, x, y);
        ggml_vec_dot_q8_0_q8_0(n, &d_got, 0, x, 0, y, 0, 1);
        CHECK(memcmp(&d_got, &d_want, 4) == 0);
    }
    free(x), free(y);
    free(w), free(a), free(a1), free(want), free(got);
}

int main(void)
{
    backends_load();
    kernels_ggml(g_ggml);
    kernels_ggml_dot8(g_dot8);
    kernels_ggml_dot5(g_dot5);
    g_vnni = kernels_cpu_ok();
    RUN(backend_exports_what_hearth_replaces);
    RUN(init_follows_mode_and_cpu);
    RUN(gemm_matches_ggml);
    RUN(gemv_matches_ggml);
    RUN(gemm_respects_row_stride);
    RUN(q8_0_dot_matches_ggml);
    RUN(rows_fetch_follows_environment);
    RUN(q5_0_dot_matches_ggml);
    RUN(entry_points_dispatch);
    return check_summary();
}
