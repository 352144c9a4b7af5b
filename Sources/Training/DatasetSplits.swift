import Foundation
import Kernels

/// The records of a dataset folder (`train.jsonl`, optional `valid.jsonl` and `test.jsonl`) or
/// of one JSONL file, optionally split into train and validation by a seeded shuffle.
public struct DatasetSplits: Sendable {
    public typealias Records = [(line: Int, record: DatasetRecord)]
    public let train: Records
    public let valid: Records
    public let test: Records
    /// Where each split came from (for messages and the registry).
    public let trainPath: String
    public let validPath: String?

    public static func load(path: String, validSplit: Double? = nil, seed: UInt64 = 0) throws -> DatasetSplits {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw DatasetError.notFound(path: path) }
        if isDirectory.boolValue {
            let trainPath = "\(path)/train.jsonl"
            let train = try DatasetRecord.load(path: trainPath)
            let validPath = "\(path)/valid.jsonl"
            let hasValid = FileManager.default.fileExists(atPath: validPath)
            let valid = hasValid ? try DatasetRecord.load(path: validPath) : []
            let testPath = "\(path)/test.jsonl"
            let test = FileManager.default.fileExists(atPath: testPath) ? try DatasetRecord.load(path: testPath) : []
            if let validSplit, !hasValid {
                let (kept, held) = split(train, fraction: validSplit, seed: seed)
                return DatasetSplits(train: kept, valid: held, test: test, trainPath: trainPath, validPath: trainPath)
            }
            return DatasetSplits(train: train, valid: valid, test: test, trainPath: trainPath, validPath: hasValid ? validPath : nil)
        }
        let records = try DatasetRecord.load(path: path)
        guard let validSplit else { return DatasetSplits(train: records, valid: [], test: [], trainPath: path, validPath: nil) }
        let (kept, held) = split(records, fraction: validSplit, seed: seed)
        return DatasetSplits(train: kept, valid: held, test: [], trainPath: path, validPath: path)
    }

    /// Holds out round(fraction · n) records (at least one, never all) chosen by a seeded shuffle.
    static func split(_ records: Records, fraction: Double, seed: UInt64) -> (Records, Records) {
        guard records.count > 1, fraction > 0 else { return (records, []) }
        var indices = Array(records.indices)
        var random = SeededRandom(seed: seed)
        indices.shuffle(using: &random)
        let held = min(records.count - 1, max(1, Int((fraction * Double(records.count)).rounded())))
        let heldSet = Set(indices.prefix(held))
        return (records.indices.filter { !heldSet.contains($0) }.map { records[$0] }, indices.prefix(held).sorted().map { records[$0] })
    }
}
