import Models
import Tokenizers

/// One sequence's side of generation, the same for `Generator.generate`, `generateBatch` and
/// the server's `InferenceEngine`: the next token from a step's output (sampled, within a
/// grammar's mask when there is one), its log-probability, the text it completes (held back
/// inside a character, or while it may be the start of a stop string), and whether the sequence
/// ends there. The drivers only run the model's steps.
public struct SequenceDecoder {
    public enum Finish: Sendable, Equatable {
        case stopToken
        case stopSequence
        case maxTokens
        /// Prompt and answer filled the sequence's cache (the model's context at most).
        case contextLimit
    }

    /// What one token gives.
    public struct Advance {
        public var token: Int
        /// Text now complete (possibly empty); at a finish, everything that was held back too.
        public var text: String
        /// Log-probabilities of the tokens this text completes, when asked for.
        public var logprobs: [TokenLogprob]
        public var finish: Finish?
    }

    /// Every token taken, a final stop token included.
    public private(set) var tokens: [Int] = []
    public private(set) var finish: Finish?
    private var sampler: Sampler
    private var decoder: StreamingDecoder
    private var stops: StopSequenceMatcher
    private var constraint: JSONConstraint?
    private var logprobs: [TokenLogprob] = []
    private let maxTokens: Int
    private let topLogprobs: Int?
    private let stopIds: Set<Int>

    /// `stopAtStopTokens` off: the model's stop tokens are text like any other (as transformers
    /// generates when no EOS is set). `logprobs`: report each token's log-probability with this
    /// many alternatives.
    public init(
        languageModel: LanguageModel, maxTokens: Int, sampling: SamplingParameters, stopSequences: [String] = [], stopAtStopTokens: Bool = true,
        constraint: JSONConstraint? = nil, logprobs: Int? = nil
    ) {
        self.maxTokens = maxTokens
        sampler = Sampler(sampling)
        decoder = StreamingDecoder(tokenizer: languageModel.tokenizer)
        stops = StopSequenceMatcher(stopSequences)
        self.constraint = constraint
        topLogprobs = logprobs
        stopIds = stopAtStopTokens ? languageModel.stopIds : []
    }

    /// Whether steps must compute this sequence's logits rather than only find the largest.
    public var needsLogits: Bool { !sampler.isGreedy || constraint != nil || topLogprobs != nil }

    /// Tokens of the completion: a stop token is not one (OpenAI counts it neither).
    public var completionTokens: Int { tokens.count - (finish == .stopToken ? 1 : 0) }

    /// Takes the next token from `output`, the step's output for this sequence. `cacheFull`:
    /// its cache has no room for another position.
    public mutating func advance(_ output: StepOutput, cacheFull: Bool) throws(TokenizerError) -> Advance {
        let token = sampler.next(output, allowed: constraint?.allowedTokens(stopIds: stopIds))
        tokens.append(token)
        if stopIds.contains(token) { return end(token, "", .stopToken) }
        constraint?.accept(token)
        if let top = topLogprobs, case .logits(let logits) = output { logprobs.append(Sampler.logprobs(logits, token: token, top: top)) }
        let (text, stopped) = stops.feed(try decoder.append(token))
        if stopped {
            finish = .stopSequence
            return Advance(token: token, text: text, logprobs: takeLogprobs(), finish: .stopSequence)
        }
        if tokens.count >= maxTokens { return end(token, text, .maxTokens) }
        if cacheFull { return end(token, text, .contextLimit) }
        return Advance(token: token, text: text, logprobs: text.isEmpty ? [] : takeLogprobs(), finish: nil)
    }

    /// The sequence ends: what was held back goes out with `text`.
    private mutating func end(_ token: Int, _ text: String, _ reason: Finish) -> Advance {
        finish = reason
        return Advance(token: token, text: text + stops.flush(decoder.flush()), logprobs: takeLogprobs(), finish: reason)
    }

    private mutating func takeLogprobs() -> [TokenLogprob] {
        defer { logprobs.removeAll() }
        return logprobs
    }
}
