/// Where a reply stands in a `JSONGrammar`, fed one byte at a time: a pushdown automaton whose
/// stack holds one frame per open value. Masking tokens copies the state at every node of the
/// vocabulary trie, so `State` is a plain value (its frames inline, no references): a copy is
/// a memory copy, with no reference counting.
public struct JSONMatcher: Sendable {
    let grammar: JSONGrammar
    var state = State()

    public init(grammar: JSONGrammar) { self.grammar = grammar }

    /// Takes one byte of the reply; false (and no change) if no document of the grammar continues so.
    public mutating func feed(_ byte: UInt8) -> Bool { state.feed(byte, grammar) }

    public mutating func feed(_ bytes: some Sequence<UInt8>) -> Bool {
        for byte in bytes { guard state.feed(byte, grammar) else { return false } }
        return true
    }

    /// Whether the bytes so far are a whole document (a number or literal at the end may still
    /// go on, but need not).
    public var isComplete: Bool { state.isComplete(grammar) }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

extension JSONMatcher {
    struct Frame: Sendable {
        /// A grammar node, or `document` for the bottom frame.
        var node: Int32
        var phase: UInt8
        /// Whitespace bytes in a row (containers), pending UTF-8 continuation bytes or `\u`
        /// digits (strings).
        var aux: UInt8 = 0
        /// Property index, item count, string length, digit count or trie node, by node kind.
        var count: Int32 = 0
    }

    static let document: Int32 = -1

    struct State: Sendable {
        /// frames[0] is the document; frames[depth] the innermost open value.
        private var frames = InlineArray<33, Frame>(repeating: Frame(node: JSONMatcher.document, phase: 0))
        private var depth = 0

        private var top: Frame {
            get { frames[depth] }
            set { frames[depth] = newValue }
        }

        /// The state with what no token of up to `longestToken` bytes can tell apart folded
        /// away: a string's length once it has its minimum and is that far from its maximum.
        /// Equal keys allow the same tokens.
        func key(_ grammar: JSONGrammar, longestToken: Int) -> [Int32] {
            var key: [Int32] = []
            key.reserveCapacity(3 * (depth + 1))
            for level in 0...depth {
                let frame = frames[level]
                var count = frame.count
                if frame.node >= 0, case .string(let minLength, let maxLength) = grammar.nodes[Int(frame.node)], frame.phase != 0,
                    Int(count) >= minLength, maxLength - Int(count) > longestToken
                {
                    count = -1
                }
                key += [frame.node, Int32(frame.phase) << 8 | Int32(frame.aux), count]
            }
            return key
        }

        private enum Outcome {
            case consumed
            case rejected
            /// The top frame changed (a value started or ended before this byte): feed it again.
            case again
        }

        mutating func feed(_ byte: UInt8, _ grammar: JSONGrammar) -> Bool {
            var copy = self
            while true {
                switch copy.step(byte, grammar) {
                case .consumed:
                    self = copy
                    return true
                case .rejected: return false
                case .again: continue
                }
            }
        }

        func isComplete(_ grammar: JSONGrammar) -> Bool {
            var state = self
            while true {
                if state.depth == 0 { return state.top.phase == 1 }
                guard state.valueEnds(grammar) else { return false }
                state.pop()
            }
        }

        /// A number or literal that is complete as it stands.
        private func valueEnds(_ grammar: JSONGrammar) -> Bool {
            switch grammar.nodes[Int(top.node)] {
            case .number: return [2, 3, 5, 8].contains(top.phase)
            case .literals: return top.phase == 1 && grammar.trie.value(top.count) != nil
            default: return false
            }
        }

        private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x09 || byte == 0x0D }

        private mutating func push(_ node: Int32) -> Outcome {
            guard depth < JSONGrammar.maxDepth else { return .rejected }
            depth += 1
            top = Frame(node: node, phase: 0)
            return .again
        }

        private mutating func pop() {
            if depth > 0 { depth -= 1 }
        }

        /// The value that ends with this byte is done.
        private mutating func close() -> Outcome {
            pop()
            return .consumed
        }

        /// The value ended before this byte, which belongs to the enclosing one.
        private mutating func end() -> Outcome {
            pop()
            return .again
        }

        private mutating func space() -> Outcome {
            guard top.aux < JSONGrammar.maxSpaces else { return .rejected }
            top.aux += 1
            return .consumed
        }

        /// Starts a value of `node` with this byte, to be continued at `phase` once it ends.
        private mutating func startValue(_ node: Int32, _ byte: UInt8, then phase: UInt8, _ grammar: JSONGrammar) -> Outcome {
            guard let resolved = grammar.resolve(node, startingWith: byte) else { return .rejected }
            top.phase = phase
            top.aux = 0
            return push(resolved)
        }

        private mutating func step(_ byte: UInt8, _ grammar: JSONGrammar) -> Outcome {
            if depth == 0 {
                // Nothing after the document: once it is whole, only a stop token may follow.
                guard top.phase == 0 else { return .rejected }
                if Self.isSpace(byte) { return space() }
                return startValue(grammar.root, byte, then: 1, grammar)
            }
            switch grammar.nodes[Int(top.node)] {
            case .object(let shape): return object(shape, byte, grammar)
            case .anyObject: return anyObject(byte, grammar)
            case .array(let items, let minItems, let maxItems): return array(items, minItems, maxItems, byte, grammar)
            case .string(let minLength, let maxLength): return string(minLength, maxLength, byte)
            case .number(let integer): return number(integer, byte)
            case .literals(let root): return literal(root, byte, grammar)
            case .union: return .rejected  // never on the stack: `resolve` picks a member
            }
        }

        // Objects: 0 before '{', 1 after '{', 2 in a key (count: trie node), 3 after the key (count:
        // property), 4 after ':', 5 after the value, 6 after ','.
        private mutating func object(_ shape: JSONGrammar.ObjectShape, _ byte: UInt8, _ grammar: JSONGrammar) -> Outcome {
            let trie = grammar.trie
            switch top.phase {
            case 0:
                top.phase = 1
                return .consumed
            case 1, 6:
                if Self.isSpace(byte) { return space() }
                if top.phase == 1 && byte == UInt8(ascii: "}") && shape.closable[Int(top.count)] { return close() }
                guard Int(top.count) < shape.keys.count, let next = trie.child(shape.keys[Int(top.count)], byte) else { return .rejected }
                (top.phase, top.count, top.aux) = (2, next, 0)
                return .consumed
            case 2:
                guard let next = trie.child(top.count, byte) else { return .rejected }
                if let property = trie.value(next) {
                    (top.phase, top.count) = (3, property)
                } else {
                    top.count = next
                }
                return .consumed
            case 3:
                if Self.isSpace(byte) { return space() }
                guard byte == UInt8(ascii: ":") else { return .rejected }
                (top.phase, top.aux) = (4, 0)
                return .consumed
            case 4:
                if Self.isSpace(byte) { return space() }
                return startValue(shape.values[Int(top.count)], byte, then: 5, grammar)
            default:
                if Self.isSpace(byte) { return space() }
                let next = Int(top.count) + 1
                if byte == UInt8(ascii: "}") && shape.closable[next] { return close() }
                guard byte == UInt8(ascii: ","), next < shape.keys.count else { return .rejected }
                (top.phase, top.count, top.aux) = (6, Int32(next), 0)
                return .consumed
            }
        }

        // Any object: 0 before '{', 1 after '{', 2 after a key, 3 after ':', 4 after a value, 5 after ','.
        private mutating func anyObject(_ byte: UInt8, _ grammar: JSONGrammar) -> Outcome {
            switch top.phase {
            case 0:
                top.phase = 1
                return .consumed
            case 1, 5:
                if Self.isSpace(byte) { return space() }
                if top.phase == 1 && byte == UInt8(ascii: "}") { return close() }
                return startValue(JSONGrammar.anyString, byte, then: 2, grammar)
            case 2:
                if Self.isSpace(byte) { return space() }
                guard byte == UInt8(ascii: ":") else { return .rejected }
                (top.phase, top.aux) = (3, 0)
                return .consumed
            case 3:
                if Self.isSpace(byte) { return space() }
                return startValue(JSONGrammar.anyValue, byte, then: 4, grammar)
            default:
                if Self.isSpace(byte) { return space() }
                if byte == UInt8(ascii: "}") { return close() }
                guard byte == UInt8(ascii: ",") else { return .rejected }
                (top.phase, top.aux) = (5, 0)
                return .consumed
            }
        }

        // Arrays: 0 before '[', 1 after '[', 2 after an item (count: items), 3 after ','.
        private mutating func array(_ items: Int32, _ minItems: Int, _ maxItems: Int, _ byte: UInt8, _ grammar: JSONGrammar) -> Outcome {
            switch top.phase {
            case 0:
                top.phase = 1
                return .consumed
            case 1, 3:
                if Self.isSpace(byte) { return space() }
                if top.phase == 1 && byte == UInt8(ascii: "]") && minItems == 0 { return close() }
                guard Int(top.count) < maxItems else { return .rejected }
                top.count += 1
                return startValue(items, byte, then: 2, grammar)
            default:
                if Self.isSpace(byte) { return space() }
                if byte == UInt8(ascii: "]") && Int(top.count) >= minItems { return close() }
                guard byte == UInt8(ascii: ","), Int(top.count) < maxItems else { return .rejected }
                (top.phase, top.aux) = (3, 0)
                return .consumed
            }
        }

        // Strings: 0 before '"', 1 inside (aux: UTF-8 continuation bytes due), 2 after '\', 3 in
        // `\u` (aux: digits seen), 4 after `\uD` (its next digit must not make a surrogate).
        private mutating func string(_ minLength: Int, _ maxLength: Int, _ byte: UInt8) -> Outcome {
            switch top.phase {
            case 0:
                top.phase = 1
                return .consumed
            case 1:
                if top.aux > 0 {
                    guard byte & 0xC0 == 0x80 else { return .rejected }
                    top.aux -= 1
                    return .consumed
                }
                if byte == UInt8(ascii: "\"") { return Int(top.count) >= minLength ? close() : .rejected }
                guard Int(top.count) < maxLength, byte >= 0x20 else { return .rejected }
                switch byte {
                case UInt8(ascii: "\\"): top.phase = 2
                case 0x80...0xC1, 0xF5...0xFF: return .rejected
                case 0xC2...0xDF: top.aux = 1
                case 0xE0...0xEF: top.aux = 2
                case 0xF0...0xF4: top.aux = 3
                default: break
                }
                top.count += 1
                return .consumed
            case 2:
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                    UInt8(ascii: "r"), UInt8(ascii: "t"):
                    top.phase = 1
                case UInt8(ascii: "u"): (top.phase, top.aux) = (3, 0)
                default: return .rejected
                }
                return .consumed
            case 3:
                guard byte.isHexDigit else { return .rejected }
                if top.aux == 0 && (byte == UInt8(ascii: "d") || byte == UInt8(ascii: "D")) {
                    top.phase = 4
                    return .consumed
                }
                top.aux += 1
                if top.aux == 4 { (top.phase, top.aux) = (1, 0) }
                return .consumed
            default:
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "7") else { return .rejected }
                (top.phase, top.aux) = (3, 2)
                return .consumed
            }
        }

        // Numbers: 0 start, 1 after '-', 2 integer digits, 3 after a leading 0, 4 after '.',
        // 5 fraction digits, 6 after 'e', 7 after the exponent's sign, 8 exponent digits.
        private mutating func number(_ integer: Bool, _ byte: UInt8) -> Outcome {
            let digit = JSONMatcher.isDigit(byte)
            let exponent = !integer && (byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E"))
            switch top.phase {
            case 0, 1:
                if top.phase == 0 && byte == UInt8(ascii: "-") {
                    top.phase = 1
                } else if byte == UInt8(ascii: "0") {
                    top.phase = 3
                } else if digit {
                    (top.phase, top.count) = (2, 1)
                } else {
                    return .rejected
                }
                return .consumed
            case 2, 3, 5:
                if digit && top.phase != 3 {
                    guard top.count < JSONGrammar.maxDigits else { return end() }
                    top.count += 1
                } else if !integer && top.phase != 5 && byte == UInt8(ascii: ".") {
                    (top.phase, top.count) = (4, 0)
                } else if exponent {
                    (top.phase, top.count) = (6, 0)
                } else {
                    return end()
                }
                return .consumed
            case 4:
                guard digit else { return .rejected }
                (top.phase, top.count) = (5, 1)
                return .consumed
            case 6, 7:
                if top.phase == 6 && (byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")) {
                    top.phase = 7
                    return .consumed
                }
                guard digit else { return .rejected }
                (top.phase, top.count) = (8, 1)
                return .consumed
            default:
                guard digit && top.count < JSONGrammar.maxExponentDigits else { return end() }
                top.count += 1
                return .consumed
            }
        }

        // Literals: 0 before the first byte, 1 inside (count: trie node).
        private mutating func literal(_ root: Int32, _ byte: UInt8, _ grammar: JSONGrammar) -> Outcome {
            let trie = grammar.trie
            if let next = trie.child(top.phase == 0 ? root : top.count, byte) {
                (top.phase, top.count) = (1, next)
                return .consumed
            }
            return top.phase == 1 && trie.value(top.count) != nil ? end() : .rejected
        }
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9")) || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
