import Foundation

/// The lines of a JSONL file, split on bytes: a line ends at "\n", and a "\r" before it is
/// not part of the line, so files written on Windows read line for line. Splitting decoded
/// text would not work: Swift reads "\r\n" as one Character, so a split on "\n" never finds it.
/// Each line is checked for UTF-8 on its own, so an error names its line.
public struct JSONLines: Sendable {
    /// A line longer than this is refused before it is parsed or tokenized: no training
    /// example needs it, and tokenizing 50 MB of one line is minutes of work for nothing.
    public static let maxLineBytes = 4 << 20

    public struct Line: Sendable {
        /// 1-based
        public let number: Int
        /// The line's bytes without "\n" or "\r\n".
        public let bytes: ArraySlice<UInt8>

        public var isBlank: Bool { bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D } }
    }

    public let path: String
    public let lines: [Line]

    public init(path: String) throws(DatasetError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .notFound(path: path) }
        self.init(bytes: [UInt8](data), path: path)
    }

    public init(bytes: [UInt8], path: String) {
        self.path = path
        var lines: [Line] = []
        var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0  // a UTF-8 byte order mark
        while start < bytes.count {
            let newline = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            var end = newline
            if end > start && bytes[end - 1] == 0x0D { end -= 1 }
            lines.append(Line(number: lines.count + 1, bytes: bytes[start..<end]))
            start = newline + 1
        }
        self.lines = lines
    }

    /// The line as text, or the reason it cannot be one.
    public func text(of line: Line) throws(DatasetError) -> String {
        guard line.bytes.count <= Self.maxLineBytes else {
            throw .malformedLine(
                path: path, line: line.number,
                reason: "the line is \(line.bytes.count) bytes; lines over \(Self.maxLineBytes) bytes are refused")
        }
        guard let text = String(validating: line.bytes, as: UTF8.self) else {
            throw .malformedLine(path: path, line: line.number, reason: "not valid UTF-8")
        }
        return text
    }
}
