import Foundation

extension BPETokenizer {
    /// Reads a Hugging Face `tokenizer.json` with a byte-level BPE model.
    public init(tokenizerJSON path: String, bosId: Int? = nil, eosId: Int? = nil) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TokenizerError.missing(source: path, what: "a readable file (\(error.localizedDescription))")
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TokenizerError.invalidJSON(source: path, reason: "not a JSON object")
        }
        guard let model = root["model"] as? [String: Any], model["type"] as? String == "BPE",
            let vocab = model["vocab"] as? [String: Int]
        else { throw TokenizerError.unsupported(source: path, what: "model is not BPE with a vocab") }
        // Merges are "a b" strings in older files and ["a", "b"] pairs since tokenizers 0.20.
        var merges: [String] = []
        for (index, entry) in ((model["merges"] as? [Any]) ?? []).enumerated() {
            if let string = entry as? String {
                merges.append(string)
            } else if let pair = entry as? [String], pair.count == 2 {
                merges.append(pair[0] + " " + pair[1])
            } else {
                throw TokenizerError.invalidMerge(source: path, index: index, merge: "\(entry)")
            }
        }
        var tokens = [String](repeating: "", count: (vocab.values.max() ?? -1) + 1)
        for (token, id) in vocab where id >= 0 { tokens[id] = token }
        var specialIds = Set<Int>()
        for added in (root["added_tokens"] as? [[String: Any]]) ?? [] {
            guard let id = added["id"] as? Int, id >= 0, let content = added["content"] as? String else {
                throw TokenizerError.invalidJSON(source: path, reason: "added_tokens entry without id/content")
            }
            if id >= tokens.count { tokens += [String](repeating: "", count: id - tokens.count + 1) }
            tokens[id] = content
            specialIds.insert(id)
        }
        let preTokenizer = try Self.preTokenizer(root["pre_tokenizer"], source: path)
        try self.init(
            vocabulary: Vocabulary(tokens: tokens, specialIds: specialIds, bosId: bosId, eosId: eosId),
            merges: merges, preTokenizer: preTokenizer, source: path)
    }

    private static func preTokenizer(_ json: Any?, source: String) throws -> PreTokenizer {
        guard let json = json as? [String: Any], let type = json["type"] as? String else {
            throw TokenizerError.unsupported(source: source, what: "no pre_tokenizer")
        }
        let byteLevelOK: ([String: Any]) -> Bool = {
            $0["type"] as? String == "ByteLevel" && ($0["add_prefix_space"] as? Bool ?? false) == false
                && ($0["use_regex"] as? Bool ?? true)
        }
        if type == "ByteLevel" && byteLevelOK(json) { return .gpt2 }
        if type == "Sequence", let steps = json["pretokenizers"] as? [[String: Any]], steps.count == 2,
            steps[0]["type"] as? String == "Digits", steps[0]["individual_digits"] as? Bool == true,
            byteLevelOK(steps[1])
        {
            return .smollm
        }
        throw TokenizerError.unsupported(source: source, what: "pre_tokenizer \(type) (supported: ByteLevel, Digits + ByteLevel)")
    }
}
