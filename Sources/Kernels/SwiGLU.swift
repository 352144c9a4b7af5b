import CKernels

/// Llama's gated MLP activation: out = silu(gate) · up, silu(x) = x · sigmoid(x).
public enum SwiGLU {
    /// gate, up, out: [T, F] (flattened count)
    public static func forward(
        gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int
    ) {
        Parallel.forRanges(count) { range in
            vm_swiglu_forward(gate + range.lowerBound, up + range.lowerBound, out + range.lowerBound, range.count)
        }
    }

    /// Writes (not accumulates) the gradients of gate and up.
    /// gate, up, dOut, dGate, dUp: [T, F] (flattened count)
    /// silu'(g) = σ(g)·(1 + g·(1 − σ(g)))
    public static func backward(
        dOut: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
        dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int
    ) {
        Parallel.forRanges(count) { range in
            let i = range.lowerBound
            vm_swiglu_backward(dOut + i, gate + i, up + i, dGate + i, dUp + i, range.count)
        }
    }
}
