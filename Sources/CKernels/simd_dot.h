#ifndef SIMD_DOT_H
#define SIMD_DOT_H

// Float dot products in one fixed summation order on every path (eight lanes, combined the same
// way), so a decode row's LoRA delta and attention scores are the same whatever the batch.

#include "cpu_features.h"

#include <math.h>
#include <stddef.h>

#if LORA_X86
#include <immintrin.h>
#endif

// Eight-lane partial sums, then lanes added in a fixed order: the same result on every call.
static inline float dot_scalar8(const float *a, const float *b, int count) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= count; i += 8)
        for (int l = 0; l < 8; l++) lanes[l] = fmaf(a[i + l], b[i + l], lanes[l]);
    float sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for (; i < count; i++) sum = fmaf(a[i], b[i], sum);
    return sum;
}

#if LORA_X86
AVX2 static inline float dot8_avx2(const float *a, const float *b, int count) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= count; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    // The same lane order as dot_scalar8.
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    float lanes[4];
    _mm_storeu_ps(lanes, s);
    float sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < count; i++) sum = fmaf(a[i], b[i], sum);
    return sum;
}

// The lanes of eight dot8_avx2 accumulators reduced at once, each in dot8_avx2's order
// ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)): returns [sum(p0), ..., sum(p7)].
AVX2 static inline __m256 reduce8_avx2(const __m256 p[8]) {
    __m256 q01 = _mm256_add_ps(_mm256_permute2f128_ps(p[0], p[1], 0x20), _mm256_permute2f128_ps(p[0], p[1], 0x31));
    __m256 q23 = _mm256_add_ps(_mm256_permute2f128_ps(p[2], p[3], 0x20), _mm256_permute2f128_ps(p[2], p[3], 0x31));
    __m256 q45 = _mm256_add_ps(_mm256_permute2f128_ps(p[4], p[5], 0x20), _mm256_permute2f128_ps(p[4], p[5], 0x31));
    __m256 q67 = _mm256_add_ps(_mm256_permute2f128_ps(p[6], p[7], 0x20), _mm256_permute2f128_ps(p[6], p[7], 0x31));
    // [s0, s2, s4, s6, s1, s3, s5, s7]
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(q01, q23), _mm256_hadd_ps(q45, q67));
    return _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// The dot products of eight consecutive rows (`stride` apart) with v, count a multiple of 8:
// eight independent accumulators instead of one dependency chain, one reduction for all eight.
AVX2 static inline __m256 dots8_avx2(const float *rows, size_t stride, const float *v, int count) {
    __m256 acc[8];
    for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
    for (int k = 0; k < count; k += 8) {
        __m256 vs = _mm256_loadu_ps(v + k);
        for (int j = 0; j < 8; j++) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(rows + j * stride + k), vs, acc[j]);
    }
    return reduce8_avx2(acc);
}
#endif

#endif
