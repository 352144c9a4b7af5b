/// Turns generated token ids into text as they arrive, holding back the bytes of a UTF-8
/// character that a token split, so the stream never shows a replacement character mid-way.
public struct StreamingDecoder {
    private let tokenizer: BPETokenizer
    private var pending: [UInt8] = []

    public init(tokenizer: BPETokenizer) {
        self.tokenizer = tokenizer
    }

    /// The text that became complete with this token (possibly empty).
    public mutating func append(_ id: Int) throws(TokenizerError) -> String {
        pending += try tokenizer.bytes(of: id)
        let complete = completePrefixLength(pending)
        let text = String(decoding: pending[0..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// The end of the text. What is still held back is always the start of a character the
    /// tokens never finished (generation stopped inside an emoji at `max_tokens`): it is dropped,
    /// not shown as U+FFFD. Bytes that can never form a character were already given out, as
    /// U+FFFD, by `append`.
    public mutating func flush() -> String {
        pending.removeAll()
        return ""
    }

    /// Length of the longest prefix that does not end inside an unfinished multi-byte character.
    private func completePrefixLength(_ bytes: [UInt8]) -> Int {
        var i = bytes.count - 1
        var continuation = 0
        while i >= 0 && bytes[i] & 0xC0 == 0x80 && continuation < 3 {
            i -= 1
            continuation += 1
        }
        guard i >= 0 else { return bytes.count }
        let lead = bytes[i]
        let expected = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return continuation + 1 >= expected ? bytes.count : i
    }
}
