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
                let targetLogit = row[target]
                // One exp per entry: the same exponentials give log Σ exp (in Double) and softmax.
                var maximum = -Float.infinity
                for v in 0..<V { maximum = max(maximum, row[v]) }
                var sum: Double = 0
                for v in 0..<V {
                    let e = expf(row[v] - maximum)
                    row[v] = e
                    sum += Double(e)
                }
                losses[t] = Double(maximum) + log(sum) - Double(targetLogit)
                let scale = Float(Double(gradientScale) / sum)
                for v in 0..<V { row[v] *= scale }
                row[target] -= gradientScale
            }
        }
        return losses.reduce(0, +)
    }
}
