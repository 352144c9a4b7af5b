/// Why a model could not be loaded or run, naming the file and tensor.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(path: String, architecture: String)
    case invalidConfig(path: String, reason: String)
    case missingTensor(path: String, name: String)
    case wrongShape(path: String, name: String, expected: [Int], found: [Int])
    case unsupportedTensorType(path: String, name: String, type: String)
    case tokenOutOfRange(id: Int, vocabularySize: Int)
    case contextOverflow(needed: Int, contextLength: Int)
    case format(String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let path, let architecture):
            "\(path): architecture '\(architecture)' is not supported (supported: llama)"
        case .invalidConfig(let path, let reason):
            "\(path): invalid model configuration: \(reason)"
        case .missingTensor(let path, let name):
            "\(path): tensor '\(name)' is missing; the file is incomplete or not a Llama model"
        case .wrongShape(let path, let name, let expected, let found):
            "\(path): tensor '\(name)' has shape \(found), expected \(expected) from the model's configuration"
        case .unsupportedTensorType(let path, let name, let type):
            "\(path): tensor '\(name)' is stored as \(type), which cannot be dequantized (supported: F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K)"
        case .tokenOutOfRange(let id, let size):
            "token id \(id) is outside the vocabulary (size \(size))"
        case .contextOverflow(let needed, let contextLength):
            "the sequence needs \(needed) positions but the context holds \(contextLength)"
        case .format(let message):
            message
        }
    }
}
