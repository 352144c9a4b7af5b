import Formats
import Kernels

extension LlamaWeights {
    /// Loads a llama.cpp GGUF model, dequantizing every tensor to Float32 and restoring HF row
    /// order for q/k (see `QKRowOrder`). `keepQuantized`: also keep a copy of the Q4_1/Q8_0
    /// blocks for the decode kernels; a process that only trains passes false and saves their
    /// memory (96 MB for SmolLM2), since training and `loss` read the Float32 weights alone.
    public convenience init(gguf: GGUFFile, keepQuantized: Bool = true) throws {
        let config = try LlamaConfig(gguf: gguf)
        let path = gguf.path
        var byName: [String: GGUFTensorInfo] = [:]
        for tensor in gguf.tensors { byName[tensor.name] = tensor }
        let weights = try LlamaWeights.load(config: config, hasOutput: byName["output.weight"] != nil) { global, layer, shape in
            let name = global?.ggufName ?? layer.map { $0.0.ggufName(layer: $0.1) } ?? ""
            guard let info = byName[name] else { throw ModelError.missingTensor(path: path, name: name) }
            // GGUF lists dimensions innermost first; HF outermost first.
            guard info.shape == shape.reversed() else {
                throw ModelError.wrongShape(path: path, name: name, expected: shape.reversed(), found: info.shape)
            }
            let values = try Self.dequantize(gguf, info)
            switch layer?.0 {
            case .q: return QKRowOrder.gguf.convert(values, to: .huggingFace, heads: config.numAttentionHeads, columns: shape[1])
            case .k: return QKRowOrder.gguf.convert(values, to: .huggingFace, heads: config.numKeyValueHeads, columns: shape[1])
            default: return values
            }
        }
        let layers = weights.layers.enumerated().map { index, layer in
            LayerWeights(
                layer.tensors,
                quantized: keepQuantized ? LayerTensor.allCases.map { tensor in
                    byName[tensor.ggufName(layer: index)].flatMap { info in
                        Self.quantized(gguf, info, qkHeads: tensor == .q ? config.numAttentionHeads : tensor == .k ? config.numKeyValueHeads : nil)
                    }
                } : [])
        }
        let head = byName[GlobalTensor.output.ggufName] ?? byName[GlobalTensor.tokenEmbedding.ggufName]
        self.init(
            config: config, tokenEmbedding: weights.tokenEmbedding, layers: layers,
            outputNorm: weights.outputNorm, output: weights.output,
            quantizedHead: keepQuantized ? head.flatMap { Self.quantized(gguf, $0, qkHeads: nil) } : nil)
    }

    /// A copy of a Q4_1 or Q8_0 matrix's blocks for the decode kernels (nil for other types),
    /// with q/k rows put in HF order like the Float32 copy.
    static func quantized(_ gguf: GGUFFile, _ info: GGUFTensorInfo, qkHeads: Int?) -> QuantizedMatrix? {
        let format: QuantizedMatrix.Format
        switch info.type {
        case .q4_1: format = .q4_1
        case .q8_0: format = .q8_0
        default: return nil
        }
        guard info.shape.count == 2 else { return nil }
        var bytes = gguf.withBytes(of: info) { Array($0) }
        if let heads = qkHeads {
            bytes = QKRowOrder.gguf.convert(bytes, to: .huggingFace, heads: heads, columns: bytes.count / info.shape[1])
        }
        return QuantizedMatrix(format: format, rows: info.shape[1], columns: info.shape[0], bytes: bytes)
    }

    /// One tensor as Float32, whatever its stored type.
    public static func dequantize(_ gguf: GGUFFile, _ info: GGUFTensorInfo) throws(ModelError) -> [Float] {
        let convert: (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void
        switch info.type {
        case .f32: convert = Dequantize.f32
        case .f16: convert = Dequantize.f16
        case .bf16: convert = Dequantize.bf16
        case .q4_0: convert = Dequantize.q4_0
        case .q4_1: convert = Dequantize.q4_1
        case .q8_0: convert = Dequantize.q8_0
        case .q4_K: convert = Dequantize.q4_K
        case .q6_K: convert = Dequantize.q6_K
        default: throw .unsupportedTensorType(path: gguf.path, name: info.name, type: info.type.description)
        }
        let count = info.elementCount
        return gguf.withBytes(of: info) { bytes in
            [Float](unsafeUninitializedCapacity: count) { out, initialized in
                // Rows are independent; split them across cores.
                let rowLength = info.shape[0]
                let rowBytes = rowLength / info.type.blockSize * info.type.bytesPerBlock
                let rows = count / rowLength
                let base = out.baseAddress!
                Parallel.forEach(rows, minimumPerThread: 64) { row in
                    convert(bytes.baseAddress! + row * rowBytes, rowLength, base + row * rowLength)
                }
                initialized = count
            }
        }
    }
}

extension LlamaConfig {
    /// Reads `llama.*` metadata (llama.cpp's key names).
    public init(gguf: GGUFFile) throws {
        let path = gguf.path
        let architecture = gguf.metadata["general.architecture"]?.string ?? "unknown"
        guard architecture == "llama" else { throw ModelError.unsupportedArchitecture(path: path, architecture: architecture) }
        let heads = try gguf.requiredInt("llama.attention.head_count")
        let vocabSize: Int
        if let size = gguf.metadata["llama.vocab_size"]?.int {
            vocabSize = size
        } else if let embedding = gguf.tensor(named: GlobalTensor.tokenEmbedding.ggufName), embedding.shape.count == 2 {
            vocabSize = embedding.shape[1]
        } else {
            throw GGUFError.missingKey(path: path, key: "llama.vocab_size")
        }
        self.init(
            vocabSize: vocabSize,
            hiddenSize: try gguf.requiredInt("llama.embedding_length"),
            intermediateSize: try gguf.requiredInt("llama.feed_forward_length"),
            numHiddenLayers: try gguf.requiredInt("llama.block_count"),
            numAttentionHeads: heads,
            numKeyValueHeads: gguf.metadata["llama.attention.head_count_kv"]?.int ?? heads,
            ropeTheta: Float(try gguf.optionalDouble("llama.rope.freq_base") ?? 10000),
            rmsNormEps: Float(try gguf.optionalDouble("llama.attention.layer_norm_rms_epsilon") ?? 1e-5),
            maxPositionEmbeddings: try gguf.requiredInt("llama.context_length"),
            tieWordEmbeddings: gguf.tensor(named: GlobalTensor.output.ggufName) == nil)
        try validate(source: path)
    }
}
