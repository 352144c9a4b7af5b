import Foundation
import Registry
import Training

/// The held-out records an evaluation runs on, named as the registry records them:
/// `dates/test` for a split of a dataset folder, the file name for a single file.
public struct EvaluationSet: Sendable {
    public let name: String
    public let path: String
    public let sha256: String?
    public let records: DatasetSplits.Records

    /// `path` is a dataset folder (then `split` picks `<split>.jsonl`) or a .jsonl file.
    public static func load(path: String, split: String = "test") throws -> EvaluationSet {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw DatasetError.notFound(path: path) }
        let folder = URL(fileURLWithPath: path).standardizedFileURL
        let (file, name) = isDirectory.boolValue
            ? ("\(path)/\(split).jsonl", "\(folder.lastPathComponent)/\(split)")
            : (path, "\(folder.deletingLastPathComponent().lastPathComponent)/\(folder.deletingPathExtension().lastPathComponent)")
        let records = try DatasetRecord.load(path: file)
        return EvaluationSet(name: name, path: file, sha256: try? Hashing.sha256(file: file), records: records)
    }

    /// The first `count` records, named `dates/test[:count]` so their metrics are kept apart.
    public func prefix(_ count: Int) -> EvaluationSet {
        guard count < records.count else { return self }
        return EvaluationSet(name: "\(name)[:\(count)]", path: path, sha256: sha256, records: Array(records.prefix(count)))
    }

    /// Stores every metric of `result` as an evaluation of `adapter` (nil: the base alone).
    public func record(_ result: EvaluationResult, adapter: AdapterRecord?, base: BaseModelRecord, in registry: AdapterRegistry) throws {
        guard let baseId = base.id else { return }
        for (metric, value) in result.metrics {
            _ = try registry.recordEvaluation(
                EvaluationRecord(adapterId: adapter?.id, baseModelId: baseId, dataset: name, datasetSHA256: sha256, metric: metric, value: value))
        }
    }

    /// The latest recorded value of each metric for `adapter` on this set (same file contents).
    public func recorded(adapter: AdapterRecord?, base: BaseModelRecord, in registry: AdapterRegistry) throws -> [String: Double] {
        var latest: [String: Double] = [:]
        for evaluation in try registry.evaluations(adapterId: adapter?.id)
        where evaluation.dataset == name && evaluation.datasetSHA256 == sha256 && evaluation.baseModelId == base.id {
            latest[evaluation.metric] = evaluation.value
        }
        return latest
    }
}
