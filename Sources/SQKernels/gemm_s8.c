// int8 GEMM driver: B packing (with the -128*colsum correction), A packing (s8 -> u8)
// and the loop around the ISA micro-tile, whose epilogue writes float or int32.
//
// Why u8: VNNI's vpdpbusd multiplies u8 x s8. With a_u8 = a_s8 ^ 0x80 = a_s8 + 128,
//   sum_k a_u8*b = sum_k a_s8*b + 128*colsum(b),
// so the packed B carries corr[j] = -128*colsum_j(B) and the accumulators start there.
// Every ISA uses the same packed A and B and the same correction, so all paths compute
// the identical int32 sum. Accumulation is exact (two's complement, wrapping only past
// K = 65536, where the u8 form could overflow).
//
// Packed B layout: ceil(n/32) panels of ceil(k/4) k-quads; quad q of panel p is 128 bytes,
// column c at bytes 4c..4c+3 = B[4q..4q+3][32p+c] (zero padded in k and n). One zmm load
// is 16 columns x 4 k. After the panels: ceil(n/32)*32 int32 corrections.
//
// No K blocking: the whole K stays in the int32 accumulators, so the epilogue is fused
// (K blocks below 1024 measured slower on Zen 4 anyway). Rows are blocked by S8_MC.
#pragma STDC FP_CONTRACT OFF
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "internal.h"

#ifndef S8_MC_TARGET
#define S8_MC_TARGET 64  // rows per packed A block (rounded up to a multiple of mr)
#endif
// When the packed B of a call is larger than this, it streams from L3 or memory, once per
// A block: the A block then grows (up to S8_A_BLOCK_BYTES, which stays in L2) so that B is
// read fewer times. SmolLM2's LM head (k 576, n 49152: 28 MB of B) at m = 256 read B four
// times with 64-row blocks.
#ifndef S8_B_RESIDENT_BYTES
#define S8_B_RESIDENT_BYTES (1u << 20)
#endif
#ifndef S8_A_BLOCK_BYTES
#define S8_A_BLOCK_BYTES (512u << 10)
#endif

static size_t panel_bytes(size_t k) { return sq_div_up(k, 4) * SQ_NR * 4; }

size_t sq_s8_packed_size(size_t k, size_t n) {
    size_t panels = sq_div_up(n, SQ_NR);
    return panels * panel_bytes(k) + panels * SQ_NR * sizeof(int32_t);
}

void sq_s8_pack_b(const int8_t *b, size_t ldb, int transposed, size_t k, size_t n,
                  uint8_t *packed) {
    size_t panels = sq_div_up(n, SQ_NR);
    int32_t *corr = (int32_t *)(packed + panels * panel_bytes(k));
    // Written in the order the source is read (it runs once per weight at plan time, over
    // every weight of the model: SmolLM2's 100 MB took ≈ 0.2 s byte by byte). Padding
    // (k past the end, columns past n) is zero.
    for (size_t p = 0; p < panels; p++) {
        uint8_t *dst = packed + p * panel_bytes(k);
        size_t j0 = p * SQ_NR, cols = sq_min(SQ_NR, n - j0);
        int32_t colsum[SQ_NR] = {0};
        if (cols < SQ_NR || k % 4 != 0) memset(dst, 0, panel_bytes(k));
        if (transposed) {  // B^T [n, k]: column j of B is the contiguous row j
            for (size_t c = 0; c < cols; c++) {
                const int8_t *src = b + (j0 + c) * ldb;
                int32_t sum = 0;
                size_t q = 0;
                for (; 4 * q + 4 <= k; q++) {
                    memcpy(dst + q * SQ_NR * 4 + c * 4, src + 4 * q, 4);
                    sum += src[4 * q] + src[4 * q + 1] + src[4 * q + 2] + src[4 * q + 3];
                }
                for (size_t kk = 4 * q; kk < k; kk++) {
                    dst[q * SQ_NR * 4 + c * 4 + (kk - 4 * q)] = (uint8_t)src[kk];
                    sum += src[kk];
                }
                colsum[c] = sum;
            }
        } else {  // B [k, n]: rows of B are contiguous; each feeds one byte of every column
            for (size_t kk = 0; kk < k; kk++) {
                const int8_t *src = b + kk * ldb + j0;
                uint8_t *row = dst + (kk / 4) * SQ_NR * 4 + (kk % 4);
                for (size_t c = 0; c < cols; c++) {
                    row[c * 4] = (uint8_t)src[c];
                    colsum[c] += src[c];
                }
            }
        }
        for (size_t c = 0; c < SQ_NR; c++) corr[j0 + c] = -128 * colsum[c];
    }
}

/// Pack rows [0, rows) of a (k columns) into micro-panels of mr rows as u8:
/// dst[t*kq*mr*4 + q*mr*4 + r*4 + u] = a[t*mr + r][4q + u] ^ 0x80; padding is 0x80 (the
/// u8 form of 0; it meets zero padding in B anyway), missing rows likewise.
/// One row's quads [q0, q1) of A, ^0x80, into column r of an mr-row panel.
static void pack_a_row(const int8_t *src, size_t q0, size_t q1, size_t mr, size_t r, uint8_t *panel) {
    for (size_t q = q0; q < q1; q++) {
        uint32_t word;
        memcpy(&word, src + 4 * q, 4);
        word ^= 0x80808080u;
        memcpy(panel + q * mr * 4 + r * 4, &word, 4);
    }
}

static void pack_a(const int8_t *a, size_t lda, size_t rows, size_t k, size_t mr,
                   uint8_t *dst) {
    size_t kq = sq_div_up(k, 4), full = k / 4;
    for (size_t t = 0; t * mr < rows; t++) {
        uint8_t *panel = dst + t * kq * mr * 4;
        size_t r = 0;
#if defined(__SSE2__)
        // Four rows at a time, four quads per row: a 4x4 transpose of 32-bit words (SSE2 is
        // the x86-64 baseline), the same bytes as the scalar loop below.
        const __m128i flip = _mm_set1_epi8((char)0x80);
        for (; r + 4 <= mr && t * mr + r + 4 <= rows; r += 4) {
            const int8_t *s0 = a + (t * mr + r) * lda, *s1 = s0 + lda, *s2 = s1 + lda, *s3 = s2 + lda;
            size_t q = 0;
            for (; q + 4 <= full; q += 4) {
                __m128i x0 = _mm_loadu_si128((const __m128i *)(s0 + 4 * q));
                __m128i x1 = _mm_loadu_si128((const __m128i *)(s1 + 4 * q));
                __m128i x2 = _mm_loadu_si128((const __m128i *)(s2 + 4 * q));
                __m128i x3 = _mm_loadu_si128((const __m128i *)(s3 + 4 * q));
                __m128i t0 = _mm_unpacklo_epi32(x0, x1), t1 = _mm_unpackhi_epi32(x0, x1);
                __m128i t2 = _mm_unpacklo_epi32(x2, x3), t3 = _mm_unpackhi_epi32(x2, x3);
                uint8_t *d = panel + q * mr * 4 + r * 4;
                _mm_storeu_si128((__m128i *)d, _mm_xor_si128(_mm_unpacklo_epi64(t0, t2), flip));
                _mm_storeu_si128((__m128i *)(d + mr * 4), _mm_xor_si128(_mm_unpackhi_epi64(t0, t2), flip));
                _mm_storeu_si128((__m128i *)(d + 2 * mr * 4), _mm_xor_si128(_mm_unpacklo_epi64(t1, t3), flip));
                _mm_storeu_si128((__m128i *)(d + 3 * mr * 4), _mm_xor_si128(_mm_unpackhi_epi64(t1, t3), flip));
            }
            for (size_t u = 0; u < 4; u++) pack_a_row(a + (t * mr + r + u) * lda, q, full, mr, r + u, panel);
            if (full < kq) {
                for (size_t u = 0; u < 4; u++) {
                    const int8_t *src = a + (t * mr + r + u) * lda;
                    uint8_t *d = panel + full * mr * 4 + (r + u) * 4;
                    for (size_t v = 0; v < 4; v++)
                        d[v] = 4 * full + v < k ? (uint8_t)src[4 * full + v] ^ 0x80 : 0x80;
                }
            }
        }
#endif
        for (; r < mr; r++) {
            size_t row = t * mr + r;
            if (row >= rows) {
                for (size_t q = 0; q < kq; q++) memset(panel + q * mr * 4 + r * 4, 0x80, 4);
                continue;
            }
            const int8_t *src = a + row * lda;
            pack_a_row(src, 0, full, mr, r, panel);
            if (full < kq) {  // last partial quad
                uint8_t *d = panel + full * mr * 4 + r * 4;
                for (size_t u = 0; u < 4; u++)
                    d[u] = 4 * full + u < k ? (uint8_t)src[4 * full + u] ^ 0x80 : 0x80;
            }
        }
    }
}

/// The output description of the tile at row i, column j0.
static sq_s8_tile_out tile_out(float *out_f32, int32_t *out_s32, size_t ldo,
                               const sq_s8_epilogue *epi, size_t i, size_t j0) {
    sq_s8_tile_out o = {.ldo = ldo};
    if (out_s32) {
        o.out_s32 = out_s32 + i * ldo + j0;
    } else {
        o.out_f32 = out_f32 + i * ldo + j0;
        o.scale_a_per_row = epi->scale_a_per_row;
        o.scale_a = epi->scale_a + (epi->scale_a_per_row ? i : 0);
        o.scale_b_per_col = epi->scale_b_per_col;
        o.scale_b = epi->scale_b + (epi->scale_b_per_col ? j0 : 0);
        o.bias = epi->bias ? epi->bias + j0 : NULL;
    }
    return o;
}

static int s8_gemm(size_t m, size_t n, size_t k, const int8_t *a, size_t lda,
                    const uint8_t *packed_b, size_t panel_begin, size_t panel_end,
                    float *out_f32, int32_t *out_s32, size_t ldo, const sq_s8_epilogue *epi) {
    size_t panels = sq_div_up(n, SQ_NR), kq = sq_div_up(k, 4);
    if (panel_end > panels) panel_end = panels;
    if (m == 0 || panel_begin >= panel_end) return 0;
    const sq_kernel_table *t = sq_active_table();
    size_t mr = t->s8_mr;
    size_t mc_target = S8_MC_TARGET;
    if ((panel_end - panel_begin) * panel_bytes(k) > S8_B_RESIDENT_BYTES) {
        size_t fit = S8_A_BLOCK_BYTES / (kq * 4);
        mc_target = sq_max(mc_target, sq_min(m, fit));
    }
    size_t mc = sq_div_up(mc_target, mr) * mr;
    size_t mc_alloc = sq_min(mc, sq_div_up(m, mr) * mr);
    size_t bytes = sq_div_up(mc_alloc * kq * 4 + 1, 64) * 64;
    uint8_t *a_pack = aligned_alloc(64, bytes);
    if (!a_pack) return -1;
    const int32_t *corr = (const int32_t *)(packed_b + panels * panel_bytes(k));

    if (m == 1 && t->s8_row) {  // one row (decode): several panels at once
        pack_a(a, lda, 1, k, 1, a_pack);
        for (size_t p = panel_begin; p < panel_end; p += 4) {
            size_t j0 = p * SQ_NR, count = sq_min(4, panel_end - p);
            sq_s8_tile_out o = tile_out(out_f32, out_s32, ldo, epi, 0, j0);
            t->s8_row(kq, a_pack, packed_b + p * panel_bytes(k), panel_bytes(k), count,
                      corr + j0, n - j0, &o);
        }
        free(a_pack);
        return 0;
    }
    for (size_t i0 = 0; i0 < m; i0 += mc) {
        size_t rows = sq_min(mc, m - i0);
        pack_a(a + i0 * lda, lda, rows, k, mr, a_pack);
        for (size_t p = panel_begin; p < panel_end; p++) {
            size_t j0 = p * SQ_NR, nr = sq_min(SQ_NR, n - j0);
            const uint8_t *b_panel = packed_b + p * panel_bytes(k);
            for (size_t ii = 0; ii < rows; ii += mr) {
                size_t i = i0 + ii;
                sq_s8_tile_out o = tile_out(out_f32, out_s32, ldo, epi, i, j0);
                t->s8_tile(kq, a_pack + ii * kq * 4, b_panel, corr + j0,
                           sq_min(mr, rows - ii), nr, &o);
            }
        }
    }
    free(a_pack);
    return 0;
}

int sq_s8_gemm_packed_f32(size_t m, size_t n, size_t k, const int8_t *a, size_t lda,
                           const uint8_t *packed_b, size_t panel_begin, size_t panel_end,
                           float *out, size_t ldo, const sq_s8_epilogue *epilogue) {
    if (!epilogue || !epilogue->scale_a || !epilogue->scale_b) return -1;
    return s8_gemm(m, n, k, a, lda, packed_b, panel_begin, panel_end, out, NULL, ldo, epilogue);
}

int sq_s8_gemm_packed_s32(size_t m, size_t n, size_t k, const int8_t *a, size_t lda,
                           const uint8_t *packed_b, size_t panel_begin, size_t panel_end,
                           int32_t *out, size_t ldo) {
    return s8_gemm(m, n, k, a, lda, packed_b, panel_begin, panel_end, NULL, out, ldo, NULL);
}

// ---------------------------------------------------------------------------------------
// Activation quantization (driver; the per-row kernels live in the ISA files).
// ---------------------------------------------------------------------------------------
void sq_quantize_rows_s8(size_t m, size_t k, const float *x, size_t ldx, int8_t *q,
                         size_t ldq, float *scales_out, float scale, int qmin) {
    const sq_kernel_table *t = sq_active_table();
    qmin = sq_clamp_qmin(qmin);
    if (k == 0) {  // empty rows: nothing to read or write but the (zero) scales
        for (size_t i = 0; scales_out && i < m; i++) scales_out[i] = 0.0f;
        return;
    }
    for (size_t i = 0; i < m; i++) {
        const float *row = x + i * ldx;
        float s = scale;
        if (scales_out) {
            s = t->absmax(k, row) / SQ_INT8_MAX;
            scales_out[i] = s;
        }
        if (s > 0.0f)
            t->quant_row(k, row, q + i * ldq, s, qmin);
        else  // all-zero row, or a zero / negative / NaN per-tensor scale
            memset(q + i * ldq, 0, k);
    }
}

void sq_quantize_rows_dynamic_s8(size_t m, size_t k, const float *x, int8_t *q,
                                 float *scales_out, float divisor, float min_scale, int qmin) {
    const sq_kernel_table *t = sq_active_table();
    qmin = sq_clamp_qmin(qmin);
    if (k == 0) return;
    for (size_t i = 0; i < m; i++) {
        const float *row = x + i * k;
        // absmax is NaN for a row holding NaN; Max(s, min_scale) propagates NaN.
        float s = sq_absmax_nan_f32(k, row) / divisor;
        s = (s != s || min_scale != min_scale) ? NAN : (s < min_scale ? min_scale : s);
        scales_out[i] = s;
        if (s > 0.0f)
            t->quant_row(k, row, q + i * k, s, qmin);
        else
            memset(q + i * k, 0, k);
    }
}

void sq_quantize_cols_dynamic_s8(size_t k, size_t n, const float *x, int8_t *q,
                                 float *scales_out, float divisor, float min_scale, int qmin) {
    qmin = sq_clamp_qmin(qmin);
    if (k == 0 || n == 0) return;
    sq_active_table()->quant_cols(k, n, x, n, q, n, scales_out, divisor, min_scale, qmin);
}

