import Formats
import Foundation
import LoRA
import Models

/// Moving an adapter between stores: the PEFT files plus `registry.json` (its record, its
/// base's record and its tags), so the receiving store knows what it was trained for.
extension AdapterStore {
    static let exportFile = "registry.json"

    struct Exported: Codable {
        var adapter: AdapterRecord
        var baseModel: BaseModelRecord
        var tags: [String]
    }

    /// Writes the version's files and `registry.json` into `destination` (created; must not exist).
    public func export(_ record: AdapterRecord, to destination: String) throws {
        let fileManager = FileManager.default
        guard let base = try registry.baseModel(id: record.baseModelId) else {
            throw RegistryError.unknownAdapter("base of \(record.reference)")
        }
        guard !fileManager.fileExists(atPath: destination) else { throw RegistryError.io(path: destination, reason: "already exists") }
        let staging = destination + ".partial"
        try? fileManager.removeItem(atPath: staging)
        do {
            try fileManager.createDirectory(atPath: staging, withIntermediateDirectories: true)
            for file in record.fileHashes.keys {
                try fileManager.copyItem(atPath: "\(folder(of: record))/\(file)", toPath: "\(staging)/\(file)")
            }
            let exported = Exported(adapter: record, baseModel: base, tags: try record.id.map { try registry.tags(of: $0) } ?? [])
            try AtomicWrite.write(try JSONEncoder.sorted.encode(exported), to: "\(staging)/\(Self.exportFile)")
            try fileManager.moveItem(atPath: staging, toPath: destination)
        } catch {
            // A full disk must not leave a half-written folder behind.
            try? fileManager.removeItem(atPath: staging)
            throw RegistryError.wrap(error, path: destination)
        }
    }

    /// Registers an exported folder as the next version of its name in this store, checking
    /// the files against the hashes it was exported with.
    public func importAdapter(from source: String) throws -> AdapterRecord {
        let path = "\(source)/\(Self.exportFile)"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RegistryError.invalidExport(path: source, reason: "no \(Self.exportFile)")
        }
        let exported: Exported
        do { exported = try JSONDecoder().decode(Exported.self, from: data) } catch {
            throw RegistryError.invalidExport(path: source, reason: "\(error)")
        }
        // Every kept file must be listed with its hash, and match it: a registry.json that lists
        // nothing would otherwise skip the check.
        guard let hashes = try? JSONDecoder().decode([String: String].self, from: Data(exported.adapter.files.utf8)) else {
            throw RegistryError.invalidExport(path: source, reason: "\"files\" in \(Self.exportFile) is not a JSON object of file hashes")
        }
        for required in [LoRAAdapter.configFile, LoRAAdapter.weightsFile] where hashes[required] == nil {
            throw RegistryError.invalidExport(path: source, reason: "\(Self.exportFile) lists no hash for \(required)")
        }
        guard (try? JSONDecoder().decode(LlamaConfig.self, from: Data(exported.baseModel.shapes.utf8))) != nil else {
            throw RegistryError.invalidExport(path: source, reason: "the base model's shapes in \(Self.exportFile) are not readable")
        }
        for (file, expected) in hashes.sorted(by: { $0.key < $1.key }) {
            guard AdapterStore.keptFiles.contains(file), FileManager.default.fileExists(atPath: "\(source)/\(file)") else {
                throw RegistryError.invalidExport(path: source, reason: "\(file) is listed but \(AdapterStore.keptFiles.contains(file) ? "missing" : "not an adapter file")")
            }
            let found = try Hashing.sha256(file: "\(source)/\(file)")
            guard found == expected else {
                throw RegistryError.corrupt(adapter: exported.adapter.reference, file: file, expected: expected, found: found)
            }
        }
        var base = exported.baseModel
        base.id = nil
        let registeredBase = try registry.registerBaseModel(base)
        let record = exported.adapter
        return try register(
            folder: source, name: record.name, base: registeredBase,
            provenance: Provenance(
                datasetName: record.datasetName, datasetSHA256: record.datasetSHA256, hyperparameters: record.hyperparameters,
                trainLoss: record.trainLoss, validLoss: record.validLoss, description: record.description, tags: exported.tags))
    }
}
