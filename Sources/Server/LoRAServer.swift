import Foundation
import Hummingbird
import Inference
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Tokenizers

/// `lora serve`: an OpenAI-compatible HTTP server on one loaded base, every adapter reachable
/// per request through `model`, requests decoded together by the `InferenceEngine`.
public final class LoRAServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var apiKey: String?
        /// max_tokens when a request gives none.
        public var defaultMaxTokens: Int
        /// `/v1/load_lora_adapter` and `/v1/unload_lora_adapter` answer only when this is on
        /// (vLLM's `VLLM_ALLOW_RUNTIME_LORA_UPDATING`): they read folders on the server's disk.
        public var allowRuntimeAdapters: Bool
        /// Browser origins (`https://app.example.com`) whose pages may call the API; any other
        /// cross-origin request is refused.
        public var corsOrigins: [String]
        /// A connection that sends nothing for this long while its request is incomplete (or
        /// between requests) is closed; one waiting for its answer is not.
        public var readTimeout: Duration

        public init(
            host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, defaultMaxTokens: Int = 256, allowRuntimeAdapters: Bool = false,
            corsOrigins: [String] = [], readTimeout: Duration = .seconds(30)
        ) {
            self.readTimeout = readTimeout
            self.host = host
            self.port = port
            self.apiKey = apiKey
            self.defaultMaxTokens = defaultMaxTokens
            self.allowRuntimeAdapters = allowRuntimeAdapters
            self.corsOrigins = corsOrigins
        }
    }

    public let engine: InferenceEngine
    public let catalog: AdapterCatalog
    public let configuration: Configuration
    let metrics: ServerMetrics
    let logger: Logger

    public init(engine: InferenceEngine, catalog: AdapterCatalog, metrics: ServerMetricsHandle, configuration: Configuration, logger: Logger) {
        self.engine = engine
        self.catalog = catalog
        self.metrics = metrics.metrics
        self.configuration = configuration
        self.logger = logger
    }

    var languageModel: LanguageModel { engine.languageModel }

    /// Serves until SIGINT/SIGTERM (or the task is cancelled); in-flight requests then finish
    /// before the engine stops. `onRunning` receives the bound port (useful with port 0).
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let app = Application(
            router: router(),
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(configuration.readTimeout.milliseconds * 1e6)))),
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "lora"),
            services: [EngineService(engine: engine)],
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
        try await app.runService()
    }

    // MARK: - Routes

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: Gatekeeper(server: self))
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: Playground.html)))
        }
        router.get("/health") { [engine] _, _ in
            let load = engine.load
            return Self.json(["status": "ok", "running": load.running, "waiting": load.waiting] as [String: Any])
        }
        router.head("/health") { _, _ in Response(status: .ok) }
        router.get("/metrics") { [self] _, _ in
            let text = metrics.render(load: engine.load, cache: catalog.cache.statistics)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/v1/models") { [self] _, _ in try modelList() }
        router.get("/v1/models/{id}") { [self] _, context in try model(id: context.parameters.get("id") ?? "") }
        router.post("/tokenize") { [self] request, _ in await tokenize(request) }
        router.post("/detokenize") { [self] request, _ in await detokenize(request) }
        router.post("/v1/chat/completions") { [self] request, context in await complete(request, chat: true) }
        router.post("/v1/completions") { [self] request, context in await complete(request, chat: false) }
        router.post("/v1/load_lora_adapter") { [self] request, _ in await manageAdapter(request, load: true) }
        router.post("/v1/unload_lora_adapter") { [self] request, _ in await manageAdapter(request, load: false) }
        return router
    }

    private func modelList() throws -> Response {
        Self.json(ModelList(data: try catalog.models().map(modelEntry)))
    }

    private func modelEntry(_ entry: AdapterCatalog.Entry) -> ModelList.Model {
        ModelList.Model(
            id: entry.id, created: Int(entry.created.timeIntervalSince1970), root: entry.id, parent: entry.parent,
            max_model_len: languageModel.model.config.maxPositionEmbeddings)
    }

    /// OpenAI's `GET /v1/models/{id}` (percent-decoded, so `name%40version` works too).
    private func model(id: String) throws -> Response {
        let id = id.removingPercentEncoding ?? id
        guard let entry = try catalog.models().first(where: { $0.id == id }) else {
            return Self.error(.modelNotFound("The model '\(id.prefix(200))' does not exist."))
        }
        return Self.json(modelEntry(entry))
    }

    /// vLLM's `/tokenize`: `{"prompt"}` or `{"messages"}` (rendered with the chat template,
    /// `add_generation_prompt` default true) → `{"tokens", "count", "max_model_len"}`.
    private func tokenize(_ request: Request) async -> Response {
        do {
            let json = try Self.jsonObject(try await body(request))
            let ids: [Int]
            if let prompt = json["prompt"] as? String {
                ids = languageModel.tokenizer.encode(prompt)
            } else if json["messages"] != nil {
                let parsed = try CompletionRequest.parse(
                    try JSONSerialization.data(withJSONObject: ["model": catalog.baseId, "messages": json["messages"] as Any]), chat: true)
                guard case .messages(let messages) = parsed.input, let template = languageModel.chatTemplate else {
                    throw APIError.invalid("This model has no chat template; send 'prompt'.", param: "messages")
                }
                ids = languageModel.tokenizer.encode(template.render(messages, addGenerationPrompt: json["add_generation_prompt"] as? Bool ?? true))
            } else {
                throw APIError.invalid("Send 'prompt' (a string) or 'messages'.", param: "prompt")
            }
            return Self.json(["tokens": ids, "count": ids.count, "max_model_len": languageModel.model.config.maxPositionEmbeddings] as [String: Any])
        } catch let error as APIError {
            return Self.error(error)
        } catch {
            return Self.error(.invalid("\(error)", param: nil))
        }
    }

    /// vLLM's `/detokenize`: `{"tokens": [ids]}` → `{"prompt": text}`.
    private func detokenize(_ request: Request) async -> Response {
        do {
            let json = try Self.jsonObject(try await body(request))
            guard let tokens = json["tokens"] as? [Any], let ids = tokens as? [Int], tokens.count <= 1 << 20 else {
                throw APIError.invalid("'tokens' must be an array of token ids.", param: "tokens")
            }
            do {
                return Self.json(["prompt": try languageModel.tokenizer.decode(ids)] as [String: Any])
            } catch {
                throw APIError.invalid("\(error)", param: "tokens")
            }
        } catch let error as APIError {
            return Self.error(error)
        } catch {
            return Self.error(.invalid("\(error)", param: nil))
        }
    }

    private static func jsonObject(_ data: Data) throws(APIError) -> [String: Any] {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw APIError.invalid("Expected a JSON object.", param: nil)
        }
        return object
    }

    /// Reads a JSON body of at most 1 MiB.
    private func body(_ request: Request) async throws(APIError) -> Data {
        try await Self.collect(request.body)
    }

    private static func collect(_ body: RequestBody) async throws(APIError) -> Data {
        do {
            var buffer = try await body.collect(upTo: 1 << 20)
            return Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(status: .contentTooLarge, message: "The request body is larger than 1 MiB.", type: "invalid_request_error", param: nil, code: nil)
        } catch {
            throw APIError.invalid("The request body could not be read: the connection ended before it was complete.", param: nil)
        }
    }

    private func manageAdapter(_ request: Request, load: Bool) async -> Response {
        do {
            guard configuration.allowRuntimeAdapters else { throw APIError.runtimeAdaptersOff }
            let json = (try? JSONSerialization.jsonObject(with: try await body(request))) as? [String: Any]
            guard let json else { throw APIError.invalid("Expected a JSON object.", param: nil) }
            guard let name = json["lora_name"] as? String, !name.isEmpty else { throw APIError.invalid("'lora_name' must be a non-empty string.", param: "lora_name") }
            if load {
                guard let path = json["lora_path"] as? String, !path.isEmpty else {
                    throw APIError.invalid("'lora_path' must be the path of a PEFT adapter folder.", param: "lora_path")
                }
                let force = json["force"] as? Bool ?? false
                try catalogCall(param: "lora_path") { () throws(AdapterCatalog.Failure) in try catalog.load(name: name, path: path, force: force) }
                logger.info("loaded runtime adapter \(name) from \(path)")
                return Self.text("Success: LoRA adapter '\(name)' added successfully.")
            }
            try catalogCall(param: "lora_name") { () throws(AdapterCatalog.Failure) in try catalog.unload(name: name) }
            logger.info("unloaded runtime adapter \(name)")
            return Self.text("Success: LoRA adapter '\(name)' removed successfully.")
        } catch let error as APIError {
            return Self.error(error)
        } catch {
            return Self.error(.invalid("\(error)", param: nil))
        }
    }

    /// The catalog's failures as API errors; `param` names the request field at fault.
    private func catalogCall<T>(param: String = "model", _ body: () throws(AdapterCatalog.Failure) -> T) throws(APIError) -> T {
        do {
            return try body()
        } catch {
            switch error {
            case .unknownModel(let id): throw .modelNotFound("The model '\(id)' does not exist.", param: param == "model" ? "model" : "lora_name")
            case .unusable(let id, let reason): throw .invalid("The model '\(id)' cannot be used: \(reason)", param: param)
            case .nameRefused, .notRuntimeLoaded: throw .invalid("\(error).", param: "lora_name")
            }
        }
    }

    // MARK: - Completions

    /// A completion, cancelled when the client's connection closes: a streamed one notices when
    /// a write fails, a collected one through the inbound-close handler, so an abandoned request
    /// leaves the batch within one step either way.
    private func complete(_ request: Request, chat: Bool) async -> Response {
        let submitted = Mutex<[InferenceEngine.Submission]>([])
        let hungUp = Atomic<Bool>(false), answered = Atomic<Bool>(false)
        do {
            return try await request.body.consumeWithInboundCloseHandler { body in
                let response = await complete(body, chat: chat) { submission in
                    submitted.withLock { $0.append(submission) }
                    if hungUp.load(ordering: .acquiring) { submission.cancel() }
                }
                // The handler also runs when this returns (Hummingbird stops watching the
                // connection then); a streamed answer is only starting, and watches for itself.
                answered.store(true, ordering: .releasing)
                return response
            } onInboundClosed: {
                guard !answered.load(ordering: .acquiring) else { return }
                hungUp.store(true, ordering: .releasing)
                submitted.withLock { $0.forEach { $0.cancel() } }
            }
        } catch {
            return Self.error(APIError(status: .badRequest, message: "The request could not be read: \(error)", type: "invalid_request_error", param: nil, code: nil))
        }
    }

    private func complete(_ requestBody: RequestBody, chat: Bool, onSubmit: (InferenceEngine.Submission) -> Void) async -> Response {
        let arrival = ContinuousClock.now
        let path = chat ? "/v1/chat/completions" : "/v1/completions"
        var label = "-"
        do {
            let parsed = try CompletionRequest.parse(try await Self.collect(requestBody), chat: chat)
            if let token = parsed.sampling.logitBias.keys.first(where: { $0 >= languageModel.tokenizer.vocabulary.count }) {
                throw APIError.invalid("'logit_bias' names token \(token); the vocabulary has \(languageModel.tokenizer.vocabulary.count) tokens.", param: "logit_bias")
            }
            let adapters = try catalogCall { () throws(AdapterCatalog.Failure) in try catalog.adapters(for: parsed.model) }
            label = parsed.model
            let prompt: [Int]
            let contextLength = languageModel.model.config.maxPositionEmbeddings
            switch parsed.input {
            case .messages(let messages):
                guard let template = languageModel.chatTemplate else {
                    throw APIError.invalid("This model has no chat template; use /v1/completions.", param: "messages")
                }
                prompt = languageModel.tokenizer.encode(template.render(messages, addGenerationPrompt: true))
            case .prompt(let text):
                prompt = languageModel.tokenizer.encode(text)
            }
            let field = chat ? "messages" : "prompt"
            guard prompt.count < contextLength else {
                throw APIError.invalid(
                    "This model's maximum context length is \(contextLength) tokens. However, your \(field) resulted in \(prompt.count) tokens.",
                    param: field)
            }
            let maxTokens = parsed.maxTokens ?? min(configuration.defaultMaxTokens, contextLength - prompt.count)
            guard prompt.count + maxTokens <= contextLength else {
                throw APIError.invalid(
                    "'max_tokens' is too large: \(maxTokens) + \(prompt.count) prompt tokens exceed the context length \(contextLength).",
                    param: "max_tokens")
            }
            // n choices: n engine requests, each sampling from its own seed (the request's + index).
            var submissions: [InferenceEngine.Submission] = []
            for index in 0..<parsed.n {
                var sampling = parsed.sampling
                sampling.seed &+= UInt64(index)
                do throws(InferenceEngine.SubmitError) {
                    let submission = try engine.submit(
                        InferenceEngine.Request(
                            prompt: prompt, maxTokens: maxTokens, sampling: sampling, adapters: adapters, stopSequences: parsed.stop,
                            grammar: parsed.grammar, logprobs: parsed.logprobs))
                    submissions.append(submission)
                    onSubmit(submission)
                } catch {
                    submissions.forEach { $0.cancel() }
                    throw error == .queueFull ? APIError.queueFull : APIError.shuttingDown
                }
            }
            let id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
            let stream = Completion(
                id: String(id), model: parsed.model, chat: chat, created: Int(Date().timeIntervalSince1970), arrival: arrival, server: self,
                path: path, includeUsage: parsed.includeUsage, logprobs: parsed.logprobs != nil)
            return parsed.stream ? stream.streaming(submissions) : await stream.collected(submissions)
        } catch let error as APIError {
            metrics.request(status: Int(error.status.code), model: label)
            logger.info("\(path) \(error.status.code) model=\(label) error=\"\(error.message)\"")
            return Self.error(error)
        } catch {
            metrics.request(status: 500, model: label)
            logger.error("\(path) 500 model=\(label) error=\"\(error)\"")
            return Self.error(APIError(status: .internalServerError, message: "\(error)", type: "server_error", param: nil, code: nil))
        }
    }

    // MARK: - Encoding

    static func json(_ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func json(_ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ error: APIError) -> Response {
        var response = json(error.body)
        response.status = error.status
        if let retryAfter = error.retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }
}

/// The engine as a lifecycle service: on graceful shutdown it lets running requests finish.
struct EngineService: Service {
    let engine: InferenceEngine

    func run() async throws {
        try? await gracefulShutdown()
        await engine.shutdown()
    }
}

/// What reaches a route: the origin check (a page on another origin may not make the server
/// act, unless `--cors-origin` allows it), CORS preflights, JSON bodies only as
/// `application/json` (which a browser cannot send cross-origin without a preflight), and the
/// API key; unknown paths get OpenAI's error shape.
struct Gatekeeper: RouterMiddleware {
    let server: LoRAServer

    func handle(_ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let origin = request.headers[.origin]
        let allowedOrigin = origin.map { CrossOrigin.isAllowed($0, host: request.head.authority, configuration: server.configuration) }
        if allowedOrigin == false {
            return refuse(request, .crossOrigin(origin ?? ""))
        }
        if request.method == .options {
            // A preflight from an allowed origin (the only kind that gets here with an Origin).
            var response = Response(status: .noContent)
            if let origin { CrossOrigin.allow(origin, in: &response.headers, preflight: true) }
            return response
        }
        if let key = server.configuration.apiKey, path != "/", path != "/health",
            !APIKey.matches(request.headers[.authorization], key: key)
        {
            return refuse(request, .unauthorized)
        }
        if request.method == .post, !CrossOrigin.isJSON(request.headers[.contentType]) {
            return refuse(request, .unsupportedMediaType(request.headers[.contentType]))
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            response = LoRAServer.error(.notFound(path))
        } catch let error as HTTPError {
            response = LoRAServer.error(APIError(status: error.status, message: error.body ?? "\(error.status)", type: "invalid_request_error", param: nil, code: nil))
        }
        if let origin, allowedOrigin == true { CrossOrigin.allow(origin, in: &response.headers, preflight: false) }
        return response
    }

    private func refuse(_ request: Request, _ error: APIError) -> Response {
        server.metrics.request(status: Int(error.status.code), model: "-")
        server.logger.info("\(request.method) \(request.uri.path) \(error.status.code) \(error.message)")
        return LoRAServer.error(error)
    }
}

/// Lets callers outside the module pass the metrics object without seeing its type.
public struct ServerMetricsHandle: Sendable {
    let metrics: ServerMetrics

    public init() { metrics = ServerMetrics() }

    /// For the engine's `onStep`.
    public func recordStep(rows: Int) { metrics.step(rows: rows) }
}
