import Foundation

/// torch.optim.AdamW, step for step: decoupled weight decay p ← p·(1 − lr·λ), then
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
public struct AdamW: Sendable, Equatable {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// One update of `parameters` in place; `step` counts from 1.
    /// parameters, gradients, m, v: [count]
    public func update(
        _ parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
        v: UnsafeMutablePointer<Float>, count: Int, step: Int, learningRate: Float
    ) {
        // Bias corrections in Double, as torch computes them from Python floats.
        let correction1 = 1 - pow(Double(beta1), Double(step))
        let correction2Root = Float((1 - pow(Double(beta2), Double(step))).squareRoot())
        let stepSize = Float(Double(learningRate) / correction1)
        let decay = 1 - learningRate * weightDecay
        for i in 0..<count {
            let g = gradients[i]
            parameters[i] *= decay
            m[i] += (g - m[i]) * (1 - beta1)
            v[i] = v[i] * beta2 + (1 - beta2) * g * g
            parameters[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2Root + epsilon)
        }
    }
}
