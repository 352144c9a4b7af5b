import Foundation
import Formats
import Kernels
import Models
import Testing
import TestSupport

/// The real model, loaded once for every test in this target.
enum SharedModel {
    static let model = Result { LlamaModel(weights: try LlamaWeights(gguf: GGUFFile(path: Fixtures.modelPath))) }
}

/// Every position's top-10 logits and logsumexp, and the full last row, against transformers
/// running the same dequantized weights in float32.
struct LogitsFixtureTests {
    @Test func fixturesArePresent() throws {
        #expect(try Fixtures.jsonLines("logits.jsonl").count >= 4, "logits.jsonl under \(Fixtures.directory)")
    }

    @Test(arguments: 0..<4)
    func logitsMatchTransformers(index: Int) throws {
        let model = try SharedModel.model.get()
        let cases = try Fixtures.jsonLines("logits.jsonl")
        let entry = try #require(cases.count > index ? cases[index] : nil)
        let ids = try #require(entry["ids"] as? [Int])
        let logsumexp = try #require(entry["logsumexp"] as? [Double])
        let top10 = try #require(entry["top10"] as? [[[Double]]])
        let V = model.config.vocabSize
        let logits = try model.forward(ids, cache: KVCache(config: model.config, capacity: ids.count), logits: .all)
        for t in 0..<ids.count {
            let row = Array(logits[(t * V)..<((t + 1) * V)])
            let lse = row.withUnsafeBufferPointer { Softmax.logSumExp($0.baseAddress!, count: V) }
            #expect(abs(lse - logsumexp[t]) < Double(Tolerance.logits), "position \(t) logsumexp")
            for pair in top10[t] {
                let id = Int(pair[0])
                #expect(abs(row[id] - Float(pair[1])) < Tolerance.logits, "position \(t) id \(id)")
            }
            // Top-10 ids agree except where two logits are within tolerance of each other.
            let ours = row.indices.sorted { row[$0] > row[$1] }.prefix(10)
            for (rank, (mine, theirs)) in zip(ours, top10[t]).enumerated() where mine != Int(theirs[0]) {
                #expect(abs(row[mine] - Float(theirs[1])) < 2 * Tolerance.logits, "position \(t) rank \(rank)")
            }
        }
        let file = try #require(entry["last_logits_f32"] as? String)
        let lastRow = try Fixtures.floats(file)
        let ours = Array(logits[((ids.count - 1) * V)...])
        let worst = maxAbsDifference(ours, lastRow)
        #expect(worst.value < Tolerance.logits, "last row: max |Δ| \(worst.value) at id \(worst.index)")
    }

    /// A training-only load keeps no quantized blocks, scores a batch bit for bit as the full
    /// load does (training reads the Float32 weights alone), and still decodes from Float32.
    @Test func trainingOnlyLoadScoresTheSame() throws {
        let model = try SharedModel.model.get()
        let trainingOnly = LlamaModel(weights: try LlamaWeights(gguf: GGUFFile(path: Fixtures.modelPath), keepQuantized: false))
        #expect(trainingOnly.weights.quantizedHead == nil && model.weights.quantizedHead != nil)
        #expect(trainingOnly.weights.layers.allSatisfy { layer in LayerTensor.allCases.allSatisfy { layer.quantized($0) == nil } })
        let ids = try #require(try Fixtures.jsonLines("chat.jsonl").first?["ids"] as? [Int])
        let batch = TrainingBatch(inputIds: [ids], labels: [ids])
        // sgemm's bits depend on OpenBLAS's thread count, which tests running beside this one
        // change: both losses run with the same count, held by one section.
        let (trainingLoss, fullLoss) = try BLAS.singleThreaded { (try trainingOnly.loss(batch, adapters: nil), try model.loss(batch, adapters: nil)) }
        #expect(trainingLoss == fullLoss)
        try expectLastRowMatchesFixtures(trainingOnly)
    }

    /// The usual forward (last row of logits only, quantized products for short prompts)
    /// against the full last row transformers gave, for every fixture prompt.
    @Test func lastRowOnlyForwardMatchesTransformers() throws {
        try expectLastRowMatchesFixtures(try SharedModel.model.get())
    }

    func expectLastRowMatchesFixtures(_ model: LlamaModel) throws {
        for entry in try Fixtures.jsonLines("logits.jsonl") {
            let ids = try #require(entry["ids"] as? [Int])
            let expected = try Fixtures.floats(try #require(entry["last_logits_f32"] as? String))
            let logits = try model.forward(ids, cache: KVCache(config: model.config, capacity: ids.count))
            let worst = maxAbsDifference(logits, expected)
            #expect(worst.value < Tolerance.logits, "\(ids.count) ids: max |Δ| \(worst.value) at id \(worst.index)")
        }
    }
}
