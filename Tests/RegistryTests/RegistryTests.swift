import Foundation
import GRDB
import LoRA
import Models
import Registry
import Testing
import TestSupport

/// A temporary store with a tiny base model file and a helper to make adapter folders.
final class StoreFixture {
    let directory: String
    let store: AdapterStore
    let modelPath: String
    let base: BaseModelRecord

    init(seed: UInt64 = 60) throws {
        directory = try Fixtures.temporaryDirectory()
        store = try AdapterStore(root: "\(directory)/store")
        modelPath = "\(directory)/tiny.gguf"
        try TinyLlama.gguf(TinyLlama.random(seed: seed)).build().write(to: URL(fileURLWithPath: modelPath))
        base = try store.baseModel(path: modelPath, config: TinyLlama.config)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// A PEFT folder with a random rank-2 adapter on q and v.
    func adapterFolder(seed: UInt64, config: LlamaConfig = TinyLlama.config) throws -> String {
        let folder = "\(directory)/peft-\(seed)-\(UUID().uuidString)"
        var adapter = LoRAAdapter.initialized(LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), for: config, seed: seed)
        adapter.layers[0][.q]?.b = FiniteDifference.random(config.hiddenSize * 2, seed: seed)
        try adapter.savePEFT(to: folder, baseModelName: "tiny")
        return folder
    }
}

struct RegistryTests {
    @Test func migrationsCreateTheSchemaAndReopen() throws {
        let fixture = try StoreFixture()
        let tables = try DatabaseQueue(path: "\(fixture.store.root)/registry.sqlite").read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        for table in ["adapter", "adapterTag", "baseModel", "evaluation", "trainingRun"] { #expect(tables.contains(table)) }
        _ = try AdapterStore(root: fixture.store.root)
        #expect(try AdapterRegistry.inMemory().adapters().isEmpty)
    }

    @Test func aDatabaseFromANewerVersionIsRefused() throws {
        let fixture = try StoreFixture()
        try DatabaseQueue(path: "\(fixture.store.root)/registry.sqlite").write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
        }
        #expect(throws: RegistryError.newerSchema(path: "\(fixture.store.root)/registry.sqlite")) {
            try AdapterStore(root: fixture.store.root)
        }
    }

    @Test func registerListShowTagAndLineage() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let first = try store.register(
            folder: try fixture.adapterFolder(seed: 1), name: "dates", base: fixture.base,
            provenance: .init(datasetName: "dates", datasetSHA256: "abc", trainLoss: 0.5, validLoss: 0.4, tags: ["prod"]))
        let second = try store.register(
            folder: try fixture.adapterFolder(seed: 2), name: "dates", base: fixture.base, provenance: .init(parent: "dates@1"))
        let other = try store.register(folder: try fixture.adapterFolder(seed: 3), name: "extract", base: fixture.base)
        #expect(first.version == 1 && second.version == 2 && other.version == 1)
        #expect(first.rank == 2 && first.alpha == 4 && first.targets == "q_proj,v_proj")
        #expect(first.fileHashes.keys.sorted() == ["adapter_config.json", "adapter_model.safetensors"])
        #expect(try store.resolve("dates").version == 2)
        #expect(try store.resolve("dates@1").id == first.id)
        #expect(try store.registry.adapters(tag: "prod").map(\.reference) == ["dates@1"])
        #expect(try store.registry.adapters(baseModelId: fixture.base.id).count == 3)
        #expect(try store.registry.lineage(of: second.id!).map(\.reference) == ["dates@2", "dates@1"])
        try store.registry.setTags(of: second.id!, adding: ["staging", "x"], removing: ["x"])
        #expect(try store.registry.tags(of: second.id!) == ["staging"])
        #expect(FileManager.default.fileExists(atPath: "\(store.root)/dates/2/adapter_model.safetensors"))
        #expect(throws: RegistryError.unknownAdapter("nope")) { try store.resolve("nope") }
        #expect(throws: RegistryError.invalidName("../evil")) {
            try store.register(folder: try fixture.adapterFolder(seed: 4), name: "../evil", base: fixture.base)
        }
        // The registered files load back as the adapter that was registered.
        let loaded = try store.load("dates@1", for: fixture.base, config: TinyLlama.config)
        #expect(loaded.layers[0][.q] != nil && loaded.layers[0][.k] == nil)
    }

    @Test func verifyCatchesAFlippedByte() throws {
        let fixture = try StoreFixture()
        let record = try fixture.store.register(folder: try fixture.adapterFolder(seed: 5), name: "a", base: fixture.base)
        #expect(try fixture.store.verify(record).isEmpty)
        let path = "\(fixture.store.folder(of: record))/adapter_model.safetensors"
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count - 3] ^= 0x01
        try data.write(to: URL(fileURLWithPath: path))
        let problems = try fixture.store.verify(record)
        #expect(problems.count == 1)
        #expect(problems.first?.description.contains("adapter_model.safetensors has sha256") == true)
    }

    @Test func removeAndGarbageCollectLeaveNoRowWithoutFilesNorFilesWithoutRow() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let keep = try store.register(folder: try fixture.adapterFolder(seed: 6), name: "keep", base: fixture.base)
        let gone = try store.register(folder: try fixture.adapterFolder(seed: 7), name: "gone", base: fixture.base)
        try store.remove(gone)
        #expect(try store.registry.adapter("gone") == nil)
        #expect(!FileManager.default.fileExists(atPath: store.folder(of: gone)))
        // What a crash can leave: a version folder whose row never committed, a staging folder,
        // and a row whose files were deleted by hand.
        try FileManager.default.createDirectory(atPath: "\(store.root)/keep/7", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(store.root)/keep/.incoming-x", withIntermediateDirectories: true)
        let orphanRow = try store.register(folder: try fixture.adapterFolder(seed: 8), name: "orphan", base: fixture.base)
        try FileManager.default.removeItem(atPath: store.folder(of: orphanRow))
        let removed = try store.garbageCollect()
        #expect(removed.folders.sorted() == ["keep/.incoming-x", "keep/7"])
        #expect(removed.rows == ["orphan@1"])
        #expect(try store.registry.adapters().map(\.reference) == [keep.reference])
        #expect(try store.verify(keep).isEmpty)
    }

    /// An adapter names its base by fingerprint: another base is refused with both named;
    /// --force applies it only when the shapes agree.
    @Test func adapterForAnotherBaseIsRefused() throws {
        let fixture = try StoreFixture(seed: 61)
        let record = try fixture.store.register(folder: try fixture.adapterFolder(seed: 9), name: "a", base: fixture.base)
        let otherPath = "\(fixture.directory)/other.gguf"
        try TinyLlama.gguf(TinyLlama.random(seed: 62)).build().write(to: URL(fileURLWithPath: otherPath))
        let otherBase = try fixture.store.baseModel(path: otherPath, config: TinyLlama.config)
        #expect(otherBase.fingerprint != fixture.base.fingerprint)
        do {
            _ = try fixture.store.load(record.reference, for: otherBase, config: TinyLlama.config)
            Issue.record("applied to another base")
        } catch let error as RegistryError {
            #expect(error == .wrongBase(adapter: "a@1", adapterBase: fixture.base.label, loadedBase: otherBase.label))
        }
        #expect(try fixture.store.load(record.reference, for: otherBase, config: TinyLlama.config, force: true).layers.count == 2)

        var wider = TinyLlama.config
        wider.intermediateSize = 32
        let widerPath = "\(fixture.directory)/wider.gguf"
        try TinyLlama.gguf(TinyLlama.random(seed: 63, config: wider)).build().write(to: URL(fileURLWithPath: widerPath))
        let widerBase = try fixture.store.baseModel(path: widerPath, config: wider)
        #expect(throws: RegistryError.self) { try fixture.store.load(record.reference, for: widerBase, config: wider, force: true) }
    }

    @Test func exportAndImportMoveAnAdapterBetweenStores() throws {
        let fixture = try StoreFixture()
        let record = try fixture.store.register(
            folder: try fixture.adapterFolder(seed: 10), name: "moved", base: fixture.base,
            provenance: .init(datasetName: "d", validLoss: 0.25, tags: ["t"]))
        let exportPath = "\(fixture.directory)/export"
        try fixture.store.export(record, to: exportPath)
        let other = try AdapterStore(root: "\(fixture.directory)/other-store")
        let imported = try other.importAdapter(from: exportPath)
        #expect(imported.reference == "moved@1" && imported.sha256 == record.sha256 && imported.validLoss == 0.25)
        #expect(try other.registry.tags(of: imported.id!) == ["t"])
        #expect(try other.registry.baseModel(id: imported.baseModelId)?.fingerprint == fixture.base.fingerprint)
        // A tampered export is refused.
        let weights = "\(exportPath)/adapter_model.safetensors"
        var data = try Data(contentsOf: URL(fileURLWithPath: weights))
        data[data.count - 1] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: weights))
        #expect(throws: RegistryError.self) { try other.importAdapter(from: exportPath) }
    }

    @Test func runsAndEvaluationsAreRecorded() throws {
        let fixture = try StoreFixture()
        let registry = fixture.store.registry
        var run = try registry.startRun(TrainingRunRecord(name: "r", totalSteps: 10, hyperparameters: "{}", datasetName: "d", datasetSHA256: nil))
        #expect(try registry.runs(named: "r").first?.status == .running)
        let record = try fixture.store.register(folder: try fixture.adapterFolder(seed: 11), name: "r", base: fixture.base)
        run.status = .completed
        run.steps = 10
        run.adapterId = record.id
        try registry.updateRun(run)
        #expect(try registry.runs(adapterId: record.id!).map(\.status) == [.completed])
        _ = try registry.recordEvaluation(
            EvaluationRecord(adapterId: record.id, baseModelId: fixture.base.id!, dataset: "d", datasetSHA256: nil, metric: "exact_match", value: 0.9))
        #expect(try registry.evaluations(adapterId: record.id).map(\.value) == [0.9])
    }

    /// Two connections registering at once (as two processes would): WAL and the busy timeout
    /// serialise them; every version number is used once and every row has its files.
    @Test func concurrentWritersNeverCorruptTheRegistry() throws {
        let fixture = try StoreFixture()
        let folders = try (0..<8).map { try fixture.adapterFolder(seed: 100 + UInt64($0)) }
        let root = fixture.store.root
        let base = fixture.base
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { writer in
            do {
                let store = try AdapterStore(root: root)
                for i in 0..<4 { _ = try store.register(folder: folders[writer * 4 + i], name: "shared", base: base) }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        let versions = try fixture.store.registry.adapters(name: "shared").map(\.version).sorted()
        #expect(versions == Array(1...8))
        for record in try fixture.store.registry.adapters() { #expect(try fixture.store.verify(record).isEmpty) }
    }
}

import Synchronization
