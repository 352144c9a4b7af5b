import LoRA
import Models
import Training

/// A hyperparameter grid from `--grid key=v1,v2` arguments; its points are every combination,
/// the first axis varying slowest.
public struct SweepGrid: Sendable, Equatable {
    public struct Axis: Sendable, Equatable {
        public let key: String
        public let values: [String]
    }

    public let axes: [Axis]

    /// The keys a grid can vary, spelled as `lora train`'s flags (`lr` is `--learning-rate`).
    public static let keys = [
        "rank", "alpha", "dropout", "targets", "layers", "lr", "iters", "batch-size", "max-seq-length", "schedule", "warmup",
        "weight-decay", "seed",
    ]

    public init(_ specs: [String]) throws(SweepError) {
        var axes: [Axis] = []
        for spec in specs {
            let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw .badGrid(spec, reason: "expected key=value1,value2,...") }
            let key = parts[0] == "learning-rate" ? "lr" : parts[0]
            guard Self.keys.contains(key) else { throw .badGrid(spec, reason: "unknown key '\(key)' (one of \(Self.keys.joined(separator: ", ")))") }
            guard !axes.contains(where: { $0.key == key }) else { throw .badGrid(spec, reason: "'\(key)' is given twice") }
            // `targets` values are letters (qv) or `all`: commas separate grid values, '+' joins PEFT names.
            let values = parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !values.isEmpty, Set(values).count == values.count else { throw .badGrid(spec, reason: "values must be distinct and non-empty") }
            axes.append(Axis(key: key, values: values))
        }
        self.axes = axes
        for point in points {
            var lora = LoRAConfig(rank: 1, alpha: 1, targets: LayerTensor.projections)
            var options = TrainingOptions()
            try point.apply(to: &lora, &options)
        }
    }

    public var points: [SweepPoint] {
        axes.reduce([SweepPoint(values: [])]) { points, axis in
            points.flatMap { point in axis.values.map { SweepPoint(values: point.values + [(axis.key, $0)]) } }
        }
    }
}

/// One combination of grid values.
public struct SweepPoint: Sendable {
    public let values: [(key: String, value: String)]

    /// The adapter name: the prefix and each key=value, e.g. `dates-rank8-targetsqv-lr3e-4`.
    public func name(prefix: String) -> String {
        ([prefix] + values.map { key, value in
            key.replacingOccurrences(of: "-", with: "") + value.map { "+,".contains($0) ? "_" : $0 }.reduce("") { $0 + String($1) }
        }).joined(separator: "-")
    }

    public var label: String { values.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }

    /// Sets this point's values on the sweep's common configuration.
    public func apply(to lora: inout LoRAConfig, _ options: inout TrainingOptions) throws(SweepError) {
        for (key, value) in values {
            func number<T: LosslessStringConvertible>(_: T.Type) throws(SweepError) -> T {
                guard let parsed = T(value) else { throw .badGrid("\(key)=\(value)", reason: "'\(value)' is not a number") }
                return parsed
            }
            switch key {
            case "rank": lora.rank = try number(Int.self)
            case "alpha": lora.alpha = try number(Float.self)
            case "dropout": lora.dropout = try number(Float.self)
            case "targets":
                do { lora.targets = try LoRAConfig.parseTargets(value.replacingOccurrences(of: "+", with: ",")) } catch {
                    throw .badGrid("targets=\(value)", reason: error.description)
                }
            case "layers":
                var layers: [Int] = []
                for part in value.split(separator: "+") {
                    guard let layer = Int(part), layer >= 0 else { throw .badGrid("layers=\(value)", reason: "layers are joined by '+', e.g. 0+1+2") }
                    layers.append(layer)
                }
                lora.layers = layers
            case "lr": options.learningRate = try number(Float.self)
            case "iters": options.iterations = try number(Int.self)
            case "batch-size": options.batchSize = try number(Int.self)
            case "max-seq-length": options.maxSeqLength = try number(Int.self)
            case "warmup": options.warmupSteps = try number(Int.self)
            case "weight-decay": options.weightDecay = try number(Float.self)
            case "seed": options.seed = try number(UInt64.self)
            case "schedule":
                guard let shape = LearningRateSchedule.Shape(rawValue: value) else {
                    throw .badGrid("schedule=\(value)", reason: "constant, linear or cosine")
                }
                options.schedule = shape
            default: throw .badGrid("\(key)=\(value)", reason: "unknown key")
            }
        }
        guard lora.rank >= 1, lora.alpha > 0, (0..<1).contains(lora.dropout), options.learningRate > 0, options.iterations >= 1,
            options.batchSize >= 1, options.maxSeqLength >= 2, options.warmupSteps >= 0, options.weightDecay >= 0
        else { throw .badGrid(label, reason: "a value is out of range (rank ≥ 1, alpha > 0, 0 ≤ dropout < 1, lr > 0, iters ≥ 1, ...)") }
    }
}

public enum SweepError: Error, CustomStringConvertible, Equatable {
    case badGrid(String, reason: String)

    public var description: String {
        switch self {
        case .badGrid(let spec, let reason): "--grid \(spec): \(reason)"
        }
    }
}
