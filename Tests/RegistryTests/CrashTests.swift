import Formats
import Foundation
import LoRA
import Models
import Registry
import Testing
import TestSupport

/// `kill -9` of a process in the middle of registering an adapter leaves the registry either
/// without the new version or with all of it: every row verifies, and `gc` removes whatever
/// files the killed process had not yet committed.
struct CrashTests {
    static let lora = "\(Fixtures.packageRoot)/.build/release/lora"

    /// Runs `lora arguments`, and `kill -9`s it after the delay; whether it was still running.
    static func killed(_ arguments: [String], afterMicroseconds delay: Int) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: lora)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        usleep(useconds_t(delay))
        let running = process.isRunning
        if running { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return running
    }

    @Test func killedImportLeavesOldOrNewStateOnly() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.lora), "build the lora product first (swift build -c release)")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // An adapter of the real model's size (9.8 MB for SmolLM2), so that a kill can land mid-copy.
        let config = try LlamaConfig(gguf: GGUFFileLoader.load())
        let source = try AdapterStore(root: "\(directory)/source")
        let shapes = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        let base = try source.registry.registerBaseModel(
            BaseModelRecord(name: "smol", architecture: "llama", path: "-", fingerprint: "f00d", shapes: shapes, fileSize: 0, modifiedAt: 0))
        let adapter = LoRAAdapter.initialized(LoRAConfig(rank: 8, alpha: 16, targets: LayerTensor.projections), for: config, seed: 1)
        try adapter.savePEFT(to: "\(directory)/peft", baseModelName: "smol")
        let record = try source.register(folder: "\(directory)/peft", name: "big", base: base)
        try source.export(record, to: "\(directory)/export")

        let target = "\(directory)/target"
        var killed = 0
        for attempt in 0..<8 {
            if try Self.killed(["adapters", "import", "\(directory)/export", "--store", target], afterMicroseconds: 5_000 + attempt * 9_000) {
                killed += 1
            }

            // Whatever the moment of the kill: every row is complete and intact.
            let store = try AdapterStore(root: target)
            for row in try store.registry.adapters() {
                #expect(try store.verify(row).isEmpty, "attempt \(attempt): \(row.reference)")
            }
            _ = try store.garbageCollect()
            let registered = Set(try store.registry.adapters().map(\.path))
            let folders = ((try? FileManager.default.contentsOfDirectory(atPath: "\(target)/big")) ?? []).map { "big/\($0)" }
            #expect(Set(folders) == registered, "attempt \(attempt): files without rows after gc")
        }
        #expect(killed > 0, "no import was still running when killed; the test proved nothing")
    }

    /// `kill -9` during `lora adapters rm`: the row goes first, so whatever the moment, no row
    /// is left whose files are gone or partial (before, 4 of 18 kills left one).
    @Test func killedRemoveLeavesNoRowWithoutFiles() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.lora), "build the lora product first (swift build -c release)")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try LlamaConfig(gguf: GGUFFileLoader.load())
        let shapes = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        let adapter = LoRAAdapter.initialized(LoRAConfig(rank: 8, alpha: 16, targets: LayerTensor.projections), for: config, seed: 2)
        try adapter.savePEFT(to: "\(directory)/peft", baseModelName: "smol")
        let root = "\(directory)/store"
        var killed = 0
        for attempt in 0..<10 {
            let store = try AdapterStore(root: root)
            let base = try store.registry.registerBaseModel(
                BaseModelRecord(name: "smol", architecture: "llama", path: "-", fingerprint: "f00d", shapes: shapes, fileSize: 0, modifiedAt: 0))
            let record = try store.register(folder: "\(directory)/peft", name: "doomed", base: base)
            if try Self.killed(["adapters", "rm", record.reference, "--store", root], afterMicroseconds: 3_000 + attempt * 4_000) {
                killed += 1
            }
            for row in try store.registry.adapters() {
                #expect(try store.verify(row).isEmpty, "attempt \(attempt): \(row.reference) has lost files")
            }
        }
        #expect(killed > 0, "no removal was still running when killed; the test proved nothing")
        let store = try AdapterStore(root: root)
        _ = try store.garbageCollect()
        let registered = Set(try store.registry.adapters().map(\.path))
        let folders = Set(((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/doomed")) ?? []).map { "doomed/\($0)" })
        #expect(folders == registered, "after gc, files and rows agree")
    }

    /// Ctrl-C stops a long phase that is not a training step (here tokenizing a large dataset
    /// for `data stats`) at once, instead of when the phase ends.
    @Test func interruptStopsALongPhase() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.lora), "build the lora product first (swift build -c release)")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let line = #"{"text": ""# + String(repeating: "a quick brown fox jumps over the lazy dog 123 ", count: 40) + #""}"# + "\n"
        try Data(String(repeating: line, count: 40_000).utf8).write(to: URL(fileURLWithPath: "\(directory)/big.jsonl"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.lora)
        process.arguments = ["data", "stats", "\(directory)/big.jsonl", "--model", Fixtures.modelPath]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        usleep(1_500_000)
        try #require(process.isRunning, "the phase ended before the signal; the test proved nothing")
        kill(process.processIdentifier, SIGINT)
        // Bounded wait: a process that ignores the signal is killed and reported.
        var waited = 0
        while process.isRunning && waited < 200 {
            usleep(50_000)
            waited += 1
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 128 + SIGINT, "status \(process.terminationStatus)")
        #expect(waited < 200, "still running 10 s after Ctrl-C")
    }

    /// A plain PEFT folder (what users bring) imports for the base given by --model.
    @Test func aPlainPEFTFolderImports() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.lora), "build the lora product first (swift build -c release)")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.lora)
        process.arguments = ["adapters", "import", try Fixtures.path("peft_adapter"), "--name", "brought", "--store", "\(directory)/store", "--model", Fixtures.modelPath]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let store = try AdapterStore(root: "\(directory)/store")
        let record = try store.resolve("brought")
        #expect(try store.verify(record).isEmpty && record.rank > 0)
    }

    /// Two processes registering into one store at the same time: WAL and the busy timeout
    /// serialise their transactions; both versions land, complete.
    @Test func twoProcessesImportingAtOnce() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.lora), "build the lora product first (swift build -c release)")
        let fixture = try StoreFixture()
        let record = try fixture.store.register(folder: try fixture.adapterFolder(seed: 1), name: "twin", base: fixture.base)
        try fixture.store.export(record, to: "\(fixture.directory)/export")
        let target = "\(fixture.directory)/target"
        let processes = try (0..<4).map { _ -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.lora)
            process.arguments = ["adapters", "import", "\(fixture.directory)/export", "--store", target]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            return process
        }
        for process in processes {
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
        }
        let store = try AdapterStore(root: target)
        let rows = try store.registry.adapters(name: "twin")
        #expect(rows.map(\.version).sorted() == [1, 2, 3, 4])
        for row in rows { #expect(try store.verify(row).isEmpty) }
    }
}
