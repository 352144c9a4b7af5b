import Foundation
import LoRA
import Models

/// Recovering a store whose registry is missing, empty or damaged: the version folders are the
/// data, and each holds what a row needs (its PEFT config, its files to hash, and the training
/// report's losses and options). The base they were trained for is the one thing a folder does
/// not name exactly, so the user names it.
extension AdapterStore {
    public struct Rebuilt: Sendable {
        public var restored: [String] = []
        /// Folders that do not load as adapters of the named base, with the reason.
        public var skipped: [(folder: String, reason: String)] = []
        /// Where a damaged registry was moved, if there was one.
        public var damagedRegistry: String?
    }

    /// Writes a new registry for the folders under `root`, every version as `name@N` of the base
    /// at `modelPath`. Refuses when a readable registry with adapters exists; a damaged one is
    /// kept beside it as `registry.sqlite.damaged-TIME`.
    public static func rebuild(root: String, modelPath: String, config: LlamaConfig) throws -> (store: AdapterStore, result: Rebuilt) {
        let fileManager = FileManager.default
        let path = "\(root)/\(registryFile)"
        var result = Rebuilt()
        if let size = (try? fileManager.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue, size > 0 {
            var readable: AdapterRegistry?
            do { readable = try AdapterRegistry(path: path) } catch {}
            if let readable {
                let count = try readable.adapters().count
                guard count == 0 else {
                    throw RegistryError.io(path: path, reason: "holds \(count) adapters; rebuild only replaces a missing, empty or damaged registry")
                }
            } else {
                let damaged = "\(path).damaged-\(Int(Date().timeIntervalSince1970))"
                try fileManager.moveItem(atPath: path, toPath: damaged)
                for suffix in ["-wal", "-shm"] where fileManager.fileExists(atPath: path + suffix) {
                    try fileManager.moveItem(atPath: path + suffix, toPath: damaged + suffix)
                }
                result.damagedRegistry = damaged
            }
        }
        let folders = versionFolders(in: root)
        if fileManager.fileExists(atPath: path) { try fileManager.removeItem(atPath: path) }
        let registry = try AdapterRegistry(path: path)
        let store = try AdapterStore(root: root)
        let base = try store.baseModel(path: modelPath, config: config)
        guard let baseId = base.id else { throw RegistryError.unknownAdapter("base \(base.name)") }
        let ordered = folders.sorted { a, b in
            let (na, va) = split(a), (nb, vb) = split(b)
            return (na, va) < (nb, vb)
        }
        for relative in ordered {
            let folder = "\(root)/\(relative)"
            let (name, version) = split(relative)
            do {
                let adapter = try LoRAAdapter.loadPEFT(from: folder, for: config)
                let (hashes, size) = try keptFileHashes(in: folder)
                let report = trainingReport(in: folder)
                var record = AdapterRecord(
                    name: name, baseModelId: baseId, rank: adapter.config.rank, alpha: Double(adapter.config.alpha),
                    targets: adapter.config.targets.compactMap(\.peftName).joined(separator: ","),
                    files: String(decoding: try JSONEncoder.sorted.encode(hashes), as: UTF8.self),
                    sha256: hashes[LoRAAdapter.weightsFile] ?? "", sizeBytes: size, parentId: nil,
                    datasetName: report.dataset, datasetSHA256: nil, hyperparameters: report.options,
                    trainLoss: report.trainLoss, validLoss: report.validLoss, description: "restored by lora adapters rebuild")
                record.version = version
                record.path = relative
                _ = try registry.restoreAdapter(record)
                result.restored.append("\(name)@\(version)")
            } catch {
                result.skipped.append((relative, "\(error)"))
            }
        }
        return (store, result)
    }

    private static func split(_ relative: String) -> (String, Int) {
        let parts = relative.split(separator: "/")
        return (String(parts[0]), Int(parts[1]) ?? 0)
    }

    /// What `training_report.json` says, read loosely: a folder without one restores all the same.
    private static func trainingReport(in folder: String) -> (dataset: String?, options: String?, trainLoss: Double?, validLoss: Double?) {
        guard let data = FileManager.default.contents(atPath: "\(folder)/training_report.json"),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return (nil, nil, nil, nil) }
        let report = json["report"] as? [String: Any]
        let options = (json["options"]).flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
        return (
            (json["data"] as? String).map { URL(fileURLWithPath: $0).lastPathComponent }, options.map { String(decoding: $0, as: UTF8.self) },
            report?["finalTrainLoss"] as? Double, report?["finalValidLoss"] as? Double
        )
    }
}
