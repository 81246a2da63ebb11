/*  =========================================================================
    bly_kernels - optimised CPU kernels: SIMD with runtime dispatch, threads

    AVX2 functions carry __attribute__((target)) so the library builds for
    any x86-64 and picks them at run time with __builtin_cpu_supports.
    ========================================================================= */

#include "bly_kernels.h"

#include "bly_limits.h"
#include "bly_log.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define S_X86 1
#else
#define S_X86 0
#endif

static atomic_int s_isa = -1;   //  bly_kern_isa_t once detected (any thread may ask).

static bly_kern_isa_t
s_detect(void)
{
#if S_X86
    __builtin_cpu_init();
    //  clang 14 does not know "f16c" in __builtin_cpu_supports: ask CPUID
    //  (leaf 1, ECX bit 29) directly.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c)
        return BLY_KERN_AVX2;
#endif
    return BLY_KERN_PORTABLE;
}

bly_kern_isa_t
bly_kern_isa(void)
{
    int isa = atomic_load_explicit(&s_isa, memory_order_relaxed);
    if (isa < 0) {
        isa = (int) s_detect();
        atomic_store_explicit(&s_isa, isa, memory_order_relaxed);
    }
    return (bly_kern_isa_t) isa;
}

const char *
bly_kern_isa_name(bly_kern_isa_t isa)
{
    return isa == BLY_KERN_AVX2 ? "avx2" : "portable";
}

bly_kern_isa_t
bly_kern_set_isa(bly_kern_isa_t isa)
{
    bly_kern_isa_t best = s_detect();
    bly_kern_isa_t use = isa <= best ? isa : best;
    atomic_store(&s_isa, (int) use);
    return use;
}

//  Q8_0 activation scales as floats, in groups of four tokens: token t's
//  scale of block b is at (t / 4) * 4 * n_blocks + 4 * b + t % 4.
static inline size_t
s_xd_index(size_t t, size_t b, size_t n_blocks)
{
    return (t / 4) * 4 * n_blocks + 4 * b + t % 4;
}

//  Blocks per row the 4x4 tile takes (its four rows' scales sit on the
//  stack: 32 KiB); every Q8_0 matrix of a model within BLY_MODEL_FF_MAX.
//  Longer rows take the 1-row kernel, which gives the same results.
#define S_TILE_BLOCKS_MAX (BLY_MODEL_FF_MAX / BLY_QK8_0)

/* ---- AVX2 kernels ------------------------------------------------------ */

#if S_X86
#define S_AVX2 __attribute__((target("avx2,fma,f16c")))

S_AVX2 static inline float
s_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

S_AVX2 static float
s_dot_f32_avx2(const float *a, const float *b, size_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float sum = s_hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

S_AVX2 static float
s_dot_f16_avx2(const uint16_t *a, const uint16_t *b, size_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (a + i)));
        __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (b + i)));
        __m256 a1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (a + i + 8)));
        __m256 b1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (b + i + 8)));
        acc0 = _mm256_fmadd_ps(a0, b0, acc0);
        acc1 = _mm256_fmadd_ps(a1, b1, acc1);
    }
    float sum = s_hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        sum += _cvtsh_ss(a[i]) * _cvtsh_ss(b[i]);
    return sum;
}

S_AVX2 static inline __m256
s_bf16x8(const uint16_t *p)
{
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *) p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

S_AVX2 static float
s_dot_bf16_avx2(const uint16_t *a, const uint16_t *b, size_t n)
{
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(s_bf16x8(a + i), s_bf16x8(b + i), acc);
    float sum = s_hsum(acc);
    for (; i < n; i++)
        sum += bly_bf16_to_fp32(a[i]) * bly_bf16_to_fp32(b[i]);
    return sum;
}

//  Q8_0 block products on AVX2. Every path (4x4 prefill tile, 4-row
//  decode, 1-row tails, bly_kern_vec_dot) computes a row-token product the
//  same way, so results do not depend on batching or threads:
//    lo_b, hi_b = exact integer sums of elements 0..15 and 16..31 of block b
//    acc_lo = fma(dw_b * dx_b, (float) lo_b, acc_lo), in block order
//    acc_hi likewise; result = acc_lo + acc_hi
//  maddubs needs one unsigned operand, so the sign of w moves onto x (pair
//  sums stay below 2 * 128 * 127, no saturation); madd with ones widens to
//  int32 lanes of 4 elements; two levels of hadd fold four such vectors into
//  one whose lane k holds lo of product k and lane 4 + k its hi. One
//  convert, multiply and FMA then serve four products.

S_AVX2 static inline __m256i
s_q8_pairs(__m256i wabs, __m256i wv, const int8_t *xqs, __m256i ones)
{
    __m256i xv = _mm256_loadu_si256((const __m256i *) xqs);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, _mm256_sign_epi8(xv, wv)), ones);
}

S_AVX2 static inline __m256i
s_q8_row_pairs(const bly_block_q8_0_t *wb, const int8_t *xqs, __m256i ones)
{
    __m256i wv = _mm256_loadu_si256((const __m256i *) wb->qs);
    return s_q8_pairs(_mm256_sign_epi8(wv, wv), wv, xqs, ones);
}

S_AVX2 static inline __m256i
s_fold4(__m256i p0, __m256i p1, __m256i p2, __m256i p3)
{
    return _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
}

//  Lane k of the result: acc lane k + acc lane 4 + k.
S_AVX2 static inline void
s_store_lohi(__m256 acc, float *out, size_t n)
{
    float tmp[4];
    _mm_storeu_ps(tmp, _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1)));
    for (size_t k = 0; k < n; k++)
        out[k] = tmp[k];
}

//  One Q8_0 weight row times 1..4 activation rows of one token group (x[t]
//  for t < n_x; dx4 the group's scales, s_xd_index layout).
S_AVX2 static void
s_dot_q8_0_avx2(const bly_block_q8_0_t *w, const bly_block_q8_0_t *const *x, size_t n_x,
                const float *dx4, size_t n_blocks, float *out)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const __m128i mask = _mm_cmpgt_epi32(_mm_set1_epi32((int) n_x), _mm_setr_epi32(0, 1, 2, 3));
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < n_blocks; b++) {
        __m256i wv = _mm256_loadu_si256((const __m256i *) w[b].qs);
        __m256i wabs = _mm256_sign_epi8(wv, wv);
        __m256i p[4];
        for (size_t t = 0; t < 4; t++)
            p[t] = t < n_x ? s_q8_pairs(wabs, wv, x[t][b].qs, ones) : _mm256_setzero_si256();
        __m128 d = _mm_maskload_ps(dx4 + 4 * b, mask);
        __m256 s = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d)), _mm256_set_m128(d, d));
        acc = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(s_fold4(p[0], p[1], p[2], p[3])), acc);
    }
    s_store_lohi(acc, out, n_x);
}

//  bly_kern_vec_dot for Q8_0: one row, one token, scales converted here.
S_AVX2 static float
s_dot1_q8_0_avx2(const bly_block_q8_0_t *w, const bly_block_q8_0_t *x, size_t n_blocks)
{
    const __m256i ones = _mm256_set1_epi16(1), zero = _mm256_setzero_si256();
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < n_blocks; b++) {
        __m256i wv = _mm256_loadu_si256((const __m256i *) w[b].qs);
        __m256i p = s_q8_pairs(_mm256_sign_epi8(wv, wv), wv, x[b].qs, ones);
        __m256 s = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        acc = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(s_fold4(p, zero, zero, zero)), acc);
    }
    float out;
    s_store_lohi(acc, &out, 1);
    return out;
}

//  Four Q8_0 weight rows times a group of four activation rows (prefill):
//  each weight block serves four tokens, each activation block four rows,
//  one accumulator per row. dw4 holds the four rows' block scales as floats
//  (4 * b + row), converted once for all token groups.
S_AVX2 static void
s_tile_q8_0_4x4(const uint8_t *w, size_t w_row, const float *dw4,
                const bly_block_q8_0_t *const *x, const float *dx4, size_t n_blocks,
                float out[4][4])
{
    const bly_block_q8_0_t *w0 = (const void *) w, *w1 = (const void *) (w + w_row);
    const bly_block_q8_0_t *w2 = (const void *) (w + 2 * w_row);
    const bly_block_q8_0_t *w3 = (const void *) (w + 3 * w_row);
    const bly_block_q8_0_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
#define S_ROW(wr, i, acc)                                                                          \
    do {                                                                                           \
        __m256i wv = _mm256_loadu_si256((const __m256i *) (wr)[b].qs);                             \
        __m256i wabs = _mm256_sign_epi8(wv, wv);                                                   \
        __m256i h = s_fold4(s_q8_pairs(wabs, wv, x0[b].qs, ones),                                  \
                            s_q8_pairs(wabs, wv, x1[b].qs, ones),                                  \
                            s_q8_pairs(wabs, wv, x2[b].qs, ones),                                  \
                            s_q8_pairs(wabs, wv, x3[b].qs, ones));                                 \
        __m256 s = _mm256_mul_ps(_mm256_broadcast_ss(dw4 + 4 * b + (i)), dx);                      \
        acc = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(h), acc);                                      \
    } while (0)
    for (size_t b = 0; b < n_blocks; b++) {
        __m256 dx = _mm256_broadcast_ps((const __m128 *) (dx4 + 4 * b));
        S_ROW(w0, 0, acc0);
        S_ROW(w1, 1, acc1);
        S_ROW(w2, 2, acc2);
        S_ROW(w3, 3, acc3);
    }
#undef S_ROW
    s_store_lohi(acc0, out[0], 4);
    s_store_lohi(acc1, out[1], 4);
    s_store_lohi(acc2, out[2], 4);
    s_store_lohi(acc3, out[3], 4);
}

//  Four Q8_0 weight rows times one activation row (decode): the four rows'
//  products fold into one vector, scaled by the four rows' scales times
//  the token's (the same products as the tile's, multiplied the other way
//  round).
S_AVX2 static void
s_rows4_q8_0_x1(const uint8_t *w, size_t w_row, const bly_block_q8_0_t *x, const float *dx4,
                size_t n_blocks, float out[4])
{
    const bly_block_q8_0_t *w0 = (const void *) w, *w1 = (const void *) (w + w_row);
    const bly_block_q8_0_t *w2 = (const void *) (w + 2 * w_row);
    const bly_block_q8_0_t *w3 = (const void *) (w + 3 * w_row);
    __m256 acc = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    //  Four rows of ~1 KiB are four short streams the hardware prefetcher
    //  barely learns: fetch the next four rows (contiguous) while these run.
    const char *next = (const char *) (w + 4 * w_row);
    size_t ahead = 4 * w_row / n_blocks + 1;
    for (size_t b = 0; b < n_blocks; b++) {
        _mm_prefetch(next + b * ahead, _MM_HINT_T0);
        _mm_prefetch(next + b * ahead + 64, _MM_HINT_T0);
        const int8_t *xqs = x[b].qs;
        __m256i h = s_fold4(s_q8_row_pairs(&w0[b], xqs, ones), s_q8_row_pairs(&w1[b], xqs, ones),
                            s_q8_row_pairs(&w2[b], xqs, ones), s_q8_row_pairs(&w3[b], xqs, ones));
        __m128 dw = _mm_cvtph_ps(_mm_setr_epi16((short) w0[b].d, (short) w1[b].d,
                                                (short) w2[b].d, (short) w3[b].d, 0, 0, 0, 0));
        __m256 s = _mm256_mul_ps(_mm256_set_m128(dw, dw), _mm256_broadcast_ss(dx4 + 4 * b));
        acc = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(h), acc);
    }
    s_store_lohi(acc, out, 4);
}

//  Exact sum over 16 groups of bsums[g] * k[g] (int16 both, no overflow:
//  |bsum| <= 16 * 128, |k| < 64), as madd and a horizontal integer sum.
S_AVX2 static inline int32_t
s_bsums_dot(const int16_t *bsums, __m256i k)
{
    __m256i p = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *) bsums), k);
    __m128i q = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    q = _mm_add_epi32(q, _mm_unpackhi_epi64(q, q));
    q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 1));
    return _mm_cvtsi128_si32(q);
}

//  Q4_K weights times 1..4 Q8_K activation rows. Per superblock: 4-bit
//  quants are unsigned, so maddubs takes them as is; each 32-quant
//  sub-block's pair sums are scaled by its 6-bit scale with madd; the mins
//  come in through the activation group sums (bsums). The nibbles and
//  scales are unpacked once per superblock for all the tokens; each token
//  sees the same operations whatever n_x, so prefill and decode agree.
S_AVX2 static void
s_dot_q4_k_avx2(const bly_block_q4_k_t *w, const bly_block_q8_k_t *const *x, size_t n_x,
                size_t n, float *out)
{
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    float mins[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t b = 0; b < n / BLY_QK_K; b++) {
        uint8_t sc[8], m[8];
        for (size_t j = 0; j < 8; j++)
            bly_ref_q4_k_scale_min(j, w[b].scales, &sc[j], &m[j]);
        __m256i q4[8], scale[8];
        //  Each min once per pair of 16-quant groups: [m0, m0, m1, m1, ...].
        __m256i mins16 = _mm256_setr_epi16(m[0], m[0], m[1], m[1], m[2], m[2], m[3], m[3], m[4],
                                           m[4], m[5], m[5], m[6], m[6], m[7], m[7]);
        for (size_t c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *) (w[b].qs + 32 * c));
            q4[2 * c] = _mm256_and_si256(q, low4);
            q4[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        }
        for (size_t j = 0; j < 8; j++)
            scale[j] = _mm256_set1_epi16(sc[j]);
        float dw = _cvtsh_ss(w[b].d), dmin = _cvtsh_ss(w[b].dmin);
        for (size_t t = 0; t < n_x; t++) {
            const bly_block_q8_k_t *xb = &x[t][b];
            int32_t msum = s_bsums_dot(xb->bsums, mins16);
            __m256i isum = _mm256_setzero_si256();
            for (size_t k = 0; k < 8; k++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *) (xb->qs + 32 * k));
                isum = _mm256_add_epi32(
                    isum, _mm256_madd_epi16(_mm256_maddubs_epi16(q4[k], xv), scale[k]));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xb->d), _mm256_cvtepi32_ps(isum), acc[t]);
            mins[t] += dmin * xb->d * (float) msum;
        }
    }
    for (size_t t = 0; t < n_x; t++)
        out[t] = s_hsum(acc[t]) - mins[t];
}

//  Q6_K weights times 1..4 Q8_K activation rows: quants rebuilt as
//  unsigned 0..63 once per superblock (the -32 offset comes back through
//  the group sums), pair sums scaled per 16-quant group with madd.
S_AVX2 static void
s_dot_q6_k_avx2(const bly_block_q6_k_t *w, const bly_block_q8_k_t *const *x, size_t n_x,
                size_t n, float *out)
{
    const __m256i low4 = _mm256_set1_epi8(0x0f), two = _mm256_set1_epi8(0x03);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (size_t b = 0; b < n / BLY_QK_K; b++) {
        //  q[4 * c + k]: quarter k of half c: low nibbles of ql0/ql1 (k = 0,
        //  1) or high nibbles (k = 2, 3), plus bits 2k..2k+1 of qh on top.
        __m256i q[8], scale[8];
        for (size_t c = 0; c < 2; c++) {
            __m256i ql0 = _mm256_loadu_si256((const __m256i *) (w[b].ql + 64 * c));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *) (w[b].ql + 64 * c + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *) (w[b].qh + 32 * c));
            for (int k = 0; k < 4; k++) {
                __m256i l = k & 1 ? ql1 : ql0;
                __m256i nib = _mm256_and_si256(k < 2 ? l : _mm256_srli_epi16(l, 4), low4);
                __m256i h = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k)), two);
                q[4 * c + k] = _mm256_or_si256(nib, _mm256_slli_epi16(h, 4));
                const int8_t *sc = w[b].scales + 8 * c + 2 * k;
                scale[4 * c + k] = _mm256_setr_m128i(_mm_set1_epi16(sc[0]), _mm_set1_epi16(sc[1]));
            }
        }
        float dw = _cvtsh_ss(w[b].d);
        for (size_t t = 0; t < n_x; t++) {
            const bly_block_q8_k_t *xb = &x[t][b];
            int32_t offset = 0;
            for (size_t g = 0; g < 16; g++)
                offset += w[b].scales[g] * xb->bsums[g];
            __m256i isum = _mm256_setzero_si256();
            for (size_t k = 0; k < 8; k++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *) (xb->qs + 32 * k));
                isum = _mm256_add_epi32(
                    isum, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], xv), scale[k]));
            }
            float d = dw * xb->d;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc[t]);
            acc[t] = _mm256_add_ps(acc[t], _mm256_setr_ps(-32.0f * d * (float) offset, 0, 0, 0, 0,
                                                          0, 0, 0));
        }
    }
    for (size_t t = 0; t < n_x; t++)
        out[t] = s_hsum(acc[t]);
}

S_AVX2 static void
s_quantize_q8_0_avx2(const float *x, bly_block_q8_0_t *y, size_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t b = 0; b < n / BLY_QK8_0; b++) {
        const float *xb = x + b * BLY_QK8_0;
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        float max = _mm_cvtss_f32(m);
        y[b].d = bly_fp32_to_fp16(max / 127.0f);
        __m256 id = _mm256_set1_ps(max != 0.0f ? 127.0f / max : 0.0f);
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(_mm256_round_ps(
                _mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
        __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
        __m256i p8 = _mm256_packs_epi16(p16a, p16b);
        _mm256_storeu_si256((__m256i *) y[b].qs, _mm256_permutevar8x32_epi32(p8, order));
    }
}

S_AVX2 static void
s_quantize_f16_avx2(const float *x, uint16_t *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *) (y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = bly_fp32_to_fp16(x[i]);
}

//  out += a * v over n floats.
S_AVX2 static void
s_axpy_avx2(float *out, float a, const float *v, size_t n)
{
    __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i,
                         _mm256_fmadd_ps(av, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
    for (; i < n; i++)
        out[i] += a * v[i];
}

//  Q4_K or Q6_K row times 1..4 Q8_K rows.
S_AVX2 static void
s_dot_k_avx2(bly_type_t wtype, const void *w, const void *const *x, size_t n_x, size_t n,
             float *out)
{
    if (wtype == BLY_TYPE_Q4_K)
        s_dot_q4_k_avx2(w, (const bly_block_q8_k_t *const *) x, n_x, n, out);
    else
        s_dot_q6_k_avx2(w, (const bly_block_q8_k_t *const *) x, n_x, n, out);
}
#endif

/* ---- Dispatch ---------------------------------------------------------- */

static bool
s_use_avx2(void)
{
    return S_X86 && bly_kern_isa() == BLY_KERN_AVX2;
}

void
bly_kern_quantize_row(bly_type_t wtype, const float *x, void *y, size_t n)
{
    bly_assert(x);
    bly_assert(y);
#if S_X86
    if (s_use_avx2() && wtype == BLY_TYPE_Q8_0) {
        bly_assert(n % BLY_QK8_0 == 0);
        s_quantize_q8_0_avx2(x, y, n);
        return;
    }
    if (s_use_avx2() && wtype == BLY_TYPE_F16) {
        s_quantize_f16_avx2(x, y, n);
        return;
    }
#endif
    bly_ref_quantize_row(wtype, x, y, n);
}

float
bly_kern_vec_dot(bly_type_t wtype, const void *w, const void *x, size_t n)
{
    bly_assert(w);
    bly_assert(x);
#if S_X86
    if (s_use_avx2()) {
        switch (wtype) {
        case BLY_TYPE_F32: return s_dot_f32_avx2(w, x, n);
        case BLY_TYPE_F16: return s_dot_f16_avx2(w, x, n);
        case BLY_TYPE_BF16: return s_dot_bf16_avx2(w, x, n);
        case BLY_TYPE_Q4_K:
        case BLY_TYPE_Q6_K: {
            const void *xs[1] = {x};
            float out;
            s_dot_k_avx2(wtype, w, xs, 1, n, &out);
            return out;
        }
        case BLY_TYPE_Q8_0:
            bly_assert(n % BLY_QK8_0 == 0);
            return s_dot1_q8_0_avx2(w, x, n / BLY_QK8_0);
        default: break;
        }
    }
#endif
    return bly_ref_vec_dot(wtype, w, x, n);
}

/* ---- Matmul ------------------------------------------------------------ */

//  One matmul call shared by the pool's threads.
typedef struct {
    bly_pool_t *pool;     //  For the chunk counter.
    bly_type_t wtype;     //  Weight type (of every matrix).
    const bly_kern_mat_t *mats;   //  The matrices sharing this input.
    size_t n_mats;        //  1..BLY_KERN_MATS_MAX.
    size_t chunk_end[BLY_KERN_MATS_MAX];   //  Cumulative work chunks per matrix.
    size_t w_row;         //  Bytes per weight row.
    size_t n_in;          //  Elements per row.
    const float *x;       //  Activations (float).
    uint8_t *xq;          //  Activations converted to the vec-dot type.
    size_t x_row;         //  Bytes per converted activation row.
    float *xd;            //  Q8_0 on AVX2: activation scales as floats (s_xd_index).
    size_t n_tokens;      //  Activation rows.
    size_t chunk_rows;    //  Weight rows per work chunk (a multiple of 4).
    bool tiled;           //  Q8_0 on AVX2: the 4x4 tile kernel.
} s_matmul_t;

size_t
bly_kern_matmul_scratch_size(bly_type_t wtype, size_t n_in, size_t n_tokens)
{
    size_t size = bly_ref_matmul_scratch_size(wtype, n_in, n_tokens);
    if (wtype == BLY_TYPE_Q8_0)   //  Scales in whole groups of four tokens.
        size += 64 + (n_tokens + 3) / 4 * 4 * (n_in / BLY_QK8_0) * sizeof(float);
    return size;
}

//  Quantize activation rows: all of them when called directly (pool NULL),
//  else the rows the shared counter hands out.
static void
s_quantize_rows(s_matmul_t *job, bly_pool_t *pool)
{
    size_t n_blocks = job->n_in / BLY_QK8_0;
    for (size_t i = 0;; i++) {
        size_t t = pool ? bly_pool_next_chunk(pool) : i;
        if (t >= job->n_tokens)
            break;
        uint8_t *row = job->xq + t * job->x_row;
        bly_kern_quantize_row(job->wtype, job->x + t * job->n_in, row, job->n_in);
        const bly_block_q8_0_t *blocks = (const void *) row;
        for (size_t b = 0; job->xd && b < n_blocks; b++)
            job->xd[s_xd_index(t, b, n_blocks)] = bly_fp16_to_fp32(blocks[b].d);
    }
}

static void
s_quantize_worker(void *arg, size_t index, size_t n_threads)
{
    s_matmul_t *job = arg;
    (void) index;
    (void) n_threads;
    s_quantize_rows(job, job->pool);
}

//  Rows [r0, r1) of the 1..4 tokens from t0 (a multiple of 4) without the
//  tile: four rows at a time for one token (decode), else one row at a time.
static void
s_rows_simple(const s_matmul_t *job, const bly_kern_mat_t *mat, size_t r0, size_t r1, size_t t0, size_t nt)
{
    size_t r = r0;
#if S_X86
    size_t n_blocks = job->n_in / BLY_QK8_0;
    const float *dx4 = job->xd ? job->xd + s_xd_index(t0, 0, n_blocks) : NULL;
    for (; job->xd && nt == 1 && r + 4 <= r1; r += 4) {
        float out[4];
        s_rows4_q8_0_x1((const uint8_t *) mat->w + r * job->w_row, job->w_row,
                        (const void *) (job->xq + t0 * job->x_row), dx4, n_blocks, out);
        for (size_t i = 0; i < 4; i++)
            mat->y[t0 * mat->n_out + r + i] = out[i];
    }
    for (; job->xd && r < r1; r++) {
        const bly_block_q8_0_t *xs[4];
        float out[4];
        for (size_t t = 0; t < nt; t++)
            xs[t] = (const void *) (job->xq + (t0 + t) * job->x_row);
        s_dot_q8_0_avx2((const void *) ((const uint8_t *) mat->w + r * job->w_row), xs, nt, dx4,
                        n_blocks, out);
        for (size_t t = 0; t < nt; t++)
            mat->y[(t0 + t) * mat->n_out + r] = out[t];
    }
    bool kquant = job->wtype == BLY_TYPE_Q4_K || job->wtype == BLY_TYPE_Q6_K;
    for (; kquant && s_use_avx2() && r < r1; r++) {
        const void *xs[4];
        float out[4];
        for (size_t t = 0; t < nt; t++)
            xs[t] = job->xq + (t0 + t) * job->x_row;
        s_dot_k_avx2(job->wtype, (const uint8_t *) mat->w + r * job->w_row, xs, nt, job->n_in,
                     out);
        for (size_t t = 0; t < nt; t++)
            mat->y[(t0 + t) * mat->n_out + r] = out[t];
    }
#endif
    for (; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *) mat->w + r * job->w_row;
        for (size_t t = 0; t < nt; t++)
            mat->y[(t0 + t) * mat->n_out + r]
                = bly_kern_vec_dot(job->wtype, wr, job->xq + (t0 + t) * job->x_row, job->n_in);
    }
}

#if S_X86
//  Rows [r0, r1) (a multiple of 4 apart) for the whole groups of four
//  tokens with the 4x4 tile: per four rows, their scales are converted once
//  and the rows (in L1) serve every token group.
S_AVX2 static void
s_matmul_tiles(const s_matmul_t *job, const bly_kern_mat_t *mat, size_t r0, size_t r1)
{
    size_t n_blocks = job->n_in / BLY_QK8_0;
    float dw4[4 * S_TILE_BLOCKS_MAX];
    bly_assert(n_blocks <= S_TILE_BLOCKS_MAX);
    for (size_t r = r0; r + 4 <= r1; r += 4) {
        const uint8_t *w = (const uint8_t *) mat->w + r * job->w_row;
        for (size_t i = 0; i < 4; i++) {
            const bly_block_q8_0_t *row = (const void *) (w + i * job->w_row);
            for (size_t b = 0; b < n_blocks; b++)
                dw4[4 * b + i] = _cvtsh_ss(row[b].d);
        }
        for (size_t t0 = 0; t0 + 4 <= job->n_tokens; t0 += 4) {
            const bly_block_q8_0_t *xs[4];
            for (size_t t = 0; t < 4; t++)
                xs[t] = (const void *) (job->xq + (t0 + t) * job->x_row);
            float out[4][4];
            s_tile_q8_0_4x4(w, job->w_row, dw4, xs, job->xd + s_xd_index(t0, 0, n_blocks),
                            n_blocks, out);
            for (size_t i = 0; i < 4; i++)
                for (size_t t = 0; t < 4; t++)
                    mat->y[(t0 + t) * mat->n_out + r + i] = out[i][t];
        }
    }
}
#endif

//  Rows r0..r1 for every token: the tile where it applies, then the rows
//  and tokens it leaves, in groups of up to four tokens.
static void
s_matmul_rows(const s_matmul_t *job, const bly_kern_mat_t *mat, size_t r0, size_t r1)
{
    size_t r_tiled = r0, t_tiled = 0;
#if S_X86
    if (job->tiled) {
        r_tiled = r0 + (r1 - r0) / 4 * 4;
        t_tiled = job->n_tokens / 4 * 4;
        s_matmul_tiles(job, mat, r0, r_tiled);
    }
#endif
    for (size_t t0 = 0; t0 < job->n_tokens; t0 += 4) {
        size_t nt = job->n_tokens - t0 < 4 ? job->n_tokens - t0 : 4;
        s_rows_simple(job, mat, t0 < t_tiled ? r_tiled : r0, r1, t0, nt);
    }
}

static void
s_matmul_worker(void *arg, size_t index, size_t n_threads)
{
    s_matmul_t *job = arg;
    (void) index;
    (void) n_threads;
    size_t m = 0;
    for (;;) {
        size_t chunk = bly_pool_next_chunk(job->pool);
        while (m < job->n_mats && chunk >= job->chunk_end[m])
            m++;
        if (m == job->n_mats)
            break;
        const bly_kern_mat_t *mat = &job->mats[m];
        size_t r0 = (chunk - (m ? job->chunk_end[m - 1] : 0)) * job->chunk_rows;
        size_t r1 = r0 + job->chunk_rows < mat->n_out ? r0 + job->chunk_rows : mat->n_out;
        s_matmul_rows(job, mat, r0, r1);
    }
}

void
bly_kern_matmul_multi(bly_pool_t *pool, const bly_kern_mat_t *mats, size_t n_mats, size_t n_in,
                      const float *x, size_t n_tokens, void *scratch)
{
    bly_assert(pool);
    bly_assert(mats);
    bly_assert(n_mats >= 1);
    bly_assert(n_mats <= BLY_KERN_MATS_MAX);
    bly_assert(x);
    bly_assert(scratch);
    bly_type_t wtype = mats[0].type;
    size_t n_threads = bly_pool_size(pool), n_out = 0;
    for (size_t m = 0; m < n_mats; m++) {
        bly_assert(mats[m].type == wtype);
        bly_assert(mats[m].w);
        bly_assert(mats[m].y);
        n_out += mats[m].n_out;
    }
    s_matmul_t job = {
        .pool = pool, .wtype = wtype, .mats = mats, .n_mats = n_mats,
        .w_row = bly_ref_row_size(wtype, n_in), .n_in = n_in, .x = x, .xq = scratch,
        .x_row = bly_ref_row_size(bly_ref_vec_dot_type(wtype), n_in), .n_tokens = n_tokens,
        .tiled = wtype == BLY_TYPE_Q8_0 && s_use_avx2() && n_tokens >= 4
                 && n_in / BLY_QK8_0 <= S_TILE_BLOCKS_MAX,
    };
    if (wtype == BLY_TYPE_Q8_0 && s_use_avx2()) {
        uintptr_t end = (uintptr_t) scratch + job.x_row * n_tokens;
        job.xd = (float *) ((end + 63) & ~(uintptr_t) 63);
    }
    //  Enough chunks per thread to balance a noisy machine, few enough that
    //  the counter is not contended; a multiple of 4 for the row kernels.
    size_t chunk = n_out / (n_threads * 16);
    job.chunk_rows = (chunk < 4 ? 4 : chunk > 64 ? 64 : chunk) & ~(size_t) 3;
    for (size_t m = 0; m < n_mats; m++)
        job.chunk_end[m] = (m ? job.chunk_end[m - 1] : 0)
                           + (mats[m].n_out + job.chunk_rows - 1) / job.chunk_rows;
    if (n_tokens >= 4 && n_threads > 1) {
        bly_pool_reset_chunks(pool);
        bly_pool_run_dynamic(pool, s_quantize_worker, &job);
    } else {
        s_quantize_rows(&job, NULL);
    }
    bly_pool_reset_chunks(pool);
    bly_pool_run_dynamic(pool, s_matmul_worker, &job);
}

void
bly_kern_matmul(bly_pool_t *pool, bly_type_t wtype, const void *w, size_t n_in, size_t n_out,
                const float *x, size_t n_tokens, float *y, void *scratch)
{
    bly_kern_mat_t mat = {.type = wtype, .w = w, .n_out = n_out, .y = y};
    bly_kern_matmul_multi(pool, &mat, 1, n_in, x, n_tokens, scratch);
}

/* ---- Attention --------------------------------------------------------- */

//  One attention call shared by the pool's threads.
typedef struct {
    bly_pool_t *pool;         //  For the chunk counter.
    float *out;               //  n_tokens rows of n_head * head_dim.
    const float *q;           //  Same shape as out.
    const float *k_cache;     //  Position-major rows of n_kv_head * head_dim.
    const float *v_cache;     //  Same shape as k_cache.
    size_t n_head;            //  Query heads.
    size_t n_kv_head;         //  Key/value heads.
    size_t head_dim;          //  Elements per head.
    size_t n_tokens;          //  Query rows.
    size_t pos;               //  Position of query row 0.
    float *scores;            //  Per-thread rows of scores_stride.
    size_t scores_stride;     //  Floats per thread.
} s_attention_t;

#if S_X86
//  out = sum_p w[p] * v[p] over n_kv rows of a head: each 64-float slice of
//  the head is accumulated in eight registers across all positions instead
//  of a load and store of out per position. Every element sees the same FMA
//  sequence as s_axpy_avx2 from zero, so the result is bit-identical to it.
S_AVX2 static void
s_weighted_sum_avx2(float *out, const float *w, const float *v, size_t stride, size_t n_kv,
                    size_t hd)
{
    size_t d = 0;
    for (; d + 64 <= hd; d += 64) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps();
        __m256 a3 = _mm256_setzero_ps(), a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps();
        __m256 a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
        for (size_t p = 0; p < n_kv; p++) {
            const float *vp = v + p * stride + d;
            __m256 wp = _mm256_set1_ps(w[p]);
            a0 = _mm256_fmadd_ps(wp, _mm256_loadu_ps(vp), a0);
            a1 = _mm256_fmadd_ps(wp, _mm256_loadu_ps(vp + 8), a1);
            a2 = _mm256_fmadd_ps(wp, _mm256_loadu_ps(vp + 16), a2);
            a3 = _mm256_fmadd_ps(wp, _mm256_loadu_ps(vp + 24), a3);
            a4 = _mm256_fmadd_ps(wp, _mm256_loadu_ps(vp + 32), a4);
            a5 = _mm256_fmadd_ps(wp, _mm256_loadu_ps(vp + 40), a5);
            a6 = _mm256_fmadd_ps(wp, _mm256_loadu_ps(vp + 48), a6);
            a7 = _mm256_fmadd_ps(wp, _mm256_loadu_ps(vp + 56), a7);
        }
        const __m256 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        for (size_t j = 0; j < 8; j++)
            _mm256_storeu_ps(out + d + 8 * j, acc[j]);
    }
    memset(out + d, 0, (hd - d) * sizeof(float));
    for (size_t p = 0; d < hd && p < n_kv; p++)
        s_axpy_avx2(out + d, w[p], v + p * stride + d, hd - d);
}

//  One query row of one head: scores through the F32 dot directly (no
//  dispatch per position), then the register-accumulated weighted sum.
S_AVX2 static void
s_attend_one_avx2(const s_attention_t *job, size_t t, size_t h, float *scores)
{
    size_t hd = job->head_dim, kv_stride = job->n_kv_head * hd;
    size_t kvh = h / (job->n_head / job->n_kv_head), n_kv = job->pos + t + 1;
    const float *q = job->q + t * job->n_head * hd + h * hd;
    const float *k = job->k_cache + kvh * hd;
    float scale = 1.0f / sqrtf((float) hd);
    for (size_t p = 0; p < n_kv; p++)
        scores[p] = s_dot_f32_avx2(k + p * kv_stride, q, hd) * scale;
    bly_ref_softmax(scores, n_kv);
    s_weighted_sum_avx2(job->out + t * job->n_head * hd + h * hd, scores,
                        job->v_cache + kvh * hd, kv_stride, n_kv, hd);
}
#endif

static void
s_attend_one(const s_attention_t *job, size_t t, size_t h, float *scores)
{
#if S_X86
    if (s_use_avx2()) {
        s_attend_one_avx2(job, t, h, scores);
        return;
    }
#endif
    size_t hd = job->head_dim, kv_stride = job->n_kv_head * hd;
    size_t kvh = h / (job->n_head / job->n_kv_head), n_kv = job->pos + t + 1;
    const float *q = job->q + t * job->n_head * hd + h * hd;
    float *out = job->out + t * job->n_head * hd + h * hd;
    float scale = 1.0f / sqrtf((float) hd);
    for (size_t p = 0; p < n_kv; p++)
        scores[p] = bly_kern_vec_dot(BLY_TYPE_F32, job->k_cache + p * kv_stride + kvh * hd, q,
                                     hd) * scale;
    bly_ref_softmax(scores, n_kv);
    memset(out, 0, hd * sizeof(float));
    for (size_t p = 0; p < n_kv; p++) {
        const float *v = job->v_cache + p * kv_stride + kvh * hd;
#if S_X86
        if (s_use_avx2()) {
            s_axpy_avx2(out, scores[p], v, hd);
            continue;
        }
#endif
        for (size_t d = 0; d < hd; d++)
            out[d] += scores[p] * v[d];
    }
}

static void
s_attention_worker(void *arg, size_t index, size_t n_threads)
{
    s_attention_t *job = arg;
    (void) n_threads;
    float *scores = job->scores + index * job->scores_stride;
    size_t n_items = job->n_tokens * job->n_head;
    for (;;) {
        size_t item = bly_pool_next_chunk(job->pool);
        if (item >= n_items)
            break;
        s_attend_one(job, item / job->n_head, item % job->n_head, scores);
    }
}

void
bly_kern_attention(bly_pool_t *pool, float *out, const float *q, const float *k_cache,
                   const float *v_cache, size_t n_head, size_t n_kv_head, size_t head_dim,
                   size_t n_tokens, size_t pos, float *scores, size_t scores_stride)
{
    bly_assert(pool);
    bly_assert(out);
    bly_assert(q);
    bly_assert(k_cache);
    bly_assert(v_cache);
    bly_assert(scores);
    bly_assert(n_kv_head > 0);
    bly_assert(n_head % n_kv_head == 0);
    bly_assert(scores_stride >= pos + n_tokens);
    s_attention_t job = {
        .pool = pool, .out = out, .q = q, .k_cache = k_cache, .v_cache = v_cache,
        .n_head = n_head, .n_kv_head = n_kv_head, .head_dim = head_dim, .n_tokens = n_tokens,
        .pos = pos, .scores = scores, .scores_stride = scores_stride,
    };
    bly_pool_reset_chunks(pool);
    bly_pool_run_dynamic(pool, s_attention_worker, &job);
}
