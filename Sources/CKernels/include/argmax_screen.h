#ifndef ARGMAX_SCREEN_H
#define ARGMAX_SCREEN_H

#include <stddef.h>
#include <stdint.h>

// Greedy decoding needs only the largest of the head's 49,152 products x·w_r, not their values.
// A screen finds it exactly while computing few products exactly: int8 dot products (AVX-512
// VNNI, or AVX2) give every product approximately, each with a proven bound on its error; only the rows
// whose interval can still reach the best lower end are then computed by the Float32 kernel.
//
// Screening layout of a Q8_0 matrix (rows a multiple of 16, columns of 32): for each group of
// 16 rows and each block of 32 columns, 512 bytes of q + 128 (unsigned) in the order VNNI reads
// them (chunk k of 64 bytes: 4 bytes per row, weights 4k..4k+3 of rows 0..15), then 16 f16 scales
// d, then 16 f16 bounds |d|·Σ|q| (rounded up).
enum { SCREEN_GROUP_ROWS = 16, SCREEN_GROUP_BLOCK_BYTES = 512 + 64 };

// Code paths: all give the same results bit for bit (exact integer sums, the same Float32
// operations in the same order). AVX2 reads the same layout with vpmaddubsw / vpmaddwd.
enum { SCREEN_PORTABLE = 0, SCREEN_VNNI = 1, SCREEN_AVX2 = 2 };
int screen_path_supported(int path);

size_t screen_packed_bytes(int rows, int columns);

// Returns 0 (and packs nothing usable) if a scale is not finite.
int screen_pack_q8_0(const uint8_t *blocks, size_t row_bytes, int rows, int columns, uint8_t *packed);

// One vector x: [columns] → xq: [columns] (x / dx rounded, per block of 32), dx: [columns / 32],
// corr: [columns / 32] (128 · Σ xq, what the unsigned weights add). Returns 0 when x has a value
// that is not finite or a block whose largest magnitude is below 1e-30 but not 0: the error
// bound assumes normal numbers.
int screen_quantize(const float *x, int columns, int8_t *xq, float *dx, int32_t *corr);

// For `x_count` quantized vectors (xq: [x_count, columns], dx and corr: [x_count, columns / 32])
// and row groups [group_begin, group_end): approx and radius, both [x_count, rows], such that
// the Float32 kernel's product of row r with vector i lies within approx ± radius.
void screen_rows(int path, const uint8_t *packed, int columns, const int8_t *xq, const float *dx, const int32_t *corr, int x_count,
                 float *approx, float *radius, int rows, int group_begin, int group_end);

// The rows whose interval reaches the best lower end, max_r(approx[r] − radius[r]), in
// increasing order, into `candidates` (room for `count`); returns how many.
int screen_candidates(const float *approx, const float *radius, int count, int32_t *candidates);

#endif
