// Row kernels of the plan's fused elementwise chains (Sources/SQRuntime/Plan/LlamaFusions.swift).
// Each computes what its nodes compute, operation by operation, so the same bits: no
// contraction of a product and a sum into an FMA.
#pragma STDC FP_CONTRACT OFF

#include "internal.h"

void sq_rotary_row_f32(size_t half, const float *restrict x, const float *restrict c,
                       const float *restrict s, float *restrict y) {
    for (size_t i = 0; i < half; i++) {
        float a = x[i] * c[i];
        float b = (-x[i + half]) * s[i];
        y[i] = a + b;
    }
    for (size_t i = half; i < 2 * half; i++) {
        float a = x[i] * c[i];
        float b = x[i - half] * s[i];
        y[i] = a + b;
    }
}

void sq_mul_inplace_f32(size_t n, float *restrict y, const float *restrict u) {
    for (size_t i = 0; i < n; i++) y[i] = y[i] * u[i];
}

void sq_rms_norm_row_f32(size_t n, const float *restrict x, float epsilon, const float *restrict w,
                         float *restrict y) {
    // The mean of x·x as the ReduceMean kernel sums a float32 row: eight float lanes over
    // the whole groups of eight, the lanes then the tail added in double.
    float lanes[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t l = 0; l < 8; l++) {
            float p = x[i + l] * x[i + l];
            lanes[l] = lanes[l] + p;
        }
    double total = 0.0;
    for (size_t l = 0; l < 8; l++) total += (double)lanes[l];
    for (; i < n; i++) {
        float p = x[i] * x[i];
        total += (double)p;
    }
    float mean = (float)(total / (double)n);
    float shifted = mean + epsilon;
    float root = sqrtf(shifted);
    float r = 1.0f / root;
    for (size_t j = 0; j < n; j++) {
        float t = x[j] * r;
        y[j] = w ? w[j] * t : t;
    }
}

// Sum of x[i] (center == NULL) or of (x[i] - *center)^2 in double, eight partial sums (the
// compiler vectorizes them; a single running sum is one dependent add per element).
static double sum_double(size_t n, const float *restrict x, const double *center) {
    double lanes[8] = {0};
    size_t i = 0;
    double c = center ? *center : 0.0;
    for (; i + 8 <= n; i += 8)
        for (size_t l = 0; l < 8; l++) {
            double v = (double)x[i + l];
            if (center) v = (v - c) * (v - c);
            lanes[l] += v;
        }
    double total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for (; i < n; i++) {
        double v = (double)x[i];
        if (center) v = (v - c) * (v - c);
        total += v;
    }
    return total;
}

void sq_layer_norm_row_f32(size_t n, const float *restrict x, float epsilon, int rms,
                           const float *restrict scale, const float *restrict bias,
                           float *restrict y, float *mean_out, float *inv_std_out) {
    double mean = 0.0;
    if (!rms && n > 0) mean = sum_double(n, x, NULL) / (double)n;
    double variance = n > 0 ? sum_double(n, x, &mean) / (double)n : 0.0;
    double r = 1.0 / sqrt(variance + (double)epsilon);
    *mean_out = (float)mean;
    *inv_std_out = (float)r;
    float m = (float)mean, rt = (float)r;
    if (bias) {
        for (size_t i = 0; i < n; i++) y[i] = (x[i] - m) * rt * scale[i] + bias[i];
    } else {
        for (size_t i = 0; i < n; i++) y[i] = (x[i] - m) * rt * scale[i];
    }
}
