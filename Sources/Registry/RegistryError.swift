import Formats
import Foundation
import GRDB

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
    case registryMissing(path: String, empty: Bool, versions: Int)
    case database(path: String, reason: String)
    case io(path: String, reason: String)

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
        case .registryMissing(let path, let empty, let versions):
            """
            \(path) is \(empty ? "empty" : "missing"), but the store holds \(versions) adapter version folder\(versions == 1 ? "" : "s"): \
            refusing to open it as a new, empty store (its gc would delete them). Restore the registry from a backup, \
            or rebuild it from the folders with `lora adapters rebuild --store \(URL(fileURLWithPath: path).deletingLastPathComponent().path)`
            """
        case .database(let path, let reason):
            "\(path): registry database error: \(reason)"
        case .io(let path, let reason):
            "\(path): \(reason)"
        }
    }
}

extension RegistryError {
    /// File-system and SQLite errors as `RegistryError`s that name `path`; others unchanged.
    static func wrap(_ error: any Error, path: String) -> any Error {
        if let database = error as? DatabaseError {
            return RegistryError.database(path: path, reason: database.message ?? "\(database.resultCode)")
        }
        if let file = FileSystemError.clarify(error, path: path) as? FileSystemError {
            return RegistryError.io(path: file.path, reason: file.reason)
        }
        return error
    }
}
