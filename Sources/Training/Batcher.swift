import Kernels
import Models

/// Which examples form each micro-batch: a pure function of (seed, micro-batch index), so a
/// resumed run sees exactly the batches the uninterrupted run would have. Each epoch is a fresh
/// seeded shuffle; batches are padded to their longest example, or packed end to end.
public struct Batcher: Sendable {
    public let examples: [Example]
    public let batchSize: Int
    public let seed: UInt64
    public let padId: Int
    public let shuffle: Bool
    public let pack: Bool

    public init(examples: [Example], batchSize: Int, seed: UInt64, padId: Int, shuffle: Bool = true, pack: Bool = false) {
        precondition(!examples.isEmpty && batchSize > 0)
        self.examples = examples
        self.batchSize = batchSize
        self.seed = seed
        self.padId = padId
        self.shuffle = shuffle
        self.pack = pack
    }

    /// Example order of one epoch (Fisher-Yates with a per-epoch seed).
    func order(epoch: Int) -> [Int] {
        var indices = Array(examples.indices)
        guard shuffle else { return indices }
        var random = SeededRandom(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
        for i in stride(from: indices.count - 1, to: 0, by: -1) {
            indices.swapAt(i, Int(random.next() % UInt64(i + 1)))
        }
        return indices
    }

    /// The `index`-th micro-batch (from 0) of the endless stream of epochs.
    public func batch(_ index: Int) -> TrainingBatch {
        var chosen: [Example] = []
        var cursor = index * batchSize
        var cachedEpoch = -1
        var cachedOrder: [Int] = []
        while chosen.count < batchSize {
            let epoch = cursor / examples.count
            if epoch != cachedEpoch {
                cachedOrder = order(epoch: epoch)
                cachedEpoch = epoch
            }
            chosen.append(examples[cachedOrder[cursor % examples.count]])
            cursor += 1
        }
        return assemble(chosen)
    }

    /// Consecutive batches covering every example once, in order (evaluation).
    public func sequentialBatches() -> [TrainingBatch] {
        stride(from: 0, to: examples.count, by: batchSize).map { start in
            assemble(Array(examples[start..<min(start + batchSize, examples.count)]))
        }
    }

    func assemble(_ examples: [Example]) -> TrainingBatch { pack ? Self.pack(examples) : Self.pad(examples, padId: padId) }

    /// A target per position: the next token where it is trained, else -100.
    static func targets(_ example: Example, length: Int) -> [Int] {
        let n = example.tokens.count
        return (0..<length).map { t in t + 1 < n && example.trained[t + 1] ? example.tokens[t + 1] : -100 }
    }

    /// The examples end to end, each its own sequence: no padding to compute.
    static func pack(_ examples: [Example]) -> TrainingBatch {
        var tokens: [Int] = [], targets: [Int] = [], sequences: [Range<Int>] = []
        for example in examples {
            sequences.append(tokens.count..<(tokens.count + example.tokens.count))
            tokens += example.tokens
            targets += Self.targets(example, length: example.tokens.count)
        }
        return TrainingBatch(tokens: tokens, targets: targets, sequences: sequences)
    }

    /// Right-pads to the longest example; padding and untrained tokens get target -100.
    static func pad(_ examples: [Example], padId: Int) -> TrainingBatch {
        let length = examples.map(\.tokens.count).max() ?? 0
        var tokens: [Int] = [], targets: [Int] = []
        tokens.reserveCapacity(examples.count * length)
        targets.reserveCapacity(examples.count * length)
        for example in examples {
            let n = example.tokens.count
            tokens += example.tokens + Array(repeating: padId, count: length - n)
            targets += Self.targets(example, length: length)
        }
        return TrainingBatch(
            tokens: tokens, targets: targets, batchSize: examples.count, length: length, realTokens: examples.reduce(0) { $0 + $1.tokens.count })
    }
}
