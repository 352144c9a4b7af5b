import Models
import Tokenizers

/// Autoregressive generation: one batched prefill over the prompt, then one cached decode step
/// per new token; what each token means for the sequence is `SequenceDecoder`'s.
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
    /// generation runs the full length (as transformers does when no EOS is set). With a
    /// `grammar`, only tokens that keep the text on the way to one of its documents are drawn.
    /// adapters: the LoRA deltas to apply, one per layer (nil: the base model alone).
    public func generate(
        prompt: [Int], maxTokens: Int, sampling: SamplingParameters = SamplingParameters(), adapters: [LayerAdapters]? = nil,
        stopAtStopTokens: Bool = true, grammar: JSONGrammar? = nil, onText: (String) -> Bool = { _ in true }
    ) throws -> Result {
        let model = languageModel.model
        let cache = try cache(for: prompt, maxTokens: maxTokens)
        var sequence = SequenceDecoder(
            languageModel: languageModel, maxTokens: maxTokens, sampling: sampling, stopAtStopTokens: stopAtStopTokens,
            constraint: grammar.map { JSONConstraint(grammar: $0, trie: TokenTrie(tokenizer: languageModel.tokenizer)) })
        var result = Result(tokens: [], text: "", stoppedAtStopToken: false, promptTokens: prompt.count)
        var next = try model.forward(prompt, cache: cache, adapters: adapters, greedy: !sequence.needsLogits)
        guard maxTokens > 0 else { return result }
        while true {
            let step = try sequence.advance(next, cacheFull: cache.count >= cache.capacity)
            result.tokens.append(step.token)
            result.text += step.text
            let more = step.text.isEmpty || onText(step.text)
            if let finish = step.finish {
                result.stoppedAtStopToken = finish == .stopToken
                result.stoppedAtContextLimit = finish == .contextLimit
                break
            }
            guard more else { break }
            next = try model.decodeStep([step.token], caches: [cache], adapters: [adapters], greedy: [!sequence.needsLogits])[0]
        }
        return result
    }

    /// A cache for `prompt` and up to `maxTokens` more, within the model's context; a prompt
    /// that is empty or leaves no room for one token is refused.
    func cache(for prompt: [Int], maxTokens: Int) throws(ModelError) -> KVCache {
        let config = languageModel.model.config
        guard !prompt.isEmpty else { throw .format("the prompt is empty") }
        guard prompt.count < config.maxPositionEmbeddings else { throw .contextOverflow(needed: prompt.count + 1, contextLength: config.maxPositionEmbeddings) }
        return KVCache(config: config, capacity: min(config.maxPositionEmbeddings, prompt.count + maxTokens))
    }
}
