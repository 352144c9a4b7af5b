/// Why a dataset could not be read, naming the file and line.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case notFound(path: String)
    case malformedLine(path: String, line: Int, reason: String)
    case empty(path: String)
    case noScoredTokens(path: String, line: Int)
    case mixedFormats(path: String, line: Int, expected: String, found: String)
    case unsupported(reason: String)

    public var description: String {
        switch self {
        case .notFound(let path):
            "\(path): no such file or folder (expected a .jsonl file, or a folder with train.jsonl and optionally valid.jsonl / test.jsonl)"
        case .malformedLine(let path, let line, let reason):
            "\(path):\(line): \(reason)"
        case .empty(let path):
            "\(path): no examples"
        case .noScoredTokens(let path, let line):
            "\(path):\(line): the example has no tokens to learn from after masking and truncation"
        case .mixedFormats(let path, let line, let expected, let found):
            "\(path):\(line): line is \(found) but earlier lines are \(expected); use one format per file"
        case .unsupported(let reason):
            reason
        }
    }
}
