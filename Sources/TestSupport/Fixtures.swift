import Foundation
import Formats
import Tokenizers

/// Locates the golden fixtures, the default model and the package root for tests.
public enum Fixtures {
    /// The package root, derived from this file's location (Sources/TestSupport/Fixtures.swift).
    public static let packageRoot: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    /// `$LORA_FIXTURES` when set, else `../shared/fixtures/smollm2` beside the package.
    public static let directory: String = {
        if let path = ProcessInfo.processInfo.environment["LORA_FIXTURES"], !path.isEmpty { return path }
        return URL(fileURLWithPath: packageRoot).deletingLastPathComponent()
            .appendingPathComponent("shared/fixtures/smollm2").path
    }()

    /// `$LORA_MODEL` when set, else the model `scripts/setup` fetches.
    public static let modelPath: String = {
        if let path = ProcessInfo.processInfo.environment["LORA_MODEL"], !path.isEmpty { return path }
        return "\(packageRoot)/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    }()

    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "\(path) is missing (run scripts/setup; set LORA_FIXTURES / LORA_MODEL)" }
    }

    public static func path(_ name: String) throws -> String {
        let path = "\(directory)/\(name)"
        guard FileManager.default.fileExists(atPath: path) else { throw Missing(path: path) }
        return path
    }

    public static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: try path(name)))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// One JSON object per non-empty line.
    public static func jsonLines(_ name: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: try path(name), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:]
        }
    }

    /// A little-endian Float32 file.
    public static func floats(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: try path(name)))
        return data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }

    /// A fresh temporary directory, removed by the caller with `FileManager.removeItem`.
    public static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "lora-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// The default model's GGUF, opened once per test process.
public enum GGUFFileLoader {
    private static let shared = Result { try GGUFFile(path: Fixtures.modelPath) }

    public static func load() throws -> GGUFFile { try shared.get() }
}

/// The fixture's greedy chat generation (the `generate.jsonl` case whose prompt is a rendered
/// ChatML conversation ending in a user turn), so tests that need a known answer take it from
/// the files, whatever fixture set `LORA_FIXTURES` names.
public struct FixtureChatAnswer: Sendable {
    /// The last user message of the prompt.
    public let question: String
    public let promptIds: [Int]
    /// The generated ids up to and including the first stop token.
    public let answerIds: [Int]
    /// The answer's text without the stop token.
    public let answer: String

    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "generate.jsonl in \(Fixtures.directory) has no chat prompt whose greedy answer ends at a stop token"
        }
    }

    /// Whether the fixture set has such a case (a set whose chat answer runs past its generated
    /// length has none): tests that need one are skipped, visibly, without it.
    public static let isAvailable: Bool = {
        guard let gguf = try? GGUFFile(path: Fixtures.modelPath), let tokenizer = try? BPETokenizer(gguf: gguf) else { return false }
        return (try? load(tokenizer: tokenizer, stopIds: tokenizer.vocabulary.specialIds)) != nil
    }()

    public static func load(tokenizer: BPETokenizer, stopIds: Set<Int>) throws -> FixtureChatAnswer {
        for entry in try Fixtures.jsonLines("generate.jsonl") {
            guard let prompt = entry["prompt_ids"] as? [Int], let generated = entry["new_ids"] as? [Int],
                let stop = generated.firstIndex(where: { stopIds.contains($0) })
            else { continue }
            let text = try tokenizer.decode(prompt)
            let opening = "<|im_start|>user\n", closing = "<|im_end|>\n<|im_start|>assistant\n"
            guard text.hasSuffix(closing), let start = text.range(of: opening, options: .backwards) else { continue }
            let question = String(text[start.upperBound..<text.index(text.endIndex, offsetBy: -closing.count)])
            let answerIds = Array(generated[...stop])
            return FixtureChatAnswer(
                question: question, promptIds: prompt, answerIds: answerIds, answer: try tokenizer.decode(Array(answerIds.dropLast())))
        }
        throw Missing()
    }
}
