/// Byte-level BPE (GPT-2 family, as SmolLM2 and Llama 3 use), equal to Hugging Face
/// `tokenizers` with `add_special_tokens=False`.
///
/// Encoding: special tokens are cut out of the text first and emitted whole; each remaining
/// span is split into words by the pre-tokenizer, every word's UTF-8 bytes become byte-level
/// symbols, and adjacent symbols are merged repeatedly, always the pair with the lowest merge
/// rank, leftmost first on ties (the order `tokenizers` uses).
public struct BPETokenizer: Sendable {
    public let vocabulary: Vocabulary
    public let preTokenizer: PreTokenizer
    /// (left id, right id) packed into one key → (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    /// Byte → id of its single-character byte-level token, -1 where the vocabulary has none
    /// (SmolLM2 lacks a few control bytes and bytes that never occur in UTF-8).
    private let byteIds: [Int32]
    /// Special tokens as UTF-8, longest first so that a longer one wins over its prefix.
    private let specials: [(bytes: [UInt8], id: Int)]

    public init(vocabulary: Vocabulary, merges mergeList: [String], preTokenizer: PreTokenizer, source: String) throws(TokenizerError) {
        self.vocabulary = vocabulary
        self.preTokenizer = preTokenizer
        var byteIds = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            if let id = vocabulary.id(of: String(ByteLevel.byteToScalar[byte])) { byteIds[byte] = Int32(id) }
        }
        self.byteIds = byteIds
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, merge) in mergeList.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, let left = vocabulary.id(of: String(parts[0])),
                let right = vocabulary.id(of: String(parts[1]))
            else { throw .invalidMerge(source: source, index: rank, merge: merge) }
            // A merge whose result is not in the vocabulary can never fire; tokenizers skips it too.
            guard let merged = vocabulary.id(of: String(parts[0]) + String(parts[1])) else { continue }
            let key = UInt64(left) << 32 | UInt64(right)
            if merges[key] == nil { merges[key] = (Int32(rank), Int32(merged)) }
        }
        self.merges = merges
        specials = vocabulary.specialIds
            .map { (Array(vocabulary.tokens[$0].utf8), $0) }
            .filter { !$0.0.isEmpty }
            .sorted { $0.0.count > $1.0.count }
    }

    // MARK: - Encoding

    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        let bytes = Array(text.utf8)
        var spanStart = 0
        var i = 0
        while i < bytes.count {
            if let special = special(at: i, in: bytes) {
                encodeOrdinary(bytes[spanStart..<i], into: &ids)
                ids.append(special.id)
                i += special.bytes.count
                spanStart = i
            } else {
                i += 1
            }
        }
        encodeOrdinary(bytes[spanStart..<bytes.count], into: &ids)
        return ids
    }

    private func special(at i: Int, in bytes: [UInt8]) -> (bytes: [UInt8], id: Int)? {
        for special in specials where special.bytes.count <= bytes.count - i && special.bytes[0] == bytes[i] {
            if bytes[i..<(i + special.bytes.count)].elementsEqual(special.bytes) { return special }
        }
        return nil
    }

    private func encodeOrdinary(_ bytes: ArraySlice<UInt8>, into ids: inout [Int]) {
        guard !bytes.isEmpty else { return }
        // Special tokens are cut at byte positions of whole ASCII strings, so the span is valid UTF-8.
        let scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        var wordBytes: [UInt8] = []
        for word in preTokenizer.split(scalars) {
            wordBytes.removeAll(keepingCapacity: true)
            for scalar in scalars[word] { wordBytes.append(contentsOf: UTF8.encode(scalar)!) }
            mergeWord(wordBytes, into: &ids)
        }
    }

    private func mergeWord(_ bytes: [UInt8], into ids: inout [Int]) {
        // A byte without a token is dropped, as `tokenizers` does for a BPE model with no unk token.
        var symbols = bytes.map { byteIds[Int($0)] }.filter { $0 >= 0 }
        while symbols.count > 1 {
            var best: (rank: Int32, id: Int32, at: Int)? = nil
            for k in 0..<(symbols.count - 1) {
                if let merge = merges[UInt64(symbols[k]) << 32 | UInt64(symbols[k + 1])],
                    merge.rank < best?.rank ?? .max
                {
                    best = (merge.rank, merge.id, k)
                }
            }
            guard let best else { break }
            symbols[best.at] = best.id
            symbols.remove(at: best.at + 1)
        }
        for symbol in symbols { ids.append(Int(symbol)) }
    }

    // MARK: - Decoding

    /// The raw bytes of one token: special tokens verbatim, others through the byte-level table.
    public func bytes(of id: Int) throws(TokenizerError) -> [UInt8] {
        guard id >= 0 && id < vocabulary.count else { throw .unknownTokenId(id, vocabularySize: vocabulary.count) }
        let token = vocabulary.tokens[id]
        if vocabulary.specialIds.contains(id) { return Array(token.utf8) }
        return ByteLevel.decode(token) ?? Array(token.utf8)
    }

    /// Text of a token sequence; invalid UTF-8 (a sequence cut mid-character) becomes U+FFFD,
    /// as `tokenizers` decodes it.
    public func decode(_ ids: [Int]) throws(TokenizerError) -> String {
        var bytes: [UInt8] = []
        for id in ids { bytes += try self.bytes(of: id) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
