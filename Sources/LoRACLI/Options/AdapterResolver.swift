import Foundation
import LoRA
import Models
import Registry

/// Turns an `--adapter` argument into an adapter by `AdapterReference`'s rule; registered ones
/// are checked against the loaded base's fingerprint, folders against its names
/// (`base_model_name_or_path`; `--force` loads one that names another model).
struct AdapterResolver {
    let store: StoreOptions
    let modelPath: String
    let baseNames: [String]

    func load(_ argument: String, config: LlamaConfig, force: Bool) throws -> LoRAAdapter {
        try resolve(argument, config: config, force: force).adapter
    }

    /// The adapter and, when it came from the registry, its row.
    func resolve(_ argument: String, config: LlamaConfig, force: Bool) throws -> (adapter: LoRAAdapter, record: AdapterRecord?) {
        switch try AdapterReference.resolve(argument, in: try store.open()) {
        case .folder(let path):
            if !force { try LoRAAdapter.checkBaseModelName(in: path, baseNames: baseNames, remedy: "pass --force to use it anyway") }
            return (try LoRAAdapter.loadPEFT(from: path, for: config), nil)
        case .registered(let record, let shadowedFolder):
            if shadowedFolder {
                FileHandle.standardError.write(Data("note: '\(argument)' is the registered adapter \(record.reference); write ./\(argument) for the folder\n".utf8))
            }
            let store = try store.open()
            let base = try store.baseModel(path: modelPath, config: config)
            return (try store.load(record.reference, for: base, config: config, force: force), record)
        }
    }
}
