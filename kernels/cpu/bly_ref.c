/*  =========================================================================
    bly_ref - plain scalar reference kernels

    Readable first: one loop per idea, sums in double where llama.cpp sums
    in double (RMSNorm, softmax) and wherever it makes the reference more
    exact than any optimised path.
    ========================================================================= */

#include "bly_ref.h"

#include "bly_log.h"

#include <math.h>
#include <string.h>

/* ---- Scalar conversions ------------------------------------------------ */

static uint32_t
s_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float
s_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

float
bly_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t) (h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    if (exponent == 0) {
        //  Zero or subnormal: mantissa * 2^-24, exact in float.
        float value = ldexpf((float) mantissa, -24);
        return sign ? -value : value;
    }
    if (exponent == 31)
        return s_float(sign | 0x7f800000u | (mantissa << 13));
    return s_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t
bly_fp32_to_fp16(float f)
{
    uint32_t x = s_bits(f);
    uint16_t sign = (uint16_t) ((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00;            //  NaN stays a (quiet) NaN.
    if (ax >= 0x477ff000u)
        return sign | 0x7c00;            //  65520 and above round to infinity.
    if (ax < 0x33000000u)
        return sign;                     //  Below 2^-25: rounds to zero.
    uint32_t exponent = ax >> 23;
    uint32_t mantissa = (ax & 0x7fffffu) | 0x800000u;
    uint32_t h, rem, half;
    if (ax >= 0x38800000u) {             //  Normal half: drop 13 bits.
        h = ((exponent - 112) << 10) | ((mantissa >> 13) & 0x3ff);
        rem = mantissa & 0x1fff;
        half = 0x1000;
    } else {                             //  Subnormal half: units of 2^-24.
        uint32_t shift = 126 - exponent;
        h = mantissa >> shift;
        rem = mantissa & ((1u << shift) - 1);
        half = 1u << (shift - 1);
    }
    if (rem > half || (rem == half && (h & 1)))
        h++;                             //  A carry into the exponent is right.
    return (uint16_t) (sign | h);
}

float
bly_bf16_to_fp32(uint16_t h)
{
    return s_float((uint32_t) h << 16);
}

uint16_t
bly_fp32_to_bf16(float f)
{
    uint32_t x = s_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t) ((x >> 16) | 0x40);   //  Keep NaN a quiet NaN.
    return (uint16_t) ((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* ---- Types ------------------------------------------------------------- */

bool
bly_ref_type_supported(bly_type_t type)
{
    return type == BLY_TYPE_F32 || type == BLY_TYPE_F16 || type == BLY_TYPE_BF16
           || type == BLY_TYPE_Q8_0 || type == BLY_TYPE_Q4_K || type == BLY_TYPE_Q6_K;
}

bly_type_t
bly_ref_vec_dot_type(bly_type_t type)
{
    bly_assert(bly_ref_type_supported(type));
    if (type == BLY_TYPE_Q4_K || type == BLY_TYPE_Q6_K)
        return BLY_TYPE_Q8_K;
    return type;
}

size_t
bly_ref_block_elements(bly_type_t type)
{
    switch (type) {
    case BLY_TYPE_F32:
    case BLY_TYPE_F16:
    case BLY_TYPE_BF16: return 1;
    case BLY_TYPE_Q8_0: return BLY_QK8_0;
    case BLY_TYPE_Q4_K:
    case BLY_TYPE_Q6_K:
    case BLY_TYPE_Q8_K: return BLY_QK_K;
    default: return 0;
    }
}

static size_t
s_block_bytes(bly_type_t type)
{
    switch (type) {
    case BLY_TYPE_F32: return 4;
    case BLY_TYPE_F16:
    case BLY_TYPE_BF16: return 2;
    case BLY_TYPE_Q8_0: return sizeof(bly_block_q8_0_t);
    case BLY_TYPE_Q4_K: return sizeof(bly_block_q4_k_t);
    case BLY_TYPE_Q6_K: return sizeof(bly_block_q6_k_t);
    case BLY_TYPE_Q8_K: return sizeof(bly_block_q8_k_t);
    default: return 0;
    }
}

size_t
bly_ref_row_size(bly_type_t type, size_t n)
{
    size_t per_block = bly_ref_block_elements(type);
    bly_assert(per_block > 0);
    bly_assert(n % per_block == 0);
    return n / per_block * s_block_bytes(type);
}

/* ---- Dequantization ---------------------------------------------------- */

static void
s_dequantize_q8_0(const bly_block_q8_0_t *x, float *y, size_t n)
{
    for (size_t b = 0; b < n / BLY_QK8_0; b++) {
        float d = bly_fp16_to_fp32(x[b].d);
        for (size_t j = 0; j < BLY_QK8_0; j++)
            y[b * BLY_QK8_0 + j] = d * (float) x[b].qs[j];
    }
}

//  Scale and min of sub-block j (0..7) from the 12 packed bytes: the first
//  four pairs sit in the low 6 bits of bytes 0..7; the last four keep their
//  low 4 bits in bytes 8..11 and their high 2 bits in the top of bytes 0..7.
void
bly_ref_q4_k_scale_min(size_t j, const uint8_t *q, uint8_t *scale, uint8_t *min)
{
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (uint8_t) ((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *min = (uint8_t) ((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void
s_dequantize_q4_k(const bly_block_q4_k_t *x, float *y, size_t n)
{
    for (size_t b = 0; b < n / BLY_QK_K; b++) {
        float d = bly_fp16_to_fp32(x[b].d);
        float dmin = bly_fp16_to_fp32(x[b].dmin);
        for (size_t chunk = 0; chunk < 4; chunk++) {    //  64 elements each
            const uint8_t *q = x[b].qs + chunk * 32;
            for (size_t half = 0; half < 2; half++) {
                uint8_t sc, m;
                bly_ref_q4_k_scale_min(chunk * 2 + half, x[b].scales, &sc, &m);
                float scale = d * sc, offset = dmin * m;
                for (size_t l = 0; l < 32; l++) {
                    int v = half ? q[l] >> 4 : q[l] & 0xf;
                    *y++ = scale * (float) v - offset;
                }
            }
        }
    }
}

//  Quant i (0..255) of a Q6_K block, in -32..31.
static int
s_q6_k_quant(const bly_block_q6_k_t *x, size_t i)
{
    size_t chunk = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
    const uint8_t *ql = x->ql + chunk * 64;
    uint8_t low = ql[l + (quarter & 1) * 32];
    low = quarter < 2 ? low & 0xf : low >> 4;
    int high = (x->qh[chunk * 32 + l] >> (2 * quarter)) & 3;
    return (low | (high << 4)) - 32;
}

//  Scale index of quant i of a Q6_K block.
static size_t
s_q6_k_scale_index(size_t i)
{
    size_t chunk = i / 128, r = i % 128;
    return chunk * 8 + (r % 32) / 16 + 2 * (r / 32);
}

static void
s_dequantize_q6_k(const bly_block_q6_k_t *x, float *y, size_t n)
{
    for (size_t b = 0; b < n / BLY_QK_K; b++) {
        float d = bly_fp16_to_fp32(x[b].d);
        for (size_t i = 0; i < BLY_QK_K; i++)
            *y++ = d * (float) x[b].scales[s_q6_k_scale_index(i)]
                   * (float) s_q6_k_quant(&x[b], i);
    }
}

void
bly_ref_dequantize_row(bly_type_t type, const void *src, float *dst, size_t n)
{
    bly_assert(src);
    bly_assert(dst);
    bly_assert(n % bly_ref_block_elements(type) == 0);
    const uint16_t *h = src;
    const bly_block_q8_k_t *q8k = src;
    switch (type) {
    case BLY_TYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case BLY_TYPE_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = bly_fp16_to_fp32(h[i]);
        break;
    case BLY_TYPE_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = bly_bf16_to_fp32(h[i]);
        break;
    case BLY_TYPE_Q8_0: s_dequantize_q8_0(src, dst, n); break;
    case BLY_TYPE_Q4_K: s_dequantize_q4_k(src, dst, n); break;
    case BLY_TYPE_Q6_K: s_dequantize_q6_k(src, dst, n); break;
    case BLY_TYPE_Q8_K:
        for (size_t i = 0; i < n; i++)
            dst[i] = q8k[i / BLY_QK_K].d * (float) q8k[i / BLY_QK_K].qs[i % BLY_QK_K];
        break;
    default: bly_assert(!"unsupported type");
    }
}

/* ---- Quantization of activations --------------------------------------- */

void
bly_ref_quantize_row_q8_0(const float *x, bly_block_q8_0_t *y, size_t n)
{
    bly_assert(x);
    bly_assert(y);
    bly_assert(n % BLY_QK8_0 == 0);
    for (size_t b = 0; b < n / BLY_QK8_0; b++) {
        const float *xb = x + b * BLY_QK8_0;
        float amax = 0.0f;
        for (size_t j = 0; j < BLY_QK8_0; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        y[b].d = bly_fp32_to_fp16(amax / 127.0f);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        for (size_t j = 0; j < BLY_QK8_0; j++)
            y[b].qs[j] = (int8_t) nearbyintf(xb[j] * id);   //  Half to even.
    }
}

void
bly_ref_quantize_row_q8_k(const float *x, bly_block_q8_k_t *y, size_t n)
{
    bly_assert(x);
    bly_assert(y);
    bly_assert(n % BLY_QK_K == 0);
    for (size_t b = 0; b < n / BLY_QK_K; b++) {
        const float *xb = x + b * BLY_QK_K;
        float amax = 0.0f, max = 0.0f;
        for (size_t j = 0; j < BLY_QK_K; j++) {
            if (fabsf(xb[j]) > amax) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        memset(&y[b], 0, sizeof(y[b]));
        if (amax == 0.0f)
            continue;
        float iscale = -127.0f / max;
        for (size_t j = 0; j < BLY_QK_K; j++) {
            float v = nearbyintf(iscale * xb[j]);
            y[b].qs[j] = (int8_t) (v > 127.0f ? 127.0f : v);
        }
        for (size_t g = 0; g < BLY_QK_K / 16; g++) {
            int sum = 0;
            for (size_t j = 0; j < 16; j++)
                sum += y[b].qs[g * 16 + j];
            y[b].bsums[g] = (int16_t) sum;
        }
        y[b].d = 1.0f / iscale;
    }
}

void
bly_ref_quantize_row(bly_type_t wtype, const float *x, void *y, size_t n)
{
    bly_assert(x);
    bly_assert(y);
    uint16_t *h = y;
    switch (bly_ref_vec_dot_type(wtype)) {
    case BLY_TYPE_F32: memcpy(y, x, n * sizeof(float)); break;
    case BLY_TYPE_F16:
        for (size_t i = 0; i < n; i++)
            h[i] = bly_fp32_to_fp16(x[i]);
        break;
    case BLY_TYPE_BF16:
        for (size_t i = 0; i < n; i++)
            h[i] = bly_fp32_to_bf16(x[i]);
        break;
    case BLY_TYPE_Q8_0: bly_ref_quantize_row_q8_0(x, y, n); break;
    case BLY_TYPE_Q8_K: bly_ref_quantize_row_q8_k(x, y, n); break;
    default: bly_assert(!"unsupported type");
    }
}

/* ---- Dot products ------------------------------------------------------ */

static float
s_dot_q8_0(const bly_block_q8_0_t *w, const bly_block_q8_0_t *x, size_t n)
{
    float sum = 0.0f;
    for (size_t b = 0; b < n / BLY_QK8_0; b++) {
        int32_t isum = 0;
        for (size_t j = 0; j < BLY_QK8_0; j++)
            isum += (int32_t) w[b].qs[j] * x[b].qs[j];
        sum += (float) isum * (bly_fp16_to_fp32(w[b].d) * bly_fp16_to_fp32(x[b].d));
    }
    return sum;
}

static float
s_dot_q4_k(const bly_block_q4_k_t *w, const bly_block_q8_k_t *x, size_t n)
{
    float sum = 0.0f;
    for (size_t b = 0; b < n / BLY_QK_K; b++) {
        int32_t isum = 0, msum = 0;
        for (size_t j = 0; j < 8; j++) {
            uint8_t sc, m;
            bly_ref_q4_k_scale_min(j, w[b].scales, &sc, &m);
            const uint8_t *q = w[b].qs + (j / 2) * 32;
            int32_t dot = 0;
            for (size_t l = 0; l < 32; l++) {
                int v = (j & 1) ? q[l] >> 4 : q[l] & 0xf;
                dot += v * x[b].qs[j * 32 + l];
            }
            isum += sc * dot;
            msum += m * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        float d = bly_fp16_to_fp32(w[b].d) * x[b].d;
        float dmin = bly_fp16_to_fp32(w[b].dmin) * x[b].d;
        sum += d * (float) isum - dmin * (float) msum;
    }
    return sum;
}

static float
s_dot_q6_k(const bly_block_q6_k_t *w, const bly_block_q8_k_t *x, size_t n)
{
    float sum = 0.0f;
    for (size_t b = 0; b < n / BLY_QK_K; b++) {
        int32_t isum = 0;
        for (size_t g = 0; g < BLY_QK_K / 16; g++) {
            int32_t dot = 0;
            for (size_t l = 0; l < 16; l++) {
                size_t i = g * 16 + l;
                dot += s_q6_k_quant(&w[b], i) * x[b].qs[i];
            }
            isum += w[b].scales[s_q6_k_scale_index(g * 16)] * dot;
        }
        sum += bly_fp16_to_fp32(w[b].d) * x[b].d * (float) isum;
    }
    return sum;
}

float
bly_ref_vec_dot(bly_type_t wtype, const void *w, const void *x, size_t n)
{
    bly_assert(w);
    bly_assert(x);
    const float *wf = w, *xf = x;
    const uint16_t *wh = w, *xh = x;
    double sum = 0.0;
    switch (wtype) {
    case BLY_TYPE_F32:
        for (size_t i = 0; i < n; i++)
            sum += (double) wf[i] * xf[i];
        return (float) sum;
    case BLY_TYPE_F16:
        for (size_t i = 0; i < n; i++)
            sum += (double) bly_fp16_to_fp32(wh[i]) * bly_fp16_to_fp32(xh[i]);
        return (float) sum;
    case BLY_TYPE_BF16:
        for (size_t i = 0; i < n; i++)
            sum += (double) bly_bf16_to_fp32(wh[i]) * bly_bf16_to_fp32(xh[i]);
        return (float) sum;
    case BLY_TYPE_Q8_0: return s_dot_q8_0(w, x, n);
    case BLY_TYPE_Q4_K: return s_dot_q4_k(w, x, n);
    case BLY_TYPE_Q6_K: return s_dot_q6_k(w, x, n);
    default: bly_assert(!"unsupported type");
    }
    return 0.0f;
}

size_t
bly_ref_matmul_scratch_size(bly_type_t wtype, size_t n_in, size_t n_tokens)
{
    return bly_ref_row_size(bly_ref_vec_dot_type(wtype), n_in) * n_tokens;
}

void
bly_ref_matmul(bly_type_t wtype, const void *w, size_t n_in, size_t n_out, const float *x,
               size_t n_tokens, float *y, void *scratch)
{
    bly_assert(w);
    bly_assert(x);
    bly_assert(y);
    bly_assert(scratch);
    size_t x_row = bly_ref_row_size(bly_ref_vec_dot_type(wtype), n_in);
    size_t w_row = bly_ref_row_size(wtype, n_in);
    uint8_t *xq = scratch;
    for (size_t t = 0; t < n_tokens; t++)
        bly_ref_quantize_row(wtype, x + t * n_in, xq + t * x_row, n_in);
    for (size_t t = 0; t < n_tokens; t++)
        for (size_t o = 0; o < n_out; o++)
            y[t * n_out + o] = bly_ref_vec_dot(wtype, (const uint8_t *) w + o * w_row,
                                               xq + t * x_row, n_in);
}

/* ---- Element-wise and attention ---------------------------------------- */

void
bly_ref_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps)
{
    bly_assert(out);
    bly_assert(x);
    bly_assert(n > 0);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += (double) (x[i] * x[i]);
    float mean = (float) (sum / (double) n);
    float scale = 1.0f / sqrtf(mean + eps);
    for (size_t i = 0; i < n; i++)
        out[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

//  cos/sin of theta_i = pos * base^(-2i/dim) for i < dim/2, built by
//  repeated multiplication in float as llama.cpp does.
static void
s_rope_angles(size_t head_dim, int64_t pos, float base, float *cos_out, float *sin_out)
{
    float theta_scale = powf(base, -2.0f / (float) head_dim);
    float theta = (float) pos;
    for (size_t i = 0; i < head_dim / 2; i++) {
        cos_out[i] = cosf(theta);
        sin_out[i] = sinf(theta);
        theta *= theta_scale;
    }
}

#define S_HEAD_DIM_MAX 1024

void
bly_ref_rope_neox(float *x, size_t n_heads, size_t head_dim, int64_t pos, float base)
{
    bly_assert(x);
    bly_assert(head_dim % 2 == 0);
    bly_assert(head_dim <= S_HEAD_DIM_MAX);
    float c[S_HEAD_DIM_MAX / 2], s[S_HEAD_DIM_MAX / 2];
    s_rope_angles(head_dim, pos, base, c, s);
    size_t half = head_dim / 2;
    for (size_t h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        for (size_t i = 0; i < half; i++) {
            float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * c[i] - x1 * s[i];
            v[i + half] = x0 * s[i] + x1 * c[i];
        }
    }
}

void
bly_ref_rope_normal(float *x, size_t n_heads, size_t head_dim, int64_t pos, float base)
{
    bly_assert(x);
    bly_assert(head_dim % 2 == 0);
    bly_assert(head_dim <= S_HEAD_DIM_MAX);
    float c[S_HEAD_DIM_MAX / 2], s[S_HEAD_DIM_MAX / 2];
    s_rope_angles(head_dim, pos, base, c, s);
    for (size_t h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        for (size_t i = 0; i < head_dim / 2; i++) {
            float x0 = v[2 * i], x1 = v[2 * i + 1];
            v[2 * i] = x0 * c[i] - x1 * s[i];
            v[2 * i + 1] = x0 * s[i] + x1 * c[i];
        }
    }
}

void
bly_ref_softmax(float *x, size_t n)
{
    bly_assert(x);
    bly_assert(n > 0);
    float max = x[0];
    for (size_t i = 1; i < n; i++)
        max = fmaxf(max, x[i]);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float) (1.0 / sum);
    for (size_t i = 0; i < n; i++)
        x[i] *= inv;
}

void
bly_ref_attention(float *out, const float *q, const float *k_cache, const float *v_cache,
                  size_t n_head, size_t n_kv_head, size_t head_dim, size_t n_kv, float *scores)
{
    bly_assert(out);
    bly_assert(q);
    bly_assert(k_cache);
    bly_assert(v_cache);
    bly_assert(scores);
    bly_assert(n_kv_head > 0);
    bly_assert(n_head % n_kv_head == 0);
    bly_assert(n_kv > 0);
    size_t group = n_head / n_kv_head, kv_stride = n_kv_head * head_dim;
    float scale = 1.0f / sqrtf((float) head_dim);
    for (size_t h = 0; h < n_head; h++) {
        const float *qh = q + h * head_dim;
        size_t kvh = h / group;
        for (size_t p = 0; p < n_kv; p++) {
            const float *k = k_cache + p * kv_stride + kvh * head_dim;
            scores[p] = bly_ref_vec_dot(BLY_TYPE_F32, k, qh, head_dim) * scale;
        }
        bly_ref_softmax(scores, n_kv);
        float *oh = out + h * head_dim;
        for (size_t d = 0; d < head_dim; d++) {
            double sum = 0.0;
            for (size_t p = 0; p < n_kv; p++)
                sum += (double) scores[p] * v_cache[p * kv_stride + kvh * head_dim + d];
            oh[d] = (float) sum;
        }
    }
}

void
bly_ref_swiglu(float *out, const float *gate, const float *up, size_t n)
{
    bly_assert(out);
    bly_assert(gate);
    bly_assert(up);
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void
bly_ref_add(float *y, const float *x, size_t n)
{
    bly_assert(y);
    bly_assert(x);
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

size_t
bly_ref_argmax(const float *x, size_t n)
{
    bly_assert(x);
    bly_assert(n > 0);
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best] || (x[best] != x[best] && x[i] == x[i]))
            best = i;
    return best;
}
