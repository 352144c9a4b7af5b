/// How a LoRA training run proceeds; flag names in the CLI follow mlx-lm.
public struct TrainingOptions: Sendable, Equatable, Codable {
    public var iterations: Int
    public var batchSize: Int
    public var gradientAccumulation: Int
    public var maxSeqLength: Int
    public var learningRate: Float
    public var schedule: LearningRateSchedule.Shape
    public var warmupSteps: Int
    public var weightDecay: Float
    /// Global gradient-norm clip; 0 disables (transformers' `max_grad_norm`).
    public var maxGradNorm: Float
    public var seed: UInt64
    public var stepsPerReport: Int
    /// Validation every N steps (and at the end); 0: only at the end.
    public var stepsPerEval: Int
    /// Validation batches per evaluation; 0: the whole validation set.
    public var validationBatches: Int
    /// Checkpoint every N steps; 0: none until the end or an interruption.
    public var saveEvery: Int
    public var maskPrompt: Bool
    /// Keep only layer inputs and recompute the rest in backward (less memory, ~⅓ more compute).
    public var gradientCheckpointing: Bool
    /// A batch's examples laid end to end without padding (attention and positions per
    /// example), instead of rows padded to the longest; the same loss and gradients. Optional so
    /// that reports and checkpoints written before it existed still read (nil: padded).
    public var pack: Bool?

    public var packs: Bool { pack ?? false }

    public init(
        iterations: Int = 300, batchSize: Int = 4, gradientAccumulation: Int = 1, maxSeqLength: Int = 256,
        learningRate: Float = 2e-4, schedule: LearningRateSchedule.Shape = .constant, warmupSteps: Int = 0,
        weightDecay: Float = 0, maxGradNorm: Float = 1, seed: UInt64 = 0, stepsPerReport: Int = 10, stepsPerEval: Int = 100,
        validationBatches: Int = 0, saveEvery: Int = 0, maskPrompt: Bool = true, gradientCheckpointing: Bool = false, pack: Bool = false
    ) {
        self.iterations = iterations
        self.batchSize = batchSize
        self.gradientAccumulation = gradientAccumulation
        self.maxSeqLength = maxSeqLength
        self.learningRate = learningRate
        self.schedule = schedule
        self.warmupSteps = warmupSteps
        self.weightDecay = weightDecay
        self.maxGradNorm = maxGradNorm
        self.seed = seed
        self.stepsPerReport = stepsPerReport
        self.stepsPerEval = stepsPerEval
        self.validationBatches = validationBatches
        self.saveEvery = saveEvery
        self.maskPrompt = maskPrompt
        self.gradientCheckpointing = gradientCheckpointing
        self.pack = pack ? true : nil
    }

    public var learningRateSchedule: LearningRateSchedule {
        LearningRateSchedule(peak: learningRate, shape: schedule, warmupSteps: warmupSteps, totalSteps: iterations)
    }
}
