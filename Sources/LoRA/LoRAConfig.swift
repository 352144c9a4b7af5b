import Foundation
import Models

/// LoRA hyperparameters, named and scaled as PEFT's `LoraConfig`.
public struct LoRAConfig: Sendable, Equatable {
    public var rank: Int
    public var alpha: Float
    public var dropout: Float
    /// Adapted projections, in `LayerTensor.projections` order.
    public var targets: [LayerTensor]
    /// Layers to adapt; nil for all (PEFT `layers_to_transform`).
    public var layers: [Int]?
    /// rsLoRA: scale alpha/√r instead of alpha/r (PEFT `use_rslora`).
    public var useRSLoRA: Bool

    public init(rank: Int, alpha: Float, dropout: Float = 0, targets: [LayerTensor], layers: [Int]? = nil, useRSLoRA: Bool = false) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = LayerTensor.projections.filter { targets.contains($0) }
        self.layers = layers
        self.useRSLoRA = useRSLoRA
    }

    /// PEFT `LoraLayer.scaling`: lora_alpha / r, or lora_alpha / √r with rsLoRA.
    public var scale: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    public func adapts(layer: Int) -> Bool { layers?.contains(layer) ?? true }

    /// Trainable parameters on `model`: r · (in + out) per adapted projection.
    public func parameterCount(for model: LlamaConfig) -> Int {
        let perLayer = targets.reduce(0) { total, tensor in
            let shape = tensor.shape(model)
            return total + rank * (shape[0] + shape[1])
        }
        return perLayer * (0..<model.numHiddenLayers).count { adapts(layer: $0) }
    }

    /// Refuses, before any allocation, a configuration that cannot train on `model`: a layer
    /// index the model does not have, or parameters whose weights, gradients and two AdamW
    /// moments (16 bytes each) would not fit in `memoryBytes`.
    public func check(for model: LlamaConfig, memoryBytes: UInt64 = ProcessInfo.processInfo.physicalMemory) throws(LoRAError) {
        if let layers, let bad = layers.first(where: { !(0..<model.numHiddenLayers).contains($0) }) {
            throw .invalidConfig(path: "--layers", reason: "layer \(bad) does not exist: the model has \(model.numHiddenLayers) layers (0-\(model.numHiddenLayers - 1))")
        }
        let bytes = UInt64(parameterCount(for: model)) * 16
        if bytes > memoryBytes {
            throw .invalidConfig(
                path: "--rank",
                reason: "rank \(rank) means \(parameterCount(for: model)) trainable parameters, \(bytes >> 30) GiB with gradients and AdamW moments; this machine has \(memoryBytes >> 30) GiB")
        }
    }

    /// "q_proj,v_proj", "qv" style shorthands, or "all".
    public static func parseTargets(_ text: String) throws(LoRAError) -> [LayerTensor] {
        if text == "all" || text == "all-linear" { return LayerTensor.projections }
        var result: [LayerTensor] = []
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            if let tensor = LayerTensor(peftName: name) {
                result.append(tensor)
            } else if name.allSatisfy({ "qkvogud".contains($0) }) {
                // Shorthand letters: q k v o g(ate) u(p) d(own), e.g. "qv".
                for letter in name {
                    result.append([Character("q"): .q, "k": .k, "v": .v, "o": .o, "g": .gate, "u": .up, "d": .down][letter]!)
                }
            } else {
                throw .unknownTarget(name)
            }
        }
        guard !result.isEmpty else { throw .unknownTarget(text) }
        return LayerTensor.projections.filter { result.contains($0) }
    }
}

extension LayerTensor {
    /// The module name PEFT uses in `target_modules` and tensor names.
    public var peftName: String? {
        switch self {
        case .q: "q_proj"
        case .k: "k_proj"
        case .v: "v_proj"
        case .o: "o_proj"
        case .gate: "gate_proj"
        case .up: "up_proj"
        case .down: "down_proj"
        case .attnNorm, .ffnNorm: nil
        }
    }

    public init?(peftName: String) {
        guard let tensor = LayerTensor.projections.first(where: { $0.peftName == peftName }) else { return nil }
        self = tensor
    }

    /// `self_attn.q_proj`, `mlp.down_proj`: the module path inside a decoder layer.
    var modulePath: String {
        let name = peftName ?? ""
        return [.q, .k, .v, .o].contains(self) ? "self_attn.\(name)" : "mlp.\(name)"
    }
}
