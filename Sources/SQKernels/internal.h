// Internal declarations of SQKernels: the per-ISA kernel table and the micro-kernels
// each ISA file provides. Not part of the public header.
#ifndef SQKERNELS_INTERNAL_H
#define SQKERNELS_INTERNAL_H

#include <math.h>

#include "sqkernels.h"

#define SQ_NR SQ_PANEL_COLS  // columns per packed B panel (all ISAs)
#define SQ_MAX_MR 16         // upper bound of any micro-tile row count

// Target attributes of the vector files (no global -march: the binary runs anywhere).
#define SQ_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define SQ_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")))

/// fp32 micro-tile: c[0..mr, 0..nr) (+)= a_pack (kc x mr_max, k-major: a[kk*mr_max + r])
/// times b_panel (kc x 32, k-major: b[kk*32 + j]). Initial value: c if load_c, else 0,
/// plus bias[0..nr) if bias != NULL. mr <= table mr, nr <= 32.
typedef void (*sq_f32_tile_fn)(size_t kc, const float *a_pack, const float *b_panel,
                               float *c, size_t ldc, size_t mr, size_t nr,
                               const float *bias, int load_c);

/// Optional fp32 kernel for a single row (decode, m = 1): c[0..n_valid) over `panels`
/// (1..4) consecutive panels whose K slices are `panel_stride` floats apart; a is the
/// row itself (kc floats). Same init/bias/load_c contract and per-element arithmetic as
/// the tile, so results are identical.
typedef void (*sq_f32_row_fn)(size_t kc, const float *a, const float *b, size_t panel_stride,
                              size_t panels, float *c, size_t n_valid, const float *bias,
                              int load_c);

/// Where an int8 tile's result goes. Pointers are already offset to the tile origin.
typedef struct {
    float *out_f32;        // float output with the epilogue, or NULL
    int32_t *out_s32;      // raw int32 output, or NULL
    size_t ldo;
    const float *scale_a;  // row 0 of the tile (per row) or the single scale
    int scale_a_per_row;
    const float *scale_b;  // column 0 of the tile (per column) or the single scale
    int scale_b_per_col;
    const float *bias;     // column 0 of the tile, or NULL
} sq_s8_tile_out;

/// int8 micro-tile over kq k-quads: acc[r][j] = sum a_pack_u8 * b + corr[j], where
/// a_pack is (kq x mr_max x 4) bytes of u8 (= s8 ^ 0x80) and b_panel (kq x 32 x 4)
/// bytes of s8; corr = -128 * colsum(B). Then writes per `out`.
typedef void (*sq_s8_tile_fn)(size_t kq, const uint8_t *a_pack, const uint8_t *b_panel,
                              const int32_t *corr, size_t mr, size_t nr,
                              const sq_s8_tile_out *out);

/// Optional int8 kernel for a single row (m = 1): like the tile but over `panels` (1..4)
/// consecutive panels `panel_stride` bytes apart, columns [0, n_valid) of them.
typedef void (*sq_s8_row_fn)(size_t kq, const uint8_t *a_pack, const uint8_t *b,
                             size_t panel_stride, size_t panels, const int32_t *corr,
                             size_t n_valid, const sq_s8_tile_out *out);

/// Quantize one row of k floats with a positive finite-or-not scale (see header).
typedef void (*sq_quant_row_fn)(size_t k, const float *x, int8_t *q, float scale, int qmin);
/// max |x| over one row.
typedef float (*sq_absmax_fn)(size_t k, const float *x);
/// Per-column dynamic quantization of x[k, n] (row strides ldx, ldq); see
/// sq_quantize_cols_dynamic_s8.
typedef void (*sq_quant_cols_fn)(size_t k, size_t n, const float *x, size_t ldx, int8_t *q,
                                 size_t ldq, float *scales, float divisor, float min_scale,
                                 int qmin);

/// Optional fp32 tile reading A in place: c[0..mr, 0..nr) = a (row-major, row stride lda,
/// kc columns) times b_panel; the same per-element arithmetic as the tile (no bias, no load).
typedef void (*sq_f32_tile_strided_fn)(size_t kc, const float *a, size_t lda, const float *b_panel,
                                       float *c, size_t ldc, size_t mr, size_t nr);

typedef struct {
    const char *name;
    size_t f32_mr;
    sq_f32_tile_fn f32_tile;
    sq_f32_tile_strided_fn f32_tile_strided;  // NULL: A is packed
    sq_f32_row_fn f32_row;  // NULL: single rows use f32_tile
    size_t s8_mr;
    sq_s8_tile_fn s8_tile;
    sq_s8_row_fn s8_row;  // NULL: single rows use s8_tile
    sq_quant_row_fn quant_row;
    sq_absmax_fn absmax;
    sq_quant_cols_fn quant_cols;
} sq_kernel_table;

// ---------------------------------------------------------------------------------------
// The int8 quantization rule, written once for C (Swift's twin: `Int8Codes` in
// Sources/SQRuntime/Support/Int8Codes.swift, which documents the two ranges):
//     q = round_half_even(saturate(x / scale, qmin, 127))
// qmin = -127 for sqopt's symmetric weights, -128 for activations (ONNX QuantizeLinear's
// int8 range). Saturating before rounding gives the same codes as after (the bounds are
// integers) and is what the vector paths do: vmaxps(v, lo) == (v > lo ? v : lo), so NaN
// becomes qmin everywhere; vcvtps2dq rounds to nearest even like lrintf in the default mode.
// ---------------------------------------------------------------------------------------
#define SQ_INT8_MAX 127.0f

/// One code; `lo` is (float)qmin.
static inline int8_t sq_quant_one(float v, float lo) {
    v = v > lo ? v : lo;
    v = v < SQ_INT8_MAX ? v : SQ_INT8_MAX;
    return (int8_t)lrintf(v);  // current rounding mode: nearest, ties to even
}

/// The accepted `qmin` of the quantization entry points: clamped into [-128, 0].
static inline int sq_clamp_qmin(int qmin) {
    return qmin < -128 ? -128 : (qmin > 0 ? 0 : qmin);
}

/// The table of the active ISA (resolved on first use).
const sq_kernel_table *sq_active_table(void);

// Per-ISA entry points (gemm_*_{generic,avx2,avx512}.c, quantize.c).
void sq_f32_tile_generic(size_t, const float *, const float *, float *, size_t, size_t,
                         size_t, const float *, int);
void sq_f32_tile_avx2(size_t, const float *, const float *, float *, size_t, size_t,
                      size_t, const float *, int);
void sq_f32_tile_avx512(size_t, const float *, const float *, float *, size_t, size_t,
                        size_t, const float *, int);
void sq_f32_tile_strided_avx512(size_t, const float *, size_t, const float *, float *, size_t,
                                size_t, size_t);
void sq_f32_row_avx512(size_t, const float *, const float *, size_t, size_t, float *, size_t,
                       const float *, int);
void sq_s8_tile_generic(size_t, const uint8_t *, const uint8_t *, const int32_t *, size_t,
                        size_t, const sq_s8_tile_out *);
void sq_s8_tile_avx2(size_t, const uint8_t *, const uint8_t *, const int32_t *, size_t,
                     size_t, const sq_s8_tile_out *);
void sq_s8_tile_avx512(size_t, const uint8_t *, const uint8_t *, const int32_t *, size_t,
                       size_t, const sq_s8_tile_out *);
void sq_s8_row_avx512(size_t, const uint8_t *, const uint8_t *, size_t, size_t,
                      const int32_t *, size_t, const sq_s8_tile_out *);
void sq_quant_row_generic(size_t, const float *, int8_t *, float, int);
void sq_quant_row_avx2(size_t, const float *, int8_t *, float, int);
void sq_quant_row_avx512(size_t, const float *, int8_t *, float, int);
float sq_absmax_generic(size_t, const float *);
void sq_quant_cols_generic(size_t, size_t, const float *, size_t, int8_t *, size_t, float *,
                           float, float, int);
void sq_quant_cols_avx2(size_t, size_t, const float *, size_t, int8_t *, size_t, float *,
                        float, float, int);
void sq_quant_cols_avx512(size_t, size_t, const float *, size_t, int8_t *, size_t, float *,
                          float, float, int);
float sq_absmax_avx2(size_t, const float *);
float sq_absmax_avx512(size_t, const float *);

/// The scalar epilogue every ISA must reproduce bit for bit:
/// float(acc) * (scale_a * scale_b) + bias (no fused multiply-add).
static inline float sq_s8_epilogue_one(int32_t acc, float scale_a, float scale_b,
                                       const float *bias, size_t j) {
    float v = (float)acc * (scale_a * scale_b);
    return bias ? v + bias[j] : v;
}

static inline size_t sq_min(size_t a, size_t b) { return a < b ? a : b; }
static inline size_t sq_max(size_t a, size_t b) { return a > b ? a : b; }
static inline size_t sq_div_up(size_t a, size_t b) { return (a + b - 1) / b; }

#endif  // SQKERNELS_INTERNAL_H
