import Foundation

public enum Softmax {
    /// In place over one row: x: [N]. The max is subtracted first so exp never overflows.
    public static func forward(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var maximum = -Float.infinity
        for i in 0..<count { maximum = max(maximum, x[i]) }
        // The sum runs in Double: over a 49,152-entry vocabulary a Float sum drifts by ~1e-5.
        var sum: Double = 0
        for i in 0..<count {
            let e = expf(x[i] - maximum)
            x[i] = e
            sum += Double(e)
        }
        let inverse = Float(1 / sum)
        for i in 0..<count { x[i] *= inverse }
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
