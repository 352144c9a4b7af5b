import Models
import Synchronization

/// Loaded adapters kept in memory under a byte budget (and at most `maxCount` of them), least
/// recently used evicted first.
/// Adapters are values, so handing one out is a reference copy; swapping the adapter of a
/// request is a dictionary lookup, and an eviction never disturbs a request already using it.
public final class AdapterCache: Sendable {
    public struct Statistics: Sendable, Equatable {
        public var hits = 0, misses = 0, evictions = 0
        public var bytes = 0, count = 0

        public init(hits: Int = 0, misses: Int = 0, evictions: Int = 0, bytes: Int = 0, count: Int = 0) {
            (self.hits, self.misses, self.evictions, self.bytes, self.count) = (hits, misses, evictions, bytes, count)
        }
    }

    private struct Entry {
        var adapters: [LayerAdapters]
        var bytes: Int
        var lastUse: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
        var statistics = Statistics()
    }

    public let budgetBytes: Int
    public let maxCount: Int
    private let state = Mutex(State())

    public init(budgetBytes: Int, maxCount: Int = .max) {
        self.budgetBytes = budgetBytes
        self.maxCount = max(1, maxCount)
    }

    /// The cached adapter for `key`, or `load()`'s result, cached (evicting others past the budget).
    public func adapters(for key: String, load: () throws -> [LayerAdapters]) rethrows -> [LayerAdapters] {
        if let hit = state.withLock({ state -> [LayerAdapters]? in
            guard var entry = state.entries[key] else { return nil }
            state.clock += 1
            entry.lastUse = state.clock
            state.entries[key] = entry
            state.statistics.hits += 1
            return entry.adapters
        }) {
            return hit
        }
        let loaded = try load()
        let bytes = Self.byteCount(loaded)
        state.withLock { state in
            state.statistics.misses += 1
            state.clock += 1
            state.entries[key] = Entry(adapters: loaded, bytes: bytes, lastUse: state.clock)
            while state.entries.values.reduce(0, { $0 + $1.bytes }) > budgetBytes || state.entries.count > maxCount, state.entries.count > 1,
                let oldest = state.entries.filter({ $0.key != key }).min(by: { $0.value.lastUse < $1.value.lastUse })?.key
            {
                state.entries[oldest] = nil
                state.statistics.evictions += 1
            }
            state.statistics.bytes = state.entries.values.reduce(0) { $0 + $1.bytes }
            state.statistics.count = state.entries.count
        }
        return loaded
    }

    public func evict(_ key: String) {
        state.withLock { state in
            if state.entries.removeValue(forKey: key) != nil { state.statistics.evictions += 1 }
            state.statistics.bytes = state.entries.values.reduce(0) { $0 + $1.bytes }
            state.statistics.count = state.entries.count
        }
    }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// Bytes of A and B matrices.
    public static func byteCount(_ adapters: [LayerAdapters]) -> Int {
        adapters.reduce(0) { total, layer in
            total + LayerTensor.projections.reduce(0) { $0 + (layer[$1].map { ($0.a.count + $0.b.count) * 4 } ?? 0) }
        }
    }
}
