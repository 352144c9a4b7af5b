import Foundation
import Formats
import Models
import Testing
import TestSupport

struct TinyModelTests {
    /// GGUF stores q/k rows permuted for adjacent-pair RoPE, Hugging Face does not: after
    /// loading, both must give the same logits as the weights they were written from.
    @Test func ggufAndHuggingFaceFolderLoadToTheSameModel() throws {
        let weights = TinyLlama.random(seed: 11)
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ggufPath = "\(directory)/tiny.gguf"
        try TinyLlama.gguf(weights).build().write(to: URL(fileURLWithPath: ggufPath))
        try TinyLlama.writeHuggingFaceFolder(weights, to: directory)

        let fromGGUF = try LlamaWeights(gguf: GGUFFile(path: ggufPath))
        let fromFolder = try LlamaWeights(huggingFaceFolder: directory)
        #expect(fromGGUF.config == weights.config)
        #expect(fromFolder.config == weights.config)
        for (index, layer) in weights.layers.enumerated() {
            for tensor in LayerTensor.allCases {
                #expect(fromGGUF.layers[index][tensor] == layer[tensor], "GGUF layer \(index) \(tensor)")
                #expect(fromFolder.layers[index][tensor] == layer[tensor], "HF layer \(index) \(tensor)")
            }
        }
        let tokens = [3, 17, 42, 5, 63, 0, 9]
        let config = weights.config
        let expected = try LlamaModel(weights: weights).forward(tokens, cache: KVCache(config: config, capacity: 16), logits: .all)
        for loaded in [fromGGUF, fromFolder] {
            let logits = try LlamaModel(weights: loaded).forward(tokens, cache: KVCache(config: config, capacity: 16), logits: .all)
            #expect(logits == expected)
        }
    }

    /// Decoding token by token through the cache equals one prefill over the whole sequence.
    @Test func cachedDecodeEqualsPrefill() throws {
        let model = LlamaModel(weights: TinyLlama.random(seed: 12))
        let tokens = [1, 2, 3, 40, 50, 60, 7, 8]
        let V = model.config.vocabSize
        let full = try model.forward(tokens, cache: KVCache(config: model.config, capacity: 8), logits: .all)
        let cache = KVCache(config: model.config, capacity: 8)
        _ = try model.forward(Array(tokens.prefix(3)), cache: cache)
        for t in 3..<tokens.count {
            let row = try model.forward([tokens[t]], cache: cache)
            let worst = maxAbsDifference(row, Array(full[(t * V)..<((t + 1) * V)]))
            #expect(worst.value < 1e-4, "position \(t)")
        }
    }

    @Test func badTokensAndOverflowThrow() throws {
        let model = LlamaModel(weights: TinyLlama.random(seed: 13))
        #expect(throws: ModelError.tokenOutOfRange(id: 64, vocabularySize: 64)) {
            try model.forward([64], cache: KVCache(config: model.config, capacity: 4))
        }
        #expect(throws: ModelError.contextOverflow(needed: 5, contextLength: 4)) {
            try model.forward([1, 2, 3, 4, 5], cache: KVCache(config: model.config, capacity: 4))
        }
    }

    @Test func missingAndMisshapenTensorsAreNamed() throws {
        let weights = TinyLlama.random(seed: 14)
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var builder = TinyLlama.gguf(weights)
        builder.tensors.removeAll { $0.name == "blk.1.ffn_up.weight" }
        try builder.build().write(to: URL(fileURLWithPath: "\(directory)/missing.gguf"))
        #expect(throws: ModelError.missingTensor(path: "\(directory)/missing.gguf", name: "blk.1.ffn_up.weight")) {
            try LlamaWeights(gguf: GGUFFile(path: "\(directory)/missing.gguf"))
        }
        builder = TinyLlama.gguf(weights)
        let index = try #require(builder.tensors.firstIndex { $0.name == "blk.0.attn_q.weight" })
        builder.tensors[index].shape = [8, 32]
        try builder.build().write(to: URL(fileURLWithPath: "\(directory)/shape.gguf"))
        #expect(throws: ModelError.wrongShape(path: "\(directory)/shape.gguf", name: "blk.0.attn_q.weight", expected: [16, 16], found: [8, 32])) {
            try LlamaWeights(gguf: GGUFFile(path: "\(directory)/shape.gguf"))
        }
    }
}
