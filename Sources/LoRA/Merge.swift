import Kernels
import Models

extension LlamaWeights {
    /// A copy of the weights with the adapter folded in, W' = W + scale·B·A (PEFT
    /// `merge_and_unload`). Merged projections drop their quantized decode copy, which no longer
    /// matches; the base itself is not modified.
    public func merging(_ adapter: LoRAAdapter) -> LlamaWeights {
        applying(adapter, sign: 1)
    }

    /// The inverse of `merging`: W = W' − scale·B·A (equal to the base up to float rounding).
    public func unmerging(_ adapter: LoRAAdapter) -> LlamaWeights {
        applying(adapter, sign: -1)
    }

    private func applying(_ adapter: LoRAAdapter, sign: Float) -> LlamaWeights {
        let merged = layers.enumerated().map { l, layer -> LayerWeights in
            let lora = l < adapter.layers.count ? adapter.layers[l] : LayerAdapters()
            var tensors: [[Float]] = []
            var quantized: [QuantizedMatrix?] = []
            for tensor in LayerTensor.allCases {
                guard let pair = lora[tensor] else {
                    tensors.append(layer[tensor])
                    quantized.append(layer.quantized(tensor))
                    continue
                }
                var w = layer[tensor]
                let out = pair.outFeatures, input = pair.inFeatures
                // W[out, in] += sign · scale · B[out, R] · A[R, in]
                MatMul.forward(pair.b, transposed(pair.a, rows: pair.rank, columns: input), &w, T: out, K: pair.rank, N: input, accumulate: true, alpha: sign * pair.scale)
                tensors.append(w)
                quantized.append(nil)
            }
            return LayerWeights(tensors, quantized: quantized)
        }
        return LlamaWeights(
            config: config, tokenEmbedding: tokenEmbedding, layers: merged, outputNorm: outputNorm, output: output,
            quantizedHead: quantizedHead)
    }

    private func transposed(_ m: [Float], rows: Int, columns: Int) -> [Float] {
        var t = [Float](repeating: 0, count: m.count)
        for r in 0..<rows { for c in 0..<columns { t[c * rows + r] = m[r * columns + c] } }
        return t
    }
}
