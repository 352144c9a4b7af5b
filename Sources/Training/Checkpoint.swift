import Foundation
import Formats
import LoRA
import Models

/// Everything needed to continue a run exactly: the adapter, AdamW's moments, the step reached
/// and the curves so far. Batches and dropout masks are functions of (seed, step), so no data
/// position or RNG state needs saving. Layout: PEFT adapter files, `optimizer.safetensors`
/// (moments under the adapter's tensor names + `.exp_avg` / `.exp_avg_sq`), `trainer_state.json`.
public struct Checkpoint: Sendable {
    public var step: Int
    public var adapter: LoRAAdapter
    public var firstMoment: [LayerAdapters]
    public var secondMoment: [LayerAdapters]
    public var options: TrainingOptions
    public var report: TrainingReport

    static let optimizerFile = "optimizer.safetensors"
    static let stateFile = "trainer_state.json"

    /// Writes into `folder` through a temporary sibling folder renamed at the end, so a crash
    /// mid-save leaves the previous checkpoint intact.
    public func save(to folder: String, baseModelName: String) throws {
        let fileManager = FileManager.default
        let temporary = folder + ".partial"
        try? fileManager.removeItem(atPath: temporary)
        try adapter.savePEFT(to: temporary, baseModelName: baseModelName)
        var writer = SafetensorsWriter()
        for (l, (m, v)) in zip(firstMoment, secondMoment).enumerated() {
            for tensor in LayerTensor.projections {
                guard let mPair = m[tensor], let vPair = v[tensor] else { continue }
                for (matrix, mValues, vValues) in [("A", mPair.a, vPair.a), ("B", mPair.b, vPair.b)] {
                    let name = LoRAAdapter.peftTensorName(layer: l, tensor, matrix)
                    writer.add(name + ".exp_avg", shape: [mValues.count], values: mValues)
                    writer.add(name + ".exp_avg_sq", shape: [vValues.count], values: vValues)
                }
            }
        }
        try writer.write(to: "\(temporary)/\(Self.optimizerFile)")
        let state = State(step: step, options: options, report: report)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicWrite.write(try encoder.encode(state), to: "\(temporary)/\(Self.stateFile)")
        if fileManager.fileExists(atPath: folder) {
            let old = folder + ".old"
            try? fileManager.removeItem(atPath: old)
            try fileManager.moveItem(atPath: folder, toPath: old)
            try fileManager.moveItem(atPath: temporary, toPath: folder)
            try fileManager.removeItem(atPath: old)
        } else {
            try fileManager.moveItem(atPath: temporary, toPath: folder)
        }
    }

    public static func load(from folder: String, for model: LlamaConfig) throws -> Checkpoint {
        let adapter = try LoRAAdapter.loadPEFT(from: folder, for: model)
        let statePath = "\(folder)/\(stateFile)"
        guard let data = FileManager.default.contents(atPath: statePath) else {
            throw LoRAError.invalidConfig(path: statePath, reason: "missing: not a training checkpoint")
        }
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: data) } catch {
            throw LoRAError.invalidConfig(path: statePath, reason: "\(error)")
        }
        let moments = try SafetensorsFile(path: "\(folder)/\(optimizerFile)")
        var m = adapter.layers.map { $0.zeros() }, v = m
        for l in adapter.layers.indices {
            for tensor in LayerTensor.projections {
                guard var mPair = m[l][tensor], var vPair = v[l][tensor] else { continue }
                let a = LoRAAdapter.peftTensorName(layer: l, tensor, "A"), b = LoRAAdapter.peftTensorName(layer: l, tensor, "B")
                mPair.a = try moments.floats(a + ".exp_avg")
                mPair.b = try moments.floats(b + ".exp_avg")
                vPair.a = try moments.floats(a + ".exp_avg_sq")
                vPair.b = try moments.floats(b + ".exp_avg_sq")
                guard mPair.a.count == vPair.a.count, mPair.b.count == vPair.b.count,
                    mPair.a.count == adapter.layers[l][tensor]?.a.count, mPair.b.count == adapter.layers[l][tensor]?.b.count
                else { throw LoRAError.invalidConfig(path: "\(folder)/\(optimizerFile)", reason: "moment shapes do not match the adapter") }
                m[l][tensor] = mPair
                v[l][tensor] = vPair
            }
        }
        return Checkpoint(step: state.step, adapter: adapter, firstMoment: m, secondMoment: v, options: state.options, report: state.report)
    }

    struct State: Codable {
        var step: Int
        var options: TrainingOptions
        var report: TrainingReport
    }
}
