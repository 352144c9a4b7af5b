/// One chat turn, as `messages` in a chat-completions request or a dataset line.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// The ChatML chat template SmolLM2 (and Qwen and many others) ship as Jinja in
/// `tokenizer.chat_template`. Rather than a Jinja interpreter, this recognises ChatML templates
/// and renders them natively; the default system line is read from the template itself, so a
/// model whose template injects a different system line gets that one.
public struct ChatTemplate: Sendable, Equatable {
    /// The system message inserted when the conversation does not start with one, if any.
    public let defaultSystem: String?

    public init(defaultSystem: String?) {
        self.defaultSystem = defaultSystem
    }

    /// Recognises a ChatML Jinja template; other templates are refused, not guessed.
    public init(jinja template: String, source: String) throws(TokenizerError) {
        guard template.contains("<|im_start|>"), template.contains("<|im_end|>") else {
            throw .unsupported(source: source, what: "chat template is not ChatML (<|im_start|> ... <|im_end|>)")
        }
        let marker = "<|im_start|>system\n"
        if template.contains("!= 'system'") || template.contains("!= \"system\""),
            let start = template.range(of: marker),
            let end = template.range(of: "<|im_end|>", range: start.upperBound..<template.endIndex)
        {
            defaultSystem = String(template[start.upperBound..<end.lowerBound])
        } else {
            defaultSystem = nil
        }
    }

    /// `<|im_start|>role\ncontent<|im_end|>\n` per message, then `<|im_start|>assistant\n` when
    /// a reply is to be generated.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var text = ""
        if let defaultSystem, let first = messages.first, first.role != "system" {
            text += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
        }
        for message in messages {
            text += "<|im_start|>\(message.role)\n\(message.content)<|im_end|>\n"
        }
        if addGenerationPrompt { text += "<|im_start|>assistant\n" }
        return text
    }
}
