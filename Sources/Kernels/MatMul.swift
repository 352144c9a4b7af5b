import CBLAS

/// Dense projections through OpenBLAS.
public enum MatMul {
    /// y = alpha · x · Wᵀ (+ y when `accumulate`).
    /// x: [T, K]  weight: [N, K] (HF `[out, in]`)  y: [T, N]
    public static func forward(
        _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        T: Int, K: Int, N: Int, accumulate: Bool = false, alpha: Float = 1
    ) {
        if T == 1 {
            cblas_sgemv(
                CblasRowMajor, CblasNoTrans, Int32(N), Int32(K), alpha, weight, Int32(K), x, 1, accumulate ? 1 : 0, y, 1)
        } else {
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(N), Int32(K),
                alpha, x, Int32(K), weight, Int32(K), accumulate ? 1 : 0, y, Int32(N))
        }
    }

    /// The input gradient of `forward`: dX (+)= dY · W. (No dW: base weights are frozen.)
    /// dY: [T, N]  weight: [N, K]  dX: [T, K]
    public static func backward(
        _ dY: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dX: UnsafeMutablePointer<Float>, T: Int, K: Int, N: Int,
        accumulate: Bool = true
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(K), Int32(N),
            1, dY, Int32(N), weight, Int32(K), accumulate ? 1 : 0, dX, Int32(K))
    }

    /// The triple loop `forward` must agree with (checked by the tests), in Double.
    public static func reference(_ x: [Float], _ weight: [Float], T: Int, K: Int, N: Int) -> [Float] {
        var y = [Float](repeating: 0, count: T * N)
        for t in 0..<T {
            for n in 0..<N {
                var sum: Double = 0
                for k in 0..<K { sum += Double(x[t * K + k]) * Double(weight[n * K + k]) }
                y[t * N + n] = Float(sum)
            }
        }
        return y
    }
}
