#include "quant_kernels.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline float half_to_float(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    _Float16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

// One weight row (`blocks` blocks of 32) dotted with one activation vector.
typedef float (*row_dot)(const uint8_t *row, int blocks, const float *x, const float *block_sums);

// MARK: - Portable

static inline float q4_1_dot_portable(const uint8_t *row, int blocks, const float *x, const float *block_sums) {
    float sum = 0;
    for (int b = 0; b < blocks; b++) {
        const uint8_t *block = row + b * 20;
        const float *xb = x + b * 32;
        float dot = 0;
        for (int j = 0; j < 16; j++) dot += (float)(block[4 + j] & 0x0F) * xb[j] + (float)(block[4 + j] >> 4) * xb[j + 16];
        sum += half_to_float(block) * dot + half_to_float(block + 2) * block_sums[b];
    }
    return sum;
}

static inline float q8_0_dot_portable(const uint8_t *row, int blocks, const float *x, const float *unused) {
    (void)unused;
    float sum = 0;
    for (int b = 0; b < blocks; b++) {
        const uint8_t *block = row + b * 34;
        const int8_t *q = (const int8_t *)(block + 2);
        const float *xb = x + b * 32;
        float dot = 0;
        for (int j = 0; j < 32; j++) dot += (float)q[j] * xb[j];
        sum += half_to_float(block) * dot;
    }
    return sum;
}

// MARK: - AVX2 + FMA

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline __m256 bytes_to_floats(__m128i bytes8) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes8));
}

// `n` activation vectors against one weight row: each block is unpacked once and used n times.
// `n` is a constant at every call (1, 4 or 8), so the loops unroll and the accumulators stay in
// registers. The single-vector kernel is the same function with n = 1: every dot runs the same
// operations in the same order whatever n is, so a row of a batch equals the row alone.
AVX2 static inline __attribute__((always_inline)) void q4_1_dotn_avx2(const int n, const uint8_t *row, int blocks, const float *x,
                                                                       int columns, const float *block_sums, float *out) {
    const __m128i low_mask = _mm_set1_epi8(0x0F);
    __m256 acc[4];
    float offsets[4];
    for (int i = 0; i < n; i++) {
        acc[i] = _mm256_setzero_ps();
        offsets[i] = 0;
    }
    for (int b = 0; b < blocks; b++) {
        const uint8_t *block = row + b * 20;
        __m128i v = _mm_loadu_si128((const __m128i *)(block + 4));
        __m128i lo = _mm_and_si128(v, low_mask);
        __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low_mask);
        const __m256 w0 = bytes_to_floats(lo), w1 = bytes_to_floats(_mm_srli_si128(lo, 8));
        const __m256 w2 = bytes_to_floats(hi), w3 = bytes_to_floats(_mm_srli_si128(hi, 8));
        const __m256 scale = _mm256_set1_ps(half_to_float(block));
        const float minimum = half_to_float(block + 2);
        for (int i = 0; i < n; i++) {
            const float *xb = x + (size_t)i * columns + b * 32;
            __m256 dot = _mm256_mul_ps(w0, _mm256_loadu_ps(xb));
            dot = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xb + 8), dot);
            dot = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xb + 16), dot);
            dot = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xb + 24), dot);
            acc[i] = _mm256_fmadd_ps(scale, dot, acc[i]);
            offsets[i] = fmaf(minimum, block_sums[(size_t)i * blocks + b], offsets[i]);
        }
    }
    for (int i = 0; i < n; i++) out[i] = hsum(acc[i]) + offsets[i];
}

AVX2 static inline __attribute__((always_inline)) void q8_0_dotn_avx2(const int n, const uint8_t *row, int blocks, const float *x,
                                                                       int columns, float *out) {
    __m256 acc[4];
    for (int i = 0; i < n; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        const uint8_t *block = row + b * 34;
        __m256 w[4];
        for (int j = 0; j < 4; j++) w[j] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(block + 2 + 8 * j))));
        const __m256 scale = _mm256_set1_ps(half_to_float(block));
        for (int i = 0; i < n; i++) {
            const float *xb = x + (size_t)i * columns + b * 32;
            __m256 dot = _mm256_setzero_ps();
            for (int j = 0; j < 4; j++) dot = _mm256_fmadd_ps(w[j], _mm256_loadu_ps(xb + 8 * j), dot);
            acc[i] = _mm256_fmadd_ps(scale, dot, acc[i]);
        }
    }
    for (int i = 0; i < n; i++) out[i] = hsum(acc[i]);
}

// AVX-512 (Cooper Lake and later): sixteen lanes, so a block of 32 weights is two vectors.
#define AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

AVX512 static inline __attribute__((always_inline)) void q4_1_dotn_avx512(const int n, const uint8_t *row, int blocks, const float *x,
                                                                           int columns, const float *block_sums, float *out) {
    const __m128i low_mask = _mm_set1_epi8(0x0F);
    __m512 acc[8];
    float offsets[8];
    for (int i = 0; i < n; i++) {
        acc[i] = _mm512_setzero_ps();
        offsets[i] = 0;
    }
    for (int b = 0; b < blocks; b++) {
        const uint8_t *block = row + b * 20;
        __m128i v = _mm_loadu_si128((const __m128i *)(block + 4));
        const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(v, low_mask)));
        const __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), low_mask)));
        const __m512 scale = _mm512_set1_ps(half_to_float(block));
        const float minimum = half_to_float(block + 2);
        for (int i = 0; i < n; i++) {
            const float *xb = x + (size_t)i * columns + b * 32;
            __m512 dot = _mm512_mul_ps(w0, _mm512_loadu_ps(xb));
            dot = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb + 16), dot);
            acc[i] = _mm512_fmadd_ps(scale, dot, acc[i]);
            offsets[i] = fmaf(minimum, block_sums[(size_t)i * blocks + b], offsets[i]);
        }
    }
    for (int i = 0; i < n; i++) out[i] = _mm512_reduce_add_ps(acc[i]) + offsets[i];
}

AVX512 static inline __attribute__((always_inline)) void q8_0_dotn_avx512(const int n, const uint8_t *row, int blocks, const float *x,
                                                                           int columns, float *out) {
    __m512 acc[8];
    for (int i = 0; i < n; i++) acc[i] = _mm512_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        const uint8_t *block = row + b * 34;
        const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 2))));
        const __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 18))));
        const __m512 scale = _mm512_set1_ps(half_to_float(block));
        for (int i = 0; i < n; i++) {
            const float *xb = x + (size_t)i * columns + b * 32;
            __m512 dot = _mm512_mul_ps(w0, _mm512_loadu_ps(xb));
            dot = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb + 16), dot);
            acc[i] = _mm512_fmadd_ps(scale, dot, acc[i]);
        }
    }
    for (int i = 0; i < n; i++) out[i] = _mm512_reduce_add_ps(acc[i]);
}

static int has_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
            && __builtin_cpu_supports("f16c");
    }
    return cached;
}

static int has_avx2(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cached;
}
#endif

// MARK: - Rows

// Each weight row is read once and dotted with every activation vector while it is in cache;
// each (row, vector) dot is computed exactly as for a single vector, so batching never changes
// a result.
static inline __attribute__((always_inline)) void rows_batch(row_dot dot, const uint8_t *weights, size_t row_bytes, int columns, const float *x, int x_count,
                       const float *block_sums, float *y, int rows, int row_begin, int row_end) {
    const int blocks = columns / 32;
    for (int r = row_begin; r < row_end; r++) {
        const uint8_t *row = weights + (size_t)r * row_bytes;
        for (int i = 0; i < x_count; i++) {
            y[(size_t)i * rows + r] = dot(row, blocks, x + (size_t)i * columns, block_sums ? block_sums + (size_t)i * blocks : NULL);
        }
    }
}

// One specialisation per kernel and instruction set, so the dot product inlines into the loop.
#define ROWS_ARGS const uint8_t *weights, size_t row_bytes, int columns, const float *x, int x_count, \
    const float *block_sums, float *y, int rows, int row_begin, int row_end
#define ROWS_PASS weights, row_bytes, columns, x, x_count, block_sums, y, rows, row_begin, row_end

static void q4_1_rows_portable(ROWS_ARGS) { rows_batch(q4_1_dot_portable, ROWS_PASS); }
static void q8_0_rows_portable(ROWS_ARGS) { rows_batch(q8_0_dot_portable, ROWS_PASS); }
#if defined(__x86_64__)
// Vectors `wide` at a time (4 with AVX2's 16 registers, 8 with AVX-512's 32), then one at a time.
#define ROWS_SIMD(name, attributes, wide, dotn_call)                                                          \
    attributes static void name(ROWS_ARGS) {                                                                 \
        const int blocks = columns / 32;                                                                     \
        for (int r = row_begin; r < row_end; r++) {                                                          \
            const uint8_t *row = weights + (size_t)r * row_bytes;                                            \
            int i = 0;                                                                                       \
            for (; i + wide <= x_count; i += wide) {                                                         \
                float out[wide];                                                                             \
                const float *xs = x + (size_t)i * columns;                                                   \
                const float *sums = block_sums ? block_sums + (size_t)i * blocks : NULL;                     \
                dotn_call(wide);                                                                             \
                for (int k = 0; k < wide; k++) y[(size_t)(i + k) * rows + r] = out[k];                       \
            }                                                                                                \
            for (; i < x_count; i++) {                                                                       \
                float out[1];                                                                                \
                const float *xs = x + (size_t)i * columns;                                                   \
                const float *sums = block_sums ? block_sums + (size_t)i * blocks : NULL;                     \
                dotn_call(1);                                                                                \
                y[(size_t)i * rows + r] = out[0];                                                            \
            }                                                                                                \
        }                                                                                                    \
    }

#define Q4_1_AVX2(n) q4_1_dotn_avx2(n, row, blocks, xs, columns, sums, out)
#define Q8_0_AVX2(n) (void)sums; q8_0_dotn_avx2(n, row, blocks, xs, columns, out)
#define Q4_1_AVX512(n) q4_1_dotn_avx512(n, row, blocks, xs, columns, sums, out)
#define Q8_0_AVX512(n) (void)sums; q8_0_dotn_avx512(n, row, blocks, xs, columns, out)
ROWS_SIMD(q4_1_rows_avx2, AVX2, 4, Q4_1_AVX2)
ROWS_SIMD(q8_0_rows_avx2, AVX2, 4, Q8_0_AVX2)
ROWS_SIMD(q4_1_rows_avx512, AVX512, 8, Q4_1_AVX512)
ROWS_SIMD(q8_0_rows_avx512, AVX512, 8, Q8_0_AVX512)
#endif

void quant_q4_1_rows(ROWS_ARGS) {
#if defined(__x86_64__)
    if (has_avx512()) {
        q4_1_rows_avx512(ROWS_PASS);
        return;
    }
    if (has_avx2()) {
        q4_1_rows_avx2(ROWS_PASS);
        return;
    }
#endif
    q4_1_rows_portable(ROWS_PASS);
}

void quant_q8_0_rows(const uint8_t *weights, size_t row_bytes, int columns, const float *x, int x_count,
                     float *y, int rows, int row_begin, int row_end) {
    const float *block_sums = NULL;
#if defined(__x86_64__)
    if (has_avx512()) {
        q8_0_rows_avx512(ROWS_PASS);
        return;
    }
    if (has_avx2()) {
        q8_0_rows_avx2(ROWS_PASS);
        return;
    }
#endif
    q8_0_rows_portable(ROWS_PASS);
}
