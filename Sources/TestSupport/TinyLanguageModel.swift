import Foundation
import Formats
import Models
import Tokenizers

/// A random tiny Llama with a byte-level tokenizer (one token per byte, no merges) and a
/// ChatML template, written as a GGUF file: enough for the CLI-level workflows (train,
/// evaluate, sweep) to run in milliseconds per step.
public enum TinyLanguageModel {
    public static let specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    public static let config = LlamaConfig(
        vocabSize: 256 + specialTokens.count, hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 2, numAttentionHeads: 4,
        numKeyValueHeads: 2, ropeTheta: 10000, rmsNormEps: 1e-5, maxPositionEmbeddings: 256, tieWordEmbeddings: true)

    /// Writes the model to `path` and returns it.
    @discardableResult
    public static func write(to path: String, seed: UInt64 = 1) throws -> String {
        let tokens = (0..<256).map { ByteLevel.encode([UInt8($0)]) } + specialTokens
        let types = Array(repeating: GGUFValue.int32(1), count: 256) + Array(repeating: .int32(3), count: specialTokens.count)
        let template = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
        let builder = TinyLlama.gguf(
            TinyLlama.random(seed: seed, config: config),
            extraMetadata: [
                ("tokenizer.ggml.model", .string("gpt2")),
                ("tokenizer.ggml.pre", .string("gpt2")),
                ("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })),
                ("tokenizer.ggml.token_type", .array(types)),
                ("tokenizer.ggml.merges", .array([])),
                ("tokenizer.ggml.eos_token_id", .uint32(UInt32(256 + 2))),
                ("tokenizer.chat_template", .string(template)),
            ])
        try builder.build().write(to: URL(fileURLWithPath: path))
        return path
    }
}
