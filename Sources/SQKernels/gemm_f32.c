// fp32 GEMM driver: B packing, A packing and the blocked loop around the ISA micro-tile.
//
// Packed B layout: ceil(n/32) panels, each k rows x 32 columns, row kk of panel p holding
// B[kk][32p .. 32p+31] (zero padded past n). A K-slice of a panel is contiguous, so the
// driver can block K without repacking.
//
// Loop nest (BLIS order): column blocks of ~F32_NC_BYTES of packed B -> K blocks of F32_KC
// -> row blocks of ~F32_MC rows (A packed into mr-row micro-panels, k-major) -> column
// panels -> micro-tiles of mr rows. The B slice (KC x 32 floats, <= 128 KiB) is reused by
// every micro-tile of the row block from L2; the column block keeps the B a row block
// walks in L3, so a wide B (an LM head: 576 x 49152, 113 MB) is read from memory once per
// column block instead of once per row block.
// The block sizes were chosen by measurement on Zen 4 (tools/bench_gemm.py): long K
// blocks win; short row blocks keep the packed A small.
// Each C element always sees the same sequence of K blocks, so splitting rows or panels
// between threads never changes the result.
#pragma STDC FP_CONTRACT OFF
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifndef F32_KC
#define F32_KC 1024  // K block (measured: 768-2048 beat 256-512 on Zen 4)
#endif
#ifndef F32_NC_BYTES
#define F32_NC_BYTES (4u << 20)  // packed-B bytes per column block (256x576x49152: 89 -> 104 GFLOPS)
#endif
#ifndef F32_MC_TARGET
#define F32_MC_TARGET 28  // rows per packed A block (rounded up to a multiple of mr)
#endif

size_t sq_f32_packed_size(size_t k, size_t n) { return sq_div_up(n, SQ_NR) * k * SQ_NR; }

void sq_f32_pack_b(const float *b, size_t ldb, int transposed, size_t k, size_t n,
                   float *packed) {
    size_t panels = sq_div_up(n, SQ_NR);
    for (size_t p = 0; p < panels; p++) {
        size_t j0 = p * SQ_NR, cols = sq_min(SQ_NR, n - j0);
        float *dst = packed + p * k * SQ_NR;
        if (!transposed) {
            for (size_t kk = 0; kk < k; kk++) {
                float *row = dst + kk * SQ_NR;
                memcpy(row, b + kk * ldb + j0, cols * sizeof(float));
                for (size_t j = cols; j < SQ_NR; j++) row[j] = 0.0f;
            }
        } else {
            // Source is B^T [n, k]: read each column of B as a contiguous source row.
            if (cols < SQ_NR) memset(dst, 0, k * SQ_NR * sizeof(float));
            for (size_t j = 0; j < cols; j++) {
                const float *src = b + (j0 + j) * ldb;
                for (size_t kk = 0; kk < k; kk++) dst[kk * SQ_NR + j] = src[kk];
            }
        }
    }
}

/// Pack rows [0, rows) x columns [0, kc) of a into micro-panels of mr rows:
/// panel t holds a[(t*mr + r)][kk] at dst[t*kc*mr + kk*mr + r], zero for missing rows.
static void pack_a(const float *a, size_t lda, size_t rows, size_t kc, size_t mr, float *dst) {
    for (size_t t = 0; t * mr < rows; t++) {
        size_t r_valid = sq_min(mr, rows - t * mr);
        float *panel = dst + t * kc * mr;
        for (size_t r = 0; r < mr; r++) {
            if (r < r_valid) {
                const float *src = a + (t * mr + r) * lda;
                for (size_t kk = 0; kk < kc; kk++) panel[kk * mr + r] = src[kk];
            } else {
                for (size_t kk = 0; kk < kc; kk++) panel[kk * mr + r] = 0.0f;
            }
        }
    }
}

/// k == 0: C = (accumulate ? C : 0) + bias over the requested columns.
static void fill_bias(size_t m, size_t j0, size_t j1, float *c, size_t ldc,
                      const float *bias, int accumulate) {
    for (size_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        for (size_t j = j0; j < j1; j++) {
            float base = accumulate ? row[j] : 0.0f;
            row[j] = bias ? base + bias[j] : base;
        }
    }
}

int sq_f32_gemm_packed(size_t m, size_t n, size_t k, const float *a, size_t lda,
                        const float *packed_b, size_t panel_begin, size_t panel_end,
                        float *c, size_t ldc, const float *bias, int accumulate) {
    return sq_f32_gemm_packed_prefix(m, n, k, a, lda, packed_b, k * SQ_NR, panel_begin, panel_end, c, ldc,
                                     bias, accumulate);
}

int sq_f32_gemm_packed_prefix(size_t m, size_t n, size_t k, const float *a, size_t lda,
                              const float *packed_b, size_t panel_stride, size_t panel_begin,
                              size_t panel_end, float *c, size_t ldc, const float *bias,
                              int accumulate) {
    size_t panels = sq_div_up(n, SQ_NR);
    if (panel_end > panels) panel_end = panels;
    if (m == 0 || panel_begin >= panel_end) return 0;
    if (k == 0) {
        fill_bias(m, panel_begin * SQ_NR, sq_min(panel_end * SQ_NR, n), c, ldc, bias,
                  accumulate);
        return 0;
    }
    const sq_kernel_table *t = sq_active_table();
    if (m == 1 && t->f32_row) {  // one row (decode): no packing, several panels at once
        for (size_t k0 = 0; k0 < k; k0 += F32_KC) {
            size_t kc = sq_min(F32_KC, k - k0);
            int first = k0 == 0;
            for (size_t p = panel_begin; p < panel_end; p += 4) {
                size_t count = sq_min(4, panel_end - p), j0 = p * SQ_NR;
                t->f32_row(kc, a + k0, packed_b + p * panel_stride + k0 * SQ_NR, panel_stride, count,
                           c + j0, n - j0, first && bias ? bias + j0 : NULL,
                           first ? accumulate : 1);
            }
        }
        return 0;
    }
    size_t mr = t->f32_mr;
    size_t mc = sq_div_up(F32_MC_TARGET, mr) * mr;
    size_t mc_alloc = sq_min(mc, sq_div_up(m, mr) * mr);
    size_t kc_alloc = sq_min(F32_KC, k);
    float *a_pack = aligned_alloc(64, sq_div_up(mc_alloc * kc_alloc * sizeof(float), 64) * 64);
    if (!a_pack) return -1;

    size_t group = F32_NC_BYTES / (kc_alloc * SQ_NR * sizeof(float));
    if (group < 4) group = 4;
    for (size_t g0 = panel_begin; g0 < panel_end; g0 += group) {
    size_t g1 = sq_min(g0 + group, panel_end);
    for (size_t k0 = 0; k0 < k; k0 += F32_KC) {
        size_t kc = sq_min(F32_KC, k - k0);
        int first = k0 == 0;
        for (size_t i0 = 0; i0 < m; i0 += mc) {
            size_t rows = sq_min(mc, m - i0);
            pack_a(a + i0 * lda + k0, lda, rows, kc, mr, a_pack);
            for (size_t p = g0; p < g1; p++) {
                size_t j0 = p * SQ_NR, nr = sq_min(SQ_NR, n - j0);
                const float *b_slice = packed_b + p * panel_stride + k0 * SQ_NR;
                for (size_t ii = 0; ii < rows; ii += mr) {
                    t->f32_tile(kc, a_pack + ii * kc, b_slice, c + (i0 + ii) * ldc + j0, ldc,
                                sq_min(mr, rows - ii), nr,
                                first && bias ? bias + j0 : NULL, first ? accumulate : 1);
                }
            }
        }
    }
    }
    free(a_pack);
    return 0;
}

int sq_f32_gemm_small(size_t m, size_t n, size_t k, const float *a, size_t lda,
                      const float *packed_b, size_t panel_stride, size_t panel_begin,
                      size_t panel_end, float *c, size_t ldc) {
    const sq_kernel_table *t = sq_active_table();
    size_t panels = sq_div_up(n, SQ_NR);
    if (panel_end > panels) panel_end = panels;
    if (!t->f32_tile_strided || m == 1 || k == 0 || k > F32_KC)
        return sq_f32_gemm_packed_prefix(m, n, k, a, lda, packed_b, panel_stride, panel_begin,
                                         panel_end, c, ldc, NULL, 0);
    size_t mr = t->f32_mr;
    for (size_t p = panel_begin; p < panel_end; p++) {
        size_t j0 = p * SQ_NR, nr = sq_min(SQ_NR, n - j0);
        for (size_t i0 = 0; i0 < m; i0 += mr)
            t->f32_tile_strided(k, a + i0 * lda, lda, packed_b + p * panel_stride, c + i0 * ldc + j0,
                                ldc, sq_min(mr, m - i0), nr);
    }
    return 0;
}
