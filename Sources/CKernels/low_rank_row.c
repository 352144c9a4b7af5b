#include "vector_math.h"
#include "cpu_features.h"
#include "simd_dot.h"

#include <math.h>

#if LORA_X86
#include <immintrin.h>
#endif

// One decode row's LoRA delta.

#if LORA_X86
// u = A·x, then y += scale · B·u, eight rows of A (or B) at a time. Each sum is the one
// dot8_avx2 gives, in the same order.
AVX2 static void low_rank_row_avx2(const float *x, const float *a, const float *b, float scale, float *u, float *y, int K, int N, int R) {
    int r = 0;
    if (K % 8 == 0)
        for (; r + 8 <= R; r += 8) _mm256_storeu_ps(u + r, dots8_avx2(a + (size_t)r * K, K, x, K));
    for (; r < R; r++) u[r] = dot8_avx2(a + (size_t)r * K, x, K);

    int n = 0;
    if (R % 8 == 0) {
        __m256 scales = _mm256_set1_ps(scale);
        for (; n + 8 <= N; n += 8)
            _mm256_storeu_ps(y + n, _mm256_fmadd_ps(scales, dots8_avx2(b + (size_t)n * R, R, u, R), _mm256_loadu_ps(y + n)));
    }
    for (; n < N; n++) y[n] = fmaf(scale, dot8_avx2(b + (size_t)n * R, u, R), y[n]);
}
#endif

void vm_low_rank_row(const float *x, const float *a, const float *b, float scale, float *u, float *y, int K, int N, int R) {
#if LORA_X86
    if (cpu_use_avx2()) {
        low_rank_row_avx2(x, a, b, scale, u, y, K, N, R);
        return;
    }
#endif
    for (int r = 0; r < R; r++) u[r] = dot_scalar8(a + (size_t)r * K, x, K);
    for (int n = 0; n < N; n++) y[n] += scale * dot_scalar8(b + (size_t)n * R, u, R);
}
