import Foundation

/// Rotary position embedding in Hugging Face's "rotate-half" form: within each head of width D,
/// element i is rotated with element i + D/2 by angle pos · base^(-2i/D).
///
/// GGUF files converted from Hugging Face checkpoints permute the rows of attn_q/attn_k so that
/// llama.cpp can rotate adjacent pairs instead; the GGUF loader undoes that permutation
/// (`TensorNames.unpermuteRows`), so every weight in this codebase is in HF row order and this
/// is the only RoPE.
public struct RoPE: Sendable {
    public let headDim: Int
    public let base: Float
    private let inverseFrequencies: [Double]

    public init(headDim: Int, base: Float) {
        self.headDim = headDim
        self.base = base
        // Same expression as transformers' `1 / base ** (arange(0, D, 2) / D)`, evaluated in Double
        // then rounded like its float32 tensor, so angles match at long positions.
        inverseFrequencies = (0..<(headDim / 2)).map { i in
            Double(Float(1 / pow(Double(base), Double(2 * i) / Double(headDim))))
        }
    }

    /// Rotates in place. x: [T, heads, D]; positions: [T]
    public func forward(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int>, T: Int, heads: Int) {
        rotate(x, positions: positions, T: T, heads: heads, direction: 1)
    }

    /// The rotation is orthogonal, so the gradient is rotated back by the opposite angle, in place.
    /// dX: [T, heads, D]; positions: [T]
    public func backward(_ dX: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int>, T: Int, heads: Int) {
        rotate(dX, positions: positions, T: T, heads: heads, direction: -1)
    }

    private func rotate(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int>, T: Int, heads: Int, direction: Float) {
        let half = headDim / 2
        for t in 0..<T {
            let position = Double(positions[t])
            for i in 0..<half {
                // transformers computes the angle in float32 (freqs = pos * inv_freq) before cos/sin.
                let angle = Double(Float(position) * Float(inverseFrequencies[i]))
                let c = Float(cos(angle)), s = direction * Float(sin(angle))
                for h in 0..<heads {
                    let v = x + (t * heads + h) * headDim
                    let a = v[i], b = v[i + half]
                    v[i] = a * c - b * s
                    v[i + half] = b * c + a * s
                }
            }
        }
    }
}
