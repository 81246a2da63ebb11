#version 450
// get_rows - embedding gather: y[t][c] = dequant(W[ids[t]])[c] for rows of one weight chunk.
// Rows outside [row0, row0 + n_rows) belong to another chunk (split matrices) and are skipped.
// Grid: x over columns (WG per workgroup), y over ids.
#extension GL_GOOGLE_include_directive : require
#include "bly_common.glsl"

layout(std430, binding = 0) readonly buffer W { uint wq[]; };
layout(std430, binding = 1) readonly buffer I { uint ids[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint n_cols;
    uint n_ids;
    uint row_bytes;
    uint row0;          // first row of this chunk
    uint n_rows;        // rows in this chunk
    uint y_off;         // element offset of y[0][0]
} p;

#include "bly_weights.glsl"

void main()
{
    uint c = gl_WorkGroupID.x * WG + LID;
    uint t = gl_WorkGroupID.y;
    if (c >= p.n_cols || t >= p.n_ids)
        return;
    uint id = ids[t];
    if (id < p.row0 || id - p.row0 >= p.n_rows)
        return;
    y[p.y_off + t * p.n_cols + c] = w_dequant((id - p.row0) * p.row_bytes, c);
}
