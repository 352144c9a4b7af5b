import CKernels
import Foundation

public enum Softmax {
    /// In place over one row: x: [N]. The max is subtracted first so exp never overflows; the
    /// sum runs in Double (over a 49,152-entry vocabulary a Float sum drifts by ~1e-5).
    public static func forward(_ x: UnsafeMutablePointer<Float>, count: Int) {
        vm_softmax(x, Int32(count))
    }

    /// Given p = softmax(z) and dP (overwritten): dZ = p ⊙ (dP − Σ p·dP) · scale.
    /// p, dP: [N]
    public static func backward(probabilities p: UnsafePointer<Float>, _ dP: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
        vm_softmax_backward(p, dP, Int32(count), scale)
    }

    /// log(Σ exp(x)) over one row, in Double, as the fixtures record it.
    public static func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var maximum = -Float.infinity
        for i in 0..<count { maximum = max(maximum, x[i]) }
        var sum: Double = 0
        for i in 0..<count { sum += exp(Double(x[i] - maximum)) }
        return Double(maximum) + log(sum)
    }
}
