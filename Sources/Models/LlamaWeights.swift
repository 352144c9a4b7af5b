import Kernels

/// One decoder layer's frozen weights, Float32, matrices in HF `[out, in]` row-major layout
/// with q/k rows in HF order (rotate-half RoPE).
public struct LayerWeights: Sendable {
    let tensors: [[Float]]
    /// The same matrices in their GGUF block format where a decode kernel exists for it.
    let quantized: [QuantizedMatrix?]

    /// `tensors` (and `quantized`, if given) in `LayerTensor.allCases` order.
    public init(_ tensors: [[Float]], quantized: [QuantizedMatrix?] = []) {
        precondition(tensors.count == LayerTensor.allCases.count)
        precondition(quantized.isEmpty || quantized.count == tensors.count)
        self.tensors = tensors
        self.quantized = quantized.isEmpty ? Array(repeating: nil, count: tensors.count) : quantized
    }

    public subscript(_ tensor: LayerTensor) -> [Float] {
        tensors[tensor.index]
    }

    public func quantized(_ tensor: LayerTensor) -> QuantizedMatrix? {
        quantized[tensor.index]
    }
}

extension LayerTensor {
    var index: Int { LayerTensor.allCases.firstIndex(of: self)! }
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
    /// The head in its GGUF block format, for decoding.
    public let quantizedHead: QuantizedMatrix?
    /// Finds greedy decoding's next token without the full logits, when the head is Q8_0 and the
    /// CPU has AVX-512 VNNI (32 MB beside the head's blocks).
    public let argmaxScreen: ArgmaxScreen?

    public init(
        config: LlamaConfig, tokenEmbedding: [Float], layers: [LayerWeights], outputNorm: [Float], output: [Float]?,
        quantizedHead: QuantizedMatrix? = nil
    ) {
        self.config = config
        self.tokenEmbedding = tokenEmbedding
        self.layers = layers
        self.outputNorm = outputNorm
        self.output = output
        self.quantizedHead = quantizedHead
        argmaxScreen = quantizedHead.flatMap { ArgmaxScreen($0) }
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

extension LlamaWeights {
    /// Weight bytes one decode step reads: quantized blocks where the decode kernels use them,
    /// Float32 elsewhere. Decode speed is bounded by memory bandwidth / this.
    public var decodeBytesPerToken: Int {
        var bytes = outputNorm.count * 4
        for layer in layers {
            for tensor in LayerTensor.allCases {
                bytes += layer.quantized(tensor)?.bytes.count ?? layer[tensor].count * 4
            }
        }
        return bytes + (quantizedHead?.bytes.count ?? head.count * 4)
    }
}
