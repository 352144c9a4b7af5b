import Formats
import Foundation
import Inference
import LoRA
import Registry
import Training

/// One adapter training from dataset to registered PEFT folder: what `lora train` runs once
/// and `lora sweep` runs per grid point.
public struct TrainingJob: Sendable {
    /// Dataset folder or .jsonl file.
    public var data: String
    public var validSplit: Double?
    public var lora: LoRAConfig
    public var options: TrainingOptions
    /// Registry name of the adapter.
    public var name: String
    /// Where the PEFT files, training_report.json and checkpoints/ are written.
    public var folder: String
    /// The base model's file or folder (its registry row is keyed by path).
    public var modelPath: String
    public var parent: String?
    public var tags: [String]
    public var description: String?

    public init(
        data: String, validSplit: Double? = nil, lora: LoRAConfig, options: TrainingOptions, name: String, folder: String,
        modelPath: String, parent: String? = nil, tags: [String] = [], description: String? = nil
    ) {
        self.data = data
        self.validSplit = validSplit
        self.lora = lora
        self.options = options
        self.name = name
        self.folder = folder
        self.modelPath = modelPath
        self.parent = parent
        self.tags = tags
        self.description = description
    }

    public struct Outcome: Sendable {
        public var report: TrainingReport
        public var adapter: LoRAAdapter
        /// The registered version (nil: not registered, or interrupted).
        public var record: AdapterRecord?
        public var trainExamples: Int
    }

    public enum Message: Sendable {
        case warning(String)
        /// What is about to be trained.
        case starting(String)
    }

    /// Trains; on an interruption (`onEvent` returned `.stop`) the checkpoint is saved and the
    /// outcome's report says `interrupted`, with nothing saved or registered.
    public func run(
        languageModel: LanguageModel, store: AdapterStore?, resume checkpoint: Checkpoint? = nil,
        onMessage: (Message) -> Void = { _ in }, onEvent: (TrainingEvent, Trainer) -> TrainingDecision = { _, _ in .proceed }
    ) throws -> Outcome {
        let model = languageModel.model
        try (checkpoint?.adapter.config ?? lora).check(for: model.config)
        let splits = try DatasetSplits.load(path: data, validSplit: validSplit, seed: options.seed)
        let encoder = try languageModel.exampleEncoder(maxLength: options.maxSeqLength, maskPrompt: options.maskPrompt)
        let train = try encoder.encode(splits.train, path: splits.trainPath)
        let valid = splits.valid.isEmpty ? nil : try encoder.encode(splits.valid, path: splits.validPath ?? data)
        for (split, encoded) in [("train", train), ("valid", valid)] {
            guard let encoded, encoded.truncated + encoded.dropped > 0 else { continue }
            onMessage(.warning(
                "\(split): \(encoded.truncated) examples truncated to --max-seq-length \(options.maxSeqLength), \(encoded.dropped) dropped (nothing left to learn)"))
        }
        if let checkpoint, checkpoint.options != options {
            onMessage(.warning("resuming with options that differ from the checkpoint's; the run will not equal an uninterrupted one"))
        }
        let config = checkpoint?.adapter.config ?? lora
        let adapter = LoRAAdapter.initialized(config, for: model.config, seed: options.seed)
        let recorder = try store.map { try RunRecorder(store: $0, name: name, options: options, data: splits.trainPath) }
        let trainer = Trainer(
            model: model, adapter: adapter, train: train.examples, valid: valid?.examples, options: options,
            padId: try languageModel.endOfTextId(), checkpointDirectory: "\(folder)/checkpoints", baseModelName: languageModel.source,
            resumeFrom: checkpoint)
        onMessage(.starting("""
            training \(adapter.parameterCount) LoRA parameters (r=\(config.rank), alpha=\(config.alpha), \
            targets \(config.targets.compactMap(\.peftName).joined(separator: ","))) on \(train.examples.count) examples\
            \(valid.map { ", validating on \($0.examples.count)" } ?? "")
            """))

        let report: TrainingReport
        do {
            report = try trainer.run { event in
                if case .step(let step) = event { recorder?.progress(trainer.checkpoint.report, step: step.iteration) }
                return onEvent(event, trainer)
            }
        } catch {
            recorder?.finish(trainer.checkpoint.report, status: .failed, adapter: nil)
            throw error
        }
        var outcome = Outcome(report: report, adapter: trainer.adapter, record: nil, trainExamples: train.examples.count)
        if report.interrupted {
            recorder?.finish(report, status: .interrupted, adapter: nil)
            return outcome
        }
        do {
            outcome.record = try save(trainer: trainer, report: report, languageModel: languageModel, store: store, recorder: recorder)
        } catch {
            recorder?.finish(report, status: .failed, adapter: nil)
            throw error
        }
        return outcome
    }

    /// Writes the adapter and its report into the run's folder and registers them.
    private func save(
        trainer: Trainer, report: TrainingReport, languageModel: LanguageModel, store: AdapterStore?, recorder: RunRecorder?
    ) throws -> AdapterRecord? {
        try trainer.adapter.savePEFT(to: folder, baseModelName: languageModel.source)
        let reportEncoder = JSONEncoder()
        reportEncoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicWrite.write(
            try reportEncoder.encode(TrainingRecord(options: options, report: report, data: data, model: languageModel.source)),
            to: "\(folder)/training_report.json")
        guard let store, let recorder else { return nil }
        let base = try store.baseModel(path: modelPath, config: languageModel.model.config)
        let hyperparameters = String(decoding: try JSONEncoder.sorted.encode(options), as: UTF8.self)
        let record = try store.register(
            folder: folder, name: name, base: base,
            provenance: AdapterStore.Provenance(
                parent: parent, datasetName: URL(fileURLWithPath: data).lastPathComponent, datasetSHA256: recorder.datasetSHA256,
                hyperparameters: hyperparameters, trainLoss: report.finalTrainLoss, validLoss: report.finalValidLoss,
                description: description, tags: tags))
        recorder.finish(report, status: .completed, adapter: record.id)
        return record
    }
}

/// `training_report.json` next to the adapter: what was trained, how, on what, with what result.
public struct TrainingRecord: Codable, Sendable {
    public var options: TrainingOptions
    public var report: TrainingReport
    public var data: String
    public var model: String
}
