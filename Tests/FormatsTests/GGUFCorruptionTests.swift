import Foundation
import Formats
import Testing
import TestSupport

/// Truncated and corrupted GGUF files give a typed error naming the file, never a crash.
struct GGUFCorruptionTests {
    static func tinyModelBytes() -> Data {
        var builder = GGUFBuilder()
        builder.metadata = [
            ("general.architecture", .string("llama")),
            ("llama.block_count", .uint32(1)),
            ("tokenizer.ggml.tokens", .array([.string("a"), .string("b"), .string("ab")])),
            ("general.alignment", .uint32(32)),
        ]
        builder.add("token_embd.weight", shape: [4, 3], floats: (0..<12).map(Float.init))
        builder.add("output_norm.weight", shape: [4], floats: [1, 1, 1, 1])
        return builder.build()
    }

    func parse(_ data: Data) throws(GGUFError) -> GGUFFile {
        let directory = NSTemporaryDirectory() + "gguf-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/model.gguf"
        try? data.write(to: URL(fileURLWithPath: path))
        return try GGUFFile(path: path)
    }

    @Test func intactFileParses() throws {
        let file = try parse(Self.tinyModelBytes())
        #expect(file.version == 3)
        #expect(file.metadata["llama.block_count"]?.int == 1)
        #expect(file.metadataKeys.first == "general.architecture")
        #expect(file.tensors.map(\.name) == ["token_embd.weight", "output_norm.weight"])
        #expect(file.tensor(named: "token_embd.weight")?.shape == [4, 3])
    }

    /// Every proper prefix of the file is rejected with an error that names the file.
    @Test func everyTruncationIsATypedError() throws {
        let data = Self.tinyModelBytes()
        for length in 0..<data.count {
            do {
                _ = try parse(data.prefix(length))
                Issue.record("a file cut to \(length) of \(data.count) bytes was accepted")
            } catch {
                #expect(error.description.contains("model.gguf"), "\(error)")
            }
        }
    }

    @Test func badMagicVersionTypeAndShape() throws {
        let data = Self.tinyModelBytes()
        func patched(at offset: Int, _ bytes: [UInt8]) -> Data {
            var copy = data
            copy.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            return copy
        }
        #expect(throws: GGUFError.self) { _ = try parse(patched(at: 0, [0x47, 0x47, 0x55, 0x41])) }
        do {
            _ = try parse(patched(at: 0, Array("GGML".utf8)))
        } catch {
            guard case .badMagic = error else { Issue.record("expected badMagic, got \(error)"); return }
        }
        do {
            _ = try parse(patched(at: 4, [9, 0, 0, 0]))
            Issue.record("version 9 accepted")
        } catch {
            #expect(error.description.contains("version 9"))
        }
        // Absurd tensor count.
        #expect(throws: GGUFError.self) { _ = try parse(patched(at: 8, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])) }

        // Locate the first tensor info: name length, "token_embd.weight", dims, shape, type, offset.
        let name = Data("token_embd.weight".utf8)
        let nameStart = try #require(data.range(of: name)?.lowerBound)
        let dimsOffset = nameStart + name.count
        let shapeOffset = dimsOffset + 4
        let typeOffset = shapeOffset + 16
        let dataOffsetOffset = typeOffset + 4
        do {
            _ = try parse(patched(at: typeOffset, [99, 0, 0, 0]))
            Issue.record("type 99 accepted")
        } catch {
            #expect(error == .unknownTensorType(path: error.path, name: "token_embd.weight", type: 99))
        }
        do {
            _ = try parse(patched(at: shapeOffset, [0, 0, 0, 0, 0, 0, 1, 0]))
            Issue.record("huge shape accepted")
        } catch {
            #expect(error.description.contains("token_embd.weight"))
        }
        do {
            _ = try parse(patched(at: dimsOffset, [7, 0, 0, 0]))
            Issue.record("7 dimensions accepted")
        } catch {
            #expect(error.description.contains("7 dimensions"))
        }
        do {
            _ = try parse(patched(at: dataOffsetOffset, [0, 4, 0, 0, 0, 0, 0, 0]))
            Issue.record("data past the end accepted")
        } catch {
            #expect(error.description.contains("not within the file"))
        }
    }

    /// A tensor whose type or offset changed while its bytes still fit the file: its data would
    /// run into the next tensor's, or stop far short of it.
    @Test func mistypedOrOverlappingTensorsAreRefused() throws {
        let data = Self.tinyModelBytes()
        func infoOffsets(_ name: String) throws -> (type: Int, offset: Int) {
            let start = try #require(data.range(of: Data(name.utf8))?.upperBound)
            return (start + 4 + 8 * (name == "token_embd.weight" ? 2 : 1), start + 4 + 8 * (name == "token_embd.weight" ? 2 : 1) + 4)
        }
        func patched(at offset: Int, _ bytes: [UInt8]) -> Data {
            var copy = data
            copy.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            return copy
        }
        let embedding = try infoOffsets("token_embd.weight"), norm = try infoOffsets("output_norm.weight")
        // F32 → F16: 24 of the 48 bytes before the next tensor.
        do {
            _ = try parse(patched(at: embedding.type, [1, 0, 0, 0]))
            Issue.record("a tensor retyped to F16 was accepted")
        } catch {
            #expect(error.description.contains("token_embd.weight") && error.description.contains("before the next tensor"), "\(error)")
        }
        // output_norm moved onto token_embd's data.
        do {
            _ = try parse(patched(at: norm.offset, [32, 0, 0, 0, 0, 0, 0, 0]))
            Issue.record("overlapping tensors were accepted")
        } catch {
            #expect(error.description.contains("overlaps"), "\(error)")
        }
    }

    @Test func duplicateKeyIsRejected() throws {
        var builder = GGUFBuilder()
        builder.metadata = [("a", .uint32(1)), ("a", .uint32(2))]
        do {
            _ = try parse(builder.build())
            Issue.record("duplicate key accepted")
        } catch {
            #expect(error == .duplicateKey(path: error.path, key: "a"))
        }
    }

    /// The real model cut at offsets through its header, tokenizer arrays and data.
    @Test func truncatedRealModelIsATypedError() throws {
        let model = try Data(contentsOf: URL(fileURLWithPath: Fixtures.modelPath), options: .alwaysMapped)
        for length in [0, 3, 4, 7, 12, 23, 24, 100, 5_000, 400_000, 1_500_000, 1_785_000, 20_000_000, model.count - 1] {
            do {
                _ = try parse(model.prefix(length))
                Issue.record("the model cut to \(length) bytes was accepted")
            } catch {
                #expect(error.description.contains("model.gguf"))
            }
        }
    }

    @Test func missingFileIsNamed() {
        #expect(throws: GGUFError.file(.fileNotFound(path: "/nonexistent/x.gguf"))) {
            try GGUFFile(path: "/nonexistent/x.gguf")
        }
    }
}

extension GGUFError {
    var path: String {
        switch self {
        case .badMagic(let path, _), .unsupportedVersion(let path, _), .truncated(let path, _, _, _, _),
            .invalidValueType(let path, _, _, _), .invalidString(let path, _), .duplicateKey(let path, _),
            .implausibleCount(let path, _, _, _), .invalidTensor(let path, _, _), .unknownTensorType(let path, _, _),
            .badAlignment(let path, _), .missingKey(let path, _), .wrongKeyType(let path, _, _):
            path
        case .file: ""
        }
    }
}
