// bly_weights.glsl - byte access to GGUF blocks kept in their file layout in a uint buffer
// named `wq`, declared by the including shader. Weights are never repacked: the device holds
// the file's bytes, and these helpers read them with 32-bit loads only (no 8/16-bit storage
// feature is needed).

uint w_u8(uint b)
{
    return (wq[b >> 2] >> ((b & 3u) * 8u)) & 0xffu;
}

int w_i8(uint b)
{
    return bitfieldExtract(int(wq[b >> 2]), int((b & 3u) * 8u), 8);
}

uint w_u16(uint b)     // b even
{
    return (wq[b >> 2] >> ((b & 2u) * 8u)) & 0xffffu;
}

uint w_u32(uint b)     // b even or any: unaligned words are stitched from two loads
{
    uint sh = (b & 3u) * 8u;
    uint w0 = wq[b >> 2];
    if (sh == 0u)
        return w0;
    return (w0 >> sh) | (wq[(b >> 2) + 1u] << (32u - sh));
}

float w_f16(uint b)
{
    return unpackHalf2x16(w_u16(b)).x;
}

float w_bf16(uint b)
{
    return uintBitsToFloat(w_u16(b) << 16);
}

// Q4_K 6-bit scale and min of sub-block j (0..7) from the 12 scale bytes at `s`.
uvec2 w_q4k_scale_min(uint s, uint j)
{
    if (j < 4u)
        return uvec2(w_u8(s + j) & 63u, w_u8(s + j + 4u) & 63u);
    uint sc = (w_u8(s + j + 4u) & 0xfu) | ((w_u8(s + j - 4u) >> 6) << 4);
    uint m = (w_u8(s + j + 4u) >> 4) | ((w_u8(s + j) >> 6) << 4);
    return uvec2(sc, m);
}

// Element i of the row starting at byte `row`, dequantized, for weight type BLY_WTYPE.
float w_dequant(uint row, uint i)
{
#if BLY_WTYPE == 0      // F32
    return uintBitsToFloat(wq[(row >> 2) + i]);
#elif BLY_WTYPE == 1    // F16
    return w_f16(row + 2u * i);
#elif BLY_WTYPE == 30   // BF16
    return w_bf16(row + 2u * i);
#elif BLY_WTYPE == 8    // Q8_0: f16 d, 32 x int8
    uint blk = row + (i >> 5) * 34u;
    return w_f16(blk) * float(w_i8(blk + 2u + (i & 31u)));
#elif BLY_WTYPE == 12   // Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes
    uint blk = row + (i >> 8) * 144u;
    uint j = i & 255u;
    uint g = j >> 6, l = j & 63u;
    uint sub = 2u * g + (l >> 5);
    uvec2 sm = w_q4k_scale_min(blk + 4u, sub);
    uint q = (w_u8(blk + 16u + 32u * g + (l & 31u)) >> ((l >> 5) * 4u)) & 0xfu;
    precise float d1 = w_f16(blk) * float(sm.x);
    precise float m1 = w_f16(blk + 2u) * float(sm.y);
    precise float y = d1 * float(q) - m1;
    return y;
#elif BLY_WTYPE == 14   // Q6_K: ql[128], qh[64], int8 scales[16], f16 d
    uint blk = row + (i >> 8) * 210u;
    uint j = i & 255u;
    uint n = j >> 7, r = j & 127u, l = r & 31u, qd = r >> 5;
    uint lo = (w_u8(blk + 64u * n + l + (qd & 1u) * 32u) >> ((qd >> 1) * 4u)) & 0xfu;
    uint hi = (w_u8(blk + 128u + 32u * n + l) >> (2u * qd)) & 3u;
    int q = int(lo | (hi << 4)) - 32;
    int sc = w_i8(blk + 192u + 8u * n + (l >> 4) + 2u * qd);
    precise float y = w_f16(blk + 208u) * float(sc) * float(q);
    return y;
#else
#error unknown BLY_WTYPE
#endif
}
