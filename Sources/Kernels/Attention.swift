import CBLAS
import Foundation

/// Causal grouped-query attention over a key/value cache (scaled dot-product attention as in
/// PyTorch's `scaled_dot_product_attention(is_causal=True)`, with H/Hkv query heads sharing
/// each key/value head).
public enum Attention {
    /// The T new queries sit at positions `past..<past+T`; their keys and values are already in
    /// the cache rows `0..<past+T`.
    /// q, out: [T, H, D]  kCache, vCache: [S ≥ past+T, Hkv, D]
    /// scratch: at least T · (past+T) floats, or H · (past+1) when T = 1
    public static func forward(
        q: UnsafePointer<Float>, kCache: UnsafePointer<Float>, vCache: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
        T: Int, past: Int, H: Int, Hkv: Int, D: Int
    ) {
        let S = past + T
        let group = H / Hkv
        let scale = 1 / Float(D).squareRoot()
        let qStride = H * D, kvStride = Hkv * D
        if T == 1 {
            // Decode: one query row per head; GEMM call overhead would dominate, so direct loops.
            Parallel.forEach(H) { h in
                let kvHead = h / group
                let scores = scratch + h * S
                for s in 0..<S {
                    scores[s] = dot(q + h * D, kCache + s * kvStride + kvHead * D, D) * scale
                }
                Softmax.forward(scores, count: S)
                let o = out + h * D
                o.update(repeating: 0, count: D)
                for s in 0..<S {
                    addScaled(vCache + s * kvStride + kvHead * D, scores[s], into: o, D)
                }
            }
            return
        }
        for h in 0..<H {
            let kvHead = h / group
            // scores[T, S] = scale · Q_h · K_hᵀ
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(S), Int32(D),
                scale, q + h * D, Int32(qStride), kCache + kvHead * D, Int32(kvStride), 0, scratch, Int32(S))
            for t in 0..<T {
                let row = scratch + t * S
                let visible = past + t + 1
                Softmax.forward(row, count: visible)
                for s in visible..<S { row[s] = 0 }
            }
            // out_h[T, D] = P · V_h
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(D), Int32(S),
                1, scratch, Int32(S), vCache + kvHead * D, Int32(kvStride), 0, out + h * D, Int32(qStride))
        }
    }

    /// Σ a[i]·b[i] in 16-wide lanes (a scalar loop would not vectorize: float addition is not
    /// reassociated by the compiler).
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var lanes = SIMD16<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 16 <= n {
            lanes += ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        var sum = lanes.sum()
        while i < n {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }

    /// out[i] += scale · x[i]
    @inline(__always)
    static func addScaled(_ x: UnsafePointer<Float>, _ scale: Float, into out: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { out[i] += scale * x[i] }
    }
}
