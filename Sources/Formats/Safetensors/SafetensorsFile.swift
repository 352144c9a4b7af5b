import Foundation

/// A safetensors file: an 8-byte little-endian header length, a JSON header mapping tensor
/// names to `{dtype, shape, data_offsets}` (offsets relative to the end of the header), then the
/// raw little-endian data. Every offset is checked against the file before use.
public struct SafetensorsFile: Sendable {
    public enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

        public var size: Int {
            switch self {
            case .f64, .i64: 8
            case .f32, .i32: 4
            case .f16, .bf16, .i16: 2
            case .i8, .u8, .bool: 1
            }
        }
    }

    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        /// Row-major shape, outermost first (PyTorch order).
        public let shape: [Int]
        /// Absolute byte range in the file.
        public let byteRange: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    public let file: MappedFile

    public init(path: String) throws(SafetensorsError) {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .file(error) }
        try self.init(file: file)
    }

    public init(file: MappedFile) throws(SafetensorsError) {
        self.file = file
        let path = file.path
        self.path = path
        var reader = ByteReader(data: file.data)
        guard let headerSize = try? reader.read(UInt64.self) else {
            throw .truncatedHeader(path: path, fileSize: file.count, headerSize: 8)
        }
        guard headerSize <= UInt64(file.count - 8) else {
            throw .truncatedHeader(path: path, fileSize: file.count, headerSize: headerSize)
        }
        let headerBytes = (try? reader.bytes(Int(headerSize))) ?? Data()
        let dataStart = 8 + Int(headerSize)
        let dataSize = file.count - dataStart
        guard let json = try? JSONSerialization.jsonObject(with: headerBytes), let header = json as? [String: Any] else {
            throw .invalidHeader(path: path, reason: "not a JSON object")
        }
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        var ranges: [(Range<Int>, String)] = []
        for (name, entry) in header {
            if name == "__metadata__" {
                guard let dict = entry as? [String: String] else {
                    throw .invalidHeader(path: path, reason: "__metadata__ must map strings to strings")
                }
                metadata = dict
                continue
            }
            guard let entry = entry as? [String: Any], let dtypeName = entry["dtype"] as? String,
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw .invalidTensor(path: path, name: name, reason: "entry needs dtype, shape and two data_offsets")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw .unsupportedDType(path: path, name: name, dtype: dtypeName)
            }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw .invalidTensor(path: path, name: name, reason: "negative dimension in shape \(shape)")
            }
            var count = dtype.size
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw .invalidTensor(path: path, name: name, reason: "shape \(shape) overflows") }
                count = product
            }
            guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= dataSize else {
                throw .invalidTensor(
                    path: path, name: name,
                    reason: "data_offsets \(offsets) lie outside the \(dataSize) data bytes; the file is truncated or corrupt")
            }
            guard offsets[1] - offsets[0] == count else {
                throw .invalidTensor(
                    path: path, name: name,
                    reason: "data_offsets span \(offsets[1] - offsets[0]) bytes but \(dtypeName) \(shape) needs \(count)")
            }
            let range = (dataStart + offsets[0])..<(dataStart + offsets[1])
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, byteRange: range)
            ranges.append((range, name))
        }
        ranges.sort { $0.0.lowerBound < $1.0.lowerBound }
        for (previous, next) in zip(ranges, ranges.dropFirst()) where previous.0.overlaps(next.0) {
            throw .invalidTensor(path: path, name: next.1, reason: "data overlaps tensor '\(previous.1)'")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor's values as Float32, converting F16 and BF16.
    public func floats(_ name: String) throws(SafetensorsError) -> [Float] {
        guard let info = tensors[name] else { throw .missingTensor(path: path, name: name) }
        return try floats(info)
    }

    public func floats(_ info: TensorInfo) throws(SafetensorsError) -> [Float] {
        let count = info.elementCount
        let dtype = info.dtype
        guard dtype == .f32 || dtype == .f16 || dtype == .bf16 else {
            throw .unsupportedDType(path: path, name: info.name, dtype: dtype.rawValue)
        }
        return file.data.withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[info.byteRange])
            return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                switch dtype {
                case .f32:
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                case .f16:
                    for i in 0..<count { out[i] = Float(Float16(bitPattern: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
                default:
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
                }
                initialized = count
            }
        }
    }
}
