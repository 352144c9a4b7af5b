/// Tolerances from the fixtures' README. They are never widened to make a failure pass.
public enum Tolerance {
    /// Logits and logsumexp, absolute.
    public static let logits: Float = 2e-3
    /// Losses, relative.
    public static let loss: Double = 1e-4
    /// ‖g − g_ref‖ / ‖g_ref‖ per gradient tensor.
    public static let loraGradient: Double = 1e-3
}

/// Largest absolute difference and where it is, for messages that show the first mismatches.
public func maxAbsDifference(_ a: [Float], _ b: [Float]) -> (value: Float, index: Int) {
    precondition(a.count == b.count, "lengths differ: \(a.count) vs \(b.count)")
    var worst: (Float, Int) = (0, 0)
    for i in a.indices where abs(a[i] - b[i]) > worst.0 || a[i].isNaN != b[i].isNaN {
        worst = (a[i].isNaN || b[i].isNaN ? .infinity : abs(a[i] - b[i]), i)
    }
    return worst
}
