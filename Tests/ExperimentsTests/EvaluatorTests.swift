import Experiments
import Foundation
import Inference
import Testing
import TestSupport
import Tokenizers
import Training

/// Exact and normalised match on a hand-made set whose answers are known: the greedy chat
/// answer of the generation fixture, as given, in lower case without punctuation, and wrong.
struct EvaluatorTests {
    @Test(.enabled(if: FixtureChatAnswer.isAvailable, "generate.jsonl has no chat answer that ends at a stop token"))
    func exactMatchOnKnownAnswers() throws {
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let fixture = try FixtureChatAnswer.load(tokenizer: languageModel.tokenizer, stopIds: languageModel.stopIds)
        let question = fixture.question
        let loose = fixture.answer.lowercased().filter { $0.isLetter || $0.isNumber || $0 == " " }
        try #require(loose != fixture.answer && Prediction.normalize(loose) == Prediction.normalize(fixture.answer))
        let records: DatasetSplits.Records = [
            (1, .completion(prompt: question, completion: fixture.answer)),
            (2, .completion(prompt: question, completion: loose)),
            (3, .chat([ChatMessage(role: "user", content: question), ChatMessage(role: "assistant", content: "Berlin.")])),
        ]
        let result = try Evaluator(languageModel: languageModel, batchSize: 2).evaluate(records, path: "hand-made", adapters: nil)
        #expect(result.predictions.map(\.exact) == [true, false, false])
        #expect(result.predictions.map(\.normalized) == [true, true, false])
        #expect(result.exactMatch == 1.0 / 3)
        #expect(result.normalizedMatch == 2.0 / 3)
        #expect(result.predictions[0].output == fixture.answer)
        #expect(result.loss > 0 && result.perplexity == exp(result.loss))
        // The loss is the one training computes on the same records.
        let encoder = try languageModel.exampleEncoder(maxLength: 512)
        let batch = Batcher(examples: try encoder.encode(records, path: "-").examples, batchSize: 3, seed: 0, padId: try languageModel.endOfTextId(), shuffle: false)
            .sequentialBatches()[0]
        let expected = try languageModel.model.loss(batch, adapters: nil) / Double(batch.scoredCount)
        // Batches of 2 and of 3 sum in other orders: equal within the fixtures' loss tolerance.
        #expect(abs(result.loss - expected) <= Tolerance.loss * abs(expected))
    }

    @Test func textDataGetsLossOnly() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let languageModel = try LanguageModel.load(path: try TinyLanguageModel.write(to: "\(directory)/tiny.gguf"))
        let result = try Evaluator(languageModel: languageModel).evaluate(
            [(1, .text("hello world")), (2, .text("another line"))], path: "-", adapters: nil)
        #expect(result.exactMatch == nil && result.predictions.isEmpty)
        #expect(result.loss.isFinite && result.scoredTokens == "hello world".count + "another line".count)
    }

    @Test func normalisationIgnoresCaseSpacesAndPunctuation() {
        #expect(Prediction.normalize("{\"Name\": \"Ana Lopez\"}") == Prediction.normalize("{\"name\":\"ana lopez\"}"))
        #expect(Prediction.normalize("1977-07-31") != Prediction.normalize("1977-07-13"))
    }
}
