// AVX-512 micro-kernels (F, BW, VNNI). Compiled with target attributes only, so the
// binary still runs on CPUs without AVX-512; dispatch.c picks these at run time.
#pragma STDC FP_CONTRACT OFF
#include <math.h>

#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

// ---------------------------------------------------------------------------------------
// fp32: 14 x 32 tile = 28 zmm accumulators + 2 for the B row; the A value is a broadcast
// memory operand of the FMA. 14 rows x 2 FMA per k step cover the 4-cycle FMA latency.
// ---------------------------------------------------------------------------------------
#define F32_MR 14

// A element (r, kk) is a[kk * a_k + r * a_r]: packed (a_k = F32_MR, a_r = 1, constants, so
// the same code as a dedicated packed loop) or a row-major block of A (a_k = 1, a_r = lda).
static inline __attribute__((always_inline)) SQ_TARGET_AVX512 void
f32_tile_rows(const size_t rows, size_t kc, const float *a, const size_t a_k, const size_t a_r,
              const float *b, float *c, size_t ldc, __mmask16 m0, __mmask16 m1, const float *bias,
              int load_c) {
    __m512 acc0[F32_MR], acc1[F32_MR];
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, bias);
        bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    for (size_t r = 0; r < rows; r++) {
        if (load_c) {
            acc0[r] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
            acc1[r] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
        } else {
            acc0[r] = _mm512_setzero_ps();
            acc1[r] = _mm512_setzero_ps();
        }
        if (bias) {
            acc0[r] = _mm512_add_ps(acc0[r], bias0);
            acc1[r] = _mm512_add_ps(acc1[r], bias1);
        }
    }
#ifndef SQ_NO_PREFETCH_OUT
    if (!load_c) {  // the output lines are first touched by the stores: fetch them now
        for (size_t r = 0; r < rows; r++) {
            __builtin_prefetch(c + r * ldc, 1, 3);
            __builtin_prefetch(c + r * ldc + 16, 1, 3);
        }
    }
#endif
    for (size_t kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_loadu_ps(b + kk * SQ_NR);
        __m512 b1 = _mm512_loadu_ps(b + kk * SQ_NR + 16);
        const float *ak = a + kk * a_k;
        for (size_t r = 0; r < rows; r++) {
            __m512 av = _mm512_set1_ps(ak[r * a_r]);
            acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
        }
    }
    for (size_t r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
    }
}

SQ_TARGET_AVX512 void sq_f32_tile_avx512(size_t kc, const float *a, const float *b,
                                         float *c, size_t ldc, size_t mr, size_t nr,
                                         const float *bias, int load_c) {
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    // One fully unrolled copy per row count keeps every accumulator in a register.
    switch (mr) {
#define CASE(R) case R: f32_tile_rows(R, kc, a, F32_MR, 1, b, c, ldc, m0, m1, bias, load_c); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7)
        CASE(8) CASE(9) CASE(10) CASE(11) CASE(12) CASE(13) CASE(14)
#undef CASE
        default: break;
    }
}

/// The tile with A read in place (row-major, row stride lda) instead of packed: for small
/// products where packing A would cost as much as the product. The same FMAs in the same
/// order, so the same bits.
SQ_TARGET_AVX512 void sq_f32_tile_strided_avx512(size_t kc, const float *a, size_t lda,
                                                 const float *b, float *c, size_t ldc, size_t mr,
                                                 size_t nr) {
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    switch (mr) {
#define CASE(R) case R: f32_tile_rows(R, kc, a, 1, lda, b, c, ldc, m0, m1, NULL, 0); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7)
        CASE(8) CASE(9) CASE(10) CASE(11) CASE(12) CASE(13) CASE(14)
#undef CASE
        default: break;
    }
}


/// One row against up to 4 panels at once (8 independent accumulators): with a single
/// row the 14x32 tile would have only 2 FMA chains, latency bound. Same arithmetic per
/// element as f32_tile_rows (init, then one FMA per k in order), so the bits match.
SQ_TARGET_AVX512 void sq_f32_row_avx512(size_t kc, const float *a, const float *b,
                                        size_t panel_stride, size_t panels, float *c,
                                        size_t n_valid, const float *bias, int load_c) {
    __m512 acc[8];
    __mmask16 masks[8];
    for (size_t v = 0; v < 8; v++) {
        size_t col = v * 16;
        size_t left = col < n_valid ? n_valid - col : 0;
        masks[v] = v < panels * 2 ? (left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1)) : 0;
        acc[v] = load_c ? _mm512_maskz_loadu_ps(masks[v], c + col) : _mm512_setzero_ps();
        if (bias) acc[v] = _mm512_add_ps(acc[v], _mm512_maskz_loadu_ps(masks[v], bias + col));
    }
    if (panels == 4) {
        for (size_t kk = 0; kk < kc; kk++) {
            __m512 av = _mm512_set1_ps(a[kk]);
            for (size_t v = 0; v < 8; v++) {
                const float *bp = b + (v / 2) * panel_stride + kk * SQ_NR + (v % 2) * 16;
                acc[v] = _mm512_fmadd_ps(av, _mm512_loadu_ps(bp), acc[v]);
            }
        }
    } else {
        for (size_t kk = 0; kk < kc; kk++) {
            __m512 av = _mm512_set1_ps(a[kk]);
            for (size_t v = 0; v < panels * 2; v++) {
                const float *bp = b + (v / 2) * panel_stride + kk * SQ_NR + (v % 2) * 16;
                acc[v] = _mm512_fmadd_ps(av, _mm512_loadu_ps(bp), acc[v]);
            }
        }
    }
    for (size_t v = 0; v < panels * 2; v++) _mm512_mask_storeu_ps(c + v * 16, masks[v], acc[v]);
}

// ---------------------------------------------------------------------------------------
// int8: 8 x 32 tile = 16 zmm accumulators (vpdpbusd latency needs >= 4 independent
// chains), 2 zmm of B per k-quad, the u8 A quad broadcast from memory.
// ---------------------------------------------------------------------------------------
#define S8_MR 8

static inline __attribute__((always_inline)) SQ_TARGET_AVX512 void
s8_tile_rows(const size_t rows, size_t kq, const uint8_t *a, const uint8_t *b,
             const int32_t *corr, __mmask16 m0, __mmask16 m1, const sq_s8_tile_out *out) {
    __m512i acc0[S8_MR], acc1[S8_MR];
    __m512i corr0 = _mm512_loadu_si512(corr), corr1 = _mm512_loadu_si512(corr + 16);
    for (size_t r = 0; r < rows; r++) {
        acc0[r] = corr0;
        acc1[r] = corr1;
    }
#ifndef SQ_NO_PREFETCH_OUT
    // Bring the output lines in (for writing) while the k loop runs: the stores at the
    // end otherwise wait for cache misses on large outputs.
    for (size_t r = 0; r < rows; r++) {
        char *row = out->out_f32 ? (char *)(out->out_f32 + r * out->ldo)
                                 : (char *)(out->out_s32 + r * out->ldo);
        __builtin_prefetch(row, 1, 3);
        __builtin_prefetch(row + 64, 1, 3);
    }
#endif
    for (size_t q = 0; q < kq; q++) {
        __m512i b0 = _mm512_loadu_si512(b + q * SQ_NR * 4);
        __m512i b1 = _mm512_loadu_si512(b + q * SQ_NR * 4 + 64);
        const uint8_t *aq = a + q * S8_MR * 4;
        for (size_t r = 0; r < rows; r++) {
            int32_t quad;
            __builtin_memcpy(&quad, aq + r * 4, 4);
            __m512i av = _mm512_set1_epi32(quad);
            acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
            acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
        }
    }
    if (out->out_s32) {
        for (size_t r = 0; r < rows; r++) {
            _mm512_mask_storeu_epi32(out->out_s32 + r * out->ldo, m0, acc0[r]);
            _mm512_mask_storeu_epi32(out->out_s32 + r * out->ldo + 16, m1, acc1[r]);
        }
        return;
    }
    // Epilogue, same operations as sq_s8_epilogue_one: float(acc) * (sa * sb) + bias.
    __m512 sb0, sb1;
    if (out->scale_b_per_col) {
        sb0 = _mm512_maskz_loadu_ps(m0, out->scale_b);
        sb1 = _mm512_maskz_loadu_ps(m1, out->scale_b + 16);
    } else {
        sb0 = sb1 = _mm512_set1_ps(out->scale_b[0]);
    }
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (out->bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, out->bias);
        bias1 = _mm512_maskz_loadu_ps(m1, out->bias + 16);
    }
    for (size_t r = 0; r < rows; r++) {
        __m512 sa = _mm512_set1_ps(out->scale_a[out->scale_a_per_row ? r : 0]);
        __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(acc0[r]), _mm512_mul_ps(sa, sb0));
        __m512 v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(acc1[r]), _mm512_mul_ps(sa, sb1));
        if (out->bias) {
            v0 = _mm512_add_ps(v0, bias0);
            v1 = _mm512_add_ps(v1, bias1);
        }
        _mm512_mask_storeu_ps(out->out_f32 + r * out->ldo, m0, v0);
        _mm512_mask_storeu_ps(out->out_f32 + r * out->ldo + 16, m1, v1);
    }
}

SQ_TARGET_AVX512 void sq_s8_tile_avx512(size_t kq, const uint8_t *a, const uint8_t *b,
                                        const int32_t *corr, size_t mr, size_t nr,
                                        const sq_s8_tile_out *out) {
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    switch (mr) {
#define CASE(R) case R: s8_tile_rows(R, kq, a, b, corr, m0, m1, out); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
        default: break;
    }
}

/// Epilogue of 16 accumulators of row `r` at tile column `col` (same arithmetic as the
/// tile: float(acc) * (sa * sb) + bias).
static inline __attribute__((always_inline)) SQ_TARGET_AVX512 void
s8_store16(__m512i acc, __mmask16 mask, const sq_s8_tile_out *out, size_t r, size_t col) {
    if (out->out_s32) {
        _mm512_mask_storeu_epi32(out->out_s32 + r * out->ldo + col, mask, acc);
        return;
    }
    __m512 sb = out->scale_b_per_col ? _mm512_maskz_loadu_ps(mask, out->scale_b + col)
                                     : _mm512_set1_ps(out->scale_b[0]);
    __m512 sa = _mm512_set1_ps(out->scale_a[out->scale_a_per_row ? r : 0]);
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sa, sb));
    if (out->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out->bias + col));
    _mm512_mask_storeu_ps(out->out_f32 + r * out->ldo + col, mask, v);
}

/// One row against up to 4 panels (8 independent vpdpbusd chains instead of the tile's
/// 2 when m = 1). `out` and `corr` start at the first panel's column 0.
SQ_TARGET_AVX512 void sq_s8_row_avx512(size_t kq, const uint8_t *a, const uint8_t *b,
                                       size_t panel_stride, size_t panels, const int32_t *corr,
                                       size_t n_valid, const sq_s8_tile_out *out) {
    __m512i acc[8];
    size_t vectors = panels * 2;
    for (size_t v = 0; v < vectors; v++) acc[v] = _mm512_loadu_si512(corr + v * 16);
    for (size_t q = 0; q < kq; q++) {
        int32_t quad;
        __builtin_memcpy(&quad, a + q * 4, 4);
        __m512i av = _mm512_set1_epi32(quad);
        if (vectors == 8) {
            for (size_t v = 0; v < 8; v++) {
                const uint8_t *bv = b + (v / 2) * panel_stride + q * SQ_NR * 4 + (v % 2) * 64;
                acc[v] = _mm512_dpbusd_epi32(acc[v], av, _mm512_loadu_si512(bv));
            }
        } else {
            for (size_t v = 0; v < vectors; v++) {
                const uint8_t *bv = b + (v / 2) * panel_stride + q * SQ_NR * 4 + (v % 2) * 64;
                acc[v] = _mm512_dpbusd_epi32(acc[v], av, _mm512_loadu_si512(bv));
            }
        }
    }
    for (size_t v = 0; v < vectors; v++) {
        size_t col = v * 16, left = col < n_valid ? n_valid - col : 0;
        __mmask16 mask = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
        s8_store16(acc[v], mask, out, 0, col);
    }
}

// ---------------------------------------------------------------------------------------
// Quantization of one row, 16 floats at a time; the same operations as the scalar twin
// (vmaxps(v, lo) == v > lo ? v : lo; vcvtps2dq rounds to nearest even).
// ---------------------------------------------------------------------------------------
SQ_TARGET_AVX512 void sq_quant_row_avx512(size_t k, const float *x, int8_t *q, float scale,
                                          int qmin) {
    __m512 vs = _mm512_set1_ps(scale);
    __m512 lo = _mm512_set1_ps((float)qmin), hi = _mm512_set1_ps(SQ_INT8_MAX);
    for (size_t i = 0; i < k; i += 16) {
        __mmask16 m = k - i >= 16 ? 0xFFFF : (__mmask16)((1u << (k - i)) - 1);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm512_mask_cvtsepi32_storeu_epi8(q + i, m, _mm512_cvtps_epi32(v));
    }
}

SQ_TARGET_AVX512 float sq_absmax_avx512(size_t k, const float *x) {
    __m512 m = _mm512_setzero_ps();
    for (size_t i = 0; i < k; i += 16) {
        __mmask16 lanes = k - i >= 16 ? 0xFFFF : (__mmask16)((1u << (k - i)) - 1);
        m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(lanes, x + i)), m);
    }
    return _mm512_reduce_max_ps(m);
}

// ---------------------------------------------------------------------------------------
// Per-column dynamic quantization, 16 columns per vector: the column absmax walks the rows
// of a 64-column block (4 vectors), then every row is quantized with the per-lane scales.
// The same operations as sq_quant_cols_generic (compare-blend for the Max, so signed zeros
// and NaN follow the scalar code).
// ---------------------------------------------------------------------------------------
SQ_TARGET_AVX512 void sq_quant_cols_avx512(size_t k, size_t n, const float *x, size_t ldx,
                                           int8_t *q, size_t ldq, float *scales,
                                           float divisor, float min_scale, int qmin) {
    const __m512 vdiv = _mm512_set1_ps(divisor), vmin = _mm512_set1_ps(min_scale);
    const __m512 vnan = _mm512_set1_ps(NAN);
    const __mmask16 min_nan = min_scale != min_scale ? 0xFFFF : 0;
    for (size_t j0 = 0; j0 < n; j0 += 64) {
        __m512 m[4];
        __mmask16 lanes[4], nan[4];
        for (int v = 0; v < 4; v++) {
            size_t col = j0 + 16 * (size_t)v, left = col < n ? n - col : 0;
            lanes[v] = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
            m[v] = _mm512_setzero_ps();
            nan[v] = 0;
        }
        for (size_t i = 0; i < k; i++) {
            const float *row = x + i * ldx + j0;
            for (int v = 0; v < 4; v++) {
                __m512 val = _mm512_maskz_loadu_ps(lanes[v], row + 16 * v);
                m[v] = _mm512_max_ps(_mm512_abs_ps(val), m[v]);
                nan[v] |= _mm512_cmp_ps_mask(val, val, _CMP_UNORD_Q);
            }
        }
        for (int v = 0; v < 4; v++) {
            if (!lanes[v]) break;
            __m512 s = _mm512_div_ps(_mm512_mask_blend_ps(nan[v], m[v], vnan), vdiv);
            s = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(s, vmin, _CMP_LT_OQ), s, vmin);
            s = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(s, s, _CMP_UNORD_Q) | min_nan, s, vnan);
            _mm512_mask_storeu_ps(scales + j0 + 16 * v, lanes[v], s);
        }
    }
    __m512 lo = _mm512_set1_ps((float)qmin), hi = _mm512_set1_ps(SQ_INT8_MAX);
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; j < n; j += 16) {
            __mmask16 mk = n - j >= 16 ? 0xFFFF : (__mmask16)((1u << (n - j)) - 1);
            __m512 s = _mm512_maskz_loadu_ps(mk, scales + j);
            __m512 v = _mm512_maskz_div_ps(mk, _mm512_maskz_loadu_ps(mk, x + i * ldx + j), s);
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            _mm512_mask_cvtsepi32_storeu_epi8(q + i * ldq + j, mk, _mm512_cvtps_epi32(v));
        }
    }
}

#endif  // __x86_64__
