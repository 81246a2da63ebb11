#version 450
// argmax - index of the largest of n floats; ties go to the lowest index, NaN never wins.
// One workgroup; out[0] = index (0xffffffff when every value is NaN), out[1] = value bits.
#extension GL_GOOGLE_include_directive : require
#include "bly_common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { uint o[]; };

layout(push_constant) uniform P {
    uint n;
    uint x_off;
    uint o_off;
} p;

shared uint s_idx[BLY_RED_MAX];

void main()
{
    float best = 0.0;
    uint bi = 0xffffffffu;
    for (uint i = LID; i < p.n; i += WG) {
        float v = x[p.x_off + i];
        if (!isnan(v) && (bi == 0xffffffffu || v > best)) {
            best = v;
            bi = i;
        }
    }
    s_red[LID] = best;
    s_idx[LID] = bi;
    barrier();
    if (LID != 0u)
        return;
    for (uint l = 1u; l < WG; l++) {
        uint i = s_idx[l];
        float v = s_red[l];
        if (i == 0xffffffffu)
            continue;
        if (bi == 0xffffffffu || v > best || (v == best && i < bi)) {
            best = v;
            bi = i;
        }
    }
    o[p.o_off] = bi;
    o[p.o_off + 1u] = floatBitsToUint(best);
}
