/// Root-mean-square layer norm (Llama's `LlamaRMSNorm`): out = x / sqrt(mean(x²) + eps) · weight.
public enum RMSNorm {
    /// x, out: [T, C]  weight: [C]  rstd (saved for backward, optional): [T]
    public static func forward(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>? = nil, T: Int, C: Int, eps: Float
    ) {
        Parallel.forRanges(T, minimumPerTask: 64) { rows in
            for t in rows { forwardRow(x + t * C, weight, out + t * C, rstd.map { $0 + t }, C: C, eps: eps) }
        }
    }

    private static func forwardRow(
        _ row: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>?,
        C: Int, eps: Float
    ) {
        // Sum of squares in Double: C is small and this keeps the norm independent of order.
        var sum: Double = 0
        for c in 0..<C { sum += Double(row[c]) * Double(row[c]) }
        let scale = Float(1 / (sum / Double(C) + Double(eps)).squareRoot())
        rstd?.pointee = scale
        for c in 0..<C { o[c] = row[c] * scale * weight[c] }
    }

    /// Adds the input gradient; the weight is frozen, so there is no dWeight.
    /// dOut, x, dX: [T, C]  weight: [C]  rstd (from forward): [T]
    /// dx = rstd·(dOut⊙w) − rstd³/C · x · Σ(dOut⊙w⊙x)
    public static func backward(
        dOut: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        dX: UnsafeMutablePointer<Float>, T: Int, C: Int
    ) {
        Parallel.forRanges(T, minimumPerTask: 64) { rows in
            for t in rows { backwardRow(dOut + t * C, x + t * C, weight, rstd[t], dX + t * C, C: C) }
        }
    }

    private static func backwardRow(
        _ dy: UnsafePointer<Float>, _ row: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ r: Float,
        _ dx: UnsafeMutablePointer<Float>, C: Int
    ) {
        // Σ in Double, like the forward's sum of squares.
        var dot: Double = 0
        for c in 0..<C { dot += Double(dy[c] * weight[c]) * Double(row[c]) }
        let k = r * r * r * Float(dot / Double(C))
        for c in 0..<C { dx[c] += r * dy[c] * weight[c] - k * row[c] }
    }
}
