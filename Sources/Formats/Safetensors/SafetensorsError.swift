/// Everything that can be wrong with a safetensors file or a Hugging Face model folder.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case file(FormatError)
    case truncatedHeader(path: String, fileSize: Int, headerSize: UInt64)
    case invalidHeader(path: String, reason: String)
    case invalidTensor(path: String, name: String, reason: String)
    case unsupportedDType(path: String, name: String, dtype: String)
    case missingTensor(path: String, name: String)

    public var description: String {
        switch self {
        case .file(let error):
            error.description
        case .truncatedHeader(let path, let fileSize, let headerSize):
            "\(path): header claims \(headerSize) bytes but the file has \(fileSize); the file is truncated or not safetensors"
        case .invalidHeader(let path, let reason):
            "\(path): invalid safetensors header: \(reason)"
        case .invalidTensor(let path, let name, let reason):
            "\(path): tensor '\(name)': \(reason)"
        case .unsupportedDType(let path, let name, let dtype):
            "\(path): tensor '\(name)' has dtype \(dtype); only F32, F16 and BF16 can be read as floats"
        case .missingTensor(let path, let name):
            "\(path): tensor '\(name)' is missing"
        }
    }
}
