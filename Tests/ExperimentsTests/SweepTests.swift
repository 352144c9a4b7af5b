import Experiments
import Foundation
import Inference
import LoRA
import Models
import Registry
import Testing
import TestSupport
import Training

struct SweepTests {
    /// A dataset folder with a handful of prompt/completion pairs.
    static func writeDataset(_ folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let pairs = [("ab", "ba"), ("cd", "dc"), ("ef", "fe"), ("gh", "hg"), ("ij", "ji"), ("kl", "lk")]
        func lines(_ slice: ArraySlice<(String, String)>) -> String {
            slice.map { "{\"prompt\": \"\($0.0)\", \"completion\": \"\($0.1)\"}\n" }.joined()
        }
        try lines(pairs[0..<4]).write(toFile: "\(folder)/train.jsonl", atomically: true, encoding: .utf8)
        try lines(pairs[4...]).write(toFile: "\(folder)/valid.jsonl", atomically: true, encoding: .utf8)
    }

    @Test func gridPointsAndNames() throws {
        let grid = try SweepGrid(["rank=4,8", "targets=qv,all", "lr=1e-4"])
        #expect(grid.points.map { $0.name(prefix: "dates") } == [
            "dates-rank4-targetsqv-lr1e-4", "dates-rank4-targetsall-lr1e-4", "dates-rank8-targetsqv-lr1e-4", "dates-rank8-targetsall-lr1e-4",
        ])
        var lora = LoRAConfig(rank: 1, alpha: 16, targets: LayerTensor.projections)
        var options = TrainingOptions()
        try grid.points[2].apply(to: &lora, &options)
        #expect(lora.rank == 8 && lora.targets == [.q, .v] && options.learningRate == 1e-4)
        #expect(throws: SweepError.self) { try SweepGrid(["depth=3"]) }
        #expect(throws: SweepError.self) { try SweepGrid(["rank=four"]) }
        #expect(throws: SweepError.self) { try SweepGrid(["rank=0"]) }
        #expect(throws: SweepError.self) { try SweepGrid(["rank=4,4"]) }
    }

    /// Two tiny configurations: two runs and two sets of evaluations recorded; running the sweep
    /// again trains and evaluates nothing; the comparison report names both adapters.
    @Test func sweepRecordsRunsAndEvaluationsAndResumes() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let modelPath = try TinyLanguageModel.write(to: "\(directory)/tiny.gguf")
        let languageModel = try LanguageModel.load(path: modelPath)
        try Self.writeDataset("\(directory)/data")
        let store = try AdapterStore(root: "\(directory)/store")
        let sweep = Sweep(
            grid: try SweepGrid(["rank=1,2"]), prefix: "tiny", data: "\(directory)/data",
            lora: LoRAConfig(rank: 1, alpha: 2, targets: LayerTensor.projections),
            options: TrainingOptions(iterations: 3, batchSize: 2, maxSeqLength: 64, learningRate: 1e-2, stepsPerReport: 1),
            evaluationSet: try EvaluationSet.load(path: "\(directory)/data", split: "valid"), modelPath: modelPath)
        let evaluator = Evaluator(languageModel: languageModel, maxSeqLength: 64)

        var steps = 0
        guard case .completed(let entries) = try sweep.run(languageModel: languageModel, store: store, evaluator: evaluator, onEvent: { event in
            if case .training(.step) = event { steps += 1 }
            return .proceed
        }) else { Issue.record("the sweep was interrupted"); return }
        #expect(steps == 6)
        #expect(entries.map(\.adapter.reference) == ["tiny-rank1@1", "tiny-rank2@1"])
        #expect(entries.map(\.adapter.rank) == [1, 2])
        var evaluations: [EvaluationRecord] = []
        for entry in entries {
            let runs = try store.registry.runs(adapterId: entry.adapter.id!)
            #expect(runs.count == 1 && runs[0].status == .completed && runs[0].steps == 3)
            let recorded = try store.registry.evaluations(adapterId: entry.adapter.id)
            #expect(Set(recorded.map(\.metric)) == ["loss", "perplexity", "exact_match", "normalized_match"])
            #expect(recorded.allSatisfy { $0.dataset == "data/valid" })
            evaluations += recorded
            #expect(entry.metrics["exact_match"] != nil && entry.metrics["loss"]!.isFinite)
        }

        steps = 0
        guard case .completed(let again) = try sweep.run(languageModel: languageModel, store: store, evaluator: evaluator, onEvent: { event in
            if case .training(.step) = event { steps += 1 }
            if case .evaluating = event { Issue.record("a finished point was evaluated again") }
            return .proceed
        }) else { Issue.record("the second sweep was interrupted"); return }
        #expect(steps == 0)
        #expect(again.allSatisfy(\.reused) && again.map(\.adapter.reference) == ["tiny-rank1@1", "tiny-rank2@1"])
        #expect(try store.registry.runs(named: "tiny-rank1").count == 1)
        #expect(try entries.map { try store.registry.evaluations(adapterId: $0.adapter.id) }.joined().count == evaluations.count)

        let columns = try entries.map { entry in
            let adapter = try store.load(entry.adapter.reference, for: try store.baseModel(path: modelPath, config: languageModel.model.config), config: languageModel.model.config)
            let result = try evaluator.evaluate(sweep.evaluationSet.records, path: "-", adapters: adapter.layers)
            let run = try store.registry.runs(adapterId: entry.adapter.id!)[0]
            let curve = try JSONDecoder().decode([[Double]].self, from: Data(run.lossCurve.utf8))
            #expect(curve.count == 3)
            return ComparisonReport.Column(label: entry.adapter.reference, result: result, lossCurve: curve)
        }
        let html = ComparisonReport(dataset: "data/valid", columns: columns).html
        #expect(html.contains("tiny-rank1@1") && html.contains("tiny-rank2@1"))
        #expect(html.contains("<polyline") && html.hasSuffix("</html>\n"))
    }

    /// A sweep stopped during a point's training resumes that point from its checkpoint and
    /// ends with the same adapter as an uninterrupted sweep.
    @Test func interruptedPointResumesFromItsCheckpoint() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let modelPath = try TinyLanguageModel.write(to: "\(directory)/tiny.gguf")
        let languageModel = try LanguageModel.load(path: modelPath)
        try Self.writeDataset("\(directory)/data")
        func sweep(_ store: String) throws -> (Sweep, AdapterStore) {
            (Sweep(
                grid: try SweepGrid(["rank=2"]), prefix: "tiny", data: "\(directory)/data",
                lora: LoRAConfig(rank: 1, alpha: 2, targets: LayerTensor.projections),
                options: TrainingOptions(iterations: 4, batchSize: 2, maxSeqLength: 64, learningRate: 1e-2, stepsPerReport: 1),
                evaluationSet: try EvaluationSet.load(path: "\(directory)/data", split: "valid"), modelPath: modelPath),
             try AdapterStore(root: "\(directory)/\(store)"))
        }
        let evaluator = Evaluator(languageModel: languageModel, maxSeqLength: 64)
        let (straight, straightStore) = try sweep("straight")
        guard case .completed(let reference) = try straight.run(languageModel: languageModel, store: straightStore, evaluator: evaluator)
        else { Issue.record("interrupted"); return }

        let (stopped, stoppedStore) = try sweep("stopped")
        var resumedFrom: String?
        let first = try stopped.run(languageModel: languageModel, store: stoppedStore, evaluator: evaluator) { event in
            if case .training(.step(let step)) = event, step.iteration == 2 { return .stop }
            return .proceed
        }
        guard case .interrupted = first else { Issue.record("the stop was not honoured"); return }
        guard case .completed(let resumed) = try stopped.run(languageModel: languageModel, store: stoppedStore, evaluator: evaluator, onEvent: { event in
            if case .resuming(_, let checkpoint) = event { resumedFrom = checkpoint }
            return .proceed
        }) else { Issue.record("interrupted"); return }
        #expect(resumedFrom?.hasSuffix("step-000002") == true)
        #expect(resumed[0].adapter.sha256 == reference[0].adapter.sha256)
        #expect(try stoppedStore.registry.runs(named: "tiny-rank2").map(\.status) == [.interrupted, .completed])
    }
}
