#version 450
// attention - causal GQA attention over the device KV cache, one workgroup per (head, token).
// Token t of this step sits at position pos0 + t and sees keys 0..pos0+t. Each invocation owns
// the dims LID, LID+WG, ... of the head; scores are reduced across the workgroup and folded in
// with an online (running-max) softmax, so no score buffer is needed at any context length.
#extension GL_GOOGLE_include_directive : require
#include "bly_common.glsl"

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float kc[]; };
layout(std430, binding = 2) readonly buffer V { float vc[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };

layout(push_constant) uniform P {
    uint head_dim;
    uint n_head;
    uint n_head_kv;
    uint n_tok;
    uint pos0;
    uint q_off;         // element offset of q[0]; q is [n_tok][n_head][head_dim]
    uint o_off;
    uint kv_off;        // element offset of this layer's cache [n_ctx][n_head_kv][head_dim]
    float scale;
} p;

#define PER_MAX 32u     // head_dim / WG at most (256 / 8)

void main()
{
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    uint D = p.head_dim;
    uint kvh = h / (p.n_head / p.n_head_kv);
    uint kv_row = p.n_head_kv * D;
    uint per = (D + WG - 1u) / WG;
    uint qb = p.q_off + (t * p.n_head + h) * D;
    float qv[PER_MAX], acc[PER_MAX];
    for (uint k = 0u; k < per; k++) {
        uint d = LID + k * WG;
        qv[k] = d < D ? q[qb + d] : 0.0;
        acc[k] = 0.0;
    }
    uint n_keys = p.pos0 + t + 1u;
    float m = -1.0 / 0.0, l = 0.0;
    for (uint j = 0u; j < n_keys; j++) {
        uint kb = p.kv_off + j * kv_row + kvh * D;
        float s = 0.0;
        for (uint k = 0u; k < per; k++) {
            uint d = LID + k * WG;
            if (d < D)
                s += qv[k] * kc[kb + d];
        }
        s = bly_wg_sum(s) * p.scale;
        float mn = max(m, s);
        float c = exp(m - mn), e = exp(s - mn);
        l = l * c + e;
        for (uint k = 0u; k < per; k++) {
            uint d = LID + k * WG;
            acc[k] = acc[k] * c + (d < D ? e * vc[kb + d] : 0.0);
        }
        m = mn;
    }
    uint ob = p.o_off + (t * p.n_head + h) * D;
    for (uint k = 0u; k < per; k++) {
        uint d = LID + k * WG;
        if (d < D)
            o[ob + d] = acc[k] / l;
    }
}
