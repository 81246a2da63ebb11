#version 450
// elementwise - BLY_OP 0: add  y = a + b;  1: swiglu  y = silu(a) * b;  2: copy  y = a.
// Element offsets let the host address a slice (a KV cache row) without aligned bindings.
#extension GL_GOOGLE_include_directive : require
#include "bly_common.glsl"

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint n;
    uint a_off;
    uint b_off;
    uint y_off;
} p;

void main()
{
    uint i = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * WG + LID;
    if (i >= p.n)
        return;
    float va = a[p.a_off + i];
#if BLY_OP == 0
    y[p.y_off + i] = va + b[p.b_off + i];
#elif BLY_OP == 1
    y[p.y_off + i] = va / (1.0 + exp(-va)) * b[p.b_off + i];
#else
    y[p.y_off + i] = va;
#endif
}
