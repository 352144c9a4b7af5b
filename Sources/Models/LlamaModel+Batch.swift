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

    /// The decoder stack for one decode step: [B, C], the residual stream after the last layer.
    func decodeLayers(_ tokens: [Int], caches: [KVCache], adapters: [[LayerAdapters]?]) throws(ModelError) -> [Float] {
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
