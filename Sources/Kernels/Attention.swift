import CBLAS
import CKernels
import Foundation

/// Causal grouped-query attention over a key/value cache (scaled dot-product attention as in
/// PyTorch's `scaled_dot_product_attention(is_causal=True)`, with H/Hkv query heads sharing
/// each key/value head).
public enum Attention {
    /// The T new queries sit at positions `past..<past+T`; their keys and values are already in
    /// the cache rows `0..<past+T`. For long prompts: decoding rows and short prompts take one
    /// query at a time (`decodeHeads`).
    /// q, out: [T, H, D]  kCache, vCache: S ≥ past+T rows of Hkv heads of D floats, key/value
    /// head h's row s at `h · headStride + s · rowStride` (by default [S, Hkv, D]; a `KVCache`
    /// keeps [Hkv, capacity, D])
    /// scratch: at least T · (past+T) floats
    public static func forward(
        q: UnsafePointer<Float>, kCache: UnsafePointer<Float>, vCache: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
        T: Int, past: Int, H: Int, Hkv: Int, D: Int, headStride: Int? = nil, rowStride: Int? = nil
    ) {
        let S = past + T
        let group = H / Hkv
        let scale = 1 / Float(D).squareRoot()
        let qStride = H * D, kvStride = rowStride ?? Hkv * D, headStride = headStride ?? D
        for h in 0..<H {
            let kvHead = h / group
            // scratch[T, S] = scale · Q_h · K_hᵀ
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(S), Int32(D),
                scale, q + h * D, Int32(qStride), kCache + kvHead * headStride, Int32(kvStride), 0, scratch, Int32(S))
            Parallel.forRanges(T, minimumPerTask: 16) { rows in
                for t in rows {
                    let row = scratch + t * S
                    let visible = past + t + 1
                    Softmax.forward(row, count: visible)
                    for s in visible..<S { row[s] = 0 }
                }
            }
            // out_h[T, D] = P · V_h
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(D), Int32(S),
                1, scratch, Int32(S), vCache + kvHead * headStride, Int32(kvStride), 0, out + h * D, Int32(qStride))
        }
    }

    /// Query heads `first ..< first + count` of one decoding query at position S - 1, all in one
    /// key/value group. A batch of sequences decoding together runs this same function per
    /// (sequence, heads) task, and a head's result does not depend on `count`, so each row equals
    /// its solo result however the work is split.
    /// q, out: [H, D]  kCache, vCache: [Hkv, ≥ S, D], `headStride` floats from one key/value head
    /// to the next  scores: [count, S]
    public static func decodeHeads(
        _ first: Int, count: Int, q: UnsafePointer<Float>, kCache: UnsafePointer<Float>, vCache: UnsafePointer<Float>, headStride: Int,
        out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, S: Int, H: Int, Hkv: Int, D: Int
    ) {
        let kvHead = first / (H / Hkv)
        vm_attention_heads(
            q + first * D, kCache + kvHead * headStride, vCache + kvHead * headStride, D, scores, out + first * D, Int32(S), Int32(D),
            1 / Float(D).squareRoot(), Int32(count))
    }

    /// B independent sequences of T tokens (training): causal attention within each, keeping
    /// the probabilities for `backward`.
    /// q, out: [B, T, H, D]  k, v: [B, T, Hkv, D]  probabilities: [B, H, T, T]
    public static func forward(
        sequences q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>, B: Int, T: Int, H: Int, Hkv: Int, D: Int
    ) {
        forward(ranges: uniform(B: B, T: T), q: q, k: k, v: v, out: out, probabilities: probabilities, H: H, Hkv: Hkv, D: D)
    }

    /// Sequences of any lengths laid end to end (`ranges`: each one's rows, in order; a packed
    /// batch): causal attention within each, none across. The (sequence, head) pairs run in
    /// parallel, each with single-threaded BLAS: small GEMMs split across threads cost more than
    /// they gain. q, out: [N, H, D]  k, v: [N, Hkv, D]  probabilities: per sequence of length
    /// T, [H, T, T], one after another (`probabilityCount`)
    public static func forward(
        ranges: [Range<Int>], q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>, H: Int, Hkv: Int, D: Int
    ) {
        let group = H / Hkv
        let scale = 1 / Float(D).squareRoot()
        let qStride = Int32(H * D), kvStride = Int32(Hkv * D), d32 = Int32(D)
        let offsets = probabilityOffsets(ranges, H: H)
        BLAS.singleThreaded {
            Parallel.forEach(ranges.count * H) { task in
                let b = task / H, h = task % H, kvHead = h / group
                let start = ranges[b].lowerBound, T = ranges[b].count, t32 = Int32(T)
                let qh = q + start * H * D + h * D, kh = k + start * Hkv * D + kvHead * D, vh = v + start * Hkv * D + kvHead * D
                let p = probabilities + offsets[b] + h * T * T, oh = out + start * H * D + h * D
                for block in causalBlocks(T) {
                    let rows = Int32(block.rows.count), span = Int32(block.span), first = block.rows.lowerBound
                    let pBlock = p + first * T
                    // P[rows, 0..<span] = scale · Q_rows · K_spanᵀ, then a causal softmax per row
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, rows, span, d32, scale, qh + first * Int(qStride), qStride, kh, kvStride,
                        0, pBlock, t32)
                    for t in block.rows {
                        let row = p + t * T
                        Softmax.forward(row, count: t + 1)
                        for s in (t + 1)..<block.span { row[s] = 0 }
                    }
                    // O_rows = P[rows, 0..<span] · V_span
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d32, span, 1, pBlock, t32, vh, kvStride, 0,
                        oh + first * Int(qStride), qStride)
                }
            }
        }
    }

    /// B sequences of T rows each.
    static func uniform(B: Int, T: Int) -> [Range<Int>] { (0..<B).map { ($0 * T)..<(($0 + 1) * T) } }

    /// Floats the probabilities of `ranges` take: H · T² per sequence of length T.
    public static func probabilityCount(_ ranges: [Range<Int>], H: Int) -> Int { ranges.reduce(0) { $0 + H * $1.count * $1.count } }

    /// Where each sequence's probabilities start.
    static func probabilityOffsets(_ ranges: [Range<Int>], H: Int) -> [Int] {
        var offsets: [Int] = [], total = 0
        for range in ranges {
            offsets.append(total)
            total += H * range.count * range.count
        }
        return offsets
    }

    /// Query rows of one sequence in blocks, each with the keys any of its rows can see
    /// (`0..<span`): blocks skip the GEMM work above the causal diagonal that full T × T products
    /// would spend on zeros (with T = 256 in blocks of 64, 5/8 of the work of the full products).
    /// The probabilities right of a block's span are never written: callers pass them zeroed.
    static func causalBlocks(_ T: Int) -> [(rows: Range<Int>, span: Int)] {
        let size = 64
        return stride(from: 0, to: T, by: size).map { start in
            let end = min(T, start + size)
            return (start..<end, end)
        }
    }

    /// Gradients of `forward(sequences:)`, added into dQ, dK, dV; the key/value heads shared by
    /// a group of query heads collect the group's gradients, so the parallel tasks are
    /// (sequence, key/value head) pairs and never write the same rows.
    /// dOut, q, dQ: [B, T, H, D]  k, v, dK, dV: [B, T, Hkv, D]  probabilities: [B, H, T, T]
    public static func backward(
        dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        probabilities: UnsafePointer<Float>, dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>,
        dV: UnsafeMutablePointer<Float>, B: Int, T: Int, H: Int, Hkv: Int, D: Int
    ) {
        backward(ranges: uniform(B: B, T: T), dOut: dOut, q: q, k: k, v: v, probabilities: probabilities, dQ: dQ, dK: dK, dV: dV, H: H, Hkv: Hkv, D: D)
    }

    /// Gradients of `forward(ranges:)`, added into dQ, dK, dV.
    /// dOut, q, dQ: [N, H, D]  k, v, dK, dV: [N, Hkv, D]  probabilities: as `forward(ranges:)` keeps them
    public static func backward(
        ranges: [Range<Int>], dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        probabilities: UnsafePointer<Float>, dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>,
        dV: UnsafeMutablePointer<Float>, H: Int, Hkv: Int, D: Int
    ) {
        let group = H / Hkv
        let offsets = probabilityOffsets(ranges, H: H)
        BLAS.singleThreaded {
            Parallel.forEach(ranges.count * Hkv) { task in
                let b = task / Hkv, kvHead = task % Hkv
                let start = ranges[b].lowerBound, T = ranges[b].count
                let qOffset = start * H * D, kvOffset = start * Hkv * D
                var scratch = [Float](repeating: 0, count: T * T)
                for h in (kvHead * group)..<((kvHead + 1) * group) {
                    backwardHead(
                        dOut: dOut + qOffset, q: q + qOffset, k: k + kvOffset, v: v + kvOffset,
                        probabilities: probabilities + offsets[b] + h * T * T, dQ: dQ + qOffset, dK: dK + kvOffset, dV: dV + kvOffset,
                        scratch: &scratch, h: h, kvHead: kvHead, T: T, H: H, Hkv: Hkv, D: D)
                }
            }
        }
    }

    /// One head of one sequence. dOut, q, dQ: [T, H, D]  k, v, dK, dV: [T, Hkv, D]
    /// probabilities: [T, T] (this head's)  scratch: [T, T]
    static func backwardHead(
        dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        probabilities p: UnsafePointer<Float>, dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>,
        dV: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, h: Int, kvHead: Int, T: Int, H: Int, Hkv: Int, D: Int
    ) {
        let scale = 1 / Float(D).squareRoot()
        let qStride = Int32(H * D), kvStride = Int32(Hkv * D), t32 = Int32(T), d32 = Int32(D)
        let dO = dOut + h * D
        for block in causalBlocks(T) {
            let rows = Int32(block.rows.count), span = Int32(block.span), first = block.rows.lowerBound
            let pBlock = p + first * T, dSBlock = scratch + first * T
            let dOBlock = dO + first * Int(qStride), qBlock = q + first * Int(qStride) + h * D
            // dV[0..<span] += P[rows, 0..<span]ᵀ · dO_rows
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, span, d32, rows, 1, pBlock, t32, dOBlock, qStride, 1, dV + kvHead * D, kvStride)
            // dP[rows, 0..<span] = dO_rows · V_spanᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, span, d32, 1, dOBlock, qStride, v + kvHead * D, kvStride, 0, dSBlock, t32)
            // Softmax backward: dS = P ⊙ (dP − Σ_s P·dP), then the 1/√D of the scores.
            for t in block.rows {
                let dRow = scratch + t * T
                Softmax.backward(probabilities: p + t * T, dRow, count: t + 1, scale: scale)
                (dRow + t + 1).update(repeating: 0, count: block.span - t - 1)
            }
            // dQ_rows += dS[rows, 0..<span] · K_span;  dK[0..<span] += dS[rows, 0..<span]ᵀ · Q_rows
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d32, span, 1, dSBlock, t32, k + kvHead * D, kvStride, 1,
                dQ + first * Int(qStride) + h * D, qStride)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, span, d32, rows, 1, dSBlock, t32, qBlock, qStride, 1, dK + kvHead * D, kvStride)
        }
    }
}
