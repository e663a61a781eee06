/*
 * test_argmax.c: unit tests for src/engine/argmax.h against the scalar
 * rule llama.cpp's greedy sampler follows (the first strictly larger wins).
 */
#include "check.h"
#include "engine/argmax.h"

#include <math.h>
#include <stdint.h>

static int scalar(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return n > 0 ? best : 0;
}

static uint32_t g_seed = 12345;

static float rnd(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)(g_seed >> 8) / 16777216.0f * 40.0f - 20.0f;
}

TEST(every_length_every_place)
{
    /* lengths around the 16- and 4-wide steps, the maximum at each index */
    static float v[80];
    for (int n = 1; n <= 80; n++)
        for (int at = 0; at < n; at++) {
            for (int i = 0; i < n; i++)
                v[i] = rnd();
            v[at] = 100.0f;
            CHECK_EQ_INT(argmax_f32(v, n), at);
        }
}

TEST(ties_go_to_the_first)
{
    static float v[1000];
    for (int i = 0; i < 1000; i++)
        v[i] = -1.0f;
    CHECK_EQ_INT(argmax_f32(v, 1000), 0);
    v[517] = 3.0f;
    v[901] = 3.0f;
    v[22] = 2.0f;
    CHECK_EQ_INT(argmax_f32(v, 1000), 517);
    v[0] = 3.0f;
    CHECK_EQ_INT(argmax_f32(v, 1000), 0);
}

TEST(nan_and_infinities)
{
    static float v[100];
    for (int i = 0; i < 100; i++)
        v[i] = rnd();
    v[40] = NAN;
    v[70] = 50.0f;
    v[90] = NAN;
    CHECK_EQ_INT(argmax_f32(v, 100), 70);           /* NaN never wins */
    v[0] = NAN;
    CHECK_EQ_INT(argmax_f32(v, 100), 0);            /* as llama.cpp: a NaN first stays */
    for (int i = 0; i < 100; i++)
        v[i] = -INFINITY;
    CHECK_EQ_INT(argmax_f32(v, 100), 0);
    v[33] = INFINITY;
    CHECK_EQ_INT(argmax_f32(v, 100), 33);
    CHECK_EQ_INT(argmax_f32(v, 0), 0);
}

TEST(a_vocabulary_of_random_logits)
{
    static float v[151936];                           /* Qwen2's vocabulary */
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 151936; i++)
            v[i] = rnd();
        int n = round % 2 ? 151936 : 32000 + round;
        CHECK_EQ_INT(argmax_f32(v, n), scalar(v, n));
    }
}

TEST(finite_or_not)
{
    float v[300];
    for (int n = 1; n <= 300; n += 7) {
        for (int i = 0; i < n; i++)
            v[i] = (float)((i * 37) % 101) - 50.0f;
        CHECK(all_finite_f32(v, n));
        for (int at = 0; at < n; at += 5) {         /* in the vector part and the tail */
            float keep = v[at];
            v[at] = NAN;
            CHECK(!all_finite_f32(v, n));
            v[at] = INFINITY;
            CHECK(!all_finite_f32(v, n));
            v[at] = -INFINITY;
            CHECK(!all_finite_f32(v, n));
            v[at] = keep;
        }
    }
    for (int i = 0; i < 300; i++)
        v[i] = 1e30f;               /* large but finite scores stay finite in sum */
    CHECK(all_finite_f32(v, 300));
}

int main(void)
{
    RUN(every_length_every_place);
    RUN(ties_go_to_the_first);
    RUN(nan_and_infinities);
    RUN(a_vocabulary_of_random_logits);
    RUN(finite_or_not);
    return check_summary();
}
