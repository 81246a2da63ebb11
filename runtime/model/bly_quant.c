/*  =========================================================================
    bly_quant - quantize F32 rows into F16, BF16 and Q8_0 (for writing models)
    ========================================================================= */

#include "bly_quant.h"
#include "bly_log.h"

#include <math.h>
#include <string.h>

uint16_t
bly_fp32_to_fp16(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, 4);
    uint16_t sign = (uint16_t) ((bits >> 16) & 0x8000);
    uint32_t magnitude = bits & 0x7FFFFFFF;
    if (magnitude > 0x7F800000)   //  NaN: keep it quiet and keep some payload.
        return sign | 0x7E00 | (uint16_t) ((magnitude >> 13) & 0x1FF);
    if (magnitude >= 0x47800000)  //  >= 65536 (and infinity): infinity.
        return sign | 0x7C00;
    if (magnitude >= 0x38800000) {   //  Normal in F16: rebias the exponent, round.
        uint32_t rebased = magnitude - (112u << 23);
        return sign | (uint16_t) ((rebased + 0xFFF + ((rebased >> 13) & 1)) >> 13);
    }
    if (magnitude < 0x33000000)   //  Below half the smallest subnormal: zero.
        return sign;
    //  Subnormal in F16: the significand shifted right, rounded to even.
    uint32_t exponent = magnitude >> 23;
    uint32_t significand = (magnitude & 0x7FFFFF) | 0x800000;
    uint32_t shift = 126 - exponent;
    uint32_t result = significand >> shift;
    uint32_t rest = significand & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (result & 1)))
        result++;
    return sign | (uint16_t) result;
}

uint16_t
bly_fp32_to_bf16(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if ((bits & 0x7FFFFFFF) > 0x7F800000)
        return (uint16_t) ((bits >> 16) | 0x40);   //  Quiet NaN.
    return (uint16_t) ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

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
    bly_assert(n % BLY_Q8_0_BLOCK == 0);
    for (size_t b = 0; b < n / BLY_Q8_0_BLOCK; b++) {
        const float *block = x + b * BLY_Q8_0_BLOCK;
        float amax = 0.0f;
        for (int i = 0; i < BLY_Q8_0_BLOCK; i++)
            amax = fmaxf(amax, fabsf(block[i]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = bly_fp32_to_fp16(d);
        for (int i = 0; i < BLY_Q8_0_BLOCK; i++)
            out[b].qs[i] = (int8_t) roundf(block[i] * id);
    }
}
