import Foundation
import Inference
import Models
import Server
import Synchronization
import Testing
import TestSupport

/// Prompts that join rows already decoding are prefilled between their steps (short ones
/// together, long ones alone); each request must still get exactly what it gets alone, and a
/// bad prompt must fail alone.
@Suite(.serialized)
struct EngineJoinTests {
    @Test func promptsJoiningDecodingRowsGetWhatTheyGetAlone() async throws {
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let config = languageModel.model.config
        let tokenizer = languageModel.tokenizer
        let alpha = ServerTests.randomAdapter(seed: 1, config: config).layers
        let beta = ServerTests.randomAdapter(seed: 2, config: config).layers
        let engine = InferenceEngine(languageModel: languageModel)

        let first = InferenceEngine.Request(
            prompt: tokenizer.encode("Once upon a time, in a small town by the sea,"), maxTokens: 24, sampling: SamplingParameters(), adapters: alpha)
        // A short prompt and a long one (over `quantizedRowLimit`, which `forward` runs through
        // sgemm), sampled and greedy, with an adapter and without.
        let joining = [
            InferenceEngine.Request(
                prompt: tokenizer.encode("The capital of France is"), maxTokens: 16, sampling: SamplingParameters(temperature: 0.8, seed: 7), adapters: beta),
            InferenceEngine.Request(
                prompt: tokenizer.encode(String(repeating: "Tell me about the weather in spring and in autumn. ", count: 8)), maxTokens: 12,
                sampling: SamplingParameters(), adapters: nil),
        ]
        #expect(joining[1].prompt.count > LlamaModel.quantizedRowLimit)
        let expected = try ([first] + joining).map { request in
            try Generator(languageModel).generate(prompt: request.prompt, maxTokens: request.maxTokens, sampling: request.sampling, adapters: request.adapters).text
        }

        var texts: [String] = []
        var events = try engine.submit(first).events.makeAsyncIterator()
        // Joins once the first request is decoding.
        var firstText = ""
        while firstText.count < 8, let event = await events.next() {
            if case .text(let piece, _) = event { firstText += piece }
        }
        let submissions = try joining.map { try engine.submit($0) }
        while let event = await events.next() {
            if case .text(let piece, _) = event { firstText += piece }
        }
        texts.append(firstText)
        for submission in submissions { texts.append(await Self.text(submission.events)) }
        #expect(texts == expected)

        // A bad prompt joining decoding rows fails alone; the rows beside it go on unchanged.
        events = try engine.submit(first).events.makeAsyncIterator()
        firstText = ""
        while firstText.count < 8, let event = await events.next() {
            if case .text(let piece, _) = event { firstText += piece }
        }
        let bad = try engine.submit(InferenceEngine.Request(prompt: [1, config.vocabSize + 5], maxTokens: 4, sampling: SamplingParameters(), adapters: nil))
        let good = try engine.submit(joining[0])
        while let event = await events.next() {
            if case .text(let piece, _) = event { firstText += piece }
        }
        #expect(firstText == expected[0])
        #expect(await Self.text(good.events) == expected[1])
        var failed = false
        for await event in bad.events {
            if case .failed = event { failed = true }
        }
        #expect(failed)
        await engine.shutdown()
    }

    static func text(_ events: AsyncStream<InferenceEngine.Event>) async -> String {
        var text = ""
        for await event in events {
            if case .text(let piece, _) = event { text += piece }
        }
        return text
    }
}
