import Foundation

/// A parsed GGUF file (versions 2 and 3): metadata, tensor directory, and the mapped bytes.
///
/// Layout (all little-endian): magic "GGUF", version u32, tensor count u64, metadata count u64,
/// metadata key/value pairs, tensor infos (name, dims, type, offset), padding to
/// `general.alignment` (default 32), then tensor data. Every count, length and offset is
/// checked against the file size before it is used, so a truncated or corrupt file throws
/// a `GGUFError` naming the offset instead of crashing.
public struct GGUFFile: Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order (dictionaries do not keep it; `lora info` shows it).
    public let metadataKeys: [String]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let dataOffset: Int
    public let file: MappedFile

    public static let magic: UInt32 = 0x4655_4747

    public init(path: String) throws(GGUFError) {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .file(error) }
        try self.init(file: file)
    }

    public init(file: MappedFile) throws(GGUFError) {
        self.file = file
        self.path = file.path
        var parser = Parser(path: file.path, reader: ByteReader(data: file.data))

        let magic = try parser.u32("magic")
        guard magic == Self.magic else { throw .badMagic(path: path, found: magic) }
        version = try parser.u32("version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(path: path, version: version) }
        // Each tensor info needs at least 8 (name length) + 4 (dims) + 4 (type) + 8 (offset) bytes,
        // each metadata pair at least 8 (key length) + 4 (type) + 1.
        let tensorCount = try parser.count("tensor count", minimumBytesEach: 24)
        let metadataCount = try parser.count("metadata count", minimumBytesEach: 13)

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for _ in 0..<metadataCount {
            let key = try parser.string("metadata key")
            let value = try parser.value(key: key)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw .duplicateKey(path: path, key: key)
            }
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard let a = value.int, a > 0, a & (a - 1) == 0 else {
                throw .badAlignment(path: path, alignment: value.int ?? 0)
            }
            alignment = a
        }
        self.alignment = alignment

        var rawTensors: [(name: String, shape: [Int], type: UInt32, offset: UInt64)] = []
        for _ in 0..<tensorCount {
            let name = try parser.string("tensor name")
            let dimensionCount = try parser.u32("dimension count of '\(name)'")
            guard (1...4).contains(dimensionCount) else {
                throw .invalidTensor(path: path, name: name, reason: "has \(dimensionCount) dimensions (1 to 4 allowed)")
            }
            var shape: [Int] = []
            for _ in 0..<dimensionCount {
                let dimension = try parser.u64("shape of '\(name)'")
                guard let d = Int(exactly: dimension), d > 0, d <= file.count * 2 else {
                    throw .invalidTensor(path: path, name: name, reason: "dimension \(dimension) is impossible for this file")
                }
                shape.append(d)
            }
            let type = try parser.u32("type of '\(name)'")
            let offset = try parser.u64("data offset of '\(name)'")
            rawTensors.append((name, shape, type, offset))
        }

        let dataOffset = (parser.reader.offset + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset
        var seen = Set<String>()
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(rawTensors.count)
        for raw in rawTensors {
            guard seen.insert(raw.name).inserted else {
                throw .invalidTensor(path: path, name: raw.name, reason: "appears twice in the tensor directory")
            }
            guard let type = GGMLType(rawValue: raw.type) else {
                throw .unknownTensorType(path: path, name: raw.name, type: raw.type)
            }
            guard raw.shape[0] % type.blockSize == 0 else {
                throw .invalidTensor(
                    path: path, name: raw.name,
                    reason: "row length \(raw.shape[0]) is not a multiple of the \(type) block size \(type.blockSize)")
            }
            var elements = 1
            for d in raw.shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw .invalidTensor(path: path, name: raw.name, reason: "shape \(raw.shape) overflows")
                }
                elements = product
            }
            let byteCount = elements / type.blockSize * type.bytesPerBlock
            guard raw.offset % UInt64(alignment) == 0 else {
                throw .invalidTensor(path: path, name: raw.name, reason: "data offset \(raw.offset) is not aligned to \(alignment)")
            }
            guard let relative = Int(exactly: raw.offset), relative <= file.count,
                dataOffset + relative + byteCount <= file.count
            else {
                throw .invalidTensor(
                    path: path, name: raw.name,
                    reason: "data (offset \(raw.offset), \(byteCount) bytes) is not within the file (\(file.count) bytes); the model is corrupted or incomplete")
            }
            let start = dataOffset + relative
            tensors.append(GGUFTensorInfo(name: raw.name, shape: raw.shape, type: type, byteRange: start..<(start + byteCount)))
        }
        // Writers lay tensors out back to back, each padded to the alignment. A range that runs
        // into the next, or stops short of it by more than the padding, means a tensor's type or
        // shape no longer matches its bytes (a corrupted header whose sizes still fit the file).
        let ordered = tensors.sorted { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        for (tensor, next) in zip(ordered, ordered.dropFirst()) {
            guard tensor.byteRange.upperBound <= next.byteRange.lowerBound else {
                throw .invalidTensor(
                    path: path, name: tensor.name,
                    reason: "its data (\(tensor.type), \(tensor.byteRange.count) bytes at \(tensor.byteRange.lowerBound)) overlaps '\(next.name)' at \(next.byteRange.lowerBound)")
            }
            guard next.byteRange.lowerBound - tensor.byteRange.upperBound < alignment else {
                throw .invalidTensor(
                    path: path, name: tensor.name,
                    reason: "its type \(tensor.type) and shape \(tensor.shape) give \(tensor.byteRange.count) bytes, but \(next.byteRange.lowerBound - tensor.byteRange.lowerBound) bytes lie before the next tensor '\(next.name)'")
            }
        }
        self.tensors = tensors
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensors.first { $0.name == name }
    }

    /// Calls `body` with the raw bytes of a tensor (a view into the mapping, no copy).
    public func withBytes<R>(of tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try file.data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[tensor.byteRange]))
        }
    }

    // MARK: - Typed metadata access

    public func requiredInt(_ key: String) throws(GGUFError) -> Int {
        guard let value = metadata[key] else { throw .missingKey(path: path, key: key) }
        guard let int = value.int else { throw .wrongKeyType(path: path, key: key, expected: "an integer") }
        return int
    }

    public func optionalDouble(_ key: String) throws(GGUFError) -> Double? {
        guard let value = metadata[key] else { return nil }
        guard let double = value.double else { throw .wrongKeyType(path: path, key: key, expected: "a number") }
        return double
    }

    public func stringArray(_ key: String) throws(GGUFError) -> [String] {
        guard let value = metadata[key] else { throw .missingKey(path: path, key: key) }
        guard let array = value.array else { throw .wrongKeyType(path: path, key: key, expected: "an array of strings") }
        var strings: [String] = []
        strings.reserveCapacity(array.count)
        for item in array {
            guard let s = item.string else { throw .wrongKeyType(path: path, key: key, expected: "an array of strings") }
            strings.append(s)
        }
        return strings
    }

    public func intArray(_ key: String) throws(GGUFError) -> [Int]? {
        guard let value = metadata[key] else { return nil }
        guard let array = value.array else { throw .wrongKeyType(path: path, key: key, expected: "an array of integers") }
        var ints: [Int] = []
        ints.reserveCapacity(array.count)
        for item in array {
            guard let i = item.int else { throw .wrongKeyType(path: path, key: key, expected: "an array of integers") }
            ints.append(i)
        }
        return ints
    }
}

/// Reads the GGUF header's primitive fields, turning a short read into `GGUFError.truncated`.
private struct Parser {
    let path: String
    var reader: ByteReader

    mutating func u32(_ what: String) throws(GGUFError) -> UInt32 { try read(UInt32.self, what) }

    mutating func u64(_ what: String) throws(GGUFError) -> UInt64 { try read(UInt64.self, what) }

    mutating func count(_ what: String, minimumBytesEach: Int) throws(GGUFError) -> Int {
        let offset = reader.offset
        let raw = try u64(what)
        guard raw <= UInt64(reader.remaining / minimumBytesEach) else {
            throw .implausibleCount(path: path, offset: offset, what: what, count: raw)
        }
        return Int(raw)
    }

    mutating func string(_ what: String) throws(GGUFError) -> String {
        let length = try count("length of \(what)", minimumBytesEach: 1)
        let offset = reader.offset
        let bytes: Data
        do { bytes = try reader.bytes(length) } catch { throw truncated(error, what) }
        guard let string = String(data: bytes, encoding: .utf8) else { throw .invalidString(path: path, offset: offset) }
        return string
    }

    mutating func value(key: String) throws(GGUFError) -> GGUFValue {
        let offset = reader.offset
        let rawTag = try u32("type of '\(key)'")
        guard let tag = GGUFValue.Tag(rawValue: rawTag) else {
            throw .invalidValueType(path: path, offset: offset, key: key, type: rawTag)
        }
        return try value(of: tag, key: key, depth: 0)
    }

    private mutating func value(of tag: GGUFValue.Tag, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        let what = "value of '\(key)'"
        switch tag {
        case .uint8: return .uint8(try read(UInt8.self, what))
        case .int8: return .int8(try read(Int8.self, what))
        case .uint16: return .uint16(try read(UInt16.self, what))
        case .int16: return .int16(try read(Int16.self, what))
        case .uint32: return .uint32(try read(UInt32.self, what))
        case .int32: return .int32(try read(Int32.self, what))
        case .uint64: return .uint64(try read(UInt64.self, what))
        case .int64: return .int64(try read(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what)))
        case .bool: return .bool(try read(UInt8.self, what) != 0)
        case .string: return .string(try string(what))
        case .array:
            let offset = reader.offset
            let rawTag = try read(UInt32.self, "item type of '\(key)'")
            // Nested arrays are legal but nothing real nests deeply; the cap bounds recursion on garbage.
            guard let itemTag = GGUFValue.Tag(rawValue: rawTag), depth < 4 else {
                throw .invalidValueType(path: path, offset: offset, key: key, type: rawTag)
            }
            let count = try count("item count of '\(key)'", minimumBytesEach: 1)
            var items: [GGUFValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try value(of: itemTag, key: key, depth: depth + 1)) }
            return .array(items)
        }
    }

    private mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(GGUFError) -> T {
        do { return try reader.read(T.self) } catch { throw truncated(error, what) }
    }

    private func truncated(_ failure: ByteReader.Failure, _ what: String) -> GGUFError {
        switch failure {
        case .truncated(let offset, let needed, let available):
            .truncated(path: path, offset: offset, needed: needed, available: available, reading: what)
        }
    }
}
