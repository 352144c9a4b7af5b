/// A parsed JSON value that keeps the order of object keys (a schema's properties are generated
/// in the order it lists them; `JSONSerialization` gives an unordered dictionary).
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text as written, which an enum literal must match.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x.map(\.key) == y.map(\.key) && x.map(\.value) == y.map(\.value)
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    public var string: String? { if case .string(let text) = self { text } else { nil } }

    /// Compact JSON text: object keys in their order, strings escaped as `JSONSerialization`
    /// writes them (no escaped slashes).
    public var serialized: String {
        switch self {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let text): return text
        case .string(let text): return Self.quoted(text)
        case .array(let items): return "[" + items.map(\.serialized).joined(separator: ",") + "]"
        case .object(let pairs): return "{" + pairs.map { Self.quoted($0.key) + ":" + $0.value.serialized }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var offset: Int
        public var reason: String
        public var description: String { "JSON at byte \(offset): \(reason)" }
    }

    /// Parses one JSON document (RFC 8259), nesting at most `maxDepth` deep.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 128) throws(ParseError) -> JSONValue {
        var parser = Parser(bytes: bytes, maxDepth: maxDepth)
        let value = try parser.value(depth: 0)
        parser.skipSpaces()
        guard parser.offset == bytes.count else { throw ParseError(offset: parser.offset, reason: "text after the value") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        let maxDepth: Int
        var offset = 0

        init(bytes: [UInt8], maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        mutating func skipSpaces() {
            while offset < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[offset]) { offset += 1 }
        }

        func fail(_ reason: String) -> ParseError { ParseError(offset: offset, reason: reason) }

        mutating func expect(_ byte: UInt8) throws(ParseError) {
            guard offset < bytes.count, bytes[offset] == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
            offset += 1
        }

        mutating func value(depth: Int) throws(ParseError) -> JSONValue {
            guard depth < maxDepth else { throw fail("nested deeper than \(maxDepth)") }
            skipSpaces()
            guard offset < bytes.count else { throw fail("unexpected end") }
            switch bytes[offset] {
            case UInt8(ascii: "{"):
                offset += 1
                var pairs: [(key: String, value: JSONValue)] = []
                skipSpaces()
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
                    offset += 1
                    return .object(pairs)
                }
                while true {
                    skipSpaces()
                    let key = try string()
                    skipSpaces()
                    try expect(UInt8(ascii: ":"))
                    pairs.append((key, try value(depth: depth + 1)))
                    skipSpaces()
                    if offset < bytes.count, bytes[offset] == UInt8(ascii: ",") {
                        offset += 1
                        continue
                    }
                    try expect(UInt8(ascii: "}"))
                    return .object(pairs)
                }
            case UInt8(ascii: "["):
                offset += 1
                var items: [JSONValue] = []
                skipSpaces()
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
                    offset += 1
                    return .array(items)
                }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpaces()
                    if offset < bytes.count, bytes[offset] == UInt8(ascii: ",") {
                        offset += 1
                        continue
                    }
                    try expect(UInt8(ascii: "]"))
                    return .array(items)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try word("true", .bool(true))
            case UInt8(ascii: "f"): return try word("false", .bool(false))
            case UInt8(ascii: "n"): return try word("null", .null)
            default: return try number()
            }
        }

        mutating func word(_ text: String, _ value: JSONValue) throws(ParseError) -> JSONValue {
            let word = Array(text.utf8)
            guard bytes.count - offset >= word.count, Array(bytes[offset..<(offset + word.count)]) == word else { throw fail("unexpected character") }
            offset += word.count
            return value
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func number() throws(ParseError) -> JSONValue {
            let start = offset
            func digits() -> Int {
                let first = offset
                while offset < bytes.count, JSONMatcher.isDigit(bytes[offset]) { offset += 1 }
                return offset - first
            }
            func skip(_ characters: String) -> Bool {
                guard offset < bytes.count, characters.utf8.contains(bytes[offset]) else { return false }
                offset += 1
                return true
            }
            _ = skip("-")
            let leadingZero = offset < bytes.count && bytes[offset] == UInt8(ascii: "0")
            let integerDigits = digits()
            guard integerDigits > 0, !leadingZero || integerDigits == 1 else { throw ParseError(offset: start, reason: "not a JSON value") }
            if skip("."), digits() == 0 { throw fail("a digit must follow the decimal point") }
            if skip("eE") {
                _ = skip("+-")
                if digits() == 0 { throw fail("a digit must follow the exponent") }
            }
            return .number(String(decoding: bytes[start..<offset], as: UTF8.self))
        }

        mutating func string() throws(ParseError) -> String {
            try expect(UInt8(ascii: "\""))
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() throws(ParseError) {
                guard !raw.isEmpty else { return }
                guard let text = String(validating: raw, as: UTF8.self) else { throw ParseError(offset: offset, reason: "invalid UTF-8") }
                scalars.append(contentsOf: text.unicodeScalars)
                raw.removeAll()
            }
            while true {
                guard offset < bytes.count else { throw fail("unterminated string") }
                let byte = bytes[offset]
                offset += 1
                switch byte {
                case UInt8(ascii: "\""):
                    try flush()
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    try flush()
                    guard offset < bytes.count else { throw fail("unterminated string") }
                    let escape = bytes[offset]
                    offset += 1
                    switch escape {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "u"):
                        var code = try hex4()
                        if (0xD800..<0xDC00).contains(code), bytes.count - offset >= 6, bytes[offset] == UInt8(ascii: "\\"),
                            bytes[offset + 1] == UInt8(ascii: "u")
                        {
                            offset += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone surrogate") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw fail("a lone surrogate") }
                        scalars.append(scalar)
                    default: throw fail("invalid escape")
                    }
                case 0..<0x20: throw fail("a control character in a string")
                default: raw.append(byte)
                }
            }
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            let digits = bytes.count - offset >= 4 ? String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self) : ""
            guard digits.count == 4, digits.allSatisfy(\.isHexDigit), let code = UInt32(digits, radix: 16) else {
                throw fail("invalid \\u escape")
            }
            offset += 4
            return code
        }
    }
}
