import Foundation
import Inference
import Kernels
import Testing
import TestSupport
import Tokenizers

struct StructuredOutputTests {
    static let personSchema = """
        {"type": "object", "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 12},
            "age": {"type": "integer"},
            "score": {"type": ["number", "null"]},
            "colour": {"enum": ["red", "green", 7]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "minItems": 1, "maxItems": 3},
            "home": {"$ref": "#/$defs/place"},
            "ok": {"type": "boolean"}},
         "required": ["name", "age", "colour", "tags"],
         "$defs": {"place": {"type": "object", "properties": {"city": {"type": "string"}, "inner": {"anyOf": [{"$ref": "#/$defs/place"}, {"type": "null"}]}}, "required": ["city"]}}}
        """

    static func grammar(_ schema: String) throws -> JSONGrammar {
        try JSONGrammar(schema: try JSONValue.parse(Array(schema.utf8)))
    }

    static func accepts(_ grammar: JSONGrammar, _ document: String) -> Bool {
        var matcher = JSONMatcher(grammar: grammar)
        return matcher.feed(Array(document.utf8)) && matcher.isComplete
    }

    @Test func schemaDocumentsAcceptedAndViolationsRejected() throws {
        let person = try Self.grammar(Self.personSchema)
        let valid = [
            #"{"name":"Ann","age":31,"score":-9.5e99,"colour":"red","tags":["a"]}"#,
            #"{ "name" : "Ann" , "age" : -0 , "score" : 1.5e-3 , "colour" : 7 , "tags" : [ "ab" , "" ] , "ok" : false }"#,
            #"{"name":"\u00e9\n","age":0,"score":null,"colour":"green","tags":["x","y","z"],"home":{"city":"Oslo","inner":{"city":"x","inner":null}}}"#,
            "\n {\"name\":\"日本\",\"age\":12,\"colour\":\"red\",\"tags\":[\"ab\"]}",
        ]
        for document in valid {
            #expect(Self.accepts(person, document), "\(document)")
            #expect((try? JSONSerialization.jsonObject(with: Data(document.utf8))) != nil)
        }
        let invalid = [
            #"{"age":31,"name":"Ann","colour":"red","tags":["a"]}"#,  // out of order
            #"{"name":"A","age":1,"score":1e100,"colour":"red","tags":["a"]}"#,  // beyond a double's exponent
            #"{"name":"Ann","colour":"red","tags":["a"]}"#,  // a required property missing
            #"{"name":"","age":1,"colour":"red","tags":["a"]}"#,  // minLength
            #"{"name":"Annabel-Lee-Smith","age":1,"colour":"red","tags":["a"]}"#,  // maxLength
            #"{"name":"A","age":1.5,"colour":"red","tags":["a"]}"#,  // integer
            #"{"name":"A","age":01,"colour":"red","tags":["a"]}"#,  // leading zero
            #"{"name":"A","age":1,"colour":"blue","tags":["a"]}"#,  // enum
            #"{"name":"A","age":1,"colour":"red","tags":[]}"#,  // minItems
            #"{"name":"A","age":1,"colour":"red","tags":["a","b","c","d"]}"#,  // maxItems
            #"{"name":"A","age":1,"colour":"red","tags":["a"],"extra":1}"#,  // no other properties
            #"{"name":"A","age":1,"colour":"red","tags":["a"],"home":{}}"#,  // city required
            #"{"name":"A\u","age":1,"colour":"red","tags":["a"]}"#,
            #"{"name":"\ud800","age":1,"colour":"red","tags":["a"]}"#,  // a lone surrogate escape
            "{\"name\":\"a\u{01}\",\"age\":1,\"colour\":\"red\",\"tags\":[\"a\"]}",  // a control character
            #"{"name":"A","age":1,"colour":"red","tags":["a"]}x"#,
            "{\"name\":\"A\",\"age\":1,\"colour\":\"red\",\"tags\":[\"a\"]}\n",  // nothing after the document
            #"{"name":"A","age":1,"colour":"red","tags":["a"]"#,  // not complete
        ]
        for document in invalid { #expect(!Self.accepts(person, document), "\(document)") }
        // Bytes that are not UTF-8 inside a string.
        var matcher = JSONMatcher(grammar: person)
        let steps = [matcher.feed(Array(#"{"name":""#.utf8)), !matcher.feed(0xFF), !matcher.feed(0x80), matcher.feed(0xC3), !matcher.feed(0x41)]
        #expect(steps.allSatisfy { $0 })

        let anything = JSONGrammar.anyObject()
        for document in [#"{}"#, #"{"a":[1,{"b":null}],"c":"d","e":-1.5E+2,"f":true}"#, "{\n  \"a\": []\n}"] {
            #expect(Self.accepts(anything, document), "\(document)")
        }
        for document in [#"[]"#, #""a""#, #"{"a"}"#, #"{"a":1,}"#, #"{a:1}"#, "{" + String(repeating: " ", count: 40) + "}"] {
            #expect(!Self.accepts(anything, document), "\(document)")
        }
        // Nesting stops at maxDepth.
        let deep = String(repeating: #"{"a":"#, count: 40)
        var nested = JSONMatcher(grammar: anything)
        let fed = nested.feed(Array(deep.utf8))
        #expect(!fed)
    }

    /// Documents grown byte by byte from whatever the matcher accepts (random choices, closing
    /// bytes favoured so that they end) always parse and satisfy the schema.
    @Test func randomAcceptedDocumentsSatisfyTheSchema() throws {
        let person = try Self.grammar(Self.personSchema)
        var random = SeededRandom(seed: 42)
        // Printable ASCII, a newline and the two bytes of "é".
        let alphabet = Array(UInt8(0x20)...UInt8(0x7E)) + [0x0A, 0xC3, 0xA9]
        var complete = 0
        for _ in 0..<300 {
            var matcher = JSONMatcher(grammar: person)
            var bytes: [UInt8] = []
            while bytes.count < 400 && !(matcher.isComplete && random.nextDouble() < 0.5) {
                let options = alphabet.filter { var copy = matcher; return copy.feed($0) }
                guard !options.isEmpty else { break }
                let closing = options.filter { "}]\",".utf8.contains($0) }
                let pool = !closing.isEmpty && random.nextDouble() < 0.4 ? closing : options
                let byte = pool[Int(random.nextDouble() * Double(pool.count)) % pool.count]
                let fed = matcher.feed(byte)
                #expect(fed)
                bytes.append(byte)
            }
            guard matcher.isComplete else { continue }
            complete += 1
            let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], "\(String(decoding: bytes, as: UTF8.self))")
            let name = try #require(object["name"] as? String)
            #expect((1...12).contains(name.count))
            #expect(object["age"] is Int)
            #expect(["red", "green"].contains(object["colour"] as? String) || object["colour"] as? Int == 7)
            let tags = try #require(object["tags"] as? [String])
            #expect((1...3).contains(tags.count) && tags.allSatisfy { $0.count <= 4 })
            #expect(Set(object.keys).isSubset(of: ["name", "age", "score", "colour", "tags", "home", "ok"]))
            if let home = object["home"] { #expect((home as? [String: Any])?["city"] is String) }
        }
        #expect(complete > 100)
    }

    /// The trie walk finds exactly the tokens that feeding each token's bytes would accept.
    @Test func tokenMaskEqualsCheckingEveryToken() throws {
        let tokenizer = try SharedLanguageModel.model.get().tokenizer
        let trie = TokenTrie(tokenizer: tokenizer)
        let person = try Self.grammar(Self.personSchema)
        for (grammar, prefix) in [
            (person, ""), (person, "{"), (person, #"{"na"#), (person, #"{"name":"Al"#), (person, #"{"name":"Al","age":4"#),
            (person, #"{"name":"Al","age":4,"colour":"#), (JSONGrammar.anyObject(), #"{"a":[1,"#), (JSONGrammar.anyObject(), #"{"a":-"#),
        ] {
            var matcher = JSONMatcher(grammar: grammar)
            let fed = matcher.feed(Array(prefix.utf8))
            #expect(fed)
            let mask = trie.allowedTokens(matcher)
            var expected = [Bool](repeating: false, count: tokenizer.vocabulary.count)
            for id in expected.indices where !trie.tokenBytes[id].isEmpty {
                var copy = matcher
                expected[id] = copy.feed(trie.tokenBytes[id])
            }
            #expect(mask == expected, "after \(prefix)")
            #expect(mask.contains(true))
        }
        // Special tokens are never allowed; stop tokens only once the document is whole.
        let stop = Set([try #require(tokenizer.vocabulary.id(of: "<|im_end|>"))])
        var constraint = JSONConstraint(grammar: JSONGrammar.anyObject(), trie: trie)
        #expect(constraint.allowedTokens(stopIds: stop)[stop.first!] == false)
        for token in tokenizer.encode("{\"a\": 1}") { constraint.accept(token) }
        #expect(constraint.matcher.isComplete && constraint.allowedTokens(stopIds: stop)[stop.first!])
        // Masks remembered by state key equal masks computed afresh, along a reply with a long string
        // (where keys fold the length) and a string near its maxLength (where they must not).
        let shortName = try Self.grammar(#"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string", "maxLength": 40}}, "required": ["a", "b"]}"#)
        var remembered = JSONConstraint(grammar: shortName, trie: trie)
        let reply = #"{"a": "one two three four five six seven eight nine ten eleven", "b": "alpha beta gamma delta epsilon zeta eta theta"}"#
        for token in tokenizer.encode(reply) {
            let mask = remembered.allowedTokens(stopIds: stop)
            var fresh = trie.allowedTokens(remembered.matcher)
            if remembered.matcher.isComplete || !fresh.contains(true) { for id in stop { fresh[id] = true } }
            #expect(mask == fresh)
            guard mask[token] else { break }
            remembered.accept(token)
        }
    }

    /// One loop: a constrained, sampled reply is the same from `generate` alone and from the
    /// engine beside an unconstrained row, and it is a document of the schema.
    @Test func constrainedRepliesAreTheSameAloneAndInTheEngine() async throws {
        let languageModel = try SharedLanguageModel.model.get()
        let grammar = try Self.grammar(#"{"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}, "rank": {"type": "integer"}}, "required": ["city", "rank"]}"#)
        let prompt = try languageModel.chatPrompt([ChatMessage(role: "user", content: "Name a city and its rank as JSON.")])
        let sampling = SamplingParameters(temperature: 0.9, seed: 5)
        let alone = try Generator(languageModel).generate(prompt: prompt, maxTokens: 60, sampling: sampling, grammar: grammar)
        #expect(alone.stoppedAtStopToken, "\(alone.text)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(alone.text.utf8)) as? [String: Any], "\(alone.text)")
        #expect(object["city"] is String && object["rank"] is Int && object.count == 2)

        let engine = InferenceEngine(languageModel: languageModel)
        let plain = try engine.submit(.init(prompt: languageModel.tokenizer.encode("Once upon a time"), maxTokens: 40, sampling: SamplingParameters(), adapters: nil))
        let constrained = try engine.submit(.init(prompt: prompt, maxTokens: 60, sampling: sampling, adapters: nil, grammar: grammar))
        var text = ""
        for await event in constrained.events { if case .text(let piece, _) = event { text += piece } }
        for await _ in plain.events {}
        await engine.shutdown()
        #expect(text == alone.text)
    }

    @Test func unsupportedSchemasAreRefusedByKeywordAndPlace() throws {
        for (schema, path, words) in [
            (#"{"type": "string", "pattern": "^a"}"#, "", "pattern"),
            (#"{"type": "object", "properties": {"n": {"type": "number", "minimum": 0}}}"#, "/properties/n", "minimum"),
            (#"{"anyOf": [{"type": "integer"}, {"type": "number"}]}"#, "", "different characters"),
            // A recursive reference is checked once compiled (it starts with "{", as the object beside it).
            (##"{"$ref": "#/$defs/a", "$defs": {"a": {"type": "object", "properties": {"x": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "object"}]}}}}}"##,
             "/$defs/a/properties/x", "different characters"),
            (##"{"type": "object", "properties": {"a": {"$ref": "#/components/x"}}}"##, "/properties/a", "$defs"),
            (#"{"type": "object", "properties": {}, "required": ["a"]}"#, "/required", "'a'"),
            (#"{"type": "strin"}"#, "/type", "unknown type"),
            (#"{"type": "string", "maxLength": -1}"#, "/maxLength", "non-negative"),
            // Hostile sizes: a $ref chain 500 long, 40,000 optional properties.
            ("{\"$ref\": \"#/$defs/d0\", \"$defs\": {" + (0..<500).map { "\"d\($0)\": {\"$ref\": \"#/$defs/d\($0 + 1)\"}" }.joined(separator: ",") + "}}",
             "/$defs/d63", "deeper than 64"),
            ("{\"type\": \"object\", \"properties\": {" + (0..<40_000).map { "\"p\($0)\": {}" }.joined(separator: ",") + "}}", "/properties", "optional properties"),
        ] {
            #expect {
                _ = try Self.grammar(schema)
            } throws: { error in
                guard let error = error as? JSONSchemaError else { return false }
                return error.path == path && error.reason.contains(words)
            }
        }
    }

    @Test func jsonValueKeepsKeyOrderAndNamesTheOffsetOfErrors() throws {
        let value = try JSONValue.parse(Array(#" {"z": 1, "a": [true, null, "\u00e9\ud83d\ude00"], "m": {"k": -2.5e3}} "#.utf8))
        guard case .object(let pairs) = value else { Issue.record("not an object"); return }
        #expect(pairs.map(\.key) == ["z", "a", "m"])
        #expect(value.serialized == #"{"z":1,"a":[true,null,"é😀"],"m":{"k":-2.5e3}}"#)
        for (text, offset) in [(#"{"a": 01}"#, 6), (#"{"a" 1}"#, 5), (#"[1,]"#, 3), (#""\ud800""#, 7), ("[[[[1]]]]", 3)] {
            #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Array(text.utf8), maxDepth: 3) }
            do { _ = try JSONValue.parse(Array(text.utf8), maxDepth: 3) } catch { #expect(error.offset == offset, "\(text): \(error)") }
        }
    }

    /// Log-probabilities are a log-softmax of the raw logits; alternatives come most likely first.
    @Test func logprobsAreTheLogSoftmax() {
        let logits: [Float] = [1, 3, 2, 3, -1]
        let result = Sampler.logprobs(logits, token: 2, top: 3)
        let total = logits.map { exp(Double($0)) }.reduce(0, +)
        #expect(abs(Double(result.logprob) - (2 - log(total))) < 1e-6)
        #expect(result.top.map(\.token) == [1, 3, 2])
        #expect(abs(result.top.map { exp(Double($0.logprob)) }.reduce(0, +) - (exp(3) * 2 + exp(2)) / total) < 1e-6)
        // A mask keeps the choice among the allowed tokens, even against a large logit.
        var sampler = Sampler(SamplingParameters())
        #expect(sampler.next(.logits(logits), allowed: [true, false, false, false]) == 0)
        #expect(sampler.next(.logits(logits), allowed: [false, false, true]) == 2)
    }
}
