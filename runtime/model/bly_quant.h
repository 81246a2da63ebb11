/*  =========================================================================
    bly_quant - quantize F32 rows into F16, BF16 and Q8_0 (for writing models)

    The engine owns dequantization and dot products; this module only
    writes. Q8_0 follows ggml's reference: blocks of 32, d = max|x| / 127
    stored as F16, q = round(x / d) (half away from zero).
    ========================================================================= */

#ifndef BLY_QUANT_H_INCLUDED
#define BLY_QUANT_H_INCLUDED

//  The Q8_0 block type and the scalar F16/BF16 conversions (round to
//  nearest even; overflow gives infinity, NaN stays NaN) are the engine's,
//  from the reference kernels.
#include "bly_ref.h"

#include <stddef.h>
#include <stdint.h>

#define BLY_Q8_0_BLOCK BLY_QK8_0

//  Rows of n values. For Q8_0, n must be a multiple of 32 and `out`
//  holds n / 32 blocks.
void bly_quantize_row_f16(const float *x, uint16_t *out, size_t n);
void bly_quantize_row_bf16(const float *x, uint16_t *out, size_t n);
void bly_quantize_row_q8_0(const float *x, bly_block_q8_0_t *out, size_t n);

#endif
