import Foundation
import Formats
import Testing
import TestSupport

struct SafetensorsTests {
    func write(_ data: Data) throws -> (String, String) {
        let directory = try Fixtures.temporaryDirectory()
        let path = "\(directory)/t.safetensors"
        try data.write(to: URL(fileURLWithPath: path))
        return (directory, path)
    }

    @Test func roundTripKeepsNamesShapesValuesAndMetadata() throws {
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        writer.add("b.weight", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        writer.add("a.weight", shape: [4], values: [-1, 0.5, .pi, 1e-8])
        let (directory, path) = try write(writer.serialized())
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.tensors["b.weight"]?.shape == [2, 3])
        #expect(try file.floats("b.weight") == [1, 2, 3, 4, 5, 6])
        #expect(try file.floats("a.weight") == [-1, 0.5, .pi, 1e-8])
        // Header length is padded to 8 bytes, as safetensors' own writer does.
        let headerLength = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0)
    }

    @Test func halfPrecisionIsConverted() throws {
        let f16: [Float16] = [1.5, -2, 0.099975586]
        let bf16: [UInt16] = [0x3FC0, 0xC000]  // 1.5, -2
        var data = Data()
        let header = #"{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]}}"#
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        f16.forEach { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        bf16.forEach { v in withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        let (directory, path) = try write(data)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try SafetensorsFile(path: path)
        #expect(try file.floats("h") == f16.map(Float.init))
        #expect(try file.floats("b") == [1.5, -2])
    }

    @Test func corruptFilesAreRejectedWithTheirReason() throws {
        var writer = SafetensorsWriter()
        writer.add("w", shape: [4], values: [1, 2, 3, 4])
        let good = writer.serialized()
        for length in 0..<good.count {
            let (directory, path) = try write(good.prefix(length))
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(throws: SafetensorsError.self, "prefix \(length)") { try SafetensorsFile(path: path) }
        }
        func withHeader(_ json: String, dataBytes: Int) throws -> SafetensorsError? {
            var data = Data()
            withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(Data(json.utf8))
            data.append(Data(count: dataBytes))
            let (directory, path) = try write(data)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            do {
                _ = try SafetensorsFile(path: path)
                return nil
            } catch { return error }
        }
        let wrongSize = try withHeader(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#, dataBytes: 16)
        #expect(wrongSize?.description.contains("needs 16") == true)
        let overlap = try withHeader(
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, dataBytes: 12)
        #expect(overlap?.description.contains("overlaps") == true)
        let notJSON = try withHeader("{nope", dataBytes: 0)
        #expect(notJSON?.description.contains("not a JSON object") == true)
        let unknownType = try withHeader(#"{"w":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}"#, dataBytes: 1)
        #expect(unknownType?.description.contains("dtype Q9") == true)
    }

    @Test func atomicWriteReplacesWholeFilesOnly() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/out.bin"
        try AtomicWrite.write(Data([1, 2, 3]), to: path)
        try AtomicWrite.write(Data([4, 5]), to: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([4, 5]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["out.bin"])
        #expect(throws: AtomicWrite.Failure.self) { try AtomicWrite.write(Data([1]), to: "\(directory)/missing/dir/x") }
    }
}

/// Foundation's file errors become one line with the path and the reason.
struct FileSystemErrorTests {
    @Test func foundationErrorsAreSaidPlainly() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: "\(directory)/exists", withIntermediateDirectories: true)
        do {
            try FileManager.default.createDirectory(atPath: "\(directory)/exists", withIntermediateDirectories: false)
            Issue.record("created a folder twice")
        } catch {
            let clear = FileSystemError.clarify(error)
            #expect(clear is FileSystemError && "\(clear)".contains("\(directory)/exists") && !"\(clear)".contains("NSCocoaErrorDomain"), "\(clear)")
        }
        let out = FileSystemError.clarify(CocoaError(.fileWriteOutOfSpace, userInfo: [NSFilePathErrorKey: "/full/disk"]))
        #expect(out as? FileSystemError == FileSystemError(path: "/full/disk", reason: "no space left on device"))
        struct Other: Error {}
        #expect(FileSystemError.clarify(Other()) is Other)
    }
}
