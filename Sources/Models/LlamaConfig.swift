/// Hyperparameters of a Llama-family decoder, named as in Hugging Face `config.json`.
public struct LlamaConfig: Sendable, Equatable, Codable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var ropeTheta: Float
    public var rmsNormEps: Float
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool

    public init(
        vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
        numKeyValueHeads: Int, ropeTheta: Float, rmsNormEps: Float, maxPositionEmbeddings: Int, tieWordEmbeddings: Bool
    ) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.ropeTheta = ropeTheta
        self.rmsNormEps = rmsNormEps
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings
    }

    public var headDim: Int { hiddenSize / numAttentionHeads }
    public var kvDim: Int { numKeyValueHeads * headDim }

    /// Checks the relations the forward pass relies on; `source` names the file for the error.
    public func validate(source: String) throws(ModelError) {
        let positive = [vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads, maxPositionEmbeddings]
        guard positive.allSatisfy({ $0 > 0 }) else {
            throw .invalidConfig(path: source, reason: "sizes must be positive: \(self)")
        }
        guard hiddenSize % numAttentionHeads == 0, headDim % 2 == 0 else {
            throw .invalidConfig(path: source, reason: "hidden size \(hiddenSize) must split into \(numAttentionHeads) heads of even width")
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw .invalidConfig(path: source, reason: "\(numAttentionHeads) query heads cannot be grouped over \(numKeyValueHeads) key/value heads")
        }
        guard ropeTheta > 0, rmsNormEps > 0 else {
            throw .invalidConfig(path: source, reason: "rope_theta and rms_norm_eps must be positive")
        }
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", ropeTheta = "rope_theta", rmsNormEps = "rms_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings", tieWordEmbeddings = "tie_word_embeddings"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        // HF defaults: no GQA, theta 10000, eps 1e-6, tied false.
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        ropeTheta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? 10000
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? 1e-6
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
    }
}
