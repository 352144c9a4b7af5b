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
        for (name, id) in [("bos", vocabulary.bosId), ("eos", vocabulary.eosId)] {
            if let id, !(0..<vocabulary.count).contains(id) {
                throw .invalidSpecialToken(source: source, name: name, id: id, vocabularySize: vocabulary.count)
            }
        }
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

    /// Merges a word's symbols, lowest rank first and leftmost among equal ranks, in
    /// O(n log n): the candidate pairs wait in a min-heap keyed by (rank, position) and the
    /// symbols form a linked list, so a merge touches only its two neighbours. (Scanning every
    /// pair for each merge, as the rule reads, is quadratic: 25,600 bytes without a space took
    /// 26 s.) A popped pair is stale when either side has changed since it was pushed.
    private func mergeWord(_ bytes: [UInt8], into ids: inout [Int]) {
        // A byte without a token is dropped, as `tokenizers` does for a BPE model with no unk token.
        var symbols = bytes.map { byteIds[Int($0)] }.filter { $0 >= 0 }
        let n = symbols.count
        guard n > 1 else {
            for symbol in symbols { ids.append(Int(symbol)) }
            return
        }
        var next = Array(1...n)  // n marks the end
        var previous = Array(-1..<(n - 1))
        var queue = MergeQueue()
        func push(_ left: Int) {
            let right = next[left]
            guard right < n, let merge = merges[UInt64(symbols[left]) << 32 | UInt64(symbols[right])] else { return }
            queue.push(MergeQueue.Entry(rank: merge.rank, left: Int32(left), leftId: symbols[left], rightId: symbols[right], merged: merge.id))
        }
        for k in 0..<(n - 1) { push(k) }
        while let entry = queue.pop() {
            let left = Int(entry.left), right = next[left]
            // Stale: the left symbol was absorbed or grew, or its right neighbour changed.
            guard symbols[left] == entry.leftId, right < n, symbols[right] == entry.rightId else { continue }
            symbols[left] = entry.merged
            symbols[right] = -1
            next[left] = next[right]
            if next[right] < n { previous[next[right]] = left }
            if previous[left] >= 0 { push(previous[left]) }
            push(left)
        }
        var k = 0
        while k < n {
            ids.append(Int(symbols[k]))
            k = next[k]
        }
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

/// A binary min-heap of candidate merges ordered by (rank, left position): the pair
/// `tokenizers` merges next.
private struct MergeQueue {
    struct Entry {
        var rank: Int32
        var left: Int32
        var leftId: Int32
        var rightId: Int32
        var merged: Int32

        func precedes(_ other: Entry) -> Bool { (rank, left) < (other.rank, other.left) }
    }

    private var heap: [Entry] = []

    mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count && heap[left].precedes(heap[smallest]) { smallest = left }
                if right < heap.count && heap[right].precedes(heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
