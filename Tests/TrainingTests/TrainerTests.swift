import Foundation
import LoRA
import Models
import Testing
import TestSupport
import Training

struct TrainerTests {
    /// A tiny task a tiny model can learn: sequences counting up modulo the vocabulary.
    static func examples(_ count: Int, offset: Int) -> [Example] {
        (0..<count).map { i in
            let start = (i * 7 + offset) % 50
            let tokens = (0..<8).map { (start + $0) % 64 }
            return Example(tokens: tokens, trained: Array(repeating: true, count: 8))
        }
    }

    static func options(iterations: Int, saveEvery: Int = 0) -> TrainingOptions {
        TrainingOptions(
            iterations: iterations, batchSize: 4, learningRate: 1e-2, schedule: .cosine, warmupSteps: 2, weightDecay: 0.01,
            seed: 7, stepsPerReport: 1, stepsPerEval: 5, saveEvery: saveEvery)
    }

    @Test func validationLossGoesDown() throws {
        let model = LlamaModel(weights: TinyLlama.random(seed: 50))
        let adapter = LoRAAdapter.initialized(LoRAConfig(rank: 4, alpha: 8, targets: LayerTensor.projections), for: model.config, seed: 1)
        let trainer = Trainer(
            model: model, adapter: adapter, train: Self.examples(32, offset: 0), valid: Self.examples(8, offset: 3),
            options: { var o = Self.options(iterations: 60); o.learningRate = 5e-2; o.stepsPerEval = 10; return o }(), padId: 0)
        let before = try trainer.validate().loss
        var validations: [Double] = []
        let report = try trainer.run { event in
            if case .validation(_, let loss, _) = event { validations.append(loss) }
            return .proceed
        }
        #expect(report.steps == 60 && !report.interrupted)
        #expect(validations.count == 6)
        #expect(try #require(report.finalValidLoss) < before * 0.8, "validation loss \(before) → \(report.finalValidLoss ?? .nan)")
        #expect(report.lossCurve.count == 60)
    }

    /// Stopping at step 4 (as Ctrl-C does), saving, loading and continuing gives exactly the
    /// adapter and optimizer state of an uninterrupted run: batches and dropout masks are
    /// functions of (seed, step), so nothing else needs restoring.
    @Test func resumedRunEqualsUninterruptedRunBitForBit() throws {
        let model = LlamaModel(weights: TinyLlama.random(seed: 51))
        let config = LoRAConfig(rank: 2, alpha: 4, dropout: 0.1, targets: [.q, .v, .down])
        let adapter = LoRAAdapter.initialized(config, for: model.config, seed: 2)
        let train = Self.examples(10, offset: 1)
        let options = Self.options(iterations: 9)

        let straight = Trainer(model: model, adapter: adapter, train: train, valid: nil, options: options, padId: 0)
        _ = try straight.run()

        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = Trainer(
            model: model, adapter: adapter, train: train, valid: nil, options: options, padId: 0, checkpointDirectory: directory)
        var savedPath: String?
        let interrupted = try first.run { event in
            if case .checkpoint(_, let path) = event { savedPath = path }
            if case .step(let step) = event, step.iteration == 4 { return .stop }
            return .proceed
        }
        #expect(interrupted.interrupted && interrupted.steps == 4)
        let path = try #require(savedPath)
        let checkpoint = try Checkpoint.load(from: path, for: model.config)
        #expect(checkpoint.step == 4)
        let resumed = Trainer(
            model: model, adapter: adapter, train: train, valid: nil, options: options, padId: 0, resumeFrom: checkpoint)
        let report = try resumed.run()
        #expect(report.steps == 9)
        #expect(resumed.adapter == straight.adapter)
        #expect(resumed.checkpoint.firstMoment == straight.checkpoint.firstMoment)
        #expect(resumed.checkpoint.secondMoment == straight.checkpoint.secondMoment)
    }

    @Test func gradientAccumulationEqualsOneLargeBatch() throws {
        let model = LlamaModel(weights: TinyLlama.random(seed: 52))
        let adapter = LoRAAdapter.initialized(LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), for: model.config, seed: 3)
        let train = Self.examples(8, offset: 2)
        var large = Self.options(iterations: 3)
        large.batchSize = 8
        var accumulated = large
        accumulated.batchSize = 2
        accumulated.gradientAccumulation = 4
        let a = Trainer(model: model, adapter: adapter, train: train, valid: nil, options: large, padId: 0)
        let b = Trainer(model: model, adapter: adapter, train: train, valid: nil, options: accumulated, padId: 0)
        _ = try a.run()
        _ = try b.run()
        // Same examples per step, summed in another order: equal up to float rounding.
        for (la, lb) in zip(a.adapter.layers, b.adapter.layers) {
            for tensor in [LayerTensor.q, .v] {
                let pa = try #require(la[tensor]), pb = try #require(lb[tensor])
                #expect(maxAbsDifference(pa.a, pb.a).value < 1e-5 && maxAbsDifference(pa.b, pb.b).value < 1e-5)
            }
        }
    }

    @Test func learningRateSchedules() {
        let warm = LearningRateSchedule(peak: 1, shape: .linear, warmupSteps: 4, totalSteps: 14)
        #expect(warm.rate(at: 1) == 0.2 && warm.rate(at: 4) == 0.8 && warm.rate(at: 5) == 1)
        #expect(abs(warm.rate(at: 10) - 0.5) < 1e-6 && warm.rate(at: 15) == 0)
        // transformers' cosine: peak · ½(1 + cos(π · s / total)) at 0-based step s.
        let cosine = LearningRateSchedule(peak: 2, shape: .cosine, totalSteps: 10)
        #expect(cosine.rate(at: 1) == 2 && abs(cosine.rate(at: 6) - 1) < 1e-6 && abs(cosine.rate(at: 11)) < 1e-6)
        #expect(LearningRateSchedule(peak: 3, totalSteps: 5).rate(at: 5) == 3)
    }
}

struct PEFTFilesTests {
    @Test func saveAndLoadRoundTripsEveryTensor() throws {
        let config = TinyLlama.config
        var adapter = LoRAAdapter.initialized(
            LoRAConfig(rank: 3, alpha: 6, targets: [.q, .k, .down], layers: [1], useRSLoRA: true), for: config, seed: 9)
        let count = try #require(adapter.layers[1][.q]).b.count
        adapter.layers[1][.q]?.b = FiniteDifference.random(count, seed: 1)
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try adapter.savePEFT(to: directory, baseModelName: "tiny")
        let loaded = try LoRAAdapter.loadPEFT(from: directory, for: config)
        #expect(loaded == adapter)
        #expect(loaded.layers[0].isEmpty)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/adapter_config.json"))) as? [String: Any]
        #expect(json?["peft_type"] as? String == "LORA" && json?["r"] as? Int == 3 && json?["use_rslora"] as? Bool == true)
        #expect(json?["target_modules"] as? [String] == ["q_proj", "k_proj", "down_proj"])
    }

    /// The SmolLM2 fixture adapter on a model of other shapes: refused, every mismatch named.
    @Test func adapterForAnotherBaseIsRefused() throws {
        do {
            _ = try LoRAAdapter.loadPEFT(from: Fixtures.path("peft_adapter"), for: TinyLlama.config)
            Issue.record("a SmolLM2 adapter loaded onto the tiny model")
        } catch let error as LoRAError {
            #expect(error.description.contains("another base"), "\(error)")
        }
    }

    @Test func corruptAdapterFilesAreErrors() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let adapter = LoRAAdapter.initialized(LoRAConfig(rank: 2, alpha: 4, targets: [.q]), for: TinyLlama.config, seed: 1)
        try adapter.savePEFT(to: directory, baseModelName: "tiny")
        let weights = "\(directory)/adapter_model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: weights))
        try data.prefix(data.count - 10).write(to: URL(fileURLWithPath: weights))
        #expect(throws: (any Error).self) { try LoRAAdapter.loadPEFT(from: directory, for: TinyLlama.config) }
        try "{\"r\": 2}".write(toFile: "\(directory)/adapter_config.json", atomically: true, encoding: .utf8)
        #expect(throws: LoRAError.self) { try LoRAAdapter.loadPEFT(from: directory, for: TinyLlama.config) }
        try #"{"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "use_dora": true}"#.write(
            toFile: "\(directory)/adapter_config.json", atomically: true, encoding: .utf8)
        #expect(throws: LoRAError.unsupported(path: "\(directory)/adapter_config.json", feature: "DoRA (use_dora)")) {
            try LoRAAdapter.loadPEFT(from: directory, for: TinyLlama.config)
        }
    }

    /// Adapters that would load and answer garbage, or adapt nothing, are refused by name.
    @Test func nonFiniteWeightsAndEmptyLayerSelectionsAreRefused() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var adapter = LoRAAdapter.initialized(LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), for: TinyLlama.config, seed: 1)
        adapter.layers[1][.v]?.a[3] = .nan
        try adapter.savePEFT(to: directory, baseModelName: "tiny")
        #expect(throws: LoRAError.nonFinite(path: "\(directory)/adapter_model.safetensors", tensor: LoRAAdapter.peftTensorName(layer: 1, .v, "A"), index: 3)) {
            try LoRAAdapter.loadPEFT(from: directory, for: TinyLlama.config)
        }
        let nowhere = LoRAAdapter.initialized(LoRAConfig(rank: 2, alpha: 4, targets: [.q], layers: [99]), for: TinyLlama.config, seed: 1)
        try nowhere.savePEFT(to: directory, baseModelName: "tiny")
        #expect(throws: LoRAError.self) { try LoRAAdapter.loadPEFT(from: directory, for: TinyLlama.config) }
    }

    /// Training settings that cannot work are refused before anything is allocated: a layer
    /// the model lacks, a rank whose parameters exceed the memory.
    @Test func impossibleTrainingConfigurationsAreRefusedUpFront() throws {
        let model = TinyLlama.config
        #expect(throws: LoRAError.self) { try LoRAConfig(rank: 2, alpha: 4, targets: [.q], layers: [0, 99]).check(for: model) }
        let huge = LoRAConfig(rank: 100_000, alpha: 16, targets: LayerTensor.projections)
        #expect(throws: LoRAError.self) { try huge.check(for: model, memoryBytes: 1 << 26) }
        try LoRAConfig(rank: 8, alpha: 16, targets: LayerTensor.projections, layers: [1]).check(for: model)
        #expect(LoRAConfig(rank: 2, alpha: 4, targets: [.q]).parameterCount(for: model)
            == LoRAAdapter.initialized(LoRAConfig(rank: 2, alpha: 4, targets: [.q]), for: model, seed: 1).parameterCount)
    }
}

/// What `base_model_name_or_path` may say: a contradiction needs a stated family or size that
/// none of the base's names states.
struct BaseModelNameTests {
    @Test func onlyStatedFamiliesAndSizesContradict() {
        let smol = ["SmolLM2-135M-Instruct.Q4_1.gguf", "Smollm2 135M 8k Lc100K Mix1 Ep2"]
        for agreeing in ["HuggingFaceTB/SmolLM2-135M-Instruct", "/work/main/models", "model", "models/SmolLM2-135M-Instruct.Q4_1.gguf",
                         "/home/phil/checkpoints", "smol", ""] {
            #expect(BaseModelName.contradiction(adapterBase: agreeing, baseNames: smol) == nil, "\(agreeing)")
        }
        for contradicting in ["meta-llama/Llama-2-7b-hf", "Qwen/Qwen2.5-Coder-0.5B-Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct", "microsoft/phi-3"] {
            #expect(BaseModelName.contradiction(adapterBase: contradicting, baseNames: smol) != nil, "\(contradicting)")
        }
        let qwen = ["Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf"]
        #expect(BaseModelName.contradiction(adapterBase: "Qwen/Qwen2.5-Coder-0.5B-Instruct", baseNames: qwen) == nil)
        #expect(BaseModelName.contradiction(adapterBase: "Qwen/Qwen2.5-Coder-1.5B-Instruct", baseNames: qwen) != nil)
    }
}
