import Foundation
import Formats
import Models

/// PEFT's on-disk layout: `adapter_config.json` and `adapter_model.safetensors` with tensors
/// `base_model.model.model.layers.{l}.{self_attn|mlp}.{q,k,v,o,gate,up,down}_proj.lora_{A,B}.weight`,
/// A as [r, in] and B as [out, r] (Hugging Face `[out, in]` convention, q/k rows in HF order,
/// which is also this codebase's order, so tensors round-trip unchanged).
extension LoRAAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    public static func peftTensorName(layer: Int, _ tensor: LayerTensor, _ matrix: String) -> String {
        "base_model.model.model.layers.\(layer).\(tensor.modulePath).lora_\(matrix).weight"
    }

    // MARK: - Saving

    /// Writes both files into `folder` (created if needed), each atomically.
    public func savePEFT(to folder: String, baseModelName: String, metadata: [String: String] = [:]) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var writer = SafetensorsWriter(metadata: ["format": "pt"].merging(metadata) { $1 })
        for (l, layer) in layers.enumerated() {
            for tensor in LayerTensor.projections {
                guard let pair = layer[tensor] else { continue }
                writer.add(Self.peftTensorName(layer: l, tensor, "A"), shape: [pair.rank, pair.inFeatures], values: pair.a)
                writer.add(Self.peftTensorName(layer: l, tensor, "B"), shape: [pair.outFeatures, pair.rank], values: pair.b)
            }
        }
        try writer.write(to: "\(folder)/\(Self.weightsFile)")
        let json: [String: Any] = [
            "alpha_pattern": [String: Any](), "base_model_name_or_path": baseModelName, "bias": "none",
            "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
            "layers_to_transform": config.layers.map { $0 as Any } ?? NSNull(), "lora_alpha": config.alpha,
            "lora_dropout": config.dropout, "modules_to_save": NSNull(), "peft_type": "LORA", "r": config.rank,
            "rank_pattern": [String: Any](), "revision": NSNull(), "target_modules": config.targets.compactMap(\.peftName),
            "task_type": "CAUSAL_LM", "use_dora": false, "use_rslora": config.useRSLoRA,
        ]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try AtomicWrite.write(data, to: "\(folder)/\(Self.configFile)")
    }

    // MARK: - Loading

    /// Reads a PEFT LoRA folder and checks every tensor against the base model's shapes,
    /// reporting all mismatches at once.
    public static func loadPEFT(from folder: String, for model: LlamaConfig) throws -> LoRAAdapter {
        let config = try readPEFTConfig("\(folder)/\(configFile)")
        let path = "\(folder)/\(weightsFile)"
        if let selected = config.layers, !selected.contains(where: { (0..<model.numHiddenLayers).contains($0) }) {
            throw LoRAError.noLayers(path: "\(folder)/\(configFile)", layers: selected, layerCount: model.numHiddenLayers)
        }
        let file = try SafetensorsFile(path: path)
        var layers = Array(repeating: LayerAdapters(), count: model.numHiddenLayers)
        var matrices: [String: [Float]] = [:]
        var unknown: [String] = []
        var expected: [(name: String, layer: Int, tensor: LayerTensor, matrix: String)] = []
        for l in 0..<model.numHiddenLayers where config.adapts(layer: l) {
            for tensor in config.targets {
                for matrix in ["A", "B"] { expected.append((peftTensorName(layer: l, tensor, matrix), l, tensor, matrix)) }
            }
        }
        let expectedNames = Set(expected.map(\.name))
        for name in file.tensors.keys.sorted() {
            // PEFT keeps the adapter name (".default") in memory but not on disk; accept both.
            let canonical = name.replacingOccurrences(of: ".default.weight", with: ".weight")
            guard expectedNames.contains(canonical) else {
                unknown.append(name)
                continue
            }
            let values = try file.floats(name)
            if let bad = values.firstIndex(where: { !$0.isFinite }) { throw LoRAError.nonFinite(path: path, tensor: name, index: bad) }
            matrices[canonical] = values
        }
        guard unknown.isEmpty else {
            // A layer index past the model, or a module the config does not list.
            let outOfRange = unknown.filter { $0.contains(".layers.") }
            if !outOfRange.isEmpty && outOfRange.count == unknown.count {
                throw LoRAError.shapeMismatches(path: path, mismatches: unknown.map { "\($0) has no place in a \(model.numHiddenLayers)-layer model with targets \(config.targets.compactMap(\.peftName))" })
            }
            throw LoRAError.unknownTensors(path: path, names: unknown)
        }
        let missing = expected.map(\.name).filter { matrices[$0] == nil }
        guard missing.isEmpty else { throw LoRAError.missingTensors(path: path, names: missing) }

        var mismatches: [String] = []
        for entry in expected where entry.matrix == "A" {
            let shape = entry.tensor.shape(model)
            let aName = entry.name, bName = peftTensorName(layer: entry.layer, entry.tensor, "B")
            guard let aInfo = file.tensors[aName] ?? file.tensors[aName.replacingOccurrences(of: ".weight", with: ".default.weight")],
                let bInfo = file.tensors[bName] ?? file.tensors[bName.replacingOccurrences(of: ".weight", with: ".default.weight")]
            else { continue }
            let expectedA = [config.rank, shape[1]], expectedB = [shape[0], config.rank]
            if aInfo.shape != expectedA { mismatches.append("\(aName) is \(aInfo.shape), expected \(expectedA)") }
            if bInfo.shape != expectedB { mismatches.append("\(bName) is \(bInfo.shape), expected \(expectedB)") }
            if aInfo.shape == expectedA && bInfo.shape == expectedB {
                layers[entry.layer][entry.tensor] = LowRankPair(
                    a: matrices[aName]!, b: matrices[bName]!, rank: config.rank, scale: config.scale)
            }
        }
        guard mismatches.isEmpty else { throw LoRAError.shapeMismatches(path: path, mismatches: mismatches) }
        return LoRAAdapter(config: config, layers: layers)
    }

    /// Parses PEFT's `adapter_config.json`, refusing features this workbench does not implement.
    public static func readPEFTConfig(_ path: String) throws -> LoRAConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoRAError.invalidConfig(path: path, reason: "file not found or unreadable")
        }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw LoRAError.invalidConfig(path: path, reason: "not a JSON object")
        }
        if let type = json["peft_type"] as? String, type != "LORA" { throw LoRAError.unsupported(path: path, feature: "peft_type \(type)") }
        if json["use_dora"] as? Bool == true { throw LoRAError.unsupported(path: path, feature: "DoRA (use_dora)") }
        if json["fan_in_fan_out"] as? Bool == true { throw LoRAError.unsupported(path: path, feature: "fan_in_fan_out") }
        if let bias = json["bias"] as? String, bias != "none" { throw LoRAError.unsupported(path: path, feature: "bias '\(bias)'") }
        if let modules = json["modules_to_save"] as? [Any], !modules.isEmpty {
            throw LoRAError.unsupported(path: path, feature: "modules_to_save")
        }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let pattern = json[key] as? [String: Any], !pattern.isEmpty { throw LoRAError.unsupported(path: path, feature: key) }
        }
        guard let rank = json["r"] as? Int, rank > 0 else { throw LoRAError.invalidConfig(path: path, reason: "r must be a positive integer") }
        guard let alpha = (json["lora_alpha"] as? NSNumber)?.floatValue else {
            throw LoRAError.invalidConfig(path: path, reason: "lora_alpha is missing")
        }
        let names: [String]
        if let list = json["target_modules"] as? [String] {
            names = list
        } else if let single = json["target_modules"] as? String {
            guard single == "all-linear" else {
                throw LoRAError.unsupported(path: path, feature: "target_modules as a regular expression ('\(single)')")
            }
            names = LayerTensor.projections.compactMap(\.peftName)
        } else {
            throw LoRAError.invalidConfig(path: path, reason: "target_modules is missing")
        }
        var targets: [LayerTensor] = []
        for name in names {
            guard let tensor = LayerTensor(peftName: name) else {
                throw LoRAError.unsupported(path: path, feature: "target module '\(name)'")
            }
            targets.append(tensor)
        }
        var layers: [Int]? = nil
        if let list = json["layers_to_transform"] as? [Int] {
            layers = list
        } else if let single = json["layers_to_transform"] as? Int {
            layers = [single]
        }
        return LoRAConfig(
            rank: rank, alpha: alpha, dropout: (json["lora_dropout"] as? NSNumber)?.floatValue ?? 0, targets: targets,
            layers: layers, useRSLoRA: json["use_rslora"] as? Bool ?? false)
    }
}
