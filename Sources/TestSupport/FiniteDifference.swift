import Kernels

/// Central-difference gradient checks for Float32 kernels. The scalar being differentiated is
/// accumulated in Double; with Float32 kernels a step of 1e-2 balances truncation against
/// rounding error (llama.cpp's test-backend-ops uses up to 1e-1 for the same reason).
public enum FiniteDifference {
    public static let step: Float = 1e-2

    /// Directional derivative of `f` at `x` along a random direction (entries in [-1, 1]):
    /// central differences at h and h/2 combined by Richardson extrapolation, (4·D(h/2) − D(h))/3,
    /// which cancels the h² error that dominates on sharply curved functions such as a random
    /// tiny Llama. Compare with ⟨analytic gradient, direction⟩.
    public static func directional(
        _ x: [Float], seed: UInt64, step: Float = step, _ f: ([Float]) throws -> Double
    ) rethrows -> (numeric: Double, direction: [Float]) {
        var random = SeededRandom(seed: seed)
        let direction = x.map { _ in random.uniform(-1, 1) }
        func central(_ h: Float) throws -> Double {
            let plus = zip(x, direction).map { $0 + h * $1 }
            let minus = zip(x, direction).map { $0 - h * $1 }
            return (try f(plus) - f(minus)) / (2 * Double(h))
        }
        return ((4 * (try central(step / 2)) - (try central(step))) / 3, direction)
    }

    public static func dot(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Σ weights · output in Double: a scalar loss whose gradient with respect to the output is `weights`.
    public static func weightedSum(_ output: [Float], _ weights: [Float]) -> Double { dot(output, weights) }

    public static func random(_ count: Int, seed: UInt64, range: Float = 1) -> [Float] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in random.uniform(-range, range) }
    }

    /// |numeric − analytic| / max(|numeric|, |analytic|, 1e-3)
    public static func relativeDifference(_ numeric: Double, _ analytic: Double) -> Double {
        abs(numeric - analytic) / max(abs(numeric), abs(analytic), 1e-3)
    }
}
