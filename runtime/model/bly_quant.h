/*  =========================================================================
    bly_quant - quantize F32 rows into F16, BF16 and Q8_0 (for writing models)

    The engine owns dequantization and dot products; this module only
    writes. Q8_0 follows ggml's reference: blocks of 32, d = max|x| / 127
    stored as F16, q = round(x / d) (half away from zero).
    ========================================================================= */

#ifndef BLY_QUANT_H_INCLUDED
#define BLY_QUANT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define BLY_Q8_0_BLOCK 32

//  One Q8_0 block as stored in GGUF (34 bytes).
typedef struct {
    uint16_t d;                     //  Scale, F16.
    int8_t qs[BLY_Q8_0_BLOCK];      //  Quants.
} bly_block_q8_0_t;

_Static_assert(sizeof(bly_block_q8_0_t) == 34, "Q8_0 blocks are 34 bytes in GGUF");

//  Scalar conversions: round to nearest even; overflow gives infinity,
//  NaN stays NaN.
uint16_t bly_fp32_to_fp16(float value);
uint16_t bly_fp32_to_bf16(float value);

//  Rows of n values. For Q8_0, n must be a multiple of 32 and `out`
//  holds n / 32 blocks.
void bly_quantize_row_f16(const float *x, uint16_t *out, size_t n);
void bly_quantize_row_bf16(const float *x, uint16_t *out, size_t n);
void bly_quantize_row_q8_0(const float *x, bly_block_q8_0_t *out, size_t n);

#endif
