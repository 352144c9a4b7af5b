import Inference
import Training

extension LanguageModel {
    /// The token that ends `text` documents and pads batches: `<|endoftext|>`, else EOS.
    public func endOfTextId() throws(DatasetError) -> Int {
        guard let id = tokenizer.vocabulary.id(of: "<|endoftext|>") ?? tokenizer.vocabulary.eosId else {
            throw .unsupported(reason: "the tokenizer of \(source) has no <|endoftext|> or EOS token to end documents with")
        }
        return id
    }

    /// Encodes records exactly as training sees them.
    public func exampleEncoder(maxLength: Int, maskPrompt: Bool = true) throws(DatasetError) -> ExampleEncoder {
        ExampleEncoder(
            tokenizer: tokenizer, chatTemplate: chatTemplate, endOfText: try endOfTextId(), maxLength: maxLength, maskPrompt: maskPrompt)
    }
}
