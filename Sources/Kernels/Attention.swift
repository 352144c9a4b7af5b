import CBLAS
import Foundation

/// Causal grouped-query attention over a key/value cache (scaled dot-product attention as in
/// PyTorch's `scaled_dot_product_attention(is_causal=True)`, with H/Hkv query heads sharing
/// each key/value head).
public enum Attention {
    /// The T new queries sit at positions `past..<past+T`; their keys and values are already in
    /// the cache rows `0..<past+T`.
    /// q, out: [T, H, D]  kCache, vCache: [S ≥ past+T, Hkv, D]
    /// scratch: at least T · (past+T) floats (T > 1 only)
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
            // Decode: one query row per head; GEMM overhead would dominate, so plain loops.
            Parallel.forEach(H) { h in
                let kvHead = h / group
                let query = q + h * D
                var scores = [Float](repeating: 0, count: S)
                scores.withUnsafeMutableBufferPointer { scores in
                    for s in 0..<S {
                        let key = kCache + s * kvStride + kvHead * D
                        var dot: Float = 0
                        for d in 0..<D { dot += query[d] * key[d] }
                        scores[s] = dot * scale
                    }
                    Softmax.forward(scores.baseAddress!, count: S)
                    let o = out + h * D
                    for d in 0..<D { o[d] = 0 }
                    for s in 0..<S {
                        let value = vCache + s * kvStride + kvHead * D
                        let p = scores[s]
                        for d in 0..<D { o[d] += p * value[d] }
                    }
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
}
