import Foundation
import LoRA

/// What an `--adapter` argument names, by one rule for every command:
/// - an argument with a `/` (`./dates`, `runs/dates`, `/abs/path`) is a PEFT folder;
/// - a bare name (`dates`, `dates@2`) is a registered adapter when the registry has it;
/// - otherwise a bare name is a PEFT folder in the working directory, if there is one.
/// `lora train --out dates` both writes `./dates` and registers `dates`: the registered one
/// wins, and `shadowedFolder` tells the caller to say how to pick the folder (`./dates`).
public enum AdapterReference: Equatable, Sendable {
    case folder(String)
    case registered(AdapterRecord, shadowedFolder: Bool)

    /// Relative folders are looked up in `workingDirectory`.
    public static func resolve(
        _ argument: String, in store: @autoclosure () throws -> AdapterStore,
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) throws -> AdapterReference {
        let path = argument.hasPrefix("/") ? argument : "\(workingDirectory)/\(argument)"
        let isFolder = FileManager.default.fileExists(atPath: "\(path)/\(LoRAAdapter.configFile)")
        if argument.contains("/") {
            guard isFolder else {
                throw LoRAError.invalidConfig(path: "\(argument)/\(LoRAAdapter.configFile)", reason: "not found: not a PEFT adapter folder")
            }
            return .folder(path)
        }
        if let record = try store().registry.adapter(argument) { return .registered(record, shadowedFolder: isFolder) }
        if isFolder { return .folder(path) }
        throw RegistryError.unknownAdapter(argument)
    }
}
