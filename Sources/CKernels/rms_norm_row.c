#include "vector_math.h"
#include "cpu_features.h"

#include <math.h>

#if LORA_X86
#include <immintrin.h>
#endif

// RMSNorm of one row (per-row work of a decode step, run between the parallel matrix passes while the other cores wait).

// Σ x² in double over 16 partial sums (partial j takes the c ≡ j mod 16), combined as the
// AVX2 path combines its four 4-lane accumulators, so both paths give the same sum.
static double squares_portable(const float *x, int C) {
    double p[16] = {0};
    int c = 0;
    for (; c + 16 <= C; c += 16)
        for (int j = 0; j < 16; j++) p[j] = fma((double)x[c + j], (double)x[c + j], p[j]);
    for (int j = 0; c + j < C; j++) p[j] = fma((double)x[c + j], (double)x[c + j], p[j]);
    double q[4];
    for (int l = 0; l < 4; l++) q[l] = (p[l] + p[4 + l]) + (p[8 + l] + p[12 + l]);
    return (q[0] + q[2]) + (q[1] + q[3]);
}

#if LORA_X86
AVX2 static double squares_avx2(const float *x, int C) {
    if (C % 16 != 0) return squares_portable(x, C);
    __m256d acc[4];
    for (int j = 0; j < 4; j++) acc[j] = _mm256_setzero_pd();
    for (int c = 0; c < C; c += 16)
        for (int j = 0; j < 4; j++) {
            const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + c + 4 * j));
            acc[j] = _mm256_fmadd_pd(v, v, acc[j]);
        }
    const __m256d q = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd(q, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}
#endif

float vm_rms_norm_row(const float *x, const float *weight, float *out, int C, float eps) {
    double sum;
#if LORA_X86
    if (cpu_use_avx2()) sum = squares_avx2(x, C);
    else
#endif
        sum = squares_portable(x, C);
    const float rstd = (float)(1 / sqrt(sum / C + (double)eps));
    for (int c = 0; c < C; c++) {
        const float scaled = x[c] * rstd;
        out[c] = scaled * weight[c];
    }
    return rstd;
}
