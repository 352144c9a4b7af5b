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
///
/// Registered names and versions are immutable through the API: a runtime load may not take
/// the base's id, a registered name, or a name already loaded, and a registered adapter is
/// found before a runtime one of the same name (one registered after the load).
public final class AdapterCatalog: Sendable {
    public let baseId: String
    public let store: AdapterStore?
    public let base: BaseModelRecord?
    public let config: LlamaConfig
    public let cache: AdapterCache
    /// `lora_name` → PEFT folder, for adapters loaded by path.
    private let loadedByPath = Mutex<[String: String]>([:])

    /// Names the base goes by (its id, file name, GGUF `general.name`), which a loaded PEFT
    /// folder's `base_model_name_or_path` must not contradict.
    public let baseNames: [String]

    public init(baseId: String, store: AdapterStore?, base: BaseModelRecord?, config: LlamaConfig, cache: AdapterCache, baseNames: [String] = []) {
        self.baseId = baseId
        self.baseNames = [baseId] + baseNames
        self.store = store
        self.base = base
        self.config = config
        self.cache = cache
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unknownModel(String)
        case unusable(String, reason: String)
        /// A runtime load's name that is malformed or taken.
        case nameRefused(String, reason: String)
        /// An unload of something no runtime load added.
        case notRuntimeLoaded(String, reason: String)

        public var description: String {
            switch self {
            case .unknownModel(let id): "The model '\(id)' does not exist"
            case .unusable(let id, let reason): "The model '\(id)' cannot be used: \(reason)"
            case .nameRefused(let name, let reason): "The name '\(name)' cannot be used: \(reason)"
            case .notRuntimeLoaded(let name, let reason): "'\(name)' \(reason)"
            }
        }
    }

    /// Names a runtime load may take: a letter or digit, then letters, digits, '.', '_' or '-',
    /// 64 characters at most (no '@', which names registered versions, and no '/').
    public static func isValidRuntimeName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64 else { return false }
        func plain(_ s: Unicode.Scalar) -> Bool { s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s)) }
        return plain(first) && name.unicodeScalars.allSatisfy { plain($0) || "._-".unicodeScalars.contains($0) }
    }

    /// The adapters for `model` (nil for the base), loading them on a cache miss.
    public func adapters(for model: String) throws(Failure) -> [LayerAdapters]? {
        if model == baseId { return nil }
        guard let record = try registered(model) else {
            if let folder = loadedByPath.withLock({ $0[model] }) {
                return try cached("path:\(folder)", model) { try LoRAAdapter.loadPEFT(from: folder, for: config).layers }
            }
            throw .unknownModel(model)
        }
        guard let store, let base else { throw .unknownModel(model) }
        guard record.baseModelId == base.id else {
            throw .unusable(model, reason: "\(record.reference) was trained for another base model than the one this server runs")
        }
        return try cached(record.reference, model) { try store.load(record.reference, for: base, config: config).layers }
    }

    /// The registry's row for `model` (NAME or NAME@VERSION), if it has one.
    private func registered(_ model: String) throws(Failure) -> AdapterRecord? {
        guard let store else { return nil }
        do { return try store.registry.adapter(model) } catch { throw .unusable(model, reason: "\(error)") }
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
        var latest = Set<String>()
        if let store, let base {
            for record in try store.registry.adapters(baseModelId: base.id) {
                if latest.insert(record.name).inserted { entries.append(Entry(id: record.name, parent: baseId, created: record.createdAt)) }
                entries.append(Entry(id: record.reference, parent: baseId, created: record.createdAt))
            }
        }
        // A runtime name a later registration took is served as the registered one: list it once.
        for name in loadedByPath.withLock({ $0.keys.sorted() }) where !latest.contains(name) {
            entries.append(Entry(id: name, parent: baseId, created: Date()))
        }
        return entries
    }

    /// vLLM's `load_lora_adapter`: reads the PEFT folder now (so a bad one is refused at once:
    /// shapes, NaN, a `base_model_name_or_path` naming another model unless `force`) and serves
    /// it as `name`, a name nothing else has.
    public func load(name: String, path: String, force: Bool = false) throws(Failure) {
        guard Self.isValidRuntimeName(name) else {
            throw .nameRefused(String(name.prefix(80)), reason: "use 1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        guard name != baseId else { throw .nameRefused(name, reason: "it is the base model's id") }
        if try registered(name) != nil { throw .nameRefused(name, reason: "a registered adapter has it; registered adapters cannot be replaced") }
        if loadedByPath.withLock({ $0[name] != nil }) { throw .nameRefused(name, reason: "an adapter with this name is already loaded; unload it first") }
        if !force {
            do throws(LoRAError) {
                try LoRAAdapter.checkBaseModelName(in: path, baseNames: baseNames, remedy: "send \"force\": true to load it anyway")
            } catch {
                throw .unusable(name, reason: "\(error)")
            }
        }
        _ = try cached("path:\(path)", name) { try LoRAAdapter.loadPEFT(from: path, for: config).layers }
        let taken = loadedByPath.withLock { loaded -> Bool in
            guard loaded[name] == nil else { return true }
            loaded[name] = path
            return false
        }
        if taken { throw .nameRefused(name, reason: "an adapter with this name is already loaded; unload it first") }
    }

    /// vLLM's `unload_lora_adapter`, for adapters loaded at run time only: a registered one
    /// stays served (remove it from the registry with `lora adapters rm`).
    public func unload(name: String) throws(Failure) {
        if let folder = loadedByPath.withLock({ $0.removeValue(forKey: name) }) {
            cache.evict("path:\(folder)")
            return
        }
        if name == baseId { throw .notRuntimeLoaded(name, reason: "is the base model; it cannot be unloaded") }
        if try registered(name) != nil {
            throw .notRuntimeLoaded(name, reason: "is a registered adapter; the API unloads only adapters loaded at run time (lora adapters rm removes it)")
        }
        throw .unknownModel(name)
    }
}
