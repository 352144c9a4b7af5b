#include "quant_kernels.h"
#include "cpu_features.h"
#include "half.h"

#include <math.h>
#include <string.h>

#if LORA_X86
#include <immintrin.h>
#endif

// Every kernel below decodes a block of 32 weights to Float32 once (w = d·q + m for Q4_1,
// w = d·q for Q8_0) and uses it for every activation vector of the batch, and loads each
// vector's slice once for several weight rows. The arithmetic of one (row, vector) dot never
// depends on how many rows or vectors share the pass: acc = fma(w, x, acc) over the block's
// slices in order, block after block, then the same reduction. So a row of a batch equals that
// row computed alone, bit for bit, which is what lets a server batch requests without changing
// anyone's answer.

#define ROWS_ARGS const uint8_t *weights, size_t row_bytes, int columns, const float *x, int x_count, \
    float *y, int rows, int row_begin, int row_end, int accumulate
#define ROWS_PASS weights, row_bytes, columns, x, x_count, y, rows, row_begin, row_end, accumulate

// y = dot, or y += dot: one rounding either way, as if the dot were stored and added after.
static inline void store(float *y, float dot, int accumulate) { *y = accumulate ? *y + dot : dot; }

// MARK: - Portable

// A multiply-add the CPU does in one instruction where it has one (aarch64, x86 with FMA):
// there fmaf is that instruction and vectorizes. On an x86-64 baseline fmaf is a libm call per
// weight (the portable path ran at 3 tokens/s), so there it is a multiply and an add; the
// pragma keeps the compiler from fusing them anywhere else, so every row rounds the same way.
#pragma STDC FP_CONTRACT OFF
#if defined(__aarch64__) || defined(__FMA__)
#define MADD(a, b, c) fmaf(a, b, c)
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

typedef void (*decode_portable)(const uint8_t *block, float w[32]);

static inline void q4_1_decode_portable(const uint8_t *block, float w[32]) {
    const float d = half_to_float(block), m = half_to_float(block + 2);
    for (int j = 0; j < 16; j++) {
        w[j] = MADD(d, (float)(block[4 + j] & 0x0F), m);
        w[j + 16] = MADD(d, (float)(block[4 + j] >> 4), m);
    }
}

static inline void q8_0_decode_portable(const uint8_t *block, float w[32]) {
    const float d = half_to_float(block);
    for (int j = 0; j < 32; j++) w[j] = d * (float)(int8_t)block[2 + j];
}

// Eight independent lanes per vector (weight j goes to lane j % 8), summed in a fixed order at
// the end: the compiler keeps them in two SSE or NEON registers, and no lane waits on another.
enum { LANES = 8 };

static inline __attribute__((always_inline)) void rows_portable(decode_portable decode, const int block_bytes, ROWS_ARGS) {
    const int blocks = columns / 32;
    for (int r = row_begin; r < row_end; r++) {
        const uint8_t *row = weights + (size_t)r * row_bytes;
        for (int i0 = 0; i0 < x_count; i0 += 4) {
            const int n = x_count - i0 < 4 ? x_count - i0 : 4;
            float acc[4][LANES] = {{0}};
            for (int b = 0; b < blocks; b++) {
                float w[32];
                decode(row + (size_t)b * block_bytes, w);
                for (int i = 0; i < n; i++) {
                    const float *xb = x + (size_t)(i0 + i) * columns + b * 32;
                    for (int j = 0; j < 32; j += LANES) {
                        for (int l = 0; l < LANES; l++) acc[i][l] = MADD(w[j + l], xb[j + l], acc[i][l]);
                    }
                }
            }
            for (int i = 0; i < n; i++) {
                const float *a = acc[i];
                const float dot = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
                store(y + (size_t)(i0 + i) * rows + r, dot, accumulate);
            }
        }
    }
}

static void q4_1_rows_portable(ROWS_ARGS) { rows_portable(q4_1_decode_portable, 20, ROWS_PASS); }
static void q8_0_rows_portable(ROWS_ARGS) { rows_portable(q8_0_decode_portable, 34, ROWS_PASS); }

#if LORA_X86

// Weights stream from memory once per step; the hardware prefetcher alone leaves the batched
// tiles waiting on it; 16 blocks ahead covers the latency (one vector is not helped).
enum { PREFETCH_BLOCKS = 16 };

// MARK: - AVX2 + FMA: a block is four 8-lane vectors


// A Q4_1 block's scale and minimum, lanes 0 and 1: one load, one conversion, into a fresh
// register (converting each half into part of a live register, as `half_to_float` compiles,
// ties a block's decode to whatever last wrote that register).
AVX2 static inline __attribute__((always_inline)) __m128 q4_1_scale_min(const uint8_t *block) {
    uint32_t dm;
    memcpy(&dm, block, 4);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)dm));
}

// A Q8_0 block's scale, to be converted by the caller straight into all lanes of a fresh
// register (as `q4_1_scale_min` does, and for the same reason).
static inline short half_bits(const uint8_t *block) {
    short h;
    memcpy(&h, block, 2);
    return h;
}

typedef void (*decode_avx2)(const uint8_t *block, __m256 w[4]);

AVX2 static inline __attribute__((always_inline)) void q4_1_decode_avx2(const uint8_t *block, __m256 w[4]) {
    const __m128i low_mask = _mm_set1_epi8(0x0F);
    const __m128i v = _mm_loadu_si128((const __m128i *)(block + 4));
    const __m128i lo = _mm_and_si128(v, low_mask), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low_mask);
    const __m128 dm = q4_1_scale_min(block);
    const __m256 d = _mm256_broadcastss_ps(dm), m = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
    const __m128i q[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int j = 0; j < 4; j++) w[j] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q[j])), m);
}

AVX2 static inline __attribute__((always_inline)) void q8_0_decode_avx2(const uint8_t *block, __m256 w[4]) {
    const __m256 d = _mm256_cvtph_ps(_mm_set1_epi16(half_bits(block)));
    for (int j = 0; j < 4; j++) {
        w[j] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(block + 2 + 8 * j)))));
    }
}

AVX2 static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One weight row × `n` (≤ 4, a constant at every call) vectors; 16 registers hold no more.
AVX2 static inline __attribute__((always_inline)) void tile_avx2(decode_avx2 decode, const int block_bytes, const int n,
                                                                  const uint8_t *row, int blocks, const float *x, int columns, float *y, int rows,
                                                                  int accumulate) {
    __m256 acc[4];
    for (int i = 0; i < n; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        __m256 w[4];
        const uint8_t *block = row + (size_t)b * block_bytes;
        _mm_prefetch((const char *)(block + PREFETCH_BLOCKS * block_bytes), _MM_HINT_T0);
        decode(block, w);
        for (int i = 0; i < n; i++) {
            const float *xb = x + (size_t)i * columns + b * 32;
            for (int j = 0; j < 4; j++) acc[i] = _mm256_fmadd_ps(w[j], _mm256_loadu_ps(xb + 8 * j), acc[i]);
        }
    }
    for (int i = 0; i < n; i++) store(y + (size_t)i * rows, hsum_avx2(acc[i]), accumulate);
}

AVX2 static inline __attribute__((always_inline)) void rows_avx2(decode_avx2 decode, const int block_bytes, ROWS_ARGS) {
    const int blocks = columns / 32;
    for (int i0 = 0; i0 < x_count; i0 += 4) {
        const float *xs = x + (size_t)i0 * columns;
        float *ys = y + (size_t)i0 * rows;
        for (int r = row_begin; r < row_end; r++) {
            const uint8_t *row = weights + (size_t)r * row_bytes;
            switch (x_count - i0) {
            case 1: tile_avx2(decode, block_bytes, 1, row, blocks, xs, columns, ys + r, rows, accumulate); break;
            case 2: tile_avx2(decode, block_bytes, 2, row, blocks, xs, columns, ys + r, rows, accumulate); break;
            case 3: tile_avx2(decode, block_bytes, 3, row, blocks, xs, columns, ys + r, rows, accumulate); break;
            default: tile_avx2(decode, block_bytes, 4, row, blocks, xs, columns, ys + r, rows, accumulate); break;
            }
        }
    }
}

AVX2 static void q4_1_rows_avx2(ROWS_ARGS) { rows_avx2(q4_1_decode_avx2, 20, ROWS_PASS); }
AVX2 static void q8_0_rows_avx2(ROWS_ARGS) { rows_avx2(q8_0_decode_avx2, 34, ROWS_PASS); }

// MARK: - AVX-512: a block is two 16-lane vectors


typedef void (*decode_avx512)(const uint8_t *block, __m512 w[2]);

// The block's 16 possible weights, d·q + m for q = 0...15, computed once, then looked up by
// nibble (vpermps reads the low 4 bits of each index): one FMA a block instead of one per half
// and no integer-to-float conversions, with the same values.
AVX512 static inline __attribute__((always_inline)) void q4_1_decode_avx512(const uint8_t *block, __m512 w[2]) {
    const __m512 levels = _mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m128 dm = q4_1_scale_min(block);
    const __m512 table = _mm512_fmadd_ps(_mm512_broadcastss_ps(dm), levels, _mm512_broadcastss_ps(_mm_movehdup_ps(dm)));
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(block + 4)));
    w[0] = _mm512_permutexvar_ps(q, table);
    w[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table);
}

AVX512 static inline __attribute__((always_inline)) void q8_0_decode_avx512(const uint8_t *block, __m512 w[2]) {
    const __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16(half_bits(block)));
    w[0] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 2)))));
    w[1] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 18)))));
}

// `R` (1 or 2) weight rows × `n` (≤ 8) vectors, constants at every call: R·n accumulators,
// 2R decoded weight vectors and one vector's slice fit in 32 registers.
AVX512 static inline __attribute__((always_inline)) void tile_avx512(decode_avx512 decode, const int block_bytes, const int R, const int n,
                                                                      const uint8_t *row, size_t row_bytes, int blocks, const float *x,
                                                                      int columns, float *y, int rows, int accumulate) {
    __m512 acc[2][8];
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) acc[r][i] = _mm512_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        __m512 w[2][2];
        for (int r = 0; r < R; r++) {
            const uint8_t *block = row + (size_t)r * row_bytes + (size_t)b * block_bytes;
            _mm_prefetch((const char *)(block + PREFETCH_BLOCKS * block_bytes), _MM_HINT_T0);
            decode(block, w[r]);
        }
        for (int i = 0; i < n; i++) {
            const float *xb = x + (size_t)i * columns + b * 32;
            const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
            for (int r = 0; r < R; r++) {
                acc[r][i] = _mm512_fmadd_ps(w[r][0], x0, acc[r][i]);
                acc[r][i] = _mm512_fmadd_ps(w[r][1], x1, acc[r][i]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) store(y + (size_t)i * rows + r, _mm512_reduce_add_ps(acc[r][i]), accumulate);
}

// Rows `R` at a time for `n` vectors, the rows left over one at a time.
AVX512 static inline __attribute__((always_inline)) void rows_n_avx512(decode_avx512 decode, const int block_bytes, const int R, const int n,
                                                                        const uint8_t *weights, size_t row_bytes, int blocks, const float *x,
                                                                        int columns, float *y, int rows, int row_begin, int row_end,
                                                                        int accumulate) {
    int r = row_begin;
    for (; r + R <= row_end; r += R) {
        tile_avx512(decode, block_bytes, R, n, weights + (size_t)r * row_bytes, row_bytes, blocks, x, columns, y + r, rows, accumulate);
    }
    for (; r < row_end; r++) {
        tile_avx512(decode, block_bytes, 1, n, weights + (size_t)r * row_bytes, row_bytes, blocks, x, columns, y + r, rows, accumulate);
    }
}

// Vectors eight at a time; with more than eight, rows go in slices of 16 so that a slice's
// weights are still in cache for the next eight. Up to four vectors the pass is bound by reading
// the weights, and two interleaved row streams read slower than one; from five on it is bound by
// arithmetic, and sharing each slice of x between two rows halves the loads.
AVX512 static inline __attribute__((always_inline)) void rows_avx512(decode_avx512 decode, const int block_bytes, ROWS_ARGS) {
    const int blocks = columns / 32;
    const int slice = x_count > 8 ? 16 : row_end - row_begin;
    for (int begin = row_begin; begin < row_end; begin += slice) {
        const int end = begin + slice < row_end ? begin + slice : row_end;
        for (int i0 = 0; i0 < x_count; i0 += 8) {
            const float *xs = x + (size_t)i0 * columns;
            float *ys = y + (size_t)i0 * rows;
#define ROWS_N(R, n) rows_n_avx512(decode, block_bytes, R, n, weights, row_bytes, blocks, xs, columns, ys, rows, begin, end, accumulate)
            switch (x_count - i0) {
            case 1: ROWS_N(1, 1); break;
            case 2: ROWS_N(1, 2); break;
            case 3: ROWS_N(1, 3); break;
            case 4: ROWS_N(1, 4); break;
            case 5: ROWS_N(2, 5); break;
            case 6: ROWS_N(2, 6); break;
            case 7: ROWS_N(2, 7); break;
            default: ROWS_N(2, 8); break;
            }
#undef ROWS_N
        }
    }
}

AVX512 static void q4_1_rows_avx512(ROWS_ARGS) { rows_avx512(q4_1_decode_avx512, 20, ROWS_PASS); }
AVX512 static void q8_0_rows_avx512(ROWS_ARGS) { rows_avx512(q8_0_decode_avx512, 34, ROWS_PASS); }

#endif

// MARK: - Entry points

float quant_half_to_float(uint16_t bits) { return half_to_float((const uint8_t *)&bits); }

void quant_rows(int path, int format, ROWS_ARGS) {
    (void)path;  // only the x86 paths read it
    const int q8 = format == QUANT_Q8_0;
#if LORA_X86
    if (path == CPU_AVX512 && cpu_use_avx512()) {
        (q8 ? q8_0_rows_avx512 : q4_1_rows_avx512)(ROWS_PASS);
        return;
    }
    if (path == CPU_AVX2 && cpu_use_avx2()) {
        (q8 ? q8_0_rows_avx2 : q4_1_rows_avx2)(ROWS_PASS);
        return;
    }
#endif
    (q8 ? q8_0_rows_portable : q4_1_rows_portable)(ROWS_PASS);
}
