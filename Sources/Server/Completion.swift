import Foundation
import Hummingbird
import Inference
import NIOCore

/// One accepted completion: turns the engine's events into OpenAI's JSON, either collected
/// into one response or streamed as server-sent events ending in `data: [DONE]`, and records
/// the request's metrics and log line when it ends.
struct Completion: Sendable {
    let id: String
    let model: String
    let chat: Bool
    let created: Int
    let arrival: ContinuousClock.Instant
    let server: LoRAServer
    let path: String
    let includeUsage: Bool
    /// Whether the request asked for log-probabilities.
    let logprobs: Bool

    /// Latency bookkeeping while events arrive.
    private struct Timing {
        var last: ContinuousClock.Instant?
        var firstToken: Duration?
        /// Text events sent: a token each (a token that ends inside a character sends its text
        /// with the next one).
        var pieces = 0
    }

    private func observe(_ timing: inout Timing) {
        let now = ContinuousClock.now
        if let last = timing.last {
            server.metrics.nextToken(after: now - last)
        } else {
            timing.firstToken = now - arrival
            server.metrics.firstToken(after: now - arrival)
        }
        timing.last = now
        timing.pieces += 1
    }

    private func started() { server.metrics.queued(for: ContinuousClock.now - arrival) }

    private func finished(status: Int, prompt: Int, completion: Int, reason: String, timing: Timing) {
        server.metrics.request(status: status, model: model)
        server.metrics.tokens(prompt: prompt, generated: completion, model: model)
        let total = ContinuousClock.now - arrival
        server.metrics.finished(after: total, prompt: prompt, generated: completion, reason: reason)
        let ttft = timing.firstToken.map { String(format: "%.0f", $0.milliseconds) } ?? "-"
        server.logger.info(
            "\(path) \(status) model=\(model) prompt_tokens=\(prompt) completion_tokens=\(completion) finish=\(reason) ttft_ms=\(ttft) total_ms=\(String(format: "%.0f", total.milliseconds))")
    }

    /// The `n` choices' answers, each as its own engine request; prompt tokens counted once.
    func collected(_ submissions: [InferenceEngine.Submission]) async -> Response {
        var texts = [String](repeating: "", count: submissions.count), reasons = [String](repeating: "", count: submissions.count)
        var tokens = [[TokenLogprob]](repeating: [], count: submissions.count)
        var prompt = 0, completion = 0
        var timing = Timing()
        for (index, submission) in submissions.enumerated() {
            var ended = false
            for await event in submission.events {
                switch event {
                case .started:
                    if index == 0 { started() }
                case .text(let piece, let pieceLogprobs):
                    observe(&timing)
                    texts[index] += piece
                    tokens[index] += pieceLogprobs
                case .finished(let reason, let promptTokens, let completionTokens):
                    (reasons[index], prompt, ended) = (reason.rawValue, promptTokens, true)
                    completion += completionTokens
                case .failed(let message):
                    submissions.forEach { $0.cancel() }
                    server.metrics.request(status: 500, model: model)
                    server.logger.error("\(path) 500 model=\(model) error=\"\(message)\"")
                    return LoRAServer.error(APIError(status: .internalServerError, message: message, type: "server_error", param: nil, code: nil))
                }
            }
            if ended { continue }
            submissions.forEach { $0.cancel() }
            if submission.isCancelled {
                // The client hung up; nobody reads this answer.
                server.metrics.request(status: 499, model: model)
                server.metrics.tokens(prompt: 0, generated: timing.pieces, model: model)
                server.logger.info("\(path) 499 model=\(model) client disconnected")
                return LoRAServer.error(APIError(status: .init(code: 499), message: "Client closed the request.", type: "invalid_request_error", param: nil, code: nil))
            }
            return LoRAServer.error(.shuttingDown)
        }
        finished(status: 200, prompt: prompt, completion: completion, reason: reasons[0], timing: timing)
        let usage = Usage(prompt: prompt, completion: completion)
        if chat {
            let choices = texts.indices.map {
                ChatCompletion.Choice(index: $0, message: .init(content: texts[$0]), logprobs: chatLogprobs(tokens[$0]), finish_reason: reasons[$0])
            }
            return LoRAServer.json(ChatCompletion(id: id, created: created, model: model, choices: choices, usage: usage))
        }
        let choices = texts.indices.map { index in
            var offset = 0
            return TextCompletion.Choice(text: texts[index], index: index, logprobs: textLogprobs(tokens[index], offset: &offset), finish_reason: Nullable(reasons[index]))
        }
        return LoRAServer.json(TextCompletion(id: id, created: created, model: model, choices: choices, usage: usage))
    }

    /// Server-sent events for the `n` choices, interleaved as their tokens come, each chunk
    /// naming its choice's index.
    func streaming(_ submissions: [InferenceEngine.Submission]) -> Response {
        let body = ResponseBody { writer in
            var timing = Timing()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            func send(_ value: some Encodable) async throws {
                var buffer = ByteBuffer(string: "data: ")
                buffer.writeBytes(try encoder.encode(value))
                buffer.writeString("\n\n")
                try await writer.write(buffer)
            }
            let (events, continuation) = AsyncStream<(Int, InferenceEngine.Event)>.makeStream()
            let forwarding = Task {
                await withTaskGroup(of: Void.self) { group in
                    for (index, submission) in submissions.enumerated() {
                        group.addTask { for await event in submission.events { continuation.yield((index, event)) } }
                    }
                }
                continuation.finish()
            }
            defer { forwarding.cancel() }
            if chat {
                for index in submissions.indices {
                    try await send(ChatCompletionChunk(
                        id: id, created: created, model: model, choices: [.init(index: index, delta: .init(role: "assistant", content: ""), finish_reason: nil)]))
                }
            }
            var ended = 0, prompt = 0, completion = 0, firstReason = "", failed = false
            var offsets = [Int](repeating: 0, count: submissions.count)
            do {
                for await (index, event) in events {
                    switch event {
                    case .started:
                        if index == 0 { started() }
                    case .text(let piece, let pieceLogprobs):
                        observe(&timing)
                        if chat {
                            try await send(ChatCompletionChunk(
                                id: id, created: created, model: model,
                                choices: [.init(index: index, delta: .init(content: piece), logprobs: chatLogprobs(pieceLogprobs), finish_reason: nil)]))
                        } else {
                            try await send(TextCompletion(
                                id: id, created: created, model: model,
                                choices: [.init(text: piece, index: index, logprobs: textLogprobs(pieceLogprobs, offset: &offsets[index]), finish_reason: nil)]))
                        }
                    case .finished(let reason, let promptTokens, let completionTokens):
                        ended += 1
                        prompt = promptTokens
                        completion += completionTokens
                        if index == 0 { firstReason = reason.rawValue }
                        if chat {
                            try await send(ChatCompletionChunk(
                                id: id, created: created, model: model, choices: [.init(index: index, delta: .init(), finish_reason: Nullable(reason.rawValue))]))
                        } else {
                            try await send(TextCompletion(
                                id: id, created: created, model: model, choices: [.init(text: "", index: index, finish_reason: Nullable(reason.rawValue))]))
                        }
                    case .failed(let message):
                        failed = true
                        submissions.forEach { $0.cancel() }
                        server.metrics.request(status: 500, model: model)
                        server.logger.error("\(path) stream failed model=\(model) error=\"\(message)\"")
                        try await send(APIError(status: .internalServerError, message: message, type: "server_error", param: nil, code: nil).body)
                    }
                }
            } catch {
                // The client went away: its rows leave the batch before the next step.
                submissions.forEach { $0.cancel() }
                server.metrics.request(status: 499, model: model)
                server.metrics.tokens(prompt: 0, generated: timing.pieces, model: model)
                server.logger.info("\(path) 499 model=\(model) client disconnected")
                throw error
            }
            if ended == submissions.count {
                finished(status: 200, prompt: prompt, completion: completion, reason: firstReason, timing: timing)
                if includeUsage {
                    let usage = Usage(prompt: prompt, completion: completion)
                    if chat {
                        try await send(ChatCompletionChunk(id: id, created: created, model: model, choices: [], usage: usage))
                    } else {
                        try await send(TextCompletion(id: id, created: created, model: model, choices: [], usage: usage))
                    }
                }
            } else if !failed {
                try await send(APIError.shuttingDown.body)
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}

extension Completion {
    private func bytes(_ token: Int) -> [UInt8] { (try? server.languageModel.tokenizer.bytes(of: token)) ?? [] }

    /// A token's text as OpenAI shows it: its bytes as UTF-8, a character cut between tokens as U+FFFD.
    private func text(_ token: Int) -> String { String(decoding: bytes(token), as: UTF8.self) }

    func chatLogprobs(_ tokens: [TokenLogprob]) -> Nullable<ChatLogprobs> {
        guard logprobs else { return nil }
        return Nullable(ChatLogprobs(content: tokens.map { token in
            ChatLogprobs.Token(
                token: text(token.token), logprob: token.logprob, bytes: bytes(token.token).map(Int.init),
                top_logprobs: token.top.map { .init(token: text($0.token), logprob: $0.logprob, bytes: bytes($0.token).map(Int.init)) })
        }))
    }

    /// `offset`: characters of the completion before these tokens; advanced past them.
    func textLogprobs(_ tokens: [TokenLogprob], offset: inout Int) -> Nullable<TextLogprobs> {
        guard logprobs else { return nil }
        var result = TextLogprobs()
        for token in tokens {
            let piece = text(token.token)
            result.tokens.append(piece)
            result.token_logprobs.append(token.logprob)
            result.top_logprobs.append(Dictionary(token.top.map { (text($0.token), $0.logprob) }, uniquingKeysWith: max))
            result.text_offset.append(offset)
            offset += piece.count
        }
        return Nullable(result)
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
