import ArgumentParser
import Foundation
import Inference
import Logging
import Registry
import Server

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the base and every registered adapter over an OpenAI-compatible HTTP API.",
        discussion: """
            Endpoints: POST /v1/chat/completions, POST /v1/completions (stream: true for server-sent events), \
            GET /v1/models, POST /v1/load_lora_adapter and /v1/unload_lora_adapter (with --allow-runtime-adapters), \
            GET /health, GET /metrics (Prometheus), and a playground page at /. A request's "model" picks the base \
            or an adapter (NAME or NAME@VERSION); concurrent requests are decoded together whatever their adapters. \
            Pages on other origins are refused unless --cors-origin names them; POST bodies must be application/json.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var storeOptions: StoreOptions

    @Option(name: .long, help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on (0: any free port).")
    var port = 8080

    @Option(name: .long, help: "Require 'Authorization: Bearer KEY' on every request except / and /health.")
    var apiKey: String?

    @Option(name: .long, help: "Requests decoded together per step.")
    var maxBatch = 8

    @Option(name: .long, help: "Requests waiting for a batch slot before new ones get 429.")
    var maxQueue = 64

    @Option(name: .long, help: "Prompt tokens prefilled per step (as vLLM's --max-num-batched-tokens; fewer deep into a long prompt, where each costs more): smaller keeps streams smoother while long prompts arrive.")
    var prefillChunk = 256

    @Option(name: .long, help: "Adapters kept in memory at once (least recently used evicted).")
    var maxLoadedAdapters = 16

    @Option(name: .long, help: "Memory for loaded adapters, in MiB.")
    var adapterMemory = 512

    @Option(name: .long, help: "max_tokens when a request gives none.")
    var defaultMaxTokens = 256

    @Option(name: .long, help: "The base model's id in the API (default: the model file's name).")
    var servedModelName: String?

    @Option(name: .long, help: "Seconds a connection may stay silent with its request incomplete (or between requests).")
    var readTimeout = 30.0

    @Flag(name: .long, help: "Answer /v1/load_lora_adapter and /v1/unload_lora_adapter (off: they read folders on this machine).")
    var allowRuntimeAdapters = false

    @Option(name: .long, help: "A browser origin (https://app.example.com) whose pages may call the API; repeat for more, '*' for any.")
    var corsOrigin: [String] = []

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard readTimeout > 0 else { throw ValidationError("--read-timeout must be positive") }
        guard maxBatch >= 1, maxQueue >= 0, maxLoadedAdapters >= 1, adapterMemory >= 1, defaultMaxTokens >= 1, prefillChunk >= 1 else {
            throw ValidationError(
                "--max-batch, --prefill-chunk, --max-loaded-adapters, --adapter-memory and --default-max-tokens must be at least 1; --max-queue 0 or more")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let languageModel = try modelOptions.load()
        let store = try storeOptions.open()
        let base = try store.baseModel(path: modelOptions.resolvedPath, config: languageModel.model.config)
        let modelId = servedModelName ?? URL(fileURLWithPath: modelOptions.resolvedPath).deletingPathExtension().lastPathComponent
        let metrics = ServerMetricsHandle()
        let engine = InferenceEngine(
            languageModel: languageModel, maxBatch: maxBatch, maxQueue: maxQueue, prefillChunk: prefillChunk, onStep: { metrics.recordStep(rows: $0) })
        let catalog = AdapterCatalog(
            baseId: modelId, store: store, base: base, config: languageModel.model.config,
            cache: AdapterCache(budgetBytes: adapterMemory << 20, maxCount: maxLoadedAdapters), baseNames: languageModel.names)
        let server = LoRAServer(
            engine: engine, catalog: catalog, metrics: metrics,
            configuration: LoRAServer.Configuration(
                host: host, port: port, apiKey: apiKey, defaultMaxTokens: defaultMaxTokens, allowRuntimeAdapters: allowRuntimeAdapters,
                corsOrigins: corsOrigin, readTimeout: .milliseconds(Int64(readTimeout * 1000))),
            logger: Logger(label: "lora.serve"))
        let host = host
        try await server.run { port in
            FileHandle.standardOutput.write(Data(
                "serving \(modelId) and the adapters of \(storeOptions.root) on http://\(host):\(port) (playground at /, Ctrl-C stops)\n".utf8))
        }
    }
}
