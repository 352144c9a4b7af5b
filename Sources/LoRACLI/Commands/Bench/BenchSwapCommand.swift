import ArgumentParser
import Foundation
import Inference
import Kernels
import LoRA
import Models
import Registry
import Training

struct BenchSwapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swap", abstract: "Adapter swapping: cached and cold loads, mixed-adapter batches, registry listing.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var lora: LoRAOptions

    @Option(name: .long, help: "Repetitions of each decode measurement (the best is reported).")
    var repeats: Int = 3

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    }

    /// A cached swap (cache lookup), a cold load of a PEFT adapter from disk, decode tokens/s of
    /// 8 rows with 8 different adapters vs one shared adapter, and listing 1,000 adapters.
    func run() throws {
        let languageModel = try modelOptions.load()
        let model = languageModel.model
        let config = model.config
        let directory = NSTemporaryDirectory() + "lora-bench-swap-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let loraConfig = try lora.config()
        let adapters = try Bench.writeAdapters(loraConfig, config: config, to: directory)
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
        try Bench.printJSON([
            "model": modelOptions.resolvedPath, "threads": modelOptions.threads, "kernels": KernelPath.summary,
            "adapter": ["rank": loraConfig.rank, "targets": loraConfig.targets.compactMap(\.peftName), "file_bytes": fileBytes] as [String: Any],
            "swap_cached_ms": Bench.round3(swapMilliseconds * 1000) / 1000,
            "load_cold_ms_best": Bench.round3(cold.min() ?? 0), "load_cold_ms_median": Bench.round3(cold.sorted()[cold.count / 2]),
            "batch8_tokens_per_second": [
                "eight_adapters": Bench.round3(mixed), "one_adapter": Bench.round3(single), "base": Bench.round3(baseRate), "ratio": Bench.round3(mixed / max(single, 1e-9)),
            ],
            "batch8_greedy_tokens_per_second": [
                "eight_adapters": Bench.round3(greedyMixed), "one_adapter": Bench.round3(greedySingle), "base": Bench.round3(greedyBase),
                "ratio": Bench.round3(greedyMixed / max(greedySingle, 1e-9)), "one_row_base": Bench.round3(greedyOneRow),
                "ratio_base_to_one_row": Bench.round3(greedyBase / max(greedyOneRow, 1e-9)),
            ],
            "list_1000_adapters_ms_best": Bench.round3(listing.min() ?? 0),
            "checksum": sink % 2,
        ])
    }
}
