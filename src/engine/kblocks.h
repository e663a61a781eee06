/*
 * kblocks.h: ggml's K-quant block layouts (its ggml-common.h), as hearth's
 * kernels read them (engine/kquant.c, engine/kgemm.c). Each size is
 * checked against ggml's.
 *
 * Ownership: declarations only.
 */
#ifndef HEARTH_KBLOCKS_H
#define HEARTH_KBLOCKS_H

#include <stdint.h>

struct q8k {        /* ggml's block_q8_K: an activation's 256 elements */
    float d;
    int8_t qs[256];
    int16_t bsums[16];  /* sums of 16 quants */
};
struct q6k {        /* ggml's block_q6_K */
    uint8_t ql[128];    /* low 4 bits */
    uint8_t qh[64];     /* high 2 bits */
    int8_t scales[16];  /* one per 16 elements */
    uint16_t d;
};
struct q5k {        /* ggml's block_q5_K */
    uint16_t d, dmin;
    uint8_t scales[12]; /* 6-bit sub-block scales and mins, packed as Q4_K's */
    uint8_t qh[32];     /* the fifth bit */
    uint8_t qs[128];    /* low 4 bits */
};
struct q3k {        /* ggml's block_q3_K */
    uint8_t hmask[32];  /* the third bit, set for quants >= 0 */
    uint8_t qs[64];     /* low 2 bits */
    uint8_t scales[12]; /* 16 6-bit scales, packed */
    uint16_t d;
};
struct iq4xs {      /* ggml's block_iq4_xs */
    uint16_t d;
    uint16_t scales_h;  /* high 2 bits of the 8 sub-block scales */
    uint8_t scales_l[4];/* low 4 bits, two per byte */
    uint8_t qs[128];    /* 4-bit indices into the IQ4_NL values: sub-block i's first 16
                         * elements in the low nibbles of its 16 bytes, the rest high */
};
/* the 16 values a 4-bit IQ4_NL / IQ4_XS index stands for (the format's table) */
static const int8_t kblocks_iq4_values[16] = { -127, -104, -83, -65, -49, -35, -22, -10,
                                               1,    13,   25,  38,  53,  69,  89,  113 };

_Static_assert(sizeof(struct q8k) == 292, "ggml's block_q8_K");
_Static_assert(sizeof(struct q6k) == 210, "ggml's block_q6_K");
_Static_assert(sizeof(struct q5k) == 176, "ggml's block_q5_K");
_Static_assert(sizeof(struct q3k) == 110, "ggml's block_q3_K");
_Static_assert(sizeof(struct iq4xs) == 136, "ggml's block_iq4_xs");

#endif
