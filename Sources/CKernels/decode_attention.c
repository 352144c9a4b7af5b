#include "vector_math.h"
#include "cpu_features.h"
#include "simd_dot.h"

#include <math.h>

#if LORA_X86
#include <immintrin.h>
#endif

// Attention of one decoding query row against its cached keys and values.

#if LORA_X86
// out_j[0..<D] = Σ_s p_j[s] · v[s·stride ..< +D] for `n` (≤ 3, a constant at every call) heads
// j, p_j = p + j·S and out_j = out + j·D: each value row is loaded once for the heads sharing
// it, and each element is still summed over s in order, so a head's result does not depend on n.
// Columns from `d`: the ones before it are done (by weighted_rows_avx512).
AVX2 static inline __attribute__((always_inline)) void weighted_rows_avx2(const float *p, const float *v, size_t stride, float *out, int S,
                                                                           int D, int d, const int n) {
    for (; d + 32 <= D; d += 32) {
        __m256 acc[3][4];
        for (int j = 0; j < n; j++)
            for (int c = 0; c < 4; c++) acc[j][c] = _mm256_setzero_ps();
        for (int s = 0; s < S; s++) {
            const float *row = v + (size_t)s * stride + d;
            const __m256 rows[4] = {_mm256_loadu_ps(row), _mm256_loadu_ps(row + 8), _mm256_loadu_ps(row + 16), _mm256_loadu_ps(row + 24)};
            for (int j = 0; j < n; j++) {
                const __m256 ps = _mm256_set1_ps(p[j * S + s]);
                for (int c = 0; c < 4; c++) acc[j][c] = _mm256_fmadd_ps(ps, rows[c], acc[j][c]);
            }
        }
        for (int j = 0; j < n; j++)
            for (int c = 0; c < 4; c++) _mm256_storeu_ps(out + j * D + d + 8 * c, acc[j][c]);
    }
    for (; d < D; d++) {
        for (int j = 0; j < n; j++) {
            float sum = 0;
            for (int s = 0; s < S; s++) sum = fmaf(p[j * S + s], v[(size_t)s * stride + d], sum);
            out[j * D + d] = sum;
        }
    }
}


// weighted_rows_avx2's sums, 64 columns a pass: a 64-wide head's value rows are read once, not
// in two halves.
// Returns the columns done, a multiple of 64.
AVX512 static inline __attribute__((always_inline)) int weighted_rows_avx512(const float *p, const float *v, size_t stride, float *out, int S,
                                                                              int D, const int n) {
    int d = 0;
    for (; d + 64 <= D; d += 64) {
        __m512 acc[3][4];
        for (int j = 0; j < n; j++)
            for (int c = 0; c < 4; c++) acc[j][c] = _mm512_setzero_ps();
        for (int s = 0; s < S; s++) {
            const float *row = v + (size_t)s * stride + d;
            const __m512 rows[4] = {_mm512_loadu_ps(row), _mm512_loadu_ps(row + 16), _mm512_loadu_ps(row + 32), _mm512_loadu_ps(row + 48)};
            for (int j = 0; j < n; j++) {
                const __m512 ps = _mm512_set1_ps(p[j * S + s]);
                for (int c = 0; c < 4; c++) acc[j][c] = _mm512_fmadd_ps(ps, rows[c], acc[j][c]);
            }
        }
        for (int j = 0; j < n; j++)
            for (int c = 0; c < 4; c++) _mm512_storeu_ps(out + j * D + d + 16 * c, acc[j][c]);
    }
    return d;
}

AVX512 static int weighted_rows_avx512_n(const float *p, const float *v, size_t stride, float *out, int S, int D, int n) {
    switch (n) {
    case 1: return weighted_rows_avx512(p, v, stride, out, S, D, 1);
    case 2: return weighted_rows_avx512(p, v, stride, out, S, D, 2);
    default: return weighted_rows_avx512(p, v, stride, out, S, D, 3);
    }
}

AVX2 static void attention_heads_avx2(const float *q, const float *k, const float *v, size_t stride, float *scores, float *out, int S,
                                      int D, float scale, int heads) {
    int s = 0;
    // Eight keys at a time: eight independent sums instead of one chain of dependent FMAs,
    // each in dot8_avx2's order, so the scores do not depend on S.
    if (D % 8 == 0) {
        const __m256 scales = _mm256_set1_ps(scale);
        for (; s + 8 <= S; s += 8) {
            for (int j = 0; j < heads; j++) {
                _mm256_storeu_ps(scores + j * S + s, _mm256_mul_ps(dots8_avx2(k + (size_t)s * stride, stride, q + j * D, D), scales));
            }
        }
    }
    for (; s < S; s++) {
        const float *key = k + (size_t)s * stride;
        for (int j = 0; j < heads; j++) scores[j * S + s] = dot8_avx2(q + j * D, key, D) * scale;
    }
    for (int j = 0; j < heads; j++) vm_softmax(scores + j * S, S);
    for (int j = 0; j < heads; j += 3) {
        const float *p = scores + j * S;
        float *o = out + j * D;
        const int n = heads - j < 3 ? heads - j : 3;
        const int done = cpu_use_avx512() ? weighted_rows_avx512_n(p, v, stride, o, S, D, n) : 0;
        switch (n) {
        case 1: weighted_rows_avx2(p, v, stride, o, S, D, done, 1); break;
        case 2: weighted_rows_avx2(p, v, stride, o, S, D, done, 2); break;
        default: weighted_rows_avx2(p, v, stride, o, S, D, done, 3); break;
        }
    }
}
#endif

void vm_attention_heads(const float *q, const float *k, const float *v, size_t stride, float *scores, float *out, int S, int D, float scale,
                        int heads) {
#if LORA_X86
    if (cpu_use_avx2()) {
        attention_heads_avx2(q, k, v, stride, scores, out, S, D, scale, heads);
        return;
    }
#endif
    vm_attention_heads_portable(q, k, v, stride, scores, out, S, D, scale, heads);
}

void vm_attention_heads_portable(const float *q, const float *k, const float *v, size_t stride, float *scores, float *out, int S, int D,
                                 float scale, int heads) {
    for (int j = 0; j < heads; j++) {
        const float *qj = q + j * D;
        float *p = scores + j * S, *o = out + j * D;
        for (int s = 0; s < S; s++) p[s] = dot_scalar8(qj, k + (size_t)s * stride, D) * scale;
        vm_softmax(p, S);
        for (int d = 0; d < D; d++) {
            float sum = 0;
            for (int s = 0; s < S; s++) sum = fmaf(p[s], v[(size_t)s * stride + d], sum);
            o[d] = sum;
        }
    }
}
