import Foundation
import GRDB

/// One registered adapter version: where its files are, what it was trained on and how well.
public struct AdapterRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "adapter"
    public var id: Int64?
    public var name: String
    public var version: Int
    public var baseModelId: Int64
    public var rank: Int
    public var alpha: Double
    /// Comma-separated PEFT module names.
    public var targets: String
    /// The folder holding the PEFT files, relative to the store root.
    public var path: String
    /// JSON object: file name → sha256.
    public var files: String
    /// sha256 of adapter_model.safetensors.
    public var sha256: String
    public var sizeBytes: Int64
    public var createdAt: Date
    public var parentId: Int64?
    public var datasetName: String?
    public var datasetSHA256: String?
    /// JSON of the training options.
    public var hyperparameters: String?
    public var trainLoss: Double?
    public var validLoss: Double?
    public var description: String?

    public init(
        name: String, version: Int = 0, baseModelId: Int64, rank: Int, alpha: Double, targets: String, path: String = "",
        files: String = "{}", sha256: String = "", sizeBytes: Int64 = 0, parentId: Int64? = nil, datasetName: String? = nil,
        datasetSHA256: String? = nil, hyperparameters: String? = nil, trainLoss: Double? = nil, validLoss: Double? = nil,
        description: String? = nil
    ) {
        self.name = name
        self.version = version
        self.baseModelId = baseModelId
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
        self.path = path
        self.files = files
        self.sha256 = sha256
        self.sizeBytes = sizeBytes
        createdAt = Date()
        self.parentId = parentId
        self.datasetName = datasetName
        self.datasetSHA256 = datasetSHA256
        self.hyperparameters = hyperparameters
        self.trainLoss = trainLoss
        self.validLoss = validLoss
        self.description = description
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    /// `name@version`, the id users and the server use.
    public var reference: String { "\(name)@\(version)" }

    /// File name → sha256.
    public var fileHashes: [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(files.utf8))) ?? [:]
    }
}
