import Foundation
import GRDB

/// A base model adapters are trained for, identified by the hash of its weights.
public struct BaseModelRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "baseModel"
    public var id: Int64?
    public var name: String
    public var architecture: String
    public var path: String
    public var fingerprint: String
    /// The model's `LlamaConfig` as JSON.
    public var shapes: String
    public var fileSize: Int64
    public var modifiedAt: Double
    public var createdAt: Date

    public init(name: String, architecture: String, path: String, fingerprint: String, shapes: String, fileSize: Int64, modifiedAt: Double) {
        self.name = name
        self.architecture = architecture
        self.path = path
        self.fingerprint = fingerprint
        self.shapes = shapes
        self.fileSize = fileSize
        self.modifiedAt = modifiedAt
        createdAt = Date()
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    /// A short form for messages: name and the first 12 hex digits of the fingerprint.
    public var label: String { "\(name) (\(fingerprint.prefix(12)))" }
}
