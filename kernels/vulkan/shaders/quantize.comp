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

// a / b correctly rounded (ties to even), as C computes it. Vulkan lets division be off by
// 2.5 ULP (lavapipe's is), and one ULP in a scale changes quants: divide the mantissas bit by
// bit instead. Normal operands and results only; anything else takes the plain division.
float bly_div(float a, float b)
{
    uint ua = floatBitsToUint(a), ub = floatBitsToUint(b);
    int ea = int((ua >> 23) & 0xffu), eb = int((ub >> 23) & 0xffu);
    if (ea == 0 || ea == 255 || eb == 0 || eb == 255)
        return a / b;
    uint ma = (ua & 0x7fffffu) | 0x800000u, mb = (ub & 0x7fffffu) | 0x800000u;
    int e = ea - eb + 127;
    if (ma < mb) {
        ma <<= 1;
        e -= 1;
    }
    uint q = 0u, r = ma;                // r in [mb, 2 mb): the first quotient bit is 1
    for (int i = 0; i < 25; i++) {      // 24 mantissa bits and a rounding bit
        q <<= 1;
        if (r >= mb) {
            r -= mb;
            q |= 1u;
        }
        r <<= 1;
    }
    uint mant = q >> 1;
    if ((q & 1u) != 0u && (r != 0u || (mant & 1u) != 0u))
        mant += 1u;
    if (mant == 0x1000000u) {
        mant >>= 1;
        e += 1;
    }
    if (e <= 0 || e >= 255)
        return a / b;
    return uintBitsToFloat(((ua ^ ub) & 0x80000000u) | (uint(e) << 23) | (mant & 0x7fffffu));
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
