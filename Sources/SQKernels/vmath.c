// Vector float math for the interpreter's hot elementwise ops (exp, sigmoid, SiLU, tanh,
// erf, GELU) and row softmax: a scalar twin over libm and AVX2 / AVX-512 variants
// (`__attribute__((target))`, no global -march), one table per ISA, chosen like the GEMM
// kernels (sq_isa_active: CPU features, SQOPT_KERNEL, sq_force_isa).
//
// Algorithms of the vector variants (the same as Sources/SQRuntime/Support/VectorMath.swift):
// - exp: n = round(x·log2 e), r = x − n·ln2 (two-part constant), Cephes degree-6
//   polynomial, times 2^n (AVX-512: vscalefps over the whole float range; AVX2: exponent
//   bits, 0 below −87.34, libm above 88.37);
// - sigmoid 1/(1+e^−x), SiLU x/(1+e^−x);
// - tanh: Taylor series below |x| = 0.15, else sign(x)(1 − 2/(e^{2|x|}+1));
// - erf: Taylor series below |x| = 0.5, Abramowitz & Stegun 7.1.26 above, ±1 beyond 4;
// - GELU 0.5·x·(1 + erf(x/√2)).
// NaN propagates; ±inf give the limits. Accuracy against libm: Tests/SQKernelsTests/VMathTests.swift.
#include <math.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef void (*sq_vmath_fn)(size_t n, const float *x, float *y);
typedef void (*sq_softmax_fn)(size_t n, const float *x, float *y);

typedef float (*sq_absmax_nan_fn)(size_t n, const float *x);

typedef struct {
    sq_vmath_fn ops[SQ_VM_COUNT];
    sq_softmax_fn softmax_row;
    sq_absmax_nan_fn absmax_nan;
} sq_vmath_table;

// ---------------------------------------------------------------------------------------
// Scalar twin: libm.
// ---------------------------------------------------------------------------------------

static float gelu_one(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

static void exp_generic(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
}
static void sigmoid_generic(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
static void silu_generic(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}
static void tanh_generic(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
static void erf_generic(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = erff(x[i]);
}
static void gelu_generic(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = gelu_one(x[i]);
}
static void softmax_generic(size_t n, const float *x, float *y) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) m = 0;
    float sum = 0;
    for (size_t i = 0; i < n; i++) { y[i] = expf(x[i] - m); sum += y[i]; }
    float r = 1.0f / sum;
    for (size_t i = 0; i < n; i++) y[i] *= r;
}

// max |x| over n floats, NaN if any x is NaN (as ReduceMax(Abs(x)) gives).
static float absmax_nan_generic(size_t n, const float *x) {
    float m = 0.0f;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        float v = fabsf(x[i]);
        nan |= v != v;
        m = v > m ? v : m;
    }
    return nan ? NAN : m;
}

// Cephes expf coefficients and the split ln 2 (shared by both vector paths).
#define SQ_LOG2E 1.44269504088896341f
#define SQ_LN2_HI 0.693359375f
#define SQ_LN2_LO -2.12194440e-4f
#define SQ_EXP_P0 1.9875691500e-4f
#define SQ_EXP_P1 1.3981999507e-3f
#define SQ_EXP_P2 8.3334519073e-3f
#define SQ_EXP_P3 4.1665795894e-2f
#define SQ_EXP_P4 1.6666665459e-1f
#define SQ_EXP_P5 5.0000001201e-1f

#if defined(__x86_64__)

// ---------------------------------------------------------------------------------------
// AVX-512
// ---------------------------------------------------------------------------------------

#define V16 __m512
#define S16(v) _mm512_set1_ps(v)

SQ_TARGET_AVX512 static inline V16 exp16(V16 x) {
    // Beyond these bounds the result is 0 or inf anyway; max(lo, x) keeps NaN (second operand).
    V16 xc = _mm512_min_ps(S16(88.8f), _mm512_max_ps(S16(-104.0f), x));
    V16 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, S16(SQ_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V16 r = _mm512_fnmadd_ps(n, S16(SQ_LN2_HI), xc);
    r = _mm512_fnmadd_ps(n, S16(SQ_LN2_LO), r);
    V16 p = S16(SQ_EXP_P0);
    p = _mm512_fmadd_ps(p, r, S16(SQ_EXP_P1));
    p = _mm512_fmadd_ps(p, r, S16(SQ_EXP_P2));
    p = _mm512_fmadd_ps(p, r, S16(SQ_EXP_P3));
    p = _mm512_fmadd_ps(p, r, S16(SQ_EXP_P4));
    p = _mm512_fmadd_ps(p, r, S16(SQ_EXP_P5));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), S16(1.0f));
    return _mm512_scalef_ps(p, n);
}

SQ_TARGET_AVX512 static inline V16 abs16(V16 x) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
}
SQ_TARGET_AVX512 static inline V16 sign16(V16 x) {  // the sign bit of x, as a float
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
}
SQ_TARGET_AVX512 static inline V16 or16(V16 a, V16 b) {
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}

SQ_TARGET_AVX512 static inline V16 sigmoid16(V16 x) {
    return _mm512_div_ps(S16(1.0f), _mm512_add_ps(S16(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}
SQ_TARGET_AVX512 static inline V16 silu16(V16 x) {
    return _mm512_div_ps(x, _mm512_add_ps(S16(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

SQ_TARGET_AVX512 static inline V16 tanh16(V16 x) {
    V16 a = abs16(x), x2 = _mm512_mul_ps(x, x);
    V16 s = S16(-1382.0f / 155925.0f);
    s = _mm512_fmadd_ps(s, x2, S16(62.0f / 2835.0f));
    s = _mm512_fmadd_ps(s, x2, S16(-17.0f / 315.0f));
    s = _mm512_fmadd_ps(s, x2, S16(2.0f / 15.0f));
    s = _mm512_fmadd_ps(s, x2, S16(-1.0f / 3.0f));
    V16 small = _mm512_fmadd_ps(_mm512_mul_ps(x, x2), s, x);
    V16 e = exp16(_mm512_add_ps(a, a));
    V16 large = _mm512_sub_ps(S16(1.0f), _mm512_div_ps(S16(2.0f), _mm512_add_ps(e, S16(1.0f))));
    large = or16(large, sign16(x));
    __mmask16 use_small = _mm512_cmp_ps_mask(a, S16(0.15f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(use_small, large, small);
}

SQ_TARGET_AVX512 static inline V16 erf16(V16 x) {
    V16 a = abs16(x), x2 = _mm512_mul_ps(x, x);
    V16 s = S16(-1.0f / 1320.0f);
    s = _mm512_fmadd_ps(s, x2, S16(1.0f / 216.0f));
    s = _mm512_fmadd_ps(s, x2, S16(-1.0f / 42.0f));
    s = _mm512_fmadd_ps(s, x2, S16(1.0f / 10.0f));
    s = _mm512_fmadd_ps(s, x2, S16(-1.0f / 3.0f));
    s = _mm512_fmadd_ps(s, x2, S16(1.0f));
    V16 small = _mm512_mul_ps(_mm512_mul_ps(s, x), S16(1.128379167f));
    V16 t = _mm512_div_ps(S16(1.0f), _mm512_fmadd_ps(S16(0.3275911f), a, S16(1.0f)));
    V16 q = S16(1.061405429f);
    q = _mm512_fmadd_ps(q, t, S16(-1.453152027f));
    q = _mm512_fmadd_ps(q, t, S16(1.421413741f));
    q = _mm512_fmadd_ps(q, t, S16(-0.284496736f));
    q = _mm512_fmadd_ps(q, t, S16(0.254829592f));
    V16 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x2));
    V16 large = _mm512_fnmadd_ps(_mm512_mul_ps(q, t), e, S16(1.0f));
    large = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, S16(4.0f), _CMP_GT_OQ), large, S16(1.0f));
    large = or16(large, sign16(x));
    V16 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, S16(0.5f), _CMP_LT_OQ), large, small);
    // NaN in, NaN out (the blends above pick `large`, which is NaN already; keep it explicit).
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, x);
}

SQ_TARGET_AVX512 static inline V16 gelu16(V16 x) {
    V16 e = erf16(_mm512_mul_ps(x, S16(0.70710678118654752f)));
    return _mm512_mul_ps(_mm512_mul_ps(S16(0.5f), x), _mm512_add_ps(S16(1.0f), e));
}

// One loop per function: full vectors, then a masked tail.
#define SQ_MAP16(NAME, F)                                                              \
    SQ_TARGET_AVX512 static void NAME(size_t n, const float *x, float *y) {            \
        size_t i = 0;                                                                  \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, F(_mm512_loadu_ps(x + i))); \
        if (i < n) {                                                                   \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                            \
            _mm512_mask_storeu_ps(y + i, m, F(_mm512_maskz_loadu_ps(m, x + i)));       \
        }                                                                              \
    }
SQ_MAP16(exp_avx512, exp16)
SQ_MAP16(sigmoid_avx512, sigmoid16)
SQ_MAP16(silu_avx512, silu16)
SQ_MAP16(tanh_avx512, tanh16)
SQ_MAP16(erf_avx512, erf16)
SQ_MAP16(gelu_avx512, gelu16)

// The exp, sum and scale passes of a softmax row whose maximum m16 (lanes) is known.
SQ_TARGET_AVX512 static void softmax_rest_avx512(size_t n, const float *x, float *y, V16 m16) {
    size_t tail = n % 16, full = n - tail;
    __mmask16 tm = (__mmask16)((1u << tail) - 1);
    float m = _mm512_reduce_max_ps(m16);
    if (m == -INFINITY) m = 0;
    V16 mv = S16(m), sum = _mm512_setzero_ps();
    for (size_t i = 0; i < full; i += 16) {
        V16 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
        _mm512_storeu_ps(y + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (tail) {
        V16 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tm, x + full), mv));
        _mm512_mask_storeu_ps(y + full, tm, e);
        sum = _mm512_mask_add_ps(sum, tm, sum, e);
    }
    V16 r = S16(1.0f / _mm512_reduce_add_ps(sum));
    for (size_t i = 0; i < full; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), r));
    if (tail) _mm512_mask_storeu_ps(y + full, tm, _mm512_mul_ps(_mm512_maskz_loadu_ps(tm, y + full), r));
}

SQ_TARGET_AVX512 static void softmax_avx512(size_t n, const float *x, float *y) {
    size_t tail = n % 16, full = n - tail;
    __mmask16 tm = (__mmask16)((1u << tail) - 1);
    V16 m16 = S16(-INFINITY);
    for (size_t i = 0; i < full; i += 16) m16 = _mm512_max_ps(m16, _mm512_loadu_ps(x + i));
    if (tail) m16 = _mm512_mask_max_ps(m16, tm, m16, _mm512_maskz_loadu_ps(tm, x + full));
    softmax_rest_avx512(n, x, y, m16);
}

// Softmax(x / d + mask): the scaled, masked row is written to y while its maximum is found
// (division and addition rounded as the separate nodes round them), then the same passes
// as softmax_avx512, so the same bits as Div, Add and Softmax one after the other.
SQ_TARGET_AVX512 static void scaled_softmax_avx512(size_t n, const float *x, float d, const float *mask, float *y) {
    size_t tail = n % 16, full = n - tail;
    __mmask16 tm = (__mmask16)((1u << tail) - 1);
    V16 dv = S16(d), m16 = S16(-INFINITY);
    for (size_t i = 0; i < full; i += 16) {
        V16 t = _mm512_div_ps(_mm512_loadu_ps(x + i), dv);
        if (mask) t = _mm512_add_ps(t, _mm512_loadu_ps(mask + i));
        _mm512_storeu_ps(y + i, t);
        m16 = _mm512_max_ps(m16, t);
    }
    if (tail) {
        V16 t = _mm512_div_ps(_mm512_maskz_loadu_ps(tm, x + full), dv);
        if (mask) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(tm, mask + full));
        _mm512_mask_storeu_ps(y + full, tm, t);
        m16 = _mm512_mask_max_ps(m16, tm, m16, t);
    }
    softmax_rest_avx512(n, y, y, m16);
}

SQ_TARGET_AVX512 static float absmax_nan_avx512(size_t n, const float *x) {
    V16 m = _mm512_setzero_ps();
    __mmask16 nan = 0;
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 lanes = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        V16 v = _mm512_maskz_loadu_ps(lanes, x + i);
        m = _mm512_max_ps(abs16(v), m);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    }
    return nan ? NAN : _mm512_reduce_max_ps(m);
}

// ---------------------------------------------------------------------------------------
// AVX2 + FMA
// ---------------------------------------------------------------------------------------

#define V8 __m256
#define S8(v) _mm256_set1_ps(v)

SQ_TARGET_AVX2 static inline V8 exp8(V8 x) {
    const float lo = -87.33654f, hi = 88.37f;
    V8 xc = _mm256_min_ps(S8(hi), _mm256_max_ps(S8(lo), x));  // NaN stays NaN
    V8 n = _mm256_round_ps(_mm256_mul_ps(xc, S8(SQ_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V8 r = _mm256_fnmadd_ps(n, S8(SQ_LN2_HI), xc);
    r = _mm256_fnmadd_ps(n, S8(SQ_LN2_LO), r);
    V8 p = S8(SQ_EXP_P0);
    p = _mm256_fmadd_ps(p, r, S8(SQ_EXP_P1));
    p = _mm256_fmadd_ps(p, r, S8(SQ_EXP_P2));
    p = _mm256_fmadd_ps(p, r, S8(SQ_EXP_P3));
    p = _mm256_fmadd_ps(p, r, S8(SQ_EXP_P4));
    p = _mm256_fmadd_ps(p, r, S8(SQ_EXP_P5));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), S8(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    V8 result = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    result = _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, S8(lo), _CMP_LT_OQ));
    V8 big = _mm256_cmp_ps(x, S8(hi), _CMP_GT_OQ);
    if (_mm256_movemask_ps(big)) {
        float xs[8], rs[8];
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(rs, result);
        for (int i = 0; i < 8; i++) if (xs[i] > hi) rs[i] = expf(xs[i]);
        result = _mm256_loadu_ps(rs);
    }
    return result;
}

SQ_TARGET_AVX2 static inline V8 abs8(V8 x) { return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF))); }
SQ_TARGET_AVX2 static inline V8 sign8(V8 x) { return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u))); }

SQ_TARGET_AVX2 static inline V8 sigmoid8(V8 x) {
    return _mm256_div_ps(S8(1.0f), _mm256_add_ps(S8(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}
SQ_TARGET_AVX2 static inline V8 silu8(V8 x) {
    return _mm256_div_ps(x, _mm256_add_ps(S8(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

SQ_TARGET_AVX2 static inline V8 tanh8(V8 x) {
    V8 a = abs8(x), x2 = _mm256_mul_ps(x, x);
    V8 s = S8(-1382.0f / 155925.0f);
    s = _mm256_fmadd_ps(s, x2, S8(62.0f / 2835.0f));
    s = _mm256_fmadd_ps(s, x2, S8(-17.0f / 315.0f));
    s = _mm256_fmadd_ps(s, x2, S8(2.0f / 15.0f));
    s = _mm256_fmadd_ps(s, x2, S8(-1.0f / 3.0f));
    V8 small = _mm256_fmadd_ps(_mm256_mul_ps(x, x2), s, x);
    V8 e = exp8(_mm256_add_ps(a, a));
    V8 large = _mm256_sub_ps(S8(1.0f), _mm256_div_ps(S8(2.0f), _mm256_add_ps(e, S8(1.0f))));
    large = _mm256_or_ps(large, sign8(x));
    return _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, S8(0.15f), _CMP_LT_OQ));
}

SQ_TARGET_AVX2 static inline V8 erf8(V8 x) {
    V8 a = abs8(x), x2 = _mm256_mul_ps(x, x);
    V8 s = S8(-1.0f / 1320.0f);
    s = _mm256_fmadd_ps(s, x2, S8(1.0f / 216.0f));
    s = _mm256_fmadd_ps(s, x2, S8(-1.0f / 42.0f));
    s = _mm256_fmadd_ps(s, x2, S8(1.0f / 10.0f));
    s = _mm256_fmadd_ps(s, x2, S8(-1.0f / 3.0f));
    s = _mm256_fmadd_ps(s, x2, S8(1.0f));
    V8 small = _mm256_mul_ps(_mm256_mul_ps(s, x), S8(1.128379167f));
    V8 t = _mm256_div_ps(S8(1.0f), _mm256_fmadd_ps(S8(0.3275911f), a, S8(1.0f)));
    V8 q = S8(1.061405429f);
    q = _mm256_fmadd_ps(q, t, S8(-1.453152027f));
    q = _mm256_fmadd_ps(q, t, S8(1.421413741f));
    q = _mm256_fmadd_ps(q, t, S8(-0.284496736f));
    q = _mm256_fmadd_ps(q, t, S8(0.254829592f));
    V8 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x2));
    V8 large = _mm256_fnmadd_ps(_mm256_mul_ps(q, t), e, S8(1.0f));
    large = _mm256_blendv_ps(large, S8(1.0f), _mm256_cmp_ps(a, S8(4.0f), _CMP_GT_OQ));
    large = _mm256_or_ps(large, sign8(x));
    V8 r = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, S8(0.5f), _CMP_LT_OQ));
    return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

SQ_TARGET_AVX2 static inline V8 gelu8(V8 x) {
    V8 e = erf8(_mm256_mul_ps(x, S8(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(S8(0.5f), x), _mm256_add_ps(S8(1.0f), e));
}

// Full vectors, then the tail through a zero-padded copy.
#define SQ_MAP8(NAME, F)                                                               \
    SQ_TARGET_AVX2 static void NAME(size_t n, const float *x, float *y) {              \
        size_t i = 0;                                                                  \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(x + i))); \
        if (i < n) {                                                                   \
            float buf[8] = {0};                                                        \
            memcpy(buf, x + i, (n - i) * sizeof(float));                               \
            _mm256_storeu_ps(buf, F(_mm256_loadu_ps(buf)));                            \
            memcpy(y + i, buf, (n - i) * sizeof(float));                               \
        }                                                                              \
    }
SQ_MAP8(exp_avx2, exp8)
SQ_MAP8(sigmoid_avx2, sigmoid8)
SQ_MAP8(silu_avx2, silu8)
SQ_MAP8(tanh_avx2, tanh8)
SQ_MAP8(erf_avx2, erf8)
SQ_MAP8(gelu_avx2, gelu8)

SQ_TARGET_AVX2 static float hsum8(V8 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SQ_TARGET_AVX2 static void softmax_avx2(size_t n, const float *x, float *y) {
    size_t full = n - n % 8;
    V8 m8 = S8(-INFINITY);
    for (size_t i = 0; i < full; i += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(x + i));
    float lanes[8];
    _mm256_storeu_ps(lanes, m8);
    float m = -INFINITY;
    for (int i = 0; i < 8; i++) m = lanes[i] > m ? lanes[i] : m;
    for (size_t i = full; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) m = 0;
    V8 mv = S8(m), sum = _mm256_setzero_ps();
    for (size_t i = 0; i < full; i += 8) {
        V8 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(y + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (full < n) {
        float buf[8];
        for (int i = 0; i < 8; i++) buf[i] = full + i < n ? x[full + i] - m : -INFINITY;
        V8 e = exp8(_mm256_loadu_ps(buf));
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(buf, e);
        memcpy(y + full, buf, (n - full) * sizeof(float));
    }
    float r = 1.0f / hsum8(sum);
    V8 rv = S8(r);
    for (size_t i = 0; i < full; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), rv));
    for (size_t i = full; i < n; i++) y[i] *= r;
}

SQ_TARGET_AVX2 static float absmax_nan_avx2(size_t n, const float *x) {
    V8 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        V8 v = _mm256_loadu_ps(x + i);
        m = _mm256_max_ps(abs8(v), m);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    float best = absmax_nan_generic(n - i, x + i);
    if (best != best || _mm256_movemask_ps(nan)) return NAN;
    for (int l = 0; l < 8; l++) best = lanes[l] > best ? lanes[l] : best;
    return best;
}

#else
#define absmax_nan_avx2 absmax_nan_generic
#define absmax_nan_avx512 absmax_nan_generic
#define exp_avx2 exp_generic
#define sigmoid_avx2 sigmoid_generic
#define silu_avx2 silu_generic
#define tanh_avx2 tanh_generic
#define erf_avx2 erf_generic
#define gelu_avx2 gelu_generic
#define softmax_avx2 softmax_generic
#define exp_avx512 exp_generic
#define sigmoid_avx512 sigmoid_generic
#define silu_avx512 silu_generic
#define tanh_avx512 tanh_generic
#define erf_avx512 erf_generic
#define gelu_avx512 gelu_generic
#define softmax_avx512 softmax_generic
#endif

static const sq_vmath_table vmath_tables[] = {
    [SQ_ISA_SCALAR] = {
        .ops = {[SQ_VM_EXP] = exp_generic, [SQ_VM_SIGMOID] = sigmoid_generic, [SQ_VM_SILU] = silu_generic,
                [SQ_VM_TANH] = tanh_generic, [SQ_VM_ERF] = erf_generic, [SQ_VM_GELU] = gelu_generic},
        .softmax_row = softmax_generic,
        .absmax_nan = absmax_nan_generic,
    },
    [SQ_ISA_AVX2] = {
        .ops = {[SQ_VM_EXP] = exp_avx2, [SQ_VM_SIGMOID] = sigmoid_avx2, [SQ_VM_SILU] = silu_avx2,
                [SQ_VM_TANH] = tanh_avx2, [SQ_VM_ERF] = erf_avx2, [SQ_VM_GELU] = gelu_avx2},
        .softmax_row = softmax_avx2,
        .absmax_nan = absmax_nan_avx2,
    },
    [SQ_ISA_AVX512] = {
        .ops = {[SQ_VM_EXP] = exp_avx512, [SQ_VM_SIGMOID] = sigmoid_avx512, [SQ_VM_SILU] = silu_avx512,
                [SQ_VM_TANH] = tanh_avx512, [SQ_VM_ERF] = erf_avx512, [SQ_VM_GELU] = gelu_avx512},
        .softmax_row = softmax_avx512,
        .absmax_nan = absmax_nan_avx512,
    },
};
_Static_assert(sizeof(vmath_tables) / sizeof(vmath_tables[0]) == SQ_ISA_AVX512 + 1,
               "one vector-math table per sq_isa value");
_Static_assert(SQ_VM_COUNT == 6, "every table lists every sq_vmath_op");

int sq_vmath_f32(sq_vmath_op op, size_t n, const float *x, float *y) {
    if ((unsigned)op >= SQ_VM_COUNT) return -1;
    vmath_tables[sq_isa_active()].ops[op](n, x, y);
    return 0;
}

void sq_softmax_rows_f32(size_t rows, size_t n, const float *x, float *y) {
    if (n == 0) return;
    sq_softmax_fn f = vmath_tables[sq_isa_active()].softmax_row;
    for (size_t r = 0; r < rows; r++) f(n, x + r * n, y + r * n);
}

void sq_softmax_row_scaled_f32(size_t n, const float *x, float divisor, const float *mask, float *y) {
    if (n == 0) return;
#if defined(__x86_64__)
    if (sq_isa_active() == SQ_ISA_AVX512) {
        scaled_softmax_avx512(n, x, divisor, mask, y);
        return;
    }
#endif
    // A plain loop the compiler vectorizes (division and addition, each rounded once, as the
    // Div and Add nodes compute them).
    if (mask)
        for (size_t i = 0; i < n; i++) y[i] = x[i] / divisor + mask[i];
    else
        for (size_t i = 0; i < n; i++) y[i] = x[i] / divisor;
    vmath_tables[sq_isa_active()].softmax_row(n, y, y);
}

float sq_absmax_nan_f32(size_t n, const float *x) { return vmath_tables[sq_isa_active()].absmax_nan(n, x); }
