// SQKernels: the GEMM and quantization kernels of sqopt's interpreter.
//
// Everything here is plain C over caller-owned memory; the Swift wrappers in
// Sources/SQRuntime/Kernels own the buffers and do the threading. All matrices are
// row-major with an explicit leading dimension (elements between two rows).
//
// Work splitting: every GEMM entry computes the rows [0, m) of the pointers it is given
// and the column *panels* [panel_begin, panel_end) (a panel is SQ_PANEL_COLS columns).
// A caller splits rows by offsetting A and C, columns by choosing panel ranges. The
// result of an element never depends on the split, so any thread count gives the same
// bits.
//
// ISA dispatch: each kernel has a portable scalar twin ("scalar") and vector variants
// ("avx2", "avx512"); the best one the CPU supports is chosen on first use. The
// environment variable SQOPT_KERNEL=scalar|avx2|avx512 or sq_force_isa() overrides it.
#ifndef SQKERNELS_H
#define SQKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Columns per packed panel of B, shared by every ISA variant (so packed weights stay
/// valid when the ISA is forced).
#define SQ_PANEL_COLS 32

/// The instruction set paths. Values are ordered: a higher one needs more CPU features.
typedef enum {
    SQ_ISA_SCALAR = 0,
    SQ_ISA_AVX2 = 1,    // AVX2 + FMA
    SQ_ISA_AVX512 = 2,  // AVX-512 F/BW + VNNI
} sq_isa;

/// The best ISA this CPU supports (ignores forcing).
sq_isa sq_isa_detected(void);
/// The ISA the kernels use now: SQOPT_KERNEL if set and supported, else detected,
/// unless sq_force_isa changed it.
sq_isa sq_isa_active(void);
/// Force an ISA path. Returns 0 on success, -1 if the CPU lacks it (nothing changes).
/// Meant for tests and benchmarks; not safe to call while kernels run on other threads.
int sq_force_isa(sq_isa isa);
/// "scalar", "avx2" or "avx512".
const char *sq_isa_name(sq_isa isa);

// ---------------------------------------------------------------------------------------
// fp32 GEMM: C[m,n] = (accumulate ? C : 0) + A[m,k] * B[k,n] (+ bias[n])
// ---------------------------------------------------------------------------------------

/// Number of floats a packed B of k rows and n columns takes:
/// ceil(n / 32) panels of k rows x 32 columns (zero padded).
size_t sq_f32_packed_size(size_t k, size_t n);

/// Pack B into panels. If transposed == 0, B is [k, n] with row stride ldb
/// (element (kk, j) at b[kk*ldb + j]); if transposed != 0, the source is B^T stored as
/// [n, k] with row stride ldb (element (kk, j) at b[j*ldb + kk]).
/// `packed` must hold sq_f32_packed_size(k, n) floats.
void sq_f32_pack_b(const float *b, size_t ldb, int transposed, size_t k, size_t n,
                   float *packed);

/// C rows [0, m), panels [panel_begin, panel_end) of the product with a packed B of
/// k rows and n columns. bias may be NULL. If k == 0 the result is C (or 0) + bias.
/// Returns 0, or -1 if its scratch memory could not be allocated (C is then undefined).
int sq_f32_gemm_packed(size_t m, size_t n, size_t k,
                        const float *a, size_t lda,
                        const float *packed_b,
                        size_t panel_begin, size_t panel_end,
                        float *c, size_t ldc,
                        const float *bias, int accumulate);

/// sq_f32_gemm_packed over the first k rows of a packed B of more rows: its panels are
/// `panel_stride` floats apart (32 × the packed row count; sq_f32_gemm_packed passes 32·k).
int sq_f32_gemm_packed_prefix(size_t m, size_t n, size_t k, const float *a, size_t lda,
                              const float *packed_b, size_t panel_stride, size_t panel_begin,
                              size_t panel_end, float *c, size_t ldc, const float *bias,
                              int accumulate);

/// sq_f32_gemm_packed_prefix without bias or accumulation, for small products (attention
/// blocks): A is read in place instead of packed when the ISA has a tile for it (AVX-512)
/// and k ≤ 1024; the same bits either way.
int sq_f32_gemm_small(size_t m, size_t n, size_t k, const float *a, size_t lda,
                      const float *packed_b, size_t panel_stride, size_t panel_begin,
                      size_t panel_end, float *c, size_t ldc);

// ---------------------------------------------------------------------------------------
// int8 GEMM: acc[m,n] = sum_k A[m,k] * B[k,n] in int32 (exact), s8 x s8,
// then the fused epilogue out[m,n] = float(acc) * (scale_a[i] * scale_b[j]) + bias[j]
// ---------------------------------------------------------------------------------------

/// Bytes a packed int8 B of k rows and n columns takes: ceil(n/32) panels of
/// ceil(k/4) k-quads x 32 columns x 4 bytes, then ceil(n/32)*32 int32 column sums.
size_t sq_s8_packed_size(size_t k, size_t n);

/// Pack int8 B (same conventions as sq_f32_pack_b). Also stores the correction term
/// -128 * colsum(B) the u8-activation kernels need. `packed` must be 4-byte aligned
/// (64 preferred) and hold sq_s8_packed_size(k, n) bytes.
void sq_s8_pack_b(const int8_t *b, size_t ldb, int transposed, size_t k, size_t n,
                  uint8_t *packed);

/// The epilogue. scale_a has m entries (per row / token) when scale_a_per_row != 0,
/// else 1 (per tensor); scale_b has n entries (per column / channel) when
/// scale_b_per_col != 0, else 1. bias (n entries) may be NULL. Pointers are relative to
/// the row/column origin of the call (scale_a[0] is row 0 of `a`; scale_b and bias are
/// indexed by the absolute column j, like packed_b).
typedef struct {
    const float *scale_a;
    int scale_a_per_row;
    const float *scale_b;
    int scale_b_per_col;
    const float *bias;
} sq_s8_epilogue;

/// out rows [0, m), panels [panel_begin, panel_end): float output with the epilogue.
/// Returns 0, or -1 if scratch memory could not be allocated or the epilogue lacks scales.
int sq_s8_gemm_packed_f32(size_t m, size_t n, size_t k,
                           const int8_t *a, size_t lda,
                           const uint8_t *packed_b,
                           size_t panel_begin, size_t panel_end,
                           float *out, size_t ldo,
                           const sq_s8_epilogue *epilogue);

/// Same product, raw int32 accumulators (no epilogue): out[i,j] = acc. Returns 0 or -1.
int sq_s8_gemm_packed_s32(size_t m, size_t n, size_t k,
                           const int8_t *a, size_t lda,
                           const uint8_t *packed_b,
                           size_t panel_begin, size_t panel_end,
                           int32_t *out, size_t ldo);

// ---------------------------------------------------------------------------------------
// Activation quantization: symmetric int8, zero point 0, round half to even.
// ---------------------------------------------------------------------------------------

/// Quantize rows [0, m) of x[m, k]. If scales_out != NULL (per-token mode), each row's
/// scale is absmax(row)/127 and is written to scales_out[i]; a row of zeros gets scale 0
/// and quantizes to 0. Otherwise every row uses the given per-tensor `scale`
/// (scale <= 0 or NaN quantizes everything to 0).
/// q = clamp(round_half_even(x / scale), qmin, 127) with qmin = -127 (symmetric) or
/// -128 (ONNX QuantizeLinear saturation). NaN quantizes to qmin. All ISA paths give the
/// same bits.
void sq_quantize_rows_s8(size_t m, size_t k,
                         const float *x, size_t ldx,
                         int8_t *q, size_t ldq,
                         float *scales_out, float scale, int qmin);

/// Per-token dynamic quantization as O1 graphs spell it
/// (`Max(Div(ReduceMax(Abs(x), axes=-1), divisor), min_scale)`, then QuantizeLinear):
/// s_i = max(absmax(row_i) / divisor, min_scale), NaN when the row holds a NaN (as
/// ReduceMax and Max propagate it), written to scales_out[i]; then row i is quantized with
/// s_i exactly as sq_quantize_rows_s8 does with a per-tensor scale (s_i <= 0 or NaN: 0).
/// Rows are dense (stride k). k must be > 0.
void sq_quantize_rows_dynamic_s8(size_t m, size_t k, const float *x, int8_t *q,
                                 float *scales_out, float divisor, float min_scale, int qmin);

/// Per-column dynamic quantization as O1 graphs spell it for Kᵀ (blocked along axis -2,
/// `Max(Div(ReduceMax(Abs(x), axes=-2), divisor), min_scale)`, then QuantizeLinear):
/// x is [k, n] with dense rows of n; s_j = max(absmax(column j) / divisor, min_scale), NaN
/// when the column holds a NaN, written to scales_out[j]; then
/// q[i, j] = clamp(round_half_even(x[i, j] / s_j), qmin, 127), NaN -> qmin: ONNX
/// QuantizeLinear's operations for every s_j (no special case for s_j <= 0). All ISA paths
/// give the same bits. k must be > 0.
void sq_quantize_cols_dynamic_s8(size_t k, size_t n, const float *x, int8_t *q,
                                 float *scales_out, float divisor, float min_scale, int qmin);

/// max |x| over n floats, NaN if any element is NaN (ReduceMax(Abs(x)) over a whole
/// tensor); 0 for n = 0.
float sq_absmax_nan_f32(size_t n, const float *x);

/// A spin-wait hint for busy loops (x86 PAUSE); used by the Swift thread pool.
static inline void sq_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// ---------------------------------------------------------------------------------------
// Vector float math (vmath.c): y[i] = f(x[i]); y may equal x. Scalar twin = libm.
// Vector paths stay within 2e-6 relative (1e-6 for exp) of libm, or 3e-7 absolute for
// erf, tanh and GELU near zero crossings; NaN propagates, ±inf give the limits.
// ---------------------------------------------------------------------------------------

typedef enum {
    SQ_VM_EXP = 0,
    SQ_VM_SIGMOID = 1,  // 1 / (1 + e^-x)
    SQ_VM_SILU = 2,     // x / (1 + e^-x)
    SQ_VM_TANH = 3,
    SQ_VM_ERF = 4,
    SQ_VM_GELU = 5,     // 0.5 x (1 + erf(x / sqrt 2))
    SQ_VM_COUNT = 6,
} sq_vmath_op;

/// Applies `op` to n floats. Returns 0, or -1 for an unknown op (nothing written).
int sq_vmath_f32(sq_vmath_op op, size_t n, const float *x, float *y);

/// Softmax of `rows` contiguous rows of n floats: e^(x - max) / sum, the max of an
/// all -inf row taken as 0. y may equal x.
void sq_softmax_rows_f32(size_t rows, size_t n, const float *x, float *y);

/// Softmax of one row of attention scores as exporters spell it, Softmax(x / divisor + mask):
/// t[i] = x[i] / divisor (+ mask[i] if mask != NULL), rounded like the separate Div and Add,
/// then the row softmax of t. y may equal x.
void sq_softmax_row_scaled_f32(size_t n, const float *x, float divisor, const float *mask, float *y);

// ---------------------------------------------------------------------------------------
// Rows of fused elementwise chains (rows.c), rounded like their nodes (no FMA contraction).
// ---------------------------------------------------------------------------------------

/// Rotary embedding of one row of 2·half floats: y = x·c + rotate_half(x)·s with
/// rotate_half(x) = [−x[half..<2half], x[0..<half]]. y must not overlap x, c or s.
void sq_rotary_row_f32(size_t half, const float *x, const float *c, const float *s, float *y);

/// RMSNorm of one row of n ≥ 1 floats as Pow(x, 2), ReduceMean, Add(ε), Sqrt, Div(1, ·), Mul(x, ·)
/// and Mul(w, ·) compute it (the mean summed as the ReduceMean kernel sums a float32 row);
/// w may be NULL (no scale). y must not overlap x or w.
void sq_rms_norm_row_f32(size_t n, const float *x, float epsilon, const float *w, float *y);

/// LayerNormalization (rms = 0) or RMSNormalization (rms != 0, mean 0) of one row of n floats:
/// mean and variance in double, y = (x − mean)·(1/√(var + ε))·scale (+ bias) in float; also
/// the row's mean and 1/√(var + ε) rounded to float. bias may be NULL.
void sq_layer_norm_row_f32(size_t n, const float *x, float epsilon, int rms, const float *scale,
                           const float *bias, float *y, float *mean_out, float *inv_std_out);

/// y[i] = y[i] · u[i] for n floats; y and u must not overlap.
void sq_mul_inplace_f32(size_t n, float *y, const float *u);

#ifdef __cplusplus
}
#endif

#endif  // SQKERNELS_H
