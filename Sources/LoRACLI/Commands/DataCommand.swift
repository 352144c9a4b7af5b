import ArgumentParser
import Experiments
import Foundation
import Formats
import Inference
import Kernels
import Training

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Look at JSONL datasets before training: validate, stats, inspect, split.",
        subcommands: [Validate.self, Stats.self, Inspect.self, Split.self])

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every line of a dataset; list malformed lines with their numbers and examples shared between splits.")

        @Argument(help: "Dataset folder or .jsonl file.")
        var path: String

        @Option(name: .long, help: "Errors listed per file.")
        var maxErrors: Int = 20

        func run() throws {
            var failed = false
            var keys: [(split: String, keys: Set<String>)] = []
            for (split, file) in try DatasetSplits.files(path) {
                let scan = try DatasetScan(path: file)
                let format = scan.records.first?.record.formatName ?? "no examples"
                print("\(file): \(scan.records.count) examples (\(format)), \(scan.errors.count) malformed")
                for error in scan.errors.prefix(maxErrors) { print("  \(error)") }
                if scan.errors.count > maxErrors { print("  … and \(scan.errors.count - maxErrors) more") }
                failed = failed || !scan.errors.isEmpty || scan.records.isEmpty
                keys.append((split, Set(scan.records.map(\.record.key))))
            }
            for (i, a) in keys.enumerated() {
                for b in keys[(i + 1)...] {
                    let shared = a.keys.intersection(b.keys).count
                    guard shared > 0 else { continue }
                    print("\(shared) examples occur in both \(a.split) and \(b.split)")
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
            print("ok")
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts, token lengths per field with histograms, truncation at --max-seq-length, duplicates.")

        @OptionGroup var encoding: EncodingOptions

        @Argument(help: "Dataset folder or .jsonl file.")
        var path: String

        @Flag(name: .long, help: "Print JSON, one object per file.")
        var json = false

        func run() throws {
            let encoder = try encoding.encoder().encoder
            for (_, file) in try DatasetSplits.files(path) {
                let stats = try DatasetStatistics(path: file, records: try DatasetRecord.load(path: file), encoder: encoder)
                if json {
                    print(String(decoding: try JSONEncoder.sorted.encode(stats), as: UTF8.self))
                    continue
                }
                print("\(file): \(stats.examples) examples (\(stats.format)), \(stats.duplicates) duplicates, "
                    + "\(stats.truncated) longer than \(stats.maxLength) tokens, \(stats.scoredTokens) tokens scored")
                print(TextTable.render(
                    header: ["tokens", "min", "mean", "median", "p95", "max"],
                    rows: stats.fields.map { [$0.name, "\($0.min)", String(format: "%.1f", $0.mean), "\($0.median)", "\($0.p95)", "\($0.max)"] }))
                for field in stats.fields {
                    print("  \(field.name):")
                    let largest = field.histogram.map { $0[1] }.max() ?? 1
                    var lower = 0
                    for bucket in field.histogram {
                        let bar = String(repeating: "█", count: largest > 0 ? (40 * bucket[1] + largest - 1) / largest : 0)
                        print("    \(String(lower).leftPadded(5))–\(String(bucket[0]).padding(toLength: 5, withPad: " ", startingAt: 0)) \(String(bucket[1]).leftPadded(6)) \(bar)")
                        lower = bucket[0] + 1
                    }
                }
                print("")
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show examples as the model sees them, with the tokens the loss is taken on marked.")

        @OptionGroup var encoding: EncodingOptions

        @Argument(help: "Dataset folder or .jsonl file.")
        var path: String

        @Option(name: .long, help: "Split of a dataset folder.")
        var split: String = "train"

        @Option(name: [.customShort("n"), .long], help: "How many examples.")
        var count: Int = 3

        @Option(name: .long, help: "First line to show (1-based).")
        var from: Int = 1

        func run() throws {
            let (languageModel, encoder) = try encoding.encoder()
            let file = try DatasetSplits.files(path).first { $0.split == split }?.path
                ?? DatasetSplits.files(path).first?.path ?? path
            let records = try DatasetRecord.load(path: file).filter { $0.line >= from }.prefix(count)
            let color = isatty(STDOUT_FILENO) != 0
            let (open, close) = color ? ("\u{1B}[32;4m", "\u{1B}[0m") : ("⟦", "⟧")
            print("\(file): trained tokens are shown \(color ? "green and underlined" : "between ⟦ ⟧")")
            for (line, record) in records {
                let encoded = try encoder.encode([(line, record)], path: file)
                guard let example = encoded.examples.first else {
                    print("--- line \(line): nothing left to learn after masking and truncation")
                    continue
                }
                var text = "", inside = false, run: [Int] = []
                func flush() throws {
                    guard !run.isEmpty else { return }
                    let piece = try languageModel.tokenizer.decode(run)
                    text += inside ? open + piece + close : piece
                    run = []
                }
                for (token, trained) in zip(example.tokens, example.trained) {
                    if trained != inside { try flush(); inside = trained }
                    run.append(token)
                }
                try flush()
                print("--- line \(line): \(record.formatName), \(example.tokens.count) tokens, \(example.scoredCount) trained\(encoded.truncated > 0 ? ", truncated" : "")")
                print(text)
            }
        }
    }

    struct Split: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Split one JSONL file into train.jsonl, valid.jsonl and test.jsonl by a seeded shuffle (lines kept verbatim).")

        @Argument(help: "The .jsonl file.")
        var file: String

        @Option(name: .long, help: "Output folder.")
        var out: String

        @Option(name: .long, help: "Fraction for valid.jsonl.")
        var validFraction: Double = 0.1

        @Option(name: .long, help: "Fraction for test.jsonl.")
        var testFraction: Double = 0.1

        @Option(name: .long, help: "Shuffle seed.")
        var seed: UInt64 = 0

        @Flag(name: .long, help: "Replace existing split files.")
        var force = false

        func validate() throws {
            guard validFraction >= 0, testFraction >= 0, validFraction + testFraction < 1 else {
                throw ValidationError("--valid-fraction and --test-fraction must be 0 or more and leave some lines for train")
            }
        }

        func run() throws {
            let scan = try DatasetScan(path: file)
            if let error = scan.errors.first {
                throw ValidationError("\(error) (and \(scan.errors.count - 1) more; lora data validate lists them)")
            }
            guard !scan.records.isEmpty else { throw DatasetError.empty(path: file) }
            let lines = try JSONLines(path: file).lines
            let order = DatasetSplits.shuffledOrder(scan.records.count, seed: seed).map { scan.records[$0].line }
            let validCount = Int((validFraction * Double(order.count)).rounded())
            let testCount = Int((testFraction * Double(order.count)).rounded())
            let parts = [
                ("valid", Array(order.prefix(validCount))), ("test", Array(order.dropFirst(validCount).prefix(testCount))),
                ("train", Array(order.dropFirst(validCount + testCount))),
            ]
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for (name, _) in parts where !force && FileManager.default.fileExists(atPath: "\(out)/\(name).jsonl") {
                throw ValidationError("\(out)/\(name).jsonl exists; pass --force to replace it")
            }
            for (name, selected) in parts where !selected.isEmpty {
                let bytes = selected.sorted().flatMap { lines[$0 - 1].bytes + [0x0A] }
                try AtomicWrite.write(Data(bytes), to: "\(out)/\(name).jsonl")
                print("\(out)/\(name).jsonl: \(selected.count) examples")
            }
        }
    }
}

/// The model and flags that turn records into training examples, for `stats` and `inspect`.
struct EncodingOptions: ParsableArguments {
    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Examples longer than this are truncated in training (and reported).")
    var maxSeqLength: Int = 256

    @Flag(name: .long, inversion: .prefixedNo, help: "Loss only on completion / assistant tokens.")
    var maskPrompt = true

    func encoder() throws -> (languageModel: LanguageModel, encoder: ExampleEncoder) {
        let languageModel = try modelOptions.load()
        return (languageModel, try languageModel.exampleEncoder(maxLength: maxSeqLength, maskPrompt: maskPrompt))
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
