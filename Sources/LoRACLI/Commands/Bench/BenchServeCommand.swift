import ArgumentParser
import Foundation
import Kernels
import Inference
import LoRA
import Logging
import Registry
import Server
import Synchronization

struct BenchServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "The HTTP server: 1 client, and 8 concurrent streaming clients on the base, one adapter and 8 adapters.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var lora: LoRAOptions

    @Option(name: .long, help: "Tokens generated per request.")
    var tokens: Int = 64

    @Option(name: .long, help: "Rounds of the four scenarios, interleaved; each figure is its scenario's median round.")
    var rounds: Int = 3

    func validate() throws {
        guard tokens >= 1, rounds >= 1 else { throw ValidationError("--tokens and --rounds must be at least 1") }
    }

    /// Streaming clients against the in-process server over loopback HTTP: one client alone,
    /// then 8 concurrent clients on the base, on one adapter, and on 8 different adapters, in
    /// `rounds` interleaved rounds. Aggregate generated tokens/s, time to first token and
    /// inter-token latency (p50/p99).
    func run() async throws {
        let languageModel = try modelOptions.load()
        let config = languageModel.model.config
        let directory = NSTemporaryDirectory() + "lora-bench-serve-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let loraConfig = try lora.config()
        _ = try Bench.writeAdapters(loraConfig, config: config, to: directory)
        let store = try AdapterStore(root: "\(directory)/store")
        let base = try store.baseModel(path: modelOptions.resolvedPath, config: config)
        for i in 0..<8 { _ = try store.register(folder: "\(directory)/a\(i)", name: "bench-\(i)", base: base) }

        let metrics = ServerMetricsHandle()
        let engine = InferenceEngine(languageModel: languageModel, maxBatch: 8, maxQueue: 64) { metrics.recordStep(rows: $0) }
        let catalog = AdapterCatalog(baseId: "base", store: store, base: base, config: config, cache: AdapterCache(budgetBytes: 512 << 20))
        var logger = Logger(label: "bench")
        // Stopping the server by cancelling its task makes Hummingbird log errors that mean nothing here.
        logger.logLevel = .critical
        let server = LoRAServer(engine: engine, catalog: catalog, metrics: metrics, configuration: .init(port: 0), logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw ValidationError("the server did not start") }
        let client = LoopbackClient(port: port)

        /// Each client streams `requests` completions one after another; all clients start together.
        func scenario(_ models: [String], requests: Int = 2) async throws -> [String: Any] {
            let result = try await withCheckedThrowingContinuation { (done: CheckedContinuation<ScenarioResult, any Error>) in
                let collected = Mutex(ScenarioResult())
                let finished = DispatchGroup()
                let start = Date()
                // One thread per client: GCD's concurrentPerform would run only as many as there are cores.
                for c in models.indices {
                    finished.enter()
                    Thread {
                        defer { finished.leave() }
                        for r in 0..<requests {
                            let body = #"{"model": "\#(models[c])", "prompt": "Story \#(c)-\#(r): once upon a time in a small town", "max_tokens": \#(tokens), "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}"#
                            let sent = Date()
                            var last: Date?
                            var gaps: [Double] = [], first: Double?, generated = 0
                            _ = try? client.stream("/v1/completions", json: body) { data in
                                let now = Date()
                                if data.contains("\"usage\""), let json = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any],
                                    let usage = json["usage"] as? [String: Any]
                                {
                                    generated = usage["completion_tokens"] as? Int ?? 0
                                    return true
                                }
                                guard data.contains("\"text\":\""), !data.contains("\"text\":\"\"") else { return true }
                                if let last { gaps.append(now.timeIntervalSince(last) * 1000) } else { first = now.timeIntervalSince(sent) * 1000 }
                                last = now
                                return true
                            }
                            collected.withLock { result in
                                result.generated += generated
                                result.interToken += gaps
                                if let first { result.firstToken.append(first) }
                            }
                        }
                    }.start()
                }
                finished.notify(queue: .global()) {
                    var result = collected.withLock { $0 }
                    result.seconds = Date().timeIntervalSince(start)
                    done.resume(returning: result)
                }
            }
            return result.json(Bench.round3)
        }

        _ = try await scenario(["base"], requests: 1)
        // The host's speed drifts from one ten seconds to the next: rounds of all four scenarios,
        // and each scenario's median round, keep a slow moment from skewing one scenario alone.
        let rate = { (s: [String: Any]) in s["aggregate_tokens_per_second"] as? Double ?? 0 }
        let scenarios = [["base"], Array(repeating: "base", count: 8), Array(repeating: "bench-0", count: 8), (0..<8).map { "bench-\($0)" }]
        var results = [[[String: Any]]](repeating: [], count: scenarios.count)
        for _ in 0..<rounds {
            for (i, models) in scenarios.enumerated() { results[i].append(try await scenario(models)) }
        }
        let medians = results.map { runs in runs.sorted { rate($0) < rate($1) }[runs.count / 2] }
        let (single, eightBase, eightOne, eightMixed) = (medians[0], medians[1], medians[2], medians[3])
        task.cancel()
        _ = try? await task.value
        try Bench.printJSON([
            "model": modelOptions.resolvedPath, "threads": modelOptions.threads, "kernels": KernelPath.summary, "max_tokens": tokens, "rounds": rounds,
            "adapter": ["rank": loraConfig.rank, "targets": loraConfig.targets.compactMap(\.peftName)] as [String: Any],
            "one_client_base": single, "eight_clients_base": eightBase, "eight_clients_one_adapter": eightOne,
            "eight_clients_eight_adapters": eightMixed,
            "ratio_eight_adapters_to_one_adapter": Bench.round3(rate(eightMixed) / max(rate(eightOne), 1e-9)),
            "ratio_eight_clients_to_one_client": Bench.round3(rate(eightBase) / max(rate(single), 1e-9)),
        ])
    }
}

private struct ScenarioResult: Sendable {
    var generated = 0
    var seconds = 0.0
    var firstToken: [Double] = []
    var interToken: [Double] = []

    func json(_ round: (Double) -> Double) -> [String: Any] {
        func percentile(_ values: [Double], _ p: Double) -> Double {
            guard !values.isEmpty else { return 0 }
            let sorted = values.sorted()
            return round(sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)])
        }
        return [
            "generated_tokens": generated, "seconds": round(seconds), "aggregate_tokens_per_second": round(Double(generated) / max(seconds, 1e-9)),
            "ttft_ms_p50": percentile(firstToken, 0.5), "ttft_ms_p99": percentile(firstToken, 0.99),
            "itl_ms_p50": percentile(interToken, 0.5), "itl_ms_p99": percentile(interToken, 0.99),
        ]
    }
}
