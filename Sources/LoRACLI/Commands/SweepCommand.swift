import ArgumentParser
import Experiments
import Foundation
import Registry
import Training

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Train and evaluate every combination of a hyperparameter grid; print them ranked.",
        discussion: """
            Each --grid is KEY=V1,V2,... with KEY one of \(SweepGrid.keys.joined(separator: ", ")) \
            (targets as letters or all, e.g. targets=qv,all; several PEFT names joined by '+'). \
            Every point is trained with the other flags as given, registered as PREFIX-KEYVALUE-..., \
            evaluated on --eval-split and recorded in the registry. Re-running the same command skips \
            registered points and resumes an interrupted one from its checkpoint.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var lora: LoRAOptions
    @OptionGroup var training: TrainingOptionGroup

    @Option(name: .long, help: "Dataset folder with train.jsonl and valid.jsonl.")
    var data: String

    @Option(name: .long, help: "Grid axis KEY=V1,V2,... (repeat for more axes).")
    var grid: [String] = []

    @Option(name: .long, help: "Adapter name prefix (default: the dataset folder's name).")
    var prefix: String?

    @Option(name: .long, help: "Split each adapter is scored on (keep test for the final comparison).")
    var evalSplit: String = "valid"

    @Option(name: .long, help: "Score only the first N examples of the evaluation split.")
    var evalLimit: Int?

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        guard !grid.isEmpty else { throw ValidationError("give at least one --grid KEY=V1,V2") }
        do { _ = try SweepGrid(grid) } catch { throw ValidationError(error.description) }
        if let evalLimit, evalLimit < 1 { throw ValidationError("--eval-limit must be at least 1") }
    }

    func run() throws {
        let languageModel = try modelOptions.load()
        let store = try storeOptions.open()
        let grid = try SweepGrid(grid)
        let loaded = try EvaluationSet.load(path: data, split: evalSplit)
        let set = evalLimit.map { loaded.prefix($0) } ?? loaded
        let prefix = prefix ?? URL(fileURLWithPath: data).standardizedFileURL.lastPathComponent
        let sweep = Sweep(
            grid: grid, prefix: prefix, data: data, lora: try lora.config(), options: training.options, evaluationSet: set,
            modelPath: modelOptions.resolvedPath)
        // Events come at every step and answer: Ctrl-C stops at the next one, resumable.
        Interrupt.beginGracefulPhase()
        var bar = ProgressBar(total: training.iters)
        var phaseStart = Date()
        let outcome = try sweep.run(
            languageModel: languageModel, store: store,
            evaluator: Evaluator(languageModel: languageModel, maxSeqLength: max(training.maxSeqLength, 512))
        ) { event in
            switch event {
            case .starting(let index, let total, let name, let point):
                bar.line("[\(index + 1)/\(total)] \(name) (\(point.label))")
                bar = ProgressBar(total: point.values.first { $0.key == "iters" }.flatMap { Int($0.value) } ?? training.iters)
                phaseStart = Date()
            case .reusing(let name, let reference):
                bar.line("  \(name): already registered as \(reference), not retrained")
            case .resuming(_, let checkpoint):
                bar.line("  resuming from \(checkpoint)")
            case .training(let event):
                switch event {
                case .step(let step):
                    bar.update(step: step.iteration, loss: step.loss, tokensPerSecond: step.tokensPerSecond, elapsed: Date().timeIntervalSince(phaseStart), startStep: 0)
                case .validation, .checkpoint: bar.line("  " + event.description)
                case .finished: bar.finish()
                }
            case .evaluating(let progress):
                if case .generation(let done, let total) = progress {
                    if done <= 8 { bar = ProgressBar(total: total); phaseStart = Date() }
                    bar.update("  answered", done: done, elapsed: Date().timeIntervalSince(phaseStart))
                }
            case .finished(let entry):
                bar.finish()
                bar.line("  \(entry.adapter.reference): " + Self.metricsLine(entry.metrics))
            }
            return Interrupt.isRequested ? .stop : .proceed
        }
        switch outcome {
        case .interrupted(let entries):
            print(Self.table(entries, set: set.name))
            print("interrupted; run the same command again to resume")
            throw ExitCode(130)
        case .completed(let entries):
            print(Self.table(entries, set: set.name))
        }
    }

    static func metricsLine(_ metrics: [String: Double]) -> String {
        ["exact_match", "normalized_match", "loss", "perplexity"].compactMap { key in
            metrics[key].map { "\(key) \(key.hasSuffix("match") ? String(format: "%.1f%%", $0 * 100) : String(format: "%.4f", $0))" }
        }.joined(separator: ", ")
    }

    static func table(_ entries: [Sweep.Entry], set: String) -> String {
        let rows = Sweep.Entry.ranked(entries).enumerated().map { rank, entry in
            [
                "\(rank + 1)", entry.adapter.reference, entry.point.label,
                entry.metrics["exact_match"].map { String(format: "%.1f%%", $0 * 100) } ?? "-",
                entry.metrics["loss"].map { String(format: "%.4f", $0) } ?? "-",
                String(format: "%.0f s", entry.trainSeconds), "\(Int(entry.tokensPerSecond))",
                String(format: "%.1f MB", Double(entry.adapter.sizeBytes) / 1e6),
            ]
        }
        return "ranked on \(set):\n" + TextTable.render(
            header: ["#", "adapter", "grid point", "exact match", "loss", "train time", "tok/s", "size"], rows: rows)
    }
}
