import ArgumentParser
import Foundation
import LoRA
import Registry

struct AdaptersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapters", abstract: "List, inspect and manage the adapters in the registry.",
        subcommands: [List.self, Show.self, Remove.self, Tag.self, Verify.self, GarbageCollect.self, Export.self, Import.self, Rebuild.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered adapters, newest version first.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Only adapters with this name.") var name: String?
        @Option(help: "Only adapters trained for this base (name or fingerprint prefix).") var base: String?
        @Option(help: "Only adapters with this tag.") var tag: String?
        @Flag(help: "One JSON object per line.") var json = false

        func run() throws {
            let store = try storeOptions.open()
            var records = try store.registry.adapters(name: name, tag: tag)
            var bases: [Int64: BaseModelRecord] = [:]
            for record in records where bases[record.baseModelId] == nil {
                bases[record.baseModelId] = try store.registry.baseModel(id: record.baseModelId)
            }
            if let base {
                records = records.filter { bases[$0.baseModelId].map { $0.name == base || $0.fingerprint.hasPrefix(base) } ?? false }
            }
            if json {
                let encoder = JSONEncoder.sorted
                encoder.dateEncodingStrategy = .iso8601
                for record in records { print(String(decoding: try encoder.encode(record), as: UTF8.self)) }
                return
            }
            let rows = records.map { record in
                [
                    record.reference, bases[record.baseModelId]?.label ?? "?", "\(record.rank)", "\(record.alpha)", record.targets,
                    record.validLoss.map { String(format: "%.4f", $0) } ?? "-", ISO8601DateFormatter().string(from: record.createdAt),
                ]
            }
            let header = ["NAME@VERSION", "BASE", "RANK", "ALPHA", "TARGETS", "VALID LOSS", "CREATED"]
            print(TextTable.render(header: header, rows: rows))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one adapter: files, provenance, metrics, lineage.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "NAME or NAME@VERSION.") var adapter: String

        func run() throws {
            let store = try storeOptions.open()
            let record = try store.resolve(adapter)
            let base = try store.registry.baseModel(id: record.baseModelId)
            print("adapter: \(record.reference)")
            print("files: \(store.folder(of: record)) (\(record.sizeBytes) bytes)")
            for (file, hash) in record.fileHashes.sorted(by: { $0.key < $1.key }) { print("  \(file) sha256 \(hash)") }
            print("base: \(base?.label ?? "?") \(base?.path ?? "")")
            print("lora: r=\(record.rank) alpha=\(record.alpha) targets \(record.targets)")
            print("created: \(ISO8601DateFormatter().string(from: record.createdAt))")
            if let id = record.id { print("tags: \(try store.registry.tags(of: id).joined(separator: ", "))") }
            if let dataset = record.datasetName { print("dataset: \(dataset) sha256 \(record.datasetSHA256 ?? "?")") }
            print("train loss: \(record.trainLoss.map { String(format: "%.4f", $0) } ?? "-"), valid loss: \(record.validLoss.map { String(format: "%.4f", $0) } ?? "-")")
            if let description = record.description { print("description: \(description)") }
            if let hyperparameters = record.hyperparameters { print("hyperparameters: \(hyperparameters)") }
            if let id = record.id {
                let lineage = try store.registry.lineage(of: id)
                print("lineage: " + lineage.map(\.reference).joined(separator: " ← "))
                for run in try store.registry.runs(adapterId: id) {
                    print("training run \(run.id ?? 0): \(run.status.rawValue), \(run.steps)/\(run.totalSteps) steps, \(String(format: "%.1f", run.seconds)) s, \(Int(run.tokensPerSecond)) tok/s")
                }
                for evaluation in try store.registry.evaluations(adapterId: id) {
                    print("evaluation: \(evaluation.dataset) \(evaluation.metric) = \(evaluation.value)")
                }
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove adapter versions (row and files).")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "NAME@VERSION, or NAME for every version.") var adapter: String

        func run() throws {
            let store = try storeOptions.open()
            let (name, version) = AdapterRegistry.parse(adapter)
            let records = try store.registry.adapters(name: name).filter { version == nil || $0.version == version }
            guard !records.isEmpty else { throw RegistryError.unknownAdapter(adapter) }
            for record in records {
                try store.remove(record)
                print("removed \(record.reference)")
            }
        }
    }

    struct Tag: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or remove tags.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "NAME or NAME@VERSION.") var adapter: String
        @Option(help: "Tags to add.") var add: [String] = []
        @Option(help: "Tags to remove.") var remove: [String] = []

        func run() throws {
            let store = try storeOptions.open()
            let record = try store.resolve(adapter)
            guard let id = record.id else { return }
            try store.registry.setTags(of: id, adding: add, removing: remove)
            print("\(record.reference): \(try store.registry.tags(of: id).joined(separator: ", "))")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-check the sha256 of every registered file.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "NAME or NAME@VERSION (default: all).") var adapter: String?

        func run() throws {
            let store = try storeOptions.open()
            let records = try adapter.map { [try store.resolve($0)] } ?? store.registry.adapters()
            var problems = 0
            for record in records {
                let found = try store.verify(record)
                problems += found.count
                print(found.isEmpty ? "ok \(record.reference)" : found.map(\.description).joined(separator: "\n"))
            }
            if problems > 0 { throw ExitCode(1) }
        }
    }

    struct GarbageCollect: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc", abstract: "Remove files without a row and rows without files (what a crash can leave).")
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let removed = try storeOptions.open().garbageCollect()
            for folder in removed.folders { print("removed unregistered files \(folder)") }
            for row in removed.rows { print("removed row without files \(row)") }
            if removed.folders.isEmpty && removed.rows.isEmpty { print("nothing to collect") }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy an adapter (PEFT files + registry.json) out of the store.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "NAME or NAME@VERSION.") var adapter: String
        @Option(help: "Destination folder (must not exist).") var to: String

        func run() throws {
            let store = try storeOptions.open()
            let record = try store.resolve(adapter)
            try store.export(record, to: to)
            print("exported \(record.reference) to \(to)")
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an exported adapter folder, or a plain PEFT folder, in this store.",
            discussion: """
                A folder written by `lora adapters export` carries its base and hashes (registry.json). A PEFT folder \
                (adapter_config.json + adapter_model.safetensors, as PEFT's save_pretrained writes it) is registered for \
                the base given by --model, after loading it against that base; one whose base_model_name_or_path names \
                another model needs --force.
                """)
        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var modelOptions: ModelOptions
        @Argument(help: "A folder written by `lora adapters export`, or a PEFT adapter folder.") var folder: String
        @Option(help: "The name for a PEFT folder (default: the folder's name).") var name: String?
        @Flag(help: "Register a PEFT folder that names another base model.") var force = false

        func run() throws {
            let store = try storeOptions.open()
            if FileManager.default.fileExists(atPath: "\(folder)/registry.json") {
                print("imported as \(try store.importAdapter(from: folder).reference)")
                return
            }
            guard FileManager.default.fileExists(atPath: "\(folder)/\(LoRAAdapter.configFile)") else {
                throw RegistryError.invalidExport(path: folder, reason: "neither registry.json nor \(LoRAAdapter.configFile): not an adapter folder")
            }
            let languageModel = try modelOptions.load(decoding: false)
            if !force { try LoRAAdapter.checkBaseModelName(in: folder, baseNames: languageModel.names, remedy: "pass --force to register it anyway") }
            let base = try store.baseModel(path: modelOptions.resolvedPath, config: languageModel.model.config)
            let adapterName = name ?? URL(fileURLWithPath: folder).standardizedFileURL.lastPathComponent
            let record = try store.register(
                folder: folder, name: adapterName, base: base,
                provenance: AdapterStore.Provenance(description: "imported from the PEFT folder \(URL(fileURLWithPath: folder).standardizedFileURL.path)"))
            print("imported \(folder) as \(record.reference) for \(base.label)")
        }
    }

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recreate a missing, empty or damaged registry from the store's version folders.",
            discussion: """
                Every NAME/N folder that loads as an adapter of --model is registered again as NAME@N, its files \
                hashed anew and its losses and options read from training_report.json. A damaged registry is \
                kept as registry.sqlite.damaged-TIME. A readable registry with adapters is never replaced.
                """)
        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var modelOptions: ModelOptions

        func run() throws {
            let languageModel = try modelOptions.load(decoding: false)
            let (_, result) = try AdapterStore.rebuild(
                root: storeOptions.root, modelPath: modelOptions.resolvedPath, config: languageModel.model.config)
            if let damaged = result.damagedRegistry { print("kept the damaged registry as \(damaged)") }
            for reference in result.restored { print("restored \(reference)") }
            for (folder, reason) in result.skipped { print("skipped \(folder): \(reason)") }
            print("\(result.restored.count) restored, \(result.skipped.count) skipped")
        }
    }
}
