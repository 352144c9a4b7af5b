import Kernels

/// A Llama decoder over frozen weights: embeddings, `L` × (RMSNorm → attention → residual →
/// RMSNorm → SwiGLU MLP → residual), final RMSNorm, head. LoRA adapters, when given, add their
/// low-rank delta to each adapted projection without touching the base weights.
public final class LlamaModel: Sendable {
    public let weights: LlamaWeights
    public let rope: RoPE
    public var config: LlamaConfig { weights.config }

    public init(weights: LlamaWeights) {
        self.weights = weights
        rope = RoPE(headDim: weights.config.headDim, base: weights.config.ropeTheta, maxPositions: weights.config.maxPositionEmbeddings)
    }

    public enum Logits: Sendable {
        /// Only the last position's row: what generation needs.
        case last
        /// Every position: what scoring and the fixtures need.
        case all
    }

    /// Runs `tokens` at the positions following those already in `cache`, appends their keys and
    /// values to it, and returns logits: [V] for `.last`, [T, V] for `.all`.
    /// adapters: one `LayerAdapters` per layer, or nil for the base model.
    public func forward(
        _ tokens: [Int], cache: KVCache, adapters: [LayerAdapters]? = nil, logits mode: Logits = .last
    ) throws(ModelError) -> [Float] {
        let C = config.hiddenSize, T = tokens.count
        let residual = try layers(tokens, cache: cache, adapters: adapters)
        let rows = mode == .last ? min(1, T) : T
        return head(Array(residual[((T - rows) * C)...]), rows: rows, independentRows: false)
    }

    /// The decoder stack over `tokens`, continuing `cache`: [T, C], the residual stream after the
    /// last layer. Up to `quantizedRowLimit` tokens run as rows of `rowLayers`, exactly as they
    /// would in a step with other sequences (a server prefilling several prompts at once gives
    /// each the result it gets alone); longer prompts as one sequence, through sgemm on the
    /// Float32 weights and BLAS attention.
    func layers(_ tokens: [Int], cache: KVCache, adapters: [LayerAdapters]?) throws(ModelError) -> [Float] {
        let config = config
        let T = tokens.count
        guard T > Self.quantizedRowLimit else {
            return try rowLayers(tokens, caches: Array(repeating: cache, count: T), adapters: Array(repeating: adapters, count: T))
        }
        let H = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        let past = cache.count
        guard past + T <= cache.capacity else { throw .contextOverflow(needed: past + T, contextLength: cache.capacity) }
        try checkTokens(tokens)
        try checkAdapters(adapters)

        var residual = embed(tokens)
        var scores = [Float](repeating: 0, count: T * (past + T))
        runLayers(&residual, rows: T, positions: Array(past..<(past + T)), adapters: .shared(adapters), saving: nil) { l, _, k, v, attnOut, q in
            cache.store(layer: l, keys: k, values: v, rows: T, at: past)
            Attention.forward(
                q: q, kCache: cache.keys(l), vCache: cache.values(l), out: &attnOut, scratch: &scores,
                T: T, past: past, H: H, Hkv: Hkv, D: D, headStride: cache.headStride, rowStride: D)
        }
        cache.advance(by: T)
        return residual
    }

    /// Final norm and head over `rows` rows of the residual stream: [rows, V].
    func head(_ residual: [Float], rows: Int, independentRows: Bool) -> [Float] {
        logits(finalNorm(residual, rows: rows), rows: rows, independentRows: independentRows)
    }

    /// The final norm of `rows` rows of the residual stream: [rows, C].
    func finalNorm(_ residual: [Float], rows: Int) -> [Float] {
        let C = config.hiddenSize
        var normed = [Float](repeating: 0, count: rows * C)
        RMSNorm.forward(residual, weight: weights.outputNorm, out: &normed, T: rows, C: C, eps: config.rmsNormEps)
        return normed
    }

    /// The head's products for `rows` normed rows: [rows, V]. Rows of independent sequences,
    /// and up to `quantizedRowLimit` rows of one, read the quantized head as `project` reads
    /// the layers.
    func logits(_ normed: [Float], rows: Int, independentRows: Bool) -> [Float] {
        let C = config.hiddenSize, V = config.vocabSize
        var logits = [Float](repeating: 0, count: rows * V)
        if rows <= Self.quantizedRowLimit || independentRows, let head = weights.quantizedHead {
            head.forward(normed, &logits, T: rows)
        } else {
            MatMul.forward(normed, weights.head, &logits, T: rows, K: C, N: V)
        }
        return logits
    }

    // MARK: - Shared by inference and training

    func checkTokens(_ tokens: [Int]) throws(ModelError) {
        let V = config.vocabSize
        for id in tokens where id < 0 || id >= V { throw .tokenOutOfRange(id: id, vocabularySize: V) }
    }

    func checkAdapters(_ adapters: [LayerAdapters]?) throws(ModelError) {
        guard let adapters else { return }
        guard adapters.count == config.numHiddenLayers else {
            throw .format("adapters cover \(adapters.count) layers, the model has \(config.numHiddenLayers)")
        }
        for (l, layer) in adapters.enumerated() {
            for tensor in LayerTensor.projections {
                guard let pair = layer[tensor] else { continue }
                let shape = tensor.shape(config)
                guard pair.outFeatures == shape[0], pair.inFeatures == shape[1] else {
                    throw .format(
                        "adapter for layer \(l) \(tensor) is [\(pair.outFeatures) × \(pair.rank)]·[\(pair.rank) × \(pair.inFeatures)], the weight is \(shape)")
                }
            }
        }
    }

    /// [T, C] rows of the token embedding table.
    func embed(_ tokens: [Int]) -> [Float] {
        let C = config.hiddenSize
        var residual = [Float](repeating: 0, count: tokens.count * C)
        weights.tokenEmbedding.withUnsafeBufferPointer { table in
            residual.withUnsafeMutableBufferPointer { r in
                for (t, id) in tokens.enumerated() {
                    (r.baseAddress! + t * C).update(from: table.baseAddress! + id * C, count: C)
                }
            }
        }
        return residual
    }

    /// The decoder stack over `rows` activation rows. `attend(layer, saved, k, v, attnOut, q)`
    /// computes attention (from the cache for inference, per sequence for training). When
    /// `saved` is given, every activation backward needs is kept in it.
    /// `layers` runs part of the stack (a checkpointed backward recomputes one layer at a time).
    /// `quantizedWeights`: the projections read the quantized blocks when the file had them (see
    /// `project`); training and loss always use the Float32 weights.
    func runLayers(
        _ residual: inout [Float], rows N: Int, positions: [Int], adapters: ActiveAdapters, saving saved: TrainingActivations?,
        quantizedWeights: Bool = false, layers: Range<Int>? = nil,
        attend: (_ layer: Int, _ saved: TrainingActivations?, _ k: [Float], _ v: [Float], _ attnOut: inout [Float], _ q: [Float]) -> Void
    ) {
        let config = config
        let C = config.hiddenSize, F = config.intermediateSize
        let H = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        let eps = config.rmsNormEps
        // Activations, named for the op that produced them; all [N, ·].
        var attnNorm = [Float](repeating: 0, count: N * C)
        var ffnNorm = [Float](repeating: 0, count: N * C)
        var attnRstd = [Float](repeating: 0, count: N)
        var ffnRstd = attnRstd
        var q = [Float](repeating: 0, count: N * H * D)
        var k = [Float](repeating: 0, count: N * Hkv * D)
        var v = k
        var attnOut = q
        var gate = [Float](repeating: 0, count: N * F)
        var up = gate
        var swiglu = gate

        let range = layers ?? weights.layers.indices
        let keep = saved?.keepsEverything ?? false
        for l in range {
            let layer = weights.layers[l]
            if keep && l > range.lowerBound {
                // The previous layer's buffers now belong to `saved`; writing into them would
                // copy each first (copy-on-write), so take fresh ones that every op below fills.
                (attnNorm, ffnNorm, attnRstd, ffnRstd) = (.uninitialized(N * C), .uninitialized(N * C), .uninitialized(N), .uninitialized(N))
                (q, k, v, attnOut) = (.uninitialized(N * H * D), .uninitialized(N * Hkv * D), .uninitialized(N * Hkv * D), .uninitialized(N * H * D))
                (gate, up, swiglu) = (.uninitialized(N * F), .uninitialized(N * F), .uninitialized(N * F))
            }
            var lora = LoRAActivations()
            // Held only for training: a held copy makes the residual writes below copy it first.
            let input = saved == nil ? [] : residual
            if let saved, saved.checkpointed { saved.inputs.append(input) }

            // Attention block.
            RMSNorm.forward(residual, weight: layer[.attnNorm], out: &attnNorm, rstd: &attnRstd, T: N, C: C, eps: eps)
            let qkvDone = quantizedWeights && q.withUnsafeMutableBufferPointer { q in
                k.withUnsafeMutableBufferPointer { k in
                    v.withUnsafeMutableBufferPointer { v in
                        Self.quantizedProducts(attnNorm, layer, [(.q, q.baseAddress!), (.k, k.baseAddress!), (.v, v.baseAddress!)], T: N)
                    }
                }
            }
            project(attnNorm, layer, adapters, .q, &q, T: N, K: C, N: H * D, quantized: quantizedWeights, baseDone: qkvDone, saved: saved, layerIndex: l, lora: &lora)
            project(attnNorm, layer, adapters, .k, &k, T: N, K: C, N: Hkv * D, quantized: quantizedWeights, baseDone: qkvDone, saved: saved, layerIndex: l, lora: &lora)
            project(attnNorm, layer, adapters, .v, &v, T: N, K: C, N: Hkv * D, quantized: quantizedWeights, baseDone: qkvDone, saved: saved, layerIndex: l, lora: &lora)
            rope.forward(&q, positions: positions, T: N, heads: H)
            rope.forward(&k, positions: positions, T: N, heads: Hkv)
            attend(l, keep ? saved : nil, k, v, &attnOut, q)
            project(attnOut, layer, adapters, .o, &residual, T: N, K: H * D, N: C, accumulate: true, quantized: quantizedWeights, saved: saved, layerIndex: l, lora: &lora)
            let afterAttention = keep ? residual : []

            // MLP block.
            RMSNorm.forward(residual, weight: layer[.ffnNorm], out: &ffnNorm, rstd: &ffnRstd, T: N, C: C, eps: eps)
            let gateUpDone = quantizedWeights && gate.withUnsafeMutableBufferPointer { gate in
                up.withUnsafeMutableBufferPointer { up in
                    Self.quantizedProducts(ffnNorm, layer, [(.gate, gate.baseAddress!), (.up, up.baseAddress!)], T: N)
                }
            }
            project(ffnNorm, layer, adapters, .gate, &gate, T: N, K: C, N: F, quantized: quantizedWeights, baseDone: gateUpDone, saved: saved, layerIndex: l, lora: &lora)
            project(ffnNorm, layer, adapters, .up, &up, T: N, K: C, N: F, quantized: quantizedWeights, baseDone: gateUpDone, saved: saved, layerIndex: l, lora: &lora)
            SwiGLU.forward(gate: gate, up: up, out: &swiglu, count: N * F)
            project(swiglu, layer, adapters, .down, &residual, T: N, K: F, N: C, accumulate: true, quantized: quantizedWeights, saved: saved, layerIndex: l, lora: &lora)

            // Arrays are copy-on-write: keeping them costs nothing until the next layer writes.
            guard let saved, keep else { continue }
            saved.layers.append(
                LayerActivations(
                    input: input, attnNorm: attnNorm, attnRstd: attnRstd, q: q, k: k, v: v, attnOut: attnOut,
                    afterAttention: afterAttention, ffnNorm: ffnNorm, ffnRstd: ffnRstd, gate: gate, up: up, swiglu: swiglu,
                    lora: lora, probabilities: saved.pendingProbabilities))
        }
    }

    /// Up to this many rows of one sequence, `forward` runs them as rows (`rowLayers`), reading
    /// the quantized blocks rather than sgemm on the Float32 weights: sgemm reads and repacks 4
    /// bytes a weight per call, which a short prompt cannot amortize (the two paths are equal
    /// from 64 rows on).
    public static let quantizedRowLimit = 64

    /// The quantized base products of projections that share one input, in one parallel pass
    /// (`QuantizedMatrix.forward(_:x:T:)`); false, computing nothing, when a tensor has no blocks.
    private static func quantizedProducts(
        _ x: [Float], _ layer: LayerWeights, _ outputs: [(LayerTensor, UnsafeMutablePointer<Float>)], T: Int
    ) -> Bool {
        let products = outputs.compactMap { tensor, y in layer.quantized(tensor).map { QuantizedMatrix.Product($0, y) } }
        guard products.count == outputs.count else { return false }
        QuantizedMatrix.forward(products, x: x, T: T)
        return true
    }

    /// y (+)= x · Wᵀ + scale · (x·Aᵀ)·Bᵀ. Decode steps (one row, or rows of independent
    /// sequences) and short prompts read the quantized blocks when the file had them (bound by
    /// weight bytes read); longer prompts and training use sgemm on the Float32 weights
    /// (compute-bound, and the backward pass needs them). `baseDone`: y already holds x · Wᵀ
    /// (from `quantizedProducts`), so only the LoRA delta is added. x: [T, K]  y: [T, N]
    private func project(
        _ x: [Float], _ layer: LayerWeights, _ adapters: ActiveAdapters, _ tensor: LayerTensor, _ y: inout [Float],
        T: Int, K: Int, N: Int, accumulate: Bool = false, quantized useQuantized: Bool, baseDone: Bool = false, saved: TrainingActivations?,
        layerIndex: Int, lora: inout LoRAActivations
    ) {
        let quantized = useQuantized ? layer.quantized(tensor) : nil
        func base(accumulate: Bool) {
            guard !baseDone else { return }
            guard let quantized else {
                MatMul.forward(x, layer[tensor], &y, T: T, K: K, N: N, accumulate: accumulate)
                return
            }
            quantized.forward(x, &y, T: T, accumulate: accumulate)
        }
        switch adapters {
        case .shared(let shared):
            guard let pair = shared?[layerIndex][tensor] else {
                base(accumulate: accumulate)
                return
            }
            // With sgemm, LoRA's delta goes first: sgemm then adds the base product for free,
            // where writing it first would cost sgemm a pass zeroing y and LoRA a pass adding into it.
            let deltaFirst = quantized == nil && T > 1
            if !deltaFirst { base(accumulate: accumulate) }
            var input = x
            if let dropout = saved?.dropout {
                let mask = dropout.mask(layer: layerIndex, tensor: tensor, count: x.count)
                for i in input.indices { input[i] *= mask[i] }
                lora.masks[tensor.index] = mask
            }
            var u = [Float](repeating: 0, count: T * pair.rank)
            LowRank.forward(
                input, a: pair.a, b: pair.b, scale: pair.scale, u: &u, y: &y, T: T, K: K, N: N, R: pair.rank,
                accumulate: accumulate || !deltaFirst)
            lora.u[tensor.index] = u
            if deltaFirst { base(accumulate: true) }
        case .perRow(let rows):
            base(accumulate: accumulate)
            // Each row's delta is computed alone, exactly as a batch of one would compute it, so
            // the rows can run in parallel.
            let pairs = rows.map { $0?[layerIndex][tensor] }
            guard pairs.contains(where: { $0 != nil }) else { return }
            x.withUnsafeBufferPointer { x in
                y.withUnsafeMutableBufferPointer { y in
                    Parallel.forEach(pairs.count) { row in
                        guard let pair = pairs[row] else { return }
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: pair.rank) { u in
                            LowRank.forward(
                                x.baseAddress! + row * K, a: pair.a, b: pair.b, scale: pair.scale, u: u.baseAddress!,
                                y: y.baseAddress! + row * N, T: 1, K: K, N: N, R: pair.rank)
                        }
                    }
                }
            }
        }
    }
}

/// Which LoRA deltas a forward pass applies.
enum ActiveAdapters {
    /// The same adapters (or none) for every row: one sequence, or a training batch.
    case shared([LayerAdapters]?)
    /// Row i is its own sequence with its own adapters (a mixed-adapter decode step).
    case perRow([[LayerAdapters]?])
}
