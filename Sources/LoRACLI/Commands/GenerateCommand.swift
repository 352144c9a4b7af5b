import ArgumentParser
import Foundation
import Inference
import LoRA
import Tokenizers

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generate text from a prompt, streaming tokens as they come.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(name: .long, help: "The prompt text.")
    var prompt: String

    @Flag(name: .long, help: "Wrap the prompt as a user message in the model's chat template.")
    var chat = false

    @Option(name: .long, help: "System message for --chat (default: the template's own).")
    var system: String?

    @Option(name: .long, help: "A registered adapter (NAME or NAME@VERSION) or a PEFT LoRA folder to apply.")
    var adapter: String?


    @OptionGroup var adapterOptions: AdapterOptions

    @Option(name: .long, help: "Maximum number of new tokens.")
    var maxTokens: Int = 128

    @Option(name: [.customShort("j"), .long], help: "Hold the answer to a JSON Schema (inline JSON, or a file), by constrained decoding as serve's json_schema.")
    var jsonSchema: String?

    @Flag(name: .long, help: "Hold the answer to a JSON object (serve's json_object).")
    var json = false

    @Flag(name: .long, help: "Print token counts and speed to standard error at the end.")
    var verbose = false

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
        if json && jsonSchema != nil { throw ValidationError("--json and --json-schema are alternatives") }
    }

    /// The grammar `--json` or `--json-schema` asks for.
    func grammar() throws -> JSONGrammar? {
        if json { return JSONGrammar.anyObject() }
        guard let jsonSchema else { return nil }
        let isInline = jsonSchema.trimmingCharacters(in: .whitespaces).hasPrefix("{")
        let bytes: [UInt8]
        if isInline {
            bytes = Array(jsonSchema.utf8)
        } else {
            guard let data = FileManager.default.contents(atPath: jsonSchema) else { throw ValidationError("--json-schema: cannot read \(jsonSchema)") }
            bytes = Array(data)
        }
        let source = isInline ? "--json-schema" : jsonSchema
        do {
            return try JSONGrammar(schema: try JSONValue.parse(bytes))
        } catch {
            throw ValidationError("\(source): \(error)")
        }
    }

    func run() throws {
        let grammar = try grammar()
        let languageModel = try modelOptions.load()
        let adapters = try adapter.map {
            try adapterOptions.resolver(modelPath: modelOptions.resolvedPath, baseNames: languageModel.names)
                .load($0, config: languageModel.model.config, force: adapterOptions.force).layers
        }
        let ids: [Int]
        if chat {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            ids = try languageModel.chatPrompt(messages)
        } else {
            ids = languageModel.tokenizer.encode(prompt)
        }
        let start = Date()
        let result = try Generator(languageModel).generate(
            prompt: ids, maxTokens: maxTokens, sampling: sampling.parameters, adapters: adapters, grammar: grammar
        ) { piece in
            FileHandle.standardOutput.write(Data(piece.utf8))
            return true
        }
        FileHandle.standardOutput.write(Data("\n".utf8))
        if result.stoppedAtContextLimit {
            FileHandle.standardError.write(Data("warning: stopped at the model's context limit (\(languageModel.model.config.maxPositionEmbeddings) tokens)\n".utf8))
        }
        if verbose {
            let seconds = Date().timeIntervalSince(start)
            let line = "prompt \(result.promptTokens) tokens, generated \(result.tokens.count) tokens in \(String(format: "%.2f", seconds)) s\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
