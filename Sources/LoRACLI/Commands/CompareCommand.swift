import ArgumentParser
import Experiments
import Foundation
import Formats
import Registry

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Evaluate several adapters (and the base: none) on the same data and show them side by side.",
        discussion: "With --report out.html, also writes a self-contained page with loss curves, the metric per adapter and answers side by side.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var evaluation: EvaluationOptions

    @Argument(help: "Adapters: NAME, NAME@VERSION, a PEFT folder, or none for the base.")
    var adapters: [String]


    @OptionGroup var adapterOptions: AdapterOptions

    @Option(name: .long, help: "Write an HTML report here.")
    var report: String?

    func validate() throws {
        guard !adapters.isEmpty else { throw ValidationError("name at least one adapter (none for the base)") }
    }

    func run() throws {
        let languageModel = try modelOptions.load()
        let set = try evaluation.set()
        let evaluation = AdapterEvaluation(
            languageModel: languageModel, modelPath: modelOptions.resolvedPath, adapterOptions: adapterOptions, options: evaluation)
        let registry = adapters.contains { $0 != "none" && $0 != "base" && !$0.contains("/") } ? try adapterOptions.storeOptions.open().registry : nil
        var columns: [ComparisonReport.Column] = []
        for argument in adapters {
            let outcome = try evaluation.run(argument, on: set)
            var column = ComparisonReport.Column(label: outcome.label, result: outcome.result)
            if let record = outcome.record, let registry {
                let run = try registry.runs(adapterId: record.id ?? -1).last { $0.status == .completed }
                column.lossCurve = Self.curve(run?.lossCurve)
                column.validationCurve = Self.curve(run?.validationCurve)
                column.trainSeconds = run?.seconds
                column.sizeBytes = record.sizeBytes
            }
            columns.append(column)
        }
        print(Self.table(columns, dataset: set.name))
        if let report {
            let page = ComparisonReport(dataset: set.name, columns: columns).html
            try AtomicWrite.write(Data(page.utf8), to: report)
            print("report written to \(report)")
        }
    }

    static func curve(_ json: String?) -> [[Double]] {
        guard let json else { return [] }
        return (try? JSONDecoder().decode([[Double]].self, from: Data(json.utf8))) ?? []
    }

    static func table(_ columns: [ComparisonReport.Column], dataset: String) -> String {
        let percent = { (value: Double?) in value.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
        let rows = columns.map { column in
            [
                column.label, "\(column.result.examples)", percent(column.result.exactMatch), percent(column.result.normalizedMatch),
                String(format: "%.4f", column.result.loss), String(format: "%.3f", column.result.perplexity),
                column.trainSeconds.map { String(format: "%.0f s", $0) } ?? "-",
                column.sizeBytes.map { String(format: "%.1f MB", Double($0) / 1e6) } ?? "-",
            ]
        }
        return "on \(dataset):\n" + TextTable.render(
            header: ["adapter", "examples", "exact", "normalised", "loss", "perplexity", "train time", "size"], rows: rows)
    }
}
