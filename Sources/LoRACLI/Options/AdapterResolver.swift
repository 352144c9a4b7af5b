import Foundation
import LoRA
import Models
import Registry

/// Turns an `--adapter` argument into an adapter, by one rule for every command:
/// - an argument with a `/` (`./dates`, `runs/dates`, `/abs/path`) is a PEFT folder;
/// - a bare name (`dates`, `dates@2`) is a registered adapter when the registry has it,
///   checked against the loaded base's fingerprint;
/// - otherwise a bare name is a PEFT folder in the working directory, if there is one.
/// `lora train --out dates` both writes `./dates` and registers `dates`; the registered one
/// wins, and a note says how to pick the folder instead (`./dates`).
struct AdapterResolver {
    let store: StoreOptions
    let modelPath: String

    func load(_ argument: String, config: LlamaConfig, force: Bool) throws -> LoRAAdapter {
        try resolve(argument, config: config, force: force).adapter
    }

    /// The adapter and, when it came from the registry, its row.
    func resolve(_ argument: String, config: LlamaConfig, force: Bool) throws -> (adapter: LoRAAdapter, record: AdapterRecord?) {
        let isFolder = FileManager.default.fileExists(atPath: "\(argument)/\(LoRAAdapter.configFile)")
        if argument.contains("/") {
            guard isFolder else {
                throw LoRAError.invalidConfig(path: "\(argument)/\(LoRAAdapter.configFile)", reason: "not found: not a PEFT adapter folder")
            }
            return (try LoRAAdapter.loadPEFT(from: argument, for: config), nil)
        }
        let store = try store.open()
        guard let record = try store.registry.adapter(argument) else {
            if isFolder { return (try LoRAAdapter.loadPEFT(from: argument, for: config), nil) }
            throw RegistryError.unknownAdapter(argument)
        }
        if isFolder {
            FileHandle.standardError.write(Data("note: '\(argument)' is the registered adapter \(record.reference); write ./\(argument) for the folder\n".utf8))
        }
        let base = try store.baseModel(path: modelPath, config: config)
        return (try store.load(argument, for: base, config: config, force: force), record)
    }
}
