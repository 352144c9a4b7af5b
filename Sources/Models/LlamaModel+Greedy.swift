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
        precondition(greedy.count == tokens.count, "one greedy flag per row")
        let residual = try decodeLayers(tokens, caches: caches, adapters: adapters)
        return nextOutputs(finalNorm(residual, rows: tokens.count), greedy: greedy)
    }

    /// `forward` with `.last` logits, or, when `greedy`, the next token as
    /// `decodeStep(_:caches:adapters:greedy:)` finds it. tokens: not empty
    public func forward(_ tokens: [Int], cache: KVCache, adapters: [LayerAdapters]? = nil, greedy: Bool) throws(ModelError) -> StepOutput {
        let C = config.hiddenSize
        guard !tokens.isEmpty else { throw .format("no tokens to run") }
        let residual = try layers(tokens, cache: cache, adapters: adapters)
        return nextOutputs(finalNorm(Array(residual.suffix(C)), rows: 1), greedy: [greedy])[0]
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
