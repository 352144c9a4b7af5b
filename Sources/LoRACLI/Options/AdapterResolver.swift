import Foundation
import LoRA
import Models
import Registry

/// Turns an `--adapter` argument into an adapter: a folder holding PEFT files is read as it is
/// (adapters trained elsewhere need no registration); anything else is a registry reference,
/// checked against the loaded base's fingerprint.
struct AdapterResolver {
    let store: StoreOptions
    let modelPath: String

    func load(_ argument: String, config: LlamaConfig, force: Bool) throws -> LoRAAdapter {
        try resolve(argument, config: config, force: force).adapter
    }

    /// The adapter and, when it came from the registry, its row.
    func resolve(_ argument: String, config: LlamaConfig, force: Bool) throws -> (adapter: LoRAAdapter, record: AdapterRecord?) {
        if FileManager.default.fileExists(atPath: "\(argument)/\(LoRAAdapter.configFile)") {
            return (try LoRAAdapter.loadPEFT(from: argument, for: config), nil)
        }
        // Registry names cannot contain '/', so this was meant as a folder.
        if argument.contains("/") {
            throw LoRAError.invalidConfig(path: "\(argument)/\(LoRAAdapter.configFile)", reason: "not found: not a PEFT adapter folder")
        }
        let store = try store.open()
        let base = try store.baseModel(path: modelPath, config: config)
        return (try store.load(argument, for: base, config: config, force: force), try store.resolve(argument))
    }
}
