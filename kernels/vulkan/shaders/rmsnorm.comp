#version 450
// rmsnorm - y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, one workgroup per row.
// Per-head q/k norm is the same op with rows = tokens * heads and n = head_dim.
#extension GL_GOOGLE_include_directive : require
#include "bly_common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint n;
    uint n_rows;
    uint x_off;
    uint y_off;
    float eps;
} p;

void main()
{
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.n_rows)
        return;     // uniform across the workgroup
    uint xb = p.x_off + r * p.n;
    uint yb = p.y_off + r * p.n;
    float ss = 0.0;
    for (uint i = LID; i < p.n; i += WG)
        ss += x[xb + i] * x[xb + i];
    ss = bly_wg_sum(ss);
    float scale = 1.0 / sqrt(ss / float(p.n) + p.eps);
    barrier();      // in place (x == y): every read above happens before any write
    for (uint i = LID; i < p.n; i += WG)
        y[yb + i] = x[xb + i] * scale * w[i];
}
