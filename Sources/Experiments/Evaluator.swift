import Foundation
import Inference
import Models
import Tokenizers
import Training

/// Scores a base model, with or without an adapter, on held-out records: loss and perplexity
/// over the tokens training would score, and for prompt/completion or chat data the greedy
/// answer compared with the reference (exact and normalised match).
public struct Evaluator: Sendable {
    public let languageModel: LanguageModel
    /// Examples are cut to this many tokens for the loss, as in training.
    public let maxSeqLength: Int
    /// Sequences per loss batch and rows per generation batch.
    public let batchSize: Int
    /// Generated tokens allowed beyond the reference's length (a longer answer cannot match).
    public let extraTokens: Int

    public init(languageModel: LanguageModel, maxSeqLength: Int = 512, batchSize: Int = 8, extraTokens: Int = 8) {
        self.languageModel = languageModel
        self.maxSeqLength = maxSeqLength
        self.batchSize = batchSize
        self.extraTokens = extraTokens
    }

    public enum Progress: Sendable {
        case loss(done: Int, total: Int)
        case generation(done: Int, total: Int)
    }

    /// `generate: false` (or text data) computes the loss only.
    public func evaluate(
        _ records: DatasetSplits.Records, path: String, adapters: [LayerAdapters]?, generate: Bool = true,
        onProgress: (Progress) -> Void = { _ in }
    ) throws -> EvaluationResult {
        let start = Date()
        let encoder = try languageModel.exampleEncoder(maxLength: maxSeqLength)
        let encoded = try encoder.encode(records, path: path)
        let batches = Batcher(
            examples: encoded.examples, batchSize: batchSize, seed: 0, padId: try languageModel.endOfTextId(), shuffle: false
        ).sequentialBatches()
        var total = 0.0, scored = 0
        let scratch = TrainingScratch()
        for (index, batch) in batches.enumerated() {
            total += try languageModel.model.loss(batch, adapters: adapters, scratch: scratch)
            scored += batch.scoredCount
            onProgress(.loss(done: index + 1, total: batches.count))
        }
        let loss = total / Double(max(scored, 1))
        var result = EvaluationResult(
            examples: records.count, scoredTokens: scored, truncated: encoded.truncated, loss: loss, perplexity: exp(loss),
            exactMatch: nil, normalizedMatch: nil, predictions: [], seconds: 0)
        let questions = records.compactMap { Question($0.record, line: $0.line) }
        if generate && !questions.isEmpty {
            result.predictions = try answer(questions, adapters: adapters, onProgress: onProgress)
            let count = Double(result.predictions.count)
            result.exactMatch = Double(result.predictions.count(where: \.exact)) / count
            result.normalizedMatch = Double(result.predictions.count(where: \.normalized)) / count
        }
        result.seconds = Date().timeIntervalSince(start)
        return result
    }

    /// Greedy answers, `batchSize` rows decoded together.
    private func answer(_ questions: [Question], adapters: [LayerAdapters]?, onProgress: (Progress) -> Void) throws -> [Prediction] {
        let generator = Generator(languageModel)
        var predictions: [Prediction] = []
        for start in stride(from: 0, to: questions.count, by: batchSize) {
            let group = questions[start..<min(start + batchSize, questions.count)]
            let requests = try group.map { question in
                GenerationRequest(
                    prompt: try languageModel.chatPrompt(question.context),
                    maxTokens: languageModel.tokenizer.encode(question.reference).count + extraTokens, adapters: adapters)
            }
            for (question, result) in zip(group, try generator.generateBatch(requests)) {
                predictions.append(Prediction(line: question.line, prompt: question.context.last?.content ?? "", reference: question.reference, output: result.text))
            }
            onProgress(.generation(done: predictions.count, total: questions.count))
        }
        return predictions
    }
}

/// A record seen as a question: the conversation before the last assistant turn, and that turn.
struct Question {
    let line: Int
    let context: [ChatMessage]
    let reference: String

    init?(_ record: DatasetRecord, line: Int) {
        self.line = line
        switch record {
        case .text:
            return nil
        case .completion(let prompt, let completion):
            context = [ChatMessage(role: "user", content: prompt)]
            reference = completion
        case .chat(let messages):
            guard let last = messages.lastIndex(where: { $0.role == "assistant" }) else { return nil }
            context = Array(messages[..<last])
            reference = messages[last].content
        }
    }
}

/// One generated answer next to its reference.
public struct Prediction: Sendable, Codable, Equatable {
    public var line: Int
    public var prompt: String
    public var reference: String
    public var output: String

    /// Equal once surrounding whitespace is trimmed.
    public var exact: Bool {
        output.trimmingCharacters(in: .whitespacesAndNewlines) == reference.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Equal ignoring case, whitespace and punctuation (SQuAD-style normalisation, articles kept).
    public var normalized: Bool { Self.normalize(output) == Self.normalize(reference) }

    public static func normalize(_ text: String) -> String {
        String(text.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }.map(Character.init))
    }
}

/// What an evaluation measured.
public struct EvaluationResult: Sendable, Codable, Equatable {
    public var examples: Int
    public var scoredTokens: Int
    /// Examples longer than the evaluator's `maxSeqLength` (their loss covers the first part).
    public var truncated: Int
    public var loss: Double
    public var perplexity: Double
    /// Fraction of exact answers (nil for text data).
    public var exactMatch: Double?
    public var normalizedMatch: Double?
    public var predictions: [Prediction]
    public var seconds: Double

    /// The metrics as registry names and values.
    public var metrics: [(name: String, value: Double)] {
        var list = [("loss", loss), ("perplexity", perplexity)]
        if let exactMatch { list.append(("exact_match", exactMatch)) }
        if let normalizedMatch { list.append(("normalized_match", normalizedMatch)) }
        return list
    }
}
