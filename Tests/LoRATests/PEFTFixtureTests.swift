import Foundation
import Formats
import Kernels
import LoRA
import Models
import Testing
import TestSupport

enum Shared {
    static let model = Result { LlamaModel(weights: try LlamaWeights(gguf: GGUFFile(path: Fixtures.modelPath))) }
    static let adapter = Result { try LoRAAdapter.loadPEFT(from: Fixtures.path("peft_adapter"), for: model.get().config) }
}

/// The PEFT adapter from the fixtures, applied unmerged and merged, against PEFT's logits; the
/// loss and every LoRA gradient of the fixture batch against PEFT's autograd.
struct PEFTFixtureTests {
    @Test func adapterLoadsWithPEFTConfig() throws {
        let adapter = try Shared.adapter.get()
        let config = try Fixtures.json("peft_adapter/adapter_config.json")
        let rank = try #require(config["r"] as? Int), alpha = try #require((config["lora_alpha"] as? NSNumber)?.floatValue)
        let targets = try #require(config["target_modules"] as? [String]).compactMap { LayerTensor(peftName: $0) }
        #expect(adapter.config.rank == rank && adapter.config.alpha == alpha && adapter.config.scale == alpha / Float(rank))
        #expect(adapter.config.targets == LayerTensor.projections.filter(targets.contains))
        let layers = try Shared.model.get().config.numHiddenLayers
        let adapted = (config["layers_to_transform"] as? [Int]).map(Set.init) ?? Set(0..<layers)
        #expect(adapter.layers.count == layers && adapter.layers.indices.allSatisfy { adapter.layers[$0].isEmpty != adapted.contains($0) })
    }

    func checkLogits(_ model: LlamaModel, adapters: [LayerAdapters]?, index: Int) throws {
        let entry = try Fixtures.jsonLines("peft_logits.jsonl")[index]
        let ids = try #require(entry["ids"] as? [Int])
        let logsumexp = try #require(entry["logsumexp"] as? [Double])
        let top10 = try #require(entry["top10"] as? [[[Double]]])
        let V = model.config.vocabSize
        let logits = try model.forward(ids, cache: KVCache(config: model.config, capacity: ids.count), adapters: adapters, logits: .all)
        for t in 0..<ids.count {
            let row = Array(logits[(t * V)..<((t + 1) * V)])
            let lse = row.withUnsafeBufferPointer { Softmax.logSumExp($0.baseAddress!, count: V) }
            #expect(abs(lse - logsumexp[t]) < Double(Tolerance.logits), "position \(t)")
            for pair in top10[t] { #expect(abs(row[Int(pair[0])] - Float(pair[1])) < Tolerance.logits, "position \(t) id \(pair[0])") }
        }
        let last = try Fixtures.floats(try #require(entry["last_logits_f32"] as? String))
        let worst = maxAbsDifference(Array(logits[((ids.count - 1) * V)...]), last)
        #expect(worst.value < Tolerance.logits, "last row max |Δ| \(worst.value) at \(worst.index)")
    }

    @Test(arguments: 0..<2)
    func unmergedAdapterLogitsMatchPEFT(index: Int) throws {
        try checkLogits(try Shared.model.get(), adapters: try Shared.adapter.get().layers, index: index)
    }

    @Test(arguments: 0..<2)
    func mergedAdapterLogitsMatchPEFT(index: Int) throws {
        let merged = LlamaModel(weights: try Shared.model.get().weights.merging(try Shared.adapter.get()))
        try checkLogits(merged, adapters: nil, index: index)
    }

    @Test func unmergeRestoresTheBase() throws {
        let base = try Shared.model.get().weights
        let adapter = try Shared.adapter.get()
        let restored = base.merging(adapter).unmerging(adapter)
        for l in Set([0, base.layers.count - 1]).sorted() {
            for tensor in LayerTensor.projections {
                let worst = maxAbsDifference(restored.layers[l][tensor], base.layers[l][tensor])
                #expect(worst.value < 1e-5, "layer \(l) \(tensor)")
            }
        }
    }

    /// Loss with and without the adapter, and every LoRA gradient (420 for SmolLM2's 30 layers × 7), against PEFT.
    @Test func lossAndGradientsMatchPEFT() throws {
        let model = try Shared.model.get()
        let adapter = try Shared.adapter.get()
        let fixture = try Fixtures.json("grads.json")
        let batch = TrainingBatch(
            inputIds: try #require(fixture["input_ids"] as? [[Int]]), labels: try #require(fixture["labels"] as? [[Int]]))
        let count = Float(batch.scoredCount)
        var gradients = adapter.layers.map { $0.zeros() }
        let lossSum = try model.lossAndGradients(batch, adapters: adapter.layers, gradients: &gradients, gradientScale: 1 / count)
        let expectedLoss = try #require(fixture["loss"] as? Double)
        #expect(abs(lossSum / Double(count) - expectedLoss) / expectedLoss < Tolerance.loss, "loss \(lossSum / Double(count)) vs \(expectedLoss)")
        let baseLoss = try model.loss(batch, adapters: nil) / Double(count)
        let expectedBase = try #require(fixture["loss_adapter_disabled"] as? Double)
        #expect(abs(baseLoss - expectedBase) / expectedBase < Tolerance.loss, "adapter disabled: \(baseLoss) vs \(expectedBase)")

        let reference = try SafetensorsFile(path: try Fixtures.path("grads.safetensors"))
        let adapted = adapter.layers.reduce(0) { total, layer in total + LayerTensor.projections.count { layer[$0] != nil } }
        #expect(reference.tensors.count == 2 * adapted)
        var worst = (0.0, "")
        for (l, layer) in gradients.enumerated() {
            for tensor in LayerTensor.projections {
                guard let pair = layer[tensor] else { continue }
                for (matrix, values) in [("A", pair.a), ("B", pair.b)] {
                    let module = [.q, .k, .v, .o].contains(tensor) ? "self_attn" : "mlp"
                    let name = "base_model.model.model.layers.\(l).\(module).\(tensor.peftName!).lora_\(matrix).default.weight"
                    let expected = try reference.floats(name)
                    let error = relativeError(values, expected)
                    if error > worst.0 { worst = (error, name) }
                    #expect(error < Tolerance.loraGradient, "\(name): relative error \(error)")
                }
            }
        }
        print("largest relative gradient error: \(worst.0) (\(worst.1))")
    }
}

/// ‖a − b‖ / ‖b‖ in Double.
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var difference = 0.0, norm = 0.0
    for i in a.indices {
        difference += Double(a[i] - b[i]) * Double(a[i] - b[i])
        norm += Double(b[i]) * Double(b[i])
    }
    return (difference / max(norm, 1e-30)).squareRoot()
}
