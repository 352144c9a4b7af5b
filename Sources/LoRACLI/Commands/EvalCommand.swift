import ArgumentParser
import Experiments
import Formats
import Foundation
import Inference
import Registry

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score the base or an adapter on held-out data: loss, perplexity and greedy exact match.",
        discussion: """
            Prompt/completion and chat data are also answered greedily and scored by exact match (and a \
            normalised match ignoring case, spaces and punctuation); text data gets loss and perplexity only. \
            Results of registered adapters (and of the base, --adapter none) are recorded in the registry.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var evaluation: EvaluationOptions

    @Option(name: .long, help: "A registered adapter (NAME or NAME@VERSION), a PEFT folder, or none for the base alone.")
    var adapter: String


    @OptionGroup var adapterOptions: AdapterOptions

    @Option(name: .long, help: "Write every prediction (line, prompt, reference, output) to this JSONL file.")
    var output: String?

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let languageModel = try modelOptions.load()
        let set = try evaluation.set()
        let outcome = try AdapterEvaluation(
            languageModel: languageModel, modelPath: modelOptions.resolvedPath, adapterOptions: adapterOptions, options: evaluation
        ).run(adapter, on: set)
        let result = outcome.result
        if let output {
            let encoder = JSONEncoder.sorted
            let lines = try result.predictions.map { String(decoding: try encoder.encode($0), as: UTF8.self) + "\n" }
            try AtomicWrite.write(Data(lines.joined().utf8), to: output)
        }
        if json {
            var summary = result
            summary.predictions = []
            print(String(decoding: try JSONEncoder.sorted.encode(summary), as: UTF8.self))
            return
        }
        print("\(outcome.label) on \(set.name) (\(result.examples) examples): " + Self.summary(result))
        if let note = outcome.recordedNote { print(note) }
    }

    static func summary(_ result: EvaluationResult) -> String {
        var parts = ["loss \(String(format: "%.4f", result.loss))", "perplexity \(String(format: "%.3f", result.perplexity))"]
        if let exact = result.exactMatch { parts.append("exact match \(String(format: "%.1f%%", exact * 100))") }
        if let normalized = result.normalizedMatch { parts.append("normalised match \(String(format: "%.1f%%", normalized * 100))") }
        parts.append("\(String(format: "%.1f", result.seconds)) s")
        return parts.joined(separator: ", ")
    }
}

/// Flags every evaluating command shares.
struct EvaluationOptions: ParsableArguments {
    @Option(name: .long, help: "Dataset folder (scored on --split) or a .jsonl file.")
    var data: String

    @Option(name: .long, help: "Which split of a dataset folder: test, valid or train.")
    var split: String = "test"

    @Option(name: .long, help: "Score only the first N examples.")
    var limit: Int?

    @Option(name: .long, help: "Examples are cut to this many tokens for the loss.")
    var maxSeqLength: Int = 512

    @Option(name: .long, help: "Sequences per loss batch and answers decoded together.")
    var batchSize: Int = 8

    @Flag(name: .long, inversion: .prefixedNo, help: "Generate answers and score exact match (prompt/completion and chat data).")
    var generate = true

    @Flag(name: .long, inversion: .prefixedNo, help: "Record the metrics in the registry.")
    var record = true

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard maxSeqLength >= 2, batchSize >= 1 else { throw ValidationError("--max-seq-length must be at least 2 and --batch-size at least 1") }
    }

    func set() throws -> EvaluationSet {
        let set = try EvaluationSet.load(path: data, split: split)
        return limit.map { set.prefix($0) } ?? set
    }
}

/// Evaluates one adapter argument with progress bars and records the result when it can.
struct AdapterEvaluation {
    let languageModel: LanguageModel
    let modelPath: String
    let adapterOptions: AdapterOptions
    let options: EvaluationOptions

    struct Outcome {
        var label: String
        var result: EvaluationResult
        var record: AdapterRecord?
        var recordedNote: String?
    }

    func run(_ argument: String, on set: EvaluationSet) throws -> Outcome {
        let config = languageModel.model.config
        let isBase = argument == "none" || argument == "base"
        let resolved = isBase
            ? nil
            : try adapterOptions.resolver(modelPath: modelPath, baseNames: languageModel.names).resolve(argument, config: config, force: adapterOptions.force)
        let label = isBase ? "base" : resolved?.record?.reference ?? argument
        let evaluator = Evaluator(languageModel: languageModel, maxSeqLength: options.maxSeqLength, batchSize: options.batchSize)
        var bar: ProgressBar?
        let start = Date()
        let result = try evaluator.evaluate(set.records, path: set.path, adapters: resolved?.adapter.layers, generate: options.generate) { progress in
            switch progress {
            case .loss(let done, let total):
                if bar?.total != total { bar = ProgressBar(total: total) }
                bar?.update("\(label): loss batch", done: done, elapsed: Date().timeIntervalSince(start))
            case .generation(let done, let total):
                if bar?.total != total || done <= options.batchSize { bar?.finish(); bar = ProgressBar(total: total) }
                bar?.update("\(label): answered", done: done, elapsed: Date().timeIntervalSince(start))
            }
        }
        bar?.finish()
        var outcome = Outcome(label: label, result: result, record: resolved?.record)
        guard options.record else { return outcome }
        if resolved != nil && resolved?.record == nil {
            outcome.recordedNote = "not recorded: \(argument) is a folder, not a registered adapter (register it with lora adapters import)"
            return outcome
        }
        let store = try adapterOptions.storeOptions.open()
        let base = try store.baseModel(path: modelPath, config: config)
        try set.record(result, adapter: resolved?.record, base: base, in: store.registry)
        outcome.recordedNote = "recorded in \(adapterOptions.storeOptions.root) as evaluations of \(label) on \(set.name)"
        return outcome
    }
}
