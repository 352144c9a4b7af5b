#include "vector_math.h"
#include "cpu_features.h"
#include "simd_exp.h"

#include <math.h>

#if LORA_X86
#include <immintrin.h>
#endif

// Softmax forward and backward, and the cross-entropy row built on it.

#if LORA_X86
AVX2 static double exp_shifted_sum_avx2(float *row, int count, float maximum) {
    __m256 m = _mm256_set1_ps(maximum);
    __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + i), m));
        _mm256_storeu_ps(row + i, e);
        sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(sum_lo, sum_hi));
    double sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < count; i++) {
        row[i] = exp_scalar(row[i] - maximum);
        sum += row[i];
    }
    return sum;
}
#endif

// Replaces row with exp(row − max(row)); returns the sum in double and the max.
static double exp_minus_max(float *row, int count, float *maximum_out) {
    float maximum = -INFINITY;
    for (int i = 0; i < count; i++) maximum = row[i] > maximum ? row[i] : maximum;
    *maximum_out = maximum;
#if LORA_X86
    if (cpu_use_avx2()) return exp_shifted_sum_avx2(row, count, maximum);
#endif
    double sum = 0;
    for (int i = 0; i < count; i++) {
        row[i] = exp_scalar(row[i] - maximum);
        sum += row[i];
    }
    return sum;
}

double vm_cross_entropy_row(float *row, int count, int target, float gradient_scale) {
    float target_logit = row[target], maximum;
    double sum = exp_minus_max(row, count, &maximum);
    float scale = (float)(gradient_scale / sum);
    for (int i = 0; i < count; i++) row[i] *= scale;
    row[target] -= gradient_scale;
    return (double)maximum + log(sum) - (double)target_logit;
}

#if LORA_X86
AVX2 static double dot_avx2(const float *a, const float *b, int count) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 p = _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(lo, hi));
    double sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < count; i++) sum += (double)(a[i] * b[i]);
    return sum;
}
#endif

void vm_softmax(float *row, int count) {
    float maximum;
    float inverse = (float)(1.0 / exp_minus_max(row, count, &maximum));
    for (int i = 0; i < count; i++) row[i] *= inverse;
}

void vm_softmax_backward(const float *p, float *d, int count, float scale) {
    double dot = 0;
#if LORA_X86
    if (cpu_use_avx2()) {
        dot = dot_avx2(p, d, count);
    } else
#endif
    {
        for (int i = 0; i < count; i++) dot += (double)(p[i] * d[i]);
    }
    float shift = (float)dot;
    for (int i = 0; i < count; i++) d[i] = p[i] * (d[i] - shift) * scale;
}
