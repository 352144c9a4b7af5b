/// The low-rank delta of one projection, `y += scale · B·(A·x)`, as plain values: the forward
/// pass only needs these numbers, never files, PEFT names or the registry.
public struct LowRankPair: Sendable, Equatable {
    /// [R, in]
    public var a: [Float]
    /// [out, R]
    public var b: [Float]
    public let rank: Int
    public let scale: Float

    public init(a: [Float], b: [Float], rank: Int, scale: Float) {
        precondition(rank > 0 && a.count % rank == 0 && b.count % rank == 0, "LoRA shapes do not match rank \(rank)")
        self.a = a
        self.b = b
        self.rank = rank
        self.scale = scale
    }

    public var inFeatures: Int { a.count / rank }
    public var outFeatures: Int { b.count / rank }
}

/// The adapters active in one layer, by projection (nil: not adapted).
public struct LayerAdapters: Sendable, Equatable {
    private var pairs: [LowRankPair?]

    public init() {
        pairs = Array(repeating: nil, count: LayerTensor.allCases.count)
    }

    public subscript(_ tensor: LayerTensor) -> LowRankPair? {
        get { pairs[tensor.index] }
        set {
            precondition(newValue == nil || tensor.isProjection, "\(tensor) is not a projection")
            pairs[tensor.index] = newValue
        }
    }

    public var isEmpty: Bool { pairs.allSatisfy { $0 == nil } }
}

extension LayerTensor {
    /// The seven linear projections LoRA can adapt (the norms cannot).
    public static let projections: [LayerTensor] = [.q, .k, .v, .o, .gate, .up, .down]

    public var isProjection: Bool { self != .attnNorm && self != .ffnNorm }
}

extension LayerAdapters {
    /// The same adapted projections with A and B zeroed: a gradient accumulator.
    public func zeros() -> LayerAdapters {
        var result = LayerAdapters()
        for tensor in LayerTensor.projections {
            guard let pair = self[tensor] else { continue }
            result[tensor] = LowRankPair(
                a: Array(repeating: 0, count: pair.a.count), b: Array(repeating: 0, count: pair.b.count),
                rank: pair.rank, scale: pair.scale)
        }
        return result
    }
}
