import ArgumentParser
import Foundation
import Inference
import Kernels
import LoRA
import Models
import Registry
import Training

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "LoRA training steps (forward + backward + AdamW) on a fixed batch, as PEFT's benchmark runs them.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var lora: LoRAOptions

    @Option(name: .long, help: "Steps measured (best and median are reported), after one warm-up step.")
    var repeats: Int = 3

    @Option(name: .long, help: "Sequences per batch.")
    var batchSize: Int = 4

    @Option(name: .long, help: "Tokens per sequence.")
    var sequenceLength: Int = 256

    @Flag(name: .long, help: "Activation checkpointing.")
    var gradCheckpoint = false

    func validate() throws {
        guard repeats >= 1, batchSize >= 1, sequenceLength >= 2 else { throw ValidationError("--repeats and --batch-size must be at least 1, --sequence-length at least 2") }
    }

    /// Tokens/s, the machine's 4·N FLOP-per-token limit at its measured sgemm speed, peak memory.
    func run() throws {
        let loadStart = Date()
        let languageModel = try modelOptions.load(decoding: false)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let model = languageModel.model
        let config = model.config
        let loraConfig = try lora.config()
        let sentence = languageModel.tokenizer.encode(
            "Small specialised models beat one big general model on cost and energy for most enterprise tasks. ")
        let examples = (0..<batchSize).map { b in
            Example(tokens: (0..<sequenceLength).map { sentence[($0 + b) % sentence.count] }, trained: Array(repeating: true, count: sequenceLength))
        }
        let options = TrainingOptions(
            iterations: repeats + 1, batchSize: batchSize, learningRate: 1e-4, stepsPerReport: 1, stepsPerEval: 0,
            gradientCheckpointing: gradCheckpoint)
        let trainer = Trainer(
            model: model, adapter: .initialized(loraConfig, for: config, seed: 0), train: examples, valid: nil, options: options, padId: 0)
        var rates: [Double] = []
        _ = try trainer.run { event in
            // The first step warms caches and allocators up; it is not counted.
            if case .step(let step) = event, step.iteration > 1 { rates.append(step.tokensPerSecond) }
            return .proceed
        }
        rates.sort()
        let gflops = Machine.sgemmGFLOPS(T: batchSize * sequenceLength, K: config.hiddenSize, N: config.intermediateSize)
        let parameters = Double(model.weights.parameterCount)
        // Forward 2N + backward-to-inputs 2N per token, plus attention: QKᵀ and PV forward
        // (4·L·C·T per token at sequence length T) and their four gradient products backward
        // (8·L·C·T), over the full T × T products: at T = 256 the ≈ 0.6 GFLOP a token the peers' baselines use.
        let flopsPerToken = 4 * parameters + 12 * Double(config.numHiddenLayers * config.hiddenSize * sequenceLength)
        let limit = gflops * 1e9 / flopsPerToken
        let memory = Machine.residentMiB()
        try Bench.printJSON([
            "model": modelOptions.resolvedPath, "threads": modelOptions.threads, "load_seconds": Bench.round3(loadSeconds),
            "train": [
                "batch_size": batchSize, "sequence_length": sequenceLength, "rank": loraConfig.rank, "gradient_checkpointing": gradCheckpoint,
                "targets": loraConfig.targets.compactMap(\.peftName), "trainable_parameters": trainer.adapter.parameterCount,
                "tokens_per_second_best": Bench.round3(rates.last ?? 0), "tokens_per_second_median": Bench.round3(rates[rates.count / 2]),
                "limit_tokens_per_second": Bench.round3(limit), "fraction_of_limit": Bench.round3((rates.last ?? 0) / limit),
            ] as [String: Any],
            "machine": ["sgemm_gflops": Bench.round3(gflops)], "kernels": KernelPath.summary,
            "memory": ["resident_mib": memory.current, "peak_resident_mib": memory.peak],
        ])
    }
}
