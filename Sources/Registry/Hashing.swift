import Crypto
import Foundation
import Formats

/// SHA-256 of files and of a model's weights, streamed from the mapped file.
public enum Hashing {
    public static func sha256(of data: some DataProtocol) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    public static func sha256(file path: String) throws -> String {
        let file = try MappedFile(path: path)
        return sha256(of: file.data)
    }

    /// The fingerprint an adapter names its base by: sha256 over the bytes of every weight,
    /// not the metadata, so re-saving a file with other metadata keeps its identity. For a GGUF
    /// file, the tensor data region; for a Hugging Face folder, each safetensors shard's data
    /// in file-name order.
    public static func weightsFingerprint(modelPath path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FormatError.fileNotFound(path: path)
        }
        var hasher = SHA256()
        if isDirectory.boolValue {
            let shards = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".safetensors") }.sorted()
            for shard in shards {
                let file = try SafetensorsFile(path: "\(path)/\(shard)")
                let start = file.tensors.values.map(\.byteRange.lowerBound).min() ?? file.file.count
                hasher.update(data: file.file.data[start...])
            }
        } else {
            let gguf = try GGUFFile(path: path)
            hasher.update(data: gguf.file.data[gguf.dataOffset...])
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
