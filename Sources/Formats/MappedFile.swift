import Foundation

/// A read-only file mapped into memory. Weights are read straight from the mapping, so opening
/// a 100 MB model costs page faults only for the bytes actually touched.
public struct MappedFile: Sendable {
    public let path: String
    public let data: Data

    public init(path: String) throws(FormatError) {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .fileNotFound(path: path)
        }
        guard !isDirectory.boolValue else { throw .notAFile(path: path) }
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
    }

    public var count: Int { data.count }
}

/// Errors shared by every file format: the file itself could not be opened.
public enum FormatError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case notAFile(path: String)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): "\(path): no such file"
        case .notAFile(let path): "\(path): is a directory, expected a file"
        case .unreadable(let path, let reason): "\(path): cannot be read: \(reason)"
        }
    }
}
