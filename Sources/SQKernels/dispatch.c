// ISA dispatch: one table per instruction set, chosen once by CPU features, overridable
// by SQOPT_KERNEL=scalar|avx2|avx512 or sq_force_isa().
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if !defined(__x86_64__)
// Other architectures: only the scalar twins exist (detection never picks the others).
#define sq_f32_tile_avx2 sq_f32_tile_generic
#define sq_f32_tile_avx512 sq_f32_tile_generic
#define sq_f32_row_avx512 NULL
#define sq_f32_tile_strided_avx512 NULL
#define sq_s8_tile_avx2 sq_s8_tile_generic
#define sq_s8_tile_avx512 sq_s8_tile_generic
#define sq_s8_row_avx512 NULL
#define sq_quant_row_avx2 sq_quant_row_generic
#define sq_quant_row_avx512 sq_quant_row_generic
#define sq_absmax_avx2 sq_absmax_generic
#define sq_absmax_avx512 sq_absmax_generic
#define sq_quant_cols_avx2 sq_quant_cols_generic
#define sq_quant_cols_avx512 sq_quant_cols_generic
#endif

static const sq_kernel_table tables[] = {
    [SQ_ISA_SCALAR] = {
        .name = "scalar",
        .f32_mr = 4, .f32_tile = sq_f32_tile_generic,
        .s8_mr = 4, .s8_tile = sq_s8_tile_generic,
        .quant_row = sq_quant_row_generic, .absmax = sq_absmax_generic,
        .quant_cols = sq_quant_cols_generic,
    },
    [SQ_ISA_AVX2] = {
        .name = "avx2",
        .f32_mr = 6, .f32_tile = sq_f32_tile_avx2,
        .s8_mr = 4, .s8_tile = sq_s8_tile_avx2,
        .quant_row = sq_quant_row_avx2, .absmax = sq_absmax_avx2,
        .quant_cols = sq_quant_cols_avx2,
    },
    [SQ_ISA_AVX512] = {
        .name = "avx512",
        .f32_mr = 14, .f32_tile = sq_f32_tile_avx512, .f32_row = sq_f32_row_avx512,
        .f32_tile_strided = sq_f32_tile_strided_avx512,
        .s8_mr = 8, .s8_tile = sq_s8_tile_avx512, .s8_row = sq_s8_row_avx512,
        .quant_row = sq_quant_row_avx512, .absmax = sq_absmax_avx512,
        .quant_cols = sq_quant_cols_avx512,
    },
};
_Static_assert(sizeof(tables) / sizeof(tables[0]) == SQ_ISA_AVX512 + 1,
               "one kernel table per sq_isa value");

sq_isa sq_isa_detected(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vnni"))
        return SQ_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return SQ_ISA_AVX2;
#endif
    return SQ_ISA_SCALAR;
}

const char *sq_isa_name(sq_isa isa) {
    return (unsigned)isa <= SQ_ISA_AVX512 ? tables[isa].name : "unknown";
}

// -1 until resolved. Races on first use only ever store the same value.
static _Atomic int active_isa = -1;

static int resolve_isa(void) {
    sq_isa best = sq_isa_detected();
    const char *forced = getenv("SQOPT_KERNEL");
    if (forced) {
        for (int i = 0; i <= (int)best; i++)
            if (strcmp(forced, tables[i].name) == 0) return i;
        // Unknown or unsupported value: keep the detected best.
    }
    return (int)best;
}

sq_isa sq_isa_active(void) {
    int isa = atomic_load_explicit(&active_isa, memory_order_acquire);
    if (isa < 0) {
        isa = resolve_isa();
        atomic_store_explicit(&active_isa, isa, memory_order_release);
    }
    return (sq_isa)isa;
}

int sq_force_isa(sq_isa isa) {
    if ((unsigned)isa > SQ_ISA_AVX512 || isa > sq_isa_detected()) return -1;
    atomic_store_explicit(&active_isa, (int)isa, memory_order_release);
    return 0;
}

const sq_kernel_table *sq_active_table(void) { return &tables[sq_isa_active()]; }
