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
    /// finished rows leave the batch. Every result equals `generate` run alone on its request.
    public func generateBatch(_ requests: [GenerationRequest]) throws -> [Result] {
        let model = languageModel.model
        let contextLength = model.config.maxPositionEmbeddings
        var caches: [KVCache] = []
        var samplers: [Sampler] = []
        var outputs: [StepOutput] = []
        var results: [Result] = []
        var active: [Bool] = []
        for request in requests {
            guard !request.prompt.isEmpty else { throw ModelError.format("the prompt is empty") }
            guard request.prompt.count < contextLength else {
                throw ModelError.contextOverflow(needed: request.prompt.count + 1, contextLength: contextLength)
            }
            let cache = KVCache(config: model.config, capacity: min(contextLength, request.prompt.count + request.maxTokens))
            let sampler = Sampler(request.sampling)
            outputs.append(try model.forward(request.prompt, cache: cache, adapters: request.adapters, greedy: sampler.isGreedy))
            caches.append(cache)
            samplers.append(sampler)
            results.append(Result(tokens: [], text: "", stoppedAtStopToken: false, promptTokens: request.prompt.count))
            active.append(request.maxTokens > 0)
        }
        while active.contains(true) {
            var stepRows: [Int] = []
            for row in requests.indices where active[row] {
                let token = samplers[row].next(outputs[row])
                results[row].tokens.append(token)
                if requests[row].stopAtStopTokens && languageModel.stopIds.contains(token) {
                    results[row].stoppedAtStopToken = true
                    active[row] = false
                } else if results[row].tokens.count >= requests[row].maxTokens || caches[row].count >= caches[row].capacity {
                    active[row] = false
                } else {
                    stepRows.append(row)
                }
            }
            guard !stepRows.isEmpty else { break }
            let next = try model.decodeStep(
                stepRows.map { results[$0].tokens.last! }, caches: stepRows.map { caches[$0] }, adapters: stepRows.map { requests[$0].adapters },
                greedy: stepRows.map { samplers[$0].isGreedy })
            for (i, row) in stepRows.enumerated() { outputs[row] = next[i] }
        }
        for row in results.indices {
            let text = results[row].stoppedAtStopToken ? results[row].tokens.dropLast() : results[row].tokens[...]
            results[row].text = try languageModel.tokenizer.decode(Array(text))
        }
        return results
    }
}
