import ArgumentParser
import Foundation
import Formats
import Inference
import Kernels
import Models

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Print a model's architecture, tensor types and tokenizer facts.")

    @OptionGroup var modelOptions: ModelOptions

    func run() throws {
        let path = modelOptions.resolvedPath
        let languageModel = try modelOptions.load()
        let config = languageModel.model.config
        let model = languageModel.model
        print("model: \(path)")
        if let gguf = try? GGUFFile(path: path) {
            print("format: GGUF v\(gguf.version), \(gguf.tensors.count) tensors, alignment \(gguf.alignment)")
            for key in ["general.name", "general.architecture", "general.size_label", "general.license"] {
                if let value = gguf.metadata[key] { print("\(key): \(value.summary)") }
            }
            var types: [String: Int] = [:]
            for tensor in gguf.tensors { types[tensor.type.description, default: 0] += 1 }
            print("tensor types: " + types.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
            if let embedding = gguf.tensor(named: GlobalTensor.tokenEmbedding.ggufName) {
                print("token_embd.weight: \(embedding.type)")
            }
        } else {
            print("format: Hugging Face safetensors folder")
        }
        let parameters = languageModel.model.weights.parameterCount
        print("architecture: llama, \(config.numHiddenLayers) layers, hidden \(config.hiddenSize), FFN \(config.intermediateSize)")
        print("attention: \(config.numAttentionHeads) query heads, \(config.numKeyValueHeads) key/value heads, head dim \(config.headDim)")
        print("rope theta: \(config.ropeTheta), rms eps: \(config.rmsNormEps), context: \(config.maxPositionEmbeddings)")
        print("head: \(config.tieWordEmbeddings ? "tied to token embedding" : "separate output matrix")")
        print("parameters: \(parameters) (\(String(format: "%.1f", Double(parameters) / 1e6)) M)")
        let tokenizer = languageModel.tokenizer
        let vocabulary = tokenizer.vocabulary
        print("tokenizer: byte-level BPE, pre-tokenizer \(tokenizer.preTokenizer.rawValue), \(vocabulary.count) tokens, \(vocabulary.specialIds.count) special")
        let name: (Int?) -> String = { id in id.map { "\($0) \(vocabulary.tokens[$0])" } ?? "none" }
        print("bos: \(name(vocabulary.bosId)), eos: \(name(vocabulary.eosId))")
        print("stop tokens: " + languageModel.stopIds.sorted().map { name($0) }.joined(separator: ", "))
        if let template = languageModel.chatTemplate {
            print("chat template: ChatML, default system: \(template.defaultSystem.map { "\"\($0)\"" } ?? "none")")
        } else {
            print("chat template: none")
        }
        print("kernels: \(KernelPath.summary)\(model.weights.argmaxScreen.map { ", argmax screen (\($0.path))" } ?? "")")
    }
}
