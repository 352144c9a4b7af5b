import Foundation
import Formats
import Kernels
import Models

/// A random Llama small enough for exhaustive tests, writable as GGUF and as a Hugging Face
/// folder so both loaders can be checked against the same weights.
public enum TinyLlama {
    public static let config = LlamaConfig(
        vocabSize: 64, hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 2, numAttentionHeads: 4,
        numKeyValueHeads: 2, ropeTheta: 10000, rmsNormEps: 1e-5, maxPositionEmbeddings: 64, tieWordEmbeddings: true)

    public static func random(seed: UInt64, config: LlamaConfig = config) -> LlamaWeights {
        var rng = SeededRandom(seed: seed)
        func tensor(_ shape: [Int], norm: Bool = false) -> [Float] {
            (0..<shape.reduce(1, *)).map { _ in norm ? rng.uniform(0.8, 1.2) : rng.uniform(-0.5, 0.5) }
        }
        let layers = (0..<config.numHiddenLayers).map { _ in
            LayerWeights(LayerTensor.allCases.map { tensor($0.shape(config), norm: $0 == .attnNorm || $0 == .ffnNorm) })
        }
        return LlamaWeights(
            config: config, tokenEmbedding: tensor(GlobalTensor.tokenEmbedding.shape(config)), layers: layers,
            outputNorm: tensor([config.hiddenSize], norm: true),
            output: config.tieWordEmbeddings ? nil : tensor(GlobalTensor.output.shape(config)))
    }

    /// The weights as llama.cpp's converter writes them: F32, GGUF names, q/k rows permuted.
    public static func gguf(_ weights: LlamaWeights, extraMetadata: [(String, GGUFValue)] = []) -> GGUFBuilder {
        let config = weights.config
        var builder = GGUFBuilder()
        builder.metadata = [
            ("general.architecture", .string("llama")),
            ("llama.block_count", .uint32(UInt32(config.numHiddenLayers))),
            ("llama.context_length", .uint32(UInt32(config.maxPositionEmbeddings))),
            ("llama.embedding_length", .uint32(UInt32(config.hiddenSize))),
            ("llama.feed_forward_length", .uint32(UInt32(config.intermediateSize))),
            ("llama.attention.head_count", .uint32(UInt32(config.numAttentionHeads))),
            ("llama.attention.head_count_kv", .uint32(UInt32(config.numKeyValueHeads))),
            ("llama.rope.freq_base", .float32(config.ropeTheta)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(config.rmsNormEps)),
        ] + extraMetadata
        func add(_ name: String, _ shape: [Int], _ values: [Float]) {
            builder.add(name, shape: shape.reversed(), floats: values)
        }
        add(GlobalTensor.tokenEmbedding.ggufName, GlobalTensor.tokenEmbedding.shape(config), weights.tokenEmbedding)
        for (index, layer) in weights.layers.enumerated() {
            for tensor in LayerTensor.allCases {
                let shape = tensor.shape(config)
                var values = layer[tensor]
                if tensor == .q || tensor == .k {
                    let heads = tensor == .q ? config.numAttentionHeads : config.numKeyValueHeads
                    values = QKRowOrder.huggingFace.convert(values, to: .gguf, heads: heads, columns: shape[1])
                }
                add(tensor.ggufName(layer: index), shape, values)
            }
        }
        add(GlobalTensor.outputNorm.ggufName, [config.hiddenSize], weights.outputNorm)
        if let output = weights.output { add(GlobalTensor.output.ggufName, GlobalTensor.output.shape(config), output) }
        return builder
    }

    /// Writes a Hugging Face folder (config.json + two safetensors shards + index).
    public static func writeHuggingFaceFolder(_ weights: LlamaWeights, to folder: String) throws {
        let config = weights.config
        var tensors: [(String, [Int], [Float])] = [
            (GlobalTensor.tokenEmbedding.huggingFaceName, GlobalTensor.tokenEmbedding.shape(config), weights.tokenEmbedding),
            (GlobalTensor.outputNorm.huggingFaceName, [config.hiddenSize], weights.outputNorm),
        ]
        if let output = weights.output { tensors.append((GlobalTensor.output.huggingFaceName, GlobalTensor.output.shape(config), output)) }
        for (index, layer) in weights.layers.enumerated() {
            for tensor in LayerTensor.allCases {
                tensors.append((tensor.huggingFaceName(layer: index), tensor.shape(config), layer[tensor]))
            }
        }
        var shards = [SafetensorsWriter(metadata: ["format": "pt"]), SafetensorsWriter(metadata: ["format": "pt"])]
        var weightMap: [String: String] = [:]
        for (i, (name, shape, values)) in tensors.enumerated() {
            shards[i % 2].add(name, shape: shape, values: values)
            weightMap[name] = "model-0000\(i % 2 + 1)-of-00002.safetensors"
        }
        for (i, shard) in shards.enumerated() { try shard.write(to: "\(folder)/model-0000\(i + 1)-of-00002.safetensors") }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": [:] as [String: String], "weight_map": weightMap])
        try index.write(to: URL(fileURLWithPath: "\(folder)/model.safetensors.index.json"))
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any] ?? [:]
        json["model_type"] = "llama"
        json["architectures"] = ["LlamaForCausalLM"]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: "\(folder)/config.json"))
    }
}
