import CBLAS
import CKernels

/// The LoRA path of one adapted projection: y += scale · (x · Aᵀ) · Bᵀ, as PEFT's
/// `lora_B(lora_A(dropout(x))) * scaling`. A and B are the only trained parameters.
public enum LowRank {
    /// x: [T, K]  a: [R, K]  b: [N, R]  u (saved x·Aᵀ): [T, R]  y (accumulated): [T, N]
    public static func forward(
        _ x: UnsafePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, scale: Float,
        u: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, T: Int, K: Int, N: Int, R: Int
    ) {
        if T == 1 {
            // Decoding: a BLAS call per projection per token costs more than the arithmetic.
            vm_low_rank_row(x, a, b, scale, u, y, Int32(K), Int32(N), Int32(R))
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(R), Int32(K), 1, x, Int32(K), a, Int32(K), 0, u, Int32(R))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(N), Int32(R), scale, u, Int32(R), b, Int32(R), 1, y, Int32(N))
    }

    /// Accumulates dA, dB and (when given) dX.
    /// dY: [T, N]  x: [T, K]  u: [T, R]  dA: [R, K]  dB: [N, R]  dX: [T, K]  scratch dU: [T, R]
    /// dB += scale · dYᵀ·u;  dU = scale · dY·B;  dA += dUᵀ·x;  dX += dU·A
    public static func backward(
        dY: UnsafePointer<Float>, x: UnsafePointer<Float>, u: UnsafePointer<Float>,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, scale: Float,
        dA: UnsafeMutablePointer<Float>, dB: UnsafeMutablePointer<Float>, dX: UnsafeMutablePointer<Float>?,
        dU: UnsafeMutablePointer<Float>, T: Int, K: Int, N: Int, R: Int
    ) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(N), Int32(R), Int32(T), scale, dY, Int32(N), u, Int32(R), 1, dB, Int32(R))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(R), Int32(N), scale, dY, Int32(N), b, Int32(R), 0, dU, Int32(R))
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(R), Int32(K), Int32(T), 1, dU, Int32(R), x, Int32(K), 1, dA, Int32(K))
        if let dX {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(K), Int32(R), 1, dU, Int32(R), a, Int32(K), 1, dX, Int32(K))
        }
    }
}
