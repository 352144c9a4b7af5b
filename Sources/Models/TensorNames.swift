/// The one table that maps file tensor names to model fields, for GGUF (llama.cpp names) and
/// Hugging Face safetensors, with the shapes each must have (HF `[out, in]` order).
public enum LayerTensor: CaseIterable, Sendable {
    case attnNorm, q, k, v, o, ffnNorm, gate, up, down

    public func ggufName(layer: Int) -> String {
        let suffix = switch self {
        case .attnNorm: "attn_norm"
        case .q: "attn_q"
        case .k: "attn_k"
        case .v: "attn_v"
        case .o: "attn_output"
        case .ffnNorm: "ffn_norm"
        case .gate: "ffn_gate"
        case .up: "ffn_up"
        case .down: "ffn_down"
        }
        return "blk.\(layer).\(suffix).weight"
    }

    public func huggingFaceName(layer: Int) -> String {
        let suffix = switch self {
        case .attnNorm: "input_layernorm"
        case .q: "self_attn.q_proj"
        case .k: "self_attn.k_proj"
        case .v: "self_attn.v_proj"
        case .o: "self_attn.o_proj"
        case .ffnNorm: "post_attention_layernorm"
        case .gate: "mlp.gate_proj"
        case .up: "mlp.up_proj"
        case .down: "mlp.down_proj"
        }
        return "model.layers.\(layer).\(suffix).weight"
    }

    /// `[out, in]` for matrices, `[C]` for norms.
    public func shape(_ config: LlamaConfig) -> [Int] {
        let C = config.hiddenSize, F = config.intermediateSize
        let qDim = config.numAttentionHeads * config.headDim
        return switch self {
        case .attnNorm, .ffnNorm: [C]
        case .q: [qDim, C]
        case .k, .v: [config.kvDim, C]
        case .o: [C, qDim]
        case .gate, .up: [F, C]
        case .down: [C, F]
        }
    }
}

public enum GlobalTensor: CaseIterable, Sendable {
    case tokenEmbedding, outputNorm, output

    public var ggufName: String {
        switch self {
        case .tokenEmbedding: "token_embd.weight"
        case .outputNorm: "output_norm.weight"
        case .output: "output.weight"
        }
    }

    public var huggingFaceName: String {
        switch self {
        case .tokenEmbedding: "model.embed_tokens.weight"
        case .outputNorm: "model.norm.weight"
        case .output: "lm_head.weight"
        }
    }

    public func shape(_ config: LlamaConfig) -> [Int] {
        switch self {
        case .tokenEmbedding, .output: [config.vocabSize, config.hiddenSize]
        case .outputNorm: [config.hiddenSize]
        }
    }
}

/// llama.cpp's converter reorders the rows of attn_q/attn_k within each head so that RoPE
/// rotates adjacent pairs: GGUF row `h·D + 2i + j` is HF row `h·D + j·D/2 + i`. The GGUF loader
/// restores HF order, so GGUF and safetensors weights (and PEFT adapters) all use rotate-half RoPE.
public enum QKRowOrder: Sendable {
    case gguf, huggingFace

    /// Reorders the rows of `matrix` ([heads · D, columns] elements of any kind: floats, or the
    /// bytes of quantized rows) from `self`'s order to `target`'s.
    public func convert<Element>(_ matrix: [Element], to target: QKRowOrder, heads: Int, columns: Int) -> [Element] {
        guard self != target else { return matrix }
        let D = matrix.count / columns / heads
        var out = matrix
        for h in 0..<heads {
            for i in 0..<(D / 2) {
                for j in 0..<2 {
                    let ggufRow = (h * D + 2 * i + j) * columns
                    let hfRow = (h * D + j * D / 2 + i) * columns
                    let (source, destination) = self == .gguf ? (ggufRow, hfRow) : (hfRow, ggufRow)
                    out[destination..<(destination + columns)] = matrix[source..<(source + columns)]
                }
            }
        }
        return out
    }
}
