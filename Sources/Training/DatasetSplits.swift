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

    /// The files of a dataset: a folder's `train.jsonl`, `valid.jsonl` and `test.jsonl` (those
    /// present, train first), or the one file given, named by its stem.
    public static func files(_ path: String) throws -> [(split: String, path: String)] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw DatasetError.notFound(path: path) }
        guard isDirectory.boolValue else { return [(URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, path)] }
        let files = ["train", "valid", "test"].map { ($0, "\(path)/\($0).jsonl") }.filter { FileManager.default.fileExists(atPath: $0.1) }
        guard !files.isEmpty else { throw DatasetError.notFound(path: "\(path)/train.jsonl") }
        return files
    }

    public static func load(path: String, validSplit: Double? = nil, seed: UInt64 = 0) throws -> DatasetSplits {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw DatasetError.notFound(path: path) }
        if isDirectory.boolValue {
            let present = Dictionary(try files(path).map { ($0.split, $0.path) }, uniquingKeysWith: { first, _ in first })
            let trainPath = "\(path)/train.jsonl"
            let train = try DatasetRecord.load(path: trainPath)
            let validPath = present["valid"]
            let hasValid = validPath != nil
            let valid = try validPath.map { try DatasetRecord.load(path: $0) } ?? []
            let test = try present["test"].map { try DatasetRecord.load(path: $0) } ?? []
            if let validSplit, !hasValid {
                let (kept, held) = split(train, fraction: validSplit, seed: seed)
                return DatasetSplits(train: kept, valid: held, test: test, trainPath: trainPath, validPath: trainPath)
            }
            return DatasetSplits(train: train, valid: valid, test: test, trainPath: trainPath, validPath: validPath)
        }
        let records = try DatasetRecord.load(path: path)
        guard let validSplit else { return DatasetSplits(train: records, valid: [], test: [], trainPath: path, validPath: nil) }
        let (kept, held) = split(records, fraction: validSplit, seed: seed)
        return DatasetSplits(train: kept, valid: held, test: [], trainPath: path, validPath: path)
    }

    /// Holds out round(fraction · n) records (at least one, never all) chosen by a seeded shuffle.
    static func split(_ records: Records, fraction: Double, seed: UInt64) -> (Records, Records) {
        guard records.count > 1, fraction > 0 else { return (records, []) }
        let indices = shuffledOrder(records.count, seed: seed)
        let held = min(records.count - 1, max(1, Int((fraction * Double(records.count)).rounded())))
        let heldSet = Set(indices.prefix(held))
        return (records.indices.filter { !heldSet.contains($0) }.map { records[$0] }, indices.prefix(held).sorted().map { records[$0] })
    }

    /// 0..<count in the seeded order every split of this project draws from (`--valid-split`
    /// and `lora data split` agree for the same seed).
    public static func shuffledOrder(_ count: Int, seed: UInt64) -> [Int] {
        var indices = Array(0..<count)
        var random = SeededRandom(seed: seed)
        indices.shuffle(using: &random)
        return indices
    }
}
