/*  =========================================================================
    bly_quant - quantize F32 rows into F16, BF16 and Q8_0 (for writing models)
    ========================================================================= */

#include "bly_quant.h"
#include "bly_log.h"

#include <math.h>
#include <string.h>

void
bly_quantize_row_f16(const float *x, uint16_t *out, size_t n)
{
    bly_assert(x || n == 0);
    bly_assert(out || n == 0);
    for (size_t i = 0; i < n; i++)
        out[i] = bly_fp32_to_fp16(x[i]);
}

void
bly_quantize_row_bf16(const float *x, uint16_t *out, size_t n)
{
    bly_assert(x || n == 0);
    bly_assert(out || n == 0);
    for (size_t i = 0; i < n; i++)
        out[i] = bly_fp32_to_bf16(x[i]);
}

void
bly_quantize_row_q8_0(const float *x, bly_block_q8_0_t *out, size_t n)
{
    bly_assert(x || n == 0);
    bly_assert(out || n == 0);
    bly_assert(n % BLY_QK8_0 == 0);
    for (size_t b = 0; b < n / BLY_QK8_0; b++) {
        const float *block = x + b * BLY_QK8_0;
        float amax = 0.0f;
        for (int i = 0; i < BLY_QK8_0; i++)
            amax = fmaxf(amax, fabsf(block[i]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = bly_fp32_to_fp16(d);
        for (int i = 0; i < BLY_QK8_0; i++)
            out[b].qs[i] = (int8_t) roundf(block[i] * id);
    }
}
