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

#include "bly_ref.h"

//  Block types and the scalar F16/BF16 conversions come from the reference
//  kernels, so writer and engine agree bit for bit.

//  Rows of n values. For Q8_0, n must be a multiple of 32 and `out`
//  holds n / 32 blocks.
void bly_quantize_row_f16(const float *x, uint16_t *out, size_t n);
void bly_quantize_row_bf16(const float *x, uint16_t *out, size_t n);
void bly_quantize_row_q8_0(const float *x, bly_block_q8_0_t *out, size_t n);

#endif
