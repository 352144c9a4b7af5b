#ifndef HALF_H
#define HALF_H

#include <stdint.h>
#include <string.h>

// IEEE half (the scales of GGUF blocks) to float, exactly. Where the CPU converts in hardware
// (F16C on x86, every aarch64) the cast is that instruction; on an x86-64 baseline the cast is
// a library call per value (37% of a portable decode step), so the bits are rearranged here.
static inline float half_to_float(const uint8_t *p) {
#if defined(__F16C__) || defined(__aarch64__)
    _Float16 f;
    memcpy(&f, p, 2);
    return (float)f;
#else
    uint16_t h;
    memcpy(&h, p, 2);
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0) {
        const float magnitude = (float)mantissa * 0x1p-24f;  // zero or subnormal: exact
        memcpy(&bits, &magnitude, 4);
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7F800000u | (mantissa << 13);  // infinity or NaN
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

#endif
