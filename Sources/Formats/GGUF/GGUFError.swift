/// Everything that can be wrong with a GGUF file, each case naming the file and the place.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case file(FormatError)
    case badMagic(path: String, found: UInt32)
    case unsupportedVersion(path: String, version: UInt32)
    case truncated(path: String, offset: Int, needed: Int, available: Int, reading: String)
    case invalidValueType(path: String, offset: Int, key: String, type: UInt32)
    case invalidString(path: String, offset: Int)
    case duplicateKey(path: String, key: String)
    case implausibleCount(path: String, offset: Int, what: String, count: UInt64)
    case invalidTensor(path: String, name: String, reason: String)
    case unknownTensorType(path: String, name: String, type: UInt32)
    case badAlignment(path: String, alignment: Int)
    case missingKey(path: String, key: String)
    case wrongKeyType(path: String, key: String, expected: String)

    public var description: String {
        switch self {
        case .file(let error):
            error.description
        case .badMagic(let path, let found):
            "\(path): not a GGUF file (magic 0x\(String(found, radix: 16)) at offset 0, expected 0x46554747 \"GGUF\")"
        case .unsupportedVersion(let path, let version):
            "\(path): GGUF version \(version) is not supported (supported: 2, 3)"
        case .truncated(let path, let offset, let needed, let available, let reading):
            "\(path): truncated while reading \(reading) at offset \(offset): needed \(needed) bytes, \(available) left; the file is incomplete or corrupt"
        case .invalidValueType(let path, let offset, let key, let type):
            "\(path): metadata key '\(key)' has unknown value type \(type) at offset \(offset)"
        case .invalidString(let path, let offset):
            "\(path): string at offset \(offset) is not valid UTF-8"
        case .duplicateKey(let path, let key):
            "\(path): metadata key '\(key)' appears twice"
        case .implausibleCount(let path, let offset, let what, let count):
            "\(path): \(what) = \(count) at offset \(offset) is larger than the file could hold"
        case .invalidTensor(let path, let name, let reason):
            "\(path): tensor '\(name)': \(reason)"
        case .unknownTensorType(let path, let name, let type):
            "\(path): tensor '\(name)' has unknown ggml type \(type)"
        case .badAlignment(let path, let alignment):
            "\(path): general.alignment = \(alignment) is not a positive power of two"
        case .missingKey(let path, let key):
            "\(path): required metadata key '\(key)' is missing"
        case .wrongKeyType(let path, let key, let expected):
            "\(path): metadata key '\(key)' should be \(expected)"
        }
    }
}
