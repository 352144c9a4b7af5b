import Foundation
import Inference
import Kernels
import LoRA
import Models
import Testing
import TestSupport
import Tokenizers

/// Three adapters on the real model: the PEFT fixture adapter and two random ones.
enum SharedAdapters {
    static let adapters = Result { () throws -> [[LayerAdapters]] in
        let config = try SharedLanguageModel.model.get().model.config
        let peft = try LoRAAdapter.loadPEFT(from: Fixtures.path("peft_adapter"), for: config)
        let random = (1...2).map { seed -> [LayerAdapters] in
            var adapter = LoRAAdapter.initialized(
                LoRAConfig(rank: 4, alpha: 8, targets: seed == 1 ? [.q, .v] : LayerTensor.projections), for: config, seed: UInt64(seed))
            for l in adapter.layers.indices {
                for tensor in LayerTensor.projections {
                    guard let count = adapter.layers[l][tensor]?.b.count else { continue }
                    adapter.layers[l][tensor]?.b = FiniteDifference.random(count, seed: UInt64(seed * 1000 + l), range: 0.3)
                }
            }
            return adapter.layers
        }
        _ = try #require(random.count == 2)
        return [peft.layers] + random
    }
}

struct MixedBatchTests {
    /// Prompts of different lengths and adapters in one step (as a server prefills prompts that
    /// arrive together), with a sequence that is decoding: each gets exactly what it gets alone,
    /// and its cache continues as alone (the next decode step equals too).
    @Test func promptsInOneStepEqualEachAlone() throws {
        let languageModel = try SharedLanguageModel.model.get()
        let model = languageModel.model
        let adapters = try SharedAdapters.adapters.get()
        let texts = ["Hi", "The capital of France is", "def add(a, b):\n    return", "Once upon a time, in a small town by the sea, there lived"]
        let chunks = texts.map { languageModel.tokenizer.encode($0) }
        let rowAdapters: [[LayerAdapters]?] = [adapters[0], nil, adapters[1], adapters[2]]
        let greedy = [true, false, true, false]
        #expect(Set(chunks.map(\.count)).count == 4 && chunks.allSatisfy { $0.count <= LlamaModel.quantizedRowLimit })
        func caches() -> [KVCache] { chunks.map { KVCache(config: model.config, capacity: $0.count + 2) } }
        let (together, alone) = (caches(), caches())
        let outputs = try model.step(chunks, caches: together, adapters: rowAdapters, greedy: greedy)
        let solo = try chunks.indices.map { try model.forward(chunks[$0], cache: alone[$0], adapters: rowAdapters[$0], greedy: greedy[$0]) }
        #expect(outputs == solo)
        let next = [504, 216, 28, 198]
        #expect(
            try model.decodeStep(next, caches: together, adapters: rowAdapters, greedy: greedy)
                == chunks.indices.map { try model.decodeStep([next[$0]], caches: [alone[$0]], adapters: [rowAdapters[$0]], greedy: [greedy[$0]])[0] })
    }

    /// A step refuses a bad row (here adapters for the wrong number of layers) before it
    /// changes any cache, so the server can run the other prompts again alone.
    @Test func aStepWithABadRowChangesNoCache() throws {
        let languageModel = try SharedLanguageModel.model.get()
        let model = languageModel.model
        let adapters = try SharedAdapters.adapters.get()
        let chunks = ["Hello", "The capital of France is"].map { languageModel.tokenizer.encode($0) }
        let caches = chunks.map { KVCache(config: model.config, capacity: $0.count + 1) }
        #expect(throws: ModelError.self) {
            try model.step(chunks, caches: caches, adapters: [adapters[0], Array(adapters[1].prefix(3))], greedy: [true, true])
        }
        #expect(caches.map(\.count) == [0, 0])
        let alone = KVCache(config: model.config, capacity: chunks[0].count + 1)
        #expect(
            try model.step([chunks[0]], caches: [caches[0]], adapters: [adapters[0]], greedy: [true])
                == [try model.forward(chunks[0], cache: alone, adapters: adapters[0], greedy: true)])
    }

    /// Greedy rows of a step get, through the head's argmax screen, exactly the token their
    /// logits give (the first largest); the other rows get their logits unchanged. 10 rows with
    /// mixed adapters over 12 steps, against the same rows stepped with full logits.
    @Test(.enabled(if: ArgmaxScreen.Path.best != nil, "the argmax screen needs AVX-512 VNNI or AVX2 (LORA_KERNELS allows neither)"))
    func greedyRowsGetTheTokenTheirLogitsGive() throws {
        let languageModel = try SharedLanguageModel.model.get()
        let model = languageModel.model
        #expect(model.weights.argmaxScreen != nil, "the Q8_0 head gets a screen on this CPU")
        let adapters = try SharedAdapters.adapters.get()
        let rows = 10
        let rowAdapters: [[LayerAdapters]?] = (0..<rows).map { [adapters[0], nil, adapters[1], adapters[2]][$0 % 4] }
        let greedy = (0..<rows).map { $0 % 3 != 1 }
        let prompts = (0..<rows).map { languageModel.tokenizer.encode(["Once upon a time", "The answer is", "import numpy as"][$0 % 3] + String(repeating: " and", count: $0)) }
        func prefilled() throws -> [KVCache] {
            try zip(prompts, rowAdapters).map { prompt, adapter in
                let cache = KVCache(config: model.config, capacity: 64)
                _ = try model.forward(prompt, cache: cache, adapters: adapter)
                return cache
            }
        }
        let (screenedCaches, fullCaches) = (try prefilled(), try prefilled())
        var tokens = (0..<rows).map { [504, 216, 28][$0 % 3] }
        let V = model.config.vocabSize
        for step in 0..<12 {
            let outputs = try model.decodeStep(tokens, caches: screenedCaches, adapters: rowAdapters, greedy: greedy)
            let full = try model.decodeStep(tokens, caches: fullCaches, adapters: rowAdapters)
            for row in 0..<rows {
                let logits = Array(full[(row * V)..<((row + 1) * V)])
                let expected: StepOutput = greedy[row] ? .token(Sampler.argmax(logits)) : .logits(logits)
                #expect(outputs[row] == expected, "step \(step) row \(row)")
                tokens[row] = Sampler.argmax(logits)
            }
        }
    }

    /// One decode step over rows with different adapters (and one without) gives each row
    /// exactly the logits it gets alone.
    @Test func decodeStepRowsEqualSoloForwardBitForBit() throws {
        let languageModel = try SharedLanguageModel.model.get()
        let model = languageModel.model
        let adapters = try SharedAdapters.adapters.get()
        // 13 rows: the quantized kernels take vectors 8 (AVX-512) or 4 (AVX2) at a time, and
        // the remaining 5 with another tile shape; every path must give each row exactly its
        // solo logits.
        let rowAdapters: [[LayerAdapters]?] = (0..<13).map { [adapters[0], nil, adapters[1], adapters[2]][$0 % 4] }
        let texts = ["The capital of France is", "1, 2, 3,", "Hello", "def add(a, b):"]
        let prompts = (0..<13).map { languageModel.tokenizer.encode(texts[$0 % 4] + String(repeating: " so", count: $0 / 4)) }
        let nextTokens = (0..<13).map { [504, 216, 28, 198][$0 % 4] }
        var solo: [[Float]] = []
        var caches: [KVCache] = []
        for (prompt, (adapter, next)) in zip(prompts, zip(rowAdapters, nextTokens)) {
            let cacheSolo = KVCache(config: model.config, capacity: 32)
            _ = try model.forward(prompt, cache: cacheSolo, adapters: adapter)
            solo.append(try model.forward([next], cache: cacheSolo, adapters: adapter))
            let cacheBatch = KVCache(config: model.config, capacity: 32)
            _ = try model.forward(prompt, cache: cacheBatch, adapters: adapter)
            caches.append(cacheBatch)
        }
        let batch = try model.decodeStep(nextTokens, caches: caches, adapters: rowAdapters)
        let V = model.config.vocabSize
        for row in 0..<13 {
            #expect(Array(batch[(row * V)..<((row + 1) * V)]) == solo[row], "row \(row)")
        }
        #expect(solo[0] != solo[1], "the adapter changes the logits")
    }

    @Test func mixedBatchGenerationEqualsSoloRuns() throws {
        let languageModel = try SharedLanguageModel.model.get()
        let adapters = try SharedAdapters.adapters.get()
        let generator = Generator(languageModel)
        let prompts = try [
            "What is the capital of France?", "Name a colour.", "Count to five.", "What is 2 + 2?", "Say hello.",
        ].map { try languageModel.chatPrompt([ChatMessage(role: "user", content: $0)]) }
        let requests = [
            GenerationRequest(prompt: prompts[0], maxTokens: 12, adapters: adapters[0]),
            GenerationRequest(prompt: prompts[1], maxTokens: 7, adapters: nil),
            GenerationRequest(prompt: prompts[2], maxTokens: 12, sampling: SamplingParameters(temperature: 0.8, topP: 0.9, seed: 3), adapters: adapters[1]),
            GenerationRequest(prompt: prompts[3], maxTokens: 10, adapters: adapters[2]),
            GenerationRequest(prompt: prompts[4], maxTokens: 12, adapters: adapters[0]),
        ]
        let batch = try generator.generateBatch(requests)
        for (request, result) in zip(requests, batch) {
            let alone = try generator.generate(
                prompt: request.prompt, maxTokens: request.maxTokens, sampling: request.sampling, adapters: request.adapters)
            #expect(result.tokens == alone.tokens)
            #expect(result.text == alone.text)
        }
    }

    /// Switching adapters between generations on one loaded base: each output equals a fresh
    /// single-adapter run, whatever ran before it.
    @Test func threeAdaptersInTurnEqualFreshRuns() throws {
        let languageModel = try SharedLanguageModel.model.get()
        let adapters = try SharedAdapters.adapters.get()
        let prompt = try languageModel.chatPrompt([ChatMessage(role: "user", content: "What is the capital of France?")])
        // The three adapters must change the model differently, or the test shows nothing.
        let firstLogits = try (0..<3).map { index in
            try languageModel.model.forward(prompt, cache: KVCache(config: languageModel.model.config, capacity: prompt.count), adapters: adapters[index])
        }
        #expect(firstLogits[0] != firstLogits[1] && firstLogits[1] != firstLogits[2] && firstLogits[0] != firstLogits[2])
        let order = [0, 1, 2, 0, 2, 1]
        var outputs: [Int: [Int]] = [:]
        for index in order {
            let tokens = try Generator(languageModel).generate(prompt: prompt, maxTokens: 10, adapters: adapters[index]).tokens
            if let first = outputs[index] { #expect(tokens == first, "adapter \(index) again") }
            outputs[index] = tokens
        }
        let fresh = try LanguageModel.load(path: Fixtures.modelPath)
        for index in 0..<3 {
            #expect(try Generator(fresh).generate(prompt: prompt, maxTokens: 10, adapters: adapters[index]).tokens == outputs[index])
        }
    }
}

struct AdapterCacheTests {
    @Test func leastRecentlyUsedIsEvictedPastTheBudget() throws {
        let config = TinyLlama.config
        let adapters = (1...3).map {
            LoRAAdapter.initialized(LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), for: config, seed: UInt64($0)).layers
        }
        let size = AdapterCache.byteCount(adapters[0])
        let cache = AdapterCache(budgetBytes: 2 * size)
        var loads = 0
        func get(_ i: Int) -> [LayerAdapters] {
            cache.adapters(for: "a\(i)") {
                loads += 1
                return adapters[i]
            }
        }
        #expect(get(0) == adapters[0])
        _ = get(1)
        _ = get(0)  // a0 is now more recent than a1
        _ = get(2)  // over budget: a1 goes
        #expect(cache.statistics == AdapterCache.Statistics(hits: 1, misses: 3, evictions: 1, bytes: 2 * size, count: 2))
        _ = get(0)
        #expect(loads == 3)
        _ = get(1)
        #expect(loads == 4)
        cache.evict("a1")
        #expect(cache.statistics.count == 1)
    }
}
