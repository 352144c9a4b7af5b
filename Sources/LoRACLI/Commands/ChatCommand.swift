import ArgumentParser
import Foundation
import Inference
import LoRA
import Models
import Registry
import Tokenizers

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with the base model or any adapter, switching adapters mid-conversation.",
        discussion: """
            Commands: /adapter NAME[@VERSION] or a PEFT folder (switch), /adapter none (base model), \
            /adapters (list registered adapters), /reset (new conversation), /quit.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var adapterOptions: AdapterOptions

    @Option(name: .long, help: "Adapter to start with (registered NAME[@VERSION] or a PEFT folder).")
    var adapter: String?

    @Option(name: .long, help: "System message (default: the template's own).")
    var system: String?

    @Option(name: .long, help: "Maximum new tokens per reply.")
    var maxTokens: Int = 256

    @Option(name: .long, help: "Memory for loaded adapters, in MiB (least recently used are dropped).")
    var adapterCacheMib: Int = 512


    func run() throws {
        let languageModel = try modelOptions.load()
        let config = languageModel.model.config
        let resolver = adapterOptions.resolver(modelPath: modelOptions.resolvedPath, baseNames: languageModel.names)
        let cache = AdapterCache(budgetBytes: adapterCacheMib << 20)
        var active: (name: String, layers: [LayerAdapters])?
        func activate(_ name: String) throws {
            let layers = try cache.adapters(for: name) { try resolver.load(name, config: config, force: adapterOptions.force).layers }
            active = (name, layers)
        }
        if let adapter { try activate(adapter) }
        var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        let generator = Generator(languageModel)
        let interactive = isatty(STDIN_FILENO) != 0
        func prompt() {
            guard interactive else { return }
            FileHandle.standardOutput.write(Data("[\(active?.name ?? "base")] > ".utf8))
        }
        // Replies stream through FileHandle; everything goes the same way so order is kept in pipes.
        func say(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
        prompt()
        while let line = readLine() {
            let input = line.trimmingCharacters(in: .whitespaces)
            defer { prompt() }
            if input.isEmpty { continue }
            if input.hasPrefix("/") {
                let parts = input.split(separator: " ", maxSplits: 1).map(String.init)
                switch parts[0] {
                case "/quit", "/exit":
                    return
                case "/reset":
                    messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
                    say("(new conversation)")
                case "/adapters":
                    let records = try adapterOptions.storeOptions.open().registry.adapters()
                    say(records.isEmpty ? "(no registered adapters)" : records.map(\.reference).joined(separator: "\n"))
                case "/adapter" where parts.count == 2:
                    if parts[1] == "none" {
                        active = nil
                        say("(base model)")
                    } else {
                        do {
                            try activate(parts[1])
                            say("(adapter \(parts[1]))")
                        } catch {
                            say("error: \(error)")
                        }
                    }
                default:
                    say("commands: /adapter NAME[@VERSION] | /adapter none | /adapters | /reset | /quit")
                }
                continue
            }
            messages.append(ChatMessage(role: "user", content: input))
            let ids = try languageModel.chatPrompt(messages)
            let result = try generator.generate(
                prompt: ids, maxTokens: maxTokens, sampling: sampling.parameters, adapters: active?.layers
            ) { piece in
                FileHandle.standardOutput.write(Data(piece.utf8))
                return true
            }
            FileHandle.standardOutput.write(Data("\n".utf8))
            if result.stoppedAtContextLimit {
                say("(stopped at the model's context limit, \(languageModel.model.config.maxPositionEmbeddings) tokens: /reset to start over)")
            }
            messages.append(ChatMessage(role: "assistant", content: result.text))
        }
    }
}
