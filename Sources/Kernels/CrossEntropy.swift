import CKernels

/// Next-token cross-entropy as Hugging Face's causal-LM loss: logits at position t are scored
/// against the label at t + 1; labels of -100 are ignored; the mean is over scored positions.
public enum CrossEntropy {
    public static let ignoreIndex = -100

    /// For one block of rows: returns Σ −log p(target) over rows whose target is not ignored, and
    /// overwrites logits with dLoss/dLogits = (softmax − onehot) · gradientScale (0 for ignored
    /// rows). logits: [T, V]  targets: [T]
    public static func forwardBackward(
        logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int>, T: Int, V: Int, gradientScale: Float
    ) -> Double {
        var losses = [Double](repeating: 0, count: T)
        losses.withUnsafeMutableBufferPointer { losses in
            let losses = losses.baseAddress!
            Parallel.forEach(T) { t in
                let row = logits + t * V
                let target = targets[t]
                guard target != ignoreIndex else {
                    row.update(repeating: 0, count: V)
                    return
                }
                // One exp per entry gives both log Σ exp (accumulated in double) and the softmax.
                losses[t] = vm_cross_entropy_row(row, Int32(V), Int32(target), gradientScale)
            }
        }
        return losses.reduce(0, +)
    }
}
