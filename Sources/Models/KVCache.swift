/// Keys and values of every position processed so far, per layer, so decoding a token costs
/// one position's work instead of the whole prefix.
public final class KVCache {
    public let capacity: Int
    /// Per layer: [capacity, Hkv, D]
    var keys: [[Float]]
    var values: [[Float]]
    /// Positions filled.
    public private(set) var count = 0

    public init(config: LlamaConfig, capacity: Int) {
        self.capacity = capacity
        let size = capacity * config.kvDim
        keys = Array(repeating: [Float](repeating: 0, count: size), count: config.numHiddenLayers)
        values = keys
    }

    func advance(by n: Int) { count += n }

    /// Forgets everything after the first `length` positions (e.g. to reuse a shared prompt).
    public func truncate(to length: Int) { count = min(count, max(0, length)) }
}
