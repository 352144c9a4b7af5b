import Foundation
import GRDB

/// The adapter registry database: base models, adapters, training runs, evaluations. A
/// Sendable value around a GRDB writer; WAL mode and a busy timeout let a trainer and other
/// commands write at the same time without corrupting it.
public struct AdapterRegistry: Sendable {
    private let writer: any DatabaseWriter
    public let path: String

    /// The database's errors name its file.
    private func write<T>(_ updates: (Database) throws -> T) throws -> T {
        do { return try writer.write(updates) } catch { throw RegistryError.wrap(error, path: path) }
    }

    private func read<T>(_ value: (Database) throws -> T) throws -> T {
        do { return try writer.read(value) } catch { throw RegistryError.wrap(error, path: path) }
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    public init(path: String) throws {
        // Opening creates the database and runs migrations; GRDB checks which migrations are
        // applied before taking the write lock, so two processes opening a new store at once
        // could both run "v1". An exclusive lock on a sibling file serialises the opening.
        let lock = open(path + ".lock", O_RDWR | O_CREAT, 0o644)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer {
            if lock >= 0 {
                flock(lock, LOCK_UN)
                close(lock)
            }
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            try self.init(writer: pool, path: path)
        } catch {
            throw RegistryError.wrap(error, path: path)
        }
    }

    /// A private in-memory database (tests).
    public static func inMemory() throws -> AdapterRegistry {
        try AdapterRegistry(writer: DatabaseQueue(), path: ":memory:")
    }

    private init(writer: any DatabaseWriter, path: String) throws {
        self.writer = writer
        self.path = path
        let migrator = Migrations.migrator
        // A database written by a newer lora has migrations this one does not know.
        if try read({ try migrator.hasBeenSuperseded($0) }) { throw RegistryError.newerSchema(path: path) }
        try migrator.migrate(writer)
    }

    // MARK: - Base models

    /// The row for this fingerprint, inserted if new.
    public func registerBaseModel(_ record: BaseModelRecord) throws -> BaseModelRecord {
        try write { db in
            if let existing = try BaseModelRecord.filter(Column("fingerprint") == record.fingerprint).fetchOne(db) {
                return existing
            }
            var inserted = record
            try inserted.insert(db)
            return inserted
        }
    }

    public func baseModel(id: Int64) throws -> BaseModelRecord? {
        try read { try BaseModelRecord.fetchOne($0, key: id) }
    }

    /// A base whose file at `path` still has this size and modification time: its fingerprint
    /// need not be recomputed.
    public func baseModel(path: String, fileSize: Int64, modifiedAt: Double) throws -> BaseModelRecord? {
        try read { db in
            try BaseModelRecord.filter(Column("path") == path && Column("fileSize") == fileSize && Column("modifiedAt") == modifiedAt)
                .fetchOne(db)
        }
    }

    // MARK: - Adapters

    /// Inserts the next version of `record.name` (1 for a new name) inside one transaction;
    /// `place(version)` runs before the commit (it moves the files into place), so a failure
    /// there leaves no row behind.
    public func registerAdapter(
        _ record: AdapterRecord, tags: [String] = [], place: (Int) throws -> String
    ) throws -> AdapterRecord {
        try write { db in
            var inserted = record
            let latest = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM adapter WHERE name = ?", arguments: [record.name])
            inserted.version = (latest ?? 0) + 1
            inserted.path = try place(inserted.version)
            try inserted.insert(db)
            for tag in Set(tags) {
                try db.execute(sql: "INSERT INTO adapterTag (adapterId, tag) VALUES (?, ?)", arguments: [inserted.id, tag])
            }
            return inserted
        }
    }

    /// Inserts a row for a version whose files are already in place (`AdapterStore.rebuild`).
    public func restoreAdapter(_ record: AdapterRecord) throws -> AdapterRecord {
        try write { db in
            var inserted = record
            try inserted.insert(db)
            return inserted
        }
    }

    /// `name` or `name@version`; without a version, the latest.
    public func adapter(_ reference: String) throws -> AdapterRecord? {
        let (name, version) = Self.parse(reference)
        return try read { db in
            var request = AdapterRecord.filter(Column("name") == name)
            if let version { request = request.filter(Column("version") == version) }
            return try request.order(Column("version").desc).fetchOne(db)
        }
    }

    public func adapter(id: Int64) throws -> AdapterRecord? {
        try read { try AdapterRecord.fetchOne($0, key: id) }
    }

    /// Adapters matching every filter given, newest first.
    public func adapters(name: String? = nil, baseModelId: Int64? = nil, tag: String? = nil) throws -> [AdapterRecord] {
        try read { db in
            var request = AdapterRecord.all()
            if let name { request = request.filter(Column("name") == name) }
            if let baseModelId { request = request.filter(Column("baseModelId") == baseModelId) }
            if let tag {
                request = request.filter(sql: "id IN (SELECT adapterId FROM adapterTag WHERE tag = ?)", arguments: [tag])
            }
            return try request.order(Column("name"), Column("version").desc).fetchAll(db)
        }
    }

    public func tags(of adapterId: Int64) throws -> [String] {
        try read { db in
            try String.fetchAll(db, sql: "SELECT tag FROM adapterTag WHERE adapterId = ? ORDER BY tag", arguments: [adapterId])
        }
    }

    public func setTags(of adapterId: Int64, adding: [String], removing: [String]) throws {
        try write { db in
            for tag in adding {
                try db.execute(sql: "INSERT OR IGNORE INTO adapterTag (adapterId, tag) VALUES (?, ?)", arguments: [adapterId, tag])
            }
            for tag in removing {
                try db.execute(sql: "DELETE FROM adapterTag WHERE adapterId = ? AND tag = ?", arguments: [adapterId, tag])
            }
        }
    }

    /// The adapter and its ancestors (parent first trained from), nearest first.
    public func lineage(of adapterId: Int64) throws -> [AdapterRecord] {
        var chain: [AdapterRecord] = []
        var next: Int64? = adapterId
        while let id = next, let record = try adapter(id: id), !chain.contains(where: { $0.id == id }) {
            chain.append(record)
            next = record.parentId
        }
        return chain
    }

    /// Deletes the row (its tags, runs and evaluations go with it); `removeFiles` runs inside
    /// the transaction, after the delete, so the files go only if the row did.
    public func removeAdapter(id: Int64) throws {
        try write { db in _ = try AdapterRecord.deleteOne(db, key: id) }
    }

    // MARK: - Training runs and evaluations

    public func startRun(_ run: TrainingRunRecord) throws -> TrainingRunRecord {
        try write { db in
            var inserted = run
            try inserted.insert(db)
            return inserted
        }
    }

    public func updateRun(_ run: TrainingRunRecord) throws {
        try write { db in try run.update(db) }
    }

    /// Marks "running" rows whose process on this machine is gone (killed, or crashed before
    /// it could say so) as failed.
    public func failAbandonedRuns() throws {
        let running = try read { db in
            try TrainingRunRecord.filter(Column("status") == TrainingRunRecord.Status.running.rawValue && Column("pid") != nil).fetchAll(db)
        }
        for var run in running {
            guard let pid = run.pid, kill(pid, 0) != 0 && errno == ESRCH else { continue }
            run.status = .failed
            try write { db in try run.update(db) }
        }
    }

    public func runs(adapterId: Int64) throws -> [TrainingRunRecord] {
        try read { try TrainingRunRecord.filter(Column("adapterId") == adapterId).fetchAll($0) }
    }

    public func runs(named name: String) throws -> [TrainingRunRecord] {
        try read { try TrainingRunRecord.filter(Column("name") == name).order(Column("id")).fetchAll($0) }
    }

    public func recordEvaluation(_ evaluation: EvaluationRecord) throws -> EvaluationRecord {
        try write { db in
            var inserted = evaluation
            try inserted.insert(db)
            return inserted
        }
    }

    public func evaluations(adapterId: Int64?) throws -> [EvaluationRecord] {
        try read { db in
            let request = adapterId.map { EvaluationRecord.filter(Column("adapterId") == $0) }
                ?? EvaluationRecord.filter(Column("adapterId") == nil)
            return try request.order(Column("id")).fetchAll(db)
        }
    }

    // MARK: - References

    /// "name@3" → ("name", 3); "name" → ("name", nil).
    public static func parse(_ reference: String) -> (name: String, version: Int?) {
        guard let at = reference.lastIndex(of: "@"), let version = Int(reference[reference.index(after: at)...]) else {
            return (reference, nil)
        }
        return (String(reference[..<at]), version)
    }

    /// Names become folder names: letters, digits, '-', '_', '.', not starting with '.'.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.count <= 128
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }
    }
}
