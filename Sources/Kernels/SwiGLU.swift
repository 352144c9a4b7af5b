import Foundation

/// Llama's gated MLP activation: out = silu(gate) · up, silu(x) = x · sigmoid(x).
public enum SwiGLU {
    /// gate, up, out: [T, F] (flattened count)
    public static func forward(
        gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int
    ) {
        Parallel.forRanges(count) { range in
            for i in range {
                let g = gate[i]
                out[i] = g / (1 + expf(-g)) * up[i]
            }
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
            for i in range {
                let g = gate[i]
                let sigmoid = 1 / (1 + expf(-g))
                let silu = g * sigmoid
                dUp[i] = dOut[i] * silu
                dGate[i] = dOut[i] * up[i] * sigmoid * (1 + g * (1 - sigmoid))
            }
        }
    }
}
