import CKernels
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
    /// cos and sin of every angle for positions below `tablePositions`: [positions, D/2] each.
    private let cosTable: [Float], sinTable: [Float]
    private let tablePositions: Int

    /// `maxPositions`: positions whose angles are tabulated once (the model's context length).
    public init(headDim: Int, base: Float, maxPositions: Int = 0) {
        self.headDim = headDim
        self.base = base
        // Same expression as transformers' `1 / base ** (arange(0, D, 2) / D)`, evaluated in Double
        // then rounded like its float32 tensor, so angles match at long positions.
        let inverseFrequencies = (0..<(headDim / 2)).map { i in
            Double(Float(1 / pow(Double(base), Double(2 * i) / Double(headDim))))
        }
        self.inverseFrequencies = inverseFrequencies
        tablePositions = maxPositions
        var cosTable = [Float](repeating: 0, count: maxPositions * headDim / 2), sinTable = cosTable
        for position in 0..<maxPositions {
            for i in 0..<(headDim / 2) {
                let angle = Self.angle(position, inverseFrequencies[i])
                cosTable[position * headDim / 2 + i] = Float(cos(angle))
                sinTable[position * headDim / 2 + i] = Float(sin(angle))
            }
        }
        self.cosTable = cosTable
        self.sinTable = sinTable
    }

    /// transformers computes the angle in float32 (freqs = pos * inv_freq) before cos/sin.
    private static func angle(_ position: Int, _ inverseFrequency: Double) -> Double {
        Double(Float(position) * Float(inverseFrequency))
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
        // Raw buffers throughout: per-call arrays and checked indexing cost more than the rotation
        // itself in a decode step (6 µs a call for 8 rows).
        cosTable.withUnsafeBufferPointer { cosTable in
            sinTable.withUnsafeBufferPointer { sinTable in
                Parallel.forRanges(T, minimumPerTask: 64) { rows in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * half) { angles in
                        let c = angles.baseAddress!, s = c + half
                        for t in rows {
                            let position = positions[t], v = x + t * heads * headDim
                            if position < tablePositions && direction == 1 {
                                vm_rope_heads(v, cosTable.baseAddress! + position * half, sinTable.baseAddress! + position * half, Int32(half), Int32(heads))
                                continue
                            }
                            for i in 0..<half {
                                if position < tablePositions {
                                    c[i] = cosTable[position * half + i]
                                    s[i] = direction * sinTable[position * half + i]
                                } else {
                                    let angle = Self.angle(position, inverseFrequencies[i])
                                    c[i] = Float(cos(angle))
                                    s[i] = direction * Float(sin(angle))
                                }
                            }
                            vm_rope_heads(v, c, s, Int32(half), Int32(heads))
                        }
                    }
                }
            }
        }
    }
}
