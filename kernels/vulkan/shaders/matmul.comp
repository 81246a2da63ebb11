#version 450
// matmul - y[t][row0 + r] = sum_c W[r][c] * x[t][c] for one row chunk of a weight matrix.
// BLY_WTYPE selects the weight type (F32 0, F16 1, BF16 30: float activations; Q8_0 8: Q8_0
// activations; Q4_K 12, Q6_K 14: Q8_K activations). BLY_TB tokens per workgroup (1: decode
// mat-vec; 4: prefill mat-mat, weights dequantized once per 4 tokens). Each workgroup does
// BLY_ROWS rows; invocations stride over units of a row (8 to 32 elements), then reduce.
// Grid: x (+ y * x_count) over row groups, z over token groups.
#extension GL_GOOGLE_include_directive : require
#include "bly_common.glsl"

layout(constant_id = 1) const uint BLY_ROWS = 4u;    // rows per workgroup (host: 1, 2 or 4)
#define BLY_QUANT (BLY_WTYPE == 8 || BLY_WTYPE == 12 || BLY_WTYPE == 14)

layout(std430, binding = 0) readonly buffer W { uint wq[]; };
#if BLY_QUANT
layout(std430, binding = 1) readonly buffer XQ { uint xq[]; };
layout(std430, binding = 2) readonly buffer XD { float xd[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
#else
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
#endif

layout(push_constant) uniform P {
    uint n_cols;
    uint n_rows;        // rows in this chunk
    uint row_bytes;
    uint n_tok;
    uint row0;          // first output row of this chunk
    uint y_stride;      // output elements per token (all rows of the matrix)
    uint x_off;         // float activations: element offset of x[0]
    uint y_off;
    uint x_round;       // float activations: 1 round to fp16, 2 to bf16 first (as the CPU does)
} p;

#include "bly_weights.glsl"

// Each s_unit returns the partial sums of one unit of a row for the (up to 4) tokens of this
// workgroup, one per vector component; unused components stay 0.
uint s_tok(uint t)
{
    return gl_WorkGroupID.z * BLY_TB + t;
}

#if !BLY_QUANT
#define UNIT 8u         // elements per unit: 8 lanes cover 64 columns
float s_x(uint tok, uint c)
{
    float xv = x[p.x_off + tok * p.n_cols + c];
    if (p.x_round == 1u)
        xv = bly_round_f16(xv);
    else if (p.x_round == 2u)
        xv = bly_round_bf16(xv);
    return xv;
}

vec4 s_unit(uint row, uint u)
{
    vec4 acc = vec4(0.0);
    uint c0 = UNIT * u;
    uint n = min(UNIT, p.n_cols - c0);
    float w[UNIT];
    [[unroll]] for (uint k = 0u; k < UNIT; k++)
        w[k] = k < n ? w_dequant(row, c0 + k) : 0.0;
    [[unroll]] for (uint t = 0u; t < BLY_TB; t++) {
        uint tok = s_tok(t);
        if (tok < p.n_tok) {
            float s = 0.0;
            [[unroll]] for (uint k = 0u; k < UNIT; k++)
                s += k < n ? w[k] * s_x(tok, c0 + k) : 0.0;
            acc[t] = s;
        }
    }
    return acc;
}
#elif BLY_WTYPE == 8
#define UNIT 16u        // half a Q8_0 block: 4 words
vec4 s_unit(uint row, uint u)
{
    vec4 acc = vec4(0.0);
    uint b = u >> 1, h = u & 1u;
    uint blk = row + b * 34u;
    float dw = w_f16(blk);
    // The 16 quant bytes start 2 bytes off a word boundary for every other block: read the 5
    // covering words once and stitch (5 loads, not 8).
    uint q0 = blk + 2u + 16u * h, base = q0 >> 2, sh = (q0 & 3u) * 8u;
    uint raw[5];
    [[unroll]] for (uint k = 0u; k < 5u; k++)
        raw[k] = (k < 4u || sh != 0u) ? wq[base + k] : 0u;
    uint ww[4];
    [[unroll]] for (uint k = 0u; k < 4u; k++)
        ww[k] = sh == 0u ? raw[k] : (raw[k] >> sh) | (raw[k + 1u] << (32u - sh));
    uint nb = p.n_cols / 32u;
    [[unroll]] for (uint t = 0u; t < BLY_TB; t++) {
        uint tok = s_tok(t);
        if (tok < p.n_tok) {
            uint xb = tok * nb + b;
            int isum = 0;
            [[unroll]] for (uint k = 0u; k < 4u; k++)
                isum += bly_dot4(ww[k], xq[xb * 8u + 4u * h + k]);
            acc[t] = float(isum) * (dw * xd[xb]);
        }
    }
    return acc;
}
#elif BLY_WTYPE == 12
#define UNIT 32u        // one sub-block of a 256-element super-block
vec4 s_unit(uint row, uint u)
{
    vec4 acc = vec4(0.0);
    uint b = u >> 3, sub = u & 7u;
    uint blk = row + b * 144u;
    uvec2 sm = w_q4k_scale_min(blk + 4u, sub);
    float d = w_f16(blk), dmin = w_f16(blk + 2u);
    uint ww[8];
    [[unroll]] for (uint k = 0u; k < 8u; k++)
        ww[k] = (w_u32(blk + 16u + 32u * (sub >> 1) + 4u * k) >> (4u * (sub & 1u))) & 0x0f0f0f0fu;
    uint nbk = p.n_cols / 256u;
    [[unroll]] for (uint t = 0u; t < BLY_TB; t++) {
        uint tok = s_tok(t);
        if (tok < p.n_tok) {
            uint xb = tok * nbk + b;
            int isum = 0, bsum = 0;
            [[unroll]] for (uint k = 0u; k < 8u; k++) {
                uint xw = xq[xb * 64u + sub * 8u + k];
                isum += bly_dot4(ww[k], xw);
                bsum += bly_dot4(0x01010101u, xw);
            }
            float dx = xd[xb];
            acc[t] = (d * dx) * float(int(sm.x) * isum) - (dmin * dx) * float(int(sm.y) * bsum);
        }
    }
    return acc;
}
#elif BLY_WTYPE == 14
#define UNIT 32u        // two 16-element sub-blocks of a 256-element super-block
vec4 s_unit(uint row, uint u)
{
    vec4 acc = vec4(0.0);
    uint b = u >> 3, sub = u & 7u;
    uint n = sub >> 2, qd = sub & 3u;
    uint blk = row + b * 210u;
    float d = w_f16(blk + 208u);
    int sc0 = w_i8(blk + 192u + 8u * n + 2u * qd);
    int sc1 = w_i8(blk + 192u + 8u * n + 1u + 2u * qd);
    uint ww[8];
    [[unroll]] for (uint k = 0u; k < 8u; k++) {
        uint lo = (w_u32(blk + 64u * n + 32u * (qd & 1u) + 4u * k) >> (4u * (qd >> 1))) & 0x0f0f0f0fu;
        uint hi = (w_u32(blk + 128u + 32u * n + 4u * k) >> (2u * qd)) & 0x03030303u;
        ww[k] = lo | (hi << 4);
    }
    uint nbk = p.n_cols / 256u;
    [[unroll]] for (uint t = 0u; t < BLY_TB; t++) {
        uint tok = s_tok(t);
        if (tok < p.n_tok) {
            uint xb = tok * nbk + b;
            int s0 = 0, s1 = 0;
            [[unroll]] for (uint k = 0u; k < 4u; k++) {
                uint xw0 = xq[xb * 64u + sub * 8u + k], xw1 = xq[xb * 64u + sub * 8u + 4u + k];
                s0 += bly_dot4(ww[k], xw0) - 32 * bly_dot4(0x01010101u, xw0);
                s1 += bly_dot4(ww[4u + k], xw1) - 32 * bly_dot4(0x01010101u, xw1);
            }
            acc[t] = (d * xd[xb]) * float(sc0 * s0 + sc1 * s1);
        }
    }
    return acc;
}
#endif

void main()
{
    uint rg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint r0 = rg * BLY_ROWS;
    if (r0 >= p.n_rows)
        return;     // uniform across the workgroup
    vec4 acc[BLY_ROWS];
    [[unroll]] for (uint r = 0u; r < BLY_ROWS; r++)
        acc[r] = vec4(0.0);
    uint n_units = (p.n_cols + UNIT - 1u) / UNIT;
    for (uint u = LID; u < n_units; u += WG)
        [[unroll]] for (uint r = 0u; r < BLY_ROWS; r++)
            if (r0 + r < p.n_rows)
                acc[r] += s_unit((r0 + r) * p.row_bytes, u);
    [[unroll]] for (uint r = 0u; r < BLY_ROWS; r++) {
        [[unroll]] for (uint t = 0u; t < BLY_TB; t++) {
            float s = bly_wg_sum(acc[r][t]);
            uint tok = s_tok(t);
            if (LID == 0u && r0 + r < p.n_rows && tok < p.n_tok)
                y[p.y_off + tok * p.y_stride + p.row0 + r0 + r] = s;
        }
    }
}
