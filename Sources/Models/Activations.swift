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

/// Inverted dropout on the LoRA input, as `torch.nn.Dropout` in PEFT's `lora_dropout`. Each
/// (layer, projection) mask is a function of the seed alone, so a recomputed forward
/// (activation checkpointing) draws exactly the masks of the original one.
struct LoRADropout {
    let probability: Float
    let seed: UInt64

    func mask(layer: Int, tensor: LayerTensor, count: Int) -> [Float] {
        var random = SeededRandom(seed: seed &+ UInt64(layer * LayerTensor.allCases.count + tensor.index) &* 0x9E37_79B9_7F4A_7C15)
        let keep = 1 / (1 - probability)
        return (0..<count).map { _ in Float(random.nextDouble()) < probability ? 0 : keep }
    }
}

/// Everything one training forward keeps for its backward. With `checkpointed`, only each
/// layer's input is kept and the backward recomputes the rest one layer at a time.
final class TrainingActivations {
    var layers: [LayerActivations] = []
    /// Layer inputs [N, C] when checkpointed.
    var inputs: [[Float]] = []
    let dropout: LoRADropout?
    let checkpointed: Bool
    /// Set by the attention of the layer being run, moved into its `LayerActivations`.
    var pendingProbabilities: [Float] = []

    init(dropout: LoRADropout?, checkpointed: Bool = false) {
        self.dropout = dropout
        self.checkpointed = checkpointed
    }

    /// Whether the layer being run must keep everything (not just its input).
    var keepsEverything: Bool { !checkpointed }
}
