import Foundation

/// Whether a PEFT adapter's `base_model_name_or_path` names another model than the loaded base.
/// The field is whatever `from_pretrained` was given: a hub id, a local folder (`/data/models`,
/// `model`), a file. So a name contradicts the base only when it states a model family
/// (llama, qwen, mistral, smollm, ...) or a parameter count (`7b`, `135m`, `0.5b`) and every
/// one of the base's names states another: "meta-llama/Llama-2-7b-hf" contradicts
/// "SmolLM2-135M-Instruct.Q4_1.gguf"; "HuggingFaceTB/SmolLM2-135M-Instruct", "/work/models" and
/// "model" do not.
public enum BaseModelName {
    static let families = [
        "codellama", "llama", "qwen", "mixtral", "mistral", "gemma", "phi", "smollm", "falcon", "gpt2", "gptj", "gptneox", "olmo",
        "deepseek", "internlm", "baichuan", "stablelm", "starcoder", "bloom", "granite", "tinyllama",
    ]

    /// Why `adapterBase` contradicts the base known by `baseNames`, or nil.
    public static func contradiction(adapterBase: String, baseNames: [String]) -> String? {
        let named = traits(adapterBase)
        let base = baseNames.map(traits).reduce(Traits()) { $0.union($1) }
        let familyDiffers = !named.families.isEmpty && !base.families.isEmpty && named.families.isDisjoint(with: base.families)
        let sizeDiffers = !named.sizes.isEmpty && !base.sizes.isEmpty && named.sizes.isDisjoint(with: base.sizes)
        guard familyDiffers || sizeDiffers else { return nil }
        return "the adapter's base_model_name_or_path is '\(adapterBase)', but the loaded base is \(baseNames.map { "'\($0)'" }.joined(separator: " / "))"
    }

    struct Traits {
        var families: Set<String> = []
        var sizes: Set<String> = []

        func union(_ other: Traits) -> Traits { Traits(families: families.union(other.families), sizes: sizes.union(other.sizes)) }
    }

    /// The families and parameter counts a name states.
    static func traits(_ name: String) -> Traits {
        let lower = name.lowercased()
        var traits = Traits()
        // A token names a family when it is the family's name, maybe followed by a version
        // ("llama2", "qwen2", "smollm2", "phi3"); "phil" in a path names none.
        let tokens = lower.split { !($0.isLetter || $0.isNumber) }
        for token in tokens {
            guard let family = families.first(where: { token.hasPrefix($0) && token.dropFirst($0.count).allSatisfy(\.isNumber) }) else { continue }
            traits.families.insert(family == "codellama" || family == "tinyllama" ? "llama" : family)
        }
        let sizePattern = #"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])"#
        var searchRange = lower.startIndex..<lower.endIndex
        while let match = lower.range(of: sizePattern, options: .regularExpression, range: searchRange) {
            traits.sizes.insert(String(lower[match]))
            searchRange = match.upperBound..<lower.endIndex
        }
        return traits
    }
}

extension LoRAAdapter {
    /// Refuses a PEFT folder whose `base_model_name_or_path` contradicts the base (see
    /// `BaseModelName`); `remedy` says how to load it anyway (a flag, a request field).
    public static func checkBaseModelName(in folder: String, baseNames: [String], remedy: String) throws(LoRAError) {
        guard let named = peftBaseModelName(in: folder), let reason = BaseModelName.contradiction(adapterBase: named, baseNames: baseNames) else {
            return
        }
        throw .invalidConfig(path: "\(folder)/\(configFile)", reason: "\(reason); \(remedy)")
    }

    /// `base_model_name_or_path` from the folder's `adapter_config.json`, if it has one.
    static func peftBaseModelName(in folder: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "\(folder)/\(configFile)"),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let name = json["base_model_name_or_path"] as? String, !name.isEmpty
        else { return nil }
        return name
    }
}
