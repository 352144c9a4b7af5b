import Foundation
import Formats
import Testing
import TestSupport
import Kernels
import Tokenizers

/// The model's tokenizer, read once from the GGUF for every test in this target.
enum SharedTokenizer {
    static let gguf = Result { try GGUFFile(path: Fixtures.modelPath) }
    static let tokenizer = Result { try BPETokenizer(gguf: gguf.get()) }
}

struct TokenizerFixtureTests {
    @Test func everyFixtureTextTokenizesAndDecodesLikeHuggingFace() throws {
        let tokenizer = try SharedTokenizer.tokenizer.get()
        let cases = try Fixtures.jsonLines("tokenize.jsonl")
        #expect(cases.count > 10)
        for entry in cases {
            let text = try #require(entry["text"] as? String)
            let ids = try #require(entry["ids"] as? [Int])
            #expect(tokenizer.encode(text) == ids, "text: \(text.debugDescription)")
            #expect(try tokenizer.decode(ids) == entry["decoded"] as? String, "ids: \(ids)")
        }
    }

    @Test func chatRenderingMatchesTemplateAndIds() throws {
        let tokenizer = try SharedTokenizer.tokenizer.get()
        let gguf = try SharedTokenizer.gguf.get()
        let fromModel = try ChatTemplate(jinja: try #require(gguf.metadata["tokenizer.chat_template"]?.string), source: gguf.path)
        let fromFixture = try ChatTemplate(
            jinja: try String(contentsOfFile: try Fixtures.path("chat_template.txt"), encoding: .utf8), source: "chat_template.txt")
        #expect(fromModel == fromFixture)
        let cases = try Fixtures.jsonLines("chat.jsonl")
        #expect(!cases.isEmpty)
        for entry in cases {
            let messages = try #require(entry["messages"] as? [[String: String]]).map {
                ChatMessage(role: $0["role"] ?? "", content: $0["content"] ?? "")
            }
            let text = fromModel.render(messages, addGenerationPrompt: entry["add_generation_prompt"] as? Bool ?? false)
            #expect(text == entry["text"] as? String)
            #expect(tokenizer.encode(text) == entry["ids"] as? [Int])
            // Without a system message, the template's default one is inserted.
            if messages.first?.role != "system", let defaultSystem = fromModel.defaultSystem {
                #expect(text.contains(defaultSystem))
            }
        }
    }

    @Test func nonChatMLTemplateIsRefused() {
        #expect(throws: TokenizerError.self) {
            try ChatTemplate(jinja: "{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}", source: "t")
        }
    }

    /// A tokenizer.json written from the GGUF's vocabulary must tokenize identically.
    @Test func tokenizerJSONLoadsToTheSameTokenizer() throws {
        let reference = try SharedTokenizer.tokenizer.get()
        let gguf = try SharedTokenizer.gguf.get()
        let tokens = try gguf.stringArray("tokenizer.ggml.tokens")
        let merges = try gguf.stringArray("tokenizer.ggml.merges")
        let special = reference.vocabulary.specialIds.sorted()
        var vocab: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where !reference.vocabulary.specialIds.contains(id) { vocab[token] = id }
        let json: [String: Any] = [
            "added_tokens": special.map { ["id": $0, "content": tokens[$0], "special": true] },
            "pre_tokenizer": [
                "type": "Sequence",
                "pretokenizers": [
                    ["type": "Digits", "individual_digits": true],
                    ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
                ],
            ],
            // Newer files store merges as pairs; mix both spellings to cover both.
            "model": [
                "type": "BPE", "vocab": vocab,
                "merges": merges.enumerated().map { $0.offset % 2 == 0 ? $0.element as Any : $0.element.split(separator: " ").map(String.init) as Any },
            ],
        ]
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/tokenizer.json"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        let loaded = try BPETokenizer(tokenizerJSON: path)
        #expect(loaded.preTokenizer == .smollm)
        for entry in try Fixtures.jsonLines("tokenize.jsonl") {
            let text = try #require(entry["text"] as? String)
            #expect(loaded.encode(text) == reference.encode(text))
        }
    }

    /// The heap-ordered merge against the rule as written (repeatedly merge the lowest-ranked
    /// adjacent pair, leftmost first), on words built to have many equal-rank and overlapping
    /// pairs; and a 200,000-byte word without spaces, which the rule as written takes minutes for.
    @Test func mergesFollowTheRankRuleOnHardWords() throws {
        let tokenizer = try SharedTokenizer.tokenizer.get()
        let gguf = try SharedTokenizer.gguf.get()
        let tokens = try gguf.stringArray("tokenizer.ggml.tokens")
        var ids: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where ids[token] == nil { ids[token] = id }
        var ranks: [String: Int] = [:]
        for (rank, merge) in try gguf.stringArray("tokenizer.ggml.merges").enumerated() where ranks[merge] == nil { ranks[merge] = rank }
        func reference(_ word: String) -> [Int] {
            var symbols = Array(word.utf8).map { ByteLevel.encode([$0]) }
            while symbols.count > 1 {
                var best: (rank: Int, at: Int)?
                for k in 0..<(symbols.count - 1) {
                    let pair = symbols[k] + " " + symbols[k + 1]
                    if let rank = ranks[pair], ids[symbols[k] + symbols[k + 1]] != nil, rank < best?.rank ?? .max { best = (rank, k) }
                }
                guard let best else { break }
                symbols[best.at] += symbols[best.at + 1]
                symbols.remove(at: best.at + 1)
            }
            return symbols.compactMap { ids[$0] }
        }
        var rng = SeededRandom(seed: 17)
        let alphabets = ["ab", "aeiou", "abcdefgh", "ssst", "éa"]
        for trial in 0..<300 {
            let letters = Array(alphabets[trial % alphabets.count])
            let word = String((0..<(1 + trial % 40)).map { _ in letters[Int(rng.uniform(0, Float(letters.count))) % letters.count] })
            #expect(tokenizer.encode(word) == reference(word), "\(word)")
        }
        let long = String(repeating: "ab", count: 100_000)
        #expect(try tokenizer.decode(tokenizer.encode(long)) == long)
    }

    @Test func streamingNeverSplitsACharacter() throws {
        let tokenizer = try SharedTokenizer.tokenizer.get()
        let text = "naïve café 😀 日本語 ünïcödé"
        let ids = tokenizer.encode(text)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in ids { pieces.append(try decoder.append(id)) }
        pieces.append(decoder.flush())
        #expect(pieces.joined() == text)
        #expect(!pieces.contains { $0.contains("\u{FFFD}") })
    }

    /// A BOS or EOS id beyond the vocabulary (a corrupted header) is refused at load, so
    /// nothing indexes the vocabulary with it later (`lora info` crashed on it).
    @Test func specialIdsBeyondTheVocabularyAreRefused() {
        #expect(throws: TokenizerError.invalidSpecialToken(source: "m.gguf", name: "bos", id: 5, vocabularySize: 2)) {
            try BPETokenizer(
                vocabulary: Vocabulary(tokens: ["a", "b"], specialIds: [], bosId: 5, eosId: nil), merges: [], preTokenizer: .gpt2, source: "m.gguf")
        }
        #expect(throws: TokenizerError.self) {
            try BPETokenizer(
                vocabulary: Vocabulary(tokens: ["a", "b"], specialIds: [], bosId: nil, eosId: -1), merges: [], preTokenizer: .gpt2, source: "m.gguf")
        }
    }

    /// Stopping inside a character (an emoji cut by max_tokens) ends the text before it.
    @Test func anUnfinishedCharacterAtTheEndIsDropped() throws {
        let tokenizer = try SharedTokenizer.tokenizer.get()
        let ids = tokenizer.encode("ok 😀")
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var text = ""
        for id in ids.dropLast() { text += try decoder.append(id) }
        text += decoder.flush()
        let bytes = ids.dropLast().flatMap { (try? tokenizer.bytes(of: $0)) ?? [] }
        try #require(String(validating: bytes, as: UTF8.self) == nil, "the tokens must cut the emoji for this test")
        #expect(text == "ok " && !text.contains("\u{FFFD}"))
    }

    @Test func unknownTokenIdIsAnErrorNotACrash() throws {
        let tokenizer = try SharedTokenizer.tokenizer.get()
        let size = tokenizer.vocabulary.count
        #expect(throws: TokenizerError.unknownTokenId(size + 7, vocabularySize: size)) { try tokenizer.decode([size + 7]) }
        #expect(throws: TokenizerError.self) { try tokenizer.decode([-1]) }
    }
}

struct PreTokenizerTests {
    func words(_ text: String, _ pre: PreTokenizer) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return pre.split(scalars).map { range in
            var s = String.UnicodeScalarView()
            s.append(contentsOf: scalars[range])
            return String(s)
        }
    }

    @Test func gpt2PatternAlternatives() {
        #expect(words("I'm here, they'll go!", .gpt2) == ["I", "'m", " here", ",", " they", "'ll", " go", "!"])
        #expect(words("a  b\n\n c   ", .gpt2) == ["a", " ", " b", "\n\n", " c", "   "])
        #expect(words("x 2024 y", .gpt2) == ["x", " 2024", " y"])
        #expect(words("x 2024 y", .smollm) == ["x", " ", "2", "0", "2", "4", " y"])
    }
}
