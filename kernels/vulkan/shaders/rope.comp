#version 450
// rope - rotary embedding. NeoX layout (qwen3): within each head, element i pairs with
// i + d/2; with BLY_ROPE_NORMAL (llama): element 2i pairs with 2i + 1.
// cos/sin come from a host-made table [position][d/2][2] (computed once with the CPU's own
// functions, so both backends rotate by identical values). Writes to y (may alias x).
#extension GL_GOOGLE_include_directive : require
#include "bly_common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer T { vec2 cs[]; };
layout(std430, binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint head_dim;
    uint n_heads;
    uint n_tok;
    uint pos0;          // position of token 0
    uint x_off;
    uint y_off;
} p;

void main()
{
    uint half_dim = p.head_dim / 2u;
    uint i = gl_WorkGroupID.x * WG + LID;     // pair index within all heads of one token
    uint t = gl_WorkGroupID.y;
    if (i >= half_dim * p.n_heads || t >= p.n_tok)
        return;
    uint h = i / half_dim, k = i % half_dim;
    uint head = t * p.n_heads * p.head_dim + h * p.head_dim;
#if BLY_ROPE_NORMAL
    uint i0 = head + 2u * k, i1 = i0 + 1u;
#else
    uint i0 = head + k, i1 = i0 + half_dim;
#endif
    vec2 c = cs[(p.pos0 + t) * half_dim + k];
    float x0 = x[p.x_off + i0], x1 = x[p.x_off + i1];
    precise float y0 = x0 * c.x - x1 * c.y;
    precise float y1 = x0 * c.y + x1 * c.x;
    y[p.y_off + i0] = y0;
    y[p.y_off + i1] = y1;
}
