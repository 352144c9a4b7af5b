import Kernels
import Models

/// A trained (or initialised) LoRA adapter: its configuration and the A/B matrices of every
/// adapted projection, layer by layer. A value: swapping adapters never disturbs one in use.
public struct LoRAAdapter: Sendable, Equatable {
    public var config: LoRAConfig
    /// One entry per model layer (empty `LayerAdapters` for layers not adapted).
    public var layers: [LayerAdapters]

    public init(config: LoRAConfig, layers: [LayerAdapters]) {
        self.config = config
        self.layers = layers
    }

    /// PEFT's default initialisation: A Kaiming-uniform with a = √5 (bound 1/√in), B zero, so
    /// the adapter starts as the identity. Seeded, so a run is reproducible.
    public static func initialized(_ config: LoRAConfig, for model: LlamaConfig, seed: UInt64) -> LoRAAdapter {
        var random = SeededRandom(seed: seed)
        let layers = (0..<model.numHiddenLayers).map { l -> LayerAdapters in
            var layer = LayerAdapters()
            guard config.adapts(layer: l) else { return layer }
            for tensor in config.targets {
                let shape = tensor.shape(model)
                let bound = 1 / Float(shape[1]).squareRoot()
                let a = (0..<(config.rank * shape[1])).map { _ in random.uniform(-bound, bound) }
                layer[tensor] = LowRankPair(
                    a: a, b: Array(repeating: 0, count: shape[0] * config.rank), rank: config.rank, scale: config.scale)
            }
            return layer
        }
        return LoRAAdapter(config: config, layers: layers)
    }

    /// Trainable parameters (A and B entries).
    public var parameterCount: Int {
        layers.reduce(0) { total, layer in
            total + LayerTensor.projections.reduce(0) { $0 + (layer[$1].map { $0.a.count + $0.b.count } ?? 0) }
        }
    }
}
