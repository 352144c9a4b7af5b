/// Why a registry operation failed, naming the adapter, file or database.
public enum RegistryError: Error, CustomStringConvertible, Equatable {
    case unknownAdapter(String)
    case wrongBase(adapter: String, adapterBase: String, loadedBase: String)
    case shapesDiffer(adapter: String, reason: String)
    case missingFiles(adapter: String, path: String)
    case corrupt(adapter: String, file: String, expected: String, found: String)
    case invalidName(String)
    case newerSchema(path: String)
    case invalidExport(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknownAdapter(let name):
            "unknown adapter '\(name)' (see `lora adapters list`)"
        case .wrongBase(let adapter, let adapterBase, let loadedBase):
            "adapter '\(adapter)' was trained for base \(adapterBase), but the loaded base is \(loadedBase); use the matching model, or --force if the shapes agree"
        case .shapesDiffer(let adapter, let reason):
            "adapter '\(adapter)' does not fit the loaded base: \(reason)"
        case .missingFiles(let adapter, let path):
            "adapter '\(adapter)': its files at \(path) are missing (run `lora adapters gc`)"
        case .corrupt(let adapter, let file, let expected, let found):
            "adapter '\(adapter)': \(file) has sha256 \(found), registered \(expected); the file was changed or corrupted"
        case .invalidName(let name):
            "invalid adapter name '\(name)': use letters, digits, '-', '_' and '.', not starting with '.'"
        case .newerSchema(let path):
            "\(path) was written by a newer version of lora; upgrade to open it"
        case .invalidExport(let path, let reason):
            "\(path): not an exported adapter: \(reason)"
        }
    }
}
