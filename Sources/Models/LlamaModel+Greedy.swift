import Kernels

/// What a forward pass gives a sequence for its next token.
public enum StepOutput: Sendable, Equatable {
    /// [V]
    case logits([Float])
    /// The next token of a sequence that decodes greedily, found without its logits.
    case token(Int)
}

extension LlamaModel {
    /// `decodeStep`, where the rows marked `greedy` need only their next token, the first
    /// largest logit: with the head's `ArgmaxScreen` they get it without computing their logits
    /// (the same token the logits would give); other rows get their logits, as from
    /// `decodeStep`.
    public func decodeStep(_ tokens: [Int], caches: [KVCache], adapters: [[LayerAdapters]?], greedy: [Bool]) throws(ModelError) -> [StepOutput] {
        try step(tokens.map { [$0] }, caches: caches, adapters: adapters, greedy: greedy)
    }

    /// Runs each sequence's next tokens, all sequences in one pass: a decode step's one token or
    /// a short prompt's chunk (up to `quantizedRowLimit` tokens, which `forward` runs the same
    /// way). Returns each sequence's output for the token after its chunk, exactly what
    /// `forward(chunk, cache:adapters:greedy:)` gives it alone. One chunk per cache.
    public func step(_ chunks: [[Int]], caches: [KVCache], adapters: [[LayerAdapters]?], greedy: [Bool]) throws(ModelError) -> [StepOutput] {
        precondition(
            caches.count == chunks.count && adapters.count == chunks.count && greedy.count == chunks.count, "one cache, adapter entry and greedy flag per chunk")
        precondition(Set(caches.map(ObjectIdentifier.init)).count == caches.count, "one chunk per cache")
        guard chunks.allSatisfy({ !$0.isEmpty }) else { throw .format("no tokens to run") }
        let C = config.hiddenSize
        let residual = try rowLayers(
            chunks.flatMap { $0 }, caches: chunks.indices.flatMap { Array(repeating: caches[$0], count: chunks[$0].count) },
            adapters: chunks.indices.flatMap { Array(repeating: adapters[$0], count: chunks[$0].count) })
        var last: [Float] = [], end = 0
        for chunk in chunks {
            end += chunk.count
            last += residual[((end - 1) * C)..<(end * C)]
        }
        return nextOutputs(finalNorm(last, rows: chunks.count), greedy: greedy)
    }

    /// `forward` with `.last` logits, or, when `greedy`, the next token as
    /// `decodeStep(_:caches:adapters:greedy:)` finds it. tokens: not empty
    public func forward(_ tokens: [Int], cache: KVCache, adapters: [LayerAdapters]? = nil, greedy: Bool) throws(ModelError) -> StepOutput {
        guard !tokens.isEmpty else { throw .format("no tokens to run") }
        let residual = try layers(tokens, cache: cache, adapters: adapters)
        return nextOutputs(finalNorm(Array(residual.suffix(config.hiddenSize)), rows: 1), greedy: [greedy])[0]
    }

    /// Each row's next-token output from its final-normed hidden state. normed: [rows, C]
    private func nextOutputs(_ normed: [Float], greedy: [Bool]) -> [StepOutput] {
        let C = config.hiddenSize, V = config.vocabSize
        var outputs = [StepOutput?](repeating: nil, count: greedy.count)
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
}
