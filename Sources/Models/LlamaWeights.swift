/// One decoder layer's frozen weights, Float32, matrices in HF `[out, in]` row-major layout
/// with q/k rows in HF order (rotate-half RoPE).
public struct LayerWeights: Sendable {
    private let tensors: [[Float]]

    /// `tensors` in `LayerTensor.allCases` order.
    public init(_ tensors: [[Float]]) {
        precondition(tensors.count == LayerTensor.allCases.count)
        self.tensors = tensors
    }

    public subscript(_ tensor: LayerTensor) -> [Float] {
        tensors[LayerTensor.allCases.firstIndex(of: tensor)!]
    }
}

/// The frozen base model's weights, shared read-only by inference and training.
public final class LlamaWeights: Sendable {
    public let config: LlamaConfig
    /// [V, C]
    public let tokenEmbedding: [Float]
    public let layers: [LayerWeights]
    /// [C]
    public let outputNorm: [Float]
    /// [V, C]; nil when the head is tied to the token embedding (SmolLM2).
    public let output: [Float]?

    public init(config: LlamaConfig, tokenEmbedding: [Float], layers: [LayerWeights], outputNorm: [Float], output: [Float]?) {
        self.config = config
        self.tokenEmbedding = tokenEmbedding
        self.layers = layers
        self.outputNorm = outputNorm
        self.output = output
    }

    /// The language-model head, [V, C].
    public var head: [Float] { output ?? tokenEmbedding }

    /// Loads every tensor through `read(name-in-file, expected HF shape)`, in the one order the
    /// model needs; shared by the GGUF and safetensors loaders.
    static func load(
        config: LlamaConfig, hasOutput: Bool,
        read: (_ global: GlobalTensor?, _ layer: (LayerTensor, Int)?, _ shape: [Int]) throws -> [Float]
    ) throws -> LlamaWeights {
        let embedding = try read(.tokenEmbedding, nil, GlobalTensor.tokenEmbedding.shape(config))
        var layers: [LayerWeights] = []
        for index in 0..<config.numHiddenLayers {
            layers.append(LayerWeights(try LayerTensor.allCases.map { try read(nil, ($0, index), $0.shape(config)) }))
        }
        return LlamaWeights(
            config: config, tokenEmbedding: embedding, layers: layers,
            outputNorm: try read(.outputNorm, nil, GlobalTensor.outputNorm.shape(config)),
            output: hasOutput ? try read(.output, nil, GlobalTensor.output.shape(config)) : nil)
    }
}

extension LlamaWeights {
    /// Number of weights, counting a tied head once.
    public var parameterCount: Int {
        let config = config
        let perLayer = LayerTensor.allCases.reduce(0) { $0 + $1.shape(config).reduce(1, *) }
        return tokenEmbedding.count + perLayer * layers.count + outputNorm.count + (output?.count ?? 0)
    }
}
