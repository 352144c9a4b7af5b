#ifndef SIMD_EXP_H
#define SIMD_EXP_H

// exp() for the elementwise loops it dominates (softmax, cross-entropy, SwiGLU's sigmoid): Swift's
// expf is a scalar libm call per element; this is one polynomial, 8 lanes wide on AVX2 and the
// same operations in scalar form otherwise, so results do not depend on the path.

#include "cpu_features.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if LORA_X86
#include <immintrin.h>
#endif

// exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x − n·ln 2 (ln 2 split in two for precision),
// exp(r) by a degree-5 polynomial on |r| ≤ ln 2 / 2 (Cephes expf).
static const float EXP_HI = 88.3762626647949f, EXP_LO = -87.3365478515625f;
static const float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
static const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f;
static const float P3 = 4.1665795894e-2f, P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

static inline float exp_scalar(float x) {
    x = fminf(fmaxf(x, EXP_LO), EXP_HI);
    float n = floorf(fmaf(x, LOG2E, 0.5f));  // fused, as in the AVX2 path
    float r = fmaf(-n, LN2_LO, fmaf(-n, LN2_HI, x));
    float r2 = r * r;
    float p = fmaf(fmaf(fmaf(fmaf(fmaf(P0, r, P1), r, P2), r, P3), r, P4), r, P5);
    p = fmaf(p, r2, r) + 1.0f;
    int32_t bits;
    memcpy(&bits, &p, 4);
    bits += (int32_t)n << 23;
    memcpy(&p, &bits, 4);
    return p;
}

#if LORA_X86
AVX2 static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(LOG2E), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x));
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(P0), r, _mm256_set1_ps(P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P5));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}
#endif

#endif
