/// Everything that can be wrong with tokenizer data, naming the source and the entry.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case missing(source: String, what: String)
    case unsupported(source: String, what: String)
    case invalidMerge(source: String, index: Int, merge: String)
    case invalidJSON(source: String, reason: String)
    case unknownTokenId(Int, vocabularySize: Int)
    case invalidSpecialToken(source: String, name: String, id: Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .missing(let source, let what): "\(source): tokenizer data is missing \(what)"
        case .unsupported(let source, let what): "\(source): unsupported tokenizer: \(what)"
        case .invalidMerge(let source, let index, let merge): "\(source): merge #\(index) '\(merge)' is not two vocabulary tokens"
        case .invalidJSON(let source, let reason): "\(source): invalid tokenizer.json: \(reason)"
        case .unknownTokenId(let id, let size): "token id \(id) is outside the vocabulary (size \(size))"
        case .invalidSpecialToken(let source, let name, let id, let size):
            "\(source): the \(name) token id \(id) is outside the vocabulary (\(size) tokens); the model file is corrupted"
        }
    }
}
