import ArgumentParser

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
}
