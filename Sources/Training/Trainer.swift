import Foundation
import Kernels
import LoRA
import Models

/// The LoRA training loop as a library: AdamW on A/B only, LR schedule, gradient accumulation,
/// global-norm clipping, periodic validation and checkpoints; progress goes out as events.
public final class Trainer {
    public let model: LlamaModel
    public let options: TrainingOptions
    public let train: Batcher
    public let valid: Batcher?
    public let optimizer: AdamW
    /// Where periodic and interruption checkpoints go (`<dir>/step-000100`); nil: none.
    public let checkpointDirectory: String?
    public let baseModelName: String

    public private(set) var adapter: LoRAAdapter
    private var firstMoment: [LayerAdapters]
    private var secondMoment: [LayerAdapters]
    private var step = 0
    private var report: TrainingReport
    private let scratch = TrainingScratch()

    public init(
        model: LlamaModel, adapter: LoRAAdapter, train: [Example], valid: [Example]?, options: TrainingOptions, padId: Int,
        checkpointDirectory: String? = nil, baseModelName: String = "", resumeFrom checkpoint: Checkpoint? = nil
    ) {
        Memory.keepFreedPages()
        self.model = model
        self.options = options
        self.train = Batcher(examples: train, batchSize: options.batchSize, seed: options.seed, padId: padId, pack: options.packs)
        self.valid = valid.flatMap { $0.isEmpty ? nil : Batcher(examples: $0, batchSize: options.batchSize, seed: 0, padId: padId, shuffle: false, pack: options.packs) }
        optimizer = AdamW(weightDecay: options.weightDecay)
        self.checkpointDirectory = checkpointDirectory
        self.baseModelName = baseModelName
        self.adapter = checkpoint?.adapter ?? adapter
        firstMoment = checkpoint?.firstMoment ?? adapter.layers.map { $0.zeros() }
        secondMoment = checkpoint?.secondMoment ?? adapter.layers.map { $0.zeros() }
        step = checkpoint?.step ?? 0
        report = checkpoint?.report
            ?? TrainingReport(
                steps: 0, interrupted: false, finalTrainLoss: nil, finalValidLoss: nil, finalValidPerplexity: nil, trainedTokens: 0,
                seconds: 0, tokensPerSecond: 0, lossCurve: [], validationCurve: [])
        report.interrupted = false
    }

    /// Runs to `options.iterations` (or until `onEvent` says stop, which saves a checkpoint).
    public func run(onEvent: (TrainingEvent) -> TrainingDecision = { _ in .proceed }) throws -> TrainingReport {
        let schedule = options.learningRateSchedule
        var windowLoss = 0.0, windowCount = 0, windowTokens = 0
        var windowStart = Date()
        let runStart = Date()
        let secondsBefore = report.seconds
        var lastNorm = 0.0
        while step < options.iterations {
            step += 1
            var gradients = adapter.layers.map { $0.zeros() }
            let batches = (0..<options.gradientAccumulation).map { train.batch((step - 1) * options.gradientAccumulation + $0) }
            // One optimizer step averages over every scored token of its micro-batches, exactly
            // as if they were one batch.
            let scored = batches.reduce(0) { $0 + $1.scoredCount }
            for (micro, batch) in batches.enumerated() {
                let loss = try model.lossAndGradients(
                    batch, adapters: adapter.layers, gradients: &gradients, gradientScale: 1 / Float(max(scored, 1)),
                    dropout: adapter.config.dropout, seed: options.seed &+ UInt64(step * 1000 + micro),
                    checkpointing: options.gradientCheckpointing, scratch: scratch)
                windowLoss += loss
                windowTokens += batch.realTokens
            }
            windowCount += scored
            lastNorm = clip(&gradients)
            let rate = schedule.rate(at: step)
            applyAdamW(gradients, learningRate: rate)
            report.trainedTokens += batches.reduce(0) { $0 + $1.realTokens }

            if step % options.stepsPerReport == 0 || step == options.iterations {
                let seconds = Date().timeIntervalSince(windowStart)
                let mean = windowLoss / Double(max(windowCount, 1))
                report.lossCurve.append([Double(step), mean])
                report.finalTrainLoss = mean
                let event = TrainingEvent.step(
                    StepReport(
                        iteration: step, totalIterations: options.iterations, loss: mean, learningRate: rate, gradientNorm: lastNorm,
                        tokensPerSecond: Double(windowTokens) / max(seconds, 1e-9),
                        elapsedSeconds: secondsBefore + Date().timeIntervalSince(runStart)))
                windowLoss = 0
                windowCount = 0
                windowTokens = 0
                if onEvent(event) == .stop { return try interrupt(onEvent, runStart: runStart, secondsBefore: secondsBefore) }
                windowStart = Date()
            }
            if (options.stepsPerEval > 0 && step % options.stepsPerEval == 0) || step == options.iterations, valid != nil {
                let evaluationStart = Date()
                let (loss, perplexity) = try validate()
                report.validationCurve.append([Double(step), loss])
                report.finalValidLoss = loss
                report.finalValidPerplexity = perplexity
                if onEvent(.validation(iteration: step, loss: loss, perplexity: perplexity)) == .stop {
                    return try interrupt(onEvent, runStart: runStart, secondsBefore: secondsBefore)
                }
                windowStart = windowStart.addingTimeInterval(Date().timeIntervalSince(evaluationStart))
            }
            if options.saveEvery > 0 && step % options.saveEvery == 0 && step < options.iterations {
                if let path = try saveCheckpoint(runStart: runStart, secondsBefore: secondsBefore),
                    onEvent(.checkpoint(iteration: step, path: path)) == .stop
                {
                    return try interrupt(onEvent, runStart: runStart, secondsBefore: secondsBefore)
                }
            }
        }
        finishTiming(runStart: runStart, secondsBefore: secondsBefore)
        _ = onEvent(.finished(report))
        return report
    }

    /// Mean loss per scored token over the validation set (or its first `validationBatches`).
    public func validate() throws -> (loss: Double, perplexity: Double) {
        guard let valid else { return (.nan, .nan) }
        var batches = valid.sequentialBatches()
        if options.validationBatches > 0 { batches = Array(batches.prefix(options.validationBatches)) }
        var total = 0.0, count = 0
        for batch in batches {
            total += try model.loss(batch, adapters: adapter.layers, scratch: scratch)
            count += batch.scoredCount
        }
        let loss = total / Double(max(count, 1))
        return (loss, exp(loss))
    }

    /// The state to resume from, as `Checkpoint.load` would read it back.
    public var checkpoint: Checkpoint {
        Checkpoint(step: step, adapter: adapter, firstMoment: firstMoment, secondMoment: secondMoment, options: options, report: report)
    }

    // MARK: - Steps

    /// Scales gradients so their global L2 norm is at most `maxGradNorm`; returns the norm before.
    private func clip(_ gradients: inout [LayerAdapters]) -> Double {
        var sum = 0.0
        for layer in gradients {
            for tensor in LayerTensor.projections {
                guard let g = layer[tensor] else { continue }
                for x in g.a { sum += Double(x) * Double(x) }
                for x in g.b { sum += Double(x) * Double(x) }
            }
        }
        let norm = sum.squareRoot()
        guard options.maxGradNorm > 0, norm > Double(options.maxGradNorm) else { return norm }
        // torch.nn.utils.clip_grad_norm_: multiply by max_norm / (norm + 1e-6).
        let factor = Float(Double(options.maxGradNorm) / (norm + 1e-6))
        for l in gradients.indices {
            for tensor in LayerTensor.projections {
                guard var g = gradients[l][tensor] else { continue }
                for i in g.a.indices { g.a[i] *= factor }
                for i in g.b.indices { g.b[i] *= factor }
                gradients[l][tensor] = g
            }
        }
        return norm
    }

    private func applyAdamW(_ gradients: [LayerAdapters], learningRate: Float) {
        for l in adapter.layers.indices {
            for tensor in LayerTensor.projections {
                guard var p = adapter.layers[l][tensor], let g = gradients[l][tensor], var m = firstMoment[l][tensor],
                    var v = secondMoment[l][tensor]
                else { continue }
                optimizer.update(&p.a, gradients: g.a, m: &m.a, v: &v.a, count: p.a.count, step: step, learningRate: learningRate)
                optimizer.update(&p.b, gradients: g.b, m: &m.b, v: &v.b, count: p.b.count, step: step, learningRate: learningRate)
                adapter.layers[l][tensor] = p
                firstMoment[l][tensor] = m
                secondMoment[l][tensor] = v
            }
        }
    }

    // MARK: - Checkpoints

    private func finishTiming(runStart: Date, secondsBefore: Double) {
        report.steps = step
        report.seconds = secondsBefore + Date().timeIntervalSince(runStart)
        report.tokensPerSecond = Double(report.trainedTokens) / max(report.seconds, 1e-9)
    }

    @discardableResult
    private func saveCheckpoint(runStart: Date, secondsBefore: Double) throws -> String? {
        guard let checkpointDirectory else { return nil }
        finishTiming(runStart: runStart, secondsBefore: secondsBefore)
        let path = "\(checkpointDirectory)/step-\(String(format: "%06d", step))"
        try FileManager.default.createDirectory(atPath: checkpointDirectory, withIntermediateDirectories: true)
        try checkpoint.save(to: path, baseModelName: baseModelName)
        return path
    }

    private func interrupt(_ onEvent: (TrainingEvent) -> TrainingDecision, runStart: Date, secondsBefore: Double) throws -> TrainingReport {
        report.interrupted = true
        if let path = try saveCheckpoint(runStart: runStart, secondsBefore: secondsBefore) {
            _ = onEvent(.checkpoint(iteration: step, path: path))
        }
        finishTiming(runStart: runStart, secondsBefore: secondsBefore)
        _ = onEvent(.finished(report))
        return report
    }
}
