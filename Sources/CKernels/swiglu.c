#include "vector_math.h"
#include "cpu_features.h"
#include "simd_exp.h"

#include <math.h>

#if LORA_X86
#include <immintrin.h>
#endif

// SwiGLU forward and backward.

#if LORA_X86
AVX2 static size_t swiglu_forward_avx2(const float *gate, const float *up, float *out, size_t count) {
    size_t i = 0;
    __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= count; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 sigmoid = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid), _mm256_loadu_ps(up + i)));
    }
    return i;
}

AVX2 static size_t swiglu_backward_avx2(const float *d_out, const float *gate, const float *up, float *d_gate, float *d_up, size_t count) {
    size_t i = 0;
    __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= count; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i), dy = _mm256_loadu_ps(d_out + i);
        __m256 sigmoid = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        __m256 silu = _mm256_mul_ps(g, sigmoid);
        _mm256_storeu_ps(d_up + i, _mm256_mul_ps(dy, silu));
        // silu'(g) = σ(g)·(1 + g·(1 − σ(g)))
        __m256 derivative = _mm256_mul_ps(sigmoid, _mm256_fmadd_ps(g, _mm256_sub_ps(one, sigmoid), one));
        _mm256_storeu_ps(d_gate + i, _mm256_mul_ps(_mm256_mul_ps(dy, _mm256_loadu_ps(up + i)), derivative));
    }
    return i;
}
#endif

void vm_swiglu_forward(const float *gate, const float *up, float *out, size_t count) {
    size_t i = 0;
#if LORA_X86
    if (cpu_use_avx2()) i = swiglu_forward_avx2(gate, up, out, count);
#endif
    for (; i < count; i++) {
        float sigmoid = 1.0f / (1.0f + exp_scalar(-gate[i]));
        out[i] = gate[i] * sigmoid * up[i];
    }
}

void vm_swiglu_backward(const float *d_out, const float *gate, const float *up, float *d_gate, float *d_up, size_t count) {
    size_t i = 0;
#if LORA_X86
    if (cpu_use_avx2()) i = swiglu_backward_avx2(d_out, gate, up, d_gate, d_up, count);
#endif
    for (; i < count; i++) {
        float g = gate[i];
        float sigmoid = 1.0f / (1.0f + exp_scalar(-g));
        d_up[i] = d_out[i] * g * sigmoid;
        d_gate[i] = d_out[i] * up[i] * sigmoid * (1.0f + g * (1.0f - sigmoid));
    }
}
