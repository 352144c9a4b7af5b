#include "vector_math.h"

#include <math.h>


// Rotary embedding of one row's heads (per-row work of a decode step, like RMSNorm).

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
