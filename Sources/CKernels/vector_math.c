#include "vector_math.h"
#include "cpu_features.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if LORA_X86
#include <immintrin.h>
#endif

// MARK: - exp, scalar

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

// MARK: - exp, AVX2 (the same operations, eight lanes)

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

static int use_avx2(void) { return cpu_kernel_level() >= CPU_AVX2; }
static int use_avx512(void) { return cpu_kernel_level() >= CPU_AVX512; }
#else
static int use_avx2(void) { return 0; }
#endif

// MARK: - Cross-entropy row

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
    if (use_avx2()) return exp_shifted_sum_avx2(row, count, maximum);
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

// MARK: - SwiGLU

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
    if (use_avx2()) i = swiglu_forward_avx2(gate, up, out, count);
#endif
    for (; i < count; i++) {
        float sigmoid = 1.0f / (1.0f + exp_scalar(-gate[i]));
        out[i] = gate[i] * sigmoid * up[i];
    }
}

void vm_swiglu_backward(const float *d_out, const float *gate, const float *up, float *d_gate, float *d_up, size_t count) {
    size_t i = 0;
#if LORA_X86
    if (use_avx2()) i = swiglu_backward_avx2(d_out, gate, up, d_gate, d_up, count);
#endif
    for (; i < count; i++) {
        float g = gate[i];
        float sigmoid = 1.0f / (1.0f + exp_scalar(-g));
        d_up[i] = d_out[i] * g * sigmoid;
        d_gate[i] = d_out[i] * up[i] * sigmoid * (1.0f + g * (1.0f - sigmoid));
    }
}

// MARK: - Softmax

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
    if (use_avx2()) {
        dot = dot_avx2(p, d, count);
    } else
#endif
    {
        for (int i = 0; i < count; i++) dot += (double)(p[i] * d[i]);
    }
    float shift = (float)dot;
    for (int i = 0; i < count; i++) d[i] = p[i] * (d[i] - shift) * scale;
}

// MARK: - Rows of a decode step: LoRA delta, attention

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
    if (use_avx2()) {
        low_rank_row_avx2(x, a, b, scale, u, y, K, N, R);
        return;
    }
#endif
    for (int r = 0; r < R; r++) u[r] = dot_scalar8(a + (size_t)r * K, x, K);
    for (int n = 0; n < N; n++) y[n] += scale * dot_scalar8(b + (size_t)n * R, u, R);
}

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
        const int done = use_avx512() ? weighted_rows_avx512_n(p, v, stride, o, S, D, n) : 0;
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
    if (use_avx2()) {
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

// MARK: - RMSNorm and RoPE rows (the per-row work of a decode step that runs between the
// parallel matrix passes, while the other cores wait)

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
    if (use_avx2()) sum = squares_avx2(x, C);
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

void vm_rope_heads(float *v, const float *cosines, const float *sines, int half, int heads) {
    for (int h = 0; h < heads; h++) {
        float *head = v + (size_t)h * 2 * half;
        for (int i = 0; i < half; i++) {
            // Separate products, never fused: every path rounds a·c and b·s alike.
            const float a = head[i], b = head[i + half];
            const float ac = a * cosines[i], bs = b * sines[i], bc = b * cosines[i], as = a * sines[i];
            head[i] = ac - bs;
            head[i + half] = bc + as;
        }
    }
}
