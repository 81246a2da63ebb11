// bly_common.glsl - shared by every Blyan compute shader.
//
// Workgroup size is specialization constant 0 (the host sets it to the device's subgroup size
// when subgroup arithmetic is available, else to BLY_VK_WG_FALLBACK). BLY_SUBGROUP=1 selects
// subgroup reductions; BLY_SUBGROUP=0 the shared-memory tree (the fallback path), which needs
// a power-of-two workgroup size of at most BLY_RED_MAX.
#extension GL_EXT_control_flow_attributes : enable
#if BLY_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#define BLY_RED_MAX 256u
#define LID gl_LocalInvocationID.x
#define WG gl_WorkGroupSize.x

shared float s_red[BLY_RED_MAX];

// Sum of v over the workgroup; every invocation gets the total. Call in uniform control flow.
float bly_wg_sum(float v)
{
#if BLY_SUBGROUP
    v = subgroupAdd(v);
    if (gl_NumSubgroups == 1u)
        return v;
    barrier();
    if (subgroupElect())
        s_red[gl_SubgroupID] = v;
    barrier();
    float t = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++)
        t += s_red[i];
    return t;
#else
    barrier();
    s_red[LID] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (LID < s)
            s_red[LID] += s_red[LID + s];
        barrier();
    }
    return s_red[0];
#endif
}

// Maximum of v over the workgroup; every invocation gets it. Call in uniform control flow.
float bly_wg_max(float v)
{
#if BLY_SUBGROUP
    v = subgroupMax(v);
    if (gl_NumSubgroups == 1u)
        return v;
    barrier();
    if (subgroupElect())
        s_red[gl_SubgroupID] = v;
    barrier();
    float t = s_red[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++)
        t = max(t, s_red[i]);
    return t;
#else
    barrier();
    s_red[LID] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (LID < s)
            s_red[LID] = max(s_red[LID], s_red[LID + s]);
        barrier();
    }
    return s_red[0];
#endif
}

// Round a float to the nearest fp16 value (ties to even) and back, bit-exactly as the CPU's
// fp32->fp16 conversion does; packHalf2x16 leaves the rounding mode to the implementation.
float bly_round_f16(float f)
{
    uint x = floatBitsToUint(f);
    uint sign = x & 0x80000000u;
    uint ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)
        return f;                                   // Inf, NaN unchanged
    if (ax >= 0x477ff000u)                          // rounds past 65504: overflow
        return uintBitsToFloat(sign | 0x7f800000u);
    if (ax < 0x38800000u) {                         // below 2^-14: a subnormal half
        // A half subnormal step is 2^-24; x*2^24 rounded to an integer (ties to even).
        float m = roundEven(uintBitsToFloat(ax) * 16777216.0);
        return uintBitsToFloat(sign | floatBitsToUint(m * (1.0 / 16777216.0)));
    }
    uint lsb = (ax >> 13u) & 1u;
    uint r = (ax + 0xfffu + lsb) & 0xffffe000u;    // keep 10 mantissa bits, ties to even
    return uintBitsToFloat(sign | r);
}

// Round a float to the nearest bfloat16 value (ties to even) and back; NaN stays NaN.
float bly_round_bf16(float f)
{
    uint x = floatBitsToUint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return f;
    x += 0x7fffu + ((x >> 16) & 1u);
    return uintBitsToFloat(x & 0xffff0000u);
}

// Signed int8x4 dot product of two packed words.
int bly_dot4(uint a, uint b)
{
    ivec4 va = ivec4(bitfieldExtract(int(a), 0, 8), bitfieldExtract(int(a), 8, 8),
                     bitfieldExtract(int(a), 16, 8), bitfieldExtract(int(a), 24, 8));
    ivec4 vb = ivec4(bitfieldExtract(int(b), 0, 8), bitfieldExtract(int(b), 8, 8),
                     bitfieldExtract(int(b), 16, 8), bitfieldExtract(int(b), 24, 8));
    return va.x * vb.x + va.y * vb.y + va.z * vb.z + va.w * vb.w;
}
