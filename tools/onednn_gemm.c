// tools/onednn_gemm.c: oneDNN's matmul primitive timed on the GEMM shapes of
// tools/bench_gemm.py, so sqopt's kernels can be compared with oneDNN in the same run.
//
// Build (tools/bench_gemm.py does this itself when <oneapi/dnnl/dnnl.h> exists; Debian:
// apt-get install libdnnl-dev):
//     cc -O2 -o build/onednn_gemm tools/onednn_gemm.c -ldnnl
// Run:
//     OMP_NUM_THREADS=1 build/onednn_gemm MIN_SECONDS MxKxN...
// Prints one JSON object per line: {"kind": "u8s8"|"s8s8"|"fp32", "m":…, "k":…, "n":…,
// "medianMs":…, "bestMs":…}. Threads follow OMP_NUM_THREADS (oneDNN's Debian build uses
// OpenMP).
//
// What is timed: one matmul primitive execution, A [M,K] row-major (u8, s8 or f32) times a
// constant B [K,N] (s8 or f32) reordered once, before timing, into the layout oneDNN picks
// (format_tag any), like onnxruntime's constant initializer and sqopt's pre-packed weights.
// Output int32 (int8 kinds) or f32, row-major: the MatMulInteger / MatMul contract.
// Written for the oneDNN 2.x C API (Debian 12 ships 2.6).
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                    \
    do {                                                                               \
        dnnl_status_t status_ = (call);                                                \
        if (status_ != dnnl_success) {                                                 \
            fprintf(stderr, "onednn_gemm: %s failed (status %d)\n", #call, (int)status_); \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Deterministic fill (SplitMix64), bytes or floats in [-1, 1).
static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill(void *data, size_t count, dnnl_data_type_t type, uint64_t seed) {
    for (size_t i = 0; i < count; i++) {
        uint64_t r = splitmix(&seed);
        if (type == dnnl_f32) {
            ((float *)data)[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
        } else {
            ((uint8_t *)data)[i] = (uint8_t)r;
        }
    }
}

static size_t type_size(dnnl_data_type_t type) { return type == dnnl_f32 || type == dnnl_s32 ? 4 : 1; }

static void bench(const char *kind, dnnl_data_type_t a_type, dnnl_data_type_t b_type,
                  dnnl_data_type_t c_type, int64_t m, int64_t k, int64_t n, double min_time,
                  dnnl_engine_t engine, dnnl_stream_t stream) {
    dnnl_dims_t a_dims = {m, k}, b_dims = {k, n}, c_dims = {m, n};
    dnnl_memory_desc_t a_md, b_plain_md, b_any_md, c_md;
    CHECK(dnnl_memory_desc_init_by_tag(&a_md, 2, a_dims, a_type, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&b_plain_md, 2, b_dims, b_type, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&b_any_md, 2, b_dims, b_type, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&c_md, 2, c_dims, c_type, dnnl_ab));

    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, &a_md, &b_any_md, NULL, &c_md));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL));
    const dnnl_memory_desc_t *b_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);

    void *a = malloc((size_t)(m * k) * type_size(a_type));
    void *b = malloc((size_t)(k * n) * type_size(b_type));
    void *c = malloc((size_t)(m * n) * type_size(c_type));
    if (!a || !b || !c) { fprintf(stderr, "onednn_gemm: out of memory\n"); exit(1); }
    fill(a, (size_t)(m * k), a_type, 1);
    fill(b, (size_t)(k * n), b_type, 2);
    dnnl_memory_t a_mem, b_plain_mem, b_mem, c_mem;
    CHECK(dnnl_memory_create(&a_mem, &a_md, engine, a));
    CHECK(dnnl_memory_create(&b_plain_mem, &b_plain_md, engine, b));
    CHECK(dnnl_memory_create(&b_mem, b_md, engine, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_create(&c_mem, &c_md, engine, c));

    // Reorder B once into the primitive's layout (not timed: B is a constant weight).
    dnnl_primitive_desc_t reorder_pd;
    CHECK(dnnl_reorder_primitive_desc_create(&reorder_pd, &b_plain_md, engine, b_md, engine, NULL));
    dnnl_primitive_t reorder;
    CHECK(dnnl_primitive_create(&reorder, reorder_pd));
    dnnl_exec_arg_t reorder_args[2] = {{DNNL_ARG_FROM, b_plain_mem}, {DNNL_ARG_TO, b_mem}};
    CHECK(dnnl_primitive_execute(reorder, stream, 2, reorder_args));
    CHECK(dnnl_stream_wait(stream));

    dnnl_primitive_t matmul;
    CHECK(dnnl_primitive_create(&matmul, pd));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}};

    // Warm-up, then at least 5 runs and min_time seconds (as tools/bench_gemm.py times onnxruntime).
    double warm_end = now_seconds() + (min_time < 0.05 ? min_time : 0.05);
    do {
        CHECK(dnnl_primitive_execute(matmul, stream, 3, args));
        CHECK(dnnl_stream_wait(stream));
    } while (now_seconds() < warm_end);
    size_t capacity = 10000, count = 0;
    double *times = malloc(capacity * sizeof(double));
    double start = now_seconds();
    while (count < 5 || (now_seconds() - start < min_time && count < capacity)) {
        double t0 = now_seconds();
        CHECK(dnnl_primitive_execute(matmul, stream, 3, args));
        CHECK(dnnl_stream_wait(stream));
        times[count++] = now_seconds() - t0;
    }
    qsort(times, count, sizeof(double), compare_doubles);
    double median = count % 2 ? times[count / 2] : 0.5 * (times[count / 2 - 1] + times[count / 2]);
    printf("{\"kind\": \"%s\", \"m\": %lld, \"k\": %lld, \"n\": %lld, \"medianMs\": %.6f, \"bestMs\": %.6f}\n",
           kind, (long long)m, (long long)k, (long long)n, median * 1e3, times[0] * 1e3);
    fflush(stdout);

    free(times);
    dnnl_primitive_destroy(matmul);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(reorder_pd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(a_mem);
    dnnl_memory_destroy(b_plain_mem);
    dnnl_memory_destroy(b_mem);
    dnnl_memory_destroy(c_mem);
    free(a);
    free(b);
    free(c);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: OMP_NUM_THREADS=T %s MIN_SECONDS MxKxN...\n", argv[0]);
        return 2;
    }
    double min_time = atof(argv[1]);
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    for (int i = 2; i < argc; i++) {
        long long m, k, n;
        if (sscanf(argv[i], "%lldx%lldx%lld", &m, &k, &n) != 3 || m <= 0 || k <= 0 || n <= 0) {
            fprintf(stderr, "onednn_gemm: bad shape '%s' (want MxKxN)\n", argv[i]);
            return 2;
        }
        bench("u8s8", dnnl_u8, dnnl_s8, dnnl_s32, m, k, n, min_time, engine, stream);
        bench("s8s8", dnnl_s8, dnnl_s8, dnnl_s32, m, k, n, min_time, engine, stream);
        bench("fp32", dnnl_f32, dnnl_f32, dnnl_f32, m, k, n, min_time, engine, stream);
    }
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
