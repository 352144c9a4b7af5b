import Foundation
import Inference
import Tokenizers

/// A `/v1/chat/completions` or `/v1/completions` body, checked field by field so that a bad
/// request gets a 400 naming the field, as OpenAI's API does. A field this server does not
/// implement is accepted only with its neutral value (`echo: false`, `tools: []`, ...); asking
/// for its effect is a 400 naming it, and an unknown field is a 400 too: nothing is silently
/// ignored.
struct CompletionRequest: Sendable {
    enum Input: Sendable {
        case messages([ChatMessage])
        case prompt(String)
    }

    var model: String
    var input: Input
    var maxTokens: Int?
    var sampling: SamplingParameters
    var stop: [String]
    var stream: Bool
    var includeUsage: Bool
    /// Choices to generate, each an engine request of its own.
    var n: Int
    /// `response_format` `json_object` or `json_schema`: the documents the reply must be.
    var grammar: JSONGrammar?
    /// Log-probabilities asked for, with this many alternatives per token.
    var logprobs: Int?

    static let maxTopLogprobs = 20

    /// Fields read below, and fields that only describe the caller (kept by OpenAI, no effect here).
    static let commonFields: Set<String> = [
        "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "n", "stop", "stream", "stream_options",
        "frequency_penalty", "presence_penalty", "logit_bias", "user", "metadata", "store", "service_tier", "response_format", "logprobs",
    ]
    static let chatFields: Set<String> = ["messages", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls"]
    static let completionFields: Set<String> = ["prompt", "echo", "best_of", "suffix"]

    static func parse(_ body: Data, chat: Bool) throws(APIError) -> CompletionRequest {
        guard !body.isEmpty else { throw .invalid("The request body is empty; send a JSON object.", param: nil) }
        let json = try Self.object(body)
        let known = commonFields.union(chat ? chatFields : completionFields)
        if let unknown = json.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalid("Unrecognized request argument supplied: \(unknown.prefix(100))", param: String(unknown.prefix(100)))
        }
        try Self.requireNeutral(json, chat: chat)
        guard let model = json["model"] as? String, !model.isEmpty else {
            throw .invalid("'model' is required and must be a non-empty string.", param: "model")
        }
        let input: Input
        if chat {
            guard let list = json["messages"] as? [Any] else { throw .invalid("'messages' must be an array of messages.", param: "messages") }
            guard !list.isEmpty else { throw .invalid("'messages' must contain at least one message.", param: "messages") }
            var messages: [ChatMessage] = []
            for (i, item) in list.enumerated() {
                guard let message = item as? [String: Any] else { throw .invalid("messages[\(i)] must be an object.", param: "messages[\(i)]") }
                guard let role = message["role"] as? String, ["system", "user", "assistant"].contains(role) else {
                    throw .invalid("messages[\(i)].role must be one of 'system', 'user', 'assistant'.", param: "messages[\(i)].role")
                }
                guard let content = Self.text(message["content"]) else {
                    throw .invalid("messages[\(i)].content must be a string (or an array of text parts).", param: "messages[\(i)].content")
                }
                messages.append(ChatMessage(role: role, content: content))
            }
            input = .messages(messages)
        } else {
            let prompt: String? = (json["prompt"] as? String) ?? ((json["prompt"] as? [Any]).flatMap { $0.count == 1 ? $0[0] as? String : nil })
            guard let prompt else { throw .invalid("'prompt' must be a string.", param: "prompt") }
            guard !prompt.isEmpty else { throw .invalid("'prompt' must not be empty.", param: "prompt") }
            input = .prompt(prompt)
        }
        var maxTokens = try integer(json, "max_completion_tokens")
        if maxTokens == nil { maxTokens = try integer(json, "max_tokens") }
        if let maxTokens, maxTokens < 1 { throw .invalid("'max_tokens' must be at least 1.", param: "max_tokens") }
        let temperature = try number(json, "temperature") ?? 1
        guard (0...2).contains(temperature) else { throw .invalid("'temperature' must be between 0 and 2.", param: "temperature") }
        let topP = try number(json, "top_p") ?? 1
        guard topP > 0 && topP <= 1 else { throw .invalid("'top_p' must be in (0, 1].", param: "top_p") }
        let seed = try integer(json, "seed")
        let n = try integer(json, "n") ?? 1
        guard (1...16).contains(n) else { throw .invalid("'n' must be between 1 and 16.", param: "n") }
        let frequencyPenalty = try number(json, "frequency_penalty") ?? 0, presencePenalty = try number(json, "presence_penalty") ?? 0
        for (key, value) in [("frequency_penalty", frequencyPenalty), ("presence_penalty", presencePenalty)] where !(-2...2).contains(value) {
            throw .invalid("'\(key)' must be between -2 and 2.", param: key)
        }
        var logitBias: [Int: Float] = [:]
        if let value = json["logit_bias"], !(value is NSNull) {
            guard let map = value as? [String: Any], map.count <= 300 else {
                throw .invalid("'logit_bias' must be an object of at most 300 token ids to biases.", param: "logit_bias")
            }
            for (key, bias) in map {
                guard let token = Int(key), token >= 0, let number = bias as? NSNumber, !isBoolean(number), (-100...100).contains(number.doubleValue) else {
                    throw .invalid("'logit_bias' maps token ids (as strings) to numbers between -100 and 100; '\(key.prefix(40))' does not.", param: "logit_bias")
                }
                logitBias[token] = number.floatValue
            }
        }
        var stop: [String] = []
        switch json["stop"] {
        case nil, is NSNull: break
        case let single as String: stop = [single]
        case let list as [Any]:
            guard list.count <= 4, let strings = list as? [String] else {
                throw .invalid("'stop' must be a string or an array of at most 4 strings.", param: "stop")
            }
            stop = strings
        default: throw .invalid("'stop' must be a string or an array of at most 4 strings.", param: "stop")
        }
        let stream = try boolean(json, "stream") ?? false
        var includeUsage = false
        if let options = json["stream_options"], !(options is NSNull) {
            guard let options = options as? [String: Any] else { throw .invalid("'stream_options' must be an object.", param: "stream_options") }
            includeUsage = try boolean(options, "include_usage", param: "stream_options.include_usage") ?? false
        }
        var logprobs: Int?
        let topRange = 0...maxTopLogprobs
        if chat {
            let top = try integer(json, "top_logprobs")
            if try boolean(json, "logprobs") == true {
                logprobs = top ?? 0
            } else if top != nil {
                throw .invalid("'top_logprobs' requires 'logprobs' to be true.", param: "top_logprobs")
            }
        } else {
            logprobs = try integer(json, "logprobs")
        }
        if let logprobs, !topRange.contains(logprobs) {
            throw .invalid("'\(chat ? "top_logprobs" : "logprobs")' must be between 0 and \(maxTopLogprobs).", param: chat ? "top_logprobs" : "logprobs")
        }
        return CompletionRequest(
            model: model, input: input, maxTokens: maxTokens,
            // Without a seed, a fresh draw each request (as OpenAI's API samples).
            sampling: SamplingParameters(
                temperature: Float(temperature), topP: Float(topP), seed: seed.map { UInt64(bitPattern: Int64($0)) } ?? UInt64.random(in: 0...UInt64.max),
                frequencyPenalty: Float(frequencyPenalty), presencePenalty: Float(presencePenalty), logitBias: logitBias),
            stop: stop, stream: stream, includeUsage: includeUsage, n: n, grammar: try grammar(json, body: body), logprobs: logprobs)
    }

    /// `response_format`: `text`, `json_object` (any JSON object) or `json_schema` (a schema's
    /// documents, compiled into a grammar; a schema outside the supported subset is a 400 that
    /// names the keyword and where it is).
    private static func grammar(_ json: [String: Any], body: Data) throws(APIError) -> JSONGrammar? {
        guard let value = json["response_format"], !(value is NSNull) else { return nil }
        let param = "response_format"
        guard let format = value as? [String: Any], let type = format["type"] as? String else {
            throw .invalid("'response_format' must be an object with a 'type'.", param: param)
        }
        switch type {
        case "text": return nil
        case "json_object": return JSONGrammar.anyObject()
        case "json_schema":
            // Parsed again, keeping key order: properties are generated in the order the schema lists them.
            guard let ordered = try? JSONValue.parse(Array(body)), let schema = ordered["response_format"]?["json_schema"]?["schema"],
                case .object = schema
            else {
                throw .invalid("'response_format.json_schema.schema' must be a JSON Schema object.", param: "response_format.json_schema")
            }
            do {
                return try JSONGrammar(schema: schema)
            } catch {
                throw .invalid("'response_format.json_schema' is not supported: \(error).", param: "response_format.json_schema")
            }
        default:
            throw .invalid("'response_format.type' must be 'text', 'json_object' or 'json_schema'.", param: "response_format.type")
        }
    }

    /// The body as a JSON object, or a 400 that says what is wrong with it.
    private static func object(_ body: Data) throws(APIError) -> [String: Any] {
        guard String(validating: body, as: UTF8.self) != nil else {
            throw .invalid("We could not parse the JSON body of your request: it is not valid UTF-8.", param: nil)
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: body)
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "not valid JSON"
            throw .invalid("We could not parse the JSON body of your request: \(reason.prefix(200))", param: nil)
        }
        guard let json = object as? [String: Any] else {
            throw .invalid("We could not parse the JSON body of your request: expected a JSON object.", param: nil)
        }
        return json
    }

    /// Fields whose effect is not implemented, accepted at their neutral values only.
    private static func requireNeutral(_ json: [String: Any], chat: Bool) throws(APIError) {
        func refuse(_ key: String, _ what: String) -> APIError { .invalid("'\(key)' is not supported by this server (\(what)).", param: key) }
        func isNull(_ key: String) -> Bool { json[key] == nil || json[key] is NSNull }
        func isFalse(_ key: String) -> Bool { isNull(key) || (json[key] as? NSNumber).map { isBoolean($0) && !$0.boolValue } == true }
        if chat {
            if !isNull("tools"), (json["tools"] as? [Any])?.isEmpty != true { throw refuse("tools", "no tool calling") }
            if !isNull("tool_choice"), json["tool_choice"] as? String != "none" { throw refuse("tool_choice", "no tool calling") }
        } else {
            if !isFalse("echo") { throw refuse("echo", "the prompt is not echoed") }
            if !isNull("best_of"), (json["best_of"] as? NSNumber)?.intValue != 1 { throw refuse("best_of", "only best_of = 1") }
            if !isNull("suffix"), (json["suffix"] as? String)?.isEmpty != true { throw refuse("suffix", "no insertion") }
        }
    }

    /// A string, or OpenAI's content parts `[{"type": "text", "text": ...}]` joined.
    private static func text(_ value: Any?) -> String? {
        if let string = value as? String { return string }
        guard let parts = value as? [[String: Any]] else { return nil }
        var text = ""
        for part in parts {
            guard part["type"] as? String == "text", let piece = part["text"] as? String else { return nil }
            text += piece
        }
        return text
    }

    // JSONSerialization gives NSNumber for numbers and booleans alike; booleans have type "c".
    private static func isBoolean(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    private static func number(_ json: [String: Any], _ key: String) throws(APIError) -> Double? {
        guard let value = json[key], !(value is NSNull) else { return nil }
        guard let number = value as? NSNumber, !isBoolean(number), number.doubleValue.isFinite else {
            throw .invalid("'\(key)' must be a number.", param: key)
        }
        return number.doubleValue
    }

    private static func integer(_ json: [String: Any], _ key: String) throws(APIError) -> Int? {
        guard let value = try number(json, key) else { return nil }
        guard value == value.rounded(), abs(value) < 1e15 else { throw .invalid("'\(key)' must be an integer.", param: key) }
        return Int(value)
    }

    private static func boolean(_ json: [String: Any], _ key: String, param: String? = nil) throws(APIError) -> Bool? {
        guard let value = json[key], !(value is NSNull) else { return nil }
        guard let number = value as? NSNumber, isBoolean(number) else { throw .invalid("'\(param ?? key)' must be a boolean.", param: param ?? key) }
        return number.boolValue
    }
}
