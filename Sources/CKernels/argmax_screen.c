#include "argmax_screen.h"
#include "cpu_features.h"
#include "half.h"

#include <math.h>
#include <string.h>

#if LORA_X86
#include <immintrin.h>
#endif

// MARK: - Why the bound holds
//
// For one row (blocks b of 32 weights w = d_b·q, q signed bytes) and one vector x, let
// S = Σ_b L_b·dx_b with L_b ≥ |d_b|·Σ|q| (stored rounded up) and dx_b = amax_b / 127, and let
// u = 2⁻²⁴ and K the columns, B = K / 32 the blocks. Three distances separate the Float32
// kernel's product z_k from the screen's approx:
// 1. quantizing x: xq = round(x / dx) is off by at most 0.5 + 127u units of dx, so the exact
//    product z and Σ_b d_b·dx_b·I_b (I_b = Σ q·xq, exact in int32) differ by ≤ (0.5 + 127u)·S;
// 2. the screen's Float32 arithmetic (s_b = d_b·dx_b rounded, then B fused multiply-adds) adds
//    ≤ (B + 1)·u·Σ|d_b·dx_b·I_b| ≤ (B + 1)·u·127·S, since |xq| ≤ 127 makes Σ|q·xq| ≤ 127·Σ|q|;
// 3. the kernel's own rounding over K products adds ≤ K·u·Σ|w·x| ≤ K·u·127·(1 + 2u)·S, since
//    |x| ≤ amax ≤ 127·dx·(1 + u).
// radius = S·(0.5 + 130·(K + B + 4)·u)·1.001 covers the three, the rounding of S itself and of
// the comparisons approx ± radius (each ≤ u·|approx| ≤ 128·u·S), with room to spare.
// `screen_quantize` refuses blocks outside [1e-20, 1e20] (other than 0), which keeps every
// product above in the normal range, where these relative bounds hold; the 1e-30 added to each
// radius covers products of subnormal x values in the kernel.

static float radius_factor(int columns) {
    const double u = 1.0 / (1 << 24);
    return (float)((0.5 + 130.0 * (columns + columns / 32 + 4) * u) * 1.001);
}

static const float RADIUS_FLOOR = 1e-30f;

// The smallest f16 not below v (v ≥ 0; +inf above the largest f16).
static uint16_t half_at_least(float v) {
    _Float16 f = (_Float16)v;
    uint16_t bits;
    memcpy(&bits, &f, 2);
    if ((float)f < v) bits++;
    return bits;
}

// MARK: - Packing and quantizing

size_t screen_packed_bytes(int rows, int columns) {
    return (size_t)(rows / SCREEN_GROUP_ROWS) * (size_t)(columns / 32) * SCREEN_GROUP_BLOCK_BYTES;
}

int screen_pack_q8_0(const uint8_t *blocks, size_t row_bytes, int rows, int columns, uint8_t *packed) {
    const int block_count = columns / 32;
    for (int g = 0; g < rows / SCREEN_GROUP_ROWS; g++) {
        for (int b = 0; b < block_count; b++) {
            uint8_t *out = packed + ((size_t)g * block_count + b) * SCREEN_GROUP_BLOCK_BYTES;
            for (int r = 0; r < SCREEN_GROUP_ROWS; r++) {
                const uint8_t *block = blocks + (size_t)(g * SCREEN_GROUP_ROWS + r) * row_bytes + (size_t)b * 34;
                const float d = half_to_float(block);
                if (!isfinite(d)) return 0;
                int magnitude = 0;
                for (int j = 0; j < 32; j++) {
                    const int q = (int8_t)block[2 + j];
                    magnitude += q < 0 ? -q : q;
                    out[(j / 4) * 64 + r * 4 + j % 4] = (uint8_t)(q + 128);
                }
                memcpy(out + 512 + 2 * r, block, 2);
                const uint16_t bound = half_at_least(fabsf(d) * (float)magnitude);
                memcpy(out + 544 + 2 * r, &bound, 2);
            }
        }
    }
    return 1;
}

int screen_quantize(const float *x, int columns, int8_t *xq, float *dx, int32_t *corr) {
    for (int b = 0; b < columns / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            const float a = fabsf(xb[j]);
            if (!(a <= 1e20f)) return 0;
            amax = a > amax ? a : amax;
        }
        if (amax != 0 && amax < 1e-20f) return 0;
        const float d = amax / 127;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            const int q = d > 0 ? (int)lrintf(xb[j] / d) : 0;
            xq[b * 32 + j] = (int8_t)q;
            sum += q;
        }
        dx[b] = d;
        corr[b] = 128 * sum;
    }
    return 1;
}

// MARK: - Portable

static void screen_rows_portable(const uint8_t *packed, int columns, const int8_t *xq, const float *dx, const int32_t *corr,
                                 int x_count, float *approx, float *radius, int rows, int group_begin, int group_end) {
    const int block_count = columns / 32;
    const float factor = radius_factor(columns);
    for (int g = group_begin; g < group_end; g++) {
        for (int i = 0; i < x_count; i++) {
            for (int r = 0; r < SCREEN_GROUP_ROWS; r++) {
                float acc = 0, bound = 0;
                for (int b = 0; b < block_count; b++) {
                    const uint8_t *group = packed + ((size_t)g * block_count + b) * SCREEN_GROUP_BLOCK_BYTES;
                    const int8_t *xb = xq + (size_t)i * columns + b * 32;
                    int32_t dot = -corr[i * block_count + b];
                    for (int j = 0; j < 32; j++) dot += (int32_t)group[(j / 4) * 64 + r * 4 + j % 4] * xb[j];
                    const float scale = dx[i * block_count + b];
                    acc = fmaf((float)dot, half_to_float(group + 512 + 2 * r) * scale, acc);
                    bound = fmaf(half_to_float(group + 544 + 2 * r), scale, bound);
                }
                approx[(size_t)i * rows + g * SCREEN_GROUP_ROWS + r] = acc;
                radius[(size_t)i * rows + g * SCREEN_GROUP_ROWS + r] = fmaf(bound, factor, RADIUS_FLOOR);
            }
        }
    }
}

// MARK: - AVX-512 VNNI: a lane per row of the group

#if LORA_X86

// `n` (≤ 8, a constant at every call) vectors: their int32 accumulators take each 64-byte chunk
// of weights in turn, so independent chains hide the instruction's latency.
VNNI static inline __attribute__((always_inline)) void screen_group_vnni(const uint8_t *packed, int block_count, int columns, const int8_t *xq,
                                                                          const float *dx, const int32_t *corr, const int n, float *approx,
                                                                          float *radius, int rows, int g, float factor) {
    __m512 acc[8];
    for (int i = 0; i < n; i++) acc[i] = _mm512_setzero_ps();
    for (int b = 0; b < block_count; b++) {
        const uint8_t *group = packed + ((size_t)g * block_count + b) * SCREEN_GROUP_BLOCK_BYTES;
        __m512i dot[8];
        for (int i = 0; i < n; i++) dot[i] = _mm512_set1_epi32(-corr[i * block_count + b]);
        for (int k = 0; k < 8; k++) {
            const __m512i weights = _mm512_loadu_si512(group + 64 * k);
            for (int i = 0; i < n; i++) {
                int32_t four;
                memcpy(&four, xq + (size_t)i * columns + b * 32 + 4 * k, 4);
                dot[i] = _mm512_dpbusd_epi32(dot[i], weights, _mm512_set1_epi32(four));
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(group + 512)));
        for (int i = 0; i < n; i++) {
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i]), _mm512_mul_ps(d, _mm512_set1_ps(dx[i * block_count + b])), acc[i]);
        }
    }
    for (int i = 0; i < n; i++) _mm512_storeu_ps(approx + (size_t)i * rows + g * SCREEN_GROUP_ROWS, acc[i]);
    // The bounds in a second pass over the group's (cached) blocks: in the first, their eight
    // accumulators left too few registers.
    for (int i = 0; i < n; i++) acc[i] = _mm512_setzero_ps();
    for (int b = 0; b < block_count; b++) {
        const uint8_t *group = packed + ((size_t)g * block_count + b) * SCREEN_GROUP_BLOCK_BYTES;
        const __m512 l1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(group + 544)));
        for (int i = 0; i < n; i++) acc[i] = _mm512_fmadd_ps(l1, _mm512_set1_ps(dx[i * block_count + b]), acc[i]);
    }
    for (int i = 0; i < n; i++) {
        _mm512_storeu_ps(radius + (size_t)i * rows + g * SCREEN_GROUP_ROWS,
                         _mm512_fmadd_ps(acc[i], _mm512_set1_ps(factor), _mm512_set1_ps(RADIUS_FLOOR)));
    }
}

VNNI static void screen_rows_vnni(const uint8_t *packed, int columns, const int8_t *xq, const float *dx, const int32_t *corr, int x_count,
                                  float *approx, float *radius, int rows, int group_begin, int group_end) {
    const int block_count = columns / 32;
    const float factor = radius_factor(columns);
    for (int i0 = 0; i0 < x_count; i0 += 8) {
        const int8_t *xs = xq + (size_t)i0 * columns;
        const float *dxs = dx + (size_t)i0 * block_count;
        const int32_t *cs = corr + (size_t)i0 * block_count;
        float *as = approx + (size_t)i0 * rows, *rs = radius + (size_t)i0 * rows;
        for (int g = group_begin; g < group_end; g++) {
#define GROUP_N(n) screen_group_vnni(packed, block_count, columns, xs, dxs, cs, n, as, rs, rows, g, factor)
            switch (x_count - i0) {
            case 1: GROUP_N(1); break;
            case 2: GROUP_N(2); break;
            case 3: GROUP_N(3); break;
            case 4: GROUP_N(4); break;
            case 5: GROUP_N(5); break;
            case 6: GROUP_N(6); break;
            case 7: GROUP_N(7); break;
            default: GROUP_N(8); break;
            }
#undef GROUP_N
        }
    }
}

// MARK: - AVX2: a lane per row of half a group

// AVX2 has no u8×s8 dot product into int32 that cannot saturate on these operands: maddubs sums
// two u8×s8 products in int16, and (q + 128)·x reaches 2·255·127. With the sign moved onto x,
// |q|·sign(x, q) is at most 2·128·127 = 32,512 a pair: exact. So the integer sums are the VNNI
// path's, and the Float32 steps after them are the same operations in the same order.
//
// One half of a group (8 rows, bytes 32·half.. of each 64-byte chunk) at a time, for `n` ≤ 4
// vectors: 2n accumulators, under AVX2's 16 registers.
AVX2 static inline __attribute__((always_inline)) void screen_half_avx2(const uint8_t *packed, int block_count, int columns, const int8_t *xq,
                                                                         const float *dx, const int n, float *approx, float *radius, int rows,
                                                                         int g, int half, float factor) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int i = 0; i < n; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < block_count; b++) {
        const uint8_t *group = packed + ((size_t)g * block_count + b) * SCREEN_GROUP_BLOCK_BYTES;
        __m256i dot[4];
        for (int i = 0; i < n; i++) dot[i] = _mm256_setzero_si256();
        for (int k = 0; k < 8; k++) {
            const __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(group + 64 * k + 32 * half)), flip);
            const __m256i magnitude = _mm256_abs_epi8(q);
            for (int i = 0; i < n; i++) {
                int32_t four;
                memcpy(&four, xq + (size_t)i * columns + b * 32 + 4 * k, 4);
                const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(_mm256_set1_epi32(four), q));
                dot[i] = _mm256_add_epi32(dot[i], _mm256_madd_epi16(pairs, ones));
            }
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(group + 512 + 16 * half)));
        for (int i = 0; i < n; i++) {
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[i]), _mm256_mul_ps(d, _mm256_set1_ps(dx[i * block_count + b])), acc[i]);
        }
    }
    const size_t column = (size_t)g * SCREEN_GROUP_ROWS + 8 * half;
    for (int i = 0; i < n; i++) _mm256_storeu_ps(approx + (size_t)i * rows + column, acc[i]);
    for (int i = 0; i < n; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < block_count; b++) {
        const uint8_t *group = packed + ((size_t)g * block_count + b) * SCREEN_GROUP_BLOCK_BYTES;
        const __m256 l1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(group + 544 + 16 * half)));
        for (int i = 0; i < n; i++) acc[i] = _mm256_fmadd_ps(l1, _mm256_set1_ps(dx[i * block_count + b]), acc[i]);
    }
    for (int i = 0; i < n; i++) {
        _mm256_storeu_ps(radius + (size_t)i * rows + column, _mm256_fmadd_ps(acc[i], _mm256_set1_ps(factor), _mm256_set1_ps(RADIUS_FLOOR)));
    }
}

AVX2 static void screen_rows_avx2(const uint8_t *packed, int columns, const int8_t *xq, const float *dx, int x_count, float *approx,
                                  float *radius, int rows, int group_begin, int group_end) {
    const int block_count = columns / 32;
    const float factor = radius_factor(columns);
    for (int i0 = 0; i0 < x_count; i0 += 4) {
        const int8_t *xs = xq + (size_t)i0 * columns;
        const float *dxs = dx + (size_t)i0 * block_count;
        float *as = approx + (size_t)i0 * rows, *rs = radius + (size_t)i0 * rows;
        for (int g = group_begin; g < group_end; g++) {
            for (int half = 0; half < 2; half++) {
#define HALF_N(n) screen_half_avx2(packed, block_count, columns, xs, dxs, n, as, rs, rows, g, half, factor)
                switch (x_count - i0) {
                case 1: HALF_N(1); break;
                case 2: HALF_N(2); break;
                case 3: HALF_N(3); break;
                default: HALF_N(4); break;
                }
#undef HALF_N
            }
        }
    }
}

// `screen_candidates` 16 rows at a time (a scalar pass over 49,152 rows took 48 µs a vector);
// the same comparisons, so the same rows.
VNNI static int screen_candidates_avx512(const float *approx, const float *radius, int count, int32_t *candidates) {
    __m512 lowest = _mm512_set1_ps(-INFINITY);
    int r = 0;
    for (; r + 16 <= count; r += 16) lowest = _mm512_max_ps(lowest, _mm512_sub_ps(_mm512_loadu_ps(approx + r), _mm512_loadu_ps(radius + r)));
    float lower = _mm512_reduce_max_ps(lowest);
    for (; r < count; r++) {
        const float low = approx[r] - radius[r];
        lower = low > lower ? low : lower;
    }
    const __m512 bound = _mm512_set1_ps(lower);
    const __m512i steps = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int found = 0;
    for (r = 0; r + 16 <= count; r += 16) {
        const __m512 high = _mm512_add_ps(_mm512_loadu_ps(approx + r), _mm512_loadu_ps(radius + r));
        const __mmask16 reaching = _mm512_cmp_ps_mask(high, bound, _CMP_GE_OQ);
        if (reaching) {
            _mm512_mask_compressstoreu_epi32(candidates + found, reaching, _mm512_add_epi32(_mm512_set1_epi32(r), steps));
            found += __builtin_popcount(reaching);
        }
    }
    for (; r < count; r++) {
        if (approx[r] + radius[r] >= lower) candidates[found++] = r;
    }
    return found;
}

static int has_vnni(void) { return cpu_kernel_vnni(); }
#endif

// MARK: - Entry points

int screen_path_supported(int path) {
    switch (path) {
    case SCREEN_PORTABLE: return 1;
#if LORA_X86
    case SCREEN_VNNI: return has_vnni();
    case SCREEN_AVX2: return cpu_kernel_level() >= CPU_AVX2;
#endif
    default: return 0;
    }
}

void screen_rows(int path, const uint8_t *packed, int columns, const int8_t *xq, const float *dx, const int32_t *corr, int x_count,
                 float *approx, float *radius, int rows, int group_begin, int group_end) {
    (void)path;  // only the x86 paths read it
#if LORA_X86
    if (path == SCREEN_VNNI && has_vnni()) {
        screen_rows_vnni(packed, columns, xq, dx, corr, x_count, approx, radius, rows, group_begin, group_end);
        return;
    }
    if (path == SCREEN_AVX2 && cpu_kernel_level() >= CPU_AVX2) {
        screen_rows_avx2(packed, columns, xq, dx, x_count, approx, radius, rows, group_begin, group_end);
        return;
    }
#endif
    screen_rows_portable(packed, columns, xq, dx, corr, x_count, approx, radius, rows, group_begin, group_end);
}

int screen_candidates(const float *approx, const float *radius, int count, int32_t *candidates) {
#if LORA_X86
    if (has_vnni()) return screen_candidates_avx512(approx, radius, count, candidates);
#endif
    float lower = -INFINITY;
    for (int r = 0; r < count; r++) {
        const float low = approx[r] - radius[r];
        lower = low > lower ? low : lower;
    }
    int found = 0;
    for (int r = 0; r < count; r++) {
        if (approx[r] + radius[r] >= lower) candidates[found++] = r;
    }
    return found;
}
