import CKernels

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
        // In C: Swift keeps a Double sum scalar, 5 µs for a decode step's 8 rows.
        let scale = vm_rms_norm_row(row, weight, o, Int32(C), eps)
        rstd?.pointee = scale
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
        let dot = doubleSum(C) { c in Double(dy[c] * weight[c]) * Double(row[c]) }
        let k = r * r * r * Float(dot / Double(C))
        for c in 0..<C { dx[c] += r * dy[c] * weight[c] - k * row[c] }
    }

    /// Σ term(c) for c in 0..<C, in Double (C is small, and Double keeps the result independent of
    /// the order), over four interleaved partial sums: one running sum is a chain of dependent
    /// additions, which held a decode step's norms to ~7 µs per 8 rows.
    @inline(__always)
    private static func doubleSum(_ C: Int, _ term: (Int) -> Double) -> Double {
        var s0: Double = 0, s1: Double = 0, s2: Double = 0, s3: Double = 0
        var c = 0
        while c + 4 <= C {
            s0 += term(c)
            s1 += term(c + 1)
            s2 += term(c + 2)
            s3 += term(c + 3)
            c += 4
        }
        while c < C {
            s0 += term(c)
            c += 1
        }
        return (s0 + s1) + (s2 + s3)
    }
}
