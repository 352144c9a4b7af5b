import ArgumentParser
import Training

/// Training flags, spelled as mlx-lm's `lora` command where it has them.
struct TrainingOptionGroup: ParsableArguments {
    @Option(name: .long, help: "Optimizer steps.")
    var iters: Int = 300

    @Option(name: .long, help: "Sequences per micro-batch.")
    var batchSize: Int = 4

    @Option(name: .long, help: "Micro-batches per optimizer step.")
    var gradAccumulationSteps: Int = 1

    @Option(name: .long, help: "Longer examples are truncated to this many tokens.")
    var maxSeqLength: Int = 256

    @Option(name: .long, help: "Peak learning rate.")
    var learningRate: Float = 2e-4

    @Option(name: .long, help: "Learning-rate schedule after warm-up: constant, linear or cosine.")
    var lrSchedule: LearningRateSchedule.Shape = .constant

    @Option(name: .long, help: "Linear warm-up steps.")
    var warmup: Int = 0

    @Option(name: .long, help: "AdamW decoupled weight decay.")
    var weightDecay: Float = 0

    @Option(name: .long, help: "Clip the global gradient norm to this (0: no clipping).")
    var maxGradNorm: Float = 1

    @Option(name: .long, help: "Seed for initialisation, shuffling and dropout.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Report the training loss every N steps.")
    var stepsPerReport: Int = 10

    @Option(name: .long, help: "Validation loss every N steps (0: only at the end).")
    var stepsPerEval: Int = 100

    @Option(name: .long, help: "Validation batches per evaluation (0: all).")
    var valBatches: Int = 0

    @Option(name: .long, help: "Save a checkpoint every N steps (0: only on interruption).")
    var saveEvery: Int = 0

    @Flag(name: .long, inversion: .prefixedNo, help: "Loss only on completion / assistant tokens.")
    var maskPrompt = true

    @Flag(name: .long, help: "Activation checkpointing: keep only layer inputs, recompute in backward (less memory, slower).")
    var gradCheckpoint = false

    @Flag(name: .long, help: "Pack each batch's examples end to end instead of padding rows to the longest (same loss and gradients, no compute on padding).")
    var pack = false

    func validate() throws {
        for (name, value) in [("--iters", iters), ("--batch-size", batchSize), ("--grad-accumulation-steps", gradAccumulationSteps),
                              ("--max-seq-length", maxSeqLength), ("--steps-per-report", stepsPerReport)] where value < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        for (name, value) in [("--warmup", warmup), ("--steps-per-eval", stepsPerEval), ("--val-batches", valBatches), ("--save-every", saveEvery)]
        where value < 0 {
            throw ValidationError("\(name) must be 0 or more")
        }
        guard learningRate > 0 else { throw ValidationError("--learning-rate must be positive") }
        guard weightDecay >= 0, maxGradNorm >= 0 else { throw ValidationError("--weight-decay and --max-grad-norm must be 0 or more") }
    }

    var options: TrainingOptions {
        TrainingOptions(
            iterations: iters, batchSize: batchSize, gradientAccumulation: gradAccumulationSteps, maxSeqLength: maxSeqLength,
            learningRate: learningRate, schedule: lrSchedule, warmupSteps: warmup, weightDecay: weightDecay, maxGradNorm: maxGradNorm,
            seed: seed, stepsPerReport: stepsPerReport, stepsPerEval: stepsPerEval, validationBatches: valBatches,
            saveEvery: saveEvery, maskPrompt: maskPrompt, gradientCheckpointing: gradCheckpoint, pack: pack)
    }
}

extension LearningRateSchedule.Shape: ExpressibleByArgument {}
