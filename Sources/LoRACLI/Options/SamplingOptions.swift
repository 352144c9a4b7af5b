import ArgumentParser
import Inference

struct SamplingOptions: ParsableArguments {
    @Option(name: .customLong("temp"), help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .long, help: "Keep only the k most likely tokens (0: all).")
    var topK: Int = 0

    @Option(name: .long, help: "Nucleus sampling: keep the most likely tokens up to this total probability.")
    var topP: Float = 1

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: UInt64 = 0

    func validate() throws {
        guard temperature >= 0 else { throw ValidationError("--temp must be 0 or more") }
        guard topK >= 0 else { throw ValidationError("--top-k must be 0 or more") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    var parameters: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed)
    }
}
