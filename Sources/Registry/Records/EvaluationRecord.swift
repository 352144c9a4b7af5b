import Foundation
import GRDB

/// One metric of one adapter (or of the base alone, adapterId nil) on one dataset.
public struct EvaluationRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "evaluation"
    public var id: Int64?
    public var adapterId: Int64?
    public var baseModelId: Int64
    public var dataset: String
    public var datasetSHA256: String?
    public var metric: String
    public var value: Double
    public var createdAt: Date

    public init(adapterId: Int64?, baseModelId: Int64, dataset: String, datasetSHA256: String?, metric: String, value: Double) {
        self.adapterId = adapterId
        self.baseModelId = baseModelId
        self.dataset = dataset
        self.datasetSHA256 = datasetSHA256
        self.metric = metric
        self.value = value
        createdAt = Date()
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
