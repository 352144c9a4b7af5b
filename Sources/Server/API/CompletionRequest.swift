import Foundation
import Inference
import Tokenizers

/// A `/v1/chat/completions` or `/v1/completions` body, checked field by field so that a bad
/// request gets a 400 naming the field, as OpenAI's API does.
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

    static func parse(_ body: Data, chat: Bool) throws(APIError) -> CompletionRequest {
        guard !body.isEmpty else { throw .invalid("The request body is empty; send a JSON object.", param: nil) }
        guard let object = try? JSONSerialization.jsonObject(with: body), let json = object as? [String: Any] else {
            throw .invalid("We could not parse the JSON body of your request: expected a JSON object.", param: nil)
        }
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
        if let n = try integer(json, "n"), n != 1 { throw .invalid("Only n = 1 is supported.", param: "n") }
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
        return CompletionRequest(
            model: model, input: input, maxTokens: maxTokens,
            // Without a seed every request still samples reproducibly from its own stream.
            sampling: SamplingParameters(temperature: Float(temperature), topP: Float(topP), seed: UInt64(bitPattern: Int64(seed ?? 0))),
            stop: stop, stream: stream, includeUsage: includeUsage)
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
