import Foundation
import LoRA
import Models

/// The adapter store: a root folder with `registry.sqlite` and each adapter version's PEFT
/// files under `<name>/<version>/`. Files are written to a temporary folder and renamed into
/// place inside the registry transaction, so a crash leaves either no trace or a complete
/// version; `garbageCollect` removes what a crash between rename and commit can leave.
public struct AdapterStore: Sendable {
    public let root: String
    public let registry: AdapterRegistry

    public static let environmentVariable = "LORA_STORE"
    public static let defaultRoot = "adapters"
    /// The files a registered version keeps (checkpoints stay with the training run).
    static let keptFiles = [LoRAAdapter.configFile, LoRAAdapter.weightsFile, "training_report.json"]

    public init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        registry = try AdapterRegistry(path: "\(root)/registry.sqlite")
    }

    public func folder(of record: AdapterRecord) -> String { "\(root)/\(record.path)" }

    // MARK: - Base models

    /// The registry row of the model at `path`, fingerprinting its weights unless a row for the
    /// same path, size and modification time exists.
    public func baseModel(path: String, config: LlamaConfig) throws -> BaseModelRecord {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let attributes = try FileManager.default.attributesOfItem(atPath: absolute)
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        if let known = try registry.baseModel(path: absolute, fileSize: size, modifiedAt: modified) { return known }
        let shapes = String(decoding: try JSONEncoder.sorted.encode(config), as: UTF8.self)
        return try registry.registerBaseModel(
            BaseModelRecord(
                name: URL(fileURLWithPath: absolute).lastPathComponent, architecture: "llama", path: absolute,
                fingerprint: try Hashing.weightsFingerprint(modelPath: absolute), shapes: shapes, fileSize: size, modifiedAt: modified))
    }

    // MARK: - Registering

    public struct Provenance: Sendable {
        public var parent: String?
        public var datasetName: String?
        public var datasetSHA256: String?
        public var hyperparameters: String?
        public var trainLoss: Double?
        public var validLoss: Double?
        public var description: String?
        public var tags: [String]

        public init(
            parent: String? = nil, datasetName: String? = nil, datasetSHA256: String? = nil, hyperparameters: String? = nil,
            trainLoss: Double? = nil, validLoss: Double? = nil, description: String? = nil, tags: [String] = []
        ) {
            self.parent = parent
            self.datasetName = datasetName
            self.datasetSHA256 = datasetSHA256
            self.hyperparameters = hyperparameters
            self.trainLoss = trainLoss
            self.validLoss = validLoss
            self.description = description
            self.tags = tags
        }
    }

    /// Copies the PEFT folder `source` into the store as the next version of `name`.
    public func register(
        folder source: String, name: String, base: BaseModelRecord, provenance: Provenance = Provenance()
    ) throws -> AdapterRecord {
        guard AdapterRegistry.isValidName(name) else { throw RegistryError.invalidName(name) }
        guard let baseId = base.id else { throw RegistryError.unknownAdapter("base \(base.name) is not registered") }
        let config = try LoRAAdapter.readPEFTConfig("\(source)/\(LoRAAdapter.configFile)")
        let parentId = try provenance.parent.map { reference -> Int64 in
            guard let parent = try registry.adapter(reference), let id = parent.id else { throw RegistryError.unknownAdapter(reference) }
            return id
        }
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
        let staging = "\(root)/\(name)/.incoming-\(UUID().uuidString)"
        try fileManager.createDirectory(atPath: staging, withIntermediateDirectories: true)
        var hashes: [String: String] = [:]
        var size: Int64 = 0
        do {
            for file in Self.keptFiles where fileManager.fileExists(atPath: "\(source)/\(file)") {
                try fileManager.copyItem(atPath: "\(source)/\(file)", toPath: "\(staging)/\(file)")
                hashes[file] = try Hashing.sha256(file: "\(staging)/\(file)")
                size += (try fileManager.attributesOfItem(atPath: "\(staging)/\(file)")[.size] as? NSNumber)?.int64Value ?? 0
            }
            try syncFolder(staging)
            let record = AdapterRecord(
                name: name, baseModelId: baseId, rank: config.rank, alpha: Double(config.alpha),
                targets: config.targets.compactMap(\.peftName).joined(separator: ","),
                files: String(decoding: try JSONEncoder.sorted.encode(hashes), as: UTF8.self),
                sha256: hashes[LoRAAdapter.weightsFile] ?? "", sizeBytes: size, parentId: parentId,
                datasetName: provenance.datasetName, datasetSHA256: provenance.datasetSHA256,
                hyperparameters: provenance.hyperparameters, trainLoss: provenance.trainLoss, validLoss: provenance.validLoss,
                description: provenance.description)
            return try registry.registerAdapter(record, tags: provenance.tags) { version in
                let relative = "\(name)/\(version)"
                try fileManager.moveItem(atPath: staging, toPath: "\(root)/\(relative)")
                return relative
            }
        } catch {
            try? fileManager.removeItem(atPath: staging)
            throw error
        }
    }

    // MARK: - Using

    public func resolve(_ reference: String) throws -> AdapterRecord {
        guard let record = try registry.adapter(reference) else { throw RegistryError.unknownAdapter(reference) }
        return record
    }

    /// Loads a registered adapter for the loaded base, refusing one trained for another base
    /// (with `force`, only when the two bases have the same shapes).
    public func load(_ reference: String, for base: BaseModelRecord, config: LlamaConfig, force: Bool = false) throws -> LoRAAdapter {
        let record = try resolve(reference)
        if record.baseModelId != base.id {
            let trainedFor = try registry.baseModel(id: record.baseModelId)
            let label = trainedFor?.label ?? "#\(record.baseModelId)"
            guard force else { throw RegistryError.wrongBase(adapter: record.reference, adapterBase: label, loadedBase: base.label) }
            guard trainedFor?.shapes == base.shapes else {
                throw RegistryError.shapesDiffer(adapter: record.reference, reason: "base \(label) has other shapes than \(base.label)")
            }
        }
        let folder = folder(of: record)
        guard FileManager.default.fileExists(atPath: "\(folder)/\(LoRAAdapter.weightsFile)") else {
            throw RegistryError.missingFiles(adapter: record.reference, path: folder)
        }
        return try LoRAAdapter.loadPEFT(from: folder, for: config)
    }

    // MARK: - Maintenance

    /// Problems with a version's files: missing, or a hash that differs from the registered one.
    public func verify(_ record: AdapterRecord) throws -> [RegistryError] {
        var problems: [RegistryError] = []
        for (file, expected) in record.fileHashes.sorted(by: { $0.key < $1.key }) {
            let path = "\(folder(of: record))/\(file)"
            guard FileManager.default.fileExists(atPath: path) else {
                problems.append(.missingFiles(adapter: record.reference, path: path))
                continue
            }
            let found = try Hashing.sha256(file: path)
            if found != expected { problems.append(.corrupt(adapter: record.reference, file: file, expected: expected, found: found)) }
        }
        return problems
    }

    /// Deletes the row, then the files (inside the same transaction).
    public func remove(_ record: AdapterRecord) throws {
        guard let id = record.id else { return }
        let folder = folder(of: record)
        try registry.removeAdapter(id: id) {
            if FileManager.default.fileExists(atPath: folder) { try FileManager.default.removeItem(atPath: folder) }
        }
    }

    /// Removes version folders without a row (and staging leftovers) and rows whose files are
    /// gone. Returns what it removed.
    public func garbageCollect() throws -> (folders: [String], rows: [String]) {
        let fileManager = FileManager.default
        let records = try registry.adapters()
        let known = Set(records.map(\.path))
        var folders: [String] = []
        for name in (try? fileManager.contentsOfDirectory(atPath: root)) ?? [] where !name.hasPrefix(".") && name != "registry.sqlite" {
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: "\(root)/\(name)", isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            for entry in (try? fileManager.contentsOfDirectory(atPath: "\(root)/\(name)")) ?? [] {
                let relative = "\(name)/\(entry)"
                let isVersion = Int(entry) != nil
                guard entry.hasPrefix(".incoming-") || (isVersion && !known.contains(relative)) else { continue }
                try fileManager.removeItem(atPath: "\(root)/\(relative)")
                folders.append(relative)
            }
        }
        var rows: [String] = []
        for record in records where !fileManager.fileExists(atPath: "\(folder(of: record))/\(LoRAAdapter.weightsFile)") {
            try remove(record)
            rows.append(record.reference)
        }
        return (folders, rows)
    }

    /// fsync every file so the rename that publishes the folder never exposes unwritten data.
    private func syncFolder(_ path: String) throws {
        for file in try FileManager.default.contentsOfDirectory(atPath: path) {
            let descriptor = open("\(path)/\(file)", O_RDONLY)
            guard descriptor >= 0 else { continue }
            fsync(descriptor)
            close(descriptor)
        }
    }
}

extension JSONEncoder {
    public static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
