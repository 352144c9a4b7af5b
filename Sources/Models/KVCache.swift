/// Keys and values of every position processed so far, per layer, so decoding a token costs
/// one position's work instead of the whole prefix.
///
/// One manual buffer rather than an array per layer: a batched decode step reads every row's
/// cache from both threads in each layer, and handing out arrays there cost a retain and release
/// each time on objects both threads share (an 8-row step's attention: 1.8 → 1.5 ms).
public final class KVCache {
    public let capacity: Int
    /// Positions filled.
    public private(set) var count = 0
    private let layerSize: Int
    /// Per layer: keys [capacity, Hkv, D], then values [capacity, Hkv, D].
    private let storage: UnsafeMutablePointer<Float>

    public init(config: LlamaConfig, capacity: Int) {
        self.capacity = capacity
        layerSize = capacity * config.kvDim
        let total = 2 * config.numHiddenLayers * layerSize
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0, count: total)
    }

    deinit { storage.deallocate() }

    /// Layer `layer`'s keys: [capacity, Hkv, D]. Valid while the cache lives.
    func keys(_ layer: Int) -> UnsafeMutablePointer<Float> { storage + 2 * layer * layerSize }

    /// Layer `layer`'s values: [capacity, Hkv, D]. Valid while the cache lives.
    func values(_ layer: Int) -> UnsafeMutablePointer<Float> { storage + (2 * layer + 1) * layerSize }

    func advance(by n: Int) { count += n }

    /// Forgets everything after the first `length` positions (e.g. to reuse a shared prompt).
    public func truncate(to length: Int) { count = min(count, max(0, length)) }
}
