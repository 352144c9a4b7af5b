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

    public static let registryFile = "registry.sqlite"

    /// Opens the store at `root`, creating an empty one where there is nothing. A folder that
    /// holds adapter versions but no usable registry is refused, never taken for a new store:
    /// `gc` would then delete every version as unregistered.
    public init(root: String) throws {
        self.root = root
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: root, withIntermediateDirectories: true)
        let path = "\(root)/\(Self.registryFile)"
        let size = (try? fileManager.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        if size == nil || size == 0 {
            let versions = Self.versionFolders(in: root)
            if !versions.isEmpty {
                throw RegistryError.registryMissing(path: path, empty: size == 0, versions: versions.count)
            }
        }
        registry = try AdapterRegistry(path: path)
        try registry.failAbandonedRuns()
    }

    /// `name/N` folders holding an adapter's config (what a registered version looks like).
    static func versionFolders(in root: String) -> [String] {
        let fileManager = FileManager.default
        var found: [String] = []
        for name in (try? fileManager.contentsOfDirectory(atPath: root)) ?? [] where !name.hasPrefix(".") {
            for entry in (try? fileManager.contentsOfDirectory(atPath: "\(root)/\(name)")) ?? [] where Int(entry) != nil {
                if fileManager.fileExists(atPath: "\(root)/\(name)/\(entry)/\(LoRAAdapter.configFile)") { found.append("\(name)/\(entry)") }
            }
        }
        return found.sorted()
    }

    /// sha256 of each kept file present in `folder`, and their total size.
    static func keptFileHashes(in folder: String) throws -> (hashes: [String: String], size: Int64) {
        var hashes: [String: String] = [:]
        var size: Int64 = 0
        for file in keptFiles where FileManager.default.fileExists(atPath: "\(folder)/\(file)") {
            hashes[file] = try Hashing.sha256(file: "\(folder)/\(file)")
            size += (try FileManager.default.attributesOfItem(atPath: "\(folder)/\(file)")[.size] as? NSNumber)?.int64Value ?? 0
        }
        return (hashes, size)
    }

    /// Writers of version folders (register, remove) hold this shared; `gc` holds it
    /// exclusively, so it never takes a registration's staging folder, or a version placed
    /// but not yet committed, for debris. A killed process's lock goes with it.
    func withLock<T>(exclusive: Bool, _ body: () throws -> T) throws -> T {
        let descriptor = open("\(root)/.store.lock", O_RDWR | O_CREAT, 0o644)
        guard descriptor >= 0 else { throw RegistryError.io(path: "\(root)/.store.lock", reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        flock(descriptor, exclusive ? LOCK_EX : LOCK_SH)
        defer { flock(descriptor, LOCK_UN) }
        return try body()
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

    /// Copies the PEFT folder `source` into the store as the next version of `name`, after
    /// loading it as the base's adapter would be loaded (so nothing that can never load is
    /// registered: tensors that do not parse, shapes that contradict the config, NaN).
    public func register(
        folder source: String, name: String, base: BaseModelRecord, provenance: Provenance = Provenance()
    ) throws -> AdapterRecord {
        guard AdapterRegistry.isValidName(name) else { throw RegistryError.invalidName(name) }
        guard let baseId = base.id else { throw RegistryError.unknownAdapter("base \(base.name) is not registered") }
        let config = try LoRAAdapter.readPEFTConfig("\(source)/\(LoRAAdapter.configFile)")
        if let shapes = try? JSONDecoder().decode(LlamaConfig.self, from: Data(base.shapes.utf8)) {
            _ = try LoRAAdapter.loadPEFT(from: source, for: shapes)
        }
        let parentId = try provenance.parent.map { reference -> Int64 in
            guard let parent = try registry.adapter(reference), let id = parent.id else { throw RegistryError.unknownAdapter(reference) }
            return id
        }
        return try withLock(exclusive: false) {
            let fileManager = FileManager.default
            try fileManager.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
            let staging = "\(root)/\(name)/.incoming-\(UUID().uuidString)"
            try fileManager.createDirectory(atPath: staging, withIntermediateDirectories: true)
            var placed: String?
            do {
                for file in Self.keptFiles where fileManager.fileExists(atPath: "\(source)/\(file)") {
                    try fileManager.copyItem(atPath: "\(source)/\(file)", toPath: "\(staging)/\(file)")
                }
                let (hashes, size) = try Self.keptFileHashes(in: staging)
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
                    // Inside the write transaction no row has this version, so a folder here
                    // is what a failed commit or an interrupted removal left: debris.
                    if fileManager.fileExists(atPath: "\(root)/\(relative)") { try fileManager.removeItem(atPath: "\(root)/\(relative)") }
                    try fileManager.moveItem(atPath: staging, toPath: "\(root)/\(relative)")
                    placed = relative
                    return relative
                }
            } catch {
                try? fileManager.removeItem(atPath: staging)
                // The move ran but the commit failed (a full disk at COMMIT): no row names the folder.
                if let placed, (try? registry.adapter(placed.replacingOccurrences(of: "/", with: "@"))) == nil {
                    try? fileManager.removeItem(atPath: "\(root)/\(placed)")
                }
                throw RegistryError.wrap(error, path: "\(root)/\(name)")
            }
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

    /// Deletes the row, and once that has committed, the files: a process killed in between
    /// leaves files without a row, which `gc` (or the next registration of that version)
    /// removes, never a row without files.
    public func remove(_ record: AdapterRecord) throws {
        guard let id = record.id else { return }
        let folder = folder(of: record)
        try withLock(exclusive: false) {
            try registry.removeAdapter(id: id)
            try Self.removeFolder(folder)
        }
    }

    /// Renames the folder out of its place first, so a half-deleted folder is never mistaken
    /// for a version, then deletes it.
    private static func removeFolder(_ folder: String) throws {
        let fileManager = FileManager.default
        guard fileManager.fileExists(atPath: folder) else { return }
        let parent = URL(fileURLWithPath: folder).deletingLastPathComponent().path
        let trash = "\(parent)/.removing-\(UUID().uuidString)"
        try fileManager.moveItem(atPath: folder, toPath: trash)
        try fileManager.removeItem(atPath: trash)
    }

    /// Removes version folders without a row (and staging leftovers) and rows whose files are
    /// gone. Returns what it removed.
    public func garbageCollect() throws -> (folders: [String], rows: [String]) {
        try withLock(exclusive: true) {
            let fileManager = FileManager.default
            let records = try registry.adapters()
            let known = Set(records.map(\.path))
            var folders: [String] = []
            for name in (try? fileManager.contentsOfDirectory(atPath: root)) ?? [] where !name.hasPrefix(".") && name != Self.registryFile {
                var isDirectory: ObjCBool = false
                guard fileManager.fileExists(atPath: "\(root)/\(name)", isDirectory: &isDirectory), isDirectory.boolValue else { continue }
                for entry in (try? fileManager.contentsOfDirectory(atPath: "\(root)/\(name)")) ?? [] {
                    let relative = "\(name)/\(entry)"
                    let debris = entry.hasPrefix(".incoming-") || entry.hasPrefix(".removing-")
                    guard debris || (Int(entry) != nil && !known.contains(relative)) else { continue }
                    try fileManager.removeItem(atPath: "\(root)/\(relative)")
                    folders.append(relative)
                }
            }
            var rows: [String] = []
            for record in records where !fileManager.fileExists(atPath: "\(folder(of: record))/\(LoRAAdapter.weightsFile)") {
                if let id = record.id { try registry.removeAdapter(id: id) }
                rows.append(record.reference)
            }
            return (folders, rows)
        }
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
