import Foundation
import Kernels
import Models

/// How the next token is picked from logits: greedy (temperature 0) or sampled with
/// temperature, top-k and top-p (nucleus), reproducibly from a seed; after OpenAI's
/// adjustments: `logit_bias` added to chosen tokens, and each token already generated lowered by
/// `frequency_penalty` per occurrence and `presence_penalty` once.
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var seed: UInt64
    public var frequencyPenalty: Float
    public var presencePenalty: Float
    /// token id → added to its logit
    public var logitBias: [Int: Float]

    public init(
        temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0, frequencyPenalty: Float = 0, presencePenalty: Float = 0,
        logitBias: [Int: Float] = [:]
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.frequencyPenalty = frequencyPenalty
        self.presencePenalty = presencePenalty
        self.logitBias = logitBias
    }

    /// Whether the logits are changed before picking.
    public var adjustsLogits: Bool { frequencyPenalty != 0 || presencePenalty != 0 || !logitBias.isEmpty }
}

public struct Sampler {
    public let parameters: SamplingParameters
    private var rng: SeededRandom
    /// How often each token has been picked, for the penalties.
    private var counts: [Int: Int] = [:]

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SeededRandom(seed: parameters.seed)
    }

    /// Temperature 0 with nothing to adjust: the first largest logit, which
    /// `LlamaModel.decodeStep(_:caches:adapters:greedy:)` can find without computing the logits.
    public var isGreedy: Bool { parameters.temperature <= 0 && !parameters.adjustsLogits }

    /// The next token from a decode step: a greedy row's token as the step found it, or one
    /// picked from the row's logits; with `allowed` ([vocabulary], a grammar's mask), only among
    /// the tokens it allows (a token beyond it is never allowed).
    public mutating func next(_ output: StepOutput, allowed: [Bool]? = nil) -> Int {
        let token: Int
        switch output {
        case .token(let found): token = found
        case .logits(let logits):
            var logits = parameters.adjustsLogits ? adjusted(logits) : logits
            if let allowed {
                for i in logits.indices where i >= allowed.count || !allowed[i] { logits[i] = -.infinity }
            }
            token = pick(logits)
        }
        if parameters.adjustsLogits { counts[token, default: 0] += 1 }
        return token
    }

    /// logits: [V]
    public mutating func next(_ logits: [Float]) -> Int { next(.logits(logits)) }

    /// The logits after `logit_bias` and the penalties for what was generated so far.
    func adjusted(_ logits: [Float]) -> [Float] {
        var logits = logits
        for (token, bias) in parameters.logitBias where logits.indices.contains(token) { logits[token] += bias }
        for (token, count) in counts {
            logits[token] -= Float(count) * parameters.frequencyPenalty + parameters.presencePenalty
        }
        return logits
    }

    private mutating func pick(_ logits: [Float]) -> Int {
        if parameters.temperature <= 0 { return Self.argmax(logits) }
        // Candidates by descending logit; top-k first, then the smallest prefix whose
        // probability reaches top-p (as transformers' TopK then TopP warpers).
        var order = Array(logits.indices)
        let k = parameters.topK > 0 ? min(parameters.topK, logits.count) : logits.count
        if k < logits.count {
            order = Array(order.sorted { logits[$0] > logits[$1] }.prefix(k))
        } else {
            order.sort { logits[$0] > logits[$1] }
        }
        let maximum = logits[order[0]]
        var probabilities = order.map { Double(expf((logits[$0] - maximum) / parameters.temperature)) }
        let total = probabilities.reduce(0, +)
        probabilities = probabilities.map { $0 / total }
        var kept = probabilities.count
        if parameters.topP < 1 {
            var cumulative = 0.0
            for (i, p) in probabilities.enumerated() {
                cumulative += p
                if cumulative >= Double(parameters.topP) {
                    kept = i + 1
                    break
                }
            }
        }
        let keptTotal = probabilities[0..<kept].reduce(0, +)
        var threshold = rng.nextDouble() * keptTotal
        for i in 0..<kept {
            threshold -= probabilities[i]
            if threshold <= 0 { return order[i] }
        }
        return order[kept - 1]
    }

    /// Index of the largest logit; the first on ties, as `torch.argmax`.
    /// Eight interleaved running maxima with their indices, then the first of the largest: one
    /// running maximum is a chain of dependent compare-and-selects (27 µs over 49,152 logits
    /// against 8–11 µs, and a serving step takes one argmax per row). NaNs are never the maximum.
    public static func argmax(_ logits: [Float]) -> Int {
        logits.withUnsafeBufferPointer { logits in
            var maxima = SIMD8<Float>(repeating: -.infinity)
            var indices = SIMD8<Int32>(repeating: 0), lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
            var i = 0
            while i + 8 <= logits.count {
                let values = UnsafeRawPointer(logits.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
                let greater = values .> maxima
                maxima.replace(with: values, where: greater)
                indices.replace(with: lanes, where: greater)
                lanes &+= 8
                i += 8
            }
            var best = 0, maximum = -Float.infinity
            for lane in 0..<8 where maxima[lane] > maximum || (maxima[lane] == maximum && Int(indices[lane]) < best) {
                (maximum, best) = (maxima[lane], Int(indices[lane]))
            }
            for k in i..<logits.count where logits[k] > maximum { (maximum, best) = (logits[k], k) }
            return best
        }
    }

    /// The model's log-probability of `token` and its `top` most likely tokens (most likely
    /// first, the first on ties), from raw logits: before temperature, penalties, bias or a
    /// grammar's mask, as vLLM reports them by default. logits: [V]
    public static func logprobs(_ logits: [Float], token: Int, top: Int) -> TokenLogprob {
        let maximum = logits.max() ?? 0
        var total = 0.0
        for logit in logits { total += exp(Double(logit - maximum)) }
        let logTotal = Float(log(total)) + maximum
        var best: [Int] = []
        if top > 0 {
            for (i, logit) in logits.enumerated() where best.count < top || logit > logits[best[best.count - 1]] {
                let at = best.firstIndex { logits[$0] < logit } ?? best.count
                best.insert(i, at: at)
                if best.count > top { best.removeLast() }
            }
        }
        return TokenLogprob(
            token: token, logprob: logits[token] - logTotal, top: best.map { TokenLogprob.Candidate(token: $0, logprob: logits[$0] - logTotal) })
    }
}

/// A generated token's log-probability under the model, and the most likely alternatives.
public struct TokenLogprob: Sendable, Equatable {
    public struct Candidate: Sendable, Equatable {
        public var token: Int
        public var logprob: Float
    }

    public var token: Int
    public var logprob: Float
    public var top: [Candidate]
}
