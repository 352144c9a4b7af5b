import Foundation

/// A file-system failure said plainly: the path and the reason ("no space left on device",
/// "already exists"), instead of Foundation's `Error Domain=NSCocoaErrorDomain Code=640 ...`.
public struct FileSystemError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }

    /// `error` as a `FileSystemError` when it is one of Foundation's file errors; otherwise
    /// unchanged. `path` names the place when the error does not.
    public static func clarify(_ error: any Error, path fallback: String? = nil) -> any Error {
        guard let cocoa = error as? CocoaError else { return error }
        let path = cocoa.filePath ?? cocoa.url?.path ?? fallback ?? "file"
        if let posix = cocoa.underlying as? POSIXError ?? (cocoa.userInfo[NSUnderlyingErrorKey] as? POSIXError) {
            return FileSystemError(path: path, reason: String(cString: strerror(posix.code.rawValue)))
        }
        let reason: String =
            switch cocoa.code {
            case .fileWriteOutOfSpace: "no space left on device"
            case .fileWriteFileExists: "already exists"
            case .fileNoSuchFile, .fileReadNoSuchFile: "no such file or directory"
            case .fileWriteNoPermission, .fileReadNoPermission: "permission denied"
            case .fileWriteVolumeReadOnly: "read-only file system"
            default: "file operation failed (Foundation error \(cocoa.code.rawValue))"
            }
        return FileSystemError(path: path, reason: reason)
    }
}
