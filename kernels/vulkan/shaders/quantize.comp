#version 450
// quantize - activations to Q8_0 (BLY_QK 32) or Q8_K (BLY_QK 256) blocks, exactly as the CPU
// backend does, so quantized products give the same numbers on every backend:
//   Q8_0: d = amax / 127 stored as fp16, q = round-half-even(x * (127 / amax))
//   Q8_K: max = the element with the largest |x| (first one), iscale = -127 / max,
//         q = min(127, round-half-even(iscale * x)), d = 1 / iscale
// One invocation per block. Output: int8 quants packed 4 per word, and d as f32.
#extension GL_GOOGLE_include_directive : require
#include "bly_common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Q { uint xq[]; };
layout(std430, binding = 2) writeonly buffer D { float xd[]; };

layout(push_constant) uniform P {
    uint n_blocks;      // all tokens together: n_tok * n_cols / BLY_QK
    uint x_off;
} p;

// a / b correctly rounded on devices whose division is looser than IEEE (one Newton step).
float bly_div(float a, float b)
{
    precise float q = a / b;
    precise float r = fma(-q, b, a);
    precise float c = q + r / b;
    return c;
}

void main()
{
    uint blk = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * WG + LID;
    if (blk >= p.n_blocks)
        return;
    uint xb = p.x_off + blk * BLY_QK;
    float amax = 0.0, vmax = 0.0;
    for (uint j = 0u; j < BLY_QK; j++) {
        float v = x[xb + j];
        if (abs(v) > amax) {
            amax = abs(v);
            vmax = v;
        }
    }
#if BLY_QK == 32
    float d = bly_div(amax, 127.0);
    float id = amax != 0.0 ? bly_div(127.0, amax) : 0.0;
    xd[blk] = bly_round_f16(d);
#else
    float iscale = amax != 0.0 ? bly_div(-127.0, vmax) : 0.0;
    xd[blk] = amax != 0.0 ? bly_div(1.0, iscale) : 0.0;
#endif
    for (uint w = 0u; w < BLY_QK / 4u; w++) {
        uint packed = 0u;
        for (uint k = 0u; k < 4u; k++) {
            precise float s;
#if BLY_QK == 32
            s = x[xb + 4u * w + k] * id;
            int q = int(roundEven(s));
#else
            s = iscale * x[xb + 4u * w + k];
            int q = min(127, int(roundEven(s)));
#endif
            packed |= (uint(q) & 0xffu) << (8u * k);
        }
        xq[blk * (BLY_QK / 4u) + w] = packed;
    }
}
