import Foundation
import Registry
import Training

/// Mirrors a training run into the registry while it runs (status, steps, curves), so other
/// processes see it; registry failures are reported once and never stop training.
public final class RunRecorder {
    public let store: AdapterStore
    public let datasetSHA256: String?
    private var run: TrainingRunRecord
    private var warned = false

    public init(store: AdapterStore, name: String, options: TrainingOptions, data: String) throws {
        self.store = store
        datasetSHA256 = try? Hashing.sha256(file: data)
        let hyperparameters = String(decoding: try JSONEncoder.sorted.encode(options), as: UTF8.self)
        run = try store.registry.startRun(
            TrainingRunRecord(
                name: name, totalSteps: options.iterations, hyperparameters: hyperparameters,
                datasetName: URL(fileURLWithPath: data).deletingLastPathComponent().lastPathComponent, datasetSHA256: datasetSHA256))
    }

    public func progress(_ report: TrainingReport, step: Int) {
        update(report, steps: step)
    }

    public func finish(_ report: TrainingReport, status: TrainingRunRecord.Status, adapter: Int64?) {
        run.status = status
        run.finishedAt = Date()
        run.adapterId = adapter
        update(report, steps: report.steps)
    }

    private func update(_ report: TrainingReport, steps: Int) {
        run.steps = steps
        run.seconds = report.seconds
        run.tokensPerSecond = report.tokensPerSecond
        run.lossCurve = Self.json(report.lossCurve)
        run.validationCurve = Self.json(report.validationCurve)
        do {
            try store.registry.updateRun(run)
        } catch {
            guard !warned else { return }
            warned = true
            FileHandle.standardError.write(Data("warning: could not record the run in the registry: \(error)\n".utf8))
        }
    }

    private static func json(_ curve: [[Double]]) -> String {
        (try? String(decoding: JSONEncoder().encode(curve), as: UTF8.self)) ?? "[]"
    }
}
