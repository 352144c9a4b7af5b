import ArgumentParser
import LoRA
import Models

struct LoRAOptions: ParsableArguments {
    @Option(name: .long, help: "LoRA rank r.")
    var rank: Int = 8

    @Option(name: .long, help: "LoRA alpha; the update is scaled by alpha/r (alpha/√r with --rslora).")
    var alpha: Float = 16

    @Option(name: .long, help: "Dropout on the LoRA input.")
    var dropout: Float = 0

    @Option(name: .long, help: "Projections to adapt: PEFT names (q_proj,v_proj), letters (qv, qkvogud) or all.")
    var targets: String = "all"

    @Option(name: .long, help: "Adapt only these layers (comma-separated indices); default all.")
    var layers: String?

    @Flag(name: .long, help: "rsLoRA scaling alpha/√r.")
    var rslora = false

    func validate() throws {
        guard rank >= 1 else { throw ValidationError("--rank must be at least 1") }
        guard alpha > 0 else { throw ValidationError("--alpha must be positive") }
        guard (0..<1).contains(dropout) else { throw ValidationError("--dropout must be in [0, 1)") }
        _ = try config()
    }

    func config() throws -> LoRAConfig {
        var layerList: [Int]?
        if let layers {
            layerList = try layers.split(separator: ",").map {
                guard let index = Int($0.trimmingCharacters(in: .whitespaces)), index >= 0 else {
                    throw ValidationError("--layers takes comma-separated layer indices, got '\(layers)'")
                }
                return index
            }
        }
        do {
            return LoRAConfig(
                rank: rank, alpha: alpha, dropout: dropout, targets: try LoRAConfig.parseTargets(targets), layers: layerList,
                useRSLoRA: rslora)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
