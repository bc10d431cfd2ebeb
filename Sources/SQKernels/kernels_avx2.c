// AVX2 + FMA micro-kernels: the fallback for x86-64 CPUs without AVX-512.
#pragma STDC FP_CONTRACT OFF
#include <math.h>

#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

// ---------------------------------------------------------------------------------------
// fp32: 6 rows x 16 columns per pass (12 ymm accumulators), two passes per 32-column
// panel. The packed A micro-panel holds 6 rows (the avx2 table's f32_mr).
// ---------------------------------------------------------------------------------------
#define F32_MR 6

/// Lane mask for the first `count` of 8 lanes (count may exceed 8 or be <= 0).
static inline SQ_TARGET_AVX2 __m256i lane_mask(long count) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count < 8 ? count : 8)), lanes);
}

static inline __attribute__((always_inline)) SQ_TARGET_AVX2 void
f32_half_rows(const size_t rows, size_t kc, const float *a, const float *b, float *c,
              size_t ldc, long cols, const float *bias, int load_c) {
    __m256i m0 = lane_mask(cols), m1 = lane_mask(cols - 8);
    __m256 acc0[F32_MR], acc1[F32_MR];
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (bias) {
        bias0 = _mm256_maskload_ps(bias, m0);
        bias1 = _mm256_maskload_ps(bias + 8, m1);
    }
    for (size_t r = 0; r < rows; r++) {
        if (load_c) {
            acc0[r] = _mm256_maskload_ps(c + r * ldc, m0);
            acc1[r] = _mm256_maskload_ps(c + r * ldc + 8, m1);
        } else {
            acc0[r] = _mm256_setzero_ps();
            acc1[r] = _mm256_setzero_ps();
        }
        if (bias) {
            acc0[r] = _mm256_add_ps(acc0[r], bias0);
            acc1[r] = _mm256_add_ps(acc1[r], bias1);
        }
    }
    for (size_t kk = 0; kk < kc; kk++) {
        __m256 b0 = _mm256_loadu_ps(b + kk * SQ_NR);
        __m256 b1 = _mm256_loadu_ps(b + kk * SQ_NR + 8);
        for (size_t r = 0; r < rows; r++) {
            __m256 av = _mm256_broadcast_ss(a + kk * F32_MR + r);
            acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
        }
    }
    for (size_t r = 0; r < rows; r++) {
        _mm256_maskstore_ps(c + r * ldc, m0, acc0[r]);
        _mm256_maskstore_ps(c + r * ldc + 8, m1, acc1[r]);
    }
}

SQ_TARGET_AVX2 void sq_f32_tile_avx2(size_t kc, const float *a, const float *b, float *c,
                                     size_t ldc, size_t mr, size_t nr, const float *bias,
                                     int load_c) {
    for (size_t h = 0; h < nr; h += 16) {
        long cols = (long)(nr - h);
        const float *bh = bias ? bias + h : NULL;
        switch (mr) {
#define CASE(R) case R: f32_half_rows(R, kc, a, b + h, c + h, ldc, cols, bh, load_c); break;
            CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
#undef CASE
            default: break;
        }
    }
}


// ---------------------------------------------------------------------------------------
// int8, exact with full-range weights: vpmaddubsw would saturate int16, so both operands
// are widened to int16 (u8 A zero-extended, s8 B sign-extended) and multiplied with
// vpmaddwd (pairs summed in int32: |255*128*2| fits easily). 4 rows x 8 columns per
// pass, four passes per panel. B lanes per ymm: 4 columns x 4 k; after vpmaddwd each
// column has two partial sums in adjacent lanes, folded by vphaddd at the end.
// ---------------------------------------------------------------------------------------
#define S8_MR 4

static inline __attribute__((always_inline)) SQ_TARGET_AVX2 void
s8_group_rows(const size_t rows, size_t kq, const uint8_t *a, const uint8_t *b,
              const int32_t *corr, long cols, const sq_s8_tile_out *out, size_t col0) {
    __m256i acc_lo[S8_MR], acc_hi[S8_MR];  // columns 0-3 and 4-7 of the group
    for (size_t r = 0; r < rows; r++) acc_lo[r] = acc_hi[r] = _mm256_setzero_si256();
    for (size_t q = 0; q < kq; q++) {
        __m256i braw = _mm256_loadu_si256((const __m256i *)(b + q * SQ_NR * 4));
        __m256i b_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(braw));
        __m256i b_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(braw, 1));
        const uint8_t *aq = a + q * S8_MR * 4;
        for (size_t r = 0; r < rows; r++) {
            int32_t quad;
            __builtin_memcpy(&quad, aq + r * 4, 4);
            __m128i a16 = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(quad));
            __m256i av = _mm256_broadcastq_epi64(a16);  // a0 a1 a2 a3 repeated
            acc_lo[r] = _mm256_add_epi32(acc_lo[r], _mm256_madd_epi16(av, b_lo));
            acc_hi[r] = _mm256_add_epi32(acc_hi[r], _mm256_madd_epi16(av, b_hi));
        }
    }
    __m256i mask = lane_mask(cols);
    __m256i vcorr = _mm256_maskload_epi32(corr, mask);
    __m256 sb = out->scale_b_per_col ? _mm256_maskload_ps(out->scale_b + col0, mask)
                                     : _mm256_set1_ps(out->scale_b ? out->scale_b[0] : 0.0f);
    __m256 vbias = out->bias ? _mm256_maskload_ps(out->bias + col0, mask) : _mm256_setzero_ps();
    for (size_t r = 0; r < rows; r++) {
        // hadd: [c0 c1 c4 c5 | c2 c3 c6 c7] -> permute 64-bit pieces into c0..c7.
        __m256i sums = _mm256_hadd_epi32(acc_lo[r], acc_hi[r]);
        sums = _mm256_permute4x64_epi64(sums, 0xD8);
        sums = _mm256_add_epi32(sums, vcorr);
        if (out->out_s32) {
            _mm256_maskstore_epi32(out->out_s32 + r * out->ldo + col0, mask, sums);
            continue;
        }
        __m256 sa = _mm256_set1_ps(out->scale_a[out->scale_a_per_row ? r : 0]);
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(sa, sb));
        if (out->bias) v = _mm256_add_ps(v, vbias);
        _mm256_maskstore_ps(out->out_f32 + r * out->ldo + col0, mask, v);
    }
}

SQ_TARGET_AVX2 void sq_s8_tile_avx2(size_t kq, const uint8_t *a, const uint8_t *b,
                                    const int32_t *corr, size_t mr, size_t nr,
                                    const sq_s8_tile_out *out) {
    for (size_t g = 0; g < nr; g += 8) {
        long cols = (long)(nr - g);
        switch (mr) {
#define CASE(R) case R: s8_group_rows(R, kq, a, b + g * 4, corr + g, cols, out, g); break;
            CASE(1) CASE(2) CASE(3) CASE(4)
#undef CASE
            default: break;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Quantization of one row, 8 floats at a time, scalar twin for the tail (same ops).
// ---------------------------------------------------------------------------------------
SQ_TARGET_AVX2 void sq_quant_row_avx2(size_t k, const float *x, int8_t *q, float scale,
                                      int qmin) {
    __m256 vs = _mm256_set1_ps(scale);
    __m256 lo = _mm256_set1_ps((float)qmin), hi = _mm256_set1_ps(SQ_INT8_MAX);
    size_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        __m256i n = _mm256_cvtps_epi32(v);
        __m128i n16 = _mm_packs_epi32(_mm256_castsi256_si128(n), _mm256_extracti128_si256(n, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(n16, n16));
    }
    sq_quant_row_generic(k - i, x + i, q + i, scale, qmin);
}

SQ_TARGET_AVX2 float sq_absmax_avx2(size_t k, const float *x) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= k; i += 8)
        m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask), m);
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    float best = sq_absmax_generic(k - i, x + i);
    for (int l = 0; l < 8; l++) best = lanes[l] > best ? lanes[l] : best;
    return best;
}

// ---------------------------------------------------------------------------------------
// Per-column dynamic quantization, 8 columns per vector; the last n % 8 columns go to the
// scalar twin (same operations).
// ---------------------------------------------------------------------------------------
SQ_TARGET_AVX2 void sq_quant_cols_avx2(size_t k, size_t n, const float *x, size_t ldx,
                                       int8_t *q, size_t ldq, float *scales, float divisor,
                                       float min_scale, int qmin) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 vdiv = _mm256_set1_ps(divisor), vmin = _mm256_set1_ps(min_scale);
    const __m256 vnan = _mm256_set1_ps(NAN);
    const __m256 min_nan = _mm256_cmp_ps(vmin, vmin, _CMP_UNORD_Q);
    size_t full = n / 8 * 8;
    for (size_t j = 0; j < full; j += 8) {
        __m256 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
        for (size_t i = 0; i < k; i++) {
            __m256 val = _mm256_loadu_ps(x + i * ldx + j);
            m = _mm256_max_ps(_mm256_and_ps(val, abs_mask), m);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(val, val, _CMP_UNORD_Q));
        }
        __m256 s = _mm256_div_ps(_mm256_blendv_ps(m, vnan, nan), vdiv);
        s = _mm256_blendv_ps(s, vmin, _mm256_cmp_ps(s, vmin, _CMP_LT_OQ));
        s = _mm256_blendv_ps(s, vnan, _mm256_or_ps(_mm256_cmp_ps(s, s, _CMP_UNORD_Q), min_nan));
        _mm256_storeu_ps(scales + j, s);
    }
    __m256 lo = _mm256_set1_ps((float)qmin), hi = _mm256_set1_ps(SQ_INT8_MAX);
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; j < full; j += 8) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i * ldx + j), _mm256_loadu_ps(scales + j));
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            __m256i r = _mm256_cvtps_epi32(v);
            __m128i r16 = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
            _mm_storel_epi64((__m128i *)(q + i * ldq + j), _mm_packs_epi16(r16, r16));
        }
    }
    if (full < n)
        sq_quant_cols_generic(k, n - full, x + full, ldx, q + full, ldq, scales + full, divisor,
                              min_scale, qmin);
}

#endif  // __x86_64__
