// Portable scalar twins of every micro-kernel: the reference the vector paths are tested
// against, and the path used on CPUs without AVX2.
#pragma STDC FP_CONTRACT OFF
#include <math.h>

#include "internal.h"

// ---------------------------------------------------------------------------------------
// fp32 tile, packed A with 4 rows per micro-panel (the scalar table's f32_mr).
// ---------------------------------------------------------------------------------------
#define F32_MR 4

void sq_f32_tile_generic(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                         size_t mr, size_t nr, const float *bias, int load_c) {
    float acc[F32_MR][SQ_NR];
    for (size_t r = 0; r < mr; r++)
        for (size_t j = 0; j < SQ_NR; j++) {
            float base = (load_c && j < nr) ? c[r * ldc + j] : 0.0f;
            acc[r][j] = (bias && j < nr) ? base + bias[j] : base;
        }
    for (size_t kk = 0; kk < kc; kk++) {
        const float *brow = b + kk * SQ_NR;
        for (size_t r = 0; r < mr; r++) {
            float av = a[kk * F32_MR + r];
            for (size_t j = 0; j < SQ_NR; j++) acc[r][j] += av * brow[j];
        }
    }
    for (size_t r = 0; r < mr; r++)
        for (size_t j = 0; j < nr; j++) c[r * ldc + j] = acc[r][j];
}

// ---------------------------------------------------------------------------------------
// int8 tile: u8 A (s8 ^ 0x80) x s8 B over k-quads, plus the -128*colsum correction.
// Sums are formed in uint32 so that wrap-around (K > 65536) is defined, like the vectors.
// ---------------------------------------------------------------------------------------
#define S8_MR 4

void sq_s8_tile_generic(size_t kq, const uint8_t *a, const uint8_t *b, const int32_t *corr,
                        size_t mr, size_t nr, const sq_s8_tile_out *out) {
    uint32_t acc[S8_MR][SQ_NR];
    for (size_t r = 0; r < mr; r++)
        for (size_t j = 0; j < SQ_NR; j++) acc[r][j] = (uint32_t)corr[j];
    for (size_t q = 0; q < kq; q++) {
        const int8_t *bq = (const int8_t *)(b + q * SQ_NR * 4);
        const uint8_t *aq = a + q * S8_MR * 4;
        for (size_t r = 0; r < mr; r++) {
            const uint8_t *ar = aq + r * 4;
            for (size_t j = 0; j < SQ_NR; j++) {
                const int8_t *bj = bq + j * 4;
                int32_t dot = ar[0] * bj[0] + ar[1] * bj[1] + ar[2] * bj[2] + ar[3] * bj[3];
                acc[r][j] += (uint32_t)dot;
            }
        }
    }
    for (size_t r = 0; r < mr; r++) {
        if (out->out_s32) {
            int32_t *row = out->out_s32 + r * out->ldo;
            for (size_t j = 0; j < nr; j++) row[j] = (int32_t)acc[r][j];
        } else {
            float *row = out->out_f32 + r * out->ldo;
            float sa = out->scale_a[out->scale_a_per_row ? r : 0];
            for (size_t j = 0; j < nr; j++) {
                float sb = out->scale_b[out->scale_b_per_col ? j : 0];
                row[j] = sq_s8_epilogue_one((int32_t)acc[r][j], sa, sb, out->bias, j);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Quantization of one row: sq_quant_one (internal.h) of x / scale; the vector paths mirror
// these exact operations.
// ---------------------------------------------------------------------------------------
void sq_quant_row_generic(size_t k, const float *x, int8_t *q, float scale, int qmin) {
    float lo = (float)qmin;
    for (size_t i = 0; i < k; i++) q[i] = sq_quant_one(x[i] / scale, lo);
}

float sq_absmax_generic(size_t k, const float *x) {
    float m = 0.0f;
    for (size_t i = 0; i < k; i++) {
        float v = fabsf(x[i]);
        m = v > m ? v : m;
    }
    return m;
}

// ---------------------------------------------------------------------------------------
// Per-column dynamic quantization (O1's Kᵀ): column absmax with NaN, the scale as the
// graph's Div and Max compute it, then QuantizeLinear's operations per element (the same
// compare-select order as sq_quant_row_generic, with no special case for s <= 0).
// ---------------------------------------------------------------------------------------
void sq_quant_cols_generic(size_t k, size_t n, const float *x, size_t ldx, int8_t *q,
                           size_t ldq, float *scales, float divisor, float min_scale,
                           int qmin) {
    float lo = (float)qmin;
    for (size_t j = 0; j < n; j++) {
        float m = 0.0f;
        int nan = 0;
        for (size_t i = 0; i < k; i++) {
            float v = fabsf(x[i * ldx + j]);
            nan |= v != v;
            m = v > m ? v : m;
        }
        float s = (nan ? NAN : m) / divisor;
        scales[j] = (s != s || min_scale != min_scale) ? NAN : (s < min_scale ? min_scale : s);
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < n; j++) q[i * ldq + j] = sq_quant_one(x[i * ldx + j] / scales[j], lo);
}
