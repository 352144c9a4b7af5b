import Foundation

/// Learning rate per optimizer step: linear warm-up from 0, then constant, linear decay to 0,
/// or cosine decay to 0 (transformers' `get_*_schedule_with_warmup`).
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public enum Shape: String, Sendable, Codable, CaseIterable {
        case constant, linear, cosine
    }

    public var peak: Float
    public var shape: Shape
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Float, shape: Shape = .constant, warmupSteps: Int = 0, totalSteps: Int) {
        self.peak = peak
        self.shape = shape
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The rate for optimizer step `step` (counting from 1).
    public func rate(at step: Int) -> Float {
        let s = step - 1
        if s < warmupSteps { return peak * Float(s + 1) / Float(warmupSteps + 1) }
        let decaySteps = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(s - warmupSteps) / Double(decaySteps))
        switch shape {
        case .constant: return peak
        case .linear: return peak * Float(1 - progress)
        case .cosine: return peak * Float(0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}
