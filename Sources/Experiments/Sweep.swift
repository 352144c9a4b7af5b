import Foundation
import Inference
import LoRA
import Registry
import Training

/// Trains and evaluates every point of a grid, one after the other, recording each run and
/// evaluation in the registry. Resumable: a point whose adapter is registered is not trained
/// again (nor evaluated again when its metrics on this set are recorded), and a point that was
/// interrupted continues from its last checkpoint.
public struct Sweep: Sendable {
    public let grid: SweepGrid
    /// Adapter names are the prefix followed by the point's values.
    public let prefix: String
    public let data: String
    /// The configuration every point starts from before its grid values are applied.
    public let lora: LoRAConfig
    public let options: TrainingOptions
    /// The split (or file) each adapter is scored on: validation data, so the test split stays unseen.
    public let evaluationSet: EvaluationSet
    public let modelPath: String

    public init(
        grid: SweepGrid, prefix: String, data: String, lora: LoRAConfig, options: TrainingOptions, evaluationSet: EvaluationSet,
        modelPath: String
    ) {
        self.grid = grid
        self.prefix = prefix
        self.data = data
        self.lora = lora
        self.options = options
        self.evaluationSet = evaluationSet
        self.modelPath = modelPath
    }

    /// A finished point.
    public struct Entry: Sendable {
        public var point: SweepPoint
        public var adapter: AdapterRecord
        public var metrics: [String: Double]
        public var trainSeconds: Double
        public var tokensPerSecond: Double
        /// Whether this run reused an earlier run's adapter.
        public var reused: Bool
    }

    public enum Event: Sendable {
        case starting(index: Int, total: Int, name: String, point: SweepPoint)
        case reusing(name: String, reference: String)
        case resuming(name: String, checkpoint: String)
        case training(TrainingEvent)
        case evaluating(Evaluator.Progress)
        case finished(Entry)
    }

    public enum Outcome: Sendable {
        case completed([Entry])
        /// Stopped on request; the interrupted point's checkpoint is where the next run resumes.
        case interrupted([Entry])
    }

    public func run(
        languageModel: LanguageModel, store: AdapterStore, evaluator: Evaluator, onEvent: (Event) -> TrainingDecision = { _ in .proceed }
    ) throws -> Outcome {
        let base = try store.baseModel(path: modelPath, config: languageModel.model.config)
        var entries: [Entry] = []
        let points = grid.points
        for (index, point) in points.enumerated() {
            let name = point.name(prefix: prefix)
            guard AdapterRegistry.isValidName(name) else { throw RegistryError.invalidName(name) }
            _ = onEvent(.starting(index: index, total: points.count, name: name, point: point))
            var lora = lora
            var options = options
            try point.apply(to: &lora, &options)

            var record = try store.registry.adapters(name: name, baseModelId: base.id).first
            let reused = record != nil
            if let record { _ = onEvent(.reusing(name: name, reference: record.reference)) }
            if record == nil {
                let folder = "\(store.root)/.runs/\(name)"
                let checkpoint = try Self.latestCheckpoint(in: "\(folder)/checkpoints").map { path in
                    _ = onEvent(.resuming(name: name, checkpoint: path))
                    return try Checkpoint.load(from: path, for: languageModel.model.config)
                }
                let job = TrainingJob(
                    data: data, lora: lora, options: options, name: name, folder: folder, modelPath: modelPath,
                    tags: ["sweep:\(prefix)"], description: "lora sweep \(prefix): \(point.label)")
                let outcome = try job.run(languageModel: languageModel, store: store, resume: checkpoint, onEvent: { event, _ in
                    onEvent(.training(event))
                })
                if outcome.report.interrupted { return .interrupted(entries) }
                record = outcome.record
                try? FileManager.default.removeItem(atPath: folder)
            }
            guard let record else { continue }

            var metrics = try evaluationSet.recorded(adapter: record, base: base, in: store.registry)
            if metrics.isEmpty {
                let adapter = try store.load(record.reference, for: base, config: languageModel.model.config)
                let result = try evaluator.evaluate(
                    evaluationSet.records, path: evaluationSet.path, adapters: adapter.layers, onProgress: { _ = onEvent(.evaluating($0)) })
                try evaluationSet.record(result, adapter: record, base: base, in: store.registry)
                metrics = Dictionary(result.metrics, uniquingKeysWith: { $1 })
            }
            let run = try store.registry.runs(adapterId: record.id ?? -1).last { $0.status == .completed }
            let entry = Entry(
                point: point, adapter: record, metrics: metrics, trainSeconds: run?.seconds ?? 0, tokensPerSecond: run?.tokensPerSecond ?? 0,
                reused: reused)
            entries.append(entry)
            _ = onEvent(.finished(entry))
        }
        return .completed(entries)
    }

    /// The newest `step-NNNNNN` folder, if a previous run of this point was interrupted.
    static func latestCheckpoint(in directory: String) throws -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        return names.filter { $0.hasPrefix("step-") }.sorted().last.map { "\(directory)/\($0)" }
    }
}

extension Sweep.Entry {
    /// Better first: higher exact match, then lower loss.
    public static func ranked(_ entries: [Sweep.Entry]) -> [Sweep.Entry] {
        entries.sorted { a, b in
            let (ma, mb) = (a.metrics["exact_match"] ?? -1, b.metrics["exact_match"] ?? -1)
            if ma != mb { return ma > mb }
            return (a.metrics["loss"] ?? .infinity) < (b.metrics["loss"] ?? .infinity)
        }
    }
}
