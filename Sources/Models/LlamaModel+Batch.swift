import Kernels

extension LlamaModel {
    /// One decode step for B independent sequences, each with its own cache and adapters (or
    /// none): row i continues `caches[i]` with `tokens[i]`. The weights are read once for all
    /// rows, and every row's logits equal, bit for bit, what
    /// `forward([tokens[i]], cache: caches[i], adapters: adapters[i])` returns alone.
    /// Returns [B, V].
    public func decodeStep(_ tokens: [Int], caches: [KVCache], adapters: [[LayerAdapters]?]) throws(ModelError) -> [Float] {
        let residual = try rowLayers(tokens, caches: caches, adapters: adapters)
        return head(residual, rows: tokens.count, independentRows: true)
    }

    /// The decoder stack over rows of independent sequences: row i runs `tokens[i]` continuing
    /// `caches[i]` with `adapters[i]`. Rows of one sequence (the same cache, the same adapters)
    /// follow each other in order, at consecutive positions, as a short prompt's chunk does.
    /// Every row is computed alone (its own attention over its sequence's cache, its own LoRA
    /// delta), so its result does not depend on the other rows. Returns [rows, C], the residual
    /// stream after the last layer.
    func rowLayers(_ tokens: [Int], caches: [KVCache], adapters: [[LayerAdapters]?]) throws(ModelError) -> [Float] {
        let config = config
        let B = tokens.count
        let H = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        precondition(caches.count == B && adapters.count == B, "one cache and one adapter entry per row")
        guard B > 0 else { return [] }
        try checkTokens(tokens)
        var positions: [Int] = []
        var added: [ObjectIdentifier: Int] = [:]
        for (row, cache) in caches.enumerated() {
            let earlier = added[ObjectIdentifier(cache), default: 0]
            guard cache.count + earlier < cache.capacity else {
                throw .contextOverflow(needed: cache.count + earlier + 1, contextLength: cache.capacity)
            }
            if earlier == 0 { try checkAdapters(adapters[row]) }
            positions.append(cache.count + earlier)
            added[ObjectIdentifier(cache)] = earlier + 1
        }
        var residual = embed(tokens)
        let span = (positions.max() ?? 0) + 1
        var scores = [Float](repeating: 0, count: B * H * span)
        runLayers(&residual, rows: B, positions: positions, adapters: .perRow(adapters), saving: nil, quantizedWeights: true) { l, _, k, v, attnOut, q in
            let keys = caches.map { $0.keys(l) }, values = caches.map { $0.values(l) }, headStrides = caches.map(\.headStride)
            k.withUnsafeBufferPointer { k in
                v.withUnsafeBufferPointer { v in
                    for row in 0..<B {
                        caches[row].store(layer: l, keys: k.baseAddress! + row * Hkv * D, values: v.baseAddress! + row * Hkv * D, rows: 1, at: positions[row])
                    }
                }
            }
            // Every row's heads in one parallel pass (a pass per row costs a dispatch each), a task
            // per (row, key/value group): the group's cached rows are then read once for all its
            // heads, where a task per head read them once per head.
            let perTask = H / Hkv, tasksPerRow = Hkv
            q.withUnsafeBufferPointer { q in
                attnOut.withUnsafeMutableBufferPointer { out in
                    scores.withUnsafeMutableBufferPointer { scores in
                        Parallel.forEach(B * tasksPerRow) { task in
                            let row = task / tasksPerRow, first = task % tasksPerRow * perTask
                            Attention.decodeHeads(
                                first, count: perTask, q: q.baseAddress! + row * H * D, kCache: keys[row], vCache: values[row], headStride: headStrides[row],
                                out: out.baseAddress! + row * H * D, scores: scores.baseAddress! + (row * H + first) * span,
                                S: positions[row] + 1, H: H, Hkv: Hkv, D: D)
                        }
                    }
                }
            }
        }
        var advanced: Set<ObjectIdentifier> = []
        for cache in caches where advanced.insert(ObjectIdentifier(cache)).inserted {
            cache.advance(by: added[ObjectIdentifier(cache)]!)
        }
        return residual
    }
}
