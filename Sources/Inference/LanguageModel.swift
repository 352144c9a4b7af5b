import Foundation
import Kernels
import Formats
import Models
import Tokenizers

/// A loaded base model with everything generation needs: weights, tokenizer, chat template and
/// the tokens that end a reply.
public struct LanguageModel: Sendable {
    public let model: LlamaModel
    public let tokenizer: BPETokenizer
    public let chatTemplate: ChatTemplate?
    /// Generation stops at any of these (end-of-text, end-of-turn).
    public let stopIds: Set<Int>
    /// The file or folder it was loaded from.
    public let source: String
    /// What the model calls itself (GGUF `general.name`, a folder's `_name_or_path`), if it says.
    public let declaredName: String?

    public init(model: LlamaModel, tokenizer: BPETokenizer, chatTemplate: ChatTemplate?, source: String, declaredName: String? = nil) {
        self.declaredName = declaredName
        self.model = model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.source = source
        let vocabulary = tokenizer.vocabulary
        var stops = Set(["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"].compactMap { vocabulary.id(of: $0) })
        if let eos = vocabulary.eosId, eos != vocabulary.bosId { stops.insert(eos) }
        stopIds = stops
    }

    /// Loads a `.gguf` file or a Hugging Face model folder. `decoding: false` is for processes
    /// that only train: the GGUF's quantized blocks, which only decoding reads, are not kept.
    public static func load(path: String, decoding: Bool = true) throws -> LanguageModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FormatError.fileNotFound(path: path)
        }
        // Decode steps allocate and free their activations and logits every token, as training
        // steps do (see `Memory.keepFreedPages`).
        Memory.keepFreedPages()
        if isDirectory.boolValue { return try loadHuggingFaceFolder(path) }
        let gguf = try GGUFFile(path: path)
        let tokenizer = try BPETokenizer(gguf: gguf)
        let template = try gguf.metadata["tokenizer.chat_template"]?.string.map { try ChatTemplate(jinja: $0, source: path) }
        let model = LlamaModel(weights: try LlamaWeights(gguf: gguf, keepQuantized: decoding))
        try checkVocabulary(model, tokenizer, path)
        return LanguageModel(
            model: model, tokenizer: tokenizer, chatTemplate: template, source: path, declaredName: gguf.metadata["general.name"]?.string)
    }

    private static func loadHuggingFaceFolder(_ folder: String) throws -> LanguageModel {
        let model = LlamaModel(weights: try LlamaWeights(huggingFaceFolder: folder))
        let config = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(folder)/config.json")))) as? [String: Any]
        let tokenizer = try BPETokenizer(
            tokenizerJSON: "\(folder)/tokenizer.json",
            bosId: config?["bos_token_id"] as? Int, eosId: config?["eos_token_id"] as? Int)
        var template: ChatTemplate?
        let tokenizerConfigPath = "\(folder)/tokenizer_config.json"
        if let data = FileManager.default.contents(atPath: tokenizerConfigPath),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let jinja = json["chat_template"] as? String
        {
            template = try ChatTemplate(jinja: jinja, source: tokenizerConfigPath)
        }
        try checkVocabulary(model, tokenizer, folder)
        return LanguageModel(
            model: model, tokenizer: tokenizer, chatTemplate: template, source: folder, declaredName: config?["_name_or_path"] as? String)
    }

    private static func checkVocabulary(_ model: LlamaModel, _ tokenizer: BPETokenizer, _ source: String) throws {
        guard tokenizer.vocabulary.count <= model.config.vocabSize else {
            throw ModelError.invalidConfig(
                path: source,
                reason: "tokenizer has \(tokenizer.vocabulary.count) tokens but the model's vocabulary is \(model.config.vocabSize)")
        }
    }

    /// The names a PEFT adapter's `base_model_name_or_path` may give this model by.
    public var names: [String] { [URL(fileURLWithPath: source).lastPathComponent] + (declaredName.map { [$0] } ?? []) }

    /// Token ids of a chat rendered with the model's template, ready for generation.
    public func chatPrompt(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> [Int] {
        guard let chatTemplate else {
            throw ModelError.format("\(source): the model has no chat template; use a plain prompt")
        }
        return tokenizer.encode(chatTemplate.render(messages, addGenerationPrompt: addGenerationPrompt))
    }
}
