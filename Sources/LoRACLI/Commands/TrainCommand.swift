import ArgumentParser
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
        let languageModel = try modelOptions.load()
        let model = languageModel.model
        let options = training.options
        let splits = try DatasetSplits.load(path: data, validSplit: validSplit, seed: options.seed)
        guard let endOfText = languageModel.tokenizer.vocabulary.id(of: "<|endoftext|>") ?? languageModel.tokenizer.vocabulary.eosId else {
            throw ValidationError("the tokenizer has no <|endoftext|> or EOS token to end documents with")
        }
        let encoder = ExampleEncoder(
            tokenizer: languageModel.tokenizer, chatTemplate: languageModel.chatTemplate, endOfText: endOfText,
            maxLength: options.maxSeqLength, maskPrompt: options.maskPrompt)
        let train = try encoder.encode(splits.train, path: splits.trainPath)
        let valid = splits.valid.isEmpty ? nil : try encoder.encode(splits.valid, path: splits.validPath ?? data)
        for (name, encoded) in [("train", train), ("valid", valid)] {
            guard let encoded, encoded.truncated + encoded.dropped > 0 else { continue }
            warn("\(name): \(encoded.truncated) examples truncated to --max-seq-length \(options.maxSeqLength), \(encoded.dropped) dropped (nothing left to learn)")
        }

        let checkpoint = try resume.map { try Checkpoint.load(from: $0, for: model.config) }
        if let checkpoint, checkpoint.options != options {
            warn("resuming with options that differ from the checkpoint's; the run will not equal an uninterrupted one")
        }
        let config = try checkpoint?.adapter.config ?? lora.config()
        let adapter = LoRAAdapter.initialized(config, for: model.config, seed: options.seed)

        // Where the adapter and checkpoints go: --out, unless it only names a store entry.
        let store = register ? try storeOptions.open() : nil
        let name = adapterName ?? "adapter"
        let standardized = { (path: String) in URL(fileURLWithPath: path).standardizedFileURL.path }
        let outNamesStoreEntry = store.map { store in out.map { standardized(URL(fileURLWithPath: $0).deletingLastPathComponent().path) == standardized(store.root) } ?? true } ?? false
        let work = outNamesStoreEntry || out == nil
            ? "\(storeOptions.root)/.runs/\(name)-\(Int(Date().timeIntervalSince1970))" : (out ?? name)
        let recorder = try store.map { try RunRecorder(store: $0, name: name, options: options, data: splits.trainPath) }

        let trainer = Trainer(
            model: model, adapter: adapter, train: train.examples, valid: valid?.examples, options: options, padId: endOfText,
            checkpointDirectory: "\(work)/checkpoints", baseModelName: languageModel.source, resumeFrom: checkpoint)
        FileHandle.standardError.write(Data("""
            training \(adapter.parameterCount) LoRA parameters (r=\(config.rank), alpha=\(config.alpha), \
            targets \(config.targets.compactMap(\.peftName).joined(separator: ","))) on \(train.examples.count) examples\
            \(valid.map { ", validating on \($0.examples.count)" } ?? "")\n
            """.utf8))

        Interrupt.install()
        var progress = ProgressBar(total: options.iterations)
        let startStep = checkpoint?.step ?? 0
        let report: TrainingReport
        do {
            report = try trainer.run { event in
                switch event {
                case .step(let step):
                    progress.update(
                        step: step.iteration, loss: step.loss, tokensPerSecond: step.tokensPerSecond,
                        elapsed: step.elapsedSeconds - (checkpoint?.report.seconds ?? 0),
                        startStep: startStep)
                    recorder?.progress(trainer.checkpoint.report, step: step.iteration)
                case .validation, .checkpoint:
                    progress.line(event.description)
                case .finished:
                    progress.finish()
                }
                return Interrupt.isRequested ? .stop : .proceed
            }
        } catch {
            recorder?.finish(trainer.checkpoint.report, status: .failed, adapter: nil)
            throw error
        }
        if report.interrupted {
            recorder?.finish(report, status: .interrupted, adapter: nil)
            print("interrupted at step \(report.steps); resume with --resume \(work)/checkpoints/step-\(String(format: "%06d", report.steps))")
            throw ExitCode(130)
        }
        try trainer.adapter.savePEFT(to: work, baseModelName: languageModel.source)
        let reportEncoder = JSONEncoder()
        reportEncoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try reportEncoder.encode(TrainingRecord(options: options, report: report, data: data, model: languageModel.source))
            .write(to: URL(fileURLWithPath: "\(work)/training_report.json"))
        if !outNamesStoreEntry && out != nil { print("adapter saved to \(work)") }
        if let store, let recorder {
            let base = try store.baseModel(path: modelOptions.resolvedPath, config: model.config)
            let hyperparameters = String(decoding: try JSONEncoder.sorted.encode(options), as: UTF8.self)
            let record = try store.register(
                folder: work, name: name, base: base,
                provenance: AdapterStore.Provenance(
                    parent: parent, datasetName: URL(fileURLWithPath: data).lastPathComponent, datasetSHA256: recorder.datasetSHA256,
                    hyperparameters: hyperparameters, trainLoss: report.finalTrainLoss, validLoss: report.finalValidLoss,
                    description: description, tags: tag))
            recorder.finish(report, status: .completed, adapter: record.id)
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

/// `training_report.json` next to the adapter: what was trained, how, on what, with what result.
struct TrainingRecord: Codable {
    var options: TrainingOptions
    var report: TrainingReport
    var data: String
    var model: String
}
