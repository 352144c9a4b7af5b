import Foundation
import Testing
import TestSupport
import Tokenizers
import Training

struct DatasetTests {
    func write(_ lines: [String]) throws -> (String, String) {
        let directory = try Fixtures.temporaryDirectory()
        let path = "\(directory)/data.jsonl"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return (directory, path)
    }

    @Test func threeFormatsParse() throws {
        let (directory, path) = try write([
            #"{"text": "hello"}"#, "", #"{"text": "world"}"#,
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let records = try DatasetRecord.load(path: path)
        #expect(records.map(\.line) == [1, 3])
        #expect(try DatasetRecord.parse(#"{"prompt": "a", "completion": "b"}"#, path: "p", line: 1) == .completion(prompt: "a", completion: "b"))
        #expect(
            try DatasetRecord.parse(#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#, path: "p", line: 1)
                == .chat([ChatMessage(role: "user", content: "q"), ChatMessage(role: "assistant", content: "a")]))
    }

    /// Each malformed shape is reported with the file and its line number.
    @Test(arguments: [
        (#"{"text": "ok"}"# + "\n" + #"{"text": 5}"#, 2, "\"text\" must be a non-empty string"),
        (#"{"text": "ok"}"# + "\n\n" + "{not json", 3, "not valid JSON"),
        (#"["a"]"#, 1, "expected a JSON object"),
        (#"{"prompt": "a"}"#, 1, "must both be strings"),
        (#"{"messages": [{"role": "user", "content": "q"}]}"#, 1, "no assistant message"),
        (#"{"messages": [{"role": "robot", "content": "q"}]}"#, 1, "role 'robot'"),
        (#"{"input": "x"}"#, 1, "expected \"text\""),
    ])
    func malformedLinesNameTheLine(content: String, line: Int, reason: String) throws {
        let (directory, path) = try write([content])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            _ = try DatasetRecord.load(path: path)
            Issue.record("accepted: \(content)")
        } catch {
            #expect(error.description.hasPrefix("\(path):\(line): "), "\(error)")
            #expect(error.description.contains(reason), "\(error)")
        }
    }

    /// Windows line ends, a byte order mark, and bytes that are not UTF-8 on one line: each line
    /// reads on its own, and the bad one is named.
    @Test func lineEndsByteOrderMarkAndBadUTF8() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/crlf.jsonl"
        try Data([0xEF, 0xBB, 0xBF] + Array("{\"text\":\"a\"}\r\n{\"text\":\"b\"}\r\n".utf8)).write(to: URL(fileURLWithPath: path))
        #expect(try DatasetRecord.load(path: path).map(\.record) == [.text("a"), .text("b")])
        try Data(Array("{\"text\":\"a\"}\n{\"text\":\"b\"}\n{\"text\":\"".utf8) + [0xC3, 0x28] + Array("\"}\n".utf8))
            .write(to: URL(fileURLWithPath: path))
        let scan = try DatasetScan(path: path)
        #expect(scan.records.count == 2 && scan.errors == [.malformedLine(path: path, line: 3, reason: "not valid UTF-8")])
    }

    /// A line over the cap is refused by number before it is parsed or tokenized.
    @Test func aHugeLineIsRefusedWithItsNumber() throws {
        let huge = #"{"text": ""# + String(repeating: "a", count: JSONLines.maxLineBytes) + #""}"#
        let (directory, path) = try write([#"{"text": "ok"}"#, huge])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            _ = try DatasetRecord.load(path: path)
            Issue.record("a \(huge.utf8.count)-byte line was accepted")
        } catch {
            #expect(error.description.hasPrefix("\(path):2: ") && error.description.contains("bytes"), "\(error)")
        }
    }

    @Test func mixedFormatsAndEmptyFilesAreRefused() throws {
        let (directory, path) = try write([#"{"text": "a"}"#, #"{"prompt": "p", "completion": "c"}"#])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: DatasetError.mixedFormats(path: path, line: 2, expected: "text", found: "prompt/completion")) {
            try DatasetRecord.load(path: path)
        }
        try "\n\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: DatasetError.empty(path: path)) { try DatasetRecord.load(path: path) }
        #expect(throws: DatasetError.notFound(path: "/nonexistent.jsonl")) { try DatasetRecord.load(path: "/nonexistent.jsonl") }
    }

    @Test func validSplitIsSeededAndDisjoint() throws {
        let (directory, path) = try write((0..<20).map { #"{"text": "line \#($0)"}"# })
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let a = try DatasetSplits.load(path: path, validSplit: 0.25, seed: 3)
        let b = try DatasetSplits.load(path: path, validSplit: 0.25, seed: 3)
        #expect(a.valid.count == 5 && a.train.count == 15)
        #expect(a.valid.map(\.line) == b.valid.map(\.line))
        #expect(Set(a.valid.map(\.line)).isDisjoint(with: a.train.map(\.line)))
    }
}

/// Masks and truncation with the real tokenizer and chat template.
struct ExampleEncoderTests {
    static let tokenizer = Result { () throws -> (BPETokenizer, ChatTemplate?) in
        let gguf = try GGUFFileLoader.load()
        return (try BPETokenizer(gguf: gguf), try ChatTemplate(jinja: gguf.metadata["tokenizer.chat_template"]?.string ?? "", source: gguf.path))
    }

    func encoder(maxLength: Int = 512, maskPrompt: Bool = true) throws -> ExampleEncoder {
        let (tokenizer, template) = try Self.tokenizer.get()
        return ExampleEncoder(tokenizer: tokenizer, chatTemplate: template, endOfText: 0, maxLength: maxLength, maskPrompt: maskPrompt)
    }

    @Test func completionLossCoversTheAnswerAndEndOfTurnOnly() throws {
        let encoder = try encoder()
        let encoded = try encoder.encode([(1, .completion(prompt: "Convert 3 March 2021 to ISO.", completion: "2021-03-03"))], path: "d")
        let example = try #require(encoded.examples.first)
        let trainedText = try encoder.tokenizer.decode(zip(example.tokens, example.trained).filter(\.1).map(\.0))
        #expect(trainedText == "2021-03-03<|im_end|>\n")
        let all = try encoder.tokenizer.decode(example.tokens)
        #expect(all.hasPrefix("<|im_start|>system\nYou are a helpful AI assistant"))
        let unmasked = try self.encoder(maskPrompt: false).encode([(1, .completion(prompt: "q", completion: "a"))], path: "d")
        #expect(unmasked.examples[0].trained.allSatisfy { $0 })
    }

    @Test func chatLossCoversEveryAssistantTurn() throws {
        let encoder = try encoder()
        let messages = [
            ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi"),
            ChatMessage(role: "assistant", content: "Hello."), ChatMessage(role: "user", content: "Bye"),
            ChatMessage(role: "assistant", content: "Goodbye."),
        ]
        let example = try #require(try encoder.encode([(1, .chat(messages))], path: "d").examples.first)
        var spans: [String] = []
        var current: [Int] = []
        for (token, trained) in zip(example.tokens, example.trained) {
            if trained { current.append(token) } else if !current.isEmpty {
                spans.append(try encoder.tokenizer.decode(current))
                current = []
            }
        }
        if !current.isEmpty { spans.append(try encoder.tokenizer.decode(current)) }
        #expect(spans == ["Hello.<|im_end|>\n", "Goodbye.<|im_end|>\n"])
    }

    @Test func textEndsWithEndOfTextAndLongExamplesAreTruncatedAndCounted() throws {
        let encoder = try encoder(maxLength: 4)
        let encoded = try encoder.encode([(1, .text("one two three four five six")), (2, .text("hi"))], path: "d")
        #expect(encoded.truncated == 1)
        #expect(encoded.examples[0].tokens.count == 4)
        #expect(encoded.examples[1].tokens.last == 0)
    }
}
