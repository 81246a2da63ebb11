#version 450
// argmax - index of the largest of n floats; ties go to the lowest index, NaN never wins.
// One workgroup (up to 1024 invocations, a power of two): each invocation scans a strided
// share, then a shared-memory tree keeps the best (value, index) pair.
// out[0] = index (0xffffffff when every value is NaN), out[1] = value bits.
#extension GL_GOOGLE_include_directive : require
#include "bly_common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { uint o[]; };

layout(push_constant) uniform P {
    uint n;
    uint x_off;
    uint o_off;
} p;

#define ARGMAX_WG_MAX 1024u

shared float s_val[ARGMAX_WG_MAX];
shared uint s_idx[ARGMAX_WG_MAX];

// True when candidate (v, i) beats the held (best, bi).
bool s_better(float v, uint i, float best, uint bi)
{
    return i != 0xffffffffu && (bi == 0xffffffffu || v > best || (v == best && i < bi));
}

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
    s_val[LID] = best;
    s_idx[LID] = bi;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (LID < s && s_better(s_val[LID + s], s_idx[LID + s], s_val[LID], s_idx[LID])) {
            s_val[LID] = s_val[LID + s];
            s_idx[LID] = s_idx[LID + s];
        }
        barrier();
    }
    if (LID == 0u) {
        o[p.o_off] = s_idx[0];
        o[p.o_off + 1u] = floatBitsToUint(s_val[0]);
    }
}
