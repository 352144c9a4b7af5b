/// Splits text into the words BPE runs on, before any merge.
public enum PreTokenizer: String, Sendable {
    /// GPT-2's pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    case gpt2
    /// SmolLM's (llama.cpp `smollm`; tokenizer.json `Digits(individual_digits) + ByteLevel`):
    /// every numeric character on its own, then the GPT-2 pattern on the rest.
    case smollm

    /// Word boundaries as ranges of indices into `scalars`.
    public func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .gpt2:
            return Self.gpt2Split(scalars, 0..<scalars.count)
        case .smollm:
            var words: [Range<Int>] = []
            var start = 0
            for i in scalars.indices where Self.isNumber(scalars[i]) {
                if start < i { words += Self.gpt2Split(scalars, start..<i) }
                words.append(i..<(i + 1))
                start = i + 1
            }
            if start < scalars.count { words += Self.gpt2Split(scalars, start..<scalars.count) }
            return words
        }
    }

    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }

    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }

    static func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    /// A hand-written matcher for the GPT-2 regex: alternatives are tried in the pattern's order
    /// at each position, exactly as a backtracking regex engine would.
    static func gpt2Split(_ s: [Unicode.Scalar], _ range: Range<Int>) -> [Range<Int>] {
        var words: [Range<Int>] = []
        var i = range.lowerBound
        let end = range.upperBound
        func run(from j: Int, while predicate: (Unicode.Scalar) -> Bool) -> Int {
            var k = j
            while k < end && predicate(s[k]) { k += 1 }
            return k
        }
        let isOther: (Unicode.Scalar) -> Bool = { !isSpace($0) && !isLetter($0) && !isNumber($0) }
        while i < end {
            let c = s[i]
            // 's 't 're 've 'm 'll 'd
            if c == "'" && i + 1 < end {
                let n = s[i + 1]
                if n == "s" || n == "t" || n == "m" || n == "d" {
                    words.append(i..<(i + 2)); i += 2; continue
                }
                if i + 2 < end {
                    let pair = (n, s[i + 2])
                    if pair == ("r", "e") || pair == ("v", "e") || pair == ("l", "l") {
                        words.append(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            // An optional single space followed by letters, numbers or other symbols.
            let body = (c == " " && i + 1 < end) ? i + 1 : i
            if let predicate = [isLetter, isNumber, isOther].first(where: { $0(s[body]) }) {
                let j = run(from: body, while: predicate)
                words.append(i..<j)
                i = j
                continue
            }
            // Whitespace: `\s+(?!\S)` keeps the last space for the next word unless at the end.
            let j = run(from: i, while: isSpace)
            if j == end || j - i == 1 {
                words.append(i..<j)
                i = j
            } else {
                words.append(i..<(j - 1))
                i = j - 1
            }
        }
        return words
    }
}
