import Kernels

extension LlamaModel {
    /// One decode step for B independent sequences, each with its own cache and adapters (or
    /// none): row i continues `caches[i]` with `tokens[i]`. The weights are read once for all
    /// rows, and every row's logits equal, bit for bit, what
    /// `forward([tokens[i]], cache: caches[i], adapters: adapters[i])` returns alone.
    /// Returns [B, V].
    public func decodeStep(_ tokens: [Int], caches: [KVCache], adapters: [[LayerAdapters]?]) throws(ModelError) -> [Float] {
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
            for (row, cache) in caches.enumerated() {
                let past = pasts[row]
                cache.keys[l].withUnsafeMutableBufferPointer { keys in
                    k.withUnsafeBufferPointer { (keys.baseAddress! + past * Hkv * D).update(from: $0.baseAddress! + row * Hkv * D, count: Hkv * D) }
                }
                cache.values[l].withUnsafeMutableBufferPointer { values in
                    v.withUnsafeBufferPointer { (values.baseAddress! + past * Hkv * D).update(from: $0.baseAddress! + row * Hkv * D, count: Hkv * D) }
                }
            }
            // Every (row, head) pair in one parallel pass: a pass per row costs a dispatch each.
            q.withUnsafeBufferPointer { q in
                attnOut.withUnsafeMutableBufferPointer { out in
                    scores.withUnsafeMutableBufferPointer { scores in
                        Parallel.forEach(B * H) { task in
                            let row = task / H, cache = caches[row]
                            cache.keys[l].withUnsafeBufferPointer { keys in
                                cache.values[l].withUnsafeBufferPointer { values in
                                    Attention.decodeHead(
                                        task % H, q: q.baseAddress! + row * H * D, kCache: keys.baseAddress!, vCache: values.baseAddress!,
                                        out: out.baseAddress! + row * H * D, scores: scores.baseAddress! + task * span, S: pasts[row] + 1,
                                        H: H, Hkv: Hkv, D: D)
                                }
                            }
                        }
                    }
                }
            }
        }
        for cache in caches { cache.advance(by: 1) }
        return head(residual, rows: B, independentRows: true)
    }
}
