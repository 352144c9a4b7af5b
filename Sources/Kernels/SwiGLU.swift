import Foundation

/// Llama's gated MLP activation: out = silu(gate) · up, silu(x) = x · sigmoid(x).
public enum SwiGLU {
    /// gate, up, out: [T, F] (flattened count)
    public static func forward(
        gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int
    ) {
        for i in 0..<count {
            let g = gate[i]
            out[i] = g / (1 + expf(-g)) * up[i]
        }
    }
}
