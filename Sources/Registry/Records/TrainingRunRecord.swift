import Foundation
import GRDB

/// A training run, recorded while it runs and updated when it ends.
public struct TrainingRunRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "trainingRun"

    public enum Status: String, Codable, Sendable {
        case running, completed, failed, interrupted
    }

    public var id: Int64?
    public var name: String
    public var adapterId: Int64?
    public var status: Status
    public var steps: Int
    public var totalSteps: Int
    public var startedAt: Date
    public var finishedAt: Date?
    public var seconds: Double
    public var tokensPerSecond: Double
    /// JSON [[step, loss]].
    public var lossCurve: String
    public var validationCurve: String
    public var hyperparameters: String
    public var datasetName: String?
    public var datasetSHA256: String?
    /// The training process (nil in rows from before it was recorded).
    public var pid: Int32?

    public init(name: String, totalSteps: Int, hyperparameters: String, datasetName: String?, datasetSHA256: String?) {
        self.name = name
        status = .running
        steps = 0
        self.totalSteps = totalSteps
        startedAt = Date()
        seconds = 0
        tokensPerSecond = 0
        lossCurve = "[]"
        validationCurve = "[]"
        self.hyperparameters = hyperparameters
        self.datasetName = datasetName
        self.datasetSHA256 = datasetSHA256
        pid = getpid()
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
