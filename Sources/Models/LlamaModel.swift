import Kernels

/// A Llama decoder over frozen weights: embeddings, `L` × (RMSNorm → attention → residual →
/// RMSNorm → SwiGLU MLP → residual), final RMSNorm, head.
public final class LlamaModel: Sendable {
    public let weights: LlamaWeights
    public let rope: RoPE
    public var config: LlamaConfig { weights.config }

    public init(weights: LlamaWeights) {
        self.weights = weights
        rope = RoPE(headDim: weights.config.headDim, base: weights.config.ropeTheta)
    }

    public enum Logits: Sendable {
        /// Only the last position's row: what generation needs.
        case last
        /// Every position: what scoring and the fixtures need.
        case all
    }

    /// Runs `tokens` at the positions following those already in `cache`, appends their keys and
    /// values to it, and returns logits: [V] for `.last`, [T, V] for `.all`.
    public func forward(_ tokens: [Int], cache: KVCache, logits mode: Logits = .last) throws(ModelError) -> [Float] {
        let config = config
        let T = tokens.count, C = config.hiddenSize, F = config.intermediateSize, V = config.vocabSize
        let H = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        let past = cache.count
        guard T > 0 else { return [] }
        guard past + T <= cache.capacity else { throw .contextOverflow(needed: past + T, contextLength: cache.capacity) }
        for id in tokens where id < 0 || id >= V { throw .tokenOutOfRange(id: id, vocabularySize: V) }

        // Activations, named for the op that produced them; all [T, ·].
        var residual = [Float](repeating: 0, count: T * C)
        var normed = [Float](repeating: 0, count: T * C)
        var q = [Float](repeating: 0, count: T * H * D)
        var k = [Float](repeating: 0, count: T * Hkv * D)
        var v = [Float](repeating: 0, count: T * Hkv * D)
        var attnOut = [Float](repeating: 0, count: T * H * D)
        var gate = [Float](repeating: 0, count: T * F)
        var up = [Float](repeating: 0, count: T * F)
        var scores = [Float](repeating: 0, count: (T > 1 ? T : H) * (past + T))
        let positions = (past..<(past + T)).map { $0 }

        weights.tokenEmbedding.withUnsafeBufferPointer { table in
            for (t, id) in tokens.enumerated() {
                residual.withUnsafeMutableBufferPointer { r in
                    (r.baseAddress! + t * C).update(from: table.baseAddress! + id * C, count: C)
                }
            }
        }

        for (l, layer) in weights.layers.enumerated() {
            // Attention block.
            RMSNorm.forward(residual, weight: layer[.attnNorm], out: &normed, T: T, C: C, eps: config.rmsNormEps)
            project(normed, layer, .q, &q, T: T, K: C, N: H * D)
            project(normed, layer, .k, &k, T: T, K: C, N: Hkv * D)
            project(normed, layer, .v, &v, T: T, K: C, N: Hkv * D)
            rope.forward(&q, positions: positions, T: T, heads: H)
            rope.forward(&k, positions: positions, T: T, heads: Hkv)
            cache.keys[l].withUnsafeMutableBufferPointer { keys in
                (keys.baseAddress! + past * Hkv * D).update(from: k, count: T * Hkv * D)
            }
            cache.values[l].withUnsafeMutableBufferPointer { values in
                (values.baseAddress! + past * Hkv * D).update(from: v, count: T * Hkv * D)
            }
            Attention.forward(
                q: q, kCache: cache.keys[l], vCache: cache.values[l], out: &attnOut, scratch: &scores,
                T: T, past: past, H: H, Hkv: Hkv, D: D)
            project(attnOut, layer, .o, &residual, T: T, K: H * D, N: C, accumulate: true)

            // MLP block.
            RMSNorm.forward(residual, weight: layer[.ffnNorm], out: &normed, T: T, C: C, eps: config.rmsNormEps)
            project(normed, layer, .gate, &gate, T: T, K: C, N: F)
            project(normed, layer, .up, &up, T: T, K: C, N: F)
            SwiGLU.forward(gate: gate, up: up, out: &gate, count: T * F)
            project(gate, layer, .down, &residual, T: T, K: F, N: C, accumulate: true)
        }
        cache.advance(by: T)

        let rows = mode == .last ? 1 : T
        let first = T - rows
        var finalNormed = [Float](repeating: 0, count: rows * C)
        residual.withUnsafeBufferPointer { r in
            RMSNorm.forward(r.baseAddress! + first * C, weight: weights.outputNorm, out: &finalNormed, T: rows, C: C, eps: config.rmsNormEps)
        }
        var logits = [Float](repeating: 0, count: rows * V)
        if rows == 1, let head = weights.quantizedHead {
            head.forward(finalNormed, &logits)
        } else {
            MatMul.forward(finalNormed, weights.head, &logits, T: rows, K: C, N: V)
        }
        return logits
    }

    /// y (+)= x · Wᵀ. A single row reads the quantized blocks when the file had them (decode is
    /// bound by weight bytes read); several rows use sgemm on the Float32 weights (compute-bound).
    /// x: [T, K]  y: [T, N]
    private func project(
        _ x: [Float], _ layer: LayerWeights, _ tensor: LayerTensor, _ y: inout [Float],
        T: Int, K: Int, N: Int, accumulate: Bool = false
    ) {
        guard T == 1, let quantized = layer.quantized(tensor) else {
            MatMul.forward(x, layer[tensor], &y, T: T, K: K, N: N, accumulate: accumulate)
            return
        }
        if accumulate {
            var product = [Float](repeating: 0, count: N)
            quantized.forward(x, &product)
            for n in 0..<N { y[n] += product[n] }
        } else {
            quantized.forward(x, &y)
        }
    }
}
