import Kernels
import Models

/// Which examples form each micro-batch: a pure function of (seed, micro-batch index), so a
/// resumed run sees exactly the batches the uninterrupted run would have. Each epoch is a fresh
/// seeded shuffle; batches are padded to their longest example.
public struct Batcher: Sendable {
    public let examples: [Example]
    public let batchSize: Int
    public let seed: UInt64
    public let padId: Int
    public let shuffle: Bool

    public init(examples: [Example], batchSize: Int, seed: UInt64, padId: Int, shuffle: Bool = true) {
        precondition(!examples.isEmpty && batchSize > 0)
        self.examples = examples
        self.batchSize = batchSize
        self.seed = seed
        self.padId = padId
        self.shuffle = shuffle
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
        return Self.pad(chosen, padId: padId)
    }

    /// Consecutive batches covering every example once, in order (evaluation).
    public func sequentialBatches() -> [TrainingBatch] {
        stride(from: 0, to: examples.count, by: batchSize).map { start in
            Self.pad(Array(examples[start..<min(start + batchSize, examples.count)]), padId: padId)
        }
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
            for t in 0..<length {
                let next = t + 1
                targets.append(next < n && example.trained[next] ? example.tokens[next] : -100)
            }
        }
        return TrainingBatch(tokens: tokens, targets: targets, batchSize: examples.count, length: length)
    }
}
