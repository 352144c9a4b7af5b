import Kernels

/// What the backward pass needs from one layer's forward, named for the op that produced it.
/// All [N, ·] with N = batch × tokens.
struct LayerActivations {
    /// Layer input (residual stream): [N, C]
    let input: [Float]
    /// [N, C] and its reciprocal RMS [N]
    let attnNorm: [Float], attnRstd: [Float]
    /// After RoPE: [N, H·D], [N, Hkv·D]; v: [N, Hkv·D]
    let q: [Float], k: [Float], v: [Float]
    /// Attention output before o_proj: [N, H·D]
    let attnOut: [Float]
    /// Residual stream after the attention block: [N, C]
    let afterAttention: [Float]
    /// [N, C], [N]
    let ffnNorm: [Float], ffnRstd: [Float]
    /// [N, F] each
    let gate: [Float], up: [Float], swiglu: [Float]
    let lora: LoRAActivations
    /// Softmax probabilities per sequence and head: [B, H, T, T]
    let probabilities: [Float]
}

/// Per adapted projection (indexed like `LayerTensor.allCases`): u = x·Aᵀ [N, R] and, with
/// dropout, the mask applied to x [N, in] (entries 0 or 1/(1−p)).
struct LoRAActivations {
    var u: [[Float]?] = Array(repeating: nil, count: LayerTensor.allCases.count)
    var masks: [[Float]?] = Array(repeating: nil, count: LayerTensor.allCases.count)
}

/// Inverted dropout on the LoRA input, as `torch.nn.Dropout` in PEFT's `lora_dropout`.
final class LoRADropout {
    let probability: Float
    private var random: SeededRandom

    init(probability: Float, seed: UInt64) {
        self.probability = probability
        random = SeededRandom(seed: seed)
    }

    func mask(count: Int) -> [Float] {
        let keep = 1 / (1 - probability)
        return (0..<count).map { _ in Float(random.nextDouble()) < probability ? 0 : keep }
    }
}

/// Everything one training forward keeps for its backward.
final class TrainingActivations {
    var layers: [LayerActivations] = []
    let dropout: LoRADropout?
    /// Set by the attention of the layer being run, moved into its `LayerActivations`.
    var pendingProbabilities: [Float] = []

    init(dropout: LoRADropout?) {
        self.dropout = dropout
    }
}
