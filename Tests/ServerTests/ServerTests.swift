import Foundation
import Inference
import Kernels
import Logging
import LoRA
import Models
import Registry
import Server
import Synchronization
import Testing
import TestSupport
import Tokenizers

/// The server on a free loopback port, used over HTTP as clients use it.
@Suite(.serialized)
struct ServerTests {
    static let apiKey = "test-key"
    static let question = "What is the capital of France?"

    /// A store with three adapters that visibly change the model's answers (B is random, not zero).
    static func makeStore(_ directory: String, languageModel: LanguageModel) throws -> AdapterStore {
        let store = try AdapterStore(root: "\(directory)/store")
        let base = try store.baseModel(path: Fixtures.modelPath, config: languageModel.model.config)
        for (index, name) in ["alpha", "beta", "gamma"].enumerated() {
            try randomAdapter(seed: UInt64(index + 1), config: languageModel.model.config).savePEFT(to: "\(directory)/\(name)", baseModelName: "smol")
            _ = try store.register(folder: "\(directory)/\(name)", name: name, base: base)
        }
        return store
    }

    static func randomAdapter(seed: UInt64, config: LlamaConfig) -> LoRAAdapter {
        var adapter = LoRAAdapter.initialized(LoRAConfig(rank: 4, alpha: 8, targets: LayerTensor.projections), for: config, seed: seed)
        var random = SeededRandom(seed: seed &+ 100)
        for l in adapter.layers.indices {
            for tensor in LayerTensor.projections {
                guard var pair = adapter.layers[l][tensor] else { continue }
                for i in pair.b.indices { pair.b[i] = random.uniform(-1, 1) }
                adapter.layers[l][tensor] = pair
            }
        }
        return adapter
    }

    /// A running server and what the test needs to talk to it.
    final class Running: Sendable {
        let server: LoRAServer
        let port: Int
        let task: Task<Void, any Error>
        let counter: StepCounter

        init(server: LoRAServer, port: Int, task: Task<Void, any Error>, counter: StepCounter) {
            (self.server, self.port, self.task, self.counter) = (server, port, task, counter)
        }

        /// Rows decoded so far (a row per request per decode step).
        var steps: Int { counter.total.load(ordering: .relaxed) }

        var client: LoopbackClient { LoopbackClient(port: port, apiKey: ServerTests.apiKey) }

        func stop() async {
            task.cancel()
            _ = try? await task.value
        }
    }

    static func start(
        languageModel: LanguageModel, store: AdapterStore?, maxBatch: Int = 8, maxQueue: Int = 64, allowRuntimeAdapters: Bool = true,
        corsOrigins: [String] = [], readTimeout: Duration = .seconds(30)
    ) async throws -> Running {
        let counter = StepCounter()
        let metrics = ServerMetricsHandle()
        let engine = InferenceEngine(languageModel: languageModel, maxBatch: maxBatch, maxQueue: maxQueue) { rows in
            metrics.recordStep(rows: rows)
            counter.add(rows)
        }
        let base = try store?.baseModel(path: Fixtures.modelPath, config: languageModel.model.config)
        let catalog = AdapterCatalog(
            baseId: "smol", store: store, base: base, config: languageModel.model.config, cache: AdapterCache(budgetBytes: 64 << 20, maxCount: 2),
            baseNames: languageModel.names)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = LoRAServer(
            engine: engine, catalog: catalog, metrics: metrics,
            configuration: LoRAServer.Configuration(
                port: 0, apiKey: apiKey, defaultMaxTokens: 32, allowRuntimeAdapters: allowRuntimeAdapters, corsOrigins: corsOrigins,
                readTimeout: readTimeout),
            logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        return Running(server: server, port: port, task: task, counter: counter)
    }

    final class StepCounter: Sendable {
        let total = Atomic<Int>(0)
        func add(_ rows: Int) { total.add(rows, ordering: .relaxed) }
    }

    static func chatBody(_ model: String, _ content: String, maxTokens: Int = 16, stream: Bool = false, extra: String = "") -> String {
        let messages = try! String(decoding: JSONSerialization.data(withJSONObject: [["role": "user", "content": content]]), as: UTF8.self)
        return #"{"model": "\#(model)", "messages": \#(messages), "max_tokens": \#(maxTokens), "temperature": 0, "stream": \#(stream)\#(extra)}"#
    }

    /// What `lora generate --chat --adapter NAME` prints for the question.
    static func solo(_ languageModel: LanguageModel, _ adapters: [LayerAdapters]?, _ content: String, maxTokens: Int = 16) throws -> String {
        try Generator(languageModel).generate(
            prompt: try languageModel.chatPrompt([ChatMessage(role: "user", content: content)]), maxTokens: maxTokens, adapters: adapters
        ).text
    }

    static func content(_ response: LoopbackClient.Response) -> String? {
        ((response.json?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
    }

    /// Collects a streamed chat completion: the text, the chunks, whether [DONE] came.
    static func streamed(_ client: LoopbackClient, _ body: String) async throws -> Streamed {
        try await offPool { try streamedNow(client, body) }
    }

    struct Streamed: @unchecked Sendable {
        // @unchecked: the chunks are JSON values built and read by one test at a time.
        var text: String, chunks: [[String: Any]], done: Bool, status: Int
    }

    static func streamedNow(_ client: LoopbackClient, _ body: String, onText: (String) -> Void = { _ in }) throws -> Streamed {
        var text = "", chunks: [[String: Any]] = [], done = false
        let status = try client.stream("/v1/chat/completions", json: body) { data in
            if data == "[DONE]" { done = true; return true }
            guard let chunk = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] else { return true }
            chunks.append(chunk)
            if let delta = (chunk["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any], let piece = delta["content"] as? String {
                text += piece
                onText(piece)
            }
            return true
        }
        return Streamed(text: text, chunks: chunks, done: done, status: status)
    }

    @Test func endpointsAnswersAndErrors() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let store = try Self.makeStore(directory, languageModel: languageModel)
        let running = try await Self.start(languageModel: languageModel, store: store)
        let client = running.client

        // Health, models, auth.
        #expect(try await LoopbackClient(port: running.port).offSend("GET", "/health").status == 200)
        #expect(try await LoopbackClient(port: running.port).offSend("GET", "/").text.contains("lora playground"))
        let unauthorized = try await LoopbackClient(port: running.port).offSend("GET", "/v1/models")
        #expect(unauthorized.status == 401 && (unauthorized.json?["error"] as? [String: Any])?["type"] as? String == "authentication_error")
        #expect(try await LoopbackClient(port: running.port, apiKey: "wrong").offPost("/v1/chat/completions", json: Self.chatBody("smol", "hi")).status == 401)
        let models = try await client.offSend("GET", "/v1/models")
        let ids = (models.json?["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
        #expect(Set(ids) == ["smol", "alpha", "alpha@1", "beta", "beta@1", "gamma", "gamma@1"])

        // Each adapter answers exactly as generation alone does, and the answers differ.
        var answers: [String: String] = [:]
        for model in ["smol", "alpha", "beta@1", "gamma"] {
            let response = try await client.offPost("/v1/chat/completions", json: Self.chatBody(model, Self.question))
            #expect(response.status == 200)
            let name = String(model.split(separator: "@")[0])
            let adapters = name == "smol" ? nil : try store.load(name, for: try store.baseModel(path: Fixtures.modelPath, config: languageModel.model.config), config: languageModel.model.config).layers
            let expected = try Self.solo(languageModel, adapters, Self.question)
            #expect(Self.content(response) == expected, "\(model)")
            answers[model] = Self.content(response)
            let usage = response.json?["usage"] as? [String: Any]
            #expect((usage?["prompt_tokens"] as? Int) == (try languageModel.chatPrompt([ChatMessage(role: "user", content: Self.question)])).count)
        }
        #expect(Set(answers.values).count == 4, "the adapters should change the answer: \(answers)")

        // /v1/completions on a plain prompt.
        let completion = try await client.offPost("/v1/completions", json: #"{"model": "smol", "prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}"#)
        #expect(completion.status == 200)
        let choice = (completion.json?["choices"] as? [[String: Any]])?.first
        #expect(choice?["text"] as? String == (try Generator(languageModel).generate(prompt: languageModel.tokenizer.encode("The capital of France is"), maxTokens: 4).text))
        #expect(choice?["finish_reason"] as? String == "length")

        // Streaming: a role chunk, content chunks, a finish_reason, usage, then [DONE].
        let streamed = try await Self.streamed(client, Self.chatBody("alpha", Self.question, stream: true, extra: #", "stream_options": {"include_usage": true}"#))
        #expect(streamed.status == 200 && streamed.done)
        #expect(streamed.text == answers["alpha"])
        #expect(streamed.chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" && $0["id"] as? String == streamed.chunks[0]["id"] as? String })
        let first = (streamed.chunks.first?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]
        #expect(first?["role"] as? String == "assistant")
        let reasons = streamed.chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
        #expect(reasons.count == 1)
        let usage = streamed.chunks.last?["usage"] as? [String: Any]
        #expect(usage?["completion_tokens"] as? Int != nil && (streamed.chunks.last?["choices"] as? [Any])?.isEmpty == true)

        // Stop sequences cut the text before the stop string.
        let stopped = try await client.offPost("/v1/chat/completions", json: Self.chatBody("smol", Self.question, extra: #", "stop": [" of"]"#))
        #expect(Self.content(stopped) == "The capital")

        // Bad requests: 400 naming the field, 404 for unknown models, in OpenAI's error shape.
        let bad: [(String, Int, String?)] = [
            ("{not json", 400, nil),
            (#"{"messages": [{"role": "user", "content": "hi"}]}"#, 400, "model"),
            (#"{"model": "smol", "messages": []}"#, 400, "messages"),
            (#"{"model": "smol", "messages": [{"role": "user", "content": 3}]}"#, 400, "messages[0].content"),
            (#"{"model": "smol", "messages": [{"role": "wizard", "content": "hi"}]}"#, 400, "messages[0].role"),
            (Self.chatBody("smol", "hi", extra: #", "temperature": "hot""#).replacingOccurrences(of: #""temperature": 0, "#, with: ""), 400, "temperature"),
            (Self.chatBody("smol", "hi", maxTokens: 0), 400, "max_tokens"),
            (Self.chatBody("smol", "hi", maxTokens: 100_000), 400, "max_tokens"),
            (Self.chatBody("smol", "hi", extra: #", "n": 17"#), 400, "n"),
            (Self.chatBody("smol", String(repeating: "Paris is lovely. ", count: 3000)), 400, "messages"),
            (Self.chatBody("no-such-adapter", "hi"), 404, "model"),
        ]
        for (body, status, param) in bad {
            let response = try await client.offPost("/v1/chat/completions", json: body)
            let error = response.json?["error"] as? [String: Any]
            #expect(response.status == status, "\(body.prefix(80))")
            #expect(error?["message"] is String && error?["type"] is String, "\(body.prefix(80))")
            #expect((error?["param"] as? String) == param, "\(body.prefix(80))")
        }
        #expect(try await client.offSend("GET", "/v1/nothing").status == 404)

        // Adapters registered while the server runs are served at once; load/unload by path.
        let base = try store.baseModel(path: Fixtures.modelPath, config: languageModel.model.config)
        try Self.randomAdapter(seed: 9, config: languageModel.model.config).savePEFT(to: "\(directory)/delta", baseModelName: "smol")
        _ = try store.register(folder: "\(directory)/delta", name: "delta", base: base)
        let late = try await client.offPost("/v1/chat/completions", json: Self.chatBody("delta", Self.question))
        let lateExpected = try Self.solo(languageModel, try store.load("delta", for: base, config: languageModel.model.config).layers, Self.question)
        #expect(late.status == 200 && Self.content(late) == lateExpected)
        #expect(try await client.offPost("/v1/load_lora_adapter", json: #"{"lora_name": "by-path", "lora_path": "\#(directory)/beta"}"#).status == 200)
        #expect(Self.content(try await client.offPost("/v1/chat/completions", json: Self.chatBody("by-path", Self.question))) == answers["beta@1"])
        #expect(try await client.offPost("/v1/load_lora_adapter", json: #"{"lora_name": "broken", "lora_path": "\#(directory)/missing"}"#).status == 400)
        #expect(try await client.offPost("/v1/unload_lora_adapter", json: #"{"lora_name": "by-path"}"#).status == 200)
        #expect(try await client.offPost("/v1/chat/completions", json: Self.chatBody("by-path", Self.question)).status == 404)

        // Metrics in Prometheus text format; the cache never holds more than its 2 adapters.
        let metrics = try await client.offSend("GET", "/metrics").text
        for series in ["lora_requests_total{", "lora_time_to_first_token_seconds_bucket", "lora_inter_token_latency_seconds_bucket",
                       "lora_batch_size_bucket", "lora_queue_depth", "lora_adapter_cache_hits_total", "lora_generated_tokens_total{",
                       "lora_e2e_request_latency_seconds_bucket", "lora_request_queue_time_seconds_bucket", "lora_request_prompt_tokens_bucket",
                       "lora_request_generation_tokens_bucket", "lora_request_success_total{finished_reason=", "process_resident_memory_bytes ",
                       "process_cpu_seconds_total ", "process_open_fds ", "process_start_time_seconds "] {
            #expect(metrics.contains(series), "\(series)")
        }
        #expect(running.server.catalog.cache.statistics.count <= 2)
        await running.stop()
    }

    /// Concurrent requests with different adapters are decoded together and each gets exactly
    /// its solo answer; a client that hangs up frees its row at once; a full queue gets 429.
    @Test func concurrentMixedAdaptersDisconnectAndBackpressure() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let languageModel = try LanguageModel.load(path: Fixtures.modelPath)
        let store = try Self.makeStore(directory, languageModel: languageModel)
        let base = try store.baseModel(path: Fixtures.modelPath, config: languageModel.model.config)
        let running = try await Self.start(languageModel: languageModel, store: store)
        let client = running.client

        let jobs: [(model: String, question: String)] = [
            ("smol", Self.question), ("alpha", "Name three colours."), ("beta", Self.question), ("gamma", "Say hello."),
            ("alpha", Self.question), ("smol", "Count to five."),
        ]
        let expected = try jobs.map { job in
            try Self.solo(languageModel, job.model == "smol" ? nil : try store.load(job.model, for: base, config: languageModel.model.config).layers, job.question, maxTokens: 24)
        }
        let answers = try await offPool {
            let results = Mutex([String?](repeating: nil, count: jobs.count))
            DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
                let streamed = try? Self.streamedNow(client, Self.chatBody(jobs[i].model, jobs[i].question, maxTokens: 24, stream: true))
                results.withLock { $0[i] = streamed?.text }
            }
            return results.withLock { $0 }
        }
        for i in jobs.indices { #expect(answers[i] == expected[i], "\(jobs[i])") }
        let batchMetrics = try await client.offSend("GET", "/metrics").text
        let multiRow = batchMetrics.split(separator: "\n").first { $0.hasPrefix("lora_batch_size_bucket{le=\"1.0\"}") }
        let allSteps = batchMetrics.split(separator: "\n").first { $0.hasPrefix("lora_batch_size_count") }
        #expect(multiRow != allSteps, "some decode steps should have had several rows")
        await running.stop()

        // One row only: a long request hung up after two pieces must leave the batch at once.
        let single = try await Self.start(languageModel: languageModel, store: store, maxBatch: 1, maxQueue: 1)
        let singleClient = single.client
        try await offPool {
            var pieces = 0
            _ = try singleClient.stream("/v1/chat/completions", json: Self.chatBody("smol", "Write a long story about a cat.", maxTokens: 1000, stream: true)) { _ in
                pieces += 1
                return pieces < 3
            }
        }
        let stepsAtHangUp = single.steps
        var waited = 0
        while single.server.engine.load.running > 0 && waited < 200 {
            try await Task.sleep(for: .milliseconds(20))
            waited += 1
        }
        #expect(single.server.engine.load.running == 0)
        #expect(single.steps - stepsAtHangUp < 50, "the abandoned request kept decoding")
        // The freed slot serves the next request.
        #expect(
            Self.content(try await single.client.offPost("/v1/chat/completions", json: Self.chatBody("smol", Self.question)))
                == (try Self.solo(languageModel, nil, Self.question)))

        // Batch of 1 busy, queue of 1 full: the next request gets 429 with Retry-After.
        // Waits for the busy request's first text: the stream's opening role chunk (empty
        // content) is sent on submission, and `running` may still count the previous request, whose response
        // reaches the client before the engine thread next updates it.
        let busyDecoding = Mutex(false)
        let busy = Task {
            try await offPool {
                try Self.streamedNow(singleClient, Self.chatBody("smol", "Write a long story about a dog.", maxTokens: 200, stream: true)) { piece in
                    if !piece.isEmpty { busyDecoding.withLock { $0 = true } }
                }.done
            }
        }
        while !busyDecoding.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        let queued = Task { try await singleClient.offPost("/v1/chat/completions", json: Self.chatBody("smol", Self.question, maxTokens: 4)).status }
        while single.server.engine.load.waiting == 0 { try await Task.sleep(for: .milliseconds(10)) }
        let rejected = try await single.client.offPost("/v1/chat/completions", json: Self.chatBody("smol", Self.question))
        #expect(rejected.status == 429 && rejected.headers["retry-after"] == "1")
        #expect((rejected.json?["error"] as? [String: Any])?["code"] as? String == "queue_full")
        #expect(try await busy.value)
        #expect(try await queued.value == 200)
        await single.stop()
    }
}

/// Runs blocking socket calls on a GCD thread: the server's handlers need Swift's cooperative
/// threads (two on this machine), which a blocked test would otherwise hold.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

extension LoopbackClient {
    func offPost(_ path: String, json: String) async throws -> Response {
        try await offPool { try self.post(path, json: json) }
    }

    func offSend(_ method: String, _ path: String) async throws -> Response {
        try await offPool { try self.send(method, path) }
    }
}
