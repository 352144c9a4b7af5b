import Foundation

/// Whether a PEFT adapter's `base_model_name_or_path` names another model than the loaded base.
/// The field is free text (a hub id, a path, a file name), so names are compared loosely: the
/// last path component, without a `.gguf` extension or a quantization suffix (`.Q4_1`,
/// `-q4_k_m`, `-GGUF`), lower case, letters and digits only; one containing the other agrees.
/// "HuggingFaceTB/SmolLM2-135M-Instruct" agrees with "SmolLM2-135M-Instruct.Q4_1.gguf";
/// "meta-llama/Llama-2-7b-hf" does not.
public enum BaseModelName {
    /// Why `adapterBase` contradicts every one of `baseNames`, or nil when one agrees (or when
    /// either side says nothing).
    public static func contradiction(adapterBase: String, baseNames: [String]) -> String? {
        let named = key(adapterBase)
        let keys = baseNames.map(key).filter { !$0.isEmpty }
        guard !named.isEmpty, !keys.isEmpty else { return nil }
        if keys.contains(where: { $0.contains(named) || named.contains($0) }) { return nil }
        return "the adapter's base_model_name_or_path is '\(adapterBase)', but the loaded base is \(baseNames.map { "'\($0)'" }.joined(separator: " / "))"
    }

    static func key(_ name: String) -> String {
        var last = URL(fileURLWithPath: name).lastPathComponent.lowercased()
        if last.hasSuffix(".gguf") { last.removeLast(5) }
        if let range = last.range(of: #"[-_.](gguf|q\d(_[0-9a-z]+)*|f16|f32|bf16)$"#, options: .regularExpression) { last.removeSubrange(range) }
        if let range = last.range(of: #"[-_.](gguf|q\d(_[0-9a-z]+)*|f16|f32|bf16)$"#, options: .regularExpression) { last.removeSubrange(range) }
        return String(last.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }.map(Character.init))
    }
}

extension LoRAAdapter {
    /// `base_model_name_or_path` from the folder's `adapter_config.json`, if it has one.
    public static func peftBaseModelName(in folder: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "\(folder)/\(configFile)"),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let name = json["base_model_name_or_path"] as? String, !name.isEmpty
        else { return nil }
        return name
    }
}
