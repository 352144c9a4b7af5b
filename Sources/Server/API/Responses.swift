import Foundation

/// A field OpenAI always sends, as `null` when it has no value (synthesized `Encodable` would
/// leave a nil optional out).
struct Nullable<Value: Encodable & Sendable>: Encodable, Sendable, ExpressibleByNilLiteral {
    var value: Value?

    init(_ value: Value?) { self.value = value }
    init(nilLiteral: ()) { value = nil }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// Response bodies of the OpenAI API, field names as OpenAI spells them.
struct Usage: Encodable, Sendable {
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int

    init(prompt: Int, completion: Int) {
        prompt_tokens = prompt
        completion_tokens = completion
        total_tokens = prompt + completion
    }
}

struct ChatCompletion: Encodable {
    struct Choice: Encodable {
        struct Message: Encodable {
            var role = "assistant"
            var content: String
        }

        var index = 0
        var message: Message
        var logprobs: Nullable<ChatLogprobs> = nil
        var finish_reason: String
    }

    var id: String
    var object = "chat.completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage
}

struct ChatCompletionChunk: Encodable {
    struct Choice: Encodable {
        struct Delta: Encodable {
            var role: String?
            var content: String?
        }

        var index = 0
        var delta: Delta
        var logprobs: Nullable<ChatLogprobs> = nil
        var finish_reason: Nullable<String>
    }

    var id: String
    var object = "chat.completion.chunk"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage?
}

struct TextCompletion: Encodable {
    struct Choice: Encodable {
        var text: String
        var index = 0
        var logprobs: Nullable<TextLogprobs> = nil
        var finish_reason: Nullable<String>
    }

    var id: String
    var object = "text_completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage?
}

struct ModelList: Encodable {
    struct Model: Encodable {
        var id: String
        var object = "model"
        var created: Int
        var owned_by = "lora-workbench"
        var root: String
        var parent: String?
        /// The context length (vLLM's field).
        var max_model_len: Int
    }

    var object = "list"
    var data: [Model]
}

/// Chat's `logprobs`: each token with its text, UTF-8 bytes and likeliest alternatives.
struct ChatLogprobs: Encodable, Sendable {
    struct Token: Encodable, Sendable {
        var token: String
        var logprob: Float
        var bytes: [Int]
        var top_logprobs: [Alternative]
    }

    struct Alternative: Encodable, Sendable {
        var token: String
        var logprob: Float
        var bytes: [Int]
    }

    var content: [Token]
}

/// The legacy completions `logprobs`: parallel lists, offsets into the completion's text.
struct TextLogprobs: Encodable, Sendable {
    var tokens: [String] = []
    var token_logprobs: [Float] = []
    var top_logprobs: [[String: Float]] = []
    var text_offset: [Int] = []
}
