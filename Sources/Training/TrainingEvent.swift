import Foundation

/// What the trainer reports while it runs; the CLI renders these, tests and benchmarks read them.
public enum TrainingEvent: Sendable, CustomStringConvertible {
    case step(StepReport)
    case validation(iteration: Int, loss: Double, perplexity: Double)
    case checkpoint(iteration: Int, path: String)
    case finished(TrainingReport)

    public var description: String {
        switch self {
        case .step(let r):
            "step \(r.iteration)/\(r.totalIterations) loss \(format(r.loss)) lr \(r.learningRate) \(Int(r.tokensPerSecond)) tok/s"
        case .validation(let iteration, let loss, let perplexity):
            "step \(iteration) validation loss \(format(loss)) perplexity \(format(perplexity))"
        case .checkpoint(let iteration, let path):
            "step \(iteration) checkpoint saved to \(path)"
        case .finished(let report):
            "finished after \(report.steps) steps: train loss \(report.finalTrainLoss.map(format) ?? "-"), validation loss \(report.finalValidLoss.map(format) ?? "-")"
        }
    }
}

/// Whether training goes on after an event (the CLI returns `.stop` on Ctrl-C).
public enum TrainingDecision: Sendable {
    case proceed, stop
}

public struct StepReport: Sendable, Codable, Equatable {
    public let iteration: Int
    public let totalIterations: Int
    /// Mean loss per scored token over the steps since the last report.
    public let loss: Double
    public let learningRate: Float
    public let gradientNorm: Double
    /// Tokens (batch × padded length) processed per second since the last report.
    public let tokensPerSecond: Double
    public let elapsedSeconds: Double
}

public struct TrainingReport: Sendable, Codable, Equatable {
    public var steps: Int
    public var interrupted: Bool
    public var finalTrainLoss: Double?
    public var finalValidLoss: Double?
    public var finalValidPerplexity: Double?
    public var trainedTokens: Int
    public var seconds: Double
    public var tokensPerSecond: Double
    /// (step, mean train loss) at every report.
    public var lossCurve: [[Double]]
    /// (step, validation loss) at every evaluation.
    public var validationCurve: [[Double]]
}

func format(_ x: Double) -> String {
    String(format: "%.4f", x)
}
