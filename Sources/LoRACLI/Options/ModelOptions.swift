import ArgumentParser
import Foundation
import Inference
import Kernels

struct ModelOptions: ParsableArguments {
    static let defaultModel = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    @Option(name: .long, help: "A .gguf file or a Hugging Face model folder (default: $LORA_MODEL or \(defaultModel)).")
    var model: String?

    @Option(name: .long, help: "Threads for matrix products.")
    var threads: Int = 2

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    var resolvedPath: String {
        model ?? ProcessInfo.processInfo.environment["LORA_MODEL"] ?? Self.defaultModel
    }

    /// Loads the model, with a hint to run the set-up when the default model is absent.
    func load(decoding: Bool = true) throws -> LanguageModel {
        BLAS.sleepIdleThreadsPromptly()
        BLAS.setThreadCount(threads)
        Parallel.setThreadCount(threads)
        let path = resolvedPath
        if model == nil, !FileManager.default.fileExists(atPath: path) {
            throw ValidationError("the default model \(path) is missing: run scripts/setup first, or pass --model")
        }
        return try LanguageModel.load(path: path, decoding: decoding)
    }
}
