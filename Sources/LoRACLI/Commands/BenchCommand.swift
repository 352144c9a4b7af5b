import ArgumentParser
import Foundation
import Inference
import Kernels
import Models

struct BenchCommand: ParsableCommand {
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

    func validate() throws {
        guard promptTokens >= 1, decodeTokens >= 1, repeats >= 1 else {
            throw ValidationError("--prompt-tokens, --decode-tokens and --repeats must be at least 1")
        }
    }

    func run() throws {
        let loadStart = Date()
        let languageModel = try modelOptions.load()
        let loadSeconds = Date().timeIntervalSince(loadStart)
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

        let gflops = Machine.sgemmGFLOPS(T: promptTokens, K: config.hiddenSize, N: config.intermediateSize)
        let bandwidth = Machine.readBandwidthGBs()
        let parameters = Double(model.weights.parameterCount)
        // Prefill: 2 FLOP per weight per token plus attention (QKᵀ and PV, causal half).
        let attentionFlopsPerToken = 2.0 * Double(config.numHiddenLayers * config.hiddenSize) * Double(promptTokens)
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
            ],
            "machine": ["sgemm_gflops": round3(gflops), "read_bandwidth_gb_per_s": round3(bandwidth)],
            "memory": ["resident_mib": Machine.residentMiB().current, "peak_resident_mib": Machine.residentMiB().peak],
        ]
        let json = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
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

    private func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
}
