import Foundation
import Tokenizers

/// One line of a JSONL dataset, in the shapes PEFT / mlx-lm users already have.
public enum DatasetRecord: Sendable, Equatable {
    /// `{"text": ...}`: language modelling, loss on every token.
    case text(String)
    /// `{"prompt": ..., "completion": ...}`: rendered as a user/assistant chat.
    case completion(prompt: String, completion: String)
    /// `{"messages": [{"role", "content"}, ...]}`
    case chat([ChatMessage])

    public var formatName: String {
        switch self {
        case .text: "text"
        case .completion: "prompt/completion"
        case .chat: "messages"
        }
    }

    /// Parses one line; `line` (1-based) and `path` only name the place in errors.
    public static func parse(_ text: String, path: String, line: Int) throws(DatasetError) -> DatasetRecord {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
            throw .malformedLine(path: path, line: line, reason: "not valid JSON")
        }
        guard let json = object as? [String: Any] else {
            throw .malformedLine(path: path, line: line, reason: "expected a JSON object")
        }
        if let messages = json["messages"] {
            guard let list = messages as? [[String: Any]], !list.isEmpty else {
                throw .malformedLine(path: path, line: line, reason: "\"messages\" must be a non-empty array of {\"role\", \"content\"}")
            }
            var parsed: [ChatMessage] = []
            for (i, message) in list.enumerated() {
                guard let role = message["role"] as? String, let content = message["content"] as? String else {
                    throw .malformedLine(path: path, line: line, reason: "message \(i) needs string \"role\" and \"content\"")
                }
                guard ["system", "user", "assistant"].contains(role) else {
                    throw .malformedLine(path: path, line: line, reason: "message \(i) has role '\(role)' (system, user or assistant)")
                }
                parsed.append(ChatMessage(role: role, content: content))
            }
            guard parsed.contains(where: { $0.role == "assistant" }) else {
                throw .malformedLine(path: path, line: line, reason: "no assistant message to learn from")
            }
            return .chat(parsed)
        }
        if json["prompt"] != nil || json["completion"] != nil {
            guard let prompt = json["prompt"] as? String, let completion = json["completion"] as? String else {
                throw .malformedLine(path: path, line: line, reason: "\"prompt\" and \"completion\" must both be strings")
            }
            return .completion(prompt: prompt, completion: completion)
        }
        if let text = json["text"] {
            guard let text = text as? String, !text.isEmpty else {
                throw .malformedLine(path: path, line: line, reason: "\"text\" must be a non-empty string")
            }
            return .text(text)
        }
        throw .malformedLine(path: path, line: line, reason: "expected \"text\", \"prompt\"/\"completion\" or \"messages\"; found keys \(json.keys.sorted())")
    }

    /// Every record of a JSONL file, with its line number; blank lines are skipped. Stops at
    /// the first malformed line.
    public static func load(path: String) throws(DatasetError) -> [(line: Int, record: DatasetRecord)] {
        let scan = try DatasetScan(path: path, stopAtFirstError: true)
        if let error = scan.errors.first { throw error }
        guard !scan.records.isEmpty else { throw .empty(path: path) }
        return scan.records
    }

    /// What makes two records the same example (for duplicate and leakage checks).
    public var key: String {
        switch self {
        case .text(let text): "text\u{0}\(text)"
        case .completion(let prompt, let completion): "completion\u{0}\(prompt)\u{0}\(completion)"
        case .chat(let messages): "chat" + messages.map { "\u{0}\($0.role)\u{0}\($0.content)" }.joined()
        }
    }
}

/// A JSONL file read line by line, keeping every error (with its line) instead of stopping.
public struct DatasetScan: Sendable {
    public var records: [(line: Int, record: DatasetRecord)] = []
    public var errors: [DatasetError] = []
    /// Lines in the file, blank ones included.
    public var lineCount = 0

    public init(path: String, stopAtFirstError: Bool = false) throws(DatasetError) {
        let file = try JSONLines(path: path)
        lineCount = file.lines.count
        var format: String?
        for line in file.lines where !line.isBlank {
            do throws(DatasetError) {
                let record = try DatasetRecord.parse(try file.text(of: line), path: path, line: line.number)
                if let format, format != record.formatName {
                    throw .mixedFormats(path: path, line: line.number, expected: format, found: record.formatName)
                }
                format = record.formatName
                records.append((line.number, record))
            } catch {
                errors.append(error)
                if stopAtFirstError { return }
            }
        }
    }
}

/// A tokenized training example. `trained[i]` says whether token i is a target of the loss.
public struct Example: Sendable, Equatable {
    public let tokens: [Int]
    public let trained: [Bool]

    public init(tokens: [Int], trained: [Bool]) {
        self.tokens = tokens
        self.trained = trained
    }

    /// Tokens that are targets of the loss (never the first: nothing predicts it).
    public var scoredCount: Int { trained.dropFirst().count { $0 } }
}

/// Turns records into token sequences the way inference will see them.
public struct ExampleEncoder: Sendable {
    public let tokenizer: BPETokenizer
    public let chatTemplate: ChatTemplate?
    /// Appended after a `text` document (and the pad token): `<|endoftext|>`.
    public let endOfText: Int
    public let maxLength: Int
    /// Loss only on completion / assistant tokens (true) or on every token.
    public let maskPrompt: Bool

    public init(tokenizer: BPETokenizer, chatTemplate: ChatTemplate?, endOfText: Int, maxLength: Int, maskPrompt: Bool) {
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.endOfText = endOfText
        self.maxLength = maxLength
        self.maskPrompt = maskPrompt
    }

    public struct Encoded: Sendable {
        public var examples: [Example] = []
        /// Examples longer than `maxLength`, cut to it.
        public var truncated = 0
        /// Examples with nothing left to learn after truncation, left out.
        public var dropped = 0
    }

    public func encode(_ records: [(line: Int, record: DatasetRecord)], path: String) throws(DatasetError) -> Encoded {
        var result = Encoded()
        for (line, record) in records {
            var (tokens, trained) = try encode(record, path: path, line: line)
            if tokens.count > maxLength {
                tokens.removeLast(tokens.count - maxLength)
                trained.removeLast(trained.count - maxLength)
                result.truncated += 1
            }
            let example = Example(tokens: tokens, trained: trained)
            if example.scoredCount == 0 {
                result.dropped += 1
                continue
            }
            result.examples.append(example)
        }
        guard !result.examples.isEmpty else { throw .empty(path: path) }
        return result
    }

    func encode(_ record: DatasetRecord, path: String, line: Int) throws(DatasetError) -> ([Int], [Bool]) {
        switch record {
        case .text(let text):
            let tokens = tokenizer.encode(text) + [endOfText]
            return (tokens, Array(repeating: true, count: tokens.count))
        case .completion(let prompt, let completion):
            return try encodeChat(
                [ChatMessage(role: "user", content: prompt), ChatMessage(role: "assistant", content: completion)], path: path, line: line)
        case .chat(let messages):
            return try encodeChat(messages, path: path, line: line)
        }
    }

    /// The whole conversation rendered once; assistant turns (content through `<|im_end|>\n`)
    /// are located by tokenizing rendered prefixes, which end at special tokens or a newline
    /// so their tokens are a prefix of the whole.
    private func encodeChat(_ messages: [ChatMessage], path: String, line: Int) throws(DatasetError) -> ([Int], [Bool]) {
        guard let chatTemplate else {
            throw .malformedLine(path: path, line: line, reason: "chat data needs a model with a chat template")
        }
        let tokens = tokenizer.encode(chatTemplate.render(messages, addGenerationPrompt: false))
        guard maskPrompt else { return (tokens, Array(repeating: true, count: tokens.count)) }
        var trained = Array(repeating: false, count: tokens.count)
        for (i, message) in messages.enumerated() where message.role == "assistant" {
            let start = tokenizer.encode(chatTemplate.render(Array(messages[..<i]), addGenerationPrompt: true)).count
            let end = tokenizer.encode(chatTemplate.render(Array(messages[...i]), addGenerationPrompt: false)).count
            for t in start..<max(start, min(end, tokens.count)) { trained[t] = true }
        }
        return (tokens, trained)
    }
}
