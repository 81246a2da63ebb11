#version 450
// attention - causal GQA attention over the device KV cache, one workgroup per (head, token).
// Token t of this step sits at position pos0 + t and sees keys 0..pos0+t. Keys go in chunks of
// WG: each invocation scores one key of the chunk (q is in shared memory), the chunk's
// weights are folded in with an online (running-max) softmax, and invocation i accumulates
// output dims i and i + WG over the chunk's values (reads of V rows are coalesced). No score
// buffer is needed at any context length; head_dim <= 2 * WG and <= 256.
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

#define HEAD_MAX 256u
#define CHUNK_MAX 256u  // WG at most

shared float s_q[HEAD_MAX];
shared float s_p[CHUNK_MAX];

void main()
{
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    uint D = p.head_dim;
    uint kvh = h / (p.n_head / p.n_head_kv);
    uint kv_row = p.n_head_kv * D;
    uint qb = p.q_off + (t * p.n_head + h) * D;
    for (uint d = LID; d < D; d += WG)
        s_q[d] = q[qb + d];
    barrier();
    uint n_keys = p.pos0 + t + 1u;
    uint d0 = LID, d1 = LID + WG;
    float m = -1.0 / 0.0, l = 0.0, acc0 = 0.0, acc1 = 0.0;
    for (uint j0 = 0u; j0 < n_keys; j0 += WG) {
        uint j = j0 + LID;
        float s = -1.0 / 0.0;
        if (j < n_keys) {
            uint kb = p.kv_off + j * kv_row + kvh * D;
            float a = 0.0;
            for (uint d = 0u; d < D; d++)
                a += s_q[d] * kc[kb + d];
            s = a * p.scale;
        }
        float mn = max(m, bly_wg_max(s));   // finite: the chunk has at least one key
        float e = j < n_keys ? exp(s - mn) : 0.0;
        float c = exp(m - mn);
        barrier();                          // the previous chunk's weights are read
        s_p[LID] = e;
        float es = bly_wg_sum(e);
        barrier();                          // s_p is complete
        l = l * c + es;
        acc0 *= c;
        acc1 *= c;
        uint nk = min(WG, n_keys - j0);
        for (uint i = 0u; i < nk; i++) {
            uint vb = p.kv_off + (j0 + i) * kv_row + kvh * D;
            float w = s_p[i];
            if (d0 < D)
                acc0 += w * vc[vb + d0];
            if (d1 < D)
                acc1 += w * vc[vb + d1];
        }
        m = mn;
    }
    uint ob = p.o_off + (t * p.n_head + h) * D;
    if (d0 < D)
        o[ob + d0] = acc0 / l;
    if (d1 < D)
        o[ob + d1] = acc1 / l;
}
