import Foundation
import Inference
import LoRA
import Models
import Registry
import Synchronization

/// What a request's `model` can name: the base, a registered adapter (`NAME` for its latest
/// version or `NAME@VERSION`, looked up in the registry at request time, so adapters registered
/// while the server runs are served at once), or an adapter loaded by path through
/// `/v1/load_lora_adapter`. Loaded adapters live in an LRU cache under a memory budget.
public final class AdapterCatalog: Sendable {
    public let baseId: String
    public let store: AdapterStore?
    public let base: BaseModelRecord?
    public let config: LlamaConfig
    public let cache: AdapterCache
    /// `lora_name` → PEFT folder, for adapters loaded by path.
    private let loadedByPath = Mutex<[String: String]>([:])

    public init(baseId: String, store: AdapterStore?, base: BaseModelRecord?, config: LlamaConfig, cache: AdapterCache) {
        self.baseId = baseId
        self.store = store
        self.base = base
        self.config = config
        self.cache = cache
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unknownModel(String)
        case unusable(String, reason: String)

        public var description: String {
            switch self {
            case .unknownModel(let id): "The model '\(id)' does not exist"
            case .unusable(let id, let reason): "The model '\(id)' cannot be used: \(reason)"
            }
        }
    }

    /// The adapters for `model` (nil for the base), loading them on a cache miss.
    public func adapters(for model: String) throws(Failure) -> [LayerAdapters]? {
        if model == baseId { return nil }
        if let folder = loadedByPath.withLock({ $0[model] }) {
            return try cached("path:\(folder)", model) { try LoRAAdapter.loadPEFT(from: folder, for: config).layers }
        }
        guard let store, let base else { throw .unknownModel(model) }
        let record: AdapterRecord
        do {
            guard let found = try store.registry.adapter(model) else { throw Failure.unknownModel(model) }
            record = found
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .unusable(model, reason: "\(error)")
        }
        guard record.baseModelId == base.id else {
            throw .unusable(model, reason: "\(record.reference) was trained for another base model than the one this server runs")
        }
        return try cached(record.reference, model) { try store.load(record.reference, for: base, config: config).layers }
    }

    private func cached(_ key: String, _ model: String, _ load: () throws -> [LayerAdapters]) throws(Failure) -> [LayerAdapters] {
        do {
            return try cache.adapters(for: key, load: load)
        } catch {
            throw .unusable(model, reason: "\(error)")
        }
    }

    public struct Entry: Sendable, Equatable {
        public var id: String
        /// The base's id for adapters, nil for the base itself.
        public var parent: String?
        public var created: Date
    }

    /// The base, adapters loaded by path, then every registered adapter for this base, both as
    /// `NAME` (latest version) and `NAME@VERSION`.
    public func models() throws -> [Entry] {
        var entries = [Entry(id: baseId, parent: nil, created: base?.createdAt ?? Date(timeIntervalSince1970: 0))]
        for name in loadedByPath.withLock({ $0.keys.sorted() }) {
            entries.append(Entry(id: name, parent: baseId, created: Date()))
        }
        guard let store, let base else { return entries }
        var latest = Set<String>()
        for record in try store.registry.adapters(baseModelId: base.id) {
            if latest.insert(record.name).inserted { entries.append(Entry(id: record.name, parent: baseId, created: record.createdAt)) }
            entries.append(Entry(id: record.reference, parent: baseId, created: record.createdAt))
        }
        return entries
    }

    /// vLLM's `load_lora_adapter`: reads the PEFT folder now (so a bad one is refused at once)
    /// and serves it as `name`.
    public func load(name: String, path: String) throws(Failure) {
        guard name != baseId else { throw .unusable(name, reason: "the name is the base model's") }
        _ = try cached("path:\(path)", name) { try LoRAAdapter.loadPEFT(from: path, for: config).layers }
        loadedByPath.withLock { $0[name] = path }
    }

    /// vLLM's `unload_lora_adapter`: forgets an adapter loaded by path, or drops a registered
    /// one from memory (it stays servable and is read again on its next request).
    public func unload(name: String) throws(Failure) {
        if let folder = loadedByPath.withLock({ $0.removeValue(forKey: name) }) {
            cache.evict("path:\(folder)")
            return
        }
        guard let store, let record = try? store.registry.adapter(name) else { throw .unknownModel(name) }
        cache.evict(record.reference)
    }
}
