import CBLAS
import CKernels

/// The LoRA path of one adapted projection: y += scale · (x · Aᵀ) · Bᵀ, as PEFT's
/// `lora_B(lora_A(dropout(x))) * scaling`. A and B are the only trained parameters.
///
/// With rank R = 8 every product here is thin, and handing each one to OpenBLAS's threads costs
/// more than it saves: a training step's LoRA products ran over twice as long on two OpenBLAS
/// threads as on one. So the rows are split into blocks across our own threads, each block's
/// products single-threaded.
public enum LowRank {
    /// Rows per block. The backward sums each block's dA/dB partial and adds the partials in
    /// block order, so the gradients do not depend on the number of threads.
    public static let block = 128

    /// x: [T, K]  a: [R, K]  b: [N, R]  u (saved x·Aᵀ): [T, R]
    /// y: [T, N], y = scale · u·Bᵀ, added to y when `accumulate`
    public static func forward(
        _ x: UnsafePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, scale: Float,
        u: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, T: Int, K: Int, N: Int, R: Int, accumulate: Bool = true
    ) {
        if T == 1 {
            // Decoding: a BLAS call per projection per token costs more than the arithmetic.
            if !accumulate { y.update(repeating: 0, count: N) }
            vm_low_rank_row(x, a, b, scale, u, y, Int32(K), Int32(N), Int32(R))
            return
        }
        let blocks = (T + block - 1) / block
        BLAS.singleThreaded {
            Parallel.forEach(blocks) { index in
                let first = index * block, rows = Int32(min(T, first + block) - first)
                let ub = u + first * R, yb = y + first * N
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, Int32(R), Int32(K), 1, x + first * K, Int32(K), a, Int32(K), 0, ub, Int32(R))
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, rows, Int32(N), Int32(R), scale, ub, Int32(R), b, Int32(R), accumulate ? 1 : 0, yb,
                    Int32(N))
            }
        }
    }

    /// Accumulates dA and dB; writes dX (adds to it when `accumulate`) when dX is given.
    /// dY: [T, N]  x: [T, K]  u: [T, R]  dA: [R, K]  dB: [N, R]  dX: [T, K]  scratch dU: [T, R]
    /// dB += scale · dYᵀ·u;  dU = scale · dY·B;  dA += dUᵀ·x;  dX (+)= dU·A
    public static func backward(
        dY: UnsafePointer<Float>, x: UnsafePointer<Float>, u: UnsafePointer<Float>,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, scale: Float,
        dA: UnsafeMutablePointer<Float>, dB: UnsafeMutablePointer<Float>, dX: UnsafeMutablePointer<Float>?,
        dU: UnsafeMutablePointer<Float>, T: Int, K: Int, N: Int, R: Int, accumulate: Bool = true
    ) {
        let blocks = (T + block - 1) / block
        // Each block's dB partial [N, R], then its dA partial [R, K].
        let partialSize = N * R + R * K
        var partials = [Float].uninitialized(blocks * partialSize)
        partials.withUnsafeMutableBufferPointer { partials in
            let partials = partials.baseAddress!
            BLAS.singleThreaded {
                Parallel.forEach(blocks) { index in
                    let first = index * block, rows = Int32(min(T, first + block) - first)
                    let dYb = dY + first * N, xb = x + first * K, ub = u + first * R, dUb = dU + first * R
                    let dBPartial = partials + index * partialSize, dAPartial = dBPartial + N * R
                    let n = Int32(N), k = Int32(K), r = Int32(R)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, r, rows, scale, dYb, n, ub, r, 0, dBPartial, r)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, r, n, scale, dYb, n, b, r, 0, dUb, r)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, k, rows, 1, dUb, r, xb, k, 0, dAPartial, k)
                    if let dX {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, k, r, 1, dUb, r, a, k, accumulate ? 1 : 0, dX + first * K, k)
                    }
                }
            }
            for index in 0..<blocks {
                let dBPartial = partials + index * partialSize, dAPartial = dBPartial + N * R
                for i in 0..<(N * R) { dB[i] += dBPartial[i] }
                for i in 0..<(R * K) { dA[i] += dAPartial[i] }
            }
        }
    }
}
