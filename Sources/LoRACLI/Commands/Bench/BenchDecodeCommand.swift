import ArgumentParser
import Foundation
import Inference
import Kernels
import LoRA
import Models
import Registry
import Training

struct BenchDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Load time, prefill and decode speed (full logits, greedy, greedy after the prompt), memory.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Prompt length for the prefill measurement.")
    var promptTokens: Int = 512

    @Option(name: .long, help: "Tokens to generate for the decode measurement.")
    var decodeTokens: Int = 128

    @Option(name: .long, help: "Repetitions of each measurement (best and median are reported).")
    var repeats: Int = 3

    func validate() throws {
        guard promptTokens >= 1, decodeTokens >= 1, repeats >= 1 else { throw ValidationError("--prompt-tokens, --decode-tokens and --repeats must be at least 1") }
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

        let prefill = try Bench.measure(repeats) {
            let cache = KVCache(config: config, capacity: promptTokens)
            _ = try model.forward(prompt, cache: cache)
            return Double(promptTokens)
        }
        let decode = try Bench.measure(repeats) {
            let cache = KVCache(config: config, capacity: 16 + decodeTokens)
            var logits = try model.forward(Array(prompt.prefix(16)), cache: cache)
            let start = Date()
            for _ in 0..<decodeTokens {
                logits = try model.forward([Sampler.argmax(logits)], cache: cache)
            }
            return (Double(decodeTokens), Date().timeIntervalSince(start))
        }
        // Greedy generation as `generate` runs it: the head's argmax screen instead of full logits.
        let greedy = try Bench.measure(repeats) {
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
        let greedyAfterPrompt = try Bench.measure(repeats) {
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
            "load_seconds": Bench.round3(loadSeconds),
            "prefill": [
                "prompt_tokens": promptTokens,
                "tokens_per_second_best": Bench.round3(prefill.best), "tokens_per_second_median": Bench.round3(prefill.median),
                "limit_tokens_per_second": Bench.round3(prefillLimit), "fraction_of_limit": Bench.round3(prefill.best / prefillLimit),
            ],
            "decode": [
                "new_tokens": decodeTokens,
                "tokens_per_second_best": Bench.round3(decode.best), "tokens_per_second_median": Bench.round3(decode.median),
                "weight_bytes_per_token": decodeBytes,
                "limit_tokens_per_second": Bench.round3(decodeLimit), "fraction_of_limit": Bench.round3(decode.best / decodeLimit),
                "greedy_tokens_per_second_best": Bench.round3(greedy.best), "greedy_tokens_per_second_median": Bench.round3(greedy.median),
                "argmax_screen": model.weights.argmaxScreen != nil,
                "greedy_after_prompt_tokens_per_second_best": Bench.round3(greedyAfterPrompt.best),
                "greedy_after_prompt_tokens_per_second_median": Bench.round3(greedyAfterPrompt.median),
            ],
            "machine": ["sgemm_gflops": Bench.round3(gflops), "read_bandwidth_gb_per_s": Bench.round3(bandwidth)], "kernels": KernelPath.summary,
            "memory": ["resident_mib": Machine.residentMiB().current, "peak_resident_mib": Machine.residentMiB().peak],
        ]
        try Bench.printJSON(report)
    }
}

