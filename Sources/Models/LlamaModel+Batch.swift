import Kernels

extension LlamaModel {
    /// One decode step for B independent sequences, each with its own cache and adapters (or
    /// none): row i continues `caches[i]` with `tokens[i]`. The weights are read once for all
    /// rows, and every row's logits equal, bit for bit, what
    /// `forward([tokens[i]], cache: caches[i], adapters: adapters[i])` returns alone.
    /// Returns [B, V].
    public func decodeStep(_ tokens: [Int], caches: [KVCache], adapters: [[LayerAdapters]?]) throws(ModelError) -> [Float] {
        let residual = try decodeLayers(tokens, caches: caches, adapters: adapters)
        return head(residual, rows: tokens.count, independentRows: true)
    }

    /// `decodeStep`, where the rows marked `greedy` need only their next token, the first
    /// largest logit: with the head's `ArgmaxScreen` they get it without computing their logits
    /// (the same token the logits would give); other rows get their logits, as from
    /// `decodeStep`.
    public func decodeStep(_ tokens: [Int], caches: [KVCache], adapters: [[LayerAdapters]?], greedy: [Bool]) throws(ModelError) -> [StepOutput] {
        precondition(greedy.count == tokens.count, "one greedy flag per row")
        let C = config.hiddenSize, V = config.vocabSize
        let normed = finalNorm(try decodeLayers(tokens, caches: caches, adapters: adapters), rows: tokens.count)
        var outputs = [StepOutput?](repeating: nil, count: tokens.count)
        let screened = greedy.indices.filter { greedy[$0] }
        if let screen = weights.argmaxScreen, !screened.isEmpty {
            let x = screened.flatMap { normed[($0 * C)..<(($0 + 1) * C)] }
            for (row, token) in zip(screened, screen.argmax(x, T: screened.count)) { outputs[row] = token.map { .token($0) } }
        }
        let rest = outputs.indices.filter { outputs[$0] == nil }
        if !rest.isEmpty {
            let logits = logits(rest.flatMap { normed[($0 * C)..<(($0 + 1) * C)] }, rows: rest.count, independentRows: true)
            for (i, row) in rest.enumerated() { outputs[row] = .logits(Array(logits[(i * V)..<((i + 1) * V)])) }
        }
        return outputs.map { $0! }
    }

    /// The decoder stack for one decode step: [B, C], the residual stream after the last layer.
    private func decodeLayers(_ tokens: [Int], caches: [KVCache], adapters: [[LayerAdapters]?]) throws(ModelError) -> [Float] {
        let config = config
        let B = tokens.count
        let H = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        precondition(caches.count == B && adapters.count == B, "one cache and one adapter entry per row")
        guard B > 0 else { return [] }
        try checkTokens(tokens)
        for (row, cache) in caches.enumerated() {
            guard cache.count < cache.capacity else { throw .contextOverflow(needed: cache.count + 1, contextLength: cache.capacity) }
            try checkAdapters(adapters[row])
        }
        var residual = embed(tokens)
        let pasts = caches.map(\.count)
        let span = (pasts.max() ?? 0) + 1
        var scores = [Float](repeating: 0, count: B * H * span)
        runLayers(&residual, rows: B, positions: pasts, adapters: .perRow(adapters), saving: nil, quantizedWeights: true) { l, _, k, v, attnOut, q in
            let keys = caches.map { $0.keys(l) }, values = caches.map { $0.values(l) }
            for row in 0..<B {
                k.withUnsafeBufferPointer { (keys[row] + pasts[row] * Hkv * D).update(from: $0.baseAddress! + row * Hkv * D, count: Hkv * D) }
                v.withUnsafeBufferPointer { (values[row] + pasts[row] * Hkv * D).update(from: $0.baseAddress! + row * Hkv * D, count: Hkv * D) }
            }
            // Every row's heads in one parallel pass: a pass per row costs a dispatch each.
            let perTask = Attention.decodeHeadsPerTask(rows: B, H: H, Hkv: Hkv), tasksPerRow = H / perTask
            q.withUnsafeBufferPointer { q in
                attnOut.withUnsafeMutableBufferPointer { out in
                    scores.withUnsafeMutableBufferPointer { scores in
                        Parallel.forEach(B * tasksPerRow) { task in
                            let row = task / tasksPerRow, first = task % tasksPerRow * perTask
                            Attention.decodeHeads(
                                first, count: perTask, q: q.baseAddress! + row * H * D, kCache: keys[row], vCache: values[row],
                                out: out.baseAddress! + row * H * D, scores: scores.baseAddress! + (row * H + first) * span,
                                S: pasts[row] + 1, H: H, Hkv: Hkv, D: D)
                        }
                    }
                }
            }
        }
        for cache in caches { cache.advance(by: 1) }
        return residual
    }
}

/// What a decode step gives a row.
public enum StepOutput: Sendable, Equatable {
    /// [V]
    case logits([Float])
    /// The next token of a greedy row, found without its logits.
    case token(Int)
}
