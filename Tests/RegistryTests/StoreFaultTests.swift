import Foundation
import GRDB
import LoRA
import Models
import Registry
import Synchronization
import Testing
import TestSupport

/// The store's answers to what fault injection did to it: a lost registry, a commit that
/// fails after the files moved, removals and collections racing registrations, and imports
/// that would register adapters that can never load.
struct StoreFaultTests {
    /// A missing or 0-byte registry beside version folders is refused (its gc would have
    /// deleted every version); `rebuild` restores the rows from the folders.
    @Test(arguments: [true, false])
    func aLostRegistryIsRefusedAndRebuilt(truncate: Bool) throws {
        let fixture = try StoreFixture()
        let first = try fixture.store.register(folder: try fixture.adapterFolder(seed: 1), name: "kept", base: fixture.base)
        _ = try fixture.store.register(folder: try fixture.adapterFolder(seed: 2), name: "kept", base: fixture.base)
        let root = fixture.store.root, registry = "\(root)/\(AdapterStore.registryFile)"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: registry + suffix) }
        if truncate { try Data().write(to: URL(fileURLWithPath: registry)) }
        #expect(throws: RegistryError.registryMissing(path: registry, empty: truncate, versions: 2)) { try AdapterStore(root: root) }
        #expect(FileManager.default.fileExists(atPath: "\(root)/kept/1/\(LoRAAdapter.weightsFile)"))

        let (store, result) = try AdapterStore.rebuild(root: root, modelPath: fixture.modelPath, config: TinyLlama.config)
        #expect(result.restored == ["kept@1", "kept@2"] && result.skipped.isEmpty)
        let restored = try store.resolve("kept@1")
        #expect(restored.sha256 == first.sha256 && restored.rank == first.rank)
        for record in try store.registry.adapters() { #expect(try store.verify(record).isEmpty) }
        #expect(try store.garbageCollect().folders.isEmpty)
        // A readable registry with adapters is never replaced.
        #expect(throws: RegistryError.self) { try AdapterStore.rebuild(root: root, modelPath: fixture.modelPath, config: TinyLlama.config) }
    }

    @Test func aDamagedRegistryIsNamedAndKeptByRebuild() throws {
        let fixture = try StoreFixture()
        _ = try fixture.store.register(folder: try fixture.adapterFolder(seed: 3), name: "a", base: fixture.base)
        let root = fixture.store.root, registry = "\(root)/\(AdapterStore.registryFile)"
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: registry + suffix) }
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: registry))
        do {
            _ = try AdapterStore(root: root)
            Issue.record("opened a damaged registry")
        } catch {
            #expect("\(error)".contains(registry), "\(error)")
        }
        let (store, result) = try AdapterStore.rebuild(root: root, modelPath: fixture.modelPath, config: TinyLlama.config)
        #expect(result.restored == ["a@1"] && result.damagedRegistry.map { FileManager.default.fileExists(atPath: $0) } == true)
        #expect(try store.registry.adapters().count == 1)
    }

    /// The commit fails after the folder moved into place (as a full disk at COMMIT does):
    /// no folder is left without a row, and the next registration takes the version.
    @Test func aFailedCommitLeavesNoFolder() throws {
        let fixture = try StoreFixture()
        let registry = "\(fixture.store.root)/\(AdapterStore.registryFile)"
        try DatabaseQueue(path: registry).write { db in
            try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON adapter BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END")
        }
        let store = try AdapterStore(root: fixture.store.root)
        #expect(throws: RegistryError.self) { try store.register(folder: try fixture.adapterFolder(seed: 4), name: "x", base: fixture.base) }
        #expect(!FileManager.default.fileExists(atPath: "\(store.root)/x/1"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(store.root)/x").isEmpty)
        try DatabaseQueue(path: registry).write { db in try db.execute(sql: "DROP TRIGGER refuse") }
        #expect(try store.register(folder: try fixture.adapterFolder(seed: 4), name: "x", base: fixture.base).reference == "x@1")
    }

    /// Debris at the next version's place (a crash after the move, before `gc`) does not block
    /// the next registration.
    @Test func debrisAtTheNextVersionIsReplaced() throws {
        let fixture = try StoreFixture()
        try FileManager.default.createDirectory(atPath: "\(fixture.store.root)/y/1", withIntermediateDirectories: true)
        try Data("half".utf8).write(to: URL(fileURLWithPath: "\(fixture.store.root)/y/1/\(LoRAAdapter.weightsFile)"))
        let record = try fixture.store.register(folder: try fixture.adapterFolder(seed: 5), name: "y", base: fixture.base)
        let problems = try fixture.store.verify(record)
        #expect(record.reference == "y@1" && problems.isEmpty)
    }

    /// Removal commits the row first: whatever happens to the files after, no row is left
    /// without them.
    @Test func removalNeverLeavesARowWithoutFiles() throws {
        let fixture = try StoreFixture()
        let record = try fixture.store.register(folder: try fixture.adapterFolder(seed: 6), name: "z", base: fixture.base)
        try fixture.store.remove(record)
        #expect(try fixture.store.registry.adapters().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(fixture.store.root)/z/1"))
    }

    /// `gc` running while registrations are in flight never takes their staging folders.
    @Test func collectingDuringRegistrationsLosesNothing() throws {
        let fixture = try StoreFixture()
        let folders = try (0..<12).map { try fixture.adapterFolder(seed: 200 + UInt64($0)) }
        let root = fixture.store.root, base = fixture.base
        let failures = Mutex<[String]>([])
        let done = Atomic<Bool>(false)
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            do {
                let store = try AdapterStore(root: root)
                if worker == 0 {
                    for folder in folders { _ = try store.register(folder: folder, name: "busy", base: base) }
                    done.store(true, ordering: .releasing)
                } else {
                    while !done.load(ordering: .acquiring) { _ = try store.garbageCollect() }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(try fixture.store.registry.adapters(name: "busy").count == 12)
        for record in try fixture.store.registry.adapters() { #expect(try fixture.store.verify(record).isEmpty) }
    }

    /// An export whose copy fails partway leaves no `.partial` folder.
    @Test func aFailedExportLeavesNothing() throws {
        let fixture = try StoreFixture()
        let record = try fixture.store.register(folder: try fixture.adapterFolder(seed: 7), name: "e", base: fixture.base)
        try FileManager.default.removeItem(atPath: "\(fixture.store.folder(of: record))/\(LoRAAdapter.weightsFile)")
        let destination = "\(fixture.directory)/out"
        #expect(throws: RegistryError.self) { try fixture.store.export(record, to: destination) }
        #expect(!FileManager.default.fileExists(atPath: destination) && !FileManager.default.fileExists(atPath: destination + ".partial"))
    }

    /// Imports are validated as loads are: a `files` field that is not JSON, a config whose r
    /// contradicts the tensors, and weights that do not parse (with hashes to match) are refused.
    @Test func importsThatCouldNeverLoadAreRefused() throws {
        let fixture = try StoreFixture()
        let record = try fixture.store.register(folder: try fixture.adapterFolder(seed: 8), name: "i", base: fixture.base)
        let target = try AdapterStore(root: "\(fixture.directory)/target")
        func exported(_ change: (String) throws -> Void) throws -> String {
            let path = "\(fixture.directory)/export-\(UUID().uuidString)"
            try fixture.store.export(record, to: path)
            try change(path)
            return path
        }
        func editRegistryJSON(_ path: String, _ edit: (inout [String: Any]) -> Void) throws {
            let url = URL(fileURLWithPath: "\(path)/registry.json")
            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            edit(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: url)
        }
        func rehash(_ path: String) throws {
            var hashes: [String: String] = [:]
            for file in [LoRAAdapter.configFile, LoRAAdapter.weightsFile] { hashes[file] = try Hashing.sha256(file: "\(path)/\(file)") }
            let files = String(decoding: try JSONEncoder().encode(hashes), as: UTF8.self)
            try editRegistryJSON(path) { json in
                var adapter = json["adapter"] as? [String: Any] ?? [:]
                adapter["files"] = files
                json["adapter"] = adapter
            }
        }
        let notJSON = try exported { path in
            try editRegistryJSON(path) { json in
                var adapter = json["adapter"] as? [String: Any] ?? [:]
                adapter["files"] = "not json"
                json["adapter"] = adapter
            }
        }
        let hugeRank = try exported { path in
            let url = URL(fileURLWithPath: "\(path)/\(LoRAAdapter.configFile)")
            var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            config["r"] = 1 << 62
            try JSONSerialization.data(withJSONObject: config).write(to: url)
            try rehash(path)
        }
        let truncated = try exported { path in
            let url = URL(fileURLWithPath: "\(path)/\(LoRAAdapter.weightsFile)")
            let data = try Data(contentsOf: url)
            try data.prefix(data.count / 2).write(to: url)
            try rehash(path)
        }
        for path in [notJSON, hugeRank, truncated] {
            #expect(throws: (any Error).self, "\(path)") { try target.importAdapter(from: path) }
        }
        #expect(try target.registry.adapters().isEmpty)
        #expect(try target.importAdapter(from: try exported { _ in }).reference == "i@1")
    }

    /// A run left "running" by a process that is gone is marked failed when a store opens.
    @Test func runsOfDeadProcessesAreMarkedFailed() throws {
        let fixture = try StoreFixture()
        var dead = TrainingRunRecord(name: "killed", totalSteps: 10, hyperparameters: "{}", datasetName: nil, datasetSHA256: nil)
        let exited = Process()
        exited.executableURL = URL(fileURLWithPath: "/bin/true")
        try exited.run()
        exited.waitUntilExit()
        dead.pid = exited.processIdentifier
        _ = try fixture.store.registry.startRun(dead)
        _ = try fixture.store.registry.startRun(TrainingRunRecord(name: "alive", totalSteps: 10, hyperparameters: "{}", datasetName: nil, datasetSHA256: nil))
        let reopened = try AdapterStore(root: fixture.store.root)
        #expect(try reopened.registry.runs(named: "killed").map(\.status) == [.failed])
        #expect(try reopened.registry.runs(named: "alive").map(\.status) == [.running])
    }

    /// One rule for `--adapter X`: a path with '/' is a folder; a registered name wins over a
    /// folder of the same name, and says so; an unregistered bare name may be a folder.
    @Test func adapterArgumentsResolveByOneRule() throws {
        let fixture = try StoreFixture()
        let record = try fixture.store.register(folder: try fixture.adapterFolder(seed: 9), name: "both", base: fixture.base)
        let here = fixture.directory
        try FileManager.default.copyItem(atPath: try fixture.adapterFolder(seed: 10), toPath: "\(here)/both")
        try FileManager.default.copyItem(atPath: try fixture.adapterFolder(seed: 11), toPath: "\(here)/onlyfolder")
        func resolve(_ argument: String) throws -> AdapterReference {
            try AdapterReference.resolve(argument, in: fixture.store, workingDirectory: here)
        }
        guard case .registered(let found, let shadowed) = try resolve("both") else {
            Issue.record("a registered name resolved to a folder")
            return
        }
        #expect(found.reference == record.reference && shadowed)
        #expect(try resolve("./both") == .folder("\(here)/./both"))
        #expect(try resolve("onlyfolder") == .folder("\(here)/onlyfolder"))
        #expect(throws: RegistryError.unknownAdapter("neither")) { try resolve("neither") }
        #expect(throws: LoRAError.self) { try resolve("./neither") }
    }
}
