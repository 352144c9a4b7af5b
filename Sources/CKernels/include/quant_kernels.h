#ifndef QUANT_KERNELS_H
#define QUANT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

// Dot products of quantized weight rows with Float32 activations, for decoding (one activation
// row per sequence in the batch).
// Swift has no stable x86 intrinsics and its generic SIMD types compile the nibble unpacking
// to scalar code (measured 2.5x slower), so these few loops are C with AVX-512 and AVX2/FMA paths
// chosen at run time and a portable path for other CPUs.
//
// Rows [row_begin, row_end) of a matrix with `rows` rows and `columns` columns, stored as
// consecutive blocks of 32 weights (`row_bytes` bytes a row), times `x_count` activation
// vectors x: [x_count, columns]; y: [x_count, rows] (written, or added to with `accumulate`).
// Every weight row is read once for all vectors.

// Formats. Q4_1 block: f16 d, f16 m, 16 bytes of nibbles (low nibbles: weights 0-15, high:
// 16-31). Q8_0 block: f16 d, 32 signed bytes.
enum { QUANT_Q4_1 = 0, QUANT_Q8_0 = 1 };

// `path` is a level of cpu_features.h. Each computes every (weight row, vector) dot the same way
// whatever the batch, so a batch's rows equal the vectors alone on any one path; paths differ
// from each other in summation order. A path above cpu_kernel_level() runs the portable one.
// With `accumulate`, y += the products.
void quant_rows(int path, int format, const uint8_t *weights, size_t row_bytes, int columns, const float *x, int x_count,
                float *y, int rows, int row_begin, int row_end, int accumulate);

// The kernels' scalar f16 → f32 conversion (half.h), exported for its exhaustive test.
float quant_half_to_float(uint16_t bits);

#endif
