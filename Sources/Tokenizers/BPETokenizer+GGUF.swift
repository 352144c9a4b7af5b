import Formats

extension BPETokenizer {
    /// llama.cpp token types (`tokenizer.ggml.token_type`): control and user-defined tokens are
    /// matched whole in text, like added tokens in `tokenizers`.
    private static let controlType = 3, userDefinedType = 4

    /// Reads `tokenizer.ggml.{model,pre,tokens,token_type,merges,bos_token_id,eos_token_id}`.
    public init(gguf: GGUFFile) throws {
        let source = gguf.path
        let model = gguf.metadata["tokenizer.ggml.model"]?.string
        guard model == "gpt2" else {
            throw TokenizerError.unsupported(source: source, what: "tokenizer.ggml.model = \(model ?? "none") (only byte-level BPE, \"gpt2\")")
        }
        let pre = gguf.metadata["tokenizer.ggml.pre"]?.string ?? "default"
        let preTokenizer: PreTokenizer
        switch pre {
        case "smollm": preTokenizer = .smollm
        case "gpt2", "default": preTokenizer = .gpt2
        default: throw TokenizerError.unsupported(source: source, what: "pre-tokenizer '\(pre)' (supported: smollm, gpt2)")
        }
        let tokens = try gguf.stringArray("tokenizer.ggml.tokens")
        let types = try gguf.intArray("tokenizer.ggml.token_type") ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw TokenizerError.missing(source: source, what: "one token_type per token (\(types.count) types, \(tokens.count) tokens)")
        }
        let specialIds = Set(types.indices.filter { types[$0] == Self.controlType || types[$0] == Self.userDefinedType })
        let vocabulary = Vocabulary(
            tokens: tokens, specialIds: specialIds,
            bosId: gguf.metadata["tokenizer.ggml.bos_token_id"]?.int,
            eosId: gguf.metadata["tokenizer.ggml.eos_token_id"]?.int)
        try self.init(
            vocabulary: vocabulary, merges: try gguf.stringArray("tokenizer.ggml.merges"),
            preTokenizer: preTokenizer, source: source)
    }
}
