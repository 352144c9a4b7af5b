import Foundation

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
        var loss: Double = 0
        for t in 0..<T {
            let row = logits + t * V
            let target = targets[t]
            guard target != ignoreIndex else {
                row.update(repeating: 0, count: V)
                continue
            }
            loss += Softmax.logSumExp(row, count: V) - Double(row[target])
            Softmax.forward(row, count: V)
            for v in 0..<V { row[v] *= gradientScale }
            row[target] -= gradientScale
        }
        return loss
    }
}
