/// Why an adapter could not be created, read or applied, naming the file and the tensors.
public enum LoRAError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(path: String, reason: String)
    case unsupported(path: String, feature: String)
    case unknownTensors(path: String, names: [String])
    case shapeMismatches(path: String, mismatches: [String])
    case missingTensors(path: String, names: [String])
    case unknownTarget(String)
    case nonFinite(path: String, tensor: String, index: Int)
    case noLayers(path: String, layers: [Int], layerCount: Int)

    public var description: String {
        switch self {
        case .invalidConfig(let path, let reason):
            "\(path): invalid adapter configuration: \(reason)"
        case .unsupported(let path, let feature):
            "\(path): \(feature) is not supported"
        case .unknownTensors(let path, let names):
            "\(path): tensors that match no Llama projection: \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? " and \(names.count - 5) more" : "")"
        case .shapeMismatches(let path, let mismatches):
            "\(path): adapter does not fit this base model (hint: trained for another base?): \(mismatches.prefix(5).joined(separator: "; "))\(mismatches.count > 5 ? "; and \(mismatches.count - 5) more" : "")"
        case .missingTensors(let path, let names):
            "\(path): missing tensors: \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? " and \(names.count - 5) more" : "")"
        case .nonFinite(let path, let tensor, let index):
            "\(path): \(tensor) has a value that is not finite (NaN or infinity) at index \(index); the adapter is broken"
        case .noLayers(let path, let layers, let layerCount):
            "\(path): layers_to_transform \(layers) selects none of the model's \(layerCount) layers (0-\(layerCount - 1))"
        case .unknownTarget(let name):
            "unknown target module '\(name)' (use q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all)"
        }
    }
}
