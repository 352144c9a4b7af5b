import Foundation
import Inference
import Kernels
import Testing
import TestSupport
import Tokenizers

enum SharedLanguageModel {
    static let model = Result { try LanguageModel.load(path: Fixtures.modelPath) }
}

struct GenerationTests {
    /// Greedy continuations from transformers, token for token (it was not told to stop at
    /// <|im_end|>, so neither are we here).
    @Test func greedyGenerationsMatchTransformers() throws {
        let languageModel = try SharedLanguageModel.model.get()
        let cases = try Fixtures.jsonLines("generate.jsonl")
        #expect(cases.count >= 3)
        for entry in cases {
            let prompt = try #require(entry["prompt_ids"] as? [Int])
            let expected = try #require(entry["new_ids"] as? [Int])
            let result = try Generator(languageModel).generate(prompt: prompt, maxTokens: expected.count, stopAtStopTokens: false)
            #expect(result.tokens == expected, "prompt \(prompt)")
        }
    }

    /// The fixture's chat answer, ending at its end-of-turn token, with the prompt rendered by
    /// our own template from the question.
    @Test(.enabled(if: FixtureChatAnswer.isAvailable, "generate.jsonl has no chat answer that ends at a stop token"))
    func chatAnswerStopsAtEndOfTurn() throws {
        let languageModel = try SharedLanguageModel.model.get()
        let fixture = try FixtureChatAnswer.load(tokenizer: languageModel.tokenizer, stopIds: languageModel.stopIds)
        let prompt = try languageModel.chatPrompt([ChatMessage(role: "user", content: fixture.question)])
        #expect(prompt == fixture.promptIds)
        var streamed = ""
        let result = try Generator(languageModel).generate(prompt: prompt, maxTokens: fixture.answerIds.count + 8) { piece in
            streamed += piece
            return true
        }
        #expect(result.tokens == fixture.answerIds)
        #expect(result.stoppedAtStopToken && !result.stoppedAtContextLimit)
        #expect(result.text == fixture.answer)
        #expect(streamed == result.text)
    }

    /// Generation that fills the model's context says so instead of stopping silently.
    @Test func theContextLimitIsReported() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let languageModel = try LanguageModel.load(path: try TinyLanguageModel.write(to: "\(directory)/tiny.gguf"))
        let context = languageModel.model.config.maxPositionEmbeddings
        let prompt = Array(repeating: 97, count: context - 5)
        let result = try Generator(languageModel).generate(prompt: prompt, maxTokens: 20, stopAtStopTokens: false)
        // Five more positions, and the token their last one predicts.
        #expect(result.tokens.count == 6 && result.stoppedAtContextLimit)
        let short = try Generator(languageModel).generate(prompt: [97, 98], maxTokens: 3, stopAtStopTokens: false)
        #expect(short.tokens.count == 3 && !short.stoppedAtContextLimit)
    }

    @Test func emptyPromptIsAnError() throws {
        let languageModel = try SharedLanguageModel.model.get()
        #expect(throws: (any Error).self) { try Generator(languageModel).generate(prompt: [], maxTokens: 4) }
    }

    @Test func missingModelFileIsNamed() {
        do {
            _ = try LanguageModel.load(path: "/nonexistent/model.gguf")
            Issue.record("loaded a missing file")
        } catch {
            #expect("\(error)".contains("/nonexistent/model.gguf"))
        }
    }
}

struct SamplerTests {
    /// OpenAI's adjustments, exactly: bias added; each generated token lowered by the frequency
    /// penalty per occurrence plus the presence penalty once. Rows that adjust never take the
    /// argmax screen's token (they need their logits).
    @Test func penaltiesAndBiasAdjustTheLogits() {
        var sampler = Sampler(SamplingParameters(frequencyPenalty: 0.5, presencePenalty: 1, logitBias: [2: 0.75]))
        #expect(!sampler.isGreedy)
        let logits: [Float] = [3, 2.5, 1.5, 0]
        // Adjusted logits of tokens 0, 1, 2 before each pick:
        #expect(sampler.next(logits) == 0)  // 3, 2.5, 2.25
        #expect(sampler.next(logits) == 1)  // 1.5, 2.5, 2.25
        #expect(sampler.next(logits) == 2)  // 1.5, 1, 2.25
        #expect(sampler.next(logits) == 0)  // 1.5, 1, 0.75
        #expect(sampler.next(logits) == 0)  // 1, 1, 0.75: the first of equal maxima
    }

    let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 0.0]

    @Test func greedyIsArgmaxFirstOnTies() {
        var sampler = Sampler(SamplingParameters())
        #expect(sampler.next(logits) == 1)
        #expect(Sampler.argmax([2, 5, 5, 1]) == 1)
    }

    /// argmax takes eight lanes at a time and then the tail: the first of equal maxima wins
    /// across lanes, blocks and the tail, NaNs never win, and all -inf gives index 0 (as torch).
    @Test func argmaxOverLanesBlocksAndTail() {
        var rng = SeededRandom(seed: 3)
        let values = (0..<1003).map { _ in rng.uniform(-5, 5) }
        func reference(_ x: [Float]) -> Int {
            var best = 0
            for i in x.indices where x[i] > x[best] || (x[best].isNaN && !x[i].isNaN) { best = i }
            return best
        }
        for positions in [[0], [7], [8], [6, 9], [517, 902], [902, 517, 1002], [998, 1001], [1002], [1001, 1002], [13, 21]] {
            var x = values
            for p in positions { x[p] = 9 }
            #expect(Sampler.argmax(x) == positions.min()!, "\(positions)")
            #expect(Sampler.argmax(x) == reference(x))
        }
        var withNaN = values
        withNaN[40] = .nan
        withNaN[41] = 9
        #expect(Sampler.argmax(withNaN) == 41)
        #expect(Sampler.argmax([Float](repeating: -.infinity, count: 20)) == 0)
        #expect(Sampler.argmax([Float](repeating: .nan, count: 20)) == 0)
        #expect(Sampler.argmax([1, 3]) == 1)
    }

    @Test func seededSamplingIsReproducible() {
        let parameters = SamplingParameters(temperature: 1.0, seed: 42)
        var a = Sampler(parameters), b = Sampler(parameters)
        let first = (0..<50).map { _ in a.next(logits) }
        #expect(first == (0..<50).map { _ in b.next(logits) })
        #expect(Set(first).count > 1, "temperature 1 should visit several tokens")
    }

    @Test func topKAndTopPRestrictCandidates() {
        var topK = Sampler(SamplingParameters(temperature: 1.0, topK: 2, seed: 1))
        #expect(Set((0..<200).map { _ in topK.next(logits) }).isSubset(of: [1, 2]))
        var top1 = Sampler(SamplingParameters(temperature: 5.0, topK: 1, seed: 1))
        #expect((0..<50).allSatisfy { _ in top1.next(logits) == 1 })
        // p(1) ≈ 0.55, p(2) ≈ 0.34 at temperature 1: top-p 0.6 keeps exactly those two.
        var topP = Sampler(SamplingParameters(temperature: 1.0, topP: 0.6, seed: 3))
        #expect(Set((0..<300).map { _ in topP.next(logits) }) == [1, 2])
    }
}
