import Models
import Tokenizers

/// One row of a batched generation: its prompt, its own adapters (or none) and sampling.
public struct GenerationRequest: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var adapters: [LayerAdapters]?
    public var stopAtStopTokens: Bool

    public init(
        prompt: [Int], maxTokens: Int, sampling: SamplingParameters = SamplingParameters(), adapters: [LayerAdapters]? = nil,
        stopAtStopTokens: Bool = true
    ) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.adapters = adapters
        self.stopAtStopTokens = stopAtStopTokens
    }
}

extension Generator {
    /// Generates for every request together: each prompt is prefilled on its own, then all
    /// unfinished rows advance in one forward step per token, each with its own adapters;
    /// finished rows leave the batch. Every result equals `generate` run alone on its request
    /// (each row's tokens are taken by the same `SequenceDecoder`).
    public func generateBatch(_ requests: [GenerationRequest]) throws -> [Result] {
        let model = languageModel.model
        var caches: [KVCache] = [], sequences: [SequenceDecoder] = [], outputs: [StepOutput] = [], results: [Result] = []
        for request in requests {
            let cache = try cache(for: request.prompt, maxTokens: request.maxTokens)
            let sequence = SequenceDecoder(
                languageModel: languageModel, maxTokens: request.maxTokens, sampling: request.sampling, stopAtStopTokens: request.stopAtStopTokens)
            outputs.append(try model.forward(request.prompt, cache: cache, adapters: request.adapters, greedy: !sequence.needsLogits))
            caches.append(cache)
            sequences.append(sequence)
            results.append(Result(tokens: [], text: "", stoppedAtStopToken: false, promptTokens: request.prompt.count))
        }
        var active = requests.indices.filter { requests[$0].maxTokens > 0 }
        while !active.isEmpty {
            for row in active {
                let step = try sequences[row].advance(outputs[row], cacheFull: caches[row].count >= caches[row].capacity)
                results[row].tokens.append(step.token)
                results[row].text += step.text
                results[row].stoppedAtStopToken = step.finish == .stopToken
                results[row].stoppedAtContextLimit = step.finish == .contextLimit
            }
            active.removeAll { sequences[$0].finish != nil }
            guard !active.isEmpty else { break }
            let next = try model.decodeStep(
                active.map { results[$0].tokens.last! }, caches: active.map { caches[$0] }, adapters: active.map { requests[$0].adapters },
                greedy: active.map { !sequences[$0].needsLogits })
            for (i, row) in active.enumerated() { outputs[row] = next[i] }
        }
        return results
    }
}
