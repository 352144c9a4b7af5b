#ifndef VECTOR_MATH_H
#define VECTOR_MATH_H

#include <stddef.h>

// Row kernels, one C file per operation. The exp() in softmax, cross-entropy and SwiGLU is one
// polynomial (simd_exp.h: relative error < 2e-7, Cephes coefficients), 8 lanes wide on AVX2 and
// the same operations in scalar form otherwise, so results do not depend on the path.

// MARK: softmax.c

// Cross-entropy of one row of logits against `target`, in place: returns −log softmax(row)[target]
// (log-sum-exp accumulated in double) and overwrites row with (softmax − onehot) · gradient_scale.
double vm_cross_entropy_row(float *row, int count, int target, float gradient_scale);

// Softmax of one row in place (max subtracted first; the sum accumulated in double).
void vm_softmax(float *row, int count);

// Softmax backward for one row: d = p ⊙ (d − Σ p·d) · scale (the dot accumulated in double).
void vm_softmax_backward(const float *p, float *d, int count, float scale);

// MARK: swiglu.c

// out = silu(gate) · up, silu(g) = g · sigmoid(g)
void vm_swiglu_forward(const float *gate, const float *up, float *out, size_t count);

// d_gate = d_out · up · silu'(gate), d_up = d_out · silu(gate)
void vm_swiglu_backward(const float *d_out, const float *gate, const float *up, float *d_gate, float *d_up, size_t count);

// MARK: low_rank_row.c

// One row's LoRA delta without BLAS call overhead (decode: a row per call, hundreds of calls per
// token): u = A·x (A: [R, K]), y += scale · B·u (B: [N, R]).
void vm_low_rank_row(const float *x, const float *a, const float *b, float scale, float *u, float *y, int K, int N, int R);

// MARK: decode_attention.c

// One query row of `heads` heads that share one key/value head, against S cached keys and values
// (a decode step): per head, scores = scale · K·q, softmax over them, out = Σ_s scores[s] · V[s].
// q, out: [heads, D]; k, v: S rows, `stride` floats apart; scores: [heads, S]. A head's result
// does not depend on `heads`, and every row of a batch runs this same function, so rows equal
// their solo result. Sharing the key/value head reads each cached row once for all its heads.
void vm_attention_heads(const float *q, const float *k, const float *v, size_t stride, float *scores, float *out, int S, int D, float scale,
                        int heads);
// The same without AVX2, which `vm_attention_heads` falls back to; exported so tests cover it on
// machines that have AVX2.
void vm_attention_heads_portable(const float *q, const float *k, const float *v, size_t stride, float *scores, float *out, int S, int D,
                                 float scale, int heads);

// MARK: rms_norm_row.c

// One row of RMSNorm: out = x · rstd · weight with rstd = 1 / sqrt(mean(x²) + eps), the mean
// accumulated in double; returns rstd.
float vm_rms_norm_row(const float *x, const float *weight, float *out, int C, float eps);

// MARK: rope_heads.c

// Rotary embedding of `heads` heads of width 2·half in place: (v[i], v[i + half]) rotated by
// the angle whose cosine and sine are cosines[i] and sines[i].
void vm_rope_heads(float *v, const float *cosines, const float *sines, int half, int heads);
#endif
