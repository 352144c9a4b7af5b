import ArgumentParser
import Experiments
import Foundation
import Inference
import LoRA
import Models
import Registry
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a LoRA adapter on a JSONL dataset and save it in PEFT format.",
        discussion: """
            --data takes a folder with train.jsonl (and valid.jsonl, test.jsonl) or one .jsonl file \
            (use --valid-split to hold out validation lines). Lines are {"text"}, {"prompt","completion"} \
            or {"messages":[{"role","content"},...]}.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var lora: LoRAOptions
    @OptionGroup var training: TrainingOptionGroup

    @Option(name: .long, help: "Dataset folder or .jsonl file.")
    var data: String

    @Option(name: .long, help: "Fraction of a single file (or of train.jsonl without valid.jsonl) held out for validation.")
    var validSplit: Double?

    @OptionGroup var storeOptions: StoreOptions

    @Option(name: .long, help: "Output folder for the adapter (PEFT files, training_report.json, checkpoints/). A folder directly in the store (adapters/NAME) just names the adapter.")
    var out: String?

    @Option(name: .long, help: "Registry name (default: the last component of --out).")
    var name: String?

    @Flag(name: .long, inversion: .prefixedNo, help: "Record the run and register the adapter in the store.")
    var register = true

    @Option(name: .long, help: "Registered adapter this one continues from (lineage), NAME or NAME@VERSION.")
    var parent: String?

    @Option(name: .long, help: "Tags for the registered adapter.")
    var tag: [String] = []

    @Option(name: .long, help: "Description for the registry.")
    var description: String?

    @Option(name: .long, help: "Continue from a checkpoint folder (…/checkpoints/step-000100).")
    var resume: String?

    func validate() throws {
        if let validSplit, !(validSplit > 0 && validSplit < 1) { throw ValidationError("--valid-split must be in (0, 1)") }
        guard out != nil || name != nil else { throw ValidationError("give --out DIR or --name NAME (or both)") }
        if register, let adapterName, !AdapterRegistry.isValidName(adapterName) {
            throw ValidationError(RegistryError.invalidName(adapterName).description)
        }
    }

    private var adapterName: String? { name ?? out.map { URL(fileURLWithPath: $0).lastPathComponent } }

    func run() throws {
        let languageModel = try modelOptions.load(decoding: false)
        let model = languageModel.model
        let options = training.options
        let checkpoint = try resume.map { try Checkpoint.load(from: $0, for: model.config) }

        // Where the adapter and checkpoints go: --out, unless it only names a store entry.
        let store = register ? try storeOptions.open() : nil
        let name = adapterName ?? "adapter"
        let standardized = { (path: String) in URL(fileURLWithPath: path).standardizedFileURL.path }
        let outNamesStoreEntry = store.map { store in out.map { standardized(URL(fileURLWithPath: $0).deletingLastPathComponent().path) == standardized(store.root) } ?? true } ?? false
        let work = outNamesStoreEntry || out == nil
            ? "\(storeOptions.root)/.runs/\(name)-\(Int(Date().timeIntervalSince1970))" : (out ?? name)
        let job = TrainingJob(
            data: data, validSplit: validSplit, lora: try lora.config(), options: options, name: name, folder: work,
            modelPath: modelOptions.resolvedPath, parent: parent, tags: tag, description: description)

        var progress = ProgressBar(total: options.iterations)
        let startStep = checkpoint?.step ?? 0
        let outcome = try job.run(
            languageModel: languageModel, store: store, resume: checkpoint,
            onMessage: { message in
                switch message {
                case .warning(let text): warn(text)
                case .starting(let text):
                    FileHandle.standardError.write(Data("\(text)\n".utf8))
                    // Steps poll the flag: Ctrl-C from here saves a checkpoint.
                    Interrupt.beginGracefulPhase()
                }
            },
            onEvent: { event, _ in
                switch event {
                case .step(let step):
                    progress.update(
                        step: step.iteration, loss: step.loss, tokensPerSecond: step.tokensPerSecond,
                        elapsed: step.elapsedSeconds - (checkpoint?.report.seconds ?? 0), startStep: startStep)
                case .validation, .checkpoint:
                    progress.line(event.description)
                case .finished:
                    progress.finish()
                }
                return Interrupt.isRequested ? .stop : .proceed
            })
        let report = outcome.report
        if report.interrupted {
            print("interrupted at step \(report.steps); resume with --resume \(work)/checkpoints/step-\(String(format: "%06d", report.steps))")
            throw ExitCode(130)
        }
        if !outNamesStoreEntry && out != nil { print("adapter saved to \(work)") }
        if let store, let record = outcome.record {
            print("registered as \(record.reference) in \(storeOptions.root) (files in \(store.folder(of: record)))")
        }
        print("final train loss \(report.finalTrainLoss.map { String(format: "%.4f", $0) } ?? "-")"
            + ", valid loss \(report.finalValidLoss.map { String(format: "%.4f", $0) } ?? "-")"
            + ", \(report.steps) steps in \(String(format: "%.1f", report.seconds)) s (\(Int(report.tokensPerSecond)) tok/s)")
    }

    private func warn(_ message: String) {
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }
}
