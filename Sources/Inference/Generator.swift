import Models
import Tokenizers

/// Autoregressive generation: one batched prefill over the prompt, then one cached decode step
/// per new token.
public struct Generator {
    public let languageModel: LanguageModel

    public init(_ languageModel: LanguageModel) {
        self.languageModel = languageModel
    }

    public struct Result: Sendable {
        public var tokens: [Int]
        public var text: String
        public var stoppedAtStopToken: Bool
        /// Generation ended because prompt and answer filled the model's context, not at a stop
        /// token or `maxTokens`.
        public var stoppedAtContextLimit = false
        public var promptTokens: Int
    }

    /// Generates up to `maxTokens` after `prompt`. `onText` receives each piece of text as soon
    /// as it is complete UTF-8 and returns false to stop early. With `stopAtStopTokens` off,
    /// generation runs the full length (as transformers does when no EOS is set).
    /// adapters: the LoRA deltas to apply, one per layer (nil: the base model alone).
    public func generate(
        prompt: [Int], maxTokens: Int, sampling: SamplingParameters = SamplingParameters(), adapters: [LayerAdapters]? = nil,
        stopAtStopTokens: Bool = true, onText: (String) -> Bool = { _ in true }
    ) throws -> Result {
        let model = languageModel.model
        let capacity = min(model.config.maxPositionEmbeddings, prompt.count + maxTokens)
        guard !prompt.isEmpty else { throw ModelError.format("the prompt is empty") }
        guard prompt.count < model.config.maxPositionEmbeddings else {
            throw ModelError.contextOverflow(needed: prompt.count + 1, contextLength: model.config.maxPositionEmbeddings)
        }
        let cache = KVCache(config: model.config, capacity: capacity)
        var sampler = Sampler(sampling)
        var decoder = StreamingDecoder(tokenizer: languageModel.tokenizer)
        var next = try model.forward(prompt, cache: cache, adapters: adapters, greedy: sampler.isGreedy)
        var result = Result(tokens: [], text: "", stoppedAtStopToken: false, promptTokens: prompt.count)
        while result.tokens.count < maxTokens {
            let token = sampler.next(next)
            result.tokens.append(token)
            if stopAtStopTokens && languageModel.stopIds.contains(token) {
                result.stoppedAtStopToken = true
                break
            }
            let piece = try decoder.append(token)
            result.text += piece
            if !piece.isEmpty && !onText(piece) { break }
            guard result.tokens.count < maxTokens else { break }
            guard cache.count < cache.capacity else {
                result.stoppedAtContextLimit = true
                break
            }
            next = try model.decodeStep([token], caches: [cache], adapters: [adapters], greedy: [sampler.isGreedy])[0]
        }
        let rest = decoder.flush()
        if !rest.isEmpty {
            result.text += rest
            _ = onText(rest)
        }
        return result
    }
}
