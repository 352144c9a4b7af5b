/// Keys and values of every position processed so far, per layer, so decoding a token costs
/// one position's work instead of the whole prefix.
///
/// One manual buffer rather than an array per layer: a batched decode step reads every row's
/// cache from both threads in each layer, and handing out arrays there cost a retain and release
/// each time on objects both threads share.
public final class KVCache {
    public let capacity: Int
    /// Positions filled.
    public private(set) var count = 0
    private let kvHeads: Int, headDim: Int
    private let layerSize: Int
    /// Per layer: keys [Hkv, capacity, D], then values [Hkv, capacity, D]. Each key/value head's
    /// positions are contiguous, in the order decode attention reads them: rows interleaved
    /// across heads ([capacity, Hkv, D]) read at half the speed once a long context's cache no
    /// longer fits in cache.
    private let storage: UnsafeMutablePointer<Float>

    public init(config: LlamaConfig, capacity: Int) {
        self.capacity = capacity
        kvHeads = config.numKeyValueHeads
        headDim = config.headDim
        layerSize = capacity * config.kvDim
        let total = 2 * config.numHiddenLayers * layerSize
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0, count: total)
    }

    deinit { storage.deallocate() }

    /// Layer `layer`'s keys: [Hkv, capacity, D]. Valid while the cache lives.
    func keys(_ layer: Int) -> UnsafeMutablePointer<Float> { storage + 2 * layer * layerSize }

    /// Layer `layer`'s values: [Hkv, capacity, D]. Valid while the cache lives.
    func values(_ layer: Int) -> UnsafeMutablePointer<Float> { storage + (2 * layer + 1) * layerSize }

    /// Floats between one key/value head's rows and the next head's.
    var headStride: Int { capacity * headDim }

    /// Writes `rows` positions' keys and values, each [rows, Hkv, D], at positions
    /// `position ..< position + rows` of layer `layer`.
    func store(layer: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, rows: Int, at position: Int) {
        let (keys, values) = (self.keys(layer), self.values(layer))
        for row in 0..<rows {
            for head in 0..<kvHeads {
                let source = (row * kvHeads + head) * headDim, target = head * headStride + (position + row) * headDim
                (keys + target).update(from: k + source, count: headDim)
                (values + target).update(from: v + source, count: headDim)
            }
        }
    }

    func advance(by n: Int) { count += n }

    /// Forgets everything after the first `length` positions (e.g. to reuse a shared prompt).
    public func truncate(to length: Int) { count = min(count, max(0, length)) }
}
