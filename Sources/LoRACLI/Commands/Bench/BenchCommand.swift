import ArgumentParser

/// `lora bench`: one group of measurements per subcommand, each printing one JSON object.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure speed and memory; print JSON.",
        subcommands: [BenchDecodeCommand.self, BenchTrainCommand.self, BenchSwapCommand.self, BenchServeCommand.self],
        defaultSubcommand: BenchDecodeCommand.self)
}
