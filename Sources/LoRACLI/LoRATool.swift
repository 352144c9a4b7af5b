import ArgumentParser
import Formats
import Kernels

@main
struct LoRATool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lora",
        abstract: "A LoRA fine-tuning workbench for Llama-family models on the CPU.",
        subcommands: [
            TrainCommand.self, GenerateCommand.self, ChatCommand.self, ServeCommand.self, EvalCommand.self, SweepCommand.self, CompareCommand.self,
            DataCommand.self, AdaptersCommand.self, InfoCommand.self, BenchCommand.self,
        ]
    )

    /// What `AsyncParsableCommand.main` does, with Ctrl-C handled from the start and file-system
    /// errors said plainly ("no space left on device") instead of Foundation's dumps.
    static func main() async {
        Interrupt.install()
        do {
            try KernelPath.checkEnvironment()
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: FileSystemError.clarify(error))
        }
    }
}
