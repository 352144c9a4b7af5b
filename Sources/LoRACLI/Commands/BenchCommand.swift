import ArgumentParser
import Foundation
import Inference
import Kernels
import LoRA
import Models
import Registry
import Training

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure load time, prefill and decode speed, and memory; print JSON.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Prompt length for the prefill measurement.")
    var promptTokens: Int = 512

    @Option(name: .long, help: "Tokens to generate for the decode measurement.")
    var decodeTokens: Int = 128

    @Option(name: .long, help: "Repetitions of each measurement (best and median are reported).")
    var repeats: Int = 3

    @Flag(name: .long, help: "Measure LoRA training instead: forward + backward + AdamW steps.")
    var train = false

    @Flag(name: .long, help: "Measure adapter swapping: cached and cold loads, mixed-adapter batches, registry listing.")
    var swap = false

    @Flag(name: .long, help: "Measure the HTTP server: 1 client, and 8 concurrent streaming clients on the base, one adapter and 8 adapters.")
    var serve = false

    @Option(name: .long, help: "With --serve: tokens generated per request.")
    var serveTokens: Int = 64

    @Option(name: .long, help: "With --serve: rounds of the four scenarios, interleaved; each figure is its scenario's median round.")
    var serveRounds: Int = 3

    @Option(name: .long, help: "With --train: sequences per batch.")
    var batchSize: Int = 4

    @Option(name: .long, help: "With --train: tokens per sequence.")
    var sequenceLength: Int = 256

    @Option(name: .long, help: "With --train: LoRA rank.")
    var rank: Int = 8

    @Option(name: .long, help: "With --train: adapted projections (PEFT names, letters or all).")
    var targets: String = "all"

    @Flag(name: .long, help: "With --train: activation checkpointing.")
    var gradCheckpoint = false

    func validate() throws {
        guard promptTokens >= 1, decodeTokens >= 1, repeats >= 1, batchSize >= 1, sequenceLength >= 2, rank >= 1 else {
            throw ValidationError("--prompt-tokens, --decode-tokens, --repeats, --batch-size, --rank must be at least 1, --sequence-length at least 2")
        }
    }

    func run() async throws {
        let loadStart = Date()
        let languageModel = try modelOptions.load(decoding: !train)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        if train { return try runTraining(languageModel, loadSeconds: loadSeconds) }
        if swap { return try runSwap(languageModel) }
        if serve { return try await runServe(languageModel) }
        let model = languageModel.model
        let config = model.config
        guard promptTokens + decodeTokens <= config.maxPositionEmbeddings else {
            throw ValidationError("--prompt-tokens + --decode-tokens exceeds the context (\(config.maxPositionEmbeddings))")
        }

        // A real text prompt, repeated to length, so the tokens are typical ones.
        let sentence = languageModel.tokenizer.encode(
            "The workbench trains small adapters on a frozen base model and serves many of them at once. ")
        let prompt = (0..<promptTokens).map { sentence[$0 % sentence.count] }

        let prefill = try measure(repeats) {
            let cache = KVCache(config: config, capacity: promptTokens)
            _ = try model.forward(prompt, cache: cache)
            return Double(promptTokens)
        }
        let decode = try measure(repeats) {
            let cache = KVCache(config: config, capacity: 16 + decodeTokens)
            var logits = try model.forward(Array(prompt.prefix(16)), cache: cache)
            let start = Date()
            for _ in 0..<decodeTokens {
                logits = try model.forward([Sampler.argmax(logits)], cache: cache)
            }
            return (Double(decodeTokens), Date().timeIntervalSince(start))
        }
        // Greedy generation as `generate` runs it: the head's argmax screen instead of full logits.
        let greedy = try measure(repeats) {
            let cache = KVCache(config: config, capacity: 16 + decodeTokens)
            var next = StepOutput.logits(try model.forward(Array(prompt.prefix(16)), cache: cache))
            var sampler = Sampler(SamplingParameters())
            let start = Date()
            for _ in 0..<decodeTokens {
                next = try model.decodeStep([sampler.next(next)], caches: [cache], adapters: [nil], greedy: [true])[0]
            }
            return (Double(decodeTokens), Date().timeIntervalSince(start))
        }
        // The same after the whole prompt (llama-bench's `-d`): attention then reads
        // `promptTokens` cached positions per layer for every new token.
        let greedyAfterPrompt = try measure(repeats) {
            let cache = KVCache(config: config, capacity: promptTokens + decodeTokens)
            var next = StepOutput.logits(try model.forward(prompt, cache: cache))
            var sampler = Sampler(SamplingParameters())
            let start = Date()
            for _ in 0..<decodeTokens {
                next = try model.decodeStep([sampler.next(next)], caches: [cache], adapters: [nil], greedy: [true])[0]
            }
            return (Double(decodeTokens), Date().timeIntervalSince(start))
        }

        let gflops = Machine.sgemmGFLOPS(T: promptTokens, K: config.hiddenSize, N: config.intermediateSize)
        let bandwidth = Machine.readBandwidthGBs()
        let parameters = Double(model.weights.parameterCount)
        // Prefill: 2 FLOP per weight per token plus attention's QKᵀ and PV (2·C·T each per
        // layer), counted over the full T × T products as the peers' baselines count them.
        let attentionFlopsPerToken = 4.0 * Double(config.numHiddenLayers * config.hiddenSize) * Double(promptTokens)
        let prefillLimit = gflops * 1e9 / (2 * parameters + attentionFlopsPerToken)
        // Decode reads every weight once per token (quantized blocks where the file had them).
        let decodeBytes = model.weights.decodeBytesPerToken
        let decodeLimit = bandwidth * 1e9 / Double(decodeBytes)
        let report: [String: Any] = [
            "model": modelOptions.resolvedPath,
            "threads": modelOptions.threads,
            "load_seconds": round3(loadSeconds),
            "prefill": [
                "prompt_tokens": promptTokens,
                "tokens_per_second_best": round3(prefill.best), "tokens_per_second_median": round3(prefill.median),
                "limit_tokens_per_second": round3(prefillLimit), "fraction_of_limit": round3(prefill.best / prefillLimit),
            ],
            "decode": [
                "new_tokens": decodeTokens,
                "tokens_per_second_best": round3(decode.best), "tokens_per_second_median": round3(decode.median),
                "weight_bytes_per_token": decodeBytes,
                "limit_tokens_per_second": round3(decodeLimit), "fraction_of_limit": round3(decode.best / decodeLimit),
                "greedy_tokens_per_second_best": round3(greedy.best), "greedy_tokens_per_second_median": round3(greedy.median),
                "argmax_screen": model.weights.argmaxScreen != nil,
                "greedy_after_prompt_tokens_per_second_best": round3(greedyAfterPrompt.best),
                "greedy_after_prompt_tokens_per_second_median": round3(greedyAfterPrompt.median),
            ],
            "machine": ["sgemm_gflops": round3(gflops), "read_bandwidth_gb_per_s": round3(bandwidth)], "kernels": KernelPath.summary,
            "memory": ["resident_mib": Machine.residentMiB().current, "peak_resident_mib": Machine.residentMiB().peak],
        ]
        try printJSON(report)
    }

    /// Training steps on a fixed batch of real text, as PEFT's benchmark does: tokens/s,
    /// the machine's 4·N FLOP-per-token limit at its measured sgemm speed, peak memory.
    private func runTraining(_ languageModel: LanguageModel, loadSeconds: Double) throws {
        let model = languageModel.model
        let config = model.config
        let loraConfig = LoRAConfig(rank: rank, alpha: Float(2 * rank), targets: try LoRAConfig.parseTargets(targets))
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
        try printJSON([
            "model": modelOptions.resolvedPath, "threads": modelOptions.threads, "load_seconds": round3(loadSeconds),
            "train": [
                "batch_size": batchSize, "sequence_length": sequenceLength, "rank": rank, "gradient_checkpointing": gradCheckpoint,
                "targets": loraConfig.targets.compactMap(\.peftName), "trainable_parameters": trainer.adapter.parameterCount,
                "tokens_per_second_best": round3(rates.last ?? 0), "tokens_per_second_median": round3(rates[rates.count / 2]),
                "limit_tokens_per_second": round3(limit), "fraction_of_limit": round3((rates.last ?? 0) / limit),
            ] as [String: Any],
            "machine": ["sgemm_gflops": round3(gflops)], "kernels": KernelPath.summary,
            "memory": ["resident_mib": memory.current, "peak_resident_mib": memory.peak],
        ])
    }

    /// Hot-swap figures: a cached swap (cache lookup), a cold load of an r=8 all-linear PEFT
    /// adapter from disk, decode tokens/s of 8 rows with 8 different adapters vs one shared
    /// adapter, and listing a registry of 1,000 adapters.
    private func runSwap(_ languageModel: LanguageModel) throws {
        let model = languageModel.model
        let config = model.config
        let directory = NSTemporaryDirectory() + "lora-bench-swap-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let loraConfig = LoRAConfig(rank: rank, alpha: Float(2 * rank), targets: try LoRAConfig.parseTargets(targets))
        let adapters = try Self.writeAdapters(loraConfig, config: config, to: directory)
        let fileBytes = (try FileManager.default.attributesOfItem(atPath: "\(directory)/a0/\(LoRAAdapter.weightsFile)")[.size] as? NSNumber)?.intValue ?? 0

        // Cold load from disk (page cache dropped is beyond a benchmark's reach; best of 5).
        var cold: [Double] = []
        for i in 0..<5 {
            let start = Date()
            _ = try LoRAAdapter.loadPEFT(from: "\(directory)/a\(i % 8)", for: config)
            cold.append(Date().timeIntervalSince(start) * 1000)
        }
        // A cached swap: fetching another adapter already in memory.
        let cache = AdapterCache(budgetBytes: 1 << 30)
        for i in 0..<8 { _ = cache.adapters(for: "a\(i)") { adapters[i] } }
        let lookups = 10_000
        let swapStart = Date()
        var sink = 0
        for i in 0..<lookups { sink &+= cache.adapters(for: "a\(i % 8)") { adapters[0] }.count }
        let swapMilliseconds = Date().timeIntervalSince(swapStart) * 1000 / Double(lookups)

        // 8 rows decoding together: 8 different adapters vs one adapter for all vs the base; and one
        // row alone, whose ratio to 8 rows bounds the server's 8-clients-to-one ratio.
        let prompt = languageModel.tokenizer.encode("The workbench serves many adapters from one base model.")
        func decodeRate(_ rowAdapters: [[LayerAdapters]?], greedy: Bool) throws -> Double {
            let caches = rowAdapters.map { _ in KVCache(config: config, capacity: prompt.count + 40) }
            for (cache, adapter) in zip(caches, rowAdapters) { _ = try model.forward(prompt, cache: cache, adapters: adapter) }
            let steps = 32, rows = rowAdapters.count
            let start = Date()
            for step in 0..<steps {
                let tokens = Array(repeating: 100 + step, count: rows)
                if greedy {
                    _ = try model.decodeStep(tokens, caches: caches, adapters: rowAdapters, greedy: Array(repeating: true, count: rows))
                } else {
                    _ = try model.decodeStep(tokens, caches: caches, adapters: rowAdapters)
                }
            }
            return Double(steps * rows) / Date().timeIntervalSince(start)
        }
        func best(_ rowAdapters: [[LayerAdapters]?], greedy: Bool) throws -> Double {
            try (0..<repeats).map { _ in try decodeRate(rowAdapters, greedy: greedy) }.max() ?? 0
        }
        _ = try decodeRate(Array(repeating: adapters[0], count: 8), greedy: false)
        // Full logits (sampling) and greedy (the argmax screen), as the server decodes them.
        let (mixed, single, baseRate) = (
            try best(adapters.map { $0 }, greedy: false), try best(Array(repeating: adapters[0], count: 8), greedy: false),
            try best(Array(repeating: nil, count: 8), greedy: false)
        )
        let (greedyMixed, greedySingle, greedyBase, greedyOneRow) = (
            try best(adapters.map { $0 }, greedy: true), try best(Array(repeating: adapters[0], count: 8), greedy: true),
            try best(Array(repeating: nil, count: 8), greedy: true), try best([nil], greedy: true)
        )

        // Listing a registry of 1,000 adapters (rows only; listing never reads adapter files).
        let store = try AdapterStore(root: "\(directory)/store")
        let base = try store.registry.registerBaseModel(
            BaseModelRecord(name: "bench", architecture: "llama", path: "-", fingerprint: "bench", shapes: "{}", fileSize: 0, modifiedAt: 0))
        for i in 0..<1000 {
            _ = try store.registry.registerAdapter(
                AdapterRecord(name: "adapter-\(i % 100)", baseModelId: base.id ?? 0, rank: 8, alpha: 16, targets: "q_proj,v_proj")
            ) { "adapter-\(i % 100)/\($0)" }
        }
        var listing: [Double] = []
        for _ in 0..<5 {
            let start = Date()
            let records = try store.registry.adapters()
            sink &+= records.map(\.reference).joined(separator: "\n").count
            listing.append(Date().timeIntervalSince(start) * 1000)
        }
        try printJSON([
            "model": modelOptions.resolvedPath, "threads": modelOptions.threads, "kernels": KernelPath.summary,
            "adapter": ["rank": rank, "targets": loraConfig.targets.compactMap(\.peftName), "file_bytes": fileBytes] as [String: Any],
            "swap_cached_ms": round3(swapMilliseconds * 1000) / 1000,
            "load_cold_ms_best": round3(cold.min() ?? 0), "load_cold_ms_median": round3(cold.sorted()[cold.count / 2]),
            "batch8_tokens_per_second": [
                "eight_adapters": round3(mixed), "one_adapter": round3(single), "base": round3(baseRate), "ratio": round3(mixed / max(single, 1e-9)),
            ],
            "batch8_greedy_tokens_per_second": [
                "eight_adapters": round3(greedyMixed), "one_adapter": round3(greedySingle), "base": round3(greedyBase),
                "ratio": round3(greedyMixed / max(greedySingle, 1e-9)), "one_row_base": round3(greedyOneRow),
                "ratio_base_to_one_row": round3(greedyBase / max(greedyOneRow, 1e-9)),
            ],
            "list_1000_adapters_ms_best": round3(listing.min() ?? 0),
            "checksum": sink % 2,
        ])
    }

    /// Eight distinct adapters (B filled, so each changes the output) saved as PEFT folders
    /// `a0` ... `a7` under `directory`.
    static func writeAdapters(_ loraConfig: LoRAConfig, config: LlamaConfig, to directory: String) throws -> [[LayerAdapters]] {
        try (0..<8).map { seed in
            var adapter = LoRAAdapter.initialized(loraConfig, for: config, seed: UInt64(seed))
            for l in adapter.layers.indices {
                for tensor in loraConfig.targets {
                    guard let count = adapter.layers[l][tensor]?.b.count else { continue }
                    adapter.layers[l][tensor]?.b = (0..<count).map { Float(($0 * 7 + seed) % 13) * 1e-3 }
                }
            }
            try adapter.savePEFT(to: "\(directory)/a\(seed)", baseModelName: "bench")
            return adapter.layers
        }
    }

    func printJSON(_ object: [String: Any]) throws {
        let json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }

    /// Runs `body` `count` times; it returns (units, seconds) and the rates are units/second.
    private func measure(_ count: Int, _ body: () throws -> (Double, Double)) rethrows -> (best: Double, median: Double) {
        var rates: [Double] = []
        for _ in 0..<count {
            let (units, seconds) = try body()
            rates.append(units / seconds)
        }
        rates.sort()
        return (rates.last!, rates[rates.count / 2])
    }

    private func measure(_ count: Int, _ body: () throws -> Double) rethrows -> (best: Double, median: Double) {
        try measure(count) { () throws -> (Double, Double) in
            let start = Date()
            let units = try body()
            return (units, Date().timeIntervalSince(start))
        }
    }

    func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
}
