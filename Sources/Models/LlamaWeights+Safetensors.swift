import Foundation
import Formats

extension LlamaWeights {
    /// Loads a Hugging Face model folder: `config.json` plus `model.safetensors`, or shards
    /// listed in `model.safetensors.index.json`.
    public convenience init(huggingFaceFolder folder: String) throws {
        let config = try LlamaConfig(huggingFaceFolder: folder)
        let files = try Self.safetensorsFiles(in: folder)
        var location: [String: SafetensorsFile] = [:]
        for file in files.values {
            for name in file.tensors.keys { location[name] = file }
        }
        let hasOutput = location[GlobalTensor.output.huggingFaceName] != nil
        if !hasOutput && !config.tieWordEmbeddings {
            throw ModelError.missingTensor(path: folder, name: GlobalTensor.output.huggingFaceName)
        }
        let weights = try LlamaWeights.load(config: config, hasOutput: hasOutput) { global, layer, shape in
            let name = global?.huggingFaceName ?? layer.map { $0.0.huggingFaceName(layer: $0.1) } ?? ""
            guard let file = location[name], let info = file.tensors[name] else {
                throw ModelError.missingTensor(path: folder, name: name)
            }
            guard info.shape == shape else { throw ModelError.wrongShape(path: file.path, name: name, expected: shape, found: info.shape) }
            return try file.floats(info)
        }
        self.init(
            config: config, tokenEmbedding: weights.tokenEmbedding, layers: weights.layers,
            outputNorm: weights.outputNorm, output: weights.output)
    }

    private static func safetensorsFiles(in folder: String) throws -> [String: SafetensorsFile] {
        let single = "\(folder)/model.safetensors"
        if FileManager.default.fileExists(atPath: single) { return [single: try SafetensorsFile(path: single)] }
        let indexPath = "\(folder)/model.safetensors.index.json"
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw ModelError.missingTensor(path: folder, name: "model.safetensors (or model.safetensors.index.json)")
        }
        guard let index = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let weightMap = index["weight_map"] as? [String: String]
        else { throw ModelError.invalidConfig(path: indexPath, reason: "no weight_map object") }
        var files: [String: SafetensorsFile] = [:]
        for shard in Set(weightMap.values) {
            guard !shard.contains("/") else { throw ModelError.invalidConfig(path: indexPath, reason: "shard '\(shard)' is not a file name") }
            files[shard] = try SafetensorsFile(path: "\(folder)/\(shard)")
        }
        return files
    }
}

extension LlamaConfig {
    public init(huggingFaceFolder folder: String) throws {
        let path = "\(folder)/config.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.invalidConfig(path: path, reason: "file not found or unreadable")
        }
        if let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let type = json["model_type"] as? String, type != "llama"
        {
            throw ModelError.unsupportedArchitecture(path: path, architecture: type)
        }
        do {
            self = try JSONDecoder().decode(LlamaConfig.self, from: data)
        } catch {
            throw ModelError.invalidConfig(path: path, reason: "\(error)")
        }
        try validate(source: path)
    }
}
